-- Row-level security: reads only where safe, writes for nobody. Every write
-- goes through an RPC (SECURITY DEFINER, run as the extension owner, who is
-- not subject to these policies). The API roles get SELECT on the tables a
-- client may read; RLS then narrows it to the caller's own rows.

DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['currencies', 'member_profiles', 'member_external_identities',
    'membership_levels', 'cards', 'card_bindings', 'merchants', 'merchant_users', 'card_qr_codes',
    'transactions', 'point_ledger', 'idempotency_registry', 'merchant_order_registry', 'settlements'] LOOP
    EXECUTE format('ALTER TABLE mps.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('REVOKE ALL ON mps.%I FROM PUBLIC', t);
  END LOOP;
  FOREACH t IN ARRAY ARRAY['event_log', 'chain', 'seal_state'] LOOP
    EXECUTE format('ALTER TABLE audit.%I ENABLE ROW LEVEL SECURITY', t);
  END LOOP;
END
$rls$;

-- Configuration everyone signed in may read.
CREATE POLICY currencies_read ON mps.currencies FOR SELECT USING (true);
CREATE POLICY levels_read ON mps.membership_levels FOR SELECT USING (true);

-- A member's own profile, identities, bindings, cards, movements.
CREATE POLICY member_profiles_own ON mps.member_profiles FOR SELECT
  USING (auth_user_id = (SELECT mps_internal.caller_user_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY identities_own ON mps.member_external_identities FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY bindings_own ON mps.card_bindings FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY cards_own ON mps.cards FOR SELECT
  USING (id = ANY ((SELECT mps_internal.my_card_ids())::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY point_ledger_own ON mps.point_ledger FOR SELECT
  USING (card_id = ANY ((SELECT mps_internal.my_card_ids())::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));

-- Transactions: the card's members, the merchant's users.
CREATE POLICY transactions_own ON mps.transactions FOR SELECT
  USING (card_id = ANY ((SELECT mps_internal.my_card_ids())::uuid[])
         OR merchant_id = ANY ((SELECT mps_internal.my_merchant_ids(false))::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));

-- Merchants: their own users; settlements: their managers.
CREATE POLICY merchants_own ON mps.merchants FOR SELECT
  USING (id = ANY ((SELECT mps_internal.my_merchant_ids(false))::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY merchant_users_own ON mps.merchant_users FOR SELECT
  USING (user_id = (SELECT mps_internal.caller_user_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY settlements_own ON mps.settlements FOR SELECT
  USING (merchant_id = ANY ((SELECT mps_internal.my_merchant_ids(true))::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));

-- card_qr_codes, the registries and the audit tables have no policy: no API
-- role reads them directly (QR hashes and request hashes stay inside).

GRANT SELECT ON mps.currencies, mps.membership_levels, mps.member_profiles,
  mps.member_external_identities, mps.card_bindings, mps.point_ledger,
  mps.transactions, mps.merchants, mps.merchant_users, mps.settlements
  TO mps_admin, mps_merchant_api, mps_member_app;
-- Cards: every column but binding_password_hash. A card's viewers read its
-- row, and a bcrypt hash of a password people chose is cracked offline; MPS
-- checks it as the owner, so no API role (mps_admin neither) needs it. A
-- column added later is readable only once it is listed here.
GRANT SELECT (id, card_no, card_type, status, status_reason, currency, balance, points, level_id,
              fixed_discount_bp, enterprise_name, face_value, expires_at, created_at, updated_at,
              frozen_by)
  ON mps.cards TO mps_admin, mps_merchant_api, mps_member_app;
