-- 20_qr: QR payment codes. rotate_card_qr (format, lifetime, bcrypt-only
-- storage, rotation revokes the previous code), revoke_card_qr, what a charge
-- says about malformed / unknown / wrong-secret / revoked / used / expired
-- codes, who may rotate, shared codes of prepaid cards and
-- cron_rotate_qr_tokens.
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
-- JWT subjects
\set alice_sub '20000000-0000-4000-8000-0000000000a1'
\set bob_sub   '20000000-0000-4000-8000-0000000000b0'
\set pp_sub    '20000000-0000-4000-8000-0000000000c0'
\set op_sub    '20000000-0000-4000-8000-0000000000e1'
\set c_alice '{"sub":"20000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set c_bob   '{"sub":"20000000-0000-4000-8000-0000000000b0","role":"authenticated"}'
\set c_pp    '{"sub":"20000000-0000-4000-8000-0000000000c0","role":"authenticated"}'
\set c_op    '{"sub":"20000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set code_re '^MPS1\\.[A-Za-z0-9_-]{12}\\.[A-Za-z0-9_-]{22}$'

-- ===== setup, as the platform admin (superuser, no claims) =====
\o /dev/null
SELECT mps.create_merchant(p_code := 'Q20SHOP', p_name := 'QR Shop');
SELECT mps.assign_merchant_user('Q20SHOP', :'op_sub');
\o
SELECT card_id AS alice_card FROM mps.create_member_profile(p_name := 'Alice', p_auth_user_id := :'alice_sub') \gset
SELECT card_id AS bob_card FROM mps.create_member_profile(p_name := 'Bob', p_auth_user_id := :'bob_sub') \gset
SELECT amount, balance_after FROM mps.recharge_card(:'alice_card', 500, 'q20-topup-alice');

-- ===== rotate: Alice gets a code for her own card =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT qr_plain AS code1, qr_id AS code1_id, card_id = :'alice_card' AS r_own_card,
       expires_at - now() AS r_ttl, single_use AS r_single_use
FROM mps.rotate_card_qr(:'alice_card') \gset
COMMIT;
-- MPS1.<12 lookup chars>.<22 secret chars>, the default lifetime of 900 s, single-use
SELECT :'code1' ~ :'code_re' AS code_format, :'r_own_card' AS own_card,
       :'r_ttl'::interval = interval '900 seconds' AS ttl_900s, :'r_single_use' AS single_use;
-- stored: the lookup id, the holder, a bcrypt ($2b$) hash that matches the secret
SELECT q.lookup_id = split_part(:'code1', '.', 2) AS lookup_is_public_part,
       q.holder_member_id = (SELECT id FROM mps.member_profiles WHERE auth_user_id = :'alice_sub') AS holder_is_alice,
       q.single_use, left(q.secret_hash, 4) AS hash_prefix,
       -- (pgcrypto knows bcrypt as $2a$, which hashes secrets this short exactly like $2b$)
       crypt(split_part(:'code1', '.', 3), '$2a$' || substr(q.secret_hash, 5)) = '$2a$' || substr(q.secret_hash, 5)
         AS hash_matches_secret,
       q.expires_at - q.issued_at AS lifetime, q.used_at IS NULL AS unused, q.revoked_at IS NULL AS not_revoked
FROM mps.card_qr_codes q WHERE q.id = :code1_id;
-- the plain secret (or the whole code) appears nowhere: not in the codes table, not in the audit log
SELECT count(*) AS code_rows_with_secret FROM mps.card_qr_codes q
WHERE strpos(q::text, split_part(:'code1', '.', 3)) > 0 OR strpos(q::text, :'code1') > 0;
SELECT count(*) AS audit_rows_with_secret FROM audit.event_log e
WHERE strpos(e::text, split_part(:'code1', '.', 3)) > 0;
-- the rotation is audited, with the lifetime and the code id (not the code)
SELECT action, actor_via, actor_user_id = :'alice_sub' AS actor_is_alice,
       after->>'ttl_seconds' AS ttl_seconds, after->>'single_use' AS single_use,
       after->>'revoked_previous' AS revoked_previous, (after->>'qr_id')::bigint = :code1_id AS qr_id
FROM audit.event_log WHERE action = 'qr.rotate' AND entity_id = :'alice_card';

-- ===== lifetimes: explicit ttl is exact; 30 and 86400 are the bounds =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT expires_at - now() AS ttl_300 FROM mps.rotate_card_qr(:'alice_card', p_ttl_seconds := 300);
SELECT expires_at - now() AS ttl_30 FROM mps.rotate_card_qr(:'alice_card', p_ttl_seconds := 30);
SELECT expires_at - now() AS ttl_86400 FROM mps.rotate_card_qr(:'alice_card', p_ttl_seconds := 86400);
SELECT expires_at - now() AS ttl_default FROM mps.rotate_card_qr(:'alice_card', p_ttl_seconds := NULL);
-- out of range: MP305
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L, p_ttl_seconds := 29)', :'alice_card')) AS ttl_29;
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L, p_ttl_seconds := 86401)', :'alice_card')) AS ttl_86401;
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L, p_ttl_seconds := 0)', :'alice_card')) AS ttl_0;
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L, p_ttl_seconds := -900)', :'alice_card')) AS ttl_negative;
-- no card id: MP003; a card that does not exist: MP201
SELECT mt.try('SELECT mps.rotate_card_qr(NULL)') AS no_card;
SELECT mt.try('SELECT mps.rotate_card_qr(''20000000-0000-4000-8000-00000000dead'')') AS unknown_card;
COMMIT;
-- each rotation revoked the one before: one live code, all of them kept as history
SELECT count(*) AS codes, count(*) FILTER (WHERE revoked_at IS NULL AND used_at IS NULL) AS live,
       count(*) FILTER (WHERE revoke_reason = 'rotated') AS revoked_by_rotation
FROM mps.card_qr_codes WHERE card_id = :'alice_card';

-- ===== a charge: the code pays once =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT qr_plain AS code2, qr_id AS code2_id FROM mps.rotate_card_qr(:'alice_card') \gset
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
-- the code of the previous rotation (code1, replaced) is revoked: MP303
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 10.00, %L)', 'Q20SHOP', :'code1', 'q20-k1')) AS replaced_code;
-- the current code pays
SELECT tx_id AS ch_tx, final_amount AS r_final, balance_after AS r_balance
FROM mps.merchant_charge_by_qr('Q20SHOP', :'code2', 10.00, 'q20-k2') \gset
SELECT :'r_final' AS final_amount, :'r_balance' AS balance_after;
-- and only once, whatever the key: MP304
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 10.00, %L)', 'Q20SHOP', :'code2', 'q20-k3')) AS second_use;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 5.00, %L)', 'Q20SHOP', :'code2', 'q20-k4')) AS third_use;
COMMIT;
-- the code is marked used by that payment, and the payment names the code
SELECT q.used_at IS NOT NULL AS used, q.used_tx_id = :'ch_tx' AS used_by_the_charge,
       (SELECT t.qr_code_id FROM mps.transactions t WHERE t.id = :'ch_tx') = q.id AS payment_names_code
FROM mps.card_qr_codes q WHERE q.id = :code2_id;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== codes that are not codes: MP301, and nothing is told about real codes =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT qr_plain AS code3 FROM mps.rotate_card_qr(:'alice_card') \gset
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try($$SELECT mps.merchant_charge_by_qr('Q20SHOP', 'hello', 1.00, 'q20-bad1')$$) AS not_a_code;
SELECT mt.try($$SELECT mps.merchant_charge_by_qr('Q20SHOP', '', 1.00, 'q20-bad2')$$) AS empty_code;
SELECT mt.try($$SELECT mps.merchant_charge_by_qr('Q20SHOP', NULL, 1.00, 'q20-bad3')$$) AS null_code;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP',
              'mps1' || substr(:'code3', 5), 'q20-bad4')) AS lower_case_prefix;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP',
              :'code3' || 'A', 'q20-bad5')) AS one_char_too_long;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP',
              left(:'code3', -1), 'q20-bad6')) AS one_char_too_short;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP',
              replace(:'code3', '.', ':'), 'q20-bad7')) AS wrong_separator;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP',
              left(:'code3', 17) || '!' || substr(:'code3', 19), 'q20-bad8')) AS bad_character;
-- well-formed, but no such lookup id
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP',
              'MPS1.AAAAAAAAAAAA.' || split_part(:'code3', '.', 3), 'q20-bad9')) AS unknown_lookup;
-- the right lookup id with a wrong secret
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP',
              'MPS1.' || split_part(:'code3', '.', 2) || '.AAAAAAAAAAAAAAAAAAAAAA', 'q20-bad10')) AS wrong_secret;
-- a used code with a wrong secret is just as unknown (state is told only to the holder of the secret)
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP',
              'MPS1.' || split_part(:'code2', '.', 2) || '.AAAAAAAAAAAAAAAAAAAAAA', 'q20-bad11')) AS used_code_wrong_secret;
COMMIT;
-- none of it touched the card or the live code
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== revoke =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mps.revoke_card_qr(:'alice_card') AS revoked;
-- nothing left to revoke
SELECT mps.revoke_card_qr(:'alice_card') AS revoked_again;
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP', :'code3', 'q20-k5')) AS revoked_code;
COMMIT;
SELECT revoked_at IS NOT NULL AS revoked, revoke_reason FROM mps.card_qr_codes
WHERE lookup_id = split_part(:'code3', '.', 2);
SELECT action, after->>'revoked' AS revoked, after->>'shared' AS shared, actor_user_id = :'alice_sub' AS by_alice
FROM audit.event_log WHERE action = 'qr.revoke' AND entity_id = :'alice_card' ORDER BY id;
-- the platform admin revokes every live code of a card
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT qr_plain AS code4 FROM mps.rotate_card_qr(:'alice_card') \gset
COMMIT;
SELECT mps.revoke_card_qr(:'alice_card') AS revoked_by_admin;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP', :'code4', 'q20-k6')) AS revoked_by_admin_code;

-- ===== expiry: MP302 =====
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT qr_plain AS code5, qr_id AS code5_id FROM mps.rotate_card_qr(:'alice_card', p_ttl_seconds := 60) \gset
COMMIT;
UPDATE mps.card_qr_codes SET issued_at = now() - interval '1 hour', expires_at = now() - interval '1 second'
WHERE id = :code5_id;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP', :'code5', 'q20-k7')) AS expired_code;
COMMIT;
-- expired: neither used nor revoked, it just cannot pay any more
SELECT used_at IS NULL AS not_used, revoked_at IS NULL AS not_revoked FROM mps.card_qr_codes WHERE id = :code5_id;
SELECT mt.card_state(:'alice_card') AS alice;

-- ===== who may rotate and revoke =====
-- Bob is not bound to Alice's card: 42501 (rotate and revoke)
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L)', :'alice_card')) AS bob_rotates_alice;
SELECT mt.try(format('SELECT mps.revoke_card_qr(%L)', :'alice_card')) AS bob_revokes_alice;
-- his own card is fine
SELECT single_use FROM mps.rotate_card_qr(:'bob_card');
COMMIT;
-- a merchant operator is no card holder: 42501
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L)', :'alice_card')) AS operator_rotates;
COMMIT;
-- anon: 42501 (the SQLSTATE only: the message names whichever grant is missing first)
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) AS claims_set \gset
SELECT left(mt.try(format('SELECT mps.rotate_card_qr(%L)', :'alice_card')), 5) AS anon_rotates;
SELECT left(mt.try(format('SELECT mps.revoke_card_qr(%L)', :'alice_card')), 5) AS anon_revokes;
COMMIT;
-- authenticated without claims, and with claims but no subject: 42501
BEGIN;
SET LOCAL ROLE authenticated;
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L)', :'alice_card')) AS no_claims;
SELECT set_config('request.jwt.claims', '{"role":"authenticated"}', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L)', :'alice_card')) AS no_subject;
COMMIT;
-- the platform admin rotates the owner's code (which replaces the owner's live one)
SELECT single_use, expires_at - now() AS ttl FROM mps.rotate_card_qr(:'alice_card', p_ttl_seconds := 120);
SELECT count(*) FILTER (WHERE revoked_at IS NULL AND used_at IS NULL AND expires_at > now()) AS live_codes,
       bool_and(holder_member_id = (SELECT id FROM mps.member_profiles WHERE auth_user_id = :'alice_sub')) AS all_alices
FROM mps.card_qr_codes WHERE card_id = :'alice_card';
-- a frozen card gets no code: MP202
UPDATE mps.cards SET status = 'frozen' WHERE id = :'bob_card';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L)', :'bob_card')) AS frozen_card;
COMMIT;
UPDATE mps.cards SET status = 'active' WHERE id = :'bob_card';

-- ===== shared codes: only for prepaid and corporate cards =====
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L, p_shared := true)', :'alice_card')) AS admin_shared_on_standard;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_alice', true) AS claims_set \gset
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L, p_shared := true)', :'alice_card')) AS owner_shared_on_standard;
COMMIT;

-- ===== a prepaid card: a shared, multi-use code, rotated by the cron job =====
SELECT card_id AS pp_card, card_type FROM mps.create_member_profile(p_name := 'Prepaid Pat',
       p_default_card_type := 'prepaid', p_auth_user_id := :'pp_sub') \gset
SELECT :'card_type' AS card_type;
SELECT balance_after FROM mps.recharge_card(:'pp_card', 100, 'q20-topup-pp');
SELECT qr_plain AS shared1, single_use AS r_single_use, expires_at - now() AS r_ttl
FROM mps.rotate_card_qr(:'pp_card', p_shared := true) \gset
SELECT :'shared1' ~ :'code_re' AS code_format, :'r_single_use' AS single_use, :'r_ttl' AS ttl;
SELECT holder_member_id IS NULL AS shared, single_use FROM mps.card_qr_codes
WHERE lookup_id = split_part(:'shared1', '.', 2);
-- the holder also has a code of her own for the same card
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT qr_plain AS pp_own, single_use AS r_single_use FROM mps.rotate_card_qr(:'pp_card') \gset
COMMIT;
SELECT :'r_single_use' AS own_code_single_use;
-- the shared code pays twice (multi-use); no discount and no points on a prepaid card
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT raw_amount, discount_amount, final_amount, balance_after, points_earned, level_after
FROM mps.merchant_charge_by_qr('Q20SHOP', :'shared1', 10.00, 'q20-pp1');
SELECT raw_amount, final_amount, balance_after
FROM mps.merchant_charge_by_qr('Q20SHOP', :'shared1', 15.50, 'q20-pp2');
COMMIT;
SELECT used_at IS NULL AS still_unused, revoked_at IS NULL AS still_live,
       (SELECT count(*) FROM mps.transactions t WHERE t.qr_code_id = q.id) AS payments
FROM mps.card_qr_codes q WHERE lookup_id = split_part(:'shared1', '.', 2);
-- the cron job: one new shared code for this card, 300 s, not single-use
CREATE TEMP TABLE q20_cron AS SELECT *, expires_at - now() AS ttl FROM mps.cron_rotate_qr_tokens(300);
SELECT count(*) AS rows_for_pp_card, bool_and(NOT single_use) AS shared,
       bool_and(ttl = interval '300 seconds') AS ttl_300,
       bool_and(qr_plain ~ :'code_re') AS code_format, bool_and(qr_plain <> :'shared1') AS new_code
FROM q20_cron WHERE card_id = :'pp_card';
-- it touched only cards that had a live shared code (none of Alice's or Bob's)
SELECT count(*) AS rows_for_standard_cards FROM q20_cron WHERE card_id IN (:'alice_card', :'bob_card');
SELECT qr_plain AS shared2 FROM q20_cron WHERE card_id = :'pp_card' \gset
DROP TABLE q20_cron;
SELECT after->>'why' AS why, after->>'ttl_seconds' AS ttl_seconds, after->>'revoked_previous' AS revoked_previous
FROM audit.event_log WHERE action = 'qr.rotate' AND entity_id = :'pp_card' ORDER BY id DESC LIMIT 1;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
-- the old shared code is revoked: MP303; the new one pays; the holder's own code is untouched
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L)', 'Q20SHOP', :'shared1', 'q20-pp3')) AS old_shared_code;
SELECT final_amount, balance_after FROM mps.merchant_charge_by_qr('Q20SHOP', :'shared2', 1.00, 'q20-pp4');
SELECT final_amount, balance_after FROM mps.merchant_charge_by_qr('Q20SHOP', :'pp_own', 2.00, 'q20-pp5');
COMMIT;
-- the cron job is the platform admin's: a member or operator gets 42501, a bad lifetime MP305
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT mt.try('SELECT mps.cron_rotate_qr_tokens(300)') AS member_runs_cron;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT mt.try('SELECT mps.cron_rotate_qr_tokens(300)') AS operator_runs_cron;
COMMIT;
SELECT mt.try('SELECT mps.cron_rotate_qr_tokens(10)') AS cron_ttl_10;
-- the service_role key (PostgREST) may run it
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) AS claims_set \gset
SELECT count(*) FILTER (WHERE card_id = :'pp_card') AS service_role_rotated_pp
FROM mps.cron_rotate_qr_tokens(600);
COMMIT;
-- the owner may rotate and revoke the shared code herself
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT single_use AS own_code_single_use FROM mps.rotate_card_qr(:'pp_card');
SELECT single_use FROM mps.rotate_card_qr(:'pp_card', p_shared := true);
SELECT mps.revoke_card_qr(:'pp_card', p_shared := true) AS shared_revoked;
COMMIT;
-- her own code was not affected by either
SELECT count(*) FILTER (WHERE holder_member_id IS NULL) AS live_shared,
       count(*) FILTER (WHERE holder_member_id IS NOT NULL) AS live_own
FROM mps.card_qr_codes WHERE card_id = :'pp_card' AND used_at IS NULL AND revoked_at IS NULL;
-- with no live shared code left, the cron job leaves the card alone
SELECT count(*) FILTER (WHERE card_id = :'pp_card') AS cron_rows_for_pp FROM mps.cron_rotate_qr_tokens(300);

-- ===== a corporate card: each member pays with a code of their own; owner and admins rotate the shared code =====
INSERT INTO mps.cards (card_no, card_type, currency, enterprise_name, fixed_discount_bp)
VALUES ('7200000000000001', 'corporate', 'CNY', 'Acme Ltd', 1000) RETURNING id AS corp_card \gset
INSERT INTO mps.card_bindings (card_id, member_id, role)
SELECT :'corp_card', m.id, r.role::mps.binding_role
FROM (VALUES (:'pp_sub', 'owner'), (:'bob_sub', 'member')) r(sub, role)
JOIN mps.member_profiles m ON m.auth_user_id = r.sub::uuid;
SELECT balance_after FROM mps.recharge_card(:'corp_card', 100, 'q20-topup-corp');
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_bob', true) AS claims_set \gset
SELECT qr_plain AS bob_corp_code, single_use AS r_single_use FROM mps.rotate_card_qr(:'corp_card') \gset
SELECT mt.try(format('SELECT mps.rotate_card_qr(%L, p_shared := true)', :'corp_card')) AS member_rotates_shared;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT single_use AS owner_rotates_shared_single_use FROM mps.rotate_card_qr(:'corp_card', p_shared := true);
COMMIT;
SELECT :'r_single_use' AS members_own_code_single_use;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
-- the corporate card's fixed 10% discount; no points
SELECT raw_amount, discount_amount, final_amount, balance_after, points_earned, level_after
FROM mps.merchant_charge_by_qr('Q20SHOP', :'bob_corp_code', 20.00, 'q20-corp1');
COMMIT;
SELECT member_id = (SELECT id FROM mps.member_profiles WHERE auth_user_id = :'bob_sub') AS paid_by_bob
FROM mps.transactions WHERE card_id = :'corp_card' AND kind = 'payment';

-- ===== audit and invariants =====
SELECT action, count(*) AS events FROM audit.event_log
WHERE entity_id IN (:'alice_card', :'bob_card', :'pp_card', :'corp_card') AND action LIKE ANY (ARRAY['qr.%', 'tx.%'])
GROUP BY action ORDER BY action;
SELECT * FROM mt.invariants(:'t0');
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
