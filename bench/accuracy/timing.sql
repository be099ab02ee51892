-- tforge.estimate per call against a plain SELECT avg(...) over a history
-- table holding the same runs (indexed on (task_type, task_key)), at 10,000
-- runs and at larger histories. pgbench would time it from outside; here
-- both run the same number of times inside one backend, so the comparison
-- excludes only client round trips that both would pay.
\pset footer off
SET client_min_messages = warning;
DO $$ BEGIN PERFORM tforge.define_task_type('timing', 60); END $$;
CREATE TABLE history (task_type text, task_key text, runtime_s float8);
CREATE INDEX ON history (task_type, task_key);

-- estimate is timed over 2,000 calls at every size (a few tens of ms, so a
-- moment of background work cannot dominate), avg() over avg_calls.
CREATE FUNCTION time_calls(runs int, avg_calls int, OUT runs_in_history int, OUT estimate_us float8, OUT avg_us float8)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz;
  v float8;
  i int;
  k text := 'k' || runs;
BEGIN
  -- history of one key: noisy runtimes around 100 s, 1% of other keys' rows beside it
  INSERT INTO history SELECT 'timing', k, 100 + 50 * sin(g) FROM generate_series(1, runs) g;
  INSERT INTO history SELECT 'timing', 'other' || (g % 100), 100 FROM generate_series(1, runs / 100) g;
  -- the profile as complete_task leaves it: rolling statistics, a
  -- scoreboard, the rings of the last tforge.kernel_window (128) runs and
  -- calibration ratios
  INSERT INTO tforge.profiles (task_type, task_key, runtime, scores, recent, calibration)
  SELECT 'timing', k, tforge.rolling_stats_agg(runtime_s),
         -- a scoreboard on which kernel leads, so that adaptive runs the kernel mode
         '{100,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.9,0.5,0.5}'::float8[],
         (SELECT array_agg(u.x ORDER BY w.g, u.i) FROM (SELECT g, 100 + 50 * sin(g) AS r FROM generate_series(runs - 127, runs) g) w,
                 LATERAL unnest(ARRAY[w.r, 0, 0]) WITH ORDINALITY AS u(x, i)),
         (SELECT array_agg(0.1 * sin(g) ORDER BY g) FROM generate_series(1, 128) g)
    FROM history WHERE task_type = 'timing' AND task_key = k;
  ANALYZE history;
  runs_in_history := runs;
  t0 := clock_timestamp();
  FOR i IN 1 .. 2000 LOOP
    -- the default strategy with a calibrated bound: the most work estimate does
    SELECT e.runtime_s INTO v FROM tforge.estimate('timing', k, coverage => 0.9) e;
  END LOOP;
  estimate_us := extract(epoch FROM clock_timestamp() - t0) * 1e6 / 2000;
  t0 := clock_timestamp();
  FOR i IN 1 .. avg_calls LOOP
    SELECT avg(h.runtime_s) INTO v FROM history h WHERE h.task_type = 'timing' AND h.task_key = k;
  END LOOP;
  avg_us := extract(epoch FROM clock_timestamp() - t0) * 1e6 / avg_calls;
END
$$;

CREATE TEMP TABLE timings AS
SELECT * FROM time_calls(10000, 2000)
UNION ALL SELECT * FROM time_calls(100000, 500)
UNION ALL SELECT * FROM time_calls(1000000, 50);

SELECT runs_in_history, round(estimate_us::numeric, 1) AS "tforge.estimate us/call",
       round(avg_us::numeric, 1) AS "SELECT avg() us/call", round((avg_us / estimate_us)::numeric, 1) AS speedup
  FROM timings ORDER BY 1;
\pset tuples_only on
\pset format unaligned
SELECT format('ratio estimate speed at %s runs: %s (tforge %s us vs baseline avg() %s us)', runs_in_history,
              round((avg_us / estimate_us)::numeric, 1), round(estimate_us::numeric, 1), round(avg_us::numeric, 1))
  FROM timings ORDER BY runs_in_history;
SELECT format('ratio estimate flatness 1,000,000 vs 10,000 runs: %s (tforge %s us vs %s us)',
              round((b.estimate_us / a.estimate_us)::numeric, 2), round(b.estimate_us::numeric, 1), round(a.estimate_us::numeric, 1))
  FROM timings a, timings b WHERE a.runs_in_history = 10000 AND b.runs_in_history = 1000000;
