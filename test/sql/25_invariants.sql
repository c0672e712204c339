-- 25_invariants: several hundred mixed movements on a few cards (recharges,
-- charges, partial and full refunds, idempotent replays, reused codes, key
-- conflicts), each in its own transaction, picked by fixed arithmetic so the
-- run is the same every time; then the ledger invariants over the whole
-- database.
-- ---- prelude (the same in every 2x money test file) -------------------------
\o /dev/null
SELECT mps.grant_role_privileges('mps_member_app', 'authenticated');
SELECT mps.grant_role_privileges('mps_merchant_api', 'authenticated');
SELECT mps.grant_role_privileges('mps_admin', 'service_role');
\o
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS mt;
GRANT USAGE ON SCHEMA mt TO PUBLIC;
-- Masks what differs between runs: uuids and timestamps.
CREATE OR REPLACE FUNCTION mt.mask(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(regexp_replace(p,
    '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
    '[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+([+-][0-9]{2}(:?[0-9]{2})?)?', '<ts>', 'g')
$$;
-- try(sql): runs it as the current role. 'ok' if it succeeds (its effects stay),
-- else 'SQLSTATE: message | detail | hint' with uuids and timestamps masked.
CREATE OR REPLACE FUNCTION mt.try(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                          v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
  RETURN mt.mask(v_state || ': ' || v_msg || ' | ' || coalesce(v_detail, '') || ' | ' || coalesce(v_hint, ''));
END
$$;
-- The platform admin charges a card with a fresh code of its owner.
CREATE OR REPLACE FUNCTION mt.admin_charge(p_card uuid, p_merchant text, p_amount numeric, p_key text)
RETURNS mps.charge_result
LANGUAGE plpgsql AS $$
DECLARE
  v_code text;
BEGIN
  SELECT q.qr_plain INTO v_code FROM mps.rotate_card_qr(p_card) q;
  RETURN mps.merchant_charge_by_qr(p_merchant, v_code, p_amount, p_key);
END
$$;
-- One card's money state, to show that a failed call changed nothing (live codes:
-- not used, not revoked, not expired).
CREATE OR REPLACE FUNCTION mt.card_state(p_card uuid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('%s balance=%s points=%s level=%s txs=%s ledger=%s live_codes=%s',
    c.status, mps_internal.to_major(c.balance, cur.exponent), c.points, coalesce(l.code, '-'),
    (SELECT count(*) FROM mps.transactions t WHERE t.card_id = c.id),
    (SELECT count(*) FROM mps.point_ledger p WHERE p.card_id = c.id),
    (SELECT count(*) FROM mps.card_qr_codes q
      WHERE q.card_id = c.id AND q.used_at IS NULL AND q.revoked_at IS NULL AND q.expires_at > now()))
  FROM mps.cards c JOIN mps.currencies cur ON cur.code = c.currency
  LEFT JOIN mps.membership_levels l ON l.id = c.level_id
  WHERE c.id = p_card
$$;
-- The money invariants over the cards created since p_since, one row per check,
-- with the number of violations (every line must read 0).
CREATE OR REPLACE FUNCTION mt.invariants(p_since timestamptz)
RETURNS TABLE (invariant text, violations bigint)
LANGUAGE sql STABLE AS $$
  WITH c AS (SELECT * FROM mps.cards WHERE created_at >= p_since),
  t AS (SELECT t.* FROM mps.transactions t WHERE t.card_id IN (SELECT id FROM c)),
  ev AS (SELECT e.action, e.after->>'tx_id' AS tx_id, e.after->>'qr_id' AS qr_id
         FROM audit.event_log e WHERE e.entity_type = 'card' AND e.entity_id IN (SELECT id::text FROM c))
  SELECT 'card balance = sum of its transactions', count(*) FROM c
   WHERE c.balance <> (SELECT coalesce(sum(t.amount), 0) FROM t WHERE t.card_id = c.id)
  UNION ALL
  SELECT 'card points = sum of its point ledger', count(*) FROM c
   WHERE c.points <> (SELECT coalesce(sum(l.delta), 0) FROM mps.point_ledger l WHERE l.card_id = c.id)
  UNION ALL
  SELECT 'no balance or points below zero', count(*) FROM c WHERE c.balance < 0 OR c.points < 0
  UNION ALL
  SELECT 'tx points_delta = its ledger rows', count(*) FROM t
   WHERE t.points_delta <> (SELECT coalesce(sum(l.delta), 0) FROM mps.point_ledger l WHERE l.tx_id = t.id)
  UNION ALL
  SELECT 'ledger rows belong to a tx of the card', count(*) FROM mps.point_ledger l
   WHERE l.card_id IN (SELECT id FROM c)
     AND NOT EXISTS (SELECT 1 FROM t WHERE t.id = l.tx_id AND t.card_id = l.card_id)
  UNION ALL
  SELECT 'payment refunded_amount <= final_amount', count(*) FROM t
   WHERE t.kind = 'payment' AND t.refunded_amount > t.final_amount
  UNION ALL
  SELECT 'payment refunded_amount = sum of its refunds', count(*) FROM t p
   WHERE p.kind = 'payment' AND p.refunded_amount <>
         (SELECT coalesce(sum(r.final_amount), 0) FROM t r WHERE r.kind = 'refund' AND r.original_tx_id = p.id)
  UNION ALL
  SELECT 'payment status matches refunded_amount', count(*) FROM t
   WHERE t.kind = 'payment' AND t.status::text <> CASE WHEN t.refunded_amount = 0 THEN 'completed'
                                                       WHEN t.refunded_amount = t.final_amount THEN 'refunded'
                                                       ELSE 'partially_refunded' END
  UNION ALL
  SELECT 'refunds reverse at most the points earned', count(*) FROM t p
   WHERE p.kind = 'payment' AND p.points_delta <
         (SELECT coalesce(-sum(r.points_delta), 0) FROM t r WHERE r.kind = 'refund' AND r.original_tx_id = p.id)
  UNION ALL
  SELECT 'fully refunded payment reversed all its points', count(*) FROM t p
   WHERE p.kind = 'payment' AND p.status = 'refunded' AND p.points_delta <>
         (SELECT coalesce(-sum(r.points_delta), 0) FROM t r WHERE r.kind = 'refund' AND r.original_tx_id = p.id)
  UNION ALL
  SELECT 'refund goes back to the card and merchant it came from', count(*) FROM t r
   WHERE r.kind = 'refund' AND NOT EXISTS (SELECT 1 FROM t p WHERE p.id = r.original_tx_id AND p.kind = 'payment'
                                          AND p.card_id = r.card_id AND p.merchant_id = r.merchant_id)
  UNION ALL
  SELECT 'standard card level = ladder(points)', count(*) FROM c
   WHERE c.card_type = 'standard' AND c.level_id IS DISTINCT FROM mps_internal.level_for_points(c.points)
  UNION ALL
  SELECT 'payment, refund, recharge audited once (tx.charge/refund/recharge)', count(*) FROM t
   WHERE t.kind IN ('payment', 'refund', 'recharge')
     AND (SELECT count(*) FROM ev WHERE ev.tx_id = t.id::text
            AND ev.action = CASE t.kind WHEN 'payment' THEN 'tx.charge' WHEN 'refund' THEN 'tx.refund'
                                        ELSE 'tx.recharge' END) <> 1
  UNION ALL
  SELECT 'every QR code issued is audited (qr.rotate)', count(*) FROM mps.card_qr_codes q
   WHERE q.card_id IN (SELECT id FROM c)
     AND (SELECT count(*) FROM ev WHERE ev.action = 'qr.rotate' AND ev.qr_id = q.id::text) <> 1
  UNION ALL
  SELECT 'a used single-use code paid exactly its one payment', count(*) FROM mps.card_qr_codes q
   WHERE q.card_id IN (SELECT id FROM c) AND q.single_use AND q.used_at IS NOT NULL
     AND (SELECT count(*) FROM t WHERE t.qr_code_id = q.id) <> 1
  UNION ALL
  SELECT 'every payment used a code of its card', count(*) FROM t
   WHERE t.kind = 'payment' AND NOT EXISTS (SELECT 1 FROM mps.card_qr_codes q
                                           WHERE q.id = t.qr_code_id AND q.card_id = t.card_id)
  UNION ALL
  SELECT 'plain QR secrets are not stored (bcrypt hashes only)', count(*) FROM mps.card_qr_codes q
   WHERE q.card_id IN (SELECT id FROM c) AND q.secret_hash !~ '^\$2b\$[0-9]{2}\$.{53}$'
$$;
RESET client_min_messages;
-- the ladder the money tests assume (the default ladder is put back at the end)
\set test_ladder '[{"code":"BRONZE","name":"Bronze","min_points":0,"max_points":99,"discount_bp":0,"earn_rate_bp":10000},{"code":"SILVER","name":"Silver","min_points":100,"max_points":199,"discount_bp":500,"earn_rate_bp":10000},{"code":"GOLD","name":"Gold","min_points":200,"max_points":999,"discount_bp":1000,"earn_rate_bp":12000},{"code":"PLATINUM","name":"Platinum","min_points":1000,"max_points":null,"discount_bp":1500,"earn_rate_bp":15000}]'
\set default_ladder '[{"code":"BRONZE","name":"Bronze","min_points":0,"max_points":999,"discount_bp":0,"earn_rate_bp":10000},{"code":"SILVER","name":"Silver","min_points":1000,"max_points":4999,"discount_bp":300,"earn_rate_bp":10000},{"code":"GOLD","name":"Gold","min_points":5000,"max_points":19999,"discount_bp":500,"earn_rate_bp":12000},{"code":"PLATINUM","name":"Platinum","min_points":20000,"max_points":null,"discount_bp":800,"earn_rate_bp":15000}]'
SELECT now() AS t0 \gset
SELECT code, min_points, max_points, discount_bp, earn_rate_bp FROM mps.set_membership_levels(:'test_ladder');
-- ---- end of prelude ----------------------------------------------------------
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
LEFT JOIN audit.event_log e ON e.after->>'tx_id' = t.id::text
  AND e.action = CASE t.kind WHEN 'payment' THEN 'tx.charge' WHEN 'refund' THEN 'tx.refund' ELSE 'tx.recharge' END
WHERE t.card_id IN (SELECT card_id FROM i25_cards) GROUP BY t.kind ORDER BY t.kind;
SELECT count(*) AS codes_issued, count(*) FILTER (WHERE used_at IS NOT NULL) AS codes_used,
       (SELECT count(*) FROM audit.event_log e WHERE e.action = 'qr.rotate'
          AND e.entity_id IN (SELECT card_id::text FROM i25_cards)) AS rotate_events
FROM mps.card_qr_codes WHERE card_id IN (SELECT card_id FROM i25_cards);
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
