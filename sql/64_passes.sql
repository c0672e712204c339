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
-- One active template per type: changes of a type's templates take this lock
-- first, so two at once run one after the other (a row lock cannot serialize
-- the type's first templates: there is no row yet), and the later one finds
-- the earlier's active template and replaces it (iso_print_template_race).
CREATE FUNCTION mps_internal.lock_print_template_type(p_template_type text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_advisory_xact_lock(1297101617, hashtext('print_template:' || p_template_type))
$$;

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
  PERFORM mps_internal.lock_print_template_type(v_type);
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
  PERFORM mps_internal.lock_print_template_type(v_old.template_type);
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

-- The member whose own live payment code this is (verified, not used up;
-- MP301-MP304, MP209): proof that she is at the till (src/qr.c).
CREATE FUNCTION mps_internal.member_at_till(p_qr_plain text) RETURNS uuid
  AS 'MODULE_PATHNAME', 'mps_member_at_till' LANGUAGE C STABLE;

-- A member's passes: at the till a merchant user sees them only while she
-- shows her live payment code (p_qr_plain, not used up: the redemption that
-- follows uses it); a member sees her own; the platform admin anyone's.
CREATE FUNCTION mps.list_member_passes(p_member_id uuid DEFAULT NULL, p_qr_plain text DEFAULT NULL)
RETURNS SETOF mps.member_pass_view
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_member uuid;
  v_me uuid := mps_internal.my_member_id();
BEGIN
  IF mps_internal.caller_is_admin() THEN
    v_member := coalesce(p_member_id, CASE WHEN p_qr_plain IS NOT NULL THEN mps_internal.member_at_till(p_qr_plain) END);
    IF v_member IS NULL OR NOT EXISTS (SELECT 1 FROM mps.member_profiles m WHERE m.id = v_member) THEN
      RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
        DETAIL = format('No member %s.', coalesce(p_member_id::text, 'NULL')), HINT = 'Check the member id.';
    END IF;
  ELSIF v_me IS NOT NULL AND p_qr_plain IS NULL AND coalesce(p_member_id, v_me) = v_me THEN
    v_member := v_me;
  ELSIF NOT mps_internal.is_merchant_user() THEN
    RAISE EXCEPTION 'permission denied: list_member_passes of another member' USING ERRCODE = '42501',
      DETAIL = 'Only the member herself, a merchant user she shows her code to, or the platform admin.',
      HINT = 'Members read their own passes with get_my_passes() or without p_member_id.';
  ELSIF p_qr_plain IS NULL THEN
    RAISE EXCEPTION 'the member''s payment code is required' USING ERRCODE = 'MP003',
      DETAIL = 'p_qr_plain is missing; a merchant sees a member''s passes only while she is at the till.',
      HINT = 'Scan the code the member shows in her app (rotate_card_qr).';
  ELSE
    v_member := mps_internal.member_at_till(p_qr_plain);
    -- Another member than the code's holder reads as absent.
    IF p_member_id IS DISTINCT FROM v_member AND p_member_id IS NOT NULL THEN
      RAISE EXCEPTION 'member not found' USING ERRCODE = 'MP101',
        DETAIL = 'The code shown is not this member''s.', HINT = 'Leave p_member_id out: the code names the member.';
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM mps_internal.member_pass_views(ARRAY(
    SELECT m.id FROM mps.member_passes m WHERE m.member_id = v_member));
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
  p_payments         jsonb DEFAULT NULL,
  p_qr_plain         text DEFAULT NULL)
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
  mps.redeem_pass(text, uuid, jsonb, text, text, jsonb, text)
  TO mps_admin, mps_merchant_api;
GRANT EXECUTE ON FUNCTION mps.list_member_passes(uuid, text) TO mps_admin, mps_merchant_api, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.list_pass_plans(boolean) TO mps_admin, mps_merchant_api, mps_member_app;
GRANT EXECUTE ON FUNCTION mps.get_my_passes(), mps.get_my_pass_redemptions(uuid, integer)
  TO mps_admin, mps_member_app;
