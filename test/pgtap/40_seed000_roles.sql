-- 40_seed000_roles: seed 000's permission table, end to end, the way
-- PostgREST runs each request: the role switched with SET LOCAL ROLE (anon,
-- authenticated or service_role) and the verified JWT claims put into
-- request.jwt.claims with set_config(..., true); every RPC called with named
-- arguments. One transaction, rolled back at the end.
--
--   seed 000 row                          actor here                        JWT / role
--   普通会员  plain member                  Alice (Bob: the "other" member)   authenticated, sub = her auth uid
--   企业成员  enterprise member             Eve, "member" of Acme's card      authenticated
--   企业管理员 enterprise admin (and owner)  Adam ("admin"), Olga ("owner")    authenticated
--   商户操作员 merchant operator            Oscar @ SEED_A, Otto @ SEED_B     authenticated
--             merchant manager             Mia @ SEED_A                      authenticated
--   系统管理员 platform admin               the service_role key              service_role, {"role":"service_role"}
--             nobody signed in             anon key                          anon, {"role":"anon"}
--
-- Each block below is one request context: it starts with SET LOCAL ROLE and
-- set_config('request.jwt.claims', ..., true), exactly what PostgREST does at
-- the start of every request, and ends with RESET ROLE. Fixtures are made in
-- the same transaction by the platform admin, through the RPCs.
-- Results checked are amounts, counts, codes and roles only: no ids, no times.
\set admin_claims  '{"role":"service_role"}'
\set anon_claims   '{"role":"anon"}'
\set alice_sub     '5a000000-0000-4000-8000-00000000000a'
\set bob_sub       '5b000000-0000-4000-8000-00000000000b'
\set olga_sub      '5c000000-0000-4000-8000-00000000000c'
\set adam_sub      '5d000000-0000-4000-8000-00000000000d'
\set eve_sub       '5e000000-0000-4000-8000-00000000000e'
\set oscar_sub     '50000000-0000-4000-8000-0000000000a1'
\set mia_sub       '50000000-0000-4000-8000-0000000000a2'
\set otto_sub      '50000000-0000-4000-8000-0000000000b1'
\set alice_claims  '{"sub":"5a000000-0000-4000-8000-00000000000a","role":"authenticated"}'
\set bob_claims    '{"sub":"5b000000-0000-4000-8000-00000000000b","role":"authenticated"}'
\set olga_claims   '{"sub":"5c000000-0000-4000-8000-00000000000c","role":"authenticated"}'
\set adam_claims   '{"sub":"5d000000-0000-4000-8000-00000000000d","role":"authenticated"}'
\set eve_claims    '{"sub":"5e000000-0000-4000-8000-00000000000e","role":"authenticated"}'
\set oscar_claims  '{"sub":"50000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set mia_claims    '{"sub":"50000000-0000-4000-8000-0000000000a2","role":"authenticated"}'
\set otto_claims   '{"sub":"50000000-0000-4000-8000-0000000000b1","role":"authenticated"}'
\set forged_claims '{"sub":"5a000000-0000-4000-8000-00000000000a","role":"service_role"}'
\set no_such_id    '00000000-0000-4000-8000-000000000000'
\set ladder '[{"code":"BRONZE","name":"Bronze","min_points":0,"max_points":999,"discount_bp":0,"earn_rate_bp":10000},{"code":"SILVER","name":"Silver","min_points":1000,"max_points":4999,"discount_bp":300,"earn_rate_bp":10000},{"code":"GOLD","name":"Gold","min_points":5000,"max_points":19999,"discount_bp":500,"earn_rate_bp":12000},{"code":"PLATINUM","name":"Platinum","min_points":20000,"max_points":null,"discount_bp":800,"earn_rate_bp":15000}]'
BEGIN;
-- The fixed assertions, plus two per function of schema mps (anon, at the end).
SELECT plan(176 + 2 * (SELECT count(*)::int FROM pg_proc WHERE pronamespace = 'mps'::regnamespace));

-- ======================================================================
-- 系统管理员 platform admin (service_role key): creates the world
-- ======================================================================
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', :'admin_claims', true) AS jwt \gset
SELECT results_eq($$SELECT code, currency::text, fee_bp, status::text
                    FROM mps.create_merchant(p_code := 'SEED_A', p_name := 'Seed Shop A', p_currency := 'CNY', p_fee_bp := 100)$$,
                  $$VALUES ('SEED_A', 'CNY', 100, 'active')$$, 'admin: create_merchant SEED_A');
SELECT results_eq($$SELECT code, currency::text FROM mps.create_merchant(p_code := 'SEED_B', p_name := 'Seed Shop B', p_currency := 'CNY')$$,
                  $$VALUES ('SEED_B', 'CNY')$$, 'admin: create_merchant SEED_B');
SELECT results_eq($$SELECT name FROM mps.update_merchant(p_merchant_code := 'SEED_B', p_name := 'Seed Shop B (renamed)')$$,
                  $$VALUES ('Seed Shop B (renamed)')$$, 'admin: update_merchant');
SELECT results_eq(format('SELECT role::text FROM mps.assign_merchant_user(p_merchant_code := %L, p_user_id := %L, p_role := %L)',
                         'SEED_A', :'oscar_sub', 'operator'),
                  $$VALUES ('operator')$$, 'admin: assign_merchant_user Oscar as operator of SEED_A');
SELECT results_eq(format('SELECT role::text FROM mps.assign_merchant_user(p_merchant_code := %L, p_user_id := %L, p_role := %L)',
                         'SEED_A', :'mia_sub', 'manager'),
                  $$VALUES ('manager')$$, 'admin: assign_merchant_user Mia as manager of SEED_A');
SELECT results_eq(format('SELECT role::text FROM mps.assign_merchant_user(p_merchant_code := %L, p_user_id := %L, p_role := %L)',
                         'SEED_B', :'otto_sub', 'operator'),
                  $$VALUES ('operator')$$, 'admin: assign_merchant_user Otto as operator of SEED_B');
SELECT results_eq(format('SELECT code, discount_bp FROM mps.set_membership_levels(p_levels := %L)', :'ladder'),
                  $$VALUES ('BRONZE', 0), ('SILVER', 300), ('GOLD', 500), ('PLATINUM', 800)$$,
                  'admin: set_membership_levels (the default ladder, set again)');
-- members, each linked to their auth user (the JWT sub)
SELECT member_id AS alice_member, card_id AS alice_card
  FROM mps.create_member_profile(p_name := 'Alice', p_currency := 'CNY', p_auth_user_id := :'alice_sub') \gset
SELECT member_id AS bob_member, card_id AS bob_card
  FROM mps.create_member_profile(p_name := 'Bob', p_currency := 'CNY', p_auth_user_id := :'bob_sub') \gset
SELECT member_id AS olga_member, card_id AS olga_card
  FROM mps.create_member_profile(p_name := 'Olga', p_currency := 'CNY', p_auth_user_id := :'olga_sub') \gset
SELECT member_id AS adam_member
  FROM mps.create_member_profile(p_name := 'Adam', p_currency := 'CNY', p_auth_user_id := :'adam_sub') \gset
SELECT member_id AS eve_member
  FROM mps.create_member_profile(p_name := 'Eve', p_currency := 'CNY', p_auth_user_id := :'eve_sub') \gset
SELECT results_eq(format('SELECT card_type::text, level_code FROM mps.create_member_profile(p_name := %L, p_currency := %L)',
                         'Walk-in', 'CNY'),
                  $$VALUES ('standard', 'BRONZE')$$, 'admin: create_member_profile (not linked to a login)');
-- Acme's corporate card, owned by Olga, 10% off
SELECT card_id AS corp_card
  FROM mps.issue_card(p_card_type := 'corporate', p_currency := 'CNY', p_owner_member_id := :'olga_member',
                      p_enterprise_name := 'Acme Ltd', p_fixed_discount_bp := 1000) \gset
SELECT results_eq(format('SELECT card_type::text, discount_bp, balance FROM mps.get_card(p_card_id := %L)', :'corp_card'),
                  $$VALUES ('corporate', 1000, 0.00)$$, 'admin: issue_card corporate (get_card reads it back)');
SELECT card_id AS voucher_card FROM mps.issue_card(p_card_type := 'voucher', p_currency := 'CNY', p_face_value := 50.00) \gset
SELECT results_eq(format('SELECT card_type::text, status::text, balance FROM mps.get_card(p_card_id := %L)', :'voucher_card'),
                  $$VALUES ('voucher', 'active', 50.00)$$, 'admin: issue_card voucher (50.00 paid in, unbound)');
SELECT results_eq(format('SELECT amount, balance_after FROM mps.recharge_card(p_card_id := %L, p_amount := 100.00, p_idempotency_key := %L, p_payment_method := %L)',
                         :'bob_card', 'admin-bob-1', 'cash'),
                  $$VALUES (100.00, 100.00)$$, 'admin: recharge_card of any member''s card');
SELECT throws_ok(format('SELECT mps.issue_card(p_card_type := %L, p_currency := %L, p_enterprise_name := %L)', 'corporate', 'CNY', 'No Owner'),
                 'MP003', NULL, 'admin: a corporate card without an owner is MP003 (not a permission error)');
RESET ROLE;

-- ======================================================================
-- 企业管理员 enterprise owner (Olga): binds her admin; may not recharge the card
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'olga_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT card_type::text, my_role::text FROM mps.get_card(p_card_id := %L)', :'corp_card'),
                  $$VALUES ('corporate', 'owner')$$, 'owner: get_card of the corporate card (as owner)');
SELECT results_eq(format('SELECT member_name, role::text FROM mps.bind_card_member(p_card_id := %L, p_member_id := %L, p_role := %L)',
                         :'corp_card', :'adam_member', 'admin'),
                  $$VALUES ('Adam', 'admin')$$, 'owner: bind_card_member Adam as card admin');
SELECT throws_ok(format('SELECT mps.recharge_card(p_card_id := %L, p_amount := 100.00, p_idempotency_key := %L)',
                        :'corp_card', 'olga-corp-1'),
                 '42501', NULL, 'owner: recharge_card of the corporate card is refused (42501, the platform admin''s alone)');
SELECT throws_ok(format('SELECT mps.bind_card_member(p_card_id := %L, p_member_id := %L, p_role := %L)', :'corp_card', :'eve_member', 'owner'),
                 '42501', NULL, 'owner: binding another owner is the platform admin''s (42501)');
RESET ROLE;
-- the platform admin (service_role key): nothing moved; the admin funds the card
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', :'admin_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT c.balance, (SELECT count(*) FROM mps.transactions t WHERE t.card_id = c.id) FROM mps.cards c WHERE c.id = %L', :'corp_card'),
                  $$VALUES (0::bigint, 0::bigint)$$, 'admin: the owner''s refused recharge moved nothing (balance 0, no movement)');
SELECT results_eq(format('SELECT amount, balance_after FROM mps.recharge_card(p_card_id := %L, p_amount := 100.00, p_idempotency_key := %L)',
                         :'corp_card', 'olga-corp-1'),
                  $$VALUES (100.00, 100.00)$$, 'admin: recharge_card of the corporate card');
RESET ROLE;

-- ======================================================================
-- 企业管理员 enterprise admin (Adam): bind/unbind, shared QR, freeze; no recharge
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'adam_claims', true) AS jwt \gset
SELECT throws_ok(format('SELECT mps.recharge_card(p_card_id := %L, p_amount := 500.00, p_idempotency_key := %L, p_payment_method := %L)',
                        :'corp_card', 'adam-corp-1', 'bank_transfer'),
                 '42501', NULL, 'enterprise admin: recharge_card of the corporate card is refused (42501, the platform admin''s alone)');
SELECT results_eq(format('SELECT member_name, role::text FROM mps.bind_card_member(p_card_id := %L, p_member_id := %L)',
                         :'corp_card', :'eve_member'),
                  $$VALUES ('Eve', 'member')$$, 'enterprise admin: bind_card_member Eve (role member by default)');
SELECT results_eq(format('SELECT member_name, role::text FROM mps.bind_card_member(p_card_id := %L, p_member_id := %L, p_role := %L)',
                         :'corp_card', :'alice_member', 'member'),
                  $$VALUES ('Alice', 'member')$$, 'enterprise admin: bind_card_member Alice');
SELECT results_eq(format('SELECT member_name, role::text FROM mps.bind_card_member(p_card_id := %L, p_member_id := %L, p_role := %L)',
                         :'corp_card', :'bob_member', 'member'),
                  $$VALUES ('Bob', 'member')$$, 'enterprise admin: bind_card_member Bob');
SELECT results_eq(format('SELECT mps.unbind_card_member(p_card_id := %L, p_member_id := %L)', :'corp_card', :'bob_member'),
                  ARRAY[true], 'enterprise admin: unbind_card_member Bob');
SELECT results_eq(format('SELECT member_name, role::text FROM mps.list_card_bindings(p_card_id := %L) ORDER BY member_name', :'corp_card'),
                  $$VALUES ('Adam', 'admin'), ('Alice', 'member'), ('Eve', 'member'), ('Olga', 'owner')$$,
                  'enterprise admin: list_card_bindings');
SELECT throws_ok(format('SELECT mps.bind_card_member(p_card_id := %L, p_member_id := %L, p_role := %L)', :'corp_card', :'bob_member', 'owner'),
                 '42501', NULL, 'enterprise admin: binding an owner is refused (42501)');
SELECT throws_ok(format('SELECT mps.unbind_card_member(p_card_id := %L, p_member_id := %L)', :'corp_card', :'olga_member'),
                 '42501', NULL, 'enterprise admin: unbinding the owner is refused (42501)');
SELECT throws_ok(format('SELECT mps.set_card_status(p_card_id := %L, p_status := %L, p_reason := %L)', :'corp_card', 'closed', 'wind-up'),
                 '42501', NULL, 'enterprise admin: closing the card is the platform admin''s (42501)');
SELECT throws_ok(format('SELECT mps.recharge_card(p_card_id := %L, p_amount := 10.00, p_idempotency_key := %L)', :'olga_card', 'adam-olga-1'),
                 '42501', NULL, 'enterprise admin: recharge_card of the owner''s personal card is refused (42501)');
SELECT throws_ok($$SELECT mps.create_merchant(p_code := 'ADAM1', p_name := 'Adam''s')$$, '42501', NULL,
                 'enterprise admin: create_merchant is refused (42501)');
-- the card's shared payment code (the terminal on the company desk)
SELECT qr_plain AS shared_qr, single_use AS shared_single_use
  FROM mps.rotate_card_qr(p_card_id := :'corp_card', p_ttl_seconds := 600, p_shared := true) \gset
SELECT ok(:'shared_qr' LIKE 'MPS1.%' AND :'shared_single_use'::boolean,
          'enterprise admin: rotate_card_qr p_shared := true issues the card''s shared code (single-use, like a member''s)');
RESET ROLE;
-- the platform admin: the card admin's refused recharge moved nothing; the admin does it
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', :'admin_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT c.balance, (SELECT count(*) FROM mps.transactions t WHERE t.card_id = c.id) FROM mps.cards c WHERE c.id = %L', :'corp_card'),
                  $$VALUES (10000::bigint, 1::bigint)$$, 'admin: the card admin''s refused recharge moved nothing (still 100.00, one movement)');
SELECT results_eq(format('SELECT amount, balance_after FROM mps.recharge_card(p_card_id := %L, p_amount := 500.00, p_idempotency_key := %L, p_payment_method := %L)',
                         :'corp_card', 'adam-corp-1', 'bank_transfer'),
                  $$VALUES (500.00, 600.00)$$, 'admin: recharge_card of the corporate card (bank transfer)');
RESET ROLE;

-- ======================================================================
-- 企业成员 enterprise member (Eve): pays with her own code, nothing else
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'eve_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT card_type::text, my_role::text, discount_bp, balance FROM mps.get_card(p_card_id := %L)', :'corp_card'),
                  $$VALUES ('corporate', 'member', 1000, 600.00)$$, 'enterprise member: get_card of the corporate card');
SELECT qr_plain AS eve_qr, single_use AS eve_single_use FROM mps.rotate_card_qr(p_card_id := :'corp_card') \gset
SELECT ok(:'eve_qr' LIKE 'MPS1.%' AND :'eve_single_use'::boolean,
          'enterprise member: rotate_card_qr of the corporate card gives her own single-use code');
SELECT throws_ok(format('SELECT mps.recharge_card(p_card_id := %L, p_amount := 50.00, p_idempotency_key := %L)', :'corp_card', 'eve-corp-1'),
                 '42501', NULL, 'enterprise member: recharge_card of the corporate card is refused (42501)');
SELECT throws_ok(format('SELECT mps.bind_card_member(p_card_id := %L, p_member_id := %L)', :'corp_card', :'bob_member'),
                 '42501', NULL, 'enterprise member: bind_card_member is refused (42501)');
SELECT throws_ok(format('SELECT mps.unbind_card_member(p_card_id := %L, p_member_id := %L)', :'corp_card', :'alice_member'),
                 '42501', NULL, 'enterprise member: unbinding another member is refused (42501)');
SELECT throws_ok(format('SELECT mps.rotate_card_qr(p_card_id := %L, p_shared := true)', :'corp_card'),
                 '42501', NULL, 'enterprise member: rotating the shared code is refused (42501)');
SELECT throws_ok(format('SELECT mps.revoke_card_qr(p_card_id := %L, p_shared := true)', :'corp_card'),
                 '42501', NULL, 'enterprise member: revoking the shared code is refused (42501)');
SELECT throws_ok(format('SELECT mps.set_card_status(p_card_id := %L, p_status := %L, p_reason := %L)', :'corp_card', 'frozen', 'lost'),
                 '42501', NULL, 'enterprise member: freezing the corporate card is refused (42501)');
SELECT throws_ok(format('SELECT mps.set_card_binding_password(p_card_id := %L, p_password := %L)', :'corp_card', 'hunter22'),
                 '42501', NULL, 'enterprise member: setting the binding password is refused (42501)');
RESET ROLE;

-- ======================================================================
-- 普通会员 plain member (Alice): her own card — view, pay code; no recharge
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'alice_claims', true) AS jwt \gset
SELECT results_eq('SELECT card_type::text, my_role::text, balance FROM mps.get_my_cards() ORDER BY card_type',
                  $$VALUES ('corporate', 'member', 600.00), ('standard', 'owner', 0.00)$$,
                  'member: get_my_cards (her personal card, and Acme''s card as a member)');
SELECT throws_ok(format('SELECT mps.recharge_card(p_card_id := %L, p_amount := 100.00, p_idempotency_key := %L, p_payment_method := %L)',
                        :'alice_card', 'alice-r1', 'stripe'),
                 '42501', NULL, 'member: recharge_card of her own card is refused (42501, she tops up through a paid order)');
RESET ROLE;
-- the platform admin: her refused recharge moved nothing; the admin credits her card
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', :'admin_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT c.balance, (SELECT count(*) FROM mps.transactions t WHERE t.card_id = c.id) FROM mps.cards c WHERE c.id = %L', :'alice_card'),
                  $$VALUES (0::bigint, 0::bigint)$$, 'admin: the member''s refused recharge moved nothing (balance 0, no movement)');
SELECT results_eq(format('SELECT amount, balance_after FROM mps.recharge_card(p_card_id := %L, p_amount := 100.00, p_idempotency_key := %L, p_payment_method := %L)',
                         :'alice_card', 'alice-r1', 'stripe'),
                  $$VALUES (100.00, 100.00)$$, 'admin: recharge_card of Alice''s card');
SELECT results_eq(format('SELECT amount, balance_after FROM mps.recharge_card(p_card_id := %L, p_amount := 100.00, p_idempotency_key := %L, p_payment_method := %L)',
                         :'alice_card', 'alice-r1', 'stripe'),
                  $$VALUES (100.00, 100.00)$$, 'admin: the same recharge retried returns the first result');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'alice_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT card_type::text, my_role::text, balance, points, level_code FROM mps.get_card(p_card_id := %L)', :'alice_card'),
                  $$VALUES ('standard', 'owner', 100.00, 0::bigint, 'BRONZE')$$, 'member: get_card of her own card');
SELECT qr_plain AS alice_qr, single_use AS alice_single_use FROM mps.rotate_card_qr(p_card_id := :'alice_card') \gset
SELECT ok(:'alice_qr' LIKE 'MPS1.%' AND :'alice_single_use'::boolean, 'member: rotate_card_qr of her own card');
SELECT results_eq('SELECT name FROM mps.get_my_profile()', $$VALUES ('Alice')$$, 'member: get_my_profile');
SELECT results_eq('SELECT card_type::text, role::text FROM mps.get_my_bindings() ORDER BY card_type',
                  $$VALUES ('corporate', 'member'), ('standard', 'owner')$$, 'member: get_my_bindings');
SELECT results_eq('SELECT code FROM mps.list_membership_levels()', ARRAY['BRONZE', 'SILVER', 'GOLD', 'PLATINUM'],
                  'member: list_membership_levels');
SELECT throws_ok(format('SELECT mps.recharge_card(p_card_id := %L, p_amount := 10.00, p_idempotency_key := %L)', :'bob_card', 'alice-bob-1'),
                 '42501', NULL, 'member: recharge_card of another member''s card is refused (42501)');
SELECT throws_ok(format('SELECT mps.rotate_card_qr(p_card_id := %L)', :'bob_card'),
                 '42501', NULL, 'member: rotate_card_qr of another member''s card is refused (42501)');
SELECT throws_ok(format('SELECT mps.recharge_card(p_card_id := %L, p_amount := 10.00, p_idempotency_key := %L)', :'corp_card', 'alice-corp-1'),
                 '42501', NULL, 'member: recharge_card of the corporate card she is a member of is refused (42501)');
SELECT throws_ok(format('SELECT mps.unbind_card_member(p_card_id := %L, p_member_id := %L)', :'corp_card', :'eve_member'),
                 '42501', NULL, 'member: unbinding somebody else from the corporate card is refused (42501)');
SELECT throws_ok(format('SELECT * FROM mps.list_card_bindings(p_card_id := %L)', :'bob_card'),
                 'MP201', NULL, 'member: list_card_bindings of another member''s card reads as not found (MP201)');
SELECT throws_ok($$SELECT mps.create_merchant(p_code := 'ALICE1', p_name := 'Alice''s')$$, '42501', NULL,
                 'member: create_merchant is refused (42501)');
SELECT throws_ok(format('SELECT mps.issue_card(p_card_type := %L, p_currency := %L, p_owner_member_id := %L, p_enterprise_name := %L)',
                        'corporate', 'CNY', :'alice_member', 'Alice Inc'),
                 '42501', NULL, 'member: issue_card is refused (42501)');
SELECT throws_ok(format('SELECT mps.set_membership_levels(p_levels := %L)', :'ladder'), '42501', NULL,
                 'member: set_membership_levels is refused (42501)');
SELECT throws_ok(format('SELECT mps.assign_merchant_user(p_merchant_code := %L, p_user_id := %L)', 'SEED_A', :'alice_sub'),
                 '42501', NULL, 'member: assign_merchant_user (to herself) is refused (42501)');
SELECT throws_ok(format('SELECT * FROM mps.merchant_charge_by_qr(p_merchant_code := %L, p_qr_plain := %L, p_raw_amount := 1.00, p_idempotency_key := %L)',
                        'SEED_A', :'alice_qr', 'alice-self-1'),
                 '42501', NULL, 'member: charging her own code at a merchant is refused (42501)');
SELECT throws_ok(format('SELECT * FROM mps.merchant_refund_tx(p_merchant_code := %L, p_tx_id := %L, p_refund_amount := 1.00, p_idempotency_key := %L)',
                        'SEED_A', :'no_such_id', 'alice-refund-1'),
                 '42501', NULL, 'member: merchant_refund_tx is refused (42501)');
SELECT throws_ok($$SELECT * FROM mps.generate_settlement(p_merchant_code := 'SEED_A', p_period_start := now() - interval '1 day', p_period_end := now())$$,
                 '42501', NULL, 'member: generate_settlement is refused (42501)');
SELECT throws_ok($$SELECT * FROM mps.list_settlements(p_merchant_code := 'SEED_A')$$, '42501', NULL,
                 'member: list_settlements is refused (42501)');
SELECT throws_ok($$SELECT * FROM mps.merchant_daily_report(p_merchant_code := 'SEED_A', p_from := current_date, p_to := current_date)$$,
                 '42501', NULL, 'member: merchant_daily_report is refused (42501)');
SELECT throws_ok(format('SELECT mps.mark_settlement_paid(p_settlement_id := %L, p_payout_ref := %L)', :'no_such_id', 'X'),
                 '42501', NULL, 'member: mark_settlement_paid is refused (42501)');
SELECT throws_ok('SELECT * FROM mps.verify_ledger()', '42501', NULL, 'member: verify_ledger is refused (42501)');
SELECT throws_ok('SELECT * FROM mps.cron_rotate_qr_tokens()', '42501', NULL, 'member: cron_rotate_qr_tokens is refused (42501)');
SELECT throws_ok(format('SELECT * FROM mps.find_member_by_identity(p_provider := %L, p_external_id := %L)', 'line', 'x'),
                 '42501', NULL, 'member: find_member_by_identity is refused (42501)');
-- nothing is written directly, not even her own rows
SELECT throws_ok($$INSERT INTO mps.cards (card_no, card_type, currency) VALUES ('8000000000000001', 'standard', 'CNY')$$,
                 '42501', NULL, 'member: INSERT INTO mps.cards is refused (42501)');
SELECT throws_ok(format('UPDATE mps.cards SET balance = balance + 100000 WHERE id = %L', :'alice_card'),
                 '42501', NULL, 'member: UPDATE of her own card''s balance is refused (42501)');
SELECT throws_ok(format('DELETE FROM mps.transactions WHERE card_id = %L', :'alice_card'),
                 '42501', NULL, 'member: DELETE FROM mps.transactions is refused (42501)');
SELECT throws_ok(format('INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (%L, %L, %L)', :'bob_card', :'alice_member', 'owner'),
                 '42501', NULL, 'member: INSERT INTO mps.card_bindings is refused (42501)');
RESET ROLE;

-- ======================================================================
-- 商户操作员 merchant operator (Oscar @ SEED_A): charges and refunds
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'oscar_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT raw_amount, discount_amount, final_amount, balance_after, points_earned, level_after
                            FROM mps.merchant_charge_by_qr(p_merchant_code := %L, p_qr_plain := %L, p_raw_amount := 30.00,
                                                           p_idempotency_key := %L, p_order_no := %L)',
                         'SEED_A', :'alice_qr', 'A-1', 'A-0001'),
                  $$VALUES (30.00, 0.00, 30.00, 70.00, 30::bigint, 'BRONZE')$$,
                  'operator: merchant_charge_by_qr of Alice''s code (personal card, BRONZE, 30 points)');
SELECT results_eq(format('SELECT final_amount, balance_after FROM mps.merchant_charge_by_qr(p_merchant_code := %L, p_qr_plain := %L,
                                                           p_raw_amount := 30.00, p_idempotency_key := %L, p_order_no := %L)',
                         'SEED_A', :'alice_qr', 'A-1', 'A-0001'),
                  $$VALUES (30.00, 70.00)$$, 'operator: the same charge retried returns the first result');
SELECT throws_ok(format('SELECT * FROM mps.merchant_charge_by_qr(p_merchant_code := %L, p_qr_plain := %L, p_raw_amount := 30.00, p_idempotency_key := %L)',
                        'SEED_A', :'alice_qr', 'A-1b'),
                 'MP304', NULL, 'operator: a member''s code pays once (MP304)');
SELECT results_eq(format('SELECT raw_amount, discount_amount, final_amount, balance_after
                            FROM mps.merchant_charge_by_qr(p_merchant_code := %L, p_qr_plain := %L, p_raw_amount := 100.00,
                                                           p_idempotency_key := %L, p_order_no := %L)',
                         'SEED_A', :'eve_qr', 'A-2', 'A-0002'),
                  $$VALUES (100.00, 10.00, 90.00, 510.00)$$,
                  'operator: merchant_charge_by_qr of Eve''s code debits the corporate card, 10% off');
SELECT results_eq(format('SELECT raw_amount, discount_amount, final_amount, balance_after
                            FROM mps.merchant_charge_by_qr(p_merchant_code := %L, p_qr_plain := %L, p_raw_amount := 10.00,
                                                           p_idempotency_key := %L, p_order_no := %L)',
                         'SEED_A', :'shared_qr', 'A-3', 'A-0003'),
                  $$VALUES (10.00, 1.00, 9.00, 501.00)$$, 'operator: merchant_charge_by_qr of the corporate card''s shared code');
SELECT tx_id AS alice_tx FROM mps.v_usage_logs WHERE order_no = 'A-0001' \gset
SELECT results_eq(format('SELECT refund_amount, refunded_total, refundable_remaining, original_status, balance_after, points_reversed, points_after
                            FROM mps.merchant_refund_tx(p_merchant_code := %L, p_tx_id := %L, p_refund_amount := 10.00,
                                                        p_idempotency_key := %L, p_reason := %L)',
                         'SEED_A', :'alice_tx', 'A-R1', 'one item returned'),
                  $$VALUES (10.00, 10.00, 20.00, 'partially_refunded', 80.00, 10::bigint, 20::bigint)$$,
                  'operator: merchant_refund_tx, partial, back to Alice''s card with points reversed');
SELECT throws_ok(format('SELECT * FROM mps.merchant_refund_tx(p_merchant_code := %L, p_tx_id := %L, p_refund_amount := 25.00, p_idempotency_key := %L)',
                        'SEED_A', :'alice_tx', 'A-R2'),
                 'MP503', NULL, 'operator: refunding more than is left is MP503');
SELECT results_eq('SELECT merchant_code, kind::text, final_amount FROM mps.v_usage_logs ORDER BY created_at',
                  $$VALUES ('SEED_A', 'payment', 30.00), ('SEED_A', 'payment', 90.00), ('SEED_A', 'payment', 9.00), ('SEED_A', 'refund', 10.00)$$,
                  'operator: v_usage_logs shows his merchant''s takings and nothing else (no recharges, no other merchant)');
SELECT results_eq('SELECT count(*) FROM mps.transactions', ARRAY[4::bigint],
                  'operator: mps.transactions likewise holds only his merchant''s four movements');
SELECT throws_ok($$SELECT * FROM mps.merchant_charge_by_qr(p_merchant_code := 'SEED_B', p_qr_plain := 'MPS1.AAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB',
                                                          p_raw_amount := 1.00, p_idempotency_key := 'oscar-b-1')$$,
                 '42501', NULL, 'operator: charging at another merchant is refused (42501)');
SELECT throws_ok($$SELECT mps.create_merchant(p_code := 'OSCAR1', p_name := 'Oscar''s')$$, '42501', NULL,
                 'operator: create_merchant is refused (42501)');
SELECT throws_ok($$SELECT mps.update_merchant(p_merchant_code := 'SEED_A', p_fee_bp := 0)$$, '42501', NULL,
                 'operator: update_merchant of his own merchant is refused (42501)');
SELECT throws_ok(format('SELECT mps.assign_merchant_user(p_merchant_code := %L, p_user_id := %L, p_role := %L)', 'SEED_A', :'oscar_sub', 'manager'),
                 '42501', NULL, 'operator: promoting himself to manager is refused (42501)');
SELECT throws_ok($$SELECT * FROM mps.generate_settlement(p_merchant_code := 'SEED_A', p_period_start := now() - interval '1 day', p_period_end := now())$$,
                 '42501', NULL, 'operator: generate_settlement is refused (42501)');
SELECT throws_ok($$SELECT * FROM mps.list_settlements(p_merchant_code := 'SEED_A')$$, '42501', NULL,
                 'operator: list_settlements of his merchant is refused (managers only, 42501)');
SELECT throws_ok($$SELECT * FROM mps.merchant_daily_report(p_merchant_code := 'SEED_A', p_from := current_date, p_to := current_date)$$,
                 '42501', NULL, 'operator: merchant_daily_report is refused (managers only, 42501)');
SELECT throws_ok(format('SELECT mps.mark_settlement_paid(p_settlement_id := %L, p_payout_ref := %L)', :'no_such_id', 'X'),
                 '42501', NULL, 'operator: mark_settlement_paid is refused (42501)');
SELECT throws_ok('SELECT * FROM mps.verify_ledger()', '42501', NULL, 'operator: verify_ledger is refused (42501)');
SELECT throws_ok(format('SELECT mps.issue_card(p_card_type := %L, p_currency := %L, p_face_value := 10.00)', 'voucher', 'CNY'),
                 '42501', NULL, 'operator: issue_card is refused (42501)');
SELECT throws_ok(format('SELECT mps.recharge_card(p_card_id := %L, p_amount := 10.00, p_idempotency_key := %L)', :'alice_card', 'oscar-alice-1'),
                 '42501', NULL, 'operator: recharge_card of a member''s card is refused (42501)');
SELECT throws_ok(format('SELECT mps.rotate_card_qr(p_card_id := %L)', :'alice_card'),
                 '42501', NULL, 'operator: rotate_card_qr of a member''s card is refused (42501)');
SELECT throws_ok('SELECT * FROM mps.get_my_cards()', 'MP101', NULL, 'operator: has no member profile (MP101)');
RESET ROLE;

-- ======================================================================
-- another merchant's payment: Bob pays Otto (SEED_B)
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'bob_claims', true) AS jwt \gset
SELECT qr_plain AS bob_qr FROM mps.rotate_card_qr(p_card_id := :'bob_card', p_ttl_seconds := 120) \gset
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'otto_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT final_amount, balance_after FROM mps.merchant_charge_by_qr(p_merchant_code := %L, p_qr_plain := %L,
                                                           p_raw_amount := 20.00, p_idempotency_key := %L, p_order_no := %L)',
                         'SEED_B', :'bob_qr', 'B-1', 'B-0001'),
                  $$VALUES (20.00, 80.00)$$, 'operator (SEED_B): merchant_charge_by_qr of Bob''s code');
SELECT tx_id AS bob_tx FROM mps.v_usage_logs WHERE order_no = 'B-0001' \gset
SELECT results_eq(format('SELECT kind::text, merchant_code FROM mps.v_usage_logs WHERE card_id = %L', :'bob_card'),
                  $$VALUES ('payment', 'SEED_B')$$,
                  'operator (SEED_B): sees Bob''s payment at his merchant, not Bob''s recharge');
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'bob_card'), 'operator (SEED_B): does not see Bob''s card row');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'oscar_claims', true) AS jwt \gset
SELECT throws_ok(format('SELECT * FROM mps.merchant_refund_tx(p_merchant_code := %L, p_tx_id := %L, p_refund_amount := 1.00, p_idempotency_key := %L)',
                        'SEED_B', :'bob_tx', 'oscar-rb-1'),
                 '42501', NULL, 'operator: refunding in the name of another merchant is refused (42501)');
SELECT throws_ok(format('SELECT * FROM mps.merchant_refund_tx(p_merchant_code := %L, p_tx_id := %L, p_refund_amount := 1.00, p_idempotency_key := %L)',
                        'SEED_A', :'bob_tx', 'oscar-rb-2'),
                 'MP505', NULL, 'operator: another merchant''s payment, refunded through his own, is not found (MP505)');
RESET ROLE;

-- ======================================================================
-- 企业管理员 enterprise admin again: revoke the shared code, freeze/unfreeze
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'adam_claims', true) AS jwt \gset
-- the desk terminal's next code (the one above paid once), then revoked
SELECT qr_plain AS shared_qr
  FROM mps.rotate_card_qr(p_card_id := :'corp_card', p_ttl_seconds := 600, p_shared := true) \gset
SELECT results_eq(format('SELECT mps.revoke_card_qr(p_card_id := %L, p_shared := true)', :'corp_card'),
                  ARRAY[1], 'enterprise admin: revoke_card_qr p_shared := true revokes the shared code');
SELECT results_eq(format('SELECT mps.set_card_status(p_card_id := %L, p_status := %L, p_reason := %L)::text', :'corp_card', 'frozen', 'audit'),
                  ARRAY['frozen'], 'enterprise admin: set_card_status freezes the corporate card');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'oscar_claims', true) AS jwt \gset
SELECT throws_ok(format('SELECT * FROM mps.merchant_charge_by_qr(p_merchant_code := %L, p_qr_plain := %L, p_raw_amount := 5.00, p_idempotency_key := %L)',
                        'SEED_A', :'shared_qr', 'A-4'),
                 'MP303', NULL, 'operator: the revoked shared code no longer pays (MP303)');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'eve_claims', true) AS jwt \gset
SELECT throws_ok(format('SELECT mps.rotate_card_qr(p_card_id := %L)', :'corp_card'),
                 'MP202', NULL, 'enterprise member: no new code for a frozen card (MP202)');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'adam_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT mps.set_card_status(p_card_id := %L, p_status := %L)::text', :'corp_card', 'active'),
                  ARRAY['active'], 'enterprise admin: set_card_status unfreezes it');
RESET ROLE;

-- ======================================================================
-- 普通会员 plain member again: leaves the corporate card, reads her movements
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'alice_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT mps.unbind_card_member(p_card_id := %L)', :'corp_card'),
                  ARRAY[true], 'member: unbind_card_member unbinds herself from the corporate card');
SELECT results_eq('SELECT card_type::text, my_role::text, balance, points FROM mps.get_my_cards()',
                  $$VALUES ('standard', 'owner', 80.00, 20::bigint)$$, 'member: get_my_cards now lists her personal card only');
SELECT results_eq('SELECT kind::text, amount, merchant_code FROM mps.get_my_transactions()',
                  $$VALUES ('refund', 10.00, 'SEED_A'), ('payment', -30.00, 'SEED_A'), ('recharge', 100.00, NULL)$$,
                  'member: get_my_transactions, newest first');
SELECT results_eq(format('SELECT count(*) FROM mps.get_my_transactions(p_limit := 2, p_card_id := %L)', :'alice_card'),
                  ARRAY[2::bigint], 'member: get_my_transactions pages with p_limit');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'corp_card'),
                 'MP201', NULL, 'member: once unbound, the corporate card reads as not found (MP201)');
RESET ROLE;

-- ======================================================================
-- 系统管理员 platform admin: settlements, reports, ledger, reads everything
-- ======================================================================
SELECT clock_timestamp() AS period_end \gset
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', :'admin_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT merchant_code, currency::text, gross_payments, refunds, net, fee, payout, payment_count, refund_count, status::text
                            FROM mps.generate_settlement(p_merchant_code := %L, p_period_start := now(), p_period_end := %L)',
                         'SEED_A', :'period_end'),
                  $$VALUES ('SEED_A', 'CNY', 129.00, 10.00, 119.00, 1.19, 117.81, 3, 1, 'pending')$$,
                  'admin: generate_settlement of SEED_A (1% fee)');
SELECT settlement_id AS settlement FROM mps.list_settlements(p_merchant_code := 'SEED_A') \gset
SELECT results_eq(format('SELECT status::text, payout_ref FROM mps.mark_settlement_paid(p_settlement_id := %L, p_payout_ref := %L)',
                         :'settlement', 'BANK-0001'),
                  $$VALUES ('paid', 'BANK-0001')$$, 'admin: mark_settlement_paid');
SELECT results_eq($$SELECT sum(payments), sum(payment_count)::int FROM mps.merchant_daily_report(p_merchant_code := 'SEED_B', p_from := current_date - 1, p_to := current_date + 1)$$,
                  $$VALUES (20.00, 1)$$, 'admin: merchant_daily_report of any merchant');
SELECT is_empty('SELECT * FROM mps.verify_ledger()', 'admin: verify_ledger finds every invariant intact');
SELECT is((SELECT count(*) FROM mps.cron_rotate_qr_tokens(p_ttl_seconds := 300)), 0::bigint,
          'admin: cron_rotate_qr_tokens (no shared code is live after the revoke)');
SELECT results_eq(format('SELECT card_type::text, balance, points FROM mps.get_card(p_card_id := %L)', :'bob_card'),
                  $$VALUES ('standard', 80.00, 20::bigint)$$, 'admin: get_card of any member''s card');
SELECT results_eq(format('SELECT count(*) FROM mps.cards WHERE id IN (%L, %L, %L)', :'alice_card', :'bob_card', :'corp_card'),
                  ARRAY[3::bigint], 'admin: reads every member''s row in mps.cards');
SELECT results_eq(format('SELECT kind::text FROM mps.transactions WHERE card_id = %L ORDER BY created_at', :'bob_card'),
                  ARRAY['recharge', 'payment'], 'admin: reads every member''s mps.transactions');
SELECT results_eq(format('SELECT kind::text, amount FROM mps.v_usage_logs WHERE card_id = %L ORDER BY created_at', :'bob_card'),
                  $$VALUES ('recharge', 100.00), ('payment', -20.00)$$, 'admin: reads every member''s v_usage_logs');
SELECT throws_ok($$INSERT INTO mps.cards (card_no, card_type, currency) VALUES ('8000000000000002', 'standard', 'CNY')$$,
                 '42501', NULL, 'admin: even service_role does not INSERT INTO mps.cards directly (42501)');
SELECT throws_ok(format('UPDATE mps.transactions SET amount = 0 WHERE card_id = %L', :'bob_card'),
                 '42501', NULL, 'admin: even service_role does not UPDATE mps.transactions directly (42501)');
RESET ROLE;

-- ======================================================================
-- merchant manager (Mia @ SEED_A): settlements and reports, own merchant only
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'mia_claims', true) AS jwt \gset
SELECT results_eq($$SELECT gross_payments, refunds, net, fee, payout, status::text, payout_ref FROM mps.list_settlements(p_merchant_code := 'SEED_A')$$,
                  $$VALUES (129.00, 10.00, 119.00, 1.19, 117.81, 'paid', 'BANK-0001')$$, 'manager: list_settlements of her merchant');
SELECT results_eq($$SELECT card_type::text, sum(payments), sum(payment_count)::int, sum(refunds), sum(refund_count)::int, sum(net)
                      FROM mps.merchant_daily_report(p_merchant_code := 'SEED_A', p_from := current_date - 1, p_to := current_date + 1)
                     GROUP BY 1 ORDER BY 1$$,
                  $$VALUES ('corporate', 99.00, 2, 0.00, 0, 99.00), ('standard', 30.00, 1, 10.00, 1, 20.00)$$,
                  'manager: merchant_daily_report of her merchant, by card type');
SELECT throws_ok($$SELECT * FROM mps.list_settlements(p_merchant_code := 'SEED_B')$$, '42501', NULL,
                 'manager: list_settlements of another merchant is refused (42501)');
SELECT throws_ok($$SELECT * FROM mps.merchant_daily_report(p_merchant_code := 'SEED_B', p_from := current_date, p_to := current_date)$$,
                 '42501', NULL, 'manager: merchant_daily_report of another merchant is refused (42501)');
SELECT throws_ok($$SELECT * FROM mps.generate_settlement(p_merchant_code := 'SEED_A', p_period_start := now() - interval '1 day', p_period_end := now() - interval '1 hour')$$,
                 '42501', NULL, 'manager: generate_settlement is the platform admin''s (42501)');
SELECT throws_ok(format('SELECT mps.mark_settlement_paid(p_settlement_id := %L, p_payout_ref := %L)', :'settlement', 'BANK-0001'),
                 '42501', NULL, 'manager: mark_settlement_paid is the platform admin''s (42501)');
SELECT throws_ok($$SELECT mps.update_merchant(p_merchant_code := 'SEED_A', p_fee_bp := 0)$$, '42501', NULL,
                 'manager: update_merchant (her own fee) is refused (42501)');
SELECT results_eq('SELECT count(*) FROM mps.settlements', ARRAY[1::bigint], 'manager: mps.settlements holds her merchant''s one row');
RESET ROLE;

-- ======================================================================
-- nobody but the platform admin reads another member's data (Bob's card)
-- ======================================================================
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'alice_claims', true) AS jwt \gset
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'bob_card'), 'member: Bob''s card is not in mps.cards');
SELECT is_empty(format('SELECT 1 FROM mps.transactions WHERE card_id = %L', :'bob_card'), 'member: Bob''s movements are not in mps.transactions');
SELECT is_empty(format('SELECT 1 FROM mps.v_usage_logs WHERE card_id = %L', :'bob_card'), 'member: Bob''s movements are not in v_usage_logs');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'bob_card'), 'MP201', NULL, 'member: get_card of Bob''s card is MP201');
SELECT is_empty(format('SELECT 1 FROM mps.member_profiles WHERE id = %L', :'bob_member'), 'member: Bob''s profile is not in mps.member_profiles');
SELECT set_config('request.jwt.claims', :'forged_claims', true) AS jwt \gset
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'bob_card'),
                'member with a forged service_role claim (role authenticated): still not Bob''s card');
SELECT throws_ok($$SELECT mps.create_merchant(p_code := 'FORGED', p_name := 'Forged')$$, '42501', NULL,
                 'member with a forged service_role claim: create_merchant is refused (42501)');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'eve_claims', true) AS jwt \gset
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'bob_card'), 'enterprise member: Bob''s card is not in mps.cards');
SELECT is_empty(format('SELECT 1 FROM mps.transactions WHERE card_id = %L', :'bob_card'), 'enterprise member: Bob''s movements are not in mps.transactions');
SELECT is_empty(format('SELECT 1 FROM mps.v_usage_logs WHERE card_id = %L', :'bob_card'), 'enterprise member: Bob''s movements are not in v_usage_logs');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'bob_card'), 'MP201', NULL, 'enterprise member: get_card of Bob''s card is MP201');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'alice_card'), 'MP201', NULL,
                 'enterprise member: get_card of a fellow member''s personal card is MP201');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'adam_claims', true) AS jwt \gset
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'bob_card'), 'enterprise admin: Bob''s card is not in mps.cards');
SELECT is_empty(format('SELECT 1 FROM mps.transactions WHERE card_id = %L', :'bob_card'), 'enterprise admin: Bob''s movements are not in mps.transactions');
SELECT is_empty(format('SELECT 1 FROM mps.v_usage_logs WHERE card_id = %L', :'bob_card'), 'enterprise admin: Bob''s movements are not in v_usage_logs');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'bob_card'), 'MP201', NULL, 'enterprise admin: get_card of Bob''s card is MP201');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'alice_card'), 'MP201', NULL,
                 'enterprise admin: get_card of a bound member''s personal card is MP201');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'olga_claims', true) AS jwt \gset
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'bob_card'), 'owner: Bob''s card is not in mps.cards');
SELECT is_empty(format('SELECT 1 FROM mps.transactions WHERE card_id = %L', :'bob_card'), 'owner: Bob''s movements are not in mps.transactions');
SELECT is_empty(format('SELECT 1 FROM mps.v_usage_logs WHERE card_id = %L', :'bob_card'), 'owner: Bob''s movements are not in v_usage_logs');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'bob_card'), 'MP201', NULL, 'owner: get_card of Bob''s card is MP201');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'oscar_claims', true) AS jwt \gset
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id IN (%L, %L)', :'bob_card', :'alice_card'), 'operator: no member''s card is in mps.cards, not even a payer''s');
SELECT is_empty(format('SELECT 1 FROM mps.transactions WHERE card_id = %L', :'bob_card'), 'operator: Bob''s movements (elsewhere) are not in mps.transactions');
SELECT is_empty(format('SELECT 1 FROM mps.v_usage_logs WHERE card_id = %L', :'bob_card'), 'operator: Bob''s movements (elsewhere) are not in v_usage_logs');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'alice_card'), 'MP201', NULL, 'operator: get_card of a payer''s card is MP201');
SELECT is_empty('SELECT 1 FROM mps.member_profiles', 'operator: no member profile is readable');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'mia_claims', true) AS jwt \gset
SELECT is_empty(format('SELECT 1 FROM mps.cards WHERE id = %L', :'bob_card'), 'manager: Bob''s card is not in mps.cards');
SELECT is_empty(format('SELECT 1 FROM mps.transactions WHERE card_id = %L', :'bob_card'), 'manager: Bob''s movements are not in mps.transactions');
SELECT is_empty(format('SELECT 1 FROM mps.v_usage_logs WHERE card_id = %L', :'bob_card'), 'manager: Bob''s movements are not in v_usage_logs');
SELECT throws_ok(format('SELECT mps.get_card(p_card_id := %L)', :'bob_card'), 'MP201', NULL, 'manager: get_card of Bob''s card is MP201');
RESET ROLE;

-- ======================================================================
-- strangers to a card: signed in, but not bound to it
-- ======================================================================
-- set_card_status and unbind_card_member must refuse a caller who has no
-- role on the card (mps_internal.my_card_role() is NULL for them), as
-- list_card_bindings and bind_card_member do. The close-with-payout probe is
-- refused by the inner mps_internal.adjust_card_balance check.
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'oscar_claims', true) AS jwt \gset
SELECT throws_ok(format('SELECT mps.set_card_status(p_card_id := %L, p_status := %L, p_reason := %L)', :'olga_card', 'frozen', 'prank'),
                 '42501', NULL, 'operator (no member profile): set_card_status of a member''s card is refused (42501)');
SELECT throws_ok(format('SELECT mps.unbind_card_member(p_card_id := %L, p_member_id := %L)', :'corp_card', :'eve_member'),
                 '42501', NULL, 'operator (no member profile): unbind_card_member of a card''s member is refused (42501)');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'bob_claims', true) AS jwt \gset
SELECT throws_ok(format('SELECT mps.set_card_status(p_card_id := %L, p_status := %L, p_reason := %L)', :'corp_card', 'frozen', 'prank'),
                 '42501', NULL, 'member not bound to the corporate card: freezing it is refused (42501)');
SELECT throws_ok(format('SELECT mps.unbind_card_member(p_card_id := %L, p_member_id := %L)', :'corp_card', :'adam_member'),
                 '42501', NULL, 'member not bound to the corporate card: unbinding its admin is refused (42501)');
SELECT throws_ok(format('SELECT mps.set_card_status(p_card_id := %L, p_status := %L, p_reason := %L)', :'olga_card', 'closed', 'prank'),
                 '42501', NULL, 'member not bound to a card: closing it (zero balance) is refused (42501)');
SELECT throws_ok(format('SELECT mps.set_card_status(p_card_id := %L, p_status := %L, p_reason := %L, p_payout := true)', :'voucher_card', 'closed', 'prank'),
                 '42501', NULL, 'member not bound to a voucher: closing it with a payout is refused (42501)');
RESET ROLE;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', :'admin_claims', true) AS jwt \gset
SELECT results_eq(format('SELECT status::text, balance FROM mps.get_card(p_card_id := %L)', :'olga_card'),
                  $$VALUES ('active', 0.00)$$, 'admin: Olga''s personal card is still active (strangers neither froze nor closed it)');
SELECT results_eq(format('SELECT status::text, balance FROM mps.get_card(p_card_id := %L)', :'voucher_card'),
                  $$VALUES ('active', 50.00)$$, 'admin: the voucher is still active and holds its 50.00');
SELECT results_eq(format('SELECT member_name, role::text FROM mps.list_card_bindings(p_card_id := %L) ORDER BY member_name', :'corp_card'),
                  $$VALUES ('Adam', 'admin'), ('Eve', 'member'), ('Olga', 'owner')$$,
                  'admin: the corporate card''s bindings are unchanged by strangers');
RESET ROLE;

-- ======================================================================
-- anon: nothing at all
-- ======================================================================
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', :'anon_claims', true) AS jwt \gset
SELECT throws_ok(format('SELECT 1 FROM mps.cards WHERE id = %L', :'bob_card'), '42501', NULL, 'anon: SELECT FROM mps.cards is refused (42501)');
SELECT throws_ok('SELECT 1 FROM mps.transactions', '42501', NULL, 'anon: SELECT FROM mps.transactions is refused (42501)');
SELECT throws_ok('SELECT 1 FROM mps.v_usage_logs', '42501', NULL, 'anon: SELECT FROM mps.v_usage_logs is refused (42501)');
SELECT throws_ok($$INSERT INTO mps.cards (card_no, card_type, currency) VALUES ('8000000000000003', 'standard', 'CNY')$$,
                 '42501', NULL, 'anon: INSERT INTO mps.cards is refused (42501)');
-- every function of the API, by the catalogue: no EXECUTE privilege ...
SELECT ok(NOT has_function_privilege('anon', p.oid, 'EXECUTE'), format('anon: no EXECUTE on mps.%s', p.proname))
FROM pg_proc p WHERE p.pronamespace = 'mps'::regnamespace ORDER BY p.proname;
-- ... and called with NULL arguments: 42501, before any of its code runs
SELECT throws_ok(format('SELECT mps.%I(%s)', p.proname,
                        coalesce((SELECT string_agg('NULL::' || format_type(a.t, NULL), ', ' ORDER BY a.n)
                                  FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, n)), '')),
                 '42501', NULL, format('anon: calling mps.%s is refused (42501)', p.proname))
FROM pg_proc p WHERE p.pronamespace = 'mps'::regnamespace ORDER BY p.proname;
RESET ROLE;

-- ======================================================================
-- GET (PostgREST runs it read-only): reads work, a write is 25006 (HTTP 405)
-- ======================================================================
SET LOCAL transaction_read_only = on;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'alice_claims', true) AS jwt \gset
SELECT results_eq('SELECT balance FROM mps.get_my_cards()', ARRAY[80.00], 'GET as member: get_my_cards works read-only');
SELECT lives_ok('SELECT * FROM mps.get_my_transactions()', 'GET as member: get_my_transactions works read-only');
-- (recharge_card is no longer hers to call; her own write is a new payment code)
SELECT throws_ok(format('SELECT mps.rotate_card_qr(p_card_id := %L)', :'alice_card'),
                 '25006', NULL, 'GET as member: rotate_card_qr (a write) fails read-only (25006, HTTP 405)');
RESET ROLE;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'mia_claims', true) AS jwt \gset
SELECT lives_ok($$SELECT * FROM mps.list_settlements(p_merchant_code := 'SEED_A')$$, 'GET as manager: list_settlements works read-only');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
