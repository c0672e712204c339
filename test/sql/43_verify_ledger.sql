-- 43_verify_ledger: the checks added in 0.2.0 find what they look for
-- (each case written by hand in a transaction rolled back): a movement and a
-- ledger row whose card is missing, and overlapping settlement periods, in
-- any order of creation.
SET client_min_messages = warning;
\o /dev/null
SELECT mps.create_merchant(p_code := 'V43SHOP', p_name := 'Verify Shop');
\o
SELECT count(*) AS violations_before FROM mps.verify_ledger();
BEGIN;
INSERT INTO mps.transactions (id, created_at, card_id, kind, currency, amount, raw_amount, final_amount,
                              balance_after, points_after)
VALUES (gen_random_uuid(), now(), gen_random_uuid(), 'recharge', 'CNY', 100, 100, 100, 100, 0);
INSERT INTO mps.point_ledger (created_at, card_id, delta, points_after, reason)
VALUES (now(), gen_random_uuid(), 5, 5, 'earn');
-- Three periods of one merchant: [1,5) and [2,3) overlap, [6,7) does not.
INSERT INTO mps.settlements (merchant_id, currency, mode, period_start, period_end)
SELECT m.id, 'CNY', 'realtime', timestamptz '2001-01-01' + p.s * interval '1 day', timestamptz '2001-01-01' + p.e * interval '1 day'
FROM mps.merchants m, (VALUES (1, 5), (6, 7), (2, 3)) p(s, e) WHERE m.code = 'V43SHOP';
SELECT check_name, regexp_replace(detail, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g') AS detail
FROM mps.verify_ledger() ORDER BY 1, 2;
ROLLBACK;
SELECT count(*) AS violations_after FROM mps.verify_ledger();
