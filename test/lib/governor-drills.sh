#!/usr/bin/env bash
# Governor drills: the background worker measured in a database of its own.
#
# The pgTAP suites in test/t run in fresh databases the worker never sees,
# so the governor's are here: this script makes database tforge_governor
# (from the suites' template), points tforge.governor_database at it (the
# worker restarts to connect), runs test/governor/*.sql there through
# pg_prove, checks a cluster without the preload (RED only, one NOTICE)
# and that a streaming standby runs no governor, and puts everything back.
# Needs PGHOST/PGPORT/PGUSER of a running cluster started by
# test/lib/harness.sh, with tforge preloaded, and the template
# tforge_tap_template (test/lib/run-tests.sh makes it). Uses ports
# PGPORT + 100 (standby) and PGPORT + 200 (no preload).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
db=tforge_governor
standby_port=$((PGPORT + 100))
nopreload_port=$((PGPORT + 200))
tmp=$(mktemp -d /tmp/tforge-governor.XXXXXX)
chmod 755 "$tmp"
if [ "$(id -u)" = 0 ]; then AS="runuser -u postgres --"; chown postgres: "$tmp"; else AS=""; fi
q() { psql -qXAt -v ON_ERROR_STOP=1 -d postgres "$@"; }

cleanup() {
	$AS pg_ctl -D "$tmp/standby" -m immediate stop >/dev/null 2>&1 || true
	$AS pg_ctl -D "$tmp/nopreload" -m immediate stop >/dev/null 2>&1 || true
	q -c "ALTER SYSTEM RESET tforge.governor_database" -c "ALTER SYSTEM RESET tforge.governor_cooldown" \
		-c "ALTER SYSTEM RESET tforge.expire_leases_interval" -c "ALTER SYSTEM RESET tforge.queue_capacity" \
		-c "ALTER SYSTEM RESET tforge.admission_rate" -c "SELECT pg_reload_conf()" >/dev/null || true
	q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db TEMPLATE tforge_tap_template" >/dev/null
q -c "ALTER SYSTEM SET tforge.governor_database = '$db'" -c "ALTER SYSTEM SET tforge.governor_cooldown = '200ms'" \
	-c "ALTER SYSTEM SET tforge.expire_leases_interval = '1s'" -c "SELECT pg_reload_conf()" >/dev/null

status=0
for t in "$top"/test/governor/*.sql; do
	echo "# $(basename "$t")"
	pg_prove -v -f -d "$db" "$t" || status=1
done

# Without the preload: no worker, no crash on loading the library in a
# backend, RED only and a NOTICE once per session, override refused (55000).
echo "# without shared_preload_libraries on port $nopreload_port"
$AS initdb -D "$tmp/nopreload" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
cat >>"$tmp/nopreload/postgresql.conf" <<CONF
port = $nopreload_port
unix_socket_directories = '$tmp'
listen_addresses = ''
fsync = off
CONF
$AS pg_ctl -D "$tmp/nopreload" -l "$tmp/nopreload.log" -w start >/dev/null
out=$(psql -X -h "$tmp" -p "$nopreload_port" -d postgres 2>&1 <<'SQL'
SET client_min_messages = notice;
CREATE EXTENSION tforge;
SELECT tforge.submit_task('cpu-light') + tforge.submit_task('cpu-light') AS ids;
SELECT tforge.submit_task('cpu-light') AS id;
SELECT 'running=' || running || ' admitted=' || admitted FROM tforge.governor_status();
SELECT tforge.governor_override(0.5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SQL
)
$AS pg_ctl -D "$tmp/nopreload" -m fast stop >/dev/null
notices=$(echo "$out" | grep -c 'NOTICE:  tforge is not in shared_preload_libraries' || true)
echo "without preload: $notices NOTICE(s) for 3 submits; $(echo "$out" | grep -o 'running=.*'); override: $(echo "$out" | grep -o 'SQLSTATE .*')"
if [ "$notices" = 1 ] && echo "$out" | grep -q 'running=false admitted=3' && echo "$out" | grep -q 'SQLSTATE 55000'; then
	echo "ok - without the preload: RED only, one NOTICE per session, no worker"
else
	echo "$out"
	echo "not ok - without the preload"
	status=1
fi

# A streaming standby of this cluster: the worker is registered there too
# (same configuration) but starts only once recovery is finished, so the
# standby shows no governor backend and governor_status() says not running.
echo "# standby on port $standby_port"
$AS pg_basebackup -D "$tmp/standby" -R -X stream -c fast -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" >/dev/null
cat >>"$tmp/standby/postgresql.auto.conf" <<CONF
port = $standby_port
unix_socket_directories = '$tmp'
CONF
$AS pg_ctl -D "$tmp/standby" -l "$tmp/standby.log" -w start >/dev/null
sleep 2
in_recovery=$(psql -qXAt -h "$tmp" -p "$standby_port" -d "$db" -c "SELECT pg_is_in_recovery()")
governors=$(psql -qXAt -h "$tmp" -p "$standby_port" -d "$db" \
	-c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tforge governor'")
running=$(psql -qXAt -h "$tmp" -p "$standby_port" -d "$db" -c "SELECT running FROM tforge.governor_status()")
override=$(psql -qXAt -h "$tmp" -p "$standby_port" -d "$db" -c "SELECT tforge.governor_override(0.9)" 2>&1 || true)
echo "standby: in recovery $in_recovery, governor backends $governors, governor_status().running $running"
echo "standby: governor_override: $override"
if [ "$in_recovery" = t ] && [ "$governors" = 0 ] && [ "$running" = f ] &&
	echo "$override" | grep -q 'cannot execute governor_override() during recovery'; then
	echo "ok - nothing of the governor runs on a standby"
else
	echo "not ok - the standby runs a governor"
	status=1
fi
exit $status
