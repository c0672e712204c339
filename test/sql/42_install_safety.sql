-- Installing is safe (Trust, item 14): schedule_jobs() and unschedule_jobs()
-- call pg_cron's own functions only, never a cron.schedule that another role
-- created; CREATE EXTENSION mps refuses a schema mps that another role owns
-- or may create objects in.
SET client_min_messages = warning;
-- try(sql): 'ok', or the refusal's SQLSTATE and message.
CREATE FUNCTION pg_temp.try(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
\set regress_db :DBNAME

-- A database owner who is no superuser plants a fake cron schema whose
-- schedule() would make her superuser when the admin runs schedule_jobs().
CREATE ROLE regress_fake_cron;
GRANT CREATE ON DATABASE :"DBNAME" TO regress_fake_cron;
SET ROLE regress_fake_cron;
CREATE SCHEMA cron;
CREATE TABLE cron.job (jobid bigserial, jobname text);
CREATE FUNCTION cron.schedule(text, text, text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  ALTER ROLE regress_fake_cron SUPERUSER;
  RETURN 1;
END $$;
CREATE FUNCTION cron.unschedule(name) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  ALTER ROLE regress_fake_cron SUPERUSER;
  RETURN true;
END $$;
INSERT INTO cron.job (jobname) VALUES ('mps_bait');
RESET ROLE;
-- The superuser runs both: each refuses, and the fake functions never run.
SELECT pg_temp.try('SELECT count(*) FROM mps.schedule_jobs()') AS schedule_with_fake_cron;
SELECT pg_temp.try('SELECT mps.unschedule_jobs()') AS unschedule_with_fake_cron;
SELECT rolsuper AS fake_cron_owner_is_superuser FROM pg_roles WHERE rolname = 'regress_fake_cron';
SET client_min_messages = warning;
DROP SCHEMA cron CASCADE;
REVOKE CREATE ON DATABASE :"DBNAME" FROM regress_fake_cron;

-- CREATE EXTENSION into a schema mps that another role owns is refused.
CREATE DATABASE regress_install_safety;
\c regress_install_safety
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.try(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE SCHEMA mps AUTHORIZATION regress_fake_cron;
SELECT pg_temp.try('CREATE EXTENSION mps CASCADE') AS install_into_squatted_schema;
SELECT count(*) AS mps_installed FROM pg_extension WHERE extname = 'mps';
-- Owned by the installer but open to another role's CREATE: refused too.
ALTER SCHEMA mps OWNER TO CURRENT_USER;
GRANT CREATE ON SCHEMA mps TO regress_fake_cron;
SELECT pg_temp.try('CREATE EXTENSION mps CASCADE') AS install_into_open_schema;
-- The installer's own empty schema is fine.
REVOKE CREATE ON SCHEMA mps FROM regress_fake_cron;
CREATE EXTENSION mps CASCADE;
SELECT extname, extversion FROM pg_extension WHERE extname = 'mps';
\c :regress_db
DROP DATABASE regress_install_safety;
DROP ROLE regress_fake_cron;
