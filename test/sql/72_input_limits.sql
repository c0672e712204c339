-- Caller mistakes get the project's own codes, never a generic one: names
-- over their limit or with control characters, report and settlement dates
-- that are infinite or out of range, and p_tag's size and shape.
SET client_min_messages = warning;
SET timezone = 'UTC';
\set VERBOSITY terse
CREATE FUNCTION pg_temp.err(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_detail text;
BEGIN
  EXECUTE p_sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ': ' || SQLERRM || ' | ' || coalesce(v_detail, '');
END $$;

-- ---- names over 200 characters: MP009, not 23514 -----------------------------
SELECT pg_temp.err(format('SELECT mps.upsert_category(%L, %L)', 'LIM_CAT', repeat('c', 201)));
SELECT pg_temp.err(format('SELECT mps.upsert_product(%L, %L)', 'LIM_PROD', repeat('p', 201)));
SELECT id, length(name) FROM mps.upsert_product('LIM_PROD', repeat('p', 200));
SELECT code FROM mps.create_marketing_group('LIMITS', 'Limits');
SELECT pg_temp.err(format('SELECT mps.create_mg_rule(%L, %L, %L, %L, NULL, %L, 5)',
  'LIMITS', repeat('r', 201), 'ok', 'GLOBAL', 'PERCENTAGE'));
SELECT pg_temp.err(format('SELECT mps.create_mg_rule(%L, %L, %L, %L, NULL, %L, 5)',
  'LIMITS', 'ok', repeat('r', 101), 'GLOBAL', 'PERCENTAGE'));
SELECT pg_temp.err(format('SELECT mps.create_stamp_activity(%L, %L, 5, %L)',
  'LIMITS', repeat('s', 201), '[{"target_type": "PRODUCT", "target_id": "LIM_PROD"}]'));

-- ---- control characters in names that are printed: refused ------------------
SELECT pg_temp.err(format('SELECT mps.create_member_profile(p_name := %L)', E'Ann\nTOTAL 0.00'));
SELECT pg_temp.err(format('SELECT mps.create_member_profile(p_name := %L)', E'Ann\u001b[2J'));
SELECT pg_temp.err(format('SELECT mps.create_merchant(%L, %L)', 'LIMSHOP', E'Shop\tTwo'));
SELECT code FROM mps.create_merchant('LIMSHOP', 'Limit Shop', 'EUR');
SELECT pg_temp.err(format('SELECT mps.update_merchant(%L, p_name := %L)', 'LIMSHOP', E'Shop\r'));
SELECT pg_temp.err(format('SELECT mps.create_pass_plan(%L, %L, 5, 10.00, %L, p_products := %L)',
  'LIMPLAN', E'Five\u0085teas', 'EUR', '["LIM_PROD"]'));
SELECT pg_temp.err(format('SELECT mps.upsert_category(%L, %L)', 'LIM_CAT', E'Tea\u0007'));
-- printable text, accents and CJK are fine
SELECT member_id AS zoe FROM mps.create_member_profile(p_name := 'Zoë 张三') \gset
SELECT name FROM mps.member_profiles WHERE id = :'zoe';

-- ---- report and settlement dates: MP701, not 22008 or accepted ---------------
SELECT pg_temp.err($$SELECT * FROM mps.merchant_daily_report('LIMSHOP', '2025-01-01', 'infinity')$$);
SELECT pg_temp.err($$SELECT * FROM mps.merchant_daily_report('LIMSHOP', '-infinity', '2025-01-01')$$);
SELECT pg_temp.err($$SELECT * FROM mps.merchant_daily_report('LIMSHOP', '5874897-12-01', '5874897-12-31')$$);
SELECT count(*) FROM mps.merchant_daily_report('LIMSHOP', '2025-01-01', '2025-01-31');
SELECT pg_temp.err($$SELECT * FROM mps.generate_settlement('LIMSHOP', '-infinity', '2025-01-01')$$);
SELECT pg_temp.err($$SELECT * FROM mps.generate_settlement('LIMSHOP', '1969-12-31', '2025-01-01')$$);
SELECT count(*) FROM mps.settlements s JOIN mps.merchants m ON m.id = s.merchant_id WHERE m.code = 'LIMSHOP';

-- ---- p_tag: a JSON object of at most 2048 bytes as text ------------------------
SELECT card_id AS card FROM mps.create_member_profile(p_name := 'Tagger', p_currency := 'EUR',
  p_default_card_type := 'prepaid') \gset
SELECT pg_temp.err(format('SELECT mps.recharge_card(%L, 10.00, %L, %L, %L)', :'card', 'tag-1', 'cash',
  jsonb_build_object('note', repeat('x', 3000))));
SELECT pg_temp.err(format('SELECT mps.recharge_card(%L, 10.00, %L, %L, %L)', :'card', 'tag-2', 'cash',
  jsonb_build_object('note', repeat('x', 1000000))));
SELECT pg_temp.err(format('SELECT mps.recharge_card(%L, 10.00, %L, %L, %L)', :'card', 'tag-3', 'cash', '[1, 2]'));
SELECT pg_temp.err(format('SELECT mps.recharge_card(%L, 10.00, %L, %L, %L)', :'card', 'tag-4', 'cash', '"till 7"'));
SELECT tx_id AS tx, balance_after FROM mps.recharge_card(:'card', 10.00, 'tag-5', 'cash',
  jsonb_build_object('note', repeat('x', 2036))) \gset
SELECT :'balance_after' AS balance_after, length(tag::text) AS tag_bytes FROM mps.transactions WHERE id = :'tx';
SELECT qr_plain AS qr FROM mps.rotate_card_qr(:'card', 3600, true) \gset
SELECT pg_temp.err(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L, %L)', 'LIMSHOP', :'qr', 'tag-c1',
  jsonb_build_object('note', repeat('y', 5000))));
SELECT pg_temp.err(format('SELECT mps.merchant_charge_by_qr(%L, %L, 1.00, %L, %L)', 'LIMSHOP', :'qr', 'tag-c2', '42'));
SELECT tx_id AS tx FROM mps.merchant_charge_by_qr('LIMSHOP', :'qr', 1.00, 'tag-c3', '{"till": "7"}') \gset
SELECT final_amount, tag FROM mps.transactions WHERE id = :'tx';
-- only the two accepted calls moved money
SELECT count(*) AS movements FROM mps.transactions WHERE card_id = :'card';
