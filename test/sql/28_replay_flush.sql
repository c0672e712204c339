-- 28_replay_flush: an idempotent replay flushes the WAL before it reports the
-- first result (src/busy_card.c), also when the WAL's insert position sits at
-- the very start of a page (it then points past a page header not yet
-- written, and flushing that far fails). The WAL is moved there with logical
-- messages of the right size before each replay.
\set ECHO none
SET client_min_messages = warning;
\o /dev/null
SELECT mps.create_merchant(p_code := 'C28SHOP', p_name := 'Replay Shop');
\o
SELECT card_id AS card FROM mps.create_member_profile(p_name := 'Rita') \gset
SELECT balance_after FROM mps.recharge_card(:'card', 100, 'c28-topup');
SELECT qr_plain AS code FROM mps.rotate_card_qr(:'card') \gset
SELECT tx_id AS first_tx FROM mps.merchant_charge_by_qr('C28SHOP', :'code', 10.00, 'c28-k1') \gset

-- Insert WAL until the insert position is the first byte after a page header.
-- A non-transactional message of L bytes with prefix 'c28' makes a record of
-- 24 (header) + 5 (data header) + 24 (message header) + 4 (prefix) + L bytes,
-- padded to 8: one sized to the rest of the page ends exactly at its end.
-- Other processes may write WAL in between, so it measures and tries again.
CREATE FUNCTION pg_temp.wal_at_page_start() RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  v_off integer;
  v_left integer;
BEGIN
  FOR i IN 1 .. 1000 LOOP
    v_off := ((pg_current_wal_insert_lsn() - '0/0'::pg_lsn) % 8192)::integer;
    IF v_off IN (24, 40) THEN
      RETURN true;
    END IF;
    v_left := 8192 - v_off;
    IF v_left < 400 THEN
      PERFORM pg_logical_emit_message(false, 'c28', repeat('x', 600));   -- on to the next page
    ELSE
      PERFORM pg_logical_emit_message(false, 'c28', repeat('x', v_left - 57));
    END IF;
  END LOOP;
  RETURN false;
END $$;

-- Three replays, each right after the WAL reached a page start.
SELECT pg_temp.wal_at_page_start() AS at_page_start,
       (SELECT r.tx_id = :'first_tx' FROM mps.merchant_charge_by_qr('C28SHOP', :'code', 10.00, 'c28-k1') r
        WHERE g > 0)
         AS replayed_first
FROM generate_series(1, 3) g;

-- Still one movement, and the balance is the sum of the card's movements.
SELECT count(*) AS payments FROM mps.transactions WHERE card_id = :'card' AND kind = 'payment';
SELECT c.balance = (SELECT sum(t.amount) FROM mps.transactions t WHERE t.card_id = c.id) AS balance_is_sum
FROM mps.cards c WHERE c.id = :'card';
