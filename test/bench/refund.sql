-- MPS refund: 0.01 back on a random payment of the distinct-card run.
\set p random(1, :npay)
\set n :n + 1
SELECT r.tx_id
FROM mps.merchant_refund_tx(p_merchant_code := 'BENCH',
                            p_tx_id := (SELECT tx_id FROM bench.payments WHERE n = :p),
                            p_refund_amount := 0.01,
                            p_idempotency_key := 'rf-' || :round || '-' || :client_id || '-' || :n) r;
