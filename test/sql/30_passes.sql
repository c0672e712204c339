-- 30_passes: pass cards (次卡, seed 002). Plans, purchase (first purchase and
-- top-up, auto_activate both ways, payment lines, card balance), review
-- (approve, reject with refund), suspend / resume / revoke / expire,
-- redemption (zero-amount, surcharge, payment whitelist, one pass per order,
-- uses), print slips, member views and RLS, audit, and the ledger.
-- ---- prelude ----------------------------------------------------------------
\o /dev/null
SELECT mps.grant_role_privileges('mps_member_app', 'authenticated');
SELECT mps.grant_role_privileges('mps_merchant_api', 'authenticated');
SELECT mps.grant_role_privileges('mps_admin', 'service_role');
\o
SET client_min_messages = warning;
SET timezone = 'UTC';
-- Runs p_sql; 'ok', or 'SQLSTATE: message | detail' with uuids and timestamps masked,
-- and a warning when an MP error comes without a hint.
CREATE FUNCTION pg_temp.err(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                          v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
  RETURN regexp_replace(regexp_replace(
           v_state || ': ' || v_msg || ' | ' || coalesce(v_detail, '')
             || CASE WHEN v_state LIKE 'MP%' AND coalesce(v_hint, '') = '' THEN ' | NO HINT' ELSE '' END,
           '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
         '[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+([+-][0-9]{2}(:?[0-9]{2})?|Z)?', '<ts>', 'g');
END
$$;
-- One pass as a line of text (no ids, no times).
CREATE FUNCTION pg_temp.pass(p_id uuid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('%s %s hold=%s total=%s used=%s remaining=%s expires=%s',
    p.code, m.status, m.on_hold, m.total_uses, m.used_uses, m.remaining_uses,
    CASE WHEN m.expires_at IS NULL THEN 'never'
         ELSE round(extract(epoch FROM m.expires_at - m.activated_at) / 86400)::text || 'd after activation' END)
  FROM mps.member_passes m JOIN mps.pass_plans p ON p.id = m.plan_id WHERE m.id = p_id
$$;
-- The member's fresh payment code, made in her app (her claims) while the
-- till's transaction goes on: a merchant redeems a pass only with it.
CREATE FUNCTION pg_temp.code_of(p_claims text, p_card uuid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_till text := current_setting('request.jwt.claims', true);
  v text;
BEGIN
  PERFORM set_config('request.jwt.claims', p_claims, true);
  SELECT qr_plain INTO v FROM mps.rotate_card_qr(p_card);
  PERFORM set_config('request.jwt.claims', v_till, true);
  RETURN v;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text), pg_temp.pass(uuid), pg_temp.code_of(text, uuid) TO PUBLIC;
\set op_claims   '{"sub":"0a550000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set op2_claims  '{"sub":"0a550000-0000-4000-8000-0000000000b2","role":"authenticated"}'
\set ann_claims  '{"sub":"0a550000-0000-4000-8000-000000000a11","role":"authenticated"}'
\set bea_claims  '{"sub":"0a550000-0000-4000-8000-000000000bea","role":"authenticated"}'

-- ---- setup: merchants, operators, members and their cards -------------------
SELECT code, currency FROM mps.create_merchant('PASS01', 'TopTea Centro', 'EUR');
SELECT code, currency FROM mps.create_merchant('PASS02', 'TopTea Norte', 'EUR');
SELECT code, currency FROM mps.create_merchant('PASSCN', 'TopTea Shanghai', 'CNY');
SELECT role FROM mps.assign_merchant_user('PASS01', '0a550000-0000-4000-8000-0000000000a1', 'operator');
SELECT role FROM mps.assign_merchant_user('PASS02', '0a550000-0000-4000-8000-0000000000b2', 'operator');
SELECT member_id AS ann, card_id AS ann_card FROM mps.create_member_profile(p_name := 'Ann Pass',
  p_currency := 'EUR', p_auth_user_id := '0a550000-0000-4000-8000-000000000a11') \gset
SELECT member_id AS bea, card_id AS bea_card FROM mps.create_member_profile(p_name := 'Bea Pass',
  p_currency := 'EUR', p_auth_user_id := '0a550000-0000-4000-8000-000000000bea') \gset
SELECT member_id AS cal, card_id AS cal_card FROM mps.create_member_profile(p_name := 'Cal Pass',
  p_currency := 'EUR', p_default_card_type := 'prepaid') \gset
SELECT balance_after FROM mps.recharge_card(:'ann_card', 100.00, 'pass-fund-ann');
SELECT balance_after FROM mps.recharge_card(:'cal_card', 50.00, 'pass-fund-cal');

-- ==== 1. plans (platform admin) ================================================
SELECT code, name, uses_per_purchase, price, currency, validity_days, auto_activate, products, categories, is_active
FROM mps.create_pass_plan('TEA10', 'Ten milk teas', 10, 30.00, 'EUR', p_validity_days := 30,
                          p_products := '["MILK_TEA", "MILK_TEA"]', p_categories := '["TEA"]');
SELECT code, uses_per_purchase, price, validity_days, auto_activate, products, categories
FROM mps.create_pass_plan('REV5', 'Five teas, reviewed', 5, 20.00, 'EUR', p_auto_activate := false,
                          p_categories := '["TEA"]');
SELECT code, is_active FROM mps.create_pass_plan('OLD3', 'Old plan', 3, 9.00, 'EUR',
                          p_products := '["COFFEE"]', p_is_active := false);
SELECT code, currency, price FROM mps.create_pass_plan('YUAN5', 'Yuan plan', 5, 50.00, 'CNY',
                          p_categories := '["TEA"]');
-- invalid plans
SELECT pg_temp.err($$SELECT mps.create_pass_plan('x', 'Bad code', 1, 1.00, 'EUR', p_products := '["A"]')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('NOCOVER', 'No coverage', 1, 1.00, 'EUR')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('BADLIST', 'Bad list', 1, 1.00, 'EUR', p_products := '"A"')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('BADLIST', 'Bad list', 1, 1.00, 'EUR', p_products := '[1]')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('ZERO', 'Zero uses', 0, 1.00, 'EUR', p_products := '["A"]')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('NEGDAYS', 'Bad days', 1, 1.00, 'EUR', -1, p_products := '["A"]')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('CENTS', 'Three decimals', 1, 1.001, 'EUR', p_products := '["A"]')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('FREE', 'Free', 1, 0, 'EUR', p_products := '["A"]')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('XXX', 'Unknown currency', 1, 1.00, 'XYZ', p_products := '["A"]')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('NONAME', NULL, 1, 1.00, 'EUR', p_products := '["A"]')$$);
SELECT pg_temp.err($$SELECT mps.create_pass_plan('tea10', 'Again', 1, 1.00, 'EUR', p_products := '["A"]')$$);
-- update: NULL keeps a field, validity 0 removes the expiry
SELECT code, name, price, validity_days, products FROM mps.update_pass_plan('OLD3', p_name := 'Old coffee plan',
  p_price := 12.50, p_validity_days := 90, p_products := '["COFFEE", "LATTE"]');
SELECT code, validity_days FROM mps.update_pass_plan('OLD3', p_validity_days := 0);
SELECT pg_temp.err($$SELECT mps.update_pass_plan('NOPE', p_name := 'x')$$);
SELECT pg_temp.err($$SELECT mps.update_pass_plan('OLD3', p_products := '[]', p_categories := '[]')$$);
SELECT code FROM mps.list_pass_plans(p_include_inactive := true);
SELECT action, entity_type, after->>'code' AS code FROM audit.event_log
 WHERE action LIKE 'pass_plan.%' ORDER BY id;
-- plans are the platform admin's; everyone signed in sees the ones on sale
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'ann_claims', true) IS NOT NULL AS as_ann;
SELECT pg_temp.err($$SELECT mps.create_pass_plan('MINE', 'Mine', 1, 1.00, 'EUR', p_products := '["A"]')$$);
SELECT pg_temp.err($$SELECT mps.update_pass_plan('TEA10', p_price := 0.01)$$);
SELECT code FROM mps.list_pass_plans(p_include_inactive := true);
SELECT code FROM mps.pass_plans ORDER BY code;
ROLLBACK;

-- ==== 2. purchase (merchant operator) ===========================================
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'op_claims', true) IS NOT NULL AS as_operator;
-- first purchase of an auto-activating plan: active at once, validity from now
SELECT order_id AS o1, pass_id AS ann_tea FROM mps.purchase_pass('PASS01', 'TEA10', :'ann', 1,
  '[{"method": "cash", "amount": 30.00}]', 'pp-1') \gset
SELECT plan_code, first_purchase, quantity, uses_added, remaining_uses, pass_status, review_state,
       currency, total, payments, card_id, card_amount, card_balance_after, order_no,
       expires_at - created_at AS validity
FROM mps.purchase_pass('PASS01', 'TEA10', :'ann', 1, '[{"method": "cash", "amount": 30.00}]', 'pp-1');
SELECT order_id = :'o1' AS same_order FROM mps.purchase_pass('PASS01', 'TEA10', :'ann', 1,
  '[{"method": "cash", "amount": 30.00}]', 'pp-1');
SELECT pg_temp.err($$SELECT mps.purchase_pass('PASS01', 'TEA10', $$ || quote_literal(:'ann') || $$, 1,
  '[{"method": "bank_card", "amount": 30.00}]', 'pp-1')$$);
-- first purchase of a plan without auto_activate: suspended, awaiting review
SELECT order_id AS o2, pass_id AS ann_rev FROM mps.purchase_pass('PASS01', 'REV5', :'ann', 2,
  '[{"method": "bizum", "amount": 15.00}, {"method": "bank_card", "amount": 25.00}]', 'pp-2') \gset
SELECT first_purchase, uses_added, remaining_uses, pass_status, review_state, total, payments, expires_at
FROM mps.purchase_pass('PASS01', 'REV5', :'ann', 2,
  '[{"method": "bizum", "amount": 15.00}, {"method": "bank_card", "amount": 25.00}]', 'pp-2');
-- a top-up of an active pass adds uses and stays active (B1), needs no review
SELECT pass_id = :'ann_tea' AS same_pass, first_purchase, uses_added, remaining_uses, pass_status, review_state,
       expires_at - created_at AS validity
FROM mps.purchase_pass('PASS01', 'TEA10', :'ann', 2,
  '[{"method": "platform", "amount": 60.00}]', 'pp-3', 'TILL-7');
-- a top-up of a pass awaiting review stays suspended and joins the review
SELECT order_id AS o4, pass_status, review_state FROM mps.purchase_pass('PASS01', 'REV5', :'ann', 1,
  '[{"method": "cash", "amount": 20.00}]', 'pp-4') \gset
SELECT :'pass_status' AS pass_status, :'review_state' AS review_state;
COMMIT;
SELECT pg_temp.pass(:'ann_rev');
-- paid from the member's own card balance, with her payment code
SELECT qr_plain AS ann_qr FROM mps.rotate_card_qr(:'ann_card') \gset
SELECT qr_plain AS cal_qr FROM mps.rotate_card_qr(:'cal_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'op_claims', true) IS NOT NULL AS as_operator;
SELECT first_purchase, uses_added, remaining_uses, total, payments, card_id = :'ann_card' AS her_card,
       card_amount, card_balance_after
FROM mps.purchase_pass('PASS01', 'TEA10', :'ann', 1,
  jsonb_build_array(jsonb_build_object('method', 'member_card', 'amount', 25.00, 'qr', :'ann_qr'),
                    jsonb_build_object('method', 'cash', 'amount', 5.00)), 'pp-5');
COMMIT;
SELECT kind, amount, raw_amount, final_amount, balance_after, points_delta, order_no, reason,
       details->>'plan' AS plan, m.code AS merchant
FROM mps.transactions t JOIN mps.merchants m ON m.id = t.merchant_id
WHERE t.card_id = :'ann_card' AND t.kind = 'pass_purchase';
SELECT used_at IS NOT NULL AS code_used,
       used_tx_id = (SELECT t.id FROM mps.transactions t
                     WHERE t.card_id = :'ann_card' AND t.kind = 'pass_purchase') AS used_by_the_purchase
FROM mps.card_qr_codes q
 WHERE q.card_id = :'ann_card' ORDER BY q.id DESC LIMIT 1;
\set ann_spent_qr :ann_qr
-- refusals
SELECT qr_plain AS ann_qr FROM mps.rotate_card_qr(:'ann_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'op_claims', true) IS NOT NULL AS as_operator;
\set cash30 '[{"method": "cash", "amount": 30.00}]'
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'NOPE', :'ann', :'cash30', 'pr-1'));
-- the code that paid the purchase above pays once
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  jsonb_build_array(jsonb_build_object('method', 'member_card', 'amount', 30.00, 'qr', :'ann_spent_qr')), 'pr-1b'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'OLD3', :'ann', :'cash30', 'pr-2'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'YUAN5', :'ann', :'cash30', 'pr-3'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', gen_random_uuid(), :'cash30', 'pr-4'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, NULL, 1, %L, %L)', 'PASS01', 'TEA10', :'cash30', 'pr-5'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 0, %L, %L)', 'PASS01', 'TEA10', :'ann', :'cash30', 'pr-6'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, NULL, %L, %L)', 'PASS01', 'TEA10', :'ann', :'cash30', 'pr-7'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, NULL, %L)', 'PASS01', 'TEA10', :'ann', 'pr-8'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '{"method": "cash", "amount": 30.00}', 'pr-9'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '["cash"]', 'pr-10'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "voucher", "amount": 30.00}]', 'pr-11'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "cash", "amount": 10.00}, {"method": "cash", "amount": 20.00}]', 'pr-12'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "cash", "ammount": 30.00}]', 'pr-13'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "cash", "amount": "30.00"}]', 'pr-14'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "cash", "amount": 30.00, "qr": "MPS1.x.y"}]', 'pr-15'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "member_card", "amount": 30.00}]', 'pr-16'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "member_card", "amount": 30.00, "qr": "not-a-code"}]', 'pr-17'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "cash", "amount": 29.99}]', 'pr-18'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 2, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "cash", "amount": 30.00}]', 'pr-19'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "cash", "amount": 30.001}]', 'pr-20'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  '[{"method": "cash", "amount": 40.00}, {"method": "bizum", "amount": -10.00}]', 'pr-21'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, NULL)', 'PASS01', 'TEA10', :'ann', :'cash30'));
-- the balance must cover the card's part; the card must be the member's
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 4, %L, %L)', 'PASS01', 'TEA10', :'ann',
  jsonb_build_array(jsonb_build_object('method', 'member_card', 'amount', 120.00, 'qr', :'ann_qr')), 'pr-22'));
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann',
  jsonb_build_array(jsonb_build_object('method', 'member_card', 'amount', 30.00, 'qr', :'cal_qr')), 'pr-23'));
-- 纯净单: the purchase's order number is this purchase's only
SELECT order_no FROM mps.purchase_pass('PASS01', 'TEA10', :'bea', 1, :'cash30', 'pp-6', 'ORDER-P1');
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L, %L)', 'PASS01', 'TEA10', :'bea',
  :'cash30', 'pr-24', 'ORDER-P1'));
-- an operator of another merchant, the wrong currency
SELECT set_config('request.jwt.claims', :'op2_claims', true) IS NOT NULL AS as_operator2;
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann', :'cash30', 'pr-25'));
-- a member is not a merchant operator
SELECT set_config('request.jwt.claims', :'ann_claims', true) IS NOT NULL AS as_ann;
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann', :'cash30', 'pr-26'));
COMMIT;
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASSCN', 'TEA10', :'ann', :'cash30', 'pr-27'));
BEGIN;
SET LOCAL ROLE anon;
SELECT pg_temp.err(format('SELECT mps.purchase_pass(%L, %L, %L, 1, %L, %L)', 'PASS01', 'TEA10', :'ann', :'cash30', 'pr-28'));
ROLLBACK;
-- nothing of the refused calls stayed
SELECT count(*) AS orders, sum(uses) AS uses FROM mps.pass_topup_orders WHERE member_id IN (:'ann', :'bea');
SELECT mps_internal.to_major(balance, 2) AS balance FROM mps.cards WHERE id = :'ann_card';

-- ==== 3. review, suspend, resume, revoke (platform admin) ===========================
-- Bea's first purchase of REV5 (from her card) waits for review; approving makes it active.
SELECT qr_plain AS bea_qr FROM mps.rotate_card_qr(:'bea_card') \gset
SELECT balance_after FROM mps.recharge_card(:'bea_card', 40.00, 'pass-fund-bea');
SELECT order_id AS b1, pass_id AS bea_rev FROM mps.purchase_pass('PASS01', 'REV5', :'bea', 1,
  jsonb_build_array(jsonb_build_object('method', 'member_card', 'amount', 20.00, 'qr', :'bea_qr')), 'pp-7') \gset
SELECT plan_code, review_state, pass_status, pass_remaining_uses, card_amount FROM mps.list_pass_orders() ORDER BY created_at;
SELECT plan_code, review_state, pass_status, pass_remaining_uses, review_note
FROM mps.activate_member_pass(:'b1', 'documents checked');
SELECT pg_temp.pass(:'bea_rev');
SELECT pg_temp.err(format('SELECT mps.activate_member_pass(%L)', :'b1'));
SELECT pg_temp.err(format('SELECT mps.reject_pass_purchase(%L)', :'b1'));
SELECT pg_temp.err('SELECT mps.activate_member_pass(gen_random_uuid())');
SELECT pg_temp.err('SELECT mps.reject_pass_purchase(gen_random_uuid())');
SELECT pg_temp.err('SELECT mps.activate_member_pass(NULL)');
-- Ann's REV5: two pending purchases (first + joined top-up); the pass opens after both.
SELECT review_state, pass_status FROM mps.activate_member_pass(:'o2');
SELECT pg_temp.pass(:'ann_rev');
SELECT review_state, pass_status, pass_remaining_uses FROM mps.activate_member_pass(:'o4');
SELECT pg_temp.pass(:'ann_rev');
-- Cal buys REV5 from his card; head office rejects it: the card gets its money back.
SELECT order_id AS c1, pass_id AS cal_rev, card_balance_after FROM mps.purchase_pass('PASS01', 'REV5', :'cal', 1,
  jsonb_build_array(jsonb_build_object('method', 'member_card', 'amount', 20.00, 'qr', :'cal_qr')), 'pp-8') \gset
SELECT :'card_balance_after' AS cal_balance_after_purchase;
SELECT review_state, pass_status, pass_remaining_uses, card_amount, refund_tx_id IS NOT NULL AS refunded, review_note
FROM mps.reject_pass_purchase(:'c1', 'not eligible');
SELECT mps_internal.to_major(balance, 2) AS balance FROM mps.cards WHERE id = :'cal_card';
SELECT kind, status, amount, final_amount, refunded_amount, balance_after, reason
FROM mps.transactions WHERE card_id = :'cal_card' ORDER BY created_at;
SELECT pg_temp.pass(:'cal_rev');
SELECT pg_temp.err(format('SELECT mps.reject_pass_purchase(%L)', :'c1'));
-- a new purchase after a revoked pass starts a new pass (a first purchase again)
SELECT pass_id <> :'cal_rev' AS new_pass, first_purchase, pass_status, review_state
FROM mps.purchase_pass('PASS01', 'REV5', :'cal', 1, '[{"method": "cash", "amount": 20.00}]', 'pp-9');
SELECT pass_id AS cal_rev2 FROM mps.list_member_passes(:'cal') WHERE status = 'suspended' \gset
-- a pass with purchases awaiting review cannot be revoked; reject without card money
SELECT pg_temp.err(format('SELECT mps.revoke_member_pass(%L)', :'cal_rev2'));
SELECT order_id AS c2 FROM mps.list_pass_orders() WHERE pass_id = :'cal_rev2' \gset
SELECT review_state, pass_status, card_amount, refund_tx_id IS NULL AS no_refund FROM mps.reject_pass_purchase(:'c2');
-- manual hold: a top-up keeps a suspended pass suspended, resume reopens it
SELECT plan_code, status, awaiting_review, on_hold, status_reason, remaining_uses
FROM mps.suspend_member_pass(:'ann_tea', 'risk check');
SELECT pg_temp.err(format('SELECT mps.suspend_member_pass(%L)', :'ann_tea'));
SELECT first_purchase, pass_status, review_state, remaining_uses FROM mps.purchase_pass('PASS01', 'TEA10', :'ann', 1,
  '[{"method": "cash", "amount": 30.00}]', 'pp-10');
SELECT plan_code, status, on_hold, status_reason, remaining_uses FROM mps.resume_member_pass(:'ann_tea', 'cleared');
SELECT pg_temp.err(format('SELECT mps.resume_member_pass(%L)', :'ann_tea'));
-- a hold on a pass awaiting review: approving keeps it suspended until the hold is lifted
SELECT order_id AS d1, pass_id AS cal_rev3 FROM mps.purchase_pass('PASS01', 'REV5', :'cal', 1,
  '[{"method": "cash", "amount": 20.00}]', 'pp-11') \gset
SELECT status, awaiting_review, on_hold FROM mps.suspend_member_pass(:'cal_rev3', 'fraud review');
SELECT review_state, pass_status FROM mps.activate_member_pass(:'d1');
SELECT status, awaiting_review, on_hold FROM mps.resume_member_pass(:'cal_rev3');
SELECT pg_temp.pass(:'cal_rev3');
-- revoke is final
SELECT plan_code, status, status_reason FROM mps.revoke_member_pass(:'cal_rev3', 'card reported stolen');
SELECT pg_temp.err(format('SELECT mps.suspend_member_pass(%L)', :'cal_rev3'));
SELECT pg_temp.err(format('SELECT mps.revoke_member_pass(%L)', :'cal_rev3'));
-- one more of Cal's, left awaiting review
SELECT pass_id AS cal_rev4 FROM mps.purchase_pass('PASS01', 'REV5', :'cal', 1,
  '[{"method": "cash", "amount": 20.00}]', 'pp-20') \gset
SELECT pg_temp.err('SELECT mps.revoke_member_pass(gen_random_uuid())');
-- the review RPCs are the platform admin's
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'op_claims', true) IS NOT NULL AS as_operator;
SELECT pg_temp.err(format('SELECT mps.activate_member_pass(%L)', :'o2'));
SELECT pg_temp.err(format('SELECT mps.reject_pass_purchase(%L)', :'o2'));
SELECT pg_temp.err(format('SELECT mps.suspend_member_pass(%L)', :'ann_tea'));
SELECT pg_temp.err('SELECT mps.expire_member_passes()');
SELECT pg_temp.err('SELECT * FROM mps.list_pass_orders()');
ROLLBACK;

SELECT qr_plain AS cal_code FROM mps.rotate_card_qr(:'cal_card') \gset
SELECT qr_plain AS cal_shared FROM mps.rotate_card_qr(:'cal_card', p_shared := true) \gset
-- ==== 4. redemption (merchant operator) ================================================
SELECT pg_temp.pass(:'ann_tea');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'op_claims', true) IS NOT NULL AS as_operator;
SELECT pg_temp.code_of(:'ann_claims', :'ann_card') AS ann_code \gset
-- zero-amount: uses only, no order, no invoice; no template yet, so no slip
SELECT batch_id AS r1 FROM mps.redeem_pass('PASS01', :'ann_tea', '[{"product": "MILK_TEA", "quantity": 2}]', 'rd-1', p_qr_plain := :'ann_code') \gset
SELECT plan_code, uses, remaining_uses, currency, extra_total, payments, invoice_due, order_no, slip_produced, print_job
FROM mps.redeem_pass('PASS01', :'ann_tea', '[{"product": "MILK_TEA", "quantity": 2}]', 'rd-1', p_qr_plain := :'ann_code');
SELECT batch_id = :'r1' AS same_batch FROM mps.redeem_pass('PASS01', :'ann_tea', '[{"product": "MILK_TEA", "quantity": 2}]', 'rd-1', p_qr_plain := :'ann_code');
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA", "quantity": 3}]', 'rd-1', :'ann_code'));
SELECT pg_temp.code_of(:'ann_claims', :'ann_card') AS ann_code \gset
-- seed 002's "0 元支付": zero lines of any method are accepted
SELECT uses, extra_total, payments, invoice_due FROM mps.redeem_pass('PASS01', :'ann_tea',
  '[{"category": "TEA"}]', 'rd-2', NULL, '[{"method": "bizum", "amount": 0}, {"method": "cash", "amount": 0.00}]', p_qr_plain := :'ann_code');
COMMIT;
-- the slip template is configuration
SELECT template_type, is_active FROM mps.create_print_template('pass_redemption_slip',
  '{"type": "PASS_REDEMPTION_SLIP", "content": [{"text": "{{merchant_name}} / {{plan_name}}"},
    {"text": "{{lines}}: {{uses}} used, {{remaining_uses}} left"}, {"text": "extra {{extra_total}} {{currency}} order {{order_no}} invoice {{invoice}}"},
    {"text": "at {{redeemed_at}} quote \" {{unknown}}"}]}');
SELECT pg_temp.err($$SELECT mps.create_print_template('x1', '{}')$$);
SELECT pg_temp.err($$SELECT mps.create_print_template('PASS_REDEMPTION_SLIP', '[1]')$$);
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'op_claims', true) IS NOT NULL AS as_operator;
SELECT pg_temp.code_of(:'ann_claims', :'ann_card') AS ann_code \gset
-- surcharge paid in cash: an order is required, an invoice is due, the slip is printed
SELECT uses, remaining_uses, extra_total, payments, invoice_due, order_no, slip_produced,
       print_job->>'template_type' AS template,
       regexp_replace(print_job->>'content', '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z', '<utc>') AS slip
FROM mps.redeem_pass('PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 1.50}, {"category": "TEA", "quantity": 2, "extra": 0.80}]',
  'rd-3', 'ORDER-R1', '[{"method": "cash", "amount": 2.00}, {"method": "bank_card", "amount": 0.30}, {"method": "bizum", "amount": 0}]', p_qr_plain := :'ann_code');
SELECT pg_temp.code_of(:'ann_claims', :'ann_card') AS ann_code \gset
SELECT print_job->'content'->'content'->3->>'text' ~ '^at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z quote " \{\{unknown\}\}$' AS utc_microseconds
FROM mps.pass_redemption_batches WHERE order_no = 'ORDER-R1';
-- the backend whitelist: third-party money on a surcharge is refused, with its own code
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 2.00}]', 'rd-4', 'ORDER-R2', '[{"method": "bizum", "amount": 2.00}]', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 2.00}]', 'rd-4', 'ORDER-R2', '[{"method": "cash", "amount": 1.00}, {"method": "platform", "amount": 1.00}]', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 2.00}]', 'rd-4', 'ORDER-R2', '[{"method": "third_party", "amount": 2.00}]', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 2.00}]', 'rd-4', 'ORDER-R2', '[{"method": "member_card", "amount": 2.00, "qr": "MPS1.aaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb"}]', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, NULL, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 2.00}]', 'rd-4', '[{"method": "cash", "amount": 2.00}]', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 2.00}]', 'rd-4', 'ORDER-R2', '[{"method": "cash", "amount": 1.99}]', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 2.00}]', 'rd-4', 'ORDER-R2', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, NULL, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA"}]', 'rd-4', '[{"method": "cash", "amount": 1.00}]', :'ann_code'));
-- one pass per order (一单一卡): an order number serves one redemption of one pass
SELECT uses FROM mps.redeem_pass('PASS01', :'ann_tea', '[{"product": "MILK_TEA"}]', 'rd-5', 'ORDER-R3', p_qr_plain := :'ann_code');
SELECT pg_temp.code_of(:'ann_claims', :'ann_card') AS ann_code \gset
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_rev',
  '[{"category": "TEA"}]', 'rd-6', 'ORDER-R3', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA"}]', 'rd-7', 'ORDER-R3', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA"}]', 'rd-8', 'ORDER-P1', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA"}]', 'rd-9', 'TILL-7', :'ann_code'));
-- lines: covered items only (不混单), well formed
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA"}, {"product": "CROISSANT", "category": "BAKERY"}]', 'rd-10', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, NULL, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', 'rd-11', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[]', 'rd-12', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '{"product": "MILK_TEA"}', 'rd-13', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA", "quantity": 1.5}]', 'rd-14', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA", "quantity": 0}]', 'rd-15', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"quantity": 1}]', 'rd-16', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA", "extras": 1.00}]', 'rd-17', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea',
  '[{"product": "MILK_TEA", "extra": 1.005}]', 'rd-18', 'ORDER-R4', '[{"method": "cash", "amount": 1.005}]', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": ""}]', 'rd-19', :'ann_code'));
-- uses: never more than remain (43 left)
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA", "quantity": 44}]', 'rd-20', :'ann_code'));
SELECT uses, remaining_uses FROM mps.redeem_pass('PASS01', :'ann_tea', '[{"product": "MILK_TEA", "quantity": 40}, {"category": "TEA", "quantity": 3}]', 'rd-21', p_qr_plain := :'ann_code');
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA"}]', 'rd-21b', :'ann_code'));
SELECT pg_temp.code_of(:'ann_claims', :'ann_card') AS ann_code \gset
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA"}]', 'rd-22', :'ann_code'));
-- only an active pass redeems
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'cal_rev3', '[{"category": "TEA"}]', 'rd-23', :'cal_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'cal_rev4', '[{"category": "TEA"}]', 'rd-24', :'cal_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', gen_random_uuid(), '[{"category": "TEA"}]', 'rd-25', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, NULL, %L, %L, p_qr_plain := %L)', 'PASS01', '[{"category": "TEA"}]', 'rd-26', :'ann_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, NULL, p_qr_plain := %L)', 'PASS01', :'ann_rev', '[{"category": "TEA"}]', :'ann_code'));
-- the member at the till: her own live code (not a card's shared one), for her own passes
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA"}]', 'rd-40'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA"}]', 'rd-41', :'cal_code'));
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L, p_qr_plain := %L)', 'PASS01', :'ann_tea', '[{"product": "MILK_TEA"}]', 'rd-42', :'cal_shared'));
-- another merchant's operator; a member
SELECT set_config('request.jwt.claims', :'op2_claims', true) IS NOT NULL AS as_operator2;
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L)', 'PASS01', :'ann_rev', '[{"category": "TEA"}]', 'rd-27'));
SELECT uses, remaining_uses FROM mps.redeem_pass('PASS02', :'ann_rev', '[{"category": "TEA"}]', 'rd-28', p_qr_plain := :'ann_code');
SELECT set_config('request.jwt.claims', :'ann_claims', true) IS NOT NULL AS as_ann;
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L)', 'PASS01', :'ann_rev', '[{"category": "TEA"}]', 'rd-29'));
COMMIT;
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L)', 'PASSCN', :'ann_rev', '[{"category": "TEA"}]', 'rd-30'));
-- a manual hold stops redemption
SELECT status FROM mps.suspend_member_pass(:'ann_rev', 'checking');
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L)', 'PASS01', :'ann_rev', '[{"category": "TEA"}]', 'rd-31'));
SELECT status FROM mps.resume_member_pass(:'ann_rev');
-- an order number of a redemption cannot be charged afterwards
SELECT pg_temp.err(format($$SELECT mps.merchant_charge_by_qr('PASS01', %L, 1.00, 'ch-1', p_order_no := 'ORDER-R3')$$,
  (SELECT qr_plain FROM mps.rotate_card_qr(:'ann_card'))));
-- the batches and their lines
SELECT b.order_no, b.uses, b.remaining_after, b.extra_total, b.invoice_due, b.print_job IS NOT NULL AS slip,
       (SELECT string_agg(coalesce(r.product, '-') || '/' || coalesce(r.category, '-') || ' x' || r.quantity
                          || ' +' || r.extra_amount, ', ' ORDER BY r.line_no)
          FROM mps.pass_redemptions r WHERE r.batch_id = b.id) AS lines
FROM mps.pass_redemption_batches b WHERE b.pass_id IN (:'ann_tea', :'ann_rev') ORDER BY b.created_at;

-- ==== 5. expiry ==================================================================
SELECT order_id AS e1, pass_id AS bea_tea10 FROM mps.purchase_pass('PASS01', 'TEA10', :'bea', 1,
  '[{"method": "cash", "amount": 30.00}]', 'pp-12') \gset
SELECT pg_temp.pass(:'bea_tea10');
UPDATE mps.member_passes SET activated_at = activated_at - interval '31 days', expires_at = expires_at - interval '31 days'
 WHERE id = :'bea_tea10';
-- past its expiry the pass does not redeem, even before the job marks it
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L)', 'PASS01', :'bea_tea10', '[{"category": "TEA"}]', 'rd-32'));
SELECT mps.expire_member_passes() AS expired;
SELECT mps.expire_member_passes() AS expired_again;
SELECT pg_temp.pass(:'bea_tea10');
SELECT pg_temp.err(format('SELECT mps.redeem_pass(%L, %L, %L, %L)', 'PASS01', :'bea_tea10', '[{"category": "TEA"}]', 'rd-33'));
SELECT pg_temp.err(format('SELECT mps.resume_member_pass(%L)', :'bea_tea10'));
-- buying the plan again starts a new pass
SELECT pass_id <> :'bea_tea10' AS new_pass, first_purchase, pass_status, remaining_uses
FROM mps.purchase_pass('PASS01', 'TEA10', :'bea', 1, '[{"method": "cash", "amount": 30.00}]', 'pp-13');

-- ==== 6. the member's view and row-level security ==================================
BEGIN READ ONLY;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'ann_claims', true) IS NOT NULL AS as_ann;
SELECT plan_code, plan_name, status, awaiting_review, on_hold, total_uses, used_uses, remaining_uses,
       products, categories, expires_at IS NOT NULL AS expires
FROM mps.get_my_passes();
SELECT plan_code, merchant_code, uses, remaining_after, extra_total, invoice_due, order_no, lines
FROM mps.get_my_pass_redemptions();
SELECT count(*) AS tea_redemptions FROM mps.get_my_pass_redemptions(p_pass_id := :'ann_tea', p_limit := 2);
SELECT pg_temp.err('SELECT * FROM mps.get_my_pass_redemptions(p_limit := 0)');
-- direct reads: own rows only
SELECT (SELECT count(*) FROM mps.member_passes) AS passes, (SELECT count(*) FROM mps.pass_topup_orders) AS orders,
       (SELECT count(*) FROM mps.pass_redemption_batches) AS batches, (SELECT count(*) FROM mps.pass_redemptions) AS lines,
       (SELECT count(*) FROM mps.pass_plans) AS plans_on_sale;
SELECT pg_temp.err('SELECT count(*) FROM mps.print_templates');
SELECT pg_temp.err(format('SELECT * FROM mps.list_member_passes(%L)', :'bea'));
COMMIT;
SELECT qr_plain AS ann_code FROM mps.rotate_card_qr(:'ann_card') \gset
BEGIN READ ONLY;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'op2_claims', true) IS NOT NULL AS as_operator2;
SELECT (SELECT count(*) FROM mps.member_passes) AS passes, (SELECT count(*) FROM mps.pass_topup_orders) AS orders,
       (SELECT count(*) FROM mps.pass_redemption_batches) AS batches;
-- a member's passes only while she shows her code (which stays usable for the redemption)
SELECT pg_temp.err(format('SELECT * FROM mps.list_member_passes(%L)', :'ann'));
SELECT plan_code, status, remaining_uses FROM mps.list_member_passes(:'ann', :'ann_code');
SELECT count(*) FROM mps.list_member_passes(p_qr_plain := :'ann_code');
SELECT pg_temp.err('SELECT * FROM mps.get_my_passes()');
COMMIT;
BEGIN READ ONLY;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true) IS NOT NULL AS no_subject;
SELECT pg_temp.err('SELECT * FROM mps.get_my_passes()');
SELECT pg_temp.err('SELECT * FROM mps.list_pass_plans()');
COMMIT;
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS as_service_role;
SELECT count(*) > 0 AS sees_templates FROM mps.print_templates;
SELECT template_type, is_active FROM mps.list_print_templates();
ROLLBACK;

-- ==== 7. templates: one active per type; without one, no slip ==========================
SELECT template_id AS t1 FROM mps.list_print_templates('PASS_REDEMPTION_SLIP') \gset
SELECT template_type, is_active FROM mps.create_print_template('PASS_REDEMPTION_SLIP', '{"text": "v2 {{uses}}"}');
SELECT count(*) FILTER (WHERE is_active) AS active, count(*) AS templates FROM mps.list_print_templates();
SELECT is_active FROM mps.set_print_template_active(:'t1', true);
SELECT count(*) FILTER (WHERE is_active) AS active FROM mps.list_print_templates();
UPDATE mps.print_templates SET is_active = false;  -- (as the owner: no template at all)
SELECT slip_produced, print_job FROM mps.redeem_pass('PASS01', :'ann_rev', '[{"category": "TEA"}]', 'rd-35');
SELECT is_active FROM mps.set_print_template_active(:'t1', true);
SELECT pg_temp.err('SELECT mps.set_print_template_active(-1, true)');

-- ==== 8. audit, invariants, ledger ====================================================
SELECT action, entity_type, count(*) FROM audit.event_log
 WHERE action LIKE 'pass%' OR action LIKE 'tx.pass%' OR action LIKE 'print_template%'
 GROUP BY action, entity_type ORDER BY action;
-- every pass: remaining = total - used; used = its redemptions; total = its standing purchases
SELECT count(*) AS broken_passes FROM mps.member_passes m
 WHERE m.remaining_uses <> m.total_uses - m.used_uses
    OR m.used_uses <> (SELECT coalesce(sum(b.uses), 0) FROM mps.pass_redemption_batches b WHERE b.pass_id = m.id)
    OR m.total_uses <> (SELECT coalesce(sum(o.uses), 0) FROM mps.pass_topup_orders o
                         WHERE o.pass_id = m.id AND o.review_state <> 'rejected');
-- every purchase's payment lines add up to its total
SELECT count(*) AS unbalanced_orders FROM mps.pass_topup_orders o
 WHERE o.total <> (SELECT sum(mps_internal.to_minor(nullif((p->>'amount')::numeric, 0), o.currency, 'x'))
                     FROM jsonb_array_elements(o.payments) p WHERE (p->>'amount')::numeric > 0);
-- every batch's lines add up to its uses and surcharge
SELECT count(*) AS unbalanced_batches FROM mps.pass_redemption_batches b
 WHERE (b.uses, b.extra_total) <> (SELECT sum(r.quantity), sum(r.extra_amount) FROM mps.pass_redemptions r WHERE r.batch_id = b.id);
-- card balance = sum of its transactions (and every other invariant)
SELECT count(*) AS ledger_violations FROM mps.verify_ledger();
