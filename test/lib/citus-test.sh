#!/usr/bin/env bash
# tforge on a Citus cluster (issue 12), run by test/lib/run-tests.sh:
#
#   - builds Citus once per machine (test/lib/citus-build.sh) and installs it
#     into the tree tforge is installed in; exit 77 (skipped, with the reason)
#     when that is impossible here;
#   - a coordinator and two workers on 127.0.0.1 (test/lib/citus-cluster.sh,
#     ports TFORGE_CITUS_PORT, +100, +200; default PGPORT+100), tforge
#     installed and distributed, removed afterwards;
#   - the same seeded workload (test/citus/setup.sql, then the hot calls
#     written below, one statement each: signals, registry, GPU devices and
#     allocations; then test/citus/after.sql: GPU calls by block id, the
#     queue claiming GPU memory, checkpoints created and garbage-collected)
#     on the cluster and on a single node (a database on the cluster in
#     PGHOST/PGPORT): after.sql and test/citus/fingerprint.sql must print
#     the same on both;
#   - the hot calls are delegated: Citus pushes every one down to one node
#     (its DEBUG message), and its counters show single-shard executions only;
#   - decay_agg, window_union, rolling_stats_agg and max/min(semver) run as
#     partial aggregates on the shards (EXPLAIN VERBOSE);
#   - C code never reads a shell table (tforge.assert_local_table, a chain
#     walk on a worker), and
#     tforge.distribute() refuses without Citus and on a worker;
#   - a worker restarted (immediate stop) in the middle of a run of
#     record_signal calls loses none of the calls that returned.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

"$top/test/lib/citus-build.sh" 2>"$PGHOST/citus-build.err"
rc=$?
if [ $rc = 3 ]; then
	echo "skipped: $(tail -n 1 "$PGHOST/citus-build.err")"
	exit 77
elif [ $rc != 0 ]; then
	cat "$PGHOST/citus-build.err"
	exit 1
fi

fail=0
check() { # check WHAT CONDITION-STATUS
	if [ "$2" = 0 ]; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi
}

work=$(mktemp -d /tmp/tforge-citus.XXXXXX)
chmod 755 "$work"
. "$top/test/lib/citus-cluster.sh"
single_db=tforge_citus_single
cleanup() {
	citus_cluster_stop
	[ -n "${TFORGE_CITUS_KEEP:-}" ] && cp -r "$work" "$TFORGE_CITUS_KEEP"
	rm -rf "$work"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $single_db WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT

citus_cluster_start "$work/cluster" "${TFORGE_CITUS_PORT:-$((PGPORT + 100))}" 8 nodistribute >"$work/start.log" 2>&1 ||
	{ cat "$work/start.log"; exit 1; }
echo "ok: coordinator and two workers up, tforge installed"

# tforge.distribute() is all or nothing: a failure in the middle (a lock it
# cannot get on tforge.gpu_blocks, after ten tables were distributed in its
# transaction) leaves the coordinator as it was, with its rows; a second
# call then distributes everything.
cpsql 0 -c "SELECT tforge.define_signal_type('before', '1 hour') IS NOT NULL" \
	-c "SELECT tforge.record_signal(42, 'before', 2, '2026-03-01 00:00+00')" \
	-c "SELECT tforge.register_model('m-before', '1.0.0', 'onnx') IS NOT NULL" >/dev/null
cpsql 0 -c "BEGIN" -c "LOCK tforge.gpu_blocks IN ACCESS SHARE MODE" -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
locker=$!
for i in $(seq 1 100); do
	[ "$(cpsql 0 -Atc "SELECT count(*) FROM pg_locks WHERE relation = 'tforge.gpu_blocks'::regclass AND granted")" -ge 1 ] && break
	sleep 0.1
done
out=$(cpsql 0 -c "SET lock_timeout = '2s'" -c "\\set VERBOSITY verbose" -c "SELECT * FROM tforge.distribute(8)" 2>&1)
kill "$locker" 2>/dev/null
cpsql 0 -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$locker" 2>/dev/null
echo "$out" | grep -q 'ERROR:  55P03'
check "tforge.distribute() fails in the middle (a lock on tforge.gpu_blocks it cannot get: $(echo "$out" | grep -m1 ERROR))" $?
state=$(cpsql 0 -Atc "SELECT (SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'tforge.%')
                         || ' ' || (SELECT count(*) FROM pg_dist_object WHERE classid = 'pg_proc'::regclass
                                       AND objid::regprocedure::text LIKE 'tforge.%' AND distribution_argument_index IS NOT NULL)
                         || ' ' || (SELECT count(*) FROM citus_shards WHERE table_name::text LIKE 'tforge.%')
                         || ' ' || tforge.signal_score(42, 'before', '2026-03-01 00:00+00')
                         || ' ' || (SELECT count(*) FROM tforge.model_versions WHERE model_id = 'm-before')")
wstate=$(cpsql 1 -Atc "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'tforge.%'")
[ "$state" = "0 0 0 2 1" ] && [ "$wstate" = 0 ]
check "after the failure nothing is distributed, on the coordinator or a worker, and the rows are in place (tables, delegated functions, shards, score, versions: $state; worker tables: $wstate)" $?
citus_distribute 8 >"$work/distribute.log" 2>&1
check "tforge.distribute() again distributes everything" $?
out=$(cpsql 0 -Atc "SELECT tforge.signal_score(42, 'before', '2026-03-01 00:00+00') || ' ' || tforge.latest_version('m-before')
                     || ' ' || (SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'tforge.%')")
[ "$out" = "2 1.0.0 14" ]  # 11 tables and the 3 lists derived from gpu_blocks
check "the rows written before are in the shards ($out)" $?
cpsql 0 -c "DELETE FROM tforge.signals WHERE signal_type = 'before'" -c "DELETE FROM tforge.signal_types WHERE name = 'before'" \
	-c "DELETE FROM tforge.model_versions WHERE model_id = 'm-before'" -c "DELETE FROM tforge.models WHERE model_id = 'm-before'" >/dev/null
out=$(cpsql 0 -c "\\set VERBOSITY verbose" -c "SET default_transaction_read_only = on" -c "SELECT * FROM tforge.distribute()" 2>&1)
echo "$out" | grep -q 'ERROR:  25006'
check "tforge.distribute() in a read-only transaction: 25006" $?
single() { psql -X -q -v ON_ERROR_STOP=1 -d "$single_db" "$@"; }
psql -X -q -d postgres -c "CREATE DATABASE $single_db" >/dev/null &&
	single -c "CREATE EXTENSION tforge" || exit 1

# The hot calls, one top-level statement each (Citus delegates a call only
# when it is the statement).
hot=$work/hot.sql
{
	for i in $(seq 0 199); do
		e=$(((i * 7919) % 1000 + 1))
		printf "SELECT tforge.record_signal(%d, 'view', %d.%d, '2026-03-01 00:00+00'::timestamptz + interval '%d seconds');\n" \
			$e $((1 + i % 3)) $((i % 10)) $(((i * 53) % 9000))
	done
	for i in $(seq 0 99); do
		e=$(((i * 131) % 300 + 1))
		printf "SELECT tforge.record_signal(%d, 'click', 1.%d, '2026-03-01 01:00+00'::timestamptz + interval '%d seconds');\n" \
			$e $((i % 10)) $(((i * 71) % 6000))
	done
	for m in $(seq 0 11); do
		printf "SELECT tforge.register_model('model-%d', '1.0.0', 'onnx', '{1,3}', '{10}', %d);\n" $m $((1000 * m))
		printf "SELECT tforge.register_model('model-%d', '1.1.0', 'onnx', '{1,3}', '{10}', %d, tags => '{\"m\": %d}');\n" $m $((1000 * m + 1)) $m
		[ $((m % 3)) = 0 ] && printf "SELECT tforge.register_model('model-%d', '2.0.0-rc.1', 'torch');\n" $m
		for s in validating staging canary; do
			printf "SELECT tforge.transition_model('model-%d', '1.0.0', '%s');\n" $m $s
			printf "SELECT tforge.transition_model('model-%d', '1.1.0', '%s');\n" $m $s
		done
		[ $((m % 2)) = 0 ] && printf "SELECT tforge.transition_model('model-%d', '1.0.0', 'production');\n" $m
		printf "SELECT tforge.record_validation('model-%d', '1.0.0', '{%d,20,30,40}', 0.%d);\n" $m $((10 + m)) $((90 - m))
		printf "SELECT tforge.record_validation('model-%d', '1.1.0', '{12,22,%d}', 0.%d);\n" $m $((25 + m)) $((85 + m % 4))
		printf "SELECT tforge.latest_version('model-%d');\n" $m
		printf "SELECT tforge.select_best_model('model-%d');\n" $m
	done
	for d in 0 1 2 3; do
		printf "SELECT tforge.gpu_add_device('gpu-%d', %d, 1215, '8.6');\n" $d $((1048576 * (d + 1)))
	done
	for i in $(seq 0 39); do
		pinned=false
		[ $((i % 7)) = 0 ] && pinned=true
		printf "SELECT tforge.gpu_allocate('gpu-%d', 't-%d', %d, %d, %s, %d);\n" \
			$((i % 4)) $i $(((i * 7919) % 50000 + 1000)) $((256 << (i % 3))) $pinned $((i % 5))
	done
	for d in 0 1 2 3; do
		printf "SELECT tforge.fragmentation_ratio('gpu-%d');\n" $d
		printf "SELECT tforge.gpu_evict('gpu-%d', 1);\n" $d
	done
} >"$hot"
nhot=$(wc -l <"$hot")

# Part 1 on both; the hot calls on the cluster with Citus's DEBUG messages
# and counters from zero.
cpsql 0 -f test/citus/setup.sql >"$work/setup.cluster" 2>&1
check "seeded workload (signals batch, queue) on the cluster" $?
single -f test/citus/setup.sql >"$work/setup.single" 2>&1
check "seeded workload on a single node" $?
cpsql 0 -c "SELECT citus_stat_counters_reset()" >/dev/null
{ echo "SET client_min_messages = debug1;"; cat "$hot"; } | cpsql 0 -At >"$work/hot.cluster" 2>"$work/hot.debug"
check "$nhot hot calls on the cluster" $?
single -At -f "$hot" >"$work/hot.single" 2>&1
check "$nhot hot calls on a single node" $?
pushed=$(grep -c 'pushing down the function call' "$work/hot.debug")
[ "$pushed" = "$nhot" ]
check "every hot call delegated to the node of its key ($pushed of $nhot pushed down)" $?
counters=$(cpsql 0 -Atc "SELECT query_execution_single_shard || ' ' || query_execution_multi_shard
                           FROM citus_stat_counters WHERE name = current_database()")
set -- $counters
[ "${1:-0}" -ge "$nhot" ] && [ "${2:-1}" = 0 ]
check "hot calls are single-shard (citus_stat_counters: ${1:-?} single-shard, ${2:-?} multi-shard executions)" $?
# Rows the registry calls return carry times and serial ids: compared below
# through the tables, without them.
diff -u <(grep -v '^(' "$work/hot.single") <(grep -v '^(' "$work/hot.cluster") >"$work/hot.diff"
st=$?
check "hot calls return the same on the cluster and on a single node" $st
[ $st = 0 ] || head -40 "$work/hot.diff"

# Part 3 on both: GPU calls by block id and the queue's GPU claims on the
# coordinator, routed by device; checkpoints created and garbage-collected.
cpsql 0 -f test/citus/after.sql >"$work/after.cluster" 2>&1
check "GPU calls by block id, GPU claims, checkpoints and GC on the cluster" $?
single -f test/citus/after.sql >"$work/after.single" 2>&1
check "the same on a single node" $?
diff -u "$work/after.single" "$work/after.cluster" >"$work/after.diff"
st=$?
[ $st = 0 ] && grep -q '^ gc run-' "$work/after.single" && grep -q '^42704$' "$work/after.single"
check "they return the same on the cluster and on a single node (GC removed $(grep -c '^ gc run-' "$work/after.single") checkpoints)" $?
[ $st = 0 ] || head -40 "$work/after.diff"

# Part 4 on both: GPU calls by device and block, checkpoint calls by run
# and checkpoint, each a statement Citus delegates.
n2=$(grep -c '^SELECT.*tforge\.' test/citus/hot2.sql)
cpsql 0 -c "SELECT citus_stat_counters_reset()" >/dev/null
{ echo "SET client_min_messages = debug1;"; cat test/citus/hot2.sql; } | cpsql 0 >"$work/hot2.cluster" 2>"$work/hot2.debug"
check "$n2 GPU calls by device and block and checkpoint calls by run on the cluster" $?
single -f test/citus/hot2.sql >"$work/hot2.single" 2>&1
check "the same on a single node" $?
pushed=$(grep -c 'pushing down the function call' "$work/hot2.debug")
counters=$(cpsql 0 -Atc "SELECT query_execution_single_shard || ' ' || query_execution_multi_shard
                           FROM citus_stat_counters WHERE name = current_database()")
set -- $counters
[ "$pushed" = "$n2" ] && [ "${2:-1}" = 0 ]
check "every one delegated to the node of its device or run ($pushed of $n2 pushed down; counters: ${1:-?} single-shard, ${2:-?} multi-shard)" $?
diff -u "$work/hot2.single" "$work/hot2.cluster" >"$work/hot2.diff"
st=$?
check "they return the same on the cluster and on a single node" $st
[ $st = 0 ] || head -40 "$work/hot2.diff"

# Everything the workload wrote and read, on both.
cpsql 0 -f test/citus/fingerprint.sql >"$work/fp.cluster" 2>&1
single -f test/citus/fingerprint.sql >"$work/fp.single" 2>&1
if diff -u "$work/fp.single" "$work/fp.cluster" >"$work/fp.diff" && [ "$(grep -c . "$work/fp.single")" -gt 1000 ]; then
	check "signals, trending, aggregates, registry, tasks, learned state, GPU blocks and checkpoints equal the single node's" 0
else
	check "signals, trending, aggregates, registry, tasks, learned state, GPU blocks and checkpoints equal the single node's" 1
	head -60 "$work/fp.diff"
fi

# Partial aggregates on the shards, combined on the coordinator.
for agg in "tforge.decay_agg(tforge.decay_value(score, now()), now(), '1 hour')" \
	"tforge.window_union(counts)" \
	"tforge.window_agg(tforge.window_last_minute(counts), tforge.window_total(counts))" \
	"tforge.rolling_stats_agg(rank_key)"; do
	plan=$(cpsql 0 -Atc "EXPLAIN (VERBOSE, COSTS OFF) SELECT signal_type, $agg FROM tforge.signals GROUP BY 1")
	echo "$plan" | grep -q 'worker_partial_agg' && echo "$plan" | grep -q 'coord_combine_agg'
	check "${agg%%(*} runs as partial aggregates on the shards" $?
done
plan=$(cpsql 0 -Atc "EXPLAIN (VERBOSE, COSTS OFF) SELECT tforge.max(version), tforge.min(version) FROM tforge.model_versions")
echo "$plan" | grep -q 'worker_partial_agg' && echo "$plan" | grep -q 'coord_combine_agg'
check "max/min(semver) run as partial aggregates on the shards" $?
plan=$(cpsql 0 -Atc "EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM tforge.signals WHERE signal_type = 'view' ORDER BY rank_key DESC LIMIT 10")
echo "$plan" | grep -q 'Task Count: 8' && echo "$plan" | grep -q "ORDER BY rank_key DESC LIMIT '10'"
check "trending's top-k: each of the 8 shards returns its own top k, merged on the coordinator" $?

# No C code reads a shell table; distribute() refuses where it cannot work.
out=$(cpsql 0 -Atc "SELECT tforge.assert_local_table('tforge.tasks'), tforge.assert_local_table('tforge.task_tau')" 2>&1)
[ "$out" = "tforge.tasks|tforge.task_tau" ]
check "the queue's tables are read directly on the coordinator ($out)" $?
for t in signals signal_types model_versions gpu_devices gpu_blocks checkpoints checkpoint_runs checkpoint_policies; do
	out=$(cpsql 0 -Atc "\\set VERBOSITY verbose" -c "SELECT tforge.assert_local_table('tforge.$t')" 2>&1)
	echo "$out" | grep -q "ERROR:  55000: table \"$t\" is a Citus table"
	check "a direct read of the shell tforge.$t is refused on the coordinator (55000)" $?
done
out=$(cpsql 1 -Atc "\\set VERBOSITY verbose" -c "SELECT tforge.assert_local_table('tforge.tasks')" 2>&1)
echo "$out" | grep -q 'ERROR:  55000: table "tasks" is kept on the Citus coordinator, and this node is a worker'
check "a direct read of tforge.tasks is refused on a worker (55000)" $?
ck=$(cpsql 0 -Atc "SELECT checkpoint_id FROM tforge.latest_checkpoint('run-a')")
for n in 0 2; do
	out=$(cpsql $n -Atc "\\set VERBOSITY verbose" -c "SELECT tforge.chain_length('$ck')" 2>&1)
	echo "$out" | grep -q 'ERROR:  55000: tforge.checkpoints is distributed by training run: this call must name the run'
	check "a chain walk given only a checkpoint id refuses on node $n rather than read the shell (55000)" $?
done
out=$(cpsql 0 -Atc "\\set VERBOSITY verbose" -c "SELECT tforge.chain_length('run-a', '$ck') FROM generate_series(1, 1)" 2>&1)
echo "$out" | grep -q 'ERROR:  55000: the checkpoints of training run "run-a" are in shard [0-9]*, which is not on this node'
check "a run-keyed chain walk Citus cannot delegate refuses on the coordinator (55000)" $?
out=$(cpsql 0 -Atc "SELECT tforge.chain_length('run-a', '$ck') = tforge.chain_length('run-a', '$ck')" 2>&1)
single_len=$(single -Atc "SELECT tforge.chain_length('run-a', (SELECT checkpoint_id FROM tforge.latest_checkpoint('run-a')))")
out=$(cpsql 0 -Atc "SELECT tforge.chain_length('run-a', '$ck')" 2>&1)
[ -n "$single_len" ] && [ "$out" = "$single_len" ]
check "a run-keyed chain walk delegated to the run's node reads its shard (length $out, single node $single_len)" $?
out=$(cpsql 0 -Atc "SELECT count(*) FROM tforge.checkpoints c WHERE tforge.chain_length(c.training_run_id, c.checkpoint_id) > 0" 2>&1)
[ "$out" = "$(single -Atc "SELECT count(*) FROM tforge.checkpoints c WHERE tforge.chain_length(c.training_run_id, c.checkpoint_id) > 0")" ]
check "chain walks inside a query over every shard read each shard on its node ($out checkpoints)" $?
for q in "tforge.latest_version(NULL)" "tforge.gpu_pool_stats(NULL)" "tforge.chain_length(NULL, 'x')" "* FROM tforge.checkpoint_gc()"; do
	out=$(cpsql 0 -c "SELECT $q" 2>&1)
	! echo "$out" | grep -q 'server closed the connection'
	check "a NULL key is not handed to Citus's delegation, which would crash (SELECT $q; the coordinator is up)" $?
done
out=$(single -Atc "SELECT tforge.assert_local_table('tforge.signals')" 2>&1)
[ "$out" = "tforge.signals" ]
check "without Citus every table is read directly" $?
out=$(single -c "\\set VERBOSITY verbose" -c "SELECT * FROM tforge.distribute()" 2>&1)
echo "$out" | grep -q 'ERROR:  55000: Citus is not installed in this database'
check "tforge.distribute() without Citus: 55000" $?
out=$(cpsql 1 -c "\\set VERBOSITY verbose" -c "SELECT * FROM tforge.distribute()" 2>&1)
echo "$out" | grep -q 'ERROR:  55000: tforge.distribute() must run on the Citus coordinator'
check "tforge.distribute() on a worker: 55000" $?
out=$(cpsql 0 -Atc "SELECT count(*) FILTER (WHERE detail = 'already distributed') FROM tforge.distribute()" 2>&1)
[ "$out" = 14 ]
check "tforge.distribute() again changes nothing ($out tables already distributed)" $?

# A worker restarted in the middle of a run: every call that returned is kept.
: >"$work/acked"
for i in $(seq 1 150); do
	if [ $i = 50 ]; then citus_node_restart 1 & fi
	if cpsql 0 -Atc "SELECT tforge.record_signal($i, 'click', 1, '2026-03-02 00:00+00')" >/dev/null 2>&1; then
		echo $i >>"$work/acked"
	fi
done
wait
sleep 1
acked=$(wc -l <"$work/acked")
kept=$(cpsql 0 -Atc "SELECT count(*) FROM tforge.signals
                      WHERE signal_type = 'click' AND entity_id = ANY ('{$(paste -sd, "$work/acked")}'::bigint[])
                        AND tforge.window_count(counts, '1 hour', '2026-03-02 00:30+00') = 1")
[ -n "$acked" ] && [ "$kept" = "$acked" ] && [ "$acked" -ge 100 ]
check "worker restarted mid-run: $kept of $acked acknowledged record_signal calls kept" $?

exit $fail
