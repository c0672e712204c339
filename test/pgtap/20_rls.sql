-- 20_rls: what each Supabase role reads directly from the tables, with
-- request.jwt.claims set as PostgREST sets them. Fixtures are made through the
-- RPCs by the platform admin (service_role) and rolled back at the end.
\set a_sub  '7a000000-0000-4000-8000-00000000000a'
\set b_sub  '7b000000-0000-4000-8000-00000000000b'
\set op_sub '70000000-0000-4000-8000-0000000000a1'
\set a_claims  '{"sub":"7a000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set b_claims  '{"sub":"7b000000-0000-4000-8000-00000000000b","role":"authenticated"}'
\set op_claims '{"sub":"70000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set forged_claims '{"sub":"7b000000-0000-4000-8000-00000000000b","role":"service_role"}'
BEGIN;
SELECT plan(29 + (SELECT count(*)::int FROM pg_class c
                  WHERE c.relnamespace = 'mps'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition));

-- ===== fixtures, as the platform admin =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = '{"role":"service_role"}';
SELECT member_id AS a_member, card_id AS a_card
FROM mps.create_member_profile(p_name := 'Tap A', p_auth_user_id := :'a_sub',
                               p_binding_user_org := 'line', p_binding_org_id := 'tap-a') \gset
SELECT member_id AS b_member, card_id AS b_card
FROM mps.create_member_profile(p_name := 'Tap B', p_auth_user_id := :'b_sub') \gset
SELECT lives_ok($$SELECT mps.create_merchant('TAP01', 'Tap Shop')$$, 'service_role creates merchant TAP01');
SELECT lives_ok($$SELECT mps.create_merchant('TAP02', 'Other Shop')$$, 'service_role creates merchant TAP02');
SELECT lives_ok(format('SELECT mps.assign_merchant_user(%L, %L)', 'TAP01', :'op_sub'),
                'service_role assigns an operator to TAP01');
-- service_role bypasses RLS: it reads every row it was granted
SELECT cmp_ok((SELECT count(*) FROM mps.cards), '>=', 2::bigint, 'service_role reads all cards');
SELECT cmp_ok((SELECT count(*) FROM mps.member_profiles), '>=', 2::bigint, 'service_role reads all profiles');
SELECT cmp_ok((SELECT count(*) FROM mps.merchants), '>=', 2::bigint, 'service_role reads all merchants');
RESET ROLE;

-- ===== member A =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'a_claims';
SELECT is((SELECT count(*) FROM mps.cards), 1::bigint, 'member A sees exactly one card in mps.cards');
SELECT results_eq('SELECT id FROM mps.cards', ARRAY[:'a_card'::uuid], 'and it is her own');
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'b_card'), 'member A cannot read member B''s card');
SELECT results_eq('SELECT id FROM mps.member_profiles', ARRAY[:'a_member'::uuid], 'member A sees only her profile');
SELECT results_eq('SELECT member_id FROM mps.card_bindings', ARRAY[:'a_member'::uuid], 'member A sees only her bindings');
SELECT results_eq('SELECT external_id FROM mps.member_external_identities', ARRAY['tap-a'], 'member A sees only her identities');
SELECT is_empty('SELECT 1 FROM mps.transactions WHERE card_id <> ALL (mps_internal.my_card_ids())',
                'member A sees no movement of another card');
SELECT is_empty('SELECT 1 FROM mps.merchants', 'member A sees no merchant');
SELECT is_empty('SELECT 1 FROM mps.merchant_users', 'member A sees no merchant user');
SELECT is_empty('SELECT 1 FROM mps.settlements', 'member A sees no settlement');
SELECT isnt_empty('SELECT 1 FROM mps.membership_levels', 'member A reads the level ladder');
SELECT isnt_empty('SELECT 1 FROM mps.currencies', 'member A reads the currencies');
SELECT results_eq('SELECT card_id FROM mps.get_my_cards()', ARRAY[:'a_card'::uuid], 'get_my_cards returns her card');
SELECT throws_ok('SELECT count(*) FROM mps.card_qr_codes', '42501', NULL, 'member A cannot read QR hashes');
SELECT throws_ok('SELECT count(*) FROM mps.idempotency_registry', '42501', NULL, 'member A cannot read the idempotency registry');
RESET ROLE;

-- ===== member B =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'b_claims';
SELECT results_eq('SELECT id FROM mps.cards', ARRAY[:'b_card'::uuid], 'member B sees only his card');
SELECT is_empty('SELECT 1 FROM mps.member_external_identities', 'member B has no identities to see');
RESET ROLE;

-- ===== the merchant operator =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT results_eq('SELECT code FROM mps.merchants', ARRAY['TAP01'], 'the operator sees only the merchant he operates');
SELECT results_eq('SELECT role::text FROM mps.merchant_users', ARRAY['operator'], 'the operator sees only his own assignment');
SELECT is_empty('SELECT 1 FROM mps.cards', 'the operator sees no card');
SELECT is_empty('SELECT 1 FROM mps.member_profiles', 'the operator sees no member profile');
RESET ROLE;

-- ===== authenticated without a subject, and a forged role claim =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = '{"role":"authenticated"}';
SELECT is((SELECT count(*) FROM mps.cards) + (SELECT count(*) FROM mps.member_profiles) + (SELECT count(*) FROM mps.merchants),
          0::bigint, 'authenticated without a subject sees nothing');
SET LOCAL request.jwt.claims = :'forged_claims';
SELECT results_eq('SELECT id FROM mps.cards', ARRAY[:'b_card'::uuid],
                  'a service_role claim under the authenticated role does not lift RLS');
RESET ROLE;

-- ===== anon: permission denied on every table =====
SET LOCAL ROLE anon;
SET LOCAL request.jwt.claims = '{"role":"anon"}';
SELECT throws_ok(format('SELECT count(*) FROM %s', c.oid::regclass), '42501', NULL,
                 format('anon may not read %s', c.oid::regclass))
FROM pg_class c
WHERE c.relnamespace = 'mps'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname;
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
