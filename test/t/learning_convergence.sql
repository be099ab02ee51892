-- Learning converges: a key with a steady runtime takes over from tau once
-- it has enough runs and confidence, its confidence grows as k / (k + 2),
-- and after its runtime shifts the estimate follows within a few runs.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(8);

SET LOCAL tforge.learning_min_executions = 3;
SET LOCAL tforge.learning_confidence_threshold = 0.5;
CREATE TEMP TABLE runs (n int, task_id bigint, runtime float8);
CREATE FUNCTION pg_temp.cycle(n int, runtime float8) RETURNS void LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
  id := tforge.submit_task('gpu-inference', '{}', NULL, 0, 'steady');
  PERFORM tforge.claim_tasks('w');
  PERFORM tforge.complete_task(id, 'w', jsonb_build_object('runtime_s', runtime));
  INSERT INTO runs VALUES (n, id, runtime);
END $$;
SELECT pg_temp.cycle(n, 30) FROM generate_series(1, 10) n;

-- Task n was submitted after n - 1 runs of 30 s, k = n - 2 of them scored
-- (the first run has nothing to be scored against), every strategy exact:
-- confidence (n - 2) / n. Learning needs 3 runs and confidence 0.5: n >= 4.
SELECT is((SELECT array_agg(t.prediction_strategy ORDER BY r.n) FROM runs r JOIN tforge.tasks t USING (task_id)),
          '{tau,tau,tau,adaptive,adaptive,adaptive,adaptive,adaptive,adaptive,adaptive}', 'tau until the key has 3 runs and confidence 0.5');
SELECT is((SELECT array_agg(t.predicted_runtime_s ORDER BY r.n) FROM runs r JOIN tforge.tasks t USING (task_id) WHERE r.n >= 4),
          '{30,30,30,30,30,30,30}'::float8[], 'then the learned 30 s');
SELECT ok((SELECT bool_and(abs(t.prediction_confidence - (r.n - 2)::float8 / r.n) < 1e-12)
             FROM runs r JOIN tforge.tasks t USING (task_id) WHERE r.n >= 4), 'confidence (n - 2) / n');
SELECT ok((SELECT bool_and(t.predicted_runtime_s <> 30) FROM runs r JOIN tforge.tasks t USING (task_id) WHERE r.n <= 3),
          'the first three were predicted by tau');

-- The runtime shifts to 60 s. adaptive chooses by the type's pooled
-- scoreboard (here the key's runs only: a plain mean while under 200 runs)
-- and keeps average until another candidate leads it by 0.5 / sqrt(k + 1).
-- Runs 2..10 scored 1 for every candidate, run 11 (predicted 30) 0.5 for
-- all; run j >= 12 scores last 1 and average a_j = mean(runs before j) / 60:
-- 0.545, 0.583, 0.615, 0.643, 0.667 for j = 12..16. last's lead after run m
-- is the sum of (1 - a_j) over (m - 1) scored runs: 0.073 after 13 (margin
-- 0.139), 0.115 after 15 (margin 0.129), 0.130 after 16 (margin 0.125): the
-- task submitted after six runs of 60 is the first the leader predicts.
SELECT pg_temp.cycle(n, 60) FROM generate_series(11, 16) n;
-- Task 11 still expects 30 (nothing seen yet); task 12 knows one run of 60.
SELECT is((SELECT t.predicted_runtime_s FROM runs r JOIN tforge.tasks t USING (task_id) WHERE r.n = 11), 30::float8,
          'before the shift is seen: 30');
SELECT ok((SELECT t.predicted_runtime_s FROM runs r JOIN tforge.tasks t USING (task_id) WHERE r.n = 12) > 30,
          'one run of 60 already raises the estimate');
SELECT tforge.submit_task('gpu-inference', '{}', NULL, 0, 'steady') AS last \gset
SELECT ok((SELECT abs(predicted_runtime_s - 60) <= 6 FROM tforge.tasks WHERE task_id = :last),
          'after six runs of 60 the estimate is within 10% of 60');
-- That task runs 60 s too: adaptive predicted about 60 for it, average
-- 600/16 = 37.5, while every earlier prediction was average's.
CREATE FUNCTION pg_temp.finish(id bigint, runtime float8) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM tforge.claim_tasks('w');
  PERFORM tforge.complete_task(id, 'w', jsonb_build_object('runtime_s', runtime));
END $$;
SELECT pg_temp.finish(:last, 60);
SELECT ok((SELECT accuracy FROM tforge.prediction_accuracy WHERE task_type = 'gpu-inference' AND strategy = 'adaptive')
          > (SELECT accuracy FROM tforge.prediction_accuracy WHERE task_type = 'gpu-inference' AND strategy = 'average'),
          'adaptive followed the shift better than the all-time average');

SELECT * FROM finish();
ROLLBACK;
