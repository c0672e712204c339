-- 53_privacy: what a caller may read of others, through the PostgREST path.
-- Secrets (hashes of binding passwords, QR secrets, request hashes) are
-- readable by no API role; a merchant's users find only its own customers,
-- with their contact data masked; only the platform admin links external
-- identities, and nobody else learns whether an identity exists.
\set admin_claims  '{"role":"service_role"}'
\set alice_sub     '53000000-0000-4000-8000-0000000000a1'
\set alice_claims  '{"sub":"53000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set vic_sub       '53000000-0000-4000-8000-0000000000a2'
\set vic_claims    '{"sub":"53000000-0000-4000-8000-0000000000a2","role":"authenticated"}'
\set eve_claims    '{"sub":"53000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set opa_sub       '53000000-0000-4000-8000-0000000000f1'
\set opa_claims    '{"sub":"53000000-0000-4000-8000-0000000000f1","role":"authenticated"}'
\set opb_sub       '53000000-0000-4000-8000-0000000000f2'
\set opb_claims    '{"sub":"53000000-0000-4000-8000-0000000000f2","role":"authenticated"}'
BEGIN;
SELECT plan(37);

-- ===== setup, as the platform admin =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT mps.create_merchant('PRIVA', 'Shop A') IS NOT NULL AS a \gset
SELECT mps.create_merchant('PRIVB', 'Shop B') IS NOT NULL AS b \gset
SELECT mps.assign_merchant_user('PRIVA', :'opa_sub', 'operator') IS NOT NULL AS opa \gset
SELECT mps.assign_merchant_user('PRIVB', :'opb_sub', 'operator') IS NOT NULL AS opb \gset
SELECT member_id AS alice, card_id AS alice_card FROM mps.create_member_profile(
  p_name := 'Alice Private', p_phone := '+8613800005301', p_email := 'alice.p@example.com',
  p_auth_user_id := :'alice_sub', p_binding_user_org := 'wechat', p_binding_org_id := 'wx-alice-53') \gset
SELECT member_id AS vic FROM mps.create_member_profile(p_name := 'Vic Viewer', p_phone := '+8613800005302',
  p_auth_user_id := :'vic_sub') \gset
SELECT card_id AS corp FROM mps.issue_card(p_card_type := 'corporate', p_owner_member_id := :'alice',
  p_enterprise_name := 'Private Ltd', p_binding_password := 'correct horse battery') \gset
SELECT mps.bind_card_member(:'corp', :'vic', 'viewer') IS NOT NULL AS bound \gset
SELECT amount IS NOT NULL AS funded FROM mps.recharge_card(:'alice_card', 50.00, 'p53-fund', 'cash') \gset
SELECT card_no AS alice_card_no FROM mps.get_card(:'alice_card') \gset
RESET ROLE;
-- Alice pays at shop A once: she becomes one of its customers.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'alice_claims';
SELECT qr_plain AS alice_qr FROM mps.rotate_card_qr(:'alice_card') \gset
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opa_claims';
SELECT tx_id IS NOT NULL AS paid FROM mps.merchant_charge_by_qr('PRIVA', :'alice_qr', 5.00, 'p53-pay') \gset
RESET ROLE;
-- Shop B registers a walk-in at its till.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opb_claims';
SELECT member_id AS walker FROM mps.create_member_profile(p_name := 'Walk In', p_phone := '+8613900005303') \gset
RESET ROLE;

-- ===== item 9: secrets are never readable =====
-- The card's viewer asks for its binding password hash.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'vic_claims';
SELECT throws_ok('SELECT binding_password_hash FROM mps.cards', '42501', NULL,
                 'a corporate card''s viewer cannot read binding_password_hash');
SELECT results_eq(format('SELECT id, card_type::text FROM mps.cards WHERE id = %L', :'corp'),
                  format($$VALUES (%L::uuid, 'corporate')$$, :'corp'),
                  'and still reads the card''s other columns (RLS unchanged)');
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'alice_card'),
                'and still sees no card she is not bound to');
RESET ROLE;
-- The secret columns this version has, by name: they exist (so the checks
-- below cannot pass for want of them) ...
CREATE TEMP TABLE p53_secret_cols (nsp name, rel name, col name);
INSERT INTO p53_secret_cols VALUES ('mps', 'cards', 'binding_password_hash'), ('mps', 'card_qr_codes', 'secret_hash'),
  ('mps', 'idempotency_registry', 'request_hash'), ('audit', 'chain', 'hash');
SELECT is((SELECT count(*)::int FROM p53_secret_cols s
           JOIN pg_namespace n ON n.nspname = s.nsp JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.rel
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.col AND NOT a.attisdropped), 4,
          'the listed secret columns exist');
-- ... and every column any API role may SELECT, in every table and view of
-- mps, mps_internal and audit, is neither one of them nor named like a secret.
CREATE TEMP VIEW p53_readable AS
  SELECT r.rolname, n.nspname AS nsp, c.relname AS rel, a.attname AS col
  FROM pg_roles r
  CROSS JOIN pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  WHERE r.rolname IN ('anon', 'authenticated', 'service_role', 'mps_member_app', 'mps_merchant_api', 'mps_admin')
    AND n.nspname IN ('mps', 'mps_internal', 'audit')
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND has_column_privilege(r.oid, c.oid, a.attnum, 'SELECT');
GRANT SELECT ON p53_readable, p53_secret_cols TO PUBLIC;
SELECT cmp_ok((SELECT count(*) FROM p53_readable WHERE rolname = 'authenticated'), '>', 50::bigint,
              'authenticated reads columns (the check below looks at real grants)');
SELECT is_empty($$SELECT rolname, nsp, rel, col FROM p53_readable r
                  WHERE col ~* '(hash|secret|passw|token|salt|signature|api_?key)'
                     OR EXISTS (SELECT 1 FROM p53_secret_cols s WHERE (s.nsp, s.rel, s.col) = (r.nsp, r.rel, r.col))$$,
                'no API role (anon, authenticated, service_role, the group roles, mps_admin) can SELECT a hash or secret column');
SELECT ok(NOT has_column_privilege('service_role', (SELECT c.oid FROM pg_class c WHERE c.relname = 'cards' AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'mps')), 'binding_password_hash', 'SELECT'),
          'service_role (the platform admin''s key) cannot read binding_password_hash either');
-- The platform admin still reads the cards (without the hash) and still sets and checks passwords.
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT cmp_ok((SELECT count(*) FROM mps.cards WHERE id IN (:'corp', :'alice_card')), '=', 2::bigint,
              'service_role reads card rows');
RESET ROLE;

-- ===== item 10: merchants see their own customers only =====
-- Shop B's operator: Alice never paid, bought or registered there.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opb_claims';
SELECT throws_ok($$SELECT * FROM mps.find_member_by_identity('wechat', 'wx-alice-53')$$, 'MP101', 'member not found',
                 'operator of another shop: find_member_by_identity of a member who never came there is "not found"');
SELECT throws_ok($$SELECT * FROM mps.find_member_by_identity('wechat', 'wx-nobody-53')$$, 'MP101', 'member not found',
                 'the same answer as for an identity that does not exist');
SELECT is_empty($$SELECT 1 FROM mps.search_members('+86') WHERE name <> 'Walk In'$$,
                'operator of another shop: search_members(''+86'') lists none of the platform''s members');
SELECT is_empty(format($$SELECT 1 FROM mps.search_members(%L)$$, :'alice_card_no'),
                'nor finds a member by her card number');
SELECT results_eq($$SELECT name, phone, card_no ~ '^\*{12}[0-9]{4}$' FROM mps.search_members('+86139000053')$$,
                  $$VALUES ('Walk In'::text, '**********5303'::text, true)$$,
                  'it finds the walk-in its till registered, phone and card number masked');
RESET ROLE;
-- Shop A's operator: Alice paid there.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opa_claims';
SELECT results_eq($$SELECT name, phone, email, identities FROM mps.find_member_by_identity('wechat', 'wx-alice-53')$$,
                  $$VALUES ('Alice Private'::text, '**********5301'::text, 'a***@example.com'::text,
                            '[{"provider": "wechat", "external_id": "wx-alice-53"}]'::jsonb)$$,
                  'operator where she paid: finds her, contact data masked, no other identity shown');
SELECT results_eq($$SELECT name, phone FROM mps.search_members('+8613800005')$$,
                  $$VALUES ('Alice Private'::text, '**********5301'::text)$$,
                  'search_members lists only her (not the viewer, not the other shop''s walk-in), masked');
SELECT is_empty($$SELECT 1 FROM mps.search_members('walk in')$$, 'the other shop''s walk-in is not found by name');
RESET ROLE;
-- Registering at another merchant's till, or at one that does not exist:
-- the same refusal.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opb_claims';
SELECT throws_ok($$SELECT * FROM mps.create_member_profile(p_name := 'Walk In 3', p_merchant_code := 'PRIVA')$$,
                 '42501', NULL, 'operator: registering a walk-in at another merchant is refused');
SELECT throws_ok($$SELECT * FROM mps.create_member_profile(p_name := 'Walk In 3', p_merchant_code := 'NOSUCH')$$,
                 '42501', NULL, 'operator: at a merchant that does not exist, the same refusal');
RESET ROLE;
-- A user of two merchants names the till.
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT mps.assign_merchant_user('PRIVB', :'opa_sub', 'operator') IS NOT NULL AS opa_b \gset
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opa_claims';
SELECT throws_ok($$SELECT * FROM mps.create_member_profile(p_name := 'Walk In 4')$$,
                 'MP003', NULL, 'a user of two merchants must name the registering merchant');
SELECT lives_ok($$SELECT * FROM mps.create_member_profile(p_name := 'Walk In 4', p_merchant_code := 'privb')$$,
                'and registers the walk-in at the one named');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opb_claims';
SELECT results_eq($$SELECT name FROM mps.search_members('walk in 4')$$, $$VALUES ('Walk In 4'::text)$$,
                  'shop B''s other operator finds her: she is shop B''s customer');
RESET ROLE;
-- A member is no merchant user: refused outright.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'vic_claims';
SELECT throws_ok($$SELECT * FROM mps.search_members('+86138')$$, '42501', NULL, 'a member cannot search members');
RESET ROLE;
-- The platform admin searches the whole platform, unmasked.
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT results_eq($$SELECT name, phone FROM mps.search_members('+86') WHERE name IN ('Alice Private', 'Vic Viewer', 'Walk In') ORDER BY 1$$,
                  $$VALUES ('Alice Private'::text, '+8613800005301'::text), ('Vic Viewer', '+8613800005302'), ('Walk In', '+8613900005303')$$,
                  'platform admin: search_members covers every member, unmasked');
SELECT results_eq($$SELECT phone, email FROM mps.find_member_by_identity('wechat', 'wx-alice-53')$$,
                  $$VALUES ('+8613800005301'::text, 'alice.p@example.com'::text)$$,
                  'platform admin: find_member_by_identity unmasked');
RESET ROLE;

-- ===== item 11: external identities cannot be squatted =====
-- Eve signs up claiming Alice's WeChat id, then an unused one: both refused
-- the same way, before anything is looked up.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'eve_claims';
SELECT throws_ok($$SELECT * FROM mps.create_member_profile(p_name := 'Eve', p_binding_user_org := 'wechat', p_binding_org_id := 'wx-alice-53')$$,
                 '42501', NULL, 'stranger: create_member_profile with someone''s WeChat id is refused (42501, not MP103)');
SELECT throws_ok($$SELECT * FROM mps.create_member_profile(p_name := 'Eve', p_binding_user_org := 'wechat', p_binding_org_id := 'wx-free-53')$$,
                 '42501', NULL, 'stranger: with an unused WeChat id the same refusal');
SELECT lives_ok($$SELECT * FROM mps.create_member_profile(p_name := 'Eve')$$, 'stranger: signs up without an identity');
SELECT throws_ok($$SELECT * FROM mps.link_external_identity('wechat', 'wx-alice-53')$$,
                 '42501', NULL, 'member: link_external_identity of someone''s id is refused (42501, not MP103)');
SELECT throws_ok($$SELECT * FROM mps.link_external_identity('wechat', 'wx-free-53')$$,
                 '42501', NULL, 'member: link_external_identity of an unused id gets the same refusal');
SELECT results_eq($$SELECT identities FROM mps.get_my_profile()$$, $$VALUES ('[]'::jsonb)$$,
                  'and nothing was linked to her');
RESET ROLE;
-- A merchant's till may register a walk-in, but not with an identity.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opb_claims';
SELECT throws_ok($$SELECT * FROM mps.create_member_profile(p_name := 'Walk In 2', p_binding_user_org := 'wechat', p_binding_org_id := 'wx-free-53')$$,
                 '42501', NULL, 'operator: a walk-in with an external identity is refused');
RESET ROLE;
-- The platform admin (service_role, after the app verified the provider's login) links.
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT results_eq(format($$SELECT identities FROM mps.link_external_identity('line', 'line-vic-53', %L)$$, :'vic'),
                  $$VALUES ('[{"provider": "line", "external_id": "line-vic-53"}]'::jsonb)$$,
                  'platform admin: link_external_identity links a member''s verified identity');
SELECT throws_ok($$SELECT * FROM mps.link_external_identity('line', 'line-nobody-53')$$,
                 'MP003', NULL, 'platform admin: link_external_identity names the member');
SELECT throws_ok(format($$SELECT * FROM mps.link_external_identity('wechat', 'wx-alice-53', %L)$$, :'vic'),
                 'MP103', NULL, 'platform admin: an identity of another member is MP103');
SELECT is((SELECT count(*)::int FROM mps.member_external_identities WHERE external_id IN ('wx-alice-53', 'wx-free-53')), 1,
          'wx-alice-53 is still Alice''s alone, wx-free-53 nobody''s');
RESET ROLE;
-- The grants say the same: members and merchants do not hold link_external_identity.
SELECT ok(NOT has_function_privilege('mps_member_app', (SELECT oid FROM pg_proc WHERE proname = 'link_external_identity' AND pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'mps')), 'EXECUTE'),
          'mps_member_app may not execute link_external_identity');
SELECT ok(NOT has_function_privilege('authenticated', (SELECT oid FROM pg_proc WHERE proname = 'link_external_identity' AND pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'mps')), 'EXECUTE'),
          'authenticated may not execute link_external_identity');

SELECT * FROM finish();
ROLLBACK;
