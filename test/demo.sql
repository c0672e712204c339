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

-- ==== money-core sections go here (== 5. ..., == 6. ...), before the audit trail ====

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
DO $$
BEGIN
  UPDATE audit.event_log SET action = 'nothing.happened' WHERE id = 1;
  RAISE EXCEPTION 'the audit log accepted an UPDATE';
EXCEPTION WHEN SQLSTATE 'MP901' THEN
  RAISE NOTICE 'UPDATE refused: % (SQLSTATE %)', SQLERRM, SQLSTATE;
END
$$;
