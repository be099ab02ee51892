#!/usr/bin/env bash
# A throwaway Citus cluster on 127.0.0.1: a coordinator and two workers, each
# its own PostgreSQL cluster with a private port and socket directory, tforge
# installed on the coordinator (Citus creates it on the workers) and
# distributed with tforge.distribute(). Sourced by test/lib/citus-test.sh and
# bench/citus/run.sh:
#
#   . test/lib/citus-cluster.sh
#   citus_cluster_start DIR PORT [SHARDS [nodistribute]]
#                                          nodes on PORT, PORT+100, PORT+200;
#                                          nodistribute: tforge installed, not
#                                          distributed (citus_distribute does it)
#   citus_node_restart N                   immediate stop and start of node N
#   citus_cluster_stop                     stops the nodes, removes DIR
#
# After start: CITUS_DB (database name, the same on every node),
# CITUS_PORTS (coordinator first), CITUS_DIR, and cpsql N ... runs psql on node
# N (0 = coordinator). Needs PGBIN on PATH (the tree Citus is installed in).

CITUS_DB=tforge_citus
if [ "$(id -u)" = 0 ]; then CITUS_AS="runuser -u postgres --"; else CITUS_AS=""; fi

# psql on node N: cpsql N [psql args...]
cpsql() {
	local n=$1; shift
	psql -X -q -v ON_ERROR_STOP=1 -h "$CITUS_DIR/n$n" -p "${CITUS_PORTS[$n]}" -d "$CITUS_DB" "$@"
}

citus_node_restart() {
	local n=$1
	$CITUS_AS pg_ctl -D "$CITUS_DIR/n$n/data" -m immediate stop >/dev/null
	$CITUS_AS pg_ctl -D "$CITUS_DIR/n$n/data" -l "$CITUS_DIR/n$n/server.log" -w start >/dev/null
}

citus_cluster_stop() {
	local n
	[ -n "${CITUS_DIR:-}" ] || return 0
	for n in 0 1 2; do
		[ -d "$CITUS_DIR/n$n/data" ] &&
			$CITUS_AS pg_ctl -D "$CITUS_DIR/n$n/data" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$CITUS_DIR"
	CITUS_DIR=
}

# tforge.distribute(SHARDS) on the coordinator.
citus_distribute() {
	cpsql 0 -c "SET client_min_messages = warning" -c "SELECT * FROM tforge.distribute(${1:-8})"
}

citus_cluster_start() {
	local dir=$1 port=$2 shards=${3:-8} mode=${4:-} n
	CITUS_DIR=$dir
	CITUS_PORTS=("$port" "$((port + 100))" "$((port + 200))")
	[ "$(id -u)" = 0 ] && export PGUSER=postgres
	mkdir -p "$dir"
	chmod 755 "$dir"
	for n in 0 1 2; do
		mkdir -p "$dir/n$n"
		[ "$(id -u)" = 0 ] && chown postgres: "$dir" "$dir/n$n"
		$CITUS_AS initdb -D "$dir/n$n/data" -A trust -E UTF8 --locale=C.UTF-8 >"$dir/n$n/initdb.log" 2>&1 ||
			{ cat "$dir/n$n/initdb.log"; return 1; }
		cat >>"$dir/n$n/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${CITUS_PORTS[$n]}
unix_socket_directories = '$dir/n$n'
shared_preload_libraries = 'citus,tforge'
max_connections = 100
max_prepared_transactions = 100
fsync = off
citus.enable_stat_counters = on
citus.log_remote_commands = off
CONF
		$CITUS_AS pg_ctl -D "$dir/n$n/data" -l "$dir/n$n/server.log" -w start >/dev/null ||
			{ cat "$dir/n$n/server.log"; return 1; }
		psql -X -q -v ON_ERROR_STOP=1 -h "$dir/n$n" -p "${CITUS_PORTS[$n]}" -d postgres \
			-c "CREATE DATABASE $CITUS_DB" >/dev/null || return 1
		cpsql "$n" -c "SET client_min_messages = warning; CREATE EXTENSION citus" || return 1
	done
	cpsql 0 >/dev/null <<SQL || return 1
SET client_min_messages = warning;
SELECT citus_set_coordinator_host('127.0.0.1', ${CITUS_PORTS[0]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[1]});
SELECT citus_add_node('127.0.0.1', ${CITUS_PORTS[2]});
CREATE EXTENSION tforge;
SQL
	[ "$mode" = nodistribute ] || citus_distribute "$shards" >/dev/null
}
