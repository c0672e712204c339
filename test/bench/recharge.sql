-- MPS recharge: 10.00 onto a random member card, by the platform admin.
\set c random(1, :ncodes)
\set n :n + 1
SELECT r.tx_id
FROM mps.recharge_card(p_card_id := (SELECT card_id FROM bench.codes WHERE id = :c),
                       p_amount := 10.00,
                       p_idempotency_key := 'rc-' || :round || '-' || :client_id || '-' || :n) r;
