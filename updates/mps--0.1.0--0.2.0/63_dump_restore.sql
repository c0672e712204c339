-- ---- dump and restore lose nothing ------------------------------------------------
-- (Operable: the configuration audit triggers fired during a restore's COPY and
-- collided with the restored audit log; seal_state's install row collided with
-- the dumped one; currencies and levels were not dumped.)
-- Whether the statement running is a COPY (a restore, or a bulk load by the
-- extension owner: API roles cannot write these tables at all).
CREATE FUNCTION mps_internal.loading_by_copy() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT current_query() ~* '^\s*copy\s' $$;

CREATE OR REPLACE FUNCTION audit.config_change() RETURNS trigger
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
REVOKE ALL ON FUNCTION mps_internal.loading_by_copy() FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit.seal(p_max_events integer DEFAULT 100000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_state audit.seal_state;
  v_snap pg_snapshot := pg_current_snapshot();
  v_pos bigint;
  v_hash bytea;
  v_count integer := 0;
  v_fresh boolean;
  v_next bigint;
  v_next_xid xid8;
  e audit.event_log;
BEGIN
  PERFORM mps_internal.require_admin('audit.seal');
  -- One sealer at a time.
  PERFORM pg_advisory_xact_lock(1297101617, 1);   -- 'MPS1', 1
  -- The next checkpoint: the event id after the last one visible now, and an
  -- xid assigned after that look (this transaction's own, so only a sealer
  -- that had no xid yet can take one). A transaction that can still commit an
  -- event below v_next took its xid before its event id, so before this look,
  -- so below v_next_xid. (A snapshot's xmax is no such bound: it is only
  -- latestCompletedXid + 1, and running transactions may have larger xids.)
  v_fresh := pg_current_xact_id_if_assigned() IS NULL;
  v_next := (SELECT coalesce(max(l.id), 0) + 1 FROM audit.event_log l);
  v_next_xid := pg_current_xact_id();
  INSERT INTO audit.seal_state DEFAULT VALUES ON CONFLICT DO NOTHING;
  SELECT * INTO v_state FROM audit.seal_state FOR UPDATE;


  SELECT c.pos, c.hash INTO v_pos, v_hash FROM audit.chain c ORDER BY c.pos DESC LIMIT 1;
  v_pos := coalesce(v_pos, 0);
  v_hash := coalesce(v_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);

  FOR e IN
    SELECT l.* FROM audit.event_log l
    WHERE l.id >= v_state.low_water
      AND NOT EXISTS (SELECT 1 FROM audit.chain c WHERE c.event_id = l.id)
    ORDER BY l.id
    LIMIT p_max_events
  LOOP
    v_pos := v_pos + 1;
    v_hash := sha256(v_hash || audit.event_digest(e));
    INSERT INTO audit.chain (pos, event_id, hash) VALUES (v_pos, e.id, v_hash);
    v_count := v_count + 1;
  END LOOP;

  -- After a complete pass: if every transaction that was running at the last
  -- checkpoint has ended, all events below the checkpoint's id were visible to
  -- this pass and are sealed now, so low_water moves up and a new checkpoint
  -- is taken (if this sealer could take one; else the old one stays).
  -- Otherwise the old checkpoint waits for its transactions.
  IF v_count < p_max_events AND v_state.checkpoint_xmax <= pg_snapshot_xmin(v_snap) THEN
    UPDATE audit.seal_state SET
      low_water = greatest(v_state.low_water, v_state.checkpoint_next),
      checkpoint_next = CASE WHEN v_fresh THEN v_next ELSE checkpoint_next END,
      checkpoint_xmax = CASE WHEN v_fresh THEN v_next_xid ELSE checkpoint_xmax END;
  END IF;
  RETURN v_count;
END
$$;

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

REVOKE ALL ON FUNCTION mps_internal.seed_makes_way() FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('mps.currencies', '');
SELECT pg_catalog.pg_extension_config_dump('mps.membership_levels', '');
SELECT pg_catalog.pg_extension_config_dump(pg_get_serial_sequence('mps.membership_levels', 'id'), '');
