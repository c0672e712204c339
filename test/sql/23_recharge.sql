-- 23_recharge: recharge_card. Only the platform admin credits a card without
-- a verified payment (DESIGN.md §3): members, card owners and admins, operators
-- are refused (42501) before any card is looked up; never a voucher. Then, as
-- the platform admin: idempotent retries scoped to the card, amount and balance
-- limits, card state.
\i test/fixtures/money_prelude.sql
-- JWT subjects
\set alice_sub '23000000-0000-4000-8000-0000000000a1'
\set bob_sub   '23000000-0000-4000-8000-0000000000b0'
\set pp_sub    '23000000-0000-4000-8000-0000000000c0'
\set op_sub    '23000000-0000-4000-8000-0000000000e1'
\set c_alice '{"sub":"23000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set c_bob   '{"sub":"23000000-0000-4000-8000-0000000000b0","role":"authenticated"}'
\set c_pp    '{"sub":"23000000-0000-4000-8000-0000000000c0","role":"authenticated"}'
\set c_op    '{"sub":"23000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set c_nobody '{"sub":"23000000-0000-4000-8000-0000000000f0","role":"authenticated"}'

-- ===== setup, as the platform admin =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'T23SHOP', p_name := 'Topup Shop');
SELECT mps.assign_merchant_user('T23SHOP', :'op_sub');
\o
SELECT member_id AS alice_member, card_id AS alice_card
FROM mps.create_member_profile(p_name := 'Alice', p_auth_user_id := :'alice_sub') \gset
SELECT member_id AS bob_member, card_id AS bob_card
FROM mps.create_member_profile(p_name := 'Bob', p_auth_user_id := :'bob_sub') \gset
SELECT member_id AS pp_member, card_id AS pp_card
FROM mps.create_member_profile(p_name := 'Pat', p_default_card_type := 'prepaid', p_auth_user_id := :'pp_sub') \gset
SELECT card_id AS jpy_card FROM mps.create_member_profile(p_name := 'Jun', p_currency := 'JPY') \gset

-- ===== a member may not recharge her own card (42501, nothing moves); the platform admin does =====
SELECT mt.card_state(:'alice_card') AS alice_before \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 100.00, %L, %L, %L)', :'alice_card', 'rc-1', 'wechat', '{"channel":"app"}')) AS alice_on_her_own_card;
COMMIT;
SELECT mt.card_state(:'alice_card') AS alice, mt.card_state(:'alice_card') = :'alice_before' AS unchanged;
-- the platform admin (here: the superuser, no claims) recharges it
SELECT r::text AS rc1_row, r.tx_id AS rc1, r.tx_no ~ '^MP[0-9A-HJKMNP-TV-Z]{26}$' AS r_tx_no_format,
       r.card_id = :'alice_card' AS r_card, r.created_at BETWEEN now() AND clock_timestamp() AS r_created_in_call
FROM mps.recharge_card(p_card_id := :'alice_card', p_amount := 100.00, p_idempotency_key := 'rc-1',
                       p_payment_method := 'wechat', p_tag := '{"channel":"app"}') r \gset
SELECT :'r_tx_no_format' AS tx_no_format, :'r_card' AS her_card, :'r_created_in_call' AS created_in_call;
SELECT currency, amount, balance_after FROM (SELECT (:'rc1_row'::mps.recharge_result).*) r;
-- the movement: no points, no merchant, no acting member or user (the admin's
-- own hand); the payment method is kept as the reason
SELECT kind, status, amount, raw_amount, final_amount, points_delta, balance_after, points_after,
       merchant_id IS NULL AS no_merchant, member_id IS NULL AS no_member,
       actor_user_id IS NULL AS no_actor_user, reason, tag, idempotency_key
FROM mps.transactions WHERE id = :'rc1';
-- audited as the platform admin's, by database role
SELECT action, actor_via, actor_admin, actor_user_id IS NULL AS no_actor_user, idempotency_key,
       after->>'amount' AS amount_minor, after->>'balance_after' AS balance_minor,
       after->>'payment_method' AS payment_method, entity_id = :'rc1' AS tx
FROM audit.event_log WHERE action = 'tx.recharge' AND after->>'card_id' = :'alice_card';

-- ===== retries: the same key and parameters give back the first result, even after the card moved =====
SELECT balance_after FROM mps.recharge_card(:'alice_card', 1.00, 'rc-admin-1');
SELECT r IS NOT DISTINCT FROM :'rc1_row'::mps.recharge_result AS same_row, r::text = :'rc1_row' AS same_text,
       r.balance_after AS first_balance_after
FROM mps.recharge_card(p_card_id := :'alice_card', p_amount := 100.00, p_idempotency_key := 'rc-1',
                       p_payment_method := 'wechat', p_tag := '{"channel":"app"}') r;
SELECT r IS NOT DISTINCT FROM :'rc1_row'::mps.recharge_result AS same_row_100_0
FROM mps.recharge_card(:'alice_card', 100.0, 'rc-1', 'wechat', '{"channel": "app"}') r;
-- the same key with other parameters: MP501
SELECT mt.try(format('SELECT mps.recharge_card(%L, 100.01, %L, %L, %L)', :'alice_card', 'rc-1', 'wechat', '{"channel":"app"}')) AS other_amount;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 100.00, %L, %L, %L)', :'alice_card', 'rc-1', 'alipay', '{"channel":"app"}')) AS other_method;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 100.00, %L, %L)', :'alice_card', 'rc-1', 'wechat')) AS no_tag;
-- keys are required
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00)', :'alice_card')) AS no_key;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', '')) AS empty_key;
SELECT mt.card_state(:'alice_card') AS alice;
-- the key is the card's: on another card the same key is a new recharge
SELECT tx_id <> :'rc1' AS new_tx, amount, balance_after FROM mps.recharge_card(:'bob_card', 100.00, 'rc-1', 'wechat', '{"channel":"app"}');

-- ===== amounts and payment methods (as the platform admin) =====
SELECT mt.try(format('SELECT mps.recharge_card(%L, 0, %L)', :'alice_card', 'rc-a1')) AS zero;
SELECT mt.try(format('SELECT mps.recharge_card(%L, -5.00, %L)', :'alice_card', 'rc-a2')) AS negative;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 1.001, %L)', :'alice_card', 'rc-a3')) AS three_decimals;
SELECT mt.try(format('SELECT mps.recharge_card(%L, %L::numeric, %L)', :'alice_card', 'NaN', 'rc-a4')) AS nan;
SELECT mt.try(format('SELECT mps.recharge_card(%L, %L::numeric, %L)', :'alice_card', '-Infinity', 'rc-a5')) AS minus_infinity;
SELECT mt.try(format('SELECT mps.recharge_card(%L, NULL, %L)', :'alice_card', 'rc-a6')) AS null_amount;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 1000000.01, %L)', :'alice_card', 'rc-a7')) AS above_max_amount;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L, %L)', :'alice_card', 'rc-a8', 'WeChat')) AS method_upper_case;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L, %L)', :'alice_card', 'rc-a9', '')) AS method_empty;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L, %L)', :'alice_card', 'rc-a10', repeat('m', 33))) AS method_33_chars;
-- the cap itself is fine
SELECT amount, balance_after FROM mps.recharge_card(:'alice_card', 1000000.00, 'rc-a11', 'bank_card');
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== the balance limit: up to currencies.max_balance exactly, not one unit more (MP208) =====
SELECT cur.max_amount, cur.max_balance FROM mps.currencies cur WHERE code = 'JPY';
SELECT count(*) AS recharges, max(r.balance_after) AS balance
FROM generate_series(1, 99) g, LATERAL mps.recharge_card(:'jpy_card', 10000000, 'rc-jpy-' || g) r;
SELECT balance_after FROM mps.recharge_card(:'jpy_card', 9999999, 'rc-jpy-100');
SELECT balance_after FROM mps.recharge_card(:'jpy_card', 1, 'rc-jpy-101');
SELECT mt.try(format('SELECT mps.recharge_card(%L, 1, %L)', :'jpy_card', 'rc-jpy-102')) AS one_yen_too_many;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 1.5, %L)', :'jpy_card', 'rc-jpy-103')) AS jpy_1_5;
SELECT mt.card_state(:'jpy_card') AS jpy;

-- ===== who may recharge: the platform admin only =====
-- Signed-in users hold no EXECUTE on recharge_card (PostgreSQL refuses, 42501):
-- Bob on Alice's card, an operator, a signed-in user without a profile, no subject.
SELECT mt.card_state(:'alice_card') AS alice_before \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w1')) AS bob_on_alices_card;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w2')) AS operator;
SELECT set_config('request.jwt.claims', :'c_nobody', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w3')) AS user_without_profile;
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w4')) AS no_subject;
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) AS claims_set \gset
SELECT left(mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w5')), 5) AS anon;
COMMIT;
SELECT mt.card_state(:'alice_card') = :'alice_before' AS alice_unchanged;
-- The C check refuses by itself, too: with EXECUTE granted back (as a 0.1.0
-- database upgraded with copied rights might still have it), a member gets the
-- same refusal on her own card as on a card that does not exist (checked
-- before any card lookup).
GRANT EXECUTE ON FUNCTION mps.recharge_card(uuid, numeric, text, text, jsonb) TO authenticated;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-x1')) AS c_check_own_card \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', gen_random_uuid(), 'rc-x2')) AS c_check_random_card \gset
COMMIT;
REVOKE EXECUTE ON FUNCTION mps.recharge_card(uuid, numeric, text, text, jsonb) FROM authenticated;
SELECT :'c_check_own_card' AS own_card;
SELECT :'c_check_random_card' AS random_card;
SELECT :'c_check_own_card' = :'c_check_random_card' AS same_refusal;
SELECT has_function_privilege('authenticated', 'mps.recharge_card(uuid, numeric, text, text, jsonb)', 'EXECUTE') AS authenticated_executes;
SELECT mt.card_state(:'alice_card') = :'alice_before' AS alice_still_unchanged;
-- cards that do not exist: MP201; no card: MP003
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', '23000000-0000-4000-8000-00000000dead', 'rc-w6')) AS unknown_card;
SELECT mt.try(format('SELECT mps.recharge_card(NULL, 10.00, %L)', 'rc-w7')) AS no_card;
-- a prepaid card's owner may not recharge it (nothing moves); the platform admin does
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 50.00, %L, %L)', :'pp_card', 'rc-p1', 'alipay')) AS prepaid_owner;
COMMIT;
SELECT mt.card_state(:'pp_card') AS prepaid;
SELECT amount, balance_after FROM mps.recharge_card(:'pp_card', 50.00, 'rc-p1', 'alipay');
-- a corporate card: neither its owner and admins nor its plain members and
-- viewers recharge it (nothing moves); the platform admin does
INSERT INTO mps.cards (card_no, card_type, currency, enterprise_name, fixed_discount_bp)
VALUES ('7230000000000001', 'corporate', 'CNY', 'Acme Ltd', 1000) RETURNING id AS corp_card \gset
INSERT INTO mps.card_bindings (card_id, member_id, role)
VALUES (:'corp_card', :'pp_member', 'owner'), (:'corp_card', :'alice_member', 'admin'), (:'corp_card', :'bob_member', 'member');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 300.00, %L)', :'corp_card', 'rc-corp-1')) AS corporate_owner;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 200.00, %L)', :'corp_card', 'rc-corp-2')) AS corporate_admin;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'corp_card', 'rc-corp-3')) AS corporate_member;
COMMIT;
UPDATE mps.card_bindings SET role = 'viewer' WHERE card_id = :'corp_card' AND member_id = :'bob_member';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'corp_card', 'rc-corp-4')) AS corporate_viewer;
COMMIT;
SELECT mt.card_state(:'corp_card') AS corporate;
SELECT amount, balance_after FROM mps.recharge_card(:'corp_card', 300.00, 'rc-corp-1');
SELECT amount, balance_after FROM mps.recharge_card(:'corp_card', 200.00, 'rc-corp-2');
-- a member bound to a personal card as anything but its owner does not recharge it
INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (:'alice_card', :'bob_member', 'member');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'alice_card', 'rc-w8')) AS member_of_personal_card;
COMMIT;
DELETE FROM mps.card_bindings WHERE card_id = :'alice_card' AND member_id = :'bob_member';
SELECT mt.card_state(:'alice_card') = :'alice_before' AS alice_unchanged;

-- ===== a voucher card is never recharged: MP207 (its owner is refused before that) =====
INSERT INTO mps.cards (card_no, card_type, currency, face_value)
VALUES ('7230000000000002', 'voucher', 'CNY', 5000) RETURNING id AS voucher_card \gset
INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (:'voucher_card', :'alice_member', 'owner');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'voucher_card', 'rc-v1')) AS owner_recharges_voucher;
COMMIT;
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'voucher_card', 'rc-v2')) AS admin_recharges_voucher;
SELECT mt.card_state(:'voucher_card') AS voucher;

-- ===== card state: frozen MP202, closed MP203, expired MP204 =====
UPDATE mps.cards SET status = 'frozen' WHERE id = :'bob_card';
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'bob_card', 'rc-s1')) AS frozen;
UPDATE mps.cards SET status = 'closed' WHERE id = :'bob_card';
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'bob_card', 'rc-s2')) AS closed_by_admin;
UPDATE mps.cards SET status = 'active', expires_at = now() - interval '1 minute' WHERE id = :'bob_card';
SELECT mt.try(format('SELECT mps.recharge_card(%L, 10.00, %L)', :'bob_card', 'rc-s3')) AS expired;
UPDATE mps.cards SET expires_at = NULL WHERE id = :'bob_card';
-- the failed calls left no key behind: the same key works now
SELECT amount, balance_after FROM mps.recharge_card(:'bob_card', 10.00, 'rc-s1');
SELECT mt.card_state(:'bob_card') AS bob;

-- ===== audit and invariants =====
SELECT count(*) AS recharge_events, count(DISTINCT entity_id) AS distinct_txs
FROM audit.event_log WHERE action = 'tx.recharge' AND after->>'card_id' = :'jpy_card';
SELECT * FROM mt.invariants(:'t0');
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
