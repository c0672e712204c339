-- mps extension script, assembled from sql/*.sql in name order.
\echo Use "CREATE EXTENSION mps CASCADE" to load this file. \quit

-- Schemas: mps is the API PostgREST exposes; mps_internal holds helpers that
-- are not part of the API; audit holds the tamper-evident event log.
CREATE SCHEMA mps_internal;
CREATE SCHEMA audit;

-- The extension's own group roles (cluster-wide, so created only if missing).
-- Grant them to your login or API roles; see README "Security model".
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mps_admin') THEN
    CREATE ROLE mps_admin NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mps_merchant_api') THEN
    CREATE ROLE mps_merchant_api NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mps_member_app') THEN
    CREATE ROLE mps_member_app NOLOGIN;
  END IF;
END
$roles$;

GRANT USAGE ON SCHEMA @extschema@ TO mps_admin, mps_merchant_api, mps_member_app;
REVOKE ALL ON SCHEMA mps_internal FROM PUBLIC;
REVOKE ALL ON SCHEMA audit FROM PUBLIC;
GRANT USAGE ON SCHEMA mps_internal TO mps_admin, mps_merchant_api, mps_member_app;
-- Enumerations shared by the tables and the RPC results.

CREATE TYPE mps.card_type AS ENUM ('standard', 'prepaid', 'corporate', 'voucher');
CREATE TYPE mps.card_status AS ENUM ('active', 'frozen', 'closed');
CREATE TYPE mps.binding_role AS ENUM ('owner', 'admin', 'member', 'viewer');
CREATE TYPE mps.merchant_status AS ENUM ('active', 'suspended', 'closed');
CREATE TYPE mps.merchant_role AS ENUM ('operator', 'manager');
CREATE TYPE mps.settlement_mode AS ENUM ('realtime', 't_plus_1', 'monthly');
CREATE TYPE mps.tx_kind AS ENUM ('payment', 'refund', 'recharge', 'pass_purchase',
                                 'pass_redemption', 'adjustment');
CREATE TYPE mps.tx_status AS ENUM ('completed', 'partially_refunded', 'refunded');
CREATE TYPE mps.settlement_status AS ENUM ('pending', 'paid');
-- The CHECK rules of cards and transactions, in C (src/row_checks.c): the two
-- tables every movement writes, whose constraints PostgreSQL parses again for
-- each statement; a function call is a short expression to parse. The rules
-- are listed in 20_tables.sql beside the tables.

CREATE FUNCTION mps_internal.card_row_valid(
  card_no text, card_type mps.card_type, balance bigint, points bigint, fixed_discount_bp integer,
  binding_password_hash text, face_value bigint, level_id integer)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mps_card_row_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION mps_internal.transaction_row_valid(
  kind mps.tx_kind, amount bigint, raw_amount bigint, discount_amount bigint, final_amount bigint,
  refunded_amount bigint, balance_after bigint, points_after bigint, original_tx_id uuid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'mps_transaction_row_valid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
-- Core tables. Money is bigint minor units of the row's currency; balances and
-- points are kept on the card and always equal the sum of their movement rows.
--
-- The tables every movement writes keep all their rules in one CHECK each
-- (<table>_row_check). PostgreSQL parses and plans every CHECK of a table
-- again for each statement that writes it, so cards and transactions, the
-- biggest, state theirs in a C function (sql/15_row_checks.sql), whose call
-- is a short expression to parse. Test 25_invariants breaks each rule.

CREATE TABLE mps.currencies (
  code        char(3) PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
  exponent    smallint NOT NULL CHECK (exponent BETWEEN 0 AND 4),
  max_amount  bigint NOT NULL CHECK (max_amount > 0),   -- largest single movement, minor units
  max_balance bigint NOT NULL CHECK (max_balance > 0)   -- largest card balance, minor units
);
COMMENT ON TABLE mps.currencies IS 'ISO-4217 currencies MPS accepts, with their minor-unit exponent and caps.';
INSERT INTO mps.currencies VALUES
  ('CNY', 2, 100000000, 10000000000),
  ('EUR', 2, 100000000, 10000000000),
  ('USD', 2, 100000000, 10000000000),
  ('GBP', 2, 100000000, 10000000000),
  ('HKD', 2, 100000000, 10000000000),
  ('JPY', 0, 10000000, 1000000000);

CREATE TABLE mps.member_profiles (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  auth_user_id  uuid UNIQUE,                  -- the JWT subject of the member, when they sign in
  name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
  phone         text CHECK (phone ~ '^\+?[0-9]{5,20}$'),
  email         text CHECK (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$'),
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX member_profiles_phone_idx ON mps.member_profiles (phone);
CREATE INDEX member_profiles_email_idx ON mps.member_profiles (lower(email));

CREATE TABLE mps.member_external_identities (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  member_id    uuid NOT NULL REFERENCES mps.member_profiles (id),
  provider     text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]{1,31}$'),
  external_id  text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 200),
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, external_id),
  UNIQUE (member_id, provider)
);

CREATE TABLE mps.membership_levels (
  id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code          text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
  name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
  min_points    bigint NOT NULL CHECK (min_points >= 0),
  max_points    bigint CHECK (max_points >= min_points),   -- inclusive; NULL = no upper bound
  discount_bp   integer NOT NULL DEFAULT 0 CHECK (discount_bp BETWEEN 0 AND 10000),
  earn_rate_bp  integer NOT NULL DEFAULT 10000 CHECK (earn_rate_bp BETWEEN 0 AND 1000000),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX membership_levels_min_idx ON mps.membership_levels (min_points);
COMMENT ON COLUMN mps.membership_levels.discount_bp IS 'Discount on the subtotal, basis points (500 = 5%).';
COMMENT ON COLUMN mps.membership_levels.earn_rate_bp IS 'Points per 1 major unit paid, in basis points (10000 = 1 point per 1.00).';
INSERT INTO mps.membership_levels (code, name, min_points, max_points, discount_bp, earn_rate_bp) VALUES
  ('BRONZE', 'Bronze', 0, 999, 0, 10000),
  ('SILVER', 'Silver', 1000, 4999, 300, 10000),
  ('GOLD', 'Gold', 5000, 19999, 500, 12000),
  ('PLATINUM', 'Platinum', 20000, NULL, 800, 15000);

CREATE TABLE mps.cards (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  card_no                text NOT NULL UNIQUE,
  card_type              mps.card_type NOT NULL,
  status                 mps.card_status NOT NULL DEFAULT 'active',
  status_reason          text,
  currency               char(3) NOT NULL REFERENCES mps.currencies (code),
  balance                bigint NOT NULL DEFAULT 0,
  points                 bigint NOT NULL DEFAULT 0,
  level_id               integer REFERENCES mps.membership_levels (id),
  fixed_discount_bp      integer NOT NULL DEFAULT 0,
  enterprise_name        text,
  binding_password_hash  text,
  face_value             bigint,
  expires_at             timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  -- A 16-digit card number; balance and points never negative; a fixed
  -- discount of 0-10000 basis points, only on corporate cards; levels only on
  -- standard cards; a binding password only as a bcrypt hash; a face value
  -- above 0 when set, and always set on a voucher (src/row_checks.c).
  CONSTRAINT cards_row_check CHECK (mps_internal.card_row_valid(
    card_no, card_type, balance, points, fixed_discount_bp, binding_password_hash, face_value, level_id))
);
-- Room on each page so balance updates stay HOT (no indexed column changes).
ALTER TABLE mps.cards SET (fillfactor = 85);
COMMENT ON COLUMN mps.cards.fixed_discount_bp IS 'Corporate cards: fixed discount on the subtotal, basis points.';

CREATE TABLE mps.card_bindings (
  card_id     uuid NOT NULL REFERENCES mps.cards (id),
  member_id   uuid NOT NULL REFERENCES mps.member_profiles (id),
  role        mps.binding_role NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (card_id, member_id)
);
-- A bound card always keeps at least one owner; co-owners are allowed (an
-- owner hands a card over by adding the new owner, then leaving). The C and
-- SQL that unbind check it under the card lock; no constraint can.
CREATE INDEX card_bindings_owner_idx ON mps.card_bindings (card_id) WHERE role = 'owner';
CREATE INDEX card_bindings_member_idx ON mps.card_bindings (member_id);

CREATE TABLE mps.merchants (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  code             text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9_-]{2,32}$'),
  name             text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  status           mps.merchant_status NOT NULL DEFAULT 'active',
  currency         char(3) NOT NULL REFERENCES mps.currencies (code),
  settlement_mode  mps.settlement_mode NOT NULL DEFAULT 't_plus_1',
  timezone         text NOT NULL DEFAULT 'UTC',
  fee_bp           integer NOT NULL DEFAULT 0 CHECK (fee_bp BETWEEN 0 AND 10000),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mps.merchant_users (
  merchant_id  uuid NOT NULL REFERENCES mps.merchants (id),
  user_id      uuid NOT NULL,                 -- the JWT subject of the operator
  role         mps.merchant_role NOT NULL DEFAULT 'operator',
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (merchant_id, user_id)
);
CREATE INDEX merchant_users_user_idx ON mps.merchant_users (user_id);

-- QR payment codes: every code ever issued (state and history in one table).
-- Only the bcrypt hash of the secret is stored; lookup_id is public and finds
-- the row by index. A code is live while not used, not revoked, not expired.
CREATE TABLE mps.card_qr_codes (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  lookup_id         text NOT NULL UNIQUE,
  card_id           uuid NOT NULL REFERENCES mps.cards (id),
  holder_member_id  uuid REFERENCES mps.member_profiles (id),   -- NULL: the card's shared code
  single_use        boolean NOT NULL,
  secret_hash       text NOT NULL,
  issued_at         timestamptz NOT NULL DEFAULT now(),
  expires_at        timestamptz NOT NULL,
  used_at           timestamptz,
  used_tx_id        uuid,
  revoked_at        timestamptz,
  revoke_reason     text,
  CONSTRAINT card_qr_codes_row_check CHECK (secret_hash LIKE '$2%' AND expires_at > issued_at)
);
-- The indexes leave out used_at and revoked_at on purpose: consuming or
-- revoking a code then changes no indexed column and stays a HOT update. A
-- code is updated about once in its life (used, revoked or expired), so half
-- of each page is kept free: that one update always finds room on its own
-- page, even before old versions are pruned. One live code per (card,
-- holder) is kept by rotate_card_qr, under the card lock.
ALTER TABLE mps.card_qr_codes SET (fillfactor = 50);
CREATE INDEX card_qr_codes_card_idx ON mps.card_qr_codes (card_id, expires_at);
CREATE INDEX card_qr_codes_expiry_idx ON mps.card_qr_codes (expires_at);

-- Every movement of money. Partitioned by month; ids are UUIDv7 taken from
-- created_at, so an id tells its partition. amount is the signed change of the
-- card's balance; raw/discount/final are the payment's price breakdown.
CREATE TABLE mps.transactions (
  id                   uuid NOT NULL,
  created_at           timestamptz NOT NULL,
  card_id              uuid NOT NULL,
  kind                 mps.tx_kind NOT NULL,
  status               mps.tx_status NOT NULL DEFAULT 'completed',
  currency             char(3) NOT NULL,
  amount               bigint NOT NULL,
  raw_amount           bigint NOT NULL,
  discount_amount      bigint NOT NULL DEFAULT 0,
  final_amount         bigint NOT NULL,
  refunded_amount      bigint NOT NULL DEFAULT 0,
  points_delta         bigint NOT NULL DEFAULT 0,
  balance_after        bigint NOT NULL,
  points_after         bigint NOT NULL,
  level_before         integer,
  level_after          integer,
  merchant_id          uuid,
  member_id            uuid,
  actor_user_id        uuid,
  original_tx_id       uuid,
  qr_code_id           bigint,
  idempotency_key      text,
  order_no             text,
  reason               text,
  tag                  jsonb,
  details              jsonb,      -- payments: applied pricing rules; refunds: refunded total after it
  PRIMARY KEY (id, created_at),
  -- Price parts never negative and raw - discount = final; refunded never
  -- above final; balance and points after never negative; a payment or pass
  -- purchase takes final off the card (amount = -final), a refund or
  -- recharge puts it on (amount = final), a refund names its payment; other
  -- kinds may move any amount (src/row_checks.c).
  CONSTRAINT transactions_row_check CHECK (mps_internal.transaction_row_valid(
    kind, amount, raw_amount, discount_amount, final_amount, refunded_amount, balance_after,
    points_after, original_tx_id))
) PARTITION BY RANGE (created_at);
CREATE INDEX transactions_card_idx ON mps.transactions (card_id, created_at);
CREATE INDEX transactions_merchant_idx ON mps.transactions (merchant_id, created_at)
  WHERE merchant_id IS NOT NULL;
-- No index on original_tx_id: a refund goes back to the card of its payment,
-- so the refunds of a payment are found through transactions_card_idx
-- (card_id = the payment's card AND original_tx_id = its id), and every refund
-- is spared an index entry on a random page.

CREATE TABLE mps.point_ledger (
  id            bigserial,
  created_at    timestamptz NOT NULL,
  card_id       uuid NOT NULL,
  tx_id         uuid,
  delta         bigint NOT NULL,
  points_after  bigint NOT NULL,
  reason        text NOT NULL,
  -- A ledger is read by card, in time order: the key serves that read, so a
  -- movement's ledger row costs one index entry, not two (id only breaks ties).
  PRIMARY KEY (card_id, created_at, id),
  CONSTRAINT point_ledger_row_check CHECK (delta <> 0 AND points_after >= 0)
) PARTITION BY RANGE (created_at);

-- Idempotency: one row per (scope, key). scope_id is the merchant for merchant
-- calls, the card for member calls. request_hash covers every parameter, so a
-- reused key with other parameters is told apart from a retry.
CREATE TABLE mps.idempotency_registry (
  scope_id       uuid NOT NULL,
  key            text NOT NULL,
  operation      text NOT NULL,
  request_hash   bytea NOT NULL,
  tx_id          uuid NOT NULL,
  tx_created_at  timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope_id, key)
);

CREATE TABLE mps.merchant_order_registry (
  merchant_id    uuid NOT NULL,
  order_no       text NOT NULL,
  tx_id          uuid NOT NULL,
  tx_created_at  timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (merchant_id, order_no)
);

CREATE TABLE mps.settlements (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  merchant_id      uuid NOT NULL REFERENCES mps.merchants (id),
  currency         char(3) NOT NULL REFERENCES mps.currencies (code),
  mode             mps.settlement_mode NOT NULL,
  period_start     timestamptz NOT NULL,
  period_end       timestamptz NOT NULL CHECK (period_end > period_start),
  gross_payments   bigint NOT NULL DEFAULT 0 CHECK (gross_payments >= 0),
  refunds          bigint NOT NULL DEFAULT 0 CHECK (refunds >= 0),
  net              bigint NOT NULL DEFAULT 0,
  payment_count    integer NOT NULL DEFAULT 0,
  refund_count     integer NOT NULL DEFAULT 0,
  fee              bigint NOT NULL DEFAULT 0,
  status           mps.settlement_status NOT NULL DEFAULT 'pending',
  payout_ref       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  paid_at          timestamptz,
  UNIQUE (merchant_id, currency, period_start, period_end)
);
-- Monthly partitions of the movement tables. A default partition catches any
-- row whose month was not prepared in time, so a movement never fails for lack
-- of a partition; ensure_partitions() keeps months ready ahead of the clock.

-- A payment row is updated when it is refunded (refunded total and status):
-- 10 % free room on each transactions page keeps that update HOT, so a refund
-- adds no index entries for the payment it refunds.
CREATE TABLE mps.transactions_default PARTITION OF mps.transactions DEFAULT WITH (fillfactor = 90);
CREATE TABLE mps.point_ledger_default PARTITION OF mps.point_ledger DEFAULT;

CREATE FUNCTION mps_internal.create_month_partitions(p_from date, p_months integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_parent text;
  v_month date;
  v_name text;
  v_lo timestamptz;
  v_hi timestamptz;
  v_made integer := 0;
  v_stray boolean;
  v_with text;
BEGIN
  FOREACH v_parent IN ARRAY ARRAY['transactions', 'point_ledger'] LOOP
    FOR i IN 0 .. p_months LOOP
      v_month := (date_trunc('month', p_from) + make_interval(months => i))::date;
      v_name := format('%s_%s', v_parent, to_char(v_month, 'YYYY_MM'));
      v_with := CASE v_parent WHEN 'transactions' THEN ' WITH (fillfactor = 90)' ELSE '' END;
      v_lo := v_month::timestamp AT TIME ZONE 'UTC';
      v_hi := (v_month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
      CONTINUE WHEN to_regclass(format('mps.%I', v_name)) IS NOT NULL;
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM mps.%I WHERE created_at >= $1 AND created_at < $2)',
                     v_parent || '_default') INTO v_stray USING v_lo, v_hi;
      IF v_stray THEN
        -- Rows of this month landed in the default partition (the month was
        -- not prepared in time): take the default out, make the month, move
        -- the rows into it, put the default back.
        EXECUTE format('ALTER TABLE mps.%I DETACH PARTITION mps.%I', v_parent, v_parent || '_default');
        EXECUTE format('CREATE TABLE mps.%I PARTITION OF mps.%I FOR VALUES FROM (%L) TO (%L)%s',
                       v_name, v_parent, v_lo, v_hi, v_with);
        EXECUTE format('WITH moved AS (DELETE FROM mps.%I WHERE created_at >= $1 AND created_at < $2 RETURNING *)
                        INSERT INTO mps.%I SELECT * FROM moved', v_parent || '_default', v_parent) USING v_lo, v_hi;
        EXECUTE format('ALTER TABLE mps.%I ATTACH PARTITION mps.%I DEFAULT', v_parent, v_parent || '_default');
      ELSE
        EXECUTE format('CREATE TABLE mps.%I PARTITION OF mps.%I FOR VALUES FROM (%L) TO (%L)%s',
                       v_name, v_parent, v_lo, v_hi, v_with);
      END IF;
      v_made := v_made + 1;
    END LOOP;
  END LOOP;
  RETURN v_made;
END
$$;

-- Months are UTC months. Creates the current month and p_months_ahead more.
CREATE FUNCTION mps.ensure_partitions(p_months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_made integer;
BEGIN
  PERFORM mps_internal.require_admin('ensure_partitions');
  IF p_months_ahead IS NULL OR p_months_ahead < 0 OR p_months_ahead > 120 THEN
    RAISE EXCEPTION 'invalid months ahead' USING ERRCODE = 'MP004',
      DETAIL = format('p_months_ahead = %s.', coalesce(p_months_ahead::text, 'NULL')),
      HINT = 'Pass a number of months between 0 and 120.';
  END IF;
  v_made := mps_internal.create_month_partitions((now() AT TIME ZONE 'UTC')::date, p_months_ahead);
  IF v_made > 0 THEN
    PERFORM mps_internal.audit('partitions.ensure', 'partition', NULL, NULL,
                               jsonb_build_object('months_ahead', p_months_ahead, 'created', v_made), NULL);
  END IF;
  RETURN v_made;
END
$$;

-- The platform admin may run the job by hand (service_role gets it through
-- grant_role_privileges); require_admin above still checks the caller.
GRANT EXECUTE ON FUNCTION mps.ensure_partitions(integer) TO mps_admin;
-- The audit trail: append-only, tamper-evident.
--
-- Events are inserted on the hot path without a hash, so an audit insert never
-- waits for any other card's audit. audit.seal() (a job, also callable on
-- demand) appends the committed, not yet sealed events to audit.chain in id
-- order: chain position n carries hash_n = sha256(hash_{n-1} || digest(event)).
-- The chain order is the order of sealing, so an event whose transaction
-- commits late is simply sealed by the next run; nothing can slip in behind a
-- seal. audit.verify() walks the chain and reports the first broken link.
-- Until an event is sealed a superuser could change it unnoticed: that window
-- is the seal interval (one minute with the scheduled job).

CREATE TABLE audit.event_log (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  db_role          text NOT NULL DEFAULT session_user,
  actor_via        text,
  actor_admin      boolean NOT NULL DEFAULT false,
  actor_user_id    uuid,
  action           text NOT NULL,
  entity_type      text NOT NULL,
  entity_id        text,
  before           jsonb,
  after            jsonb,
  idempotency_key  text
);
CREATE INDEX event_log_entity_idx ON audit.event_log (entity_type, entity_id);

CREATE TABLE audit.chain (
  pos        bigint PRIMARY KEY,
  event_id   bigint NOT NULL UNIQUE,
  hash       bytea NOT NULL,
  sealed_at  timestamptz NOT NULL DEFAULT now()
);

-- Where sealing resumes: every event with id < low_water is sealed. The
-- checkpoint (next_id, xmax) lets low_water advance once every transaction
-- that was running at the previous seal has ended.
CREATE TABLE audit.seal_state (
  singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  low_water        bigint NOT NULL DEFAULT 1,
  checkpoint_next  bigint NOT NULL DEFAULT 1,
  checkpoint_xmax  xid8 NOT NULL DEFAULT '0'
);
INSERT INTO audit.seal_state DEFAULT VALUES;

-- Append-only: no UPDATE, DELETE or TRUNCATE for anyone. (A superuser can
-- still disable the trigger; that is what the hash chain is for.)
CREATE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'audit log is append-only' USING ERRCODE = 'MP901',
    DETAIL = format('%s on %s.%s was refused.', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME),
    HINT = 'Audit rows are never changed or deleted.';
END
$$;
CREATE TRIGGER event_log_append_only BEFORE UPDATE OR DELETE ON audit.event_log
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON audit.event_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER chain_append_only BEFORE UPDATE OR DELETE ON audit.chain
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER chain_no_truncate BEFORE TRUNCATE ON audit.chain
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- The digest of one event: every column (chr(30) marks NULL), in a form independent of session
-- settings (epoch microseconds, jsonb's canonical text, explicit NULL marks).
CREATE FUNCTION audit.event_digest(e audit.event_log) RETURNS bytea
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT sha256(convert_to(concat_ws(chr(31),
    e.id::text,
    (extract(epoch FROM e.occurred_at) * 1000000)::bigint::text,
    coalesce(e.db_role, chr(30)),
    coalesce(e.actor_via, chr(30)),
    e.actor_admin::text,
    coalesce(e.actor_user_id::text, chr(30)),
    e.action,
    e.entity_type,
    coalesce(e.entity_id, chr(30)),
    coalesce(e.before::text, chr(30)),
    coalesce(e.after::text, chr(30)),
    coalesce(e.idempotency_key, chr(30))), 'UTF8'))
$$;

CREATE FUNCTION audit.seal(p_max_events integer DEFAULT 100000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_state audit.seal_state;
  v_snap pg_snapshot := pg_current_snapshot();
  v_pos bigint;
  v_hash bytea;
  v_count integer := 0;
  v_fresh boolean;
  v_next bigint;
  v_next_xid xid8;
  e audit.event_log;
BEGIN
  PERFORM mps_internal.require_admin('audit.seal');
  -- One sealer at a time.
  PERFORM pg_advisory_xact_lock(1297101617, 1);   -- 'MPS1', 1
  -- The next checkpoint: the event id after the last one visible now, and an
  -- xid assigned after that look (this transaction's own, so only a sealer
  -- that had no xid yet can take one). A transaction that can still commit an
  -- event below v_next took its xid before its event id, so before this look,
  -- so below v_next_xid. (A snapshot's xmax is no such bound: it is only
  -- latestCompletedXid + 1, and running transactions may have larger xids.)
  v_fresh := pg_current_xact_id_if_assigned() IS NULL;
  v_next := (SELECT coalesce(max(l.id), 0) + 1 FROM audit.event_log l);
  v_next_xid := pg_current_xact_id();
  SELECT * INTO v_state FROM audit.seal_state FOR UPDATE;


  SELECT c.pos, c.hash INTO v_pos, v_hash FROM audit.chain c ORDER BY c.pos DESC LIMIT 1;
  v_pos := coalesce(v_pos, 0);
  v_hash := coalesce(v_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);

  FOR e IN
    SELECT l.* FROM audit.event_log l
    WHERE l.id >= v_state.low_water
      AND NOT EXISTS (SELECT 1 FROM audit.chain c WHERE c.event_id = l.id)
    ORDER BY l.id
    LIMIT p_max_events
  LOOP
    v_pos := v_pos + 1;
    v_hash := sha256(v_hash || audit.event_digest(e));
    INSERT INTO audit.chain (pos, event_id, hash) VALUES (v_pos, e.id, v_hash);
    v_count := v_count + 1;
  END LOOP;

  -- After a complete pass: if every transaction that was running at the last
  -- checkpoint has ended, all events below the checkpoint's id were visible to
  -- this pass and are sealed now, so low_water moves up and a new checkpoint
  -- is taken (if this sealer could take one; else the old one stays).
  -- Otherwise the old checkpoint waits for its transactions.
  IF v_count < p_max_events AND v_state.checkpoint_xmax <= pg_snapshot_xmin(v_snap) THEN
    UPDATE audit.seal_state SET
      low_water = greatest(v_state.low_water, v_state.checkpoint_next),
      checkpoint_next = CASE WHEN v_fresh THEN v_next ELSE checkpoint_next END,
      checkpoint_xmax = CASE WHEN v_fresh THEN v_next_xid ELSE checkpoint_xmax END;
  END IF;
  RETURN v_count;
END
$$;

-- Walks the chain and reports the first broken link, or one intact row.
CREATE FUNCTION audit.verify()
RETURNS TABLE (intact boolean, events_checked bigint, broken_pos bigint,
               broken_event_id bigint, problem text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_prev bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
  v_expect_pos bigint := 1;
  v_checked bigint := 0;
  v_low bigint;
  r record;
BEGIN
  PERFORM mps_internal.require_admin('audit.verify');
  FOR r IN
    SELECT c.pos, c.event_id, c.hash, l AS ev, (l.id IS NULL) AS missing
    FROM audit.chain c LEFT JOIN audit.event_log l ON l.id = c.event_id
    ORDER BY c.pos
  LOOP
    IF r.pos <> v_expect_pos THEN
      RETURN QUERY SELECT false, v_checked, v_expect_pos, NULL::bigint,
        format('chain position %s is missing (next is %s): a chain row was deleted', v_expect_pos, r.pos);
      RETURN;
    END IF;
    IF r.missing THEN
      RETURN QUERY SELECT false, v_checked, r.pos, r.event_id,
        format('event %s was deleted', r.event_id);
      RETURN;
    END IF;
    IF sha256(v_prev || audit.event_digest(r.ev)) <> r.hash THEN
      RETURN QUERY SELECT false, v_checked, r.pos, r.event_id,
        format('event %s does not match its seal: it was changed after sealing', r.event_id);
      RETURN;
    END IF;
    v_prev := r.hash;
    v_expect_pos := v_expect_pos + 1;
    v_checked := v_checked + 1;
  END LOOP;

  -- An unsealed event below the sealed horizon was inserted behind the sealer.
  SELECT s.low_water INTO v_low FROM audit.seal_state s;
  SELECT l.id INTO r FROM audit.event_log l
   WHERE l.id < v_low AND NOT EXISTS (SELECT 1 FROM audit.chain c WHERE c.event_id = l.id)
   ORDER BY l.id LIMIT 1;
  IF FOUND THEN
    RETURN QUERY SELECT false, v_checked, NULL::bigint, r.id,
      format('event %s is below the sealed horizon but not sealed: it was inserted afterwards', r.id);
    RETURN;
  END IF;
  RETURN QUERY SELECT true, v_checked, NULL::bigint, NULL::bigint, NULL::text;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON FUNCTION audit.seal(integer), audit.verify(), audit.event_digest(audit.event_log),
  audit.refuse_change() FROM PUBLIC;
GRANT USAGE ON SCHEMA audit TO mps_admin;
GRANT EXECUTE ON FUNCTION audit.seal(integer), audit.verify() TO mps_admin;
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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA mps_internal FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps_internal.caller_is_admin(), mps_internal.caller_user_id(),
  mps_internal.my_member_id(), mps_internal.my_card_ids(), mps_internal.my_merchant_ids(boolean),
  mps_internal.tx_no(uuid), mps_internal.to_major(bigint, integer)
  TO mps_admin, mps_merchant_api, mps_member_app;
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
-- linked), or a signed-in user for themselves (linked to their own subject).
CREATE FUNCTION mps.create_member_profile(
  p_name               text,
  p_phone              text DEFAULT NULL,
  p_email              text DEFAULT NULL,
  p_binding_user_org   text DEFAULT NULL,
  p_binding_org_id     text DEFAULT NULL,
  p_default_card_type  text DEFAULT 'standard',
  p_currency           text DEFAULT NULL,
  p_auth_user_id       uuid DEFAULT NULL)
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
BEGIN
  -- Who is asking decides whose profile this is.
  IF v_admin THEN
    v_auth := p_auth_user_id;
  ELSIF v_user IS NOT NULL AND mps_internal.is_merchant_user() AND p_auth_user_id IS NULL THEN
    v_auth := NULL;
  ELSIF v_user IS NOT NULL AND (p_auth_user_id IS NULL OR p_auth_user_id = v_user) THEN
    v_auth := v_user;
  ELSE
    RAISE EXCEPTION 'permission denied: create_member_profile for another user' USING ERRCODE = '42501',
      DETAIL = CASE WHEN v_user IS NULL THEN 'No signed-in user came with the call.'
                    ELSE 'A user may create only their own profile.' END,
      HINT = 'Sign in and create your own profile, or ask the platform admin.';
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

  IF v_auth IS NOT NULL AND EXISTS (SELECT 1 FROM mps.member_profiles m WHERE m.auth_user_id = v_auth) THEN
    RAISE EXCEPTION 'member profile already exists' USING ERRCODE = 'MP102',
      DETAIL = format('Auth user %s already has a member profile.', v_auth),
      HINT = 'Read it with get_my_cards(); a user has one profile.';
  END IF;
  IF v_provider IS NOT NULL AND EXISTS (SELECT 1 FROM mps.member_external_identities i
                                        WHERE i.provider = v_provider AND i.external_id = v_external) THEN
    RAISE EXCEPTION 'external identity already linked' USING ERRCODE = 'MP103',
      DETAIL = format('%s identity %L belongs to another member.', v_provider, v_external),
      HINT = 'Look the member up by this identity instead of creating a new one.';
  END IF;

  INSERT INTO mps.member_profiles (auth_user_id, name, phone, email)
  VALUES (v_auth, v_name, v_phone, v_email)
  RETURNING id INTO v_member;

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
                       'auth_user_id', v_auth, 'identity', v_provider), NULL);
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

REVOKE ALL ON FUNCTION mps.create_member_profile(text, text, text, text, text, text, text, uuid),
  mps.get_my_cards(), mps.get_card(uuid), mps_internal.card_views(uuid[], uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps.create_member_profile(text, text, text, text, text, text, text, uuid)
  TO mps_admin, mps_merchant_api, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.get_my_cards(), mps.get_card(uuid) TO mps_admin, mps_member_app;
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
-- Membership levels: the points ladder of personal cards (platform admin).
--
-- The ladder is replaced whole, so it is never seen half-edited: levels must
-- start at 0 points, follow each other without gap or overlap
-- (next.min_points = previous.max_points + 1), and the last is open-ended.
-- Every personal card's level is recomputed from its points afterwards.

CREATE TYPE mps.level_view AS (
  code          text,
  name          text,
  min_points    bigint,
  max_points    bigint,
  discount_bp   integer,
  earn_rate_bp  integer
);

CREATE FUNCTION mps.list_membership_levels()
RETURNS SETOF mps.level_view
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT l.code, l.name, l.min_points, l.max_points, l.discount_bp, l.earn_rate_bp
  FROM mps.membership_levels l ORDER BY l.min_points
$$;

CREATE FUNCTION mps.set_membership_levels(p_levels jsonb)
RETURNS SETOF mps.level_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_before jsonb;
  v_prev_max bigint := -1;
  v_prev_open boolean := false;
  v_n integer := 0;
  v_codes text[] := '{}';
  r record;
BEGIN
  PERFORM mps_internal.require_admin('set_membership_levels');
  IF p_levels IS NULL OR jsonb_typeof(p_levels) <> 'array' OR jsonb_array_length(p_levels) = 0 THEN
    RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
      DETAIL = 'p_levels must be a non-empty JSON array.',
      HINT = 'Pass [{"code":"BRONZE","name":"Bronze","min_points":0,"max_points":999,"discount_bp":0,"earn_rate_bp":10000}, ...].';
  END IF;
  -- Serialise ladder changes.
  LOCK TABLE mps.membership_levels IN SHARE ROW EXCLUSIVE MODE;

  FOR r IN
    SELECT e.value AS v, e.ordinality AS n FROM jsonb_array_elements(p_levels) WITH ORDINALITY e
  LOOP
    IF jsonb_typeof(r.v) <> 'object'
       OR coalesce(jsonb_typeof(r.v->'code'), '') <> 'string'
       OR coalesce(jsonb_typeof(r.v->'name'), '') <> 'string'
       OR coalesce(jsonb_typeof(r.v->'min_points'), '') <> 'number'
       OR coalesce(jsonb_typeof(r.v->'max_points'), 'null') NOT IN ('number', 'null')
       OR coalesce(jsonb_typeof(r.v->'discount_bp'), 'number') <> 'number'
       OR coalesce(jsonb_typeof(r.v->'earn_rate_bp'), 'number') <> 'number' THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level %s is malformed: %s.', r.n, r.v),
        HINT = 'Each level needs code and name (strings), min_points (number), max_points (number or null), optional discount_bp and earn_rate_bp.';
    END IF;
    IF (r.v->>'code') !~ '^[A-Za-z0-9_-]{1,32}$' OR btrim(r.v->>'name') = '' OR length(r.v->>'name') > 100
       OR (r.v->>'min_points') !~ '^[0-9]{1,15}$'
       OR coalesce(r.v->>'max_points', '0') !~ '^[0-9]{1,15}$'
       OR coalesce(r.v->>'discount_bp', '0') !~ '^[0-9]{1,5}$' OR coalesce((r.v->>'discount_bp')::integer, 0) > 10000
       OR coalesce(r.v->>'earn_rate_bp', '0') !~ '^[0-9]{1,7}$' OR coalesce((r.v->>'earn_rate_bp')::integer, 0) > 1000000 THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level %s has a bad value: %s.', r.n, r.v),
        HINT = 'code: 1-32 of A-Z a-z 0-9 _ -; points: whole numbers >= 0; discount_bp: 0-10000; earn_rate_bp: 0-1000000.';
    END IF;
    IF (r.v->>'code') = ANY (v_codes) THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level code %s appears twice.', r.v->>'code'), HINT = 'Give each level its own code.';
    END IF;
    IF v_prev_open OR (r.v->>'min_points')::bigint <> v_prev_max + 1 THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level %s (%s) starts at %s points; expected %s.', r.n, r.v->>'code',
                        r.v->>'min_points', CASE WHEN v_prev_open THEN 'no further level after an open-ended one'
                                                 ELSE (v_prev_max + 1)::text END),
        HINT = 'List levels in order from 0 points, each starting one point above the previous maximum; only the last is open-ended.';
    END IF;
    IF r.v->>'max_points' IS NOT NULL AND (r.v->>'max_points')::bigint < (r.v->>'min_points')::bigint THEN
      RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
        DETAIL = format('Level %s has max_points below min_points.', r.v->>'code'),
        HINT = 'max_points is inclusive and must be >= min_points.';
    END IF;
    v_prev_open := r.v->>'max_points' IS NULL;
    v_prev_max := coalesce((r.v->>'max_points')::bigint, -1);
    v_codes := v_codes || (r.v->>'code');
    v_n := v_n + 1;
  END LOOP;
  IF NOT v_prev_open THEN
    RAISE EXCEPTION 'invalid level ladder' USING ERRCODE = 'MP601',
      DETAIL = format('The last level ends at %s points.', v_prev_max),
      HINT = 'Make the last level open-ended (max_points null).';
  END IF;

  SELECT jsonb_agg(to_jsonb(l) ORDER BY l.min_points) INTO v_before FROM mps.list_membership_levels() l;

  -- Move the existing rows out of the way of the unique min_points index (both
  -- bounds, so max_points >= min_points still holds), then upsert by code and
  -- drop the levels no longer listed.
  UPDATE mps.membership_levels SET min_points = min_points + 1000000000000000,
                                   max_points = max_points + 1000000000000000;
  INSERT INTO mps.membership_levels AS l (code, name, min_points, max_points, discount_bp, earn_rate_bp)
  SELECT e->>'code', btrim(e->>'name'), (e->>'min_points')::bigint, (e->>'max_points')::bigint,
         coalesce((e->>'discount_bp')::integer, 0), coalesce((e->>'earn_rate_bp')::integer, 10000)
  FROM jsonb_array_elements(p_levels) e
  ON CONFLICT (code) DO UPDATE SET name = excluded.name, min_points = excluded.min_points,
    max_points = excluded.max_points, discount_bp = excluded.discount_bp,
    earn_rate_bp = excluded.earn_rate_bp, updated_at = now();
  UPDATE mps.cards c SET level_id = mps_internal.level_for_points(c.points), updated_at = now()
   WHERE c.card_type = 'standard';
  DELETE FROM mps.membership_levels l WHERE l.code <> ALL (v_codes);

  PERFORM mps_internal.audit('levels.set', 'membership_levels', NULL,
    jsonb_build_object('levels', v_before),
    jsonb_build_object('levels', (SELECT jsonb_agg(to_jsonb(l) ORDER BY l.min_points) FROM mps.list_membership_levels() l)),
    NULL);
  RETURN QUERY SELECT * FROM mps.list_membership_levels();
END
$$;

REVOKE ALL ON FUNCTION mps.list_membership_levels(), mps.set_membership_levels(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mps.list_membership_levels(), mps.set_membership_levels(jsonb)
  TO mps_admin, mps_merchant_api, mps_member_app;
-- The money core (C): QR codes, charge, refund, recharge; the usage log view.

CREATE TYPE mps.qr_issued AS (
  qr_plain    text,          -- shown once; only its bcrypt hash is stored
  qr_id       bigint,
  card_id     uuid,
  expires_at  timestamptz,
  single_use  boolean
);

CREATE TYPE mps.charge_result AS (
  tx_id            uuid,
  tx_no            text,
  card_id          uuid,
  currency         char(3),
  raw_amount       numeric,
  discount_amount  numeric,
  final_amount     numeric,
  balance_after    numeric,
  points_earned    bigint,
  points_after     bigint,
  level_before     text,
  level_after      text,
  level_changed    boolean,
  order_no         text,
  created_at       timestamptz,
  details          jsonb
);

CREATE TYPE mps.refund_result AS (
  tx_id                 uuid,
  tx_no                 text,
  original_tx_id        uuid,
  card_id               uuid,
  currency              char(3),
  refund_amount         numeric,
  refunded_total        numeric,
  refundable_remaining  numeric,
  original_status       text,
  balance_after         numeric,
  points_reversed       bigint,
  points_after          bigint,
  level_before          text,
  level_after           text,
  level_changed         boolean,
  created_at            timestamptz
);

CREATE TYPE mps.recharge_result AS (
  tx_id          uuid,
  tx_no          text,
  card_id        uuid,
  currency       char(3),
  amount         numeric,
  balance_after  numeric,
  created_at     timestamptz
);

CREATE FUNCTION mps.rotate_card_qr(p_card_id uuid, p_ttl_seconds integer DEFAULT NULL,
                                   p_shared boolean DEFAULT false)
RETURNS mps.qr_issued
AS 'MODULE_PATHNAME', 'mps_rotate_card_qr'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION mps.revoke_card_qr(p_card_id uuid, p_shared boolean DEFAULT false)
RETURNS integer
AS 'MODULE_PATHNAME', 'mps_revoke_card_qr'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION mps.cron_rotate_qr_tokens(p_ttl_seconds integer DEFAULT 300)
RETURNS SETOF mps.qr_issued
AS 'MODULE_PATHNAME', 'mps_cron_rotate_qr_tokens'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION mps.merchant_charge_by_qr(
  p_merchant_code    text,
  p_qr_plain         text,
  p_raw_amount       numeric DEFAULT NULL,
  p_idempotency_key  text DEFAULT NULL,
  p_tag              jsonb DEFAULT NULL,
  p_order_no         text DEFAULT NULL,
  p_items            jsonb DEFAULT NULL)
RETURNS mps.charge_result
AS 'MODULE_PATHNAME', 'mps_merchant_charge_by_qr'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION mps.merchant_refund_tx(
  p_merchant_code    text,
  p_tx_id            uuid,
  p_refund_amount    numeric DEFAULT NULL,
  p_idempotency_key  text DEFAULT NULL,
  p_reason           text DEFAULT NULL)
RETURNS mps.refund_result
AS 'MODULE_PATHNAME', 'mps_merchant_refund_tx'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION mps.recharge_card(
  p_card_id          uuid,
  p_amount           numeric,
  p_idempotency_key  text DEFAULT NULL,
  p_payment_method   text DEFAULT NULL,
  p_tag              jsonb DEFAULT NULL)
RETURNS mps.recharge_result
AS 'MODULE_PATHNAME', 'mps_recharge_card'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Usage log (seed 000's v_usage_logs): a member sees the movements of the
-- cards bound to them, a merchant's users see the merchant's takings, the
-- platform admin sees all. Runs with the owner's rights and filters itself (a
-- security barrier, so no function of the caller sees rows before the filter),
-- so merchant names show for members too.
CREATE VIEW mps.v_usage_logs WITH (security_barrier) AS
SELECT t.id AS tx_id,
       mps_internal.tx_no(t.id) AS tx_no,
       t.created_at,
       t.kind,
       t.status,
       t.card_id,
       c.card_no,
       c.card_type,
       m.code AS merchant_code,
       m.name AS merchant_name,
       t.currency,
       mps_internal.to_major(t.amount, cur.exponent) AS amount,
       mps_internal.to_major(t.raw_amount, cur.exponent) AS raw_amount,
       mps_internal.to_major(t.discount_amount, cur.exponent) AS discount_amount,
       mps_internal.to_major(t.final_amount, cur.exponent) AS final_amount,
       mps_internal.to_major(t.refunded_amount, cur.exponent) AS refunded_amount,
       mps_internal.to_major(t.balance_after, cur.exponent) AS balance_after,
       t.points_delta,
       t.points_after,
       t.original_tx_id,
       t.order_no,
       t.reason
FROM mps.transactions t
JOIN mps.cards c ON c.id = t.card_id
JOIN mps.currencies cur ON cur.code = t.currency
LEFT JOIN mps.merchants m ON m.id = t.merchant_id
WHERE t.card_id = ANY ((SELECT mps_internal.my_card_ids())::uuid[])
   OR t.merchant_id = ANY ((SELECT mps_internal.my_merchant_ids(false))::uuid[])
   OR (SELECT mps_internal.caller_is_admin());

REVOKE ALL ON mps.v_usage_logs FROM PUBLIC;
GRANT SELECT ON mps.v_usage_logs TO mps_admin, mps_merchant_api, mps_member_app;

GRANT EXECUTE ON FUNCTION
  mps.rotate_card_qr(uuid, integer, boolean),
  mps.revoke_card_qr(uuid, boolean),
  mps.recharge_card(uuid, numeric, text, text, jsonb)
  TO mps_admin, mps_member_app;
GRANT EXECUTE ON FUNCTION
  mps.merchant_charge_by_qr(text, text, numeric, text, jsonb, text, jsonb),
  mps.merchant_refund_tx(text, uuid, numeric, text, text)
  TO mps_admin, mps_merchant_api;
GRANT EXECUTE ON FUNCTION mps.cron_rotate_qr_tokens(integer) TO mps_admin;
-- Marketing groups (seed 004): member tiers with stacked discount rules, and
-- stamp activities. Configuration is here; pricing and stamps are C
-- (src/pricing.c, src/stamps.c).

-- The product catalogue the rules and stamp targets point at.
CREATE TABLE mps.categories (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
  name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  deleted_at  timestamptz
);
CREATE TABLE mps.products (
  id           text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
  name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  category_id  text REFERENCES mps.categories (id),
  deleted_at   timestamptz
);

CREATE TABLE mps.marketing_groups (
  id           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code         text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{1,32}$'),
  name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  description  text,
  is_active    boolean NOT NULL DEFAULT true,
  deleted_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A member belongs to at most one group.
ALTER TABLE mps.member_profiles ADD COLUMN marketing_group_id integer REFERENCES mps.marketing_groups (id);
CREATE INDEX member_profiles_group_idx ON mps.member_profiles (marketing_group_id)
  WHERE marketing_group_id IS NOT NULL;

-- PERCENTAGE rules keep value_bp (basis points of the price: 1000 = 10%),
-- FIXED_AMOUNT rules keep amount_minor per unit in the group's currency.
CREATE TABLE mps.mg_discount_rules (
  id                  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  marketing_group_id  integer NOT NULL REFERENCES mps.marketing_groups (id),
  name                text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  receipt_name        text NOT NULL CHECK (length(btrim(receipt_name)) BETWEEN 1 AND 100),
  product_scope       text NOT NULL CHECK (product_scope IN ('GLOBAL', 'CATEGORY', 'PRODUCT')),
  target_id           text,
  adjustment_type     text NOT NULL CHECK (adjustment_type IN ('PERCENTAGE', 'FIXED_AMOUNT')),
  value_bp            integer CHECK (value_bp BETWEEN 1 AND 10000),
  amount_minor        bigint CHECK (amount_minor > 0),
  currency            char(3) REFERENCES mps.currencies (code),
  is_active           boolean NOT NULL DEFAULT true,
  deleted_at          timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK ((product_scope = 'GLOBAL') = (target_id IS NULL)),
  CHECK (CASE adjustment_type
           WHEN 'PERCENTAGE' THEN value_bp IS NOT NULL AND amount_minor IS NULL
           ELSE amount_minor IS NOT NULL AND currency IS NOT NULL AND value_bp IS NULL END)
);
CREATE INDEX mg_discount_rules_group_idx ON mps.mg_discount_rules (marketing_group_id)
  WHERE is_active AND deleted_at IS NULL;

CREATE TABLE mps.stamp_activities (
  id                     integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  marketing_group_id     integer NOT NULL REFERENCES mps.marketing_groups (id),
  name                   text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
  stamps_required        integer NOT NULL CHECK (stamps_required BETWEEN 1 AND 1000),
  reward_quantity        integer NOT NULL DEFAULT 1 CHECK (reward_quantity BETWEEN 1 AND 100),
  reward_strategy        text NOT NULL DEFAULT 'ECONOMIZADOR'
                         CHECK (reward_strategy IN ('ECONOMIZADOR', 'GENEROSO', 'DESIGNATED')),
  designated_product_id  text REFERENCES mps.products (id),
  is_cyclic              boolean NOT NULL DEFAULT true,
  is_active              boolean NOT NULL DEFAULT true,
  deleted_at             timestamptz,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  CHECK ((reward_strategy = 'DESIGNATED') = (designated_product_id IS NOT NULL))
);
CREATE INDEX stamp_activities_group_idx ON mps.stamp_activities (marketing_group_id)
  WHERE is_active AND deleted_at IS NULL;

-- kind 'stamp': which lines earn stamps; kind 'reward': which lines may be comped.
CREATE TABLE mps.stamp_targets (
  activity_id  integer NOT NULL REFERENCES mps.stamp_activities (id),
  kind         text NOT NULL CHECK (kind IN ('stamp', 'reward')),
  target_type  text NOT NULL CHECK (target_type IN ('CATEGORY', 'PRODUCT')),
  target_id    text NOT NULL,
  PRIMARY KEY (activity_id, kind, target_type, target_id)
);

CREATE TABLE mps.member_stamp_progress (
  member_id         uuid NOT NULL REFERENCES mps.member_profiles (id),
  activity_id       integer NOT NULL REFERENCES mps.stamp_activities (id),
  current_stamps    integer NOT NULL DEFAULT 0 CHECK (current_stamps >= 0),
  completed_cycles  integer NOT NULL DEFAULT 0 CHECK (completed_cycles >= 0),
  is_closed         boolean NOT NULL DEFAULT false,   -- a one-off activity, redeemed
  last_stamp_at     timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (member_id, activity_id)
);

-- Every change of stamps, tied to the charge that made it (for refunds).
CREATE TABLE mps.stamp_ledger (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  member_id    uuid NOT NULL,
  activity_id  integer NOT NULL,
  tx_id        uuid NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('earn', 'redeem', 'earn_reversal', 'redeem_reversal')),
  delta        integer NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stamp_ledger_tx_idx ON mps.stamp_ledger (tx_id);
CREATE INDEX stamp_ledger_member_idx ON mps.stamp_ledger (member_id, activity_id);

DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['categories', 'products', 'marketing_groups', 'mg_discount_rules',
    'stamp_activities', 'stamp_targets', 'member_stamp_progress', 'stamp_ledger'] LOOP
    EXECUTE format('ALTER TABLE mps.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('REVOKE ALL ON mps.%I FROM PUBLIC', t);
  END LOOP;
END
$rls$;
CREATE POLICY categories_read ON mps.categories FOR SELECT USING (true);
CREATE POLICY products_read ON mps.products FOR SELECT USING (true);
CREATE POLICY stamp_progress_own ON mps.member_stamp_progress FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id()) OR (SELECT mps_internal.caller_is_admin()));
GRANT SELECT ON mps.categories, mps.products, mps.member_stamp_progress
  TO mps_admin, mps_merchant_api, mps_member_app;

CREATE FUNCTION mps_internal.require_marketing() RETURNS void
  AS 'MODULE_PATHNAME', 'mps_require_marketing_sql' LANGUAGE C STABLE;

CREATE FUNCTION mps.price_order(p_member_id uuid, p_items jsonb, p_card_id uuid DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'mps_price_order'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- Catalogue (platform admin).
CREATE FUNCTION mps.upsert_category(p_id text, p_name text)
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
  INSERT INTO mps.categories (id, name) VALUES (p_id, btrim(p_name))
  ON CONFLICT (id) DO UPDATE SET name = excluded.name, deleted_at = NULL
  RETURNING * INTO v;
  PERFORM mps_internal.audit('catalog.category', 'category', p_id, NULL, to_jsonb(v), NULL);
  RETURN v;
END
$$;

CREATE FUNCTION mps.upsert_product(p_id text, p_name text, p_category_id text DEFAULT NULL)
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

CREATE FUNCTION mps_internal.group_by_code(p_code text) RETURNS mps.marketing_groups
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.marketing_groups;
BEGIN
  SELECT * INTO v FROM mps.marketing_groups g WHERE g.code = p_code AND g.deleted_at IS NULL;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'marketing group not found' USING ERRCODE = 'MP111',
      DETAIL = format('No marketing group %L.', p_code), HINT = 'List them with list_marketing_groups().';
  END IF;
  RETURN v;
END
$$;

CREATE FUNCTION mps.create_marketing_group(p_code text, p_name text, p_description text DEFAULT NULL)
RETURNS mps.marketing_groups
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.marketing_groups;
BEGIN
  PERFORM mps_internal.require_admin('create_marketing_group');
  PERFORM mps_internal.require_marketing();
  IF p_code IS NULL OR p_code !~ '^[A-Za-z0-9_-]{1,32}$' OR nullif(btrim(p_name), '') IS NULL
     OR length(p_name) > 200 THEN
    RAISE EXCEPTION 'invalid marketing group' USING ERRCODE = 'MP004',
      DETAIL = format('p_code = %L, p_name = %L.', p_code, p_name),
      HINT = 'Use a code of 1-32 letters, digits, _ or - and a name of 1-200 characters.';
  END IF;
  INSERT INTO mps.marketing_groups (code, name, description) VALUES (p_code, btrim(p_name), p_description)
  ON CONFLICT (code) DO NOTHING RETURNING * INTO v;
  IF v.id IS NULL THEN
    RAISE EXCEPTION 'marketing group code already taken' USING ERRCODE = 'MP004',
      DETAIL = format('A group %L exists.', p_code), HINT = 'Pick another code.';
  END IF;
  PERFORM mps_internal.audit('mg.create', 'marketing_group', v.id::text, NULL, to_jsonb(v), NULL);
  RETURN v;
END
$$;

-- Soft delete: the group stops pricing; its members leave it.
CREATE FUNCTION mps.delete_marketing_group(p_code text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.marketing_groups;
BEGIN
  PERFORM mps_internal.require_admin('delete_marketing_group');
  PERFORM mps_internal.require_marketing();
  v := mps_internal.group_by_code(p_code);
  UPDATE mps.marketing_groups g SET deleted_at = now(), is_active = false, updated_at = now() WHERE g.id = v.id;
  UPDATE mps.member_profiles m SET marketing_group_id = NULL WHERE m.marketing_group_id = v.id;
  PERFORM mps_internal.audit('mg.delete', 'marketing_group', v.id::text, to_jsonb(v), NULL, NULL);
  RETURN true;
END
$$;

CREATE FUNCTION mps.set_member_marketing_group(p_member_id uuid, p_group_code text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_group integer;
  v_old integer;
BEGIN
  PERFORM mps_internal.require_admin('set_member_marketing_group');
  PERFORM mps_internal.require_marketing();
  IF p_group_code IS NOT NULL THEN
    v_group := (mps_internal.group_by_code(p_group_code)).id;
  END IF;
  SELECT m.marketing_group_id INTO v_old FROM mps.member_profiles m WHERE m.id = p_member_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = format('No member %s.', p_member_id), HINT = 'Check the member id.';
  END IF;
  UPDATE mps.member_profiles m SET marketing_group_id = v_group, updated_at = now() WHERE m.id = p_member_id;
  PERFORM mps_internal.audit('mg.member', 'member', p_member_id::text,
    jsonb_build_object('marketing_group_id', v_old), jsonb_build_object('marketing_group_id', v_group), NULL);
  RETURN true;
END
$$;

CREATE FUNCTION mps_internal.check_target(p_type text, p_id text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF (p_type = 'CATEGORY' AND NOT EXISTS (SELECT 1 FROM mps.categories c WHERE c.id = p_id AND c.deleted_at IS NULL))
     OR (p_type = 'PRODUCT' AND NOT EXISTS (SELECT 1 FROM mps.products p WHERE p.id = p_id AND p.deleted_at IS NULL)) THEN
    RAISE EXCEPTION 'target not found' USING ERRCODE = 'MP113',
      DETAIL = format('No %s %L.', lower(p_type), p_id), HINT = 'Create it in the catalogue first.';
  END IF;
END
$$;

-- A group keeps at most 6 active percentage rules: pricing stays exact in
-- 128 bits (src/pricing.c, MPS_MAX_PCT_RULES_PER_GROUP).
CREATE FUNCTION mps_internal.check_percentage_room(p_group_id integer) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF (SELECT count(*) FROM mps.mg_discount_rules r WHERE r.marketing_group_id = p_group_id
        AND r.adjustment_type = 'PERCENTAGE' AND r.is_active AND r.deleted_at IS NULL) >= 6 THEN
    RAISE EXCEPTION 'too many percentage rules' USING ERRCODE = 'MP008',
      DETAIL = format('Group %s already has 6 active percentage rules.',
                      (SELECT g.code FROM mps.marketing_groups g WHERE g.id = p_group_id)),
      HINT = 'Combine rules, or deactivate one first (prices stay exact up to 6 stacked percentages).';
  END IF;
END
$$;

-- A discount rule: PERCENTAGE p_value in (0, 100] with at most two decimals,
-- or FIXED_AMOUNT p_value per unit in p_currency's precision.
CREATE FUNCTION mps.create_mg_rule(p_group_code text, p_name text, p_receipt_name text,
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

CREATE FUNCTION mps.delete_mg_rule(p_rule_id integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.mg_discount_rules;
BEGIN
  PERFORM mps_internal.require_admin('delete_mg_rule');
  PERFORM mps_internal.require_marketing();
  UPDATE mps.mg_discount_rules r SET deleted_at = now(), is_active = false, updated_at = now()
   WHERE r.id = p_rule_id AND r.deleted_at IS NULL RETURNING * INTO v;
  IF v.id IS NULL THEN
    RAISE EXCEPTION 'rule not found' USING ERRCODE = 'MP112',
      DETAIL = format('No rule %s.', p_rule_id), HINT = 'Check the rule id.';
  END IF;
  PERFORM mps_internal.audit('mg.rule.delete', 'mg_rule', v.id::text, NULL, to_jsonb(v), NULL);
  RETURN true;
END
$$;

-- A stamp activity with its stamp and reward targets ([{"target_type":
-- "CATEGORY"|"PRODUCT", "target_id": "..."}]).
CREATE FUNCTION mps.create_stamp_activity(p_group_code text, p_name text, p_stamps_required integer,
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

CREATE FUNCTION mps.delete_stamp_activity(p_activity_id integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.stamp_activities;
BEGIN
  PERFORM mps_internal.require_admin('delete_stamp_activity');
  PERFORM mps_internal.require_marketing();
  UPDATE mps.stamp_activities a SET deleted_at = now(), is_active = false, updated_at = now()
   WHERE a.id = p_activity_id AND a.deleted_at IS NULL RETURNING * INTO v;
  IF v.id IS NULL THEN
    RAISE EXCEPTION 'stamp activity not found' USING ERRCODE = 'MP112',
      DETAIL = format('No stamp activity %s.', p_activity_id), HINT = 'Check the activity id.';
  END IF;
  PERFORM mps_internal.audit('mg.stamp_activity.delete', 'stamp_activity', v.id::text, NULL, to_jsonb(v), NULL);
  RETURN true;
END
$$;

-- Groups with their active rules and activities (admin, merchant managers).
CREATE FUNCTION mps.list_marketing_groups()
RETURNS TABLE (code text, name text, is_active boolean, rules jsonb, stamp_activities jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT (mps_internal.caller_is_admin() OR cardinality(mps_internal.my_merchant_ids(true)) > 0) THEN
    RAISE EXCEPTION 'permission denied: list_marketing_groups' USING ERRCODE = '42501',
      DETAIL = 'Only the platform admin and merchant managers read marketing configuration.',
      HINT = 'Sign in as a merchant manager.';
  END IF;
  RETURN QUERY
  SELECT g.code, g.name, g.is_active,
         coalesce((SELECT jsonb_agg(to_jsonb(r) - 'created_at' - 'updated_at' ORDER BY r.id) FROM mps.mg_discount_rules r
                   WHERE r.marketing_group_id = g.id AND r.deleted_at IS NULL), '[]'),
         coalesce((SELECT jsonb_agg(to_jsonb(a) - 'created_at' - 'updated_at' ORDER BY a.id) FROM mps.stamp_activities a
                   WHERE a.marketing_group_id = g.id AND a.deleted_at IS NULL), '[]')
  FROM mps.marketing_groups g WHERE g.deleted_at IS NULL ORDER BY g.code;
END
$$;

GRANT EXECUTE ON FUNCTION mps.price_order(uuid, jsonb, uuid), mps.list_marketing_groups()
  TO mps_admin, mps_merchant_api, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.upsert_category(text, text), mps.upsert_product(text, text, text),
  mps.create_marketing_group(text, text, text), mps.delete_marketing_group(text),
  mps.set_member_marketing_group(uuid, text),
  mps.create_mg_rule(text, text, text, text, text, text, numeric, text), mps.delete_mg_rule(integer),
  mps.create_stamp_activity(text, text, integer, jsonb, jsonb, integer, text, text, boolean),
  mps.delete_stamp_activity(integer)
  TO mps_admin, mps_merchant_api;

CREATE FUNCTION mps.redeem_stamp(
  p_merchant_code    text,
  p_qr_plain         text,
  p_raw_amount       numeric DEFAULT NULL,
  p_idempotency_key  text DEFAULT NULL,
  p_tag              jsonb DEFAULT NULL,
  p_order_no         text DEFAULT NULL,
  p_items            jsonb DEFAULT NULL,
  p_activity_id      integer DEFAULT NULL)
RETURNS mps.charge_result
AS 'MODULE_PATHNAME', 'mps_redeem_stamp'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
GRANT EXECUTE ON FUNCTION mps.redeem_stamp(text, text, numeric, text, jsonb, text, jsonb, integer)
  TO mps_admin, mps_merchant_api;

-- Member search by phone, card number or name (seed 004 Task 7): a
-- contains-search served by trigram indexes (pg_trgm), so it stays fast on
-- millions of members. pg_trgm lives wherever CREATE EXTENSION put it.
DO $trgm$
DECLARE
  v_schema text;
BEGIN
  SELECT n.nspname INTO v_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'pg_trgm';
  EXECUTE format('CREATE INDEX member_profiles_search_idx ON mps.member_profiles USING gin '
                 '((lower(name) || '' '' || coalesce(phone, '''')) %I.gin_trgm_ops)', v_schema);
  EXECUTE format('CREATE INDEX cards_card_no_trgm_idx ON mps.cards USING gin (card_no %I.gin_trgm_ops)', v_schema);
END
$trgm$;

CREATE TYPE mps.member_hit AS (
  member_id         uuid,
  name              text,
  phone             text,
  card_no           text,
  marketing_group   text
);

CREATE FUNCTION mps.search_members(p_query text, p_limit integer DEFAULT 20)
RETURNS SETOF mps.member_hit
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_q text := lower(btrim(p_query));
BEGIN
  IF NOT (mps_internal.caller_is_admin() OR mps_internal.is_merchant_user()) THEN
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
  SELECT m.id, m.name, m.phone,
         (SELECT c.card_no FROM mps.card_bindings b JOIN mps.cards c ON c.id = b.card_id
          WHERE b.member_id = m.id AND b.role = 'owner' ORDER BY c.created_at LIMIT 1),
         g.code
  FROM hits h JOIN mps.member_profiles m ON m.id = h.id
  LEFT JOIN mps.marketing_groups g ON g.id = m.marketing_group_id
  ORDER BY m.name, m.id
  LIMIT p_limit;
END
$$;
GRANT EXECUTE ON FUNCTION mps.search_members(text, integer) TO mps_admin, mps_merchant_api;

CREATE FUNCTION mps_internal.mg_line_final(p_group_id integer, p_product_id text, p_category_id text,
                                           p_quantity integer, p_unit_price_minor bigint, p_currency text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'mps_mg_line_final'
LANGUAGE C STABLE;

-- Updates: names and the active flag. A rule's or activity's values are
-- changed by deleting it and creating the new one, so every charge's details
-- keep naming the rule that priced them.
CREATE FUNCTION mps.update_marketing_group(p_code text, p_name text DEFAULT NULL,
                                           p_description text DEFAULT NULL, p_is_active boolean DEFAULT NULL)
RETURNS mps.marketing_groups
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old mps.marketing_groups;
  v_new mps.marketing_groups;
BEGIN
  PERFORM mps_internal.require_admin('update_marketing_group');
  PERFORM mps_internal.require_marketing();
  v_old := mps_internal.group_by_code(p_code);
  IF p_name IS NOT NULL AND (btrim(p_name) = '' OR length(p_name) > 200) THEN
    RAISE EXCEPTION 'invalid marketing group' USING ERRCODE = 'MP004',
      DETAIL = format('p_name = %L.', p_name), HINT = 'Use a name of 1-200 characters.';
  END IF;
  UPDATE mps.marketing_groups g SET name = coalesce(btrim(p_name), g.name),
         description = coalesce(p_description, g.description), is_active = coalesce(p_is_active, g.is_active),
         updated_at = now()
   WHERE g.id = v_old.id RETURNING * INTO v_new;
  PERFORM mps_internal.audit('mg.update', 'marketing_group', v_new.id::text, to_jsonb(v_old), to_jsonb(v_new), NULL);
  RETURN v_new;
END
$$;

CREATE FUNCTION mps.set_mg_rule_active(p_rule_id integer, p_is_active boolean)
RETURNS mps.mg_discount_rules
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.mg_discount_rules;
BEGIN
  PERFORM mps_internal.require_admin('set_mg_rule_active');
  PERFORM mps_internal.require_marketing();
  SELECT * INTO v FROM mps.mg_discount_rules r WHERE r.id = p_rule_id AND r.deleted_at IS NULL FOR UPDATE;
  IF NOT FOUND OR p_is_active IS NULL THEN
    RAISE EXCEPTION 'rule not found' USING ERRCODE = 'MP112',
      DETAIL = format('No rule %s (or p_is_active missing).', p_rule_id), HINT = 'Check the rule id.';
  END IF;
  IF p_is_active AND NOT v.is_active AND v.adjustment_type = 'PERCENTAGE' THEN
    PERFORM mps_internal.check_percentage_room(v.marketing_group_id);
  END IF;
  UPDATE mps.mg_discount_rules r SET is_active = p_is_active, updated_at = now() WHERE r.id = v.id RETURNING * INTO v;
  PERFORM mps_internal.audit('mg.rule.active', 'mg_rule', v.id::text, NULL, jsonb_build_object('is_active', p_is_active), NULL);
  RETURN v;
END
$$;

CREATE FUNCTION mps.set_stamp_activity_active(p_activity_id integer, p_is_active boolean)
RETURNS mps.stamp_activities
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.stamp_activities;
BEGIN
  PERFORM mps_internal.require_admin('set_stamp_activity_active');
  PERFORM mps_internal.require_marketing();
  UPDATE mps.stamp_activities a SET is_active = p_is_active, updated_at = now()
   WHERE a.id = p_activity_id AND a.deleted_at IS NULL AND p_is_active IS NOT NULL RETURNING * INTO v;
  IF v.id IS NULL THEN
    RAISE EXCEPTION 'stamp activity not found' USING ERRCODE = 'MP112',
      DETAIL = format('No stamp activity %s (or p_is_active missing).', p_activity_id), HINT = 'Check the activity id.';
  END IF;
  PERFORM mps_internal.audit('mg.stamp_activity.active', 'stamp_activity', v.id::text, NULL,
    jsonb_build_object('is_active', p_is_active), NULL);
  RETURN v;
END
$$;

GRANT EXECUTE ON FUNCTION mps.update_marketing_group(text, text, text, boolean),
  mps.set_mg_rule_active(integer, boolean), mps.set_stamp_activity_active(integer, boolean)
  TO mps_admin, mps_merchant_api;
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
BEGIN
  IF p_card_id IS NULL OR p_member_id IS NULL THEN
    RAISE EXCEPTION 'card and member are required' USING ERRCODE = 'MP003',
      DETAIL = 'p_card_id or p_member_id is missing.', HINT = 'Pass both ids.';
  END IF;
  IF p_role IS NULL OR p_role NOT IN ('owner', 'admin', 'member', 'viewer') THEN
    RAISE EXCEPTION 'unknown binding role' USING ERRCODE = 'MP004',
      DETAIL = format('p_role = %L.', p_role), HINT = 'Use admin, member or viewer (owner: platform admin only).';
  END IF;
  PERFORM mps_internal.lock_card(p_card_id);
  v_card := mps_internal.card_or_fail(p_card_id);
  v_caller := mps_internal.my_card_role(p_card_id);
  IF v_caller IS NULL OR v_caller NOT IN ('platform', 'owner', 'admin')
     OR (p_role = 'owner' AND v_caller <> 'platform') THEN
    RAISE EXCEPTION 'permission denied: bind_card_member' USING ERRCODE = '42501',
      DETAIL = format('The caller is %s of this card.', coalesce('a ' || v_caller, 'not bound to')),
      HINT = 'Owners and admins of a card bind its members; only the platform admin binds an owner.';
  END IF;
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
BEGIN
  IF p_card_id IS NULL OR v_target IS NULL THEN
    RAISE EXCEPTION 'card and member are required' USING ERRCODE = 'MP003',
      DETAIL = 'p_card_id is missing, or no member was named and the caller has no profile.',
      HINT = 'Pass the card id (and the member to unbind, unless it is yourself).';
  END IF;
  PERFORM mps_internal.lock_card(p_card_id);
  v_caller := mps_internal.my_card_role(p_card_id);
  SELECT * INTO v_old FROM mps.card_bindings b WHERE b.card_id = p_card_id AND b.member_id = v_target;
  IF NOT FOUND THEN
    IF v_caller IS NULL THEN
      RAISE EXCEPTION 'permission denied: unbind_card_member' USING ERRCODE = '42501',
        DETAIL = 'The caller is not bound to this card.', HINT = 'Only the card''s members manage its bindings.';
    END IF;
    RAISE EXCEPTION 'member is not bound to this card' USING ERRCODE = 'MP209',
      DETAIL = format('Member %s has no binding on card %s.', v_target, p_card_id),
      HINT = 'List the card''s bindings first.';
  END IF;
  -- coalesce: a caller with no role on the card (NULL) has no permission.
  IF NOT coalesce(v_target = v_me
                  OR v_caller IN ('platform', 'owner')
                  OR (v_caller = 'admin' AND v_old.role IN ('member', 'viewer')), false) THEN
    RAISE EXCEPTION 'permission denied: unbind_card_member' USING ERRCODE = '42501',
      DETAIL = format('The caller is %s of this card; the member is its %s.', coalesce('a ' || v_caller, 'not bound to'), v_old.role),
      HINT = 'Owners unbind anyone, card admins unbind members and viewers, everyone may leave.';
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
-- and unfreeze it. Closing needs a zero balance, or p_payout := true by the
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
BEGIN
  IF p_card_id IS NULL THEN
    RAISE EXCEPTION 'card id is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_card_id is missing.', HINT = 'Pass the card''s id.';
  END IF;
  IF p_status IS NULL OR p_status NOT IN ('active', 'frozen', 'closed') THEN
    RAISE EXCEPTION 'unknown card status' USING ERRCODE = 'MP004',
      DETAIL = format('p_status = %L.', p_status), HINT = 'Use active, frozen or closed.';
  END IF;
  PERFORM mps_internal.lock_card(p_card_id);
  v_card := mps_internal.card_or_fail(p_card_id);
  v_caller := mps_internal.my_card_role(p_card_id);
  -- coalesce: a caller with no role on the card (NULL) has no permission.
  IF NOT coalesce(v_caller = 'platform'
                  OR (p_status IN ('active', 'frozen') AND (v_caller = 'owner'
                      OR (v_caller = 'admin' AND v_card.card_type IN ('prepaid', 'corporate')))), false) THEN
    RAISE EXCEPTION 'permission denied: set_card_status' USING ERRCODE = '42501',
      DETAIL = format('The caller is %s of this card.', coalesce('a ' || v_caller, 'not bound to')),
      HINT = 'Owners (and admins of shared cards) freeze and unfreeze; only the platform admin closes.';
  END IF;
  IF v_card.status = 'closed' THEN
    RAISE EXCEPTION 'card is closed' USING ERRCODE = 'MP203',
      DETAIL = format('Card %s is closed for good.', p_card_id), HINT = 'Issue a new card.';
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
         updated_at = now() WHERE c.id = p_card_id;
  IF p_status = 'closed' THEN
    UPDATE mps.card_qr_codes q SET revoked_at = now(), revoke_reason = 'card closed'
     WHERE q.card_id = p_card_id AND q.used_at IS NULL AND q.revoked_at IS NULL;
  END IF;
  PERFORM mps_internal.audit('card.status', 'card', p_card_id::text,
    jsonb_build_object('status', v_card.status),
    jsonb_build_object('status', p_status, 'reason', p_reason, 'payout', coalesce(p_payout, false)), NULL);
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

-- Link a WeChat/Alipay/Line... identity; unique per provider, one per member and provider.
CREATE FUNCTION mps.link_external_identity(p_provider text, p_external_id text, p_member_id uuid DEFAULT NULL)
RETURNS mps.member_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.member_for_call(p_member_id, 'link_external_identity');
  v_provider text := nullif(lower(btrim(p_provider)), '');
  v_external text := nullif(btrim(p_external_id), '');
  v_owner uuid;
BEGIN
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

-- Look a member up by identity (merchant users and the platform admin).
CREATE FUNCTION mps.find_member_by_identity(p_provider text, p_external_id text)
RETURNS mps.member_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid;
BEGIN
  IF NOT (mps_internal.caller_is_admin() OR mps_internal.is_merchant_user()) THEN
    RAISE EXCEPTION 'permission denied: find_member_by_identity' USING ERRCODE = '42501',
      DETAIL = 'Only merchant users and the platform admin look members up.', HINT = 'Sign in as an operator.';
  END IF;
  SELECT i.member_id INTO v_member FROM mps.member_external_identities i
   WHERE i.provider = lower(btrim(p_provider)) AND i.external_id = btrim(p_external_id);
  IF v_member IS NULL THEN
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = format('No member has %s identity %L.', p_provider, p_external_id),
      HINT = 'Register the member with create_member_profile().';
  END IF;
  RETURN mps_internal.member_view(v_member);
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

GRANT EXECUTE ON FUNCTION mps.link_external_identity(text, text, uuid), mps.unlink_external_identity(text, uuid),
  mps.get_my_profile(), mps.get_my_bindings(), mps.get_my_transactions(integer, timestamptz, uuid)
  TO mps_admin, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.find_member_by_identity(text, text) TO mps_admin, mps_merchant_api;
-- Pass cards (次卡, seed 002): plans, members' passes, purchases (top-up
-- orders), redemption batches, print templates; their RLS, config CRUD, review
-- and status RPCs, member views, and the C declarations (src/pass.c).
--
-- Status (seed 002, B1): active redeems; suspended covers "awaiting review"
-- (a first purchase of a plan without auto_activate) and a manual hold;
-- revoked and expired are final. A member has at most one live (active or
-- suspended) pass per plan: later purchases top it up and never change its
-- status.

CREATE TYPE mps.pass_status AS ENUM ('active', 'suspended', 'revoked', 'expired');
CREATE TYPE mps.pass_review_state AS ENUM ('auto', 'pending', 'approved', 'rejected');

CREATE TABLE mps.pass_plans (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  code               text NOT NULL UNIQUE CHECK (code ~ '^[A-Z0-9_-]{2,32}$'),
  name               text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
  uses_per_purchase  integer NOT NULL CHECK (uses_per_purchase BETWEEN 1 AND 1000),
  price              bigint NOT NULL CHECK (price > 0),            -- minor units of currency
  currency           char(3) NOT NULL REFERENCES mps.currencies (code),
  validity_days      integer CHECK (validity_days BETWEEN 1 AND 3660),   -- NULL: never expires
  auto_activate      boolean NOT NULL DEFAULT true,
  products           text[] NOT NULL DEFAULT '{}',   -- product codes a use covers
  categories         text[] NOT NULL DEFAULT '{}',   -- category codes a use covers
  is_active          boolean NOT NULL DEFAULT true,  -- on sale
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (cardinality(products) + cardinality(categories) > 0)
);
COMMENT ON TABLE mps.pass_plans IS 'Pass card plans (次卡方案): N uses per purchase of covered products/categories.';

CREATE TABLE mps.member_passes (
  id              uuid PRIMARY KEY,
  member_id       uuid NOT NULL REFERENCES mps.member_profiles (id),
  plan_id         uuid NOT NULL REFERENCES mps.pass_plans (id),
  status          mps.pass_status NOT NULL,
  on_hold         boolean NOT NULL DEFAULT false,    -- manual hold (suspend_member_pass)
  status_reason   text,
  total_uses      integer NOT NULL DEFAULT 0 CHECK (total_uses >= 0),   -- bought, not rejected
  used_uses       integer NOT NULL DEFAULT 0 CHECK (used_uses >= 0),
  remaining_uses  integer NOT NULL DEFAULT 0 CHECK (remaining_uses >= 0),
  activated_at    timestamptz,                       -- first time active
  expires_at      timestamptz,                       -- NULL: never (or not activated yet)
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  CHECK (remaining_uses = total_uses - used_uses),
  CHECK (NOT on_hold OR status <> 'active')
);
-- One live pass per member and plan; purchases after a revoke or expiry start a new one.
CREATE UNIQUE INDEX member_passes_live_idx ON mps.member_passes (member_id, plan_id)
  WHERE status IN ('active', 'suspended');
CREATE INDEX member_passes_member_idx ON mps.member_passes (member_id);
CREATE INDEX member_passes_expiry_idx ON mps.member_passes (expires_at)
  WHERE status IN ('active', 'suspended') AND expires_at IS NOT NULL;

-- Every purchase (seed 002's VR / topup_orders), with its review state:
-- auto (no review needed), pending (awaiting head office), approved, rejected.
CREATE TABLE mps.pass_topup_orders (
  id                  uuid PRIMARY KEY,
  created_at          timestamptz NOT NULL,
  pass_id             uuid NOT NULL REFERENCES mps.member_passes (id),
  member_id           uuid NOT NULL REFERENCES mps.member_profiles (id),
  plan_id             uuid NOT NULL REFERENCES mps.pass_plans (id),
  merchant_id         uuid NOT NULL REFERENCES mps.merchants (id),
  first_purchase      boolean NOT NULL,
  quantity            integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
  uses                integer NOT NULL CHECK (uses > 0),
  unit_price          bigint NOT NULL CHECK (unit_price > 0),
  total               bigint NOT NULL CHECK (total = unit_price * quantity),
  currency            char(3) NOT NULL REFERENCES mps.currencies (code),
  payments            jsonb NOT NULL,                 -- [{"method", "amount"}] in major units
  card_id             uuid,                           -- the member card that paid, if any
  card_amount         bigint NOT NULL DEFAULT 0 CHECK (card_amount >= 0 AND card_amount <= total),
  card_tx_id          uuid,
  card_tx_at          timestamptz,
  card_balance_after  bigint,
  review_state        mps.pass_review_state NOT NULL,
  reviewed_at         timestamptz,
  reviewed_by         uuid,
  review_note         text,
  refund_tx_id        uuid,
  refund_tx_at        timestamptz,
  remaining_after     integer NOT NULL,               -- the pass right after this purchase
  pass_status_after   mps.pass_status NOT NULL,
  expires_after       timestamptz,
  order_no            text,
  idempotency_key     text,
  actor_user_id       uuid,
  CHECK ((card_amount > 0) = (card_tx_id IS NOT NULL)),
  CHECK (review_state <> 'rejected' OR card_amount = 0 OR refund_tx_id IS NOT NULL)
);
CREATE INDEX pass_topup_orders_pass_idx ON mps.pass_topup_orders (pass_id);
CREATE INDEX pass_topup_orders_pending_idx ON mps.pass_topup_orders (created_at)
  WHERE review_state = 'pending';
CREATE INDEX pass_topup_orders_merchant_idx ON mps.pass_topup_orders (merchant_id, created_at);

-- One redemption (核销) = one batch of one pass on one order (一单一卡): the
-- order number is unique per merchant; zero-amount redemptions need none.
CREATE TABLE mps.pass_redemption_batches (
  id               uuid PRIMARY KEY,
  created_at       timestamptz NOT NULL,
  pass_id          uuid NOT NULL REFERENCES mps.member_passes (id),
  member_id        uuid NOT NULL REFERENCES mps.member_profiles (id),
  merchant_id      uuid NOT NULL REFERENCES mps.merchants (id),
  order_no         text,
  uses             integer NOT NULL CHECK (uses > 0),
  remaining_after  integer NOT NULL CHECK (remaining_after >= 0),
  currency         char(3) NOT NULL REFERENCES mps.currencies (code),
  extra_total      bigint NOT NULL DEFAULT 0 CHECK (extra_total >= 0),
  payments         jsonb NOT NULL DEFAULT '[]',
  invoice_due      boolean NOT NULL,
  print_job        jsonb,
  idempotency_key  text,
  actor_user_id    uuid,
  CHECK (invoice_due = (extra_total > 0)),
  CHECK (extra_total = 0 OR order_no IS NOT NULL),
  UNIQUE (merchant_id, order_no)
);
CREATE INDEX pass_redemption_batches_pass_idx ON mps.pass_redemption_batches (pass_id, created_at);
CREATE INDEX pass_redemption_batches_member_idx ON mps.pass_redemption_batches (member_id, created_at);

CREATE TABLE mps.pass_redemptions (
  batch_id      uuid NOT NULL REFERENCES mps.pass_redemption_batches (id),
  line_no       integer NOT NULL CHECK (line_no >= 1),
  product       text,
  category      text,
  quantity      integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
  extra_amount  bigint NOT NULL DEFAULT 0 CHECK (extra_amount >= 0),
  PRIMARY KEY (batch_id, line_no),
  CHECK (product IS NOT NULL OR category IS NOT NULL)
);

-- Receipt templates (seed 002's pos_print_templates); one active per type.
CREATE TABLE mps.print_templates (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  template_type  text NOT NULL CHECK (template_type ~ '^[A-Z][A-Z0-9_]{2,63}$'),
  content        jsonb NOT NULL,
  is_active      boolean NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX print_templates_active_idx ON mps.print_templates (template_type) WHERE is_active;

-- ---- RLS: reads of own rows only; no writes for any API role ----------------
ALTER TABLE mps.pass_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE mps.member_passes ENABLE ROW LEVEL SECURITY;
ALTER TABLE mps.pass_topup_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE mps.pass_redemption_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE mps.pass_redemptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE mps.print_templates ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON mps.pass_plans, mps.member_passes, mps.pass_topup_orders,
  mps.pass_redemption_batches, mps.pass_redemptions, mps.print_templates FROM PUBLIC;

CREATE POLICY pass_plans_read ON mps.pass_plans FOR SELECT
  USING (is_active OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY member_passes_own ON mps.member_passes FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY pass_topup_orders_own ON mps.pass_topup_orders FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id())
         OR merchant_id = ANY ((SELECT mps_internal.my_merchant_ids(false))::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY pass_redemption_batches_own ON mps.pass_redemption_batches FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id())
         OR merchant_id = ANY ((SELECT mps_internal.my_merchant_ids(false))::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));
-- Lines follow their batch (the subquery is itself under the batch policy).
CREATE POLICY pass_redemptions_own ON mps.pass_redemptions FOR SELECT
  USING (EXISTS (SELECT 1 FROM mps.pass_redemption_batches b WHERE b.id = batch_id));
CREATE POLICY print_templates_admin ON mps.print_templates FOR SELECT
  USING ((SELECT mps_internal.caller_is_admin()));

GRANT SELECT ON mps.pass_plans, mps.member_passes, mps.pass_topup_orders,
  mps.pass_redemption_batches, mps.pass_redemptions
  TO mps_admin, mps_merchant_api, mps_member_app;
GRANT SELECT ON mps.print_templates TO mps_admin;

-- ---- result types -----------------------------------------------------------
CREATE TYPE mps.pass_plan_view AS (
  code               text,
  name               text,
  uses_per_purchase  integer,
  price              numeric,
  currency           char(3),
  validity_days      integer,
  auto_activate      boolean,
  products           text[],
  categories         text[],
  is_active          boolean,
  created_at         timestamptz,
  updated_at         timestamptz
);

CREATE TYPE mps.member_pass_view AS (
  pass_id           uuid,
  member_id         uuid,
  plan_code         text,
  plan_name         text,
  status            mps.pass_status,
  awaiting_review   boolean,
  on_hold           boolean,
  status_reason     text,
  total_uses        integer,
  used_uses         integer,
  remaining_uses    integer,
  products          text[],
  categories        text[],
  activated_at      timestamptz,
  expires_at        timestamptz,
  created_at        timestamptz,
  updated_at        timestamptz
);

CREATE TYPE mps.pass_order_view AS (
  order_id            uuid,
  pass_id             uuid,
  member_id           uuid,
  plan_code           text,
  merchant_code       text,
  first_purchase      boolean,
  quantity            integer,
  uses                integer,
  currency            char(3),
  total               numeric,
  payments            jsonb,
  card_id             uuid,
  card_amount         numeric,
  review_state        mps.pass_review_state,
  reviewed_at         timestamptz,
  review_note         text,
  refund_tx_id        uuid,
  pass_status         mps.pass_status,
  pass_remaining_uses integer,
  order_no            text,
  created_at          timestamptz
);

CREATE TYPE mps.pass_purchase_result AS (
  order_id            uuid,
  pass_id             uuid,
  plan_code           text,
  member_id           uuid,
  first_purchase      boolean,
  quantity            integer,
  uses_added          integer,
  remaining_uses      integer,
  pass_status         mps.pass_status,
  review_state        mps.pass_review_state,
  expires_at          timestamptz,
  currency            char(3),
  total               numeric,
  payments            jsonb,
  card_id             uuid,
  card_amount         numeric,
  card_balance_after  numeric,
  card_tx_id          uuid,
  order_no            text,
  created_at          timestamptz
);

CREATE TYPE mps.pass_redemption_result AS (
  batch_id        uuid,
  batch_no        text,
  pass_id         uuid,
  plan_code       text,
  uses            integer,
  remaining_uses  integer,
  currency        char(3),
  extra_total     numeric,
  payments        jsonb,
  invoice_due     boolean,
  order_no        text,
  slip_produced   boolean,
  print_job       jsonb,
  created_at      timestamptz
);

CREATE TYPE mps.pass_redemption_view AS (
  batch_id        uuid,
  batch_no        text,
  pass_id         uuid,
  plan_code       text,
  plan_name       text,
  merchant_code   text,
  merchant_name   text,
  uses            integer,
  remaining_after integer,
  currency        char(3),
  extra_total     numeric,
  invoice_due     boolean,
  order_no        text,
  lines           jsonb,
  created_at      timestamptz
);

CREATE TYPE mps.print_template_view AS (
  template_id    bigint,
  template_type  text,
  content        jsonb,
  is_active      boolean,
  created_at     timestamptz,
  updated_at     timestamptz
);

-- ---- internal helpers (no PUBLIC execute; called from the RPCs and C) ---------
CREATE FUNCTION mps_internal.pass_plan_views(p_ids uuid[])
RETURNS SETOF mps.pass_plan_view
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT p.code, p.name, p.uses_per_purchase, mps_internal.to_major(p.price, c.exponent), p.currency,
         p.validity_days, p.auto_activate, p.products, p.categories, p.is_active, p.created_at, p.updated_at
  FROM mps.pass_plans p JOIN mps.currencies c ON c.code = p.currency
  WHERE p.id = ANY (p_ids)
  ORDER BY p.code
$$;

CREATE FUNCTION mps_internal.member_pass_views(p_ids uuid[])
RETURNS SETOF mps.member_pass_view
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT m.id, m.member_id, p.code, p.name, m.status,
         EXISTS (SELECT 1 FROM mps.pass_topup_orders o WHERE o.pass_id = m.id AND o.review_state = 'pending'),
         m.on_hold, m.status_reason, m.total_uses, m.used_uses, m.remaining_uses,
         p.products, p.categories, m.activated_at, m.expires_at, m.created_at, m.updated_at
  FROM mps.member_passes m JOIN mps.pass_plans p ON p.id = m.plan_id
  WHERE m.id = ANY (p_ids)
  ORDER BY m.created_at, m.id
$$;

CREATE FUNCTION mps_internal.pass_order_views(p_ids uuid[])
RETURNS SETOF mps.pass_order_view
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.pass_id, o.member_id, p.code, mc.code, o.first_purchase, o.quantity, o.uses,
         o.currency, mps_internal.to_major(o.total, c.exponent), o.payments, o.card_id,
         mps_internal.to_major(o.card_amount, c.exponent), o.review_state, o.reviewed_at,
         o.review_note, o.refund_tx_id, m.status, m.remaining_uses, o.order_no, o.created_at
  FROM mps.pass_topup_orders o
  JOIN mps.pass_plans p ON p.id = o.plan_id
  JOIN mps.member_passes m ON m.id = o.pass_id
  JOIN mps.merchants mc ON mc.id = o.merchant_id
  JOIN mps.currencies c ON c.code = o.currency
  WHERE o.id = ANY (p_ids)
  ORDER BY o.created_at, o.id
$$;

-- Results of the C RPCs, read back from the rows they wrote, so a replayed
-- idempotent call returns exactly the first call's result.
CREATE FUNCTION mps_internal.pass_purchase_result(p_order_id uuid)
RETURNS mps.pass_purchase_result
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT o.id, o.pass_id, p.code, o.member_id, o.first_purchase, o.quantity, o.uses,
         o.remaining_after, o.pass_status_after, o.review_state, o.expires_after, o.currency,
         mps_internal.to_major(o.total, c.exponent), o.payments, o.card_id,
         mps_internal.to_major(o.card_amount, c.exponent),
         mps_internal.to_major(o.card_balance_after, c.exponent), o.card_tx_id, o.order_no, o.created_at
  FROM mps.pass_topup_orders o
  JOIN mps.pass_plans p ON p.id = o.plan_id
  JOIN mps.currencies c ON c.code = o.currency
  WHERE o.id = p_order_id
$$;

CREATE FUNCTION mps_internal.pass_redemption_result(p_batch_id uuid)
RETURNS mps.pass_redemption_result
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT b.id, mps_internal.tx_no(b.id), b.pass_id, p.code, b.uses, b.remaining_after, b.currency,
         mps_internal.to_major(b.extra_total, c.exponent), b.payments, b.invoice_due, b.order_no,
         b.print_job IS NOT NULL, b.print_job, b.created_at
  FROM mps.pass_redemption_batches b
  JOIN mps.member_passes m ON m.id = b.pass_id
  JOIN mps.pass_plans p ON p.id = m.plan_id
  JOIN mps.currencies c ON c.code = b.currency
  WHERE b.id = p_batch_id
$$;

CREATE FUNCTION mps_internal.pass_redemption_views(p_member uuid, p_pass uuid, p_limit integer)
RETURNS SETOF mps.pass_redemption_view
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT b.id, mps_internal.tx_no(b.id), b.pass_id, p.code, p.name, mc.code, mc.name, b.uses,
         b.remaining_after, b.currency, mps_internal.to_major(b.extra_total, c.exponent),
         b.invoice_due, b.order_no,
         (SELECT coalesce(jsonb_agg(jsonb_build_object('product', r.product, 'category', r.category,
                                                       'quantity', r.quantity,
                                                       'extra', mps_internal.to_major(r.extra_amount, c.exponent))
                                    ORDER BY r.line_no), '[]')
          FROM mps.pass_redemptions r WHERE r.batch_id = b.id),
         b.created_at
  FROM mps.pass_redemption_batches b
  JOIN mps.member_passes m ON m.id = b.pass_id
  JOIN mps.pass_plans p ON p.id = m.plan_id
  JOIN mps.merchants mc ON mc.id = b.merchant_id
  JOIN mps.currencies c ON c.code = b.currency
  WHERE b.member_id = p_member AND (p_pass IS NULL OR b.pass_id = p_pass)
  ORDER BY b.created_at DESC, b.id DESC
  LIMIT p_limit
$$;

-- {{name}} placeholders inside the template's JSON strings are replaced by
-- the variables' values, JSON-escaped, so the result stays valid JSON.
-- Unknown placeholders are left as they are.
CREATE FUNCTION mps_internal.render_template(p_content jsonb, p_vars jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_text text := p_content::text;
  v_esc text;
  r record;
BEGIN
  FOR r IN SELECT e.key, e.value FROM jsonb_each_text(p_vars) e LOOP
    v_esc := to_jsonb(coalesce(r.value, ''))::text;
    v_text := replace(v_text, '{{' || r.key || '}}', substr(v_esc, 2, length(v_esc) - 2));
  END LOOP;
  RETURN v_text::jsonb;
END
$$;

-- The print job of a redemption, or NULL when no PASS_REDEMPTION_SLIP
-- template is active. Times are UTC with microseconds.
CREATE FUNCTION mps_internal.pass_slip(p_vars jsonb, p_at timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object('template_type', t.template_type, 'template_id', t.id,
    'content', mps_internal.render_template(t.content, p_vars || jsonb_build_object(
      'redeemed_at', to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))))
  FROM mps.print_templates t
  WHERE t.template_type = 'PASS_REDEMPTION_SLIP' AND t.is_active
$$;

-- After a review decision or a lifted hold (the pass row is locked by the
-- caller): a suspended pass with nothing pending and no hold becomes active
-- (its validity starts at its first activation), or revoked when none of its
-- purchases stands (all rejected).
CREATE FUNCTION mps_internal.pass_after_review(p_pass_id uuid)
RETURNS mps.pass_status
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.member_passes;
  v_validity integer;
BEGIN
  SELECT * INTO v FROM mps.member_passes m WHERE m.id = p_pass_id;
  IF v.status <> 'suspended' OR v.on_hold
     OR EXISTS (SELECT 1 FROM mps.pass_topup_orders o WHERE o.pass_id = v.id AND o.review_state = 'pending') THEN
    RETURN v.status;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM mps.pass_topup_orders o
                 WHERE o.pass_id = v.id AND o.review_state IN ('auto', 'approved')) THEN
    UPDATE mps.member_passes m SET status = 'revoked', status_reason = 'every purchase was rejected',
           updated_at = now()
     WHERE m.id = v.id;
    RETURN 'revoked';
  END IF;
  SELECT p.validity_days INTO v_validity FROM mps.pass_plans p WHERE p.id = v.plan_id;
  UPDATE mps.member_passes m SET
    status = 'active', status_reason = NULL,
    activated_at = coalesce(m.activated_at, now()),
    expires_at = CASE WHEN m.activated_at IS NULL AND v_validity IS NOT NULL
                      THEN now() + v_validity * interval '24 hours' ELSE m.expires_at END,
    updated_at = now()
  WHERE m.id = v.id;
  RETURN 'active';
END
$$;

-- Plan fields shared by create and update; raises MP803.
CREATE FUNCTION mps_internal.pass_plan_codes(p_list jsonb, p_param text)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v text[];
BEGIN
  IF p_list IS NULL THEN
    RETURN '{}';
  END IF;
  IF jsonb_typeof(p_list) <> 'array'
     OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_list) e
                WHERE jsonb_typeof(e) <> 'string' OR length(btrim(e #>> '{}')) NOT BETWEEN 1 AND 64
                   OR (e #>> '{}') ~ '[[:cntrl:]]') THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = format('%s = %s.', p_param, p_list),
      HINT = format('Pass %s as a JSON array of codes (1 to 64 characters each), e.g. ["MILK_TEA"].', p_param);
  END IF;
  SELECT coalesce(array_agg(DISTINCT btrim(e #>> '{}') ORDER BY btrim(e #>> '{}')), '{}') INTO v
  FROM jsonb_array_elements(p_list) e;
  IF cardinality(v) > 200 THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = format('%s has %s codes.', p_param, cardinality(v)), HINT = 'Pass at most 200 codes.';
  END IF;
  RETURN v;
END
$$;

CREATE FUNCTION mps_internal.check_pass_plan(p_name text, p_uses integer, p_validity_days integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_name IS NOT NULL AND length(btrim(p_name)) NOT BETWEEN 1 AND 100 THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = format('p_name = %L.', p_name), HINT = 'Pass a name of 1 to 100 characters.';
  END IF;
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

CREATE FUNCTION mps_internal.pass_plan_by_code(p_code text, p_lock boolean)
RETURNS mps.pass_plans
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.pass_plans;
BEGIN
  IF p_lock THEN
    SELECT * INTO v FROM mps.pass_plans p WHERE p.code = upper(btrim(p_code)) FOR UPDATE;
  ELSE
    SELECT * INTO v FROM mps.pass_plans p WHERE p.code = upper(btrim(p_code));
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pass plan not found' USING ERRCODE = 'MP801',
      DETAIL = format('No pass plan has code %L.', p_code), HINT = 'List the plans with list_pass_plans().';
  END IF;
  RETURN v;
END
$$;

-- The pass, locked, for the status RPCs; raises MP805.
CREATE FUNCTION mps_internal.lock_member_pass(p_pass_id uuid)
RETURNS mps.member_passes
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.member_passes;
BEGIN
  SELECT * INTO v FROM mps.member_passes m WHERE m.id = p_pass_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pass not found' USING ERRCODE = 'MP805',
      DETAIL = format('No pass %s.', p_pass_id), HINT = 'Check the pass id.';
  END IF;
  RETURN v;
END
$$;

CREATE FUNCTION mps_internal.require_live_pass(p_pass mps.member_passes, p_action text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_pass.status = 'revoked' THEN
    RAISE EXCEPTION 'pass is revoked' USING ERRCODE = 'MP807',
      DETAIL = format('Pass %s was revoked (%s); %s is not possible.', p_pass.id,
                      coalesce(p_pass.status_reason, 'no reason given'), p_action),
      HINT = 'A revoked pass is final; the member can buy the plan again.';
  ELSIF p_pass.status = 'expired' THEN
    RAISE EXCEPTION 'pass has expired' USING ERRCODE = 'MP808',
      DETAIL = format('Pass %s expired at %s; %s is not possible.', p_pass.id,
                      to_char(p_pass.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US"+00"'), p_action),
      HINT = 'An expired pass is final; the member can buy the plan again.';
  END IF;
END
$$;

-- ---- plans (platform admin) -------------------------------------------------
CREATE FUNCTION mps.create_pass_plan(
  p_code               text,
  p_name               text,
  p_uses_per_purchase  integer,
  p_price              numeric,
  p_currency           text DEFAULT NULL,
  p_validity_days      integer DEFAULT NULL,
  p_auto_activate      boolean DEFAULT true,
  p_products           jsonb DEFAULT NULL,
  p_categories         jsonb DEFAULT NULL,
  p_is_active          boolean DEFAULT true)
RETURNS mps.pass_plan_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_code text := upper(btrim(p_code));
  v_currency char(3);
  v_products text[];
  v_categories text[];
  v mps.pass_plans;
BEGIN
  PERFORM mps_internal.require_admin('create_pass_plan');
  IF v_code IS NULL OR v_code !~ '^[A-Z0-9_-]{2,32}$' THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = format('p_code = %L.', p_code), HINT = 'Use 2 to 32 letters, digits, _ or -, e.g. TEA10.';
  END IF;
  IF p_name IS NULL OR p_uses_per_purchase IS NULL THEN
    RAISE EXCEPTION 'pass plan field is required' USING ERRCODE = 'MP003',
      DETAIL = format('p_name = %L, p_uses_per_purchase = %s.', p_name, coalesce(p_uses_per_purchase::text, 'NULL')),
      HINT = 'Pass the plan''s name and its uses per purchase.';
  END IF;
  PERFORM mps_internal.check_pass_plan(p_name, p_uses_per_purchase, p_validity_days);
  v_currency := mps_internal.check_currency(p_currency);
  v_products := mps_internal.pass_plan_codes(p_products, 'p_products');
  v_categories := mps_internal.pass_plan_codes(p_categories, 'p_categories');
  IF cardinality(v_products) + cardinality(v_categories) = 0 THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = 'The plan covers no product and no category.',
      HINT = 'Pass p_products and/or p_categories, e.g. p_categories := ''["MILK_TEA"]''.';
  END IF;
  INSERT INTO mps.pass_plans (code, name, uses_per_purchase, price, currency, validity_days,
                              auto_activate, products, categories, is_active)
  VALUES (v_code, btrim(p_name), p_uses_per_purchase, mps_internal.to_minor(p_price, v_currency, 'p_price'),
          v_currency, nullif(p_validity_days, 0), coalesce(p_auto_activate, true), v_products, v_categories,
          coalesce(p_is_active, true))
  ON CONFLICT (code) DO NOTHING
  RETURNING * INTO v;
  IF v.id IS NULL THEN
    RAISE EXCEPTION 'pass plan code already taken' USING ERRCODE = 'MP804',
      DETAIL = format('A pass plan with code %s exists.', v_code),
      HINT = 'Pick another code, or change the plan with update_pass_plan().';
  END IF;
  PERFORM mps_internal.audit('pass_plan.create', 'pass_plan', v.id::text, NULL, to_jsonb(v), NULL);
  RETURN (SELECT x FROM mps_internal.pass_plan_views(ARRAY[v.id]) x);
END
$$;

-- NULL leaves a field unchanged; p_validity_days = 0 removes the expiry.
-- Changes apply to later purchases and activations; sold passes keep theirs.
CREATE FUNCTION mps.update_pass_plan(
  p_code               text,
  p_name               text DEFAULT NULL,
  p_uses_per_purchase  integer DEFAULT NULL,
  p_price              numeric DEFAULT NULL,
  p_validity_days      integer DEFAULT NULL,
  p_auto_activate      boolean DEFAULT NULL,
  p_products           jsonb DEFAULT NULL,
  p_categories         jsonb DEFAULT NULL,
  p_is_active          boolean DEFAULT NULL)
RETURNS mps.pass_plan_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old mps.pass_plans;
  v_new mps.pass_plans;
  v_products text[];
  v_categories text[];
BEGIN
  PERFORM mps_internal.require_admin('update_pass_plan');
  v_old := mps_internal.pass_plan_by_code(p_code, true);
  PERFORM mps_internal.check_pass_plan(p_name, p_uses_per_purchase, p_validity_days);
  v_products := CASE WHEN p_products IS NULL THEN v_old.products
                     ELSE mps_internal.pass_plan_codes(p_products, 'p_products') END;
  v_categories := CASE WHEN p_categories IS NULL THEN v_old.categories
                       ELSE mps_internal.pass_plan_codes(p_categories, 'p_categories') END;
  IF cardinality(v_products) + cardinality(v_categories) = 0 THEN
    RAISE EXCEPTION 'invalid pass plan' USING ERRCODE = 'MP803',
      DETAIL = 'The plan would cover no product and no category.',
      HINT = 'Keep at least one product or category.';
  END IF;
  UPDATE mps.pass_plans p SET
    name = coalesce(btrim(p_name), p.name),
    uses_per_purchase = coalesce(p_uses_per_purchase, p.uses_per_purchase),
    price = CASE WHEN p_price IS NULL THEN p.price
                 ELSE mps_internal.to_minor(p_price, p.currency, 'p_price') END,
    validity_days = CASE WHEN p_validity_days IS NULL THEN p.validity_days ELSE nullif(p_validity_days, 0) END,
    auto_activate = coalesce(p_auto_activate, p.auto_activate),
    products = v_products,
    categories = v_categories,
    is_active = coalesce(p_is_active, p.is_active),
    updated_at = now()
  WHERE p.id = v_old.id
  RETURNING * INTO v_new;
  PERFORM mps_internal.audit('pass_plan.update', 'pass_plan', v_new.id::text, to_jsonb(v_old), to_jsonb(v_new), NULL);
  RETURN (SELECT x FROM mps_internal.pass_plan_views(ARRAY[v_new.id]) x);
END
$$;

-- Plans on sale, for every signed-in caller; the admin may ask for all.
CREATE FUNCTION mps.list_pass_plans(p_include_inactive boolean DEFAULT false)
RETURNS SETOF mps.pass_plan_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_admin boolean := mps_internal.caller_is_admin();
BEGIN
  IF NOT v_admin AND mps_internal.caller_user_id() IS NULL THEN
    RAISE EXCEPTION 'permission denied: list_pass_plans needs a signed-in user' USING ERRCODE = '42501',
      DETAIL = 'No signed-in user came with the call.', HINT = 'Sign in first.';
  END IF;
  RETURN QUERY SELECT * FROM mps_internal.pass_plan_views(ARRAY(
    SELECT p.id FROM mps.pass_plans p
    WHERE p.is_active OR (v_admin AND coalesce(p_include_inactive, false))));
END
$$;

-- ---- print templates (platform admin) -----------------------------------------
CREATE FUNCTION mps.create_print_template(
  p_template_type  text,
  p_content        jsonb,
  p_activate       boolean DEFAULT true)
RETURNS mps.print_template_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_type text := upper(btrim(p_template_type));
  v mps.print_templates;
BEGIN
  PERFORM mps_internal.require_admin('create_print_template');
  IF v_type IS NULL OR v_type !~ '^[A-Z][A-Z0-9_]{2,63}$' THEN
    RAISE EXCEPTION 'invalid print template' USING ERRCODE = 'MP821',
      DETAIL = format('p_template_type = %L.', p_template_type),
      HINT = 'Use an upper-case type such as PASS_REDEMPTION_SLIP.';
  END IF;
  IF p_content IS NULL OR jsonb_typeof(p_content) <> 'object' OR length(p_content::text) > 65536 THEN
    RAISE EXCEPTION 'invalid print template' USING ERRCODE = 'MP821',
      DETAIL = 'p_content must be a JSON object of at most 64 kB.',
      HINT = 'Pass e.g. {"type":"PASS_REDEMPTION_SLIP","content":[{"text":"{{plan_name}} x{{uses}}"}]}.';
  END IF;
  -- One active template per type: the new one replaces it.
  PERFORM 1 FROM mps.print_templates t WHERE t.template_type = v_type FOR UPDATE;
  IF coalesce(p_activate, true) THEN
    UPDATE mps.print_templates t SET is_active = false, updated_at = now()
     WHERE t.template_type = v_type AND t.is_active;
  END IF;
  INSERT INTO mps.print_templates (template_type, content, is_active)
  VALUES (v_type, p_content, coalesce(p_activate, true))
  RETURNING * INTO v;
  PERFORM mps_internal.audit('print_template.create', 'print_template', v.id::text, NULL, to_jsonb(v), NULL);
  RETURN (v.id, v.template_type, v.content, v.is_active, v.created_at, v.updated_at)::mps.print_template_view;
END
$$;

CREATE FUNCTION mps.set_print_template_active(p_template_id bigint, p_is_active boolean)
RETURNS mps.print_template_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old mps.print_templates;
  v mps.print_templates;
BEGIN
  PERFORM mps_internal.require_admin('set_print_template_active');
  SELECT * INTO v_old FROM mps.print_templates t WHERE t.id = p_template_id;
  IF NOT FOUND OR p_is_active IS NULL THEN
    RAISE EXCEPTION 'invalid print template' USING ERRCODE = 'MP821',
      DETAIL = format('No template %s, or p_is_active is missing.', coalesce(p_template_id::text, 'NULL')),
      HINT = 'List the templates with list_print_templates().';
  END IF;
  PERFORM 1 FROM mps.print_templates t WHERE t.template_type = v_old.template_type FOR UPDATE;
  IF p_is_active THEN
    UPDATE mps.print_templates t SET is_active = false, updated_at = now()
     WHERE t.template_type = v_old.template_type AND t.is_active AND t.id <> v_old.id;
  END IF;
  UPDATE mps.print_templates t SET is_active = p_is_active, updated_at = now()
   WHERE t.id = v_old.id RETURNING * INTO v;
  PERFORM mps_internal.audit('print_template.update', 'print_template', v.id::text,
    jsonb_build_object('is_active', v_old.is_active), jsonb_build_object('is_active', v.is_active), NULL);
  RETURN (v.id, v.template_type, v.content, v.is_active, v.created_at, v.updated_at)::mps.print_template_view;
END
$$;

CREATE FUNCTION mps.list_print_templates(p_template_type text DEFAULT NULL)
RETURNS SETOF mps.print_template_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM mps_internal.require_admin('list_print_templates');
  RETURN QUERY
  SELECT t.id, t.template_type, t.content, t.is_active, t.created_at, t.updated_at
  FROM mps.print_templates t
  WHERE p_template_type IS NULL OR t.template_type = upper(btrim(p_template_type))
  ORDER BY t.template_type, t.id;
END
$$;

-- A free-text reason or note of a status change: at most 500 characters.
CREATE FUNCTION mps_internal.check_note(p_text text, p_param text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF length(p_text) > 500 THEN
    RAISE EXCEPTION '% is too long', CASE p_param WHEN 'p_note' THEN 'review note' ELSE 'reason' END
      USING ERRCODE = 'MP004',
      DETAIL = format('%s has %s characters.', p_param, length(p_text)), HINT = 'Keep it under 500 characters.';
  END IF;
END
$$;

-- ---- review and status (platform admin) ------------------------------------------
-- Approving a pending purchase (seed 002's topup order review). The pass
-- becomes active once nothing of it is pending and it is not on hold.
CREATE FUNCTION mps.activate_member_pass(p_order_id uuid, p_note text DEFAULT NULL)
RETURNS mps.pass_order_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_order mps.pass_topup_orders;
  v_pass mps.member_passes;
  v_status mps.pass_status;
BEGIN
  PERFORM mps_internal.require_admin('activate_member_pass');
  IF p_order_id IS NULL THEN
    RAISE EXCEPTION 'purchase id is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_order_id is missing.', HINT = 'Pass the order_id of the pending purchase.';
  END IF;
  PERFORM mps_internal.check_note(p_note, 'p_note');
  SELECT * INTO v_order FROM mps.pass_topup_orders o WHERE o.id = p_order_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pass purchase not found' USING ERRCODE = 'MP817',
      DETAIL = format('No pass purchase %s.', p_order_id), HINT = 'List pending purchases with list_pass_orders().';
  END IF;
  -- Pass first, then the order: the same order as purchases and rejections.
  v_pass := mps_internal.lock_member_pass(v_order.pass_id);
  SELECT * INTO v_order FROM mps.pass_topup_orders o WHERE o.id = p_order_id FOR UPDATE;
  IF v_order.review_state <> 'pending' THEN
    RAISE EXCEPTION 'pass purchase is not awaiting review' USING ERRCODE = 'MP816',
      DETAIL = format('Purchase %s is %s.', p_order_id, v_order.review_state),
      HINT = 'Only pending purchases are approved or rejected.';
  END IF;
  UPDATE mps.pass_topup_orders o SET review_state = 'approved', reviewed_at = now(),
         reviewed_by = mps_internal.caller_user_id(), review_note = p_note
   WHERE o.id = p_order_id;
  v_status := mps_internal.pass_after_review(v_pass.id);
  PERFORM mps_internal.audit('pass.purchase.approve', 'member_pass', v_pass.id::text,
    jsonb_build_object('status', v_pass.status),
    jsonb_build_object('order_id', p_order_id, 'status', v_status, 'note', p_note), NULL);
  RETURN (SELECT x FROM mps_internal.pass_order_views(ARRAY[p_order_id]) x);
END
$$;

-- A manual hold (风控/运营): the pass stops redeeming until resumed.
CREATE FUNCTION mps.suspend_member_pass(p_pass_id uuid, p_reason text DEFAULT NULL)
RETURNS mps.member_pass_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.member_passes;
BEGIN
  PERFORM mps_internal.require_admin('suspend_member_pass');
  PERFORM mps_internal.check_note(p_reason, 'p_reason');
  v := mps_internal.lock_member_pass(p_pass_id);
  PERFORM mps_internal.require_live_pass(v, 'suspending it');
  IF v.on_hold THEN
    RAISE EXCEPTION 'invalid pass status change' USING ERRCODE = 'MP819',
      DETAIL = format('Pass %s is already on hold.', v.id), HINT = 'Lift the hold with resume_member_pass().';
  END IF;
  UPDATE mps.member_passes m SET status = 'suspended', on_hold = true,
         status_reason = coalesce(p_reason, 'on hold'), updated_at = now()
   WHERE m.id = v.id;
  PERFORM mps_internal.audit('pass.suspend', 'member_pass', v.id::text,
    jsonb_build_object('status', v.status), jsonb_build_object('status', 'suspended', 'reason', p_reason), NULL);
  RETURN (SELECT x FROM mps_internal.member_pass_views(ARRAY[v.id]) x);
END
$$;

-- Lifting a manual hold. A pass still awaiting review stays suspended.
CREATE FUNCTION mps.resume_member_pass(p_pass_id uuid, p_note text DEFAULT NULL)
RETURNS mps.member_pass_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.member_passes;
  v_status mps.pass_status;
BEGIN
  PERFORM mps_internal.require_admin('resume_member_pass');
  v := mps_internal.lock_member_pass(p_pass_id);
  PERFORM mps_internal.require_live_pass(v, 'resuming it');
  IF NOT v.on_hold THEN
    RAISE EXCEPTION 'invalid pass status change' USING ERRCODE = 'MP819',
      DETAIL = format('Pass %s is %s and not on hold.', v.id, v.status),
      HINT = 'Only a pass put on hold with suspend_member_pass() is resumed; a pending purchase is approved with activate_member_pass().';
  END IF;
  UPDATE mps.member_passes m SET on_hold = false, status_reason = 'awaiting review', updated_at = now()
   WHERE m.id = v.id;
  v_status := mps_internal.pass_after_review(v.id);
  PERFORM mps_internal.audit('pass.resume', 'member_pass', v.id::text,
    jsonb_build_object('status', v.status), jsonb_build_object('status', v_status, 'note', p_note), NULL);
  RETURN (SELECT x FROM mps_internal.member_pass_views(ARRAY[v.id]) x);
END
$$;

-- Final. Purchases still awaiting review must be decided first, so that
-- money paid from a card balance is either kept (approved) or given back.
CREATE FUNCTION mps.revoke_member_pass(p_pass_id uuid, p_reason text DEFAULT NULL)
RETURNS mps.member_pass_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v mps.member_passes;
BEGIN
  PERFORM mps_internal.require_admin('revoke_member_pass');
  PERFORM mps_internal.check_note(p_reason, 'p_reason');
  v := mps_internal.lock_member_pass(p_pass_id);
  PERFORM mps_internal.require_live_pass(v, 'revoking it');
  IF EXISTS (SELECT 1 FROM mps.pass_topup_orders o WHERE o.pass_id = v.id AND o.review_state = 'pending') THEN
    RAISE EXCEPTION 'invalid pass status change' USING ERRCODE = 'MP819',
      DETAIL = format('Pass %s has purchases awaiting review.', v.id),
      HINT = 'Approve or reject them first (activate_member_pass, reject_pass_purchase).';
  END IF;
  UPDATE mps.member_passes m SET status = 'revoked', on_hold = false,
         status_reason = coalesce(p_reason, 'revoked'), updated_at = now()
   WHERE m.id = v.id;
  PERFORM mps_internal.audit('pass.revoke', 'member_pass', v.id::text,
    jsonb_build_object('status', v.status, 'remaining_uses', v.remaining_uses),
    jsonb_build_object('status', 'revoked', 'reason', p_reason), NULL);
  RETURN (SELECT x FROM mps_internal.member_pass_views(ARRAY[v.id]) x);
END
$$;

-- The job: live passes past their expiry become expired (redemption refuses
-- them already; this makes the status say so and frees the plan for a new pass).
CREATE FUNCTION mps.expire_member_passes()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n integer;
BEGIN
  PERFORM mps_internal.require_admin('expire_member_passes');
  UPDATE mps.member_passes m SET status = 'expired', on_hold = false, status_reason = 'expired',
         updated_at = now()
   WHERE m.status IN ('active', 'suspended') AND m.expires_at <= now();
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    PERFORM mps_internal.audit('pass.expire', 'job', 'expire_member_passes', NULL,
                               jsonb_build_object('expired', v_n), NULL);
  END IF;
  RETURN v_n;
END
$$;

-- Purchases by review state (the head office's review queue), oldest first.
CREATE FUNCTION mps.list_pass_orders(p_review_state text DEFAULT 'pending', p_limit integer DEFAULT 100)
RETURNS SETOF mps.pass_order_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM mps_internal.require_admin('list_pass_orders');
  IF p_review_state IS NOT NULL AND p_review_state NOT IN ('auto', 'pending', 'approved', 'rejected') THEN
    RAISE EXCEPTION 'unknown review state' USING ERRCODE = 'MP004',
      DETAIL = format('p_review_state = %L.', p_review_state), HINT = 'Use auto, pending, approved or rejected, or NULL for all.';
  END IF;
  IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
    RAISE EXCEPTION 'invalid limit' USING ERRCODE = 'MP004',
      DETAIL = format('p_limit = %s.', coalesce(p_limit::text, 'NULL')), HINT = 'Pass 1 to 1000.';
  END IF;
  RETURN QUERY SELECT * FROM mps_internal.pass_order_views(ARRAY(
    SELECT o.id FROM mps.pass_topup_orders o
    WHERE p_review_state IS NULL OR o.review_state = p_review_state::mps.pass_review_state
    ORDER BY o.created_at, o.id LIMIT p_limit));
END
$$;

-- A member's passes for the till (a merchant user) or the back office.
CREATE FUNCTION mps.list_member_passes(p_member_id uuid)
RETURNS SETOF mps.member_pass_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT mps_internal.caller_is_admin() AND NOT mps_internal.is_merchant_user() THEN
    RAISE EXCEPTION 'permission denied: list_member_passes needs a merchant user or the platform admin'
      USING ERRCODE = '42501', DETAIL = 'The caller is neither.', HINT = 'Members read their passes with get_my_passes().';
  END IF;
  IF p_member_id IS NULL OR NOT EXISTS (SELECT 1 FROM mps.member_profiles m WHERE m.id = p_member_id) THEN
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = format('No member %s.', coalesce(p_member_id::text, 'NULL')), HINT = 'Check the member id.';
  END IF;
  RETURN QUERY SELECT * FROM mps_internal.member_pass_views(ARRAY(
    SELECT m.id FROM mps.member_passes m WHERE m.member_id = p_member_id));
END
$$;

-- ---- the member's own view ---------------------------------------------------------
CREATE FUNCTION mps_internal.require_my_member(p_action text)
RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.my_member_id();
BEGIN
  IF v_member IS NULL THEN
    IF mps_internal.caller_user_id() IS NULL THEN
      RAISE EXCEPTION 'permission denied: % needs a signed-in member', p_action USING ERRCODE = '42501',
        DETAIL = 'No signed-in user came with the call.', HINT = 'Sign in first.';
    END IF;
    RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
      DETAIL = 'The signed-in user has no member profile.',
      HINT = 'Create one with create_member_profile().';
  END IF;
  RETURN v_member;
END
$$;

CREATE FUNCTION mps.get_my_passes()
RETURNS SETOF mps.member_pass_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.require_my_member('get_my_passes');
BEGIN
  RETURN QUERY SELECT * FROM mps_internal.member_pass_views(ARRAY(
    SELECT m.id FROM mps.member_passes m WHERE m.member_id = v_member));
END
$$;

CREATE FUNCTION mps.get_my_pass_redemptions(p_pass_id uuid DEFAULT NULL, p_limit integer DEFAULT 50)
RETURNS SETOF mps.pass_redemption_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid := mps_internal.require_my_member('get_my_pass_redemptions');
BEGIN
  IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 500 THEN
    RAISE EXCEPTION 'invalid limit' USING ERRCODE = 'MP004',
      DETAIL = format('p_limit = %s.', coalesce(p_limit::text, 'NULL')), HINT = 'Pass 1 to 500.';
  END IF;
  RETURN QUERY SELECT * FROM mps_internal.pass_redemption_views(v_member, p_pass_id, p_limit);
END
$$;

-- ---- the C RPCs (src/pass.c) ------------------------------------------------------
CREATE FUNCTION mps.purchase_pass(
  p_merchant_code    text,
  p_plan_code        text,
  p_member_id        uuid,
  p_quantity         integer DEFAULT 1,
  p_payments         jsonb DEFAULT NULL,
  p_idempotency_key  text DEFAULT NULL,
  p_order_no         text DEFAULT NULL)
RETURNS mps.pass_purchase_result
AS 'MODULE_PATHNAME', 'mps_purchase_pass'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION mps.redeem_pass(
  p_merchant_code    text,
  p_pass_id          uuid,
  p_lines            jsonb,
  p_idempotency_key  text DEFAULT NULL,
  p_order_no         text DEFAULT NULL,
  p_payments         jsonb DEFAULT NULL)
RETURNS mps.pass_redemption_result
AS 'MODULE_PATHNAME', 'mps_redeem_pass'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION mps.reject_pass_purchase(p_order_id uuid, p_reason text DEFAULT NULL)
RETURNS mps.pass_order_view
AS 'MODULE_PATHNAME', 'mps_reject_pass_purchase'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- ---- grants ---------------------------------------------------------------------------
GRANT EXECUTE ON FUNCTION
  mps.create_pass_plan(text, text, integer, numeric, text, integer, boolean, jsonb, jsonb, boolean),
  mps.update_pass_plan(text, text, integer, numeric, integer, boolean, jsonb, jsonb, boolean),
  mps.create_print_template(text, jsonb, boolean),
  mps.set_print_template_active(bigint, boolean),
  mps.list_print_templates(text),
  mps.activate_member_pass(uuid, text),
  mps.reject_pass_purchase(uuid, text),
  mps.suspend_member_pass(uuid, text),
  mps.resume_member_pass(uuid, text),
  mps.revoke_member_pass(uuid, text),
  mps.expire_member_passes(),
  mps.list_pass_orders(text, integer)
  TO mps_admin;
GRANT EXECUTE ON FUNCTION
  mps.purchase_pass(text, text, uuid, integer, jsonb, text, text),
  mps.redeem_pass(text, uuid, jsonb, text, text, jsonb),
  mps.list_member_passes(uuid)
  TO mps_admin, mps_merchant_api;
GRANT EXECUTE ON FUNCTION mps.list_pass_plans(boolean) TO mps_admin, mps_merchant_api, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.get_my_passes(), mps.get_my_pass_redemptions(uuid, integer)
  TO mps_admin, mps_member_app;
-- Settlements and reports, derived only from transactions rows.
--
-- A merchant's sales are its payments and the pass purchases paid from a card
-- at it; its reversals are refunds and the adjustments that give a rejected
-- pass purchase back (platform adjustments carry no merchant).
--
-- A settlement covers a half-open period [start, end) of one merchant, one row
-- per currency. Payments are counted in the period in which they were made,
-- refunds in the period in which the refund was made, whatever the period of
-- the payment (so a March refund of a February payment nets in March).
-- Periods of a merchant never overlap, so a transaction belongs to exactly one
-- settlement: the one whose period holds its created_at. Nothing on the
-- charge path is updated for it.
--
-- Fee: round_half_away_from_zero(net * fee_bp / 10000) per currency, in
-- minor units, computed once per settlement; payout = net - fee.

ALTER TABLE mps.settlements ADD COLUMN payout bigint NOT NULL DEFAULT 0;
CREATE INDEX settlements_merchant_period_idx ON mps.settlements (merchant_id, period_start, period_end);

CREATE FUNCTION mps_internal.wait_for_running_transactions() RETURNS integer
  AS 'MODULE_PATHNAME', 'mps_wait_for_running_transactions' LANGUAGE C VOLATILE;

CREATE TYPE mps.settlement_view AS (
  settlement_id    uuid,
  merchant_code    text,
  currency         char(3),
  mode             mps.settlement_mode,
  period_start     timestamptz,
  period_end       timestamptz,
  gross_payments   numeric,
  refunds          numeric,
  net              numeric,
  fee              numeric,
  payout           numeric,
  payment_count    integer,
  refund_count     integer,
  status           mps.settlement_status,
  payout_ref       text,
  created_at       timestamptz,
  paid_at          timestamptz
);

CREATE FUNCTION mps_internal.settlement_views(p_ids uuid[])
RETURNS SETOF mps.settlement_view
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT s.id, m.code, s.currency, s.mode, s.period_start, s.period_end,
         mps_internal.to_major(s.gross_payments, c.exponent), mps_internal.to_major(s.refunds, c.exponent),
         mps_internal.to_major(s.net, c.exponent), mps_internal.to_major(s.fee, c.exponent),
         mps_internal.to_major(s.payout, c.exponent), s.payment_count, s.refund_count,
         s.status, s.payout_ref, s.created_at, s.paid_at
  FROM mps.settlements s
  JOIN mps.merchants m ON m.id = s.merchant_id
  JOIN mps.currencies c ON c.code = s.currency
  WHERE s.id = ANY (p_ids)
  ORDER BY s.period_start, s.currency
$$;

-- The settlement itself, without permission checks (used by the RPC and the job).
CREATE FUNCTION mps_internal.settle(p_merchant mps.merchants, p_start timestamptz, p_end timestamptz)
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

CREATE FUNCTION mps.generate_settlement(p_merchant_code text, p_period_start timestamptz,
                                        p_period_end timestamptz)
RETURNS SETOF mps.settlement_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids uuid[];
BEGIN
  PERFORM mps_internal.require_admin('generate_settlement');
  -- Settle first, read after: the read must see the rows just written.
  v_ids := mps_internal.settle(mps_internal.merchant_by_code(p_merchant_code), p_period_start, p_period_end);
  RETURN QUERY SELECT * FROM mps_internal.settlement_views(v_ids);
END
$$;

CREATE FUNCTION mps.mark_settlement_paid(p_settlement_id uuid, p_payout_ref text)
RETURNS mps.settlement_view
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old mps.settlements;
  v_new mps.settlements;
  v_row mps.settlement_view;
BEGIN
  PERFORM mps_internal.require_admin('mark_settlement_paid');
  IF p_payout_ref IS NULL OR btrim(p_payout_ref) = '' OR length(p_payout_ref) > 200 THEN
    RAISE EXCEPTION 'payout reference is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_payout_ref is missing, empty or longer than 200 characters.',
      HINT = 'Pass the bank or payment provider reference of the payout.';
  END IF;
  SELECT * INTO v_old FROM mps.settlements s WHERE s.id = p_settlement_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'settlement not found' USING ERRCODE = 'MP704',
      DETAIL = format('No settlement %s.', p_settlement_id), HINT = 'Check the settlement id.';
  END IF;
  IF v_old.status = 'paid' THEN
    IF v_old.payout_ref = btrim(p_payout_ref) THEN
      SELECT * INTO v_row FROM mps_internal.settlement_views(ARRAY[v_old.id]);
      RETURN v_row;                        -- a retry of the same payout
    END IF;
    RAISE EXCEPTION 'settlement already paid' USING ERRCODE = 'MP705',
      DETAIL = format('Settlement %s was paid with reference %s.', v_old.id, v_old.payout_ref),
      HINT = 'A settlement is paid once.';
  END IF;
  UPDATE mps.settlements s SET status = 'paid', payout_ref = btrim(p_payout_ref), paid_at = now()
   WHERE s.id = v_old.id RETURNING * INTO v_new;
  PERFORM mps_internal.audit('settlement.paid', 'settlement', v_new.id::text,
    jsonb_build_object('status', v_old.status),
    jsonb_build_object('status', v_new.status, 'payout_ref', v_new.payout_ref, 'payout', v_new.payout), NULL);
  SELECT * INTO v_row FROM mps_internal.settlement_views(ARRAY[v_new.id]);
  RETURN v_row;
END
$$;

-- A merchant's manager (or the platform admin) reads its settlements.
CREATE FUNCTION mps.list_settlements(p_merchant_code text, p_from timestamptz DEFAULT NULL,
                                     p_to timestamptz DEFAULT NULL)
RETURNS SETOF mps.settlement_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants := mps_internal.merchant_by_code(p_merchant_code);
BEGIN
  PERFORM mps_internal.require_merchant_manager(v_merchant, 'list_settlements');
  RETURN QUERY SELECT * FROM mps_internal.settlement_views(ARRAY(
    SELECT s.id FROM mps.settlements s
    WHERE s.merchant_id = v_merchant.id
      AND (p_from IS NULL OR s.period_end > p_from)
      AND (p_to IS NULL OR s.period_start < p_to)));
END
$$;

CREATE FUNCTION mps_internal.require_merchant_manager(p_merchant mps.merchants, p_action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF mps_internal.caller_is_admin() OR p_merchant.id = ANY (mps_internal.my_merchant_ids(true)) THEN
    RETURN;
  END IF;
  RAISE EXCEPTION 'permission denied: % for merchant %', p_action, p_merchant.code USING ERRCODE = '42501',
    DETAIL = format('The caller is not a manager of merchant %s.', p_merchant.code),
    HINT = 'Sign in as one of the merchant''s managers.';
END
$$;

CREATE TYPE mps.daily_report_row AS (
  day            date,
  card_type      mps.card_type,
  currency       char(3),
  payments       numeric,
  payment_count  bigint,
  refunds        numeric,
  refund_count   bigint,
  net            numeric
);

-- Takings by business day (merchant's time zone) and card type, [p_from, p_to].
CREATE FUNCTION mps.merchant_daily_report(p_merchant_code text, p_from date, p_to date)
RETURNS SETOF mps.daily_report_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants := mps_internal.merchant_by_code(p_merchant_code);
BEGIN
  PERFORM mps_internal.require_merchant_manager(v_merchant, 'merchant_daily_report');
  IF p_from IS NULL OR p_to IS NULL OR p_to < p_from OR p_to - p_from > 366 THEN
    RAISE EXCEPTION 'invalid report range' USING ERRCODE = 'MP701',
      DETAIL = format('[%s, %s].', p_from, p_to),
      HINT = 'Pass p_from <= p_to, at most 366 days apart.';
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

GRANT EXECUTE ON FUNCTION mps.generate_settlement(text, timestamptz, timestamptz),
  mps.mark_settlement_paid(uuid, text) TO mps_admin, mps_merchant_api;
GRANT EXECUTE ON FUNCTION mps.list_settlements(text, timestamptz, timestamptz),
  mps.merchant_daily_report(text, date, date) TO mps_admin, mps_merchant_api;
-- verify_ledger(): every invariant the design names, one row per violation
-- (none on a healthy database).

CREATE TYPE mps.ledger_violation AS (
  check_name  text,
  entity      text,
  detail      text
);

CREATE FUNCTION mps.verify_ledger()
RETURNS SETOF mps.ledger_violation
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_audit record;
BEGIN
  PERFORM mps_internal.require_admin('verify_ledger');

  RETURN QUERY
  SELECT 'balance_equals_transactions', 'card ' || c.id,
         format('balance %s, sum of transactions %s', c.balance, coalesce(t.s, 0))
  FROM mps.cards c
  LEFT JOIN (SELECT card_id, sum(amount) AS s FROM mps.transactions GROUP BY card_id) t ON t.card_id = c.id
  WHERE c.balance <> coalesce(t.s, 0);

  RETURN QUERY
  SELECT 'points_equal_ledger', 'card ' || c.id,
         format('points %s, sum of ledger %s', c.points, coalesce(p.s, 0))
  FROM mps.cards c
  LEFT JOIN (SELECT card_id, sum(delta) AS s FROM mps.point_ledger GROUP BY card_id) p ON p.card_id = c.id
  WHERE c.points <> coalesce(p.s, 0);

  RETURN QUERY
  SELECT 'refunds_within_payment', 'transaction ' || pay.id,
         format('final %s, refunded_amount %s, sum of refunds %s', pay.final_amount, pay.refunded_amount, coalesce(r.s, 0))
  FROM mps.transactions pay
  LEFT JOIN (SELECT original_tx_id, sum(final_amount) AS s FROM mps.transactions
             WHERE kind = 'refund' GROUP BY original_tx_id) r ON r.original_tx_id = pay.id
  WHERE pay.kind = 'payment'
    AND (coalesce(r.s, 0) > pay.final_amount OR coalesce(r.s, 0) <> pay.refunded_amount);

  RETURN QUERY
  SELECT 'refund_has_payment', 'transaction ' || r.id, 'refund of a transaction that is not a payment'
  FROM mps.transactions r
  WHERE r.kind = 'refund'
    AND NOT EXISTS (SELECT 1 FROM mps.transactions p WHERE p.id = r.original_tx_id AND p.kind = 'payment');

  -- Periods of one merchant never overlap, so each transaction is in at most one settlement.
  RETURN QUERY
  SELECT 'settlements_disjoint', 'settlement ' || a.id,
         format('[%s, %s) overlaps settlement %s', a.period_start, a.period_end, b.id)
  FROM mps.settlements a JOIN mps.settlements b
    ON a.merchant_id = b.merchant_id AND a.id < b.id AND a.currency = b.currency
   AND tstzrange(a.period_start, a.period_end) && tstzrange(b.period_start, b.period_end);

  -- A settlement still matches the transactions of its period.
  RETURN QUERY
  SELECT 'settlement_matches_transactions', 'settlement ' || s.id,
         format('settled gross %s refunds %s, transactions now gross %s refunds %s',
                s.gross_payments, s.refunds, coalesce(x.gross, 0), coalesce(x.refunds, 0))
  FROM mps.settlements s
  LEFT JOIN LATERAL (
    SELECT sum(t.final_amount) FILTER (WHERE t.kind IN ('payment', 'pass_purchase')) AS gross,
           sum(t.final_amount) FILTER (WHERE t.kind IN ('refund', 'adjustment')) AS refunds
    FROM mps.transactions t
    WHERE t.merchant_id = s.merchant_id AND t.currency = s.currency
      AND t.created_at >= s.period_start AND t.created_at < s.period_end) x ON true
  WHERE s.gross_payments <> coalesce(x.gross, 0) OR s.refunds <> coalesce(x.refunds, 0);

  RETURN QUERY
  SELECT 'no_rows_in_default_partition', 'table ' || d.t, format('%s rows', d.n)
  FROM (SELECT 'mps.transactions_default' AS t, count(*) AS n FROM mps.transactions_default
        UNION ALL
        SELECT 'mps.point_ledger_default', count(*) FROM mps.point_ledger_default) d
  WHERE d.n > 0;

  SELECT * INTO v_audit FROM audit.verify();
  IF NOT v_audit.intact THEN
    RETURN QUERY SELECT 'audit_chain_intact', 'audit event ' || coalesce(v_audit.broken_event_id::text, '?'),
                        v_audit.problem;
  END IF;

  RETURN QUERY
  SELECT 'audit_sealed', 'audit.event_log', format('%s events older than 10 minutes are not sealed', count(*))
  FROM audit.event_log l
  WHERE l.occurred_at < now() - interval '10 minutes'
    AND NOT EXISTS (SELECT 1 FROM audit.chain c WHERE c.event_id = l.id)
  HAVING count(*) > 0;
END
$$;

GRANT EXECUTE ON FUNCTION mps.verify_ledger() TO mps_admin, mps_merchant_api, mps_member_app;
-- Scheduled work. Each job is a plain function (tests call them directly);
-- schedule_jobs() registers them all with pg_cron under mps_ names.

-- Live codes that expired within the last week are marked revoked
-- ('expired'): the history then says what became of them. They could not pay
-- anyway; the week bounds the scan (the job runs every five minutes).
CREATE FUNCTION mps.expire_qr_codes()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n integer;
BEGIN
  PERFORM mps_internal.require_admin('expire_qr_codes');
  UPDATE mps.card_qr_codes q SET revoked_at = now(), revoke_reason = 'expired'
   WHERE q.expires_at <= now() AND q.expires_at > now() - interval '7 days'
     AND q.used_at IS NULL AND q.revoked_at IS NULL;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n > 0 THEN
    PERFORM mps_internal.audit('qr.expire', 'job', 'expire_qr_codes', NULL, jsonb_build_object('expired', v_n), NULL);
  END IF;
  RETURN v_n;
END
$$;

-- The next periods due for one merchant, in its time zone: realtime up to the
-- current minute; t_plus_1 whole business days up to today; monthly whole
-- months up to this month. The first period starts when the merchant was
-- created; each next one where the last settled period ended.
CREATE FUNCTION mps_internal.due_periods(p_merchant mps.merchants, p_now timestamptz)
RETURNS TABLE (period_start timestamptz, period_end timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_start timestamptz;
  v_end timestamptz;
  v_limit timestamptz;
  v_step interval;
  v_unit text;
BEGIN
  SELECT max(s.period_end) INTO v_start FROM mps.settlements s WHERE s.merchant_id = p_merchant.id;
  v_start := coalesce(v_start, p_merchant.created_at);
  IF p_merchant.settlement_mode = 'realtime' THEN
    v_limit := date_trunc('minute', p_now);
    IF v_limit > v_start THEN
      RETURN QUERY SELECT v_start, v_limit;
    END IF;
    RETURN;
  END IF;
  v_unit := CASE p_merchant.settlement_mode WHEN 't_plus_1' THEN 'day' ELSE 'month' END;
  v_step := CASE v_unit WHEN 'day' THEN interval '1 day' ELSE interval '1 month' END;
  -- Boundaries are local midnights of the merchant's zone.
  v_limit := date_trunc(v_unit, p_now AT TIME ZONE p_merchant.timezone) AT TIME ZONE p_merchant.timezone;
  LOOP
    v_end := (date_trunc(v_unit, v_start AT TIME ZONE p_merchant.timezone) + v_step) AT TIME ZONE p_merchant.timezone;
    EXIT WHEN v_end > v_limit;
    RETURN QUERY SELECT v_start, v_end;
    v_start := v_end;
  END LOOP;
END
$$;

-- Settle every active merchant of one mode for its due periods. A merchant
-- that fails is logged (audit event job.error) and the others go on.
CREATE FUNCTION mps.run_settlements(p_mode text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_merchant mps.merchants;
  v_period record;
  v_made integer := 0;
  v_now timestamptz := clock_timestamp();
BEGIN
  PERFORM mps_internal.require_admin('run_settlements');
  IF p_mode IS NULL OR p_mode NOT IN ('realtime', 't_plus_1', 'monthly') THEN
    RAISE EXCEPTION 'unknown settlement mode' USING ERRCODE = 'MP004',
      DETAIL = format('p_mode = %L.', p_mode), HINT = 'Use realtime, t_plus_1 or monthly.';
  END IF;
  FOR v_merchant IN
    SELECT * FROM mps.merchants m
    WHERE m.settlement_mode = p_mode::mps.settlement_mode AND m.status <> 'closed'
    ORDER BY m.code
  LOOP
    BEGIN
      FOR v_period IN SELECT * FROM mps_internal.due_periods(v_merchant, v_now) LOOP
        PERFORM mps_internal.settle(v_merchant, v_period.period_start, v_period.period_end);
        v_made := v_made + 1;
      END LOOP;
    EXCEPTION WHEN OTHERS THEN
      PERFORM mps_internal.audit('job.error', 'merchant', v_merchant.id::text, NULL,
        jsonb_build_object('job', 'run_settlements', 'mode', p_mode, 'merchant', v_merchant.code,
                           'sqlstate', SQLSTATE, 'message', SQLERRM), NULL);
    END;
  END LOOP;
  RETURN v_made;
END
$$;

-- The jobs and their schedules.
CREATE FUNCTION mps_internal.job_definitions()
RETURNS TABLE (job_name text, schedule text, command text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  VALUES
    ('mps_ensure_partitions', '17 3 * * *', 'SELECT mps.ensure_partitions(3)'),
    ('mps_expire_qr_codes', '*/5 * * * *', 'SELECT mps.expire_qr_codes()'),
    ('mps_rotate_shared_qr', '*/5 * * * *', 'SELECT count(*) FROM mps.cron_rotate_qr_tokens(300)'),
    ('mps_settle_realtime', '*/5 * * * *', 'SELECT mps.run_settlements(''realtime'')'),
    ('mps_settle_t_plus_1', '7 * * * *', 'SELECT mps.run_settlements(''t_plus_1'')'),
    ('mps_settle_monthly', '37 * * * *', 'SELECT mps.run_settlements(''monthly'')'),
    ('mps_expire_passes', '*/10 * * * *', 'SELECT mps.expire_member_passes()'),
    ('mps_audit_seal', '* * * * *', 'SELECT audit.seal()')
$$;

CREATE FUNCTION mps_internal.require_cron() RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF to_regnamespace('cron') IS NULL OR to_regprocedure('cron.schedule(text,text,text)') IS NULL THEN
    RAISE EXCEPTION 'pg_cron is not installed in this database' USING ERRCODE = 'MP706',
      DETAIL = format('Database %s has no cron schema.', current_database()),
      HINT = 'Add pg_cron to shared_preload_libraries, set cron.database_name to this database and CREATE EXTENSION pg_cron.';
  END IF;
END
$$;

-- Registers (or updates) every job; calling it twice leaves one job each.
CREATE FUNCTION mps.schedule_jobs()
RETURNS TABLE (job_name text, schedule text, command text, jobid bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j record;
  v_id bigint;
BEGIN
  PERFORM mps_internal.require_admin('schedule_jobs');
  PERFORM mps_internal.require_cron();
  FOR j IN SELECT * FROM mps_internal.job_definitions() LOOP
    -- cron.schedule with a job name updates that job when it exists.
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO v_id USING j.job_name, j.schedule, j.command;
    job_name := j.job_name; schedule := j.schedule; command := j.command; jobid := v_id;
    RETURN NEXT;
  END LOOP;
  PERFORM mps_internal.audit('jobs.schedule', 'job', NULL, NULL,
    jsonb_build_object('jobs', (SELECT jsonb_agg(d.job_name) FROM mps_internal.job_definitions() d)), NULL);
END
$$;

CREATE FUNCTION mps.unschedule_jobs()
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_n integer := 0;
  j record;
BEGIN
  PERFORM mps_internal.require_admin('unschedule_jobs');
  PERFORM mps_internal.require_cron();
  FOR j IN EXECUTE 'SELECT jobname FROM cron.job WHERE jobname LIKE ''mps\_%'' ORDER BY jobname' LOOP
    EXECUTE 'SELECT cron.unschedule($1)' USING j.jobname;
    v_n := v_n + 1;
  END LOOP;
  PERFORM mps_internal.audit('jobs.unschedule', 'job', NULL, NULL, jsonb_build_object('removed', v_n), NULL);
  RETURN v_n;
END
$$;

GRANT EXECUTE ON FUNCTION mps.expire_qr_codes(), mps.run_settlements(text),
  mps.schedule_jobs(), mps.unschedule_jobs() TO mps_admin, mps_merchant_api, mps_member_app;
-- Row-level audit of the configuration tables (DESIGN §6): every insert,
-- update and delete of a configuration row is an event, whoever made it —
-- an RPC (which also writes its own, meaningful event) or a superuser editing
-- the table by hand. Movement tables are audited by the C core instead.

CREATE FUNCTION audit.config_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
  v_new jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
  v_row jsonb := coalesce(v_new, v_old);
BEGIN
  PERFORM mps_internal.audit('config.' || TG_TABLE_NAME || '.' || lower(TG_OP), TG_TABLE_NAME,
    coalesce(v_row->>'id', v_row->>'code', v_row->>'merchant_id' || '/' || (v_row->>'user_id'),
             v_row->>'activity_id'),
    v_old, v_new, NULL);
  RETURN NULL;
END
$$;

DO $triggers$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['currencies', 'membership_levels', 'merchants', 'merchant_users',
    'categories', 'products', 'marketing_groups', 'mg_discount_rules', 'stamp_activities',
    'stamp_targets', 'pass_plans', 'print_templates'] LOOP
    EXECUTE format('CREATE TRIGGER config_audit AFTER INSERT OR UPDATE OR DELETE ON mps.%I '
                   'FOR EACH ROW EXECUTE FUNCTION audit.config_change()', t);
  END LOOP;
END
$triggers$;

-- Each backend keeps a copy of the currencies and membership levels
-- (src/ref_cache.c); a change to either table tells every backend to read
-- them again (a relcache invalidation, sent when the change commits).
CREATE FUNCTION mps_internal.ref_cache_changed() RETURNS trigger
AS 'MODULE_PATHNAME', 'mps_ref_cache_changed'
LANGUAGE C;
REVOKE ALL ON FUNCTION mps_internal.ref_cache_changed() FROM PUBLIC;
CREATE TRIGGER ref_cache_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mps.currencies
  FOR EACH STATEMENT EXECUTE FUNCTION mps_internal.ref_cache_changed();
CREATE TRIGGER ref_cache_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mps.membership_levels
  FOR EACH STATEMENT EXECUTE FUNCTION mps_internal.ref_cache_changed();
-- Row-level security: reads only where safe, writes for nobody. Every write
-- goes through an RPC (SECURITY DEFINER, run as the extension owner, who is
-- not subject to these policies). The API roles get SELECT on the tables a
-- client may read; RLS then narrows it to the caller's own rows.

DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['currencies', 'member_profiles', 'member_external_identities',
    'membership_levels', 'cards', 'card_bindings', 'merchants', 'merchant_users', 'card_qr_codes',
    'transactions', 'point_ledger', 'idempotency_registry', 'merchant_order_registry', 'settlements'] LOOP
    EXECUTE format('ALTER TABLE mps.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('REVOKE ALL ON mps.%I FROM PUBLIC', t);
  END LOOP;
  FOREACH t IN ARRAY ARRAY['event_log', 'chain', 'seal_state'] LOOP
    EXECUTE format('ALTER TABLE audit.%I ENABLE ROW LEVEL SECURITY', t);
  END LOOP;
END
$rls$;

-- Configuration everyone signed in may read.
CREATE POLICY currencies_read ON mps.currencies FOR SELECT USING (true);
CREATE POLICY levels_read ON mps.membership_levels FOR SELECT USING (true);

-- A member's own profile, identities, bindings, cards, movements.
CREATE POLICY member_profiles_own ON mps.member_profiles FOR SELECT
  USING (auth_user_id = (SELECT mps_internal.caller_user_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY identities_own ON mps.member_external_identities FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY bindings_own ON mps.card_bindings FOR SELECT
  USING (member_id = (SELECT mps_internal.my_member_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY cards_own ON mps.cards FOR SELECT
  USING (id = ANY ((SELECT mps_internal.my_card_ids())::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY point_ledger_own ON mps.point_ledger FOR SELECT
  USING (card_id = ANY ((SELECT mps_internal.my_card_ids())::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));

-- Transactions: the card's members, the merchant's users.
CREATE POLICY transactions_own ON mps.transactions FOR SELECT
  USING (card_id = ANY ((SELECT mps_internal.my_card_ids())::uuid[])
         OR merchant_id = ANY ((SELECT mps_internal.my_merchant_ids(false))::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));

-- Merchants: their own users; settlements: their managers.
CREATE POLICY merchants_own ON mps.merchants FOR SELECT
  USING (id = ANY ((SELECT mps_internal.my_merchant_ids(false))::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY merchant_users_own ON mps.merchant_users FOR SELECT
  USING (user_id = (SELECT mps_internal.caller_user_id())
         OR (SELECT mps_internal.caller_is_admin()));
CREATE POLICY settlements_own ON mps.settlements FOR SELECT
  USING (merchant_id = ANY ((SELECT mps_internal.my_merchant_ids(true))::uuid[])
         OR (SELECT mps_internal.caller_is_admin()));

-- card_qr_codes, the registries and the audit tables have no policy: no API
-- role reads them directly (QR hashes and request hashes stay inside).

GRANT SELECT ON mps.currencies, mps.membership_levels, mps.member_profiles,
  mps.member_external_identities, mps.card_bindings, mps.cards, mps.point_ledger,
  mps.transactions, mps.merchants, mps.merchant_users, mps.settlements
  TO mps_admin, mps_merchant_api, mps_member_app;
-- Handing the group roles' rights to other roles.
--
-- Supabase's anon/authenticated/service_role are NOINHERIT, so granting them
-- membership of mps_member_app etc. gives them nothing. This copies a group
-- role's privileges on the extension's schemas, functions and tables to
-- another role instead; run it once after CREATE or ALTER EXTENSION (README,
-- "Use from Supabase").
CREATE FUNCTION mps.grant_role_privileges(p_group text, p_to_role text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_group oid;
  v_n integer := 0;
  r record;
BEGIN
  PERFORM mps_internal.require_admin('grant_role_privileges');
  IF p_group IS NULL OR p_group NOT IN ('mps_admin', 'mps_merchant_api', 'mps_member_app') THEN
    RAISE EXCEPTION 'unknown group role' USING ERRCODE = 'MP004',
      DETAIL = format('p_group = %L.', p_group),
      HINT = 'Use mps_admin, mps_merchant_api or mps_member_app.';
  END IF;
  IF p_to_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_to_role) THEN
    RAISE EXCEPTION 'unknown role' USING ERRCODE = 'MP004',
      DETAIL = format('p_to_role = %L.', p_to_role), HINT = 'Name an existing role, e.g. authenticated.';
  END IF;
  v_group := p_group::regrole;

  FOR r IN
    SELECT n.nspname FROM pg_namespace n, aclexplode(n.nspacl) a
    WHERE n.nspname IN ('mps', 'mps_internal', 'audit') AND a.grantee = v_group AND a.privilege_type = 'USAGE'
  LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', r.nspname, p_to_role);
    v_n := v_n + 1;
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS f FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.pronamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
      AND a.grantee = v_group AND a.privilege_type = 'EXECUTE'
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', r.f, p_to_role);
    v_n := v_n + 1;
  END LOOP;
  FOR r IN
    SELECT c.oid::regclass AS t, a.privilege_type AS priv FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace)
      AND a.grantee = v_group
  LOOP
    EXECUTE format('GRANT %s ON %s TO %I', r.priv, r.t, p_to_role);
    v_n := v_n + 1;
  END LOOP;
  PERFORM mps_internal.audit('grants.copy', 'role', p_to_role, NULL,
    jsonb_build_object('group', p_group, 'privileges', v_n), NULL);
  RETURN v_n;
END
$$;
GRANT EXECUTE ON FUNCTION mps.grant_role_privileges(text, text) TO mps_admin;
-- Install-time data and the PostgREST schema reload.

SELECT mps_internal.create_month_partitions((now() AT TIME ZONE 'UTC')::date, 1);

-- Functions are created EXECUTE-able by PUBLIC; take that back from every
-- function of the extension, then the per-file GRANTs above stand alone.
DO $revoke$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
  LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$revoke$;

-- The tables are members of the extension; without this pg_dump would dump
-- their definitions (as CREATE EXTENSION) but not their rows. The two tables
-- seeded here (currencies, membership_levels) are left out: a restore's
-- CREATE EXTENSION seeds them again (README, Troubleshooting).
DO $dump$
DECLARE
  r regclass;
BEGIN
  FOR r IN
    SELECT c.oid::regclass FROM pg_class c
    WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace)
      AND c.relkind IN ('r', 'S')
      AND c.oid NOT IN ('mps.currencies'::regclass, 'mps.membership_levels'::regclass,
                        pg_get_serial_sequence('mps.membership_levels', 'id')::regclass)
  LOOP
    PERFORM pg_catalog.pg_extension_config_dump(r, '');
  END LOOP;
END
$dump$;

NOTIFY pgrst, 'reload schema';
