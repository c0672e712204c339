-- Settlements, reports, verify_ledger, partitions and jobs.
SET client_min_messages = warning;
SET timezone = 'UTC';
\set VERBOSITY terse

CREATE FUNCTION pg_temp.err(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- A merchant with a 1.5% fee, a manager, an operator, a funded prepaid card.
SELECT code FROM mps.create_merchant('SETTLE1', 'Settle Shop', p_fee_bp := 150);
SELECT code FROM mps.create_merchant('OTHER1', 'Other Shop');
SELECT role FROM mps.assign_merchant_user('SETTLE1', 'aaaaaaaa-0000-0000-0000-00000000000a', 'manager');
SELECT role FROM mps.assign_merchant_user('SETTLE1', 'aaaaaaaa-0000-0000-0000-00000000000b', 'operator');
SELECT card_id AS card FROM mps.create_member_profile(p_name := 'Payer', p_default_card_type := 'prepaid') \gset
SELECT balance_after FROM mps.recharge_card(:'card', 1000.00, 'fund');
-- A shared code pays once: a new one for each charge.
SELECT qr_plain AS qr FROM mps.rotate_card_qr(:'card', 3600, true) \gset
SELECT card_id AS card2 FROM mps.create_member_profile(p_name := 'Other payer', p_default_card_type := 'prepaid') \gset
SELECT balance_after FROM mps.recharge_card(:'card2', 1000.00, 'fund2');
SELECT qr_plain AS qr2 FROM mps.rotate_card_qr(:'card2', 3600, true) \gset

-- Three payments and a refund; remember their times.
SELECT tx_id AS p1, created_at AS t1 FROM mps.merchant_charge_by_qr('SETTLE1', :'qr', 100.00, 'p1') \gset
SELECT qr_plain AS qr FROM mps.rotate_card_qr(:'card', 3600, true) \gset
SELECT tx_id AS p2, created_at AS t2 FROM mps.merchant_charge_by_qr('SETTLE1', :'qr', 50.00, 'p2') \gset
SELECT qr_plain AS qr FROM mps.rotate_card_qr(:'card', 3600, true) \gset
SELECT created_at AS t3 FROM mps.merchant_charge_by_qr('SETTLE1', :'qr', 20.00, 'p3') \gset
SELECT created_at AS t4 FROM mps.merchant_refund_tx('SETTLE1', :'p1', 30.00, 'r1') \gset
-- Noise from another merchant must never be counted.
SELECT final_amount FROM mps.merchant_charge_by_qr('OTHER1', :'qr2', 77.00, 'n1');
SELECT :'t1' < :'t2' AND :'t2' < :'t3' AND :'t3' < :'t4' AS ordered;

-- Period edges: a payment at exactly the end belongs to the next period, one
-- microsecond before the end to this one.
SELECT gross_payments, payment_count, refunds, refund_count, net, fee, payout
  FROM mps.generate_settlement('SETTLE1', :'t1'::timestamptz - interval '1 hour', :'t2'::timestamptz);
SELECT gross_payments, payment_count
  FROM mps.generate_settlement('SETTLE1', :'t2'::timestamptz, :'t3'::timestamptz + interval '1 microsecond');
-- The next period holds the refund only: netted where it happened.
SELECT gross_payments, payment_count, refunds, refund_count, net, fee, payout
  FROM mps.generate_settlement('SETTLE1', :'t3'::timestamptz + interval '1 microsecond', :'t4'::timestamptz + interval '1 microsecond');

-- Idempotent: the same period returns the same settlement.
SELECT count(DISTINCT settlement_id) AS one_settlement, min(gross_payments) AS gross
  FROM (SELECT * FROM mps.generate_settlement('SETTLE1', :'t2'::timestamptz, :'t3'::timestamptz + interval '1 microsecond')
        UNION ALL
        SELECT * FROM mps.generate_settlement('SETTLE1', :'t2'::timestamptz, :'t3'::timestamptz + interval '1 microsecond')) s;
SELECT count(*) AS settlements FROM mps.settlements s JOIN mps.merchants m ON m.id = s.merchant_id WHERE m.code = 'SETTLE1';

-- Overlap, bad periods, unfinished periods, unknown merchant.
SELECT pg_temp.err(format($$SELECT * FROM mps.generate_settlement('SETTLE1', %L::timestamptz, %L::timestamptz)$$,
                          :'t2', :'t4'));
SELECT pg_temp.err($$SELECT * FROM mps.generate_settlement('SETTLE1', now(), now() - interval '1 day')$$);
SELECT pg_temp.err($$SELECT * FROM mps.generate_settlement('SETTLE1', NULL, now())$$);
SELECT pg_temp.err($$SELECT * FROM mps.generate_settlement('SETTLE1', now(), now() + interval '1 day')$$);
SELECT pg_temp.err($$SELECT * FROM mps.generate_settlement('NOPE', now() - interval '1 day', now() - interval '1 hour')$$);

-- An empty period is a recorded fact with zero amounts.
SELECT currency, gross_payments, refunds, net, fee, payout, payment_count, refund_count, status
  FROM mps.generate_settlement('OTHER1', '2020-01-01', '2020-01-02');

-- Sum of settlements = sum of transactions over a run of periods.
SELECT (SELECT sum(gross_payments - refunds) FROM mps.settlements s JOIN mps.merchants m ON m.id = s.merchant_id
         WHERE m.code = 'SETTLE1')
     = (SELECT sum(CASE kind WHEN 'payment' THEN final_amount ELSE -final_amount END)
          FROM mps.transactions t JOIN mps.merchants m ON m.id = t.merchant_id
         WHERE m.code = 'SETTLE1' AND kind IN ('payment', 'refund')) AS settled_equals_transactions;

-- Refund netting across months: a payment moved into last month is settled
-- there; its refund, made now, nets in this month's period.
SELECT mps_internal.create_month_partitions((now() - interval '1 month')::date, 0) AS last_month_made;
SELECT qr_plain AS qr FROM mps.rotate_card_qr(:'card', 3600, true) \gset
SELECT tx_id AS p5 FROM mps.merchant_charge_by_qr('SETTLE1', :'qr', 40.00, 'p5') \gset
SELECT refund_amount FROM mps.merchant_refund_tx('SETTLE1', :'p5', 40.00, 'r5');
UPDATE mps.transactions SET created_at = date_trunc('month', now()) - interval '10 days' WHERE id = :'p5';
SELECT gross_payments, refunds, net
  FROM mps.generate_settlement('SETTLE1', date_trunc('month', now()) - interval '1 month', date_trunc('month', now()));
SELECT gross_payments, refunds, refund_count
  FROM mps.generate_settlement('SETTLE1', :'t4'::timestamptz + interval '1 microsecond', clock_timestamp());

-- Paying a settlement.
SELECT settlement_id AS s1 FROM mps.list_settlements('SETTLE1') ORDER BY period_start LIMIT 1 \gset
SELECT status, payout_ref FROM mps.mark_settlement_paid(:'s1', 'BANK-REF-1');
SELECT status, payout_ref FROM mps.mark_settlement_paid(:'s1', 'BANK-REF-1');
SELECT pg_temp.err(format($$SELECT * FROM mps.mark_settlement_paid(%L, 'BANK-REF-2')$$, :'s1'));
SELECT pg_temp.err($$SELECT * FROM mps.mark_settlement_paid('00000000-0000-0000-0000-000000000000', 'X')$$);
SELECT pg_temp.err(format($$SELECT * FROM mps.mark_settlement_paid(%L, '  ')$$, :'s1'));
SELECT action, after->>'status' AS status FROM audit.event_log WHERE action = 'settlement.paid';

-- Who may read: the merchant's manager yes, its operator no, and nobody but
-- the platform admin generates.
\o /dev/null
SELECT mps.grant_role_privileges('mps_merchant_api', 'authenticated');
\o
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"aaaaaaaa-0000-0000-0000-00000000000a","role":"authenticated"}', true) IS NOT NULL AS manager;
SELECT count(*) > 0 AS manager_reads FROM mps.list_settlements('SETTLE1');
SELECT day = current_date AS today, card_type, payments, payment_count, refunds, refund_count, net
  FROM mps.merchant_daily_report('SETTLE1', current_date - 1, current_date);
SELECT pg_temp.err($$SELECT * FROM mps.generate_settlement('SETTLE1', '2021-01-01', '2021-01-02')$$);
SELECT pg_temp.err($$SELECT * FROM mps.list_settlements('OTHER1')$$);
SELECT set_config('request.jwt.claims', '{"sub":"aaaaaaaa-0000-0000-0000-00000000000b","role":"authenticated"}', true) IS NOT NULL AS operator;
SELECT pg_temp.err($$SELECT * FROM mps.list_settlements('SETTLE1')$$);
SELECT pg_temp.err($$SELECT * FROM mps.merchant_daily_report('SETTLE1', current_date, current_date)$$);
SELECT pg_temp.err($$SELECT * FROM mps.verify_ledger()$$);
ROLLBACK;

-- Business days in the merchant's time zone (Asia/Shanghai is UTC+8).
UPDATE mps.merchants SET timezone = 'Asia/Shanghai', settlement_mode = 't_plus_1',
       created_at = '2026-03-10 10:00+00' WHERE code = 'OTHER1';
DELETE FROM mps.settlements s USING mps.merchants m WHERE m.id = s.merchant_id AND m.code = 'OTHER1';
SELECT period_start, period_end
  FROM mps_internal.due_periods((SELECT m FROM mps.merchants m WHERE m.code = 'OTHER1'), '2026-03-13 03:00+00');
UPDATE mps.merchants SET settlement_mode = 'monthly' WHERE code = 'OTHER1';
SELECT period_start, period_end
  FROM mps_internal.due_periods((SELECT m FROM mps.merchants m WHERE m.code = 'OTHER1'), '2026-06-02 03:00+00');

-- The job settles every merchant of a mode; one that fails is logged and the
-- others go on.
SELECT code FROM mps.create_merchant('BROKEN1', 'Broken Shop', p_settlement_mode := 'monthly');
UPDATE mps.merchants SET timezone = 'Mars/Olympus_Mons', created_at = '2026-01-01' WHERE code = 'BROKEN1';
SELECT mps.run_settlements('monthly') > 0 AS settled_some;
SELECT after->>'merchant' AS merchant, after->>'sqlstate' AS sqlstate FROM audit.event_log WHERE action = 'job.error';
SELECT count(*) > 0 AS other_settled FROM mps.settlements s JOIN mps.merchants m ON m.id = s.merchant_id WHERE m.code = 'OTHER1';
SELECT pg_temp.err($$SELECT mps.run_settlements('weekly')$$);

-- verify_ledger: clean, then each kind of damage is reported.
SELECT * FROM mps.verify_ledger();
UPDATE mps.cards SET balance = balance + 1 WHERE id = :'card';
SELECT check_name FROM mps.verify_ledger();
UPDATE mps.cards SET balance = balance - 1 WHERE id = :'card';
UPDATE mps.transactions SET refunded_amount = refunded_amount + 1 WHERE id = :'p2';
SELECT check_name FROM mps.verify_ledger();
UPDATE mps.transactions SET refunded_amount = refunded_amount - 1 WHERE id = :'p2';
INSERT INTO mps.settlements (merchant_id, currency, mode, period_start, period_end)
  SELECT id, currency, 'realtime', p.s, p.e FROM mps.merchants,
         (VALUES ('2020-01-01 00:00'::timestamptz, '2020-01-02'::timestamptz),
                 ('2020-01-01 12:00', '2020-01-03')) p(s, e)
  WHERE code = 'OTHER1';
SELECT check_name FROM mps.verify_ledger();
DELETE FROM mps.settlements WHERE period_start IN ('2020-01-01 00:00', '2020-01-01 12:00');
SELECT count(*) AS violations FROM mps.verify_ledger();

-- A month without its partition: the movement lands in the default
-- partition, verify_ledger says so, ensure_partitions moves it home.
SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM') AS month \gset
ALTER TABLE mps.transactions DETACH PARTITION mps.transactions_:month;
ALTER TABLE mps.point_ledger DETACH PARTITION mps.point_ledger_:month;
CREATE TEMP TABLE kept_tx AS SELECT * FROM mps.transactions_:month;
CREATE TEMP TABLE kept_pl AS SELECT * FROM mps.point_ledger_:month;
ALTER EXTENSION mps DROP TABLE mps.transactions_:month;
ALTER EXTENSION mps DROP TABLE mps.point_ledger_:month;
DROP TABLE mps.transactions_:month, mps.point_ledger_:month;
INSERT INTO mps.transactions SELECT * FROM kept_tx;
INSERT INTO mps.point_ledger SELECT * FROM kept_pl;
SELECT qr_plain AS qr FROM mps.rotate_card_qr(:'card', 3600, true) \gset
SELECT final_amount FROM mps.merchant_charge_by_qr('SETTLE1', :'qr', 5.00, 'after-gap');
SELECT DISTINCT check_name FROM mps.verify_ledger();
SELECT mps.ensure_partitions(2) > 0 AS created;
SELECT count(*) AS in_default FROM mps.transactions_default;
SELECT count(*) > 0 AS in_month FROM mps.transactions_:month;
SELECT mps.ensure_partitions(2) AS created_again;
SELECT count(*) AS violations FROM mps.verify_ledger();

-- Expired QR codes are swept by the job.
SELECT qr_plain AS qr2 FROM mps.rotate_card_qr(:'card2', 3600, true) \gset
UPDATE mps.card_qr_codes SET issued_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'
 WHERE card_id = :'card2' AND revoked_at IS NULL;
SELECT mps.expire_qr_codes() >= 1 AS swept;
SELECT count(*) AS card2_codes_marked_expired FROM mps.card_qr_codes
 WHERE card_id = :'card2' AND revoke_reason = 'expired';
SELECT mps.expire_qr_codes() AS expired_again;
