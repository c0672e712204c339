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

server_pids() {
  local pm
  [ -f "$DATA/postmaster.pid" ] || return 0
  pm=$(head -1 "$DATA/postmaster.pid")
  echo "$pm"
  # Its children, from /proc (field 4 of stat is the parent's pid).
  awk -v pm="$pm" '$4 == pm { print $1 }' /proc/[0-9]*/stat 2>/dev/null
}
kill_all() {
  local p
  for p in $(server_pids); do kill -KILL "$p" 2>/dev/null; done
  for _ in $(seq 50); do
    [ -z "$(for p in $(server_pids); do kill -0 "$p" 2>/dev/null && echo "$p"; done)" ] && break
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

echo "1..$N"
kill_all
[ "$FAILS" -eq 0 ]
