-- Members and their cards: profile creation (issues the default card) and the
-- member's own card views.

CREATE TYPE mps.member_created AS (
  member_id  uuid,
  card_id    uuid,
  card_no    text,
  card_type  mps.card_type,
  currency   char(3),
  level_code text
);

CREATE TYPE mps.card_view AS (
  card_id            uuid,
  card_no            text,
  card_type          mps.card_type,
  status             mps.card_status,
  my_role            mps.binding_role,
  currency           char(3),
  balance            numeric,
  points             bigint,
  level_code         text,
  level_name         text,
  discount_bp        integer,
  next_level_code    text,
  next_level_points  bigint,
  expires_at         timestamptz,
  created_at         timestamptz
);

-- Who may create a profile: the platform admin (for anyone, optionally linked
-- to an auth user), any merchant user (a member registered at the till, not
-- linked; the merchant is recorded, she is then its customer), or a
-- signed-in user for themselves (linked to their own subject). Only the
-- platform admin links an external identity: the app verified the provider's
-- login, which MPS cannot; anyone else naming one is refused before it is
-- looked up, so nobody learns whether an id is taken.
CREATE FUNCTION mps.create_member_profile(
  p_name               text,
  p_phone              text DEFAULT NULL,
  p_email              text DEFAULT NULL,
  p_binding_user_org   text DEFAULT NULL,
  p_binding_org_id     text DEFAULT NULL,
  p_default_card_type  text DEFAULT 'standard',
  p_currency           text DEFAULT NULL,
  p_auth_user_id       uuid DEFAULT NULL,
  p_merchant_code      text DEFAULT NULL)
RETURNS mps.member_created
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_admin boolean := mps_internal.caller_is_admin();
  v_user uuid := mps_internal.caller_user_id();
  v_auth uuid;
  v_name text := btrim(p_name);
  v_phone text := nullif(regexp_replace(coalesce(p_phone, ''), '[\s().-]', '', 'g'), '');
  v_email text := nullif(btrim(p_email), '');
  v_provider text := nullif(lower(btrim(p_binding_user_org)), '');
  v_external text := nullif(btrim(p_binding_org_id), '');
  v_type mps.card_type;
  v_currency char(3);
  v_member uuid;
  v_card uuid;
  v_card_no text;
  v_level integer;
  v_level_code text;
  v_my_merchants uuid[];
  v_registered uuid;
BEGIN
  -- Who is asking decides whose profile this is.
  IF v_admin THEN
    v_auth := p_auth_user_id;
  ELSIF v_user IS NOT NULL AND mps_internal.is_merchant_user() AND p_auth_user_id IS NULL THEN
    v_auth := NULL;
    v_my_merchants := mps_internal.my_merchant_ids(false);
  ELSIF v_user IS NOT NULL AND (p_auth_user_id IS NULL OR p_auth_user_id = v_user) THEN
    v_auth := v_user;
  ELSE
    RAISE EXCEPTION 'permission denied: create_member_profile for another user' USING ERRCODE = '42501',
      DETAIL = CASE WHEN v_user IS NULL THEN 'No signed-in user came with the call.'
                    ELSE 'A user may create only their own profile.' END,
      HINT = 'Sign in and create your own profile, or ask the platform admin.';
  END IF;
  IF NOT v_admin AND (p_binding_user_org IS NOT NULL OR p_binding_org_id IS NOT NULL) THEN
    RAISE EXCEPTION 'permission denied: linking an external identity' USING ERRCODE = '42501',
      DETAIL = 'Only the platform admin links an external identity to a member.',
      HINT = 'Create the profile without p_binding_user_org/p_binding_org_id; the app''s server links the identity once it verified the provider''s login.';
  END IF;
  -- The till that registers a walk-in: named, or the caller's only merchant.
  -- An unknown code and another merchant's code are refused alike.
  IF p_merchant_code IS NOT NULL THEN
    SELECT m.id INTO v_registered FROM mps.merchants m WHERE m.code = upper(btrim(p_merchant_code));
    IF NOT v_admin AND (v_my_merchants IS NULL OR v_registered IS NULL OR NOT v_registered = ANY (v_my_merchants)) THEN
      RAISE EXCEPTION 'permission denied: create_member_profile at merchant %', p_merchant_code USING ERRCODE = '42501',
        DETAIL = 'The caller is not a user of this merchant, or registers her own profile.',
        HINT = 'Name a merchant you work for, registering a walk-in (no p_auth_user_id).';
    ELSIF v_registered IS NULL THEN
      RAISE EXCEPTION 'unknown merchant' USING ERRCODE = 'MP401',
        DETAIL = format('No merchant with code %L.', p_merchant_code), HINT = 'Check the merchant code.';
    END IF;
  ELSIF cardinality(v_my_merchants) = 1 THEN
    v_registered := v_my_merchants[1];
  ELSIF cardinality(v_my_merchants) > 1 THEN
    RAISE EXCEPTION 'merchant is required' USING ERRCODE = 'MP003',
      DETAIL = format('The caller works for %s merchants.', cardinality(v_my_merchants)),
      HINT = 'Pass p_merchant_code: the merchant whose till registers the member.';
  END IF;

  IF v_name IS NULL OR v_name = '' THEN
    RAISE EXCEPTION 'member name is required' USING ERRCODE = 'MP106',
      DETAIL = 'p_name is empty or missing.', HINT = 'Pass the member''s name (1 to 100 characters).';
  ELSIF length(v_name) > 100 THEN
    RAISE EXCEPTION 'member name is too long' USING ERRCODE = 'MP106',
      DETAIL = format('p_name has %s characters.', length(v_name)),
      HINT = 'Pass at most 100 characters.';
  END IF;
  PERFORM mps_internal.check_name(v_name, 'p_name', 100, 'MP106');
  IF v_phone IS NOT NULL AND v_phone !~ '^\+?[0-9]{5,20}$' THEN
    RAISE EXCEPTION 'malformed phone number' USING ERRCODE = 'MP105',
      DETAIL = format('p_phone = %L.', p_phone),
      HINT = 'Pass 5 to 20 digits, optionally with a leading + (spaces, dashes and brackets are ignored).';
  END IF;
  IF v_email IS NOT NULL AND (v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(v_email) > 254) THEN
    RAISE EXCEPTION 'malformed e-mail address' USING ERRCODE = 'MP104',
      DETAIL = format('p_email = %L.', p_email),
      HINT = 'Pass an address of the form name@example.com.';
  END IF;
  IF (v_provider IS NULL) <> (v_external IS NULL) THEN
    RAISE EXCEPTION 'incomplete external identity' USING ERRCODE = 'MP003',
      DETAIL = format('p_binding_user_org = %L, p_binding_org_id = %L.', p_binding_user_org, p_binding_org_id),
      HINT = 'Pass both the provider (e.g. wechat) and the id at that provider, or neither.';
  END IF;
  IF v_provider IS NOT NULL AND v_provider !~ '^[a-z][a-z0-9_]{1,31}$' THEN
    RAISE EXCEPTION 'invalid identity provider' USING ERRCODE = 'MP004',
      DETAIL = format('p_binding_user_org = %L.', p_binding_user_org),
      HINT = 'Use a short lower-case provider name such as wechat, alipay or line.';
  END IF;
  IF v_external IS NOT NULL AND length(v_external) > 200 THEN
    RAISE EXCEPTION 'external id is too long' USING ERRCODE = 'MP004',
      DETAIL = format('p_binding_org_id has %s characters.', length(v_external)),
      HINT = 'Pass at most 200 characters.';
  END IF;
  IF coalesce(lower(btrim(p_default_card_type)), '') NOT IN ('standard', 'prepaid', 'corporate', 'voucher') THEN
    RAISE EXCEPTION 'unknown card type' USING ERRCODE = 'MP205',
      DETAIL = format('p_default_card_type = %L.', p_default_card_type),
      HINT = 'A new member''s card is standard (personal) or prepaid.';
  END IF;
  v_type := lower(btrim(p_default_card_type))::mps.card_type;
  IF v_type NOT IN ('standard', 'prepaid') THEN
    RAISE EXCEPTION 'card type not allowed as a default card' USING ERRCODE = 'MP205',
      DETAIL = format('p_default_card_type = %L.', p_default_card_type),
      HINT = 'A new member''s card is standard (personal) or prepaid; corporate and voucher cards are issued separately.';
  END IF;
  v_currency := mps_internal.check_currency(p_currency);

  IF v_provider IS NOT NULL AND EXISTS (SELECT 1 FROM mps.member_external_identities i
                                        WHERE i.provider = v_provider AND i.external_id = v_external) THEN
    RAISE EXCEPTION 'external identity already linked' USING ERRCODE = 'MP103',
      DETAIL = format('%s identity %L belongs to another member.', v_provider, v_external),
      HINT = 'Look the member up by this identity instead of creating a new one.';
  END IF;

  -- ON CONFLICT: a concurrent call for the same login waits for the first
  -- and then gets MP102, as it would a moment later (iso_member_profile_race).
  INSERT INTO mps.member_profiles (auth_user_id, name, phone, email, registered_merchant_id)
  VALUES (v_auth, v_name, v_phone, v_email, v_registered)
  ON CONFLICT (auth_user_id) DO NOTHING
  RETURNING id INTO v_member;
  IF v_member IS NULL THEN
    RAISE EXCEPTION 'member profile already exists' USING ERRCODE = 'MP102',
      DETAIL = format('Auth user %s already has a member profile.', v_auth),
      HINT = 'Read it with get_my_cards(); a user has one profile.';
  END IF;

  IF v_provider IS NOT NULL THEN
    -- A concurrent insert of the same identity loses here rather than later.
    INSERT INTO mps.member_external_identities (member_id, provider, external_id)
    VALUES (v_member, v_provider, v_external)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'external identity already linked' USING ERRCODE = 'MP103',
        DETAIL = format('%s identity %L belongs to another member.', v_provider, v_external),
        HINT = 'Look the member up by this identity instead of creating a new one.';
    END IF;
  END IF;

  IF v_type = 'standard' THEN
    v_level := mps_internal.level_for_points(0);
    SELECT l.code INTO v_level_code FROM mps.membership_levels l WHERE l.id = v_level;
  END IF;
  LOOP
    v_card_no := mps_internal.new_card_no();
    INSERT INTO mps.cards (card_no, card_type, currency, level_id)
    VALUES (v_card_no, v_type, v_currency, v_level)
    ON CONFLICT (card_no) DO NOTHING
    RETURNING id INTO v_card;
    EXIT WHEN v_card IS NOT NULL;
  END LOOP;
  INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES (v_card, v_member, 'owner');

  PERFORM mps_internal.audit('member.create', 'member', v_member::text, NULL,
    jsonb_build_object('name', v_name, 'phone', v_phone, 'email', v_email,
                       'auth_user_id', v_auth, 'identity', v_provider,
                       'registered_merchant_id', v_registered), NULL);
  PERFORM mps_internal.audit('card.issue', 'card', v_card::text, NULL,
    jsonb_build_object('card_no', v_card_no, 'card_type', v_type, 'currency', v_currency,
                       'owner', v_member, 'level', v_level_code), NULL);

  RETURN (v_member, v_card, v_card_no, v_type, v_currency, v_level_code)::mps.member_created;
END
$$;

-- The card rows a member sees, with the level ladder around their points.
CREATE FUNCTION mps_internal.card_views(p_card_ids uuid[], p_member uuid)
RETURNS SETOF mps.card_view
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.id, c.card_no, c.card_type, c.status, b.role, c.currency,
         mps_internal.to_major(c.balance, cur.exponent), c.points,
         l.code, l.name,
         CASE WHEN c.card_type = 'corporate' THEN c.fixed_discount_bp ELSE coalesce(l.discount_bp, 0) END,
         nl.code, nl.min_points, c.expires_at, c.created_at
  FROM mps.cards c
  JOIN mps.currencies cur ON cur.code = c.currency
  LEFT JOIN mps.card_bindings b ON b.card_id = c.id AND b.member_id = p_member
  LEFT JOIN mps.membership_levels l ON l.id = c.level_id
  LEFT JOIN LATERAL (SELECT n.code, n.min_points FROM mps.membership_levels n
                     WHERE c.card_type = 'standard' AND n.min_points > c.points
                     ORDER BY n.min_points LIMIT 1) nl ON true
  WHERE c.id = ANY (p_card_ids)
  ORDER BY c.created_at, c.id
$$;

CREATE FUNCTION mps.get_my_cards()
RETURNS SETOF mps.card_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.my_member_id();
BEGIN
  IF v_member IS NULL THEN
    IF mps_internal.caller_user_id() IS NULL THEN
      RAISE EXCEPTION 'permission denied: get_my_cards needs a signed-in member' USING ERRCODE = '42501',
        DETAIL = 'No signed-in user came with the call.', HINT = 'Sign in first.';
    END IF;
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = 'The signed-in user has no member profile.',
      HINT = 'Create one with create_member_profile().';
  END IF;
  RETURN QUERY SELECT * FROM mps_internal.card_views(
    ARRAY(SELECT b.card_id FROM mps.card_bindings b WHERE b.member_id = v_member), v_member);
END
$$;

-- One card: for a member bound to it (any role), or the platform admin.
CREATE FUNCTION mps.get_card(p_card_id uuid)
RETURNS mps.card_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.my_member_id();
  v_row mps.card_view;
BEGIN
  IF p_card_id IS NULL THEN
    RAISE EXCEPTION 'card id is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_card_id is missing.', HINT = 'Pass the card''s id.';
  END IF;
  IF NOT mps_internal.caller_is_admin() THEN
    IF mps_internal.caller_user_id() IS NULL THEN
      RAISE EXCEPTION 'permission denied: get_card needs a signed-in member' USING ERRCODE = '42501',
        DETAIL = 'No signed-in user came with the call.', HINT = 'Sign in first.';
    END IF;
    IF v_member IS NULL OR NOT EXISTS (SELECT 1 FROM mps.card_bindings b
                                       WHERE b.card_id = p_card_id AND b.member_id = v_member) THEN
      -- Cards of others are reported exactly like cards that do not exist.
      RAISE EXCEPTION 'card not found' USING ERRCODE = 'MP201',
        DETAIL = format('No card %s is bound to the caller.', p_card_id),
        HINT = 'List your cards with get_my_cards().';
    END IF;
  END IF;
  SELECT * INTO v_row FROM mps_internal.card_views(ARRAY[p_card_id], v_member);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'card not found' USING ERRCODE = 'MP201',
      DETAIL = format('No card %s.', p_card_id), HINT = 'Check the card id.';
  END IF;
  RETURN v_row;
END
$$;

REVOKE ALL ON FUNCTION mps.create_member_profile(text, text, text, text, text, text, text, uuid, text),
  mps.get_my_cards(), mps.get_card(uuid), mps_internal.card_views(uuid[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps.create_member_profile(text, text, text, text, text, text, text, uuid, text)
  TO mps_admin, mps_merchant_api, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.get_my_cards(), mps.get_card(uuid) TO mps_admin, mps_member_app;
