-- Marketing groups: stacked discount rules (exact cents), stamp cards,
-- configuration checks, the feature gate, member search.
SET client_min_messages = warning;
\set VERBOSITY terse
\o /dev/null
SELECT mps.grant_role_privileges('mps_member_app', 'authenticated');
SELECT mps.grant_role_privileges('mps_merchant_api', 'authenticated');
\o
CREATE FUNCTION pg_temp.err(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
-- Line finals and the applied rules' amounts of a priced order.
CREATE FUNCTION pg_temp.lines(p jsonb) RETURNS TABLE (line int, final numeric, rules text) LANGUAGE sql AS $$
  SELECT (l->>'line')::int, (l->>'final')::numeric,
         (SELECT string_agg((r->>'receipt_name') || '=' || (r->>'calculated_amount'), ', ')
          FROM jsonb_array_elements(l->'applied_rules') r)
  FROM jsonb_array_elements(p->'lines') l
$$;

SELECT coalesce(max(id), 0) AS audit_start FROM audit.event_log \gset
-- Catalogue.
SELECT id FROM mps.upsert_category('TEA', 'Tea');
SELECT id FROM mps.upsert_category('CAKE', 'Cake');
SELECT id FROM mps.upsert_category('SNACK', 'Snack');
SELECT id FROM mps.upsert_product('MILKTEA', 'Milk tea', 'TEA');
SELECT id FROM mps.upsert_product('GREENTEA', 'Green tea', 'TEA');
SELECT id FROM mps.upsert_product('CHEESECAKE', 'Cheesecake', 'CAKE');
SELECT id FROM mps.upsert_product('TART', 'Tart', 'CAKE');
SELECT id FROM mps.upsert_product('COOKIE', 'Cookie', 'SNACK');
SELECT pg_temp.err($$SELECT * FROM mps.upsert_product('X', 'X', 'NOPE')$$);

-- Groups and rules.
SELECT code FROM mps.create_marketing_group('SINGLE', 'One rule');
SELECT code FROM mps.create_marketing_group('STACK', 'Stacked rules');
SELECT code FROM mps.create_marketing_group('FIXED', 'Fixed above price');
SELECT code FROM mps.create_marketing_group('SCOPE', 'Scoped rules');
SELECT code FROM mps.create_marketing_group('ROUND', 'Rounding edges');
SELECT code FROM mps.create_marketing_group('FREE', 'A 100% rule');
SELECT adjustment_type, value_bp FROM mps.create_mg_rule('SINGLE', '10% off', 'MG -10%', 'GLOBAL', NULL, 'PERCENTAGE', 10);
SELECT adjustment_type, value_bp FROM mps.create_mg_rule('STACK', '10% off', 'MG -10%', 'GLOBAL', NULL, 'PERCENTAGE', 10);
SELECT adjustment_type, value_bp FROM mps.create_mg_rule('STACK', 'Tea 5% off', 'Tea -5%', 'CATEGORY', 'TEA', 'PERCENTAGE', 5);
SELECT adjustment_type, amount_minor FROM mps.create_mg_rule('STACK', 'Cheesecake 0.50 off', 'Cake -0.50', 'PRODUCT', 'CHEESECAKE', 'FIXED_AMOUNT', 0.50, 'CNY');
SELECT adjustment_type, amount_minor FROM mps.create_mg_rule('FIXED', '2.00 off each', 'Each -2.00', 'GLOBAL', NULL, 'FIXED_AMOUNT', 2.00, 'CNY');
SELECT adjustment_type, value_bp FROM mps.create_mg_rule('SCOPE', 'Cakes 20% off', 'Cake -20%', 'CATEGORY', 'CAKE', 'PERCENTAGE', 20);
SELECT adjustment_type, amount_minor FROM mps.create_mg_rule('SCOPE', 'Green tea 1.00 off', 'GT -1.00', 'PRODUCT', 'GREENTEA', 'FIXED_AMOUNT', 1, 'CNY');
SELECT adjustment_type, value_bp FROM mps.create_mg_rule('ROUND', 'A third off', 'MG -33.33%', 'GLOBAL', NULL, 'PERCENTAGE', 33.33);
SELECT adjustment_type, value_bp FROM mps.create_mg_rule('FREE', 'All free', 'Free', 'GLOBAL', NULL, 'PERCENTAGE', 100);

-- Configuration refusals.
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'x', 'x', 'GLOBAL', NULL, 'PERCENTAGE', 0)$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'x', 'x', 'GLOBAL', NULL, 'PERCENTAGE', 100.01)$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'x', 'x', 'GLOBAL', NULL, 'PERCENTAGE', 12.345)$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'x', 'x', 'GLOBAL', NULL, 'FIXED_AMOUNT', 0.001, 'CNY')$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'x', 'x', 'GLOBAL', NULL, 'FIXED_AMOUNT', 1, 'XXX')$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'x', 'x', 'GLOBAL', 'TEA', 'PERCENTAGE', 5)$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'x', 'x', 'CATEGORY', 'NOPE', 'PERCENTAGE', 5)$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'x', 'x', 'GLOBAL', NULL, 'BOGO', 5)$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('NOPE', 'x', 'x', 'GLOBAL', NULL, 'PERCENTAGE', 5)$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', '', 'x', 'GLOBAL', NULL, 'PERCENTAGE', 5)$$);
SELECT pg_temp.err($$SELECT mps.delete_mg_rule(999999)$$);
-- At most six percentage rules per group keep the arithmetic exact.
SELECT count(*) FROM generate_series(1, 5) i,
  LATERAL mps.create_mg_rule('SINGLE', 'extra ' || i, 'x' || i, 'GLOBAL', NULL, 'PERCENTAGE', 1);
SELECT pg_temp.err($$SELECT * FROM mps.create_mg_rule('SINGLE', 'seventh', 'x7', 'GLOBAL', NULL, 'PERCENTAGE', 1)$$);
SELECT mps.delete_mg_rule(id) FROM mps.mg_discount_rules WHERE name LIKE 'extra %';

-- Members, one per group, and one in none.
SELECT member_id AS m_single, card_id AS c_single FROM mps.create_member_profile(p_name := 'Sam Single', p_phone := '600111222', p_auth_user_id := 'd0000000-0000-0000-0000-000000000001') \gset
SELECT member_id AS m_stack, card_id AS c_stack FROM mps.create_member_profile(p_name := 'Stella Stack', p_phone := '600333444') \gset
SELECT member_id AS m_fixed FROM mps.create_member_profile(p_name := 'Fiona Fixed') \gset
SELECT member_id AS m_scope FROM mps.create_member_profile(p_name := 'Scott Scope') \gset
SELECT member_id AS m_round FROM mps.create_member_profile(p_name := 'Rory Round') \gset
SELECT member_id AS m_free FROM mps.create_member_profile(p_name := 'Freda Free') \gset
SELECT member_id AS m_none FROM mps.create_member_profile(p_name := 'Nora None') \gset
SELECT mps.set_member_marketing_group(:'m_single', 'SINGLE'), mps.set_member_marketing_group(:'m_stack', 'STACK'),
       mps.set_member_marketing_group(:'m_fixed', 'FIXED'), mps.set_member_marketing_group(:'m_scope', 'SCOPE'),
       mps.set_member_marketing_group(:'m_round', 'ROUND'), mps.set_member_marketing_group(:'m_free', 'FREE');
SELECT pg_temp.err(format($$SELECT mps.set_member_marketing_group(%L, 'NOPE')$$, :'m_none'));

-- Seed 004's calculator cases, exact to the cent.
-- Single percentage: 2 x 18.00 at 10% = 32.40.
SELECT * FROM pg_temp.lines(mps.price_order(:'m_single', '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00}]'));
-- Stacking: tea 36.00 x 0.90 x 0.95 = 30.78; cheesecake 25.00 x 0.90 - 0.50 = 22.00.
SELECT * FROM pg_temp.lines(mps.price_order(:'m_stack', '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00},{"product_id":"CHEESECAKE","category_id":"CAKE","quantity":1,"unit_price":25.00}]'));
SELECT p->>'items_total' AS items_total, p->>'mg_discount' AS mg_discount, p->>'final' AS final
  FROM mps.price_order(:'m_stack', '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00},{"product_id":"CHEESECAKE","category_id":"CAKE","quantity":1,"unit_price":25.00}]') p;
-- Fixed amount per unit, above the price: floors at zero.
SELECT * FROM pg_temp.lines(mps.price_order(:'m_fixed', '[{"product_id":"COOKIE","category_id":"SNACK","quantity":3,"unit_price":1.50},{"product_id":"TART","category_id":"CAKE","quantity":2,"unit_price":5.00}]'));
-- Scope filtering: only the cake and the green tea match.
SELECT * FROM pg_temp.lines(mps.price_order(:'m_scope', '[{"product_id":"MILKTEA","category_id":"TEA","quantity":1,"unit_price":18.00},{"product_id":"CHEESECAKE","category_id":"CAKE","quantity":1,"unit_price":25.00},{"product_id":"GREENTEA","category_id":"TEA","quantity":1,"unit_price":12.00}]'));
-- No group, no matching rules: the price is the price.
SELECT * FROM pg_temp.lines(mps.price_order(:'m_none', '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00}]'));
-- Rounding edges: each 0.01 line rounds on its own (0.0066667 -> 0.01);
-- one line of 100 x 0.01 rounds once (0.6667 -> 0.67).
SELECT sum(final) AS hundred_lines_of_a_cent
  FROM pg_temp.lines(mps.price_order(:'m_round', (SELECT jsonb_agg(jsonb_build_object('product_id', 'PENNY', 'quantity', 1, 'unit_price', 0.01)) FROM generate_series(1, 100))));
SELECT * FROM pg_temp.lines(mps.price_order(:'m_round', '[{"product_id":"PENNY","quantity":100,"unit_price":0.01}]'));
-- One rounding per line, half-up at the cent: 0.05 x 0.6667 = 0.033335 -> 0.03; 1.50 x 0.6667 = 1.00005 -> 1.00.
SELECT * FROM pg_temp.lines(mps.price_order(:'m_round', '[{"product_id":"P","quantity":1,"unit_price":0.05},{"product_id":"P","quantity":1,"unit_price":1.50}]'));
-- A 100% rule makes everything free.
SELECT * FROM pg_temp.lines(mps.price_order(:'m_free', '[{"product_id":"MILKTEA","category_id":"TEA","quantity":3,"unit_price":18.00}]'));

-- Line items refused.
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '{"a":1}')$$, :'m_single'));
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[]')$$, :'m_single'));
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[{"category_id":"TEA","quantity":1,"unit_price":1}]')$$, :'m_single'));
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[{"product_id":"A","quantity":0,"unit_price":1}]')$$, :'m_single'));
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[{"product_id":"A","quantity":1.5,"unit_price":1}]')$$, :'m_single'));
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[{"product_id":"A","quantity":1,"unit_price":1.001}]')$$, :'m_single'));
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[{"product_id":"A","quantity":1,"unit_price":-1}]')$$, :'m_single'));
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[{"product_id":"A","quantity":1,"unit_price":"1"}]')$$, :'m_single'));

-- A charge with items: the level/corporate discount comes on the subtotal.
SELECT code FROM mps.create_merchant('MGSHOP', 'MG Shop');
SELECT card_id AS corp FROM mps.issue_card('corporate', p_owner_member_id := :'m_stack',
  p_enterprise_name := 'Stack Inc', p_fixed_discount_bp := 1000) \gset
SELECT balance_after FROM mps.recharge_card(:'corp', 500.00, 'mg-corp-fund');
SELECT balance_after FROM mps.recharge_card(:'c_stack', 500.00, 'mg-stack-fund');
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'corp', 600, true) \gset
-- Subtotal 52.78, 10% corporate discount 5.278 -> 5.28: final 47.50.
SELECT raw_amount, discount_amount, final_amount, details->>'subtotal' AS subtotal,
       details->>'card_discount' AS card_discount
  FROM mps.merchant_charge_by_qr('MGSHOP', :'q', NULL, 'mg-1', p_items := '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00},{"product_id":"CHEESECAKE","category_id":"CAKE","quantity":1,"unit_price":25.00}]');
-- p_raw_amount must agree with the items.
SELECT pg_temp.err(format($$SELECT * FROM mps.merchant_charge_by_qr('MGSHOP', %L, 60.00, 'mg-2', p_items := '[{"product_id":"MILKTEA","quantity":2,"unit_price":18.00},{"product_id":"CHEESECAKE","quantity":1,"unit_price":25.00}]')$$, :'q'));
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'corp', 600, true) \gset
SELECT raw_amount, final_amount FROM mps.merchant_charge_by_qr('MGSHOP', :'q', 61.00, 'mg-3', p_items := '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00},{"product_id":"CHEESECAKE","category_id":"CAKE","quantity":1,"unit_price":25.00}]');
-- The same key with other items is another request.
SELECT pg_temp.err(format($$SELECT * FROM mps.merchant_charge_by_qr('MGSHOP', %L, NULL, 'mg-3', p_items := '[{"product_id":"MILKTEA","quantity":1,"unit_price":18.00}]')$$, :'q'));

-- Stamp activities.
SELECT code FROM mps.create_marketing_group('STAMPS', 'Stamp lovers');
SELECT id AS act_tea FROM mps.create_stamp_activity('STAMPS', 'Three teas, cheapest free', 3,
  '[{"target_type":"CATEGORY","target_id":"TEA"}]', '[{"target_type":"CATEGORY","target_id":"TEA"}]') \gset
SELECT id AS act_cake FROM mps.create_stamp_activity('STAMPS', 'Two cakes, dearest free, once', 2,
  '[{"target_type":"CATEGORY","target_id":"CAKE"}]', '[{"target_type":"CATEGORY","target_id":"CAKE"}]',
  p_reward_strategy := 'GENEROSO', p_is_cyclic := false) \gset
SELECT id AS act_cookie FROM mps.create_stamp_activity('STAMPS', 'Two snacks, a cookie free', 2,
  '[{"target_type":"CATEGORY","target_id":"SNACK"}]', p_reward_strategy := 'DESIGNATED',
  p_designated_product_id := 'COOKIE') \gset
SELECT pg_temp.err($$SELECT * FROM mps.create_stamp_activity('STAMPS', 'x', 2, '[{"target_type":"CATEGORY","target_id":"TEA"}]', p_reward_strategy := 'DESIGNATED')$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_stamp_activity('STAMPS', 'x', 2, '[{"target_type":"CATEGORY","target_id":"TEA"}]', '[]')$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_stamp_activity('STAMPS', 'x', 0, '[{"target_type":"CATEGORY","target_id":"TEA"}]', '[{"target_type":"CATEGORY","target_id":"TEA"}]')$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_stamp_activity('STAMPS', 'x', 2, '[{"target_type":"BRAND","target_id":"TEA"}]', '[{"target_type":"CATEGORY","target_id":"TEA"}]')$$);
SELECT pg_temp.err($$SELECT * FROM mps.create_stamp_activity('STAMPS', 'x', 2, '[{"target_type":"PRODUCT","target_id":"NOPE"}]', '[{"target_type":"CATEGORY","target_id":"TEA"}]')$$);

SELECT member_id AS m_st, card_id AS c_st FROM mps.create_member_profile(p_name := 'Stamp Collector') \gset
SELECT mps.set_member_marketing_group(:'m_st', 'STAMPS');
SELECT balance_after FROM mps.recharge_card(:'c_st', 500.00, 'st-fund');
CREATE FUNCTION pg_temp.progress(p_member uuid) RETURNS TABLE (activity text, stamps int, cycles int, closed boolean)
LANGUAGE sql AS $$
  SELECT a.name, p.current_stamps, p.completed_cycles, p.is_closed
  FROM mps.member_stamp_progress p JOIN mps.stamp_activities a ON a.id = p.activity_id
  WHERE p.member_id = p_member ORDER BY a.id
$$;

-- Earning: the matching quantities of the order.
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'c_st') \gset
SELECT final_amount, details->'stamps' AS stamps FROM mps.merchant_charge_by_qr('MGSHOP', :'q', NULL, 'st-1',
  p_items := '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00},{"product_id":"CHEESECAKE","category_id":"CAKE","quantity":2,"unit_price":25.00},{"product_id":"COOKIE","category_id":"SNACK","quantity":1,"unit_price":3.00}]');
SELECT * FROM pg_temp.progress(:'m_st');
-- Too few stamps: refused, nothing changes.
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'c_st') \gset
SELECT pg_temp.err(format($$SELECT * FROM mps.redeem_stamp('MGSHOP', %L, p_idempotency_key := 'st-2', p_activity_id := %s, p_items := '[{"product_id":"GREENTEA","category_id":"TEA","quantity":1,"unit_price":12.00}]')$$, :'q', :act_tea));
SELECT * FROM pg_temp.progress(:'m_st');
-- A third tea, then ECONOMIZADOR comps the cheapest tea; the paid tea earns a stamp (cyclic: 3 - 3 + 1).
SELECT final_amount FROM mps.merchant_charge_by_qr('MGSHOP', :'q', NULL, 'st-3', p_items := '[{"product_id":"GREENTEA","category_id":"TEA","quantity":1,"unit_price":12.00}]');
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'c_st') \gset
SELECT tx_id AS redeem_tx, raw_amount, final_amount, details->'stamps' AS stamps,
       jsonb_path_query_array(details, '$.lines[*].comped_units') AS comped
  FROM mps.redeem_stamp('MGSHOP', :'q', p_idempotency_key := 'st-4', p_activity_id := :act_tea,
    p_items := '[{"product_id":"MILKTEA","category_id":"TEA","quantity":1,"unit_price":18.00},{"product_id":"GREENTEA","category_id":"TEA","quantity":1,"unit_price":12.00}]') \gset
SELECT :'raw_amount' AS raw, :'final_amount' AS paid, :'stamps' AS stamps, :'comped' AS comped;
SELECT * FROM pg_temp.progress(:'m_st');
-- GENEROSO comps the dearest cake; the one-off activity closes.
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'c_st') \gset
SELECT final_amount, jsonb_path_query_array(details, '$.lines[*].comped_units') AS comped
  FROM mps.redeem_stamp('MGSHOP', :'q', p_idempotency_key := 'st-5', p_activity_id := :act_cake,
    p_items := '[{"product_id":"CHEESECAKE","category_id":"CAKE","quantity":1,"unit_price":25.00},{"product_id":"TART","category_id":"CAKE","quantity":1,"unit_price":30.00}]');
SELECT * FROM pg_temp.progress(:'m_st');
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'c_st') \gset
SELECT pg_temp.err(format($$SELECT * FROM mps.redeem_stamp('MGSHOP', %L, p_idempotency_key := 'st-6', p_activity_id := %s, p_items := '[{"product_id":"TART","category_id":"CAKE","quantity":1,"unit_price":30.00}]')$$, :'q', :act_cake));
-- DESIGNATED: the cookie must be in the order.
SELECT final_amount FROM mps.merchant_charge_by_qr('MGSHOP', :'q', NULL, 'st-7', p_items := '[{"product_id":"COOKIE","category_id":"SNACK","quantity":1,"unit_price":3.00}]');
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'c_st') \gset
SELECT pg_temp.err(format($$SELECT * FROM mps.redeem_stamp('MGSHOP', %L, p_idempotency_key := 'st-8', p_activity_id := %s, p_items := '[{"product_id":"MILKTEA","category_id":"TEA","quantity":1,"unit_price":18.00}]')$$, :'q', :act_cookie));
SELECT final_amount, jsonb_path_query_array(details, '$.lines[*].comped_units') AS comped
  FROM mps.redeem_stamp('MGSHOP', :'q', p_idempotency_key := 'st-9', p_activity_id := :act_cookie,
    p_items := '[{"product_id":"MILKTEA","category_id":"TEA","quantity":1,"unit_price":18.00},{"product_id":"COOKIE","category_id":"SNACK","quantity":2,"unit_price":3.00}]');
SELECT * FROM pg_temp.progress(:'m_st');
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'c_st') \gset
SELECT pg_temp.err(format($$SELECT * FROM mps.redeem_stamp('MGSHOP', %L, p_idempotency_key := 'st-10', p_activity_id := %s)$$, :'q', :act_tea));
SELECT pg_temp.err(format($$SELECT * FROM mps.redeem_stamp('MGSHOP', %L, p_idempotency_key := 'st-11', p_items := '[{"product_id":"MILKTEA","quantity":1,"unit_price":1}]')$$, :'q'));

-- Refunds: a partial refund leaves stamps alone; a full refund takes back
-- the stamps the charge earned and gives back what its redemption used.
SELECT refund_amount FROM mps.merchant_refund_tx('MGSHOP', :'redeem_tx', 10.00, 'st-r1');
SELECT * FROM pg_temp.progress(:'m_st');
SELECT refund_amount, original_status FROM mps.merchant_refund_tx('MGSHOP', :'redeem_tx', 8.00, 'st-r2');
SELECT * FROM pg_temp.progress(:'m_st');
SELECT kind, delta FROM mps.stamp_ledger WHERE member_id = :'m_st' ORDER BY id;

-- The feature gate.
SET mps.marketing_enabled = off;
SELECT qr_plain AS q FROM mps.rotate_card_qr(:'c_st') \gset
SELECT pg_temp.err(format($$SELECT * FROM mps.merchant_charge_by_qr('MGSHOP', %L, NULL, 'gate-1', p_items := '[{"product_id":"MILKTEA","quantity":1,"unit_price":18.00}]')$$, :'q'));
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[{"product_id":"MILKTEA","quantity":1,"unit_price":18.00}]')$$, :'m_st'));
SELECT pg_temp.err($$SELECT * FROM mps.create_marketing_group('GATED', 'x')$$);
SELECT final_amount FROM mps.merchant_charge_by_qr('MGSHOP', :'q', 5.00, 'gate-2');
RESET mps.marketing_enabled;

-- Member search by phone, card number or name.
SELECT name, marketing_group FROM mps.search_members('stella');
SELECT name FROM mps.search_members('0333444');
SELECT name FROM mps.search_members((SELECT substr(card_no, 5, 8) FROM mps.cards WHERE id = :'c_single'));
SELECT pg_temp.err($$SELECT * FROM mps.search_members('ab')$$);
SELECT pg_temp.err($$SELECT * FROM mps.search_members('abc', 0)$$);
SELECT indexname, indexdef LIKE '%gin_trgm_ops%' AS trigram FROM pg_indexes
 WHERE indexname IN ('member_profiles_search_idx', 'cards_card_no_trgm_idx') ORDER BY indexname;

-- Who may: a member prices their own order only, and cannot configure or search.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"d0000000-0000-0000-0000-000000000001","role":"authenticated"}', true) IS NOT NULL AS member;
SELECT (mps.price_order(:'m_single', '[{"product_id":"MILKTEA","quantity":1,"unit_price":10.00}]'))->>'final' AS own_price;
SELECT pg_temp.err(format($$SELECT mps.price_order(%L, '[{"product_id":"MILKTEA","quantity":1,"unit_price":10.00}]')$$, :'m_stack'));
SELECT pg_temp.err($$SELECT * FROM mps.create_marketing_group('MINE', 'Mine')$$);
SELECT pg_temp.err($$SELECT * FROM mps.search_members('stella')$$);
SELECT pg_temp.err($$SELECT * FROM mps.list_marketing_groups()$$);
ROLLBACK;

-- Updates: deactivating a rule stops it pricing; reactivating respects the six-percentage cap.
SELECT id AS stack_tea_rule FROM mps.mg_discount_rules WHERE receipt_name = 'Tea -5%' \gset
SELECT is_active FROM mps.set_mg_rule_active(:stack_tea_rule, false);
SELECT * FROM pg_temp.lines(mps.price_order(:'m_stack', '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00}]'));
SELECT is_active FROM mps.set_mg_rule_active(:stack_tea_rule, true);
SELECT pg_temp.err($$SELECT * FROM mps.set_mg_rule_active(999999, true)$$);
SELECT name, is_active FROM mps.update_marketing_group('STACK', p_name := 'Stacked rules (renamed)');
SELECT is_active FROM mps.update_marketing_group('FIXED', p_is_active := false);
SELECT * FROM pg_temp.lines(mps.price_order(:'m_fixed', '[{"product_id":"COOKIE","category_id":"SNACK","quantity":3,"unit_price":1.50}]'));
SELECT pg_temp.err($$SELECT * FROM mps.update_marketing_group('NOPE', p_name := 'x')$$);
SELECT is_active FROM mps.set_stamp_activity_active(:act_cookie, false);
SELECT pg_temp.err($$SELECT * FROM mps.set_stamp_activity_active(999999, false)$$);

-- A superuser editing a configuration table by hand is audited too (row trigger).
UPDATE mps.mg_discount_rules SET receipt_name = 'Edited by hand' WHERE id = :stack_tea_rule;
SELECT action, before->>'receipt_name' AS before, after->>'receipt_name' AS after
  FROM audit.event_log WHERE action = 'config.mg_discount_rules.update' ORDER BY id DESC LIMIT 1;

-- Soft delete: the group stops pricing and its members leave it.
SELECT mps.delete_marketing_group('SINGLE');
SELECT * FROM pg_temp.lines(mps.price_order(:'m_single', '[{"product_id":"MILKTEA","category_id":"TEA","quantity":2,"unit_price":18.00}]'));
SELECT action, count(*) FROM audit.event_log WHERE id > :audit_start AND (action LIKE 'mg.%' OR action LIKE 'catalog.%' OR action = 'tx.redeem_stamp')
 GROUP BY action ORDER BY action;
SELECT count(*) AS violations FROM mps.verify_ledger();
