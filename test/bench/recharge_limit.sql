-- recharge-limit: write-limit with what DESIGN.md asks of every recharge, as
-- one plain statement: 10.00 onto a random member card, a recharge row, the
-- idempotency key (scoped to the card, as a recharge's is) and an audit
-- event. No checks (caller, card state, amount, balance cap): the least a
-- recharge that keeps the contract must write.
\set c random(1, :ncodes)
\set n :n + 1
WITH k AS (
  SELECT b.card_id FROM bench.codes b WHERE b.id = :c
), c AS (
  UPDATE mps.cards c SET balance = c.balance + 1000, updated_at = now()
  FROM k
  WHERE c.id = k.card_id
  RETURNING c.id, c.currency, c.balance, c.points, bench.uuid7() AS tx_id
), t AS (
  INSERT INTO mps.transactions (id, created_at, card_id, kind, currency, amount, raw_amount,
                                final_amount, balance_after, points_after, idempotency_key, reason)
  SELECT c.tx_id, now(), c.id, 'recharge'::mps.tx_kind, c.currency, 1000, 1000, 1000,
         c.balance, c.points, 'xl-' || :round || '-' || :client_id || '-' || :n, 'recharge-limit'
  FROM c
  RETURNING 1
), r AS (
  INSERT INTO mps.idempotency_registry (scope_id, key, operation, request_hash, tx_id, tx_created_at)
  SELECT c.id, 'xl-' || :round || '-' || :client_id || '-' || :n, 'recharge',
         sha256(('xl-' || :round || '-' || :client_id || '-' || :n)::bytea), c.tx_id, now()
  FROM c
), a AS (
  INSERT INTO audit.event_log (action, entity_type, entity_id, after, idempotency_key)
  SELECT 'tx.recharge', 'transaction', c.tx_id::text,
         jsonb_build_object('card_id', c.id, 'amount', 1000, 'balance_after', c.balance),
         'xl-' || :round || '-' || :client_id || '-' || :n
  FROM c
)
SELECT 1 / count(*) FROM t;
