-- Marketing-group pricing benchmark: 1,000,000 lines against a group with 10
-- stacked rules (5 percentages, 5 fixed amounts, mixed scopes), priced in one
-- query by the C engine, and by the same rules written in PL/pgSQL. Prints
-- lines per second for each and their ratio. Not a test: it asserts nothing
-- about speed, but it checks that both give the same total.
\set QUIET on
SET client_min_messages = warning;
SELECT mps.upsert_category('C' || i, 'Category ' || i) FROM generate_series(0, 9) i \g /dev/null
SELECT mps.upsert_product('P' || i, 'Product ' || i, 'C' || (i % 10)) FROM generate_series(0, 49) i \g /dev/null
SELECT mps.create_marketing_group('BENCH10', 'Ten stacked rules') \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'all 5%', 'a', 'GLOBAL', NULL, 'PERCENTAGE', 5) \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'c1 10%', 'b', 'CATEGORY', 'C1', 'PERCENTAGE', 10) \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'c2 12.5%', 'c', 'CATEGORY', 'C2', 'PERCENTAGE', 12.5) \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'p3 7%', 'd', 'PRODUCT', 'P3', 'PERCENTAGE', 7) \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'all 3.33%', 'e', 'GLOBAL', NULL, 'PERCENTAGE', 3.33) \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'all 0.05 off', 'f', 'GLOBAL', NULL, 'FIXED_AMOUNT', 0.05, 'CNY') \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'c3 0.20 off', 'g', 'CATEGORY', 'C3', 'FIXED_AMOUNT', 0.20, 'CNY') \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'c1 0.10 off', 'h', 'CATEGORY', 'C1', 'FIXED_AMOUNT', 0.10, 'CNY') \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'p7 1.00 off', 'i', 'PRODUCT', 'P7', 'FIXED_AMOUNT', 1.00, 'CNY') \g /dev/null
SELECT mps.create_mg_rule('BENCH10', 'all 0.01 off', 'j', 'GLOBAL', NULL, 'FIXED_AMOUNT', 0.01, 'CNY') \g /dev/null
SELECT id AS gid FROM mps.marketing_groups WHERE code = 'BENCH10' \gset

-- The same rules, the plain way: PL/pgSQL over numeric, rules read per line.
CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.mg_line_final_plpgsql(p_group integer, p_product text, p_category text,
                                                       p_quantity integer, p_unit_price bigint)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
  v numeric := p_unit_price::numeric * p_quantity;
  r record;
BEGIN
  FOR r IN SELECT * FROM mps.mg_discount_rules
           WHERE marketing_group_id = p_group AND is_active AND deleted_at IS NULL
             AND (product_scope = 'GLOBAL'
                  OR (product_scope = 'CATEGORY' AND target_id = p_category)
                  OR (product_scope = 'PRODUCT' AND target_id = p_product))
           ORDER BY adjustment_type DESC, id   -- PERCENTAGE before FIXED_AMOUNT
  LOOP
    IF r.adjustment_type = 'PERCENTAGE' THEN
      v := v * (10000 - r.value_bp) / 10000;
    ELSE
      v := greatest(v - r.amount_minor * p_quantity, 0);
    END IF;
  END LOOP;
  RETURN round(v)::bigint;
END $$;

CREATE TEMP TABLE bench_lines AS
  SELECT 'P' || (i % 50) AS product, 'C' || (i % 50 % 10) AS category, 1 + i % 3 AS qty, 100 + (i::bigint * 7919) % 5000 AS price
  FROM generate_series(1, 1000000) i;
ANALYZE bench_lines;

CREATE TEMP TABLE bench_result (engine text, lines bigint, seconds numeric, total numeric);
DO $$
DECLARE
  t0 timestamptz;
  v_total numeric;
  v_gid integer := (SELECT id FROM mps.marketing_groups WHERE code = 'BENCH10');
BEGIN
  t0 := clock_timestamp();
  SELECT sum(mps_internal.mg_line_final(v_gid, product, category, qty, price, 'CNY')) INTO v_total FROM bench_lines;
  INSERT INTO bench_result VALUES ('C engine', 1000000, extract(epoch FROM clock_timestamp() - t0), v_total);
  t0 := clock_timestamp();
  SELECT sum(bench.mg_line_final_plpgsql(v_gid, product, category, qty, price)) INTO v_total FROM bench_lines;
  INSERT INTO bench_result VALUES ('PL/pgSQL', 1000000, extract(epoch FROM clock_timestamp() - t0), v_total);
END $$;
\set QUIET off
SELECT engine, lines, round(seconds, 3) AS seconds, round(lines / seconds) AS lines_per_second, total
  FROM bench_result ORDER BY engine;
SELECT round((SELECT seconds FROM bench_result WHERE engine = 'PL/pgSQL')
             / (SELECT seconds FROM bench_result WHERE engine = 'C engine'), 1) AS c_speedup,
       (SELECT count(DISTINCT total) FROM bench_result) = 1 AS same_total;
