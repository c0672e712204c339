#!/usr/bin/env bash
# Dump and restore: a database filled by the demo, with a customized level
# ladder and currencies, is dumped with `pg_dump -Fc` and restored with a plain
# `pg_restore` into a new database. TAP: the restore reports no error, every
# table of the extension has the same rows (every column compared), and
# verify_ledger() and audit.verify() are clean on the copy. Restored in the
# month it was dumped in, with the install-time partitions only (partitions
# made later by ensure_partitions, and a restore in a later month, are not
# covered yet: README, Operations).
#
# Needs the cluster of test/harness.sh (PGHOST/PGPORT/PGUSER exported).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$ROOT/tmp}/restore
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At)
mkdir -p "$WORK"

n=0
ok()     { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }
check()  { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

for db in mps_dump_src mps_dump_dst; do
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db" >/dev/null
done
"${PSQL[@]}" -d mps_dump_src -f "$ROOT/test/fixtures/supabase.sql" >/dev/null 2>&1
if "${PSQL[@]}" -d mps_dump_src -f "$ROOT/test/demo.sql" >"$WORK/demo.log" 2>&1; then
  ok "the demo filled the database"
else
  tail -20 "$WORK/demo.log"; not_ok "the demo filled the database"
fi
# Customized currencies and levels (the demo already set a ladder of its own).
"${PSQL[@]}" -d mps_dump_src >/dev/null <<'SQL'
UPDATE mps.currencies SET max_amount = max_amount / 2 WHERE code = 'CNY';
SELECT mps.set_membership_levels($$[
  {"code": "STEEL", "name": "Steel", "min_points": 0, "max_points": 99, "discount_bp": 0, "earn_rate_bp": 10000},
  {"code": "IRON",  "name": "Iron",  "min_points": 100, "max_points": null, "discount_bp": 200, "earn_rate_bp": 12000}
]$$);
SELECT audit.seal();
SQL

# Every table's rows, one line per table: name, count, digest of every column.
snapshot() {
  "${PSQL[@]}" -d "$1" <<'SQL'
SELECT format('SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(r, E''\n'' ORDER BY r)), ''-'')
               FROM (SELECT t::text AS r FROM %s t) s;', c.oid::regclass, c.oid::regclass)
FROM pg_class c
WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace)
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.oid::regclass::text
\gexec
SQL
}
snapshot mps_dump_src >"$WORK/rows-src.txt"

"$PGBIN/pg_dump" -Fc -d mps_dump_src -f "$WORK/mps.dump" 2>"$WORK/dump.log"
check "pg_dump -Fc succeeded" test $? -eq 0
"$PGBIN/pg_restore" -d mps_dump_dst "$WORK/mps.dump" >"$WORK/restore.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && ! grep -qi 'error' "$WORK/restore.log"; then
  ok "pg_restore reported no error"
else
  head -20 "$WORK/restore.log" | sed 's/^/#   /'; not_ok "pg_restore reported no error"
fi

snapshot mps_dump_dst >"$WORK/rows-dst.txt"
if diff "$WORK/rows-src.txt" "$WORK/rows-dst.txt" >"$WORK/rows.diff"; then
  ok "every table has the same rows ($(wc -l <"$WORK/rows-dst.txt") tables, $(awk '{s += $2} END {print s}' "$WORK/rows-dst.txt") rows)"
else
  sed 's/^/#   /' "$WORK/rows.diff" | head -40; not_ok "every table has the same rows"
fi
levels=$("${PSQL[@]}" -d mps_dump_dst -c "SELECT string_agg(code, ',' ORDER BY min_points) FROM mps.membership_levels")
check "the customized ladder came back ($levels)" test "$levels" = "STEEL,IRON"
violations=$("${PSQL[@]}" -d mps_dump_dst -c "SELECT count(*) FROM mps.verify_ledger()")
check "verify_ledger() clean on the copy" test "$violations" = 0
intact=$("${PSQL[@]}" -d mps_dump_dst -c "SELECT intact FROM audit.verify()")
check "audit.verify() intact on the copy" test "$intact" = t
# The copy keeps working: a new audit event and a seal extend the restored chain.
"${PSQL[@]}" -d mps_dump_dst -c "SELECT mps.create_merchant('AFTERRESTORE', 'After Restore')" >/dev/null 2>&1
sealed=$("${PSQL[@]}" -d mps_dump_dst -c "SELECT audit.seal() > 0")
intact=$("${PSQL[@]}" -d mps_dump_dst -c "SELECT intact FROM audit.verify()")
check "the copy seals new events onto the restored chain" test "$sealed/$intact" = "t/t"
echo "1..$n"
