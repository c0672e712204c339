-- 22_refund: merchant_refund_tx. Partial refunds up to the paid amount, the
-- payment's refunded total and status, proportional point reversal (the level
-- can go down), idempotent retries, and what may not be refunded by whom.
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
\set alice_sub '22000000-0000-4000-8000-0000000000a1'
\set bob_sub   '22000000-0000-4000-8000-0000000000b0'
\set op_sub    '22000000-0000-4000-8000-0000000000e1'
\set op2_sub   '22000000-0000-4000-8000-0000000000e2'
\set c_alice '{"sub":"22000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set c_op    '{"sub":"22000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set c_op2   '{"sub":"22000000-0000-4000-8000-0000000000e2","role":"authenticated"}'

-- ===== setup, as the platform admin =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'R22SHOP', p_name := 'Refund Shop');
SELECT mps.create_merchant(p_code := 'R22OTHER', p_name := 'Other Shop');
SELECT mps.assign_merchant_user('R22SHOP', :'op_sub');
SELECT mps.assign_merchant_user('R22OTHER', :'op2_sub');
\o
SELECT member_id AS alice_member, card_id AS alice_card
FROM mps.create_member_profile(p_name := 'Alice', p_auth_user_id := :'alice_sub') \gset
SELECT card_id AS bob_card FROM mps.create_member_profile(p_name := 'Bob', p_auth_user_id := :'bob_sub') \gset
SELECT tx_id AS recharge_tx, balance_after FROM mps.recharge_card(:'alice_card', 1000, 'r22-topup-alice') \gset
SELECT balance_after FROM mps.recharge_card(:'bob_card', 100, 'r22-topup-bob');
-- a payment of 199.00 at BRONZE earns 199 points: SILVER (100..199)
SELECT qr_plain AS code1 FROM mps.rotate_card_qr(:'alice_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT tx_id AS pay1, final_amount AS r_final, balance_after AS r_balance, points_after AS r_points, level_after AS r_level
FROM mps.merchant_charge_by_qr('R22SHOP', :'code1', 199.00, 'r22-c1') \gset
COMMIT;
SELECT :'r_final' AS paid, :'r_balance' AS balance_after, :'r_points' AS points_after, :'r_level' AS level_after;

-- ===== a first partial refund: 50.00 of 199.00 =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT r::text AS rf1_row, r.tx_id AS rf1, r.tx_no ~ '^MP[0-9A-HJKMNP-TV-Z]{26}$' AS r_tx_no_format,
       r.original_tx_id = :'pay1' AS r_original, r.card_id = :'alice_card' AS r_card,
       r.created_at BETWEEN now() AND clock_timestamp() AS r_created_in_call
FROM mps.merchant_refund_tx(p_merchant_code := 'R22SHOP', p_tx_id := :'pay1', p_refund_amount := 50.00,
                            p_idempotency_key := 'r22-r1', p_reason := 'one item returned') r \gset
COMMIT;
SELECT :'r_tx_no_format' AS tx_no_format, :'r_original' AS original_is_pay1, :'r_card' AS to_alices_card,
       :'r_created_in_call' AS created_in_call;
-- 50 of 199 points come back off the card (floor(199 * 50 / 199) = 50); still SILVER
SELECT currency, refund_amount, refunded_total, refundable_remaining, original_status, balance_after,
       points_reversed, points_after, level_before, level_after, level_changed
FROM (SELECT (:'rf1_row'::mps.refund_result).*) r;
-- the refund row and the payment it belongs to
SELECT kind, status, amount, raw_amount, discount_amount, final_amount, points_delta, balance_after, points_after,
       original_tx_id = :'pay1' AS original, reason, idempotency_key, actor_user_id = :'op_sub' AS by_operator,
       member_id = :'alice_member' AS member, details
FROM mps.transactions WHERE id = :'rf1';
SELECT status, final_amount, refunded_amount FROM mps.transactions WHERE id = :'pay1';

-- ===== retries and conflicts =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT r IS NOT DISTINCT FROM :'rf1_row'::mps.refund_result AS same_row, r::text = :'rf1_row' AS same_text
FROM mps.merchant_refund_tx(p_merchant_code := 'R22SHOP', p_tx_id := :'pay1', p_refund_amount := 50.00,
                            p_idempotency_key := 'r22-r1', p_reason := 'one item returned') r;
-- the same key with another amount or reason: MP501; a charge's key for a refund: MP501
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 50.01, %L, %L)', 'R22SHOP', :'pay1', 'r22-r1', 'one item returned')) AS other_amount;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 50.00, %L)', 'R22SHOP', :'pay1', 'r22-r1')) AS other_reason;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay1', 'r22-c1')) AS charge_key;
-- more than is left (149.00): MP503
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 149.01, %L)', 'R22SHOP', :'pay1', 'r22-r2')) AS exceeds;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 199.00, %L)', 'R22SHOP', :'pay1', 'r22-r2')) AS the_whole_again;
COMMIT;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== a second partial refund: 100.00; 49 points are left, BRONZE again =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT refund_amount, refunded_total, refundable_remaining, original_status, balance_after,
       points_reversed, points_after, level_before, level_after, level_changed
FROM mps.merchant_refund_tx('R22SHOP', :'pay1', 100.00, 'r22-r2');
-- ===== the rest: 49.00; the payment is refunded in full, all 199 points reversed =====
SELECT refund_amount, refunded_total, refundable_remaining, original_status, balance_after,
       points_reversed, points_after, level_before, level_after, level_changed
FROM mps.merchant_refund_tx('R22SHOP', :'pay1', 49.00, 'r22-r3');
-- nothing is left: MP504, whatever the amount
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 0.01, %L)', 'R22SHOP', :'pay1', 'r22-r4')) AS fully_refunded;
-- the first refund's key still replays the first refund as it was
SELECT r IS NOT DISTINCT FROM :'rf1_row'::mps.refund_result AS first_refund_replayed, r.original_status,
       r.refundable_remaining
FROM mps.merchant_refund_tx('R22SHOP', :'pay1', 50.00, 'r22-r1', 'one item returned') r;
COMMIT;
SELECT status, final_amount, refunded_amount FROM mps.transactions WHERE id = :'pay1';
SELECT t.kind, t.amount, t.points_delta, t.balance_after, t.points_after, l.delta AS ledger_delta, l.reason
FROM mps.transactions t LEFT JOIN mps.point_ledger l ON l.tx_id = t.id
WHERE t.card_id = :'alice_card' ORDER BY t.created_at, t.balance_after;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== what is not refundable =====
SELECT id AS rf3 FROM mps.transactions WHERE idempotency_key = 'r22-r3' AND card_id = :'alice_card' \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
-- a refund: MP504
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'rf3', 'r22-n1')) AS refund_of_refund;
-- a recharge was taken by no merchant: MP404
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'recharge_tx', 'r22-n2')) AS refund_of_recharge;
-- no such transaction: MP505 (ids of any shape)
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', '01890000-0000-7000-8000-000000000000', 'r22-n3')) AS unknown_v7_id;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', '00000000-0000-0000-0000-000000000000', 'r22-n4')) AS nil_uuid;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'r22-n5')) AS max_uuid;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', '7fffffff-ffff-4fff-bfff-ffffffffffff', 'r22-n6')) AS v4_uuid;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, NULL, 1.00, %L)', 'R22SHOP', 'r22-n7')) AS no_tx_id;
COMMIT;

-- ===== a payment with a discount: at most the final amount comes back =====
SELECT final_amount, points_after, level_after FROM mt.admin_charge(:'alice_card', 'R22SHOP', 150.00, 'r22-c2');
SELECT tx_id AS pay2, raw_amount, discount_amount, final_amount, points_earned, points_after, level_after
FROM mt.admin_charge(:'alice_card', 'R22SHOP', 100.00, 'r22-c3') \gset
SELECT :'raw_amount' AS raw_amount, :'discount_amount' AS discount, :'final_amount' AS final_amount,
       :'points_earned' AS points_earned, :'points_after' AS points_after, :'level_after' AS level_after;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 95.01, %L)', 'R22SHOP', :'pay2', 'r22-d1')) AS more_than_paid;
-- the whole 95.00: its 95 points go, GOLD falls back to SILVER
SELECT refund_amount, refundable_remaining, original_status, points_reversed, points_after, level_before,
       level_after, level_changed
FROM mps.merchant_refund_tx('R22SHOP', :'pay2', 95.00, 'r22-d2');
COMMIT;

-- ===== proportional reversal in thirds: the cumulative floor reverses exactly what was earned =====
SELECT tx_id AS pay3, final_amount, points_earned FROM mt.admin_charge(:'bob_card', 'R22SHOP', 10.00, 'r22-c4') \gset
SELECT :'final_amount' AS paid, :'points_earned' AS points_earned;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT n, r.refund_amount, r.refunded_total, r.points_reversed, r.points_after, r.original_status
FROM (VALUES (1, 3.33), (2, 3.33), (3, 3.34)) v(n, amount),
     LATERAL mps.merchant_refund_tx('R22SHOP', :'pay3', v.amount, 'r22-t' || v.n) r
ORDER BY n;
COMMIT;

-- ===== who may refund =====
SELECT tx_id AS pay4 FROM mt.admin_charge(:'bob_card', 'R22SHOP', 20.00, 'r22-c5') \gset
-- the other merchant's operator: MP404 at their merchant, 42501 at ours
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op2', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22OTHER', :'pay4', 'r22-w1')) AS other_merchants_tx;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay4', 'r22-w2')) AS not_my_merchant;
-- the member who paid is not a merchant user
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay4', 'r22-w3')) AS member_refunds;
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) AS claims_set \gset
SELECT left(mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay4', 'r22-w4')), 5) AS anon_refunds;
COMMIT;
-- bad input: MP001 amounts, MP506 keys, MP004 reason, MP401 merchant
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 0, %L)', 'R22SHOP', :'pay4', 'r22-i1')) AS zero;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, -1.00, %L)', 'R22SHOP', :'pay4', 'r22-i2')) AS negative;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.001, %L)', 'R22SHOP', :'pay4', 'r22-i3')) AS three_decimals;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, NULL, %L)', 'R22SHOP', :'pay4', 'r22-i4')) AS null_amount;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, %L::numeric, %L)', 'R22SHOP', :'pay4', 'NaN', 'r22-i5')) AS nan;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00)', 'R22SHOP', :'pay4')) AS no_key;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay4', '')) AS empty_key;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L, %L)', 'R22SHOP', :'pay4', 'r22-i6', repeat('x', 501))) AS reason_501_bytes;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'NOPE22', :'pay4', 'r22-i7')) AS unknown_merchant;
COMMIT;
SELECT mt.card_state(:'bob_card') AS bob;

-- ===== the card's state: a frozen card takes its refund, a closed one does not (MP203) =====
UPDATE mps.cards SET status = 'frozen' WHERE id = :'bob_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT refund_amount, balance_after, original_status FROM mps.merchant_refund_tx('R22SHOP', :'pay4', 5.00, 'r22-f1');
COMMIT;
UPDATE mps.cards SET status = 'closed' WHERE id = :'bob_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 5.00, %L)', 'R22SHOP', :'pay4', 'r22-f2')) AS closed_card;
COMMIT;
UPDATE mps.cards SET status = 'active' WHERE id = :'bob_card';
-- a suspended merchant refunds no more: MP402
\o /dev/null
SELECT mps.update_merchant('R22OTHER', p_status := 'suspended');
\o
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op2', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22OTHER', :'pay4', 'r22-f3')) AS suspended_merchant;
COMMIT;
SELECT mt.card_state(:'bob_card') AS bob;

-- ===== audit and invariants =====
SELECT after->>'amount' AS amount_minor, after->>'refunded_total' AS refunded_total_minor,
       after->>'points_delta' AS points_delta, after->>'reason' AS reason, idempotency_key,
       actor_user_id = :'op_sub' AS by_operator, after->>'original_tx_id' = :'pay1' AS of_pay1
FROM audit.event_log WHERE action = 'tx.refund' AND entity_id = :'alice_card' ORDER BY id;
SELECT action, count(*) AS events FROM audit.event_log
WHERE entity_id IN (:'alice_card', :'bob_card') AND action LIKE 'tx.%'
GROUP BY action ORDER BY action;
SELECT * FROM mt.invariants(:'t0');
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
