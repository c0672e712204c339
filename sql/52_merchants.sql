-- Merchants and the users who operate them (platform admin only).

CREATE FUNCTION mps_internal.merchant_by_code(p_merchant_code text, p_lock boolean DEFAULT false)
RETURNS mps.merchants
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.merchants;
BEGIN
  IF p_lock THEN
    SELECT * INTO v FROM mps.merchants m WHERE m.code = upper(btrim(p_merchant_code)) FOR UPDATE;
  ELSE
    SELECT * INTO v FROM mps.merchants m WHERE m.code = upper(btrim(p_merchant_code));
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown merchant' USING ERRCODE = 'MP401',
      DETAIL = format('No merchant has code %L.', p_merchant_code),
      HINT = 'Check the merchant code (upper-case letters, digits, _ and -).';
  END IF;
  RETURN v;
END
$$;

CREATE FUNCTION mps_internal.check_merchant_fields(p_name text, p_settlement_mode text,
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

CREATE FUNCTION mps.create_merchant(
  p_code             text,
  p_name             text,
  p_currency         text DEFAULT NULL,
  p_settlement_mode  text DEFAULT 't_plus_1',
  p_timezone         text DEFAULT 'UTC',
  p_fee_bp           integer DEFAULT 0)
RETURNS mps.merchants
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_code text := upper(btrim(p_code));
  v mps.merchants;
BEGIN
  PERFORM mps_internal.require_admin('create_merchant');
  IF v_code IS NULL OR v_code !~ '^[A-Z0-9_-]{2,32}$' THEN
    RAISE EXCEPTION 'invalid merchant code' USING ERRCODE = 'MP004',
      DETAIL = format('p_code = %L.', p_code),
      HINT = 'Use 2 to 32 letters, digits, _ or -, e.g. SHOP001.';
  END IF;
  IF p_name IS NULL THEN
    RAISE EXCEPTION 'merchant name is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_name is missing.', HINT = 'Pass the merchant''s name.';
  END IF;
  PERFORM mps_internal.check_merchant_fields(p_name, coalesce(p_settlement_mode, 't_plus_1'),
                                             coalesce(p_timezone, 'UTC'), coalesce(p_fee_bp, 0));
  INSERT INTO mps.merchants (code, name, currency, settlement_mode, timezone, fee_bp)
  VALUES (v_code, btrim(p_name), mps_internal.check_currency(p_currency),
          coalesce(p_settlement_mode, 't_plus_1')::mps.settlement_mode,
          coalesce(p_timezone, 'UTC'), coalesce(p_fee_bp, 0))
  ON CONFLICT (code) DO NOTHING
  RETURNING * INTO v;
  IF v.id IS NULL THEN
    RAISE EXCEPTION 'merchant code already taken' USING ERRCODE = 'MP403',
      DETAIL = format('A merchant with code %s exists.', v_code),
      HINT = 'Pick another code, or change the existing merchant with update_merchant().';
  END IF;
  PERFORM mps_internal.audit('merchant.create', 'merchant', v.id::text, NULL, to_jsonb(v), NULL);
  RETURN v;
END
$$;

CREATE FUNCTION mps.update_merchant(
  p_merchant_code    text,
  p_name             text DEFAULT NULL,
  p_status           text DEFAULT NULL,
  p_settlement_mode  text DEFAULT NULL,
  p_timezone         text DEFAULT NULL,
  p_fee_bp           integer DEFAULT NULL)
RETURNS mps.merchants
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old mps.merchants;
  v_new mps.merchants;
BEGIN
  PERFORM mps_internal.require_admin('update_merchant');
  v_old := mps_internal.merchant_by_code(p_merchant_code, true);
  IF p_status IS NOT NULL AND p_status NOT IN ('active', 'suspended', 'closed') THEN
    RAISE EXCEPTION 'unknown merchant status' USING ERRCODE = 'MP004',
      DETAIL = format('p_status = %L.', p_status), HINT = 'Use active, suspended or closed.';
  END IF;
  PERFORM mps_internal.check_merchant_fields(p_name, p_settlement_mode, p_timezone, p_fee_bp);
  UPDATE mps.merchants m SET
    name = coalesce(btrim(p_name), m.name),
    status = coalesce(p_status::mps.merchant_status, m.status),
    settlement_mode = coalesce(p_settlement_mode::mps.settlement_mode, m.settlement_mode),
    timezone = coalesce(p_timezone, m.timezone),
    fee_bp = coalesce(p_fee_bp, m.fee_bp),
    updated_at = now()
  WHERE m.id = v_old.id
  RETURNING * INTO v_new;
  PERFORM mps_internal.audit('merchant.update', 'merchant', v_new.id::text, to_jsonb(v_old), to_jsonb(v_new), NULL);
  RETURN v_new;
END
$$;

CREATE FUNCTION mps.assign_merchant_user(
  p_merchant_code  text,
  p_user_id        uuid,
  p_role           text DEFAULT 'operator')
RETURNS mps.merchant_users
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants;
  v_old mps.merchant_users;
  v_new mps.merchant_users;
BEGIN
  PERFORM mps_internal.require_admin('assign_merchant_user');
  v_merchant := mps_internal.merchant_by_code(p_merchant_code);
  IF p_user_id IS NULL THEN
    RAISE EXCEPTION 'user id is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_user_id is missing.', HINT = 'Pass the operator''s auth user id (the JWT sub).';
  END IF;
  IF p_role IS NULL OR p_role NOT IN ('operator', 'manager') THEN
    RAISE EXCEPTION 'unknown merchant role' USING ERRCODE = 'MP405',
      DETAIL = format('p_role = %L.', p_role), HINT = 'Use operator or manager.';
  END IF;
  SELECT * INTO v_old FROM mps.merchant_users u
   WHERE u.merchant_id = v_merchant.id AND u.user_id = p_user_id FOR UPDATE;
  INSERT INTO mps.merchant_users (merchant_id, user_id, role)
  VALUES (v_merchant.id, p_user_id, p_role::mps.merchant_role)
  ON CONFLICT (merchant_id, user_id) DO UPDATE SET role = excluded.role
  RETURNING * INTO v_new;
  PERFORM mps_internal.audit('merchant_user.assign', 'merchant', v_merchant.id::text,
    CASE WHEN v_old.user_id IS NULL THEN NULL ELSE to_jsonb(v_old) END, to_jsonb(v_new), NULL);
  RETURN v_new;
END
$$;

CREATE FUNCTION mps.remove_merchant_user(p_merchant_code text, p_user_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants;
  v_old mps.merchant_users;
BEGIN
  PERFORM mps_internal.require_admin('remove_merchant_user');
  v_merchant := mps_internal.merchant_by_code(p_merchant_code);
  DELETE FROM mps.merchant_users u WHERE u.merchant_id = v_merchant.id AND u.user_id = p_user_id
  RETURNING * INTO v_old;
  IF v_old.user_id IS NULL THEN
    RETURN false;
  END IF;
  PERFORM mps_internal.audit('merchant_user.remove', 'merchant', v_merchant.id::text, to_jsonb(v_old), NULL, NULL);
  RETURN true;
END
$$;

REVOKE ALL ON FUNCTION mps_internal.merchant_by_code(text, boolean),
  mps_internal.check_merchant_fields(text, text, text, integer),
  mps.create_merchant(text, text, text, text, text, integer),
  mps.update_merchant(text, text, text, text, text, integer),
  mps.assign_merchant_user(text, uuid, text), mps.remove_merchant_user(text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps.create_merchant(text, text, text, text, text, integer),
  mps.update_merchant(text, text, text, text, text, integer),
  mps.assign_merchant_user(text, uuid, text), mps.remove_merchant_user(text, uuid)
  TO mps_admin, mps_merchant_api, mps_member_app;
