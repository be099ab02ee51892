#!/usr/bin/env bash
# bench/queue: tforge's submit -> claim -> complete cycle against a plain
# FOR UPDATE SKIP LOCKED queue (2 clients, pgbench, ROUNDS alternating
# rounds of DURATION seconds each), and the claim's cost at
# 1,000 and at 1,000,000 pending tasks. Needs PGHOST/PGPORT/PGUSER (make bench).
set -euo pipefail
cd "$(dirname "$0")"
DURATION=${DURATION:-10}  # seconds per pgbench run
ROUNDS=${ROUNDS:-4}       # alternating throughput rounds per side
DB=tforge_bench_queue
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
export PGDATABASE=$DB
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION tforge;
CREATE TABLE plain_queue (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, task_type text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}', priority int NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'pending', submitted_at timestamptz NOT NULL DEFAULT now(),
  worker_id text, claimed_at timestamptz, completed_at timestamptz, runtime_s float8);
CREATE INDEX ON plain_queue (priority DESC, id) WHERE status = 'pending';
-- A backlog, so that a claim always finds work.
INSERT INTO plain_queue (task_type) SELECT 'cpu-light' FROM generate_series(1, 1000);
SELECT count(tforge.submit_task('cpu-light')) FROM generate_series(1, 1000);
VACUUM ANALYZE;
SQL

tps() { # script -> transactions (cycles) per second
	pgbench -n -c 2 -j 2 -T "$DURATION" -f "$1" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
# Short rounds in the order plain, tforge, tforge, plain, ...: a shared
# machine's speed drifts, and this way both sides see the same drift.
plain=0; tf=0
for round in $(seq 1 "$ROUNDS"); do
	if [ $((round % 2)) = 1 ]; then p=$(tps plain_cycle.sql); t=$(tps tforge_cycle.sql)
	else t=$(tps tforge_cycle.sql); p=$(tps plain_cycle.sql); fi
	plain=$(awk -v a="$plain" -v b="$p" -v n="$ROUNDS" 'BEGIN { print a + b / n }')
	tf=$(awk -v a="$tf" -v b="$t" -v n="$ROUNDS" 'BEGIN { print a + b / n }')
done
printf 'cycles/s tforge (submit+claim+complete, 2 clients): %.0f\n' "$tf"
printf 'cycles/s plain SKIP LOCKED queue (same cycle):      %.0f\n' "$plain"
printf 'ratio cycle throughput: %.2f (tforge %.0f vs baseline %.0f cycles/s; target >= 0.85)\n' \
	"$(awk -v a="$tf" -v b="$plain" 'BEGIN { print a / b }')" "$tf" "$plain"

# Claim cost against queue length. Deadlines spread over a day so that the
# least-laxity order is not the insertion order.
fill() { # n pending cpu-light tasks with random laxity
	psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
TRUNCATE tforge.tasks CASCADE;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts, submitted_at, available_at)
SELECT 'cpu-light', d + interval '5 s', 5, d, 3, now(), now()
  FROM (SELECT now() + random() * interval '1 day' AS d FROM generate_series(1, $1)) g;
-- No vacuum during the probe (it measures the claim, and the rolled-back
-- claims leave dead rows at the same rate at both sizes).
ALTER TABLE tforge.tasks SET (autovacuum_enabled = off);
VACUUM ANALYZE;
SQL
}
claim_ms() {
	pgbench -n -c 1 -T "$DURATION" -f tforge_claim.sql 2>&1 | sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p'
}
fill 1000; small=$(claim_ms)
fill 1000000; large=$(claim_ms)
printf 'claim latency at 1,000 pending:     %.3f ms\n' "$small"
printf 'claim latency at 1,000,000 pending: %.3f ms\n' "$large"
printf 'ratio claim cost 1,000,000 vs 1,000 pending: %.2f (%.3f ms vs %.3f ms; target <= 1.5)\n' \
	"$(awk -v a="$large" -v b="$small" 'BEGIN { print a / b }')" "$large" "$small"
psql -qX -d postgres -c "DROP DATABASE $DB"
