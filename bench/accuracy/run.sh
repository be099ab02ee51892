#!/usr/bin/env bash
# Accuracy benchmark of runtime learning: replays a real job trace through
# tforge.submit_task / claim_tasks / complete_task and compares every
# estimation strategy with two baselines computed in the same run, then
# times tforge.estimate against a plain avg() over the history.
#
#   bench/accuracy/run.sh [trace.csv]
#   TRACE=/path/to/trace.csv test/lib/harness.sh bench accuracy
#
# The trace has the columns job_id,submit_ts,runtime_s,user_id,app_id,
# queue_id,requested_s (default: the KTH SP2 trace in ../shared/data). One
# task type per trace, task_key = the user, usage runtime_s = the job's
# runtime, payload requested_s = the user's requested time (the estimator's
# upper bound).
#
# The replay runs twice: with the requested times, then with them stripped
# (a trace without requests), each with its own baselines. Processors come
# from the .swf.gz (field 8, requested; else 5, allocated) as resources.cpu.
# Every task is submitted with deadline_coverage => 0.9, and the report says
# how many runs stayed within that calibrated bound. Then a seeded synthetic
# bench (synthetic.sql) and the timing of tforge.estimate.
#
# History that counts: only jobs finished at submit time. Events are
# replayed in virtual time: a job is submitted at submit_ts and completes at
# submit_ts + wait + runtime_s. The CSV has no wait column: the wait is taken
# from the .swf.gz beside the CSV when there is one (same job ids), else it
# is assumed to be 0 (said so in the output).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The trace: the argument, else $TRACE, else the KTH trace in shared/data.
trace=${1:-${TRACE:-$here/../../../shared/data/KTH-SP2-1996-2.1-cln.csv}}
if [ ! -f "$trace" ]; then
	echo "bench/accuracy: trace file not found: $trace" >&2
	exit 2
fi
trace=$(cd "$(dirname "$trace")" && pwd)/$(basename "$trace")
swf=${trace%.csv}.swf.gz
db=tforge_bench_accuracy
export PGDATABASE=$db

# replay with|without: load the trace (requests stripped for "without"), replay, report
replay() {
	psql -qX -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
	psql -qX -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION tforge' \
	  -c 'CREATE TABLE trace (seq bigint GENERATED ALWAYS AS IDENTITY, job_id bigint, submit_ts float8, runtime_s float8, user_id text, app_id text, queue_id text, requested_s float8)' \
	  -c 'CREATE TABLE trace_wait (job_id bigint, wait_s float8, procs float8)'
	psql -qX -v ON_ERROR_STOP=1 -c "\\copy trace (job_id, submit_ts, runtime_s, user_id, app_id, queue_id, requested_s) FROM '$trace' WITH (FORMAT csv, HEADER true)"
	psql -qX -v ON_ERROR_STOP=1 -c 'CREATE INDEX ON trace_wait (job_id)'
	if [ -f "$swf" ]; then
		# SWF: field 1 job id, field 3 wait time (-1 when unknown, taken as 0),
		# field 8 requested processors, else field 5 allocated (-1: unknown)
		zcat "$swf" | awk '!/^;/ && NF >= 8 { w = ($3 < 0) ? 0 : $3; p = ($8 > 0) ? $8 : (($5 > 0) ? $5 : ""); print $1 "," w "," p }' |
			psql -qX -v ON_ERROR_STOP=1 -c "\\copy trace_wait FROM STDIN WITH (FORMAT csv)"
		echo "trace: $(basename "$trace"), waits and processors from $(basename "$swf")"
	else
		echo "trace: $(basename "$trace"), no .swf.gz beside it: every wait assumed 0 (a job finishes runtime_s after its submit), processors unknown"
	fi
	if [ "$1" = without ]; then
		psql -qX -v ON_ERROR_STOP=1 -c 'UPDATE trace SET requested_s = NULL'
	fi
	echo
	echo "== $(basename "$trace") $1 requested times: replaying $(psql -qAtX -c 'SELECT count(*) FROM trace WHERE runtime_s > 0 AND submit_ts IS NOT NULL') jobs through submit_task, claim_tasks, complete_task..."
	psql -qX -v ON_ERROR_STOP=1 -f "$here/replay.sql"
	psql -qX -v ON_ERROR_STOP=1 -v mode="$1" -f "$here/report.sql"
}

replay with
replay without
echo
echo "== synthetic: i.i.d. log-normal runtimes per key, seeded"
psql -qX -v ON_ERROR_STOP=1 -f "$here/synthetic.sql"
echo
echo "== tforge.estimate per call (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
psql -qX -v ON_ERROR_STOP=1 -f "$here/timing.sql"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

psql -qX -d postgres -c "DROP DATABASE $db"
