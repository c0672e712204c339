-- verify_ledger() at scale: 1,000,000 transactions on 1,000 cards and
-- 100,000 settlements of one merchant, then verify_ledger() timed.
--   psql -d <a database with mps> -f test/bench/verify_ledger.sql
-- Rows are written directly (as the extension owner), consistent with every
-- invariant verify_ledger checks, so a healthy result is no row at all.
-- Not a test: it prints the time and the violations found (none expected).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
\o /dev/null
SELECT mps.create_merchant(p_code := 'VLSHOP', p_name := 'Verify Shop');
SELECT mps.create_merchant(p_code := 'VLSETTLED', p_name := 'Settled Shop');
\o
CREATE TEMP TABLE vl_cards AS
  SELECT (mps.create_member_profile(p_name := 'Verify ' || i)).card_id AS card_id, i
  FROM generate_series(1, 1000) i;
-- 500,000 recharges of 10.00 and 500,000 payments of 1.00, this month.
INSERT INTO mps.transactions (id, created_at, card_id, kind, currency, amount, raw_amount, final_amount,
                              balance_after, points_after, merchant_id)
SELECT gen_random_uuid(), date_trunc('month', now()) + (n % 86400) * interval '1 second', c.card_id,
       CASE WHEN n % 2 = 0 THEN 'recharge' ELSE 'payment' END::mps.tx_kind, 'CNY',
       CASE WHEN n % 2 = 0 THEN 1000 ELSE -100 END, CASE WHEN n % 2 = 0 THEN 1000 ELSE 100 END,
       CASE WHEN n % 2 = 0 THEN 1000 ELSE 100 END, 0, 0,
       CASE WHEN n % 2 = 0 THEN NULL ELSE (SELECT id FROM mps.merchants WHERE code = 'VLSHOP') END
FROM generate_series(1, 1000000) n JOIN vl_cards c ON c.i = 1 + (n / 2) % 1000;
UPDATE mps.cards c SET balance = s.b
FROM (SELECT card_id, sum(amount) AS b FROM mps.transactions GROUP BY card_id) s WHERE s.card_id = c.id;
-- 100,000 consecutive hourly settlements (no movements in them) of another merchant.
INSERT INTO mps.settlements (merchant_id, currency, mode, period_start, period_end)
SELECT (SELECT id FROM mps.merchants WHERE code = 'VLSETTLED'), 'CNY', 'realtime',
       timestamptz '2010-01-01' + i * interval '1 hour', timestamptz '2010-01-01' + (i + 1) * interval '1 hour'
FROM generate_series(0, 99999) i;
SELECT audit.seal() >= 0 AS sealed;
ANALYZE;
SELECT count(*) AS transactions FROM mps.transactions;
SELECT count(*) AS settlements FROM mps.settlements;
\timing on
SELECT check_name, count(*) FROM mps.verify_ledger() GROUP BY check_name;
\timing off
