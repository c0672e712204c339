-- Demo section: pass cards (次卡, seed 002). Included by test/demo.sql after
-- the money-core sections; uses its variables (op_claims) and its merchant
-- COFFEE01 (CNY), operator and members Alice and Carol.

\echo
\echo '== 8. Pass cards (次卡): plans, a purchase, head-office review, two redemptions'
\echo
\echo '-- the platform admin defines two plans and the redemption slip template'
SELECT code, name, uses_per_purchase, price, currency, coalesce(validity_days::text, 'none') AS validity_days,
       auto_activate, products, categories
FROM mps.create_pass_plan(p_code := 'MILKTEA10', p_name := '10 milk teas', p_uses_per_purchase := 10,
                          p_price := 150.00, p_currency := 'CNY', p_validity_days := 90, p_auto_activate := true,
                          p_products := '["MILK_TEA", "TARO_MILK_TEA"]', p_categories := '["MILK_TEA"]');
SELECT code, name, uses_per_purchase, price, currency, coalesce(validity_days::text, 'none') AS validity_days,
       auto_activate, products, categories
FROM mps.create_pass_plan(p_code := 'TASTER3', p_name := '3 teas to try', p_uses_per_purchase := 3,
                          p_price := 30.00, p_currency := 'CNY', p_auto_activate := false,
                          p_categories := '["TEA", "MILK_TEA"]');
SELECT template_type, is_active FROM mps.create_print_template('PASS_REDEMPTION_SLIP', $$
  {"type": "PASS_REDEMPTION_SLIP", "content": [
    {"text": "{{merchant_name}}", "align": "center", "bold": true},
    {"text": "Pass {{plan_name}} - slip {{batch_no}}"},
    {"text": "{{lines}}"},
    {"text": "Uses: {{uses}}, left: {{remaining_uses}}"},
    {"text": "Surcharge: {{extra_total}} {{currency}}  Order: {{order_no}}  Invoice: {{invoice}}"},
    {"text": "{{redeemed_at}}"}]}$$);

SELECT m.id AS demo_alice, b.card_id AS demo_alice_card
FROM mps.member_profiles m JOIN mps.card_bindings b ON b.member_id = m.id AND b.role = 'owner'
WHERE m.name = 'Alice Chen' \gset
SELECT m.id AS demo_carol FROM mps.member_profiles m WHERE m.name = 'Carol Wang' \gset
SELECT balance_after AS alice_balance FROM mps.recharge_card(:'demo_alice_card', 200.00, 'demo-pass-fund', 'cash');
SELECT qr_plain AS demo_alice_qr FROM mps.rotate_card_qr(:'demo_alice_card') \gset

\echo '-- at the till (operator of COFFEE01): Alice buys MILKTEA10, 50.00 in cash and 100.00 from her card'
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
SELECT plan_code, first_purchase, uses_added, remaining_uses, pass_status, review_state, total, payments,
       card_amount, card_balance_after, order_no, to_char(expires_at - created_at, 'DD "days"') AS valid_for
FROM mps.purchase_pass(p_merchant_code := 'COFFEE01', p_plan_code := 'MILKTEA10', p_member_id := :'demo_alice',
  p_quantity := 1, p_idempotency_key := 'demo-pass-1', p_order_no := 'VR-0001',
  p_payments := jsonb_build_array(jsonb_build_object('method', 'cash', 'amount', 50.00),
                                  jsonb_build_object('method', 'member_card', 'amount', 100.00, 'qr', :'demo_alice_qr')));
\echo '-- Carol buys TASTER3 with Bizum: the plan needs head-office review, so her pass waits (suspended)'
SELECT plan_code, first_purchase, uses_added, pass_status, review_state, total, payments
FROM mps.purchase_pass(p_merchant_code := 'COFFEE01', p_plan_code := 'TASTER3', p_member_id := :'demo_carol',
  p_payments := '[{"method": "bizum", "amount": 30.00}]', p_idempotency_key := 'demo-pass-2');
COMMIT;

\echo
\echo '-- head office (platform admin): the review queue, then approval'
SELECT plan_code, merchant_code, quantity, total, payments, review_state, pass_status FROM mps.list_pass_orders('pending');
SELECT order_id AS demo_carol_order FROM mps.list_pass_orders('pending') WHERE plan_code = 'TASTER3' \gset
SELECT plan_code, review_state, review_note, pass_status, pass_remaining_uses
FROM mps.activate_member_pass(p_order_id := :'demo_carol_order', p_note := 'first-time customer, approved');

\echo
\echo '-- two redemptions at the till, each with the payment code Alice shows in her app'
\echo '-- (the redemption uses the code up, like a charge; here the back office makes it for her)'
SELECT qr_plain AS demo_alice_qr FROM mps.rotate_card_qr(:'demo_alice_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
\echo '-- the operator scans her code: her passes'
SELECT pass_id AS demo_alice_pass FROM mps.list_member_passes(p_qr_plain := :'demo_alice_qr')
WHERE plan_code = 'MILKTEA10' \gset
\echo '-- (1) zero-amount: two milk teas, uses only: no order, no invoice'
SELECT plan_code, uses, remaining_uses, extra_total, invoice_due, coalesce(order_no, '-') AS order_no, slip_produced
FROM mps.redeem_pass(p_merchant_code := 'COFFEE01', p_pass_id := :'demo_alice_pass',
  p_lines := '[{"product": "MILK_TEA", "category": "MILK_TEA", "quantity": 2}]', p_idempotency_key := 'demo-redeem-1',
  p_qr_plain := :'demo_alice_qr');
COMMIT;
SELECT qr_plain AS demo_alice_qr FROM mps.rotate_card_qr(:'demo_alice_card') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'op_claims';
\echo '-- (2) with a surcharge (a large taro milk tea, +5.00): paid in cash, on an order, invoice due'
SELECT plan_code, uses, remaining_uses, extra_total, payments, invoice_due, order_no, slip_produced
FROM mps.redeem_pass(p_merchant_code := 'COFFEE01', p_pass_id := :'demo_alice_pass',
  p_lines := '[{"product": "TARO_MILK_TEA", "category": "MILK_TEA", "quantity": 1, "extra": 5.00}]',
  p_idempotency_key := 'demo-redeem-2', p_order_no := 'POS-20251120-0042',
  p_payments := '[{"method": "cash", "amount": 5.00}]', p_qr_plain := :'demo_alice_qr');
\echo '-- the print job it returned (rendered from the active PASS_REDEMPTION_SLIP template):'
SELECT l->>'text' AS slip_line
FROM mps.pass_redemption_batches b, jsonb_array_elements(b.print_job->'content'->'content') l
WHERE b.order_no = 'POS-20251120-0042';
\echo '-- the same surcharge paid by Bizum is refused by the backend whitelist:'
SELECT set_config('demo.pass_id', :'demo_alice_pass', true) IS NOT NULL AS pass_noted,
       set_config('demo.qr', :'demo_alice_qr', true) IS NOT NULL AS code_noted \gset
SELECT * FROM pg_temp.refused($$
  SELECT mps.redeem_pass(p_merchant_code := 'COFFEE01', p_pass_id := current_setting('demo.pass_id')::uuid,
    p_lines := '[{"product": "TARO_MILK_TEA", "extra": 5.00}]', p_idempotency_key := 'demo-redeem-3',
    p_order_no := 'POS-20251120-0043', p_payments := '[{"method": "bizum", "amount": 5.00}]',
    p_qr_plain := current_setting('demo.qr'))
$$, 'MP813') \gx
COMMIT;

\echo
\echo '-- the passes as the back office sees them, and the card money'
SELECT mp.name AS member, v.plan_code, v.status, v.total_uses, v.used_uses, v.remaining_uses,
       CASE WHEN v.expires_at IS NULL THEN 'never'
            ELSE 'in ' || ceil(extract(epoch FROM v.expires_at - now()) / 86400) || ' days' END AS expires
FROM mps.member_profiles mp, LATERAL mps.list_member_passes(mp.id) v
WHERE mp.id IN (:'demo_alice', :'demo_carol') ORDER BY mp.name, v.plan_code;
SELECT kind, mps_internal.to_major(amount, 2) AS amount, mps_internal.to_major(balance_after, 2) AS balance_after, reason
FROM mps.transactions WHERE card_id = :'demo_alice_card' AND kind = 'pass_purchase';
