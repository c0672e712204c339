-- 10_contract: the shape the API promises (schemas, tables, RLS, grants,
-- function attributes), read from the catalogs as Supabase's authenticator.
BEGIN;
SELECT plan(72);
-- The authenticator login itself has no USAGE on mps, so the checks that
-- name objects in it (has_table_privilege('...'), table_privs_are, ...) run
-- as service_role, which may resolve names there; what they check is the
-- privileges of the role they name.
SET LOCAL ROLE service_role;

-- ===== schemas and the main tables =====
SELECT has_extension('mps', 'the mps extension is installed');
SELECT has_schema('mps', 'schema mps (the API) exists');
SELECT has_schema('mps_internal', 'schema mps_internal (helpers) exists');
SELECT has_schema('audit', 'schema audit exists');
SELECT has_table('mps', 'currencies', 'mps.currencies exists');
SELECT has_table('mps', 'member_profiles', 'mps.member_profiles exists');
SELECT has_table('mps', 'member_external_identities', 'mps.member_external_identities exists');
SELECT has_table('mps', 'membership_levels', 'mps.membership_levels exists');
SELECT has_table('mps', 'cards', 'mps.cards exists');
SELECT has_table('mps', 'card_bindings', 'mps.card_bindings exists');
SELECT has_table('mps', 'merchants', 'mps.merchants exists');
SELECT has_table('mps', 'merchant_users', 'mps.merchant_users exists');
SELECT has_table('mps', 'card_qr_codes', 'mps.card_qr_codes exists');
SELECT has_table('mps', 'transactions', 'mps.transactions exists');
SELECT has_table('mps', 'point_ledger', 'mps.point_ledger exists');
SELECT has_table('mps', 'idempotency_registry', 'mps.idempotency_registry exists');
SELECT has_table('mps', 'merchant_order_registry', 'mps.merchant_order_registry exists');
SELECT has_table('mps', 'settlements', 'mps.settlements exists');
SELECT has_table('audit', 'event_log', 'audit.event_log exists');
SELECT has_table('audit', 'chain', 'audit.chain exists');
SELECT is_partitioned('mps', 'transactions', 'mps.transactions is partitioned');
SELECT is_partitioned('mps', 'point_ledger', 'mps.point_ledger is partitioned');
-- a ledger row costs one index entry: its key is the by-card read
SELECT col_is_pk('mps', 'point_ledger', ARRAY['card_id', 'created_at', 'id'],
                 'point_ledger''s key is (card_id, created_at, id)');
SELECT is((SELECT count(*)::int FROM pg_index WHERE indrelid = 'mps.point_ledger'::regclass), 1,
          'point_ledger has no index besides its key');
-- money is integer minor units, never floating point
SELECT col_type_is('mps', 'cards', 'balance', 'bigint', 'cards.balance is bigint minor units');
SELECT col_type_is('mps', 'transactions', 'amount', 'bigint', 'transactions.amount is bigint minor units');
SELECT is_empty($$
  SELECT c.oid::regclass || '.' || a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace) AND a.attnum > 0 AND NOT a.attisdropped
    AND a.atttypid IN ('real'::regtype, 'double precision'::regtype, 'money'::regtype)
$$, 'no floating point or money columns anywhere');

-- ===== row-level security =====
SELECT is_empty($$
  SELECT c.oid::regclass::text FROM pg_class c
  WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace)
    AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND NOT c.relrowsecurity
$$, 'every table in mps and audit has RLS enabled');
SELECT is_empty($$
  SELECT p.schemaname || '.' || p.tablename || ' ' || p.policyname || ' ' || p.cmd FROM pg_policies p
  WHERE p.schemaname IN ('mps', 'audit') AND p.cmd <> 'SELECT'
$$, 'no policy allows anything but SELECT');
SELECT is_empty($$
  SELECT p.tablename FROM pg_policies p
  WHERE p.schemaname = 'audit' OR p.tablename IN ('card_qr_codes', 'idempotency_registry', 'merchant_order_registry')
$$, 'no policy at all on the secret-holding and audit tables');

-- ===== table privileges of the Supabase roles =====
SELECT is_empty($$
  SELECT r || ' ' || p || ' ' || c.oid::regclass FROM pg_class c,
         unnest(ARRAY['anon', 'authenticated', 'service_role', 'authenticator']) r,
         unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
  WHERE c.relnamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege(r, c.oid, p)
$$, 'no API role may INSERT, UPDATE, DELETE or TRUNCATE any table or view');
SELECT is_empty($$
  SELECT c.oid::regclass::text FROM pg_class c
  WHERE c.relnamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND has_table_privilege('anon', c.oid, 'SELECT')
$$, 'anon may read no table');
SELECT is_empty($$
  SELECT r || ' ' || c.oid::regclass FROM pg_class c, unnest(ARRAY['anon', 'authenticated', 'service_role']) r
  WHERE c.relnamespace = 'mps'::regnamespace AND c.relispartition AND has_table_privilege(r, c.oid, 'SELECT')
$$, 'no API role reads a partition directly (only through the parent, under RLS)');
SELECT is_empty($$
  SELECT r || ' ' || t FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r,
         unnest(ARRAY['mps.card_qr_codes', 'mps.idempotency_registry', 'mps.merchant_order_registry',
                      'audit.event_log', 'audit.chain', 'audit.seal_state']) t
  WHERE has_table_privilege(r, t, 'SELECT')
$$, 'QR hashes, request hashes and the audit tables are read by no API role');
SELECT table_privs_are('mps', 'cards', 'authenticated', ARRAY[]::text[], 'authenticated holds no table-wide privilege on mps.cards (it reads its columns but the secret)');
SELECT table_privs_are('mps', 'transactions', 'authenticated', ARRAY['SELECT'], 'authenticated may only SELECT mps.transactions');
SELECT table_privs_are('mps', 'member_profiles', 'authenticated', ARRAY['SELECT'], 'authenticated may only SELECT mps.member_profiles');
SELECT table_privs_are('mps', 'cards', 'service_role', ARRAY[]::text[], 'service_role holds no table-wide privilege on mps.cards (columns only)');
SELECT table_privs_are('mps', 'cards', 'anon', ARRAY[]::text[], 'anon has no privilege on mps.cards');
SELECT table_privs_are('mps', 'card_qr_codes', 'authenticated', ARRAY[]::text[], 'authenticated has no privilege on mps.card_qr_codes');
SELECT table_privs_are('audit', 'event_log', 'service_role', ARRAY[]::text[], 'service_role has no privilege on audit.event_log');

-- ===== schema privileges =====
SELECT ok(NOT has_schema_privilege('anon', 'mps', 'USAGE'), 'anon has no USAGE on mps');
SELECT ok(NOT has_schema_privilege('anon', 'mps_internal', 'USAGE') AND NOT has_schema_privilege('anon', 'audit', 'USAGE'),
          'anon has no USAGE on mps_internal or audit');
SELECT ok(has_schema_privilege('authenticated', 'mps', 'USAGE'), 'authenticated has USAGE on mps');
SELECT ok(NOT has_schema_privilege('authenticated', 'audit', 'USAGE'), 'authenticated has no USAGE on audit');
SELECT ok(has_schema_privilege('service_role', 'audit', 'USAGE'), 'service_role has USAGE on audit (seal, verify)');
SELECT is_empty($$
  SELECT r || ' ' || n || ' ' || p FROM unnest(ARRAY['anon', 'authenticated', 'service_role', 'public']) r,
         unnest(ARRAY['mps', 'mps_internal', 'audit']) n
  CROSS JOIN LATERAL (SELECT 'CREATE'::text AS p) x
  WHERE has_schema_privilege(r, n, p)
$$, 'nobody but the owner may CREATE in the extension schemas');
SELECT ok(NOT pg_has_role('authenticator', 'mps_admin', 'MEMBER'), 'the authenticator login is not a platform admin');

-- ===== functions: SECURITY DEFINER, pinned search_path, no PUBLIC EXECUTE =====
SELECT cmp_ok((SELECT count(*) FROM pg_proc WHERE pronamespace = 'mps'::regnamespace), '>=', 11::bigint,
              'the API has its functions');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace = 'mps'::regnamespace AND NOT p.prosecdef
$$, 'every function in mps is SECURITY DEFINER');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
    AND (p.prosecdef OR p.pronamespace = 'mps'::regnamespace)
    AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']
$$, 'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
    AND has_function_privilege('public', p.oid, 'EXECUTE')
$$, 'PUBLIC may execute no function of mps, mps_internal or audit');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
    AND has_function_privilege('anon', p.oid, 'EXECUTE')
$$, 'anon may execute no function of the extension');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace = 'mps'::regnamespace
    AND NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.privilege_type = 'EXECUTE'
                    AND a.grantee IN ('mps_admin'::regrole, 'mps_merchant_api'::regrole, 'mps_member_app'::regrole))
$$, 'every function in mps is granted explicitly to one of the extension roles');
SELECT function_privs_are('mps', 'get_my_cards', ARRAY[]::text[], 'authenticated', ARRAY['EXECUTE'],
                          'authenticated may call get_my_cards');
SELECT function_privs_are('mps', 'get_my_cards', ARRAY[]::text[], 'anon', ARRAY[]::text[],
                          'anon may not call get_my_cards');
SELECT function_privs_are('mps', 'create_merchant', ARRAY['text', 'text', 'text', 'text', 'text', 'integer'],
                          'service_role', ARRAY['EXECUTE'], 'service_role may call create_merchant');
SELECT function_privs_are('mps', 'grant_role_privileges', ARRAY['text', 'text'], 'authenticated', ARRAY[]::text[],
                          'authenticated may not call grant_role_privileges');
SELECT function_privs_are('audit', 'seal', ARRAY['integer'], 'authenticated', ARRAY[]::text[],
                          'authenticated may not call audit.seal');
SELECT function_privs_are('audit', 'verify', ARRAY[]::text[], 'service_role', ARRAY['EXECUTE'],
                          'service_role may call audit.verify');

-- ===== PostgREST's rules for RPCs =====
SELECT is_empty($$
  SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'mps'::regnamespace
  GROUP BY p.proname HAVING count(*) > 1
$$, 'no overloaded function names in mps');
SELECT is_empty($$
  SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'mps'::regnamespace AND p.proname !~ '^[a-z][a-z0-9_]*$'
$$, 'function names in mps are lower case');
SELECT is_empty($$
  SELECT p.oid::regprocedure || ' ' || coalesce(nullif(a.name, ''), '(unnamed)')
  FROM pg_proc p
  CROSS JOIN LATERAL unnest(
    coalesce(p.proargnames, array_fill(''::text, ARRAY[coalesce(cardinality(p.proargmodes), p.pronargs)])),
    coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[coalesce(cardinality(p.proargnames), p.pronargs)]))) a(name, mode)
  WHERE p.pronamespace = 'mps'::regnamespace AND a.mode IN ('i', 'b', 'v') AND a.name !~ '^p_[a-z0-9_]+$'
$$, 'every RPC parameter is named p_...');
SELECT volatility_is('mps', 'get_my_cards', ARRAY[]::text[], 'stable', 'get_my_cards is STABLE (GET works)');
SELECT volatility_is('mps', 'get_card', ARRAY['uuid'], 'stable', 'get_card is STABLE');
SELECT volatility_is('mps', 'list_membership_levels', ARRAY[]::text[], 'stable', 'list_membership_levels is STABLE');
SELECT volatility_is('mps', 'create_member_profile', ARRAY['text', 'text', 'text', 'text', 'text', 'text', 'text', 'uuid', 'text'],
                     'volatile', 'create_member_profile is VOLATILE');
SELECT volatility_is('mps', 'set_membership_levels', ARRAY['jsonb'], 'volatile', 'set_membership_levels is VOLATILE');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace = 'mps'::regnamespace AND p.prorettype IN ('record'::regtype, 'json'::regtype)
    AND p.proretset = false AND p.proargmodes IS NULL
$$, 'no RPC returns an anonymous record or json');

-- ===== the audit log is append-only =====
SELECT has_trigger('audit', 'event_log', 'event_log_append_only', 'audit.event_log refuses UPDATE and DELETE');
SELECT has_trigger('audit', 'event_log', 'event_log_no_truncate', 'audit.event_log refuses TRUNCATE');
SELECT has_trigger('audit', 'chain', 'chain_append_only', 'audit.chain refuses UPDATE and DELETE');

RESET ROLE;
SELECT * FROM finish();
ROLLBACK;
