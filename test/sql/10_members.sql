-- 10_members: create_member_profile, get_my_cards, get_card.
--
-- Subjects (JWT sub) used below:
\set bob_sub   'b0b00000-0000-4000-8000-00000000000b'
\set carol_sub 'ca201000-0000-4000-8000-00000000000c'
\set op_sub    '0be2a702-0000-4000-8000-0000000000a1'
\set ghost_sub 'dead0000-0000-4000-8000-000000000000'

-- ===== happy path: the platform admin (superuser, no claims) =====
SELECT test_counts() AS before \gset
SELECT member_id AS alice_member, card_id AS alice_card, card_no AS alice_card_no,
       card_type AS r_type, currency AS r_currency, level_code AS r_level
FROM mps.create_member_profile(p_name := '  Alice Chen ', p_phone := '+86 (138) 0013-8000',
                               p_email := ' alice@example.com ',
                               p_binding_user_org := 'WeChat', p_binding_org_id := 'wx-alice') \gset
-- the result row
SELECT :'r_type' AS card_type, :'r_currency' AS currency, :'r_level' AS level_code,
       :'alice_card_no' ~ '^8[0-9]{15}$' AS card_no_format, luhn_ok(:'alice_card_no') AS card_no_luhn;
-- the profile: name trimmed, phone normalised, not linked to an auth user
SELECT name, phone, email, status, auth_user_id IS NULL AS unlinked
FROM mps.member_profiles WHERE id = :'alice_member';
-- the external identity, provider lower-cased
SELECT provider, external_id FROM mps.member_external_identities WHERE member_id = :'alice_member';
-- the default card: standard, active, empty, BRONZE, the number returned
SELECT c.card_no = :'alice_card_no' AS same_card_no, c.card_type, c.status, c.currency,
       c.balance, c.points, l.code AS level, c.fixed_discount_bp, c.expires_at IS NULL AS no_expiry
FROM mps.cards c LEFT JOIN mps.membership_levels l ON l.id = c.level_id
WHERE c.id = :'alice_card';
-- bound to her as owner, and to nobody else
SELECT member_id = :'alice_member' AS is_alice, role FROM mps.card_bindings WHERE card_id = :'alice_card';
-- exactly one more member, identity, card, binding and two audit events
SELECT :'before' AS before, test_counts() AS after;

-- the admin may link the profile to an auth user and pick a prepaid card in another currency
SELECT member_id AS carol_member, card_id AS carol_card
FROM mps.create_member_profile(p_name := 'Carol', p_default_card_type := 'Prepaid', p_currency := ' eur ',
                               p_auth_user_id := :'carol_sub') \gset
SELECT m.auth_user_id = :'carol_sub' AS linked, c.card_type, c.currency, c.level_id IS NULL AS no_level,
       b.role
FROM mps.member_profiles m JOIN mps.card_bindings b ON b.member_id = m.id JOIN mps.cards c ON c.id = b.card_id
WHERE m.id = :'carol_member';
-- boundaries that are accepted: a 100-character name, a bare 5-digit phone, a JPY card
SELECT member_id AS long_member, currency AS r_currency, level_code AS r_level
FROM mps.create_member_profile(p_name := repeat('n', 100), p_phone := '12345', p_currency := 'JPY') \gset
SELECT length(m.name) AS name_length, m.phone, :'r_currency' AS currency, :'r_level' AS level_code
FROM mps.member_profiles m WHERE m.id = :'long_member';

-- ===== self sign-up: an authenticated user, PostgREST style =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'bob_sub' || '","role":"authenticated"}', true) IS NOT NULL AS signed_in_as_bob;
SELECT member_id AS bob_member, card_id AS bob_card, card_no AS bob_card_no
FROM mps.create_member_profile(p_name := 'Bob', p_email := 'bob@example.com') \gset
-- his own profile, linked to his subject (he can read it through RLS)
SELECT name, email, auth_user_id = :'bob_sub' AS linked_to_me FROM mps.member_profiles;
-- get_my_cards: the new card, owner, BRONZE, next level SILVER at 1000 points
SELECT card_id = :'bob_card' AS same_card, card_no = :'bob_card_no' AS same_no, card_type, status, my_role,
       currency, balance, points, level_code, level_name, discount_bp, next_level_code, next_level_points
FROM mps.get_my_cards();
-- get_card on his own card
SELECT card_no = :'bob_card_no' AS same_no, my_role, level_code FROM mps.get_card(:'bob_card');
COMMIT;
-- the audit events carry the JWT subject as actor
SELECT action, actor_via, actor_admin, actor_user_id = :'bob_sub' AS actor_is_bob
FROM audit.event_log WHERE entity_id IN (:'bob_member', :'bob_card') ORDER BY id;

-- a second profile for the same user: MP102, nothing changes
SELECT test_counts() AS before \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'bob_sub' || '","role":"authenticated"}', true) IS NOT NULL AS signed_in_as_bob;
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'Bob again')$$);
-- nor for someone else, even naming their subject
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'Not Bob', p_auth_user_id := 'ca201000-0000-4000-8000-0000000000ff')$$);
COMMIT;
-- the admin cannot give Bob or Carol a second profile either
SELECT test_err(format('SELECT mps.create_member_profile(p_name := %L, p_auth_user_id := %L)', 'Bob 2', :'bob_sub'));
SELECT test_err(format('SELECT mps.create_member_profile(p_name := %L, p_auth_user_id := %L)', 'Carol 2', :'carol_sub'));
SELECT test_counts() = :'before' AS nothing_changed;

-- ===== a merchant user registers a walk-in member (not linked to anyone) =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'TILL01', p_name := 'Till Shop');
SELECT mps.assign_merchant_user('TILL01', :'op_sub', 'operator');
\o
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'op_sub' || '","role":"authenticated"}', true) IS NOT NULL AS signed_in_as_operator;
SELECT member_id AS walkin_member FROM mps.create_member_profile(p_name := 'Walk-in Wang', p_phone := '13900000001') \gset
-- the operator does not see the member's profile (it is not theirs)
SELECT count(*) AS profiles_visible_to_operator FROM mps.member_profiles;
-- and may not link a member to somebody else's account
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'Linked', p_auth_user_id := 'ca201000-0000-4000-8000-0000000000ff')$$);
COMMIT;
SELECT auth_user_id IS NULL AS unlinked, phone, (SELECT count(*) FROM mps.card_bindings b WHERE b.member_id = m.id) AS cards
FROM mps.member_profiles m WHERE id = :'walkin_member';
SELECT action, actor_via, actor_admin, actor_user_id = :'op_sub' AS actor_is_operator
FROM audit.event_log WHERE entity_id = :'walkin_member';

-- ===== who may not create profiles: 42501 =====
SELECT test_counts() AS before \gset
-- anon (no EXECUTE at all)
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) IS NOT NULL AS anon;
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'Eve')$$);
COMMIT;
-- authenticated without claims
BEGIN;
SET LOCAL ROLE authenticated;
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'Eve')$$);
COMMIT;
-- authenticated with claims but no subject
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true) IS NOT NULL AS no_sub;
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'Eve')$$);
COMMIT;
-- authenticated claiming service_role is still not an admin: no linking to others
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS forged_role;
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'Eve', p_auth_user_id := 'ca201000-0000-4000-8000-0000000000ff')$$);
COMMIT;
SELECT test_counts() = :'before' AS nothing_changed;

-- ===== input errors (as admin); each changes nothing =====
SELECT test_counts() AS before \gset
-- name: missing, blank, too long
SELECT test_err($$SELECT mps.create_member_profile(p_name := NULL)$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := '   ')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := repeat('x', 101))$$);
-- phone
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_phone := 'call me')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_phone := '1234')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_phone := '+123456789012345678901')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_phone := '12+345678')$$);
-- e-mail
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_email := 'not-an-email')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_email := 'a@b')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_email := 'a b@example.com')$$);
SELECT split_part(test_err($$SELECT mps.create_member_profile(p_name := 'P', p_email := repeat('a', 250) || '@example.com')$$), E'\n', 1) AS too_long;
-- external identity: incomplete, bad provider, id too long, already linked (any case of provider)
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_binding_user_org := 'wechat')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_binding_org_id := 'wx-1')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_binding_user_org := 'We Chat!', p_binding_org_id := 'wx-1')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_binding_user_org := 'wechat', p_binding_org_id := repeat('9', 201))$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_binding_user_org := 'wechat', p_binding_org_id := 'wx-alice')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_binding_user_org := 'WECHAT', p_binding_org_id := ' wx-alice ')$$);
-- card type: unknown, missing, not allowed as the default card
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_default_card_type := 'gold')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_default_card_type := NULL)$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_default_card_type := 'corporate')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_default_card_type := 'voucher')$$);
-- currency: unknown, empty, too long
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_currency := 'XYZ')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_currency := '')$$);
SELECT test_err($$SELECT mps.create_member_profile(p_name := 'P', p_currency := 'EURO')$$);
SELECT test_counts() = :'before' AS nothing_changed;
-- the same errors escape a plain top-level call with their code
\set VERBOSITY sqlstate
SELECT mps.create_member_profile(p_name := '');
SELECT mps.create_member_profile(p_name := 'P', p_currency := 'XYZ');
\set VERBOSITY default
SELECT test_counts() = :'before' AS nothing_changed;

-- ===== get_my_cards / get_card =====
-- Carol (prepaid EUR card) sees exactly her card
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'carol_sub' || '","role":"authenticated"}', true) IS NOT NULL AS signed_in_as_carol;
SELECT card_id = :'carol_card' AS own_card, card_type, my_role, currency, balance, points,
       level_code, discount_bp, next_level_code
FROM mps.get_my_cards();
-- another member's card is reported like a card that does not exist
SELECT test_err(format('SELECT mps.get_card(%L)', :'bob_card'));
SELECT test_err(format('SELECT mps.get_card(%L)', :'alice_card'));
SELECT test_err($$SELECT mps.get_card('00000000-0000-4000-8000-000000000000')$$);
SELECT test_err($$SELECT mps.get_card(NULL)$$);
COMMIT;
-- a signed-in user without a profile: MP101 / MP201
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'ghost_sub' || '","role":"authenticated"}', true) IS NOT NULL AS signed_in_as_ghost;
SELECT test_err($$SELECT * FROM mps.get_my_cards()$$);
SELECT test_err(format('SELECT mps.get_card(%L)', :'bob_card'));
COMMIT;
-- no claims at all as authenticated: 42501
BEGIN;
SET LOCAL ROLE authenticated;
SELECT test_err($$SELECT * FROM mps.get_my_cards()$$);
SELECT test_err(format('SELECT mps.get_card(%L)', :'bob_card'));
COMMIT;
-- anon: 42501
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) IS NOT NULL AS anon;
SELECT test_err($$SELECT * FROM mps.get_my_cards()$$);
SELECT test_err(format('SELECT mps.get_card(%L)', :'bob_card'));
COMMIT;
-- the platform admin reads any card (not bound to it: my_role is NULL)
SELECT card_no = :'alice_card_no' AS same_no, card_type, my_role, level_code FROM mps.get_card(:'alice_card');
-- service_role claims read any card too
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS service_role;
SELECT card_id = :'bob_card' AS bobs_card, my_role, level_code FROM mps.get_card(:'bob_card');
COMMIT;
-- the admin has no member profile, so get_my_cards is not for them
SELECT test_err($$SELECT * FROM mps.get_my_cards()$$);

SELECT test_counts();
