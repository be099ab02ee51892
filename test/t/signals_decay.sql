-- Properties of tforge.decay_score on seeded random event sequences, with
-- brute-force SQL as the oracle: S(T) = sum of w_i * exp(-lambda * (T - t_i)),
-- lambda = ln 2 / half-life.
BEGIN;
SELECT plan(14);
SET LOCAL timezone = 'UTC';

SELECT setseed(0.2026);
-- 10,000 sequences of 1 to 8 events each within 10 days, weights 0..10 (some
-- exactly 0), one of four half-lives per sequence, and a random processing
-- order (ord) so that most sequences see events older than their last update.
CREATE TEMP TABLE seqs AS
SELECT seq, (ARRAY['1 hour', '6 hours', '1 day', '7 days']::interval[])[1 + seq % 4] AS hl
  FROM generate_series(1, 10000) seq;
CREATE TEMP TABLE ev AS
SELECT s.seq, e.i,
       CASE WHEN random() < 0.05 THEN 0 ELSE random() * 10 END AS w,
       timestamptz '2026-01-01 00:00:00+00' + random() * interval '10 days' AS t,
       random() AS ord,
       random() < 0.5 AS side
  FROM seqs s, LATERAL generate_series(1, 1 + (random() * 7 + s.seq * 0)::int) e(i);
CREATE TEMP TABLE eval AS
SELECT seq, max(t) + random() * interval '2 days' AS at FROM ev GROUP BY seq;

-- Running scores: the aggregate in a random order, and decay_add folded by hand.
CREATE TEMP TABLE run AS
SELECT e.seq, tforge.decay_agg(e.w, e.t, s.hl ORDER BY e.ord) AS score
  FROM ev e JOIN seqs s USING (seq) GROUP BY e.seq;
CREATE AGGREGATE pg_temp.fold_1h(float8, timestamptz) (
  SFUNC = tforge.decay_add, STYPE = tforge.decay_score, INITCOND = '(0,-infinity,3600)');
CREATE TEMP TABLE brute AS
SELECT e.seq, sum(e.w * exp(-ln(2) / extract(epoch FROM s.hl) * extract(epoch FROM v.at - e.t))) AS expect
  FROM ev e JOIN seqs s USING (seq) JOIN eval v USING (seq) GROUP BY e.seq;

SELECT is((SELECT count(*) FROM run), 10000::bigint, '10,000 random sequences');
SELECT cmp_ok((SELECT count(*) FROM ev e JOIN (SELECT seq, t, ord FROM ev) l
                 ON l.seq = e.seq AND l.ord < e.ord AND l.t > e.t), '>', 10000::bigint,
              'many events arrive after a newer one (out of order)');

-- Agreement to 6 significant digits (relative error below 1e-6).
SELECT is((SELECT count(*) FROM run r JOIN brute b USING (seq) JOIN eval v USING (seq)
            WHERE NOT (abs(tforge.decay_value(r.score, v.at) - b.expect) <= 1e-6 * b.expect)),
          0::bigint, 'decay_agg in random order matches sum(w*exp(-lambda*(T-t))) to 6 digits');
SELECT is((SELECT count(*)
             FROM (SELECT e.seq, pg_temp.fold_1h(e.w, e.t ORDER BY e.ord) AS score
                     FROM ev e GROUP BY e.seq) f
             JOIN eval v USING (seq)
             JOIN (SELECT e.seq, sum(e.w * exp(-ln(2) / 3600 * extract(epoch FROM v.at - e.t))) AS expect
                     FROM ev e JOIN eval v USING (seq) GROUP BY e.seq) b USING (seq)
            WHERE NOT (abs(tforge.decay_value(f.score, v.at) - b.expect) <= 1e-6 * b.expect)),
          0::bigint, 'decay_add folded in random order matches the brute force to 6 digits');

-- Without events a score only decreases, and it is never negative.
SELECT is((SELECT count(*)
             FROM run r, LATERAL (SELECT k, tforge.decay_value(r.score,
                                    tforge.decay_last_update(r.score) + k * interval '37 minutes') AS v
                                    FROM generate_series(-2, 20) k) a
             JOIN LATERAL (SELECT tforge.decay_value(r.score,
                                    tforge.decay_last_update(r.score) + (a.k + 1) * interval '37 minutes') AS v) b ON true
            WHERE b.v > a.v OR a.v < 0 OR b.v < 0),
          0::bigint, 'scores never increase without events and are never negative');
SELECT is((SELECT count(*) FROM run WHERE tforge.decay_value(score, tforge.decay_last_update(score)) < 0),
          0::bigint, 'no negative score at the last update');

-- merge(a, b) is the score of the union of a random split of each sequence.
SELECT is((SELECT count(*)
             FROM (SELECT e.seq,
                          tforge.decay_agg(e.w, e.t, s.hl) FILTER (WHERE e.side) AS a,
                          tforge.decay_agg(e.w, e.t, s.hl) FILTER (WHERE NOT e.side) AS b
                     FROM ev e JOIN seqs s USING (seq) GROUP BY e.seq) m
             JOIN run r USING (seq) JOIN eval v USING (seq)
            WHERE m.a IS NOT NULL AND m.b IS NOT NULL
              AND NOT (abs(tforge.decay_value(tforge.decay_merge(m.a, m.b), v.at)
                           - tforge.decay_value(r.score, v.at)) <= 1e-12 * tforge.decay_value(r.score, v.at)
                       AND tforge.decay_last_update(tforge.decay_merge(m.a, m.b))
                           = tforge.decay_last_update(r.score))),
          0::bigint, 'decay_merge(a, b) equals the score of the union');

-- The aggregate does not depend on the order of its input.
SELECT is((SELECT count(*)
             FROM (SELECT e.seq, tforge.decay_agg(e.w, e.t, s.hl ORDER BY e.t) AS up,
                          tforge.decay_agg(e.w, e.t, s.hl ORDER BY e.t DESC) AS down
                     FROM ev e JOIN seqs s USING (seq) GROUP BY e.seq) o
             JOIN run r USING (seq) JOIN eval v USING (seq)
            WHERE abs(tforge.decay_value(o.up, v.at) - tforge.decay_value(r.score, v.at))
                    > 1e-12 * tforge.decay_value(r.score, v.at)
               OR abs(tforge.decay_value(o.down, v.at) - tforge.decay_value(r.score, v.at))
                    > 1e-12 * tforge.decay_value(r.score, v.at)),
          0::bigint, 'decay_agg is order-independent (ascending, descending, random)');

-- Parallel aggregation (partial states combined with decay_merge) gives the
-- same scores. Workers cannot read temporary tables, hence a plain one.
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
CREATE TABLE public.decay_par AS SELECT e.seq, e.w, e.t, s.hl FROM ev e JOIN seqs s USING (seq);
ANALYZE public.decay_par;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL enable_hashagg = off;
SELECT matches(pg_temp.plan_of('SELECT seq, tforge.decay_agg(w, t, hl) FROM public.decay_par GROUP BY seq'),
               'Partial GroupAggregate', 'decay_agg can run as a parallel partial aggregate');
SELECT is((SELECT count(*)
             FROM (SELECT seq, tforge.decay_agg(w, t, hl) AS score FROM public.decay_par GROUP BY seq) p
             FULL JOIN run r USING (seq) JOIN eval v USING (seq)
            WHERE p.score IS NULL OR r.score IS NULL
               OR NOT abs(tforge.decay_value(p.score, v.at) - tforge.decay_value(r.score, v.at))
                      <= 1e-12 * tforge.decay_value(r.score, v.at)),
          0::bigint, 'parallel decay_agg equals the serial one');
RESET enable_hashagg;
RESET max_parallel_workers_per_gather;

-- Ordering by the rank key is ordering by the current score, at any time
-- after both updates: compare random pairs of same-half-life scores.
SELECT is((SELECT count(*)
             FROM run a JOIN run b ON b.seq = a.seq + 4 AND b.seq <= 10000
             JOIN eval v ON v.seq = b.seq,
                  LATERAL (SELECT greatest(v.at, (SELECT at FROM eval WHERE seq = a.seq)) AS at) t,
                  LATERAL (SELECT tforge.decay_value(a.score, t.at) AS va,
                                  tforge.decay_value(b.score, t.at) AS vb) x
            WHERE abs(x.va - x.vb) > 1e-9 * greatest(x.va, x.vb)
              AND sign(tforge.decay_rank_key(a.score) - tforge.decay_rank_key(b.score)) <> sign(x.va - x.vb)),
          0::bigint, 'rank key order equals current score order');

-- Text round trip is exact (same binary image).
SELECT is((SELECT count(*) FROM run
            WHERE tforge.decay_score_send(score::text::tforge.decay_score) <> tforge.decay_score_send(score)),
          0::bigint, 'text round trip is exact');

-- Binary round trip through COPY BINARY (client side).
CREATE TEMP TABLE bin_in (seq int, score tforge.decay_score);
\copy (SELECT seq, score FROM run) TO '/tmp/tforge_signals_decay.bin' WITH (FORMAT binary)
\copy bin_in FROM '/tmp/tforge_signals_decay.bin' WITH (FORMAT binary)
\! rm -f /tmp/tforge_signals_decay.bin
SELECT is((SELECT count(*) FROM run r FULL JOIN bin_in b USING (seq)
            WHERE b.score IS NULL OR r.score IS NULL
               OR tforge.decay_score_send(b.score) <> tforge.decay_score_send(r.score)),
          0::bigint, 'binary round trip is exact');

-- Events years apart neither overflow nor lose the newer event.
SELECT is(tforge.decay_value(tforge.decay_agg(w, t, '1 second'), '2126-01-01 00:00:01+00'), 0.5::float8,
          'events a century apart: the old one vanishes, the new one halves after 1 s')
  FROM (VALUES (1e300::float8, '1926-01-01 00:00:00+00'::timestamptz), (1, '2126-01-01 00:00:00+00')) v(w, t);

SELECT * FROM finish();
ROLLBACK;
