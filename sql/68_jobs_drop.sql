-- No job outlives the extension: DROP EXTENSION mps (or DROP SCHEMA mps
-- CASCADE, which drops it) unschedules the mps_ jobs first. An event trigger
-- at ddl_command_start, since by the end of the command the trigger, being
-- part of the extension, is gone too. The command names the extension only in
-- its text, so a drop naming "mps" is taken as dropping it (unscheduling when
-- it was not is harmless: schedule_jobs() puts the jobs back).
CREATE FUNCTION mps_internal.unschedule_on_drop() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF current_query() ~* '\mdrop\s+(extension|schema)\M.*\m"?mps"?\M'
     AND to_regclass('cron.job') IS NOT NULL THEN
    BEGIN
      PERFORM mps.unschedule_jobs();
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'mps: could not unschedule its pg_cron jobs: %', SQLERRM
        USING HINT = 'Remove the mps_ jobs with cron.unschedule().';
    END;
  END IF;
END
$$;
CREATE EVENT TRIGGER mps_unschedule_on_drop ON ddl_command_start
  WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
  EXECUTE FUNCTION mps_internal.unschedule_on_drop();
