#!/usr/bin/env bash
# bench/typed: the cost of a typed claim (claim_tasks(..., task_types)) with
# 1,000 and with 1,000,000 pending tasks of another type ahead of its own
# (lower laxity), for one type and for two. The claim takes each listed
# type's head from tasks_type_claim_idx, so the other type's backlog should
# not matter. Needs PGHOST/PGPORT/PGUSER (make bench).
set -euo pipefail
cd "$(dirname "$0")"
DURATION=${DURATION:-10}  # seconds per pgbench run
DB=tforge_bench_typed
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
export PGDATABASE=$DB
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION tforge;
SELECT tforge.define_task_type('bench-0', 5), tforge.define_task_type('bench-1', 5);
-- the index a deployment whose workers name types creates (README)
CREATE INDEX tasks_type_claim_idx ON tforge.tasks
  (task_type, laxity_key, priority DESC, submitted_at, task_id) WHERE status = 'pending';
SQL

fill() { # n pending cpu-light tasks ahead of 1,000 of each bench type
	psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
TRUNCATE tforge.tasks CASCADE;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts, submitted_at, available_at)
SELECT 'cpu-light', d + interval '5 s', 5, d, 3, now(), now()
  FROM (SELECT now() + random() * interval '1 day' AS d FROM generate_series(1, $1)) g;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts, submitted_at, available_at)
SELECT t, d + interval '5 s', 5, d, 3, now(), now()
  FROM (SELECT now() + interval '2 days' + random() * interval '1 day' AS d FROM generate_series(1, 1000)) g,
       unnest(ARRAY['bench-0', 'bench-1']) t;
-- No vacuum during the probe (the rolled-back claims leave dead rows at the
-- same rate at both sizes).
ALTER TABLE tforge.tasks SET (autovacuum_enabled = off);
VACUUM ANALYZE;
SQL
}
claim_ms() { # script -> average latency, ms
	# each probe starts without the dead versions the previous one's
	# rolled-back claims left on its head (the probes may share a head)
	psql -qX -c 'VACUUM tforge.tasks' >/dev/null
	pgbench -n -c 1 -T "$DURATION" -f "$1" 2>&1 | sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p'
}
# baseline: the untyped claim (bench/queue's probe) over the same queues
fill 1000; small=$(claim_ms typed_claim.sql); small2=$(claim_ms typed2_claim.sql); small0=$(claim_ms ../queue/tforge_claim.sql)
fill 1000000; large=$(claim_ms typed_claim.sql); large2=$(claim_ms typed2_claim.sql); large0=$(claim_ms ../queue/tforge_claim.sql)
printf 'typed claim latency, 1,000 other-type pending ahead:     %.3f ms (two types: %.3f ms)\n' "$small" "$small2"
printf 'typed claim latency, 1,000,000 other-type pending ahead: %.3f ms (two types: %.3f ms)\n' "$large" "$large2"
printf 'untyped claim latency (baseline, same queues): %.3f ms at 1,000, %.3f ms at 1,000,000 (ratio %.2f)\n' \
	"$small0" "$large0" "$(awk -v a="$large0" -v b="$small0" 'BEGIN { print a / b }')"
printf 'ratio typed claim cost 1,000,000 vs 1,000 other-type pending: %.2f (%.3f ms vs %.3f ms; target <= 1.5)\n' \
	"$(awk -v a="$large" -v b="$small" 'BEGIN { print a / b }')" "$large" "$small"
printf 'ratio two-type claim cost 1,000,000 vs 1,000 other-type pending: %.2f (%.3f ms vs %.3f ms; target <= 1.5)\n' \
	"$(awk -v a="$large2" -v b="$small2" 'BEGIN { print a / b }')" "$large2" "$small2"
psql -qX -d postgres -c "DROP DATABASE $DB"
