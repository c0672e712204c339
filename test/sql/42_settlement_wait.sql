-- 42_settlement_wait: a settlement waits only for transactions that could
-- still write into its period (this database, started before the period
-- ended, with an xid; prepared ones only if they wrote a movement), and
-- never longer than mps.settlement_wait_timeout (MP710, naming it).
-- Other sessions are held open through dblink.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
\o /dev/null
SELECT mps.create_merchant(p_code := 'W42SHOP', p_name := 'Wait Shop');
\o
SELECT card_id AS card FROM mps.create_member_profile(p_name := 'Wanda Wait') \gset
-- A statement timeout turns a wait that would never end into a failure here.
SET statement_timeout = '20s';
SET mps.settlement_wait_timeout = '300ms';

-- 1. An idle transaction with an xid in another database is not waited for.
SELECT dblink_connect('other_db', format('dbname=postgres port=%s host=%s user=%s',
                      current_setting('port'), '127.0.0.1', current_user)) AS other_db;
SELECT dblink_exec('other_db', 'BEGIN');
SELECT * FROM dblink('other_db', 'SELECT pg_catalog.txid_current() > 0') AS t(other_has_xid boolean);
SELECT count(*) AS settled FROM mps.generate_settlement('W42SHOP', now() - interval '2 days', now() - interval '1 day');

-- 2. A forgotten prepared transaction that wrote no movement is not waited for.
CREATE TABLE w42_scratch (i int);
BEGIN;
INSERT INTO w42_scratch VALUES (1);
PREPARE TRANSACTION 'w42-forgotten';
SELECT count(*) AS settled FROM mps.generate_settlement('W42SHOP', now() - interval '1 day', now() - interval '12 hours');
ROLLBACK PREPARED 'w42-forgotten';

-- 3. A prepared transaction that wrote a movement is waited for, then MP710 names it.
BEGIN;
SELECT balance_after FROM mps.recharge_card(:'card', 5.00, 'w42-prepared');
PREPARE TRANSACTION 'w42-movement';
SELECT regexp_replace(test_err($$SELECT * FROM mps.generate_settlement('W42SHOP', now() - interval '12 hours', now() - interval '6 hours')$$),
                      'xid [0-9]+', 'xid N') AS refusal;
ROLLBACK PREPARED 'w42-movement';

-- 4. An open transaction of this database that started before the period
--    ended is waited for, at most the timeout (MP710, nothing settled) ...
SELECT dblink_connect('this_db', format('dbname=%s port=%s host=%s user=%s', current_database(),
                      current_setting('port'), '127.0.0.1', current_user)) AS this_db;
SELECT dblink_exec('this_db', 'BEGIN');
SELECT * FROM dblink('this_db', 'SELECT pg_catalog.txid_current() > 0') AS t(open_has_xid boolean);
SELECT pg_sleep(0.05);
SELECT clock_timestamp() AS period_end \gset
SELECT pg_sleep(0.05);
SELECT regexp_replace(test_err(format($$SELECT * FROM mps.generate_settlement('W42SHOP', now() - interval '6 hours', %L)$$, :'period_end')),
                      'Transaction [0-9]+ of backend [0-9]+', 'Transaction N of backend N') AS refusal;
SELECT count(*) AS settlements_after_refusal FROM mps.settlements s JOIN mps.merchants m ON m.id = s.merchant_id
 WHERE m.code = 'W42SHOP' AND s.period_end = :'period_end';
--    ... and once it ends, the same settlement goes through.
SELECT dblink_exec('this_db', 'COMMIT');
SELECT count(*) AS settled FROM mps.generate_settlement('W42SHOP', now() - interval '6 hours', :'period_end');

-- 5. A transaction that started after the period ended is not waited for.
SELECT clock_timestamp() AS period_end2 \gset
SELECT pg_sleep(0.05);
SELECT dblink_exec('this_db', 'BEGIN');
SELECT * FROM dblink('this_db', 'SELECT pg_catalog.txid_current() > 0') AS t(later_has_xid boolean);
SELECT count(*) AS settled FROM mps.generate_settlement('W42SHOP', :'period_end', :'period_end2');
SELECT dblink_exec('this_db', 'ROLLBACK');
SELECT dblink_exec('other_db', 'ROLLBACK');
SELECT dblink_disconnect('this_db'), dblink_disconnect('other_db');
DROP TABLE w42_scratch;
RESET statement_timeout;
RESET mps.settlement_wait_timeout;
