-- 24_levels_points: points earned on what was paid (earn_rate_bp, floored),
-- level boundaries (max_points stays, max+1 moves up; min-1 moves down), the
-- level's discount from the next charge on, reversal on refund, cards without
-- levels (prepaid: none; corporate: a fixed discount), and a ladder change.
\i test/fixtures/money_prelude.sql
\set op_sub '24000000-0000-4000-8000-0000000000e1'
\set c_op   '{"sub":"24000000-0000-4000-8000-0000000000e1","role":"authenticated"}'

-- ===== setup, as the platform admin =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'L24SHOP', p_name := 'Level Shop');
SELECT mps.assign_merchant_user('L24SHOP', :'op_sub');
\o
SELECT member_id AS lee_member, card_id AS lee_card, level_code FROM mps.create_member_profile(p_name := 'Lee') \gset
SELECT :'level_code' AS starting_level;
SELECT card_id AS pp_card FROM mps.create_member_profile(p_name := 'Pat', p_default_card_type := 'prepaid') \gset
SELECT balance_after FROM mps.recharge_card(:'lee_card', 5000, 'l24-topup-lee');
SELECT balance_after FROM mps.recharge_card(:'pp_card', 500, 'l24-topup-pp');

-- ===== up the ladder, one charge at a time =====
-- BRONZE 0..99 (0%, 1 point per 1.00), SILVER 100..199 (5%, 1.0), GOLD 200..999 (10%, 1.2),
-- PLATINUM 1000.. (15%, 1.5). Each charge is priced at the level the card has before it.
SELECT a.n, a.why, c.level_before, a.raw AS raw_amount, c.discount_amount, c.final_amount, c.points_earned,
       c.points_after, c.level_after, c.level_changed
FROM (VALUES
  (1, 'BRONZE up to its max_points (99): stays', 99.00),
  (2, '0.99 earns floor(0.99) = 0 points', 0.99),
  (3, 'max_points + 1 = 100: SILVER', 1.00),
  (4, 'SILVER 5%: 104.21 - 5.21 = 99.00 -> 199, its max', 104.21),
  (5, '1.06 - 0.05 = 1.01 -> 200: GOLD', 1.06),
  (6, 'GOLD 10% from now on; 9.00 * 1.2 = 10.8 -> 10', 10.00),
  (7, '0.81 * 1.2 = 0.972 -> 0', 0.90),
  (8, '8.32 * 1.2 = 9.984 -> 9', 9.25),
  (9, '650.00 * 1.2 = 780 -> 999, GOLD max', 722.22),
  (10, '0.90 * 1.2 = 1.08 -> 1000: PLATINUM', 1.00),
  (11, 'PLATINUM 15%, 1.5: 85.00 -> 127.5 -> 127', 100.00),
  (12, 'open-ended top level', 2000.00)
) a(n, why, raw),
LATERAL mt.admin_charge(:'lee_card', 'L24SHOP', a.raw, 'l24-up-' || a.n) c
ORDER BY a.n;
-- the ledger: one row per earning, each with the running total
SELECT l.delta, l.points_after, l.reason, t.points_delta = l.delta AS matches_tx
FROM mps.point_ledger l JOIN mps.transactions t ON t.id = l.tx_id
WHERE l.card_id = :'lee_card' ORDER BY l.points_after;
-- payments with no point earned leave no ledger row
SELECT count(*) FILTER (WHERE points_delta = 0) AS payments_without_points,
       count(*) FILTER (WHERE points_delta = 0 AND EXISTS (SELECT 1 FROM mps.point_ledger l WHERE l.tx_id = t.id)) AS with_ledger_row
FROM mps.transactions t WHERE card_id = :'lee_card' AND kind = 'payment';
-- the levels stored on each movement
SELECT t.idempotency_key, lb.code AS level_before, la.code AS level_after
FROM mps.transactions t
LEFT JOIN mps.membership_levels lb ON lb.id = t.level_before
LEFT JOIN mps.membership_levels la ON la.id = t.level_after
WHERE t.card_id = :'lee_card' AND t.idempotency_key IN ('l24-up-3', 'l24-up-5', 'l24-up-10')
ORDER BY t.idempotency_key;
SELECT mt.card_state(:'lee_card') AS lee;

-- ===== back down by refunds (as the merchant's operator) =====
SELECT id AS up12 FROM mps.transactions WHERE card_id = :'lee_card' AND idempotency_key = 'l24-up-12' \gset
SELECT id AS up11 FROM mps.transactions WHERE card_id = :'lee_card' AND idempotency_key = 'l24-up-11' \gset
SELECT id AS up10 FROM mps.transactions WHERE card_id = :'lee_card' AND idempotency_key = 'l24-up-10' \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
-- 2000.00 at PLATINUM paid 1700.00 and earned 2550: all of it goes
SELECT refund_amount, points_reversed, points_after, level_before, level_after, level_changed
FROM mps.merchant_refund_tx('L24SHOP', :'up12', 1700.00, 'l24-down-1');
-- 85.00 earned 127: down to 1000, PLATINUM's min_points: stays
SELECT refund_amount, points_reversed, points_after, level_before, level_after, level_changed
FROM mps.merchant_refund_tx('L24SHOP', :'up11', 85.00, 'l24-down-2');
-- 0.90 earned 1: 999 = min_points - 1: GOLD again
SELECT refund_amount, points_reversed, points_after, level_before, level_after, level_changed
FROM mps.merchant_refund_tx('L24SHOP', :'up10', 0.90, 'l24-down-3');
COMMIT;
-- and GOLD's 10% applies to the next charge again
SELECT level_before, raw_amount, discount_amount, final_amount, points_earned, points_after, level_after
FROM mt.admin_charge(:'lee_card', 'L24SHOP', 0.50, 'l24-again-1');
SELECT mt.card_state(:'lee_card') AS lee;

-- ===== cards without a level =====
-- prepaid: no discount, no points, no level
SELECT raw_amount, discount_amount, final_amount, points_earned, points_after, level_before, level_after, level_changed
FROM mt.admin_charge(:'pp_card', 'L24SHOP', 100.00, 'l24-pp-1');
-- corporate: its fixed discount (10%, half-up), no points, no level
INSERT INTO mps.cards (card_no, card_type, currency, enterprise_name, fixed_discount_bp)
VALUES ('7240000000000001', 'corporate', 'CNY', 'Acme Ltd', 1000) RETURNING id AS corp_card \gset
INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (:'corp_card', :'lee_member', 'owner');
SELECT balance_after FROM mps.recharge_card(:'corp_card', 1000, 'l24-topup-corp');
SELECT a.raw AS raw_amount, c.discount_amount, c.final_amount, c.points_earned, c.level_after, c.level_changed
FROM (VALUES (1, 100.00), (2, 0.05), (3, 33.35)) a(n, raw),
     LATERAL mt.admin_charge(:'corp_card', 'L24SHOP', a.raw, 'l24-corp-' || a.n) c
ORDER BY a.n;
SELECT count(*) AS corporate_ledger_rows FROM mps.point_ledger WHERE card_id = :'corp_card';

-- ===== a new ladder applies from the next charge on =====
-- (the default ladder: BRONZE 0..999 with 0%, SILVER from 1000 with 3%)
SELECT code, min_points, max_points, discount_bp, earn_rate_bp FROM mps.set_membership_levels(:'default_ladder');
SELECT l.code AS lee_level_now FROM mps.cards c JOIN mps.membership_levels l ON l.id = c.level_id WHERE c.id = :'lee_card';
SELECT level_before, raw_amount, discount_amount, final_amount, points_earned, points_after, level_after, level_changed
FROM mt.admin_charge(:'lee_card', 'L24SHOP', 10.00, 'l24-new-ladder-1');
SELECT level_before, raw_amount, discount_amount, final_amount, points_earned, points_after, level_after
FROM mt.admin_charge(:'lee_card', 'L24SHOP', 10.00, 'l24-new-ladder-2');

-- ===== audit and invariants =====
SELECT after->>'level_after' AS level_after, count(*) AS charges FROM audit.event_log
WHERE action = 'tx.charge' AND after->>'card_id' = :'lee_card' GROUP BY 1 ORDER BY 1;
SELECT * FROM mt.invariants(:'t0');
