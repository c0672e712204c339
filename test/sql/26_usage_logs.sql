-- 26_usage_logs: mps.v_usage_logs, the movement log of seed 000. A member
-- sees the movements of her own cards, a merchant's operator the merchant's
-- takings, the platform admin everything, anon nothing.
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
\set alice_sub '26000000-0000-4000-8000-0000000000a1'
\set bob_sub   '26000000-0000-4000-8000-0000000000b0'
\set opa_sub   '26000000-0000-4000-8000-0000000000e1'
\set opb_sub   '26000000-0000-4000-8000-0000000000e2'
\set c_alice '{"sub":"26000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set c_bob   '{"sub":"26000000-0000-4000-8000-0000000000b0","role":"authenticated"}'
\set c_opa   '{"sub":"26000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set c_opb   '{"sub":"26000000-0000-4000-8000-0000000000e2","role":"authenticated"}'
\set c_nobody '{"sub":"26000000-0000-4000-8000-0000000000f0","role":"authenticated"}'

-- ===== some movements, by the platform admin =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'U26A', p_name := 'Usage Shop A');
SELECT mps.create_merchant(p_code := 'U26B', p_name := 'Usage Shop B');
SELECT mps.assign_merchant_user('U26A', :'opa_sub');
SELECT mps.assign_merchant_user('U26B', :'opb_sub');
\o
SELECT card_id AS alice_card FROM mps.create_member_profile(p_name := 'Alice', p_auth_user_id := :'alice_sub') \gset
SELECT card_id AS bob_card FROM mps.create_member_profile(p_name := 'Bob', p_auth_user_id := :'bob_sub') \gset
SELECT balance_after FROM mps.recharge_card(:'alice_card', 300, 'u26-topup-alice');
SELECT balance_after FROM mps.recharge_card(:'bob_card', 100, 'u26-topup-bob');
SELECT tx_id AS a_pay, final_amount FROM mt.admin_charge(:'alice_card', 'U26A', 50.00, 'u26-a1') \gset
SELECT final_amount FROM mt.admin_charge(:'alice_card', 'U26B', 20.00, 'u26-a2');
SELECT final_amount FROM mt.admin_charge(:'bob_card', 'U26A', 30.00, 'u26-b1');
SELECT refund_amount FROM mps.merchant_refund_tx('U26A', :'a_pay', 10.00, 'u26-r1', 'wrong size');

-- ===== Alice sees her card's movements, all of them, and nobody else's =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT kind, status, card_type, merchant_code, merchant_name, currency, amount, raw_amount, final_amount,
       refunded_amount, balance_after, points_delta, reason, tx_no ~ '^MP[0-9A-HJKMNP-TV-Z]{26}$' AS tx_no_format
FROM mps.v_usage_logs ORDER BY created_at;
SELECT count(*) AS rows, bool_and(card_id = :'alice_card') AS all_her_card FROM mps.v_usage_logs;
COMMIT;
-- ===== Bob: his two =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT kind, merchant_code, amount, balance_after FROM mps.v_usage_logs ORDER BY created_at;
COMMIT;
-- ===== the operator of U26A: U26A's payments and refunds, of any card; no recharges =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_opa', true) AS claims_set \gset
SELECT kind, merchant_code, card_id = :'alice_card' AS alices_card, amount, final_amount, refunded_amount
FROM mps.v_usage_logs ORDER BY created_at;
COMMIT;
-- ===== the operator of U26B: one payment =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_opb', true) AS claims_set \gset
SELECT kind, merchant_code, amount FROM mps.v_usage_logs ORDER BY created_at;
COMMIT;
-- ===== a signed-in user with neither cards nor a merchant; no subject; no claims: nothing =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_nobody', true) AS claims_set \gset
SELECT count(*) AS rows_for_a_stranger FROM mps.v_usage_logs;
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true) AS claims_set \gset
SELECT count(*) AS rows_without_subject FROM mps.v_usage_logs;
SELECT set_config('request.jwt.claims', '', true) AS claims_set \gset
SELECT count(*) AS rows_without_claims FROM mps.v_usage_logs;
-- claiming service_role from the authenticated role does not make an admin
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) AS claims_set \gset
SELECT count(*) AS rows_for_fake_service_role FROM mps.v_usage_logs;
COMMIT;
-- ===== the view filters before anything the caller adds (security barrier) =====
-- A function of the caller's own, cheaper than the view's filter, must still see
-- only the caller's rows: it counts the rows it is shown.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_nobody', true) AS claims_set \gset
CREATE FUNCTION pg_temp.peek(uuid) RETURNS boolean
LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
  PERFORM set_config('peek.rows', (coalesce(nullif(current_setting('peek.rows', true), ''), '0')::int + 1)::text, true);
  RETURN true;
END
$$;
SELECT count(*) AS rows_returned FROM mps.v_usage_logs WHERE pg_temp.peek(card_id);
SELECT coalesce(nullif(current_setting('peek.rows', true), ''), '0') AS rows_the_strangers_function_saw;
SELECT set_config('peek.rows', '0', true) AS reset \gset
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT count(*) AS rows_returned FROM mps.v_usage_logs WHERE pg_temp.peek(card_id);
SELECT current_setting('peek.rows', true) AS rows_alices_function_saw;
ROLLBACK;
-- ===== anon may not read it at all: 42501 =====
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) AS claims_set \gset
SELECT left(mt.try('SELECT count(*) FROM mps.v_usage_logs'), 5) AS anon_reads;
COMMIT;
-- ===== the platform admin (superuser, or the service_role key) sees every movement =====
SELECT count(*) = (SELECT count(*) FROM mps.transactions) AS admin_sees_all FROM mps.v_usage_logs;
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) AS claims_set \gset
SELECT count(*) AS service_role_rows_u26 FROM mps.v_usage_logs WHERE merchant_code IN ('U26A', 'U26B')
   OR card_id IN (:'alice_card', :'bob_card');
COMMIT;
SELECT count(*) AS all_rows_u26 FROM mps.v_usage_logs WHERE merchant_code IN ('U26A', 'U26B')
   OR card_id IN (:'alice_card', :'bob_card');
-- the log's amounts are the ledger's, in major units
SELECT count(*) AS rows_that_differ FROM mps.v_usage_logs v JOIN mps.transactions t ON t.id = v.tx_id
WHERE v.amount * 100 <> t.amount AND t.currency = 'CNY';
SELECT * FROM mt.invariants(:'t0');
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
