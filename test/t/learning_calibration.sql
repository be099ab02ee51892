-- Calibration ratios and tforge.estimate (in C): a completed task's ratio
-- is ln(actual / adaptive's prediction stored at its submit), not to what
-- the profile predicts by the time it completes; a run without one (a
-- recorded run) takes the profile's prediction; estimate's refusals.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(10);
SET LOCAL client_min_messages = error;

SELECT count(tforge._profile_record('cpu-light', 'c', r, NULL, NULL, NULL, NULL))
  FROM unnest(ARRAY[10, 20, 10, 20, 10]::float8[]) r;

-- Task a is submitted now, two runs of 100 s complete before it does.
SELECT tforge.submit_task('cpu-light', task_key => 'c') AS a \gset
SELECT predictions[9] AS pa FROM tforge.tasks WHERE task_id = :a \gset
SELECT tforge.submit_task('cpu-light', task_key => 'c') AS b1 \gset
SELECT tforge.submit_task('cpu-light', task_key => 'c') AS b2 \gset
-- claim all three (a's claim is the oldest), complete b1 and b2 first
CREATE TEMP TABLE claimed AS SELECT task_id, claim_token FROM tforge.claim_tasks('w', 3);
SELECT is((SELECT count(*) FROM claimed), 3::bigint, 'a, b1 and b2 claimed');
SELECT count(tforge.complete_task(c.task_id, 'w', '{"runtime_s": 100}', c.claim_token))
  FROM claimed c WHERE c.task_id IN (:b1, :b2);
SELECT (tforge.estimate('cpu-light', 'c')).runtime_s AS now_pred \gset
SELECT ok(:now_pred::float8 <> :pa::float8, 'the profile predicts otherwise by the time a completes');
SELECT tforge.complete_task(c.task_id, 'w', '{"runtime_s": 30}', c.claim_token) FROM claimed c WHERE c.task_id = :a;

SELECT is((SELECT calibration[array_length(calibration, 1)] FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key = 'c'),
          ln(30 / :pa::float8), 'the key''s ratio is to the prediction stored at submit');
SELECT is((SELECT calibration[array_length(calibration, 1)] FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key IS NULL),
          ln(30 / :pa::float8), 'the type''s ratio too');

-- A recorded run has no submit: the profile's own adaptive prediction, as estimate gives it.
SELECT (tforge.estimate('cpu-light', 'c')).runtime_s AS before_pred \gset
SELECT tforge._profile_record('cpu-light', 'c', 40, NULL, NULL, NULL, NULL);
SELECT is((SELECT calibration[array_length(calibration, 1)] FROM tforge.profiles WHERE task_type = 'cpu-light' AND task_key = 'c'),
          ln(40 / :before_pred::float8), 'a recorded run: the ratio to the profile''s prediction');

-- tforge.estimate: the default, and what it refuses.
SELECT tforge.define_task_type('fresh', 7);
SELECT results_eq($$ SELECT runtime_s, confidence, source, chosen, upper_s FROM tforge.estimate('fresh', 'x', bound => 5, coverage => 0.9) $$,
                  $$ VALUES (5::float8, 0::float8, 'default', 'tau', 5::float8) $$,
                  'no profile: tau capped by the bound, which is the calibrated bound');
SELECT throws_ok($$ SELECT tforge.estimate('nosuch') $$, '42704', NULL, 'unknown type: 42704');
SELECT throws_ok($$ SELECT tforge.estimate(NULL) $$, '22004', NULL, 'NULL type: 22004');
SELECT throws_ok($$ SELECT tforge.estimate('cpu-light', coverage => 1) $$, '22023', NULL, 'coverage 1: 22023');
CREATE ROLE tap_nobody_cal;
SET LOCAL ROLE tap_nobody_cal;
SELECT throws_ok($$ SELECT tforge.estimate('cpu-light', 'c') $$, '42501', NULL, 'no SELECT on profiles: no estimate');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
