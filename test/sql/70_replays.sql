-- 70_replays: a retry with the same key and parameters returns the first
-- answer byte for byte, for every replayable RPC: itemized charges (small and
-- a 1,000-line order, whose details are large), stamp redemptions, refunds,
-- recharges and pass purchases. Each replay runs in a transaction of its own,
-- as a till's retry does, and is compared with the first answer as text.
SET client_min_messages = warning;
\o /dev/null
SELECT mps.create_merchant(p_code := 'R29SHOP', p_name := 'Replay Shop');
SELECT mps.upsert_category('R29TEA', 'Tea');
SELECT mps.create_marketing_group('R29STAMPS', 'Stamp lovers');
\o
SELECT member_id AS m, card_id AS card FROM mps.create_member_profile(p_name := 'Rita Replay') \gset
SELECT mps.set_member_marketing_group(:'m', 'R29STAMPS') IS NOT NULL AS in_group;
SELECT id AS act FROM mps.create_stamp_activity('R29STAMPS', 'Two teas, one free', 2,
  '[{"target_type":"CATEGORY","target_id":"R29TEA"}]', '[{"target_type":"CATEGORY","target_id":"R29TEA"}]') \gset
SELECT balance_after FROM mps.recharge_card(:'card', 9000.00, 'r29-fund');

CREATE TABLE r29_answers (call text, n int, answer text);

-- Runs p_sql (returning one row) and stores its answer as text.
CREATE FUNCTION pg_temp.answer(p_call text, p_n int, p_sql text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE v text;
BEGIN
  EXECUTE 'SELECT r::text FROM (' || p_sql || ') r' INTO v;
  INSERT INTO r29_answers VALUES (p_call, p_n, v);
END $$;
-- An order of p_lines tea lines, one unit of 0.01 each.
CREATE FUNCTION pg_temp.items(p_lines int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_agg(jsonb_build_object('product_id', 'T' || i, 'category_id', 'R29TEA',
                                      'quantity', 1, 'unit_price', 0.01) ORDER BY i)
  FROM generate_series(1, p_lines) i
$$;

-- Each call is made once, then replayed three times (a new transaction each).
SELECT qr_plain AS q1 FROM mps.rotate_card_qr(:'card') \gset
SELECT format($$SELECT * FROM mps.merchant_charge_by_qr('R29SHOP', %L, NULL, 'r29-c3', p_items := %L, p_order_no := 'R29-O3')$$,
              :'q1', pg_temp.items(3)) AS small_charge \gset
SELECT pg_temp.answer('charge, 3 lines', 0, :'small_charge');
SELECT pg_temp.answer('charge, 3 lines', 1, :'small_charge');
SELECT pg_temp.answer('charge, 3 lines', 2, :'small_charge');
SELECT pg_temp.answer('charge, 3 lines', 3, :'small_charge');

SELECT qr_plain AS q2 FROM mps.rotate_card_qr(:'card') \gset
SELECT format($$SELECT * FROM mps.merchant_charge_by_qr('R29SHOP', %L, NULL, 'r29-c1000', p_items := %L)$$,
              :'q2', pg_temp.items(1000)) AS big_charge \gset
SELECT pg_temp.answer('charge, 1000 lines', 0, :'big_charge');
SELECT pg_temp.answer('charge, 1000 lines', 1, :'big_charge');
SELECT pg_temp.answer('charge, 1000 lines', 2, :'big_charge');
SELECT pg_temp.answer('charge, 1000 lines', 3, :'big_charge');

SELECT qr_plain AS q3 FROM mps.rotate_card_qr(:'card') \gset
SELECT format($$SELECT * FROM mps.redeem_stamp('R29SHOP', %L, p_idempotency_key := 'r29-st', p_activity_id := %s,
                p_items := %L)$$, :'q3', :act, pg_temp.items(2)) AS stamp \gset
SELECT pg_temp.answer('redeem_stamp', 0, :'stamp');
SELECT pg_temp.answer('redeem_stamp', 1, :'stamp');
SELECT pg_temp.answer('redeem_stamp', 2, :'stamp');
SELECT pg_temp.answer('redeem_stamp', 3, :'stamp');

SELECT (answer::mps.charge_result).tx_id AS big_tx FROM r29_answers WHERE call = 'charge, 1000 lines' AND n = 0 \gset
SELECT format($$SELECT * FROM mps.merchant_refund_tx('R29SHOP', %L, 0.05, 'r29-rf', 'five cups back')$$, :'big_tx') AS refund \gset
SELECT pg_temp.answer('refund', 0, :'refund');
SELECT pg_temp.answer('refund', 1, :'refund');
SELECT pg_temp.answer('refund', 2, :'refund');
SELECT pg_temp.answer('refund', 3, :'refund');

SELECT format($$SELECT * FROM mps.recharge_card(%L, 12.34, 'r29-rc', 'bank_transfer', '{"ref":"r29"}')$$, :'card') AS recharge \gset
SELECT pg_temp.answer('recharge', 0, :'recharge');
SELECT pg_temp.answer('recharge', 1, :'recharge');
SELECT pg_temp.answer('recharge', 2, :'recharge');
SELECT pg_temp.answer('recharge', 3, :'recharge');

\o /dev/null
SELECT mps.create_pass_plan('R29P', 'Five teas', 5, 5.00, 'CNY', p_categories := '["R29TEA"]');
\o
SELECT format($$SELECT * FROM mps.purchase_pass('R29SHOP', 'R29P', %L, 2, '[{"method": "cash", "amount": 10.00}]', 'r29-pp')$$,
              :'m') AS purchase \gset
SELECT pg_temp.answer('purchase_pass', 0, :'purchase');
SELECT pg_temp.answer('purchase_pass', 1, :'purchase');
SELECT pg_temp.answer('purchase_pass', 2, :'purchase');
SELECT pg_temp.answer('purchase_pass', 3, :'purchase');

-- Every replay equals its first answer; the first answers are what was asked.
SELECT a.call, count(*) AS replays, bool_and(a.answer = f.answer) AS same_as_first,
       min(length(f.answer)) > 0 AS answered
FROM r29_answers a JOIN r29_answers f ON f.call = a.call AND f.n = 0
WHERE a.n > 0 GROUP BY a.call ORDER BY a.call;
SELECT jsonb_array_length((answer::mps.charge_result).details->'lines') AS big_order_lines,
       (answer::mps.charge_result).final_amount
FROM r29_answers WHERE call = 'charge, 1000 lines' AND n = 3;
-- One movement per call, whatever the replays.
SELECT kind, count(*) FROM mps.transactions WHERE card_id = :'card' GROUP BY kind ORDER BY kind;
SELECT count(*) AS violations FROM mps.verify_ledger();
DROP TABLE r29_answers;
