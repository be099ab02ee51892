-- tforge.estimate per call against a plain SELECT avg(...) over a history
-- table holding the same runs (indexed on (task_type, task_key)), at 100
-- to 1,000,000 runs of one key. pgbench would time it from outside; here
-- both run inside one backend, so the comparison excludes only client round
-- trips that both would pay.
--
-- A shared machine is noisy: every size is timed in five rounds of 1,000
-- calls, the rounds of all sizes interleaved (a slow moment hits every
-- size alike), and the median round counts (the least for CPU time). The history is vacuumed before
-- timing, so no autovacuum of a fresh million rows runs beside it. Besides
-- the wall clock, the backend's own CPU time (Linux /proc/<pid>/schedstat,
-- nanoseconds on a CPU): on a machine with more runnable processes than
-- cores the wall clock also counts the time the backend waited for one.
\pset footer off
SET client_min_messages = warning;
DO $$ BEGIN PERFORM tforge.define_task_type('timing', 60); END $$;
CREATE TABLE history (task_type text, task_key text, runtime_s float8);
CREATE INDEX ON history (task_type, task_key);

-- runs of key 'k<runs>' in the history, and its profile as complete_task
-- leaves it: rolling statistics, a scoreboard, the ring of the last
-- tforge.kernel_window (128) runs and as many calibration ratios
CREATE FUNCTION fill(runs int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  k text := 'k' || runs;
BEGIN
  -- noisy runtimes around 100 s, 1% of other keys' rows beside them
  INSERT INTO history SELECT 'timing', k, 100 + 50 * sin(g) FROM generate_series(1, runs) g;
  INSERT INTO history SELECT 'timing', 'other' || (g % 100), 100 FROM generate_series(1, runs / 100) g;
  INSERT INTO tforge.profiles (task_type, task_key, runtime, scores, recent, calibration)
  SELECT 'timing', k, tforge.rolling_stats_agg(runtime_s),
         -- a scoreboard on which kernel leads, so that adaptive runs the kernel mode
         '{100,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.9,0.5,0.5}'::float8[],
         (SELECT array_agg(u.x ORDER BY w.g, u.i)
            FROM (SELECT g, 100 + 50 * sin(g) AS r FROM generate_series(greatest(runs - 127, 1), runs) g) w,
                 LATERAL unnest(ARRAY[w.r, 0, 0]) WITH ORDINALITY AS u(x, i)),
         (SELECT array_agg(0.1 * sin(g) ORDER BY g) FROM generate_series(1, least(runs, 128)) g)
    FROM history WHERE task_type = 'timing' AND task_key = k;
END
$$;

-- nanoseconds this backend has run on a CPU (NULL where /proc does not say)
CREATE FUNCTION cpu_ns() RETURNS bigint LANGUAGE sql AS $$
  SELECT split_part(pg_read_file('/proc/' || pg_backend_pid() || '/schedstat', 0, 200, true), ' ', 1)::bigint
$$;

-- microseconds per call of tforge.estimate on key k, over calls calls: wall clock and CPU
CREATE FUNCTION time_estimate(k text, calls int, OUT wall_us float8, OUT cpu_us float8) LANGUAGE plpgsql AS $$
DECLARE
  c0 bigint := cpu_ns();
  t0 timestamptz := clock_timestamp();
  v float8;
BEGIN
  FOR i IN 1 .. calls LOOP
    -- the default strategy with a calibrated bound: the most work estimate does
    SELECT e.runtime_s INTO v FROM tforge.estimate('timing', k, coverage => 0.9) e;
  END LOOP;
  wall_us := extract(epoch FROM clock_timestamp() - t0) * 1e6 / calls;
  cpu_us := (cpu_ns() - c0) / 1e3 / calls;
END
$$;

-- microseconds per SELECT avg() over the key's history, over calls calls
CREATE FUNCTION time_avg(k text, calls int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  v float8;
BEGIN
  FOR i IN 1 .. calls LOOP
    SELECT avg(h.runtime_s) INTO v FROM history h WHERE h.task_type = 'timing' AND h.task_key = k;
  END LOOP;
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1e6 / calls;
END
$$;

CREATE TEMP TABLE sizes (runs int, avg_calls int);
INSERT INTO sizes VALUES (100, 2000), (10000, 1000), (100000, 100), (1000000, 20);
DO $$ BEGIN PERFORM fill(runs) FROM sizes ORDER BY runs; END $$;
VACUUM ANALYZE history;
VACUUM ANALYZE tforge.profiles;

CREATE TEMP TABLE rounds (runs int, round int, estimate_us float8, estimate_cpu_us float8);
DO $$
BEGIN
  FOR r IN 1 .. 5 LOOP
    INSERT INTO rounds SELECT s.runs, r, t.wall_us, t.cpu_us
      FROM sizes s, LATERAL time_estimate('k' || s.runs, 1000) t ORDER BY s.runs;
  END LOOP;
END
$$;
CREATE TEMP TABLE timings AS
SELECT s.runs AS runs_in_history,
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY r.estimate_us) FROM rounds r WHERE r.runs = s.runs) AS estimate_us,
       -- the CPU time of a round only grows with noise (caches, a sibling hyperthread): the least
       (SELECT min(r.estimate_cpu_us) FROM rounds r WHERE r.runs = s.runs) AS estimate_cpu_us,
       time_avg('k' || s.runs, s.avg_calls) AS avg_us
  FROM sizes s;

SELECT runs_in_history, round(estimate_us::numeric, 1) AS "tforge.estimate us/call",
       round(estimate_cpu_us::numeric, 1) AS "of it on a CPU",
       round(avg_us::numeric, 1) AS "SELECT avg() us/call", round((avg_us / estimate_us)::numeric, 1) AS speedup
  FROM timings ORDER BY 1;
\pset tuples_only on
\pset format unaligned
SELECT format('ratio estimate speed at %s runs: %s (tforge %s us vs baseline avg() %s us, wall clock)', runs_in_history,
              round((avg_us / estimate_us)::numeric, 1), round(estimate_us::numeric, 1), round(avg_us::numeric, 1))
  FROM timings ORDER BY runs_in_history;
SELECT format('ratio estimate flatness 1,000,000 vs 100 runs: %s (tforge %s us vs %s us on a CPU, %s vs %s us wall clock; target flat)',
              round((coalesce(b.estimate_cpu_us / a.estimate_cpu_us, b.estimate_us / a.estimate_us))::numeric, 2),
              round(b.estimate_cpu_us::numeric, 1), round(a.estimate_cpu_us::numeric, 1),
              round(b.estimate_us::numeric, 1), round(a.estimate_us::numeric, 1))
  FROM timings a, timings b WHERE a.runs_in_history = 100 AND b.runs_in_history = 1000000;
SELECT format('ratio estimate cost vs target: %s (tforge %s us per call on a CPU, %s us wall clock, the slowest size; target <= 30 us)',
              round((coalesce(max(estimate_cpu_us), max(estimate_us)) / 30)::numeric, 2),
              round(max(estimate_cpu_us)::numeric, 1), round(max(estimate_us)::numeric, 1))
  FROM timings;
