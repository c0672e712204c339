-- Cards people share: corporate cards, bindings, binding passwords, prepaid
-- and voucher cards, card status, identities, member self-service.
SET client_min_messages = warning;
\set VERBOSITY terse
\o /dev/null
SELECT mps.grant_role_privileges('mps_member_app', 'authenticated');
SELECT mps.grant_role_privileges('mps_merchant_api', 'authenticated');
\o

-- Runs a statement, returns 'ok' or "SQLSTATE: message".
CREATE SCHEMA t;
GRANT USAGE ON SCHEMA t TO authenticated, anon;
CREATE FUNCTION t.try(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION t.try(text) TO authenticated, anon;
-- Act as a signed-in user for the rest of the transaction.
CREATE FUNCTION t.as_user(p_sub text) RETURNS void LANGUAGE sql AS $$
  SELECT set_config('request.jwt.claims', jsonb_build_object('sub', p_sub, 'role', 'authenticated')::text, true);
  SELECT NULL::void;
$$;
GRANT EXECUTE ON FUNCTION t.as_user(text) TO authenticated, anon;
-- A card's money as the platform admin sees it: balance and movement count.
CREATE FUNCTION t.money(p_card uuid) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT format('balance=%s txs=%s', mps_internal.to_major(c.balance, 2),
                (SELECT count(*) FROM mps.transactions x WHERE x.card_id = c.id))
  FROM mps.cards c WHERE c.id = p_card
$$;

SELECT coalesce(max(id), 0) AS audit_start FROM audit.event_log \gset
-- People: an enterprise owner, an enterprise admin, an employee, an outsider, a cashier.
SELECT member_id AS boss FROM mps.create_member_profile(p_name := 'Boss', p_auth_user_id := 'c0000000-0000-0000-0000-000000000001') \gset
SELECT member_id AS admin FROM mps.create_member_profile(p_name := 'Admin', p_auth_user_id := 'c0000000-0000-0000-0000-000000000002') \gset
SELECT member_id AS emp FROM mps.create_member_profile(p_name := 'Employee', p_auth_user_id := 'c0000000-0000-0000-0000-000000000003') \gset
SELECT member_id AS outsider FROM mps.create_member_profile(p_name := 'Outsider', p_auth_user_id := 'c0000000-0000-0000-0000-000000000004') \gset
SELECT code FROM mps.create_merchant('CORPSHOP', 'Corp Shop');
SELECT role FROM mps.assign_merchant_user('CORPSHOP', 'c0000000-0000-0000-0000-0000000000ff', 'operator');

-- Issuing: corporate needs an enterprise and an owner; bad input refused.
SELECT card_id AS corp, card_type, balance FROM mps.issue_card('corporate', p_owner_member_id := :'boss',
  p_enterprise_name := 'ACME Ltd', p_fixed_discount_bp := 1000, p_binding_password := 'acme-binding-1') \gset
SELECT :'corp' IS NOT NULL AS corporate_issued;
SELECT t.try($$SELECT * FROM mps.issue_card('corporate', p_enterprise_name := 'No owner')$$);
SELECT t.try($$SELECT * FROM mps.issue_card('golden')$$);
SELECT t.try($$SELECT * FROM mps.issue_card('prepaid', p_fixed_discount_bp := 100)$$);
SELECT t.try($$SELECT * FROM mps.issue_card('voucher')$$);
SELECT t.try($$SELECT * FROM mps.issue_card('voucher', p_face_value := 10.001)$$);
SELECT t.try($$SELECT * FROM mps.issue_card('prepaid', p_binding_password := 'short')$$);
SELECT t.try($$SELECT * FROM mps.issue_card('prepaid', p_expires_at := now() - interval '1 day')$$);
SELECT binding_password_hash LIKE '$2b$10$%' AS bcrypt_cost_10,
       binding_password_hash NOT LIKE '%acme-binding-1%' AS no_plain
  FROM mps.cards WHERE id = :'corp';

-- The owner binds an admin and a member; the admin can bind members too.
-- The owner may not recharge the card (only the platform admin credits a card
-- without a verified payment): refused, nothing moved; the admin funds it.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000001');
SELECT member_name, role FROM mps.bind_card_member(:'corp', :'admin', 'admin');
SELECT member_name, role FROM mps.bind_card_member(:'corp', :'emp', 'member');
SELECT t.try(format($$SELECT * FROM mps.bind_card_member(%L, %L, 'owner')$$, :'corp', :'outsider'));
SELECT t.try(format($$SELECT * FROM mps.bind_card_member(%L, %L, 'chief')$$, :'corp', :'outsider'));
SELECT t.try(format($$SELECT * FROM mps.recharge_card(%L, 300.00, 'corp-fund-1')$$, :'corp')) AS owner_recharges;
COMMIT;
SELECT t.money(:'corp') AS corp_after_owner_refused;
SELECT balance_after FROM mps.recharge_card(:'corp', 300.00, 'corp-fund-1');

-- The enterprise admin binds, rotates and revokes the shared code, freezes;
-- a recharge is refused to them too (nothing moved), the platform admin does it.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000002');
SELECT t.try(format($$SELECT * FROM mps.recharge_card(%L, 100.00, 'corp-fund-2')$$, :'corp')) AS admin_recharges;
SELECT member_name, role FROM mps.bind_card_member(:'corp', :'outsider', 'viewer');
SELECT single_use FROM mps.rotate_card_qr(:'corp', 600, true);
SELECT mps.revoke_card_qr(:'corp', true) AS revoked_shared;
SELECT mps.set_card_status(:'corp', 'frozen', 'audit in progress');
SELECT mps.set_card_status(:'corp', 'active');
SELECT t.try(format($$SELECT mps.set_card_status(%L, 'closed', 'done')$$, :'corp'));
SELECT t.try(format($$SELECT * FROM mps.bind_card_member(%L, %L, 'viewer')$$, :'corp', :'boss'));
COMMIT;
SELECT t.money(:'corp') AS corp_after_admin_refused;
SELECT balance_after FROM mps.recharge_card(:'corp', 100.00, 'corp-fund-2');

-- The employee pays with their own code, but can neither recharge nor bind.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000003');
SELECT qr_plain AS emp_qr, single_use FROM mps.rotate_card_qr(:'corp') \gset
SELECT :'single_use' AS employee_code_single_use;
SELECT t.try(format($$SELECT * FROM mps.recharge_card(%L, 10, 'emp-fund')$$, :'corp'));
SELECT t.try(format($$SELECT * FROM mps.bind_card_member(%L, %L, 'member')$$, :'corp', :'outsider'));
SELECT t.try(format($$SELECT * FROM mps.rotate_card_qr(%L, 600, true)$$, :'corp'));
SELECT t.try(format($$SELECT mps.set_card_status(%L, 'frozen', 'x')$$, :'corp'));
SELECT card_type, role FROM mps.get_my_bindings() ORDER BY card_type;
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-0000000000ff');
SELECT raw_amount, discount_amount, final_amount, balance_after, points_earned
  FROM mps.merchant_charge_by_qr('CORPSHOP', :'emp_qr', 80.00, 'corp-pay-1');
COMMIT;

-- A viewer may not pay; the outsider (viewer) cannot rotate a code.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000004');
SELECT t.try(format($$SELECT * FROM mps.rotate_card_qr(%L)$$, :'corp'));
SELECT count(*) AS bindings_seen FROM mps.list_card_bindings(:'corp');
COMMIT;

-- Unbinding: the admin unbinds the viewer; the employee leaves by
-- themselves; the last owner cannot leave; an admin cannot unbind the owner.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000002');
SELECT mps.unbind_card_member(:'corp', :'outsider') AS admin_unbinds_viewer;
SELECT t.try(format($$SELECT mps.unbind_card_member(%L, %L)$$, :'corp', :'boss'));
SELECT t.as_user('c0000000-0000-0000-0000-000000000003');
SELECT mps.unbind_card_member(:'corp') AS employee_leaves;
SELECT t.try(format($$SELECT mps.unbind_card_member(%L)$$, :'corp'));
SELECT t.as_user('c0000000-0000-0000-0000-000000000001');
SELECT t.try(format($$SELECT mps.unbind_card_member(%L)$$, :'corp'));
SELECT t.try(format($$SELECT * FROM mps.bind_card_member(%L, %L, 'member')$$, :'corp', :'boss'));
COMMIT;
-- The employee's code died with the binding.
SELECT count(*) AS live_employee_codes FROM mps.card_qr_codes
 WHERE card_id = :'corp' AND holder_member_id = :'emp' AND used_at IS NULL AND revoked_at IS NULL;

-- Binding password: right, wrong, throttled, audited.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000004');
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, 'wrong-1')$$, :'corp'));
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, 'wrong-2')$$, :'corp'));
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, 'wrong-3')$$, :'corp'));
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, 'wrong-4')$$, :'corp'));
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, 'wrong-5')$$, :'corp'));
-- Now even the right password is refused for the window.
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, 'acme-binding-1')$$, :'corp'));
-- A burst of guesses at a closed door is refused before any check, without
-- a background worker: nothing more is written.
SELECT count(*) AS burst_throttled FROM generate_series(1, 20) i
 WHERE t.try(format($$SELECT mps.claim_card_ownership(%L, 'burst-' || %s)$$, :'corp', i)) LIKE 'MP212:%';
ROLLBACK;
-- The caller rolled back, yet every wrong attempt was recorded and audited
-- (the refusals at the closed door were not: they cost nothing).
SELECT outcome, count(*) FROM mps.card_binding_attempts WHERE card_id = :'corp' GROUP BY outcome ORDER BY outcome;
SELECT after->>'outcome' AS outcome, count(*) FROM audit.event_log
 WHERE action = 'card.binding_attempt' AND entity_id = :'corp' GROUP BY 1 ORDER BY 1;
-- Once the window has passed, the right password binds the caller as owner.
UPDATE mps.card_binding_attempts SET attempted_at = attempted_at - interval '16 minutes' WHERE card_id = :'corp';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000004');
SELECT mps.claim_card_ownership(:'corp', 'acme-binding-1') AS claimed;
SELECT mps.claim_card_ownership(:'corp', 'acme-binding-1') AS claimed_again;
COMMIT;
SELECT count(*) AS owners FROM mps.card_bindings WHERE card_id = :'corp' AND role = 'owner';
-- With two owners the first one may leave.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000001');
SELECT mps.unbind_card_member(:'corp') AS first_owner_leaves;
COMMIT;

-- A prepaid gift card: issued unbound, funded, bound later with its password.
SELECT card_id AS gift FROM mps.issue_card('prepaid', p_binding_password := 'gift-card-pass') \gset
SELECT balance_after FROM mps.recharge_card(:'gift', 200.00, 'gift-fund');
SELECT count(*) AS bindings_before FROM mps.card_bindings WHERE card_id = :'gift';
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000003');
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, NULL)$$, :'gift'));
SELECT mps.claim_card_ownership(:'gift', 'gift-card-pass') AS claimed;
SELECT card_type, balance, my_role FROM mps.get_card(:'gift');
-- Its new owner may not recharge it: refused, nothing moved; the admin tops it up.
SELECT t.try(format($$SELECT * FROM mps.recharge_card(%L, 50.00, 'gift-topup')$$, :'gift')) AS owner_recharges;
COMMIT;
SELECT t.money(:'gift') AS gift_after_owner_refused;
SELECT balance_after FROM mps.recharge_card(:'gift', 50.00, 'gift-topup');
-- A card without a binding password cannot be claimed; personal cards take no bindings.
SELECT card_id AS nopass FROM mps.issue_card('prepaid') \gset
SELECT card_id AS personal FROM mps.get_card((SELECT b.card_id FROM mps.card_bindings b WHERE b.member_id = :'emp' LIMIT 1)) \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000003');
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, 'whatever-1')$$, :'nopass'));
SELECT t.try(format($$SELECT * FROM mps.bind_card_member(%L, %L, 'member')$$, :'personal', :'outsider'));
COMMIT;

-- A voucher: face value paid in at issue, pays down to zero, never recharged.
SELECT card_id AS voucher, balance FROM mps.issue_card('voucher', p_face_value := 30.00,
  p_expires_at := now() + interval '30 days', p_owner_member_id := :'outsider') \gset
SELECT :'balance' AS voucher_balance;
SELECT qr_plain AS vqr FROM mps.rotate_card_qr(:'voucher') \gset
SELECT final_amount, balance_after FROM mps.merchant_charge_by_qr('CORPSHOP', :'vqr', 20.00, 'voucher-1');
SELECT qr_plain AS vqr FROM mps.rotate_card_qr(:'voucher') \gset
SELECT t.try(format($$SELECT * FROM mps.merchant_charge_by_qr('CORPSHOP', %L, 10.01, 'voucher-2')$$, :'vqr'));
SELECT final_amount, balance_after FROM mps.merchant_charge_by_qr('CORPSHOP', :'vqr', 10.00, 'voucher-3');
SELECT t.try(format($$SELECT * FROM mps.recharge_card(%L, 10, 'voucher-topup')$$, :'voucher'));
-- An expired voucher does not pay.
UPDATE mps.cards SET expires_at = now() - interval '1 second' WHERE id = :'voucher';
SELECT t.try(format($$SELECT * FROM mps.rotate_card_qr(%L)$$, :'voucher'));
SELECT qr_plain AS vqr FROM mps.rotate_card_qr(:'gift', 600, true) \gset

-- Closing: refused with a balance, allowed with a payout by the platform admin.
SELECT t.try(format($$SELECT mps.set_card_status(%L, 'closed', 'customer left')$$, :'gift'));
SELECT t.try(format($$SELECT mps.set_card_status(%L, 'closed', NULL)$$, :'gift'));
SELECT mps.set_card_status(:'gift', 'closed', 'customer left', true) AS closed_with_payout;
SELECT balance, status, status_reason FROM mps.cards WHERE id = :'gift';
SELECT kind, amount, reason FROM mps.transactions WHERE card_id = :'gift' AND kind = 'adjustment';
SELECT t.try(format($$SELECT mps.set_card_status(%L, 'active')$$, :'gift'));
SELECT t.try(format($$SELECT * FROM mps.merchant_charge_by_qr('CORPSHOP', %L, 1.00, 'after-close')$$, :'vqr'));

-- External identities: only the platform admin links (the app's server, once
-- it verified the provider's login); members learn nothing by trying.
SELECT name, identities FROM mps.link_external_identity('wechat', 'wx-employee', :'emp');
SELECT name, identities FROM mps.link_external_identity('wechat', 'wx-employee', :'emp');
SELECT t.try(format($$SELECT * FROM mps.link_external_identity('wechat', 'wx-other', %L)$$, :'emp'));
SELECT t.try(format($$SELECT * FROM mps.link_external_identity('WeChat!', 'x', %L)$$, :'emp'));
SELECT t.try(format($$SELECT * FROM mps.link_external_identity('line', NULL, %L)$$, :'emp'));
SELECT t.try(format($$SELECT * FROM mps.link_external_identity('wechat', 'wx-employee', %L)$$, :'outsider'));
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000003');
SELECT t.try($$SELECT * FROM mps.link_external_identity('line', 'l1')$$);
SELECT t.try(format($$SELECT * FROM mps.link_external_identity('line', 'l1', %L)$$, :'boss'));
SELECT t.try($$SELECT * FROM mps.find_member_by_identity('wechat', 'wx-employee')$$);
SELECT t.as_user('c0000000-0000-0000-0000-000000000004');
SELECT t.try($$SELECT * FROM mps.link_external_identity('wechat', 'wx-employee')$$);
SELECT t.try($$SELECT * FROM mps.link_external_identity('wechat', 'wx-unused')$$);
-- The cashier: the employee paid there, but with the corporate card she has
-- left since, so she is no longer the shop's customer: "not found", as an
-- identity nobody has. A walk-in the till registered is found, masked.
SELECT t.as_user('c0000000-0000-0000-0000-0000000000ff');
SELECT t.try($$SELECT * FROM mps.find_member_by_identity('wechat', 'wx-employee')$$);
SELECT member_id AS walkin FROM mps.create_member_profile(p_name := 'Walk-in', p_phone := '+34 600 111 222',
                                                           p_email := 'walk.in@example.com') \gset
RESET ROLE;
SELECT set_config('request.jwt.claims', '', true) AS platform_admin;
SELECT identities FROM mps.link_external_identity('line', 'line-walkin', :'walkin');
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-0000000000ff');
SELECT name, phone, email, identities FROM mps.find_member_by_identity('line', 'line-walkin');
SELECT t.try($$SELECT * FROM mps.find_member_by_identity('wechat', 'nobody')$$);
SELECT t.as_user('c0000000-0000-0000-0000-000000000003');
SELECT mps.unlink_external_identity('wechat') AS unlinked;
SELECT mps.unlink_external_identity('wechat') AS unlinked_again;
COMMIT;

-- Self-service: profile, bindings, transactions newest first, a page at a time.
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000004');
SELECT name, identities FROM mps.get_my_profile();
SELECT card_type, role FROM mps.get_my_bindings() ORDER BY card_type;
SELECT kind, amount FROM mps.get_my_transactions(p_limit := 2, p_card_id := :'corp');
SELECT count(*) AS older FROM mps.get_my_transactions(p_limit := 50, p_card_id := :'corp',
  p_before := (SELECT min(created_at) FROM mps.get_my_transactions(p_limit := 2, p_card_id := :'corp')));
SELECT t.try($$SELECT * FROM mps.get_my_transactions(p_limit := 0)$$);
RESET ROLE;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) IS NOT NULL AS anon;
SELECT t.try($$SELECT * FROM mps.get_my_profile()$$);
SELECT t.try($$SELECT * FROM mps.issue_card('prepaid')$$);
COMMIT;

-- Fail closed: a refused attempt that cannot be recorded (here the log table
-- refuses the row, as a broken log would) fails with MP214, not MP211.
ALTER TABLE mps.card_binding_attempts ADD CONSTRAINT test_log_broken CHECK (outcome = 'ok') NOT VALID;
SELECT card_id AS locked_gift FROM mps.issue_card('prepaid', p_binding_password := 'gift-card-pass-2') \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT t.as_user('c0000000-0000-0000-0000-000000000003');
SELECT t.try(format($$SELECT mps.claim_card_ownership(%L, 'not-the-password')$$, :'locked_gift'));
ROLLBACK;
ALTER TABLE mps.card_binding_attempts DROP CONSTRAINT test_log_broken;

-- Audit trail and ledger.
SELECT action, count(*) FROM audit.event_log
 WHERE id > :audit_start AND action IN ('card.issue', 'card.bind', 'card.unbind', 'card.claim_owner', 'card.status',
                  'card.set_binding_password', 'identity.link', 'identity.unlink', 'tx.adjustment')
 GROUP BY action ORDER BY action;
SELECT count(*) AS violations FROM mps.verify_ledger();
