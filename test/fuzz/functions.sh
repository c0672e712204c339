#!/usr/bin/env bash
# Calls every SQL-callable function of MPS with NULLs and extreme values
# (test/fuzz/calls.sql makes the calls), as a superuser and as a signed-in
# member through the PostgREST path, each call in a transaction rolled back.
# TAP: the server never crashes (the postmaster never restarts its backends),
# and no call ends in an internal error (XX000).
#
# Needs the cluster of test/harness.sh (PGHOST/PGPORT/PGUSER exported;
# SERVER_LOG its log file).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$ROOT/tmp}/fuzz
DB=mps_fuzz
mkdir -p "$WORK"

n=0
ok()     { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $*"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$ROOT/test/fixtures/supabase.sql" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "
  SELECT mps.create_member_profile(p_name := 'Fuzz Member', p_auth_user_id := 'f0000000-0000-4000-8000-000000000001')" >/dev/null
psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -f "$ROOT/test/fuzz/calls.sql" >"$WORK/calls.txt" \
  || { echo "Bail out! could not list the calls"; exit 1; }
total=$(wc -l <"$WORK/calls.txt")

# Backends the postmaster saw die of a signal, from its log (SERVER_LOG).
signal_deaths() { grep -c 'terminated by signal' "${SERVER_LOG:-/dev/null}" 2>/dev/null || true; }
wait_up() {
  local i
  for i in $(seq 1 120); do
    psql -X -At -d "$DB" -c "SELECT 1" >/dev/null 2>&1 && return 0
    sleep 1
  done
  return 1
}

# run_as <label> <prelude>: every call, one transaction each; a lost connection
# is a crash: the call is recorded, the server waited for, and the run resumes
# after it.
run_as() {
  local label=$1 prelude=$2 from=1 script out last crashes=0
  : >"$WORK/$label.crashes"
  : >"$WORK/$label.out"
  while [ "$from" -le "$total" ]; do
    script=$WORK/$label.sql
    awk -v from="$from" -v prelude="$prelude" 'NR >= from {
        printf "\\echo @@ %d\nBEGIN;\nSET LOCAL statement_timeout = %c3s%c;\n%s\n%s\nROLLBACK;\n", NR, 39, 39, prelude, $0
      }' "$WORK/calls.txt" >"$script"
    out=$WORK/$label.part
    psql -X -q -d "$DB" -v VERBOSITY=verbose -f "$script" >"$out" 2>&1
    cat "$out" >>"$WORK/$label.out"
    if grep -q "server closed the connection\|connection to server was lost\|terminating connection because of crash" "$out"; then
      last=$(grep -o '^@@ [0-9]*' "$out" | tail -1 | cut -d' ' -f2)
      [ -n "$last" ] || last=$from
      echo "$(sed -n "${last}p" "$WORK/calls.txt")" >>"$WORK/$label.crashes"
      crashes=$((crashes + 1))
      wait_up || { echo "Bail out! the server did not come back"; exit 1; }
      from=$((last + 1))
      [ "$crashes" -lt 50 ] || break
    else
      break
    fi
  done
  if [ "$crashes" -eq 0 ]; then
    ok "$label: $total calls, the server stayed up"
  else
    not_ok "$label: $crashes calls crashed the server"
    sed 's/^/#   /' "$WORK/$label.crashes" | cut -c1-300
  fi
  # Calls that ran into the timeout (an endless loop would show here).
  echo "# $label: $(grep -c 'canceling statement due to statement timeout' "$WORK/$label.out") calls hit the 3 s timeout"
  # An internal error names the call before it: print both.
  if grep -q 'ERROR:  XX000' "$WORK/$label.out"; then
    not_ok "$label: internal errors (XX000)"
    awk '/^@@ /{call=$2} /ERROR:  XX000/{print call": "$0}' "$WORK/$label.out" | sort -u -t: -k1,1n | head -40 \
      | while IFS=: read -r num rest; do
          echo "#   $(sed -n "${num}p" "$WORK/calls.txt" | cut -c1-200)"
          echo "#     ->$rest"
        done
  else
    ok "$label: no internal error (XX000)"
  fi
}

before=$(signal_deaths)
run_as superuser ""
run_as member "SET LOCAL ROLE authenticated; SET LOCAL request.jwt.claims = '{\"sub\":\"f0000000-0000-4000-8000-000000000001\",\"role\":\"authenticated\"}';"
if [ -n "${SERVER_LOG:-}" ]; then
  after=$(signal_deaths)
  if [ "$before" = "$after" ]; then
    ok "the server log shows no backend killed by a signal"
  else
    not_ok "the server log shows $((after - before)) backends killed by a signal"
  fi
fi
echo "1..$n"
