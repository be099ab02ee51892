#!/usr/bin/env bash
# make demo: a realistic scenario against the throwaway cluster.
# A producer submits 360 tasks of all six types whose true runtimes are drawn
# from per-type log-normal distributions; two workers claim and complete them
# concurrently, reporting those runtimes; then the scheduling state is shown.
set -euo pipefail
psql -qX -d postgres -c 'CREATE DATABASE tforge_demo' >/dev/null
export PGDATABASE=tforge_demo
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION tforge;
-- What each type really takes (seconds): median and spread of a log-normal.
CREATE TABLE demo_truth (task_type text PRIMARY KEY, median_s float8, sigma float8);
INSERT INTO demo_truth VALUES
  ('cpu-light', 3, 0.3), ('cpu-heavy', 24, 0.25), ('memory-heavy', 14, 0.3),
  ('gpu-inference', 2.5, 0.2), ('gpu-training', 95, 0.3), ('mixed', 8, 0.5);
CREATE TABLE demo_state (producer_done boolean NOT NULL);
-- tau of a type after each of its completions, as the workers saw it
CREATE TABLE demo_tau (task_type text, samples bigint, tau_s float8);
INSERT INTO demo_state VALUES (false);
SQL

echo "producer: submitting 360 tasks (60 of each type) while two workers drain the queue"
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL' &
SELECT setseed(0.42);
-- A tight SLA, so that a poor tau shows up as missed budgets.
SET tforge.sla_multiplier = 1.5;
DO $$
DECLARE
  t demo_truth;
  runtime float8;
BEGIN
  FOR i IN 1..60 LOOP
    FOR t IN SELECT * FROM demo_truth ORDER BY random() LOOP
      -- log-normal: median * exp(sigma * N(0,1)), N from Box-Muller
      runtime := t.median_s * exp(t.sigma * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()));
      PERFORM tforge.submit_task(t.task_type, jsonb_build_object('runtime_s', round(runtime::numeric, 3)),
                                 priority => (random() * 3)::int);
    END LOOP;
    COMMIT;
    PERFORM pg_sleep(0.02);
  END LOOP;
  UPDATE demo_state SET producer_done = true;
END $$;
SQL
producer=$!

worker() {
	psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$
DECLARE
  k tforge.tasks;
  done boolean;
BEGIN
  LOOP
    SELECT * INTO k FROM tforge.claim_tasks('$1', capacity => NULL, lease => '1 min');
    IF k.task_id IS NULL THEN
      SELECT producer_done INTO done FROM demo_state;
      EXIT WHEN done AND NOT EXISTS (SELECT 1 FROM tforge.tasks WHERE status = 'pending');
      COMMIT;
      PERFORM pg_sleep(0.01);
      CONTINUE;
    END IF;
    -- The worker runs the task and reports how long it took.
    PERFORM tforge.complete_task(k.task_id, '$1', jsonb_build_object('runtime_s', k.payload -> 'runtime_s'));
    INSERT INTO demo_tau SELECT task_type, samples, tau_s FROM tforge.task_tau WHERE task_type = k.task_type;
    COMMIT;
  END LOOP;
END \$\$;
SQL
}
worker worker-a & wa=$!
worker worker-b & wb=$!
wait $producer $wa $wb

psql -X -P footer=off <<'SQL'
\echo
\echo 'How tau converged (seconds) after n completions of each type'
SELECT d.task_type, tt.default_tau_s AS "default",
       round((SELECT exp(avg(ln(runtime_s))) FROM tforge.tasks k WHERE k.task_type = d.task_type)::numeric, 1) AS "true median",
       round(max(t.tau_s) FILTER (WHERE t.samples = 5)::numeric, 1) AS "n=5",
       round(max(t.tau_s) FILTER (WHERE t.samples = 15)::numeric, 1) AS "n=15",
       round(max(t.tau_s) FILTER (WHERE t.samples = 30)::numeric, 1) AS "n=30",
       round(max(t.tau_s) FILTER (WHERE t.samples = 60)::numeric, 1) AS "n=60"
  FROM demo_truth d
  JOIN tforge.task_types tt ON tt.name = d.task_type
  JOIN demo_tau t ON t.task_type = d.task_type
 GROUP BY d.task_type, tt.default_tau_s ORDER BY 1;

\echo 'Runtime predictions made at submit, scored at completion (tforge.prediction_accuracy)'
SELECT task_type, strategy, predictions AS n, round(mae_s::numeric, 2) AS mae_s, round(accuracy::numeric, 3) AS accuracy,
       round(under_rate::numeric, 2) AS under_rate
  FROM tforge.prediction_accuracy
 WHERE strategy IN ('adaptive', 'ewma', 'average') ORDER BY task_type, strategy;

\echo 'Deadlines: a task''s budget is sla_multiplier x tau at submit; did its runtime fit?'
SELECT task_type,
       count(*) FILTER (WHERE half = 1 AND runtime_s <= budget) || ' / ' || count(*) FILTER (WHERE half = 1) AS "first 30 fit",
       count(*) FILTER (WHERE half = 2 AND runtime_s <= budget) || ' / ' || count(*) FILTER (WHERE half = 2) AS "last 30 fit",
       count(*) FILTER (WHERE deadline_met) AS "met (wall clock)",
       count(*) FILTER (WHERE NOT deadline_met) AS "missed (wall clock)"
  FROM (SELECT *, extract(epoch FROM deadline - submitted_at) AS budget,
               CASE WHEN row_number() OVER (PARTITION BY task_type ORDER BY task_id) <= 30 THEN 1 ELSE 2 END AS half
          FROM tforge.tasks) k
 GROUP BY task_type ORDER BY 1;

\echo 'Who did the work'
SELECT worker_id, count(*) AS tasks, round(sum(runtime_s)::numeric) AS "runtime s" FROM tforge.tasks GROUP BY 1 ORDER BY 1;

\echo 'The queue (tforge.queue_status)'
SELECT task_type, pending, running, done, dead, deadline_misses, round(tau_s::numeric, 2) AS tau_s, tau_samples
  FROM tforge.queue_status ORDER BY task_type;
SQL
