-- 26_usage_logs: mps.v_usage_logs, the movement log of seed 000. A member
-- sees the movements of her own cards, a merchant's operator the merchant's
-- takings, the platform admin everything, anon nothing.
\i test/fixtures/money_prelude.sql
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
