-- 55_payments: the Stripe webhook and top-up orders, tried as an attacker
-- would through the PostgREST path: a member cannot call the webhook, read
-- the endpoint secrets or the recorded events, create an order for another's
-- card (and learns nothing about whether it exists), or read others' orders;
-- anon can do none of it; service_role (the Edge Function) delivers events.
\set admin_claims    '{"role":"service_role"}'
\set eve_sub         '55000000-0000-4000-8000-0000000000e1'
\set eve_claims      '{"sub":"55000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set amy_sub         '55000000-0000-4000-8000-0000000000a1'
\set amy_claims      '{"sub":"55000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
BEGIN;
SELECT plan(16);

-- ===== setup, as the platform admin =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT member_id AS amy_member, card_id AS amy_card
FROM mps.create_member_profile(p_name := 'Amy', p_auth_user_id := :'amy_sub') \gset
SELECT member_id AS eve_member, card_id AS eve_card
FROM mps.create_member_profile(p_name := 'Eve', p_auth_user_id := :'eve_sub') \gset
SELECT secret_id FROM mps.add_stripe_secret('whsec_pgtap_secret_000000001') \gset
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'amy_claims';
SELECT order_id AS amy_order FROM mps.create_topup_order(:'amy_card', 25.00, 'amy-1') \gset
RESET ROLE;
SELECT jsonb_build_object('id', 'evt_tap_1', 'type', 'checkout.session.completed',
  'data', jsonb_build_object('object', jsonb_build_object('client_reference_id', :'amy_order',
    'payment_intent', 'pi_tap_1', 'amount_total', 2500, 'currency', 'cny', 'payment_status', 'paid')))::text AS body \gset
SELECT format('t=%s,v1=%s', t, encode(hmac(convert_to(t || '.' || :'body', 'UTF8'),
                                           convert_to('whsec_pgtap_secret_000000001', 'UTF8'), 'sha256'), 'hex')) AS sig
FROM (SELECT floor(extract(epoch FROM now()))::bigint::text AS t) s \gset

-- ===== the attacker (Eve, signed in) =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'eve_claims';
SELECT throws_ok(format('SELECT mps.handle_stripe_event(%L, %L)', :'body', :'sig'),
                 '42501', NULL, 'member: a correctly signed event, delivered by her, is refused');
SELECT throws_ok($$SELECT * FROM mps.list_stripe_secrets()$$, '42501', NULL, 'member: cannot list secrets');
SELECT throws_ok($$SELECT * FROM mps_internal.stripe_secrets$$, '42501', NULL, 'member: cannot read the secrets table');
SELECT throws_ok($$SELECT mps.add_stripe_secret('whsec_eves_own_secret_000001')$$, '42501', NULL,
                 'member: cannot add a secret of her own');
SELECT throws_ok($$SELECT * FROM mps.stripe_events$$, '42501', NULL, 'member: cannot read the events');
SELECT throws_ok(format($$SELECT mps.create_topup_order(%L, 10.00, 'e1')$$, :'amy_card'),
                 '42501', 'permission denied: create_topup_order', 'member: no order on another''s card');
SELECT throws_ok(format($$SELECT mps.create_topup_order(%L, 10.00, 'e1')$$, gen_random_uuid()),
                 '42501', 'permission denied: create_topup_order', 'member: the same refusal for a card that does not exist');
SELECT is((SELECT count(*) FROM mps.topup_orders), 0::bigint, 'member: sees none of another''s orders');
SELECT lives_ok(format($$SELECT mps.create_topup_order(%L, 10.00, 'e2')$$, :'eve_card'),
                'member: an order on her own card');
SELECT is((SELECT count(*) FROM mps.topup_orders), 1::bigint, 'member: sees her own order');
SELECT throws_ok($$UPDATE mps.topup_orders SET status = 'succeeded'$$, '42501', NULL,
                 'member: cannot mark her order paid');
RESET ROLE;

-- ===== anon =====
SET LOCAL ROLE anon;
SET LOCAL request.jwt.claims = '{"role":"anon"}';
SELECT throws_ok(format('SELECT mps.handle_stripe_event(%L, %L)', :'body', :'sig'), '42501', NULL,
                 'anon: cannot call the webhook');
SELECT throws_ok(format($$SELECT mps.create_topup_order(%L, 10.00, 'a1')$$, :'amy_card'), '42501', NULL,
                 'anon: cannot create an order');
RESET ROLE;

-- ===== the Edge Function, with the service_role key =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT is((SELECT outcome FROM mps.handle_stripe_event(:'body', :'sig')), 'credited',
          'service_role: the signed event credits the order');
SELECT is((SELECT balance FROM mps.get_card(:'amy_card')), 25.00, 'the card holds the paid amount');
SELECT is((SELECT duplicate FROM mps.handle_stripe_event(:'body', :'sig')), true,
          'service_role: the same event again is a duplicate');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
