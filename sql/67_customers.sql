-- Which members a merchant's users may find, and what they see of them.
--
-- A merchant's customers are the members who paid there with their own code,
-- bought or redeemed a pass there, or were registered at its till. Its users
-- find only those (find_member_by_identity, search_members), with phone,
-- e-mail and card number masked; the platform admin finds anyone, unmasked.

-- The merchant whose till registered the member (NULL: signed up herself, or
-- registered by the platform admin).
ALTER TABLE mps.member_profiles ADD COLUMN registered_merchant_id uuid REFERENCES mps.merchants (id);

-- Every probe goes by member (her bindings, passes, redemptions), so a big
-- merchant costs no more than a small one.
CREATE FUNCTION mps_internal.is_customer_of(p_member_id uuid, p_merchant_ids uuid[]) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (SELECT 1 FROM mps.member_profiles m
                 WHERE m.id = p_member_id AND m.registered_merchant_id = ANY (p_merchant_ids))
      OR EXISTS (SELECT 1 FROM mps.card_bindings b JOIN mps.transactions t ON t.card_id = b.card_id
                 WHERE b.member_id = p_member_id AND t.member_id = p_member_id
                   AND t.merchant_id = ANY (p_merchant_ids))
      OR EXISTS (SELECT 1 FROM mps.member_passes p JOIN mps.pass_topup_orders o ON o.pass_id = p.id
                 WHERE p.member_id = p_member_id AND o.merchant_id = ANY (p_merchant_ids))
      OR EXISTS (SELECT 1 FROM mps.pass_redemption_batches r
                 WHERE r.member_id = p_member_id AND r.merchant_id = ANY (p_merchant_ids))
$$;

-- '+8613800005301' -> '**********5301': enough for "the number ending 5301?".
CREATE FUNCTION mps_internal.mask_tail(p_value text, p_keep integer) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN length(p_value) <= p_keep THEN repeat('*', length(p_value))
              ELSE repeat('*', length(p_value) - p_keep) || right(p_value, p_keep) END
$$;

-- 'alice@example.com' -> 'a***@example.com'.
CREATE FUNCTION mps_internal.mask_email(p_value text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT left(p_value, 1) || '***' || substr(p_value, strpos(p_value, '@'))
$$;
