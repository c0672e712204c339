#!/usr/bin/env bash
# Upgrade test, as an operator upgrades: the released 0.1.0 (its own mps.so,
# built from the release commit, and its own script) is installed and filled
# with the 0.1.0 demo's data; then this tree's mps.so replaces it and
# `ALTER EXTENSION mps UPDATE` runs. Checks, in TAP:
#   - the extension reports the new version;
#   - every row of every table survived (the columns 0.1.0 had, compared by
#     content, table by table);
#   - verify_ledger() and audit.verify() are clean;
#   - the upgraded catalog equals a fresh install's: a normalized
#     `pg_dump --schema-only --binary-upgrade` (which dumps an extension's
#     member objects one by one) of the extension's objects, diffed;
#   - the same tables are marked for pg_dump (pg_extension_config_dump).
# The harness then runs the regress suite on a database upgraded from 0.1.0
# (run_regress_upgraded).
#
# Needs the cluster of test/harness.sh (PGHOST/PGPORT/PGUSER exported), write
# access to $(pg_config --pkglibdir), and the release commit in git history.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$ROOT/tmp}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PGBIN/pg_config
# The commit 0.1.0 was released from (its sql/ concatenated is released/mps--0.1.0.sql).
RELEASE_0_1_0=4b5db437db682ecb2c366b4f00aec0555efe2281
OLD=$WORK/upgrade/mps-0.1.0
LIBDIR=$($PG_CONFIG --pkglibdir)
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At)

n=0
ok()     { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }
check()  { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

mkdir -p "$WORK/upgrade"
cd "$WORK/upgrade" || exit 1

# ---- the released binary --------------------------------------------------------
rm -rf "$OLD" && mkdir -p "$OLD"
# A shallow clone may lack the release commit: fetch it, or say the test
# could not run (a skip, not a pass: nothing below is checked then).
if ! git -C "$ROOT" cat-file -e "$RELEASE_0_1_0^{commit}" 2>/dev/null; then
  git -C "$ROOT" fetch -q --depth=1 origin "$RELEASE_0_1_0" >/dev/null 2>&1 || true
fi
if ! git -C "$ROOT" cat-file -e "$RELEASE_0_1_0^{commit}" 2>/dev/null; then
  echo "1..0 # SKIP release commit $RELEASE_0_1_0 is not in this clone's history (a shallow clone)"
  exit 0
fi
if ! git -C "$ROOT" archive "$RELEASE_0_1_0" | tar -x -C "$OLD"; then
  echo "Bail out! could not unpack release commit $RELEASE_0_1_0"
  exit 1
fi
make -C "$OLD" -s PG_CONFIG="$PG_CONFIG" >"$WORK/upgrade/build-0.1.0.log" 2>&1 \
  || { cat "$WORK/upgrade/build-0.1.0.log"; echo "Bail out! 0.1.0 does not build"; exit 1; }
cmp -s "$OLD/mps--0.1.0.sql" "$ROOT/released/mps--0.1.0.sql"
check "released/mps--0.1.0.sql is the release's script, unchanged" test $? -eq 0

cp "$LIBDIR/mps.so" "$WORK/upgrade/mps-current.so"
restore_current() { cp "$WORK/upgrade/mps-current.so" "$LIBDIR/mps.so"; }
trap restore_current EXIT
cp "$OLD/mps.so" "$LIBDIR/mps.so"

# ---- 0.1.0, filled with its demo's data --------------------------------------
for db in mps_up_old mps_up_fresh mps_regress_upgraded; do
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db" >/dev/null
done
"${PSQL[@]}" -d mps_up_old -c "CREATE EXTENSION mps VERSION '0.1.0' CASCADE" >/dev/null 2>&1
# An empty 0.1.0 for the regress suite, upgraded below with the other.
"${PSQL[@]}" -d mps_regress_upgraded -c "CREATE EXTENSION mps VERSION '0.1.0' CASCADE" >/dev/null 2>&1
"${PSQL[@]}" -d mps_up_old -f "$OLD/test/fixtures/supabase.sql" >/dev/null 2>&1
if "${PSQL[@]}" -d mps_up_old -f "$OLD/test/demo.sql" >"$WORK/upgrade/demo-0.1.0.log" 2>&1; then
  ok "0.1.0 installed and filled by its demo"
else
  tail -20 "$WORK/upgrade/demo-0.1.0.log"; not_ok "0.1.0 installed and filled by its demo"
fi

# One line per table: name, row count and a digest of its rows, over the
# columns the table has now (so that, after the upgrade, columns 0.2.0 adds
# are left out). Partitions are read through their parents.
# The column list of each table is saved before the upgrade and reused
# after it.
"${PSQL[@]}" -d mps_up_old >"$WORK/upgrade/columns.txt" <<'SQL'
SELECT c.oid::regclass::text || '|' || string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum)
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace IN ('mps'::regnamespace, 'audit'::regnamespace)
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition
GROUP BY c.oid ORDER BY 1;
SQL
snapshot() {
  local db=$1 out=$2 rel cols
  : >"$out"
  while IFS='|' read -r rel cols; do
    "${PSQL[@]}" -d "$db" -c "SELECT '$rel' || ' ' || count(*) || ' ' || coalesce(md5(string_agg(r, E'\n' ORDER BY r)), '-')
                               FROM (SELECT ROW($cols)::text AS r FROM $rel) s" >>"$out" 2>&1
  done <"$WORK/upgrade/columns.txt"
}
snapshot mps_up_old "$WORK/upgrade/rows-before.txt"

# ---- the upgrade --------------------------------------------------------------
restore_current
trap - EXIT
if "${PSQL[@]}" -d mps_up_old -c "ALTER EXTENSION mps UPDATE" >"$WORK/upgrade/update.log" 2>&1; then
  ok "ALTER EXTENSION mps UPDATE"
else
  cat "$WORK/upgrade/update.log"; not_ok "ALTER EXTENSION mps UPDATE"
fi
if "${PSQL[@]}" -d mps_regress_upgraded -c "ALTER EXTENSION mps UPDATE" >>"$WORK/upgrade/update.log" 2>&1; then
  ok "ALTER EXTENSION mps UPDATE of an empty 0.1.0 (the regress suite runs on it next)"
else
  cat "$WORK/upgrade/update.log"; not_ok "ALTER EXTENSION mps UPDATE of an empty 0.1.0"
fi
version=$("${PSQL[@]}" -d mps_up_old -c "SELECT extversion FROM pg_extension WHERE extname = 'mps'")
default=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/mps.control")
check "upgraded to the default version ($default)" test "$version" = "$default"

snapshot mps_up_old "$WORK/upgrade/rows-after.txt"
if diff "$WORK/upgrade/rows-before.txt" "$WORK/upgrade/rows-after.txt" >"$WORK/upgrade/rows.diff"; then
  ok "every table's rows unchanged ($(wc -l <"$WORK/upgrade/rows-after.txt") tables)"
else
  cat "$WORK/upgrade/rows.diff"; not_ok "every table's rows unchanged"
fi
rows=$(awk '{s += $2} END {print s}' "$WORK/upgrade/rows-after.txt")
check "the demo left rows to compare ($rows)" test "${rows:-0}" -gt 100

violations=$("${PSQL[@]}" -d mps_up_old -c "SELECT count(*) FROM mps.verify_ledger()")
check "verify_ledger() clean after the upgrade" test "$violations" = 0
"${PSQL[@]}" -d mps_up_old -c "SELECT audit.seal()" >/dev/null
intact=$("${PSQL[@]}" -d mps_up_old -c "SELECT intact FROM audit.verify()")
check "audit.verify() intact after the upgrade" test "$intact" = t

# ---- the catalog equals a fresh install's ------------------------------------------
"${PSQL[@]}" -d mps_up_fresh -c "CREATE EXTENSION mps CASCADE" >/dev/null 2>&1
"${PSQL[@]}" -d mps_up_fresh -f "$ROOT/test/fixtures/supabase.sql" >/dev/null 2>&1

# Relations in the extension's schemas that are not its members (partitions
# made later by ensure_partitions, ...) are left out of the comparison.
normalized_dump() {
  local db=$1 skip
  skip=$("${PSQL[@]}" -d "$db" -c "
    SELECT string_agg(c.relname, '|') FROM pg_class c
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    WHERE c.relnamespace IN ('mps'::regnamespace, 'mps_internal'::regnamespace, 'audit'::regnamespace)
      AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'i', 'I')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                        AND d.objid = coalesce(i.indrelid, c.oid) AND d.deptype = 'e')")
  "$PGBIN/pg_dump" --schema-only --binary-upgrade --no-comments -d "$db" | perl -e '
    my $skip = shift; my @blocks = (""); 
    while (<STDIN>) {
      next if /binary_upgrade_set_next_|^SELECT pg_catalog.setval|^\\(un)?restrict |^SET |^SELECT pg_catalog.set_config/;
      s/\b(oid|relfrozenxid|relminmxid) = \x27[0-9]+\x27/$1 = <n>/g;
      # The required extensions, in any order.
      s/(binary_upgrade_create_empty_extension\(.*ARRAY\[)([^\]]*)(\])/$1 . join(",", sort split(",", $2)) . $3/e;
      s/(binary_upgrade_create_empty_extension\(\x27mps\x27.*?, \x27[^\x27]*\x27, )\x27\{[0-9,]*\}\x27/$1<config oids>/;
      # The required extensions come in the physical order of pg_depend: sort them.
      s/(binary_upgrade_create_empty_extension\(\x27mps\x27.*ARRAY\[)([^\]]*)\]/$1 . join(",", sort split(\/,\/, $2)) . "]"/e;
      push @blocks, "" if /^-- Name: /;
      $blocks[-1] .= $_;
    }
    for my $b (@blocks) {
      if ($skip ne "" && $b =~ /^-- Name: (?:\S+ )?(\S+?);/m) {
        my $name = $1; next if $name =~ /^(?:$skip)$/;
      }
      print $b;
    }' "$skip"
}
normalized_dump mps_up_old >"$WORK/upgrade/schema-upgraded.sql"
normalized_dump mps_up_fresh >"$WORK/upgrade/schema-fresh.sql"
if diff -u "$WORK/upgrade/schema-fresh.sql" "$WORK/upgrade/schema-upgraded.sql" >"$WORK/upgrade/schema.diff"; then
  ok "upgraded catalog equals a fresh install's ($(grep -c 'ALTER EXTENSION mps ADD' "$WORK/upgrade/schema-fresh.sql") member objects)"
else
  head -80 "$WORK/upgrade/schema.diff"; not_ok "upgraded catalog equals a fresh install's"
fi

config_dump="SELECT string_agg(t::regclass::text || ':' || coalesce(c, ''), ' ' ORDER BY t::regclass::text)
              FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(t, c) WHERE e.extname = 'mps'"
up=$("${PSQL[@]}" -d mps_up_old -c "$config_dump")
fresh=$("${PSQL[@]}" -d mps_up_fresh -c "$config_dump")
check "the same tables are dumped by pg_dump" test "$up" = "$fresh"

echo "1..$n"
