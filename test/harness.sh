#!/usr/bin/env bash
# MPS test harness: installs what is missing, builds, starts a throwaway
# PostgreSQL cluster, runs a job against it and stops it again.
#
#   bash test/harness.sh test    every suite; last line "N passed, N failed"
#   bash test/harness.sh demo    the demo scenario, printed readably
#   bash test/harness.sh bench   the benchmarks (test/bench)
#   bash test/harness.sh dev     the demo's data in database mps_demo, left running
#   bash test/harness.sh start   an empty database mps_dev, left running
#   bash test/harness.sh stop    stops a cluster left running
#
# The cluster lives in $MPS_TEST_DIR (default /tmp/mps-cluster) on port
# $MPS_TEST_PORT (default 54329); scratch files go to $MPS_WORK_DIR (default
# ./tmp). A cluster left behind by an earlier run is stopped first, by its pid
# file. MPS_SKIP_BUILD=1 skips the build and uses the installed extension.
set -uo pipefail

MODE=${1:-test}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGVER=15
# MPS_PGBIN: the server's bin directory, for a relocated copy of PostgreSQL.
PGBIN=${MPS_PGBIN:-/usr/lib/postgresql/$PGVER/bin}
PG_CONFIG=$PGBIN/pg_config
PORT=${MPS_TEST_PORT:-54329}
DATA=${MPS_TEST_DIR:-/tmp/mps-cluster}
WORK=${MPS_WORK_DIR:-$ROOT/tmp}
PGXS_DIR=${PGBIN%/bin}/lib/pgxs/src/test

say() { printf '\n== %s\n' "$*"; }

# ---- 1. install what is missing (Debian packages only) ---------------------
install_deps() {
  local need=()
  [ -x "$PG_CONFIG" ] && [ -f /usr/include/postgresql/$PGVER/server/postgres.h ] || need+=(postgresql-$PGVER postgresql-server-dev-$PGVER)
  [ -x "$PGBIN/postgres" ] || need+=(postgresql-$PGVER)
  [ -f /usr/share/postgresql/$PGVER/extension/pg_cron.control ] || need+=(postgresql-$PGVER-cron)
  [ -f /usr/share/postgresql/$PGVER/extension/pgtap.control ] || need+=(postgresql-$PGVER-pgtap)
  command -v pg_prove >/dev/null 2>&1 || need+=(libtap-parser-sourcehandler-pgtap-perl)
  [ -f /usr/include/crypt.h ] || need+=(libcrypt-dev)
  command -v make >/dev/null 2>&1 || need+=(make)
  command -v gcc >/dev/null 2>&1 || need+=(gcc)
  # The bench counts instructions per transaction with callgrind.
  [ "$MODE" != bench ] || command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing: ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then
      echo "missing packages and not root: install ${need[*]} first" >&2
      exit 2
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || { echo "apt-get update failed" >&2; exit 2; }
    apt-get install -y -qq --no-install-recommends "${need[@]}" >"$WORK/apt.log" 2>&1 \
      || { tail -30 "$WORK/apt.log"; echo "apt-get install failed" >&2; exit 2; }
  fi
}

# ---- 2. build and install ---------------------------------------------------
build() {
  say "build"
  make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null
  make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" COPT=-Werror || { echo "build failed" >&2; exit 1; }
  make -C "$ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null || { echo "install failed" >&2; exit 1; }
}

# A second compile with assertions on, so Assert()s are at least type-checked
# and built (the server itself is not an assert build).
assert_build() {
  say "assert-enabled compile"
  local dir=$WORK/assert-build
  rm -rf "$dir" && mkdir -p "$dir"
  cp -r "$ROOT/src" "$ROOT/sql" "$ROOT/released" "$ROOT/updates" "$ROOT/Makefile" "$ROOT/mps.control" "$dir/"
  make -C "$dir" -s PG_CONFIG="$PG_CONFIG" COPT=-Werror PG_CPPFLAGS=-DUSE_ASSERT_CHECKING >/dev/null
}

# ---- 3. the throwaway cluster -----------------------------------------------
# initdb refuses to run as root, so as root the cluster belongs to "postgres".
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_cluster() {
  if [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 \
      || { kill "$(head -1 "$DATA/postmaster.pid")" 2>/dev/null; sleep 1; }
  fi
}

start_cluster() {
  say "cluster on port $PORT ($DATA)"
  stop_cluster
  if [ "$(id -u)" -eq 0 ]; then
    rm -rf "$DATA"; mkdir -p "$DATA"; chown postgres:postgres "$DATA"
  else
    rm -rf "$DATA"; mkdir -p "$DATA"
  fi
  as_owner "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log"; exit 1; }
  cat >>"$DATA/postgresql.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'mps_cron'
cron.use_background_workers = on
max_worker_processes = 16
max_connections = 60
max_prepared_transactions = 10
shared_buffers = 512MB
fsync = on
synchronous_commit = on
log_min_messages = warning
EOF
  as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w start >/dev/null \
    || { cat "$DATA/server.log"; exit 1; }
  trap stop_cluster EXIT
  export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres
  # Supabase's API roles (test stand-in; see test/fixtures/supabase.sql).
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$ROOT/test/fixtures/supabase_roles.sql" >/dev/null
  # pg_cron's own database, with the extension, for the scheduling tests.
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE mps_cron" >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -d mps_cron -c "CREATE EXTENSION pg_cron" \
    -c "CREATE EXTENSION mps CASCADE" >/dev/null
}

# A database with the extension and the Supabase stand-in.
make_db() {
  local db=$1
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db" >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$ROOT/test/fixtures/supabase.sql" >/dev/null
}

# ---- 4. suites ----------------------------------------------------------------
# With --use-existing the drivers neither create their database nor load
# extensions into it, so the harness does both.
suite_db() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $1" >/dev/null
  psql -X -q -v ON_ERROR_STOP=1 -d "$1" -c "CREATE EXTENSION mps CASCADE" >/dev/null
}

PASSED=0
FAILED=0

# pg_regress reads test/sql (or test/specs) and test/expected; its results go
# to a scratch directory.
regress_layout() {
  local dir=$WORK/$1
  rm -rf "$dir" && mkdir -p "$dir"
  echo "$dir"
}

count_regress_output() {
  local log=$1 rc=$2 ok bad
  ok=$(grep -Ec '^(test|     ) .* \.\.\. ok|^ok ' "$log" || true)
  bad=$(grep -Ec '\.\.\. FAILED|^not ok ' "$log" || true)
  # A runner that stopped early (e.g. a missing expected file) is a failure too.
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
  echo "$ok passed, $bad failed"
}

run_regress() {
  say "pg_regress (test/sql)"
  local dir tests
  dir=$(regress_layout regress)
  tests=${MPS_TESTS:-$(cd "$ROOT/test/sql" && ls *.sql 2>/dev/null | sed 's/\.sql$//' | sort)}
  [ -n "$tests" ] || { echo "no regress tests"; return; }
  suite_db mps_regress
  (cd "$ROOT" && "$PGXS_DIR/regress/pg_regress" --use-existing --host=127.0.0.1 --port="$PORT" \
      --user=postgres --dbname=mps_regress --inputdir="$ROOT/test" --outputdir="$dir" $tests) >"$dir/run.log" 2>&1
  local rc=$?
  cat "$dir/run.log"
  count_regress_output "$dir/run.log" "$rc"
  [ -f "$dir/regression.diffs" ] && cat "$dir/regression.diffs"
}

run_isolation() {
  say "isolation tester (test/specs)"
  local dir tests
  dir=$(regress_layout isolation)
  tests=$(cd "$ROOT/test/specs" && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
  [ -n "$tests" ] || { echo "no isolation specs"; return; }
  suite_db mps_isolation
  (cd "$ROOT" && "$PGXS_DIR/isolation/pg_isolation_regress" --use-existing --host=127.0.0.1 --port="$PORT" \
      --user=postgres --dbname=mps_isolation --inputdir="$ROOT/test" --outputdir="$dir" $tests) >"$dir/run.log" 2>&1
  local rc=$?
  cat "$dir/run.log"
  count_regress_output "$dir/run.log" "$rc"
  [ -f "$dir/regression.diffs" ] && cat "$dir/regression.diffs"
}

run_pgtap() {
  say "pgTAP (test/pgtap) as Supabase's authenticator"
  local files log=$WORK/pgtap.log ok bad
  files=$(ls "$ROOT"/test/pgtap/*.sql 2>/dev/null | sort)
  [ -n "$files" ] || { echo "no pgTAP files"; return; }
  make_db mps_tap
  psql -X -q -v ON_ERROR_STOP=1 -d mps_tap -c "CREATE EXTENSION pgtap" >/dev/null
  pg_prove --verbose -h 127.0.0.1 -p "$PORT" -U authenticator -d mps_tap $files >"$log" 2>&1
  cat "$log"
  ok=$(grep -Ec '^ok [0-9]+' "$log" || true)
  bad=$(grep -Ec '^not ok [0-9]+' "$log" || true)
  # A file that dies before its plan completes counts as one failure.
  if ! grep -q '^Result: PASS' "$log" && [ "$bad" -eq 0 ]; then bad=1; fi
  PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
  echo "$ok passed, $bad failed"
}

# test/fuzz/functions.sh calls every function with NULLs and extreme values (TAP).
run_fuzz() {
  say "every function with NULLs and extreme values (test/fuzz)"
  local log=$WORK/fuzz.log ok bad rc
  SERVER_LOG=$DATA/server.log WORK=$WORK bash "$ROOT/test/fuzz/functions.sh" >"$log" 2>&1
  rc=$?
  cat "$log"
  ok=$(grep -Ec '^ok [0-9]+' "$log" || true)
  bad=$(grep -Ec '^not ok [0-9]+' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
  echo "$ok passed, $bad failed"
}

# test/restore/run.sh dumps a filled database and restores it (TAP).
run_restore() {
  say "dump and restore (test/restore)"
  local log=$WORK/restore.log ok bad rc
  PGBIN=$PGBIN WORK=$WORK bash "$ROOT/test/restore/run.sh" >"$log" 2>&1
  rc=$?
  cat "$log"
  ok=$(grep -Ec '^ok [0-9]+' "$log" || true)
  bad=$(grep -Ec '^not ok [0-9]+' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
  echo "$ok passed, $bad failed"
}

# test/upgrade/run.sh upgrades the released 0.1.0 (TAP), and leaves an
# upgraded empty database on which the regress suite then runs again.
run_upgrade() {
  say "upgrade from 0.1.0 (test/upgrade)"
  local log=$WORK/upgrade.log ok bad rc dir
  PGBIN=$PGBIN WORK=$WORK bash "$ROOT/test/upgrade/run.sh" >"$log" 2>&1
  rc=$?
  cat "$log"
  ok=$(grep -Ec '^ok [0-9]+' "$log" || true)
  bad=$(grep -Ec '^not ok [0-9]+' "$log" || true)
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
  echo "$ok passed, $bad failed"
  [ "$rc" -eq 0 ] || return
  # Skipped (no release commit in a shallow clone): no upgraded database either.
  grep -q '^1\.\.0 # SKIP' "$log" && return
  say "pg_regress (test/sql) on the database upgraded from 0.1.0"
  dir=$(regress_layout regress-upgraded)
  (cd "$ROOT" && "$PGXS_DIR/regress/pg_regress" --use-existing --host=127.0.0.1 --port="$PORT" \
      --user=postgres --dbname=mps_regress_upgraded --inputdir="$ROOT/test" --outputdir="$dir" \
      $(cd "$ROOT/test/sql" && ls *.sql | sed 's/\.sql$//' | sort)) >"$dir/run.log" 2>&1
  rc=$?
  cat "$dir/run.log"
  count_regress_output "$dir/run.log" "$rc"
  [ -f "$dir/regression.diffs" ] && cat "$dir/regression.diffs"
}

# Each test/crash/*.sh runs a cluster of its own on the next port and prints TAP.
run_crash() {
  say "crash tests (test/crash)"
  local f log ok bad rc
  for f in "$ROOT"/test/crash/*.sh; do
    [ -f "$f" ] || continue
    log=$WORK/crash-$(basename "$f" .sh).log
    PGBIN=$PGBIN WORK=$WORK CRASH_PORT=$((PORT + 1)) bash "$f" >"$log" 2>&1
    rc=$?
    echo "-- $(basename "$f")"; cat "$log"
    ok=$(grep -Ec '^ok [0-9]+' "$log" || true)
    bad=$(grep -Ec '^not ok [0-9]+' "$log" || true)
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    PASSED=$((PASSED + ok)); FAILED=$((FAILED + bad))
    echo "$ok passed, $bad failed"
  done
}

# ---- modes --------------------------------------------------------------------
mkdir -p "$WORK"
if [ "$MODE" = stop ]; then stop_cluster; exit 0; fi
install_deps
# MPS_SKIP_BUILD=1 runs against the extension already installed.
[ "${MPS_SKIP_BUILD:-0}" = 1 ] || build

case "$MODE" in
  test)
    assert_build || { echo "assert-enabled compile failed" >&2; FAILED=$((FAILED + 1)); }
    start_cluster
    # MPS_SUITES narrows a run while working, e.g. MPS_SUITES=isolation.
    for suite in ${MPS_SUITES:-regress isolation pgtap crash fuzz restore upgrade}; do
      "run_$suite"
    done
    echo
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
    exit $?
    ;;
  demo)
    start_cluster
    make_db mps_demo
    say "demo scenario"
    psql -X -q -v ON_ERROR_STOP=1 -d mps_demo -f "$ROOT/test/demo.sql"
    exit $?
    ;;
  bench)
    start_cluster
    bash "$ROOT/test/bench/run.sh"
    exit $?
    ;;
  start)
    # Leave a cluster running for work by hand (stop it with: harness.sh stop).
    start_cluster
    trap - EXIT
    make_db mps_dev
    echo "PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres psql -d mps_dev"
    ;;
  dev)
    # The demo's data, left running to explore by hand. A failed load stops
    # the cluster again (the EXIT trap of start_cluster).
    start_cluster
    make_db mps_demo
    say "loading the demo into mps_demo"
    psql -X -q -v ON_ERROR_STOP=1 -d mps_demo -f "$ROOT/test/demo.sql" >"$WORK/dev-demo.log" 2>&1 \
      || { cat "$WORK/dev-demo.log"; echo "loading the demo failed" >&2; exit 1; }
    trap - EXIT
    # stop finds the cluster by its directory: name it when it is not the default.
    envs=""
    [ -z "${MPS_TEST_DIR:-}" ] || envs="MPS_TEST_DIR=$DATA "
    cat <<EOF
demo output: $WORK/dev-demo.log

The cluster is running. Connect (as the superuser, i.e. the platform admin):
  psql -h 127.0.0.1 -p $PORT -U postgres -d mps_demo

Act as member Bob or as the operator of COFFEE01 (what PostgREST does for a signed-in user):
  BEGIN;
  SET LOCAL ROLE authenticated;
  SET LOCAL request.jwt.claims = '{"sub":"b0b00000-0000-4000-8000-00000000000b","role":"authenticated"}';
  SELECT card_id, card_no, card_type, balance, points, level_code FROM mps.get_my_cards();
  COMMIT;
  (the operator's sub is 0be2a702-0000-4000-8000-0000000000a1)

Stop it:
  ${envs}make dev-stop        (or: ${envs}bash test/harness.sh stop)
EOF
    ;;
  stop)
    stop_cluster
    ;;
  *)
    echo "usage: $0 test|demo|dev|bench|start|stop" >&2
    exit 2
    ;;
esac
