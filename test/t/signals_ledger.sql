-- The signal ledger against brute force: per-event upserts, batches,
-- windowed counts, trending, failed calls, and two concurrent recorders.
BEGIN;
SELECT plan(13);
SET LOCAL timezone = 'UTC';

SELECT lives_ok($$SELECT tforge.define_signal_type('clicks', '30 minutes', '{15 minutes,1 hour,24 hours,7 days}')$$,
                'define a signal type');
SELECT tforge.define_signal_type('clicks_batch', '30 minutes');

SELECT setseed(0.77);
-- 4,000 events of 300 entities over 3 days, weights 0..5, in random order.
CREATE TEMP TABLE ev AS
SELECT (1 + floor(random() * 300))::bigint AS entity_id,
       random() * 5 AS w,
       timestamptz '2026-05-01 00:00:00+00' + random() * interval '3 days' AS t,
       random() AS ord
  FROM generate_series(1, 4000);
CREATE TEMP TABLE ts AS
SELECT max(t) + interval '7 minutes' AS t1, max(t) + interval '5 hours' AS t2 FROM ev;

SELECT is((SELECT count(tforge.record_signal(entity_id, 'clicks', w, t))
             FROM (SELECT * FROM ev ORDER BY ord) o), 4000::bigint, 'record_signal, one event at a time');
-- The same events in five batches of arrays.
SELECT is((SELECT sum(tforge.record_signals(ids, 'clicks_batch', ws, tss))::bigint
             FROM (SELECT floor(ord * 5) AS b, array_agg(entity_id) ids, array_agg(w) ws, array_agg(t) tss
                     FROM ev GROUP BY 1) b),
          (SELECT sum(n)::bigint FROM (SELECT floor(ord * 5), count(DISTINCT entity_id) n FROM ev GROUP BY 1) x),
          'record_signals upserts each entity once per batch');

CREATE TEMP TABLE expect AS
SELECT e.entity_id,
       sum(e.w * exp(-ln(2) / 1800 * extract(epoch FROM ts.t1 - e.t))) AS score1,
       sum(e.w * exp(-ln(2) / 1800 * extract(epoch FROM ts.t2 - e.t))) AS score2
  FROM ev e, ts GROUP BY e.entity_id;

SELECT is((SELECT count(*) FROM tforge.signals WHERE signal_type = 'clicks'),
          (SELECT count(DISTINCT entity_id) FROM ev), 'one row per entity');
SELECT is((SELECT count(*) FROM expect x, ts
            WHERE NOT (abs(tforge.signal_score(x.entity_id, 'clicks', ts.t1) - x.score1) <= 1e-6 * x.score1)
               OR NOT (abs(tforge.signal_score(x.entity_id, 'clicks_batch', ts.t1) - x.score1) <= 1e-6 * x.score1)),
          0::bigint, 'signal_score matches brute force to 6 digits (single and batch)');
-- Counts over clock-aligned buckets ending with the bucket of t1.
SELECT is((SELECT count(*)
             FROM (SELECT x.entity_id, w.win, w.secs,
                          (SELECT count(*) FROM ev e
                            WHERE e.entity_id = x.entity_id
                              AND floor((extract(epoch FROM e.t) - 946684800) / w.bucket)
                                  > floor((extract(epoch FROM ts.t1) - 946684800) / w.bucket) - w.secs / w.bucket) AS cnt
                     FROM expect x, ts,
                          (VALUES ('15 minutes'::interval, 900, 60), ('1 hour', 3600, 60),
                                  ('24 hours', 86400, 3600), ('7 days', 604800, 3600)) w(win, secs, bucket)) b, ts
            WHERE tforge.signal_count(b.entity_id, 'clicks', b.win, ts.t1) <> b.cnt
               OR tforge.signal_count(b.entity_id, 'clicks_batch', b.win, ts.t1) <> b.cnt
               OR tforge.signal_velocity(b.entity_id, 'clicks', b.win, ts.t1) <> b.cnt::float8 / b.secs),
          0::bigint, 'signal_count and signal_velocity match brute-force counts for 15m, 1h, 24h, 7d');

-- Trending equals ordering by the recomputed score, now and 5 hours later.
SELECT is((SELECT array_agg(entity_id) FROM tforge.trending('clicks', 10, (SELECT t1 FROM ts))),
          (SELECT array_agg(entity_id) FROM (SELECT entity_id FROM expect ORDER BY score1 DESC LIMIT 10) x),
          'trending top 10 equals the brute-force top 10');
SELECT is((SELECT array_agg(entity_id) FROM tforge.trending('clicks', 25, (SELECT t2 FROM ts))),
          (SELECT array_agg(entity_id) FROM (SELECT entity_id FROM expect ORDER BY score2 DESC LIMIT 25) x),
          'later, trending top 25 still equals the brute-force top 25');
SELECT is((SELECT count(*) FROM tforge.trending('clicks', 10, (SELECT t1 FROM ts)) t JOIN expect x USING (entity_id)
            WHERE NOT abs(t.score - x.score1) <= 1e-6 * x.score1), 0::bigint, 'trending reports current scores');

-- A failed call changes nothing.
CREATE TEMP TABLE before AS SELECT entity_id, score::text AS s, counts::text AS c FROM tforge.signals;
SELECT throws_ok($$SELECT tforge.record_signal(1, 'clicks', 'NaN')$$, '22023', NULL, 'NaN weight refused');
SELECT throws_ok($$SELECT tforge.record_signals('{1,2,3}', 'clicks', '{1,1,-1}')$$, '22023', NULL,
                 'negative weight in a batch refused');
SELECT is((SELECT count(*) FROM tforge.signals s FULL JOIN before b
             ON b.entity_id = s.entity_id AND b.s = s.score::text AND b.c = s.counts::text
            WHERE b.entity_id IS NULL OR s.entity_id IS NULL), 0::bigint, 'nothing changed');

-- Two sessions record the same entity at once: no update is lost. The
-- signal type is committed (other sessions must see it) and removed after.
SELECT dblink_connect('a', tap_connstr());
SELECT dblink_connect('b', tap_connstr());
SELECT * FROM dblink('a', $$SELECT (tforge.define_signal_type('tap_concurrent', '1 hour')).name$$) AS r(name text);
SELECT dblink_send_query(c, format($$SELECT count(tforge.record_signal(42, 'tap_concurrent', 1,
         '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 second')) FROM generate_series(%s, %s) i$$, lo, lo + 499))
  FROM (VALUES ('a', 0), ('b', 500)) v(c, lo);
SELECT * FROM dblink_get_result('a') AS r(n bigint);
SELECT * FROM dblink_get_result('b') AS r(n bigint);
SELECT * FROM dblink_get_result('a') AS r(n bigint);  -- the end of each result stream
SELECT * FROM dblink_get_result('b') AS r(n bigint);
-- 1000 events one second apart, weight 1: sum over k = 0..999 of 2^(-k/3600).
SELECT is((SELECT x.total || ' ' || (abs(x.score - b.score) <= 1e-9 * b.score)
             FROM dblink('a', $$SELECT tforge.window_total(counts),
                                       tforge.decay_value(score, '2026-01-01 00:16:39+00')
                                  FROM tforge.signals WHERE signal_type = 'tap_concurrent'$$) AS x(total bigint, score float8),
                  (SELECT sum(2 ^ (-k / 3600.0)) AS score FROM generate_series(0, 999) k) b),
          '1000 true', 'concurrent record_signal calls lose no event');
SELECT dblink_exec('a', $$DELETE FROM tforge.signal_types WHERE name = 'tap_concurrent'$$);
SELECT dblink_disconnect('a');
SELECT dblink_disconnect('b');

SELECT * FROM finish();
ROLLBACK;
