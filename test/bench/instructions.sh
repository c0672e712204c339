#!/bin/bash
# Instructions per transaction: the bench's own scripts, one client, on a
# small cluster of their own whose server runs under valgrind's callgrind.
# Each script runs twice (n1, then n2 transactions, each on a new
# connection); the difference of the two backends' instruction counts over
# n2 - n1 is one transaction's, with connection start and first-use costs
# gone. Counts do not depend on the machine's load, so they compare one
# build with another and MPS with its references to a fraction of a percent;
# what they leave out is waiting (locks, WAL flushes) and cache misses.
#
#   bash test/bench/instructions.sh OUT.md      (run.sh calls it last)
#
# Needs valgrind (the harness installs it for `make bench`).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
OUT=${1:?output file}
WORK=${MPS_WORK_DIR:-$ROOT/tmp}/bench-instructions
DATA=$WORK/data
# The first free port after the bench cluster's.
PORT=$(( ${PGPORT:-54329} + 1 ))
while "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; [ $? -ne 2 ]; do PORT=$((PORT + 1)); done
OPERATOR=b0000000-0000-4000-8000-000000000001
CLAIMS="-c role=authenticated -c request.jwt.claims={\"sub\":\"$OPERATOR\",\"role\":\"authenticated\"}"

die() { echo "instructions: $*" >&2; exit 1; }
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
sql() { "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d "$1" -c "$2"; }
command -v valgrind >/dev/null 2>&1 || die "valgrind is not installed"

stop() {
  [ -f "$DATA/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 300 stop >/dev/null 2>&1
}
trap stop EXIT

# ---- the cluster and its data (no valgrind yet) ---------------------------
stop
rm -rf "$WORK" && mkdir -p "$WORK/cg"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$WORK"
as_owner "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log"; die "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA'
shared_buffers = 128MB
autovacuum = off
max_connections = 10
EOF
as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null || die "start failed"
sql postgres "CREATE DATABASE mps_bench" >/dev/null || die "create database failed"
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d mps_bench \
  -f "$HERE/setup.sql" >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log"; die "setup.sql failed"; }
"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -v n=400 -h 127.0.0.1 -p "$PORT" -U postgres -d mps_bench \
  -f "$HERE/provision.sql" >"$WORK/provision.log" 2>&1 || { cat "$WORK/provision.log"; die "provision.sql failed"; }
MERCHANT_ID=$(sql mps_bench "SELECT value FROM bench.params WHERE name = 'merchant_id'")
NCODES=$(sql mps_bench "SELECT count(*) FROM bench.codes")
# Payments for the refunds (untimed, before valgrind).
"$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -M prepared -c 1 -t 100 \
  -f "$HERE/charge_distinct.sql" mps_bench >"$WORK/payments.log" 2>&1 || { cat "$WORK/payments.log"; die "payments failed"; }
NPAY=$(sql mps_bench "INSERT INTO bench.payments (n, tx_id)
  SELECT row_number() OVER (ORDER BY t.created_at, t.id), t.id FROM mps.transactions t
  WHERE t.kind = 'payment' AND t.idempotency_key LIKE 'dc-%';
  SELECT count(*) FROM bench.payments")
sql mps_bench "VACUUM ANALYZE" || die "vacuum failed"
stop

# ---- the same server under callgrind -----------------------------------------
as_owner valgrind --tool=callgrind --callgrind-out-file="$WORK/cg/%p.out" \
  "$PGBIN/postgres" -D "$DATA" >"$WORK/valgrind.log" 2>&1 &
for _ in $(seq 1 120); do
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
  sleep 1
done
"$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || die "server under valgrind did not start"

# backend_ir N ARGS...: run a script for N transactions, one client; prints
# the instruction count of the backend that ran it. round=N keeps the two
# runs' idempotency keys apart (a repeated key would replay, not move money).
backend_ir() {
  local n=$1 before after f best=0 ir
  shift
  before=$(ls "$WORK/cg")
  "$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -n -M prepared -c 1 -t "$n" -D round="$n" \
    "$@" mps_bench \
    >"$WORK/pgbench.log" 2>&1 || { cat "$WORK/pgbench.log" >&2; return 1; }
  # The backend writes its counts when it exits, just after pgbench disconnects.
  for _ in $(seq 1 60); do
    after=$(ls "$WORK/cg")
    [ "$after" != "$before" ] && break
    sleep 1
  done
  sleep 1
  for f in $(comm -13 <(echo "$before") <(ls "$WORK/cg")); do
    ir=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$WORK/cg/$f")
    [ -n "$ir" ] && [ "$ir" -gt "$best" ] && best=$ir
  done
  [ "$best" -gt 0 ] && echo "$best"
}
declare -A IR
measure() { # name n1 n2 pgbench args...
  local name=$1 n1=$2 n2=$3 a b
  shift 3
  a=$(backend_ir "$n1" "$@") && b=$(backend_ir "$n2" "$@") || { echo "  $name: failed" >&2; return; }
  IR[$name]=$(( (b - a) / (n2 - n1) ))
  echo "  $name: ${IR[$name]} instructions per transaction"
}
echo "instructions per transaction (callgrind, one client)"
measure charge-limit 10 60 -D ncodes="$NCODES" -D merchant_id="$MERCHANT_ID" -f "$HERE/charge_limit.sql"
measure contract-limit 10 60 -D merchant_id="$MERCHANT_ID" -D operator_id="$OPERATOR" \
  -f "$HERE/contract_limit.sql"
PGOPTIONS=$CLAIMS measure "charge distinct" 10 60 -f "$HERE/charge_distinct.sql"
measure write-limit 50 300 -D ncodes="$NCODES" -D merchant_id="$MERCHANT_ID" -f "$HERE/write_limit.sql"
measure refund-limit 50 300 -D npay="$NPAY" -D merchant_id="$MERCHANT_ID" -D operator_id="$OPERATOR" \
  -D n=0 -f "$HERE/refund_limit.sql"
PGOPTIONS=$CLAIMS measure refund 50 300 -D npay="$NPAY" -D n=0 -f "$HERE/refund.sql"
measure recharge-limit 50 300 -D ncodes="$NCODES" -D n=0 -f "$HERE/recharge_limit.sql"
measure recharge 50 300 -D ncodes="$NCODES" -D n=0 -f "$HERE/recharge.sql"
stop

ratio() { # run reference -> reference's count / run's
  [ -n "$2" ] && [ -n "${IR[$1]:-}" ] && [ -n "${IR[$2]:-}" ] &&
    awk "BEGIN { printf \"%.2f\", ${IR[$2]} / ${IR[$1]} }"
}
row() { # name reference target
  local r k=failed
  r=$(ratio "$1" "$2")
  [ -n "${IR[$1]:-}" ] && k=$(awk "BEGIN { printf \"%.0f\", ${IR[$1]} / 1000 }")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$k" "${2:-—}" "${r:+${r}x}" "${3:+>= ${3}x}"
}
{
  echo
  echo "## Instructions per transaction"
  echo
  echo "One client, the server under callgrind (test/bench/instructions.sh), on a small cluster of"
  echo "its own: instructions one transaction costs the backend. The ratio is the reference's count"
  echo "over the run's, so it reads like a throughput ratio on a machine where only the backend's"
  echo "instructions count (no waiting, no cache misses)."
  echo
  echo "| run | thousand instructions | reference | ratio | target |"
  echo "|---|---:|---|---:|---|"
  row charge-limit "" ""
  row contract-limit charge-limit ""
  row "charge distinct" charge-limit 0.95
  row write-limit "" ""
  row refund-limit write-limit ""
  row recharge-limit write-limit ""
  row refund write-limit 0.8
  row recharge write-limit 0.8
  echo
  echo "- charge distinct / contract-limit = $(ratio "charge distinct" contract-limit)x;" \
       "refund / refund-limit = $(ratio refund refund-limit)x;" \
       "recharge / recharge-limit = $(ratio recharge recharge-limit)x"
} >>"$OUT"
