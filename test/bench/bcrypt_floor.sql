-- bcrypt-floor: look up a charge's code by its lookup id and bcrypt-verify its
-- secret; nothing else. 1/count(*) fails the run if a code does not verify.
\set i random(1, :ncodes)
SELECT 1 / count(*)
FROM bench.codes b
JOIN mps.card_qr_codes q ON q.lookup_id = split_part(b.qr, '.', 2)
WHERE b.id = :i
  AND bench.bcrypt_ok(split_part(b.qr, '.', 3), q.secret_hash);
