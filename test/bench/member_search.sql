-- Member search on 1,000,000 members: a contains-search on name/phone served
-- by the trigram index, timed, with its plan. Own database (synthetic rows).
\set QUIET on
SET client_min_messages = warning;
INSERT INTO mps.member_profiles (name, phone)
SELECT 'Member ' || md5(i::text), '6' || lpad((i::bigint * 7919 % 100000000)::text, 8, '0')
FROM generate_series(1, 1000000) i;
INSERT INTO mps.member_profiles (name, phone) VALUES ('Stella Needle', '612345678');
VACUUM ANALYZE mps.member_profiles;
\set QUIET off
\timing on
SELECT name, phone FROM mps.search_members('stella nee');
SELECT count(*) AS hits FROM mps.search_members('2345678', 100);
\timing off
EXPLAIN (COSTS OFF)
SELECT m.id FROM mps.member_profiles m
WHERE lower(m.name) || ' ' || coalesce(m.phone, '') LIKE '%stella nee%';
