-- 54_passes_stamps: pass uses and stamps are taken only with their member
-- present and earned only by what was paid, tried as an attacker would
-- through the PostgREST path: an operator of a shop the member never used,
-- with her pass id but without her, or with an accomplice's code.
\set admin_claims '{"role":"service_role"}'
\set mia_sub      '54000000-0000-4000-8000-0000000000a1'
\set mia_claims   '{"sub":"54000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set eve_sub      '54000000-0000-4000-8000-0000000000e1'
\set eve_claims   '{"sub":"54000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set opx_sub      '54000000-0000-4000-8000-0000000000f1'
\set opx_claims   '{"sub":"54000000-0000-4000-8000-0000000000f1","role":"authenticated"}'
BEGIN;
SELECT plan(22);

-- ===== setup, as the platform admin =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT mps.create_merchant('HOME54', 'Mia''s tea shop', 'EUR') IS NOT NULL AS m1 \gset
SELECT mps.create_merchant('EVIL54', 'Another shop', 'EUR') IS NOT NULL AS m2 \gset
SELECT mps.assign_merchant_user('EVIL54', :'opx_sub', 'operator') IS NOT NULL AS op \gset
SELECT member_id AS mia, card_id AS mia_card FROM mps.create_member_profile(p_name := 'Mia',
  p_currency := 'EUR', p_auth_user_id := :'mia_sub') \gset
SELECT member_id AS eve, card_id AS eve_card FROM mps.create_member_profile(p_name := 'Eve',
  p_currency := 'EUR', p_auth_user_id := :'eve_sub') \gset
SELECT code FROM mps.create_pass_plan('NINE54', 'Nine teas', 9, 27.00, 'EUR', p_categories := '["TEA"]') \gset
SELECT pass_id AS mia_pass FROM mps.purchase_pass('HOME54', 'NINE54', :'mia', 1,
  '[{"method": "cash", "amount": 27.00}]', 'buy-54') \gset
-- Stamps: ten paid teas give a 30.00 cake. The catalogue says which product is which.
SELECT count(*) AS catalogue FROM (SELECT mps.upsert_category('TEA54', 'Tea'), mps.upsert_category('CAKE54', 'Cake'),
  mps.upsert_product('GREEN54', 'Green tea', 'TEA54'), mps.upsert_product('FREE54', 'Tea of the day', 'TEA54'),
  mps.upsert_product('CHEESE54', 'Cheesecake', 'CAKE54')) c \gset
SELECT code FROM mps.create_marketing_group('G54', 'Stamp collectors') \gset
SELECT id AS free_rule FROM mps.create_mg_rule('G54', 'Tea of the day free', 'Free tea', 'PRODUCT', 'FREE54', 'PERCENTAGE', 100) \gset
SELECT id AS act54 FROM mps.create_stamp_activity('G54', 'Ten teas, a cake', 10,
  '[{"target_type": "CATEGORY", "target_id": "TEA54"}]', '[{"target_type": "CATEGORY", "target_id": "CAKE54"}]') \gset
SELECT mps.set_member_marketing_group(:'mia', 'G54') AS grouped \gset
SELECT balance_after FROM mps.recharge_card(:'mia_card', 100.00, 'fund-54', 'cash') \gset
RESET ROLE;
-- Mia's next payment code, made in her app while the till's transaction goes on.
CREATE FUNCTION pg_temp.code_of(p_claims text, p_card uuid) RETURNS text LANGUAGE plpgsql AS $$
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
-- Eve, the operator's accomplice, makes a code of her own card.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'eve_claims';
SELECT qr_plain AS eve_qr FROM mps.rotate_card_qr(:'eve_card') \gset
RESET ROLE;

-- ===== 4. pass uses need the member at the till =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opx_claims';
SELECT throws_ok(format('SELECT * FROM mps.list_member_passes(%L)', :'mia'),
                 'MP003', 'the member''s payment code is required',
                 'operator of another shop: listing a member''s passes without her code is refused');
SELECT throws_ok(format($$SELECT mps.redeem_pass('EVIL54', %L, '[{"category": "TEA", "quantity": 9}]', 'steal-1')$$, :'mia_pass'),
                 'MP003', 'the member''s payment code is required',
                 'operator of another shop: redeeming her pass without her code is refused');
SELECT throws_ok(format($$SELECT mps.redeem_pass('EVIL54', %L, '[{"category": "TEA", "quantity": 9}]', 'steal-2',
                          p_qr_plain := 'MPS1.aaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb')$$, :'mia_pass'),
                 'MP301', NULL, 'operator: a made-up code is refused');
SELECT throws_ok(format($$SELECT mps.redeem_pass('EVIL54', %L, '[{"category": "TEA", "quantity": 9}]', 'steal-3',
                          p_qr_plain := %L)$$, :'mia_pass', :'eve_qr'),
                 'MP805', 'pass not found',
                 'operator: an accomplice''s code does not redeem Mia''s pass (it reads as absent)');
SELECT throws_ok(format($$SELECT mps.redeem_pass('EVIL54', %L, '[{"category": "TEA"}]', 'steal-4',
                          p_qr_plain := %L)$$, gen_random_uuid(), :'eve_qr'),
                 'MP805', 'pass not found', 'operator: a pass that does not exist gets the same answer');
SELECT throws_ok(format('SELECT * FROM mps.list_member_passes(%L, %L)', :'mia', :'eve_qr'),
                 'MP101', 'member not found', 'operator: an accomplice''s code does not list Mia''s passes');
SELECT results_eq(format('SELECT count(*) FROM mps.list_member_passes(p_qr_plain := %L)', :'eve_qr'),
                  $$VALUES (0::bigint)$$, 'operator: an accomplice''s code lists only her own (no) passes');
RESET ROLE;
-- Nothing was spent.
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT results_eq(format('SELECT remaining_uses FROM mps.list_member_passes(%L)', :'mia'),
                  $$VALUES (9)$$, 'all nine uses are left after the attempts');
RESET ROLE;

-- Mia at the till: her code lists and redeems, once.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'mia_claims';
SELECT qr_plain AS mia_qr FROM mps.rotate_card_qr(:'mia_card') \gset
SELECT results_eq('SELECT plan_code, remaining_uses FROM mps.get_my_passes()', $$VALUES ('NINE54'::text, 9)$$,
                  'member: get_my_passes');
SELECT results_eq('SELECT plan_code, remaining_uses FROM mps.list_member_passes()', $$VALUES ('NINE54'::text, 9)$$,
                  'member: list_member_passes of her own needs no code');
SELECT throws_ok(format('SELECT * FROM mps.list_member_passes(%L)', :'eve'), '42501', NULL,
                 'member: list_member_passes of another member is refused');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opx_claims';
SELECT results_eq(format('SELECT plan_code, remaining_uses FROM mps.list_member_passes(%L, %L)', :'mia', :'mia_qr'),
                  $$VALUES ('NINE54'::text, 9)$$, 'operator: with her code shown, her passes are listed');
SELECT results_eq(format($$SELECT uses, remaining_uses FROM mps.redeem_pass('EVIL54', %L, '[{"category": "TEA"}]', 'sale-1',
                           p_qr_plain := %L)$$, :'mia_pass', :'mia_qr'),
                  $$VALUES (1, 8)$$, 'operator: with her code, one use is redeemed');
SELECT results_eq(format($$SELECT uses, remaining_uses FROM mps.redeem_pass('EVIL54', %L, '[{"category": "TEA"}]', 'sale-1',
                           p_qr_plain := %L)$$, :'mia_pass', :'mia_qr'),
                  $$VALUES (1, 8)$$, 'operator: a retry with the same key returns the first redemption');
SELECT throws_ok(format($$SELECT mps.redeem_pass('EVIL54', %L, '[{"category": "TEA", "quantity": 8}]', 'sale-2',
                          p_qr_plain := %L)$$, :'mia_pass', :'mia_qr'),
                 'MP304', NULL, 'operator: her code redeems once (used up like a charge''s)');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT results_eq(format('SELECT remaining_uses FROM mps.list_member_passes(%L)', :'mia'),
                  $$VALUES (8)$$, 'eight uses are left');
RESET ROLE;

-- ===== 12. stamps are earned by paid units only =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'opx_claims';
SELECT results_eq(format($$SELECT details->'stamps' FROM mps.merchant_charge_by_qr('EVIL54', %L, p_idempotency_key := 'st-1',
                           p_items := '[{"product_id": "NOTHING54", "category_id": "TEA54", "quantity": 1000, "unit_price": 0.00},
                                        {"product_id": "GUM54", "quantity": 1, "unit_price": 0.01}]')$$,
                         pg_temp.code_of(:'mia_claims', :'mia_card')),
                  $$VALUES ('[]'::jsonb)$$, 'a 0.01 charge with 1000 teas at 0.00 earns no stamps');
SELECT throws_ok(format($$SELECT mps.merchant_charge_by_qr('EVIL54', %L, p_idempotency_key := 'st-2',
                          p_items := '[{"product_id": "GREEN54", "category_id": "TEA54", "quantity": 10000, "unit_price": 0.01}]')$$,
                        pg_temp.code_of(:'mia_claims', :'mia_card')),
                 'MP006', 'invalid line items', 'a line of more than 1000 units is refused');
SELECT results_eq(format($$SELECT details->'stamps' FROM mps.merchant_charge_by_qr('EVIL54', %L, p_idempotency_key := 'st-3',
                           p_items := '[{"product_id": "FREE54", "category_id": "TEA54", "quantity": 5, "unit_price": 2.00},
                                        {"product_id": "GUM54", "quantity": 1, "unit_price": 0.50}]')$$,
                         pg_temp.code_of(:'mia_claims', :'mia_card')),
                  $$VALUES ('[]'::jsonb)$$, 'teas that cost nothing after their rule (100 %) earn no stamps');
SELECT results_eq(format($$SELECT details->'stamps' FROM mps.merchant_charge_by_qr('EVIL54', %L, p_idempotency_key := 'st-4',
                           p_items := '[{"product_id": "CHEESE54", "category_id": "TEA54", "quantity": 5, "unit_price": 1.00}]')$$,
                         pg_temp.code_of(:'mia_claims', :'mia_card')),
                  $$VALUES ('[]'::jsonb)$$, 'a cake the till calls a tea is a cake (the catalogue''s category): no stamps');
SELECT results_eq(format($$SELECT (details->'stamps'->0->>'earned')::int, details->'lines'->0->>'category_id'
                           FROM mps.merchant_charge_by_qr('EVIL54', %L, p_idempotency_key := 'st-5',
                           p_items := '[{"product_id": "GREEN54", "category_id": "CAKE54", "quantity": 2, "unit_price": 3.00}]')$$,
                         pg_temp.code_of(:'mia_claims', :'mia_card')),
                  $$VALUES (2, 'TEA54'::text)$$, 'two paid teas earn two stamps, whatever category the till sent');
SELECT throws_ok(format($$SELECT mps.redeem_stamp('EVIL54', %L, p_idempotency_key := 'st-6', p_activity_id := %s,
                          p_items := '[{"product_id": "CHEESE54", "category_id": "CAKE54", "quantity": 1, "unit_price": 30.00}]')$$,
                        pg_temp.code_of(:'mia_claims', :'mia_card'), :'act54'),
                 'MP114', 'not enough stamps', 'two stamps do not comp the 30.00 cake');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
