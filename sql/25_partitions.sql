-- Monthly partitions of the movement tables. A default partition catches any
-- row whose month was not prepared in time, so a movement never fails for lack
-- of a partition; ensure_partitions() keeps months ready ahead of the clock.

-- A payment row is updated when it is refunded (refunded total and status):
-- 10 % free room on each transactions page keeps that update HOT, so a refund
-- adds no index entries for the payment it refunds.
CREATE TABLE mps.transactions_default PARTITION OF mps.transactions DEFAULT WITH (fillfactor = 90);
CREATE TABLE mps.point_ledger_default PARTITION OF mps.point_ledger DEFAULT;

CREATE FUNCTION mps_internal.create_month_partitions(p_from date, p_months integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_parent text;
  v_month date;
  v_name text;
  v_lo timestamptz;
  v_hi timestamptz;
  v_made integer := 0;
  v_stray boolean;
  v_with text;
BEGIN
  FOREACH v_parent IN ARRAY ARRAY['transactions', 'point_ledger'] LOOP
    FOR i IN 0 .. p_months LOOP
      v_month := (date_trunc('month', p_from) + make_interval(months => i))::date;
      v_name := format('%s_%s', v_parent, to_char(v_month, 'YYYY_MM'));
      v_with := CASE v_parent WHEN 'transactions' THEN ' WITH (fillfactor = 90)' ELSE '' END;
      v_lo := v_month::timestamp AT TIME ZONE 'UTC';
      v_hi := (v_month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
      CONTINUE WHEN to_regclass(format('mps.%I', v_name)) IS NOT NULL;
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM mps.%I WHERE created_at >= $1 AND created_at < $2)',
                     v_parent || '_default') INTO v_stray USING v_lo, v_hi;
      IF v_stray THEN
        -- Rows of this month landed in the default partition (the month was
        -- not prepared in time): take the default out, make the month, move
        -- the rows into it, put the default back.
        EXECUTE format('ALTER TABLE mps.%I DETACH PARTITION mps.%I', v_parent, v_parent || '_default');
        EXECUTE format('CREATE TABLE mps.%I PARTITION OF mps.%I FOR VALUES FROM (%L) TO (%L)%s',
                       v_name, v_parent, v_lo, v_hi, v_with);
        EXECUTE format('WITH moved AS (DELETE FROM mps.%I WHERE created_at >= $1 AND created_at < $2 RETURNING *)
                        INSERT INTO mps.%I SELECT * FROM moved', v_parent || '_default', v_parent) USING v_lo, v_hi;
        EXECUTE format('ALTER TABLE mps.%I ATTACH PARTITION mps.%I DEFAULT', v_parent, v_parent || '_default');
      ELSE
        EXECUTE format('CREATE TABLE mps.%I PARTITION OF mps.%I FOR VALUES FROM (%L) TO (%L)%s',
                       v_name, v_parent, v_lo, v_hi, v_with);
      END IF;
      v_made := v_made + 1;
    END LOOP;
  END LOOP;
  RETURN v_made;
END
$$;

-- Months are UTC months. Creates the current month and p_months_ahead more.
CREATE FUNCTION mps.ensure_partitions(p_months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_made integer;
BEGIN
  PERFORM mps_internal.require_admin('ensure_partitions');
  IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 120 THEN
    RAISE EXCEPTION 'invalid months ahead' USING ERRCODE = 'MP004',
      DETAIL = format('p_months_ahead = %s.', coalesce(p_months_ahead::text, 'NULL')),
      HINT = 'Pass a number of months between 0 and 120.';
  END IF;
  v_made := mps_internal.create_month_partitions((now() AT TIME ZONE 'UTC')::date, p_months_ahead);
  IF v_made > 0 THEN
    PERFORM mps_internal.audit('partitions.ensure', 'partition', NULL, NULL,
                               jsonb_build_object('months_ahead', p_months_ahead, 'created', v_made), NULL);
  END IF;
  RETURN v_made;
END
$$;

-- The platform admin may run the job by hand (service_role gets it through
-- grant_role_privileges); require_admin above still checks the caller.
GRANT EXECUTE ON FUNCTION mps.ensure_partitions(integer) TO mps_admin;
