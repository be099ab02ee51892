-- Per strategy: count, MAE, median APE, accuracy, under rate; tforge's rows
-- come from the view tforge.prediction_accuracy, the baselines' from the
-- same formulas over the same jobs.
\pset footer off
CREATE TEMP VIEW results AS
SELECT 'tforge ' || strategy AS predictor, predictions AS n, mae_s, median_ape, accuracy, under_rate
  FROM tforge.prediction_accuracy WHERE task_type = 'trace'
UNION ALL
SELECT strategy, count(*), avg(abs(predicted_s - actual_s)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(predicted_s - actual_s) / actual_s),
       avg(least(predicted_s, actual_s) / greatest(predicted_s, actual_s)),
       avg((predicted_s < actual_s)::int)
  FROM baseline_outcomes GROUP BY strategy;

SELECT predictor, n AS count, round(mae_s::numeric, 0) AS "MAE s",
       round(100 * median_ape::numeric, 1) AS "median APE %",
       round(100 * accuracy::numeric, 1) AS "accuracy %",
       round(100 * under_rate::numeric, 1) AS "under %"
  FROM results ORDER BY accuracy DESC;

\pset tuples_only on
\pset format unaligned
SELECT format('ratio accuracy adaptive vs EMA 0.2: %s (tforge %s%% vs baseline %s%%, +%s points)',
              round((a.accuracy / e.accuracy)::numeric, 2), round(100 * a.accuracy::numeric, 1),
              round(100 * e.accuracy::numeric, 1), round(100 * (a.accuracy - e.accuracy)::numeric, 1))
  FROM results a, results e
 WHERE a.predictor = 'tforge adaptive' AND e.predictor = 'EMA 0.2 (baseline)';
SELECT format('ratio accuracy adaptive vs last-2 mean: %s (tforge %s%% vs baseline %s%%, +%s points)',
              round((a.accuracy / e.accuracy)::numeric, 2), round(100 * a.accuracy::numeric, 1),
              round(100 * e.accuracy::numeric, 1), round(100 * (a.accuracy - e.accuracy)::numeric, 1))
  FROM results a, results e
 WHERE a.predictor = 'tforge adaptive' AND e.predictor = 'last-2 mean (baseline)';
SELECT format('ratio accuracy adaptive vs last-2 capped at request: %s (tforge %s%% vs baseline %s%%)',
              round((a.accuracy / e.accuracy)::numeric, 2), round(100 * a.accuracy::numeric, 1),
              round(100 * e.accuracy::numeric, 1))
  FROM results a, results e
 WHERE a.predictor = 'tforge adaptive' AND e.predictor = 'last-2 capped (README row)';

-- Does confidence mean something? Observed accuracy of the adaptive
-- predictions, by confidence band, and the correlation of the two.
\pset tuples_only off
\pset format aligned
\echo
\echo adaptive: observed accuracy by confidence band
SELECT width_bucket(confidence, 0, 1.0000001, 5) AS band,
       round(min(confidence)::numeric, 2) || ' .. ' || round(max(confidence)::numeric, 2) AS confidence,
       count(*) AS predictions,
       round(100 * avg(least(predicted_s, actual_s) / greatest(predicted_s, actual_s))::numeric, 1) AS "accuracy %"
  FROM tforge.prediction_outcomes WHERE task_type = 'trace' AND strategy = 'adaptive'
 GROUP BY 1 ORDER BY 1;
\pset tuples_only on
\pset format unaligned
SELECT format('correlation confidence vs accuracy (adaptive, %s predictions): %s',
              count(*), round(corr(confidence, least(predicted_s, actual_s) / greatest(predicted_s, actual_s))::numeric, 3))
  FROM tforge.prediction_outcomes WHERE task_type = 'trace' AND strategy = 'adaptive';

-- Halves of the trace (submit order), the kernel family beside adaptive.
SELECT format('adaptive %s requests: %s%% (first half %s%%, second half %s%%, %s jobs); kernel %s%%, kernel_free %s%%, kernel_long %s%%',
              :'mode', round(100 * avg(acc) FILTER (WHERE strategy = 'adaptive')::numeric, 1),
              round(100 * avg(acc) FILTER (WHERE strategy = 'adaptive' AND half = 1)::numeric, 1),
              round(100 * avg(acc) FILTER (WHERE strategy = 'adaptive' AND half = 2)::numeric, 1),
              count(*) FILTER (WHERE strategy = 'adaptive'),
              round(100 * avg(acc) FILTER (WHERE strategy = 'kernel')::numeric, 1),
              round(100 * avg(acc) FILTER (WHERE strategy = 'kernel_free')::numeric, 1),
              round(100 * avg(acc) FILTER (WHERE strategy = 'kernel_long')::numeric, 1))
  FROM (SELECT o.strategy, least(o.predicted_s, o.actual_s) / greatest(o.predicted_s, o.actual_s) AS acc,
               CASE WHEN o.task_id <= (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY task_id) FROM tforge.prediction_scores WHERE task_type = 'trace')
                    THEN 1 ELSE 2 END AS half
          FROM tforge.prediction_outcomes o WHERE o.task_type = 'trace') x;
SELECT format('ratio accuracy adaptive %s requests vs today''s 0.1.0 adaptive: %s (tforge %s%% vs 0.1.0 %s%%; target >= 61%% with requests, >= 0.1.0 without)',
              :'mode', round((a.accuracy / b.acc)::numeric, 3), round(100 * a.accuracy::numeric, 1), round(100 * b.acc, 1))
  FROM results a,
       (SELECT CASE WHEN :'mode' = 'with' THEN 0.565 ELSE 0.504 END AS acc) b
 WHERE a.predictor = 'tforge adaptive';

-- Calibrated deadlines: every task was submitted with deadline_coverage =>
-- 0.9, so deadline - submitted_at is upper_s where the profile had a bound
-- (tasks predicted from a profile; the first tasks of the type had none).
SELECT format('ratio coverage 0.9 %s requests: %s of %s runs within upper_s (%s%%; target 88-92%%); mean upper_s/actual %s vs requested/actual %s (median %s vs %s)',
              :'mode', count(*) FILTER (WHERE k.runtime_s <= b.upper_s), count(*),
              round(100 * avg((k.runtime_s <= b.upper_s)::int)::numeric, 1),
              round(avg(b.upper_s / k.runtime_s)::numeric, 2),
              coalesce(round(avg((k.payload ->> 'requested_s')::float8 / k.runtime_s)::numeric, 2)::text, 'n/a'),
              round((percentile_cont(0.5) WITHIN GROUP (ORDER BY b.upper_s / k.runtime_s))::numeric, 2),
              coalesce(round((percentile_cont(0.5) WITHIN GROUP (ORDER BY (k.payload ->> 'requested_s')::float8 / k.runtime_s))::numeric, 2)::text, 'n/a'))
  FROM tforge.tasks k
  CROSS JOIN LATERAL (SELECT extract(epoch FROM k.deadline - k.submitted_at)::float8 AS upper_s) b
 WHERE k.task_type = 'trace' AND k.status = 'done' AND k.runtime_s > 0 AND k.predictions_source <> 'default';
