-- 13_audit: the audit trail is complete, append-only and tamper-evident.
\set member_sub 'ee000000-0000-4000-8000-0000000000e1'

-- ===== every foundation RPC left its event =====
SELECT a AS action, EXISTS (SELECT 1 FROM audit.event_log e WHERE e.action = a) AS logged
FROM unnest(ARRAY['grants.copy', 'member.create', 'card.issue', 'merchant.create', 'merchant.update',
                  'merchant_user.assign', 'merchant_user.remove', 'levels.set']) a;
-- ensure_partitions creates exactly the missing months, audits it, and is idempotent
CREATE TEMP VIEW months_missing AS
  SELECT p, i FROM unnest(ARRAY['transactions', 'point_ledger']) p, generate_series(0, 6) i
  WHERE to_regclass(format('mps.%s_%s', p, to_char(date_trunc('month', now() AT TIME ZONE 'UTC')
                                                   + make_interval(months => i), 'YYYY_MM'))) IS NULL;
SELECT count(*) AS missing FROM months_missing \gset
SELECT :missing > 0 AS some_missing, mps.ensure_partitions(6) = :missing AS created_exactly_those;
SELECT count(*) AS still_missing FROM months_missing;
SELECT mps.ensure_partitions(6) AS created_again;
SELECT count(*) AS partition_events, min((after->>'created')::int) = :missing AS event_counts_them
FROM audit.event_log WHERE action = 'partitions.ensure';
DROP VIEW months_missing;
SELECT test_err($$SELECT mps.ensure_partitions(-1)$$);
SELECT test_err($$SELECT mps.ensure_partitions(NULL)$$);
SELECT test_err($$SELECT mps.ensure_partitions(121)$$);
-- each member, card and merchant has its creation event, naming it
SELECT count(*) AS members_without_event FROM mps.member_profiles m
WHERE NOT EXISTS (SELECT 1 FROM audit.event_log e WHERE e.action = 'member.create' AND e.entity_type = 'member'
                  AND e.entity_id = m.id::text AND e.after->>'name' = m.name);
SELECT count(*) AS cards_without_event FROM mps.cards c
WHERE NOT EXISTS (SELECT 1 FROM audit.event_log e WHERE e.action = 'card.issue' AND e.entity_type = 'card'
                  AND e.entity_id = c.id::text AND e.after->>'card_no' = c.card_no);
SELECT count(*) AS merchants_without_event FROM mps.merchants m
WHERE NOT EXISTS (SELECT 1 FROM audit.event_log e WHERE e.action = 'merchant.create' AND e.entity_type = 'merchant'
                  AND e.entity_id = m.id::text AND e.after->>'code' = m.code);
-- every event has its who, what and when
SELECT count(*) AS incomplete_events FROM audit.event_log
WHERE occurred_at IS NULL OR db_role IS NULL OR actor_via NOT IN ('jwt', 'db_role')
   OR (actor_via = 'jwt' AND NOT actor_admin AND actor_user_id IS NULL) OR entity_type IS NULL;

-- ===== append-only, even for a superuser: MP901 =====
SELECT count(*) AS events FROM audit.event_log \gset
SELECT test_err($$UPDATE audit.event_log SET action = 'member.delete' WHERE action = 'member.create'$$);
SELECT test_err($$DELETE FROM audit.event_log WHERE action = 'card.issue'$$);
SELECT test_err($$TRUNCATE audit.event_log$$);
SELECT test_err($$TRUNCATE audit.event_log CASCADE$$);
SELECT count(*) = :events AS nothing_lost, count(*) FILTER (WHERE action = 'member.delete') AS rewritten
FROM audit.event_log;

-- ===== seal and verify =====
SELECT audit.seal() > 0 AS sealed_something;
SELECT audit.seal() AS nothing_left_to_seal;
SELECT intact, events_checked = (SELECT count(*) FROM audit.event_log) AS checked_all, broken_pos, broken_event_id, problem
FROM audit.verify();
-- the chain: one position per event, in id order, 32-byte hashes, no gaps
SELECT count(*) = max(pos) AS no_gaps, bool_and(length(hash) = 32) AS sha256,
       count(DISTINCT event_id) = count(*) AS one_per_event
FROM audit.chain;
SELECT count(*) AS out_of_order FROM (SELECT event_id < lag(event_id) OVER (ORDER BY pos) AS bad FROM audit.chain) s WHERE bad;
-- the chain is append-only as well
SELECT test_err($$UPDATE audit.chain SET hash = '\x00' WHERE pos = 1$$);
SELECT test_err($$DELETE FROM audit.chain WHERE pos = 1$$);
SELECT test_err($$TRUNCATE audit.chain$$);
-- sealing in blocks: one at a time, the rest later
\o /dev/null
SELECT mps.update_merchant('SHOP01', p_fee_bp := 70);
SELECT mps.update_merchant('SHOP01', p_fee_bp := 80);
\o
SELECT audit.seal(1) AS first_block, audit.seal(10) AS second_block;
SELECT intact, events_checked = (SELECT count(*) FROM audit.event_log) AS checked_all FROM audit.verify();
-- a recent event that is not sealed yet is not a break
\o /dev/null
SELECT mps.update_merchant('SHOP01', p_fee_bp := 60);
\o
SELECT intact, events_checked = (SELECT count(*) FROM audit.chain) AS checked_chain,
       events_checked < (SELECT count(*) FROM audit.event_log) AS one_unsealed
FROM audit.verify();

-- ===== the sealed horizon =====
-- an event id that never committed leaves a hole in the log
BEGIN;
SELECT code FROM mps.create_merchant('GHOST', 'Rolled back');
ROLLBACK;
SELECT max(id) + 1 AS hole FROM audit.event_log \gset
\o /dev/null
SELECT mps.update_merchant('SHOP01', p_fee_bp := 50);
\o
-- two seals in separate transactions move the horizon past it (more rounds
-- only if another transaction somewhere in the cluster held it back)
SELECT audit.seal() AS sealed;
SELECT audit.seal() AS sealed;
CREATE TEMP TABLE hole AS SELECT :hole::bigint AS id;
DO $$
BEGIN
  FOR i IN 1 .. 50 LOOP
    EXIT WHEN (SELECT low_water FROM audit.seal_state) > (SELECT id FROM hole);
    PERFORM pg_sleep(0.1);
    PERFORM audit.seal();
  END LOOP;
END
$$;
SELECT low_water > :hole AS horizon_past_hole, NOT EXISTS (SELECT 1 FROM audit.event_log WHERE id = :hole) AS hole_empty
FROM audit.seal_state;
SELECT intact FROM audit.verify();

-- ===== tampering is found, at the event that was touched =====
-- (a superuser can bypass the append-only trigger with replica mode; the chain catches it)
CREATE TEMP TABLE kept_event AS SELECT * FROM audit.event_log
  WHERE id = (SELECT min(id) FROM audit.event_log WHERE action = 'merchant.update');
SELECT id AS tampered, (SELECT pos FROM audit.chain WHERE event_id = k.id) AS tampered_pos FROM kept_event k \gset
-- 1. a changed value
SET session_replication_role = replica;
UPDATE audit.event_log SET after = jsonb_set(after, '{fee_bp}', '0') WHERE id = :tampered;
RESET session_replication_role;
SELECT intact, broken_event_id = :tampered AS at_tampered_event, broken_pos = :tampered_pos AS at_its_position,
       events_checked = :tampered_pos - 1 AS checked_up_to_it, regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem
FROM audit.verify();
-- 2. a changed actor
SET session_replication_role = replica;
UPDATE audit.event_log e SET after = k.after, actor_user_id = :'member_sub' FROM kept_event k WHERE e.id = k.id;
RESET session_replication_role;
SELECT intact, broken_event_id = :tampered AS at_tampered_event, regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem
FROM audit.verify();
-- 3. a changed time
SET session_replication_role = replica;
UPDATE audit.event_log e SET actor_user_id = k.actor_user_id, occurred_at = k.occurred_at - interval '1 hour'
FROM kept_event k WHERE e.id = k.id;
RESET session_replication_role;
SELECT intact, broken_event_id = :tampered AS at_tampered_event FROM audit.verify();
-- put it back exactly: intact again
SET session_replication_role = replica;
UPDATE audit.event_log e SET occurred_at = k.occurred_at FROM kept_event k WHERE e.id = k.id;
RESET session_replication_role;
SELECT intact, broken_event_id FROM audit.verify();
-- 4. a deleted sealed event
SET session_replication_role = replica;
DELETE FROM audit.event_log WHERE id = :tampered;
RESET session_replication_role;
SELECT intact, broken_event_id = :tampered AS at_deleted_event, broken_pos = :tampered_pos AS at_its_position,
       regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem
FROM audit.verify();
INSERT INTO audit.event_log OVERRIDING SYSTEM VALUE SELECT * FROM kept_event;
SELECT intact FROM audit.verify();
-- 5. a deleted chain link
CREATE TEMP TABLE kept_link AS SELECT * FROM audit.chain WHERE pos = :tampered_pos;
SET session_replication_role = replica;
DELETE FROM audit.chain WHERE pos = :tampered_pos;
RESET session_replication_role;
SELECT intact, broken_pos = :tampered_pos AS at_missing_position, broken_event_id,
       regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem
FROM audit.verify();
INSERT INTO audit.chain SELECT * FROM kept_link;
-- 6. a rewritten chain hash
SET session_replication_role = replica;
UPDATE audit.chain SET hash = sha256('forged') WHERE pos = :tampered_pos;
RESET session_replication_role;
SELECT intact, broken_pos = :tampered_pos AS at_forged_position FROM audit.verify();
SET session_replication_role = replica;
UPDATE audit.chain c SET hash = k.hash FROM kept_link k WHERE c.pos = k.pos;
RESET session_replication_role;
SELECT intact FROM audit.verify();
-- 7. an event slipped in below the sealed horizon (into the hole), which sealing does not launder
INSERT INTO audit.event_log (id, actor_via, actor_admin, action, entity_type, entity_id, after)
  OVERRIDING SYSTEM VALUE
  VALUES (:hole, 'db_role', true, 'merchant.create', 'merchant', 'GHOST', '{"code": "GHOST"}');
SELECT intact, broken_event_id = :hole AS at_inserted_event, broken_pos IS NULL AS not_in_chain,
       regexp_replace(problem, '[0-9]+', 'N', 'g') AS problem
FROM audit.verify();
SELECT audit.seal() AS sealed;
SELECT intact, broken_event_id = :hole AS still_reported FROM audit.verify();
SET session_replication_role = replica;
DELETE FROM audit.event_log WHERE id = :hole;
RESET session_replication_role;
SELECT intact, events_checked = (SELECT count(*) FROM audit.event_log) AS checked_all FROM audit.verify();

-- ===== who may seal and verify =====
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS service_role;
SELECT audit.seal() >= 0 AS sealed, (SELECT intact FROM audit.verify()) AS intact;
COMMIT;
BEGIN;
SET LOCAL ROLE service_role;
SELECT test_err($$SELECT audit.seal()$$) AS service_role_without_claims;
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'member_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_member;
SELECT test_err($$SELECT audit.seal()$$);
SELECT test_err($$SELECT * FROM audit.verify()$$);
SELECT test_err($$SELECT count(*) FROM audit.event_log$$);
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT test_err($$SELECT audit.seal()$$);
SELECT test_err($$SELECT count(*) FROM audit.event_log$$);
COMMIT;
-- the platform admin through PostgREST seals and verifies, but reads no rows directly
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS service_role;
SELECT test_err($$SELECT count(*) FROM audit.event_log$$);
SELECT test_err($$INSERT INTO audit.event_log (action, entity_type) VALUES ('x', 'y')$$);
COMMIT;
