#!/usr/bin/env bash
# make demo: a realistic scenario against the throwaway cluster.
# A producer submits 360 tasks of all six types whose true runtimes are drawn
# from per-type log-normal distributions (the GPU types also state the GPU
# memory they need); two workers claim and complete them concurrently,
# reporting those runtimes, one of them on a 24 GiB GPU whose memory each
# claim allocates; a training run writes checkpoints that GC thins out; then
# the scheduling state is shown.
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
SELECT tforge.gpu_add_device('gpu0', 24 * 1073741824::bigint, 1215, '8.6');
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
                                 CASE WHEN t.task_type LIKE 'gpu-%'  -- 2 to 10 GiB of GPU memory
                                      THEN ROW(NULL, NULL, 1, ((2 + random() * 8) * 1024^3)::bigint)::tforge.resources END,
                                 priority => (random() * 3)::int);
    END LOOP;
    COMMIT;
    PERFORM pg_sleep(0.02);
  END LOOP;
  UPDATE demo_state SET producer_done = true;
END $$;
SQL
producer=$!

# worker ID [GPU]: claims one task at a time (with GPU, allocating its GPU
# memory on that device in the claiming transaction; the block is freed when
# the task completes), completes it, commits.
worker() {
	psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
DO \$\$
DECLARE
  k tforge.tasks;
  done boolean;
BEGIN
  LOOP
    SELECT * INTO k FROM tforge.claim_tasks('$1', capacity => NULL, lease => '1 min', gpu_device => ${2:-NULL});
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
worker worker-gpu "'gpu0'" & wb=$!

echo "training run bert-base: 40 checkpoints (full every 10,000 steps, incremental every 1,000 between), GC after each"
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL' &
SELECT setseed(0.7);
SELECT tforge.set_checkpoint_policy('bert-base', max_checkpoints_per_run => 3, keep_best_n => 2,
                                    metric_key => 'loss', metric_ascending => true, keep_every_n_steps => 10000);
DO $$
DECLARE
  c tforge.checkpoints;
BEGIN
  FOR i IN 1..40 LOOP
    c := tforge.create_checkpoint('bert-base', i / 10, i * 1000,
                                  CASE WHEN i = 1 OR i % 10 = 0 THEN 'full' ELSE 'incremental' END::tforge.checkpoint_type,
                                  jsonb_build_object('loss', round((2.5 / sqrt(i) + random() * 0.2)::numeric, 3)));
    PERFORM tforge.complete_checkpoint(c.checkpoint_id, CASE WHEN c.checkpoint_type = 'full' THEN 4000000000 ELSE 250000000 END,
                                       's3://ckpt/bert-base/' || c.step);
    PERFORM tforge.checkpoint_gc('bert-base');
    COMMIT;
  END LOOP;
END $$;
SQL
trainer=$!
wait $producer $wa $wb $trainer

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

\echo 'GPU memory: what the GPU worker claimed, and the pool after every block was freed (tforge.gpu_pools)'
SELECT count(*) AS "gpu tasks", pg_size_pretty(max((resources).gpu_memory_bytes)) AS "largest",
       count(*) FILTER (WHERE worker_id = 'worker-gpu') AS "by worker-gpu"
  FROM tforge.tasks WHERE (resources).gpu_memory_bytes IS NOT NULL;
SELECT device_id, pg_size_pretty(total_bytes) AS total, pg_size_pretty(free_bytes) AS free,
       allocation_count AS "blocks held", block_count AS blocks, fragmentation_ratio
  FROM tforge.gpu_pools;

\echo 'Checkpoints of bert-base after GC: what is kept and why a restore needs it'
SELECT checkpoint_id, step, checkpoint_type AS type, metrics ->> 'loss' AS loss, parent_id,
       tforge.chain_length(checkpoint_id) AS chain
  FROM tforge.checkpoints WHERE training_run_id = 'bert-base' AND state <> 'deleted' ORDER BY step;
SELECT count(*) FILTER (WHERE state = 'deleted') AS deleted, count(*) FILTER (WHERE state <> 'deleted') AS kept,
       (tforge.find_restore_point('bert-base')).checkpoint_id AS "restore point",
       (SELECT string_agg(x, ' > ') FROM tforge.restoration_chain((tforge.find_restore_point('bert-base')).checkpoint_id) x) AS "restores through"
  FROM tforge.checkpoints WHERE training_run_id = 'bert-base';

\echo 'The queue (tforge.queue_status)'
SELECT task_type, pending, running, done, dead, deadline_misses, round(tau_s::numeric, 2) AS tau_s, tau_samples
  FROM tforge.queue_status ORDER BY task_type;

\echo 'The governor (tforge.governor_status())'
SELECT running, state, scale, round(pressure::numeric, 3) AS pressure, source, admitted, refused
  FROM tforge.governor_status();
SQL
