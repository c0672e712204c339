-- 52_cards: card operations tried as an attacker would, through the PostgREST
-- path (role switched, request.jwt.claims set). The whole file is one
-- REPEATABLE READ transaction, rolled back at the end, and pgTAP's throws_ok
-- runs each call in a savepoint: the binding-password throttle must hold
-- there too.
--   - permission first: a stranger gets the same answer for a card that does
--     not exist and for one that is not hers, and unbind_card_member tells
--     her nobody's role;
--   - a platform freeze stays frozen until the platform admin lifts it;
--   - a claim uses the binding password up; an owner sets a new one;
--   - binding-password guessing is throttled under REPEATABLE READ.
\set admin_claims  '{"role":"service_role"}'
\set olga_sub      '52000000-0000-4000-8000-0000000000a1'
\set olga_claims   '{"sub":"52000000-0000-4000-8000-0000000000a1","role":"authenticated"}'
\set carl_sub      '52000000-0000-4000-8000-0000000000a2'
\set carl_claims   '{"sub":"52000000-0000-4000-8000-0000000000a2","role":"authenticated"}'
\set mia_sub       '52000000-0000-4000-8000-0000000000a3'
\set mia_claims    '{"sub":"52000000-0000-4000-8000-0000000000a3","role":"authenticated"}'
\set sam_sub       '52000000-0000-4000-8000-0000000000e1'
\set sam_claims    '{"sub":"52000000-0000-4000-8000-0000000000e1","role":"authenticated"}'
\set no_card       '52000000-0000-4000-8000-00000000dead'
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT plan(39);

-- A call's whole answer (SQLSTATE, message, detail, hint), with the card id
-- it names written as <card>: two cards then compare equal when the caller
-- is told the same about both.
CREATE FUNCTION pg_temp.answer(p_sql text, p_card uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                          v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
  RETURN replace(concat_ws(' | ', v_state, v_msg, v_detail, v_hint), p_card::text, '<card>');
END
$$;

-- ===== setup, as the platform admin =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT member_id AS olga FROM mps.create_member_profile(p_name := 'Olga Owner', p_auth_user_id := :'olga_sub') \gset
SELECT member_id AS carl FROM mps.create_member_profile(p_name := 'Carl Admin', p_auth_user_id := :'carl_sub') \gset
SELECT member_id AS mia FROM mps.create_member_profile(p_name := 'Mia Member', p_auth_user_id := :'mia_sub') \gset
SELECT member_id AS sam FROM mps.create_member_profile(p_name := 'Sam Stranger', p_auth_user_id := :'sam_sub') \gset
SELECT card_id AS corp FROM mps.issue_card(p_card_type := 'corporate', p_owner_member_id := :'olga',
                                           p_enterprise_name := 'Cards Ltd') \gset
SELECT mps.bind_card_member(:'corp', :'carl', 'admin') IS NOT NULL AS bound \gset
SELECT mps.bind_card_member(:'corp', :'mia', 'member') IS NOT NULL AS bound \gset
SELECT card_id AS gift FROM mps.issue_card(p_card_type := 'prepaid', p_binding_password := 'gift-pass-one') \gset
SELECT card_id AS gift2 FROM mps.issue_card(p_card_type := 'prepaid', p_binding_password := 'gift-pass-two') \gset
SELECT card_id AS rr FROM mps.issue_card(p_card_type := 'prepaid', p_binding_password := 'rr-right-pass') \gset
RESET ROLE;

-- ===== permission before existence (a stranger with a profile) =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'sam_claims';
SELECT is(pg_temp.answer(format('SELECT mps.rotate_card_qr(%L)', :'corp'), :'corp'),
          pg_temp.answer(format('SELECT mps.rotate_card_qr(%L)', :'no_card'), :'no_card'),
          'stranger: rotate_card_qr answers alike for another''s card and for no card');
SELECT throws_ok(format('SELECT mps.rotate_card_qr(%L)', :'no_card'), '42501', NULL,
                 'stranger: rotate_card_qr of no card is refused (42501)');
SELECT is(pg_temp.answer(format('SELECT mps.revoke_card_qr(%L, true)', :'corp'), :'corp'),
          pg_temp.answer(format('SELECT mps.revoke_card_qr(%L, true)', :'no_card'), :'no_card'),
          'stranger: revoke_card_qr answers alike for another''s card and for no card');
SELECT is(pg_temp.answer(format('SELECT mps.bind_card_member(%L, %L)', :'corp', :'sam'), :'corp'),
          pg_temp.answer(format('SELECT mps.bind_card_member(%L, %L)', :'no_card', :'sam'), :'no_card'),
          'stranger: bind_card_member answers alike for another''s card and for no card');
SELECT throws_ok(format('SELECT mps.bind_card_member(%L, %L)', :'no_card', :'sam'), '42501', NULL,
                 'stranger: bind_card_member of no card is refused (42501)');
SELECT is(pg_temp.answer(format($$SELECT mps.set_card_status(%L, 'frozen', 'x')$$, :'corp'), :'corp'),
          pg_temp.answer(format($$SELECT mps.set_card_status(%L, 'frozen', 'x')$$, :'no_card'), :'no_card'),
          'stranger: set_card_status answers alike for another''s card and for no card');
SELECT throws_ok(format($$SELECT mps.set_card_status(%L, 'frozen', 'x')$$, :'no_card'), '42501', NULL,
                 'stranger: set_card_status of no card is refused (42501)');
SELECT is(pg_temp.answer(format('SELECT mps.unbind_card_member(%L, %L)', :'corp', :'olga'), :'corp'),
          pg_temp.answer(format('SELECT mps.unbind_card_member(%L, %L)', :'corp', :'sam'), :'corp'),
          'stranger: unbind_card_member answers alike for the owner and for someone not bound');
SELECT is(pg_temp.answer(format('SELECT mps.unbind_card_member(%L, %L)', :'corp', :'olga'), :'corp'),
          pg_temp.answer(format('SELECT mps.unbind_card_member(%L, %L)', :'no_card', :'olga'), :'no_card'),
          'stranger: unbind_card_member answers alike for another''s card and for no card');
SELECT unalike(pg_temp.answer(format('SELECT mps.unbind_card_member(%L, %L)', :'corp', :'olga'), :'corp'),
              '%owner%'::text, 'stranger: unbind_card_member does not name the member''s role'::text);
RESET ROLE;
-- A member of the card may not unbind others: told so before anything about them.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'mia_claims';
SELECT is(pg_temp.answer(format('SELECT mps.unbind_card_member(%L, %L)', :'corp', :'olga'), :'corp'),
          pg_temp.answer(format('SELECT mps.unbind_card_member(%L, %L)', :'corp', :'sam'), :'corp'),
          'card member: unbind_card_member of others answers alike, bound or not');
SELECT throws_ok(format('SELECT mps.unbind_card_member(%L, %L)', :'corp', :'sam'), '42501', NULL,
                 'card member: unbind_card_member of someone else is refused (42501)');
RESET ROLE;

-- ===== a platform freeze stays frozen =====
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT is(mps.set_card_status(:'corp', 'frozen', 'fraud investigation')::text, 'frozen',
          'platform admin: freezes the card');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'olga_claims';
SELECT throws_ok(format($$SELECT mps.set_card_status(%L, 'active')$$, :'corp'), 'MP218', NULL,
                 'owner: cannot lift the platform''s freeze (MP218)');
SELECT throws_ok(format($$SELECT mps.set_card_status(%L, 'frozen', 'my own reason')$$, :'corp'), 'MP218', NULL,
                 'owner: cannot replace the platform''s freeze with her own (MP218)');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'carl_claims';
SELECT throws_ok(format($$SELECT mps.set_card_status(%L, 'active')$$, :'corp'), 'MP218', NULL,
                 'card admin: cannot lift the platform''s freeze (MP218)');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT results_eq(format('SELECT status::text, status_reason, frozen_by::text FROM mps.cards WHERE id = %L', :'corp'),
                  $$VALUES ('frozen', 'fraud investigation', 'platform')$$,
                  'the card is still frozen by the platform, with its reason');
SELECT is(mps.set_card_status(:'corp', 'active')::text, 'active', 'platform admin: lifts the freeze');
RESET ROLE;
-- The card's own freeze: its owner sets it, its admin may lift it; the
-- platform admin may take it over, and then it is the platform's.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'olga_claims';
SELECT is(mps.set_card_status(:'corp', 'frozen', 'card lost')::text, 'frozen', 'owner: freezes the card');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'carl_claims';
SELECT is(mps.set_card_status(:'corp', 'active')::text, 'active', 'card admin: lifts the owner''s freeze');
SELECT is(mps.set_card_status(:'corp', 'frozen', 'card lost again')::text, 'frozen', 'card admin: freezes the card');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT is(mps.set_card_status(:'corp', 'frozen', 'fraud investigation')::text, 'frozen',
          'platform admin: freezes a card its owners froze');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'olga_claims';
SELECT throws_ok(format($$SELECT mps.set_card_status(%L, 'active')$$, :'corp'), 'MP218', NULL,
                 'owner: that freeze is now the platform''s (MP218)');
RESET ROLE;

-- ===== a claim uses the binding password up =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'mia_claims';
SELECT is(mps.claim_card_ownership(:'gift', 'gift-pass-one'), 'owner', 'Mia claims the gift card with its password');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'sam_claims';
SELECT throws_ok(format($$SELECT mps.claim_card_ownership(%L, 'gift-pass-one')$$, :'gift'), 'MP213', NULL,
                 'stranger: the same password claims the card no more (MP213)');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT results_eq(format($$SELECT count(*) FILTER (WHERE role = 'owner'), count(*) FILTER (WHERE member_id = %L)
                             FROM mps.card_bindings WHERE card_id = %L$$, :'sam', :'gift'),
                  $$VALUES (1::bigint, 0::bigint)$$, 'the gift card has one owner, not the stranger');
RESET ROLE;
-- Its owner sets a new password for the next owner; that one works once.
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'mia_claims';
SELECT ok(mps.set_card_binding_password(:'gift', 'gift-pass-new'), 'owner: sets a new binding password');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'sam_claims';
SELECT is(mps.claim_card_ownership(:'gift', 'gift-pass-new'), 'owner', 'the new password makes the next owner');
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'carl_claims';
SELECT throws_ok(format($$SELECT mps.claim_card_ownership(%L, 'gift-pass-new')$$, :'gift'), 'MP213', NULL,
                 'and then it is used up too (MP213)');
RESET ROLE;
-- An owner bound by the platform admin uses the printed password up as well.
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT mps.bind_card_member(:'gift2', :'carl', 'owner') IS NOT NULL AS bound \gset
RESET ROLE;
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'sam_claims';
SELECT throws_ok(format($$SELECT mps.claim_card_ownership(%L, 'gift-pass-two')$$, :'gift2'), 'MP213', NULL,
                 'stranger: a card the platform bound to an owner is not claimable with its old password (MP213)');
RESET ROLE;

-- ===== binding-password guessing, inside this REPEATABLE READ transaction =====
SET LOCAL ROLE authenticated;
SET LOCAL request.jwt.claims = :'sam_claims';
SELECT throws_ok(format($$SELECT mps.claim_card_ownership(%L, 'wrong-' || %s)$$, :'rr', i), 'MP211', NULL,
                 format('stranger: wrong password %s of 5 is MP211 (recorded)', i))
  FROM generate_series(1, 5) i;
SELECT throws_ok(format($$SELECT mps.claim_card_ownership(%L, 'wrong-6')$$, :'rr'), 'MP212', NULL,
                 'stranger: the sixth wrong password is throttled (MP212)');
SELECT throws_ok(format($$SELECT mps.claim_card_ownership(%L, 'wrong-7')$$, :'rr'), 'MP212', NULL,
                 'stranger: and the seventh');
SELECT throws_ok(format($$SELECT mps.claim_card_ownership(%L, 'rr-right-pass')$$, :'rr'), 'MP212', NULL,
                 'stranger: the right password is throttled too');
RESET ROLE;
SET LOCAL ROLE service_role;
SET LOCAL request.jwt.claims = :'admin_claims';
SELECT results_eq(format('SELECT count(*) FROM mps.card_bindings WHERE card_id = %L', :'rr'),
                  $$VALUES (0::bigint)$$, 'the guessed card has no owner');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
