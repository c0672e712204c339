-- Helpers that are not part of the API: identity (C), audit (C), conversions.

CREATE FUNCTION mps_internal.caller_is_admin() RETURNS boolean
  AS 'MODULE_PATHNAME', 'mps_caller_is_admin' LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION mps_internal.caller_user_id() RETURNS uuid
  AS 'MODULE_PATHNAME', 'mps_caller_user_id' LANGUAGE C STABLE PARALLEL RESTRICTED;
CREATE FUNCTION mps_internal.require_admin(p_action text) RETURNS void
  AS 'MODULE_PATHNAME', 'mps_require_admin' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION mps_internal.audit(p_action text, p_entity_type text, p_entity_id text,
                                   p_before jsonb, p_after jsonb, p_idempotency_key text)
  RETURNS void AS 'MODULE_PATHNAME', 'mps_audit_sql' LANGUAGE C VOLATILE;
CREATE FUNCTION mps_internal.tx_no(p_tx_id uuid) RETURNS text
  AS 'MODULE_PATHNAME', 'mps_tx_no_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION mps_internal.to_major(p_minor bigint, p_exponent integer) RETURNS numeric
  AS 'MODULE_PATHNAME', 'mps_to_major' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION mps_internal.to_minor(p_amount numeric, p_currency text, p_param text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'mps_to_minor' LANGUAGE C STABLE;

-- The caller's member profile, cards and merchants: used by RLS policies and
-- the SQL RPCs. SECURITY DEFINER so policies need no read access of their own.
CREATE FUNCTION mps_internal.my_member_id() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT m.id FROM mps.member_profiles m
  WHERE m.auth_user_id = mps_internal.caller_user_id() AND m.status = 'active'
$$;

CREATE FUNCTION mps_internal.my_card_ids() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(array_agg(b.card_id), '{}')
  FROM mps.card_bindings b
  JOIN mps.member_profiles m ON m.id = b.member_id
  WHERE m.auth_user_id = mps_internal.caller_user_id() AND m.status = 'active'
$$;

CREATE FUNCTION mps_internal.my_merchant_ids(p_managers_only boolean DEFAULT false) RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(array_agg(u.merchant_id), '{}')
  FROM mps.merchant_users u
  WHERE u.user_id = mps_internal.caller_user_id()
    AND (NOT p_managers_only OR u.role = 'manager')
$$;

CREATE FUNCTION mps_internal.is_merchant_user() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (SELECT 1 FROM mps.merchant_users u WHERE u.user_id = mps_internal.caller_user_id())
$$;

-- The level a personal card has at p_points: the highest min_points not above it.
CREATE FUNCTION mps_internal.level_for_points(p_points bigint) RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT l.id FROM mps.membership_levels l
  WHERE l.min_points <= p_points ORDER BY l.min_points DESC LIMIT 1
$$;

-- A fresh 16-digit card number: prefix 8, 14 random digits, Luhn check digit.
CREATE FUNCTION mps_internal.new_card_no() RETURNS text
  AS 'MODULE_PATHNAME', 'mps_new_card_no' LANGUAGE C VOLATILE;

-- Shared input checks of the SQL-written RPCs; each raises its MP code.
CREATE FUNCTION mps_internal.check_currency(p_currency text) RETURNS char(3)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  -- text, not char(3): a longer input must fail with MP002, not 22001.
  v_code text := upper(btrim(coalesce(p_currency, current_setting('mps.default_currency'))));
BEGIN
  IF NOT EXISTS (SELECT 1 FROM mps.currencies c WHERE c.code = v_code) THEN
    RAISE EXCEPTION 'unknown currency' USING ERRCODE = 'MP002',
      DETAIL = format('Currency %L is not configured.', p_currency),
      HINT = 'Use one of mps.currencies (e.g. CNY, EUR, USD, JPY).';
  END IF;
  RETURN v_code::char(3);
END
$$;

-- A name that ends up on slips, receipts and lists: at most p_max characters
-- and no control characters (a line break or escape would garble a printed
-- slip). NULL and empty pass: each RPC says itself whether a name is required.
-- Raises p_errcode, the RPC's own code for its names.
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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mps_internal FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps_internal.caller_is_admin(), mps_internal.caller_user_id(),
  mps_internal.my_member_id(), mps_internal.my_card_ids(), mps_internal.my_merchant_ids(boolean),
  mps_internal.tx_no(uuid), mps_internal.to_major(bigint, integer)
  TO mps_admin, mps_merchant_api, mps_member_app;
