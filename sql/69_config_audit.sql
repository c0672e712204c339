-- Row-level audit of the configuration tables (DESIGN §6): every insert,
-- update and delete of a configuration row is an event, whoever made it —
-- an RPC (which also writes its own, meaningful event) or a superuser editing
-- the table by hand. Movement tables are audited by the C core instead.

-- Whether the statement running is a COPY (a restore, or a bulk load by the
-- extension owner: API roles cannot write these tables at all).
CREATE FUNCTION mps_internal.loading_by_copy() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT current_query() ~* '^\s*copy\s' $$;

CREATE FUNCTION audit.config_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
  v_new jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
  v_row jsonb := coalesce(v_new, v_old);
BEGIN
  -- Rows loaded by COPY are a restore (pg_restore writes the extension's
  -- tables with COPY): their events are restored with audit.event_log
  -- itself, and new ones would collide with them.
  IF mps_internal.loading_by_copy() THEN
    RETURN NULL;
  END IF;
  PERFORM mps_internal.audit('config.' || TG_TABLE_NAME || '.' || lower(TG_OP), TG_TABLE_NAME,
    coalesce(v_row->>'id', v_row->>'code', v_row->>'merchant_id' || '/' || (v_row->>'user_id'),
             v_row->>'activity_id', v_row->>'role_name'),
    v_old, v_new, NULL);
  RETURN NULL;
END
$$;

DO $triggers$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['currencies', 'membership_levels', 'merchants', 'merchant_users',
    'categories', 'products', 'marketing_groups', 'mg_discount_rules', 'stamp_activities',
    'stamp_targets', 'pass_plans', 'print_templates'] LOOP
    EXECUTE format('CREATE TRIGGER config_audit AFTER INSERT OR UPDATE OR DELETE ON mps.%I '
                   'FOR EACH ROW EXECUTE FUNCTION audit.config_change()', t);
  END LOOP;
END
$triggers$;

-- Each backend keeps a copy of the currencies and membership levels
-- (src/ref_cache.c); a change to either table tells every backend to read
-- them again (a relcache invalidation, sent when the change commits).
CREATE FUNCTION mps_internal.ref_cache_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'mps_ref_cache_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION mps_internal.ref_cache_changed() FROM PUBLIC;
CREATE TRIGGER ref_cache_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mps.currencies
  FOR EACH STATEMENT EXECUTE FUNCTION mps_internal.ref_cache_changed();
CREATE TRIGGER ref_cache_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mps.membership_levels
  FOR EACH STATEMENT EXECUTE FUNCTION mps_internal.ref_cache_changed();
