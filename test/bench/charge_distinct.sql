-- MPS charge on distinct cards: each charge takes the next unused member code
-- (one card per code), as the merchant's operator (JWT claims in PGOPTIONS).
-- Running out of codes fails the run (NULL code: invalid QR code).
SELECT r.tx_id
FROM (SELECT s.i, c.qr
      FROM (SELECT nextval('bench.code_seq') AS i) s
      LEFT JOIN bench.codes c ON c.id = s.i) k
CROSS JOIN LATERAL mps.merchant_charge_by_qr(p_merchant_code := 'BENCH', p_qr_plain := k.qr,
                                             p_raw_amount := 50.00,
                                             p_idempotency_key := 'dc-' || k.i) r;
