-- mps extension script, assembled from sql/*.sql in name order.
\echo Use "CREATE EXTENSION mps CASCADE" to load this file. \quit

-- Schemas: mps is the API PostgREST exposes; mps_internal holds helpers that
-- are not part of the API; audit holds the tamper-evident event log.
--
-- The API schema may exist before CREATE EXTENSION (it then uses it). Whoever
-- else owns it, or may create in it, could add functions to the API or replace
-- ours: refuse the install until it is ours alone.
DO $schema$
DECLARE
  v_owner oid;
  v_bad text;
BEGIN
  SELECT n.nspowner INTO v_owner FROM pg_namespace n WHERE n.nspname = '@extschema@';
  SELECT string_agg(DISTINCT a.grantee::regrole::text, ', ') INTO v_bad
  FROM pg_namespace n, aclexplode(n.nspacl) a
  WHERE n.nspname = '@extschema@' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner;
  IF v_owner IS NOT NULL AND v_owner <> current_user::regrole::oid
     AND NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.oid = v_owner) THEN
    RAISE EXCEPTION 'schema @extschema@ belongs to another role' USING ERRCODE = 'MP602',
      DETAIL = format('Schema @extschema@ is owned by %s, not by %s who installs the extension.',
                      v_owner::regrole, current_user),
      HINT = 'Drop or rename that schema (or make the installing role its owner) and install again.';
  END IF;
  IF v_bad IS NOT NULL OR EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
                                   WHERE n.nspname = '@extschema@' AND a.privilege_type = 'CREATE'
                                     AND a.grantee = 0) THEN
    RAISE EXCEPTION 'other roles may create objects in schema @extschema@' USING ERRCODE = 'MP602',
      DETAIL = format('CREATE on schema @extschema@ is granted to %s.', coalesce(v_bad, 'PUBLIC')),
      HINT = 'REVOKE CREATE ON SCHEMA @extschema@ FROM those roles and install again.';
  END IF;
END
$schema$;

CREATE SCHEMA mps_internal;
CREATE SCHEMA audit;

-- The extension's own group roles (cluster-wide, so created only if missing).
-- Grant them to your login or API roles; see README "Security model".
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mps_admin') THEN
    CREATE ROLE mps_admin NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mps_merchant_api') THEN
    CREATE ROLE mps_merchant_api NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mps_member_app') THEN
    CREATE ROLE mps_member_app NOLOGIN;
  END IF;
END
$roles$;

GRANT USAGE ON SCHEMA @extschema@ TO mps_admin, mps_merchant_api, mps_member_app;
REVOKE ALL ON SCHEMA mps_internal FROM PUBLIC;
REVOKE ALL ON SCHEMA audit FROM PUBLIC;
GRANT USAGE ON SCHEMA mps_internal TO mps_admin, mps_merchant_api, mps_member_app;
