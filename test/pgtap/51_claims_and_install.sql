-- 51_claims_and_install: who a caller is, and what a refusal tells her.
-- (1) request.jwt.claims count only under the roles PostgREST switches into:
-- a direct login holding mps_member_app or mps_merchant_api that sets the
-- claims itself is who its database role says (nobody, or the merchant user
-- the platform admin mapped it to). (2) A caller who may not know cannot
-- tell "absent" from "not yours": merchant codes, another merchant's
-- payment, another member, another member's card in price_order.
\set admin_claims    '{"role":"service_role"}'
\set mia_sub         '51000000-0000-4000-8000-0000000000a1'
\set mia_claims      '{"sub":"51000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set eve_sub         '51000000-0000-4000-8000-0000000000e1'
\set eve_claims      '{"sub":"51000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set opa_sub         '51000000-0000-4000-8000-0000000000f1'
\set opa_claims      '{"sub":"51000000-0000-4000-8000-0000000000f1","role":"authenticated"}'
\set opb_sub         '51000000-0000-4000-8000-0000000000f2'
\set opb_claims      '{"sub":"51000000-0000-4000-8000-0000000000f2","role":"authenticated"}'
\set mgrb_sub        '51000000-0000-4000-8000-0000000000f3'
\set mgrb_claims     '{"sub":"51000000-0000-4000-8000-0000000000f3","role":"authenticated"}'
\set items           '[{"product_id":"TEA51","category_id":"TEA","quantity":1,"unit_price":10.00}]'
BEGIN;
SELECT plan(27);

-- A refusal as one line: SQLSTATE | message | detail | hint, with the
-- caller's own input (a code or an id she passed) written as <input>, so an
-- absent and a foreign object can be compared.
CREATE FUNCTION pg_temp.refusal(p_sql text, p_input text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
  EXECUTE p_sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                          v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
  RETURN replace(concat_ws(' | ', v_state, v_msg, v_detail, v_hint), p_input, '<input>');
END
$$;

-- ===== setup, as the platform admin =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT mps.create_merchant('ATK51A', 'Shop A') IS NOT NULL AS a \gset
SELECT mps.create_merchant('ATK51B', 'Shop B') IS NOT NULL AS b \gset
SELECT mps.assign_merchant_user('ATK51A', :'opa_sub', 'manager') IS NOT NULL AS opa \gset
SELECT mps.assign_merchant_user('ATK51B', :'opb_sub', 'operator') IS NOT NULL AS opb \gset
SELECT mps.assign_merchant_user('ATK51B', :'mgrb_sub', 'manager') IS NOT NULL AS mgrb \gset
SELECT member_id AS mia_member, card_id AS mia_card
  FROM mps.create_member_profile(p_name := 'Mia', p_auth_user_id := :'mia_sub') \gset
SELECT member_id AS eve_member, card_id AS eve_card
  FROM mps.create_member_profile(p_name := 'Eve', p_auth_user_id := :'eve_sub') \gset
SELECT mps.recharge_card(:'mia_card', 100.00, 'r51-1') IS NOT NULL AS funded \gset
RESET ROLE;
-- Mia pays 5.00 at shop A.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'mia_claims';
SELECT qr_plain AS mia_qr FROM mps.rotate_card_qr(p_card_id := :'mia_card') \gset
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opa_claims';
SELECT tx_id AS pay_a FROM mps.merchant_charge_by_qr('ATK51A', :'mia_qr', 5.00, 'c51-1') \gset
RESET ROLE;

-- ===== 1. claims count only under the PostgREST roles =====
-- A member-app login forges the service_role claim: not an admin.
SET LOCAL ROLE tap_app_login;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT throws_ok($$SELECT mps.create_merchant('FORGE51', 'Forged')$$, '42501', NULL,
                 'member-app login with a forged service_role claim: create_merchant is refused (42501)');
SELECT throws_ok(format($$SELECT mps.assign_merchant_user('ATK51A', %L, 'manager')$$, :'eve_sub'), '42501', NULL,
                 'member-app login with a forged service_role claim: cannot make anyone a merchant''s manager');
-- ... and forges Mia's subject: not Mia.
SET LOCAL request.jwt.claims = :'mia_claims';
SELECT throws_ok(format('SELECT * FROM mps.get_card(%L)', :'mia_card'), '42501', NULL,
                 'member-app login with Mia''s forged sub: get_card of her card is refused');
SELECT is((SELECT count(*) FROM mps.cards), 0::bigint,
          'member-app login with Mia''s forged sub: reads none of mps.cards');
RESET ROLE;
-- A POS login forges the service_role claim, then a manager's subject.
SET LOCAL ROLE tap_pos_login;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT throws_ok($$SELECT mps.create_merchant('FORGE52', 'Forged')$$, '42501', NULL,
                 'POS login with a forged service_role claim: create_merchant is refused');
SET LOCAL request.jwt.claims = :'opa_claims';
SELECT throws_ok($$SELECT * FROM mps.list_settlements('ATK51A')$$, '42501', NULL,
                 'POS login with a manager''s forged sub: list_settlements is refused');
SELECT throws_ok(format($$SELECT mps.merchant_refund_tx('ATK51A', %L, 1.00, 'f51-1')$$, :'pay_a'), '42501', NULL,
                 'POS login with an operator''s forged sub: merchant_refund_tx is refused');
RESET ROLE;
-- Under authenticated the service_role claim is no admin either; under service_role it is.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT throws_ok($$SELECT mps.create_merchant('FORGE53', 'Forged')$$, '42501', NULL,
                 'authenticated with a service_role claim: not an admin');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT lives_ok($$SELECT mps.create_merchant('OK51', 'Real admin')$$,
                'service_role with the service_role claim: the platform admin');
RESET ROLE;
-- The list of PostgREST roles is the superuser's setting.
SELECT is(current_setting('mps.jwt_roles'), 'anon,authenticated,service_role', 'mps.jwt_roles names PostgREST''s roles');
SELECT throws_ok($$SET LOCAL mps.jwt_roles = 'tap_app_login'$$, '42501', NULL,
                 'a non-superuser cannot change mps.jwt_roles');

-- ===== 1b. an explicit mapping makes a POS login a merchant user =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opa_claims';
SELECT throws_ok($$SELECT mps.map_db_role_user('tap_pos_login', '51000000-0000-4000-8000-0000000000f1')$$,
                 '42501', NULL, 'a merchant user cannot map a login');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT throws_ok(format($$SELECT mps.map_db_role_user('authenticated', %L)$$, :'opa_sub'), 'MP004', NULL,
                 'a PostgREST role cannot be mapped to a user');
SELECT throws_ok(format($$SELECT mps.map_db_role_user('tap_pos_login', %L)$$, :'mia_sub'), 'MP004', NULL,
                 'a login is mapped to a merchant user only');
SELECT is((SELECT user_id FROM mps.map_db_role_user('tap_pos_login', :'opa_sub')), :'opa_sub'::uuid,
          'platform admin maps the POS login to shop A''s manager');
RESET ROLE;
SET LOCAL ROLE tap_pos_login;
SET LOCAL request.jwt.claims = :'mgrb_claims';
SELECT lives_ok($$SELECT * FROM mps.list_settlements('ATK51A')$$,
                'the mapped POS login acts as shop A''s manager (its own claims ignored)');
SELECT throws_ok($$SELECT * FROM mps.list_settlements('ATK51B')$$, '42501', NULL,
                 'the mapped POS login is not shop B''s manager whatever sub it sets');
RESET ROLE;

-- ===== 2. permission before existence =====
-- Shop B's operator charges "at" shop A and at a code that names no shop.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opb_claims';
SELECT is(pg_temp.refusal(format($$SELECT mps.merchant_charge_by_qr('NOPE51', %L, 1.00, 'x51-1')$$, :'mia_qr'), 'NOPE51'),
          pg_temp.refusal(format($$SELECT mps.merchant_charge_by_qr('ATK51A', %L, 1.00, 'x51-2')$$, :'mia_qr'), 'ATK51A'),
          'charge: an unknown merchant code and another merchant''s get the same refusal');
SELECT is(pg_temp.refusal($$SELECT mps.merchant_refund_tx('NOPE51', gen_random_uuid(), 1.00, 'x51-3')$$, 'NOPE51'),
          pg_temp.refusal($$SELECT mps.merchant_refund_tx('ATK51A', gen_random_uuid(), 1.00, 'x51-4')$$, 'ATK51A'),
          'refund: an unknown merchant code and another merchant''s get the same refusal');
-- Shop B's operator refunds shop A's payment through shop B.
SELECT is(pg_temp.refusal(format($$SELECT mps.merchant_refund_tx('ATK51B', %L, 1.00, 'x51-5')$$, :'pay_a'), :'pay_a'),
          pg_temp.refusal($$SELECT mps.merchant_refund_tx('ATK51B', '51000000-0000-4000-8000-00000000dead', 1.00, 'x51-6')$$,
                          '51000000-0000-4000-8000-00000000dead'),
          'refund: another merchant''s payment and a payment that does not exist get the same refusal');
SELECT is(pg_temp.refusal($$SELECT * FROM mps.merchant_daily_report('NOPE51', current_date, current_date)$$, 'NOPE51'),
          pg_temp.refusal($$SELECT * FROM mps.merchant_daily_report('ATK51A', current_date, current_date)$$, 'ATK51A'),
          'daily report: an unknown merchant code and another merchant''s get the same refusal');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'mgrb_claims';
SELECT is(pg_temp.refusal($$SELECT * FROM mps.list_settlements('NOPE51')$$, 'NOPE51'),
          pg_temp.refusal($$SELECT * FROM mps.list_settlements('ATK51A')$$, 'ATK51A'),
          'settlements: to shop B''s manager an unknown code and shop A look the same');
RESET ROLE;
-- A stranger prices an order for Mia, and for a member that does not exist.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'eve_claims';
SELECT is(pg_temp.refusal(format('SELECT mps.price_order(%L, %L)', :'mia_member', :'items'), :'mia_member'),
          pg_temp.refusal(format('SELECT mps.price_order(%L, %L)', gen_random_uuid(), :'items'), 'x'),
          'price_order: another member and an absent member get the same refusal');
-- Eve prices her own order with Mia's card: that card is "not found", like an absent one.
SELECT is(pg_temp.refusal(format('SELECT mps.price_order(%L, %L, %L)', :'eve_member', :'items', :'mia_card'), :'mia_card'),
          pg_temp.refusal(format('SELECT mps.price_order(%L, %L, %L)', :'eve_member', :'items',
                                 '51000000-0000-4000-8000-00000000dead'), '51000000-0000-4000-8000-00000000dead'),
          'price_order: another member''s card and an absent card get the same refusal');
SELECT matches(pg_temp.refusal(format('SELECT mps.price_order(%L, %L, %L)', :'eve_member', :'items', :'mia_card'), :'mia_card'),
               '^MP201 ', 'price_order with another member''s card tells no discount (MP201)');
SELECT lives_ok(format('SELECT mps.price_order(%L, %L, %L)', :'eve_member', :'items', :'eve_card'),
                'price_order with her own card still prices');
RESET ROLE;
-- Shop A's manager prices for Mia with Eve's card: not Mia's, so "not found".
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opa_claims';
SELECT matches(pg_temp.refusal(format('SELECT mps.price_order(%L, %L, %L)', :'mia_member', :'items', :'eve_card'), :'eve_card'),
               '^MP201 ', 'merchant user: price_order of a member with a card she does not hold is MP201');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
