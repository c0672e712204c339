-- Benchmark database: the extension, one merchant with one operator, one hot
-- corporate card with its shared code, and the bench schema that holds the
-- issued codes, the payments to refund and a few helpers. Member cards and
-- their codes are made by provision.sql (through the RPCs), in parallel.
-- Runs as the superuser (= platform admin for MPS).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION mps CASCADE;          -- brings pgcrypto along

CREATE SCHEMA bench;

-- Every member code issued for the benchmark, dense ids 1..n (one card each:
-- rotation revokes a holder's previous code, so one live code per card).
CREATE TABLE bench.codes (
  id       serial PRIMARY KEY,
  card_id  uuid NOT NULL,
  qr       text NOT NULL
);
-- The distinct-card charge takes codes in order, one per charge.
CREATE SEQUENCE bench.code_seq;

-- Payments made by the distinct-card charge run, refunded by the refund run.
CREATE TABLE bench.payments (
  n      integer PRIMARY KEY,
  tx_id  uuid NOT NULL
);

CREATE TABLE bench.params (
  name   text PRIMARY KEY,
  value  text NOT NULL
);

-- bcrypt check in SQL for the reference statements. pgcrypto's crypt() knows
-- "$2a$" but not libxcrypt's "$2b$" (given "$2b$..." it silently falls back to
-- DES and never matches), so the hash is compared under the "$2a$" prefix:
-- same algorithm, same cost, same result for secrets under 72 bytes.
CREATE FUNCTION bench.bcrypt_ok(p_secret text, p_hash text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT
AS $$
  SELECT public.crypt(p_secret, '$2a' || substr(p_hash, 4)) = '$2a' || substr(p_hash, 4)
$$;

-- A time-ordered (version 7) uuid from now(), like the ids the C core writes,
-- so the reference inserts land in the transactions index the same way.
CREATE FUNCTION bench.uuid7() RETURNS uuid
LANGUAGE sql VOLATILE
AS $$
  SELECT encode(set_byte(overlay(uuid_send(gen_random_uuid())
                                 PLACING substring(int8send((extract(epoch FROM now()) * 1000)::bigint) FROM 3)
                                 FROM 1 FOR 6),
                         6, 112 + floor(random() * 16)::integer), 'hex')::uuid
$$;

-- The merchant and the operator whose JWT the charge and refund runs carry.
SELECT id AS merchant_id FROM mps.create_merchant('BENCH', 'Benchmark shop', 'CNY') \gset
INSERT INTO bench.params VALUES ('merchant_id', :'merchant_id');
INSERT INTO bench.params VALUES ('operator', 'b0000000-0000-4000-8000-000000000001');
SELECT mps.assign_merchant_user('BENCH', 'b0000000-0000-4000-8000-000000000001', 'operator') IS NOT NULL AS assigned;

-- The hot corporate card. No RPC issues corporate cards yet, so it is made
-- here directly: card, owner binding; then funded and given its shared code
-- through the RPCs.
DO $$
DECLARE
  v_member uuid;
  v_card uuid;
BEGIN
  INSERT INTO mps.member_profiles (name) VALUES ('Bench Corp owner') RETURNING id INTO v_member;
  INSERT INTO mps.cards (card_no, card_type, currency, fixed_discount_bp, enterprise_name)
  VALUES (mps_internal.new_card_no(), 'corporate', 'CNY', 500, 'Bench Corp')
  RETURNING id INTO v_card;
  INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (v_card, v_member, 'owner');
  INSERT INTO bench.params VALUES ('hot_card', v_card::text);
END
$$;
SELECT value AS hot_card FROM bench.params WHERE name = 'hot_card' \gset
SELECT balance_after AS hot_balance FROM mps.recharge_card(:'hot_card', 500000.00, 'fund-hot');
INSERT INTO bench.params
SELECT 'hot_qr', qr_plain FROM mps.rotate_card_qr(:'hot_card', 3600, p_shared := true);

-- Codes pay once (shared codes too), so the hot-card charge takes a fresh
-- shared code of the hot card per charge, in order, like the distinct-card
-- charge. Written directly (one bcrypt hash for all, cost 4 as issued codes
-- have, distinct lookup ids): making 200,000 codes through rotate_card_qr
-- would hash each and take minutes. hot-limit keeps the code above: it never
-- uses a code up.
CREATE TABLE bench.hot_codes (
  id  serial PRIMARY KEY,
  qr  text NOT NULL
);
CREATE SEQUENCE bench.hot_code_seq;
WITH h AS (SELECT public.crypt('abcdefghijklmnopqrstuv', public.gen_salt('bf', 4)) AS hash),
     c AS (
  INSERT INTO mps.card_qr_codes (lookup_id, card_id, holder_member_id, single_use, secret_hash, expires_at)
  SELECT 'H' || lpad(g::text, 11, '0'), :'hot_card'::uuid, NULL, true, h.hash, now() + interval '6 hours'
  FROM generate_series(1, 200000) g, h
  RETURNING lookup_id)
INSERT INTO bench.hot_codes (qr)
SELECT 'MPS1.' || lookup_id || '.abcdefghijklmnopqrstuv' FROM c ORDER BY lookup_id;

-- Single-thread speed of one pgcrypto bcrypt verification at cost 4, in ms
-- (set beside libxcrypt's, measured by bcrypt_speed.c).
CREATE FUNCTION bench.pgcrypto_verify_ms(p_n integer) RETURNS numeric
LANGUAGE plpgsql
AS $$
DECLARE
  v_secret text := 'abcdefghijklmnopqrstuv';
  v_hash text := public.crypt(v_secret, public.gen_salt('bf', 4));
  v_start timestamptz;
  v_ok integer := 0;
BEGIN
  v_start := clock_timestamp();
  FOR i IN 1 .. p_n LOOP
    IF public.crypt(v_secret, v_hash) = v_hash THEN
      v_ok := v_ok + 1;
    END IF;
  END LOOP;
  IF v_ok <> p_n THEN
    RAISE EXCEPTION 'pgcrypto bcrypt did not verify';
  END IF;
  RETURN round((extract(epoch FROM clock_timestamp() - v_start) * 1000 / p_n)::numeric, 4);
END
$$;

-- The RPC runs call as the merchant's operator the way PostgREST does: in role
-- authenticated with her claims (claims count only under PostgREST's roles).
-- That role reads the codes and payments it charges and refunds.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
END
$roles$;
SELECT mps.grant_role_privileges('mps_merchant_api', 'authenticated') > 0 AS granted \gset
GRANT USAGE ON SCHEMA bench TO authenticated;
GRANT SELECT ON bench.codes, bench.payments, bench.hot_codes TO authenticated;
GRANT USAGE ON SEQUENCE bench.code_seq, bench.hot_code_seq TO authenticated;
