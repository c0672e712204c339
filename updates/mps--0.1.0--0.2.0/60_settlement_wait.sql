-- ---- settlements wait only for their period's writers, and not forever ----------
-- (Operable: an idle transaction in another database, or a forgotten prepared
-- one, stalled every settlement.) The wait takes the period's end; a
-- settlement waits at most mps.settlement_wait_timeout (MP710).
DROP FUNCTION mps_internal.wait_for_running_transactions();
CREATE FUNCTION mps_internal.wait_for_running_transactions(p_period_end timestamptz DEFAULT 'infinity')
  RETURNS integer
  AS 'MODULE_PATHNAME', 'mps_wait_for_running_transactions' LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION mps_internal.wait_for_running_transactions(timestamptz) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mps_internal.settle(p_merchant mps.merchants, p_start timestamptz, p_end timestamptz)
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
