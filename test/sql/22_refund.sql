-- 22_refund: merchant_refund_tx. Partial refunds up to the paid amount, the
-- payment's refunded total and status, proportional point reversal (the level
-- can go down), idempotent retries, and what may not be refunded by whom.
\i test/fixtures/money_prelude.sql
-- JWT subjects
\set alice_sub '22000000-0000-4000-8000-0000000000a1'
\set bob_sub   '22000000-0000-4000-8000-0000000000b0'
\set op_sub    '22000000-0000-4000-8000-0000000000e1'
\set op2_sub   '22000000-0000-4000-8000-0000000000e2'
\set c_alice '{"sub":"22000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set c_op    '{"sub":"22000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set c_op2   '{"sub":"22000000-0000-4000-8000-0000000000e2","role":"authenticated"}'

-- ===== setup, as the platform admin =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'R22SHOP', p_name := 'Refund Shop');
SELECT mps.create_merchant(p_code := 'R22OTHER', p_name := 'Other Shop');
SELECT mps.assign_merchant_user('R22SHOP', :'op_sub');
SELECT mps.assign_merchant_user('R22OTHER', :'op2_sub');
\o
SELECT member_id AS alice_member, card_id AS alice_card
FROM mps.create_member_profile(p_name := 'Alice', p_auth_user_id := :'alice_sub') \gset
SELECT card_id AS bob_card FROM mps.create_member_profile(p_name := 'Bob', p_auth_user_id := :'bob_sub') \gset
SELECT tx_id AS recharge_tx, balance_after FROM mps.recharge_card(:'alice_card', 1000, 'r22-topup-alice') \gset
SELECT balance_after FROM mps.recharge_card(:'bob_card', 100, 'r22-topup-bob');
-- a payment of 199.00 at BRONZE earns 199 points: SILVER (100..199)
SELECT qr_plain AS code1 FROM mps.rotate_card_qr(:'alice_card') \gset
SELECT 'mps.cards'::regclass::oid AS cards_rel, 'mps.card_qr_codes'::regclass::oid AS qr_rel \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT tx_id AS pay1, final_amount AS r_final, balance_after AS r_balance, points_after AS r_points, level_after AS r_level
FROM mps.merchant_charge_by_qr('R22SHOP', :'code1', 199.00, 'r22-c1') \gset
-- the charge changed the card row and consumed the code in place (HOT: no index entries).
-- (The counters also hold this session's not yet reported updates, so: all of them HOT.)
SELECT pg_stat_get_xact_tuples_updated(:cards_rel) >= 1
         AND pg_stat_get_xact_tuples_hot_updated(:cards_rel) = pg_stat_get_xact_tuples_updated(:cards_rel)
         AS card_updated_in_place,
       pg_stat_get_xact_tuples_updated(:qr_rel) >= 1
         AND pg_stat_get_xact_tuples_hot_updated(:qr_rel) = pg_stat_get_xact_tuples_updated(:qr_rel)
         AS code_consumed_in_place;
COMMIT;
SELECT tableoid AS pay_rel FROM mps.transactions WHERE id = :'pay1' \gset
SELECT :'r_final' AS paid, :'r_balance' AS balance_after, :'r_points' AS points_after, :'r_level' AS level_after;

-- ===== a first partial refund: 50.00 of 199.00 =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT r::text AS rf1_row, r.tx_id AS rf1, r.tx_no ~ '^MP[0-9A-HJKMNP-TV-Z]{26}$' AS r_tx_no_format,
       r.original_tx_id = :'pay1' AS r_original, r.card_id = :'alice_card' AS r_card,
       r.created_at BETWEEN now() AND clock_timestamp() AS r_created_in_call
FROM mps.merchant_refund_tx(p_merchant_code := 'R22SHOP', p_tx_id := :'pay1', p_refund_amount := 50.00,
                            p_idempotency_key := 'r22-r1', p_reason := 'one item returned') r \gset
-- the payment's refunded total changed in place (HOT: no indexed column changes; the
-- partitions' fillfactor 90, checked below, keeps room for it on full pages)
SELECT pg_stat_get_xact_tuples_updated(:pay_rel) >= 1
         AND pg_stat_get_xact_tuples_hot_updated(:pay_rel) = pg_stat_get_xact_tuples_updated(:pay_rel)
         AS payment_updated_in_place;
COMMIT;
SELECT :'r_tx_no_format' AS tx_no_format, :'r_original' AS original_is_pay1, :'r_card' AS to_alices_card,
       :'r_created_in_call' AS created_in_call;
-- 50 of 199 points come back off the card (floor(199 * 50 / 199) = 50); still SILVER
SELECT currency, refund_amount, refunded_total, refundable_remaining, original_status, balance_after,
       points_reversed, points_after, level_before, level_after, level_changed
FROM (SELECT (:'rf1_row'::mps.refund_result).*) r;
-- the refund row and the payment it belongs to
SELECT kind, status, amount, raw_amount, discount_amount, final_amount, points_delta, balance_after, points_after,
       original_tx_id = :'pay1' AS original, reason, idempotency_key, actor_user_id = :'op_sub' AS by_operator,
       member_id = :'alice_member' AS member, details
FROM mps.transactions WHERE id = :'rf1';
SELECT status, final_amount, refunded_amount FROM mps.transactions WHERE id = :'pay1';

-- ===== retries and conflicts =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT r IS NOT DISTINCT FROM :'rf1_row'::mps.refund_result AS same_row, r::text = :'rf1_row' AS same_text
FROM mps.merchant_refund_tx(p_merchant_code := 'R22SHOP', p_tx_id := :'pay1', p_refund_amount := 50.00,
                            p_idempotency_key := 'r22-r1', p_reason := 'one item returned') r;
-- the same key with another amount or reason: MP501; a charge's key for a refund: MP501
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 50.01, %L, %L)', 'R22SHOP', :'pay1', 'r22-r1', 'one item returned')) AS other_amount;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 50.00, %L)', 'R22SHOP', :'pay1', 'r22-r1')) AS other_reason;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay1', 'r22-c1')) AS charge_key;
-- more than is left (149.00): MP503
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 149.01, %L)', 'R22SHOP', :'pay1', 'r22-r2')) AS exceeds;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 199.00, %L)', 'R22SHOP', :'pay1', 'r22-r2')) AS the_whole_again;
COMMIT;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== a second partial refund: 100.00; 49 points are left, BRONZE again =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT refund_amount, refunded_total, refundable_remaining, original_status, balance_after,
       points_reversed, points_after, level_before, level_after, level_changed
FROM mps.merchant_refund_tx('R22SHOP', :'pay1', 100.00, 'r22-r2');
-- ===== the rest: 49.00; the payment is refunded in full, all 199 points reversed =====
SELECT refund_amount, refunded_total, refundable_remaining, original_status, balance_after,
       points_reversed, points_after, level_before, level_after, level_changed
FROM mps.merchant_refund_tx('R22SHOP', :'pay1', 49.00, 'r22-r3');
-- nothing is left: MP504, whatever the amount
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 0.01, %L)', 'R22SHOP', :'pay1', 'r22-r4')) AS fully_refunded;
-- the first refund's key still replays the first refund as it was
SELECT r IS NOT DISTINCT FROM :'rf1_row'::mps.refund_result AS first_refund_replayed, r.original_status,
       r.refundable_remaining
FROM mps.merchant_refund_tx('R22SHOP', :'pay1', 50.00, 'r22-r1', 'one item returned') r;
COMMIT;
SELECT status, final_amount, refunded_amount FROM mps.transactions WHERE id = :'pay1';
SELECT t.kind, t.amount, t.points_delta, t.balance_after, t.points_after, l.delta AS ledger_delta, l.reason
FROM mps.transactions t LEFT JOIN mps.point_ledger l ON l.tx_id = t.id
WHERE t.card_id = :'alice_card' ORDER BY t.created_at, t.balance_after;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== what is not refundable =====
SELECT id AS rf3 FROM mps.transactions WHERE idempotency_key = 'r22-r3' AND card_id = :'alice_card' \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
-- a refund: MP504
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'rf3', 'r22-n1')) AS refund_of_refund;
-- a recharge was taken by no merchant: not this merchant's, so not found (MP505)
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'recharge_tx', 'r22-n2')) AS refund_of_recharge;
-- no such transaction: MP505 (ids of any shape)
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', '01890000-0000-7000-8000-000000000000', 'r22-n3')) AS unknown_v7_id;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', '00000000-0000-0000-0000-000000000000', 'r22-n4')) AS nil_uuid;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'r22-n5')) AS max_uuid;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', '7fffffff-ffff-4fff-bfff-ffffffffffff', 'r22-n6')) AS v4_uuid;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, NULL, 1.00, %L)', 'R22SHOP', 'r22-n7')) AS no_tx_id;
COMMIT;

-- ===== a payment with a discount: at most the final amount comes back =====
SELECT final_amount, points_after, level_after FROM mt.admin_charge(:'alice_card', 'R22SHOP', 150.00, 'r22-c2');
SELECT tx_id AS pay2, raw_amount, discount_amount, final_amount, points_earned, points_after, level_after
FROM mt.admin_charge(:'alice_card', 'R22SHOP', 100.00, 'r22-c3') \gset
SELECT :'raw_amount' AS raw_amount, :'discount_amount' AS discount, :'final_amount' AS final_amount,
       :'points_earned' AS points_earned, :'points_after' AS points_after, :'level_after' AS level_after;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 95.01, %L)', 'R22SHOP', :'pay2', 'r22-d1')) AS more_than_paid;
-- the whole 95.00: its 95 points go, GOLD falls back to SILVER
SELECT refund_amount, refundable_remaining, original_status, points_reversed, points_after, level_before,
       level_after, level_changed
FROM mps.merchant_refund_tx('R22SHOP', :'pay2', 95.00, 'r22-d2');
COMMIT;

-- ===== proportional reversal in thirds: the cumulative floor reverses exactly what was earned =====
SELECT tx_id AS pay3, final_amount, points_earned FROM mt.admin_charge(:'bob_card', 'R22SHOP', 10.00, 'r22-c4') \gset
SELECT :'final_amount' AS paid, :'points_earned' AS points_earned;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT n, r.refund_amount, r.refunded_total, r.points_reversed, r.points_after, r.original_status
FROM (VALUES (1, 3.33), (2, 3.33), (3, 3.34)) v(n, amount),
     LATERAL mps.merchant_refund_tx('R22SHOP', :'pay3', v.amount, 'r22-t' || v.n) r
ORDER BY n;
COMMIT;

-- ===== who may refund =====
SELECT tx_id AS pay4 FROM mt.admin_charge(:'bob_card', 'R22SHOP', 20.00, 'r22-c5') \gset
-- the other merchant's operator: not found (MP505) at their merchant, 42501 at ours
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op2', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22OTHER', :'pay4', 'r22-w1')) AS other_merchants_tx;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay4', 'r22-w2')) AS not_my_merchant;
-- the member who paid is not a merchant user
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay4', 'r22-w3')) AS member_refunds;
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) AS claims_set \gset
SELECT left(mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay4', 'r22-w4')), 5) AS anon_refunds;
COMMIT;
-- bad input: MP001 amounts, MP506 keys, MP004 reason, MP401 merchant
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 0, %L)', 'R22SHOP', :'pay4', 'r22-i1')) AS zero;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, -1.00, %L)', 'R22SHOP', :'pay4', 'r22-i2')) AS negative;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.001, %L)', 'R22SHOP', :'pay4', 'r22-i3')) AS three_decimals;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, NULL, %L)', 'R22SHOP', :'pay4', 'r22-i4')) AS null_amount;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, %L::numeric, %L)', 'R22SHOP', :'pay4', 'NaN', 'r22-i5')) AS nan;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00)', 'R22SHOP', :'pay4')) AS no_key;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22SHOP', :'pay4', '')) AS empty_key;
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L, %L)', 'R22SHOP', :'pay4', 'r22-i6', repeat('x', 501))) AS reason_501_bytes;
-- unknown merchant: to an operator the same refusal as another merchant's (42501)
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'NOPE22', :'pay4', 'r22-i7')) AS unknown_merchant;
COMMIT;
SELECT mt.card_state(:'bob_card') AS bob;

-- ===== the card's state: a frozen card takes its refund, a closed one does not (MP203) =====
UPDATE mps.cards SET status = 'frozen' WHERE id = :'bob_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT refund_amount, balance_after, original_status FROM mps.merchant_refund_tx('R22SHOP', :'pay4', 5.00, 'r22-f1');
COMMIT;
UPDATE mps.cards SET status = 'closed' WHERE id = :'bob_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 5.00, %L)', 'R22SHOP', :'pay4', 'r22-f2')) AS closed_card;
COMMIT;
UPDATE mps.cards SET status = 'active' WHERE id = :'bob_card';
-- a suspended merchant refunds no more: MP402
\o /dev/null
SELECT mps.update_merchant('R22OTHER', p_status := 'suspended');
\o
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op2', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_refund_tx(%L, %L, 1.00, %L)', 'R22OTHER', :'pay4', 'r22-f3')) AS suspended_merchant;
COMMIT;
SELECT mt.card_state(:'bob_card') AS bob;

-- ===== audit and invariants =====
SELECT after->>'amount' AS amount_minor, after->>'refunded_total' AS refunded_total_minor,
       after->>'points_delta' AS points_delta, after->>'reason' AS reason, idempotency_key,
       actor_user_id = :'op_sub' AS by_operator, after->>'original_tx_id' = :'pay1' AS of_pay1
FROM audit.event_log WHERE action = 'tx.refund' AND after->>'card_id' = :'alice_card' ORDER BY id;
SELECT action, count(*) AS events FROM audit.event_log
WHERE after->>'card_id' IN (:'alice_card', :'bob_card') AND action LIKE 'tx.%'
GROUP BY action ORDER BY action;
SELECT * FROM mt.invariants(:'t0');
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o

-- ===== storage: room on each page for the one update rows of these tables get =====
SELECT c.relname, c.reloptions FROM pg_class c
WHERE c.oid IN ('mps.cards'::regclass, 'mps.card_qr_codes'::regclass, 'mps.transactions_default'::regclass)
ORDER BY c.relname;
-- every transactions partition, including those ensure_partitions makes, keeps 10 % free
SELECT count(*) >= 2 AS has_partitions,
       count(*) FILTER (WHERE NOT coalesce(c.reloptions @> '{fillfactor=90}', false)) AS without_fillfactor_90
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'mps.transactions'::regclass;

-- ===== payments in other months: the refund finds each one's partition =====
-- Six payments moved (as the owner) to five other months: four with their own
-- partitions, one in the default partition; one left in this month. More
-- partitions than the plans a backend keeps per statement (4), so plans are
-- made, dropped and made again; a partition renamed after its plan was made
-- is found again under its new name. All rolled back.
BEGIN;
SELECT balance_after FROM mps.recharge_card(:'alice_card', 600, 'r22-m-topup');
CREATE TEMP TABLE r22_months (n int PRIMARY KEY, at timestamptz, pay uuid);
INSERT INTO r22_months VALUES (1, '2020-01-15 10:00+00', NULL), (2, '2020-02-15 10:00+00', NULL),
  (3, '2020-03-15 10:00+00', NULL), (4, '2020-04-15 10:00+00', NULL),
  (5, '2020-05-15 10:00+00', NULL), (6, NULL, NULL);
CREATE TABLE mps.transactions_2020_01 PARTITION OF mps.transactions
  FOR VALUES FROM ('2020-01-01 00:00+00') TO ('2020-02-01 00:00+00') WITH (fillfactor = 90);
CREATE TABLE mps.transactions_2020_02 PARTITION OF mps.transactions
  FOR VALUES FROM ('2020-02-01 00:00+00') TO ('2020-03-01 00:00+00') WITH (fillfactor = 90);
CREATE TABLE mps.transactions_2020_03 PARTITION OF mps.transactions
  FOR VALUES FROM ('2020-03-01 00:00+00') TO ('2020-04-01 00:00+00') WITH (fillfactor = 90);
CREATE TABLE mps.transactions_2020_04 PARTITION OF mps.transactions
  FOR VALUES FROM ('2020-04-01 00:00+00') TO ('2020-05-01 00:00+00') WITH (fillfactor = 90);
UPDATE r22_months m SET pay = (mt.admin_charge(:'alice_card', 'R22SHOP', 10.00, 'r22-m-' || m.n)).tx_id;
-- a moved payment keeps its id's random part; the id's time part is its new created_at
UPDATE mps.transactions t
SET created_at = m.at,
    id = encode(overlay(uuid_send(t.id) PLACING substring(int8send((extract(epoch FROM m.at) * 1000)::bigint) FROM 3)
                        FROM 1 FOR 6), 'hex')::uuid
FROM r22_months m WHERE t.id = m.pay AND m.at IS NOT NULL;
UPDATE r22_months m SET pay = t.id
FROM mps.transactions t WHERE t.idempotency_key = 'r22-m-' || m.n AND t.card_id = :'alice_card';
SELECT m.n, CASE WHEN m.at IS NULL THEN '(this month''s)' ELSE t.tableoid::regclass::text END AS partition
FROM r22_months m JOIN mps.transactions t ON t.id = m.pay ORDER BY m.n;
-- two rounds of partial refunds over all six: each payment's own row is updated
SELECT count(*) AS refunds FROM r22_months m, generate_series(1, 2) r,
  LATERAL mps.merchant_refund_tx('R22SHOP', m.pay, 1.00, 'r22-mr-' || r || '-' || m.n);
-- February's plans are made (or kept) by a refund, then its partition is renamed
SELECT original_status, refundable_remaining FROM mps.merchant_refund_tx('R22SHOP', (SELECT pay FROM r22_months WHERE n = 2), 0.50, 'r22-mr-3-2');
ALTER TABLE mps.transactions_2020_02 RENAME TO transactions_2020_02_renamed;
SELECT original_status, refundable_remaining FROM mps.merchant_refund_tx('R22SHOP', (SELECT pay FROM r22_months WHERE n = 2), 7.50, 'r22-mr-4-2');
SELECT m.n, CASE WHEN m.at IS NULL THEN '(this month''s)' ELSE t.tableoid::regclass::text END AS partition,
       t.refunded_amount, t.status,
       (SELECT count(*) FROM mps.transactions r WHERE r.card_id = t.card_id AND r.original_tx_id = t.id) AS refund_rows
FROM r22_months m JOIN mps.transactions t ON t.id = m.pay ORDER BY m.n;
-- a replay of a refund of a moved payment still answers from its partition
SELECT refunded_total, original_status FROM mps.merchant_refund_tx('R22SHOP', (SELECT pay FROM r22_months WHERE n = 1), 1.00, 'r22-mr-1-1');
ROLLBACK;
