-- ---- no API role reads a secret column ---------------------------------------
-- (Trust: a corporate card's viewers read binding_password_hash and cracked
-- it offline.) mps.cards becomes readable column by column, without the hash,
-- for the group roles and for every role holding a copy of their rights
-- (grant_role_privileges, which now copies column privileges too).
DO $secret$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT a.grantee::regrole AS grantee
    FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.oid = 'mps.cards'::regclass AND a.privilege_type = 'SELECT'
      AND a.grantee <> 0 AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('REVOKE SELECT ON mps.cards FROM %s', r.grantee);
    EXECUTE format('GRANT SELECT (id, card_no, card_type, status, status_reason, currency, balance, points, level_id, '
                   'fixed_discount_bp, enterprise_name, face_value, expires_at, created_at, updated_at) '
                   'ON mps.cards TO %s', r.grantee);
  END LOOP;
END
$secret$;

CREATE OR REPLACE FUNCTION mps.grant_role_privileges(p_group text, p_to_role text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_group oid;
  v_n integer := 0;
  r record;
BEGIN
  PERFORM mps_internal.require_admin('grant_role_privileges');
  IF p_group IS NULL OR p_group NOT IN ('mps_admin', 'mps_merchant_api', 'mps_member_app') THEN
    RAISE EXCEPTION 'unknown group role' USING ERRCODE = 'MP004',
      DETAIL = format('p_group = %L.', p_group),
      HINT = 'Use mps_admin, mps_merchant_api or mps_member_app.';
  END IF;
  IF p_to_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_to_role) THEN
    RAISE EXCEPTION 'unknown role' USING ERRCODE = 'MP004',
      DETAIL = format('p_to_role = %L.', p_to_role), HINT = 'Name an existing role, e.g. authenticated.';
  END IF;
  v_group := p_group::regrole;

  FOR r IN
    SELECT n.nspname FROM pg_namespace n, aclexplode(n.nspacl) a
    WHERE n.nspname IN ('mps', 'mps_internal', 'audit') AND a.grantee = v_group AND a.privilege_type = 'USAGE'
  LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', r.nspname, p_to_role);
    v_n := v_n + 1;
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS f FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.pronamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
      AND a.grantee = v_group AND a.privilege_type = 'EXECUTE'
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', r.f, p_to_role);
    v_n := v_n + 1;
  END LOOP;
  FOR r IN
    SELECT c.oid::regclass AS t, a.privilege_type AS priv FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace)
      AND a.grantee = v_group
  LOOP
    EXECUTE format('GRANT %s ON %s TO %I', r.priv, r.t, p_to_role);
    v_n := v_n + 1;
  END LOOP;
  -- Column privileges (mps.cards is readable column by column, without its secret).
  FOR r IN
    SELECT c.oid::regclass AS t, att.attname AS col, a.privilege_type AS priv
    FROM pg_class c
    JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped,
         aclexplode(att.attacl) a
    WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace)
      AND a.grantee = v_group
  LOOP
    EXECUTE format('GRANT %s (%I) ON %s TO %I', r.priv, r.col, r.t, p_to_role);
    v_n := v_n + 1;
  END LOOP;
  PERFORM mps_internal.audit('grants.copy', 'role', p_to_role, NULL,
    jsonb_build_object('group', p_group, 'privileges', v_n), NULL);
  RETURN v_n;
END
$$;
