-- pg_cron: schedule_jobs() registers every job once, unschedule_jobs() removes
-- them, and pg_cron itself runs a scheduled job in this cluster.
-- Runs in the database named by cron.database_name (the harness makes it).
\set regress_db :DBNAME
\c mps_cron
SET client_min_messages = warning;
SELECT mps.unschedule_jobs() >= 0 AS clean_start;
SELECT job_name, schedule, command FROM mps.schedule_jobs() ORDER BY job_name;
SELECT count(*) AS jobs_after_second_call FROM mps.schedule_jobs();
SELECT jobname, schedule, command FROM cron.job WHERE jobname LIKE 'mps\_%' ORDER BY jobname;
-- A changed schedule is updated in place, not added.
SELECT cron.schedule('mps_audit_seal', '*/2 * * * *', 'SELECT audit.seal()') > 0 AS changed;
SELECT count(*) AS jobs FROM mps.schedule_jobs();
SELECT count(*) AS seal_jobs, min(schedule) AS schedule FROM cron.job WHERE jobname = 'mps_audit_seal';
SELECT mps.unschedule_jobs() AS removed;
SELECT count(*) AS left_over FROM cron.job WHERE jobname LIKE 'mps\_%';

-- Without pg_cron in the database, the call says so.
\c :regress_db
SET client_min_messages = notice;
DO $$
BEGIN
  PERFORM mps.schedule_jobs();
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
END $$;

-- pg_cron runs a job: a probe scheduled every minute writes a row.
\c mps_cron
CREATE TABLE cron_probe (ran_at timestamptz DEFAULT now());
SELECT cron.schedule('mps_test_probe', '* * * * *', 'INSERT INTO cron_probe DEFAULT VALUES') > 0 AS scheduled;
DO $$
BEGIN
  FOR i IN 1 .. 150 LOOP
    EXIT WHEN EXISTS (SELECT 1 FROM cron_probe);
    PERFORM pg_sleep(0.5);
  END LOOP;
END $$;
SELECT count(*) > 0 AS pg_cron_ran_the_job FROM cron_probe;
SELECT cron.unschedule('mps_test_probe');
DROP TABLE cron_probe;

-- No job outlives the extension: DROP EXTENSION unschedules them first.
\c mps_cron
SET client_min_messages = warning;
SELECT count(*) > 0 AS scheduled FROM mps.schedule_jobs();
DROP EXTENSION mps CASCADE;
SELECT count(*) AS jobs_left_after_drop FROM cron.job WHERE jobname LIKE 'mps\_%';
-- Dropping another extension leaves them alone.
CREATE EXTENSION mps CASCADE;
SELECT count(*) > 0 AS scheduled_again FROM mps.schedule_jobs();
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION tablefunc;
DROP EXTENSION tablefunc;
SELECT count(*) > 0 AS jobs_kept FROM cron.job WHERE jobname LIKE 'mps\_%';
SELECT mps.unschedule_jobs() > 0 AS cleaned_up;
