-- mps extension script, assembled from sql/*.sql in name order.
\echo Use "CREATE EXTENSION mps CASCADE" to load this file. \quit

-- Schemas: mps is the API PostgREST exposes; mps_internal holds helpers that
-- are not part of the API; audit holds the tamper-evident event log.
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
