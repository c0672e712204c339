-- ---- pass redemption needs the member at the till -----------------------------
-- (Trust) An operator of any shop listed a member's passes by her id and
-- redeemed them. redeem_pass takes the member's own live payment code
-- (p_qr_plain, used up by the redemption) and list_member_passes shows a
-- merchant user a member's passes only with her code; members list their own.
-- Roles holding copies of the old functions' rights (grant_role_privileges
-- gives them to Supabase's API roles) get the new functions' rights too, so
-- the till keeps working after the upgrade, as on a fresh install.
DO $grantees$
BEGIN
  PERFORM set_config('mps_upgrade.pass_grantees', coalesce((
    SELECT string_agg(DISTINCT a.grantee::regrole::text, ',')
    FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.oid IN ('mps.redeem_pass(text, uuid, jsonb, text, text, jsonb)'::regprocedure,
                    'mps.list_member_passes(uuid)'::regprocedure)
      AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
      AND a.grantee NOT IN (SELECT oid FROM pg_roles
                            WHERE rolname IN ('mps_admin', 'mps_merchant_api', 'mps_member_app'))), ''), true);
END
$grantees$;
DROP FUNCTION mps.redeem_pass(text, uuid, jsonb, text, text, jsonb);
DROP FUNCTION mps.list_member_passes(uuid);

-- The member whose own live payment code this is (verified, not used up;
-- MP301-MP304, MP209): proof that she is at the till (src/qr.c).
CREATE FUNCTION mps_internal.member_at_till(p_qr_plain text) RETURNS uuid
  AS 'MODULE_PATHNAME', 'mps_member_at_till' LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION mps_internal.member_at_till(text) FROM PUBLIC;

CREATE FUNCTION mps.list_member_passes(p_member_id uuid DEFAULT NULL, p_qr_plain text DEFAULT NULL)
RETURNS SETOF mps.member_pass_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid;
  v_me uuid := mps_internal.my_member_id();
BEGIN
  IF mps_internal.caller_is_admin() THEN
    v_member := coalesce(p_member_id, CASE WHEN p_qr_plain IS NOT NULL THEN mps_internal.member_at_till(p_qr_plain) END);
    IF v_member IS NULL OR NOT EXISTS (SELECT 1 FROM mps.member_profiles m WHERE m.id = v_member) THEN
      RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
        DETAIL = format('No member %s.', coalesce(p_member_id::text, 'NULL')), HINT = 'Check the member id.';
    END IF;
  ELSIF v_me IS NOT NULL AND p_qr_plain IS NULL AND coalesce(p_member_id, v_me) = v_me THEN
    v_member := v_me;
  ELSIF NOT mps_internal.is_merchant_user() THEN
    RAISE EXCEPTION 'permission denied: list_member_passes of another member' USING ERRCODE = '42501',
      DETAIL = 'Only the member herself, a merchant user she shows her code to, or the platform admin.',
      HINT = 'Members read their own passes with get_my_passes() or without p_member_id.';
  ELSIF p_qr_plain IS NULL THEN
    RAISE EXCEPTION 'the member''s payment code is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_qr_plain is missing; a merchant sees a member''s passes only while she is at the till.',
      HINT = 'Scan the code the member shows in her app (rotate_card_qr).';
  ELSE
    v_member := mps_internal.member_at_till(p_qr_plain);
    -- Another member than the code's holder reads as absent.
    IF p_member_id IS DISTINCT FROM v_member AND p_member_id IS NOT NULL THEN
      RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
        DETAIL = 'The code shown is not this member''s.', HINT = 'Leave p_member_id out: the code names the member.';
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM mps_internal.member_pass_views(ARRAY(
    SELECT m.id FROM mps.member_passes m WHERE m.member_id = v_member));
END
$$;

CREATE FUNCTION mps.redeem_pass(
  p_merchant_code    text,
  p_pass_id          uuid,
  p_lines            jsonb,
  p_idempotency_key  text DEFAULT NULL,
  p_order_no         text DEFAULT NULL,
  p_payments         jsonb DEFAULT NULL,
  p_qr_plain         text DEFAULT NULL)
RETURNS mps.pass_redemption_result
AS 'MODULE_PATHNAME', 'mps_redeem_pass'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

REVOKE ALL ON FUNCTION mps.redeem_pass(text, uuid, jsonb, text, text, jsonb, text),
  mps.list_member_passes(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps.redeem_pass(text, uuid, jsonb, text, text, jsonb, text)
  TO mps_admin, mps_merchant_api;
GRANT EXECUTE ON FUNCTION mps.list_member_passes(uuid, text) TO mps_admin, mps_merchant_api, mps_member_app;
DO $grants$
DECLARE
  r text;
BEGIN
  FOR r IN SELECT unnest(string_to_array(nullif(current_setting('mps_upgrade.pass_grantees'), ''), ',')) LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION mps.redeem_pass(text, uuid, jsonb, text, text, jsonb, text),'
                   ' mps.list_member_passes(uuid, text) TO %s', r);
  END LOOP;
END
$grants$;

