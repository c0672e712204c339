-- The audit trail: append-only, tamper-evident.
--
-- Events are inserted on the hot path without a hash, so an audit insert never
-- waits for any other card's audit. audit.seal() (a job, also callable on
-- demand) appends the committed, not yet sealed events to audit.chain in id
-- order: chain position n carries hash_n = sha256(hash_{n-1} || digest(event)).
-- The chain order is the order of sealing, so an event whose transaction
-- commits late is simply sealed by the next run; nothing can slip in behind a
-- seal. audit.verify() walks the chain and reports the first broken link.
-- Until an event is sealed a superuser could change it unnoticed: that window
-- is the seal interval (one minute with the scheduled job).

CREATE TABLE audit.event_log (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  db_role          text NOT NULL DEFAULT session_user,
  actor_via        text,
  actor_admin      boolean NOT NULL DEFAULT false,
  actor_user_id    uuid,
  action           text NOT NULL,
  entity_type      text NOT NULL,
  entity_id        text,
  before           jsonb,
  after            jsonb,
  idempotency_key  text
);
CREATE INDEX event_log_entity_idx ON audit.event_log (entity_type, entity_id);

CREATE TABLE audit.chain (
  pos        bigint PRIMARY KEY,
  event_id   bigint NOT NULL UNIQUE,
  hash       bytea NOT NULL,
  sealed_at  timestamptz NOT NULL DEFAULT now()
);

-- Where sealing resumes: every event with id < low_water is sealed. The
-- checkpoint (next_id, xmax) lets low_water advance once every transaction
-- that was running at the previous seal has ended.
CREATE TABLE audit.seal_state (
  singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  low_water        bigint NOT NULL DEFAULT 1,
  checkpoint_next  bigint NOT NULL DEFAULT 1,
  checkpoint_xmax  xid8 NOT NULL DEFAULT '0'
);
-- Its one row is made by the first seal (not here), so a restore's COPY of
-- the dumped row meets no row made by CREATE EXTENSION.

-- Append-only: no UPDATE, DELETE or TRUNCATE for anyone. (A superuser can
-- still disable the trigger; that is what the hash chain is for.)
CREATE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'audit log is append-only' USING ERRCODE = 'MP901',
    DETAIL = format('%s on %s.%s was refused.', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME),
    HINT = 'Audit rows are never changed or deleted.';
END
$$;
CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE ON audit.event_log
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON audit.event_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER chain_append_only BEFORE UPDATE OR DELETE ON audit.chain
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER chain_no_truncate BEFORE TRUNCATE ON audit.chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- The digest of one event: every column (chr(30) marks NULL), in a form independent of session
-- settings (epoch microseconds, jsonb's canonical text, explicit NULL marks).
CREATE FUNCTION audit.event_digest(e audit.event_log) RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT sha256(convert_to(concat_ws(chr(31),
    e.id::text,
    (extract(epoch FROM e.occurred_at) * 1000000)::bigint::text,
    coalesce(e.db_role, chr(30)),
    coalesce(e.actor_via, chr(30)),
    e.actor_admin::text,
    coalesce(e.actor_user_id::text, chr(30)),
    e.action,
    e.entity_type,
    coalesce(e.entity_id, chr(30)),
    coalesce(e.before::text, chr(30)),
    coalesce(e.after::text, chr(30)),
    coalesce(e.idempotency_key, chr(30))), 'UTF8'))
$$;

CREATE FUNCTION audit.seal(p_max_events integer DEFAULT 100000)
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

-- Walks the chain and reports the first broken link, or one intact row.
CREATE FUNCTION audit.verify()
RETURNS TABLE (intact boolean, events_checked bigint, broken_pos bigint,
               broken_event_id bigint, problem text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_prev bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
  v_expect_pos bigint := 1;
  v_checked bigint := 0;
  v_low bigint;
  r record;
BEGIN
  PERFORM mps_internal.require_admin('audit.verify');
  FOR r IN
    SELECT c.pos, c.event_id, c.hash, l AS ev, (l.id IS NULL) AS missing
    FROM audit.chain c LEFT JOIN audit.event_log l ON l.id = c.event_id
    ORDER BY c.pos
  LOOP
    IF r.pos <> v_expect_pos THEN
      RETURN QUERY SELECT false, v_checked, v_expect_pos, NULL::bigint,
        format('chain position %s is missing (next is %s): a chain row was deleted', v_expect_pos, r.pos);
      RETURN;
    END IF;
    IF r.missing THEN
      RETURN QUERY SELECT false, v_checked, r.pos, r.event_id,
        format('event %s was deleted', r.event_id);
      RETURN;
    END IF;
    IF sha256(v_prev || audit.event_digest(r.ev)) <> r.hash THEN
      RETURN QUERY SELECT false, v_checked, r.pos, r.event_id,
        format('event %s does not match its seal: it was changed after sealing', r.event_id);
      RETURN;
    END IF;
    v_prev := r.hash;
    v_expect_pos := v_expect_pos + 1;
    v_checked := v_checked + 1;
  END LOOP;

  -- An unsealed event below the sealed horizon was inserted behind the sealer.
  SELECT s.low_water INTO v_low FROM audit.seal_state s;
  SELECT l.id INTO r FROM audit.event_log l
   WHERE l.id < v_low AND NOT EXISTS (SELECT 1 FROM audit.chain c WHERE c.event_id = l.id)
   ORDER BY l.id LIMIT 1;
  IF FOUND THEN
    RETURN QUERY SELECT false, v_checked, NULL::bigint, r.id,
      format('event %s is below the sealed horizon but not sealed: it was inserted afterwards', r.id);
    RETURN;
  END IF;
  RETURN QUERY SELECT true, v_checked, NULL::bigint, NULL::bigint, NULL::text;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON FUNCTION audit.seal(integer), audit.verify(), audit.event_digest(audit.event_log),
  audit.refuse_change() FROM PUBLIC;
GRANT USAGE ON SCHEMA audit TO mps_admin;
GRANT EXECUTE ON FUNCTION audit.seal(integer), audit.verify() TO mps_admin;
