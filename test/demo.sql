-- MPS demo: the foundation (levels, merchants, members and their cards, the
-- audit trail), printed readably. Run by `bash test/harness.sh demo` against
-- a fresh database with the extension and the Supabase stand-in.
--
-- Sections are marked `== N. ...`; the money-core sections (QR codes,
-- charges, refunds, recharges, ...) go where the marker below says, before
-- the last section ("== Audit trail"), which seals and verifies everything
-- that happened.
\set ON_ERROR_STOP 1
\pset null '-'
\pset footer off
\set bob_sub  'b0b00000-0000-4000-8000-00000000000b'
\set op_sub   '0be2a702-0000-4000-8000-0000000000a1'
\set bob_claims '{"sub":"b0b00000-0000-4000-8000-00000000000b","role":"authenticated"}'
\set op_claims  '{"sub":"0be2a702-0000-4000-8000-0000000000a1","role":"authenticated"}'

-- A refusal shown as a result row: runs the call, catches its error and
-- returns its SQLSTATE, message, detail and hint. The demo stops if the call
-- succeeds or fails with another code than the one it shows.
CREATE FUNCTION pg_temp.refused(p_call text, p_expect text)
RETURNS TABLE (code text, message text, detail text, hint text)
LANGUAGE plpgsql AS $fn$
BEGIN
  BEGIN
    EXECUTE p_call;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    IF code IS DISTINCT FROM p_expect THEN
      RAISE EXCEPTION 'expected SQLSTATE %, got % (%): %', p_expect, code, message, p_call;
    END IF;
    RETURN NEXT;
    RETURN;
  END;
  RAISE EXCEPTION 'expected SQLSTATE %, but the call succeeded: %', p_expect, p_call;
END
$fn$;

\echo
\echo '== 1. Membership levels (platform admin: psql as superuser)'
\echo
SELECT code, name, min_points, coalesce(max_points::text, 'open') AS max_points,
       (discount_bp / 100.0)::numeric(5,2) || ' %' AS discount,
       (earn_rate_bp / 10000.0)::numeric(6,2) AS points_per_unit
FROM mps.set_membership_levels($$[
  {"code": "BRONZE",   "name": "Bronze",   "min_points": 0,     "max_points": 999,   "discount_bp": 0,   "earn_rate_bp": 10000},
  {"code": "SILVER",   "name": "Silver",   "min_points": 1000,  "max_points": 4999,  "discount_bp": 300, "earn_rate_bp": 10000},
  {"code": "GOLD",     "name": "Gold",     "min_points": 5000,  "max_points": 19999, "discount_bp": 500, "earn_rate_bp": 12000},
  {"code": "PLATINUM", "name": "Platinum", "min_points": 20000, "max_points": null,  "discount_bp": 800, "earn_rate_bp": 15000}
]$$);

\echo
\echo '== 2. A merchant and its operator (platform admin through PostgREST: service_role)'
\echo
BEGIN;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = '{"role":"service_role"}';
SELECT code, name, currency, settlement_mode, timezone, fee_bp
FROM mps.create_merchant(p_code := 'COFFEE01', p_name := 'Blue Harbour Coffee', p_currency := 'CNY',
                         p_settlement_mode := 't_plus_1', p_timezone := 'Asia/Shanghai', p_fee_bp := 60);
SELECT m.code AS merchant, u.role, 'operator (till 1)' AS who
FROM mps.assign_merchant_user(p_merchant_code := 'COFFEE01', p_user_id := :'op_sub', p_role := 'operator') u
JOIN mps.merchants m ON m.id = u.merchant_id;
COMMIT;

\echo
\echo '== 3. Three members, each with the standard card issued on sign-up'
\echo
\echo '-- Alice, registered by the back office with her WeChat identity'
SELECT name_, card_type, currency, level_code FROM (
  SELECT 'Alice Chen' AS name_, r.* FROM mps.create_member_profile(
    p_name := 'Alice Chen', p_phone := '+86 138 0013 8000', p_email := 'alice@example.com',
    p_binding_user_org := 'wechat', p_binding_org_id := 'wx-alice-001') r) s;
\echo '-- Bob signs up himself in the app (role authenticated, his JWT subject)'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'bob_claims';
SELECT 'Bob Martin' AS name_, card_type, currency, level_code
FROM mps.create_member_profile(p_name := 'Bob Martin', p_email := 'bob@example.com', p_currency := 'EUR');
COMMIT;
\echo '-- Carol, a walk-in customer registered at the till by the operator'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT 'Carol Wang' AS name_, card_type, currency, level_code
FROM mps.create_member_profile(p_name := 'Carol Wang', p_phone := '139-0000-0001');
COMMIT;

\echo
\echo '== 4. Cards and levels'
\echo
\echo '-- every card (platform admin view)'
SELECT m.name AS member, c.card_no, c.card_type, b.role AS binding, c.status, c.currency,
       mps_internal.to_major(c.balance, cur.exponent) AS balance, c.points, l.code AS level,
       CASE WHEN m.auth_user_id IS NULL THEN 'no' ELSE 'yes' END AS app_login,
       coalesce((SELECT string_agg(i.provider, ', ') FROM mps.member_external_identities i WHERE i.member_id = m.id), '-') AS identities
FROM mps.member_profiles m
JOIN mps.card_bindings b ON b.member_id = m.id
JOIN mps.cards c ON c.id = b.card_id
JOIN mps.currencies cur ON cur.code = c.currency
LEFT JOIN mps.membership_levels l ON l.id = c.level_id
ORDER BY m.created_at;
\echo '-- what Bob sees in the app: get_my_cards() (row-level security keeps the rest away)'
BEGIN READ ONLY;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'bob_claims';
SELECT card_no, card_type, my_role, currency, balance, points, level_code, level_name,
       discount_bp, next_level_code, next_level_points
FROM mps.get_my_cards();
SELECT (SELECT count(*) FROM mps.cards) AS cards_bob_can_select,
       (SELECT count(*) FROM mps.member_profiles) AS profiles_bob_can_select;
COMMIT;
\echo '-- what the operator sees directly: his merchant, no member data'
BEGIN READ ONLY;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT (SELECT string_agg(code, ', ') FROM mps.merchants) AS merchants,
       (SELECT count(*) FROM mps.cards) AS cards, (SELECT count(*) FROM mps.member_profiles) AS profiles;
COMMIT;


\echo
\echo '== 5. Money: a recharge, a QR code, charges with a level upgrade, refunds'
\echo
SELECT card_id AS alice_card FROM mps.card_bindings b JOIN mps.member_profiles m ON m.id = b.member_id
 WHERE m.name = 'Alice Chen' \gset
CREATE TEMP VIEW alice AS
  SELECT mps_internal.to_major(c.balance, 2) AS balance, c.points, l.code AS level,
         (l.discount_bp / 100.0)::numeric(5,2) || ' %' AS level_discount
  FROM mps.cards c LEFT JOIN mps.membership_levels l ON l.id = c.level_id WHERE c.id = :'alice_card';
\echo '-- the back office recharges Alice''s card with 2000.00'
SELECT amount, balance_after FROM mps.recharge_card(:'alice_card', 2000.00, 'demo-recharge-1', 'cash');
\echo '-- a fresh single-use QR code for her card (only its bcrypt hash is kept)'
SELECT qr_plain AS qr, single_use, expires_at - now() AS lifetime FROM mps.rotate_card_qr(:'alice_card') \gset
SELECT :'single_use' AS single_use, :'lifetime' AS lifetime, left(:'qr', 5) || '...' AS code_shown_once,
       (SELECT secret_hash LIKE '$2b$%' FROM mps.card_qr_codes ORDER BY id DESC LIMIT 1) AS stored_as_bcrypt;
\echo '-- the operator scans it and charges 1200.00 (enough points for Silver)'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT tx_id AS pay1, tx_no, raw_amount, discount_amount, final_amount, balance_after, points_earned,
       level_before, level_after, level_changed
FROM mps.merchant_charge_by_qr(p_merchant_code := 'COFFEE01', p_qr_plain := :'qr', p_raw_amount := 1200.00,
                               p_idempotency_key := 'demo-order-1', p_order_no := 'A-0001') \gset
COMMIT;
SELECT :'tx_no' AS tx_no, :'raw_amount' AS raw, :'final_amount' AS paid, :'balance_after' AS balance,
       :'points_earned' AS points, :'level_before' || ' -> ' || :'level_after' AS level;
\echo '-- the POS retries the same request (network hiccup): same answer, no second payment'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT tx_no = :'tx_no' AS same_transaction, balance_after FROM mps.merchant_charge_by_qr(
  p_merchant_code := 'COFFEE01', p_qr_plain := :'qr', p_raw_amount := 1200.00,
  p_idempotency_key := 'demo-order-1', p_order_no := 'A-0001');
COMMIT;
\echo '-- the next purchase gets Silver''s 3 % discount'
SELECT qr_plain AS qr FROM mps.rotate_card_qr(:'alice_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT raw_amount, discount_amount, final_amount, balance_after, points_earned, level_after
FROM mps.merchant_charge_by_qr('COFFEE01', :'qr', 100.00, 'demo-order-2');
COMMIT;
SELECT * FROM alice;
\echo '-- a partial refund of the first payment, then the rest: points come back out, the level drops'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT refund_amount, refunded_total, refundable_remaining, original_status, balance_after,
       points_reversed, level_after
FROM mps.merchant_refund_tx('COFFEE01', :'pay1', 200.00, 'demo-refund-1', 'one item returned');
COMMIT;
SELECT * FROM alice;
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT refund_amount, refunded_total, refundable_remaining, original_status, balance_after,
       points_reversed, level_before, level_after, level_changed
FROM mps.merchant_refund_tx('COFFEE01', :'pay1', 1000.00, 'demo-refund-2', 'order cancelled');
COMMIT;
SELECT * FROM alice;
\echo '-- a refund of a fully refunded payment is refused with its own code'
SELECT * FROM pg_temp.refused($$
  SELECT mps.merchant_refund_tx('COFFEE01', (SELECT id FROM mps.transactions WHERE order_no = 'A-0001'), 0.01, 'demo-refund-3')
$$, 'MP504') \gx
\echo '-- Alice''s usage log'
SELECT kind, status, merchant_code, amount, balance_after, points_delta, order_no
FROM mps.v_usage_logs WHERE card_id = :'alice_card' ORDER BY created_at;

\echo
\echo '== 6. A corporate card shared by a team'
\echo
SELECT card_id AS corp FROM mps.issue_card('corporate', p_owner_member_id := (SELECT id FROM mps.member_profiles WHERE name = 'Bob Martin'),
  p_enterprise_name := 'Harbour Design Ltd', p_fixed_discount_bp := 1000, p_currency := 'EUR',
  p_binding_password := 'harbour-2026') \gset
SELECT code FROM mps.create_merchant('BAKERY01', 'Croissant Corner', p_currency := 'EUR') \gset
SELECT role FROM mps.assign_merchant_user('BAKERY01', :'op_sub', 'operator') \gset
\echo '-- the back office funds it (Harbour Design paid by bank transfer); Bob (owner) adds Carol as a member'
SELECT balance_after FROM mps.recharge_card(:'corp', 300.00, 'demo-corp-fund', 'bank_transfer');
SELECT id AS carol FROM mps.member_profiles WHERE name = 'Carol Wang' \gset
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'bob_claims';
SELECT member_name, role FROM mps.bind_card_member(:'corp', :'carol', 'member');
COMMIT;
\echo '-- a shared code for the office tablet; a purchase gets the corporate 10 %'
SELECT qr_plain AS corp_qr FROM mps.rotate_card_qr(:'corp', 600, true) \gset
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT raw_amount, discount_amount, final_amount, balance_after FROM mps.merchant_charge_by_qr('BAKERY01', :'corp_qr', 42.00, 'demo-bakery-1');
COMMIT;
SELECT member_name, role FROM mps.list_card_bindings(:'corp') ORDER BY role, member_name;

\echo
\echo '== 7. A marketing group: stacked discounts per line, and a stamp card'
\echo
SELECT id FROM mps.upsert_category('COFFEE', 'Coffee') \gset
SELECT id FROM mps.upsert_category('PASTRY', 'Pastry') \gset
SELECT id FROM mps.upsert_product('LATTE', 'Latte', 'COFFEE') \gset
SELECT id FROM mps.upsert_product('CROISSANT', 'Croissant', 'PASTRY') \gset
SELECT code FROM mps.create_marketing_group('REGULARS', 'Regular customers') \gset
SELECT receipt_name FROM mps.create_mg_rule('REGULARS', 'Regulars 10%', 'Regulars -10%', 'GLOBAL', NULL, 'PERCENTAGE', 10);
SELECT receipt_name FROM mps.create_mg_rule('REGULARS', 'Coffee 5%', 'Coffee -5%', 'CATEGORY', 'COFFEE', 'PERCENTAGE', 5);
SELECT receipt_name FROM mps.create_mg_rule('REGULARS', 'Croissant 0.30 off', 'Croissant -0.30', 'PRODUCT', 'CROISSANT', 'FIXED_AMOUNT', 0.30, 'CNY');
SELECT name FROM mps.create_stamp_activity('REGULARS', 'Every 5th coffee free', 5,
  '[{"target_type":"CATEGORY","target_id":"COFFEE"}]', '[{"target_type":"CATEGORY","target_id":"COFFEE"}]');
SELECT mps.set_member_marketing_group((SELECT id FROM mps.member_profiles WHERE name = 'Alice Chen'), 'REGULARS') AS alice_joins;
SELECT qr_plain AS qr FROM mps.rotate_card_qr(:'alice_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT tx_id AS mg_tx, raw_amount, discount_amount, final_amount FROM mps.merchant_charge_by_qr('COFFEE01', :'qr', NULL, 'demo-order-3',
  p_items := '[{"product_id":"LATTE","category_id":"COFFEE","quantity":3,"unit_price":28.00},
               {"product_id":"CROISSANT","category_id":"PASTRY","quantity":2,"unit_price":15.00}]') \gset
COMMIT;
SELECT :'raw_amount' AS items_total, :'discount_amount' AS discounts, :'final_amount' AS paid;
\echo '-- every rule applied, per line, as the receipt shows it'
SELECT l->>'product_id' AS product, l->>'quantity' AS qty, l->>'line_total' AS line_total,
       r->>'receipt_name' AS rule, r->>'calculated_amount' AS amount, l->>'final' AS line_final
FROM mps.transactions t, jsonb_array_elements(t.details->'lines') l, jsonb_array_elements(l->'applied_rules') r
WHERE t.id = :'mg_tx';
SELECT a.name AS activity, p.current_stamps, a.stamps_required
FROM mps.member_stamp_progress p JOIN mps.stamp_activities a ON a.id = p.activity_id;

\ir demo_passes.sql

\echo
\echo '== 9. Settlement of the day and the ledger check'
\echo
SELECT merchant_code, currency, gross_payments, refunds, net, fee, payout, payment_count, refund_count
FROM mps.generate_settlement('COFFEE01', date_trunc('day', now()), clock_timestamp());
SELECT count(*) AS ledger_violations FROM mps.verify_ledger();

\echo
\echo '== Audit trail: sealed into the hash chain and verified'
\echo
SELECT audit.seal() AS events_sealed;
SELECT intact, events_checked, broken_event_id, problem FROM audit.verify();
SELECT e.id, e.action, e.entity_type,
       CASE WHEN e.actor_admin THEN 'platform admin (' || e.actor_via || ')'
            WHEN e.actor_user_id = :'bob_sub' THEN 'member Bob (jwt)'
            WHEN e.actor_user_id = :'op_sub' THEN 'operator of COFFEE01 (jwt)'
            ELSE coalesce(e.actor_user_id::text, e.db_role) END AS actor,
       CASE WHEN c.event_id IS NULL THEN 'no' ELSE 'yes' END AS sealed
FROM audit.event_log e LEFT JOIN audit.chain c ON c.event_id = e.id
ORDER BY e.id;
\echo '-- the log is append-only, even for a superuser:'
SELECT * FROM pg_temp.refused($$
  UPDATE audit.event_log SET action = 'nothing.happened' WHERE id = 1
$$, 'MP901') \gx
