-- External identities and the member's own views (own data only).

CREATE TYPE mps.identity_view AS (
  provider     text,
  external_id  text,
  created_at   timestamptz
);

CREATE TYPE mps.member_view AS (
  member_id   uuid,
  name        text,
  phone       text,
  email       text,
  status      text,
  identities  jsonb,          -- [{provider, external_id}]
  created_at  timestamptz
);

CREATE FUNCTION mps_internal.member_view(p_member_id uuid) RETURNS mps.member_view
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT m.id, m.name, m.phone, m.email, m.status,
         coalesce((SELECT jsonb_agg(jsonb_build_object('provider', i.provider, 'external_id', i.external_id)
                                    ORDER BY i.provider)
                   FROM mps.member_external_identities i WHERE i.member_id = m.id), '[]'::jsonb),
         m.created_at
  FROM mps.member_profiles m WHERE m.id = p_member_id
$$;

-- The member a call is about: p_member_id for the platform admin, else the caller.
CREATE FUNCTION mps_internal.member_for_call(p_member_id uuid, p_action text) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_me uuid := mps_internal.my_member_id();
BEGIN
  IF p_member_id IS NOT NULL AND p_member_id IS DISTINCT FROM v_me THEN
    IF NOT mps_internal.caller_is_admin() THEN
      RAISE EXCEPTION 'permission denied: % for another member', p_action USING ERRCODE = '42501',
        DETAIL = 'Members act on their own profile only.', HINT = 'Leave p_member_id out.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mps.member_profiles m WHERE m.id = p_member_id) THEN
      RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
        DETAIL = format('No member %s.', p_member_id), HINT = 'Check the member id.';
    END IF;
    RETURN p_member_id;
  END IF;
  IF v_me IS NULL THEN
    IF mps_internal.caller_user_id() IS NULL THEN
      RAISE EXCEPTION 'permission denied: % needs a signed-in member', p_action USING ERRCODE = '42501',
        DETAIL = 'No signed-in user came with the call.', HINT = 'Sign in first.';
    END IF;
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = 'The signed-in user has no member profile.', HINT = 'Create one with create_member_profile().';
  END IF;
  RETURN v_me;
END
$$;

-- Link a WeChat/Alipay/Line... identity; unique per provider, one per member
-- and provider. The platform admin's alone (service_role: the app's server,
-- once it verified the member's login at the provider): an id a member could
-- name herself would let her take anyone's, and merchants resolve ids to
-- members.
CREATE FUNCTION mps.link_external_identity(p_provider text, p_external_id text, p_member_id uuid DEFAULT NULL)
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

CREATE FUNCTION mps.unlink_external_identity(p_provider text, p_member_id uuid DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.member_for_call(p_member_id, 'unlink_external_identity');
  v_old mps.member_external_identities;
BEGIN
  DELETE FROM mps.member_external_identities i
   WHERE i.member_id = v_member AND i.provider = lower(btrim(p_provider))
  RETURNING * INTO v_old;
  IF v_old.id IS NULL THEN
    RETURN false;
  END IF;
  PERFORM mps_internal.audit('identity.unlink', 'member', v_member::text,
    jsonb_build_object('provider', v_old.provider, 'external_id', v_old.external_id), NULL, NULL);
  RETURN true;
END
$$;

-- Look a member up by identity: the platform admin anyone; a merchant user
-- only the customers of their merchants (sql/67_customers.sql), with contact
-- data masked and no identity but the one asked about. Another merchant's
-- customer is "not found", exactly like an identity nobody has.
CREATE FUNCTION mps.find_member_by_identity(p_provider text, p_external_id text)
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

CREATE FUNCTION mps.get_my_profile()
RETURNS mps.member_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN mps_internal.member_view(mps_internal.member_for_call(NULL, 'get_my_profile'));
END
$$;

CREATE TYPE mps.my_binding AS (
  card_id          uuid,
  card_no          text,
  card_type        mps.card_type,
  card_status      mps.card_status,
  enterprise_name  text,
  role             mps.binding_role,
  bound_at         timestamptz
);

CREATE FUNCTION mps.get_my_bindings()
RETURNS SETOF mps.my_binding
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.member_for_call(NULL, 'get_my_bindings');
BEGIN
  RETURN QUERY SELECT c.id, c.card_no, c.card_type, c.status, c.enterprise_name, b.role, b.created_at
    FROM mps.card_bindings b JOIN mps.cards c ON c.id = b.card_id
   WHERE b.member_id = v_member ORDER BY b.created_at, c.card_no;
END
$$;

-- My movements, newest first, a page at a time: pass the created_at of the
-- last row seen as p_before for the next page.
CREATE FUNCTION mps.get_my_transactions(p_limit integer DEFAULT 50, p_before timestamptz DEFAULT NULL,
                                        p_card_id uuid DEFAULT NULL)
RETURNS SETOF mps.v_usage_logs
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.member_for_call(NULL, 'get_my_transactions');
BEGIN
  IF p_limit IS NULL OR p_limit < 1 OR p_limit > 500 THEN
    RAISE EXCEPTION 'invalid page size' USING ERRCODE = 'MP004',
      DETAIL = format('p_limit = %s.', p_limit), HINT = 'Pass 1 to 500.';
  END IF;
  RETURN QUERY
  SELECT u.* FROM mps.v_usage_logs u
  WHERE u.card_id IN (SELECT b.card_id FROM mps.card_bindings b WHERE b.member_id = v_member)
    AND (p_card_id IS NULL OR u.card_id = p_card_id)
    AND (p_before IS NULL OR u.created_at < p_before)
  ORDER BY u.created_at DESC, u.tx_id DESC
  LIMIT p_limit;
END
$$;

GRANT EXECUTE ON FUNCTION mps.unlink_external_identity(text, uuid),
  mps.get_my_profile(), mps.get_my_bindings(), mps.get_my_transactions(integer, timestamptz, uuid)
  TO mps_admin, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.link_external_identity(text, text, uuid) TO mps_admin;
GRANT EXECUTE ON FUNCTION mps.find_member_by_identity(text, text) TO mps_admin, mps_merchant_api;
