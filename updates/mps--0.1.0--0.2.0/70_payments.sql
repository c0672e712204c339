-- ---- payments in: Stripe top-up orders, events, endpoint secrets (sql/67_payments.sql) ----

-- A top-up a member (or a corporate card's owner/admin) asked for. The card
-- is credited only when a verified Stripe event for this order, with this
-- amount and currency, arrives (src/stripe.c); one PaymentIntent pays one
-- order once.
CREATE TABLE mps.topup_orders (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  card_id          uuid NOT NULL REFERENCES mps.cards (id),
  member_id        uuid REFERENCES mps.member_profiles (id),   -- who asked; NULL: the platform admin
  currency         char(3) NOT NULL REFERENCES mps.currencies (code),
  amount           bigint NOT NULL CHECK (amount > 0),          -- minor units
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
  idempotency_key  text NOT NULL,
  payment_intent   text UNIQUE,                                 -- the PaymentIntent that paid it
  tx_id            uuid,                                        -- the recharge movement
  tx_created_at    timestamptz,
  refunded_amount  bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
  unrecovered_amount bigint NOT NULL DEFAULT 0 CHECK (unrecovered_amount >= 0),  -- refunded but already spent
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  paid_at          timestamptz,
  UNIQUE (card_id, idempotency_key)
);
COMMENT ON TABLE mps.topup_orders IS 'Card top-ups paid through Stripe: pending until a verified event pays them.';

-- Every Stripe event seen, once, with what it did. Written in the same
-- transaction as its effect, so an event is either recorded with its effect
-- or not at all.
CREATE TABLE mps.stripe_events (
  event_id        text PRIMARY KEY,
  event_type      text NOT NULL,
  livemode        boolean,
  event_created   timestamptz,
  outcome         text NOT NULL
                  CHECK (outcome IN ('received', 'credited', 'marked_failed', 'refunded', 'ignored', 'needs_review')),
  detail          text,
  order_id        uuid,
  payment_intent  text,
  tx_id           uuid,
  payload         jsonb NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_review_idx ON mps.stripe_events (received_at) WHERE outcome = 'needs_review';
COMMENT ON TABLE mps.stripe_events IS 'Stripe events as received and verified; outcome needs_review asks a person to look.';

-- Endpoint signing secrets (whsec_...): several at once during a rotation.
-- No API role reads this table; only src/stripe.c (as the extension owner)
-- does. The RPCs below never return a secret, only its fingerprint.
CREATE TABLE mps_internal.stripe_secrets (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  secret    text NOT NULL UNIQUE,
  label     text,
  added_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE mps_internal.stripe_secrets ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON mps_internal.stripe_secrets FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('mps_internal.stripe_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('mps_internal.stripe_secrets_id_seq', '');

CREATE TYPE mps.stripe_event_result AS (
  event_id text, event_type text, outcome text, duplicate boolean, order_id uuid, detail text);

-- The webhook: the raw body and the Stripe-Signature header, unchanged.
CREATE FUNCTION mps.handle_stripe_event(p_payload text, p_signature text)
RETURNS mps.stripe_event_result
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'mps_handle_stripe_event';
GRANT EXECUTE ON FUNCTION mps.handle_stripe_event(text, text) TO mps_admin;

CREATE TYPE mps.stripe_secret_info AS (secret_id bigint, label text, fingerprint text, added_at timestamptz);

CREATE FUNCTION mps_internal.secret_fingerprint(p_secret text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT left(encode(sha256(convert_to(p_secret, 'UTF8')), 'hex'), 12) $$;

CREATE FUNCTION mps.add_stripe_secret(p_secret text, p_label text DEFAULT NULL)
RETURNS mps.stripe_secret_info
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r mps.stripe_secret_info;
BEGIN
  PERFORM mps_internal.require_admin('add_stripe_secret');
  IF p_secret IS NULL OR length(p_secret) NOT BETWEEN 16 AND 200 OR p_secret !~ '^[\x21-\x7e]+$' THEN
    RAISE EXCEPTION 'invalid webhook secret' USING ERRCODE = 'MP955',
      DETAIL = format('The secret must be 16 to 200 printable characters without spaces (got %s characters).',
                      coalesce(length(p_secret), 0)),
      HINT = 'Copy the endpoint''s signing secret (whsec_...) from the Stripe dashboard.';
  END IF;
  IF p_label IS NOT NULL AND length(p_label) > 100 THEN
    RAISE EXCEPTION 'label too long' USING ERRCODE = 'MP004',
      DETAIL = format('p_label has %s characters.', length(p_label)), HINT = 'Use at most 100 characters.';
  END IF;
  INSERT INTO mps_internal.stripe_secrets (secret, label) VALUES (p_secret, p_label)
  ON CONFLICT (secret) DO NOTHING
  RETURNING id, label, mps_internal.secret_fingerprint(secret), added_at INTO r;
  IF r.secret_id IS NULL THEN
    RAISE EXCEPTION 'webhook secret already configured' USING ERRCODE = 'MP956',
      DETAIL = format('A secret with fingerprint %s is configured.', mps_internal.secret_fingerprint(p_secret)),
      HINT = 'Nothing to do; list_stripe_secrets() shows the configured ones.';
  END IF;
  PERFORM mps_internal.audit('stripe_secret.add', 'stripe_secret', r.secret_id::text, NULL,
    jsonb_build_object('label', r.label, 'fingerprint', r.fingerprint), NULL);
  RETURN r;
END
$$;
GRANT EXECUTE ON FUNCTION mps.add_stripe_secret(text, text) TO mps_admin;

CREATE FUNCTION mps.remove_stripe_secret(p_secret_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r mps.stripe_secret_info;
BEGIN
  PERFORM mps_internal.require_admin('remove_stripe_secret');
  DELETE FROM mps_internal.stripe_secrets s WHERE s.id = p_secret_id
  RETURNING s.id, s.label, mps_internal.secret_fingerprint(s.secret), s.added_at INTO r;
  IF r.secret_id IS NULL THEN
    RETURN false;
  END IF;
  PERFORM mps_internal.audit('stripe_secret.remove', 'stripe_secret', r.secret_id::text,
    jsonb_build_object('label', r.label, 'fingerprint', r.fingerprint), NULL, NULL);
  RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION mps.remove_stripe_secret(bigint) TO mps_admin;

CREATE FUNCTION mps.list_stripe_secrets()
RETURNS SETOF mps.stripe_secret_info
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM mps_internal.require_admin('list_stripe_secrets');
  RETURN QUERY SELECT s.id, s.label, mps_internal.secret_fingerprint(s.secret), s.added_at
               FROM mps_internal.stripe_secrets s ORDER BY s.id;
END
$$;
GRANT EXECUTE ON FUNCTION mps.list_stripe_secrets() TO mps_admin;

CREATE TYPE mps.topup_order_result AS (
  order_id uuid, card_id uuid, amount numeric, currency text, status text,
  stripe_amount bigint, stripe_currency text, client_reference_id text, metadata jsonb,
  created_at timestamptz);

-- A pending top-up: by the member on a card she owns, by a corporate card's
-- owner or admin, or by the platform admin. Nothing is credited here.
CREATE FUNCTION mps.create_topup_order(p_card_id uuid, p_amount numeric, p_idempotency_key text)
RETURNS mps.topup_order_result
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_admin boolean := mps_internal.caller_is_admin();
  v_member uuid;
  v_role text;
  c record;
  v_minor bigint;
  o mps.topup_orders;
  v_exp integer;
BEGIN
  IF NOT v_admin THEN
    v_member := mps_internal.my_member_id();
    IF v_member IS NOT NULL AND p_card_id IS NOT NULL THEN
      SELECT b.role INTO v_role FROM mps.card_bindings b
      WHERE b.card_id = p_card_id AND b.member_id = v_member;
    END IF;
    -- The same refusal for a card that does not exist and one that is not
    -- the caller's to top up.
    IF v_role IS NULL OR v_role NOT IN ('owner', 'admin') THEN
      RAISE EXCEPTION 'permission denied: create_topup_order' USING ERRCODE = '42501',
        DETAIL = 'Only a card''s owner or admin (or the platform admin) tops it up.',
        HINT = 'Top up a card you own, or ask the card''s owner.';
    END IF;
  END IF;
  IF p_card_id IS NULL THEN
    RAISE EXCEPTION 'card id is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_card_id is missing.', HINT = 'Pass the card''s id.';
  END IF;
  SELECT k.id, k.card_type, k.status, k.currency, k.balance, k.expires_at, cu.exponent, cu.max_balance
  INTO c FROM mps.cards k JOIN mps.currencies cu ON cu.code = k.currency WHERE k.id = p_card_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'card not found' USING ERRCODE = 'MP201',
      DETAIL = format('No card %s.', p_card_id), HINT = 'Check the card id.';
  END IF;
  IF c.card_type = 'voucher' THEN
    RAISE EXCEPTION 'card cannot be recharged' USING ERRCODE = 'MP207',
      DETAIL = format('Card %s is a voucher card.', p_card_id),
      HINT = 'Voucher cards carry a fixed face value; issue a new voucher instead.';
  END IF;
  IF p_idempotency_key IS NULL OR length(p_idempotency_key) NOT BETWEEN 1 AND 200
     OR p_idempotency_key !~ '^[\x20-\x7e]+$' THEN
    RAISE EXCEPTION 'invalid idempotency key' USING ERRCODE = 'MP506',
      DETAIL = format('p_idempotency_key has %s characters.', coalesce(length(p_idempotency_key), 0)),
      HINT = 'Pass 1 to 200 printable ASCII characters, the same on every retry of one top-up.';
  END IF;
  v_minor := mps_internal.to_minor(p_amount, c.currency, 'p_amount');
  v_exp := c.exponent;

  -- A retry with the same key gives the first order back.
  INSERT INTO mps.topup_orders (card_id, member_id, currency, amount, idempotency_key)
  VALUES (p_card_id, v_member, c.currency, v_minor, p_idempotency_key)
  ON CONFLICT (card_id, idempotency_key) DO NOTHING
  RETURNING * INTO o;
  IF o.id IS NULL THEN
    SELECT * INTO o FROM mps.topup_orders t WHERE t.card_id = p_card_id AND t.idempotency_key = p_idempotency_key;
    IF o.amount <> v_minor OR o.member_id IS DISTINCT FROM v_member THEN
      RAISE EXCEPTION 'idempotency key reused with other parameters' USING ERRCODE = 'MP501',
        DETAIL = format('Key %L already made top-up order %s of %s %s.', p_idempotency_key, o.id,
                        mps_internal.to_major(o.amount, v_exp), o.currency),
        HINT = 'Use a new key for a new top-up.';
    END IF;
  ELSE
    IF c.status <> 'active' THEN
      RAISE EXCEPTION 'card is %', c.status USING ERRCODE = CASE c.status WHEN 'closed' THEN 'MP203' ELSE 'MP202' END,
        DETAIL = format('Card %s is %s.', p_card_id, c.status),
        HINT = 'Only an active card can be topped up.';
    END IF;
    IF c.expires_at IS NOT NULL AND c.expires_at <= now() THEN
      RAISE EXCEPTION 'card has expired' USING ERRCODE = 'MP204',
        DETAIL = format('Card %s expired at %s.', p_card_id, c.expires_at), HINT = 'Use another card.';
    END IF;
    IF c.balance > c.max_balance - v_minor THEN
      RAISE EXCEPTION 'balance limit exceeded' USING ERRCODE = 'MP208',
        DETAIL = format('The card holds %s %s; with %s more it would pass the limit of %s.',
                        mps_internal.to_major(c.balance, v_exp), c.currency,
                        mps_internal.to_major(v_minor, v_exp), mps_internal.to_major(c.max_balance, v_exp)),
        HINT = 'Top up a smaller amount.';
    END IF;
    PERFORM mps_internal.audit('topup_order.create', 'topup_order', o.id::text, NULL,
      jsonb_build_object('card_id', o.card_id, 'amount', o.amount, 'currency', o.currency,
                         'member_id', o.member_id), p_idempotency_key);
  END IF;
  RETURN ROW(o.id, o.card_id, mps_internal.to_major(o.amount, v_exp), o.currency::text, o.status,
             o.amount, lower(o.currency), o.id::text,
             jsonb_build_object('mps_order_id', o.id::text), o.created_at)::mps.topup_order_result;
END
$$;
GRANT EXECUTE ON FUNCTION mps.create_topup_order(uuid, numeric, text) TO mps_member_app, mps_admin;

-- Reads: a member her own orders; the platform admin everything. Events
-- only the platform admin.
ALTER TABLE mps.topup_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE mps.stripe_events ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON mps.topup_orders FROM PUBLIC;
REVOKE ALL ON mps.stripe_events FROM PUBLIC;
CREATE POLICY topup_orders_own ON mps.topup_orders FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY stripe_events_admin ON mps.stripe_events FOR SELECT
  USING ((SELECT mps_internal.caller_is_admin()));
GRANT SELECT ON mps.topup_orders TO mps_admin, mps_member_app;
GRANT SELECT ON mps.stripe_events TO mps_admin;

REVOKE ALL ON FUNCTION mps.handle_stripe_event(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mps_internal.secret_fingerprint(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mps.add_stripe_secret(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION mps.remove_stripe_secret(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION mps.list_stripe_secrets() FROM PUBLIC;
REVOKE ALL ON FUNCTION mps.create_topup_order(uuid, numeric, text) FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('mps.topup_orders', '');
SELECT pg_catalog.pg_extension_config_dump('mps.stripe_events', '');

-- The API roles that hold copies of the group roles' rights (grant_role_privileges
-- before the upgrade) get copies of the new rights too, as a run of
-- grant_role_privileges after a fresh install gives them: the member app's
-- (holders of get_my_profile, which mps_member_app and mps_admin have) and the
-- platform admin's (holders of grant_role_privileges).
-- The tables' initial privileges are kept as they were before these copies
-- (the per-privilege rewrite in 99_finish.sql suits functions, not tables).
DO $payments_grants$
DECLARE
  r record;
  v_orders aclitem[] := (SELECT initprivs FROM pg_catalog.pg_init_privs
                         WHERE classoid = 'pg_class'::regclass AND objoid = 'mps.topup_orders'::regclass AND objsubid = 0);
  v_events aclitem[] := (SELECT initprivs FROM pg_catalog.pg_init_privs
                         WHERE classoid = 'pg_class'::regclass AND objoid = 'mps.stripe_events'::regclass AND objsubid = 0);
BEGIN
  FOR r IN
    SELECT DISTINCT a.grantee::regrole AS grantee
    FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.oid = 'mps.get_my_profile()'::regprocedure
      AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
      AND a.grantee NOT IN (SELECT oid FROM pg_roles WHERE rolname IN ('mps_admin', 'mps_merchant_api', 'mps_member_app'))
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION mps.create_topup_order(uuid, numeric, text) TO %s', r.grantee);
    EXECUTE format('GRANT SELECT ON mps.topup_orders TO %s', r.grantee);
  END LOOP;
  FOR r IN
    SELECT DISTINCT a.grantee::regrole AS grantee
    FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.oid = 'mps.grant_role_privileges(text, text)'::regprocedure
      AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
      AND a.grantee NOT IN (SELECT oid FROM pg_roles WHERE rolname IN ('mps_admin', 'mps_merchant_api', 'mps_member_app'))
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION mps.handle_stripe_event(text, text), mps.add_stripe_secret(text, text),
                    mps.remove_stripe_secret(bigint), mps.list_stripe_secrets() TO %s', r.grantee);
    EXECUTE format('GRANT SELECT ON mps.stripe_events TO %s', r.grantee);
  END LOOP;
  UPDATE pg_catalog.pg_init_privs SET initprivs = v_orders
  WHERE classoid = 'pg_class'::regclass AND objoid = 'mps.topup_orders'::regclass AND objsubid = 0;
  UPDATE pg_catalog.pg_init_privs SET initprivs = v_events
  WHERE classoid = 'pg_class'::regclass AND objoid = 'mps.stripe_events'::regclass AND objsubid = 0;
END
$payments_grants$;
