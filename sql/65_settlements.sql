-- Settlements and reports, derived only from transactions rows.
--
-- A merchant's sales are its payments and the pass purchases paid from a card
-- at it; its reversals are refunds and the adjustments that give a rejected
-- pass purchase back (platform adjustments carry no merchant).
--
-- A settlement covers a half-open period [start, end) of one merchant, one row
-- per currency. Payments are counted in the period in which they were made,
-- refunds in the period in which the refund was made, whatever the period of
-- the payment (so a March refund of a February payment nets in March).
-- Periods of a merchant never overlap, so a transaction belongs to exactly one
-- settlement: the one whose period holds its created_at. Nothing on the
-- charge path is updated for it.
--
-- Fee: round_half_away_from_zero(net * fee_bp / 10000) per currency, in
-- minor units, computed once per settlement; payout = net - fee.

ALTER TABLE mps.settlements ADD COLUMN payout bigint NOT NULL DEFAULT 0;
CREATE INDEX settlements_merchant_period_idx ON mps.settlements (merchant_id, period_start, period_end);

CREATE FUNCTION mps_internal.wait_for_running_transactions(p_period_end timestamptz DEFAULT 'infinity')
  RETURNS integer
  AS 'MODULE_PATHNAME', 'mps_wait_for_running_transactions' LANGUAGE C VOLATILE;

CREATE TYPE mps.settlement_view AS (
  settlement_id    uuid,
  merchant_code    text,
  currency         char(3),
  mode             mps.settlement_mode,
  period_start     timestamptz,
  period_end       timestamptz,
  gross_payments   numeric,
  refunds          numeric,
  net              numeric,
  fee              numeric,
  payout           numeric,
  payment_count    integer,
  refund_count     integer,
  status           mps.settlement_status,
  payout_ref       text,
  created_at       timestamptz,
  paid_at          timestamptz
);

CREATE FUNCTION mps_internal.settlement_views(p_ids uuid[])
RETURNS SETOF mps.settlement_view
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.id, m.code, s.currency, s.mode, s.period_start, s.period_end,
         mps_internal.to_major(s.gross_payments, c.exponent), mps_internal.to_major(s.refunds, c.exponent),
         mps_internal.to_major(s.net, c.exponent), mps_internal.to_major(s.fee, c.exponent),
         mps_internal.to_major(s.payout, c.exponent), s.payment_count, s.refund_count,
         s.status, s.payout_ref, s.created_at, s.paid_at
  FROM mps.settlements s
  JOIN mps.merchants m ON m.id = s.merchant_id
  JOIN mps.currencies c ON c.code = s.currency
  WHERE s.id = ANY (p_ids)
  ORDER BY s.period_start, s.currency
$$;

-- The settlement itself, without permission checks (used by the RPC and the job).
CREATE FUNCTION mps_internal.settle(p_merchant mps.merchants, p_start timestamptz, p_end timestamptz)
RETURNS uuid[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids uuid[];
  v_clash record;
BEGIN
  IF p_start IS NULL OR p_end IS NULL OR p_end <= p_start THEN
    RAISE EXCEPTION 'invalid settlement period' USING ERRCODE = 'MP701',
      DETAIL = format('[%s, %s) is empty or incomplete.', p_start, p_end),
      HINT = 'Pass p_period_start < p_period_end.';
  END IF;
  -- A period is real time: no infinities, nothing before 1970 or after 9999.
  IF p_start < '1970-01-01 00:00+00' OR p_end > '9999-12-31 00:00+00' THEN
    RAISE EXCEPTION 'invalid settlement period' USING ERRCODE = 'MP701',
      DETAIL = format('[%s, %s) is not within 1970-01-01 and 9999-12-31.', p_start, p_end),
      HINT = 'Pass the period''s real start and end.';
  END IF;
  IF p_end > clock_timestamp() THEN
    RAISE EXCEPTION 'settlement period has not ended yet' USING ERRCODE = 'MP702',
      DETAIL = format('The period ends at %s.', p_end),
      HINT = 'Settle a period once it is over.';
  END IF;

  -- Movements of the period that are still being written commit (or not)
  -- first. This comes before any lock or write of ours, so no one we wait for
  -- can be waiting for us.
  PERFORM mps_internal.wait_for_running_transactions(p_end);

  -- One settler per merchant at a time; charges never take this lock.
  PERFORM pg_advisory_xact_lock(1297101617, hashtext('settle:' || p_merchant.id::text));

  SELECT array_agg(s.id ORDER BY s.currency) INTO v_ids FROM mps.settlements s
   WHERE s.merchant_id = p_merchant.id AND s.period_start = p_start AND s.period_end = p_end;
  IF v_ids IS NOT NULL THEN
    RETURN v_ids;                          -- already settled: the same rows again
  END IF;
  SELECT s.period_start, s.period_end INTO v_clash FROM mps.settlements s
   WHERE s.merchant_id = p_merchant.id
     AND tstzrange(s.period_start, s.period_end) && tstzrange(p_start, p_end)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'settlement period overlaps an existing settlement' USING ERRCODE = 'MP703',
      DETAIL = format('[%s, %s) overlaps the settled period [%s, %s) of merchant %s.',
                      p_start, p_end, v_clash.period_start, v_clash.period_end, p_merchant.code),
      HINT = 'Settle periods that start where the previous one ended.';
  END IF;

  WITH sums AS (
    SELECT t.currency,
           coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')), 0) AS gross,
           coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('refund', 'adjustment')), 0) AS refunds,
           count(*) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')) AS payments,
           count(*) FILTER (WHERE t.kind IN ('refund', 'adjustment')) AS refund_count
    FROM mps.transactions t
    WHERE t.merchant_id = p_merchant.id AND t.created_at >= p_start AND t.created_at < p_end
      AND t.kind IN ('payment', 'pass_purchase', 'refund', 'adjustment')
    GROUP BY t.currency
  ), rows AS (
    SELECT * FROM sums
    UNION ALL
    SELECT p_merchant.currency, 0, 0, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM sums)
  ), ins AS (
    INSERT INTO mps.settlements (merchant_id, currency, mode, period_start, period_end,
                                 gross_payments, refunds, net, payment_count, refund_count, fee, payout)
    SELECT p_merchant.id, r.currency, p_merchant.settlement_mode, p_start, p_end,
           r.gross, r.refunds, r.gross - r.refunds, r.payments, r.refund_count,
           f.fee, r.gross - r.refunds - f.fee
    FROM rows r,
         LATERAL (SELECT round(((r.gross - r.refunds)::numeric * p_merchant.fee_bp) / 10000)::bigint AS fee) f
    RETURNING id
  )
  SELECT array_agg(id) INTO v_ids FROM ins;

  PERFORM mps_internal.audit('settlement.generate', 'merchant', p_merchant.id::text, NULL,
    (SELECT jsonb_build_object('period_start', p_start, 'period_end', p_end,
                               'settlements', jsonb_agg(to_jsonb(s)))
     FROM mps.settlements s WHERE s.id = ANY (v_ids)), NULL);
  RETURN v_ids;
END
$$;

CREATE FUNCTION mps.generate_settlement(p_merchant_code text, p_period_start timestamptz,
                                        p_period_end timestamptz)
RETURNS SETOF mps.settlement_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids uuid[];
BEGIN
  PERFORM mps_internal.require_admin('generate_settlement');
  -- Settle first, read after: the read must see the rows just written.
  v_ids := mps_internal.settle(mps_internal.merchant_by_code(p_merchant_code), p_period_start, p_period_end);
  RETURN QUERY SELECT * FROM mps_internal.settlement_views(v_ids);
END
$$;

CREATE FUNCTION mps.mark_settlement_paid(p_settlement_id uuid, p_payout_ref text)
RETURNS mps.settlement_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old mps.settlements;
  v_new mps.settlements;
  v_row mps.settlement_view;
BEGIN
  PERFORM mps_internal.require_admin('mark_settlement_paid');
  IF p_payout_ref IS NULL OR btrim(p_payout_ref) = '' OR length(p_payout_ref) > 200 THEN
    RAISE EXCEPTION 'payout reference is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_payout_ref is missing, empty or longer than 200 characters.',
      HINT = 'Pass the bank or payment provider reference of the payout.';
  END IF;
  SELECT * INTO v_old FROM mps.settlements s WHERE s.id = p_settlement_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'settlement not found' USING ERRCODE = 'MP704',
      DETAIL = format('No settlement %s.', p_settlement_id), HINT = 'Check the settlement id.';
  END IF;
  IF v_old.status = 'paid' THEN
    IF v_old.payout_ref = btrim(p_payout_ref) THEN
      SELECT * INTO v_row FROM mps_internal.settlement_views(ARRAY[v_old.id]);
      RETURN v_row;                        -- a retry of the same payout
    END IF;
    RAISE EXCEPTION 'settlement already paid' USING ERRCODE = 'MP705',
      DETAIL = format('Settlement %s was paid with reference %s.', v_old.id, v_old.payout_ref),
      HINT = 'A settlement is paid once.';
  END IF;
  UPDATE mps.settlements s SET status = 'paid', payout_ref = btrim(p_payout_ref), paid_at = now()
   WHERE s.id = v_old.id RETURNING * INTO v_new;
  PERFORM mps_internal.audit('settlement.paid', 'settlement', v_new.id::text,
    jsonb_build_object('status', v_old.status),
    jsonb_build_object('status', v_new.status, 'payout_ref', v_new.payout_ref, 'payout', v_new.payout), NULL);
  SELECT * INTO v_row FROM mps_internal.settlement_views(ARRAY[v_new.id]);
  RETURN v_row;
END
$$;

-- The merchant a manager (or the platform admin) reads. Who may ask comes
-- first: to anyone else an unknown code and another merchant's get the same
-- refusal, so the code's existence is not told.
CREATE FUNCTION mps_internal.merchant_for_manager(p_merchant_code text, p_action text)
RETURNS mps.merchants
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.merchants;
BEGIN
  IF mps_internal.caller_is_admin() THEN
    RETURN mps_internal.merchant_by_code(p_merchant_code);
  END IF;
  SELECT * INTO v FROM mps.merchants m
   WHERE m.code = upper(btrim(p_merchant_code)) AND m.id = ANY (mps_internal.my_merchant_ids(true));
  IF NOT FOUND THEN
    RAISE EXCEPTION 'permission denied: % for merchant %', p_action, upper(btrim(p_merchant_code))
      USING ERRCODE = '42501',
      DETAIL = format('The caller is not a manager of merchant %s.', upper(btrim(p_merchant_code))),
      HINT = 'Sign in as one of the merchant''s managers.';
  END IF;
  RETURN v;
END
$$;

-- A merchant's manager (or the platform admin) reads its settlements.
CREATE FUNCTION mps.list_settlements(p_merchant_code text, p_from timestamptz DEFAULT NULL,
                                     p_to timestamptz DEFAULT NULL)
RETURNS SETOF mps.settlement_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants := mps_internal.merchant_for_manager(p_merchant_code, 'list_settlements');
BEGIN
  RETURN QUERY SELECT * FROM mps_internal.settlement_views(ARRAY(
    SELECT s.id FROM mps.settlements s
    WHERE s.merchant_id = v_merchant.id
      AND (p_from IS NULL OR s.period_end > p_from)
      AND (p_to IS NULL OR s.period_start < p_to)));
END
$$;

CREATE TYPE mps.daily_report_row AS (
  day            date,
  card_type      mps.card_type,
  currency       char(3),
  payments       numeric,
  payment_count  bigint,
  refunds        numeric,
  refund_count   bigint,
  net            numeric
);

-- Takings by business day (merchant's time zone) and card type, [p_from, p_to].
CREATE FUNCTION mps.merchant_daily_report(p_merchant_code text, p_from date, p_to date)
RETURNS SETOF mps.daily_report_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants := mps_internal.merchant_for_manager(p_merchant_code, 'merchant_daily_report');
BEGIN
  -- Finite days between 1970 and 9999 first: infinity or year 5874897 would
  -- fail the day arithmetic below with 22008.
  IF p_from IS NULL OR p_to IS NULL OR p_from < '1970-01-01' OR p_to > '9999-12-30'
     OR p_to < p_from OR p_to - p_from > 366 THEN
    RAISE EXCEPTION 'invalid report range' USING ERRCODE = 'MP701',
      DETAIL = format('[%s, %s].', p_from, p_to),
      HINT = 'Pass days between 1970-01-01 and 9999-12-30, p_from <= p_to, at most 366 days apart.';
  END IF;
  RETURN QUERY
  SELECT (t.created_at AT TIME ZONE v_merchant.timezone)::date, c.card_type, t.currency,
         mps_internal.to_major(coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')), 0)::bigint, cur.exponent),
         count(*) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')),
         mps_internal.to_major(coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('refund', 'adjustment')), 0)::bigint, cur.exponent),
         count(*) FILTER (WHERE t.kind IN ('refund', 'adjustment')),
         mps_internal.to_major((coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')), 0)
                                - coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('refund', 'adjustment')), 0))::bigint, cur.exponent)
  FROM mps.transactions t
  JOIN mps.cards c ON c.id = t.card_id
  JOIN mps.currencies cur ON cur.code = t.currency
  WHERE t.merchant_id = v_merchant.id
    AND t.kind IN ('payment', 'pass_purchase', 'refund', 'adjustment')
    AND t.created_at >= (p_from::timestamp AT TIME ZONE v_merchant.timezone)
    AND t.created_at < ((p_to + 1)::timestamp AT TIME ZONE v_merchant.timezone)
  GROUP BY 1, 2, 3, cur.exponent
  ORDER BY 1, 2, 3;
END
$$;

GRANT EXECUTE ON FUNCTION mps.generate_settlement(text, timestamptz, timestamptz),
  mps.mark_settlement_paid(uuid, text) TO mps_admin, mps_merchant_api;
GRANT EXECUTE ON FUNCTION mps.list_settlements(text, timestamptz, timestamptz),
  mps.merchant_daily_report(text, date, date) TO mps_admin, mps_merchant_api;
