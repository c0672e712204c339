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
  PERFORM mps_internal.check_name(p_name, 'p_name', 200, 'MP009');
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
-- The group row is locked first, so two admins adding or activating rules of
-- one group at once count one after the other (the cap holds; a seventh rule
-- would make every priced sale of the group fail).
CREATE FUNCTION mps_internal.check_percentage_room(p_group_id integer) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM 1 FROM mps.marketing_groups g WHERE g.id = p_group_id FOR UPDATE;
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

-- The platform admin searches every member; a merchant user only the
-- customers of their merchants (sql/67_customers.sql), phone and card number
-- masked.
CREATE FUNCTION mps.search_members(p_query text, p_limit integer DEFAULT 20)
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
