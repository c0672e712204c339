-- One funded member card with one live single-use code, through the RPCs, as
-- the platform admin (untimed setup; run by pgbench so it runs in parallel).
BEGIN;
SELECT card_id AS card FROM mps.create_member_profile(p_name := 'Bench member') \gset
SELECT tx_id FROM mps.recharge_card(:card::uuid, 1000.00, 'fund');
INSERT INTO bench.codes (card_id, qr)
SELECT card_id, qr_plain FROM mps.rotate_card_qr(:card::uuid, 3600);
COMMIT;
