-- ---- caller mistakes get MP codes -------------------------------------------
-- (Trust) Names over their limit (catalogue, rules, stamp activities: MP009)
-- and control characters in printed names (members MP106, merchants MP004,
-- plans MP803, the rest MP009) are refused before a CHECK answers 23514;
-- settlement periods and report ranges must be finite days between 1970 and
-- 9999 (MP701). p_tag is checked in C (src/tag.c).
CREATE FUNCTION mps_internal.check_name(p_name text, p_param text, p_max integer, p_errcode text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF length(btrim(p_name)) > p_max THEN
    RAISE EXCEPTION 'name is too long' USING ERRCODE = p_errcode,
      DETAIL = format('%s has %s characters.', p_param, length(btrim(p_name))),
      HINT = format('Pass at most %s characters.', p_max);
  END IF;
  IF p_name ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION 'name contains control characters' USING ERRCODE = p_errcode,
      DETAIL = format('%s has a control character (U+%s) at position %s.', p_param,
                      upper(lpad(to_hex(ascii(substring(p_name FROM '[[:cntrl:]]'))), 4, '0')),
                      position(substring(p_name FROM '[[:cntrl:]]') IN p_name)),
      HINT = 'Pass printable text: no tabs, line breaks or other control characters.';
  END IF;
END
$$;
REVOKE ALL ON FUNCTION mps_internal.check_name(text, text, integer, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mps.upsert_category(p_id text, p_name text)
RETURNS mps.categories
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.categories;
BEGIN
  PERFORM mps_internal.require_admin('upsert_category');
  IF p_id IS NULL OR p_id !~ '^[A-Za-z0-9_.:-]{1,64}$' OR nullif(btrim(p_name), '') IS NULL THEN
    RAISE EXCEPTION 'invalid category' USING ERRCODE = 'MP004',
      DETAIL = format('p_id = %L, p_name = %L.', p_id, p_name),
      HINT = 'Use an id of 1-64 letters, digits, _ . : - and a name.';
  END IF;
  PERFORM mps_internal.check_name(p_name, 'p_name', 200, 'MP009');
  INSERT INTO mps.categories (id, name) VALUES (p_id, btrim(p_name))
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, deleted_at = NULL
  RETURNING * INTO v;
  PERFORM mps_internal.audit('catalog.category', 'category', p_id, NULL, to_jsonb(v), NULL);
  RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION mps.upsert_product(p_id text, p_name text, p_category_id text DEFAULT NULL)
RETURNS mps.products
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.products;
BEGIN
  PERFORM mps_internal.require_admin('upsert_product');
  IF p_id IS NULL OR p_id !~ '^[A-Za-z0-9_.:-]{1,64}$' OR nullif(btrim(p_name), '') IS NULL THEN
    RAISE EXCEPTION 'invalid product' USING ERRCODE = 'MP004',
      DETAIL = format('p_id = %L, p_name = %L.', p_id, p_name),
      HINT = 'Use an id of 1-64 letters, digits, _ . : - and a name.';
  END IF;
  PERFORM mps_internal.check_name(p_name, 'p_name', 200, 'MP009');
  IF p_category_id IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM mps.categories c WHERE c.id = p_category_id AND c.deleted_at IS NULL) THEN
    RAISE EXCEPTION 'category not found' USING ERRCODE = 'MP113',
      DETAIL = format('No category %L.', p_category_id), HINT = 'Create it with upsert_category().';
  END IF;
  INSERT INTO mps.products (id, name, category_id) VALUES (p_id, btrim(p_name), p_category_id)
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, category_id = excluded.category_id, deleted_at = NULL
  RETURNING * INTO v;
  PERFORM mps_internal.audit('catalog.product', 'product', p_id, NULL, to_jsonb(v), NULL);
  RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION mps.create_mg_rule(p_group_code text, p_name text, p_receipt_name text,
                                   p_product_scope text, p_target_id text, p_adjustment_type text,
                                   p_value numeric, p_currency text DEFAULT NULL)
RETURNS mps.mg_discount_rules
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_group mps.marketing_groups;
  v mps.mg_discount_rules;
  v_bp integer;
  v_amount bigint;
  v_currency char(3);
BEGIN
  PERFORM mps_internal.require_admin('create_mg_rule');
  PERFORM mps_internal.require_marketing();
  v_group := mps_internal.group_by_code(p_group_code);
  IF nullif(btrim(p_name), '') IS NULL OR nullif(btrim(p_receipt_name), '') IS NULL THEN
    RAISE EXCEPTION 'rule name and receipt name are required' USING ERRCODE = 'MP003',
      DETAIL = 'p_name or p_receipt_name is empty.', HINT = 'Name the rule and how receipts show it.';
  END IF;
  PERFORM mps_internal.check_name(p_name, 'p_name', 200, 'MP009');
  PERFORM mps_internal.check_name(p_receipt_name, 'p_receipt_name', 100, 'MP009');
  IF p_product_scope IS NULL OR p_product_scope NOT IN ('GLOBAL', 'CATEGORY', 'PRODUCT')
     OR (p_product_scope = 'GLOBAL') <> (p_target_id IS NULL) THEN
    RAISE EXCEPTION 'invalid rule scope' USING ERRCODE = 'MP004',
      DETAIL = format('p_product_scope = %L, p_target_id = %L.', p_product_scope, p_target_id),
      HINT = 'GLOBAL takes no target; CATEGORY and PRODUCT take the target''s id.';
  END IF;
  IF p_product_scope <> 'GLOBAL' THEN
    PERFORM mps_internal.check_target(p_product_scope, p_target_id);
  END IF;
  IF p_adjustment_type = 'PERCENTAGE' THEN
    IF p_value IS NULL OR p_value <= 0 OR p_value > 100 OR p_value * 100 <> trunc(p_value * 100) THEN
      RAISE EXCEPTION 'invalid percentage' USING ERRCODE = 'MP004',
        DETAIL = format('p_value = %s.', p_value), HINT = 'Pass a percentage in (0, 100] with at most two decimals.';
    END IF;
    v_bp := (p_value * 100)::integer;
    PERFORM mps_internal.check_percentage_room(v_group.id);
  ELSIF p_adjustment_type = 'FIXED_AMOUNT' THEN
    v_currency := mps_internal.check_currency(p_currency);
    v_amount := mps_internal.to_minor(p_value, v_currency, 'p_value');
  ELSE
    RAISE EXCEPTION 'invalid adjustment type' USING ERRCODE = 'MP004',
      DETAIL = format('p_adjustment_type = %L.', p_adjustment_type), HINT = 'Use PERCENTAGE or FIXED_AMOUNT.';
  END IF;
  INSERT INTO mps.mg_discount_rules (marketing_group_id, name, receipt_name, product_scope, target_id,
                                     adjustment_type, value_bp, amount_minor, currency)
  VALUES (v_group.id, btrim(p_name), btrim(p_receipt_name), p_product_scope, p_target_id,
          p_adjustment_type, v_bp, v_amount, v_currency)
  RETURNING * INTO v;
  PERFORM mps_internal.audit('mg.rule.create', 'mg_rule', v.id::text, NULL, to_jsonb(v), NULL);
  RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION mps.create_stamp_activity(p_group_code text, p_name text, p_stamps_required integer,
                                          p_stamp_targets jsonb, p_reward_targets jsonb DEFAULT '[]',
                                          p_reward_quantity integer DEFAULT 1,
                                          p_reward_strategy text DEFAULT 'ECONOMIZADOR',
                                          p_designated_product_id text DEFAULT NULL,
                                          p_is_cyclic boolean DEFAULT true)
RETURNS mps.stamp_activities
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_group mps.marketing_groups;
  v mps.stamp_activities;
  t record;
BEGIN
  PERFORM mps_internal.require_admin('create_stamp_activity');
  PERFORM mps_internal.require_marketing();
  v_group := mps_internal.group_by_code(p_group_code);
  IF nullif(btrim(p_name), '') IS NULL OR p_stamps_required IS NULL OR p_stamps_required NOT BETWEEN 1 AND 1000
     OR p_reward_quantity IS NULL OR p_reward_quantity NOT BETWEEN 1 AND 100 THEN
    RAISE EXCEPTION 'invalid stamp activity' USING ERRCODE = 'MP004',
      DETAIL = format('name %L, stamps_required %s, reward_quantity %s.', p_name, p_stamps_required, p_reward_quantity),
      HINT = 'Name it; stamps_required 1-1000; reward_quantity 1-100.';
  END IF;
  PERFORM mps_internal.check_name(p_name, 'p_name', 200, 'MP009');
  IF p_reward_strategy IS NULL OR p_reward_strategy NOT IN ('ECONOMIZADOR', 'GENEROSO', 'DESIGNATED')
     OR (p_reward_strategy = 'DESIGNATED') <> (p_designated_product_id IS NOT NULL) THEN
    RAISE EXCEPTION 'invalid reward strategy' USING ERRCODE = 'MP004',
      DETAIL = format('p_reward_strategy = %L, p_designated_product_id = %L.', p_reward_strategy, p_designated_product_id),
      HINT = 'ECONOMIZADOR (cheapest line) or GENEROSO (dearest) take reward targets; DESIGNATED takes its product.';
  END IF;
  IF p_designated_product_id IS NOT NULL THEN
    PERFORM mps_internal.check_target('PRODUCT', p_designated_product_id);
  END IF;
  IF jsonb_typeof(p_stamp_targets) IS DISTINCT FROM 'array' OR jsonb_array_length(p_stamp_targets) = 0
     OR jsonb_typeof(coalesce(p_reward_targets, '[]')) <> 'array'
     OR (p_reward_strategy <> 'DESIGNATED' AND jsonb_array_length(coalesce(p_reward_targets, '[]')) = 0) THEN
    RAISE EXCEPTION 'invalid stamp targets' USING ERRCODE = 'MP004',
      DETAIL = 'p_stamp_targets (and, unless DESIGNATED, p_reward_targets) must be non-empty arrays.',
      HINT = 'Pass [{"target_type": "CATEGORY", "target_id": "TEA"}].';
  END IF;
  INSERT INTO mps.stamp_activities (marketing_group_id, name, stamps_required, reward_quantity,
                                    reward_strategy, designated_product_id, is_cyclic)
  VALUES (v_group.id, btrim(p_name), p_stamps_required, p_reward_quantity, p_reward_strategy,
          p_designated_product_id, coalesce(p_is_cyclic, true))
  RETURNING * INTO v;
  FOR t IN
    SELECT 'stamp' AS kind, e FROM jsonb_array_elements(p_stamp_targets) e
    UNION ALL
    SELECT 'reward', e FROM jsonb_array_elements(coalesce(p_reward_targets, '[]')) e
  LOOP
    IF coalesce(t.e->>'target_type', '') NOT IN ('CATEGORY', 'PRODUCT') OR t.e->>'target_id' IS NULL THEN
      RAISE EXCEPTION 'invalid stamp targets' USING ERRCODE = 'MP004',
        DETAIL = format('Bad %s target %s.', t.kind, t.e), HINT = 'Each target needs target_type CATEGORY or PRODUCT and target_id.';
    END IF;
    PERFORM mps_internal.check_target(t.e->>'target_type', t.e->>'target_id');
    INSERT INTO mps.stamp_targets (activity_id, kind, target_type, target_id)
    VALUES (v.id, t.kind, t.e->>'target_type', t.e->>'target_id') ON CONFLICT DO NOTHING;
  END LOOP;
  PERFORM mps_internal.audit('mg.stamp_activity.create', 'stamp_activity', v.id::text, NULL,
    to_jsonb(v) || jsonb_build_object('stamp_targets', p_stamp_targets, 'reward_targets', p_reward_targets), NULL);
  RETURN v;
END
$$;

CREATE OR REPLACE FUNCTION mps_internal.check_merchant_fields(p_name text, p_settlement_mode text,
                                                   p_timezone text, p_fee_bp integer)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_name IS NOT NULL AND (btrim(p_name) = '' OR length(btrim(p_name)) > 200) THEN
    RAISE EXCEPTION 'invalid merchant name' USING ERRCODE = 'MP004',
      DETAIL = format('p_name = %L.', p_name), HINT = 'Pass 1 to 200 characters.';
  END IF;
  PERFORM mps_internal.check_name(p_name, 'p_name', 200, 'MP004');
  IF p_settlement_mode IS NOT NULL AND p_settlement_mode NOT IN ('realtime', 't_plus_1', 'monthly') THEN
    RAISE EXCEPTION 'unknown settlement mode' USING ERRCODE = 'MP004',
      DETAIL = format('p_settlement_mode = %L.', p_settlement_mode),
      HINT = 'Use realtime, t_plus_1 or monthly.';
  END IF;
  IF p_timezone IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = p_timezone) THEN
    RAISE EXCEPTION 'unknown time zone' USING ERRCODE = 'MP004',
      DETAIL = format('p_timezone = %L.', p_timezone),
      HINT = 'Use an IANA time zone name such as UTC, Europe/Madrid or Asia/Shanghai.';
  END IF;
  IF p_fee_bp IS NOT NULL AND (p_fee_bp < 0 OR p_fee_bp > 10000) THEN
    RAISE EXCEPTION 'invalid fee rate' USING ERRCODE = 'MP004',
      DETAIL = format('p_fee_bp = %s.', p_fee_bp),
      HINT = 'Pass basis points between 0 and 10000 (150 = 1.5%).';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION mps.create_member_profile(
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

CREATE OR REPLACE FUNCTION mps_internal.check_pass_plan(p_name text, p_uses integer, p_validity_days integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_name IS NOT NULL AND length(btrim(p_name)) NOT BETWEEN 1 AND 100 THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = format('p_name = %L.', p_name), HINT = 'Pass a name of 1 to 100 characters.';
  END IF;
  PERFORM mps_internal.check_name(p_name, 'p_name', 100, 'MP803');
  IF p_uses IS NOT NULL AND p_uses NOT BETWEEN 1 AND 1000 THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = format('p_uses_per_purchase = %s.', p_uses), HINT = 'Pass 1 to 1000 uses per purchase.';
  END IF;
  IF p_validity_days IS NOT NULL AND p_validity_days NOT BETWEEN 0 AND 3660 THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = format('p_validity_days = %s.', p_validity_days),
      HINT = 'Pass 1 to 3660 days from activation, or 0 for passes that never expire.';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION mps_internal.settle(p_merchant mps.merchants, p_start timestamptz, p_end timestamptz)
RETURNS uuid[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids uuid[];
  v_clash record;
BEGIN
  IF p_start IS NULL OR p_end IS NULL OR p_end <= p_start THEN
    RAISE EXCEPTION 'invalid settlement period' USING ERRCODE = 'MP701',
      DETAIL = format('[%s, %s) is empty or incomplete.', p_start, p_end),
      HINT = 'Pass p_period_start < p_period_end.';
  END IF;
  -- A period is real time: no infinities, nothing before 1970 or after 9999.
  IF p_start < '1970-01-01 00:00+00' OR p_end > '9999-12-31 00:00+00' THEN
    RAISE EXCEPTION 'invalid settlement period' USING ERRCODE = 'MP701',
      DETAIL = format('[%s, %s) is not within 1970-01-01 and 9999-12-31.', p_start, p_end),
      HINT = 'Pass the period''s real start and end.';
  END IF;
  IF p_end > clock_timestamp() THEN
    RAISE EXCEPTION 'settlement period has not ended yet' USING ERRCODE = 'MP702',
      DETAIL = format('The period ends at %s.', p_end),
      HINT = 'Settle a period once it is over.';
  END IF;

  -- Movements of the period that are still being written commit (or not)
  -- first. This comes before any lock or write of ours, so no one we wait for
  -- can be waiting for us.
  PERFORM mps_internal.wait_for_running_transactions();

  -- One settler per merchant at a time; charges never take this lock.
  PERFORM pg_advisory_xact_lock(1297101617, hashtext('settle:' || p_merchant.id::text));

  SELECT array_agg(s.id ORDER BY s.currency) INTO v_ids FROM mps.settlements s
   WHERE s.merchant_id = p_merchant.id AND s.period_start = p_start AND s.period_end = p_end;
  IF v_ids IS NOT NULL THEN
    RETURN v_ids;                          -- already settled: the same rows again
  END IF;
  SELECT s.period_start, s.period_end INTO v_clash FROM mps.settlements s
   WHERE s.merchant_id = p_merchant.id
     AND tstzrange(s.period_start, s.period_end) && tstzrange(p_start, p_end)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'settlement period overlaps an existing settlement' USING ERRCODE = 'MP703',
      DETAIL = format('[%s, %s) overlaps the settled period [%s, %s) of merchant %s.',
                      p_start, p_end, v_clash.period_start, v_clash.period_end, p_merchant.code),
      HINT = 'Settle periods that start where the previous one ended.';
  END IF;

  WITH sums AS (
    SELECT t.currency,
           coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')), 0) AS gross,
           coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('refund', 'adjustment')), 0) AS refunds,
           count(*) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')) AS payments,
           count(*) FILTER (WHERE t.kind IN ('refund', 'adjustment')) AS refund_count
    FROM mps.transactions t
    WHERE t.merchant_id = p_merchant.id AND t.created_at >= p_start AND t.created_at < p_end
      AND t.kind IN ('payment', 'pass_purchase', 'refund', 'adjustment')
    GROUP BY t.currency
  ), rows AS (
    SELECT * FROM sums
    UNION ALL
    SELECT p_merchant.currency, 0, 0, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM sums)
  ), ins AS (
    INSERT INTO mps.settlements (merchant_id, currency, mode, period_start, period_end,
                                 gross_payments, refunds, net, payment_count, refund_count, fee, payout)
    SELECT p_merchant.id, r.currency, p_merchant.settlement_mode, p_start, p_end,
           r.gross, r.refunds, r.gross - r.refunds, r.payments, r.refund_count,
           f.fee, r.gross - r.refunds - f.fee
    FROM rows r,
         LATERAL (SELECT round(((r.gross - r.refunds)::numeric * p_merchant.fee_bp) / 10000)::bigint AS fee) f
    RETURNING id
  )
  SELECT array_agg(id) INTO v_ids FROM ins;

  PERFORM mps_internal.audit('settlement.generate', 'merchant', p_merchant.id::text, NULL,
    (SELECT jsonb_build_object('period_start', p_start, 'period_end', p_end,
                               'settlements', jsonb_agg(to_jsonb(s)))
     FROM mps.settlements s WHERE s.id = ANY (v_ids)), NULL);
  RETURN v_ids;
END
$$;

CREATE OR REPLACE FUNCTION mps.merchant_daily_report(p_merchant_code text, p_from date, p_to date)
RETURNS SETOF mps.daily_report_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants := mps_internal.merchant_for_manager(p_merchant_code, 'merchant_daily_report');
BEGIN
  -- Finite days between 1970 and 9999 first: infinity or year 5874897 would
  -- fail the day arithmetic below with 22008.
  IF p_from IS NULL OR p_to IS NULL OR p_from < '1970-01-01' OR p_to > '9999-12-30'
     OR p_to < p_from OR p_to - p_from > 366 THEN
    RAISE EXCEPTION 'invalid report range' USING ERRCODE = 'MP701',
      DETAIL = format('[%s, %s].', p_from, p_to),
      HINT = 'Pass days between 1970-01-01 and 9999-12-30, p_from <= p_to, at most 366 days apart.';
  END IF;
  RETURN QUERY
  SELECT (t.created_at AT TIME ZONE v_merchant.timezone)::date, c.card_type, t.currency,
         mps_internal.to_major(coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')), 0)::bigint, cur.exponent),
         count(*) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')),
         mps_internal.to_major(coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('refund', 'adjustment')), 0)::bigint, cur.exponent),
         count(*) FILTER (WHERE t.kind IN ('refund', 'adjustment')),
         mps_internal.to_major((coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')), 0)
                                - coalesce(sum(t.final_amount) FILTER (WHERE t.kind IN ('refund', 'adjustment')), 0))::bigint, cur.exponent)
  FROM mps.transactions t
  JOIN mps.cards c ON c.id = t.card_id
  JOIN mps.currencies cur ON cur.code = t.currency
  WHERE t.merchant_id = v_merchant.id
    AND t.kind IN ('payment', 'pass_purchase', 'refund', 'adjustment')
    AND t.created_at >= (p_from::timestamp AT TIME ZONE v_merchant.timezone)
    AND t.created_at < ((p_to + 1)::timestamp AT TIME ZONE v_merchant.timezone)
  GROUP BY 1, 2, 3, cur.exponent
  ORDER BY 1, 2, 3;
END
$$;

