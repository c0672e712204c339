-- 14_rls: what the API roles can read and write directly (RLS and grants).
\set a_sub   'a0000000-0000-4000-8000-00000000000a'
\set b_sub   'b0000000-0000-4000-8000-00000000000b'
\set op_sub  '0be2a702-0000-4000-8000-0000000000a2'
\set mgr_sub '0be2a702-0000-4000-8000-0000000000a3'

-- Tries one statement on every table of the extension's schemas as the
-- current role and reports each outcome: 'denied' (42501), 'ok: N rows', or
-- the error. Whatever succeeds is rolled back.
CREATE FUNCTION public.test_probe(p_op text)
RETURNS TABLE (tbl text, partition boolean, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
  v_sql text;
  v_n bigint;
BEGIN
  FOR r IN
    SELECT c.oid::regclass AS rel, c.relispartition AS part,
           (SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attidentity = '' AND a.attgenerated = ''
            ORDER BY a.attnum LIMIT 1) AS col
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('mps', 'mps_internal', 'audit') AND c.relkind IN ('r', 'p')
    ORDER BY 1::text
  LOOP
    v_sql := CASE p_op
      WHEN 'select' THEN format('SELECT count(*) FROM %s', r.rel)
      WHEN 'insert' THEN format('INSERT INTO %s DEFAULT VALUES', r.rel)
      WHEN 'update' THEN format('UPDATE %s SET %I = %I', r.rel, r.col, r.col)
      WHEN 'delete' THEN format('DELETE FROM %s', r.rel)
      WHEN 'truncate' THEN format('TRUNCATE %s', r.rel)
    END;
    BEGIN
      IF p_op = 'select' THEN
        EXECUTE v_sql INTO v_n;
      ELSE
        EXECUTE v_sql;
        GET DIAGNOSTICS v_n = ROW_COUNT;
      END IF;
      RAISE EXCEPTION USING ERRCODE = 'T0001', MESSAGE = format('ok: %s rows', v_n);
    EXCEPTION WHEN OTHERS THEN
      tbl := r.rel::text; partition := r.part;
      outcome := CASE WHEN SQLSTATE = '42501' THEN 'denied'
                      WHEN SQLSTATE = 'T0001' THEN SQLERRM
                      ELSE SQLSTATE || ' ' || SQLERRM END;
      RETURN NEXT;
    END;
  END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION public.test_probe(text) TO PUBLIC;

-- ===== fixtures: two members, a merchant's operator and manager, some movements =====
SELECT member_id AS a_member, card_id AS a_card FROM mps.create_member_profile('Member A', p_auth_user_id := :'a_sub',
  p_binding_user_org := 'line', p_binding_org_id := 'line-a') \gset
SELECT member_id AS b_member, card_id AS b_card FROM mps.create_member_profile('Member B', p_auth_user_id := :'b_sub') \gset
SELECT id AS shop01 FROM mps.merchants WHERE code = 'SHOP01' \gset
SELECT id AS shop02 FROM mps.merchants WHERE code = 'SHOP02' \gset
\o /dev/null
SELECT mps.assign_merchant_user('SHOP01', :'op_sub', 'operator');
SELECT mps.assign_merchant_user('SHOP01', :'mgr_sub', 'manager');
\o
-- Movement rows are written here directly (the money core is tested
-- elsewhere) and rolled back at the end of this block.
BEGIN;
INSERT INTO mps.transactions (id, created_at, card_id, kind, currency, amount, raw_amount, final_amount,
                              balance_after, points_after, merchant_id, member_id)
VALUES (gen_random_uuid(), now(), :'a_card', 'recharge', 'CNY', 10000, 10000, 10000, 10000, 0, NULL, :'a_member'),
       (gen_random_uuid(), now(), :'a_card', 'payment', 'CNY', -2500, 2500, 2500, 7500, 25, :'shop01', :'a_member'),
       (gen_random_uuid(), now(), :'b_card', 'recharge', 'CNY', 5000, 5000, 5000, 5000, 0, NULL, :'b_member'),
       (gen_random_uuid(), now(), :'b_card', 'payment', 'CNY', -1000, 1000, 1000, 4000, 0, :'shop02', :'b_member');
INSERT INTO mps.point_ledger (created_at, card_id, delta, points_after, reason)
VALUES (now(), :'a_card', 25, 25, 'payment');
INSERT INTO mps.settlements (merchant_id, currency, mode, period_start, period_end, gross_payments, net, payment_count)
VALUES (:'shop01', 'CNY', 't_plus_1', now() - interval '1 day', now(), 2500, 2500, 1),
       (:'shop02', 'EUR', 'realtime', now() - interval '1 day', now(), 1000, 1000, 1);
UPDATE mps.cards SET balance = 7500, points = 25 WHERE id = :'a_card';
UPDATE mps.cards SET balance = 4000 WHERE id = :'b_card';

-- member A sees exactly her own rows
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'a_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_a;
SELECT count(*) AS profiles, bool_and(id = :'a_member') AS all_mine FROM mps.member_profiles;
SELECT count(*) AS identities, bool_and(member_id = :'a_member') AS all_mine FROM mps.member_external_identities;
SELECT count(*) AS cards, bool_and(id = :'a_card') AS all_mine, sum(balance) AS balance FROM mps.cards;
SELECT count(*) AS bindings, bool_and(card_id = :'a_card') AS all_mine FROM mps.card_bindings;
SELECT kind, amount, merchant_id = :'shop01' AS at_shop01, card_id = :'a_card' AS mine
FROM mps.transactions ORDER BY amount;
SELECT count(*) AS ledger_rows, bool_and(card_id = :'a_card') AS all_mine FROM mps.point_ledger;
-- B's rows do not exist for her, asked for by id or not
SELECT count(*) AS b_card_rows FROM mps.cards WHERE id = :'b_card';
SELECT count(*) AS b_tx_rows FROM mps.transactions WHERE card_id = :'b_card';
SELECT count(*) AS b_profile_rows FROM mps.member_profiles WHERE id = :'b_member';
-- nor merchants, their users and settlements
SELECT count(*) AS merchants FROM mps.merchants;
SELECT count(*) AS merchant_users FROM mps.merchant_users;
SELECT count(*) AS settlements FROM mps.settlements;
-- configuration is readable
SELECT count(*) > 0 AS sees_currencies FROM mps.currencies;
SELECT count(*) > 0 AS sees_levels FROM mps.membership_levels;
-- the tables that hold secrets are not readable at all
SELECT test_err($$SELECT count(*) FROM mps.card_qr_codes$$);
SELECT test_err($$SELECT count(*) FROM mps.idempotency_registry$$);
SELECT test_err($$SELECT count(*) FROM mps.merchant_order_registry$$);
SELECT test_err($$SELECT count(*) FROM mps.transactions_default$$);
RESET ROLE;

-- member B, likewise
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'b_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_b;
SELECT count(*) AS cards, bool_and(id = :'b_card') AS all_mine FROM mps.cards;
SELECT count(*) AS transactions, bool_and(card_id = :'b_card') AS all_mine FROM mps.transactions;
SELECT count(*) AS a_card_rows FROM mps.cards WHERE id = :'a_card';
SELECT count(*) AS identities FROM mps.member_external_identities;
RESET ROLE;

-- the operator of SHOP01: its merchant, its transactions, no settlements, no member data
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'op_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_operator;
SELECT code FROM mps.merchants;
SELECT count(*) AS my_assignments, bool_and(user_id = :'op_sub') AS all_mine FROM mps.merchant_users;
SELECT kind, amount, merchant_id = :'shop01' AS at_shop01 FROM mps.transactions;
SELECT count(*) AS settlements FROM mps.settlements;
SELECT count(*) AS cards FROM mps.cards;
SELECT count(*) AS profiles FROM mps.member_profiles;
SELECT count(*) AS ledger_rows FROM mps.point_ledger;
RESET ROLE;

-- the manager of SHOP01 also sees its settlements (only those)
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'mgr_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_manager;
SELECT count(*) AS settlements, bool_and(merchant_id = :'shop01') AS all_shop01 FROM mps.settlements;
SELECT count(*) AS transactions FROM mps.transactions;
RESET ROLE;

-- authenticated without claims, or with claims but no subject: nothing
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '', true) = '' AS no_claims;
SELECT (SELECT count(*) FROM mps.cards) AS cards, (SELECT count(*) FROM mps.transactions) AS transactions,
       (SELECT count(*) FROM mps.member_profiles) AS profiles, (SELECT count(*) FROM mps.merchants) AS merchants;
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true) IS NOT NULL AS no_sub;
SELECT (SELECT count(*) FROM mps.cards) AS cards, (SELECT count(*) FROM mps.transactions) AS transactions,
       (SELECT count(*) FROM mps.member_profiles) AS profiles, (SELECT count(*) FROM mps.merchants) AS merchants;
-- a forged service_role claim does not lift RLS
SELECT set_config('request.jwt.claims', '{"sub":"' || :'a_sub' || '","role":"service_role"}', true) IS NOT NULL AS forged;
SELECT (SELECT count(*) FROM mps.cards) AS cards, (SELECT count(*) FROM mps.transactions) AS transactions,
       (SELECT count(*) FROM mps.member_profiles) AS profiles;
RESET ROLE;

-- service_role (the platform admin) reads everything it was granted
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS service_role;
SELECT (SELECT count(*) FROM mps.transactions) AS transactions, (SELECT count(*) FROM mps.settlements) AS settlements;
SELECT (SELECT count(*) FROM mps.cards) = (SELECT count(*) FROM mps.card_bindings) AS all_cards;
RESET ROLE;

-- anon: permission denied on every table (or no rows)
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) IS NOT NULL AS anon;
SELECT count(*) > 10 AS probed_tables, count(*) FILTER (WHERE outcome <> 'denied' AND outcome <> 'ok: 0 rows') AS readable
FROM test_probe('select');
SELECT tbl, outcome FROM test_probe('select') WHERE outcome <> 'denied' AND outcome <> 'ok: 0 rows';
RESET ROLE;
ROLLBACK;
-- the movement fixtures are gone again
SELECT count(*) AS transactions, (SELECT balance FROM mps.cards WHERE id = :'a_card') AS a_balance FROM mps.transactions;

-- ===== nobody writes any table directly (expected: no table listed) =====
-- a member
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'a_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_a;
SELECT op, tbl, outcome FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) op, test_probe(op)
WHERE outcome <> 'denied';
SELECT count(*) AS probes, count(*) FILTER (WHERE outcome = 'denied') AS denied
FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) op, test_probe(op) \gset
SELECT :probes > 40 AS probed, :probes = :denied AS all_denied;
COMMIT;
-- a merchant manager
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'mgr_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_manager;
SELECT op, tbl, outcome FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) op, test_probe(op)
WHERE outcome <> 'denied';
COMMIT;
-- the platform admin through PostgREST: reads, but writes only through RPCs
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS service_role;
SELECT op, tbl, outcome FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) op, test_probe(op)
WHERE outcome <> 'denied';
COMMIT;
-- anon
BEGIN;
SET LOCAL ROLE anon;
SELECT op, tbl, outcome FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) op, test_probe(op)
WHERE outcome <> 'denied';
COMMIT;
-- (the probe itself works: as the owner every write would go through)
BEGIN;
SELECT count(*) FILTER (WHERE outcome LIKE 'ok:%') > 0 AS owner_can_write FROM test_probe('delete');
ROLLBACK;

-- ===== ensure_partitions is for the platform admin only =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'a_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_a;
SELECT test_err($$SELECT mps.ensure_partitions(12)$$);
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'mgr_sub' || '","role":"service_role"}', true) IS NOT NULL AS forged;
SELECT test_err($$SELECT mps.ensure_partitions(12)$$);
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT test_err($$SELECT mps.ensure_partitions(12)$$);
COMMIT;
-- service_role without claims is not trusted
BEGIN;
SET LOCAL ROLE service_role;
SELECT test_err($$SELECT mps.ensure_partitions(12)$$);
COMMIT;
-- the platform admin: service_role with claims, or a superuser
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS service_role;
SELECT mps.ensure_partitions(9) > 0 AS created;
COMMIT;
SELECT mps.ensure_partitions(9) AS nothing_more_to_create;
SELECT e.actor_via, e.actor_admin, (e.after->>'months_ahead')::int AS months_ahead
FROM audit.event_log e WHERE e.action = 'partitions.ensure' ORDER BY e.id;
