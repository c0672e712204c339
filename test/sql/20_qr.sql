-- 20_qr: QR payment codes. rotate_card_qr (format, lifetime, bcrypt-only
-- storage, rotation revokes the previous code), revoke_card_qr, what a charge
-- says about malformed / unknown / wrong-secret / revoked / used / expired
-- codes, who may rotate, shared codes of prepaid cards and
-- cron_rotate_qr_tokens.
\i test/fixtures/money_prelude.sql
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

-- ===== a prepaid card: a shared code, single-use like a member's; the display's next code =====
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
-- the shared code pays once (one scan, one payment; a second charge is MP304);
-- no discount and no points on a prepaid card
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_op', true) AS claims_set \gset
SELECT raw_amount, discount_amount, final_amount, balance_after, points_earned, level_after
FROM mps.merchant_charge_by_qr('Q20SHOP', :'shared1', 10.00, 'q20-pp1');
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 15.50, %L)', 'Q20SHOP', :'shared1', 'q20-pp2')) AS shared_second_use;
SELECT mt.try(format('SELECT mps.merchant_charge_by_qr(%L, %L, 15.50, %L)', 'Q20SHOP', :'shared1', 'q20-pp2b')) AS shared_third_use;
COMMIT;
SELECT used_at IS NULL AS still_unused, revoked_at IS NULL AS still_live,
       (SELECT count(*) FROM mps.transactions t WHERE t.qr_code_id = q.id) AS payments
FROM mps.card_qr_codes q WHERE lookup_id = split_part(:'shared1', '.', 2);
SELECT t.balance FROM mps.cards t WHERE t.id = :'pp_card';
-- the display asks the owner's app for its next code
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', :'c_pp', true) AS claims_set \gset
SELECT qr_plain AS shared1 FROM mps.rotate_card_qr(:'pp_card', p_shared := true) \gset
COMMIT;
-- cron_rotate_qr_tokens, for a caller that delivers what it returns (no job runs it)
-- one new shared code for this card, 300 s, single-use
CREATE TEMP TABLE q20_cron AS SELECT *, expires_at - now() AS ttl FROM mps.cron_rotate_qr_tokens(300);
SELECT count(*) AS rows_for_pp_card, bool_and(single_use) AS single_use,
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
-- the service_role key (PostgREST) may run it (nothing to rotate here: the
-- card's last shared code has paid)
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
WHERE coalesce(after->>'card_id', entity_id) IN (:'alice_card', :'bob_card', :'pp_card', :'corp_card')
  AND action LIKE ANY (ARRAY['qr.%', 'tx.%'])
GROUP BY action ORDER BY action;
SELECT * FROM mt.invariants(:'t0');
\o /dev/null
SELECT mps.set_membership_levels(:'default_ladder');
\o
