-- ---- merchants see their own customers; identities are linked by the admin ---
-- (Trust: any operator read any member's contact data, search_members listed
-- the whole platform, and any user could link anyone's WeChat id to herself.)
-- create_member_profile gains p_merchant_code (the till that registers a
-- walk-in, recorded in member_profiles.registered_merchant_id) and refuses
-- identities from anyone but the platform admin; link_external_identity is
-- the platform admin's alone.
ALTER TABLE mps.member_profiles ADD COLUMN registered_merchant_id uuid REFERENCES mps.merchants (id);

CREATE FUNCTION mps_internal.is_customer_of(p_member_id uuid, p_merchant_ids uuid[]) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (SELECT 1 FROM mps.member_profiles m
                 WHERE m.id = p_member_id AND m.registered_merchant_id = ANY (p_merchant_ids))
      OR EXISTS (SELECT 1 FROM mps.card_bindings b JOIN mps.transactions t ON t.card_id = b.card_id
                 WHERE b.member_id = p_member_id AND t.member_id = p_member_id
                   AND t.merchant_id = ANY (p_merchant_ids))
      OR EXISTS (SELECT 1 FROM mps.member_passes p JOIN mps.pass_topup_orders o ON o.pass_id = p.id
                 WHERE p.member_id = p_member_id AND o.merchant_id = ANY (p_merchant_ids))
      OR EXISTS (SELECT 1 FROM mps.pass_redemption_batches r
                 WHERE r.member_id = p_member_id AND r.merchant_id = ANY (p_merchant_ids))
$$;

CREATE FUNCTION mps_internal.mask_tail(p_value text, p_keep integer) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN length(p_value) <= p_keep THEN repeat('*', length(p_value))
              ELSE repeat('*', length(p_value) - p_keep) || right(p_value, p_keep) END
$$;

CREATE FUNCTION mps_internal.mask_email(p_value text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT left(p_value, 1) || '***' || substr(p_value, strpos(p_value, '@'))
$$;
REVOKE ALL ON FUNCTION mps_internal.is_customer_of(uuid, uuid[]), mps_internal.mask_tail(text, integer),
  mps_internal.mask_email(text) FROM PUBLIC;

-- A new signature: the old function makes way, the new one gets its rights
-- (the group roles' and every copy of them, so apps keep working until
-- grant_role_privileges runs again), then the old one goes.
ALTER FUNCTION mps.create_member_profile(text, text, text, text, text, text, text, uuid)
  RENAME TO create_member_profile_0_1_0;
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
REVOKE ALL ON FUNCTION mps.create_member_profile(text, text, text, text, text, text, text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps.create_member_profile(text, text, text, text, text, text, text, uuid, text)
  TO mps_admin, mps_merchant_api, mps_member_app;
DO $grants$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT a.grantee::regrole AS grantee
    FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.oid = 'mps.create_member_profile_0_1_0(text, text, text, text, text, text, text, uuid)'::regprocedure
      AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION mps.create_member_profile(text, text, text, text, text, text, text, uuid, text) TO %s',
                   r.grantee);
  END LOOP;
END
$grants$;
DROP FUNCTION mps.create_member_profile_0_1_0(text, text, text, text, text, text, text, uuid);

CREATE OR REPLACE FUNCTION mps.find_member_by_identity(p_provider text, p_external_id text)
RETURNS mps.member_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_admin boolean := mps_internal.caller_is_admin();
  v_merchants uuid[] := mps_internal.my_merchant_ids(false);
  v_provider text := lower(btrim(p_provider));
  v_external text := btrim(p_external_id);
  v_member uuid;
  v mps.member_view;
BEGIN
  IF NOT (v_admin OR cardinality(v_merchants) > 0) THEN
    RAISE EXCEPTION 'permission denied: find_member_by_identity' USING ERRCODE = '42501',
      DETAIL = 'Only merchant users and the platform admin look members up.', HINT = 'Sign in as an operator.';
  END IF;
  SELECT i.member_id INTO v_member FROM mps.member_external_identities i
   WHERE i.provider = v_provider AND i.external_id = v_external;
  IF v_member IS NULL OR NOT (v_admin OR mps_internal.is_customer_of(v_member, v_merchants)) THEN
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = format('No member %shas %s identity %L.', CASE WHEN v_admin THEN '' ELSE 'of your merchant ' END,
                      p_provider, p_external_id),
      HINT = 'Register the member with create_member_profile().';
  END IF;
  v := mps_internal.member_view(v_member);
  IF NOT v_admin THEN
    v.phone := mps_internal.mask_tail(v.phone, 4);
    v.email := mps_internal.mask_email(v.email);
    v.identities := jsonb_build_array(jsonb_build_object('provider', v_provider, 'external_id', v_external));
  END IF;
  RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION mps.search_members(p_query text, p_limit integer DEFAULT 20)
RETURNS SETOF mps.member_hit
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_q text := lower(btrim(p_query));
  v_admin boolean := mps_internal.caller_is_admin();
  v_merchants uuid[] := mps_internal.my_merchant_ids(false);
BEGIN
  IF NOT (v_admin OR cardinality(v_merchants) > 0) THEN
    RAISE EXCEPTION 'permission denied: search_members' USING ERRCODE = '42501',
      DETAIL = 'Only merchant users and the platform admin search members.', HINT = 'Sign in as an operator.';
  END IF;
  IF v_q IS NULL OR length(v_q) < 3 OR length(v_q) > 100 OR p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 100 THEN
    RAISE EXCEPTION 'invalid search' USING ERRCODE = 'MP004',
      DETAIL = format('p_query = %L, p_limit = %s.', p_query, p_limit),
      HINT = 'Search with 3 to 100 characters of a phone number, card number or name; p_limit 1-100.';
  END IF;
  v_q := '%' || replace(replace(replace(v_q, '\', '\\'), '%', '\%'), '_', '\_') || '%';
  RETURN QUERY
  WITH hits AS (
    SELECT m.id FROM mps.member_profiles m
    WHERE lower(m.name) || ' ' || coalesce(m.phone, '') LIKE v_q
    UNION
    SELECT b.member_id FROM mps.cards c JOIN mps.card_bindings b ON b.card_id = c.id
    WHERE c.card_no LIKE v_q
  )
  SELECT m.id, m.name, CASE WHEN v_admin THEN m.phone ELSE mps_internal.mask_tail(m.phone, 4) END,
         (SELECT CASE WHEN v_admin THEN c.card_no ELSE mps_internal.mask_tail(c.card_no, 4) END
          FROM mps.card_bindings b JOIN mps.cards c ON c.id = b.card_id
          WHERE b.member_id = m.id AND b.role = 'owner' ORDER BY c.created_at LIMIT 1),
         g.code
  FROM hits h JOIN mps.member_profiles m ON m.id = h.id
  LEFT JOIN mps.marketing_groups g ON g.id = m.marketing_group_id
  WHERE v_admin OR mps_internal.is_customer_of(m.id, v_merchants)
  ORDER BY m.name, m.id
  LIMIT p_limit;
END
$$;

CREATE OR REPLACE FUNCTION mps.link_external_identity(p_provider text, p_external_id text, p_member_id uuid DEFAULT NULL)
RETURNS mps.member_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid;
  v_provider text := nullif(lower(btrim(p_provider)), '');
  v_external text := nullif(btrim(p_external_id), '');
  v_owner uuid;
BEGIN
  PERFORM mps_internal.require_admin('link_external_identity');
  IF p_member_id IS NULL THEN
    RAISE EXCEPTION 'member id is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_member_id is missing.', HINT = 'Name the member whose verified identity this is.';
  END IF;
  v_member := mps_internal.member_for_call(p_member_id, 'link_external_identity');
  IF v_provider IS NULL OR v_external IS NULL THEN
    RAISE EXCEPTION 'incomplete external identity' USING ERRCODE = 'MP003',
      DETAIL = format('p_provider = %L, p_external_id = %L.', p_provider, p_external_id),
      HINT = 'Pass the provider (e.g. wechat) and the id at that provider.';
  END IF;
  IF v_provider !~ '^[a-z][a-z0-9_]{1,31}$' OR length(v_external) > 200 THEN
    RAISE EXCEPTION 'invalid external identity' USING ERRCODE = 'MP004',
      DETAIL = format('p_provider = %L, external id of %s characters.', p_provider, length(v_external)),
      HINT = 'Use a short lower-case provider name and an id of at most 200 characters.';
  END IF;
  SELECT i.member_id INTO v_owner FROM mps.member_external_identities i
   WHERE i.provider = v_provider AND i.external_id = v_external;
  IF v_owner = v_member THEN
    RETURN mps_internal.member_view(v_member);          -- already linked: a retry
  ELSIF v_owner IS NOT NULL THEN
    RAISE EXCEPTION 'external identity already linked' USING ERRCODE = 'MP103',
      DETAIL = format('%s identity %L belongs to another member.', v_provider, v_external),
      HINT = 'Unlink it from the other member first; members are never merged silently.';
  END IF;
  IF EXISTS (SELECT 1 FROM mps.member_external_identities i WHERE i.member_id = v_member AND i.provider = v_provider) THEN
    RAISE EXCEPTION 'member already has an identity at this provider' USING ERRCODE = 'MP103',
      DETAIL = format('The member already has a %s identity.', v_provider),
      HINT = 'Unlink the old one first.';
  END IF;
  INSERT INTO mps.member_external_identities (member_id, provider, external_id)
  VALUES (v_member, v_provider, v_external) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'external identity already linked' USING ERRCODE = 'MP103',
      DETAIL = format('%s identity %L was linked concurrently.', v_provider, v_external),
      HINT = 'Look the member up by this identity.';
  END IF;
  PERFORM mps_internal.audit('identity.link', 'member', v_member::text, NULL,
    jsonb_build_object('provider', v_provider, 'external_id', v_external), NULL);
  RETURN mps_internal.member_view(v_member);
END
$$;
-- Taken from mps_member_app and from every role holding a copy of its rights
-- (the roles that also hold an admin-only right directly keep it), as in
-- 10_recharge_admin_only.sql.
REVOKE EXECUTE ON FUNCTION mps.link_external_identity(text, text, uuid) FROM mps_member_app;
DO $link$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT a.grantee::regrole AS grantee
    FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.oid = 'mps.link_external_identity(text, text, uuid)'::regprocedure
      AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
      AND NOT EXISTS (
        SELECT 1 FROM pg_proc q, aclexplode(q.proacl) b
        WHERE q.oid = 'mps.grant_role_privileges(text, text)'::regprocedure
          AND b.grantee = a.grantee AND b.privilege_type = 'EXECUTE')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION mps.link_external_identity(text, text, uuid) FROM %s', r.grantee);
  END LOOP;
END
$link$;
