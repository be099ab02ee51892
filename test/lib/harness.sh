#!/usr/bin/env bash
# The README's commands: set up, build, install, start a throwaway cluster,
# then run the demo, the test suites or the benchmarks, and remove the cluster.
#
#   harness.sh demo | test | stress | bench [bench-name...] | shell
#
# stress runs the long suites (test/lib/crash-stress.sh: crash cycles under
# load, fsync = on; test/lib/claim-head-stress.sh: claims against a
# brute-force order after concurrent writers, claimers and operators;
# test/lib/claim-head-fatal.sh: backends terminated in a claim's walk).
#
# Environment (all optional):
#   TFORGE_PORT      port of the throwaway cluster (default 55432)
#   TFORGE_DESTDIR   install into this DESTDIR and run the PostgreSQL copy in
#                    it instead of the system one (lets several checkouts be
#                    tested side by side; see test/lib/private-pg.sh)
#   TFORGE_KEEP=1    leave the cluster running and print how to reach it
set -euo pipefail

mode=${1:-test}; shift || true
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

"$top/test/lib/setup.sh"

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGBIN=$($PG_CONFIG --bindir)
if [ -n "${TFORGE_DESTDIR:-}" ]; then PGBIN="$TFORGE_DESTDIR$PGBIN"; fi
export PATH="$PGBIN:$PATH"

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi

# Build (warnings are errors) and install.
make -s PG_CONFIG=$PG_CONFIG >/dev/null
if [ -n "${TFORGE_DESTDIR:-}" ]; then
	make -s PG_CONFIG=$PG_CONFIG install DESTDIR="$TFORGE_DESTDIR" >/dev/null
else
	$SUDO make -s PG_CONFIG=$PG_CONFIG install >/dev/null
fi

# The throwaway cluster: private port and socket directory, owned by the
# postgres user when we are root (initdb refuses to run as root).
port=${TFORGE_PORT:-55432}
work=$(mktemp -d /tmp/tforge-cluster.XXXXXX)
chmod 755 "$work"
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$work"
	AS="runuser -u postgres --"
	export PGUSER=postgres
else
	AS=""
	export PGUSER=$(id -un)
fi
export PGHOST="$work" PGPORT="$port" PGDATABASE=postgres

cleanup() {
	if [ "${TFORGE_KEEP:-0}" = 1 ]; then
		echo "cluster kept: PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER ($PGBIN/pg_ctl -D $work/data stop)"
		return
	fi
	$AS "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

$AS "$PGBIN/initdb" -D "$work/data" -A trust -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log"; exit 1; }
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$work'
shared_preload_libraries = 'tforge'
max_connections = 60
max_prepared_transactions = 10
CONF
case "$mode" in
	test | demo) echo "fsync = off" >>"$work/data/postgresql.conf" ;;
	bench) cat >>"$work/data/postgresql.conf" <<CONF
shared_buffers = 1GB
max_wal_size = 8GB
synchronous_commit = off
max_parallel_workers_per_gather = 2
CONF
	;;
esac
$AS "$PGBIN/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null ||
	{ cat "$work/server.log"; exit 1; }

case "$mode" in
	test) "$top/test/lib/run-tests.sh" ;;
	stress)
		status=0
		"$top/test/lib/crash-stress.sh" || status=1
		"$top/test/lib/claim-head-stress.sh" || status=1
		"$top/test/lib/claim-head-fatal.sh" || status=1
		exit $status
		;;
	demo) "$top/test/lib/demo.sh" ;;
	bench)
		status=0
		benches=${*:-$(cd bench && ls -d */ | tr -d /)}
		for b in $benches; do
			echo "== bench/$b"
			"$top/bench/$b/run.sh" || status=1
		done
		exit $status
		;;
	shell) TFORGE_KEEP=1; echo "cluster up" ;;
	*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
