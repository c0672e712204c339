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
  mps.revoke_card_qr(uuid, boolean)
  TO mps_admin, mps_member_app;
-- Crediting a card without a verified payment is the platform admin's alone.
GRANT EXECUTE ON FUNCTION mps.recharge_card(uuid, numeric, text, text, jsonb) TO mps_admin;
GRANT EXECUTE ON FUNCTION
  mps.merchant_charge_by_qr(text, text, numeric, text, jsonb, text, jsonb),
  mps.merchant_refund_tx(text, uuid, numeric, text, text)
  TO mps_admin, mps_merchant_api;
GRANT EXECUTE ON FUNCTION mps.cron_rotate_qr_tokens(integer) TO mps_admin;
