#!/usr/bin/env bash
# MPS benchmarks: `make bench` -> test/harness.sh bench -> this script, on the
# harness's throwaway cluster (PGHOST/PGPORT/PGUSER=postgres are set by it).
#
# One run measures, each with pgbench (8 clients, 2 threads, 30 s):
#   tpcb-like        pgbench's built-in (scale 10): the machine's reference
#   bcrypt-floor     look up + bcrypt-verify the charges' QR codes, nothing else
#   charge-limit     one plain statement doing the least a charge must do
#   hot-limit        the same statement, every client on the one hot card
#   write-limit      the same without the bcrypt check
#   contract-limit   charge-limit plus the rows DESIGN.md asks of every charge
#                    (code consumed, idempotency key, point ledger, audit event)
#   refund-limit     write-limit plus the rows DESIGN.md asks of every refund
#                    (payment's refunded total, idempotency key, audit event)
#   recharge-limit   write-limit plus the rows DESIGN.md asks of every recharge
#                    (idempotency key, audit event)
#   charge distinct, charge hot, refund, recharge: the MPS RPCs
# The 30 s of each run are taken as 3 interleaved rounds of 10 s, so every
# ratio compares numbers taken under the same outside load. It prints TPS and
# the ratios to their references, and writes the same table to results.md. A
# missed target is reported, never an error: the exit status is non-zero only
# when a run fails (pgbench error or failed transactions) or its effects do not
# add up afterwards. README.md here explains the method.
#
# MPS_BENCH_SECONDS (30) per run, MPS_BENCH_ROUNDS (3; 1 when the runs are
# shorter than 5 s a round), MPS_BENCH_CLIENTS (8), MPS_BENCH_THREADS (2).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PSQL=$PGBIN/psql;       [ -x "$PSQL" ] || PSQL=psql
PGBENCH=$PGBIN/pgbench; [ -x "$PGBENCH" ] || PGBENCH=pgbench
SECS=${MPS_BENCH_SECONDS:-30}
ROUNDS=${MPS_BENCH_ROUNDS:-3}
[ "$SECS" -ge $((5 * ROUNDS)) ] || ROUNDS=1
SLICE=$((SECS / ROUNDS))
CLIENTS=${MPS_BENCH_CLIENTS:-8}
THREADS=${MPS_BENCH_THREADS:-2}
BASE_CARDS=10000          # funded member cards, one live code each
PROVISIONERS=4            # parallel sessions issuing cards and codes (untimed)
WORK=${MPS_WORK_DIR:-$ROOT/tmp}/bench
DB=mps_bench
TPCB_DB=mps_tpcb
RESULTS=$HERE/results.md
OPERATOR=b0000000-0000-4000-8000-000000000001
# The charge and refund runs call as the merchant's operator, the way
# PostgREST passes a signed-in user: role authenticated and request.jwt.claims,
# here for the session.
CLAIMS="-c role=authenticated -c request.jwt.claims={\"sub\":\"$OPERATOR\",\"role\":\"authenticated\"}"

mkdir -p "$WORK"
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}

die() { echo "bench: $*" >&2; exit 1; }
sql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
calc() { awk "BEGIN { $1 }"; }
ratio() { # a b -> a/b with 2 decimals, or empty
  [ -n "$1" ] && [ -n "$2" ] && calc "if ($2 > 0) printf \"%.2f\", $1 / $2"
}
now_s() { date +%s.%N; }
took() { calc "printf \"%.1f s\", $(now_s) - $1"; }

# ---- runs -----------------------------------------------------------------
# Each run is split into ROUNDS slices, and the rounds go through every run in
# turn, so a reference and what is compared with it are measured minutes apart
# at most, under the same outside load. A run's TPS is its transactions over
# its measured time (pgbench's, without connection time) summed over slices.
declare -A TX TIME LATW WAL FAILED
ERRORS=0
RUN_PGOPTIONS=

# bench_run NAME DB PGBENCH-ARGS...: one timed slice, after a vacuum (so no
# autovacuum of the previous run's dead rows writes WAL into this one) and a
# checkpoint.
bench_run() {
  local name=$1 db=$2 log rc tps lat n failed lsn
  shift 2
  log=$WORK/$name.r$ROUND.log
  log=${log// /-}
  [ -z "${FAILED[$name]:-}" ] || return 1
  sql "$db" "VACUUM" || die "vacuum before $name failed"
  sql "$db" "CHECKPOINT" || die "checkpoint before $name failed"
  lsn=$(sql "$db" "SELECT pg_current_wal_insert_lsn()")
  printf '  %-16s ' "$name"
  PGOPTIONS=$RUN_PGOPTIONS "$PGBENCH" -M prepared -c "$CLIENTS" -j "$THREADS" "$@" "$db" >"$log" 2>&1
  rc=$?
  lsn=$(sql "$db" "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn')")
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$log")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$log")
  n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
  if [ "$rc" -ne 0 ] || [ -z "$tps" ] || [ -z "$n" ] || [ "${failed:-0}" != 0 ] || grep -q 'aborted' "$log"; then
    echo "FAILED (pgbench exit $rc, ${failed:-?} failed transactions; log $log)"
    grep -E 'error|ERROR|DETAIL|aborted' "$log" | head -6 | sed 's/^/    /'
    FAILED[$name]=1
    ERRORS=$((ERRORS + 1))
    return 1
  fi
  TX[$name]=$(( ${TX[$name]:-0} + n ))
  TIME[$name]=$(calc "printf \"%.6f\", ${TIME[$name]:-0} + $n / $tps")
  LATW[$name]=$(calc "printf \"%.6f\", ${LATW[$name]:-0} + $lat * $n")
  WAL[$name]=$(calc "printf \"%.0f\", ${WAL[$name]:-0} + $lsn")
  printf '%9.1f tps  %7.2f ms  %7s tx\n' "$tps" "$lat" "$n"
}
tps_of() { # aggregated TPS of a run, empty if it failed or never ran
  [ -z "${FAILED[$1]:-}" ] && [ -n "${TX[$1]:-}" ] && calc "printf \"%.1f\", ${TX[$1]} / ${TIME[$1]}"
}
lat_of() {
  [ -z "${FAILED[$1]:-}" ] && [ -n "${TX[$1]:-}" ] && calc "printf \"%.2f\", ${LATW[$1]} / ${TX[$1]}"
}
wal_of() { # WAL bytes per transaction (cluster-wide, full-page images included)
  [ -z "${FAILED[$1]:-}" ] && [ -n "${TX[$1]:-}" ] && calc "printf \"%.0f\", ${WAL[$1]} / ${TX[$1]}"
}

# provision N: N more funded member cards with one live code each, through
# the RPCs, in PROVISIONERS parallel sessions (untimed).
provision() {
  local total=$1 each rest k n pids=() fail=0
  each=$((total / PROVISIONERS)); rest=$((total % PROVISIONERS))
  for k in $(seq 1 "$PROVISIONERS"); do
    n=$each; [ "$k" -le "$rest" ] && n=$((n + 1))
    [ "$n" -gt 0 ] || continue
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -v n="$n" -d "$DB" -f "$HERE/provision.sql" \
      >"$WORK/provision-$k.log" 2>&1 &
    pids+=($!)
  done
  for k in "${pids[@]}"; do wait "$k" || fail=1; done
  [ "$fail" -eq 0 ] || { cat "$WORK"/provision-*.log >&2; die "provisioning cards failed"; }
  local count max
  count=$(sql "$DB" "SELECT count(*) FROM bench.codes")
  max=$(sql "$DB" "SELECT coalesce(max(id), 0) FROM bench.codes")
  [ "$count" = "$max" ] || die "bench.codes ids are not dense ($count rows, max id $max)"
  NCODES=$count
}

# ---- 1. setup ---------------------------------------------------------------
T0=$(now_s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
echo "MPS benchmarks: $CLIENTS clients, $THREADS threads, ${SECS} s per run (load average $LOAD_BEFORE)"
echo "setup"
for db in "$DB" "$TPCB_DB"; do
  sql postgres "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
  sql postgres "CREATE DATABASE $db" || die "cannot create database $db"
done
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$HERE/setup.sql" >"$WORK/setup.log" 2>&1 \
  || { cat "$WORK/setup.log" >&2; die "setup.sql failed"; }
MERCHANT_ID=$(sql "$DB" "SELECT value FROM bench.params WHERE name = 'merchant_id'")
HOT_QR=$(sql "$DB" "SELECT value FROM bench.params WHERE name = 'hot_qr'")
BCRYPT_COST=$("$PSQL" -X -q -At -d "$DB" -c "LOAD 'mps'" -c "SHOW mps.qr_bcrypt_cost")
start=$(now_s)
provision "$BASE_CARDS"
echo "  $NCODES member cards funded, one code each ($(took "$start"))"

start=$(now_s)
"$PGBENCH" -i -q -s 10 "$TPCB_DB" >"$WORK/tpcb-init.log" 2>&1 \
  || { cat "$WORK/tpcb-init.log" >&2; die "pgbench -i failed"; }
echo "  pgbench -i -s 10 ($(took "$start"))"

# bcrypt, one thread: libxcrypt (which makes the hashes) beside pgcrypto (which
# checks QR secrets, in the C core and in the reference statements alike).
LIBX_MS= PGC_MS=
if command -v cc >/dev/null 2>&1 &&
   cc -O2 "$HERE/bcrypt_speed.c" -o "$WORK/bcrypt_speed" -lcrypt >"$WORK/cc.log" 2>&1; then
  for _ in 1 2 3; do
    l=$("$WORK/bcrypt_speed" 4 500) || l=
    p=$(sql "$DB" "SELECT bench.pgcrypto_verify_ms(500)") || p=
    [ -n "$l" ] && { [ -z "$LIBX_MS" ] || calc "exit !($l < $LIBX_MS)"; } && LIBX_MS=$l
    [ -n "$p" ] && { [ -z "$PGC_MS" ] || calc "exit !($p < $PGC_MS)"; } && PGC_MS=$p
  done
  echo "  one bcrypt verify at cost 4, best of 3: libxcrypt ${LIBX_MS:-?} ms, pgcrypto ${PGC_MS:-?} ms"
fi
sql "$DB" "VACUUM ANALYZE" || die "vacuum failed"

CODES_USED=0
# ---- 2. the runs, in rounds -----------------------------------------------------
for ROUND in $(seq 1 "$ROUNDS"); do
  echo "round $ROUND of $ROUNDS (${SLICE} s per run)"
  RUN_PGOPTIONS=
  # What pgbench does before a built-in run, done here so it is not timed.
  "$PSQL" -X -q -d "$TPCB_DB" -c "VACUUM pgbench_branches" -c "VACUUM pgbench_tellers" \
    -c "TRUNCATE pgbench_history" || die "vacuum of $TPCB_DB failed"
  bench_run tpcb-like "$TPCB_DB" -n -b tpcb-like -T "$SLICE"
  bench_run bcrypt-floor "$DB" -n -T "$SLICE" -D ncodes="$NCODES" -f "$HERE/bcrypt_floor.sql"
  bench_run charge-limit "$DB" -n -T "$SLICE" -D ncodes="$NCODES" -D merchant_id="$MERCHANT_ID" \
    -f "$HERE/charge_limit.sql"
  # A member code pays once and a card has one live code, so the distinct-
  # card run needs one card per charge. Each slice runs a fixed number of
  # charges, so it never runs out of codes: in round 1 what charge-limit has
  # just done in 0.85 x the slice (about one slice at the targeted 0.95 x),
  # later what the charges themselves did so far, in one slice. Cards missing
  # for that are issued here, untimed, right after charge-limit: the runs after
  # it (write-limit among them) see the same cards as refunds and recharges.
  RATE=$(tps_of "charge distinct")
  [ -n "$RATE" ] || { RATE=$(tps_of charge-limit); RATE=${RATE:-$(tps_of bcrypt-floor)};
                      RATE=$(calc "print ${RATE:-100} * 0.85"); }
  PER_CLIENT=$(calc "n = $RATE * $SLICE / $CLIENTS; printf \"%d\", (n == int(n)) ? n : int(n) + 1")
  [ "$PER_CLIENT" -ge 1 ] || PER_CLIENT=1
  # contract-limit uses up codes as well, as many as the charges.
  NEED=$((CODES_USED + 2 * PER_CLIENT * CLIENTS))
  if [ -z "${FAILED[charge distinct]:-}" ] && [ "$NEED" -gt "$NCODES" ]; then
    start=$(now_s)
    before=$NCODES
    provision $((NEED - NCODES))
    echo "  (issued $((NCODES - before)) more cards and codes: $(took "$start"))"
    sql "$DB" "VACUUM ANALYZE" || die "vacuum failed"
  fi
  CODES_USED=$NEED

  bench_run hot-limit "$DB" -n -T "$SLICE" -D hot_qr="$HOT_QR" -D merchant_id="$MERCHANT_ID" \
    -f "$HERE/hot_limit.sql"
  bench_run write-limit "$DB" -n -T "$SLICE" -D ncodes="$NCODES" -D merchant_id="$MERCHANT_ID" \
    -f "$HERE/write_limit.sql"

  bench_run contract-limit "$DB" -n -t "$PER_CLIENT" -D merchant_id="$MERCHANT_ID" \
    -D operator_id="$OPERATOR" -f "$HERE/contract_limit.sql"

  RUN_PGOPTIONS=$CLAIMS
  bench_run "charge distinct" "$DB" -n -t "$PER_CLIENT" -f "$HERE/charge_distinct.sql"
  NPAY=$(sql "$DB" "TRUNCATE bench.payments;
    INSERT INTO bench.payments (n, tx_id)
    SELECT row_number() OVER (ORDER BY t.created_at, t.id), t.id FROM mps.transactions t
    WHERE t.kind = 'payment' AND t.idempotency_key LIKE 'dc-%';
    ANALYZE bench.payments;
    SELECT count(*) FROM bench.payments") || die "collecting payments failed"
  bench_run "charge hot" "$DB" -n -T "$SLICE" -D round="$ROUND" -D n=0 -D hot_qr="$HOT_QR" \
    -f "$HERE/charge_hot.sql"
  if [ "$NPAY" -gt 0 ]; then
    RUN_PGOPTIONS=
    bench_run refund-limit "$DB" -n -T "$SLICE" -D round="$ROUND" -D n=0 -D npay="$NPAY" \
      -D merchant_id="$MERCHANT_ID" -D operator_id="$OPERATOR" -f "$HERE/refund_limit.sql"
    RUN_PGOPTIONS=$CLAIMS
    bench_run refund "$DB" -n -T "$SLICE" -D round="$ROUND" -D n=0 -D npay="$NPAY" -f "$HERE/refund.sql"
  elif [ -z "${FAILED[refund]:-}" ]; then
    echo "  refund           skipped: no payments to refund"; FAILED[refund]=1; ERRORS=$((ERRORS + 1))
  fi
  RUN_PGOPTIONS=
  bench_run recharge-limit "$DB" -n -T "$SLICE" -D round="$ROUND" -D n=0 -D ncodes="$NCODES" \
    -f "$HERE/recharge_limit.sql"
  bench_run recharge "$DB" -n -T "$SLICE" -D round="$ROUND" -D n=0 -D ncodes="$NCODES" \
    -f "$HERE/recharge.sql"
done

# ---- 3. afterwards: every run did what it claims, and the books balance -----
# Movement rows per run against pgbench's counts (a replayed idempotency key
# or a statement that matched nothing would show here), then balance = sum
# of movements and points = sum of ledger rows on every card.
CHECKS_OK=1
COUNTS=$(sql "$DB" "
  SELECT count(*) FILTER (WHERE kind = 'adjustment' AND reason = 'charge-limit') || ' ' ||
         count(*) FILTER (WHERE kind = 'adjustment' AND reason = 'hot-limit') || ' ' ||
         count(*) FILTER (WHERE kind = 'adjustment' AND reason = 'write-limit') || ' ' ||
         count(*) FILTER (WHERE kind = 'adjustment' AND reason = 'contract-limit') || ' ' ||
         count(*) FILTER (WHERE kind = 'refund' AND reason = 'refund-limit') || ' ' ||
         count(*) FILTER (WHERE kind = 'recharge' AND reason = 'recharge-limit') || ' ' ||
         count(*) FILTER (WHERE kind = 'payment' AND idempotency_key LIKE 'dc-%') || ' ' ||
         count(*) FILTER (WHERE kind = 'payment' AND idempotency_key LIKE 'hot-%') || ' ' ||
         count(*) FILTER (WHERE kind = 'refund' AND idempotency_key LIKE 'rf-%') || ' ' ||
         count(*) FILTER (WHERE kind = 'recharge' AND idempotency_key LIKE 'rc-%')
  FROM mps.transactions") || COUNTS=
read -r -a ROWS <<<"${COUNTS:-x x x x x x x x x x}"
i=0
for name in charge-limit hot-limit write-limit contract-limit refund-limit recharge-limit "charge distinct" "charge hot" refund recharge; do
  rows=${ROWS[$i]}; i=$((i + 1))
  [ -z "${FAILED[$name]:-}" ] && [ -n "${TX[$name]:-}" ] || continue
  # pgbench -T may leave a client's last transaction committed but uncounted.
  if ! [[ "$rows" =~ ^[0-9]+$ ]] || [ "$rows" -lt "${TX[$name]}" ] ||
     [ "$rows" -gt $(( ${TX[$name]} + CLIENTS * ROUNDS )) ]; then
    echo "bench: $name: pgbench counted ${TX[$name]} transactions, the database has $rows movements" >&2
    CHECKS_OK=0
  fi
done
BOOKS=$(sql "$DB" "
  SELECT format('%s cards, %s movements, %s balance and %s points mismatches',
    (SELECT count(*) FROM mps.cards), (SELECT count(*) FROM mps.transactions),
    (SELECT count(*) FROM mps.cards c
      LEFT JOIN (SELECT card_id, sum(amount) AS s FROM mps.transactions GROUP BY card_id) t
        ON t.card_id = c.id
      WHERE c.balance <> coalesce(t.s, 0)),
    (SELECT count(*) FROM mps.cards c
      LEFT JOIN (SELECT card_id, sum(delta) AS s FROM mps.point_ledger GROUP BY card_id) p
        ON p.card_id = c.id
      WHERE c.points <> coalesce(p.s, 0)))") || BOOKS="check failed"
case "$BOOKS" in *", 0 balance and 0 points mismatches") ;; *) CHECKS_OK=0 ;; esac

# ---- 4. report ----------------------------------------------------------------
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
declare -A TPS
for name in tpcb-like bcrypt-floor charge-limit hot-limit write-limit contract-limit refund-limit recharge-limit "charge distinct" "charge hot" refund recharge; do
  TPS[$name]=$(tps_of "$name")
done
row() { # name reference target
  local name=$1 ref=$2 target=$3 r= met="—" tps lat wal
  [ -z "$ref" ] || r=$(ratio "${TPS[$name]}" "${TPS[$ref]}")
  tps=${TPS[$name]:+$(calc "printf \"%.0f\", ${TPS[$name]}")}
  lat=$(lat_of "$name")
  wal=$(wal_of "$name")
  if [ -n "$target" ] && [ -n "$r" ]; then
    met=$(calc "print (($r >= $target) ? \"yes\" : \"**no**\")")
  fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "${tps:-failed}" "${lat:-—}" \
    "${wal:-—}" "${ref:-—}" "${r:+${r}x}" "${target:+>= ${target}x}" "$met"
}
share() { # name -> bcrypt's share of one transaction: its TPS over bcrypt-floor's
  local s
  s=$(ratio "${TPS[$1]}" "${TPS[bcrypt-floor]}")
  [ -n "$s" ] || { echo "n/a"; return; }
  echo "$(calc "printf \"%.0f\", 100 * $s")%"
}
{
  echo "# MPS benchmark results"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc 2>/dev/null || echo '?') cores" \
       "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)); PostgreSQL" \
       "$(sql postgres "SHOW server_version" | cut -d' ' -f1); mps.qr_bcrypt_cost = $BCRYPT_COST;" \
       "shared_buffers $(sql postgres "SHOW shared_buffers"), huge_pages $(sql postgres "SHOW huge_pages")." \
       "pgbench -M prepared, $CLIENTS clients, $THREADS threads, ${SECS} s per run in $ROUNDS" \
       "interleaved rounds of ${SLICE} s (charge distinct: $CODES_USED charges in fixed counts per round," \
       "one card each)." \
       "Load average $LOAD_BEFORE before, $LOAD_AFTER after; the machine is shared, so only the" \
       "ratios within one run compare. Written by test/bench/run.sh."
  echo
  echo "| run | TPS | latency ms | WAL bytes/tx | reference | ratio | target | met |"
  echo "|---|---:|---:|---:|---|---:|---|---|"
  row tpcb-like "" ""
  row bcrypt-floor tpcb-like ""
  row charge-limit tpcb-like ""
  row hot-limit charge-limit ""
  row write-limit tpcb-like ""
  row contract-limit charge-limit ""
  row refund-limit write-limit ""
  row recharge-limit write-limit ""
  row "charge distinct" charge-limit 0.95
  row "charge hot" charge-limit 0.9
  row refund write-limit 0.8
  row recharge write-limit 0.8
  echo
  echo "- charge-limit / bcrypt-floor = $(ratio "${TPS[charge-limit]}" "${TPS[bcrypt-floor]}")x" \
       "(what the write and its WAL flush add to the bcrypt check)"
  echo "- charge distinct / contract-limit = $(ratio "${TPS[charge distinct]}" "${TPS[contract-limit]}")x" \
       "(both write a charge's rows; what MPS's checks, pricing and statements add to them)"
  echo "- refund / refund-limit = $(ratio "${TPS[refund]}" "${TPS[refund-limit]}")x" \
       "(both write a refund's rows; what MPS's checks and statements add to them)"
  echo "- recharge / recharge-limit = $(ratio "${TPS[recharge]}" "${TPS[recharge-limit]}")x" \
       "(both write a recharge's rows; what MPS's checks and statements add to them)"
  echo "- charge hot / hot-limit = $(ratio "${TPS[charge hot]}" "${TPS[hot-limit]}")x" \
       "(both on one card: hot-limit holds the card until its commit is flushed, so no two" \
       "commits share a flush; MPS lets go of a busy card at the commit record and returns" \
       "after the flush, see README \"Busy cards\")"
  echo "- bcrypt's share of a transaction (its TPS / bcrypt-floor TPS): charge-limit $(share charge-limit)," \
       "charge distinct $(share "charge distinct"), charge hot $(share "charge hot")"
  if [ -n "$LIBX_MS" ] && [ -n "$PGC_MS" ]; then
    echo "- one bcrypt verification at cost $BCRYPT_COST, one thread, best of 3: libxcrypt crypt_r" \
         "$LIBX_MS ms, pgcrypto crypt $PGC_MS ms (libxcrypt / pgcrypto = $(ratio "$LIBX_MS" "$PGC_MS"));" \
         "QR secrets are checked with pgcrypto's, by the C core and the reference statements alike"
  fi
  echo "- WAL bytes/tx: the cluster's WAL over the run's transactions, full-page images after" \
       "the checkpoint that precedes every run included"
  echo "- afterwards: movement rows $( [ "$CHECKS_OK" -eq 1 ] && echo match || echo "DO NOT match" )" \
       "pgbench's counts; $BOOKS"
} >"$RESULTS"

echo
sed -n '/^| run/,$p' "$RESULTS"
echo
echo "written to $RESULTS (total $(took "$T0"))"
[ "$CHECKS_OK" -eq 1 ] || { echo "bench: the runs' effects do not add up (see above)" >&2; ERRORS=$((ERRORS + 1)); }

# Instructions per transaction, on a cluster of its own under callgrind.
echo
echo "== instructions per transaction (test/bench/instructions.sh)"
if bash "$HERE/instructions.sh" "$RESULTS"; then
  sed -n '/^## Instructions per transaction/,$p' "$RESULTS" | sed -n '/^| run/,$p'
else
  ERRORS=$((ERRORS + 1))
fi

# Marketing-group pricing: 1,000,000 lines, 10 stacked rules, C vs PL/pgSQL.
echo
echo "== marketing pricing (test/bench/mg_pricing.sql)"
if psql -X -v ON_ERROR_STOP=1 -d "$DB" -f "$HERE/mg_pricing.sql" >"$WORK/mg_pricing.out" 2>&1; then
  cat "$WORK/mg_pricing.out"
  { echo; echo "## Marketing pricing"; echo; echo '```'; cat "$WORK/mg_pricing.out"; echo '```'; } >>"$RESULTS"
else
  cat "$WORK/mg_pricing.out"; ERRORS=$((ERRORS + 1))
fi

# Settlements over 1,000,000 transactions of one merchant (own database).
echo
echo "== settlement (test/bench/settlement.sql)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS mps_bench_settle" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE mps_bench_settle" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d mps_bench_settle -c "CREATE EXTENSION mps CASCADE" >/dev/null
if psql -X -v ON_ERROR_STOP=1 -d mps_bench_settle -f "$HERE/settlement.sql" >"$WORK/settlement.out" 2>&1; then
  cat "$WORK/settlement.out"
  { echo; echo "## Settlement"; echo; echo '```'; cat "$WORK/settlement.out"; echo '```'; } >>"$RESULTS"
else
  cat "$WORK/settlement.out"; ERRORS=$((ERRORS + 1))
fi

# Member search over 1,000,000 members (own database).
echo
echo "== member search (test/bench/member_search.sql)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS mps_bench_search" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE mps_bench_search" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d mps_bench_search -c "CREATE EXTENSION mps CASCADE" >/dev/null
if psql -X -v ON_ERROR_STOP=1 -d mps_bench_search -f "$HERE/member_search.sql" >"$WORK/member_search.out" 2>&1; then
  cat "$WORK/member_search.out"
  { echo; echo "## Member search"; echo; echo '```'; cat "$WORK/member_search.out"; echo '```'; } >>"$RESULTS"
else
  cat "$WORK/member_search.out"; ERRORS=$((ERRORS + 1))
fi
[ "$ERRORS" -eq 0 ] || { echo "bench: $ERRORS failure(s)" >&2; exit 1; }
exit 0
