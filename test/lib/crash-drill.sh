#!/usr/bin/env bash
# Crash drill: two workers claim and complete tasks (each completion, with
# its tau update, profile update and a signal, committed in one transaction)
# while the server is stopped with "pg_ctl stop -m immediate" (no shutdown
# checkpoint: recovery replays the WAL), then restarted. Every completion a
# worker saw commit must be there afterwards, with tau samples, profile run
# counts and signals that agree with the tasks table, and no task may be lost.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with data in $PGHOST/data
# and log $PGHOST/server.log, as test/lib/harness.sh starts it.
set -euo pipefail

n=${DRILL_TASKS:-400}
db=tforge_crash_drill
tmp=$(mktemp -d /tmp/tforge-drill.XXXXXX)
if [ "$(id -u)" = 0 ]; then AS="runuser -u postgres --"; else AS=""; fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION tforge;
INSERT INTO tforge.signal_types (name, half_life) VALUES ('completed', '1 hour');
SELECT tforge.submit_task(CASE WHEN i % 3 = 0 THEN 'gpu-training' ELSE 'cpu-light' END)
  FROM generate_series(1, $n) i;
SQL

# A worker: claim one task, then complete it and record a signal in one
# transaction; only after psql reports the commit is the id written down.
worker() {
	local w=$1 id
	while id=$(psql -qXAt -v ON_ERROR_STOP=1 -d "$db" -c "SELECT task_id FROM tforge.claim_tasks('$w')" 2>/dev/null) &&
		[ -n "$id" ]; do
		psql -qXAt -v ON_ERROR_STOP=1 -d "$db" >/dev/null 2>&1 <<SQL || return 0
BEGIN;
SELECT tforge.complete_task($id, '$w', '{"runtime_s": $((id % 7 + 1))}');
SELECT tforge.record_signal($id, 'completed');
COMMIT;
SQL
		echo "$id" >>"$tmp/committed.$w"
	done
}
touch "$tmp/committed.w1" "$tmp/committed.w2"
worker w1 & pids+=($!)
worker w2 & pids+=($!)

# Crash once a good part of the queue is done, while both workers are busy.
for _ in $(seq 1 600); do
	[ "$(cat "$tmp"/committed.* | wc -l)" -ge $((n / 4)) ] && break
	sleep 0.1
done
$AS pg_ctl -D "$PGHOST/data" -m immediate stop >/dev/null
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
$AS pg_ctl -D "$PGHOST/data" -l "$PGHOST/server.log" -w start >/dev/null

committed=$(cat "$tmp"/committed.* | wc -l)
echo "crash drill: $committed completions committed before the crash"
status=0
check() {  # check "what" "SQL returning no rows when fine"
	local out
	out=$(psql -qXAt -v ON_ERROR_STOP=1 -d "$db" -c "$2" 2>&1) || { echo "FAILED $1: $out"; status=1; return; }
	if [ -n "$out" ]; then echo "FAILED $1:"; echo "$out" | head -10; status=1; fi
}
[ "$committed" -gt 0 ] && [ "$committed" -lt "$n" ] ||
	{ echo "FAILED the crash did not come in the middle of the run"; status=1; }
ids=$(cat "$tmp"/committed.* | paste -sd, -)
check "every completion a worker saw commit is done" "
  SELECT c.id FROM unnest('{${ids}}'::bigint[]) c(id)
    LEFT JOIN tforge.tasks t ON t.task_id = c.id WHERE t.status IS DISTINCT FROM 'done'"
check "no task is lost" "
  SELECT count(*), count(*) FILTER (WHERE status IN ('pending', 'running', 'done', 'dead'))
    FROM tforge.tasks HAVING count(*) <> $n OR count(*) FILTER (WHERE status IN ('pending', 'running', 'done', 'dead')) <> $n"
check "at least the committed completions are done" "
  SELECT count(*) FROM tforge.tasks WHERE status = 'done' HAVING count(*) < $committed"
check "tau samples equal the done tasks with a runtime, per type" "
  SELECT t.task_type, t.n, coalesce(u.samples, 0) FROM
    (SELECT task_type, count(*) n FROM tforge.tasks WHERE status = 'done' AND runtime_s IS NOT NULL GROUP BY 1) t
    FULL JOIN tforge.task_tau u USING (task_type)
   WHERE t.n IS DISTINCT FROM u.samples"
check "profile run counts equal the done tasks, per type" "
  SELECT t.task_type, t.n, p.completions FROM
    (SELECT task_type, count(*) n FROM tforge.tasks WHERE status = 'done' GROUP BY 1) t
    FULL JOIN (SELECT task_type, completions FROM tforge.profiles WHERE task_key IS NULL) p USING (task_type)
   WHERE t.n IS DISTINCT FROM p.completions"
check "every done task has its signal, and no other task has one" "
  SELECT coalesce(t.task_id, s.entity_id) FROM
    (SELECT task_id FROM tforge.tasks WHERE status = 'done') t
    FULL JOIN (SELECT entity_id FROM tforge.signals WHERE signal_type = 'completed') s ON s.entity_id = t.task_id
   WHERE t.task_id IS NULL OR s.entity_id IS NULL"
[ "$status" = 0 ] && psql -qX -d postgres -c "DROP DATABASE $db"
exit $status
