-- contract-limit: charge-limit plus every row DESIGN.md asks of a charge, as one
-- plain statement: the code is consumed, the key goes into the idempotency
-- registry, the points earned into the point ledger and an event into the
-- audit log. No checks beyond charge-limit's, no pricing, no level: the least
-- a charge that keeps the contract must write. Takes the next unused code,
-- like the distinct-card charges.
WITH k AS (
  SELECT q.id, q.card_id, s.i
  FROM (SELECT nextval('bench.code_seq') AS i) s
  JOIN bench.codes b ON b.id = s.i
  JOIN mps.card_qr_codes q ON q.lookup_id = split_part(b.qr, '.', 2)
  WHERE q.revoked_at IS NULL AND q.used_at IS NULL AND q.expires_at > now()
    AND bench.bcrypt_ok(split_part(b.qr, '.', 3), q.secret_hash)
), c AS (
  UPDATE mps.cards c SET balance = c.balance - 100, points = c.points + 1, updated_at = now()
  FROM k
  WHERE c.id = k.card_id AND c.balance >= 100
  RETURNING c.id, c.currency, c.balance, c.points, k.id AS qr_id, k.i, bench.uuid7() AS tx_id
), u AS (
  UPDATE mps.card_qr_codes q SET used_at = now(), used_tx_id = c.tx_id
  FROM c WHERE q.id = c.qr_id
), t AS (
  INSERT INTO mps.transactions (id, created_at, card_id, kind, currency, amount, raw_amount,
                                final_amount, points_delta, balance_after, points_after,
                                merchant_id, qr_code_id, idempotency_key, reason)
  SELECT c.tx_id, now(), c.id, 'adjustment'::mps.tx_kind, c.currency, -100, 100,
         100, 1, c.balance, c.points, :merchant_id::uuid, c.qr_id, 'cl-' || c.i, 'contract-limit'
  FROM c
  RETURNING 1
), l AS (
  INSERT INTO mps.point_ledger (created_at, card_id, tx_id, delta, points_after, reason)
  SELECT now(), c.id, c.tx_id, 1, c.points, 'earned' FROM c
), r AS (
  INSERT INTO mps.idempotency_registry (scope_id, key, operation, request_hash, tx_id, tx_created_at)
  SELECT :merchant_id::uuid, 'cl-' || c.i, 'charge', sha256(('cl-' || c.i)::bytea), c.tx_id, now()
  FROM c
), a AS (
  INSERT INTO audit.event_log (actor_via, actor_user_id, action, entity_type, entity_id, after,
                               idempotency_key)
  SELECT 'jwt', :operator_id::uuid, 'tx.charge', 'transaction', c.tx_id::text,
         jsonb_build_object('card_id', c.id, 'final_amount', 100, 'balance_after', c.balance,
                            'points_delta', 1),
         'cl-' || c.i
  FROM c
)
SELECT 1 / count(*) FROM t;
