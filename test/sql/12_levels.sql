-- 12_levels: list_membership_levels, set_membership_levels.
\set lv_sub  'ee000000-0000-4000-8000-0000000000f1'
\set op_sub  '0be2a702-0000-4000-8000-0000000000a2'

-- the ladder installed with the extension
SELECT * FROM mps.list_membership_levels();

-- three members whose standard cards hold 0, 1500 and 25000 points, and a prepaid card
SELECT card_id AS c0 FROM mps.create_member_profile('Level Zero', p_auth_user_id := :'lv_sub') \gset
SELECT card_id AS c1 FROM mps.create_member_profile('Level One') \gset
SELECT card_id AS c2 FROM mps.create_member_profile('Level Two') \gset
SELECT card_id AS cp FROM mps.create_member_profile('Level Prepaid', p_default_card_type := 'prepaid') \gset
-- (test fixture: points set directly; restored at the end of this file)
UPDATE mps.cards SET points = 1500 WHERE id = :'c1';
UPDATE mps.cards SET points = 25000 WHERE id = :'c2';
CREATE TEMP VIEW card_levels AS
  SELECT CASE c.id WHEN :'c0' THEN 'c0' WHEN :'c1' THEN 'c1' WHEN :'c2' THEN 'c2' WHEN :'cp' THEN 'cp' END AS card,
         c.card_type, c.points, l.code AS level
  FROM mps.cards c LEFT JOIN mps.membership_levels l ON l.id = c.level_id
  WHERE c.id IN (:'c0', :'c1', :'c2', :'cp') ORDER BY 1;
-- before: every card was issued at BRONZE (levels move with points in the money core)
SELECT * FROM card_levels;

-- ===== a valid ladder replaces the old one and recomputes every personal card =====
SELECT * FROM mps.set_membership_levels($$[
  {"code": "BASIC", "name": "Basic", "min_points": 0, "max_points": 999},
  {"code": "VIP", "name": " VIP ", "min_points": 1000, "max_points": 9999, "discount_bp": 250, "earn_rate_bp": 11000},
  {"code": "VVIP", "name": "Very VIP", "min_points": 10000, "max_points": null, "discount_bp": 1000, "earn_rate_bp": 20000}
]$$);
SELECT * FROM card_levels;
SELECT * FROM mps.list_membership_levels();
-- the member sees the new level and the next one
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'lv_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_member;
SELECT level_code, level_name, discount_bp, next_level_code, next_level_points FROM mps.get_my_cards();
-- members may read the ladder
SELECT code, min_points, max_points FROM mps.list_membership_levels();
COMMIT;
-- codes that stay keep their row; a level can take a code back
SELECT id AS vip_id FROM mps.membership_levels WHERE code = 'VIP' \gset
SELECT * FROM mps.set_membership_levels($$[
  {"code": "VIP", "name": "VIP", "min_points": 0, "max_points": 1499},
  {"code": "BASIC", "name": "Basic", "min_points": 1500, "max_points": null, "discount_bp": 100}
]$$);
SELECT id = :vip_id AS vip_same_row FROM mps.membership_levels WHERE code = 'VIP';
SELECT * FROM card_levels;
-- a single open-ended level is a valid ladder
SELECT * FROM mps.set_membership_levels('[{"code": "ALL", "name": "Everyone", "min_points": 0, "max_points": null}]');
SELECT * FROM card_levels;
-- each change is audited with the ladder before and after
SELECT jsonb_array_length(e.before->'levels') AS levels_before, jsonb_array_length(e.after->'levels') AS levels_after,
       e.after->'levels'->0->>'code' AS first_after, e.actor_admin
FROM audit.event_log e WHERE e.action = 'levels.set' ORDER BY e.id;

-- ===== invalid ladders: MP601, nothing changes =====
SELECT test_counts() AS before \gset
SELECT test_err($$SELECT mps.set_membership_levels(NULL)$$);
SELECT test_err($$SELECT mps.set_membership_levels('[]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('{"code": "A"}')$$);
SELECT test_err($$SELECT mps.set_membership_levels('"levels"')$$);
-- malformed levels
SELECT test_err($$SELECT mps.set_membership_levels('[42]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"name": "No code", "min_points": 0, "max_points": null}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "min_points": 0, "max_points": null}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "max_points": null}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": "0", "max_points": null}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": "many"}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": null, "discount_bp": "5%"}]')$$);
-- bad values
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A B", "name": "A", "min_points": 0, "max_points": null}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": " ", "min_points": 0, "max_points": null}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": -1, "max_points": null}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0.5, "max_points": null}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": null, "discount_bp": 10001}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": null, "earn_rate_bp": 1000001}]')$$);
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": null, "discount_bp": -5}]')$$);
-- does not start at 0
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 10, "max_points": null}]')$$);
-- a gap
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": 99},
                                                     {"code": "B", "name": "B", "min_points": 101, "max_points": null}]')$$);
-- an overlap
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": 100},
                                                     {"code": "B", "name": "B", "min_points": 100, "max_points": null}]')$$);
-- not sorted
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "B", "name": "B", "min_points": 100, "max_points": null},
                                                     {"code": "A", "name": "A", "min_points": 0, "max_points": 99}]')$$);
-- max below min
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": 99},
                                                     {"code": "B", "name": "B", "min_points": 100, "max_points": 50},
                                                     {"code": "C", "name": "C", "min_points": 51, "max_points": null}]')$$);
-- the last level is not open-ended
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": 99},
                                                     {"code": "B", "name": "B", "min_points": 100, "max_points": 199}]')$$);
-- a level after the open-ended one
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": null},
                                                     {"code": "B", "name": "B", "min_points": 100, "max_points": null}]')$$);
-- a duplicate code
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "A", "name": "A", "min_points": 0, "max_points": 99},
                                                     {"code": "A", "name": "A again", "min_points": 100, "max_points": null}]')$$);
SELECT test_counts() = :'before' AS nothing_changed;
SELECT code FROM mps.list_membership_levels();

-- ===== only the platform admin sets levels: 42501 =====
\o /dev/null
SELECT mps.assign_merchant_user('SHOP01', :'op_sub');
\o
SELECT test_counts() AS before \gset
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'lv_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_member;
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "ME", "name": "Me", "min_points": 0, "max_points": null}]')$$);
COMMIT;
BEGIN;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub":"' || :'op_sub' || '","role":"authenticated"}', true) IS NOT NULL AS as_operator;
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "ME", "name": "Me", "min_points": 0, "max_points": null}]')$$);
COMMIT;
BEGIN;
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role":"anon"}', true) IS NOT NULL AS anon;
SELECT test_err($$SELECT mps.set_membership_levels('[{"code": "ME", "name": "Me", "min_points": 0, "max_points": null}]')$$);
SELECT test_err($$SELECT * FROM mps.list_membership_levels()$$);
COMMIT;
SELECT test_counts() = :'before' AS nothing_changed;
-- service_role (PostgREST admin) may
BEGIN;
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role":"service_role"}', true) IS NOT NULL AS service_role;
SELECT code FROM mps.set_membership_levels('[{"code": "ALL", "name": "All members", "min_points": 0, "max_points": null}]');
COMMIT;

-- ===== restore: points back to 0, the installed ladder back =====
UPDATE mps.cards SET points = 0 WHERE id IN (:'c1', :'c2');
SELECT code FROM mps.set_membership_levels($$[
  {"code": "BRONZE", "name": "Bronze", "min_points": 0, "max_points": 999, "discount_bp": 0, "earn_rate_bp": 10000},
  {"code": "SILVER", "name": "Silver", "min_points": 1000, "max_points": 4999, "discount_bp": 300, "earn_rate_bp": 10000},
  {"code": "GOLD", "name": "Gold", "min_points": 5000, "max_points": 19999, "discount_bp": 500, "earn_rate_bp": 12000},
  {"code": "PLATINUM", "name": "Platinum", "min_points": 20000, "max_points": null, "discount_bp": 800, "earn_rate_bp": 15000}
]$$);
SELECT * FROM card_levels;
-- every personal card has the level its points call for
SELECT count(*) AS misplaced_cards FROM mps.cards c
WHERE c.card_type = 'standard' AND c.level_id IS DISTINCT FROM mps_internal.level_for_points(c.points);
DROP VIEW card_levels;
