#!/usr/bin/env bash
# Claim-head stress (make stress): claims past the shared bound of
# tasks_claim_idx (src/claim_head.c) keep the least-laxity order whatever
# concurrent writers, claimers and operators did.
#
# CLAIM_HEAD_ROUNDS (4) rounds; in each, for CLAIM_HEAD_SECONDS (8) s,
# pgbench clients run at once:
#   - submitters: direct INSERTs with random laxity_keys (many far below the
#     head), submit_task with sla_multiplier 0.01, inserts in a subtransaction
#     rolled back then redone, COPY-like multi-row INSERTs;
#   - workers (READ COMMITTED, some REPEATABLE READ, and in the first half
#     of the round one connecting anew for every transaction, which drops
#     the bound each time): claim one or a batch and complete, fail for a
#     retry (no backoff), roll the claim back (whole or to a savepoint),
#     or abandon it with a short lease that later claims expire;
#   - a prepared-transaction worker: claims, PREPAREs, then COMMIT or
#     ROLLBACK PREPARED;
#   - an operator: puts done tasks back below every key so far (UPDATE,
#     MERGE, INSERT ... ON CONFLICT DO UPDATE), moves pending tasks there, and
#     in the first half of the round ANALYZE, VACUUM, and writes while
#     trigger tasks_claim_head is disabled.
# Then, quiesced, a session that has claimed since before the round (so it
# uses the bound the round left) claims CLAIM_HEAD_CHECKS (300) tasks one
# at a time and some batches, each compared with the brute-force definition
# (SELECT ... ORDER BY laxity_key, priority DESC, submitted_at, task_id);
# after the last round it drains the queue and no pending task may be left.
# Prints the claims checked and "claim-head stress: N mismatches".
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster (tforge preloaded).
set -uo pipefail

rounds=${CLAIM_HEAD_ROUNDS:-4}
seconds=${CLAIM_HEAD_SECONDS:-8}
checks=${CLAIM_HEAD_CHECKS:-300}
db=tforge_claim_head_stress
tmp=$(mktemp -d /tmp/tforge-claimhead.XXXXXX)
chmod 755 "$tmp"
coproc_pid=""
cleanup() {
	[ -n "${CLAIM_HEAD_KEEP:-}" ] && cp -r "$tmp" /tmp/claimhead-keep
	[ -n "$coproc_pid" ] && kill "$coproc_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

psql -qX -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || exit 1
psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL || exit 1
SET client_min_messages = warning;
CREATE EXTENSION tforge;
ALTER DATABASE $db SET tforge.retry_backoff_base = 0;
-- no autovacuum: the claimed tasks' entries stay at the head of the index
ALTER TABLE tforge.tasks SET (autovacuum_enabled = off);
CREATE SCHEMA stress;
-- A key below every one handed out before (10 s lower each second):
-- the operator's writes land below the bound the claims reached meanwhile.
CREATE FUNCTION stress.sinking(jitter_ms int) RETURNS timestamptz LANGUAGE sql AS \$\$
  SELECT timestamptz '2020-01-01 00:00+00'
         - extract(epoch FROM clock_timestamp()) * interval '10 s' + jitter_ms * interval '1 ms'
\$\$;
CREATE TABLE stress.mismatch (round int, kind text, want bigint[], got bigint[]);
CREATE FUNCTION stress.first_pending(n int) RETURNS bigint[] LANGUAGE sql AS \$\$
  SELECT coalesce(array_agg(task_id ORDER BY task_id), '{}') FROM (
    SELECT task_id FROM tforge.tasks
     WHERE status = 'pending' AND available_at <= pg_catalog.clock_timestamp()
     ORDER BY laxity_key, priority DESC, submitted_at, task_id LIMIT n) f
\$\$;
-- n claims of max_tasks each, one per transaction, each checked against
-- the definition; stops early once nothing is pending (drain: until empty).
CREATE PROCEDURE stress.check_claims(round int, n int, max_tasks int) LANGUAGE plpgsql AS \$\$
DECLARE
  want bigint[];
  got bigint[];
BEGIN
  FOR i IN 1 .. n LOOP
    -- what the claim would release first (expired leases) is released now
    PERFORM tforge.expire_leases();
    COMMIT;
    want := stress.first_pending(max_tasks);
    got := ARRAY(SELECT task_id FROM tforge.claim_tasks('checker', max_tasks, lease => '1 hour') ORDER BY 1);
    IF want IS DISTINCT FROM got THEN
      INSERT INTO stress.mismatch VALUES (round, 'claim of ' || max_tasks, want, got);
    END IF;
    IF got <> '{}' THEN
      PERFORM tforge.complete_tasks('checker', got);
    END IF;
    COMMIT;
    EXIT WHEN got = '{}';
  END LOOP;
END
\$\$;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
SELECT 'cpu-light', now() + i * interval '1 s' + interval '5 s', 5, now() + i * interval '1 s', 3
  FROM generate_series(1, 3000) i;
SQL

# ---------------------------------------------------------------- scripts
cat >"$tmp/submit.sql" <<'SQL'
\set r random(1, 10)
\set off random(-200000, 20000)
\if :r <= 4
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts, priority)
VALUES ('cpu-light', now() + :off * interval '1 s' + interval '5 s', 5, now() + :off * interval '1 s', 3, :r % 3);
\elif :r <= 6
DO $$ BEGIN PERFORM tforge.submit_task('cpu-light', sla_multiplier => 0.01); EXCEPTION WHEN sqlstate '53000' THEN NULL; END $$;
\elif :r <= 8
BEGIN;
SAVEPOINT s;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
VALUES ('cpu-light', now(), 5, now() + :off * interval '1 s' - interval '1 day', 3);
ROLLBACK TO SAVEPOINT s;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
VALUES ('cpu-light', now(), 5, now() + :off * interval '1 s' - interval '2 days', 3);
COMMIT;
\else
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
SELECT 'cpu-light', now(), 5, now() + (:off + i * 7) * interval '1 s', 3 FROM generate_series(1, 5) i;
\endif
\sleep 3 ms
SQL

# One claim (or a batch of 3), then complete, fail, roll back or abandon it.
worker_script() {  # worker_script ISOLATION
	cat <<'SQL' | sed "s/@ISOLATION@/$1/"
\set act random(1, 12)
BEGIN ISOLATION LEVEL @ISOLATION@;
\if :act <= 10
SELECT coalesce((SELECT task_id FROM tforge.claim_tasks('w:client_id', 1, lease => CASE WHEN :act = 10 THEN interval '0.2 s' ELSE interval '1 hour' END)), 0) AS tid \gset
\else
SELECT coalesce(array_agg(task_id), '{}') AS tids FROM tforge.claim_tasks('w:client_id', 3, lease => '1 hour') \gset
\endif
\if :act <= 4
\if :tid > 0
SELECT tforge.complete_task(:tid, 'w:client_id');
\endif
COMMIT;
\elif :act <= 6
\if :tid > 0
SELECT tforge.fail_task(:tid, 'w:client_id', 'boom');
\endif
COMMIT;
\elif :act <= 7
ROLLBACK;
\elif :act <= 9
SAVEPOINT s;
SELECT count(*) FROM tforge.claim_tasks('w:client_id', 2, lease => '1 hour');
ROLLBACK TO SAVEPOINT s;
\if :tid > 0
SELECT tforge.complete_task(:tid, 'w:client_id');
\endif
COMMIT;
\elif :act <= 10
COMMIT;
\else
SELECT tforge.complete_tasks('w:client_id', ':tids'::bigint[]);
COMMIT;
\endif
SQL
}
worker_script "READ COMMITTED" >"$tmp/work_rc.sql"
worker_script "REPEATABLE READ" >"$tmp/work_rr.sql"
cat >"$tmp/prepared.sql" <<'SQL'
\set act random(1, 2)
BEGIN;
SELECT count(*) FROM tforge.claim_tasks('p:client_id', 2, lease => '1 hour');
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
VALUES ('cpu-light', now(), 5, now() - interval '3 days', 3);
PREPARE TRANSACTION 'claimhead:client_id';
\sleep 20 ms
\if :act = 1
COMMIT PREPARED 'claimhead:client_id';
\else
ROLLBACK PREPARED 'claimhead:client_id';
\endif
SQL
# The operator, in the quiet half of the round: only row writes.
cat >"$tmp/operator.sql" <<'SQL'
\set act random(1, 4)
\set id random(1, 20000)
\set off random(0, 1000)
\if :act = 1
UPDATE tforge.tasks SET status = 'pending', worker_id = NULL, lease_expires_at = NULL, completed_at = NULL,
       attempts = 0, laxity_key = stress.sinking(:off)
 WHERE task_id = (SELECT task_id FROM tforge.tasks WHERE status IN ('done', 'dead') AND task_id >= :id ORDER BY task_id LIMIT 1);
\elif :act = 2
MERGE INTO tforge.tasks t
USING (SELECT task_id FROM tforge.tasks WHERE status = 'done' AND task_id >= :id ORDER BY task_id LIMIT 1) s
   ON t.task_id = s.task_id
 WHEN MATCHED THEN UPDATE SET status = 'pending', worker_id = NULL, lease_expires_at = NULL, completed_at = NULL,
                              attempts = 0, laxity_key = stress.sinking(:off);
\elif :act = 3
INSERT INTO tforge.tasks (task_id, task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
OVERRIDING SYSTEM VALUE
SELECT task_id, 'cpu-light', now(), 5, stress.sinking(:off), 3
  FROM tforge.tasks WHERE status = 'done' AND task_id >= :id ORDER BY task_id LIMIT 1
    ON CONFLICT (task_id) DO UPDATE SET status = 'pending', worker_id = NULL, lease_expires_at = NULL,
       completed_at = NULL, attempts = 0, laxity_key = excluded.laxity_key;
\else
UPDATE tforge.tasks SET laxity_key = stress.sinking(:off)
 WHERE task_id = (SELECT task_id FROM tforge.tasks WHERE status = 'pending' AND task_id >= :id ORDER BY task_id LIMIT 1);
\endif
SQL
# ... and in the busy half, also statistics, vacuums and unpublished writes.
cat >"$tmp/ddl.sql" <<'SQL'
\set act random(1, 4)
\if :act = 1
ANALYZE tforge.tasks;
\elif :act = 2
VACUUM tforge.tasks;
\elif :act = 3
BEGIN;
ALTER TABLE tforge.tasks DISABLE TRIGGER tasks_claim_head;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
VALUES ('cpu-light', now(), 5, now() - interval '5 days' - random() * interval '1 day', 3);
ALTER TABLE tforge.tasks ENABLE ALWAYS TRIGGER tasks_claim_head;
COMMIT;
\else
ALTER TABLE tforge.tasks DISABLE TRIGGER tasks_claim_head;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
VALUES ('cpu-light', now(), 5, now() - interval '6 days' - random() * interval '1 day', 3);
ALTER TABLE tforge.tasks ENABLE ALWAYS TRIGGER tasks_claim_head;
\endif
\sleep 200 ms
SQL

# The checker: one session for the whole run, which claimed before the
# first round (a backend drops the bound at its first claim).
coproc CHECKER { psql -qXAt -v ON_ERROR_STOP=1 -d "$db" 2>&1; }
coproc_pid=$CHECKER_PID
ask() {  # ask SQL: run it in the checker session, print its output
	local line
	printf '%s\n\\echo __done__\n' "$1" >&"${CHECKER[1]}"
	while IFS= read -r line <&"${CHECKER[0]}"; do
		[ "$line" = __done__ ] && break
		echo "$line"
	done
}
ask "CALL stress.check_claims(0, 5, 1);" >/dev/null

pgb() {  # pgb LOGNAME pgbench-args...: one pgbench run in the background
	local name=$1; shift
	pgbench -n -T "$seconds" --max-tries=20 "$@" "$db" >"$tmp/$name.log" 2>&1 &
}
half=$((seconds / 2))
status=0
total=0
for round in $(seq 1 "$rounds"); do
	pids=()
	pgb submit -c 1 -f "$tmp/submit.sql"; pids+=($!)
	pgb work_rc -c 3 -f "$tmp/work_rc.sql"; pids+=($!)
	pgb work_rr -c 1 -f "$tmp/work_rr.sql"; pids+=($!)
	# new backends drop the bound at their first claim: the first half only
	pgbench -n -T "$half" -c 1 -C -f "$tmp/work_rc.sql" "$db" >"$tmp/work_new.log" 2>&1 &
	pids+=($!)
	pgb prepared -c 2 -f "$tmp/prepared.sql"; pids+=($!)
	pgb operator -c 1 -f "$tmp/operator.sql"; pids+=($!)
	pgbench -n -T "$half" -c 1 -f "$tmp/ddl.sql" "$db" >"$tmp/ddl.log" 2>&1
	# the checker takes in the invalidations of the busy half now (each
	# drops the bound), not at its first check, which would walk from the
	# head and hide whatever the quiet half left below the bound
	ask "SELECT 1;" >/dev/null
	for p in "${pids[@]}"; do wait "$p"; done
	for f in submit work_rc work_rr work_new prepared operator ddl; do
		# REPEATABLE READ claims may fail to serialize more often than retried
		if { [ "$f" != work_rr ] && ! grep -q '^number of failed transactions: 0 ' "$tmp/$f.log"; } ||
			grep -qiE 'aborted|error' "$tmp/$f.log"; then
			echo "round $round: pgbench $f failed:"; grep -vE '^(transaction type|scaling|query mode|number of clients|number of threads|maximum number|duration|latency|initial connection|tps|pgbench)' "$tmp/$f.log" | head -20
			status=1
		fi
		n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$tmp/$f.log")
		total=$((total + ${n:-0}))
	done
	# leases abandoned this round expire now
	sleep 0.3
	pending=$(psql -qXAt -d "$db" -c "SELECT count(*) FROM tforge.tasks WHERE status = 'pending'")
	ask "CALL stress.check_claims($round, $checks, 1); CALL stress.check_claims($round, 20, 4);" >/dev/null
	echo "round $round: $pending pending, $checks single and 20 batch claims checked"
done
# drain: every pending task is claimable, in order
ask "UPDATE tforge.tasks SET available_at = now() WHERE status = 'pending' AND available_at > now();" >/dev/null
sleep 0.3
ask "CALL stress.check_claims(0, 1000000, 1);" >/dev/null
left=$(psql -qXAt -d "$db" -c "SELECT count(*) FROM tforge.tasks WHERE status = 'pending'")
mismatches=$(psql -qXAt -d "$db" -c "SELECT count(*) FROM stress.mismatch")
psql -qXAt -d "$db" -c "SELECT round, kind, want, got FROM stress.mismatch LIMIT 10"
claimed=$(psql -qXAt -d "$db" -c "SELECT count(*) FROM tforge.tasks WHERE worker_id = 'checker'")
echo "load transactions: $total; checker claims completed: $claimed; pending left after the drain: $left"
echo "claim-head stress: $mismatches mismatches"
[ "$mismatches" = 0 ] && [ "$left" = 0 ] && [ "$status" = 0 ] || exit 1
