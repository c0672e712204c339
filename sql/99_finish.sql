-- Install-time data and the PostgREST schema reload.

SELECT mps_internal.create_month_partitions((now() AT TIME ZONE 'UTC')::date, 1);

-- Functions are created EXECUTE-able by PUBLIC; take that back from every
-- function of the extension, then the per-file GRANTs above stand alone.
DO $revoke$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
  LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$revoke$;

NOTIFY pgrst, 'reload schema';
