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
  frozen_by              mps.card_authority,   -- set while frozen: who may lift it (set_card_status)
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
