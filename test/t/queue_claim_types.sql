-- claim_tasks(..., task_types): exactly the least (laxity_key, priority DESC,
-- submitted_at, task_id) among pending, available, fitting tasks of the
-- listed types not locked by another session, one at a time and in
-- batches; with tasks_type_claim_idx (which the operator creates, as here)
-- its cost does not depend on other types' backlog, and without it the
-- claims are the same.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(20);

-- The queue is committed by a second session, which then keeps a random
-- fifth of it locked FOR UPDATE while this one claims.
SELECT dblink_connect('other', public.tap_connstr()) \g /dev/null
SELECT dblink_exec('other', $$CREATE INDEX tasks_type_claim_idx ON tforge.tasks
  (task_type, laxity_key, priority DESC, submitted_at, task_id) WHERE status = 'pending'$$) \g /dev/null
SELECT dblink_exec('other', $o$
  DO $d$ BEGIN
    PERFORM tforge.define_task_type(t, 5) FROM unnest(ARRAY['ta', 'tb', 'tc', 'td']) t;
    PERFORM setseed(0.16);
    INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, priority,
                              submitted_at, available_at, resources, max_attempts)
    SELECT (ARRAY['ta', 'tb', 'tc', 'td'])[1 + floor(random() * 4)::int], '2001-01-01', 1,
           '2000-01-01'::timestamptz + floor(random() * 40)::int * interval '1 s',  -- ties
           floor(random() * 3)::int,
           '1999-01-01'::timestamptz + floor(random() * 3)::int * interval '1 s',   -- ties
           CASE WHEN random() < 0.15 THEN 'infinity' ELSE '-infinity' END::timestamptz, -- not yet available
           CASE WHEN random() < 0.3 THEN ROW(1 + floor(random() * 4), NULL, NULL, NULL)::tforge.resources END,
           3
      FROM generate_series(1, 600);
  END $d$$o$) \g /dev/null
SELECT dblink_exec('other', 'BEGIN') \g /dev/null
CREATE TEMP TABLE locked AS
  SELECT task_id FROM dblink('other', $$SELECT task_id FROM tforge.tasks WHERE task_id % 5 = 2 FOR UPDATE$$)
    AS l(task_id bigint);
SELECT ok((SELECT count(*) FROM locked) > 100, 'the other session holds locks on a fifth of the queue');

-- What a claim must return, by brute force: the claim order written out,
-- capacity fit written out field by field (only cpu is set here).
CREATE FUNCTION pg_temp.expected(types text[], cap tforge.resources, n int) RETURNS bigint[]
  LANGUAGE sql AS $$
  SELECT coalesce(array_agg(task_id ORDER BY task_id), '{}') FROM (
    SELECT t.task_id FROM tforge.tasks t
     WHERE t.status = 'pending' AND t.available_at <= now()
       AND t.task_type IN (SELECT unnest(types))
       AND (cap IS NULL OR t.resources IS NULL OR (t.resources).cpu IS NULL OR (cap).cpu IS NULL
            OR (t.resources).cpu <= (cap).cpu)
       AND t.task_id NOT IN (SELECT task_id FROM locked)
     ORDER BY t.laxity_key, t.priority DESC, t.submitted_at, t.task_id
     LIMIT n) e $$;
-- The same without regard to locks: a claim that waited or ignored them.
CREATE FUNCTION pg_temp.unlocked(types text[], cap tforge.resources, n int) RETURNS bigint[]
  LANGUAGE sql AS $$
  SELECT coalesce(array_agg(task_id ORDER BY task_id), '{}') FROM (
    SELECT t.task_id FROM tforge.tasks t
     WHERE t.status = 'pending' AND t.available_at <= now() AND t.task_type IN (SELECT unnest(types))
       AND (cap IS NULL OR t.resources IS NULL OR (t.resources).cpu IS NULL OR (t.resources).cpu <= (cap).cpu)
     ORDER BY t.laxity_key, t.priority DESC, t.submitted_at, t.task_id
     LIMIT n) e $$;

-- Random rounds: 1 to 3 types (with repeats and NULLs now and then), a
-- capacity or none, one task or a batch of up to 6.
CREATE TEMP TABLE rounds (r int, types text[], cap tforge.resources, n int, want bigint[], naive bigint[], got bigint[]);
DO $$
DECLARE
  types text[];
  cap tforge.resources;
  n int;
  want bigint[];
BEGIN
  PERFORM setseed(0.61);
  FOR r IN 1..150 LOOP
    types := ARRAY(SELECT (ARRAY['ta', 'tb', 'tc', 'td', 'ta', NULL])[1 + floor(random() * 6)::int]
                     FROM generate_series(1, 1 + floor(random() * 3)::int));
    cap := CASE WHEN random() < 0.5 THEN ROW(2, NULL, NULL, NULL)::tforge.resources END;
    n := CASE WHEN random() < 0.6 THEN 1 ELSE 2 + floor(random() * 5)::int END;
    INSERT INTO rounds VALUES (r, types, cap, n, pg_temp.expected(types, cap, n), pg_temp.unlocked(types, cap, n),
      (SELECT coalesce(array_agg(task_id ORDER BY task_id), '{}')
         FROM tforge.claim_tasks('w', n, cap, task_types => types)));
  END LOOP;
END $$;
SELECT is((SELECT count(*) FROM rounds WHERE got IS DISTINCT FROM want), 0::bigint,
          'every random typed claim takes exactly the least unlocked pending, available, fitting tasks of its types');
SELECT ok((SELECT sum(cardinality(got)) FROM rounds) > 250, 'the random claims took many tasks');
SELECT ok((SELECT count(*) FROM rounds WHERE want IS DISTINCT FROM naive) > 10,
          'in many rounds tasks locked by the other session were passed over');
SELECT ok((SELECT count(*) FROM rounds r, tforge.tasks t
            WHERE t.task_id = ANY (r.got) AND cardinality(array_remove(r.types, NULL)) > 1
            GROUP BY r.r HAVING count(DISTINCT t.task_type) > 1 LIMIT 1) IS NOT NULL,
          'batches of several types take tasks of more than one type');
SELECT is((SELECT count(*) FROM locked l JOIN tforge.tasks t USING (task_id) WHERE t.status <> 'pending'), 0::bigint,
          'no task the other session holds was claimed');
SELECT is((SELECT count(*) FROM tforge.tasks WHERE worker_id = 'w' AND status = 'running'),
          (SELECT sum(cardinality(got)) FROM rounds), 'every claimed task is running for the claimer');
SELECT is((SELECT count(*) FROM rounds WHERE array_remove(types, NULL) = '{}' AND got <> '{}'), 0::bigint,
          'a list of NULLs claims nothing');

-- This session holds no lock on a task it did not claim: the other session
-- can take every pending task it does not hold itself.
SELECT dblink_exec('other', 'ROLLBACK') \g /dev/null
SELECT is((SELECT count(*) FROM dblink('other', format($$
             SELECT task_id FROM tforge.tasks WHERE status = 'pending' AND task_id <> ALL (%L) FOR UPDATE NOWAIT$$,
             (SELECT array_agg(task_id) FROM tforge.tasks WHERE worker_id = 'w'))) AS l(task_id bigint)),
          (SELECT count(*) FROM tforge.tasks WHERE status = 'pending'),
          'the typed claims left no row lock on tasks they did not claim');

-- Order across types, one at a time: interleaved laxities of two types.
CREATE TEMP TABLE seq (k serial, task_id bigint);
DO $$ BEGIN
  FOR i IN 1..80 LOOP
    INSERT INTO seq (task_id) SELECT task_id FROM tforge.claim_tasks('s', 1, task_types => ARRAY['tc', 'tb']);
  END LOOP;
END $$;
SELECT results_eq($$ SELECT task_id FROM seq ORDER BY k $$,
                  $$ SELECT task_id FROM tforge.tasks WHERE worker_id = 's'
                      ORDER BY laxity_key, priority DESC, submitted_at, task_id $$,
                  'single claims over two types come in claim order across the types');
SELECT ok((SELECT count(DISTINCT task_type) FROM tforge.tasks WHERE worker_id = 's') = 2
          AND (SELECT count(*) FROM seq) = 80, '80 claims over both types');

-- Cost: 20,000 pending tasks of another type ahead of one task of the
-- claimed type. The claim reads a handful of index entries, not 20,000
-- (this transaction's statistics: index entries returned by its scans).
CREATE FUNCTION pg_temp.entries_read() RETURNS numeric LANGUAGE sql AS $$
  SELECT sum(pg_stat_get_xact_tuples_returned(indexrelid)) FROM pg_index
   WHERE indrelid = 'tforge.tasks'::regclass $$;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
SELECT 'ta', '1990-01-01', 1, '1980-01-01'::timestamptz + i * interval '1 s', 3 FROM generate_series(1, 20000) i;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
VALUES ('td', '1995-01-01', 1, '1994-01-01', 3);
CREATE TEMP TABLE reads AS SELECT pg_temp.entries_read() AS n;
SELECT is((SELECT laxity_key FROM tforge.claim_tasks('cost', 1, task_types => ARRAY['td'])), '1994-01-01'::timestamptz,
          'the claim of the other type takes its head behind 20,000 tasks');
SELECT cmp_ok(pg_temp.entries_read() - (SELECT n FROM reads), '<', 20::numeric,
              'and reads fewer than 20 index entries for it');

-- With gpu_device: of the listed types only, each claimed task's memory
-- allocated, and a task that does not fit the device's free memory passed
-- over. Device of 10240 bytes; in laxity order: 5 (gpu-inference, 5000:
-- fits), 1 (gpu-training, 4000: fits in what is left), 2 (cpu-heavy: not
-- listed), 3 (gpu-inference, 3000: no longer fits), 4 (gpu-training, 9000).
UPDATE tforge.tasks SET status = 'dead' WHERE status = 'pending';
SELECT tforge.gpu_add_device('q0', 10240) \g /dev/null
CREATE TEMP TABLE g AS
SELECT v.i, tforge.submit_task(v.t, resources => ROW(NULL, NULL, 1, v.m)::tforge.resources, sla_multiplier => v.s) AS task_id
  FROM (VALUES (1, 'gpu-training', 4000::bigint, 1.05), (2, 'cpu-heavy', 1000, 1.2), (3, 'gpu-inference', 3000, 2.5),
               (4, 'gpu-training', 9000, 1.5), (5, 'gpu-inference', 5000, 1.1)) v(i, t, m, s);
-- laxity = (s - 1) * tau: 1: 0.05*60=3, 2: 0.2*15=3 (priority, arrival: 1 first), 3: 1.5*10=15, 4: 0.5*60=30, 5: 0.1*10=1
SELECT results_eq($$ SELECT task_id FROM g ORDER BY array_position(ARRAY[5, 1, 2, 3, 4], i) $$,
                  $$ SELECT task_id FROM tforge.tasks WHERE task_id IN (SELECT task_id FROM g)
                      ORDER BY laxity_key, priority DESC, submitted_at, task_id $$ || ' OFFSET 0',
                  'the GPU tasks are in the laxity order worked by hand');
SELECT set_eq($$ SELECT task_id FROM tforge.claim_tasks('gw', 10, gpu_device => 'q0',
                                                        task_types => ARRAY['gpu-training', 'gpu-inference']) $$,
              $$ SELECT task_id FROM g WHERE i IN (5, 1) $$,
              'a typed GPU claim takes the listed types'' tasks that fit the device, in laxity order');
SELECT is((SELECT string_agg(tensor_id, ' ' ORDER BY offset_bytes) FROM tforge.gpu_blocks WHERE status <> 'free'),
          (SELECT string_agg('task:' || task_id, ' ' ORDER BY i DESC) FROM g WHERE i IN (5, 1)),
          'their memory is allocated on the device, least laxity first');
SELECT is((SELECT string_agg(i::text, ',' ORDER BY i) FROM g JOIN tforge.tasks USING (task_id) WHERE status = 'pending'),
          '2,3,4', 'the unlisted type and the tasks that no longer fit stay pending');

-- Without the index: the same claims (the types as a filter on the
-- untyped claim's scan). The other session's locks are released first.
SELECT dblink_exec('other', 'ROLLBACK') \g /dev/null
TRUNCATE locked;
DROP INDEX tforge.tasks_type_claim_idx;
CREATE TEMP TABLE fb AS SELECT pg_temp.expected(ARRAY['cpu-heavy', 'gpu-inference'], NULL, 1) AS one,
                               pg_temp.expected(ARRAY['gpu-training', 'cpu-heavy', 'gpu-inference'], NULL, 3) AS three;
SELECT is((SELECT array_agg(task_id) FROM tforge.claim_tasks('fb', 1, task_types => ARRAY['cpu-heavy', 'gpu-inference'])),
          (SELECT one FROM fb), 'without the index: the least task of the listed types');
SELECT is((SELECT array_agg(task_id ORDER BY task_id) FROM tforge.claim_tasks('fb', 3, task_types => ARRAY['gpu-training', 'cpu-heavy', 'gpu-inference'])),
          (SELECT array_agg(x ORDER BY x) FROM unnest((SELECT three FROM fb)) x(x) WHERE x <> ALL ((SELECT one FROM fb)::bigint[])),
          'without the index: a batch takes the rest of them');
SELECT ok(cardinality((SELECT three FROM fb)) = 3, 'three tasks were pending');

SELECT dblink_disconnect('other') \g /dev/null
SELECT * FROM finish();
ROLLBACK;
