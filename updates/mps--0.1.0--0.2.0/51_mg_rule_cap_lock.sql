-- ---- the percentage-rule cap holds under concurrency --------------------------
-- (Trust) Two admins adding a percentage rule to a group with five both
-- passed the count; the group row is now locked first (VOLATILE for FOR UPDATE).
CREATE OR REPLACE FUNCTION mps_internal.check_percentage_room(p_group_id integer) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM 1 FROM mps.marketing_groups g WHERE g.id = p_group_id FOR UPDATE;
  IF (SELECT count(*) FROM mps.mg_discount_rules r WHERE r.marketing_group_id = p_group_id
        AND r.adjustment_type = 'PERCENTAGE' AND r.is_active AND r.deleted_at IS NULL) >= 6 THEN
    RAISE EXCEPTION 'too many percentage rules' USING ERRCODE = 'MP008',
      DETAIL = format('Group %s already has 6 active percentage rules.',
                      (SELECT g.code FROM mps.marketing_groups g WHERE g.id = p_group_id)),
      HINT = 'Combine rules, or deactivate one first (prices stay exact up to 6 stacked percentages).';
  END IF;
END
$$;

