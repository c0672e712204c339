-- ---- permission before existence: merchants' reads --------------------------
-- (Trust: to a caller who is not the merchant's manager an unknown code and
-- another merchant's look the same.) require_merchant_manager is replaced by
-- merchant_for_manager, which checks who asks before it looks the code up.
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
REVOKE ALL ON FUNCTION mps_internal.merchant_for_manager(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mps.list_settlements(p_merchant_code text, p_from timestamptz DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION mps.merchant_daily_report(p_merchant_code text, p_from date, p_to date)
RETURNS SETOF mps.daily_report_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants := mps_internal.merchant_for_manager(p_merchant_code, 'merchant_daily_report');
BEGIN
  IF p_from IS NULL OR p_to IS NULL OR p_to < p_from OR p_to - p_from > 366 THEN
    RAISE EXCEPTION 'invalid report range' USING ERRCODE = 'MP701',
      DETAIL = format('[%s, %s].', p_from, p_to),
      HINT = 'Pass p_from <= p_to, at most 366 days apart.';
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

DROP FUNCTION mps_internal.require_merchant_manager(mps.merchants, text);
