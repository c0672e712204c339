-- 11_merchants: create_merchant, update_merchant, assign_merchant_user,
-- remove_merchant_user; all platform admin only.
\set op_sub     '0be2a702-0000-4000-8000-0000000000a2'
\set mgr_sub    '0be2a702-0000-4000-8000-0000000000a3'
\set member_sub 'ee000000-0000-4000-8000-0000000000e1'

-- ===== create_merchant =====
-- the platform admin as a superuser without claims; defaults filled in
SELECT code, name, status, currency, settlement_mode, timezone, fee_bp
FROM mps.create_merchant(p_code := ' shop01 ', p_name := ' Coffee One ');
-- the platform admin through PostgREST: service_role with its claims
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS service_role;
SELECT code, name, status, currency, settlement_mode, timezone, fee_bp
FROM mps.create_merchant(p_code := 'SHOP02', p_name := 'Tapas Dos', p_currency := 'eur',
                         p_settlement_mode := 'realtime', p_timezone := 'Europe/Madrid', p_fee_bp := 150);
COMMIT;
-- a database role in mps_admin counts as platform admin too (psql, pg_cron)
CREATE ROLE regress_mps_backoffice NOLOGIN IN ROLE mps_admin;
SET ROLE regress_mps_backoffice;
SELECT code, currency, settlement_mode FROM mps.create_merchant('SHOP03', 'Noodle Bar', 'JPY', 'monthly', 'Asia/Tokyo', 0);
RESET ROLE;
DROP ROLE regress_mps_backoffice;
-- who did it, as the audit log saw it
SELECT e.after->>'code' AS code, e.action, e.actor_via, e.actor_admin, e.actor_user_id IS NULL AS no_user
FROM audit.event_log e WHERE e.action = 'merchant.create' ORDER BY e.id;

-- input errors: nothing changes
SELECT test_counts() AS before \gset
SELECT test_err($$SELECT mps.create_merchant('A', 'Too short')$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP 04', 'Has a space')$$);
SELECT test_err($$SELECT mps.create_merchant('shop.04', 'Has a dot')$$);
SELECT test_err($$SELECT mps.create_merchant(repeat('X', 33), 'Too long')$$);
SELECT test_err($$SELECT mps.create_merchant(NULL, 'No code')$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP04', NULL)$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP04', '  ')$$);
SELECT split_part(test_err($$SELECT mps.create_merchant('SHOP04', repeat('n', 201))$$), E'\n', 1) AS too_long;
SELECT test_err($$SELECT mps.create_merchant('SHOP01', 'Duplicate')$$);
SELECT test_err($$SELECT mps.create_merchant('shop01', 'Duplicate, other case')$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP04', 'Bad mode', p_settlement_mode := 'weekly')$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP04', 'Bad zone', p_timezone := 'Mars/Olympus_Mons')$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP04', 'Bad fee', p_fee_bp := -1)$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP04', 'Bad fee', p_fee_bp := 10001)$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP04', 'Bad currency', p_currency := 'XYZ')$$);
SELECT test_err($$SELECT mps.create_merchant('SHOP04', 'Bad currency', p_currency := 'DOLLAR')$$);
SELECT test_counts() = :'before' AS nothing_changed;
-- edge values that are accepted
SELECT code, fee_bp, settlement_mode FROM mps.create_merchant('S_4-X', 'Edge', p_fee_bp := 10000, p_settlement_mode := NULL, p_timezone := NULL);

-- ===== update_merchant =====
SELECT code, name, status, currency, settlement_mode, timezone, fee_bp
FROM mps.update_merchant('SHOP01', p_name := 'Coffee One Plus', p_status := 'suspended',
                         p_settlement_mode := 'monthly', p_timezone := 'Asia/Shanghai', p_fee_bp := 60);
-- only what is passed changes
SELECT code, name, status, currency, settlement_mode, timezone, fee_bp
FROM mps.update_merchant(' shop01', p_status := 'active');
-- the audit event keeps before and after
SELECT e.before->>'status' AS status_before, e.after->>'status' AS status_after,
       e.before->>'fee_bp' AS fee_before, e.after->>'fee_bp' AS fee_after
FROM audit.event_log e WHERE e.action = 'merchant.update' ORDER BY e.id;
SELECT test_counts() AS before \gset
SELECT test_err($$SELECT mps.update_merchant('NOPE', p_name := 'x')$$);
SELECT test_err($$SELECT mps.update_merchant(NULL, p_name := 'x')$$);
SELECT test_err($$SELECT mps.update_merchant('SHOP01', p_status := 'deleted')$$);
SELECT test_err($$SELECT mps.update_merchant('SHOP01', p_settlement_mode := 'hourly')$$);
SELECT test_err($$SELECT mps.update_merchant('SHOP01', p_timezone := 'Nowhere/Land')$$);
SELECT test_err($$SELECT mps.update_merchant('SHOP01', p_fee_bp := 20000)$$);
SELECT test_err($$SELECT mps.update_merchant('SHOP01', p_name := '')$$);
SELECT test_counts() = :'before' AS nothing_changed;
SELECT name, status, fee_bp FROM mps.merchants WHERE code = 'SHOP01';

-- ===== assign_merchant_user / remove_merchant_user =====
SELECT user_id = :'op_sub' AS is_op, role FROM mps.assign_merchant_user('SHOP01', :'op_sub');
SELECT user_id = :'mgr_sub' AS is_mgr, role FROM mps.assign_merchant_user('SHOP01', :'mgr_sub', 'manager');
-- assigning again changes the role, still one row
SELECT role FROM mps.assign_merchant_user('SHOP01', :'op_sub', 'manager');
SELECT role FROM mps.assign_merchant_user('shop01', :'op_sub', 'operator');
SELECT m.code, u.role, count(*) OVER () AS rows
FROM mps.merchant_users u JOIN mps.merchants m ON m.id = u.merchant_id
WHERE u.user_id = :'op_sub';
-- one user may operate several merchants
SELECT role FROM mps.assign_merchant_user('SHOP02', :'op_sub');
-- the audit events: first assignment has no "before", a change has one
SELECT e.before->>'role' AS role_before, e.after->>'role' AS role_after
FROM audit.event_log e WHERE e.action = 'merchant_user.assign' AND e.after->>'user_id' = :'op_sub'
ORDER BY e.id;
SELECT test_counts() AS before \gset
SELECT test_err(format('SELECT mps.assign_merchant_user(%L, %L, %L)', 'SHOP01', :'op_sub', 'owner'));
SELECT test_err(format('SELECT mps.assign_merchant_user(%L, %L, NULL)', 'SHOP01', :'op_sub'));
SELECT test_err(format('SELECT mps.assign_merchant_user(%L, %L, %L)', 'SHOP01', :'op_sub', 'Manager'));
SELECT test_err($$SELECT mps.assign_merchant_user('SHOP01', NULL)$$);
SELECT test_err(format('SELECT mps.assign_merchant_user(%L, %L)', 'NOPE', :'op_sub'));
SELECT test_err(format('SELECT mps.remove_merchant_user(%L, %L)', 'NOPE', :'op_sub'));
SELECT test_counts() = :'before' AS nothing_changed;
-- removing: true once, then false (and no audit event for the no-op)
SELECT mps.remove_merchant_user('SHOP02', :'op_sub') AS removed;
SELECT mps.remove_merchant_user('SHOP02', :'op_sub') AS removed_again;
SELECT mps.remove_merchant_user('SHOP02', :'member_sub') AS never_assigned;
SELECT count(*) AS remove_events, min(e.before->>'role') AS removed_role
FROM audit.event_log e WHERE e.action = 'merchant_user.remove';
SELECT m.code, u.role FROM mps.merchant_users u JOIN mps.merchants m ON m.id = u.merchant_id
WHERE u.user_id = :'op_sub';

-- ===== nobody else may manage merchants: 42501 =====
\o /dev/null
SELECT mps.create_member_profile('Member E', p_auth_user_id := :'member_sub');
\o
SELECT test_counts() AS before \gset
-- a merchant manager of SHOP01
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'mgr_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_manager;
SELECT test_err($$SELECT mps.create_merchant('SHOP09', 'Mine')$$);
SELECT test_err($$SELECT mps.update_merchant('SHOP01', p_fee_bp := 0)$$);
SELECT test_err(format('SELECT mps.assign_merchant_user(%L, %L)', 'SHOP01', :'member_sub'));
SELECT test_err(format('SELECT mps.remove_merchant_user(%L, %L)', 'SHOP01', :'op_sub'));
COMMIT;
-- a member
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'member_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_member;
SELECT test_err($$SELECT mps.create_merchant('SHOP09', 'Mine')$$);
SELECT test_err($$SELECT mps.update_merchant('SHOP01', p_fee_bp := 0)$$);
COMMIT;
-- an authenticated request whose claims say service_role
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'member_sub' || '","role":"service_role"}', true) IS NOT NULL AS forged;
SELECT test_err($$SELECT mps.create_merchant('SHOP09', 'Mine')$$);
COMMIT;
-- authenticated without claims (not trusted as a database role either)
BEGIN;
SET LOCAL ROLE authenticated;
SELECT test_err($$SELECT mps.create_merchant('SHOP09', 'Mine')$$);
COMMIT;
-- service_role without claims is not in mps_admin
BEGIN;
SET LOCAL ROLE service_role;
SELECT test_err($$SELECT mps.create_merchant('SHOP09', 'Mine')$$);
COMMIT;
-- anon
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) IS NOT NULL AS anon;
SELECT test_err($$SELECT mps.create_merchant('SHOP09', 'Mine')$$);
COMMIT;
SELECT test_counts() = :'before' AS nothing_changed;
