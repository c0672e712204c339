-- MPS charge on one hot corporate card: every client pays with its shared code.
-- Keys: round, client, count (a repeated key would replay, not charge).
\set n :n + 1
SELECT r.tx_id
FROM mps.merchant_charge_by_qr(p_merchant_code := 'BENCH', p_qr_plain := :hot_qr,
                               p_raw_amount := 1.00,
                               p_idempotency_key := 'hot-' || :round || '-' || :client_id || '-' || :n) r;
