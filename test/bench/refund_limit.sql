-- refund-limit: write-limit with what DESIGN.md asks of every refund, as one
-- plain statement: 0.01 back on a random payment of the distinct-card run,
-- the payment's refunded total and status updated, the card credited, a
-- refund row, the idempotency key and an audit event. No checks (merchant,
-- refundable amount, card state), no points: the least a refund that keeps
-- the contract must write.
\set p random(1, :npay)
\set n :n + 1
WITH o AS (
  SELECT t.id, t.created_at, t.card_id
  FROM bench.payments b
  JOIN mps.transactions t ON t.id = b.tx_id
  WHERE b.n = :p
), u AS (
  UPDATE mps.transactions t
  SET refunded_amount = t.refunded_amount + 1,
      status = CASE WHEN t.refunded_amount + 1 = t.final_amount THEN 'refunded'
                    ELSE 'partially_refunded' END::mps.tx_status
  FROM o
  WHERE t.id = o.id AND t.created_at = o.created_at AND t.refunded_amount < t.final_amount
  RETURNING t.id, t.card_id
), c AS (
  UPDATE mps.cards c SET balance = c.balance + 1, updated_at = now()
  FROM u
  WHERE c.id = u.card_id
  RETURNING c.id, c.currency, c.balance, c.points, u.id AS payment_id, bench.uuid7() AS tx_id
), t AS (
  INSERT INTO mps.transactions (id, created_at, card_id, kind, currency, amount, raw_amount,
                                final_amount, balance_after, points_after, merchant_id,
                                original_tx_id, idempotency_key, reason)
  SELECT c.tx_id, now(), c.id, 'refund'::mps.tx_kind, c.currency, 1, 1, 1, c.balance, c.points,
         :merchant_id::uuid, c.payment_id, 'rl-' || :round || '-' || :client_id || '-' || :n,
         'refund-limit'
  FROM c
  RETURNING 1
), r AS (
  INSERT INTO mps.idempotency_registry (scope_id, key, operation, request_hash, tx_id, tx_created_at)
  SELECT :merchant_id::uuid, 'rl-' || :round || '-' || :client_id || '-' || :n, 'refund',
         sha256(('rl-' || :round || '-' || :client_id || '-' || :n)::bytea), c.tx_id, now()
  FROM c
), a AS (
  INSERT INTO audit.event_log (actor_via, actor_user_id, action, entity_type, entity_id, after,
                               idempotency_key)
  SELECT 'jwt', :operator_id::uuid, 'tx.refund', 'transaction', c.tx_id::text,
         jsonb_build_object('card_id', c.id, 'original_tx_id', c.payment_id, 'amount', 1,
                            'balance_after', c.balance),
         'rl-' || :round || '-' || :client_id || '-' || :n
  FROM c
)
SELECT 1 / count(*) FROM t;
