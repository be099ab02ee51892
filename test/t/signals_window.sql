-- Properties of tforge.window_counter on seeded random events, with
-- brute-force counts as the oracle. Buckets are clock minutes and hours
-- counted from 2000-01-01 00:00 UTC (epoch 946684800).
BEGIN;
SELECT plan(13);
SET LOCAL timezone = 'UTC';

SELECT setseed(0.1234);
-- 2,000 counters of 1 to 40 events over 10 days (so many are too old for the
-- buckets of the newest), 1 to 3 events per row, inserted in random order.
CREATE TEMP TABLE ev AS
SELECT c.cid, e.i,
       timestamptz '2026-03-01 00:00:00+00' + random() * interval '10 days' AS t,
       1 + (random() * 2)::int AS n,
       random() AS ord,
       random() < 0.5 AS side
  FROM generate_series(1, 2000) c(cid), LATERAL generate_series(1, 1 + (random() * 39 + c.cid * 0)::int) e(i);
CREATE TEMP TABLE ctr AS
SELECT cid, tforge.window_agg(t, n ORDER BY ord) AS c FROM ev GROUP BY cid;
CREATE AGGREGATE pg_temp.fold(timestamptz, bigint) (
  SFUNC = tforge.window_add, STYPE = tforge.window_counter, INITCOND = 'total=0');

-- Queries: per counter 10 times from its newest event up to 9 days later, and
-- windows of 1..60 minutes or 1..168 hours.
-- A window of one hour is counted in 60 minute buckets, the finer grain.
CREATE TEMP TABLE q AS
SELECT cid, k, at,
       CASE WHEN per_minute THEN make_interval(mins => nb) ELSE make_interval(hours => nb) END AS win,
       per_minute OR nb = 1 AS per_minute, CASE WHEN NOT per_minute AND nb = 1 THEN 60 ELSE nb END AS nb
  FROM (SELECT e.cid, k.k,
               max(e.t) + (CASE WHEN random() < 0.5 THEN random() * interval '2 hours'
                                ELSE random() * interval '9 days' END) AS at,
               random() < 0.5 AS per_minute, random() AS r
          FROM ev e, generate_series(1, 10) k(k) GROUP BY e.cid, k.k) x,
       LATERAL (SELECT CASE WHEN x.per_minute THEN 1 + floor(x.r * 60)::int
                            ELSE 1 + floor(x.r * 168)::int END AS nb) b;
-- Brute force: events whose bucket lies in the nb buckets ending with at's bucket.
CREATE TEMP TABLE expect AS
SELECT q.cid, q.k,
       coalesce(sum(e.n) FILTER (WHERE
         floor((extract(epoch FROM e.t) - 946684800) / CASE WHEN q.per_minute THEN 60 ELSE 3600 END)
           BETWEEN floor((extract(epoch FROM q.at) - 946684800) / CASE WHEN q.per_minute THEN 60 ELSE 3600 END) - q.nb + 1
               AND floor((extract(epoch FROM q.at) - 946684800) / CASE WHEN q.per_minute THEN 60 ELSE 3600 END)), 0) AS cnt
  FROM q JOIN ev e USING (cid) GROUP BY q.cid, q.k;

SELECT is((SELECT count(*) FROM q), 20000::bigint, '20,000 random window queries');
SELECT is((SELECT count(*) FROM q JOIN ctr USING (cid) JOIN expect USING (cid, k)
            WHERE tforge.window_count(ctr.c, q.win, q.at) <> expect.cnt),
          0::bigint, 'window_count equals the brute-force count for every window and time');
SELECT is((SELECT count(*) FROM q JOIN ctr USING (cid) JOIN expect USING (cid, k)
            WHERE tforge.window_velocity(ctr.c, q.win, q.at) <> expect.cnt / extract(epoch FROM q.win)::float8),
          0::bigint, 'window_velocity = count / window seconds');
SELECT cmp_ok((SELECT count(*) FROM expect WHERE cnt > 0), '>', 5000::bigint,
              'the queries are not trivially zero');
SELECT is((SELECT count(*) FROM ctr JOIN (SELECT cid, sum(n) AS total FROM ev GROUP BY cid) s USING (cid)
            WHERE tforge.window_total(ctr.c) <> s.total),
          0::bigint, 'the total counts every event, however old');
-- Insertion order never changes a counter (the clock went backwards often).
SELECT is((SELECT count(*)
             FROM (SELECT cid, tforge.window_agg(t, n ORDER BY t) AS up,
                          pg_temp.fold(t, n ORDER BY t DESC) AS down,
                          pg_temp.fold(t, n ORDER BY ord) AS rand
                     FROM ev GROUP BY cid) o JOIN ctr USING (cid)
            WHERE o.up::text <> ctr.c::text OR o.down::text <> ctr.c::text OR o.rand::text <> ctr.c::text),
          0::bigint, 'window_add and window_agg are order-independent');
SELECT is((SELECT count(*)
             FROM (SELECT cid, tforge.window_agg(t, n) FILTER (WHERE side) AS a,
                          tforge.window_agg(t, n) FILTER (WHERE NOT side) AS b
                     FROM ev GROUP BY cid) m JOIN ctr USING (cid)
            WHERE m.a IS NOT NULL AND m.b IS NOT NULL
              AND (tforge.window_merge(m.a, m.b)::text <> ctr.c::text
                   OR tforge.window_merge(m.b, m.a)::text <> ctr.c::text)),
          0::bigint, 'window_merge(a, b) equals the counter of the union');
-- Parallel aggregation goes through combine, serial and deserial. Workers
-- cannot read temporary tables, hence a plain one.
CREATE FUNCTION pg_temp.plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  result text := '';
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    result := result || line || E'\n';
  END LOOP;
  RETURN result;
END
$$;
CREATE TABLE public.window_par AS SELECT cid, t, n FROM ev;
ANALYZE public.window_par;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL enable_hashagg = off;
SELECT matches(pg_temp.plan_of('SELECT cid, tforge.window_agg(t, n) FROM public.window_par GROUP BY cid'),
               'Partial GroupAggregate', 'window_agg can run as a parallel partial aggregate');
SELECT is((SELECT count(*)
             FROM (SELECT cid, tforge.window_agg(t, n) AS c FROM public.window_par GROUP BY cid) p
             FULL JOIN ctr USING (cid)
            WHERE p.c IS NULL OR ctr.c IS NULL OR p.c::text <> ctr.c::text),
          0::bigint, 'a parallel window_agg equals the serial one');
SELECT matches(pg_temp.plan_of('SELECT tforge.window_agg(t) FROM public.window_par'),
               'Partial Aggregate', 'window_agg can run as a parallel plain aggregate');
SELECT is((SELECT tforge.window_agg(t, n)::text FROM public.window_par WHERE cid <= 100),
          (SELECT tforge.window_agg(t, n ORDER BY ord)::text FROM ev WHERE cid <= 100),
          'a parallel window_agg over many counters equals the serial one');
RESET enable_hashagg;
RESET max_parallel_workers_per_gather;

SELECT is((SELECT count(*) FROM ctr WHERE c::text::tforge.window_counter::text <> c::text
                                        OR tforge.window_counter_send(c::text::tforge.window_counter)
                                           <> tforge.window_counter_send(c)),
          0::bigint, 'text round trip is exact');
CREATE TEMP TABLE bin_in (cid int, c tforge.window_counter);
\copy (SELECT cid, c FROM ctr) TO '/tmp/tforge_signals_window.bin' WITH (FORMAT binary)
\copy bin_in FROM '/tmp/tforge_signals_window.bin' WITH (FORMAT binary)
\! rm -f /tmp/tforge_signals_window.bin
SELECT is((SELECT count(*) FROM ctr r FULL JOIN bin_in b USING (cid)
            WHERE b.c IS NULL OR r.c IS NULL OR b.c::text <> r.c::text),
          0::bigint, 'binary round trip is exact');

SELECT * FROM finish();
ROLLBACK;
