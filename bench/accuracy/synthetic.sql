-- Synthetic accuracy bench: stationary data, where a per-key running
-- median is as good as it gets. Per cell (sigma 0.3, 0.6, 1.0; with and
-- without requests) 20 keys with log-normal runtimes, median drawn once per
-- key in [10 s, 3600 s], 100 runs each in a random interleaving, replayed
-- one at a time through submit_task, claim_tasks and complete_task (each run
-- finishes before the next is submitted). With requests, a key's request is
-- its median * exp(2 sigma) rounded up to a minute, and a run is killed
-- there (runtime = least(runtime, request)). The baseline, in plain SQL: the
-- median of the key's earlier runtimes (its first run: of all earlier runs
-- of the cell). Seeded: every run of the bench replays the same runtimes.
SET client_min_messages = warning;
SET tforge.learning_enabled = on;
SET tforge.profile_sample_after = 0;

CREATE TABLE syn_jobs (cell text, seq int, key text, runtime_s float8, requested_s float8,
                       task_id bigint, PRIMARY KEY (cell, seq));

SELECT setseed(0.15);
DO $$
DECLARE
  sigma float8;
  req boolean;
  cell text;
  mu float8[];
  k int;
  i int := 0;
  r float8;
  rq float8;
BEGIN
  FOREACH sigma IN ARRAY ARRAY[0.3, 0.6, 1.0] LOOP
    FOREACH req IN ARRAY ARRAY[false, true] LOOP
      cell := 'syn_' || sigma || CASE WHEN req THEN '_req' ELSE '' END;
      PERFORM tforge.define_task_type(cell, 600);
      mu := ARRAY(SELECT ln(10) + random() * (ln(3600) - ln(10)) FROM generate_series(1, 20));
      i := 0;
      FOR k IN SELECT g % 20 + 1 FROM generate_series(0, 1999) g ORDER BY random() LOOP
        i := i + 1;
        -- Box-Muller
        r := exp(mu[k] + sigma * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()));
        rq := CASE WHEN req THEN ceil(exp(mu[k] + 2 * sigma) / 60) * 60 END;
        INSERT INTO syn_jobs VALUES (cell, i, 'k' || k, least(r, coalesce(rq, r)), rq, NULL);
      END LOOP;
    END LOOP;
  END LOOP;
END
$$;

DO $$
DECLARE
  j syn_jobs;
  id bigint;
  n int := 0;
BEGIN
  FOR j IN SELECT * FROM syn_jobs ORDER BY cell, seq LOOP
    id := tforge.submit_task(j.cell, CASE WHEN j.requested_s IS NOT NULL
                                          THEN jsonb_build_object('requested_s', j.requested_s) ELSE '{}' END,
                             NULL, 0, j.key);
    PERFORM 1 FROM tforge.claim_tasks('syn', 1, NULL, '100 years');
    PERFORM tforge.complete_task(id, 'syn', jsonb_build_object('runtime_s', j.runtime_s));
    UPDATE syn_jobs s SET task_id = id WHERE s.cell = j.cell AND s.seq = j.seq;
    n := n + 1;
    IF n % 500 = 0 THEN
      COMMIT;
    END IF;
  END LOOP;
END
$$;

-- Per cell: adaptive's accuracy (tforge.prediction_outcomes) and the running
-- median's (plain SQL), over the same runs: every run but the cell's first.
CREATE TEMP TABLE syn_result AS
SELECT j.cell, count(*) AS runs,
       avg(least(o.predicted_s, j.runtime_s) / greatest(o.predicted_s, j.runtime_s)) AS adaptive,
       avg(least(m.median_s, j.runtime_s) / greatest(m.median_s, j.runtime_s)) AS running_median,
       avg(least(a.predicted_s, j.runtime_s) / greatest(a.predicted_s, j.runtime_s)) AS average
  FROM syn_jobs j
  JOIN tforge.prediction_outcomes o ON o.task_id = j.task_id AND o.strategy = 'adaptive'
  JOIN tforge.prediction_outcomes a ON a.task_id = j.task_id AND a.strategy = 'average'
  CROSS JOIN LATERAL (
    SELECT coalesce((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY p.runtime_s)
                       FROM syn_jobs p WHERE p.cell = j.cell AND p.key = j.key AND p.seq < j.seq),
                    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY p.runtime_s)
                       FROM syn_jobs p WHERE p.cell = j.cell AND p.seq < j.seq)) AS median_s) m
 WHERE j.seq > 1
 GROUP BY j.cell;

\pset footer off
SELECT cell, runs, round(100 * adaptive::numeric, 1) AS "adaptive %", round(100 * running_median::numeric, 1) AS "running median %",
       round(100 * average::numeric, 1) AS "average %", round(100 * (adaptive - running_median)::numeric, 1) AS "points"
  FROM syn_result ORDER BY cell;
\pset tuples_only on
\pset format unaligned
SELECT format('ratio accuracy adaptive vs per-key running median, %s: %s (tforge %s%% vs baseline %s%%, %s points; target >= -1 point)',
              cell, round((adaptive / running_median)::numeric, 3), round(100 * adaptive::numeric, 1),
              round(100 * running_median::numeric, 1), to_char(round(100 * (adaptive - running_median)::numeric, 1), 'SG0.0'))
  FROM syn_result ORDER BY cell;
