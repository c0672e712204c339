-- 00_setup: what every later regress file relies on.
--
-- The regress database has only the extension (no Supabase stand-in), so the
-- group roles' privileges are copied to the API roles here, as the README asks
-- of a Supabase project. Then a few helpers that keep outputs deterministic:
-- never print a uuid, a card number or a timestamp.
\o /dev/null
-- Supabase's API roles, if the cluster lacks them (`make installcheck`).
SET client_min_messages = warning;
\i test/fixtures/supabase_roles.sql
RESET client_min_messages;
SELECT mps.grant_role_privileges('mps_member_app', 'authenticated');
SELECT mps.grant_role_privileges('mps_merchant_api', 'authenticated');
SELECT mps.grant_role_privileges('mps_admin', 'service_role');
\o
-- Masks what differs between runs: uuids, 16-digit card numbers.
CREATE FUNCTION public.test_mask(p text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(regexp_replace(p,
    '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>', 'gi'),
    '\m[0-9]{16}\M', '<card_no>', 'g')
$$;
-- Runs p_sql as the current role and reports how it failed: SQLSTATE and
-- message, then DETAIL and HINT (uuids and card numbers masked). A statement
-- that does not fail reports 'no error'; whatever it did is rolled back.
CREATE FUNCTION public.test_err(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
  BEGIN
    EXECUTE p_sql;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    RETURN public.test_mask(v_state || ' ' || v_msg
      || CASE WHEN coalesce(v_detail, '') <> '' THEN E'\nDETAIL: ' || v_detail ELSE '' END
      || CASE WHEN coalesce(v_hint, '') <> '' THEN E'\nHINT: ' || v_hint ELSE '' END);
  END;
  RETURN 'no error';
END
$$;
-- Luhn check of a card number.
CREATE FUNCTION public.luhn_ok(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
  SELECT p ~ '^[0-9]+$' AND sum(d) % 10 = 0
  FROM (SELECT CASE WHEN i % 2 = 0 THEN CASE WHEN 2 * x > 9 THEN 2 * x - 9 ELSE 2 * x END ELSE x END AS d
        FROM (SELECT i, substr(reverse(p), i, 1)::int AS x
              FROM generate_series(1, length(p)) i) s) t
$$;
-- Row counts of the member side and the audit log, compared before/after a
-- failing call to show that it changed nothing.
CREATE FUNCTION public.test_counts() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT format('members=%s identities=%s cards=%s bindings=%s merchants=%s merchant_users=%s levels=%s events=%s',
    (SELECT count(*) FROM mps.member_profiles), (SELECT count(*) FROM mps.member_external_identities),
    (SELECT count(*) FROM mps.cards), (SELECT count(*) FROM mps.card_bindings),
    (SELECT count(*) FROM mps.merchants), (SELECT count(*) FROM mps.merchant_users),
    (SELECT count(*) FROM mps.membership_levels), (SELECT count(*) FROM audit.event_log))
$$;
-- The helpers are the test's own, callable by every role it switches to.
GRANT EXECUTE ON FUNCTION public.test_mask(text), public.test_err(text), public.luhn_ok(text)
  TO PUBLIC;
-- Sanity of the helpers themselves.
SELECT luhn_ok('4539578763621486') AS valid_luhn, luhn_ok('4539578763621487') AS invalid_luhn,
       test_mask('card 8123456789012345 of a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') AS masked,
       test_err('SELECT 1/0') AS err, test_err('SELECT 1') AS no_err;
SELECT test_counts();
