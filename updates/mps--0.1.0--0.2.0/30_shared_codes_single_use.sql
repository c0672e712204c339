-- ---- a shared card's code pays once; no job mints shared codes -----------
-- (Trust: a shared code charged several times from one scan, and the
-- scheduled rotation threw its new plain codes away.) Every code is
-- single-use now (src/qr.c, src/charge.c; codes 0.1.0 issued as reusable pay
-- once as well). The job list loses mps_rotate_shared_qr, and a database that
-- scheduled it with 0.1.0's schedule_jobs() loses the job: only when
-- cron.unschedule is pg_cron's own function.
CREATE OR REPLACE FUNCTION mps_internal.job_definitions()
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

DO $unschedule$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
             WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
               AND d.deptype = 'e' AND e.extname = 'pg_cron'
               AND d.objid = to_regprocedure('cron.unschedule(text)'))
     AND EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
                 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_extension'::regclass
                   AND d.deptype = 'e' AND e.extname = 'pg_cron'
                   AND d.objid = to_regclass('cron.job')) THEN
    IF EXISTS (SELECT 1 FROM cron.job WHERE jobname = 'mps_rotate_shared_qr') THEN
      PERFORM cron.unschedule('mps_rotate_shared_qr');
    END IF;
  END IF;
END
$unschedule$;

