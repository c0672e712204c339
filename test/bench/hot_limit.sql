-- hot-limit: charge-limit on the one hot corporate card, through its shared
-- code: find the code, bcrypt-verify it, take 1.00 off the card, write one
-- transaction row ('adjustment'). Every client updates the same row, so the
-- transactions run one after another, each holding the row until its commit
-- is flushed: the physical limit of charges on one card on this machine.
WITH k AS (
  SELECT q.id, q.card_id
  FROM mps.card_qr_codes q
  WHERE q.lookup_id = split_part(:hot_qr, '.', 2)
    AND q.revoked_at IS NULL AND q.expires_at > now()
    AND bench.bcrypt_ok(split_part(:hot_qr, '.', 3), q.secret_hash)
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
         100, c.balance, c.points, :merchant_id::uuid, c.qr_id, 'hot-limit'
  FROM c
  RETURNING 1
)
SELECT 1 / count(*) FROM t;
