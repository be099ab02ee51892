#!/usr/bin/env bash
# Crash stress (make stress): STRESS_CYCLES (20) cycles of a mixed load from
# several clients while the server crashes, with fsync = on.
#
# Clients, each logging a line for every commit it saw acknowledged (psql
# returned success):
#   - STRESS_WORKERS (3) queue workers: submit a task, claim one, complete it
#     with a runtime (tau, profile and prediction updates in the same
#     transaction);
#   - one signal client: record_signal and a row in stress.signal_log, in one
#     transaction (the log is what the signals are recomputed from);
#   - one registry client: register_model, then transition_model
#     registered -> validating -> staging.
# Each cycle, after a random 1-4 s, either a random client backend is
# SIGKILLed (the postmaster resets every backend and runs crash recovery) or
# the server is stopped with "pg_ctl stop -m immediate" and started again.
# After each restart:
#   - every acknowledged commit is there (submits, claims, completions,
#     signals, registrations, transitions);
#   - no task lost (every task in a known state), none held twice (no task
#     id in two acknowledged claims; every running task has one holder);
#   - tau samples and profile run counts equal the done tasks per type and
#     key; every signal equals the decay_agg/window_agg recomputation from
#     stress.signal_log; each model version's state is its last history
#     entry;
#   - every btree index of the schema passes amcheck's bt_index_check.
# Prints "cycles survived: N/M".
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster with data in $PGHOST/data
# and log $PGHOST/server.log, as test/lib/harness.sh starts it.
set -uo pipefail

cycles=${STRESS_CYCLES:-20}
nworkers=${STRESS_WORKERS:-3}
db=tforge_crash_stress
tmp=$(mktemp -d /tmp/tforge-stress.XXXXXX)
if [ "$(id -u)" = 0 ]; then AS="runuser -u postgres --"; else AS=""; fi
pids=()
stop_clients() {
	touch "$tmp/stop"
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
	rm -f "$tmp/stop"
}
cleanup() {
	touch "$tmp/stop"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

Q() { psql -qXAt -v ON_ERROR_STOP=1 -d "$db" "$@" 2>/dev/null; }
server_up() {
	local i
	for i in $(seq 1 240); do
		psql -qXAt -d "$db" -c 'SELECT 1' >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}

psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || exit 1
psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL' || exit 1
SET client_min_messages = warning;
CREATE EXTENSION tforge;
CREATE EXTENSION amcheck;
SELECT tforge.define_signal_type('stress', '1 hour');
CREATE SCHEMA stress;
CREATE TABLE stress.signal_log (key text PRIMARY KEY, entity_id bigint NOT NULL, weight float8 NOT NULL,
                                at timestamptz NOT NULL);
SQL
[ "$(psql -qXAt -d "$db" -c 'SHOW fsync')" = on ] || echo "warning: fsync is off"
loglines=$(wc -l <"$PGHOST/server.log")

# A queue worker: submit, claim, complete; each acknowledged commit logged.
worker() {
	local w=$1 cycle=$2 log=$tmp/log.$1 id tid n=0
	while [ ! -e "$tmp/stop" ]; do
		n=$((n + 1))
		id=$(Q -c "SELECT tforge.submit_task((ARRAY['cpu-light','cpu-heavy','gpu-inference'])[1 + $n % 3],
		                                     task_key => 'k' || ($n % 4))") && echo "submit $id" >>"$log"
		tid=$(Q -c "SELECT task_id FROM tforge.claim_tasks('$w')") || { sleep 0.1; continue; }
		[ -n "$tid" ] || continue
		echo "claim $tid" >>"$log"
		Q -c "SELECT tforge.complete_task($tid, '$w', '{\"runtime_s\": $((tid % 9 + 1)).5, \"cpu_s\": 1}')" >/dev/null &&
			echo "complete $tid" >>"$log"
	done
}

# The signal client: one signal and its log row per transaction.
signaler() {
	local cycle=$1 log=$tmp/log.signals n=0 key e
	while [ ! -e "$tmp/stop" ]; do
		n=$((n + 1)); key="$cycle-$n"; e=$((n % 7))
		Q >/dev/null <<SQL && echo "signal $key" >>"$log"
BEGIN;
INSERT INTO stress.signal_log VALUES ('$key', $e, $((n % 5 + 1)) * 0.5, '2026-01-01 00:00+00'::timestamptz + interval '1 second' * ($cycle * 100000 + $n));
SELECT tforge.record_signal($e, 'stress', $((n % 5 + 1)) * 0.5, '2026-01-01 00:00+00'::timestamptz + interval '1 second' * ($cycle * 100000 + $n));
COMMIT;
SQL
	done
}

# The registry client: register a version, then move it along.
registrar() {
	local cycle=$1 log=$tmp/log.registry n=0 v s
	while [ ! -e "$tmp/stop" ]; do
		n=$((n + 1)); v="$cycle.$n.0"
		Q -c "SELECT tforge.register_model('stress-m', '$v', 'onnx', '{1}', '{1}', 10, 'sha', '{}', 'stress')" >/dev/null || continue
		echo "register $v" >>"$log"
		for s in validating staging; do
			Q -c "SELECT tforge.transition_model('stress-m', '$v', '$s')" >/dev/null || break
			echo "transition $v $s" >>"$log"
		done
	done
}

check() {  # check "what" "SQL returning no rows when fine"
	local out
	out=$(psql -qXAt -v ON_ERROR_STOP=1 -d "$db" -c "$2" 2>&1) || { echo "  FAILED $1: $out"; bad=1; return; }
	if [ -n "$out" ]; then echo "  FAILED $1:"; echo "$out" | head -10 | sed 's/^/    /'; bad=1; fi
}
list() {  # list KIND: the acknowledged ids of that kind, comma-separated
	cat "$tmp"/log.* 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }' | paste -sd, -
}

survived=0
status=0
touch "$tmp/log.signals" "$tmp/log.registry"
for cycle in $(seq 1 "$cycles"); do
	for i in $(seq 1 "$nworkers"); do touch "$tmp/log.w$i"; worker "w$i" "$cycle" & pids+=($!); done
	signaler "$cycle" & pids+=($!)
	registrar "$cycle" & pids+=($!)
	sleep "$((1 + RANDOM % 4)).$((RANDOM % 10))"
	if [ $((RANDOM % 2)) = 0 ]; then
		victim=""
		for _ in $(seq 1 50); do
			victim=$(psql -qXAt -d postgres -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db'
			           AND backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY random() LIMIT 1" 2>/dev/null)
			[ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null && break
			victim=""
			sleep 0.02
		done
		if [ -n "$victim" ]; then
			how="SIGKILL of backend $victim"
		else
			how="pg_ctl stop -m immediate (no backend to kill)"
			$AS pg_ctl -D "$PGHOST/data" -m immediate stop >/dev/null
		fi
	else
		how="pg_ctl stop -m immediate"
		$AS pg_ctl -D "$PGHOST/data" -m immediate stop >/dev/null
	fi
	sleep 0.5
	if ! psql -qXAt -d postgres -c 'SELECT 1' >/dev/null 2>&1 && [ ! -e "$PGHOST/data/postmaster.pid" ]; then
		$AS pg_ctl -D "$PGHOST/data" -l "$PGHOST/server.log" -w start >/dev/null
	fi
	server_up || { echo "cycle $cycle: FAILED the server did not come back"; status=1; break; }
	stop_clients

	bad=0
	submits=$(list submit); claims=$(list claim); completes=$(list complete)
	signals=$(list signal); registers=$(list register)
	check "every acknowledged submit is a task" "
	  SELECT s.id FROM unnest('{${submits}}'::bigint[]) s(id) LEFT JOIN tforge.tasks t ON t.task_id = s.id
	   WHERE t.task_id IS NULL"
	check "every acknowledged claim is running or done" "
	  SELECT c.id, t.status FROM unnest('{${claims}}'::bigint[]) c(id) LEFT JOIN tforge.tasks t ON t.task_id = c.id
	   WHERE t.status IS DISTINCT FROM 'running' AND t.status IS DISTINCT FROM 'done'"
	check "every acknowledged completion is done" "
	  SELECT c.id, t.status FROM unnest('{${completes}}'::bigint[]) c(id) LEFT JOIN tforge.tasks t ON t.task_id = c.id
	   WHERE t.status IS DISTINCT FROM 'done'"
	dup=$(cat "$tmp"/log.w* | awk '$1 == "claim" { print $2 }' | sort | uniq -d | head -5 | paste -sd' ')
	[ -z "$dup" ] || { echo "  FAILED tasks held twice (two acknowledged claims): $dup"; bad=1; }
	check "no task lost: every task pending, running with one holder, or done" "
	  SELECT task_id, status, worker_id FROM tforge.tasks
	   WHERE NOT (status = 'pending' OR (status = 'running' AND worker_id IS NOT NULL AND lease_expires_at IS NOT NULL)
	              OR (status = 'done' AND completed_at IS NOT NULL))"
	check "tau samples equal the done tasks with a runtime, per type" "
	  SELECT t.task_type, t.n, u.samples FROM
	    (SELECT task_type, count(*) n FROM tforge.tasks WHERE status = 'done' AND runtime_s IS NOT NULL GROUP BY 1) t
	    FULL JOIN tforge.task_tau u USING (task_type)
	   WHERE coalesce(u.samples, 0) <> coalesce(t.n, 0)"
	check "profile run counts equal the done tasks, per type and per key" "
	  SELECT t.task_type, t.task_key, t.n, p.completions FROM
	    (SELECT task_type, NULL::text AS task_key, count(*) n FROM tforge.tasks WHERE status = 'done' GROUP BY 1
	     UNION ALL
	     SELECT task_type, task_key, count(*) FROM tforge.tasks WHERE status = 'done' AND task_key IS NOT NULL GROUP BY 1, 2) t
	    FULL JOIN tforge.profiles p ON p.task_type = t.task_type AND p.task_key IS NOT DISTINCT FROM t.task_key
	   WHERE t.n IS DISTINCT FROM p.completions"
	check "every acknowledged signal is logged" "
	  SELECT k FROM unnest('{${signals}}'::text[]) k LEFT JOIN stress.signal_log l ON l.key = k WHERE l.key IS NULL"
	check "every signal equals its recomputation from the signal log" "
	  WITH r AS (SELECT entity_id, tforge.decay_agg(weight, at, '1 hour') AS score, tforge.window_agg(at) AS counts
	               FROM stress.signal_log GROUP BY entity_id)
	  SELECT coalesce(r.entity_id, s.entity_id), r.score, s.score
	    FROM r FULL JOIN (SELECT * FROM tforge.signals WHERE signal_type = 'stress') s USING (entity_id)
	   WHERE r.entity_id IS NULL OR s.entity_id IS NULL
	      OR tforge.decay_last_update(r.score) <> tforge.decay_last_update(s.score)
	      OR abs(tforge.decay_value(r.score, tforge.decay_last_update(r.score))
	             - tforge.decay_value(s.score, tforge.decay_last_update(r.score)))
	         > 1e-9 * greatest(1, tforge.decay_value(r.score, tforge.decay_last_update(r.score)))
	      OR tforge.window_total(r.counts) <> tforge.window_total(s.counts)
	      OR tforge.window_last_minute(r.counts) IS DISTINCT FROM tforge.window_last_minute(s.counts)"
	check "every acknowledged registration is there" "
	  SELECT v FROM unnest('{${registers}}'::text[]) v
	   WHERE NOT EXISTS (SELECT FROM tforge.model_versions m WHERE m.model_id = 'stress-m' AND m.version::text = v)"
	trans=$(awk '$1 == "transition" { print "(" q $2 q "," q $3 q ")" }' q="'" "$tmp/log.registry" | paste -sd, -)
	[ -n "$trans" ] && check "every acknowledged transition is in the history" "
	  SELECT v, s FROM (VALUES $trans) x(v, s)
	   WHERE NOT EXISTS (SELECT FROM tforge.model_state_history h WHERE h.model_id = 'stress-m'
	                        AND h.version::text = x.v AND h.to_state::text = x.s)"
	check "each version's state is its last history entry" "
	  SELECT m.version, m.state, h.to_state FROM tforge.model_versions m
	    LEFT JOIN LATERAL (SELECT to_state FROM tforge.model_state_history h
	                        WHERE h.model_id = m.model_id AND h.version OPERATOR(pg_catalog.=) m.version
	                        ORDER BY history_id DESC LIMIT 1) h ON true
	   WHERE m.state IS DISTINCT FROM h.to_state"
	check "every btree index of tforge passes bt_index_check" "
	  WITH ix AS MATERIALIZED (
	    SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
	     WHERE c.relnamespace = 'tforge'::regnamespace AND a.amname = 'btree')
	  SELECT oid::regclass FROM ix, LATERAL bt_index_check(ix.oid, true) r WHERE false"
	totals=$(psql -qXAt -d "$db" -c "SELECT (SELECT count(*) FROM tforge.tasks) || ' tasks, ' ||
	           (SELECT count(*) FROM tforge.tasks WHERE status = 'done') || ' done, ' ||
	           (SELECT count(*) FROM stress.signal_log) || ' signals, ' ||
	           (SELECT count(*) FROM tforge.model_versions) || ' versions'" 2>/dev/null)
	acked=$(cat "$tmp"/log.* | wc -l)
	if [ "$bad" = 0 ]; then
		survived=$((survived + 1))
		echo "cycle $cycle: $how: ok ($acked acknowledged commits so far; $totals)"
	else
		echo "cycle $cycle: $how: FAILED ($acked acknowledged commits so far; $totals)"
		status=1
	fi
done
echo "cycles survived: $survived/$cycles"
# a backend dying of anything but the drill's SIGKILL (9) is a crash
other=$(tail -n +"$((loglines + 1))" "$PGHOST/server.log" | grep -E 'terminated by signal' | grep -vc 'signal 9' || true)
echo "backends that died of another signal than the drill's SIGKILL: $other"
[ "$other" = 0 ] || status=1
[ "$status" = 0 ] && psql -qX -d postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
exit $status
