-- Cards people share: issuing prepaid/corporate/voucher cards, bindings,
-- ownership by binding password (C), card status, external identities and the
-- member's own views.

CREATE TABLE mps.card_binding_attempts (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  card_id       uuid NOT NULL,          -- no FK: written while the card row is locked
  member_id     uuid,
  user_id       uuid,
  outcome       text NOT NULL CHECK (outcome IN ('ok', 'wrong_password', 'throttled')),
  attempted_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX card_binding_attempts_card_idx ON mps.card_binding_attempts (card_id, attempted_at);
ALTER TABLE mps.card_binding_attempts ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON mps.card_binding_attempts FROM PUBLIC;

CREATE FUNCTION mps_internal.lock_card(p_card_id uuid) RETURNS void
  AS 'MODULE_PATHNAME', 'mps_lock_card' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION mps_internal.adjust_card_balance(p_card_id uuid, p_delta bigint, p_reason text)
  RETURNS bigint AS 'MODULE_PATHNAME', 'mps_adjust_card_balance' LANGUAGE C VOLATILE STRICT;

CREATE FUNCTION mps.claim_card_ownership(p_card_id uuid, p_binding_password text)
RETURNS text
AS 'MODULE_PATHNAME', 'mps_claim_card_ownership'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION mps.set_card_binding_password(p_card_id uuid, p_password text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mps_set_card_binding_password'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE TYPE mps.card_issued AS (
  card_id     uuid,
  card_no     text,
  card_type   mps.card_type,
  currency    char(3),
  balance     numeric,
  expires_at  timestamptz
);

-- The caller's role on a card (NULL when not bound); platform admins get 'platform'.
CREATE FUNCTION mps_internal.my_card_role(p_card_id uuid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN mps_internal.caller_is_admin() THEN 'platform'
              ELSE (SELECT b.role::text FROM mps.card_bindings b
                    WHERE b.card_id = p_card_id AND b.member_id = mps_internal.my_member_id()) END
$$;

-- The caller's role on the card when it is 'platform' or one of p_roles;
-- otherwise 42501, worded alike whether the card is absent or not the
-- caller's. Called before the card lock (no lock for a caller who may not
-- act) and again under it.
CREATE FUNCTION mps_internal.require_card_role(p_card_id uuid, p_roles text[], p_action text, p_hint text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_role text := mps_internal.my_card_role(p_card_id);
BEGIN
  IF v_role IS NULL OR NOT (v_role = 'platform' OR v_role = ANY (p_roles)) THEN
    RAISE EXCEPTION 'permission denied: %', p_action USING ERRCODE = '42501',
      DETAIL = format('The caller may not %s on card %s.', p_action, p_card_id), HINT = p_hint;
  END IF;
  RETURN v_role;
END
$$;

CREATE FUNCTION mps_internal.card_or_fail(p_card_id uuid) RETURNS mps.cards
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.cards;
BEGIN
  SELECT * INTO v FROM mps.cards c WHERE c.id = p_card_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'card not found' USING ERRCODE = 'MP201',
      DETAIL = format('No card %s.', p_card_id), HINT = 'Check the card id.';
  END IF;
  RETURN v;
END
$$;

-- Issue a card that is not a member's default card (platform admin):
-- corporate (an enterprise's card, with a fixed discount and an owner),
-- prepaid (a gift card, unbound until claimed with its binding password, or
-- bound to an owner now), voucher (a face value paid in at issue, an expiry,
-- never recharged; pays until empty).
CREATE FUNCTION mps.issue_card(
  p_card_type          text,
  p_currency           text DEFAULT NULL,
  p_owner_member_id    uuid DEFAULT NULL,
  p_enterprise_name    text DEFAULT NULL,
  p_fixed_discount_bp  integer DEFAULT 0,
  p_face_value         numeric DEFAULT NULL,
  p_expires_at         timestamptz DEFAULT NULL,
  p_binding_password   text DEFAULT NULL)
RETURNS mps.card_issued
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type mps.card_type;
  v_currency char(3);
  v_card uuid;
  v_no text;
  v_face bigint;
  v_row mps.card_issued;
BEGIN
  PERFORM mps_internal.require_admin('issue_card');
  IF coalesce(lower(btrim(p_card_type)), '') NOT IN ('prepaid', 'corporate', 'voucher') THEN
    RAISE EXCEPTION 'unknown card type' USING ERRCODE = 'MP205',
      DETAIL = format('p_card_type = %L.', p_card_type),
      HINT = 'issue_card makes prepaid, corporate or voucher cards; personal cards come with create_member_profile().';
  END IF;
  v_type := lower(btrim(p_card_type))::mps.card_type;
  v_currency := mps_internal.check_currency(p_currency);
  IF p_fixed_discount_bp IS NULL OR p_fixed_discount_bp < 0 OR p_fixed_discount_bp > 10000
     OR (v_type <> 'corporate' AND p_fixed_discount_bp <> 0) THEN
    RAISE EXCEPTION 'invalid fixed discount' USING ERRCODE = 'MP004',
      DETAIL = format('p_fixed_discount_bp = %s for a %s card.', p_fixed_discount_bp, v_type),
      HINT = 'Corporate cards take 0 to 10000 basis points (500 = 5%); other cards none.';
  END IF;
  IF v_type = 'corporate' AND (p_owner_member_id IS NULL OR nullif(btrim(p_enterprise_name), '') IS NULL) THEN
    RAISE EXCEPTION 'corporate card needs an enterprise and an owner' USING ERRCODE = 'MP003',
      DETAIL = format('p_enterprise_name = %L, p_owner_member_id = %L.', p_enterprise_name, p_owner_member_id),
      HINT = 'Name the enterprise and the member who owns the card.';
  END IF;
  IF v_type = 'voucher' THEN
    IF p_face_value IS NULL THEN
      RAISE EXCEPTION 'voucher needs a face value' USING ERRCODE = 'MP001',
        DETAIL = 'p_face_value is missing.', HINT = 'Pass the voucher''s value, e.g. 50.00.';
    END IF;
    v_face := mps_internal.to_minor(p_face_value, v_currency, 'p_face_value');
  ELSIF p_face_value IS NOT NULL THEN
    RAISE EXCEPTION 'only vouchers have a face value' USING ERRCODE = 'MP004',
      DETAIL = format('p_face_value given for a %s card.', v_type),
      HINT = 'Fund prepaid and corporate cards with recharge_card().';
  END IF;
  IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
    RAISE EXCEPTION 'expiry is in the past' USING ERRCODE = 'MP004',
      DETAIL = format('p_expires_at = %s.', p_expires_at), HINT = 'Pass a future time, or none.';
  END IF;
  IF p_owner_member_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM mps.member_profiles m WHERE m.id = p_owner_member_id AND m.status = 'active') THEN
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = format('No active member %s.', p_owner_member_id), HINT = 'Check the owner''s member id.';
  END IF;

  LOOP
    v_no := mps_internal.new_card_no();
    INSERT INTO mps.cards (card_no, card_type, currency, fixed_discount_bp, enterprise_name, face_value, expires_at)
    VALUES (v_no, v_type, v_currency, p_fixed_discount_bp, nullif(btrim(p_enterprise_name), ''), v_face, p_expires_at)
    ON CONFLICT (card_no) DO NOTHING
    RETURNING id INTO v_card;
    EXIT WHEN v_card IS NOT NULL;
  END LOOP;
  IF p_owner_member_id IS NOT NULL THEN
    INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (v_card, p_owner_member_id, 'owner');
  END IF;
  PERFORM mps_internal.audit('card.issue', 'card', v_card::text, NULL,
    jsonb_build_object('card_no', v_no, 'card_type', v_type, 'currency', v_currency,
                       'owner', p_owner_member_id, 'enterprise', p_enterprise_name,
                       'fixed_discount_bp', p_fixed_discount_bp, 'face_value', v_face,
                       'expires_at', p_expires_at), NULL);
  IF p_binding_password IS NOT NULL THEN
    PERFORM mps.set_card_binding_password(v_card, p_binding_password);
  END IF;
  IF v_face IS NOT NULL THEN
    PERFORM mps_internal.adjust_card_balance(v_card, v_face, 'voucher face value');
  END IF;
  SELECT c.id, c.card_no, c.card_type, c.currency, mps_internal.to_major(c.balance, cur.exponent), c.expires_at
    INTO v_row FROM mps.cards c JOIN mps.currencies cur ON cur.code = c.currency WHERE c.id = v_card;
  RETURN v_row;
END
$$;

CREATE TYPE mps.binding_view AS (
  card_id     uuid,
  member_id   uuid,
  member_name text,
  role        mps.binding_role,
  created_at  timestamptz
);

-- Bind a member to a shared card, or change their role. Owners and admins of
-- the card bind admin/member/viewer; only the platform admin binds an owner
-- directly (members become owners with claim_card_ownership).
CREATE FUNCTION mps.bind_card_member(p_card_id uuid, p_member_id uuid, p_role text DEFAULT 'member')
RETURNS mps.binding_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_card mps.cards;
  v_caller text;
  v_old mps.card_bindings;
  v_row mps.binding_view;
  v_roles text[];
  v_hint text := 'Owners and admins of a card bind its members; only the platform admin binds an owner.';
BEGIN
  IF p_card_id IS NULL OR p_member_id IS NULL THEN
    RAISE EXCEPTION 'card and member are required' USING ERRCODE = 'MP003',
      DETAIL = 'p_card_id or p_member_id is missing.', HINT = 'Pass both ids.';
  END IF;
  IF p_role IS NULL OR p_role NOT IN ('owner', 'admin', 'member', 'viewer') THEN
    RAISE EXCEPTION 'unknown binding role' USING ERRCODE = 'MP004',
      DETAIL = format('p_role = %L.', p_role), HINT = 'Use admin, member or viewer (owner: platform admin only).';
  END IF;
  v_roles := CASE WHEN p_role = 'owner' THEN '{}'::text[] ELSE '{owner,admin}'::text[] END;
  PERFORM mps_internal.require_card_role(p_card_id, v_roles, 'bind_card_member', v_hint);
  PERFORM mps_internal.lock_card(p_card_id);
  v_card := mps_internal.card_or_fail(p_card_id);
  v_caller := mps_internal.require_card_role(p_card_id, v_roles, 'bind_card_member', v_hint);
  IF v_card.card_type NOT IN ('prepaid', 'corporate') THEN
    RAISE EXCEPTION 'card does not take bindings' USING ERRCODE = 'MP217',
      DETAIL = format('Card %s is a %s card.', p_card_id, v_card.card_type),
      HINT = 'Only prepaid and corporate cards are shared.';
  END IF;
  IF v_card.status = 'closed' THEN
    RAISE EXCEPTION 'card is closed' USING ERRCODE = 'MP203',
      DETAIL = format('Card %s is closed.', p_card_id), HINT = 'A closed card cannot take new members.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM mps.member_profiles m WHERE m.id = p_member_id AND m.status = 'active') THEN
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = format('No active member %s.', p_member_id), HINT = 'Check the member id.';
  END IF;
  SELECT * INTO v_old FROM mps.card_bindings b WHERE b.card_id = p_card_id AND b.member_id = p_member_id;
  IF v_old.role = 'owner' AND p_role <> 'owner' AND NOT EXISTS (
       SELECT 1 FROM mps.card_bindings b WHERE b.card_id = p_card_id AND b.role = 'owner' AND b.member_id <> p_member_id) THEN
    RAISE EXCEPTION 'card would lose its last owner' USING ERRCODE = 'MP215',
      DETAIL = format('Member %s is the only owner of card %s.', p_member_id, p_card_id),
      HINT = 'Add another owner first.';
  END IF;
  IF v_old.role = 'owner' AND v_caller = 'admin' THEN
    RAISE EXCEPTION 'permission denied: bind_card_member' USING ERRCODE = '42501',
      DETAIL = 'A card admin cannot change an owner''s role.', HINT = 'Ask an owner.';
  END IF;
  INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (p_card_id, p_member_id, p_role::mps.binding_role)
  ON CONFLICT (card_id, member_id) DO UPDATE SET role = excluded.role;
  -- A binding password is for the card's next owner: one bound here uses it up.
  IF p_role = 'owner' THEN
    UPDATE mps.cards c SET binding_password_hash = NULL, updated_at = now()
     WHERE c.id = p_card_id AND c.binding_password_hash IS NOT NULL;
  END IF;
  PERFORM mps_internal.audit('card.bind', 'card', p_card_id::text,
    CASE WHEN v_old.card_id IS NULL THEN NULL ELSE jsonb_build_object('member_id', p_member_id, 'role', v_old.role) END,
    jsonb_build_object('member_id', p_member_id, 'role', p_role), NULL);
  SELECT b.card_id, b.member_id, m.name, b.role, b.created_at INTO v_row
    FROM mps.card_bindings b JOIN mps.member_profiles m ON m.id = b.member_id
   WHERE b.card_id = p_card_id AND b.member_id = p_member_id;
  RETURN v_row;
END
$$;

-- Unbind a member: owners unbind anyone, card admins unbind members and
-- viewers, anyone unbinds themselves; never the card's last owner. Runs under
-- the card lock, so it cannot interleave with a charge or another unbind.
CREATE FUNCTION mps.unbind_card_member(p_card_id uuid, p_member_id uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_me uuid := mps_internal.my_member_id();
  v_target uuid := coalesce(p_member_id, v_me);
  v_caller text;
  v_old mps.card_bindings;
  v_roles text[];
  v_hint text := 'Owners unbind anyone, card admins unbind members and viewers, everyone may leave.';
BEGIN
  IF p_card_id IS NULL OR v_target IS NULL THEN
    RAISE EXCEPTION 'card and member are required' USING ERRCODE = 'MP003',
      DETAIL = 'p_card_id is missing, or no member was named and the caller has no profile.',
      HINT = 'Pass the card id (and the member to unbind, unless it is yourself).';
  END IF;
  -- Who may act, before anything about the member is read: anyone bound
  -- leaves, owners and card admins unbind others.
  v_roles := CASE WHEN v_target = v_me THEN '{owner,admin,member,viewer}'::text[] ELSE '{owner,admin}'::text[] END;
  PERFORM mps_internal.require_card_role(p_card_id, v_roles, 'unbind_card_member', v_hint);
  PERFORM mps_internal.lock_card(p_card_id);
  v_caller := mps_internal.require_card_role(p_card_id, v_roles, 'unbind_card_member', v_hint);
  SELECT * INTO v_old FROM mps.card_bindings b WHERE b.card_id = p_card_id AND b.member_id = v_target;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'member is not bound to this card' USING ERRCODE = 'MP209',
      DETAIL = format('Member %s has no binding on card %s.', v_target, p_card_id),
      HINT = 'List the card''s bindings first.';
  END IF;
  IF v_target <> v_me AND v_caller = 'admin' AND v_old.role NOT IN ('member', 'viewer') THEN
    RAISE EXCEPTION 'permission denied: unbind_card_member' USING ERRCODE = '42501',
      DETAIL = 'A card admin unbinds members and viewers only.', HINT = v_hint;
  END IF;
  IF v_old.role = 'owner' AND NOT EXISTS (
       SELECT 1 FROM mps.card_bindings b WHERE b.card_id = p_card_id AND b.role = 'owner' AND b.member_id <> v_target) THEN
    RAISE EXCEPTION 'card would lose its last owner' USING ERRCODE = 'MP215',
      DETAIL = format('Member %s is the only owner of card %s.', v_target, p_card_id),
      HINT = 'Add another owner first, or close the card.';
  END IF;
  DELETE FROM mps.card_bindings b WHERE b.card_id = p_card_id AND b.member_id = v_target;
  -- The member's own codes for this card stop working with the binding.
  UPDATE mps.card_qr_codes q SET revoked_at = now(), revoke_reason = 'unbound'
   WHERE q.card_id = p_card_id AND q.holder_member_id = v_target AND q.used_at IS NULL AND q.revoked_at IS NULL;
  PERFORM mps_internal.audit('card.unbind', 'card', p_card_id::text,
    jsonb_build_object('member_id', v_target, 'role', v_old.role), NULL, NULL);
  RETURN true;
END
$$;

-- Freeze, unfreeze or close a card, with a reason. The platform admin may do
-- all three; a card's owner (or a corporate/prepaid card's admin) may freeze
-- and unfreeze it, except a freeze the platform admin set (frozen_by). Closing needs a zero balance, or p_payout := true by the
-- platform admin, which pays the balance out with an adjustment movement.
CREATE FUNCTION mps.set_card_status(p_card_id uuid, p_status text, p_reason text DEFAULT NULL,
                                    p_payout boolean DEFAULT false)
RETURNS mps.card_status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_card mps.cards;
  v_caller text;
  v_roles text[];
  v_by mps.card_authority;
  v_hint text := 'Owners (and admins of shared cards) freeze and unfreeze; only the platform admin closes.';
BEGIN
  IF p_card_id IS NULL THEN
    RAISE EXCEPTION 'card id is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_card_id is missing.', HINT = 'Pass the card''s id.';
  END IF;
  IF p_status IS NULL OR p_status NOT IN ('active', 'frozen', 'closed') THEN
    RAISE EXCEPTION 'unknown card status' USING ERRCODE = 'MP004',
      DETAIL = format('p_status = %L.', p_status), HINT = 'Use active, frozen or closed.';
  END IF;
  v_roles := CASE WHEN p_status = 'closed' THEN '{}'::text[] ELSE '{owner,admin}'::text[] END;
  PERFORM mps_internal.require_card_role(p_card_id, v_roles, 'set_card_status', v_hint);
  PERFORM mps_internal.lock_card(p_card_id);
  v_card := mps_internal.card_or_fail(p_card_id);
  v_caller := mps_internal.require_card_role(p_card_id, v_roles, 'set_card_status', v_hint);
  IF v_caller = 'admin' AND v_card.card_type NOT IN ('prepaid', 'corporate') THEN
    RAISE EXCEPTION 'permission denied: set_card_status' USING ERRCODE = '42501',
      DETAIL = format('The caller may not set_card_status on card %s.', p_card_id), HINT = v_hint;
  END IF;
  IF v_card.status = 'closed' THEN
    RAISE EXCEPTION 'card is closed' USING ERRCODE = 'MP203',
      DETAIL = format('Card %s is closed for good.', p_card_id), HINT = 'Issue a new card.';
  END IF;
  -- A freeze is lifted (or changed) only by the authority that set it or a higher one.
  v_by := CASE WHEN v_caller = 'platform' THEN 'platform' ELSE 'card' END;
  IF v_card.status = 'frozen' AND v_by < coalesce(v_card.frozen_by, 'platform') THEN
    RAISE EXCEPTION 'card was frozen by the platform admin' USING ERRCODE = 'MP218',
      DETAIL = format('Card %s stays frozen until the platform admin lifts the freeze.', p_card_id),
      HINT = 'Contact the platform''s support.';
  END IF;
  IF p_status <> 'active' AND nullif(btrim(p_reason), '') IS NULL THEN
    RAISE EXCEPTION 'reason is required' USING ERRCODE = 'MP003',
      DETAIL = format('Setting a card %s needs a reason.', p_status), HINT = 'Say why, e.g. "card lost".';
  END IF;
  IF p_status = 'closed' AND v_card.balance > 0 THEN
    IF NOT coalesce(p_payout, false) THEN
      RAISE EXCEPTION 'card still holds a balance' USING ERRCODE = 'MP216',
        DETAIL = format('Card %s holds %s %s.', p_card_id,
                        mps_internal.to_major(v_card.balance, (SELECT exponent FROM mps.currencies WHERE code = v_card.currency)),
                        v_card.currency),
        HINT = 'Spend or refund it first, or close with p_payout := true to pay it out.';
    END IF;
    PERFORM mps_internal.adjust_card_balance(p_card_id, -v_card.balance, 'payout on close: ' || p_reason);
  END IF;
  UPDATE mps.cards c SET status = p_status::mps.card_status, status_reason = nullif(btrim(p_reason), ''),
         frozen_by = CASE WHEN p_status = 'frozen' THEN v_by END,
         updated_at = now() WHERE c.id = p_card_id;
  IF p_status = 'closed' THEN
    UPDATE mps.card_qr_codes q SET revoked_at = now(), revoke_reason = 'card closed'
     WHERE q.card_id = p_card_id AND q.used_at IS NULL AND q.revoked_at IS NULL;
  END IF;
  PERFORM mps_internal.audit('card.status', 'card', p_card_id::text,
    jsonb_build_object('status', v_card.status),
    jsonb_build_object('status', p_status, 'reason', p_reason, 'payout', coalesce(p_payout, false),
                       'by', v_by), NULL);
  RETURN p_status::mps.card_status;
END
$$;

CREATE FUNCTION mps.list_card_bindings(p_card_id uuid)
RETURNS SETOF mps.binding_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF mps_internal.my_card_role(p_card_id) IS NULL THEN
    RAISE EXCEPTION 'card not found' USING ERRCODE = 'MP201',
      DETAIL = format('No card %s is bound to the caller.', p_card_id), HINT = 'List your cards with get_my_cards().';
  END IF;
  RETURN QUERY SELECT b.card_id, b.member_id, m.name, b.role, b.created_at
    FROM mps.card_bindings b JOIN mps.member_profiles m ON m.id = b.member_id
   WHERE b.card_id = p_card_id ORDER BY b.created_at, m.name;
END
$$;

GRANT EXECUTE ON FUNCTION mps.claim_card_ownership(uuid, text), mps.set_card_binding_password(uuid, text),
  mps.bind_card_member(uuid, uuid, text), mps.unbind_card_member(uuid, uuid),
  mps.set_card_status(uuid, text, text, boolean), mps.list_card_bindings(uuid)
  TO mps_admin, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.issue_card(text, text, uuid, text, integer, numeric, timestamptz, text)
  TO mps_admin, mps_merchant_api, mps_member_app;
