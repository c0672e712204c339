-- 50_attackers: MPS tried as an attacker would, through the PostgREST path
-- (role switched, request.jwt.claims set): a signed-up stranger, a card's
-- owner and admins, another member, an operator of another shop. Each is
-- refused what is not theirs and learns nothing from the refusal; nothing
-- changes.
\set admin_claims    '{"role":"service_role"}'
\set eve_sub         '5e000000-0000-4000-8000-0000000000e1'
\set eve_claims      '{"sub":"5e000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set owner_sub       '5e000000-0000-4000-8000-0000000000a1'
\set owner_claims    '{"sub":"5e000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set cadmin_sub      '5e000000-0000-4000-8000-0000000000a2'
\set cadmin_claims   '{"sub":"5e000000-0000-4000-8000-0000000000a2","role":"authenticated"}'
\set op_sub          '5e000000-0000-4000-8000-0000000000f1'
\set op_claims       '{"sub":"5e000000-0000-4000-8000-0000000000f1","role":"authenticated"}'
BEGIN;
SELECT plan(12);

-- ===== setup, as the platform admin =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT mps.create_merchant('ATK01', 'Attack Shop') IS NOT NULL AS merchant \gset
SELECT mps.assign_merchant_user('ATK01', :'op_sub', 'operator') IS NOT NULL AS op \gset
SELECT member_id AS owner_member FROM mps.create_member_profile(p_name := 'Olive Owner', p_auth_user_id := :'owner_sub') \gset
SELECT member_id AS cadmin_member FROM mps.create_member_profile(p_name := 'Carl Admin', p_auth_user_id := :'cadmin_sub') \gset
SELECT card_id AS corp FROM mps.issue_card(p_card_type := 'corporate', p_currency := 'CNY', p_owner_member_id := :'owner_member',
                                           p_enterprise_name := 'Atk Ltd') \gset
SELECT mps.bind_card_member(:'corp', :'cadmin_member', 'admin') IS NOT NULL AS bound \gset
RESET ROLE;

-- ===== 0. nobody but the platform admin credits a card without a verified payment =====
-- A stranger signs up and tries to mint balance on her own new card.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'eve_claims';
SELECT card_id AS eve_card FROM mps.create_member_profile(p_name := 'Eve') \gset
SELECT throws_ok(format($$SELECT mps.recharge_card(%L, 1000000.00, 'k', 'stripe')$$, :'eve_card'),
                 '42501', NULL, 'stranger: recharge_card of her own new card is refused (42501)');
SELECT throws_ok(format($$SELECT mps.recharge_card(%L, 1.00, 'k2')$$, gen_random_uuid()),
                 '42501', NULL, 'stranger: recharge_card of a card that does not exist gets the same refusal');
SELECT results_eq(format('SELECT balance FROM mps.get_card(%L)', :'eve_card'), $$VALUES (0.00)$$,
                  'stranger: her card still holds 0.00');
RESET ROLE;
-- The corporate card's owner and admin may not credit it either.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'owner_claims';
SELECT throws_ok(format($$SELECT mps.recharge_card(%L, 500.00, 'o1', 'bank_transfer')$$, :'corp'),
                 '42501', NULL, 'card owner: recharge_card of the corporate card is refused');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'cadmin_claims';
SELECT throws_ok(format($$SELECT mps.recharge_card(%L, 500.00, 'a1')$$, :'corp'),
                 '42501', NULL, 'card admin: recharge_card of the corporate card is refused');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT throws_ok(format($$SELECT mps.recharge_card(%L, 5.00, 'op1', 'cash')$$, :'eve_card'),
                 '42501', NULL, 'operator: recharge_card of a member''s card is refused');
RESET ROLE;
-- No movement was written; the platform admin still recharges (back office).
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT results_eq(format($$SELECT count(*) FROM mps.transactions WHERE card_id IN (%L, %L)$$, :'eve_card', :'corp'),
                  $$VALUES (0::bigint)$$, 'no refused recharge wrote a movement');
SELECT results_eq(format($$SELECT amount, balance_after FROM mps.recharge_card(%L, 20.00, 'bo-1', 'bank_transfer')$$, :'corp'),
                  $$VALUES (20.00, 20.00)$$, 'platform admin: recharge_card (back office) credits the card');
RESET ROLE;
-- The grants say the same: only mps_admin holds recharge_card.
SELECT ok(has_function_privilege('mps_admin', (SELECT oid FROM pg_proc WHERE proname = 'recharge_card' AND pronamespace = 'mps'::regnamespace), 'EXECUTE'),
          'mps_admin may execute recharge_card');
SELECT ok(NOT has_function_privilege('mps_member_app', (SELECT oid FROM pg_proc WHERE proname = 'recharge_card' AND pronamespace = 'mps'::regnamespace), 'EXECUTE'),
          'mps_member_app may not execute recharge_card');
SELECT ok(NOT has_function_privilege('mps_merchant_api', (SELECT oid FROM pg_proc WHERE proname = 'recharge_card' AND pronamespace = 'mps'::regnamespace), 'EXECUTE'),
          'mps_merchant_api may not execute recharge_card');
SELECT ok(NOT has_function_privilege('anon', (SELECT oid FROM pg_proc WHERE proname = 'recharge_card' AND pronamespace = 'mps'::regnamespace), 'EXECUTE'),
          'anon may not execute recharge_card');

SELECT * FROM finish();
ROLLBACK;
