#!/usr/bin/env bash
# bench/peers: tforge against the job queues Node.js teams on PostgreSQL
# use, graphile-worker 0.17.3 and pg-boss 10.4.2 (package-lock.json, npm ci),
# in this one cluster, each in its own database, with the same worker
# connections and handler concurrency (bench.js documents the protocol):
#  1. enqueue JOBS no-op jobs in bulk (jobs/s);
#  2. drain them with no-op handlers (jobs/s, end to end);
#  3. submit -> handler start at RATE jobs/s to idle listening workers (p50/p99 ms
#     of LATENCY_JOBS jobs, after LATENCY_WARMUP jobs not measured);
# and tforge's batched drain against its own one-task-per-call cycle
# (SINGLE_JOBS jobs, claim_tasks(id, 1) + complete_task, same connections).
# Knobs to shorten a run: JOBS, SINGLE_JOBS, LATENCY_JOBS, ENQUEUE_ROUNDS.
# LATENCY_JOBS is 300 so that the p99 is the 297th of 300 starts rather than
# the 99th of 100 (the second-slowest, which one stray scheduling delay on a
# shared 2-core machine decides); LATENCY_SAMPLES_DIR=DIR keeps each
# system's samples in DIR/SYSTEM.txt.
# STEPS="enqueue latency" (say) runs some steps only (bench.js); a figure
# not measured prints "-" and has no ratio line.
# Needs PGHOST/PGPORT/PGUSER (make bench) and node + npm.
set -euo pipefail
export PGOPTIONS="-c client_min_messages=warning"
cd "$(dirname "$0")"
export JOBS=${JOBS:-100000} CONNECTIONS=${CONNECTIONS:-4} CONCURRENCY=${CONCURRENCY:-4} \
	BATCH=${BATCH:-500} CHUNK=${CHUNK:-5000} LATENCY_JOBS=${LATENCY_JOBS:-300} LATENCY_WARMUP=${LATENCY_WARMUP:-10} RATE=${RATE:-10} \
	SINGLE_JOBS=${SINGLE_JOBS:-5000}
npm ci --no-audit --no-fund --loglevel=error >/dev/null

# A backlog of JOBS pending tasks is what admission control calls a full
# queue at the default capacity: this throwaway cluster admits them all.
psql -qX -d postgres -c "ALTER SYSTEM SET tforge.queue_capacity = 100000000" -c "SELECT pg_reload_conf()" >/dev/null
trap 'psql -qX -d postgres -c "ALTER SYSTEM RESET tforge.queue_capacity" -c "SELECT pg_reload_conf()" >/dev/null' EXIT

# The machine may be shared, so the enqueue figure is the median of
# ENQUEUE_ROUNDS rounds, taken by the three systems in turn (round r of each
# before round r+1); the last round is the full run's, whose jobs its drain
# step runs. Extra rounds delete their jobs (bench.js, STEPS=enqueue).
ENQUEUE_ROUNDS=${ENQUEUE_ROUNDS:-3}
systems="tforge graphile-worker pg-boss"
dbname() { echo "tforge_bench_peers_${1//-/_}"; }
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A enq drain p50 p99 rounds
for sys in $systems tforge-single; do
	db=$(dbname "$sys")
	psql -qX -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
	if [ "${sys%-single}" = tforge ]; then
		psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
CREATE EXTENSION tforge CASCADE;
SELECT tforge.define_task_type('noop', 1);
SQL
	fi
done
if [[ " ${STEPS:-enqueue} " =~ [\ ,]enqueue[\ ,] ]]; then
	for ((r = 1; r < ENQUEUE_ROUNDS; r++)); do
		for sys in $systems; do
			rounds[$sys]+=" $(STEPS=enqueue node bench.js "$sys" "$(dbname "$sys")" | sed -n 's/^enqueue //p')"
		done
	done
fi
for sys in $systems; do
	db=$(dbname "$sys")
	out=$(LATENCY_SAMPLES=${LATENCY_SAMPLES_DIR:+$LATENCY_SAMPLES_DIR/$sys.txt} node bench.js "$sys" "$db")
	enq[$sys]=$(sed -n 's/^enqueue //p' <<<"$out")
	[ "${enq[$sys]}" = - ] || { rounds[$sys]+=" ${enq[$sys]}"; enq[$sys]=$(median "${rounds[$sys]}"); }
	drain[$sys]=$(sed -n 's/^drain //p' <<<"$out")
	p50[$sys]=$(sed -n 's/^latency \([^ ]*\) .*/\1/p' <<<"$out")
	p99[$sys]=$(sed -n 's/^latency [^ ]* //p' <<<"$out")
	psql -qX -d postgres -c "DROP DATABASE $db"
done
# tforge's one-task-per-call drain, when the drain step runs
drain[tforge-single]=-
if [[ " ${STEPS:-drain} " =~ [\ ,]drain[\ ,] ]]; then
	drain[tforge-single]=$(node bench.js tforge-single "$(dbname tforge-single)" | sed -n 's/^drain //p')
fi
psql -qX -d postgres -c "DROP DATABASE $(dbname tforge-single)"

echo "$JOBS no-op jobs; $CONNECTIONS connections and $CONCURRENCY handlers each; batches of $BATCH; latency at $RATE jobs/s ($LATENCY_JOBS jobs after $LATENCY_WARMUP unmeasured)"
echo "load average (1, 5, 15 min) at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
for sys in $systems; do
	[ -z "${rounds[$sys]:-}" ] || echo "$sys enqueue rounds (jobs/s):${rounds[$sys]}; median ${enq[$sys]}"
done
printf '%-16s drain %7s jobs/s (%s jobs, one task per claim_tasks and complete_task call)\n' \
	"tforge-single" "${drain[tforge-single]}" "$SINGLE_JOBS"
for sys in $systems; do
	printf '%-16s enqueue %7s jobs/s  drain %7s jobs/s  submit->start p50 %7s ms  p99 %7s ms\n' \
		"$sys" "${enq[$sys]}" "${drain[$sys]}" "${p50[$sys]}" "${p99[$sys]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
measured() { [ -n "$1" ] && [ "$1" != - ] && [ -n "$2" ] && [ "$2" != - ]; }
measured "${drain[tforge]}" "${drain[tforge-single]}" &&
	printf 'ratio batched drain vs single-task cycle: %s (tforge %s vs %s jobs/s; target >= 5.0)\n' \
		"$(ratio "${drain[tforge]}" "${drain[tforge-single]}")" "${drain[tforge]}" "${drain[tforge-single]}"
for peer in graphile-worker pg-boss; do
	measured "${enq[tforge]}" "${enq[$peer]}" &&
		printf 'ratio enqueue vs %s: %s (tforge %s vs %s %s jobs/s; target >= 1.0)\n' \
			"$peer" "$(ratio "${enq[tforge]}" "${enq[$peer]}")" "${enq[tforge]}" "$peer" "${enq[$peer]}"
	measured "${drain[tforge]}" "${drain[$peer]}" &&
		printf 'ratio drain vs %s: %s (tforge %s vs %s %s jobs/s; target >= 1.0)\n' \
			"$peer" "$(ratio "${drain[tforge]}" "${drain[$peer]}")" "${drain[tforge]}" "$peer" "${drain[$peer]}"
	# latency: the peer's p50 (p99) over tforge's, so that >= 1.0 means tforge starts sooner
	measured "${p50[tforge]}" "${p50[$peer]}" &&
		printf 'ratio submit->start p50 vs %s: %s (tforge %s ms vs %s %s ms; peer/tforge, target >= 1.0)\n' \
			"$peer" "$(ratio "${p50[$peer]}" "${p50[tforge]}")" "${p50[tforge]}" "$peer" "${p50[$peer]}"
	measured "${p99[tforge]}" "${p99[$peer]}" &&
		printf 'ratio submit->start p99 vs %s: %s (tforge %s ms vs %s %s ms; peer/tforge, target >= 1.0)\n' \
			"$peer" "$(ratio "${p99[$peer]}" "${p99[tforge]}")" "${p99[tforge]}" "$peer" "${p99[$peer]}"
done
true
