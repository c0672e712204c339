-- write-limit: charge-limit without the bcrypt check (the limit for refunds and
-- recharges): find the code, take 1.00 off its card, write one transaction row
-- (an 'adjustment', so balances still equal the sum of their movements).
-- Not checked: whether the code was used (the charge runs consume the codes
-- this reads; a shared code is never consumed either).
\set i random(1, :ncodes)
WITH k AS (
  SELECT q.id, q.card_id
  FROM bench.codes b
  JOIN mps.card_qr_codes q ON q.lookup_id = split_part(b.qr, '.', 2)
  WHERE b.id = :i
    AND q.revoked_at IS NULL AND q.expires_at > now()
), c AS (
  UPDATE mps.cards c SET balance = c.balance - 100, updated_at = now()
  FROM k
  WHERE c.id = k.card_id AND c.balance >= 100
  RETURNING c.id, c.currency, c.balance, c.points, k.id AS qr_id
), t AS (
  INSERT INTO mps.transactions (id, created_at, card_id, kind, currency, amount, raw_amount,
                                final_amount, balance_after, points_after, merchant_id,
                                qr_code_id, reason)
  SELECT bench.uuid7(), now(), c.id, 'adjustment'::mps.tx_kind, c.currency, -100, 100,
         100, c.balance, c.points, :merchant_id::uuid, c.qr_id, 'write-limit'
  FROM c
  RETURNING 1
)
SELECT 1 / count(*) FROM t;
