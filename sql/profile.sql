-- tforge.rolling_stats: text I/O, accessors against brute-force SQL, the
-- aggregate and its combine function, bad input.
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
\set SHOW_CONTEXT never
SET extra_float_digits = 0;

-- Samples 1..5 worked by hand: mean 3, m2 = 4+1+0+1+4 = 10, variance 10/4 = 2.5.
SELECT tforge.rolling_stats_agg(x ORDER BY x) AS s FROM generate_series(1, 5) x;
SELECT tforge.rolling_stats_count(s) AS n, tforge.rolling_stats_mean(s) AS mean,
       tforge.rolling_stats_variance(s) AS variance, tforge.rolling_stats_min(s) AS min,
       tforge.rolling_stats_max(s) AS max, tforge.rolling_stats_window(s) AS window,
       tforge.rolling_stats_recent(s) AS recent
  FROM (SELECT tforge.rolling_stats_agg(x ORDER BY x) s FROM generate_series(1, 5) x) q;
-- Quantiles of {1..5} as percentile_cont: p95 at position 0.95*4 = 3.8 -> 4 + 0.8 = 4.8.
SELECT tforge.rolling_stats_quantile(s, 0) AS q0, tforge.rolling_stats_quantile(s, 0.5) AS q50,
       tforge.rolling_stats_quantile(s, 0.95) AS q95, tforge.rolling_stats_quantile(s, 1) AS q100
  FROM (SELECT tforge.rolling_stats_agg(x) s FROM generate_series(1, 5) x) q;
-- A single sample: no variance yet (as var_samp), min = max = mean.
SELECT tforge.rolling_stats_add(NULL, 42) AS s,
       tforge.rolling_stats_variance(tforge.rolling_stats_add(NULL, 42)) AS variance,
       tforge.rolling_stats_stddev(tforge.rolling_stats_add(NULL, 42)) AS stddev;
-- NULL samples are ignored, like every built-in aggregate; no rows give NULL.
SELECT tforge.rolling_stats_agg(x) FROM (VALUES (1::float8), (NULL), (3)) v(x);
SELECT tforge.rolling_stats_agg(x) IS NULL AS empty FROM generate_series(1, 0) x;
SELECT tforge.rolling_stats_add(NULL, NULL) IS NULL AS still_null;

-- 1,000 pseudo-random samples against brute force: count, mean, var_samp,
-- stddev_samp, min, max over all; percentile_cont over the 64 most recent.
CREATE TEMP TABLE samples AS
SELECT g AS i, ((g * 7919 % 1000) / 7.0 + 1e6)::float8 AS x FROM generate_series(1, 1000) g;
WITH s AS (SELECT tforge.rolling_stats_agg(x ORDER BY i) AS s FROM samples),
     recent AS (SELECT x FROM samples ORDER BY i DESC LIMIT 64)
SELECT tforge.rolling_stats_count(s) = (SELECT count(*) FROM samples) AS count_ok,
       abs(tforge.rolling_stats_mean(s) / (SELECT avg(x) FROM samples) - 1) < 1e-12 AS mean_ok,
       abs(tforge.rolling_stats_variance(s) / (SELECT var_samp(x) FROM samples) - 1) < 1e-9 AS variance_ok,
       abs(tforge.rolling_stats_stddev(s) / (SELECT stddev_samp(x) FROM samples) - 1) < 1e-9 AS stddev_ok,
       tforge.rolling_stats_min(s) = (SELECT min(x) FROM samples) AS min_ok,
       tforge.rolling_stats_max(s) = (SELECT max(x) FROM samples) AS max_ok,
       tforge.rolling_stats_recent(s) = (SELECT array_agg(x ORDER BY i) FROM (SELECT * FROM samples ORDER BY i DESC LIMIT 64) r) AS recent_ok,
       abs(tforge.rolling_stats_quantile(s, 0.9) - (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY x) FROM recent)) < 1e-9 AS p90_ok
  FROM s;

-- The combine function: merging two halves equals aggregating the whole
-- (Chan et al.), and the merged ring ends with the second half's samples.
WITH a AS (SELECT tforge.rolling_stats_agg(x ORDER BY i) s FROM samples WHERE i <= 300),
     b AS (SELECT tforge.rolling_stats_agg(x ORDER BY i) s FROM samples WHERE i > 300),
     m AS (SELECT tforge.rolling_stats_merge(a.s, b.s) s FROM a, b)
SELECT tforge.rolling_stats_count(m.s) AS n,
       abs(tforge.rolling_stats_mean(m.s) / (SELECT avg(x) FROM samples) - 1) < 1e-12 AS mean_ok,
       abs(tforge.rolling_stats_variance(m.s) / (SELECT var_samp(x) FROM samples) - 1) < 1e-9 AS variance_ok,
       tforge.rolling_stats_min(m.s) = (SELECT min(x) FROM samples) AS min_ok,
       tforge.rolling_stats_recent(m.s) = (SELECT array_agg(x ORDER BY i) FROM (SELECT * FROM samples ORDER BY i DESC LIMIT 64) r) AS recent_ok
  FROM m;
SELECT tforge.rolling_stats_merge(NULL, '(1,2,0,2,2,4,{2})') AS left_null,
       tforge.rolling_stats_merge('(2,1,0,1,1,2,{1,1})', '(1,4,0,4,4,3,{4})') AS capacities_differ,
       tforge.rolling_stats_merge(NULL, NULL) IS NULL AS both_null;

-- Parallel aggregation uses the combine function and gives the same moments.
CREATE TEMP TABLE big AS SELECT g::float8 AS x FROM generate_series(1, 200000) g;
ANALYZE big;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- mean of 1..200000 = 100000.5; var_samp = n(n+1)/12 = 3333350000
SELECT tforge.rolling_stats_count(s) AS n, tforge.rolling_stats_mean(s) AS mean,
       abs(tforge.rolling_stats_variance(s) / 3333350000 - 1) < 1e-12 AS variance_ok
  FROM (SELECT tforge.rolling_stats_agg(x) s FROM big) q;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- The ring keeps tforge.profile_window samples, oldest dropped first.
SET tforge.profile_window = 3;
SELECT tforge.rolling_stats_agg(x ORDER BY x) FROM generate_series(1, 5) x;
RESET tforge.profile_window;

-- Text round-trips exactly, including values with no short decimal form.
SELECT s::text::tforge.rolling_stats::text = s::text AS text_roundtrip,
       tforge.rolling_stats_mean(s::text::tforge.rolling_stats) = tforge.rolling_stats_mean(s) AS bits_equal
  FROM (SELECT tforge.rolling_stats_agg(x / 3.0) s FROM generate_series(1, 10) x) q;
SELECT ' (3,2,2,1,3,64,{1,2,3}) '::tforge.rolling_stats AS spaces_around;

-- Bad input: malformed text (22P02), inconsistent values, bad samples (22023).
SELECT ''::tforge.rolling_stats;
:sqlstate
-- Subnormal moments (binary input carries them) read back: {0, 1e-320} has
-- mean 5e-321 and M2 2*(5e-321)^2, which underflows to 0. 1e-400 is no double.
SELECT '(2,5e-321,0,0,1e-320,64,{0,1e-320})'::tforge.rolling_stats;
SELECT '(1,1e-400,0,0,0,64,{0})'::tforge.rolling_stats;
:sqlstate
SELECT '(1,2,0,2,2,64,{2})x'::tforge.rolling_stats;
:sqlstate
SELECT '(1,2,0,2,2,64,{2)'::tforge.rolling_stats;
:sqlstate
SELECT '(0,0,0,0,0,64,{})'::tforge.rolling_stats;
:sqlstate
SELECT '(2,2,-1,1,3,64,{1,3})'::tforge.rolling_stats;
:sqlstate
SELECT '(2,2,2,3,1,64,{1,3})'::tforge.rolling_stats;
:sqlstate
SELECT '(2,2,2,1,3,64,{1,9})'::tforge.rolling_stats;
:sqlstate
-- a mean outside [min, max]; a single sample with a spread
SELECT '(2,511.5,3.78125,4.5,7.25,64,{4.5,7.25})'::tforge.rolling_stats;
:sqlstate
SELECT '(1,4.5,1,4.5,4.5,64,{4.5})'::tforge.rolling_stats;
:sqlstate
SELECT '(1,4.5,0,4.5,5,64,{4.5})'::tforge.rolling_stats;
:sqlstate
SELECT '(1,2,0,2,2,1,{2,2})'::tforge.rolling_stats;
:sqlstate
SELECT '(3,2,0,2,2,5000,{2})'::tforge.rolling_stats;
:sqlstate
SELECT '(1,NaN,0,2,2,64,{2})'::tforge.rolling_stats;
:sqlstate
SELECT '(1,1e999,0,2,2,64,{2})'::tforge.rolling_stats;
:sqlstate
SELECT '(99999999999999999999,2,0,2,2,64,{2})'::tforge.rolling_stats;
:sqlstate
SELECT tforge.rolling_stats_add(NULL, 'NaN');
:sqlstate
SELECT tforge.rolling_stats_agg(x) FROM (VALUES (1::float8), ('Infinity')) v(x);
:sqlstate
SELECT tforge.rolling_stats_quantile('(1,2,0,2,2,64,{2})', 1.5);
:sqlstate
-- finite samples whose squared spread overflows double precision (22003)
SELECT tforge.rolling_stats_agg(x) FROM (VALUES (-1e200::float8), (1e200)) v(x);
:sqlstate
-- The count stops at 2^63-1 with 22003 rather than wrapping into a value
-- its own input refuses; one below the limit still adds and reads back.
SELECT tforge.rolling_stats_add('(9223372036854775806,1,0,1,1,1,{1})', 1) AS at_limit;
SELECT tforge.rolling_stats_add('(9223372036854775806,1,0,1,1,1,{1})', 1)::text::tforge.rolling_stats AS reads_back;
SELECT tforge.rolling_stats_add('(9223372036854775807,1,0,1,1,1,{1})', 1);
:sqlstate
SELECT tforge.rolling_stats_agg(x) FROM (VALUES (1::float8)) v(x)
 WHERE tforge.rolling_stats_add('(9223372036854775807,1,0,1,1,1,{1})', x) IS NOT NULL;
:sqlstate
