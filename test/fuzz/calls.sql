-- Every SQL-callable function of MPS (schemas mps, mps_internal, audit), as
-- calls to make with NULLs and extreme values: one call with every argument
-- NULL, then, for each argument in turn, each extreme value of its type with
-- the other arguments at an ordinary value. Trigger functions are left out
-- (PostgreSQL refuses to call them directly). Output: one call per line.
WITH values_of(typ, ord, v) AS (VALUES
  ('boolean', 1, 'true'), ('boolean', 2, 'false'),
  ('smallint', 1, '1'), ('smallint', 2, '-32768'), ('smallint', 3, '32767'), ('smallint', 4, '0'),
  ('integer', 1, '1'), ('integer', 2, '-2147483648'), ('integer', 3, '2147483647'), ('integer', 4, '0'),
  ('integer', 5, '-1'), ('integer', 6, '40'), ('integer', 7, '100000'),
  ('bigint', 1, '1'), ('bigint', 2, '-9223372036854775808'), ('bigint', 3, '9223372036854775807'),
  ('bigint', 4, '0'), ('bigint', 5, '-1'),
  ('numeric', 1, '1.00'), ('numeric', 2, '''NaN'''), ('numeric', 3, '1e300'), ('numeric', 4, '-1e300'),
  ('numeric', 5, '0.000000000001'), ('numeric', 6, '0'), ('numeric', 7, '-0.01'),
  ('numeric', 8, '92233720368547758.07'),
  ('text', 1, '''CNY'''), ('text', 2, ''''''), ('text', 3, 'repeat(''x'', 100000)'),
  ('text', 4, 'E''\x01\x7f\n\t'''), ('text', 5, '''%s%n%d'''), ('text', 6, '''-infinity'''),
  ('character', 1, '''CNY'''), ('character', 2, ''''''),
  ('uuid', 1, '''00000000-0000-0000-0000-000000000000'''), ('uuid', 2, 'gen_random_uuid()'),
  ('uuid[]', 1, '''{}'''), ('uuid[]', 2, 'ARRAY[NULL]::uuid[]'),
  ('uuid[]', 3, 'ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 1000))'),
  ('jsonb', 1, '''{}'''), ('jsonb', 2, '''[]'''), ('jsonb', 3, '''null'''), ('jsonb', 4, '''"x"'''),
  ('jsonb', 5, '''1e1000'''),
  ('jsonb', 6, 'repeat(''['', 5000)::text || repeat('']'', 5000)'),
  ('jsonb', 7, '''[{"product_id":"A","category_id":"B","quantity":2147483647,"unit_price":99999999999}]'''),
  ('jsonb', 8, '''[{"method":"cash","amount":-1},{"method":"card","amount":"x"}]'''),
  ('jsonb', 9, '''[{"code":"A","name":"A","min_points":-9223372036854775808,"max_points":9223372036854775807}]'''),
  ('jsonb', 10, '(SELECT jsonb_agg(jsonb_build_object(''product_id'', i, ''quantity'', 1, ''unit_price'', 0.01)) FROM generate_series(1, 3000) i)'),
  ('timestamp with time zone', 1, 'now()'), ('timestamp with time zone', 2, '''infinity'''),
  ('timestamp with time zone', 3, '''-infinity'''), ('timestamp with time zone', 4, '''4713-01-01 00:00 BC'''),
  ('timestamp with time zone', 5, '''294276-12-31 23:59'''),
  ('date', 1, 'current_date'), ('date', 2, '''infinity'''), ('date', 3, '''-infinity'''),
  ('date', 4, '''5874897-12-31'''), ('date', 5, '''4713-01-01 BC''')
),
fns AS (
  SELECT p.oid, p.oid::regprocedure::text AS sig, p.proname, n.nspname, p.pronargs,
         p.proargtypes::oid[] AS argtypes, p.proretset
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname IN ('mps', 'mps_internal', 'audit')
    AND p.prorettype <> 'pg_catalog.trigger'::regtype AND p.prokind = 'f'
),
args AS (
  SELECT f.oid, a.pos, a.t, format_type(a.t, NULL) AS typ
  FROM fns f, unnest(f.argtypes) WITH ORDINALITY AS a(t, pos)
),
-- Values of a type: its list above, the labels of an enum, or a NULL row of a composite.
typed(oid, pos, ord, v) AS (
  SELECT a.oid, a.pos, v.ord, '(' || v.v || ')::' || a.typ FROM args a JOIN values_of v ON v.typ = a.typ
  UNION ALL
  SELECT a.oid, a.pos, e.enumsortorder::int, quote_literal(e.enumlabel) || '::' || a.typ
  FROM args a JOIN pg_enum e ON e.enumtypid = a.t
  UNION ALL
  SELECT a.oid, a.pos, 1, 'ROW(' || (SELECT string_agg('NULL', ',') FROM pg_attribute
                                     WHERE attrelid = t.typrelid AND attnum > 0 AND NOT attisdropped)
                        || ')::' || a.typ
  FROM args a JOIN pg_type t ON t.oid = a.t WHERE t.typtype = 'c'
),
ordinary AS (SELECT DISTINCT ON (oid, pos) oid, pos, v FROM typed ORDER BY oid, pos, ord),
call_args AS (
  -- every argument NULL
  SELECT f.oid, 0 AS pos, 0 AS ord,
         (SELECT string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY i)
          FROM unnest(f.argtypes) WITH ORDINALITY u(t, i)) AS list
  FROM fns f
  UNION ALL
  -- one argument at each of its values, the others ordinary
  SELECT t.oid, t.pos, t.ord,
         (SELECT string_agg(CASE WHEN a.pos = t.pos THEN t.v ELSE coalesce(o.v, 'NULL::' || a.typ) END, ', ' ORDER BY a.pos)
          FROM args a LEFT JOIN ordinary o ON o.oid = a.oid AND o.pos = a.pos
          WHERE a.oid = t.oid)
  FROM typed t
)
SELECT format('SELECT %s FROM %I.%I(%s) r;',
              CASE WHEN f.proretset THEN 'count(*)' ELSE 'r IS NULL' END,
              f.nspname, f.proname, coalesce(c.list, ''))
FROM call_args c JOIN fns f ON f.oid = c.oid
ORDER BY f.sig, c.pos, c.ord;
