-- MPS charge on one hot corporate card: each charge takes the next unused
-- shared code of the card (codes pay once). Keys: round, client, count (a
-- repeated key would replay, not charge).
\set n :n + 1
SELECT r.tx_id
FROM (SELECT c.qr FROM (SELECT nextval('bench.hot_code_seq') AS i) s
      LEFT JOIN bench.hot_codes c ON c.id = s.i) k
CROSS JOIN LATERAL mps.merchant_charge_by_qr(p_merchant_code := 'BENCH', p_qr_plain := k.qr,
                                             p_raw_amount := 1.00,
                                             p_idempotency_key := 'hot-' || :round || '-' || :client_id || '-' || :n) r;
