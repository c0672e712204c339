-- ---- last: the initial privileges as a fresh install records them -----------
-- A GRANT or REVOKE in an extension script records the object's whole ACL as
-- its initial privileges (pg_init_privs), copies to API roles included; then
-- pg_dump would leave those copies out and a restore would lose them. A fresh
-- install records grants to the extension's owner and its own roles only.
UPDATE pg_catalog.pg_init_privs ip
SET initprivs = (SELECT array_agg(makeaclitem(a.grantee, a.grantor, a.privilege_type, a.is_grantable))
                 FROM aclexplode(ip.initprivs) a
                 WHERE a.grantee = 0
                    OR a.grantee IN (SELECT oid FROM pg_roles
                                     WHERE rolname IN ('mps_admin', 'mps_merchant_api', 'mps_member_app'))
                    OR a.grantee = (SELECT extowner FROM pg_extension WHERE extname = 'mps'))
WHERE ip.privtype = 'e'
  AND EXISTS (SELECT 1 FROM pg_depend d
              WHERE d.classid = ip.classoid AND d.objid = ip.objoid AND d.deptype = 'e'
                AND d.refclassid = 'pg_extension'::regclass
                AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'mps'))
  AND EXISTS (SELECT 1 FROM aclexplode(ip.initprivs) a
              WHERE a.grantee <> 0
                AND a.grantee NOT IN (SELECT oid FROM pg_roles
                                      WHERE rolname IN ('mps_admin', 'mps_merchant_api', 'mps_member_app'))
                AND a.grantee <> (SELECT extowner FROM pg_extension WHERE extname = 'mps'));

NOTIFY pgrst, 'reload schema';
