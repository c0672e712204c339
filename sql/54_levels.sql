-- Membership levels: the points ladder of personal cards (platform admin).
--
-- The ladder is replaced whole, so it is never seen half-edited: levels must
-- start at 0 points, follow each other without gap or overlap
-- (next.min_points = previous.max_points + 1), and the last is open-ended.
-- Every personal card's level is recomputed from its points afterwards.

CREATE TYPE mps.level_view AS (
  code          text,
  name          text,
  min_points    bigint,
  max_points    bigint,
  discount_bp   integer,
  earn_rate_bp  integer
);

CREATE FUNCTION mps.list_membership_levels()
RETURNS SETOF mps.level_view
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT l.code, l.name, l.min_points, l.max_points, l.discount_bp, l.earn_rate_bp
  FROM mps.membership_levels l ORDER BY l.min_points
$$;

CREATE FUNCTION mps.set_membership_levels(p_levels jsonb)
RETURNS SETOF mps.level_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_before jsonb;
  v_prev_max bigint := -1;
  v_prev_open boolean := false;
  v_n integer := 0;
  v_codes text[] := '{}';
  r record;
BEGIN
  PERFORM mps_internal.require_admin('set_membership_levels');
  IF p_levels IS NULL OR jsonb_typeof(p_levels) <> 'array' OR jsonb_array_length(p_levels) = 0 THEN
    RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
      DETAIL = 'p_levels must be a non-empty JSON array.',
      HINT = 'Pass [{"code":"BRONZE","name":"Bronze","min_points":0,"max_points":999,"discount_bp":0,"earn_rate_bp":10000}, ...].';
  END IF;
  -- Serialise ladder changes.
  LOCK TABLE mps.membership_levels IN SHARE ROW EXCLUSIVE MODE;

  FOR r IN
    SELECT e.value AS v, e.ordinality AS n FROM jsonb_array_elements(p_levels) WITH ORDINALITY e
  LOOP
    IF jsonb_typeof(r.v) <> 'object'
       OR coalesce(jsonb_typeof(r.v->'code'), '') <> 'string'
       OR coalesce(jsonb_typeof(r.v->'name'), '') <> 'string'
       OR coalesce(jsonb_typeof(r.v->'min_points'), '') <> 'number'
       OR coalesce(jsonb_typeof(r.v->'max_points'), 'null') NOT IN ('number', 'null')
       OR coalesce(jsonb_typeof(r.v->'discount_bp'), 'number') <> 'number'
       OR coalesce(jsonb_typeof(r.v->'earn_rate_bp'), 'number') <> 'number' THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level %s is malformed: %s.', r.n, r.v),
        HINT = 'Each level needs code and name (strings), min_points (number), max_points (number or null), optional discount_bp and earn_rate_bp.';
    END IF;
    IF (r.v->>'code') !~ '^[A-Za-z0-9_-]{1,32}$' OR btrim(r.v->>'name') = '' OR length(r.v->>'name') > 100
       OR (r.v->>'min_points') !~ '^[0-9]{1,15}$'
       OR coalesce(r.v->>'max_points', '0') !~ '^[0-9]{1,15}$'
       OR coalesce(r.v->>'discount_bp', '0') !~ '^[0-9]{1,5}$' OR coalesce((r.v->>'discount_bp')::integer, 0) > 10000
       OR coalesce(r.v->>'earn_rate_bp', '0') !~ '^[0-9]{1,7}$' OR coalesce((r.v->>'earn_rate_bp')::integer, 0) > 1000000 THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level %s has a bad value: %s.', r.n, r.v),
        HINT = 'code: 1-32 of A-Z a-z 0-9 _ -; points: whole numbers >= 0; discount_bp: 0-10000; earn_rate_bp: 0-1000000.';
    END IF;
    IF (r.v->>'code') = ANY (v_codes) THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level code %s appears twice.', r.v->>'code'), HINT = 'Give each level its own code.';
    END IF;
    IF v_prev_open OR (r.v->>'min_points')::bigint <> v_prev_max + 1 THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level %s (%s) starts at %s points; expected %s.', r.n, r.v->>'code',
                        r.v->>'min_points', CASE WHEN v_prev_open THEN 'no further level after an open-ended one'
                                                 ELSE (v_prev_max + 1)::text END),
        HINT = 'List levels in order from 0 points, each starting one point above the previous maximum; only the last is open-ended.';
    END IF;
    IF r.v->>'max_points' IS NOT NULL AND (r.v->>'max_points')::bigint < (r.v->>'min_points')::bigint THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level %s has max_points below min_points.', r.v->>'code'),
        HINT = 'max_points is inclusive and must be >= min_points.';
    END IF;
    v_prev_open := r.v->>'max_points' IS NULL;
    v_prev_max := coalesce((r.v->>'max_points')::bigint, -1);
    v_codes := v_codes || (r.v->>'code');
    v_n := v_n + 1;
  END LOOP;
  IF NOT v_prev_open THEN
    RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
      DETAIL = format('The last level ends at %s points.', v_prev_max),
      HINT = 'Make the last level open-ended (max_points null).';
  END IF;

  SELECT jsonb_agg(to_jsonb(l) ORDER BY l.min_points) INTO v_before FROM mps.list_membership_levels() l;

  -- Move the existing rows out of the way of the unique min_points index (both
  -- bounds, so max_points >= min_points still holds), then upsert by code and
  -- drop the levels no longer listed.
  UPDATE mps.membership_levels SET min_points = min_points + 1000000000000000,
                                   max_points = max_points + 1000000000000000;
  INSERT INTO mps.membership_levels AS l (code, name, min_points, max_points, discount_bp, earn_rate_bp)
  SELECT e->>'code', btrim(e->>'name'), (e->>'min_points')::bigint, (e->>'max_points')::bigint,
         coalesce((e->>'discount_bp')::integer, 0), coalesce((e->>'earn_rate_bp')::integer, 10000)
  FROM jsonb_array_elements(p_levels) e
  ON CONFLICT (code) DO UPDATE SET name = excluded.name, min_points = excluded.min_points,
    max_points = excluded.max_points, discount_bp = excluded.discount_bp,
    earn_rate_bp = excluded.earn_rate_bp, updated_at = now();
  UPDATE mps.cards c SET level_id = mps_internal.level_for_points(c.points), updated_at = now()
   WHERE c.card_type = 'standard';
  DELETE FROM mps.membership_levels l WHERE l.code <> ALL (v_codes);

  PERFORM mps_internal.audit('levels.set', 'membership_levels', NULL,
    jsonb_build_object('levels', v_before),
    jsonb_build_object('levels', (SELECT jsonb_agg(to_jsonb(l) ORDER BY l.min_points) FROM mps.list_membership_levels() l)),
    NULL);
  RETURN QUERY SELECT * FROM mps.list_membership_levels();
END
$$;

REVOKE ALL ON FUNCTION mps.list_membership_levels(), mps.set_membership_levels(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps.list_membership_levels(), mps.set_membership_levels(jsonb)
  TO mps_admin, mps_merchant_api, mps_member_app;
