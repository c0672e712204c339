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
