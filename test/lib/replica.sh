#!/usr/bin/env bash
# Replica drill: a primary and a streaming hot standby (pg_basebackup -R) of
# their own, on private ports (TFORGE_PORT+100, +200) and socket
# directories, removed afterwards.
#
#  1. The standby serves the read functions and every view of schema tforge
#     with the primary's answers (estimate, get_tau, trending, signal_score,
#     semver operators, prediction_accuracy, ...).
#  2. Every VOLATILE function of schema tforge (from the catalog, so new ones
#     are covered), called on the standby with plausible arguments, is
#     refused with 25006 (read-only transaction), never XX000 or a crash;
#     so is each one called on the primary in a READ ONLY transaction.
#  3. The primary commits with synchronous_commit = remote_apply, so an
#     acknowledged commit is on the standby; after the last acknowledged
#     commit the primary is stopped with -m immediate, the standby promoted
#     (pg_ctl promote) and its tforge tables must have the fingerprint the
#     primary had; then it carries on: submit, claim, complete.
#
# Needs the PostgreSQL binaries on PATH (as test/lib/harness.sh sets it).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
base=${TFORGE_PORT:-${PGPORT:-55432}}
pport=$((base + 100))
sport=$((base + 200))
work=$(mktemp -d /tmp/tforge-replica.XXXXXX)
chmod 755 "$work"
if [ "$(id -u)" = 0 ]; then AS="runuser -u postgres --"; chown postgres: "$work"; else AS=""; fi
export PGUSER=${PGUSER:-$(id -un)}
db=tforge_replica
cleanup() {
	$AS pg_ctl -D "$work/standby" -m immediate stop >/dev/null 2>&1 || true
	$AS pg_ctl -D "$work/primary" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

P() { psql -X -h "$work" -p "$pport" "$@"; }
S() { psql -X -h "$work" -p "$sport" "$@"; }
status=0
fail() { echo "FAILED $*"; status=1; }

# The primary (its standby becomes synchronous once it streams).
$AS initdb -D "$work/primary" -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log"; exit 1; }
cat >>"$work/primary/postgresql.conf" <<CONF
listen_addresses = ''
port = $pport
unix_socket_directories = '$work'
shared_preload_libraries = 'tforge'
wal_level = replica
max_wal_senders = 4
fsync = on
CONF
$AS pg_ctl -D "$work/primary" -l "$work/primary.log" -w start >/dev/null || { cat "$work/primary.log"; exit 1; }

# State on the primary: the hostile sweep's seeded database (tasks in every
# state, learned tau and profiles, a model with versions, signals) plus its
# plausible-argument helpers, used on the standby below.
P -qX -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $db" >/dev/null &&
	P -qX -v ON_ERROR_STOP=1 -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION tforge" >/dev/null &&
	P -qX -v ON_ERROR_STOP=1 -d "$db" -f "$top/test/lib/hostile-sweep.sql" >/dev/null 2>&1 ||
	{ echo "FAILED setting up the primary"; exit 1; }
P -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null 2>&1 <<'SQL' || { echo "FAILED seeding the primary"; exit 1; }
SELECT tforge.submit_task('cpu-heavy', task_key => 'r' || g % 3) FROM generate_series(1, 12) g;
SELECT tforge.complete_task(t.task_id, 'wr', jsonb_build_object('runtime_s', 10 + t.task_id % 5, 'cpu_s', 8))
  FROM tforge.claim_tasks('wr', 8) t;
SQL

# The standby, streaming from the primary's socket.
$AS pg_basebackup -h "$work" -p "$pport" -D "$work/standby" -R -X stream -c fast \
	-d "application_name=tforge_standby" >"$work/basebackup.log" 2>&1 ||
	{ cat "$work/basebackup.log"; exit 1; }
cat >>"$work/standby/postgresql.conf" <<CONF
port = $sport
unix_socket_directories = '$work'
synchronous_standby_names = ''
hot_standby = on
CONF
$AS pg_ctl -D "$work/standby" -l "$work/standby.log" -w start >/dev/null || { cat "$work/standby.log"; exit 1; }
# Synchronous standby "tforge_standby": commits that ask for remote_apply
# wait until the standby has applied them.
P -qX -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = 'tforge_standby'" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 1 120); do
	[ "$(P -qXAt -d postgres -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'tforge_standby' AND sync_state = 'sync' AND replay_lsn >= pg_current_wal_lsn()")" = 1 ] && break
	sleep 0.5
done
[ "$(S -qXAt -d postgres -c 'SELECT pg_is_in_recovery()')" = t ] || fail "the standby is not in recovery"

# 1. Reads: the same answers on both.
reads="$work/reads.sql"
cat >"$reads" <<'SQL'
SET client_min_messages = warning;
SELECT 'get_tau', tforge.get_tau('cpu-heavy'), tforge.get_tau('cpu-light');
SELECT 'estimate', * FROM tforge.estimate('cpu-heavy');
SELECT 'estimate key', * FROM tforge.estimate('cpu-heavy', 'r1', 'p95');
SELECT 'trending', * FROM tforge.trending('click', 3, '2026-01-01 01:00+00');
SELECT 'signal_score', tforge.signal_score(1, 'click', '2026-01-01 01:00+00'),
       tforge.signal_count(1, 'click', '1 day', '2026-01-01 01:00+00');
SELECT 'semver', '1.2.3'::tforge.semver < '1.10.0'::tforge.semver,
       tforge.semver_cmp('1.0.0-rc.1', '1.0.0'), tforge.latest_version('m1'), tforge.select_best_model('m1');
SELECT 'versions', version, state FROM tforge.model_versions ORDER BY version;
SELECT 'export', md5(tforge.export_profiles('json')), md5(tforge.export_profiles('csv'));
SELECT 'prediction_accuracy', * FROM tforge.prediction_accuracy ORDER BY 2, 3;
SQL
# every view of the schema, from the catalog
P -qXAt -d "$db" -c "SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(v::text, %L ORDER BY v::text), %L)) FROM %s v;',
                                  c.oid::regclass, ',', '', c.oid::regclass)
                       FROM pg_class c WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('v', 'm')
                      ORDER BY 1" >>"$reads"
P -qXAt -v ON_ERROR_STOP=1 -d "$db" -f "$reads" >"$work/reads.primary" 2>&1 || { fail "reads on the primary"; cat "$work/reads.primary"; }
S -qXAt -v ON_ERROR_STOP=1 -d "$db" -f "$reads" >"$work/reads.standby" 2>&1 || { fail "reads on the standby"; cat "$work/reads.standby"; }
diff -u "$work/reads.primary" "$work/reads.standby" >"$work/reads.diff" || { fail "the standby answers differently"; cat "$work/reads.diff"; }
nreads=$(grep -c . "$work/reads.primary")
echo "standby served $nreads result rows of $(grep -c '^SELECT' "$reads") read queries, the primary's answers"

# 2. Writes on the standby: every VOLATILE function (trigger functions
# excepted: they cannot be called), with plausible arguments, gives 25006;
# and the same on the primary in a READ ONLY transaction.
writes_sql="$work/writes.sql"
cat >"$writes_sql" <<'SQL'
SET client_min_messages = warning;
SELECT p.oid::regprocedure || '|' || r.state || '|' || coalesce(r.message, '')
  FROM pg_proc p, LATERAL (SELECT stmt FROM sweep.calls(p.oid) LIMIT 1) c, LATERAL sweep.try(c.stmt) r
 WHERE p.pronamespace = 'tforge'::regnamespace AND p.provolatile = 'v' AND p.prokind IN ('f', 'p')
   AND p.prorettype <> 'trigger'::regtype AND NOT 'internal'::regtype = ANY (p.proargtypes::oid[])
   -- volatile only because they read shared memory: they change nothing
   AND p.proname NOT IN ('governor_status', 'governor_housekeeping')
   -- superuser DDL for a Citus cluster: refused (55000) where Citus is not installed
   AND p.proname NOT IN ('distribute', '_citus_everywhere')
 ORDER BY 1;
SQL
PGOPTIONS="-c default_transaction_read_only=on" P -qXAt -d "$db" -f "$writes_sql" >"$work/writes.ro" 2>"$work/writes.ro.err" ||
	{ fail "the write calls in a read-only transaction did not run"; grep -v sweep "$work/writes.ro.err" | head; }
nro=$(grep -c . "$work/writes.ro")
refusedro=$(grep -cE '^[^|]+\|25006\|' "$work/writes.ro")
echo "primary, READ ONLY transaction: refused $refusedro of $nro state-changing functions with 25006"
if [ "$refusedro" != "$nro" ] || [ "$nro" = 0 ]; then
	fail "state-changing functions not refused with 25006 in a READ ONLY transaction:"
	grep -vE '^[^|]+\|25006\|' "$work/writes.ro" | sed 's/^/  /'
fi
S -qXAt -d "$db" -f "$writes_sql" >"$work/writes" 2>"$work/writes.err" ||
	{ fail "the write calls on the standby did not run"; grep -v sweep "$work/writes.err" | head; }
nwrites=$(grep -c . "$work/writes")
refused=$(grep -cE '^[^|]+\|25006\|' "$work/writes")
echo "standby refused $refused of $nwrites state-changing functions with 25006"
if [ "$refused" != "$nwrites" ] || [ "$nwrites" = 0 ]; then
	fail "state-changing functions on the standby not refused with 25006:"
	grep -vE '^[^|]+\|25006\|' "$work/writes" | sed 's/^/  /'
fi
[ "$(S -qXAt -d postgres -c 'SELECT 1')" = 1 ] || fail "the standby is down after the write calls"
grep -E 'terminated by signal' "$work/standby.log" && fail "a standby backend crashed"

# 3. Failover: acknowledged commits (remote_apply), then the primary dies.
export PGOPTIONS="-c synchronous_commit=remote_apply"
P -qXAt -v ON_ERROR_STOP=1 -d "$db" >/dev/null 2>"$work/last.err" <<'SQL' || { fail "last commits on the primary"; cat "$work/last.err"; }
SELECT tforge.submit_task('gpu-inference', task_key => 'before-failover') FROM generate_series(1, 5);
SELECT tforge.complete_task(t.task_id, 'wf', '{"runtime_s": 3}') FROM tforge.claim_tasks('wf', 2) t;
SELECT tforge.record_signal(42, 'click', 2.5, '2026-01-01 00:30+00');
SELECT tforge.transition_model('m1', '1.0.0', 'canary');
SQL
unset PGOPTIONS
# fingerprint of every tforge table (from the catalog): rows as text, sorted
fingerprint="$work/fingerprint.sql"
P -qXAt -d "$db" -c "SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t;',
                                  c.oid::regclass, E'\n', '', c.oid::regclass)
                       FROM pg_class c WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('r', 'p')
                      ORDER BY 1" >"$fingerprint"
echo "SELECT 'sequence ' || c.oid::regclass, pg_sequence_last_value(c.oid) FROM pg_class c WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind = 'S' ORDER BY 1;" >>"$fingerprint"
P -qXAt -v ON_ERROR_STOP=1 -d "$db" -f "$fingerprint" >"$work/fp.primary" 2>&1 || fail "fingerprint of the primary"
$AS pg_ctl -D "$work/primary" -m immediate stop >/dev/null
$AS pg_ctl -D "$work/standby" -w promote >/dev/null || fail "pg_ctl promote"
[ "$(S -qXAt -d postgres -c 'SELECT pg_is_in_recovery()')" = f ] || fail "the promoted standby is still in recovery"
S -qXAt -v ON_ERROR_STOP=1 -d "$db" -f "$fingerprint" >"$work/fp.standby" 2>&1 || fail "fingerprint of the promoted standby"
# the sequences' last values may run ahead on a standby (sequences log 32 values ahead)
if ! diff -u <(grep -v '^sequence ' "$work/fp.primary") <(grep -v '^sequence ' "$work/fp.standby") >"$work/fp.diff"; then
	fail "the promoted standby lost acknowledged commits:"; cat "$work/fp.diff"
fi
echo "promoted standby: $(grep -vc '^sequence ' "$work/fp.primary") tforge tables equal to the primary's at its last acknowledged commit"

# ... and carries on as the primary.
out=$(S -qXAt -v ON_ERROR_STOP=1 -d "$db" 2>&1 <<'SQL'
SET client_min_messages = warning;
SELECT tforge.submit_task('gpu-inference', task_key => 'after-failover') AS id \gset
SELECT count(*) > 0 FROM tforge.claim_tasks('wp', 1000);
SELECT tforge.complete_task(:id, 'wp', '{"runtime_s": 4}') IS NOT NULL;
SELECT status FROM tforge.tasks WHERE task_id = :id;
SELECT count(*) > 0 FROM tforge.tasks WHERE task_key = 'before-failover';
SQL
) || fail "the promoted standby does not carry on: $out"
[ "$(echo "$out" | tail -2 | paste -sd' ')" = "done t" ] || fail "after promotion: $out"
echo "promoted standby carries on: submit, claim, complete"
exit $status
