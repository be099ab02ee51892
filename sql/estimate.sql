-- Estimation strategies on hand-made histories (constant, linear trend,
-- heavy tail, a single run, none), the bound, adaptive choice, confidence,
-- and tforge.estimate's fallback chain key -> type -> tau.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
\set SHOW_CONTEXT never
SET extra_float_digits = 0;
SET tforge.ema_lambda = 0.2;

-- Every strategy's prediction as a table, nothing scored yet.
CREATE FUNCTION pg_temp.all_of(s tforge.rolling_stats, scores float8[] DEFAULT NULL, bound float8 DEFAULT NULL)
RETURNS TABLE (strategy text, prediction float8, confidence float8) LANGUAGE sql AS $$
  SELECT n, p, c FROM tforge.estimate_all(s, scores, bound) e,
         unnest(tforge.estimation_strategies(), e.predictions, e.confidences) AS u(n, p, c)
$$;
-- Learn a sequence the way complete_task does: score, then add the sample.
CREATE FUNCTION pg_temp.learn(xs float8[], OUT stats tforge.rolling_stats, OUT scores float8[])
LANGUAGE plpgsql AS $$
DECLARE x float8;
BEGIN
  FOREACH x IN ARRAY xs LOOP
    scores := tforge.rescore(stats, scores, x);
    stats := tforge.rolling_stats_add(stats, x);
  END LOOP;
END $$;

-- Constant history 10,10,10,10: every strategy predicts 10.
SELECT * FROM pg_temp.all_of('(4,10,0,10,10,64,{10,10,10,10})');
-- Linear trend 1..5, worked by hand: average 3; p95 at 0.95*4 = 3.8 -> 4.8;
-- linear: slope 1 through (2, 3), at x = 5 -> 6; ewma 1, 1.2, 1.56, 2.048,
-- 2.6384; last2 4.5; median 3; last 5; ensemble = equal-weight mean of the
-- seven = 28.9384 / 7 = 4.1340571...; adaptive, unscored, takes the first (average).
-- kernel_free: weights newest first 0.5*0.25*0.75^j + 0.5*0.01*0.99^j =
-- .130, .0987, .0752, .0576, .0444 on 5, 4, 3, 2, 1; the Laplace sum
-- (scale 1.75 in ln s) at 4 is .336, at 5 .325, at 3 .326: 4 (kernel, no
-- request, the same); kernel_long (0.995^j, nearly flat) peaks at 3.
SELECT a.strategy, round(a.prediction::numeric, 6) AS prediction, a.confidence
  FROM (SELECT tforge.rolling_stats_agg(x ORDER BY x) s FROM generate_series(1, 5) x) q, pg_temp.all_of(q.s) a;
-- Heavy tail 1,1,1,1,100: average 20.8; p95 1 + 0.8 * 99 = 80.2; linear
-- 20.8 + 19.8 * 3 = 80.2; ewma 0.2 * 100 + 0.8 * 1 = 20.8; last2 50.5;
-- median 1; last 100.
SELECT strategy, round(prediction::numeric, 6) AS prediction
  FROM pg_temp.all_of('(5,20.8,7840.8,1,100,64,{1,1,1,1,100})');
-- A single run: every strategy predicts it.
SELECT strategy, prediction FROM pg_temp.all_of(tforge.rolling_stats_add(NULL, 7));
-- No history: no prediction (tforge.estimate falls back, below).
SELECT * FROM tforge.estimate_from(NULL, 'average');
-- The bound (requested time) caps every prediction: 1..5 with bound 4.
SELECT a.strategy, round(a.prediction::numeric, 6) AS prediction
  FROM (SELECT tforge.rolling_stats_agg(x ORDER BY x) s FROM generate_series(1, 5) x) q, pg_temp.all_of(q.s, NULL, 4) a;

-- Adaptive on a doubling series 10, 20, 40, worked by hand:
-- 10 enters unscored. 20: every candidate said 10, accuracy 0.5 each, k = 1.
-- 40: from {10, 20} average 15, p95 19.5, linear 30, ewma 12, last2 15,
-- median 15, last 20, ensemble 126.5 / 7; recent accuracy = 0.3 * acc + 0.7 * 0.5:
-- average 0.4625, p95 0.49625, linear 0.575, ewma 0.44, last2 0.4625,
-- median 0.4625, last 0.5, ensemble 0.3 * (126.5/7/40) + 0.35 = 0.4855357...
SELECT scores[1] AS k, round(scores[2]::numeric, 6) AS average, round(scores[3]::numeric, 6) AS p95,
       round(scores[4]::numeric, 6) AS linear, round(scores[5]::numeric, 6) AS ewma,
       round(scores[6]::numeric, 6) AS last2, round(scores[7]::numeric, 6) AS median,
       round(scores[8]::numeric, 6) AS last, round(scores[9]::numeric, 6) AS ensemble
  FROM pg_temp.learn('{10,20,40}');
-- so adaptive picks linear: through (0,10), (1,20), (2,40) slope 15, at x = 3
-- 70/3 + 15 * 2 = 53.333333; confidence 0.575 * k / (k + 2) = 0.575 * 2 / 4 = 0.2875.
SELECT round(e.value::numeric, 6) AS value, e.confidence, e.chosen
  FROM pg_temp.learn('{10,20,40}') l, tforge.estimate_from(l.stats, 'adaptive', l.scores) e;

-- Confidence: a steady history earns more than a noisy one, and more runs
-- earn more. Steady: every accuracy 1, so confidence = k / (k + 2).
SELECT round(e.confidence::numeric, 6) AS steady_6_runs
  FROM pg_temp.learn('{10,10,10,10,10,10}') l, tforge.estimate_from(l.stats, 'average', l.scores) e;
SELECT round(e.confidence::numeric, 6) AS steady_3_runs
  FROM pg_temp.learn('{10,10,10}') l, tforge.estimate_from(l.stats, 'average', l.scores) e;
SELECT s.confidence > n.confidence AS steady_beats_noisy
  FROM (SELECT e.* FROM pg_temp.learn('{10,10,10,10,10,10}') l, tforge.estimate_from(l.stats, 'adaptive', l.scores) e) s,
       (SELECT e.* FROM pg_temp.learn('{1,50,3,80,2,60}') l, tforge.estimate_from(l.stats, 'adaptive', l.scores) e) n;
SELECT e.confidence AS unscored FROM tforge.estimate_from(tforge.rolling_stats_add(NULL, 5), 'adaptive') e;

-- tforge.estimate and its fallback chain: key, then type, then tau.
-- Its adaptive chooses by the type's pooled scoreboard: after alice's 10,
-- 20, 40 (two runs scored, the same as alice's own board above) no candidate
-- leads average by 0.5 / sqrt(2 + 1) = 0.29, nor on alice's own board by
-- 0.25 (linear: 0.575 - 0.4625 = 0.1125), so average: 70/3 = 23.333333,
-- confidence 0.4625 * 2 / 4 = 0.23125.
SELECT count(tforge._profile_record('cpu-heavy', 'alice', r, 2 * r, 1000 * r, NULL, NULL)) AS recorded
  FROM unnest('{10,20,40}'::float8[]) r;
SELECT round(runtime_s::numeric, 6) AS runtime_s, cpu, memory_bytes, gpu_memory_bytes, confidence, strategy, source, chosen
  FROM tforge.estimate('cpu-heavy', 'alice');
SELECT count(tforge._profile_record('cpu-heavy', 'bob', 100, NULL, NULL, NULL, NULL)) AS recorded;
-- the type's profile saw 10, 20, 40, 100 (mean 42.5); an unknown key gets it
SELECT runtime_s, confidence, strategy, source FROM tforge.estimate('cpu-heavy', 'carol', 'average');
SELECT runtime_s, source FROM tforge.estimate('cpu-heavy', NULL, 'last');
-- memory is the 95th percentile of recent peaks {10000, 20000, 40000}:
-- position 0.95 * 2 = 1.9 -> 20000 + 0.9 * 20000 = 38000; cpu = mean cpu_s / mean runtime = 2
SELECT memory_bytes FROM tforge.estimate('cpu-heavy', 'alice', 'p95');
-- named arguments: p95 of {10, 20, 40} = 20 + 0.9 * 20 = 38
SELECT runtime_s, strategy, chosen FROM tforge.estimate('cpu-heavy', task_key => 'alice', strategy => 'p95');
-- bound caps the estimate
SELECT runtime_s FROM tforge.estimate('cpu-heavy', 'bob', 'last', bound => 30);
-- a key whose runtimes were all unusable has usage but no runtime profile: the type's is used
SELECT count(tforge._profile_record('cpu-heavy', 'dave', NULL, 5, NULL, NULL, NULL)) AS recorded;
SELECT runtime_s, source FROM tforge.estimate('cpu-heavy', 'dave', 'average');
-- nothing learned for gpu-training: its tau (60 s), no confidence
SELECT * FROM tforge.estimate('gpu-training', 'alice');
SELECT runtime_s FROM tforge.estimate('gpu-training', bound => 25);
-- the default strategy is tforge.learning_strategy
SET tforge.learning_strategy = 'last';
SELECT runtime_s, strategy FROM tforge.estimate('cpu-heavy', 'alice');
RESET tforge.learning_strategy;

-- The operator's view of the profiles: alice learned 10, 20, 40 (mean 70/3,
-- stddev sqrt(233.3) = 15.275), adaptive on her own board picks linear
-- (estimate_from, see above). The type
-- saw 10, 20, 40, 100: variance 4875/3, stddev 40.311; recent p50 at 1.5 -> 30,
-- p95 at 2.85 -> 40 + 0.85 * 60 = 91; linear slope 145/5 = 29, at x = 4
-- 42.5 + 29 * 2.5 = 115; its linear accuracy 0.5, 0.575, 0.5625 -> confidence
-- 0.5625 * 3/5 = 0.3375. dave has no runtime profile: no estimate.
SELECT task_type, task_key, runs, completions, round(mean_s::numeric, 4) AS mean_s,
       round(stddev_s::numeric, 4) AS stddev_s, min_s, recent_p50_s, recent_p95_s, max_s,
       adaptive_choice, round(adaptive_estimate_s::numeric, 4) AS adaptive_estimate_s, confidence
  FROM tforge.profile_summary ORDER BY task_key NULLS FIRST;

-- Bad input.
SELECT * FROM tforge.estimate('no-such-type');
:sqlstate
SELECT * FROM tforge.estimate('no-such-type', 'k', 'average');
:sqlstate
SELECT * FROM tforge.estimate(NULL);
:sqlstate
SELECT * FROM tforge.estimate('cpu-heavy', 'alice', 'psychic');
:sqlstate
SELECT * FROM tforge.estimate('gpu-training', NULL, 'psychic');
:sqlstate
SELECT * FROM tforge.estimate('cpu-heavy', 'alice', bound => 'NaN');
:sqlstate
SET tforge.learning_strategy = 'psychic';
:sqlstate
SELECT tforge.estimate_from('(1,2,0,2,2,64,{2})', 'average', '{1,2}');
:sqlstate
SELECT tforge.estimate_from('(1,2,0,2,2,64,{2})', 'average', '{1,2,0.5,0.5,0.5,0.5,0.5,0.5,0.5}');
:sqlstate
SELECT tforge.rescore('(1,2,0,2,2,64,{2})', NULL, -1);
:sqlstate
