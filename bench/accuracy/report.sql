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
