-- 21_charge: merchant_charge_by_qr. The result row, idempotent retries, key
-- and order-number rules, amount validation (CNY and JPY), balance, merchant
-- and card state, who may charge, and the level discount (half-up to the cent).
\i test/fixtures/money_prelude.sql
-- JWT subjects
\set alice_sub '21000000-0000-4000-8000-0000000000a1'
\set bob_sub   '21000000-0000-4000-8000-0000000000b0'
\set jay_sub   '21000000-0000-4000-8000-0000000000c0'
\set op_sub    '21000000-0000-4000-8000-0000000000e1'
\set op2_sub   '21000000-0000-4000-8000-0000000000e2'
\set jop_sub   '21000000-0000-4000-8000-0000000000e3'
\set c_alice '{"sub":"21000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set c_op    '{"sub":"21000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set c_op2   '{"sub":"21000000-0000-4000-8000-0000000000e2","role":"authenticated"}'
\set c_jop   '{"sub":"21000000-0000-4000-8000-0000000000e3","role":"authenticated"}'

-- ===== setup, as the platform admin =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'C21SHOP', p_name := 'Charge Shop');
SELECT mps.create_merchant(p_code := 'C21OTHER', p_name := 'Other Shop');
SELECT mps.create_merchant(p_code := 'C21SUSP', p_name := 'Suspended Shop');
SELECT mps.create_merchant(p_code := 'C21JPY', p_name := 'Yen Shop', p_currency := 'JPY');
SELECT mps.assign_merchant_user('C21SHOP', :'op_sub');
SELECT mps.assign_merchant_user('C21SUSP', :'op_sub');
SELECT mps.assign_merchant_user('C21OTHER', :'op2_sub');
SELECT mps.assign_merchant_user('C21JPY', :'jop_sub');
\o
SELECT member_id AS alice_member, card_id AS alice_card
FROM mps.create_member_profile(p_name := 'Alice', p_auth_user_id := :'alice_sub') \gset
SELECT card_id AS bob_card FROM mps.create_member_profile(p_name := 'Bob', p_auth_user_id := :'bob_sub') \gset
SELECT card_id AS jay_card, currency FROM mps.create_member_profile(p_name := 'Jay', p_currency := 'JPY',
       p_auth_user_id := :'jay_sub') \gset
SELECT :'currency' AS jay_currency;
SELECT balance_after FROM mps.recharge_card(:'alice_card', 1000, 'c21-topup-alice');
SELECT balance_after FROM mps.recharge_card(:'bob_card', 5, 'c21-topup-bob');
SELECT balance_after FROM mps.recharge_card(:'jay_card', 1000, 'c21-topup-jay');

-- ===== a charge: the full result =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT qr_plain AS code1 FROM mps.rotate_card_qr(:'alice_card') \gset
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT c::text AS ch1_row, c.tx_id AS ch1_tx, c.tx_no ~ '^MP[0-9A-HJKMNP-TV-Z]{26}$' AS r_tx_no_format,
       c.card_id = :'alice_card' AS r_card, c.created_at BETWEEN now() AND clock_timestamp() AS r_created_now
FROM mps.merchant_charge_by_qr(p_merchant_code := 'C21SHOP', p_qr_plain := :'code1', p_raw_amount := 100.00,
                               p_idempotency_key := 'c21-k1', p_tag := '{"scene":"miniapp"}',
                               p_order_no := 'ORD-1') c \gset
COMMIT;
SELECT :'r_tx_no_format' AS tx_no_format, :'r_card' AS alice_card, :'r_created_now' AS created_in_the_call;
-- 100.00 at BRONZE (no discount): 100 points, which is SILVER's minimum
SELECT currency, raw_amount, discount_amount, final_amount, balance_after, points_earned, points_after,
       level_before, level_after, level_changed, order_no, details
FROM (SELECT (:'ch1_row'::mps.charge_result).*) r;
-- the stored movement: signed amount, the parties, the code, the key, the order, the tag
SELECT t.kind, t.status, t.currency, t.amount, t.raw_amount, t.discount_amount, t.final_amount,
       t.refunded_amount, t.balance_after, t.points_delta, t.points_after,
       t.merchant_id = (SELECT id FROM mps.merchants WHERE code = 'C21SHOP') AS merchant,
       t.member_id = :'alice_member' AS member, t.actor_user_id = :'op_sub' AS actor_is_operator,
       t.qr_code_id = (SELECT id FROM mps.card_qr_codes WHERE lookup_id = split_part(:'code1', '.', 2)) AS code,
       t.idempotency_key, t.order_no, t.tag
FROM mps.transactions t WHERE t.id = :'ch1_tx';
SELECT delta, points_after, reason, tx_id = :'ch1_tx' AS of_the_charge FROM mps.point_ledger WHERE card_id = :'alice_card';
SELECT action, entity_type, actor_via, actor_user_id = :'op_sub' AS by_operator, idempotency_key,
       after->>'merchant' AS merchant, after->>'final_amount' AS final_minor, after->>'balance_after' AS balance_minor,
       after->>'points_delta' AS points, after->>'level_after' AS level_after, entity_id = :'ch1_tx' AS tx
FROM audit.event_log WHERE action = 'tx.charge' AND after->>'card_id' = :'alice_card';
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== idempotent retries: the same key and parameters give back the first result =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT c IS NOT DISTINCT FROM :'ch1_row'::mps.charge_result AS same_row, c::text = :'ch1_row' AS same_text,
       c.tx_id = :'ch1_tx' AS same_tx
FROM mps.merchant_charge_by_qr(p_merchant_code := 'C21SHOP', p_qr_plain := :'code1', p_raw_amount := 100.00,
                               p_idempotency_key := 'c21-k1', p_tag := '{"scene":"miniapp"}',
                               p_order_no := 'ORD-1') c;
-- the same amount written with more zeros is the same request
SELECT c IS NOT DISTINCT FROM :'ch1_row'::mps.charge_result AS same_row_100_000
FROM mps.merchant_charge_by_qr(p_merchant_code := 'c21shop', p_qr_plain := :'code1', p_raw_amount := 100.000,
                               p_idempotency_key := 'c21-k1', p_tag := '{"scene": "miniapp"}',
                               p_order_no := 'ORD-1') c;
COMMIT;
-- the card changes (a recharge); a retry still returns the first result, balance_after included
SELECT balance_after FROM mps.recharge_card(:'alice_card', 50, 'c21-topup-alice-2');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT c IS NOT DISTINCT FROM :'ch1_row'::mps.charge_result AS same_row_after_recharge,
       c.balance_after AS first_balance_after
FROM mps.merchant_charge_by_qr(p_merchant_code := 'C21SHOP', p_qr_plain := :'code1', p_raw_amount := 100.00,
                               p_idempotency_key := 'c21-k1', p_tag := '{"scene":"miniapp"}',
                               p_order_no := 'ORD-1') c;
-- the same key with other parameters: MP501 (amount, order number, tag, another code)
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 100.01, %L, %L, %L)', 'C21SHOP', :'code1',
              'c21-k1', '{"scene":"miniapp"}', 'ORD-1')) AS other_amount;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 100.00, %L, %L, %L)', 'C21SHOP', :'code1',
              'c21-k1', '{"scene":"miniapp"}', 'ORD-9')) AS other_order;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 100.00, %L, %L, %L)', 'C21SHOP', :'code1',
              'c21-k1', '{"scene":"pos"}', 'ORD-1')) AS other_tag;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 100.00, %L, NULL, %L)', 'C21SHOP', :'code1',
              'c21-k1', 'ORD-1')) AS no_tag;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 100.00, %L, %L, %L)', 'C21SHOP',
              'MPS1.AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', 'c21-k1', '{"scene":"miniapp"}', 'ORD-1')) AS other_code;
COMMIT;
-- none of the retries moved money: one payment, one recharge more
SELECT mt.card_state(:'alice_card') AS alice;
SELECT count(*) AS charge_events FROM audit.event_log WHERE action = 'tx.charge' AND after->>'card_id' = :'alice_card';

-- ===== keys: required, 1 to 200 printable characters; scoped per merchant =====
SELECT qr_plain AS code2 FROM mps.rotate_card_qr(:'alice_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00)', 'C21SHOP', :'code2')) AS no_key;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, NULL)', 'C21SHOP', :'code2')) AS null_key;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code2', '')) AS empty_key;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code2', repeat('k', 201))) AS key_201_chars;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code2', E'c21\tkey')) AS key_with_tab;
COMMIT;
-- key c21-k1 is C21SHOP's; at another merchant it is a new charge
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op2', true) AS claims_set \gset
SELECT tx_id <> :'ch1_tx' AS new_tx, raw_amount, discount_amount, final_amount, balance_after, level_before
FROM mps.merchant_charge_by_qr('C21OTHER', :'code2', 20.00, 'c21-k1');
COMMIT;

-- ===== amounts: positive, at most the currency's decimals and cap =====
SELECT qr_plain AS code3 FROM mps.rotate_card_qr(:'alice_card') \gset
SELECT mt.card_state(:'alice_card') AS alice_before;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 0, %L)', 'C21SHOP', :'code3', 'c21-a1')) AS zero;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 0.00, %L)', 'C21SHOP', :'code3', 'c21-a2')) AS zero_cents;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, -1, %L)', 'C21SHOP', :'code3', 'c21-a3')) AS negative;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, %L::numeric, %L)', 'C21SHOP', :'code3', 'NaN', 'c21-a4')) AS nan;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, %L::numeric, %L)', 'C21SHOP', :'code3', 'Infinity', 'c21-a5')) AS infinity;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.001, %L)', 'C21SHOP', :'code3', 'c21-a6')) AS three_decimals;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 0.001, %L)', 'C21SHOP', :'code3', 'c21-a7')) AS a_tenth_of_a_cent;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, NULL, %L)', 'C21SHOP', :'code3', 'c21-a8')) AS null_amount;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1000000.01, %L)', 'C21SHOP', :'code3', 'c21-a9')) AS above_max_amount;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 99999999999999999999, %L)', 'C21SHOP', :'code3', 'c21-a10')) AS huge;
-- exactly the cap (1000000.00) is a valid amount; the card just cannot pay it
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1000000.00, %L)', 'C21SHOP', :'code3', 'c21-a11')) AS at_max_amount;
COMMIT;
SELECT mt.card_state(:'alice_card') AS alice_after;
-- JPY has no decimals: 1.5 is refused, 100.0 is 100 yen
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_jop', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.5, %L)', 'C21JPY', 'MPS1.AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', 'c21-j1')) AS jpy_1_5;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 10000001, %L)', 'C21JPY', 'MPS1.AAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA', 'c21-j2')) AS jpy_above_max;
COMMIT;
SELECT qr_plain AS jcode FROM mps.rotate_card_qr(:'jay_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_jop', true) AS claims_set \gset
SELECT currency, raw_amount, discount_amount, final_amount, balance_after, points_earned, level_after
FROM mps.merchant_charge_by_qr('C21JPY', :'jcode', 100.0, 'c21-j3');
COMMIT;

-- ===== currencies must match: MP210 =====
SELECT qr_plain AS jcode2 FROM mps.rotate_card_qr(:'jay_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_jop', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 100, %L)', 'C21JPY', :'code3', 'c21-x1')) AS cny_card_at_jpy_merchant;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'jcode2', 'c21-x2')) AS jpy_card_at_cny_merchant;
COMMIT;

-- ===== insufficient balance: MP206, nothing changes, the key is not used up =====
SELECT qr_plain AS bcode FROM mps.rotate_card_qr(:'bob_card') \gset
SELECT mt.card_state(:'bob_card') AS bob_before;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 5.01, %L)', 'C21SHOP', :'bcode', 'c21-b1')) AS insufficient;
COMMIT;
SELECT mt.card_state(:'bob_card') AS bob_after;
SELECT count(*) AS keys_kept FROM mps.idempotency_registry WHERE key = 'c21-b1';
-- one cent more on the card, and the same call goes through, leaving exactly 0.00
SELECT balance_after FROM mps.recharge_card(:'bob_card', 0.01, 'c21-topup-bob-2');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT final_amount, balance_after FROM mps.merchant_charge_by_qr('C21SHOP', :'bcode', 5.01, 'c21-b1');
COMMIT;
SELECT mt.card_state(:'bob_card') AS bob;

-- ===== merchants: unknown MP401, inactive MP402, not yours 42501 =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
-- to an operator an unknown merchant code is refused as another merchant's is (42501)
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'NOPE21', :'code3', 'c21-m1')) AS unknown_merchant;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(NULL, %L, 1.00, %L)', :'code3', 'c21-m2')) AS no_merchant;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21OTHER', :'code3', 'c21-m3')) AS other_merchant;
COMMIT;
\o /dev/null
SELECT mps.update_merchant('C21SUSP', p_status := 'suspended');
\o
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SUSP', :'code3', 'c21-m4')) AS suspended_merchant;
COMMIT;
\o /dev/null
SELECT mps.update_merchant('C21SUSP', p_status := 'closed');
\o
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SUSP', :'code3', 'c21-m5')) AS closed_merchant;
COMMIT;
-- a member is no merchant user; neither is a caller claiming service_role from the authenticated role
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code3', 'c21-m6')) AS member_charges;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code3', 'c21-m7')) AS fake_service_role;
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) AS claims_set \gset
SELECT left(mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code3', 'c21-m8')), 5) AS anon_charges;
COMMIT;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== cards: frozen MP202, closed MP203, expired MP204; holder unbound MP209 =====
UPDATE mps.cards SET status = 'frozen' WHERE id = :'alice_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code3', 'c21-s1')) AS frozen_card;
COMMIT;
UPDATE mps.cards SET status = 'closed' WHERE id = :'alice_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code3', 'c21-s2')) AS closed_card;
COMMIT;
UPDATE mps.cards SET status = 'active', expires_at = now() - interval '1 day' WHERE id = :'alice_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code3', 'c21-s3')) AS expired_card;
COMMIT;
UPDATE mps.cards SET expires_at = NULL WHERE id = :'alice_card';
-- the code's holder is now only a viewer, or no longer bound (tried by the admin, then undone)
BEGIN;
UPDATE mps.card_bindings SET role = 'viewer' WHERE card_id = :'alice_card';
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code3', 'c21-s4')) AS holder_is_viewer;
ROLLBACK;
BEGIN;
DELETE FROM mps.card_bindings WHERE card_id = :'alice_card';
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'C21SHOP', :'code3', 'c21-s5')) AS holder_unbound;
ROLLBACK;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== order numbers: once per merchant =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT order_no, final_amount FROM mps.merchant_charge_by_qr('C21SHOP', :'code3', 1.00, 'c21-o1', p_order_no := 'ORD-2');
COMMIT;
SELECT qr_plain AS code4 FROM mps.rotate_card_qr(:'alice_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L, p_order_no := %L)', 'C21SHOP', :'code4', 'c21-o2', 'ORD-2')) AS order_charged_twice;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L, p_order_no := %L)', 'C21SHOP', :'code4', 'c21-o3', 'ORD-1')) AS first_order_again;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L, p_order_no := %L)', 'C21SHOP', :'code4', 'c21-o4', '')) AS empty_order_no;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L, p_order_no := %L)', 'C21SHOP', :'code4', 'c21-o5', repeat('9', 65))) AS order_no_65_chars;
-- line items are checked: malformed MP006, a raw amount that disagrees with them MP007
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, NULL, %L, p_items := %L)', 'C21SHOP', :'code4', 'c21-o6',
              '[{"sku":"A","qty":1,"unit_price":1.00}]')) AS malformed_items;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L, p_items := %L)', 'C21SHOP', :'code4', 'c21-o8',
              '[{"product_id":"A","quantity":2,"unit_price":1.00}]')) AS raw_amount_disagrees;
COMMIT;
-- order numbers are per merchant: ORD-2 is free at C21OTHER
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op2', true) AS claims_set \gset
SELECT order_no, final_amount FROM mps.merchant_charge_by_qr('C21OTHER', :'code4', 2.00, 'c21-o7', p_order_no := 'ORD-2');
COMMIT;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== the level discount: SILVER takes 5%, rounded half-up to the cent =====
-- (a series of charges by the platform admin, each with a fresh code of the owner)
SELECT a.n, l.level_before, a.raw AS raw_amount, l.discount_amount, l.final_amount,
       l.discount_amount = round(a.raw * 0.05, 2) AS half_up_5pct, l.points_earned, l.level_after
FROM unnest(ARRAY[0.09, 0.10, 0.30, 10.10, 0.49, 199.99]::numeric[]) WITH ORDINALITY a(raw, n),
     LATERAL mt.admin_charge(:'alice_card', 'C21SHOP', a.raw, 'c21-d' || a.n) l
ORDER BY a.n;
-- GOLD takes 10% from the next charge on
SELECT a.n, l.level_before, a.raw AS raw_amount, l.discount_amount, l.final_amount,
       l.discount_amount = round(a.raw * 0.10, 2) AS half_up_10pct, l.points_earned, l.level_after
FROM unnest(ARRAY[0.05, 0.04, 123.45]::numeric[]) WITH ORDINALITY a(raw, n),
     LATERAL mt.admin_charge(:'alice_card', 'C21SHOP', a.raw, 'c21-g' || a.n) l
ORDER BY a.n;
-- with line items (and no marketing group) the card's discount is taken once, on the
-- subtotal: two lines of 0.05 at 10% are 0.01 off (not 0.01 per line)
SELECT qr_plain AS code5 FROM mps.rotate_card_qr(:'alice_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT level_before, raw_amount, discount_amount, final_amount, details->>'card_discount' AS card_discount,
       jsonb_array_length(details->'lines') AS lines
FROM mps.merchant_charge_by_qr('C21SHOP', :'code5', NULL, 'c21-i1',
       p_items := '[{"product_id":"A","quantity":1,"unit_price":0.05},{"product_id":"B","quantity":1,"unit_price":0.05}]');
COMMIT;
-- what was stored agrees with what was returned
SELECT t.raw_amount, t.discount_amount, t.final_amount, -t.amount = t.final_amount AS amount_is_minus_final
FROM mps.transactions t WHERE t.card_id = :'alice_card' AND t.idempotency_key IN ('c21-d6', 'c21-g3')
ORDER BY t.raw_amount;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== audit and invariants =====
SELECT action, count(*) AS events FROM audit.event_log
WHERE after->>'card_id' IN (:'alice_card', :'bob_card', :'jay_card') AND action LIKE 'tx.%'
GROUP BY action ORDER BY action;
SELECT * FROM mt.invariants(:'t0');
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
-- ===== keys count characters, not bytes; blank keys are refused =====
SELECT card_id AS key_card FROM mps.create_member_profile(p_name := 'Key Tester') \gset
SELECT mt.try(format($$SELECT * FROM mps.recharge_card(%L, 1, '   ')$$, :'key_card')) AS blank_key;
SELECT mt.try(format($$SELECT * FROM mps.recharge_card(%L, 1, %L)$$, :'key_card', repeat('键', 200))) AS key_200_chinese_chars;
SELECT mt.try(format($$SELECT * FROM mps.recharge_card(%L, 1, %L)$$, :'key_card', repeat('键', 201))) AS key_201_chinese_chars;
