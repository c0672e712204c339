-- 30_rpc_access: who may call which RPC, called the way PostgREST calls them
-- (role switched, request.jwt.claims set), and that reads work in a
-- read-only transaction (GET).
\set admin_claims  '{"role":"service_role"}'
\set anon_claims   '{"role":"anon"}'
\set a_claims      '{"sub":"7a000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set b_claims      '{"sub":"7b000000-0000-4000-8000-00000000000b","role":"authenticated"}'
\set new_claims    '{"sub":"7c000000-0000-4000-8000-00000000000c","role":"authenticated"}'
\set op_claims     '{"sub":"70000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set forged_claims '{"sub":"7a000000-0000-4000-8000-00000000000a","role":"service_role"}'
\set ro_claims     '{"sub":"7e000000-0000-4000-8000-00000000000e","role":"authenticated"}'
\set no_sub_claims '{"role":"authenticated"}'
\set levels '[{"code":"ONE","name":"One","min_points":0,"max_points":null}]'
BEGIN;
SELECT plan(46);

-- ===== the platform admin (service_role + claims) =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT lives_ok($$SELECT mps.create_merchant('RPC01', 'Rpc Shop', p_currency := 'EUR')$$, 'admin: create_merchant');
SELECT lives_ok($$SELECT mps.update_merchant('RPC01', p_fee_bp := 120)$$, 'admin: update_merchant');
SELECT lives_ok($$SELECT mps.assign_merchant_user('RPC01', '70000000-0000-4000-8000-0000000000a1', 'operator')$$,
                'admin: assign_merchant_user');
SELECT lives_ok($$SELECT mps.create_member_profile(p_name := 'Rpc A', p_auth_user_id := '7a000000-0000-4000-8000-00000000000a')$$,
                'admin: create_member_profile linked to a user');
SELECT lives_ok($$SELECT mps.create_member_profile(p_name := 'Rpc B', p_auth_user_id := '7b000000-0000-4000-8000-00000000000b')$$,
                'admin: create_member_profile for another user');
SELECT results_eq($$SELECT code, min_points FROM mps.set_membership_levels('[{"code":"BRONZE","name":"Bronze","min_points":0,"max_points":99},{"code":"SILVER","name":"Silver","min_points":100,"max_points":null}]')$$,
                  $$VALUES ('BRONZE', 0::bigint), ('SILVER', 100::bigint)$$, 'admin: set_membership_levels');
SELECT cmp_ok(audit.seal(), '>', 0, 'admin: audit.seal seals the new events');
SELECT results_eq('SELECT intact FROM audit.verify()', ARRAY[true], 'admin: audit.verify finds the chain intact');
SELECT throws_ok($$SELECT mps.create_merchant('RPC01', 'Again')$$, 'MP403', 'merchant code already taken',
                 'admin: a duplicate merchant code is MP403');
SELECT throws_ok($$SELECT mps.create_member_profile(p_name := 'Rpc A2', p_auth_user_id := '7a000000-0000-4000-8000-00000000000a')$$,
                 'MP102', 'member profile already exists', 'admin: a second profile for a user is MP102');
SELECT c.id AS b_card FROM mps.cards c JOIN mps.card_bindings b ON b.card_id = c.id
  JOIN mps.member_profiles m ON m.id = b.member_id WHERE m.name = 'Rpc B' \gset
SELECT results_eq(format('SELECT card_type::text, level_code FROM mps.get_card(%L)', :'b_card'),
                  $$VALUES ('standard', 'BRONZE')$$, 'admin: get_card reads any card');
RESET ROLE;

-- ===== anon =====
SET LOCAL ROLE anon;
SET LOCAL request.jwt.claims = :'anon_claims';
SELECT throws_ok($$SELECT mps.create_merchant('ANON1', 'Anon')$$, '42501', NULL, 'anon: create_merchant is refused');
SELECT throws_ok('SELECT * FROM mps.get_my_cards()', '42501', NULL, 'anon: get_my_cards is refused');
SELECT throws_ok($$SELECT mps.create_member_profile(p_name := 'Anon')$$, '42501', NULL, 'anon: create_member_profile is refused');
SELECT throws_ok('SELECT * FROM mps.list_membership_levels()', '42501', NULL, 'anon: list_membership_levels is refused');
SELECT throws_ok('SELECT audit.seal()', '42501', NULL, 'anon: audit.seal is refused');
RESET ROLE;

-- ===== member A =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'a_claims';
SELECT throws_ok($$SELECT mps.create_merchant('MINE1', 'Mine')$$, '42501',
                 'permission denied: create_merchant needs a platform admin', 'member: create_merchant is refused');
SELECT throws_ok($$SELECT mps.update_merchant('RPC01', p_fee_bp := 0)$$, '42501', NULL, 'member: update_merchant is refused');
SELECT throws_ok($$SELECT mps.assign_merchant_user('RPC01', '7a000000-0000-4000-8000-00000000000a')$$, '42501', NULL,
                 'member: assign_merchant_user (to herself) is refused');
SELECT throws_ok($$SELECT mps.remove_merchant_user('RPC01', '70000000-0000-4000-8000-0000000000a1')$$, '42501', NULL,
                 'member: remove_merchant_user is refused');
SELECT throws_ok(format('SELECT mps.set_membership_levels(%L)', :'levels'), '42501', NULL, 'member: set_membership_levels is refused');
SELECT throws_ok('SELECT mps.ensure_partitions(1)', '42501', NULL, 'member: ensure_partitions is refused');
SELECT throws_ok($$SELECT mps.grant_role_privileges('mps_admin', 'authenticated')$$, '42501', NULL,
                 'member: grant_role_privileges is refused');
SELECT throws_ok('SELECT audit.verify()', '42501', NULL, 'member: audit.verify is refused');
SELECT throws_ok($$SELECT mps.create_member_profile(p_name := 'Rpc A again')$$, 'MP102', NULL,
                 'member: a second own profile is MP102');
SELECT throws_ok($$SELECT mps.create_member_profile(p_name := 'Someone', p_auth_user_id := '7d000000-0000-4000-8000-00000000000d')$$,
                 '42501', NULL, 'member: a profile for somebody else is refused');
SELECT throws_ok(format('SELECT mps.get_card(%L)', :'b_card'), 'MP201', 'card not found',
                 'member: another member''s card is MP201');
SELECT lives_ok('SELECT * FROM mps.get_my_cards()', 'member: get_my_cards');
SELECT results_eq('SELECT card_type::text, my_role::text, level_code, balance FROM mps.get_my_cards()',
                  $$VALUES ('standard', 'owner', 'BRONZE', 0.00::numeric)$$, 'member: her card, as owner, at BRONZE');
SELECT results_eq('SELECT code FROM mps.list_membership_levels()', ARRAY['BRONZE', 'SILVER'], 'member: list_membership_levels');
RESET ROLE;

-- ===== a forged service_role claim under the authenticated role =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'forged_claims';
SELECT throws_ok($$SELECT mps.create_merchant('FORGE', 'Forged')$$, '42501', NULL,
                 'a service_role claim with the authenticated role is not an admin');
RESET ROLE;

-- ===== the merchant operator =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT throws_ok($$SELECT mps.create_merchant('OPS01', 'Operator''s own')$$, '42501', NULL, 'operator: create_merchant is refused');
SELECT throws_ok($$SELECT mps.update_merchant('RPC01', p_fee_bp := 0)$$, '42501', NULL, 'operator: update_merchant of his merchant is refused');
SELECT throws_ok($$SELECT mps.assign_merchant_user('RPC01', '7f000000-0000-4000-8000-00000000000f', 'manager')$$, '42501', NULL,
                 'operator: assign_merchant_user is refused');
SELECT lives_ok($$SELECT mps.create_member_profile(p_name := 'Walk-in')$$, 'operator: registers a walk-in member');
SELECT throws_ok('SELECT * FROM mps.get_my_cards()', 'MP101', NULL, 'operator: has no member profile (MP101)');
RESET ROLE;

-- ===== authenticated without a subject; service_role without claims =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'no_sub_claims';
SELECT throws_ok($$SELECT mps.create_member_profile(p_name := 'Nobody')$$, '42501', NULL,
                 'authenticated without a subject: create_member_profile is refused');
SELECT throws_ok('SELECT * FROM mps.get_my_cards()', '42501', NULL, 'authenticated without a subject: get_my_cards is refused');
SET LOCAL request.jwt.claims = '';
SELECT throws_ok($$SELECT mps.create_member_profile(p_name := 'Nobody')$$, '42501', NULL,
                 'authenticated without claims is not trusted as a database role');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = '';
SELECT throws_ok($$SELECT mps.create_merchant('NOCLM', 'No claims')$$, '42501', NULL,
                 'service_role without claims is not an admin');
RESET ROLE;

-- ===== self sign-up =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'new_claims';
SELECT results_eq($$SELECT card_type::text, currency::text, level_code FROM mps.create_member_profile(p_name := 'New User', p_currency := 'USD')$$,
                  $$VALUES ('standard', 'USD', 'BRONZE')$$, 'a new user signs up and gets a standard USD card at BRONZE');
SELECT is((SELECT count(*) FROM mps.get_my_cards()), 1::bigint, 'and sees it with get_my_cards');
RESET ROLE;

-- ===== reads work in a read-only transaction (PostgREST GET) =====
SET LOCAL transaction_read_only = on;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'a_claims';
SELECT lives_ok('SELECT * FROM mps.get_my_cards()', 'GET get_my_cards works read-only');
SELECT lives_ok('SELECT * FROM mps.list_membership_levels()', 'GET list_membership_levels works read-only');
SET LOCAL request.jwt.claims = :'ro_claims';
SELECT throws_ok($$SELECT mps.create_member_profile(p_name := 'Read only')$$, '25006', NULL,
                 'a write RPC fails in a read-only transaction');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT lives_ok(format('SELECT * FROM mps.get_card(%L)', :'b_card'), 'GET get_card works read-only');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
