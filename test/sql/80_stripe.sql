-- 80_stripe: Stripe webhooks and card top-ups (src/stripe.c, sql/67_payments.sql).
-- Signatures are computed here with pgcrypto's hmac(), itself checked first
-- against a vector from openssl (`openssl dgst -sha256 -hmac`). Every MP95x
-- code; every outcome (credited, marked_failed, ignored, needs_review);
-- duplicates; events out of order; the ledger invariant after all of it.
\i test/fixtures/money_prelude.sql
\set alice_sub '80000000-0000-4000-8000-0000000000a1'
\set bob_sub   '80000000-0000-4000-8000-0000000000b0'
\set carol_sub '80000000-0000-4000-8000-0000000000c0'
\set dave_sub  '80000000-0000-4000-8000-0000000000d0'
\set c_alice '{"sub":"80000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set c_bob   '{"sub":"80000000-0000-4000-8000-0000000000b0","role":"authenticated"}'
\set c_carol '{"sub":"80000000-0000-4000-8000-0000000000c0","role":"authenticated"}'
\set c_dave  '{"sub":"80000000-0000-4000-8000-0000000000d0","role":"authenticated"}'
\set c_service '{"role":"service_role"}'

-- Stripe's scheme: v1 = hex(HMAC-SHA256(secret, "<t>.<body>")).
CREATE FUNCTION mt.stripe_v1(p_body text, p_secret text, p_t bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT encode(hmac(convert_to(p_t::text || '.' || p_body, 'UTF8'), convert_to(p_secret, 'UTF8'), 'sha256'), 'hex')
$$;
CREATE FUNCTION mt.stripe_sig(p_body text, p_secret text, p_age integer DEFAULT 0) RETURNS text
LANGUAGE sql VOLATILE AS $$
  SELECT format('t=%s,v1=%s', t, mt.stripe_v1(p_body, p_secret, t))
  FROM (SELECT floor(extract(epoch FROM now()))::bigint - p_age AS t) s
$$;
-- An event body as Stripe sends it (the fields MPS reads, and some it does not).
CREATE FUNCTION mt.event(p_id text, p_type text, p_object jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', p_id, 'object', 'event', 'api_version', '2024-06-20',
    'created', 1733300000, 'livemode', false, 'type', p_type, 'pending_webhooks', 1,
    'data', jsonb_build_object('object', p_object))::text
$$;
CREATE FUNCTION mt.session(p_order uuid, p_pi text, p_amount bigint, p_currency text, p_status text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', 'cs_test_' || md5(p_pi), 'object', 'checkout.session', 'mode', 'payment',
    'client_reference_id', p_order::text, 'metadata', jsonb_build_object('mps_order_id', p_order::text),
    'payment_intent', p_pi, 'amount_total', p_amount, 'currency', p_currency, 'payment_status', p_status,
    'status', 'complete')
$$;
CREATE FUNCTION mt.pi(p_order uuid, p_pi text, p_amount bigint, p_currency text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', p_pi, 'object', 'payment_intent', 'amount', p_amount,
    'amount_received', p_amount, 'currency', p_currency, 'status', 'succeeded',
    'metadata', CASE WHEN p_order IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('mps_order_id', p_order::text) END)
$$;
-- Deliver as the Edge Function does: service_role, the body and the header unchanged.
CREATE FUNCTION mt.deliver(p_body text, p_sig text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  r mps.stripe_event_result;
BEGIN
  PERFORM set_config('role', 'service_role', true);
  PERFORM set_config('request.jwt.claims', '{"role":"service_role"}', true);
  r := mps.handle_stripe_event(p_body, p_sig);
  PERFORM set_config('request.jwt.claims', '', true);
  RESET role;
  RETURN format('%s %s dup=%s order=%s: %s', r.event_type, r.outcome, r.duplicate,
                r.order_id IS NOT NULL, mt.mask(r.detail));
EXCEPTION WHEN OTHERS THEN
  PERFORM set_config('request.jwt.claims', '', true);
  RESET role;
  RAISE;
END
$$;
CREATE FUNCTION mt.charge(p_pi text, p_refunded bigint, p_currency text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', 'ch_' || p_pi, 'object', 'charge', 'payment_intent', p_pi,
    'amount', 0, 'amount_refunded', p_refunded, 'currency', p_currency, 'refunded', false)
$$;
CREATE FUNCTION mt.try_deliver(p_body text, p_sig text) RETURNS text
LANGUAGE sql AS $$ SELECT mt.try(format('SELECT mt.deliver(%L, %L)', p_body, p_sig)) $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA mt TO PUBLIC;

-- pgcrypto agrees with openssl on a fixed vector
SELECT mt.stripe_v1('{"id":"evt_x"}', 'whsec_vector_secret_0001', 1700000000)
     = '21a43f16288ec40ab00d524d4ee33e9fbc2c791c18f05b49c1c6ed157b3665f4' AS pgcrypto_matches_openssl;

-- ===== setup, as the platform admin =====
SELECT member_id AS alice_member, card_id AS alice_card
FROM mps.create_member_profile(p_name := 'Alice', p_auth_user_id := :'alice_sub') \gset
SELECT member_id AS bob_member, card_id AS bob_card
FROM mps.create_member_profile(p_name := 'Bob', p_auth_user_id := :'bob_sub') \gset
SELECT member_id AS carol_member FROM mps.create_member_profile(p_name := 'Carol', p_auth_user_id := :'carol_sub') \gset
SELECT member_id AS dave_member FROM mps.create_member_profile(p_name := 'Dave', p_auth_user_id := :'dave_sub') \gset
SELECT card_id AS corp_card FROM mps.issue_card(p_card_type := 'corporate', p_owner_member_id := :'carol_member',
                                                p_enterprise_name := 'Acme') \gset
\o /dev/null
SELECT mps.bind_card_member(:'corp_card', :'dave_member', 'member');
\o

-- ===== no secret configured yet: MP950, nothing recorded =====
SELECT mt.try_deliver(mt.event('evt_nosecret', 'ping', '{}'), mt.stripe_sig(mt.event('evt_nosecret', 'ping', '{}'), 'whsec_none_0000000000'));

-- ===== secrets: the platform admin's alone, never echoed =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try($$SELECT mps.add_stripe_secret('whsec_member_tries_000001')$$) AS member_adds_secret;
SELECT mt.try($$SELECT * FROM mps.list_stripe_secrets()$$) AS member_lists_secrets;
SELECT mt.try($$SELECT * FROM mps_internal.stripe_secrets$$) AS member_reads_table;
COMMIT;
SELECT mt.try($$SELECT mps.add_stripe_secret('short')$$) AS too_short;
SELECT mt.try($$SELECT mps.add_stripe_secret('whsec_has a space_000000')$$) AS with_space;
SELECT mt.try($$SELECT mps.add_stripe_secret(NULL)$$) AS null_secret;
SELECT secret_id AS s1, label, length(fingerprint) AS fp_len
FROM mps.add_stripe_secret('whsec_first_secret_0000000001', 'primary') \gset
SELECT :'label' AS label, :fp_len AS fingerprint_length;
SELECT mt.try($$SELECT mps.add_stripe_secret('whsec_first_secret_0000000001')$$) AS duplicate_secret;
SELECT label, fingerprint = mps_internal.secret_fingerprint('whsec_first_secret_0000000001') AS fp_ok
FROM mps.list_stripe_secrets();
-- no audit event and no result carries the secret
SELECT action, after::text LIKE '%whsec%' AS leaks FROM audit.event_log WHERE action LIKE 'stripe_secret.%';

-- ===== who may call the webhook: service_role or the DB admin; no member =====
\set ping '{"id":"evt_ping_1","object":"event","type":"ping","data":{"object":{}}}'
SELECT mt.stripe_sig(:'ping', 'whsec_first_secret_0000000001') AS ping_sig \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.handle_stripe_event(%L, %L)', :'ping', :'ping_sig')) AS member_calls_webhook;
COMMIT;

-- ===== signature: every refusal, nothing recorded =====
SELECT floor(extract(epoch FROM now()))::bigint AS t \gset
SELECT mt.try_deliver(:'ping', NULL) AS no_header;
SELECT mt.try_deliver(NULL, :'ping_sig') AS no_body;
SELECT mt.try_deliver(:'ping', '') AS empty_header;
SELECT mt.try_deliver(:'ping', 'v1=' || mt.stripe_v1(:'ping', 'whsec_first_secret_0000000001', 1)) AS no_timestamp;
SELECT mt.try_deliver(:'ping', 't=' || floor(extract(epoch FROM now()))::bigint) AS no_v1;
SELECT mt.try_deliver(:'ping', 't=12ab,v1=' || repeat('0', 64)) AS bad_timestamp;
SELECT mt.try_deliver(:'ping', 't=1,t=2,v1=' || repeat('0', 64)) AS two_timestamps;
SELECT mt.try_deliver(:'ping', mt.stripe_sig(:'ping', 'whsec_wrong_secret_000000001')) AS wrong_secret;
SELECT mt.try_deliver(replace(:'ping', 'evt_ping_1', 'evt_ping_2'), :'ping_sig') AS body_changed_one_byte;
SELECT mt.try_deliver(:'ping', format('t=%s,v1=%s', :t, upper(mt.stripe_v1(:'ping', 'whsec_first_secret_0000000001', :t)))) AS hex_upper_case;
SELECT mt.try_deliver(:'ping', mt.stripe_sig(:'ping', 'whsec_first_secret_0000000001', 301)) AS stale_301s;
SELECT mt.try_deliver(:'ping', mt.stripe_sig(:'ping', 'whsec_first_secret_0000000001', -400)) AS future_400s;
SELECT mt.try_deliver(:'ping', mt.stripe_sig(:'ping', 'whsec_wrong_secret_000000001', 3600)) AS stale_and_wrong;
SELECT count(*) AS events_recorded FROM mps.stripe_events;
-- accepted: within the tolerance, extra spaces, other schemes, several v1
SELECT mt.try_deliver(:'ping', mt.stripe_sig(:'ping', 'whsec_first_secret_0000000001', 290)) AS aged_290s;
SELECT mt.deliver(:'ping', :'ping_sig') AS duplicate_of_first;
\set ping3 '{"id":"evt_ping_3","type":"ping","data":{"object":{}}}'
SELECT mt.deliver(:'ping3', format(' t=%s , v0=%s,  v1=%s ,v1=%s,scheme=x', :t, repeat('a', 64),
                  repeat('b', 64), mt.stripe_v1(:'ping3', 'whsec_first_secret_0000000001', :t))) AS spaces_and_schemes;
-- a tighter tolerance (PGC_SUSET)
SET mps.stripe_tolerance = 10;
\set ping4 '{"id":"evt_ping_4","type":"ping","data":{"object":{}}}'
SELECT mt.try_deliver(:'ping4', mt.stripe_sig(:'ping4', 'whsec_first_secret_0000000001', 11)) AS stale_11s_of_10;
RESET mps.stripe_tolerance;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT mt.try('SET mps.stripe_tolerance = 100000') AS member_sets_tolerance;
COMMIT;

-- ===== rotation: two secrets at once; the old one removed =====
SELECT secret_id AS s2 FROM mps.add_stripe_secret('whsec_second_secret_000000002', 'next') \gset
\set ping5 '{"id":"evt_ping_5","type":"ping","data":{"object":{}}}'
SELECT mt.deliver(:'ping5', format('t=%s,v1=%s,v1=%s', :t, mt.stripe_v1(:'ping5', 'whsec_second_secret_000000002', :t),
                  mt.stripe_v1(:'ping5', 'whsec_first_secret_0000000001', :t))) AS both_secrets;
SELECT mps.remove_stripe_secret(:s1) AS removed, mps.remove_stripe_secret(:s1) AS removed_again;
\set ping6 '{"id":"evt_ping_6","type":"ping","data":{"object":{}}}'
SELECT mt.try_deliver(:'ping6', mt.stripe_sig(:'ping6', 'whsec_first_secret_0000000001')) AS old_secret_after_removal;
SELECT mt.deliver(:'ping6', mt.stripe_sig(:'ping6', 'whsec_second_secret_000000002')) AS new_secret;
\set sk 'whsec_second_secret_000000002'

-- ===== payload: verified but not an event: MP954 =====
SELECT mt.try_deliver('{"id": "evt_bad", ', mt.stripe_sig('{"id": "evt_bad", ', :'sk')) AS truncated_json;
SELECT mt.try_deliver('[1,2]', mt.stripe_sig('[1,2]', :'sk')) AS array_body;
SELECT mt.try_deliver('"evt"', mt.stripe_sig('"evt"', :'sk')) AS scalar_body;
SELECT mt.try_deliver('{"type":"ping","data":{"object":{}}}', mt.stripe_sig('{"type":"ping","data":{"object":{}}}', :'sk')) AS no_id;
SELECT mt.try_deliver('{"id":"evt_nodata","type":"ping"}', mt.stripe_sig('{"id":"evt_nodata","type":"ping"}', :'sk')) AS no_data_object;
SELECT mt.try_deliver('{"id":"evt_nul","type":"p\u0000","data":{"object":{}}}',
                      mt.stripe_sig('{"id":"evt_nul","type":"p\u0000","data":{"object":{}}}', :'sk')) AS nul_escape;

-- ===== create_topup_order: who may, what amount =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT order_id AS o1, amount, currency, status, stripe_amount, stripe_currency,
       client_reference_id = order_id::text AS ref_is_order, metadata->>'mps_order_id' = order_id::text AS meta_is_order
FROM mps.create_topup_order(:'alice_card', 100.00, 'top-1') \gset
SELECT :'amount' AS amount, :'currency' AS currency, :'status' AS status, :'stripe_amount' AS stripe_amount,
       :'stripe_currency' AS stripe_currency, :'ref_is_order' AS ref_is_order, :'meta_is_order' AS meta_is_order;
SELECT order_id = :'o1' AS retry_same_order FROM mps.create_topup_order(:'alice_card', 100.00, 'top-1');
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 100.01, %L)', :'alice_card', 'top-1')) AS same_key_other_amount;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 0, %L)', :'alice_card', 'top-z')) AS zero;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 1.001, %L)', :'alice_card', 'top-z')) AS three_decimals;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, -5, %L)', :'alice_card', 'top-z')) AS negative;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, NULL, %L)', :'alice_card', 'top-z')) AS null_amount;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 100000000.00, %L)', :'alice_card', 'top-z')) AS over_balance_cap;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 5.00, NULL)', :'alice_card')) AS no_key;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 5.00, %L)', :'bob_card', 'top-x')) AS on_bobs_card;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 5.00, %L)', gen_random_uuid(), 'top-x')) AS on_no_card;
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 5.00, %L)', :'corp_card', 'top-x')) AS on_corp_not_bound;
SELECT order_id AS o2 FROM mps.create_topup_order(:'alice_card', 50.00, 'top-2') \gset
SELECT order_id AS o3 FROM mps.create_topup_order(:'alice_card', 20.00, 'top-3') \gset
SELECT order_id AS o4 FROM mps.create_topup_order(:'alice_card', 30.00, 'top-4') \gset
SELECT order_id AS o5 FROM mps.create_topup_order(:'alice_card', 40.00, 'top-5') \gset
SELECT order_id AS o6 FROM mps.create_topup_order(:'alice_card', 60.00, 'top-6') \gset
-- she reads her own orders only
SELECT count(*) AS her_orders FROM mps.topup_orders;
SELECT mt.try('SELECT * FROM mps.stripe_events') AS member_reads_events;
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_dave', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.create_topup_order(%L, 5.00, %L)', :'corp_card', 'top-d')) AS corp_member;
SELECT count(*) AS orders_dave_sees FROM mps.topup_orders;
SELECT set_config('request.jwt.claims', :'c_carol', true) AS claims_set \gset
SELECT order_id AS oc, amount FROM mps.create_topup_order(:'corp_card', 500.00, 'corp-1') \gset
SELECT :'amount' AS corp_owner_order;
COMMIT;
SELECT action, after->>'amount' AS amount, idempotency_key FROM audit.event_log
WHERE action = 'topup_order.create' ORDER BY id LIMIT 2;

-- ===== paid checkout: credited once =====
SELECT mt.card_state(:'alice_card') AS alice_before;
SELECT mt.event('evt_cs_1', 'checkout.session.completed', mt.session(:'o1', 'pi_1', 10000, 'cny', 'paid')) AS b1 \gset
SELECT mt.deliver(:'b1', mt.stripe_sig(:'b1', :'sk')) AS paid_checkout;
SELECT mt.card_state(:'alice_card') AS alice_after;
SELECT kind, amount, final_amount, balance_after, reason, member_id = :'alice_member' AS her_member,
       details->>'topup_order_id' = :'o1' AS links_order, details->>'payment_intent' AS pi,
       details->>'stripe_event_id' AS event
FROM mps.transactions WHERE card_id = :'alice_card' ORDER BY created_at;
SELECT status, payment_intent, tx_id IS NOT NULL AS has_tx, paid_at IS NOT NULL AS paid
FROM mps.topup_orders WHERE id = :'o1';
SELECT action, actor_admin, after->>'payment_method' AS method, after->>'payment_intent' AS pi,
       after->>'topup_order_id' = :'o1' AS order_ok
FROM audit.event_log WHERE action = 'tx.recharge' AND after->>'card_id' = :'alice_card';
-- the same event again (a retry): the first outcome, nothing moves
SELECT mt.deliver(:'b1', mt.stripe_sig(:'b1', :'sk')) AS same_event_again;
-- another event about the same PaymentIntent: granted once
SELECT mt.event('evt_pi_1', 'payment_intent.succeeded', mt.pi(:'o1', 'pi_1', 10000, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS pi_event_same_payment;
SELECT mt.event('evt_pi_1b', 'payment_intent.succeeded', mt.pi(NULL, 'pi_1', 10000, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS pi_event_untagged;
SELECT mt.card_state(:'alice_card') AS alice_still;

-- ===== out of order: payment_intent.succeeded first, then the checkout session =====
SELECT mt.event('evt_pi_2', 'payment_intent.succeeded', mt.pi(:'o2', 'pi_2', 5000, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS pi_first;
SELECT mt.event('evt_cs_2', 'checkout.session.completed', mt.session(:'o2', 'pi_2', 5000, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS checkout_after;
-- one order, another PaymentIntent: not credited twice
SELECT mt.event('evt_cs_2x', 'checkout.session.completed', mt.session(:'o2', 'pi_2x', 5000, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS second_payment_same_order;
-- one PaymentIntent, another order: not credited twice
SELECT mt.event('evt_cs_3x', 'checkout.session.completed', mt.session(:'o3', 'pi_2', 2000, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS same_payment_other_order;

-- ===== asynchronous payment: unpaid checkout, then success =====
SELECT mt.event('evt_cs_3', 'checkout.session.completed', mt.session(:'o3', 'pi_3', 2000, 'cny', 'unpaid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS unpaid_checkout;
SELECT status FROM mps.topup_orders WHERE id = :'o3';
SELECT mt.event('evt_cs_3s', 'checkout.session.async_payment_succeeded', mt.session(:'o3', 'pi_3', 2000, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS async_succeeded;
-- a late failure does not move it back
SELECT mt.event('evt_cs_3f', 'checkout.session.async_payment_failed', mt.session(:'o3', 'pi_3', 2000, 'cny', 'unpaid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS late_failure;
SELECT status FROM mps.topup_orders WHERE id = :'o3';

-- ===== asynchronous failure; then a success for it is for review =====
SELECT mt.event('evt_cs_4f', 'checkout.session.async_payment_failed', mt.session(:'o4', 'pi_4', 3000, 'cny', 'unpaid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS async_failed;
SELECT mt.event('evt_cs_4s', 'checkout.session.async_payment_succeeded', mt.session(:'o4', 'pi_4', 3000, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS success_after_failure;
SELECT status FROM mps.topup_orders WHERE id = :'o4';

-- ===== needs review: unknown order, amount or currency not the order's =====
SELECT mt.event('evt_cs_unknown', 'checkout.session.completed', mt.session(gen_random_uuid(), 'pi_u', 1000, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS unknown_order;
SELECT mt.event('evt_cs_noref', 'checkout.session.completed',
                mt.session(:'o5', 'pi_nr', 4000, 'cny', 'paid') - 'client_reference_id' - 'metadata') AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS no_order_reference;
SELECT mt.event('evt_cs_badref', 'checkout.session.completed',
                mt.session(:'o5', 'pi_br', 4000, 'cny', 'paid') || '{"client_reference_id":"order-42"}') AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS not_an_order_id;
SELECT mt.event('evt_cs_5a', 'checkout.session.completed', mt.session(:'o5', 'pi_5', 3999, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS amount_differs;
SELECT mt.event('evt_cs_5c', 'checkout.session.completed', mt.session(:'o5', 'pi_5', 4000, 'usd', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS currency_differs;
SELECT mt.event('evt_cs_5n', 'checkout.session.completed', mt.session(:'o5', 'pi_5', 4000, 'cny', 'paid') - 'payment_intent') AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS no_payment_intent;
SELECT status FROM mps.topup_orders WHERE id = :'o5';
-- then the right payment still credits it (upper-case currency is the same currency)
SELECT mt.event('evt_cs_5', 'checkout.session.completed', mt.session(:'o5', 'pi_5', 4000, 'CNY', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS right_payment;
SELECT action, after->>'event_type' AS type FROM audit.event_log
WHERE action = 'stripe_event.needs_review' ORDER BY id;

-- ===== a frozen card is not credited: the paid order waits for review =====
UPDATE mps.cards SET status = 'frozen' WHERE id = :'alice_card';
SELECT mt.event('evt_cs_6', 'checkout.session.completed', mt.session(:'o6', 'pi_6', 6000, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS frozen_card;
UPDATE mps.cards SET status = 'active' WHERE id = :'alice_card';

-- ===== unknown event types are recorded and ignored =====
SELECT mt.event('evt_cust', 'customer.created', '{"id":"cus_1","object":"customer"}') AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS unknown_type;
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS unknown_type_again;

-- ===== the corporate card, topped up by its owner =====
SELECT mt.event('evt_cs_c', 'checkout.session.completed', mt.session(:'oc', 'pi_c', 50000, 'cny', 'paid')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS corporate_paid;
SELECT mt.card_state(:'corp_card') AS corp;

-- ===== refunds: charge.refunded carries the cumulative amount; the difference is taken back =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'T80SHOP', p_name := 'Stripe Shop');
\o
SELECT mt.card_state(:'alice_card') AS alice_before_refunds;
SELECT mt.event('evt_rf_1', 'charge.refunded', mt.charge('pi_1', 3000, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS partial_refund;
SELECT kind, amount, reason, details->>'refunded_total' AS refunded_total, details->>'unrecovered' AS unrecovered
FROM mps.transactions WHERE card_id = :'alice_card' AND kind = 'adjustment';
-- the same cumulative again (another event id), and an older one arriving late: nothing more
SELECT mt.event('evt_rf_1b', 'charge.refunded', mt.charge('pi_1', 3000, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS same_cumulative;
SELECT mt.event('evt_rf_0', 'charge.refunded', mt.charge('pi_1', 1000, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS older_cumulative_late;
SELECT mt.card_state(:'alice_card') AS alice_after_partial;
-- she spends most of it; then the rest is refunded: what is there is taken, the rest is for review
SELECT balance_after FROM mt.admin_charge(:'alice_card', 'T80SHOP', 170.00, 'spend-1');
SELECT mt.event('evt_rf_2', 'charge.refunded', mt.charge('pi_1', 10000, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS full_refund_already_spent;
SELECT mt.card_state(:'alice_card') AS alice_emptied;
SELECT status, refunded_amount, unrecovered_amount FROM mps.topup_orders WHERE id = :'o1';
SELECT action, after->>'amount' AS amount, after->>'unrecovered' AS unrecovered FROM audit.event_log
WHERE action = 'tx.adjustment' AND after->>'card_id' = :'alice_card' ORDER BY id;
-- refunds that fit no credited order: for review, nothing moves
SELECT mt.event('evt_rf_u', 'charge.refunded', mt.charge('pi_nobody', 100, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS refund_unknown_payment;
SELECT mt.event('evt_rf_p', 'charge.refunded', mt.charge('pi_6', 100, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS refund_before_success;
SELECT mt.event('evt_rf_x', 'charge.refunded', mt.charge('pi_2', 5001, 'cny')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS refund_above_order;
SELECT mt.event('evt_rf_c', 'charge.refunded', mt.charge('pi_2', 100, 'usd')) AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS refund_other_currency;
SELECT mt.event('evt_rf_n', 'charge.refunded', mt.charge('pi_2', 100, 'cny') - 'payment_intent') AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS refund_no_payment_intent;
-- a dispute: recorded for review
SELECT mt.event('evt_dp_1', 'charge.dispute.created', '{"id":"dp_1","object":"dispute","payment_intent":"pi_2","amount":5000,"currency":"cny"}') AS b \gset
SELECT mt.deliver(:'b', mt.stripe_sig(:'b', :'sk')) AS dispute;

-- ===== where it all ended =====
SELECT mt.card_state(:'alice_card') AS alice_final;
SELECT id = :'o1' AS o1, id = :'o2' AS o2, status, amount FROM mps.topup_orders
WHERE card_id = :'alice_card' ORDER BY amount;
SELECT outcome, count(*) FROM mps.stripe_events GROUP BY outcome ORDER BY outcome;
SELECT count(*) AS recharges, sum(amount) AS total FROM mps.transactions WHERE kind = 'recharge' AND reason = 'stripe';
SELECT check_name, count(*) AS violations FROM mps.verify_ledger()
WHERE check_name IN ('balance_equals_transactions', 'points_equal_ledger') GROUP BY check_name;
