-- verify_ledger(): every invariant the design names, one row per violation
-- (none on a healthy database).

CREATE TYPE mps.ledger_violation AS (
  check_name  text,
  entity      text,
  detail      text
);

CREATE FUNCTION mps.verify_ledger()
RETURNS SETOF mps.ledger_violation
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_audit record;
BEGIN
  PERFORM mps_internal.require_admin('verify_ledger');

  RETURN QUERY
  SELECT 'balance_equals_transactions', 'card ' || c.id,
         format('balance %s, sum of transactions %s', c.balance, coalesce(t.s, 0))
  FROM mps.cards c
  LEFT JOIN (SELECT card_id, sum(amount) AS s FROM mps.transactions GROUP BY card_id) t ON t.card_id = c.id
  WHERE c.balance <> coalesce(t.s, 0);

  RETURN QUERY
  SELECT 'points_equal_ledger', 'card ' || c.id,
         format('points %s, sum of ledger %s', c.points, coalesce(p.s, 0))
  FROM mps.cards c
  LEFT JOIN (SELECT card_id, sum(delta) AS s FROM mps.point_ledger GROUP BY card_id) p ON p.card_id = c.id
  WHERE c.points <> coalesce(p.s, 0);

  RETURN QUERY
  SELECT 'refunds_within_payment', 'transaction ' || pay.id,
         format('final %s, refunded_amount %s, sum of refunds %s', pay.final_amount, pay.refunded_amount, coalesce(r.s, 0))
  FROM mps.transactions pay
  LEFT JOIN (SELECT original_tx_id, sum(final_amount) AS s FROM mps.transactions
             WHERE kind = 'refund' GROUP BY original_tx_id) r ON r.original_tx_id = pay.id
  WHERE pay.kind = 'payment'
    AND (coalesce(r.s, 0) > pay.final_amount OR coalesce(r.s, 0) <> pay.refunded_amount);

  RETURN QUERY
  SELECT 'refund_has_payment', 'transaction ' || r.id, 'refund of a transaction that is not a payment'
  FROM mps.transactions r
  WHERE r.kind = 'refund'
    AND NOT EXISTS (SELECT 1 FROM mps.transactions p WHERE p.id = r.original_tx_id AND p.kind = 'payment');

  -- Periods of one merchant never overlap, so each transaction is in at most
  -- one settlement: in start order, no period starts before an earlier one
  -- ended (one sort, not a comparison of every pair).
  RETURN QUERY
  SELECT 'settlements_disjoint', 'settlement ' || o.id,
         format('[%s, %s) overlaps an earlier period of merchant %s ending %s',
                o.period_start, o.period_end, o.merchant_id, o.prev_end)
  FROM (SELECT s.id, s.merchant_id, s.period_start, s.period_end,
               max(s.period_end) OVER (PARTITION BY s.merchant_id, s.currency
                                       ORDER BY s.period_start, s.id
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end
        FROM mps.settlements s) o
  WHERE o.period_start < o.prev_end;

  -- Every movement and ledger row belongs to a card that exists.
  RETURN QUERY
  SELECT 'transaction_has_card', 'transaction ' || t.id, format('card %s does not exist', t.card_id)
  FROM mps.transactions t
  WHERE NOT EXISTS (SELECT 1 FROM mps.cards c WHERE c.id = t.card_id);
  RETURN QUERY
  SELECT 'ledger_has_card', 'point ledger row ' || l.id, format('card %s does not exist', l.card_id)
  FROM mps.point_ledger l
  WHERE NOT EXISTS (SELECT 1 FROM mps.cards c WHERE c.id = l.card_id);

  -- A settlement still matches the transactions of its period.
  RETURN QUERY
  SELECT 'settlement_matches_transactions', 'settlement ' || s.id,
         format('settled gross %s refunds %s, transactions now gross %s refunds %s',
                s.gross_payments, s.refunds, coalesce(x.gross, 0), coalesce(x.refunds, 0))
  FROM mps.settlements s
  LEFT JOIN LATERAL (
    SELECT sum(t.final_amount) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')) AS gross,
           sum(t.final_amount) FILTER (WHERE t.kind IN ('refund', 'adjustment')) AS refunds
    FROM mps.transactions t
    WHERE t.merchant_id = s.merchant_id AND t.currency = s.currency
      AND t.created_at >= s.period_start AND t.created_at < s.period_end) x ON true
  WHERE s.gross_payments <> coalesce(x.gross, 0) OR s.refunds <> coalesce(x.refunds, 0);

  RETURN QUERY
  SELECT 'no_rows_in_default_partition', 'table ' || d.t, format('%s rows', d.n)
  FROM (SELECT 'mps.transactions_default' AS t, count(*) AS n FROM mps.transactions_default
        UNION ALL
        SELECT 'mps.point_ledger_default', count(*) FROM mps.point_ledger_default) d
  WHERE d.n > 0;

  SELECT * INTO v_audit FROM audit.verify();
  IF NOT v_audit.intact THEN
    RETURN QUERY SELECT 'audit_chain_intact', 'audit event ' || coalesce(v_audit.broken_event_id::text, '?'),
                        v_audit.problem;
  END IF;

  RETURN QUERY
  SELECT 'audit_sealed', 'audit.event_log', format('%s events older than 10 minutes are not sealed', count(*))
  FROM audit.event_log l
  WHERE l.occurred_at < now() - interval '10 minutes'
    AND NOT EXISTS (SELECT 1 FROM audit.chain c WHERE c.event_id = l.id)
  HAVING count(*) > 0;
END
$$;

GRANT EXECUTE ON FUNCTION mps.verify_ledger() TO mps_admin, mps_merchant_api, mps_member_app;
