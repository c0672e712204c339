-- Restoring a dump into a new database. pg_dump writes the rows of the
-- extension's tables (marked in 99_finish.sql) and pg_restore loads them with
-- COPY after CREATE EXTENSION has seeded currencies and levels. So when a
-- COPY starts loading one of the two seeded tables and the database holds no
-- card and no merchant yet (a database being restored, not one in use), the
-- seed rows make way for the dumped ones: the restored ladder and currencies
-- are the dumped ones, with their ids (cards refer to level ids).
CREATE FUNCTION mps_internal.seed_makes_way() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF mps_internal.loading_by_copy()
     AND NOT EXISTS (SELECT 1 FROM mps.cards) AND NOT EXISTS (SELECT 1 FROM mps.merchants) THEN
    EXECUTE format('DELETE FROM %I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER seed_makes_way BEFORE INSERT ON mps.currencies
  FOR EACH STATEMENT EXECUTE FUNCTION mps_internal.seed_makes_way();
CREATE TRIGGER seed_makes_way BEFORE INSERT ON mps.membership_levels
  FOR EACH STATEMENT EXECUTE FUNCTION mps_internal.seed_makes_way();
