-- Learning through the queue: profiles updated by complete_task, learning
-- on/off in submit_task, prediction scoring and the accuracy view,
-- sampling, expiry.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(31);

CREATE FUNCTION pg_temp.run(task_type text, task_key text, usage jsonb, payload jsonb DEFAULT '{}',
                            resources tforge.resources DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
  id := tforge.submit_task(task_type, payload, resources, 0, task_key);
  PERFORM tforge.claim_tasks('w');
  PERFORM tforge.complete_task(id, 'w', usage);
  RETURN id;
END $$;

SET LOCAL tforge.learning_min_executions = 3;
SET LOCAL tforge.learning_confidence_threshold = 0;
SET LOCAL client_min_messages = error;

-- Learning off: tau predicts, nothing is stored for scoring, profiles still learn.
SET LOCAL tforge.learning_enabled = off;
SELECT pg_temp.run('cpu-light', 'k', '{"runtime_s": 10, "memory_bytes": 100}') FROM generate_series(1, 3);
SELECT is((SELECT count(*) FROM tforge.tasks WHERE prediction_strategy = 'tau'), 3::bigint, 'learning off: every task predicted by tau');
SELECT is((SELECT count(*) FROM tforge.prediction_outcomes), 0::bigint, 'learning off: nothing scored');
SELECT is((SELECT tforge.rolling_stats_count(runtime) FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key = 'k'),
          3::bigint, 'learning off: the key''s profile still counts 3 runs');
SELECT is((SELECT tforge.rolling_stats_count(runtime) FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key IS NULL),
          3::bigint, 'the type''s profile counts them too');
SELECT tforge.submit_task('cpu-light', task_key => 'k');
-- tau 5 learned 10, 10, 10 at lambda 0.2: 6, 6.8, 7.44
SELECT ok(abs((SELECT predicted_runtime_s FROM tforge.tasks ORDER BY task_id DESC LIMIT 1) - 7.44) < 1e-12,
          'learning off: a profiled key is still predicted by tau (7.44 s)');
DELETE FROM tforge.tasks WHERE status = 'pending';

-- Learning on: three runs of 10 s meet min_executions 3; every strategy says 10.
SET LOCAL tforge.learning_enabled = on;
SELECT tforge.submit_task('cpu-light', task_key => 'k') AS id \gset
SELECT results_eq($$ SELECT predicted_runtime_s, prediction_strategy, prediction_source, (resources).memory_bytes
                       FROM tforge.tasks WHERE task_id = $$ || :id,
                  $$ VALUES (10::float8, 'adaptive', 'key', 100::bigint) $$,
                  'learning on: the estimate fills runtime and resources, and says which prediction it was');
-- confidence = recent accuracy 1 * k / (k + 2) with k = 2 scored completions = 0.5
SELECT is((SELECT prediction_confidence FROM tforge.tasks WHERE task_id = :id), 0.5::float8, 'confidence recorded: 1 * 2/4');
SELECT is((SELECT laxity_key FROM tforge.tasks WHERE task_id = :id),
          (SELECT deadline - interval '10 s' FROM tforge.tasks WHERE task_id = :id), 'laxity uses the learned runtime');
-- An unseen key of the same type gets the type's profile.
SELECT tforge.submit_task('cpu-light', task_key => 'new') AS id2 \gset
SELECT is((SELECT prediction_source FROM tforge.tasks WHERE task_id = :id2), 'type', 'unknown key falls back to the type profile');
-- Declared resources are the submitter's: learning leaves the task alone.
SELECT tforge.submit_task('cpu-light', '{}', ROW(1, 1, 0, 0)::tforge.resources, 0, 'k') AS id3 \gset
SELECT is((SELECT prediction_strategy FROM tforge.tasks WHERE task_id = :id3), 'tau', 'declared resources: tau, not the estimate');
SELECT is((SELECT resources FROM tforge.tasks WHERE task_id = :id3), ROW(1, 1, 0, 0)::tforge.resources, 'declared resources kept');
-- Too few runs, or too little confidence: tau.
SET LOCAL tforge.learning_min_executions = 4;
SELECT tforge.submit_task('cpu-light', task_key => 'k') AS id4 \gset
SELECT is((SELECT prediction_strategy FROM tforge.tasks WHERE task_id = :id4), 'tau', 'below learning_min_executions: tau');
SET LOCAL tforge.learning_min_executions = 3;
SET LOCAL tforge.learning_confidence_threshold = 0.6;
SELECT tforge.submit_task('cpu-light', task_key => 'k') AS id5 \gset
SELECT is((SELECT prediction_strategy FROM tforge.tasks WHERE task_id = :id5), 'tau', 'below the confidence threshold: tau');
SET LOCAL tforge.learning_confidence_threshold = 0;
SET LOCAL tforge.learning_strategy = 'p95';
SELECT tforge.submit_task('cpu-light', task_key => 'k') AS id6 \gset
SELECT is((SELECT prediction_strategy FROM tforge.tasks WHERE task_id = :id6), 'p95', 'tforge.learning_strategy chooses the strategy');
RESET tforge.learning_strategy;
-- The requested time bounds the estimate.
SELECT tforge.submit_task('cpu-light', '{"requested_s": 4}', NULL, 0, 'k') AS id7 \gset
SELECT is((SELECT predicted_runtime_s FROM tforge.tasks WHERE task_id = :id7), 4::float8, 'payload requested_s caps the prediction');
DELETE FROM tforge.tasks WHERE task_id IN (:id2, :id3, :id4, :id5, :id6, :id7);

-- Scoring: task :id was predicted 10 by every strategy; it runs 20 s, the
-- next (also predicted 10) runs 5 s. Per strategy: MAE (10 + 5) / 2 = 7.5,
-- APE {0.5, 1} median 0.75, accuracy (10/20 + 5/10) / 2 = 0.5, under 1 of 2.
SELECT tforge.submit_task('cpu-light', task_key => 'k') AS id8 \gset
SELECT task_id FROM tforge.claim_tasks('w', 2);
SELECT tforge.complete_task(:id, 'w', '{"runtime_s": 20}');
SELECT tforge.complete_task(:id8, 'w', '{"runtime_s": 5}');
SELECT is((SELECT count(*) FROM tforge.prediction_outcomes WHERE task_id = :id), 12::bigint, 'every strategy scored');
SELECT is((SELECT array_agg(strategy) FROM tforge.prediction_outcomes WHERE task_id = :id AND used), '{adaptive}',
          'the prediction submit used is marked');
SELECT is((SELECT predictions FROM tforge.tasks WHERE task_id = :id), '{10,10,10,10,10,10,10,10,10,10,10,10}'::float8[],
          'the task keeps what every strategy predicted');
SELECT results_eq($$ SELECT predictions, mae_s, median_ape, accuracy, under_rate FROM tforge.prediction_accuracy
                      WHERE task_type = 'cpu-light' AND strategy = 'last' $$,
                  $$ VALUES (2::bigint, 7.5::float8, 0.75::float8, 0.5::float8, 0.5::float8) $$,
                  'prediction_accuracy: count, MAE, median APE, accuracy, under rate');
SELECT is((SELECT count(DISTINCT strategy) FROM tforge.prediction_accuracy WHERE task_type = 'cpu-light'), 12::bigint,
          'one row per strategy');

-- Bad usage never loses the completion: the task is done, the bad fields are
-- skipped, the good ones are profiled.
SELECT pg_temp.run('cpu-heavy', 'bad', '{"runtime_s": 12, "cpu_s": "NaN", "memory_bytes": -5, "gpu_memory_bytes": 7}') AS id9 \gset
SELECT is((SELECT status FROM tforge.tasks WHERE task_id = :id9), 'done'::tforge.task_status, 'bad usage: task done');
SELECT results_eq($$ SELECT tforge.rolling_stats_count(runtime), cpu IS NULL, memory IS NULL, tforge.rolling_stats_mean(gpu_memory)
                       FROM tforge.profiles WHERE task_type = 'cpu-heavy' AND task_key = 'bad' $$,
                  $$ VALUES (1::bigint, true, true, 7::float8) $$, 'bad usage: runtime and GPU memory profiled, NaN and negative skipped');
SELECT pg_temp.run('cpu-heavy', 'bad', '{"runtime_s": -3}') AS id10 \gset
SELECT is((SELECT status FROM tforge.tasks WHERE task_id = :id10), 'done'::tforge.task_status, 'negative runtime: task done');
SELECT is((SELECT (tforge.rolling_stats_count(runtime), completions)::text FROM tforge.profiles WHERE task_type = 'cpu-heavy' AND task_key = 'bad'),
          '(1,2)', 'negative runtime: not profiled, completion counted');

-- A rolled-back completion teaches the profile nothing.
SAVEPOINT s;
SELECT pg_temp.run('cpu-heavy', 'bad', '{"runtime_s": 99}');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT tforge.rolling_stats_count(runtime) FROM tforge.profiles WHERE task_type = 'cpu-heavy' AND task_key = 'bad'),
          1::bigint, 'rolled back completion: profile unchanged');

-- Sampling: after 2 recorded runs only every 3rd completion is recorded:
-- completions 1, 2 (below 2 runs), 3, 6 -> 4 runs of 8 completions.
SET LOCAL tforge.profile_sample_after = 2;
SET LOCAL tforge.profile_sample_every = 3;
SELECT tforge._profile_record('mixed', 'hot', g, NULL, NULL, NULL, NULL) FROM generate_series(1, 8) g;
SELECT results_eq($$ SELECT tforge.rolling_stats_count(runtime), completions, tforge.rolling_stats_recent(runtime)
                       FROM tforge.profiles WHERE task_type = 'mixed' AND task_key = 'hot' $$,
                  $$ VALUES (4::bigint, 8::bigint, '{1,2,3,6}'::float8[]) $$, 'sampling records completions 1, 2, 3 and 6');
RESET tforge.profile_sample_after;
RESET tforge.profile_sample_every;

-- Expiry: profiles untouched for longer than the TTL (default 30 days) go.
UPDATE tforge.profiles SET updated_at = now() - interval '31 days' WHERE task_type = 'mixed';
UPDATE tforge.profiles SET updated_at = now() - interval '2 hours' WHERE task_type = 'cpu-heavy' AND task_key = 'bad';
SET LOCAL tforge.profile_ttl = 0;
SELECT is(tforge.expire_profiles(), 0::bigint, 'ttl 0: nothing expires');
RESET tforge.profile_ttl;
SELECT is(tforge.expire_profiles(), 2::bigint, 'default ttl: the two mixed profiles expire');
SELECT is(tforge.expire_profiles('1 hour'), 1::bigint, 'explicit age: the 2-hour-old profile expires');
SELECT is((SELECT count(*) FROM tforge.profiles), 3::bigint, 'recent profiles kept');
SELECT throws_ok($$ SELECT tforge.expire_profiles('-1 day') $$, '22023', NULL, 'negative age refused');

SELECT * FROM finish();
ROLLBACK;
