-- Scheduled work. Each job is a plain function (tests call them directly);
-- schedule_jobs() registers them all with pg_cron under mps_ names.

-- Live codes that expired within the last week are marked revoked
-- ('expired'): the history then says what became of them. They could not pay
-- anyway; the week bounds the scan (the job runs every five minutes).
CREATE FUNCTION mps.expire_qr_codes()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n integer;
BEGIN
  PERFORM mps_internal.require_admin('expire_qr_codes');
  UPDATE mps.card_qr_codes q SET revoked_at = now(), revoke_reason = 'expired'
   WHERE q.expires_at <= now() AND q.expires_at > now() - interval '7 days'
     AND q.used_at IS NULL AND q.revoked_at IS NULL;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    PERFORM mps_internal.audit('qr.expire', 'job', 'expire_qr_codes', NULL, jsonb_build_object('expired', v_n), NULL);
  END IF;
  RETURN v_n;
END
$$;

-- The next periods due for one merchant, in its time zone: realtime up to the
-- current minute; t_plus_1 whole business days up to today; monthly whole
-- months up to this month. The first period starts when the merchant was
-- created; each next one where the last settled period ended.
CREATE FUNCTION mps_internal.due_periods(p_merchant mps.merchants, p_now timestamptz)
RETURNS TABLE (period_start timestamptz, period_end timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_start timestamptz;
  v_end timestamptz;
  v_limit timestamptz;
  v_step interval;
  v_unit text;
BEGIN
  SELECT max(s.period_end) INTO v_start FROM mps.settlements s WHERE s.merchant_id = p_merchant.id;
  v_start := coalesce(v_start, p_merchant.created_at);
  IF p_merchant.settlement_mode = 'realtime' THEN
    v_limit := date_trunc('minute', p_now);
    IF v_limit > v_start THEN
      RETURN QUERY SELECT v_start, v_limit;
    END IF;
    RETURN;
  END IF;
  v_unit := CASE p_merchant.settlement_mode WHEN 't_plus_1' THEN 'day' ELSE 'month' END;
  v_step := CASE v_unit WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END;
  -- Boundaries are local midnights of the merchant's zone.
  v_limit := date_trunc(v_unit, p_now AT TIME ZONE p_merchant.timezone) AT TIME ZONE p_merchant.timezone;
  LOOP
    v_end := (date_trunc(v_unit, v_start AT TIME ZONE p_merchant.timezone) + v_step) AT TIME ZONE p_merchant.timezone;
    EXIT WHEN v_end > v_limit;
    RETURN QUERY SELECT v_start, v_end;
    v_start := v_end;
  END LOOP;
END
$$;

-- Settle every active merchant of one mode for its due periods. A merchant
-- that fails is logged (audit event job.error) and the others go on.
CREATE FUNCTION mps.run_settlements(p_mode text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants;
  v_period record;
  v_made integer := 0;
  v_now timestamptz := clock_timestamp();
BEGIN
  PERFORM mps_internal.require_admin('run_settlements');
  IF p_mode IS NULL OR p_mode NOT IN ('realtime', 't_plus_1', 'monthly') THEN
    RAISE EXCEPTION 'unknown settlement mode' USING ERRCODE = 'MP004',
      DETAIL = format('p_mode = %L.', p_mode), HINT = 'Use realtime, t_plus_1 or monthly.';
  END IF;
  FOR v_merchant IN
    SELECT * FROM mps.merchants m
    WHERE m.settlement_mode = p_mode::mps.settlement_mode AND m.status <> 'closed'
    ORDER BY m.code
  LOOP
    BEGIN
      FOR v_period IN SELECT * FROM mps_internal.due_periods(v_merchant, v_now) LOOP
        PERFORM mps_internal.settle(v_merchant, v_period.period_start, v_period.period_end);
        v_made := v_made + 1;
      END LOOP;
    EXCEPTION WHEN OTHERS THEN
      PERFORM mps_internal.audit('job.error', 'merchant', v_merchant.id::text, NULL,
        jsonb_build_object('job', 'run_settlements', 'mode', p_mode, 'merchant', v_merchant.code,
                           'sqlstate', SQLSTATE, 'message', SQLERRM), NULL);
    END;
  END LOOP;
  RETURN v_made;
END
$$;

-- The jobs and their schedules. No job rotates shared QR codes: a job's new
-- plain codes would reach nobody (cron_rotate_qr_tokens is for a caller that
-- delivers what it returns); mps_expire_qr_codes expires them.
CREATE FUNCTION mps_internal.job_definitions()
RETURNS TABLE (job_name text, schedule text, command text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  VALUES
    ('mps_ensure_partitions', '17 3 * * *', 'SELECT mps.ensure_partitions(3)'),
    ('mps_expire_qr_codes', '*/5 * * * *', 'SELECT mps.expire_qr_codes()'),
    ('mps_settle_realtime', '*/5 * * * *', 'SELECT mps.run_settlements(''realtime'')'),
    ('mps_settle_t_plus_1', '7 * * * *', 'SELECT mps.run_settlements(''t_plus_1'')'),
    ('mps_settle_monthly', '37 * * * *', 'SELECT mps.run_settlements(''monthly'')'),
    ('mps_expire_passes', '*/10 * * * *', 'SELECT mps.expire_member_passes()'),
    ('mps_audit_seal', '* * * * *', 'SELECT audit.seal()')
$$;

-- pg_cron's functions, and only those: schedule_jobs runs as a superuser, so a
-- cron.schedule that anyone else created (a fake cron schema) must never be
-- called. Each object used must be a member of the pg_cron extension.
CREATE FUNCTION mps_internal.require_cron() RETURNS void
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

-- Registers (or updates) every job; calling it twice leaves one job each.
CREATE FUNCTION mps.schedule_jobs()
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

CREATE FUNCTION mps.unschedule_jobs()
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

GRANT EXECUTE ON FUNCTION mps.expire_qr_codes(), mps.run_settlements(text),
  mps.schedule_jobs(), mps.unschedule_jobs() TO mps_admin, mps_merchant_api, mps_member_app;
