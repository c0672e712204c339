-- ---- claims count only under the PostgREST roles ---------------------------
-- (Trust: a login that sets request.jwt.claims itself gains nothing by it; see
-- src/actor.c and mps.jwt_roles.) The audit trigger names a mapping by its role.
CREATE OR REPLACE FUNCTION audit.config_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
  v_new jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
  v_row jsonb := coalesce(v_new, v_old);
BEGIN
  PERFORM mps_internal.audit('config.' || TG_TABLE_NAME || '.' || lower(TG_OP), TG_TABLE_NAME,
    coalesce(v_row->>'id', v_row->>'code', v_row->>'merchant_id' || '/' || (v_row->>'user_id'),
             v_row->>'activity_id', v_row->>'role_name'),
    v_old, v_new, NULL);
  RETURN NULL;
END
$$;

-- Database logins that act as a user (Trust: claims count only under the
-- roles PostgREST switches into, mps.jwt_roles). A POS server that logs in
-- directly is who its database role says; the platform admin may map such a
-- login to the merchant user it acts for (src/actor.c reads this table).
-- Audited row by row like the other configuration tables.
CREATE TABLE mps.db_role_users (
  role_name   name PRIMARY KEY,
  user_id     uuid NOT NULL,                 -- the merchant user (auth user id) the login acts as
  created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE mps.db_role_users ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON mps.db_role_users FROM PUBLIC;
CREATE TRIGGER config_audit AFTER INSERT OR UPDATE OR DELETE ON mps.db_role_users
  FOR EACH ROW EXECUTE FUNCTION audit.config_change();

CREATE FUNCTION mps.map_db_role_user(p_role_name text, p_user_id uuid)
RETURNS mps.db_role_users
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_role pg_roles;
  v_row mps.db_role_users;
BEGIN
  PERFORM mps_internal.require_admin('map_db_role_user');
  SELECT * INTO v_role FROM pg_roles r WHERE r.rolname = p_role_name;
  IF v_role.oid IS NULL THEN
    RAISE EXCEPTION 'unknown role' USING ERRCODE = 'MP004',
      DETAIL = format('p_role_name = %L.', p_role_name), HINT = 'Name the POS server''s database login.';
  END IF;
  -- A PostgREST role mapped to a user would make every request that user; an
  -- admin role is an admin already.
  IF p_role_name = ANY (string_to_array(replace(current_setting('mps.jwt_roles'), ' ', ''), ','))
     OR v_role.rolsuper OR pg_has_role(v_role.oid, 'mps_admin', 'USAGE') THEN
    RAISE EXCEPTION 'role cannot be mapped' USING ERRCODE = 'MP004',
      DETAIL = format('%L is a PostgREST role (mps.jwt_roles), a superuser or a member of mps_admin.', p_role_name),
      HINT = 'Map a login of its own that holds mps_merchant_api.';
  END IF;
  IF p_user_id IS NULL OR NOT EXISTS (SELECT 1 FROM mps.merchant_users u WHERE u.user_id = p_user_id) THEN
    RAISE EXCEPTION 'not a merchant user' USING ERRCODE = 'MP004',
      DETAIL = format('p_user_id = %L is no merchant''s user.', p_user_id),
      HINT = 'Assign the user to the merchant first (assign_merchant_user).';
  END IF;
  INSERT INTO mps.db_role_users (role_name, user_id) VALUES (p_role_name, p_user_id)
  ON CONFLICT (role_name) DO UPDATE SET user_id = excluded.user_id, created_at = now()
  RETURNING * INTO v_row;
  RETURN v_row;
END
$$;

CREATE FUNCTION mps.unmap_db_role_user(p_role_name text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM mps_internal.require_admin('unmap_db_role_user');
  DELETE FROM mps.db_role_users d WHERE d.role_name = p_role_name;
  RETURN FOUND;
END
$$;

REVOKE ALL ON FUNCTION mps.map_db_role_user(text, uuid), mps.unmap_db_role_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps.map_db_role_user(text, uuid), mps.unmap_db_role_user(text) TO mps_admin;
-- Roles that hold copies of mps_admin's rights (grant_role_privileges) get the
-- new admin functions too, as a copy made after the update would give them.
DO $copies$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT a.grantee::regrole AS grantee
    FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.oid = 'mps.grant_role_privileges(text, text)'::regprocedure
      AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
      AND a.grantee <> 'mps_admin'::regrole
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION mps.map_db_role_user(text, uuid), mps.unmap_db_role_user(text) TO %s',
                   r.grantee);
  END LOOP;
END
$copies$;
SELECT pg_catalog.pg_extension_config_dump('mps.db_role_users', '');

