#!/usr/bin/env bash
# Crash test: charges on a busy card (src/busy_card.c) commit asynchronously
# and flush after releasing the card; this checks that what was acknowledged
# survives a crash, and that nothing else did the flushing for them.
#
# Its own cluster: WAL writer stopped (SIGSTOP), background writer writing no
# pages, autovacuum off, so WAL reaches the disk only when a backend flushes
# it. Each round commits charges with another session waiting, then commits a
# control row with a plain asynchronous commit, then kills every server
# process (SIGKILL: WAL buffers in shared memory are lost) and restarts.
# The control row must be gone (else the test could not tell), the charges
# acknowledged must be there.
#
# Early release is off by default; the cluster turns it on, and the rounds
# that test the default turn it off again in their session.
#
# Then refusals: a first call commits asynchronously (its WAL not yet on
# disk), a second is refused because of it (MP304 code used, MP501 key
# reused, MP504 already refunded), the server is killed: the first call must
# have survived, since the refusal was an answer resting on it (every MP
# error flushes the WAL before it is sent). With early release on and off.
# And with early release on, a read through an MPS function (get_card) flushes
# before it answers.
#
# Called by test/harness.sh with PGBIN, WORK and CRASH_PORT set; prints TAP.
set -uo pipefail
: "${PGBIN:?}" "${WORK:?}" "${CRASH_PORT:?}"

DATA=${MPS_CRASH_DIR:-/tmp/mps-crash-cluster}   # readable by postgres wherever the clone is
S=$WORK/crash-sessions
DB=crash
export PGHOST=127.0.0.1 PGPORT=$CRASH_PORT PGUSER=postgres
N=0
FAILS=0

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
ok() {   # ok <condition-result 0|1> <description>
  N=$((N + 1))
  if [ "$1" -eq 0 ]; then echo "ok $N - $2"; else echo "not ok $N - $2"; FAILS=$((FAILS + 1)); fi
}
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
bail() { echo "Bail out! $*"; kill_all; exit 1; }

# Every process of this cluster: postgres processes run in the data directory.
server_pids() {
  local d p
  d=$(cd "$DATA" 2>/dev/null && pwd -P) || return 0
  for p in /proc/[0-9]*; do
    # (A cluster left behind by an interrupted run sits in a deleted directory.)
    case "$(readlink "$p/cwd" 2>/dev/null)" in
      "$d" | "$d (deleted)") echo "${p#/proc/}" ;;
    esac
  done
}
kill_all() {
  local p pm=
  [ -f "$DATA/postmaster.pid" ] && pm=$(head -1 "$DATA/postmaster.pid")
  for _ in $(seq 100); do
    p=$(server_pids)
    [ -z "$p" ] && break
    kill -KILL $p 2>/dev/null
    sleep 0.1
  done
  # A killed postmaster counts as running (kill -0) until it is reaped, and
  # then a new one refuses to start: wait for that too.
  for _ in $(seq 200); do
    [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null || break
    sleep 0.1
  done
}
start() {
  as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w start >/dev/null \
    || { cat "$DATA/server.log"; bail "cluster did not start"; }
}
stop_wal_writer() {
  local pid
  pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
  [ -n "$pid" ] || bail "no WAL writer found"
  kill -STOP "$pid"
}

# Sessions: psql reading statements from a FIFO held open on fd 3..6.
open_session() {   # open_session <name> <fd>
  rm -f "$S/$1.in" "$S/$1.out"
  mkfifo "$S/$1.in"
  psql -X -At -d "$DB" <"$S/$1.in" >"$S/$1.out" 2>&1 &
  eval "exec $2>\"$S/$1.in\""
}
send() { echo "$2" >&"$1"; }
wait_for() {   # wait_for <name> <marker>: the session printed the marker line
  for _ in $(seq 600); do
    grep -qx "$2" "$S/$1.out" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$S/$1.out"
  bail "session $1 never reached $2"
}
wait_for_lock_waiter() {
  for _ in $(seq 600); do
    [ "$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")" -gt 0 ] && return 0
    sleep 0.1
  done
  bail "no session waits for the card"
}
charge() {   # the SQL of a charge of 1.00 with key $1, paid with code $2 (qr: the shared one, qr2: the owner's)
  echo "SELECT 'charged' FROM mps.merchant_charge_by_qr('SHOP1', (SELECT $2 FROM fixture), 1.00, '$1');"
}
new_codes() {   # every code pays once: two fresh ones (the card's shared code and its owner's) per round
  q "UPDATE fixture SET qr = (mps.rotate_card_qr(card_id, 3600, true)).qr_plain,
                        qr2 = (mps.rotate_card_qr(card_id, 3600)).qr_plain" >/dev/null
}
has_charge() { [ "$(q "SELECT count(*) FROM mps.transactions WHERE idempotency_key = '$1'")" = 1 ]; }
balance_is_sum() {
  [ "$(q "SELECT c.balance = (SELECT sum(t.amount) FROM mps.transactions t WHERE t.card_id = c.id)
          FROM mps.cards c JOIN fixture f ON f.card_id = c.id")" = t ]
}
control_async_commit() {   # a row committed asynchronously, acknowledged at once
  psql -X -q -d "$DB" -c "SET synchronous_commit = off" -c "INSERT INTO control VALUES ($1)"
}

# ---- cluster and fixture ------------------------------------------------------
kill_all
rm -rf "$DATA" "$S"
mkdir -p "$DATA" "$S"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA"
as_owner "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$WORK/crash-initdb.log" 2>&1 \
  || { cat "$WORK/crash-initdb.log"; bail "initdb failed"; }
cat >>"$DATA/postgresql.conf" <<EOF
port = $CRASH_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DATA'
fsync = on
synchronous_commit = on
autovacuum = off
bgwriter_lru_maxpages = 0
checkpoint_timeout = 1h
log_min_messages = warning
mps.busy_card_early_release = on
EOF
start
trap kill_all EXIT
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'EOF' || bail "fixture failed"
SET client_min_messages = warning;
CREATE EXTENSION mps CASCADE;
SELECT mps.create_merchant('SHOP1', 'Shop');
CREATE TABLE fixture AS
  SELECT (mps.create_member_profile(p_name := 'Owner', p_default_card_type := 'prepaid')).card_id AS card_id;
SELECT mps.recharge_card((SELECT card_id FROM fixture), 100.00, 'fund');
ALTER TABLE fixture ADD COLUMN qr text, ADD COLUMN qr2 text;
CREATE TABLE control (round int);
-- A member's own card, for the refusal rounds; its codes pay once.
CREATE TABLE member_card AS
  SELECT (mps.create_member_profile(p_name := 'Member')).card_id AS card_id;
SELECT mps.recharge_card((SELECT card_id FROM member_card), 100.00, 'fund-member');
CHECKPOINT;
EOF

# ---- round 1: the holder commits while another charge waits for the card ----
new_codes
stop_wal_writer
open_session s1 3
open_session s2 4
send 3 "BEGIN;"; send 3 "$(charge r1-holder qr)"; send 3 '\echo S1-CHARGED'
wait_for s1 S1-CHARGED
send 4 "BEGIN;"; send 4 "$(charge r1-waiter qr2)"; send 4 '\echo S2-CHARGED'
wait_for_lock_waiter
send 3 "COMMIT;"; send 3 '\echo S1-COMMITTED'
wait_for s1 S1-COMMITTED
wait_for s2 S2-CHARGED
control_async_commit 1
kill_all
exec 3>&- 4>&-
start

has_charge r1-holder
ok $? "a charge committed while another waited for its card survives a crash"
has_charge r1-waiter && r=1 || r=0
ok $r "the waiting charge, never committed, is gone"
[ "$(q "SELECT count(*) FROM control WHERE round = 1")" = 0 ]
ok $? "control: a plain asynchronous commit is lost (nothing else flushed the WAL)"
balance_is_sum
ok $? "after recovery the card's balance is the sum of its movements"

# ---- round 2: the waiter's own commit (it waited for the card) ----------------
new_codes
stop_wal_writer
open_session s3 5
open_session s4 6
send 5 "BEGIN;"; send 5 "$(charge r2-holder qr)"; send 5 '\echo S3-CHARGED'
wait_for s3 S3-CHARGED
send 6 "BEGIN;"; send 6 "$(charge r2-waiter qr2)"; send 6 "SHOW synchronous_commit;"; send 6 '\echo S4-CHARGED'
wait_for_lock_waiter
send 5 "COMMIT;"; send 5 '\echo S3-COMMITTED'
wait_for s3 S3-COMMITTED
wait_for s4 S4-CHARGED
grep -qx off "$S/s4.out"
ok $? "the charge that waited for its card commits asynchronously"
send 6 "COMMIT;"; send 6 '\echo S4-COMMITTED'
wait_for s4 S4-COMMITTED
control_async_commit 2
kill_all
exec 5>&- 6>&-
start

has_charge r2-holder && has_charge r2-waiter
ok $? "the waiter's charge, acknowledged, survives a crash (flushed after its locks went)"
[ "$(q "SELECT count(*) FROM control WHERE round = 2")" = 0 ]
ok $? "control: a plain asynchronous commit is lost"
balance_is_sum
ok $? "after recovery the card's balance is the sum of its movements"

# ---- synchronous replication configured: commits stay synchronous -------------
new_codes
q "ALTER SYSTEM SET synchronous_standby_names = 'nobody'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 100); do [ "$(q "SHOW synchronous_standby_names")" = nobody ] && break; sleep 0.1; done
open_session s5 3
open_session s6 4
send 3 "BEGIN;"; send 3 "$(charge r3-holder qr)"; send 3 '\echo S5-CHARGED'
wait_for s5 S5-CHARGED
send 4 "BEGIN;"; send 4 "$(charge r3-waiter qr2)"; send 4 "SHOW synchronous_commit;"; send 4 "ROLLBACK;"; send 4 '\echo S6-DONE'
wait_for_lock_waiter
# No standby will ever confirm, so neither may commit: the holder lets go by rolling back.
send 3 "ROLLBACK;"; send 3 '\echo S5-DONE'
wait_for s5 S5-DONE
wait_for s6 S6-DONE
grep -qx on "$S/s6.out"
ok $? "with synchronous_standby_names set, a waiting charge keeps the synchronous commit"
exec 3>&- 4>&-

# ---- the default: a charge that waited keeps its synchronous commit -------------
q "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
[ "$(psql -X -q -At -d "$DB" -c "LOAD 'mps'" -c "SELECT boot_val FROM pg_settings WHERE name = 'mps.busy_card_early_release'")" = off ]
ok $? "early release is off by default"
open_session s7 3
open_session s8 4
new_codes
send 3 "BEGIN;"; send 3 "$(charge r4-holder qr)"; send 3 '\echo S7-CHARGED'
wait_for s7 S7-CHARGED
send 4 "SET mps.busy_card_early_release = off;"; send 4 "BEGIN;"; send 4 "$(charge r4-waiter qr2)"
send 4 "SHOW synchronous_commit;"; send 4 '\echo S8-CHARGED'
wait_for_lock_waiter
send 3 "COMMIT;"; send 3 '\echo S7-COMMITTED'
wait_for s7 S7-COMMITTED
wait_for s8 S8-CHARGED
grep -qx on "$S/s8.out"
ok $? "with early release off, the charge that waited for its card commits synchronously"
send 4 "COMMIT;"; send 4 '\echo S8-COMMITTED'
wait_for s8 S8-COMMITTED
exec 3>&- 4>&-

# ---- refusals rest only on what is on disk ----------------------------------------
first_async() {   # first_async <sql>: committed asynchronously, acknowledged at once
  psql -X -q -d "$DB" -v ON_ERROR_STOP=1 -c "SET synchronous_commit = off" -c "$1" >/dev/null
}
refused() {   # refused <early release on|off> <sql>: prints the SQLSTATE it failed with
  psql -X -q -d "$DB" -v VERBOSITY=verbose -c "SET mps.busy_card_early_release = $1" -c "$2" 2>&1 \
    | sed -n 's/^ERROR:  \([A-Z0-9]\{5\}\):.*/\1/p' | head -1
}
member_code() { q "SELECT (mps.rotate_card_qr(card_id, 3600, false)).qr_plain FROM member_card"; }
member_charge() {   # member_charge <code> <amount> <key>
  echo "SELECT mps.merchant_charge_by_qr('SHOP1', '$1', $2, '$3')"
}
round=10
for setting in on off; do
  # MP304: the code was used by a charge whose commit is not on disk yet.
  round=$((round + 1))
  code=$(member_code)
  q "CHECKPOINT" >/dev/null
  stop_wal_writer
  first_async "$(member_charge "$code" 1.00 "used-$setting-1")"
  state=$(refused "$setting" "$(member_charge "$code" 1.00 "used-$setting-2")")
  control_async_commit $round
  kill_all; start
  [ "$state" = MP304 ] && has_charge "used-$setting-1"
  ok $? "early release $setting: MP304 (code used) was answered only once the charge using it was on disk"
  [ "$(q "SELECT count(*) FROM control WHERE round = $round")" = 0 ]
  ok $? "early release $setting: control: a plain asynchronous commit after it is lost"

  # MP501: the key was taken by a charge whose commit is not on disk yet.
  round=$((round + 1))
  code=$(member_code)
  q "CHECKPOINT" >/dev/null
  stop_wal_writer
  first_async "$(member_charge "$code" 1.00 "key-$setting")"
  state=$(refused "$setting" "$(member_charge "$code" 2.00 "key-$setting")")
  control_async_commit $round
  kill_all; start
  [ "$state" = MP501 ] && has_charge "key-$setting"
  ok $? "early release $setting: MP501 (key reused) was answered only once the first call was on disk"

  # MP504: the payment was refunded by a refund whose commit is not on disk yet.
  round=$((round + 1))
  code=$(member_code)
  tx=$(q "SELECT tx_id FROM mps.merchant_charge_by_qr('SHOP1', '$code', 3.00, 'paid-$setting')")
  q "CHECKPOINT" >/dev/null
  stop_wal_writer
  first_async "SELECT mps.merchant_refund_tx('SHOP1', '$tx', 3.00, 'refund-$setting-1')"
  state=$(refused "$setting" "SELECT mps.merchant_refund_tx('SHOP1', '$tx', 3.00, 'refund-$setting-2')")
  control_async_commit $round
  kill_all; start
  [ "$state" = MP504 ] && has_charge "refund-$setting-1"
  ok $? "early release $setting: MP504 (already refunded) was answered only once the refund was on disk"
  [ "$(q "SELECT count(*) FROM control WHERE round = $round")" = 0 ]
  ok $? "early release $setting: control: a plain asynchronous commit after it is lost"
done

# ---- with early release on, a read through an MPS function rests on disk too -------
round=$((round + 1))
q "CHECKPOINT" >/dev/null
stop_wal_writer
first_async "SELECT mps.recharge_card((SELECT card_id FROM member_card), 7.00, 'read-on')"
seen_card=$(psql -X -q -At -d "$DB" -c "SET mps.busy_card_early_release = on" \
         -c "SELECT balance FROM mps.get_card((SELECT card_id FROM member_card))" 2>&1)
control_async_commit $round
kill_all; start
has_charge read-on
ok $? "early release on: a balance read through get_card ($seen_card) was answered only once the recharge it shows was on disk"
[ "$(q "SELECT count(*) FROM control WHERE round = $round")" = 0 ]
ok $? "early release on: control: a plain asynchronous commit after it is lost"
[ "$(q "SELECT count(*) FROM mps.verify_ledger()")" = 0 ]
ok $? "after every crash, verify_ledger() is clean"

echo "1..$N"
kill_all
[ "$FAILS" -eq 0 ]
