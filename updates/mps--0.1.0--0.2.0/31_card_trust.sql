-- ---- cards: permission first, freezes keep their authority, passwords are used up
-- (Trust.) rotate/revoke_card_qr (C), bind_card_member, unbind_card_member
-- and set_card_status decide who may act before they take the card's lock,
-- and answer a card that does not exist like one that is not the caller's;
-- unbind_card_member tells no outsider a member's role. A freeze records who
-- set it (cards.frozen_by): a card's owners and admins cannot lift the
-- platform admin's. A claim uses the binding password up (src/binding.c), and
-- so does the platform admin binding an owner.
CREATE TYPE mps.card_authority AS ENUM ('card', 'platform');
ALTER TABLE mps.cards ADD COLUMN frozen_by mps.card_authority;
-- Cards frozen before: by whom the audit log says (its last card.status event).
UPDATE mps.cards c SET frozen_by = CASE WHEN coalesce(
    (SELECT e.actor_admin FROM audit.event_log e
      WHERE e.action = 'card.status' AND e.entity_type = 'card' AND e.entity_id = c.id::text
      ORDER BY e.id DESC LIMIT 1), true) THEN 'platform' ELSE 'card' END::mps.card_authority
 WHERE c.status = 'frozen';

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
REVOKE ALL ON FUNCTION mps_internal.require_card_role(uuid, text[], text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mps.bind_card_member(p_card_id uuid, p_member_id uuid, p_role text DEFAULT 'member')
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

CREATE OR REPLACE FUNCTION mps.unbind_card_member(p_card_id uuid, p_member_id uuid DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION mps.set_card_status(p_card_id uuid, p_status text, p_reason text DEFAULT NULL,
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

