-- Settlement benchmark: 1,000,000 transactions of one merchant in one month,
-- plus 1,000,000 of other merchants as noise, then generate_settlement for the
-- month and the month's daily report, timed, with their plan shapes. Runs in a
-- database of its own (the rows are synthetic: no cards behind them).
\set QUIET on
SET client_min_messages = warning;
SELECT mps.create_merchant('BIGSHOP', 'Busy shop', p_settlement_mode := 'monthly') \g /dev/null
SELECT mps.create_merchant('NOISE' || i, 'Other shop ' || i) FROM generate_series(1, 20) i \g /dev/null
SELECT mps_internal.create_month_partitions((date_trunc('month', now()) - interval '1 month')::date, 0) \g /dev/null
SELECT date_trunc('month', now()) - interval '1 month' AS m_start, date_trunc('month', now()) AS m_end \gset
-- 10,000 cards to pay with (balances are not the point here).
INSERT INTO mps.cards (card_no, card_type, currency)
SELECT '9' || lpad(i::text, 15, '0'), (ARRAY['standard', 'prepaid', 'corporate'])[1 + i % 3]::mps.card_type, 'CNY'
FROM generate_series(0, 9999) i;
-- 950,000 payments and 50,000 refunds for BIGSHOP, spread over the month.
WITH c AS (SELECT array_agg(id ORDER BY card_no) AS ids FROM mps.cards),
     m AS (SELECT id FROM mps.merchants WHERE code = 'BIGSHOP')
INSERT INTO mps.transactions (id, created_at, card_id, kind, status, currency, amount, raw_amount,
                              discount_amount, final_amount, balance_after, points_after, merchant_id, original_tx_id)
SELECT gen_random_uuid(), :'m_start'::timestamptz + (i * interval '2.592 seconds'), c.ids[1 + g.i % 10000],
       CASE WHEN i % 20 = 0 THEN 'refund' ELSE 'payment' END::mps.tx_kind, 'completed', 'CNY',
       CASE WHEN i % 20 = 0 THEN 500 ELSE -(1000 + i % 997) END,
       CASE WHEN i % 20 = 0 THEN 500 ELSE 1000 + i % 997 END, 0,
       CASE WHEN i % 20 = 0 THEN 500 ELSE 1000 + i % 997 END, 0, 0,
       m.id, CASE WHEN i % 20 = 0 THEN gen_random_uuid() END
FROM generate_series(0, 999999) g(i), c, m;
-- 1,000,000 payments of twenty other merchants in the same month.
WITH c AS (SELECT array_agg(id ORDER BY card_no) AS ids FROM mps.cards),
     n AS (SELECT array_agg(id ORDER BY code) AS ids FROM mps.merchants WHERE code LIKE 'NOISE%')
INSERT INTO mps.transactions (id, created_at, card_id, kind, status, currency, amount, raw_amount,
                              discount_amount, final_amount, balance_after, points_after, merchant_id)
SELECT gen_random_uuid(), :'m_start'::timestamptz + (i * interval '2.592 seconds'), c.ids[1 + (g.i * 7) % 10000],
       'payment', 'completed', 'CNY', -700, 700, 0, 700, 0, 0, n.ids[1 + g.i % 20]
FROM generate_series(0, 999999) g(i), c, n;
VACUUM ANALYZE mps.transactions;
\set QUIET off
\timing on
SELECT payment_count, refund_count, gross_payments, refunds, net
  FROM mps.generate_settlement('BIGSHOP', :'m_start', :'m_end');
SELECT count(*) AS report_rows, sum(payment_count) AS payments, sum(refund_count) AS refunds
  FROM mps.merchant_daily_report('BIGSHOP', :'m_start'::date, (:'m_end'::timestamptz - interval '1 day')::date);
\timing off
-- The plan of the settlement's sum: one month's partition, the merchant's index.
EXPLAIN (COSTS OFF)
SELECT t.currency, sum(t.final_amount) FILTER (WHERE t.kind = 'payment')
FROM mps.transactions t
WHERE t.merchant_id = (SELECT id FROM mps.merchants WHERE code = 'BIGSHOP')
  AND t.created_at >= :'m_start' AND t.created_at < :'m_end' AND t.kind IN ('payment', 'refund')
GROUP BY t.currency;
