-- Member cards for the benchmark, through the RPCs, as the platform admin:
-- per card, create_member_profile (issues a standard card), recharge_card
-- 1000.00, rotate_card_qr (one live single-use code, 1 hour). Untimed setup;
-- run.sh starts several of these at once, each making :n cards. Commits every
-- 200 cards (each call takes a per-card advisory lock held to commit).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT set_config('bench.n', :'n', false) \g /dev/null
DO $$
DECLARE
  v_card uuid;
BEGIN
  FOR i IN 1 .. current_setting('bench.n')::integer LOOP
    SELECT m.card_id INTO v_card FROM mps.create_member_profile(p_name := 'Bench member') m;
    PERFORM mps.recharge_card(v_card, 1000.00, 'fund');
    INSERT INTO bench.codes (card_id, qr)
    SELECT v_card, q.qr_plain FROM mps.rotate_card_qr(v_card, 3600) q;
    IF i % 200 = 0 THEN
      COMMIT;
    END IF;
  END LOOP;
END
$$;
