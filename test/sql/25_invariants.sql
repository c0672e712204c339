-- 25_invariants: several hundred mixed movements on a few cards (recharges,
-- charges, partial and full refunds, idempotent replays, reused codes, key
-- conflicts), each in its own transaction, picked by fixed arithmetic so the
-- run is the same every time; then the ledger invariants over the whole
-- database.
\i test/fixtures/money_prelude.sql
-- ===== the cards and merchants =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'I25A', p_name := 'Invariant Shop A');
SELECT mps.create_merchant(p_code := 'I25B', p_name := 'Invariant Shop B');
SELECT mps.create_merchant(p_code := 'I25J', p_name := 'Invariant Shop Yen', p_currency := 'JPY');
\o
CREATE TEMP TABLE i25_cards (idx int PRIMARY KEY, card_id uuid NOT NULL, currency text NOT NULL, exponent int NOT NULL);
INSERT INTO i25_cards
SELECT g, m.card_id, m.currency, CASE m.currency WHEN 'JPY' THEN 0 ELSE 2 END
FROM generate_series(1, 7) g,
     LATERAL mps.create_member_profile(p_name := 'Churn ' || g,
                                       p_default_card_type := CASE WHEN g = 6 THEN 'prepaid' ELSE 'standard' END,
                                       p_currency := CASE WHEN g = 7 THEN 'JPY' ELSE 'CNY' END) m;
SELECT idx, currency, (SELECT card_type FROM mps.cards WHERE id = card_id) AS card_type FROM i25_cards ORDER BY idx;
-- a starting balance on each
SELECT count(*) AS recharges FROM i25_cards c,
       LATERAL mps.recharge_card(c.card_id, CASE c.currency WHEN 'JPY' THEN 20000 ELSE 200 END, 'i25-start-' || c.idx) r;

-- ===== one step: decided by its number alone; outcome 'ok' or the SQLSTATE =====
CREATE TEMP TABLE i25_log (
  step int PRIMARY KEY, op text NOT NULL, idx int, merchant text, amount numeric, key text, code text,
  orig uuid, tx_id uuid, outcome text NOT NULL);
CREATE FUNCTION pg_temp.i25_step(i int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  k int := (i * 11 + 3) % 20;
  c record;
  p record;
  v_op text;
  v_merchant text;
  v_amount numeric;
  v_key text := 'i25-' || i;
  v_code text;
  v_orig uuid;
  v_tx uuid;
  v_n int;
  v_outcome text;
  v_minor bigint;
BEGIN
  SELECT * INTO c FROM i25_cards WHERE idx = 1 + (i * 3 + i / 5) % 7;
  v_merchant := CASE WHEN c.currency = 'JPY' THEN 'I25J' WHEN i % 2 = 0 THEN 'I25A' ELSE 'I25B' END;
  BEGIN
    IF k < 4 THEN
      v_op := 'recharge';
      v_amount := ((i * 7919) % 40000 + 100) / CASE c.exponent WHEN 0 THEN 1 ELSE 100.0 END;
      SELECT r.tx_id INTO v_tx FROM mps.recharge_card(c.card_id, v_amount, v_key) r;
    ELSIF k < 12 THEN
      v_op := 'charge';
      v_amount := ((i * 104729) % 25000 + 1) / CASE c.exponent WHEN 0 THEN 1 ELSE 100.0 END;
      SELECT q.qr_plain INTO v_code FROM mps.rotate_card_qr(c.card_id) q;
      SELECT r.tx_id INTO v_tx FROM mps.merchant_charge_by_qr(v_merchant, v_code, v_amount, v_key) r;
    ELSIF k < 16 THEN
      v_op := 'refund';
      SELECT count(*) INTO v_n FROM i25_log l JOIN mps.transactions t ON t.id = l.tx_id
       WHERE l.op = 'charge' AND l.outcome = 'ok' AND t.refunded_amount < t.final_amount;
      IF v_n = 0 THEN
        v_outcome := 'nothing to refund';
      ELSE
        SELECT l.*, t.final_amount - t.refunded_amount AS remaining, cur.exponent INTO p
        FROM i25_log l JOIN mps.transactions t ON t.id = l.tx_id JOIN mps.currencies cur ON cur.code = t.currency
        WHERE l.op = 'charge' AND l.outcome = 'ok' AND t.refunded_amount < t.final_amount
        ORDER BY l.step OFFSET i % v_n LIMIT 1;
        v_minor := CASE i % 4 WHEN 0 THEN p.remaining WHEN 1 THEN p.remaining + 1
                              ELSE greatest(1, p.remaining * (i % 5 + 1) / 7) END;
        v_amount := v_minor / CASE p.exponent WHEN 0 THEN 1 ELSE 100.0 END;
        v_merchant := p.merchant;
        v_orig := p.tx_id;
        c.idx := p.idx;
        SELECT r.tx_id INTO v_tx FROM mps.merchant_refund_tx(v_merchant, v_orig, v_amount, v_key) r;
      END IF;
    ELSIF k < 18 THEN
      -- the same call again: the same movement comes back
      SELECT count(*) INTO v_n FROM i25_log l WHERE l.outcome = 'ok' AND l.op IN ('recharge', 'charge', 'refund');
      SELECT * INTO p FROM i25_log l WHERE l.outcome = 'ok' AND l.op IN ('recharge', 'charge', 'refund')
       ORDER BY l.step OFFSET i % v_n LIMIT 1;
      v_op := 'replay ' || p.op;
      IF p.op = 'recharge' THEN
        SELECT r.tx_id INTO v_tx FROM i25_cards x, mps.recharge_card(x.card_id, p.amount, p.key) r WHERE x.idx = p.idx;
      ELSIF p.op = 'charge' THEN
        SELECT r.tx_id INTO v_tx FROM mps.merchant_charge_by_qr(p.merchant, p.code, p.amount, p.key) r;
      ELSE
        SELECT r.tx_id INTO v_tx FROM mps.merchant_refund_tx(p.merchant, p.orig, p.amount, p.key) r;
      END IF;
      v_outcome := CASE WHEN v_tx = p.tx_id THEN 'same movement' ELSE 'A DIFFERENT MOVEMENT' END;
      v_tx := NULL;
    ELSIF k = 18 THEN
      -- a used code, with a new key
      v_op := 'reuse code';
      SELECT count(*) INTO v_n FROM i25_log l WHERE l.op = 'charge' AND l.outcome = 'ok';
      SELECT * INTO p FROM i25_log l WHERE l.op = 'charge' AND l.outcome = 'ok' ORDER BY l.step OFFSET i % v_n LIMIT 1;
      SELECT r.tx_id INTO v_tx FROM mps.merchant_charge_by_qr(p.merchant, p.code, p.amount, v_key) r;
    ELSE
      -- a used key with another amount
      v_op := 'key conflict';
      SELECT count(*) INTO v_n FROM i25_log l WHERE l.outcome = 'ok' AND l.op IN ('recharge', 'charge');
      SELECT * INTO p FROM i25_log l WHERE l.outcome = 'ok' AND l.op IN ('recharge', 'charge')
       ORDER BY l.step OFFSET i % v_n LIMIT 1;
      IF p.op = 'recharge' THEN
        SELECT r.tx_id INTO v_tx FROM i25_cards x, mps.recharge_card(x.card_id, p.amount + 1, p.key) r WHERE x.idx = p.idx;
      ELSE
        SELECT r.tx_id INTO v_tx FROM mps.merchant_charge_by_qr(p.merchant, p.code, p.amount + 1, p.key) r;
      END IF;
    END IF;
    v_outcome := coalesce(v_outcome, 'ok');
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_outcome = RETURNED_SQLSTATE;
    v_tx := NULL;
  END;
  INSERT INTO i25_log VALUES (i, v_op, c.idx, v_merchant, v_amount, v_key, v_code, v_orig, v_tx, v_outcome);
END
$$;
CREATE PROCEDURE pg_temp.i25_churn(p_steps int)
LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. p_steps LOOP
    PERFORM pg_temp.i25_step(i);
    COMMIT;
  END LOOP;
END
$$;
CALL pg_temp.i25_churn(400);

-- ===== what happened =====
-- (MP206: not enough balance; MP503: a refund one unit above what is left;
--  MP304: a used code; MP501: a used key with another amount)
SELECT op, outcome, count(*) AS steps FROM i25_log GROUP BY op, outcome ORDER BY op, outcome;
SELECT c.idx, c.currency, mt.card_state(c.card_id) AS state FROM i25_cards c ORDER BY c.idx;
SELECT m.code, count(*) FILTER (WHERE t.kind = 'payment') AS payments, count(*) FILTER (WHERE t.kind = 'refund') AS refunds,
       sum(t.final_amount) FILTER (WHERE t.kind = 'payment') - coalesce(sum(t.final_amount) FILTER (WHERE t.kind = 'refund'), 0) AS net_minor
FROM mps.transactions t JOIN mps.merchants m ON m.id = t.merchant_id
WHERE m.code IN ('I25A', 'I25B', 'I25J') GROUP BY m.code ORDER BY m.code;
SELECT t.status, count(*) AS payments FROM mps.transactions t
WHERE t.card_id IN (SELECT card_id FROM i25_cards) AND t.kind = 'payment' GROUP BY t.status ORDER BY t.status;

-- ===== the invariants, over every card in the database =====
SELECT count(*) AS cards_whose_balance_is_not_the_sum_of_their_transactions FROM mps.cards c
WHERE balance <> (SELECT coalesce(sum(amount), 0) FROM mps.transactions t WHERE t.card_id = c.id);
SELECT count(*) AS cards_whose_points_are_not_the_sum_of_their_ledger FROM mps.cards c
WHERE points <> (SELECT coalesce(sum(delta), 0) FROM mps.point_ledger l WHERE l.card_id = c.id);
SELECT count(*) AS payments_refunded_beyond_their_final_amount FROM mps.transactions
WHERE kind = 'payment' AND refunded_amount > final_amount;
SELECT count(*) AS refunds_of_something_else FROM mps.transactions r
WHERE kind = 'refund' AND NOT EXISTS (SELECT 1 FROM mps.transactions p WHERE p.id = r.original_tx_id AND p.kind = 'payment');
SELECT * FROM mt.invariants('-infinity');
-- mps.verify_ledger() agrees on the money checks
SELECT check_name, count(*) AS violations FROM mps.verify_ledger()
WHERE check_name IN ('balance_equals_transactions', 'points_equal_ledger', 'refunds_within_payment', 'refund_has_payment')
GROUP BY check_name;
-- the churned cards' movements chain: each balance_after / points_after is the running sum
SELECT count(*) AS broken_balance_chain FROM (
  SELECT t.balance_after, sum(t.amount) OVER (PARTITION BY t.card_id ORDER BY t.created_at, t.id) AS running
  FROM mps.transactions t WHERE t.card_id IN (SELECT card_id FROM i25_cards)) s
WHERE balance_after <> running;
SELECT count(*) AS broken_points_chain FROM (
  SELECT t.points_after, sum(t.points_delta) OVER (PARTITION BY t.card_id ORDER BY t.created_at, t.id) AS running
  FROM mps.transactions t WHERE t.card_id IN (SELECT card_id FROM i25_cards)) s
WHERE points_after <> running;
-- one movement per key and scope (the merchant for charges and refunds, the card for recharges)
SELECT count(*) AS keys_with_two_movements FROM (
  SELECT coalesce(t.merchant_id, t.card_id), t.idempotency_key FROM mps.transactions t
  WHERE t.card_id IN (SELECT card_id FROM i25_cards)
  GROUP BY 1, 2 HAVING count(*) > 1) s;
-- every successful step left exactly its movement, every failed one none
SELECT count(*) AS ok_steps_without_their_movement FROM i25_log l
WHERE l.outcome = 'ok' AND l.op IN ('recharge', 'charge', 'refund')
  AND NOT EXISTS (SELECT 1 FROM mps.transactions t WHERE t.id = l.tx_id AND t.idempotency_key = l.key);
SELECT count(*) AS failed_steps_with_a_movement FROM i25_log l
WHERE l.outcome <> 'ok' AND EXISTS (SELECT 1 FROM mps.transactions t
                                    WHERE t.idempotency_key = l.key AND t.card_id IN (SELECT card_id FROM i25_cards));
-- every movement of the churned cards is audited once, with its kind
SELECT t.kind, count(*) AS movements, count(e.id) AS audit_events FROM mps.transactions t
LEFT JOIN audit.event_log e ON e.entity_type = 'transaction' AND e.entity_id = t.id::text
  AND e.action = CASE t.kind WHEN 'payment' THEN 'tx.charge' WHEN 'refund' THEN 'tx.refund' ELSE 'tx.recharge' END
WHERE t.card_id IN (SELECT card_id FROM i25_cards) GROUP BY t.kind ORDER BY t.kind;
SELECT count(*) AS codes_issued, count(*) FILTER (WHERE used_at IS NOT NULL) AS codes_used,
       (SELECT count(*) FROM audit.event_log e WHERE e.action = 'qr.rotate'
          AND e.entity_id IN (SELECT card_id::text FROM i25_cards)) AS rotate_events
FROM mps.card_qr_codes WHERE card_id IN (SELECT card_id FROM i25_cards);
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o

-- ===== the row checks: each rule of a table's one CHECK still rejects a row =====
-- Direct writes as the owner (callers cannot write at all), each breaking one
-- rule only, so a rule left out of the CHECK shows up as 'accepted'. Not
-- listed: raw_amount >= 0 and final_amount >= 0, which follow from the others
-- (raw = final + discount; 0 <= refunded <= final). All rolled back.
BEGIN;
CREATE FUNCTION pg_temp.i25_rejected_by(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE v_name text;
BEGIN
  EXECUTE p_sql;
  RETURN 'accepted';
EXCEPTION WHEN check_violation THEN
  GET STACKED DIAGNOSTICS v_name = CONSTRAINT_NAME;
  RETURN v_name;
END $$;
CREATE TEMP TABLE i25_rows AS
SELECT (SELECT card_id FROM i25_cards WHERE idx = 1) AS std,      -- standard card, with a level
       (SELECT card_id FROM i25_cards WHERE idx = 6) AS pre,      -- prepaid card
       (SELECT t.id FROM mps.transactions t JOIN i25_cards c ON c.card_id = t.card_id
        WHERE t.kind = 'payment' AND t.final_amount > 0 AND t.refunded_amount = 0
        ORDER BY t.created_at, t.id LIMIT 1) AS pay,
       (SELECT l.id FROM mps.point_ledger l JOIN i25_cards c ON c.card_id = l.card_id
        ORDER BY l.created_at, l.id LIMIT 1) AS led,
       (SELECT q.id FROM mps.card_qr_codes q JOIN i25_cards c ON c.card_id = q.card_id
        ORDER BY q.id LIMIT 1) AS code;
SELECT r.rule, pg_temp.i25_rejected_by(format(r.stmt, x.std, x.pre, x.pay, x.led, x.code)) AS rejected_by
FROM i25_rows x, (VALUES
  (1, 'card number of 16 digits', $q$UPDATE mps.cards SET card_no = '123' WHERE id = %1$L$q$),
  (2, 'balance >= 0', $q$UPDATE mps.cards SET balance = -1 WHERE id = %1$L$q$),
  (3, 'points >= 0', $q$UPDATE mps.cards SET points = -1 WHERE id = %1$L$q$),
  (4, 'fixed discount at most 10000 bp', $q$UPDATE mps.cards SET card_type = 'corporate', fixed_discount_bp = 10001 WHERE id = %2$L$q$),
  (5, 'binding password is bcrypt', $q$UPDATE mps.cards SET binding_password_hash = 'plain' WHERE id = %1$L$q$),
  (6, 'face value > 0', $q$UPDATE mps.cards SET face_value = 0 WHERE id = %1$L$q$),
  (7, 'fixed discount only on corporate', $q$UPDATE mps.cards SET fixed_discount_bp = 500 WHERE id = %1$L$q$),
  (8, 'level only on standard', $q$UPDATE mps.cards SET level_id = (SELECT min(id) FROM mps.membership_levels) WHERE id = %2$L$q$),
  (9, 'voucher has a face value', $q$UPDATE mps.cards SET card_type = 'voucher' WHERE id = %2$L$q$),
  (10, 'discount >= 0', $q$UPDATE mps.transactions SET discount_amount = -1, raw_amount = final_amount - 1 WHERE id = %3$L$q$),
  (11, 'refunded >= 0', $q$UPDATE mps.transactions SET refunded_amount = -1 WHERE id = %3$L$q$),
  (12, 'balance after >= 0', $q$UPDATE mps.transactions SET balance_after = -1 WHERE id = %3$L$q$),
  (13, 'points after >= 0', $q$UPDATE mps.transactions SET points_after = -1 WHERE id = %3$L$q$),
  (14, 'raw - discount = final', $q$UPDATE mps.transactions SET raw_amount = raw_amount + 1 WHERE id = %3$L$q$),
  (15, 'refunded <= final', $q$UPDATE mps.transactions SET refunded_amount = final_amount + 1 WHERE id = %3$L$q$),
  (16, 'payment takes its final amount', $q$UPDATE mps.transactions SET amount = amount - 1 WHERE id = %3$L$q$),
  (17, 'pass purchase takes its final amount', $q$UPDATE mps.transactions SET kind = 'pass_purchase', amount = final_amount WHERE id = %3$L$q$),
  (18, 'refund gives its final amount', $q$UPDATE mps.transactions SET kind = 'refund', original_tx_id = id WHERE id = %3$L$q$),
  (19, 'refund names its payment', $q$UPDATE mps.transactions SET kind = 'refund', amount = final_amount WHERE id = %3$L$q$),
  (20, 'recharge gives its final amount', $q$UPDATE mps.transactions SET kind = 'recharge' WHERE id = %3$L$q$),
  (21, 'ledger delta is not 0', $q$UPDATE mps.point_ledger SET delta = 0 WHERE id = %4$s$q$),
  (22, 'ledger points after >= 0', $q$UPDATE mps.point_ledger SET points_after = -1 WHERE id = %4$s$q$),
  (23, 'code secret is bcrypt', $q$UPDATE mps.card_qr_codes SET secret_hash = 'plain' WHERE id = %5$s$q$),
  (24, 'code expires after issue', $q$UPDATE mps.card_qr_codes SET expires_at = issued_at WHERE id = %5$s$q$)
) r(n, rule, stmt)
ORDER BY r.n;
-- and a write that keeps every rule goes through
SELECT pg_temp.i25_rejected_by(format($q$UPDATE mps.transactions SET refunded_amount = final_amount WHERE id = %L$q$, pay)) AS all_rules_kept
FROM i25_rows;
ROLLBACK;
