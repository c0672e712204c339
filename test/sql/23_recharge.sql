-- 23_recharge: recharge_card. Who may recharge which card (own personal or
-- prepaid card; owner and admins of a corporate card; never a voucher),
-- idempotent retries scoped to the card, amount and balance limits, card state.
-- ---- prelude (the same in every 2x money test file) -------------------------
\o /dev/null
SELECT mps.grant_role_privileges('mps_member_app', 'authenticated');
SELECT mps.grant_role_privileges('mps_merchant_api', 'authenticated');
SELECT mps.grant_role_privileges('mps_admin', 'service_role');
\o
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS mt;
GRANT USAGE ON SCHEMA mt TO PUBLIC;
-- Masks what differs between runs: uuids and timestamps.
CREATE OR REPLACE FUNCTION mt.mask(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(regexp_replace(p,
    '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
    '[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+([+-][0-9]{2}(:?[0-9]{2})?)?', '<ts>', 'g')
$$;
-- try(sql): runs it as the current role. 'ok' if it succeeds (its effects stay),
-- else 'SQLSTATE: message | detail | hint' with uuids and timestamps masked.
CREATE OR REPLACE FUNCTION mt.try(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                          v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
  RETURN mt.mask(v_state || ': ' || v_msg || ' | ' || coalesce(v_detail, '') || ' | ' || coalesce(v_hint, ''));
END
$$;
-- The platform admin charges a card with a fresh code of its owner.
CREATE OR REPLACE FUNCTION mt.admin_charge(p_card uuid, p_merchant text, p_amount numeric, p_key text)
RETURNS mps.charge_result
LANGUAGE plpgsql AS $$
DECLARE
  v_code text;
BEGIN
  SELECT q.qr_plain INTO v_code FROM mps.rotate_card_qr(p_card) q;
  RETURN mps.merchant_charge_by_qr(p_merchant, v_code, p_amount, p_key);
END
$$;
-- One card's money state, to show that a failed call changed nothing (live codes:
-- not used, not revoked, not expired).
CREATE OR REPLACE FUNCTION mt.card_state(p_card uuid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('%s balance=%s points=%s level=%s txs=%s ledger=%s live_codes=%s',
    c.status, mps_internal.to_major(c.balance, cur.exponent), c.points, coalesce(l.code, '-'),
    (SELECT count(*) FROM mps.transactions t WHERE t.card_id = c.id),
    (SELECT count(*) FROM mps.point_ledger p WHERE p.card_id = c.id),
    (SELECT count(*) FROM mps.card_qr_codes q
      WHERE q.card_id = c.id AND q.used_at IS NULL AND q.revoked_at IS NULL AND q.expires_at > now()))
  FROM mps.cards c JOIN mps.currencies cur ON cur.code = c.currency
  LEFT JOIN mps.membership_levels l ON l.id = c.level_id
  WHERE c.id = p_card
$$;
-- The money invariants over the cards created since p_since, one row per check,
-- with the number of violations (every line must read 0).
CREATE OR REPLACE FUNCTION mt.invariants(p_since timestamptz)
RETURNS TABLE (invariant text, violations bigint)
LANGUAGE sql STABLE AS $$
  WITH c AS (SELECT * FROM mps.cards WHERE created_at >= p_since),
  t AS (SELECT t.* FROM mps.transactions t WHERE t.card_id IN (SELECT id FROM c)),
  ev AS (SELECT e.action, e.after->>'tx_id' AS tx_id, e.after->>'qr_id' AS qr_id
         FROM audit.event_log e WHERE e.entity_type = 'card' AND e.entity_id IN (SELECT id::text FROM c))
  SELECT 'card balance = sum of its transactions', count(*) FROM c
   WHERE c.balance <> (SELECT coalesce(sum(t.amount), 0) FROM t WHERE t.card_id = c.id)
  UNION ALL
  SELECT 'card points = sum of its point ledger', count(*) FROM c
   WHERE c.points <> (SELECT coalesce(sum(l.delta), 0) FROM mps.point_ledger l WHERE l.card_id = c.id)
  UNION ALL
  SELECT 'no balance or points below zero', count(*) FROM c WHERE c.balance < 0 OR c.points < 0
  UNION ALL
  SELECT 'tx points_delta = its ledger rows', count(*) FROM t
   WHERE t.points_delta <> (SELECT coalesce(sum(l.delta), 0) FROM mps.point_ledger l WHERE l.tx_id = t.id)
  UNION ALL
  SELECT 'ledger rows belong to a tx of the card', count(*) FROM mps.point_ledger l
   WHERE l.card_id IN (SELECT id FROM c)
     AND NOT EXISTS (SELECT 1 FROM t WHERE t.id = l.tx_id AND t.card_id = l.card_id)
  UNION ALL
  SELECT 'payment refunded_amount <= final_amount', count(*) FROM t
   WHERE t.kind = 'payment' AND t.refunded_amount > t.final_amount
  UNION ALL
  SELECT 'payment refunded_amount = sum of its refunds', count(*) FROM t p
   WHERE p.kind = 'payment' AND p.refunded_amount <>
         (SELECT coalesce(sum(r.final_amount), 0) FROM t r WHERE r.kind = 'refund' AND r.original_tx_id = p.id)
  UNION ALL
  SELECT 'payment status matches refunded_amount', count(*) FROM t
   WHERE t.kind = 'payment' AND t.status::text <> CASE WHEN t.refunded_amount = 0 THEN 'completed'
                                                       WHEN t.refunded_amount = t.final_amount THEN 'refunded'
                                                       ELSE 'partially_refunded' END
  UNION ALL
  SELECT 'refunds reverse at most the points earned', count(*) FROM t p
   WHERE p.kind = 'payment' AND p.points_delta <
         (SELECT coalesce(-sum(r.points_delta), 0) FROM t r WHERE r.kind = 'refund' AND r.original_tx_id = p.id)
  UNION ALL
  SELECT 'fully refunded payment reversed all its points', count(*) FROM t p
   WHERE p.kind = 'payment' AND p.status = 'refunded' AND p.points_delta <>
         (SELECT coalesce(-sum(r.points_delta), 0) FROM t r WHERE r.kind = 'refund' AND r.original_tx_id = p.id)
  UNION ALL
  SELECT 'refund goes back to the card and merchant it came from', count(*) FROM t r
   WHERE r.kind = 'refund' AND NOT EXISTS (SELECT 1 FROM t p WHERE p.id = r.original_tx_id AND p.kind = 'payment'
                                          AND p.card_id = r.card_id AND p.merchant_id = r.merchant_id)
  UNION ALL
  SELECT 'standard card level = ladder(points)', count(*) FROM c
   WHERE c.card_type = 'standard' AND c.level_id IS DISTINCT FROM mps_internal.level_for_points(c.points)
  UNION ALL
  SELECT 'payment, refund, recharge audited once (tx.charge/refund/recharge)', count(*) FROM t
   WHERE t.kind IN ('payment', 'refund', 'recharge')
     AND (SELECT count(*) FROM ev WHERE ev.tx_id = t.id::text
            AND ev.action = CASE t.kind WHEN 'payment' THEN 'tx.charge' WHEN 'refund' THEN 'tx.refund'
                                        ELSE 'tx.recharge' END) <> 1
  UNION ALL
  SELECT 'every QR code issued is audited (qr.rotate)', count(*) FROM mps.card_qr_codes q
   WHERE q.card_id IN (SELECT id FROM c)
     AND (SELECT count(*) FROM ev WHERE ev.action = 'qr.rotate' AND ev.qr_id = q.id::text) <> 1
  UNION ALL
  SELECT 'a used single-use code paid exactly its one payment', count(*) FROM mps.card_qr_codes q
   WHERE q.card_id IN (SELECT id FROM c) AND q.single_use AND q.used_at IS NOT NULL
     AND (SELECT count(*) FROM t WHERE t.qr_code_id = q.id) <> 1
  UNION ALL
  SELECT 'every payment used a code of its card', count(*) FROM t
   WHERE t.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM mps.card_qr_codes q
                                           WHERE q.id = t.qr_code_id AND q.card_id = t.card_id)
  UNION ALL
  SELECT 'plain QR secrets are not stored (bcrypt hashes only)', count(*) FROM mps.card_qr_codes q
   WHERE q.card_id IN (SELECT id FROM c) AND q.secret_hash !~ '^\$2b\$[0-9]{2}\$.{53}$'
$$;
RESET client_min_messages;
-- the ladder the money tests assume (the default ladder is put back at the end)
\set test_ladder '[{"code":"BRONZE","name":"Bronze","min_points":0,"max_points":99,"discount_bp":0,"earn_rate_bp":10000},{"code":"SILVER","name":"Silver","min_points":100,"max_points":199,"discount_bp":500,"earn_rate_bp":10000},{"code":"GOLD","name":"Gold","min_points":200,"max_points":999,"discount_bp":1000,"earn_rate_bp":12000},{"code":"PLATINUM","name":"Platinum","min_points":1000,"max_points":null,"discount_bp":1500,"earn_rate_bp":15000}]'
\set default_ladder '[{"code":"BRONZE","name":"Bronze","min_points":0,"max_points":999,"discount_bp":0,"earn_rate_bp":10000},{"code":"SILVER","name":"Silver","min_points":1000,"max_points":4999,"discount_bp":300,"earn_rate_bp":10000},{"code":"GOLD","name":"Gold","min_points":5000,"max_points":19999,"discount_bp":500,"earn_rate_bp":12000},{"code":"PLATINUM","name":"Platinum","min_points":20000,"max_points":null,"discount_bp":800,"earn_rate_bp":15000}]'
SELECT now() AS t0 \gset
SELECT code, min_points, max_points, discount_bp, earn_rate_bp FROM mps.set_membership_levels(:'test_ladder');
-- ---- end of prelude ----------------------------------------------------------
-- JWT subjects
\set alice_sub '23000000-0000-4000-8000-0000000000a1'
\set bob_sub   '23000000-0000-4000-8000-0000000000b0'
\set pp_sub    '23000000-0000-4000-8000-0000000000c0'
\set op_sub    '23000000-0000-4000-8000-0000000000e1'
\set c_alice '{"sub":"23000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set c_bob   '{"sub":"23000000-0000-4000-8000-0000000000b0","role":"authenticated"}'
\set c_pp    '{"sub":"23000000-0000-4000-8000-0000000000c0","role":"authenticated"}'
\set c_op    '{"sub":"23000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set c_nobody '{"sub":"23000000-0000-4000-8000-0000000000f0","role":"authenticated"}'

-- ===== setup, as the platform admin =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'T23SHOP', p_name := 'Topup Shop');
SELECT mps.assign_merchant_user('T23SHOP', :'op_sub');
\o
SELECT member_id AS alice_member, card_id AS alice_card
FROM mps.create_member_profile(p_name := 'Alice', p_auth_user_id := :'alice_sub') \gset
SELECT member_id AS bob_member, card_id AS bob_card
FROM mps.create_member_profile(p_name := 'Bob', p_auth_user_id := :'bob_sub') \gset
SELECT member_id AS pp_member, card_id AS pp_card
FROM mps.create_member_profile(p_name := 'Pat', p_default_card_type := 'prepaid', p_auth_user_id := :'pp_sub') \gset
SELECT card_id AS jpy_card FROM mps.create_member_profile(p_name := 'Jun', p_currency := 'JPY') \gset

-- ===== a member recharges her own card =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT r::text AS rc1_row, r.tx_id AS rc1, r.tx_no ~ '^MP[0-9A-HJKMNP-TV-Z]{26}$' AS r_tx_no_format,
       r.card_id = :'alice_card' AS r_card, r.created_at BETWEEN now() AND clock_timestamp() AS r_created_in_call
FROM mps.recharge_card(p_card_id := :'alice_card', p_amount := 100.00, p_idempotency_key := 'rc-1',
                       p_payment_method := 'wechat', p_tag := '{"channel":"app"}') r \gset
COMMIT;
SELECT :'r_tx_no_format' AS tx_no_format, :'r_card' AS her_card, :'r_created_in_call' AS created_in_call;
SELECT currency, amount, balance_after FROM (SELECT (:'rc1_row'::mps.recharge_result).*) r;
-- the movement: no points, no merchant; the payment method is kept as the reason
SELECT kind, status, amount, raw_amount, final_amount, points_delta, balance_after, points_after,
       merchant_id IS NULL AS no_merchant, member_id = :'alice_member' AS member,
       actor_user_id = :'alice_sub' AS by_alice, reason, tag, idempotency_key
FROM mps.transactions WHERE id = :'rc1';
SELECT action, actor_via, actor_user_id = :'alice_sub' AS by_alice, idempotency_key,
       after->>'amount' AS amount_minor, after->>'balance_after' AS balance_minor,
       after->>'payment_method' AS payment_method, after->>'tx_id' = :'rc1' AS tx
FROM audit.event_log WHERE action = 'tx.recharge' AND entity_id = :'alice_card';

-- ===== retries: the same key and parameters give back the first result, even after the card moved =====
SELECT balance_after FROM mps.recharge_card(:'alice_card', 1.00, 'rc-admin-1');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT r IS NOT DISTINCT FROM :'rc1_row'::mps.recharge_result AS same_row, r::text = :'rc1_row' AS same_text,
       r.balance_after AS first_balance_after
FROM mps.recharge_card(p_card_id := :'alice_card', p_amount := 100.00, p_idempotency_key := 'rc-1',
                       p_payment_method := 'wechat', p_tag := '{"channel":"app"}') r;
SELECT r IS NOT DISTINCT FROM :'rc1_row'::mps.recharge_result AS same_row_100_0
FROM mps.recharge_card(:'alice_card', 100.0, 'rc-1', 'wechat', '{"channel": "app"}') r;
-- the same key with other parameters: MP501
SELECT mt.try(format('SELECT mps.recharge_card(%L, 100.01, %L, %L, %L)', :'alice_card', 'rc-1', 'wechat', '{"channel":"app"}')) AS other_amount;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 100.00, %L, %L, %L)', :'alice_card', 'rc-1', 'alipay', '{"channel":"app"}')) AS other_method;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 100.00, %L, %L)', :'alice_card', 'rc-1', 'wechat')) AS no_tag;
-- keys are required
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00)', :'alice_card')) AS no_key;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', '')) AS empty_key;
COMMIT;
SELECT mt.card_state(:'alice_card') AS alice;
-- the key is the card's: on another card the same key is a new recharge
SELECT tx_id <> :'rc1' AS new_tx, amount, balance_after FROM mps.recharge_card(:'bob_card', 100.00, 'rc-1', 'wechat', '{"channel":"app"}');

-- ===== amounts and payment methods =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 0, %L)', :'alice_card', 'rc-a1')) AS zero;
SELECT mt.try(format('SELECT mps.recharge_card(%L, -5.00, %L)', :'alice_card', 'rc-a2')) AS negative;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 1.001, %L)', :'alice_card', 'rc-a3')) AS three_decimals;
SELECT mt.try(format('SELECT mps.recharge_card(%L, %L::numeric, %L)', :'alice_card', 'NaN', 'rc-a4')) AS nan;
SELECT mt.try(format('SELECT mps.recharge_card(%L, %L::numeric, %L)', :'alice_card', '-Infinity', 'rc-a5')) AS minus_infinity;
SELECT mt.try(format('SELECT mps.recharge_card(%L, NULL, %L)', :'alice_card', 'rc-a6')) AS null_amount;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 1000000.01, %L)', :'alice_card', 'rc-a7')) AS above_max_amount;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L, %L)', :'alice_card', 'rc-a8', 'WeChat')) AS method_upper_case;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L, %L)', :'alice_card', 'rc-a9', '')) AS method_empty;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L, %L)', :'alice_card', 'rc-a10', repeat('m', 33))) AS method_33_chars;
-- the cap itself is fine
SELECT amount, balance_after FROM mps.recharge_card(:'alice_card', 1000000.00, 'rc-a11', 'bank_card');
COMMIT;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== the balance limit: up to currencies.max_balance exactly, not one unit more (MP208) =====
SELECT cur.max_amount, cur.max_balance FROM mps.currencies cur WHERE code = 'JPY';
SELECT count(*) AS recharges, max(r.balance_after) AS balance
FROM generate_series(1, 99) g, LATERAL mps.recharge_card(:'jpy_card', 10000000, 'rc-jpy-' || g) r;
SELECT balance_after FROM mps.recharge_card(:'jpy_card', 9999999, 'rc-jpy-100');
SELECT balance_after FROM mps.recharge_card(:'jpy_card', 1, 'rc-jpy-101');
SELECT mt.try(format('SELECT mps.recharge_card(%L, 1, %L)', :'jpy_card', 'rc-jpy-102')) AS one_yen_too_many;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 1.5, %L)', :'jpy_card', 'rc-jpy-103')) AS jpy_1_5;
SELECT mt.card_state(:'jpy_card') AS jpy;

-- ===== who may recharge =====
-- Bob on Alice's card, an operator, a signed-in user without a profile: 42501
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w1')) AS bob_on_alices_card;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w2')) AS operator;
SELECT set_config('request.jwt.claims', :'c_nobody', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w3')) AS user_without_profile;
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w4')) AS no_subject;
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) AS claims_set \gset
SELECT left(mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w5')), 5) AS anon;
COMMIT;
-- cards that do not exist: MP201; no card: MP003
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', '23000000-0000-4000-8000-00000000dead', 'rc-w6')) AS unknown_card;
SELECT mt.try(format('SELECT mps.recharge_card(NULL, 10.00, %L)', 'rc-w7')) AS no_card;
-- a prepaid card's owner recharges it
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT amount, balance_after FROM mps.recharge_card(:'pp_card', 50.00, 'rc-p1', 'alipay');
COMMIT;
-- a corporate card: its owner and admins recharge it, its plain members and viewers do not
INSERT INTO mps.cards (card_no, card_type, currency, enterprise_name, fixed_discount_bp)
VALUES ('7230000000000001', 'corporate', 'CNY', 'Acme Ltd', 1000) RETURNING id AS corp_card \gset
INSERT INTO mps.card_bindings (card_id, member_id, role)
VALUES (:'corp_card', :'pp_member', 'owner'), (:'corp_card', :'alice_member', 'admin'), (:'corp_card', :'bob_member', 'member');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT amount, balance_after FROM mps.recharge_card(:'corp_card', 300.00, 'rc-corp-1');
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT amount, balance_after FROM mps.recharge_card(:'corp_card', 200.00, 'rc-corp-2');
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'corp_card', 'rc-corp-3')) AS corporate_member;
COMMIT;
UPDATE mps.card_bindings SET role = 'viewer' WHERE card_id = :'corp_card' AND member_id = :'bob_member';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'corp_card', 'rc-corp-4')) AS corporate_viewer;
COMMIT;
-- a member bound to a personal card as anything but its owner does not recharge it
INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (:'alice_card', :'bob_member', 'member');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w8')) AS member_of_personal_card;
COMMIT;
DELETE FROM mps.card_bindings WHERE card_id = :'alice_card' AND member_id = :'bob_member';

-- ===== a voucher card is never recharged: MP207 =====
INSERT INTO mps.cards (card_no, card_type, currency, face_value)
VALUES ('7230000000000002', 'voucher', 'CNY', 5000) RETURNING id AS voucher_card \gset
INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (:'voucher_card', :'alice_member', 'owner');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'voucher_card', 'rc-v1')) AS owner_recharges_voucher;
COMMIT;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'voucher_card', 'rc-v2')) AS admin_recharges_voucher;
SELECT mt.card_state(:'voucher_card') AS voucher;

-- ===== card state: frozen MP202, closed MP203, expired MP204 =====
UPDATE mps.cards SET status = 'frozen' WHERE id = :'bob_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'bob_card', 'rc-s1')) AS frozen;
COMMIT;
UPDATE mps.cards SET status = 'closed' WHERE id = :'bob_card';
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'bob_card', 'rc-s2')) AS closed_by_admin;
UPDATE mps.cards SET status = 'active', expires_at = now() - interval '1 minute' WHERE id = :'bob_card';
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'bob_card', 'rc-s3')) AS expired;
UPDATE mps.cards SET expires_at = NULL WHERE id = :'bob_card';
-- the failed calls left no key behind: the same key works now
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT amount, balance_after FROM mps.recharge_card(:'bob_card', 10.00, 'rc-s1');
COMMIT;
SELECT mt.card_state(:'bob_card') AS bob;

-- ===== audit and invariants =====
SELECT count(*) AS recharge_events, count(DISTINCT after->>'tx_id') AS distinct_txs
FROM audit.event_log WHERE action = 'tx.recharge' AND entity_id = :'jpy_card';
SELECT * FROM mt.invariants(:'t0');
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
