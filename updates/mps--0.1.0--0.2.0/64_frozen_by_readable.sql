-- ---- cards.frozen_by is readable like the card's other columns ---------------------
-- (mps.cards is granted column by column, 40_secret_columns.sql; frozen_by
-- came with 31_card_trust.sql.) To every role that reads the card's id.
DO $frozen_by$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT DISTINCT a.grantee::regrole AS grantee
    FROM pg_attribute att, aclexplode(att.attacl) a
    WHERE att.attrelid = 'mps.cards'::regclass AND att.attname = 'id'
      AND a.privilege_type = 'SELECT' AND a.grantee <> 0
  LOOP
    EXECUTE format('GRANT SELECT (frozen_by) ON mps.cards TO %s', r.grantee);
  END LOOP;
END
$frozen_by$;
