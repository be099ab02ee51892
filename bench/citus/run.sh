#!/usr/bin/env bash
# Citus benchmark (issue 12), one run: the same work on a Citus cluster (a
# coordinator and two workers on this machine, test/lib/citus-cluster.sh,
# ports TFORGE_CITUS_PORT, +100, +200; default PGPORT+100) and on the single
# node in PGHOST/PGPORT (harness.sh bench):
#   1. record_signals throughput: batches of 1,000 events on random entities
#      out of 1,000,000 (pgbench, 2 clients), events per second;
#   2. record_signal (one event, delegated to the entity's node) per second;
#   3. trending(..., 10) over 1,000,000 entities, best of three;
#   4. gpu_allocate (4 KiB on one of 16 devices of 1 TiB, delegated to the
#      device's node) per second.
# With the number of shards each call touched. On 2 cores shared by all
# nodes no speed-up is expected: the figures show the cost of routing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
T=${CITUS_BENCH_SECONDS:-5}
SHARDS=${CITUS_BENCH_SHARDS:-16}
N=1000000

if ! "$top/test/lib/citus-build.sh" 2>/tmp/citus-bench-build.$$; then
	echo "bench/citus skipped: $(tail -n 1 /tmp/citus-bench-build.$$)"
	rm -f /tmp/citus-bench-build.$$
	exit 0
fi
rm -f /tmp/citus-bench-build.$$

db=tforge_bench_citus
work=$(mktemp -d /tmp/tforge-citus-bench.XXXXXX)
chmod 755 "$work"
. "$top/test/lib/citus-cluster.sh"
cleanup() {
	citus_cluster_stop
	rm -rf "$work"
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
citus_cluster_start "$work/cluster" "${TFORGE_CITUS_PORT:-$((PGPORT + 100))}" "$SHARDS" >"$work/start.log" 2>&1 ||
	{ cat "$work/start.log"; exit 1; }
psql -qX -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
single() { psql -qXAt -v ON_ERROR_STOP=1 -d "$db" "$@"; }
cluster() { cpsql 0 -At "$@"; }
single -c "CREATE EXTENSION tforge" >/dev/null

# Both sides hold 1,000,000 entities before anything is timed.
fill="SELECT tforge.define_signal_type('bench', '1 hour');
SELECT tforge.record_signals(array_agg(i), 'bench', array_agg(1 + i / 1e7))
  FROM generate_series(1, $N) i;"
single -c "SET client_min_messages = warning" -c "$fill" -c "VACUUM ANALYZE tforge.signals" >/dev/null
cluster -c "SET client_min_messages = warning" -c "$fill" -c "VACUUM ANALYZE tforge.signals" >/dev/null

# trending on identical data (before the random writes below), timed
# inside one session: best of five, connections to the workers warm.
trend="SELECT * FROM tforge.trending('bench', 10)"
# (the entities: scores depend on when each side was filled)
top_ids="SELECT entity_id FROM tforge.trending('bench', 10)"
[ "$(single -c "$top_ids")" = "$(cluster -c "$top_ids")" ] ||
	{ echo "trending differs between the cluster and the single node" >&2; exit 1; }
best_ms() { "$@" -c '\timing on' -c "$trend" -c "$trend" -c "$trend" -c "$trend" -c "$trend" |
	sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | head -n 1; }
trend_single=$(best_ms single)
trend_cluster=$(best_ms cluster)
# The window aggregate over every entity (activity by newest minute):
# partial aggregates on the shards, combined on the coordinator.
wagg="SELECT tforge.window_total(tforge.window_agg(tforge.window_last_minute(counts), tforge.window_total(counts))) FROM tforge.signals WHERE signal_type = 'bench'"
[ "$(single -c "$wagg")" = "$(cluster -c "$wagg")" ] ||
	{ echo "window_agg differs between the cluster and the single node" >&2; exit 1; }
best_agg_ms() { "$@" -c '\timing on' -c "$wagg" -c "$wagg" -c "$wagg" |
	sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -n | head -n 1; }
wagg_single=$(best_agg_ms single)
wagg_cluster=$(best_agg_ms cluster)
wagg_plan=$(cluster -c "EXPLAIN (VERBOSE) $wagg")
wagg_tasks=$(echo "$wagg_plan" | sed -n 's/.*Task Count: \([0-9]*\).*/\1/p')
echo "$wagg_plan" | grep -q worker_partial_agg && wagg_how="partial aggregates on the shards" || wagg_how="NOT pushed down"

cat >"$work/batch.sql" <<SQL
SELECT tforge.record_signals(ARRAY(SELECT 1 + (random() * ($N - 1))::bigint FROM generate_series(1, 1000)), 'bench');
SQL
cat >"$work/one.sql" <<SQL
\set e random(1, $N)
SELECT tforge.record_signal(:e, 'bench');
SQL
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -n 1; }
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }
pgb() { pgbench -n -M simple -c 2 -j 2 -T "$T" -f "$@" 2>&1 | tps; }

batch_single=$(pgb "$work/batch.sql" -d "$db")
batch_cluster=$(pgb "$work/batch.sql" -h "$CITUS_DIR/n0" -p "${CITUS_PORTS[0]}" -d "$CITUS_DB")
one_single=$(pgb "$work/one.sql" -d "$db")
cluster -c "SELECT citus_stat_counters_reset()" >/dev/null
one_cluster=$(pgb "$work/one.sql" -h "$CITUS_DIR/n0" -p "${CITUS_PORTS[0]}" -d "$CITUS_DB")
counters=$(cluster -F ' ' -c "SELECT query_execution_single_shard, query_execution_multi_shard
                               FROM citus_stat_counters WHERE name = current_database()")

# GPU allocations: 16 devices, each call on a random one.
devices="SELECT count(tforge.gpu_add_device('gpu-' || i, 1099511627776)) FROM generate_series(0, 15) i"
single -c "$devices" >/dev/null
for i in $(seq 0 15); do cluster -c "SELECT tforge.gpu_add_device('gpu-$i', 1099511627776)" >/dev/null; done
cat >"$work/gpu.sql" <<'SQL'
\set d random(0, 15)
SELECT tforge.gpu_allocate('gpu-:d', 'bench', 4096);
SQL
gpu_single=$(pgb "$work/gpu.sql" -d "$db")
cluster -c "SELECT citus_stat_counters_reset()" >/dev/null
gpu_cluster=$(pgb "$work/gpu.sql" -h "$CITUS_DIR/n0" -p "${CITUS_PORTS[0]}" -d "$CITUS_DB")
gpu_counters=$(cluster -F ' ' -c "SELECT query_execution_single_shard, query_execution_multi_shard
                                   FROM citus_stat_counters WHERE name = current_database()")

# Shards a batch touches: those of its 1,000 entities.
batch_shards=$(cluster -c "SELECT count(DISTINCT get_shard_id_for_distribution_column('tforge.signals', 1 + (random() * ($N - 1))::bigint))
                             FROM generate_series(1, 1000)")
trend_tasks=$(cluster -c "EXPLAIN SELECT * FROM tforge.signals WHERE signal_type = 'bench' ORDER BY rank_key DESC LIMIT 10" |
	sed -n 's/.*Task Count: \([0-9]*\).*/\1/p')



echo "record_signals, 1,000 events per call, 2 clients: single node $(printf '%.0f' "$(echo "$batch_single * 1000" | bc -l)") events/s, Citus $(printf '%.0f' "$(echo "$batch_cluster * 1000" | bc -l)") events/s (each call touches $batch_shards of $SHARDS shards)"
echo "record_signal, one event per call, 2 clients: single node ${one_single} calls/s, Citus ${one_cluster} calls/s (delegated; counters single-shard/multi-shard: ${counters})"
echo "trending(bench, 10) over $N entities, same rows on both: single node ${trend_single} ms, Citus ${trend_cluster} ms (${trend_tasks} shards, 10 rows from each)"
echo "window_agg over $N entities, same total on both: single node ${wagg_single} ms, Citus ${wagg_cluster} ms (${wagg_tasks} shards, ${wagg_how})"
echo "gpu_allocate, 4 KiB on one of 16 devices per call, 2 clients: single node ${gpu_single} calls/s, Citus ${gpu_cluster} calls/s (delegated; counters single-shard/multi-shard: ${gpu_counters})"
echo "ratio record_signals throughput: $(ratio "$batch_cluster" "$batch_single") (tforge on Citus, 1 coordinator + 2 workers on one 2-core machine, vs a single node; target: none here, scales with worker machines)"
echo "ratio record_signal throughput: $(ratio "$one_cluster" "$one_single") (tforge on Citus, delegated single-shard calls, vs a single node; target: none here)"
echo "ratio trending latency: $(ratio "$trend_cluster" "$trend_single") (tforge on Citus vs a single node, lower is better; target: none here, a fixed fan-out cost)"
echo "ratio window_agg latency: $(ratio "$wagg_cluster" "$wagg_single") (tforge on Citus vs a single node, lower is better; target: none here, the shards aggregate in parallel on separate machines)"
echo "ratio gpu_allocate throughput: $(ratio "$gpu_cluster" "$gpu_single") (tforge on Citus, delegated to the device's node, vs a single node; target: none here, devices on different workers never wait on each other)"
