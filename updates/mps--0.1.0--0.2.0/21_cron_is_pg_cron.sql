-- ---- installing is safe: pg_cron's own functions only ---------------------
-- (Trust: schedule_jobs runs as a superuser and must never call a cron.schedule
-- that another role created.) The check of schema mps's owner runs at CREATE
-- EXTENSION only (sql/00_schemas.sql); an existing installation already has it.
CREATE OR REPLACE FUNCTION mps_internal.require_cron() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_foreign text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_cron') THEN
    RAISE EXCEPTION 'pg_cron is not installed in this database' USING ERRCODE = 'MP706',
      DETAIL = format('Database %s has no pg_cron extension.', current_database()),
      HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database and CREATE EXTENSION pg_cron.';
  END IF;
  SELECT string_agg(o.name, ', ') INTO v_foreign
  FROM (VALUES ('cron.schedule(text,text,text)', 'pg_proc'::regclass, to_regprocedure('cron.schedule(text,text,text)')::oid),
               ('cron.unschedule(name)', 'pg_proc'::regclass, to_regprocedure('cron.unschedule(name)')::oid),
               ('cron.job', 'pg_class'::regclass, to_regclass('cron.job')::oid)) AS o(name, classid, objid)
  WHERE o.objid IS NULL OR NOT EXISTS (
    SELECT 1 FROM pg_depend d, pg_extension e
    WHERE d.classid = o.classid AND d.objid = o.objid AND d.deptype = 'e'
      AND d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND e.extname = 'pg_cron');
  IF v_foreign IS NOT NULL THEN
    RAISE EXCEPTION 'cron functions do not belong to pg_cron' USING ERRCODE = 'MP707',
      DETAIL = format('Not pg_cron''s (or missing): %s.', v_foreign),
      HINT = 'Remove whatever else defines them; the jobs are scheduled only through the pg_cron extension.';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION mps.schedule_jobs()
RETURNS TABLE (job_name text, schedule text, command text, jobid bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j record;
  v_id bigint;
BEGIN
  PERFORM mps_internal.require_admin('schedule_jobs');
  PERFORM mps_internal.require_cron();
  FOR j IN SELECT * FROM mps_internal.job_definitions() LOOP
    -- cron.schedule with a job name updates that job when it exists.
    EXECUTE 'SELECT cron.schedule($1::text, $2::text, $3::text)' INTO v_id USING j.job_name, j.schedule, j.command;
    job_name := j.job_name; schedule := j.schedule; command := j.command; jobid := v_id;
    RETURN NEXT;
  END LOOP;
  PERFORM mps_internal.audit('jobs.schedule', 'job', NULL, NULL,
    jsonb_build_object('jobs', (SELECT jsonb_agg(d.job_name) FROM mps_internal.job_definitions() d)), NULL);
END
$$;

CREATE OR REPLACE FUNCTION mps.unschedule_jobs()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n integer := 0;
  j record;
BEGIN
  PERFORM mps_internal.require_admin('unschedule_jobs');
  PERFORM mps_internal.require_cron();
  FOR j IN EXECUTE 'SELECT jobname FROM cron.job WHERE jobname LIKE ''mps\_%'' ORDER BY jobname' LOOP
    EXECUTE 'SELECT cron.unschedule($1::name)' USING j.jobname;
    v_n := v_n + 1;
  END LOOP;
  PERFORM mps_internal.audit('jobs.unschedule', 'job', NULL, NULL, jsonb_build_object('removed', v_n), NULL);
  RETURN v_n;
END
$$;

