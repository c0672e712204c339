-- ---- recharge_card is the platform admin's alone ----------------------------
-- (Trust: a member or card admin must not credit a card without a verified
-- payment.) Taken from mps_member_app and from every role that holds a copy
-- of its rights (grant_role_privileges): every grantee except the ones that
-- also hold an admin-only right directly.
REVOKE EXECUTE ON FUNCTION mps.recharge_card(uuid, numeric, text, text, jsonb) FROM mps_member_app;
DO $recharge$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT a.grantee::regrole AS grantee
    FROM pg_proc p, aclexplode(p.proacl) a
    WHERE p.oid = 'mps.recharge_card(uuid, numeric, text, text, jsonb)'::regprocedure
      AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
      AND NOT EXISTS (
        SELECT 1 FROM pg_proc q, aclexplode(q.proacl) b
        WHERE q.oid = 'mps.grant_role_privileges(text, text)'::regprocedure
          AND b.grantee = a.grantee AND b.privilege_type = 'EXECUTE')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION mps.recharge_card(uuid, numeric, text, text, jsonb) FROM %s',
                   r.grantee);
  END LOOP;
END
$recharge$;

