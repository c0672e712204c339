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

-- The tables are members of the extension; without this pg_dump would dump
-- their definitions (as CREATE EXTENSION) but not their rows. The two seeded
-- tables (currencies, membership_levels) too: their seed rows make way for
-- the dumped ones on restore (98_restore.sql).
DO $dump$
DECLARE
  r regclass;
BEGIN
  FOR r IN
    SELECT c.oid::regclass FROM pg_class c
    WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace)
      AND c.relkind IN ('r', 'S')
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(r, '');
  END LOOP;
END
$dump$;

NOTIFY pgrst, 'reload schema';
