-- checkpoint_gc against a brute-force recomputation of the GC rule of issue
-- 14, written here independently in plain SQL (recursive CTE for the
-- ancestors), on random runs mixing full and incremental checkpoints in
-- every state: each rule alone, then all combined, then GC of every run.
BEGIN;
SELECT plan(22);
SET LOCAL timezone = 'UTC';

-- The seed is printed, so a failure can be replayed.
SELECT s AS seed, pg_catalog.setseed(s) FROM (SELECT (extract(microseconds FROM clock_timestamp()) % 1000) / 1000.0 AS s) x \gset
SELECT diag('setseed ' || :'seed');

-- A random run of n checkpoints: steps rise by 0, 10 or 20 (equal steps
-- happen), created_at is random over ten days rounded to the hour (equal
-- times happen), 30% full, the others incremental on a random earlier
-- checkpoint of the run, states mostly complete, losses rounded to 0.1
-- (ties) and missing for one in five.
CREATE FUNCTION pg_temp.make_run(run text, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  step bigint := 0;
  typ text;
  parent text;
  ids text[] := '{}';
  id text;
  r float8;
BEGIN
  FOR i IN 1 .. n LOOP
    step := step + 10 * floor(random() * 3)::int;
    typ := CASE WHEN i = 1 OR random() < 0.3 THEN 'full' ELSE 'incremental' END;
    parent := CASE WHEN typ = 'incremental' THEN ids[1 + floor(random() * cardinality(ids))::int] END;
    r := random();
    INSERT INTO tforge.checkpoints (training_run_id, epoch, step, checkpoint_type, state, size_bytes,
                                    created_at, parent_id, metrics, storage_path)
    VALUES (run, step / 100, step, typ::tforge.checkpoint_type,
            (CASE WHEN r < 0.65 THEN 'complete' WHEN r < 0.8 THEN 'creating'
                  WHEN r < 0.9 THEN 'corrupted' ELSE 'deleted' END)::tforge.checkpoint_state,
            floor(random() * 1000)::bigint,
            date_trunc('hour', now() - random() * interval '10 days'), parent,
            CASE WHEN random() < 0.8 THEN jsonb_build_object('loss', round(random()::numeric, 1), 'acc', random()) ELSE '{}' END,
            '/ckpt/' || run || '/' || i)
    RETURNING checkpoint_id INTO id;
    ids := ids || id;
  END LOOP;
END
$$;

-- The rule, brute force. Protected: the latest complete (highest step, then
-- latest created_at, then highest id), the keep_best_n complete ones with the
-- best metric (ties: higher step, later created_at), any whose step is a
-- multiple of keep_every_n_steps, any creating. Eligible: non-deleted,
-- unprotected, and older than max_age or not among the
-- max_checkpoints_per_run newest. Removed: eligible and not an ancestor of
-- (or equal to) a non-deleted checkpoint that is not eligible.
CREATE FUNCTION pg_temp.brute_gc(run text, at timestamptz) RETURNS SETOF text LANGUAGE sql AS $$
  WITH RECURSIVE
  p AS (SELECT * FROM tforge.checkpoint_policies
         WHERE training_run_id = run
            OR (training_run_id IS NULL AND NOT EXISTS (SELECT 1 FROM tforge.checkpoint_policies WHERE training_run_id = run))),
  live AS (SELECT * FROM tforge.checkpoints WHERE training_run_id = run AND state <> 'deleted'),
  latest AS (SELECT checkpoint_id FROM live WHERE state = 'complete'
              ORDER BY step DESC, created_at DESC, checkpoint_id DESC LIMIT 1),
  best AS (SELECT checkpoint_id FROM live, p
            WHERE live.state = 'complete' AND p.metric_key IS NOT NULL AND live.metrics ? p.metric_key
            ORDER BY (CASE WHEN p.metric_ascending THEN 1 ELSE -1 END) * (live.metrics ->> p.metric_key)::numeric,
                     step DESC, created_at DESC, checkpoint_id DESC
            LIMIT (SELECT keep_best_n FROM p)),
  protected AS (SELECT checkpoint_id FROM latest
                UNION SELECT checkpoint_id FROM best
                UNION SELECT checkpoint_id FROM live, p WHERE live.state = 'creating' OR live.step % p.keep_every_n_steps = 0),
  newest AS (SELECT checkpoint_id FROM live ORDER BY step DESC, created_at DESC, checkpoint_id DESC
              LIMIT (SELECT max_checkpoints_per_run FROM p)),
  eligible AS (SELECT live.checkpoint_id FROM live, p
                WHERE live.checkpoint_id NOT IN (SELECT checkpoint_id FROM protected)
                  AND ((at - live.created_at > p.max_age)
                       OR (p.max_checkpoints_per_run IS NOT NULL
                           AND live.checkpoint_id NOT IN (SELECT checkpoint_id FROM newest)))),
  needed(id) AS (SELECT checkpoint_id FROM live WHERE checkpoint_id NOT IN (SELECT checkpoint_id FROM eligible)
                 UNION
                 SELECT c.parent_id FROM needed JOIN tforge.checkpoints c ON c.checkpoint_id = needed.id
                  WHERE c.parent_id IS NOT NULL)
  SELECT checkpoint_id FROM eligible WHERE checkpoint_id NOT IN (SELECT id FROM needed WHERE id IS NOT NULL)
$$;

-- Runs <prefix>1 .. <prefix>k, their policy, the expected removals, GC, and the comparison.
CREATE TEMP TABLE expected (run text, checkpoint_id text);
CREATE TEMP TABLE got (run text, checkpoint_id text, ord bigint);
CREATE TEMP TABLE before (run text, checkpoint_id text, state tforge.checkpoint_state);
CREATE FUNCTION pg_temp.scenario(prefix text, k int, n int, policy text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. k LOOP
    PERFORM pg_temp.make_run(prefix || i, n);
    EXECUTE format('SELECT tforge.set_checkpoint_policy(%L, %s)', prefix || i, policy);
  END LOOP;
  INSERT INTO before SELECT training_run_id, checkpoint_id, state FROM tforge.checkpoints WHERE training_run_id LIKE prefix || '%';
  INSERT INTO expected SELECT prefix || i, g FROM generate_series(1, k) i, pg_temp.brute_gc(prefix || i, now()) g;
  INSERT INTO got SELECT prefix || i, g, o FROM generate_series(1, k) i, tforge.checkpoint_gc(prefix || i) WITH ORDINALITY r(g, o);
END
$$;
CREATE FUNCTION pg_temp.check(prefix text, what text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
  RETURN NEXT set_eq(format('SELECT run, checkpoint_id FROM got WHERE run LIKE %L', prefix || '%'),
                     format('SELECT run, checkpoint_id FROM expected WHERE run LIKE %L', prefix || '%'),
                     what || ': checkpoint_gc returns exactly the brute-force removals');
  -- The returned ids are now deleted, nothing else changed.
  RETURN NEXT is((SELECT count(*) FROM before b JOIN tforge.checkpoints c USING (checkpoint_id)
                   WHERE b.run LIKE prefix || '%'
                     AND c.state IS DISTINCT FROM
                         CASE WHEN b.checkpoint_id IN (SELECT checkpoint_id FROM got) THEN 'deleted' ELSE b.state END),
                 0::bigint, what || ': exactly the returned checkpoints were marked deleted');
END
$$;

-- Every run gets the same number of checkpoints; removals must not be trivial.
-- 1. max_checkpoints_per_run alone (no best, no age, no step rule).
SELECT pg_temp.scenario('count', 8, 60, 'max_checkpoints_per_run => 5 + floor(random() * 10)::int, max_age => NULL, keep_best_n => 0, keep_every_n_steps => NULL');
SELECT * FROM pg_temp.check('count', 'max count alone');
-- 2. max_age alone.
SELECT pg_temp.scenario('age', 8, 60, format('max_checkpoints_per_run => NULL, max_age => %L, keep_best_n => 0, keep_every_n_steps => NULL',
                                             (1 + floor(random() * 8)) * interval '1 day'));
SELECT * FROM pg_temp.check('age', 'max age alone');
-- 3. keep_best_n alone (everything else unprotected is eligible), both metric directions.
SELECT pg_temp.scenario('best', 8, 60, format('max_checkpoints_per_run => 0, max_age => NULL, keep_best_n => %s, metric_key => %L, metric_ascending => %L, keep_every_n_steps => NULL',
                                              1 + floor(random() * 6), CASE WHEN random() < 0.5 THEN 'loss' ELSE 'acc' END, random() < 0.5));
SELECT * FROM pg_temp.check('best', 'keep best alone');
-- 4. keep_every_n_steps alone.
SELECT pg_temp.scenario('every', 8, 60, format('max_checkpoints_per_run => 0, max_age => NULL, keep_best_n => 0, keep_every_n_steps => %s',
                                               (1 + floor(random() * 5)) * 10));
SELECT * FROM pg_temp.check('every', 'keep every n steps alone');
-- 5. No protection but the latest complete, the creating ones and the chains.
SELECT pg_temp.scenario('bare', 8, 60, 'max_checkpoints_per_run => 0, max_age => NULL, keep_best_n => 0, keep_every_n_steps => NULL');
SELECT * FROM pg_temp.check('bare', 'latest, creating and ancestors only');
-- 6. Everything combined, random values.
SELECT pg_temp.scenario('all', 10, 80, format('max_checkpoints_per_run => %s, max_age => %L, keep_best_n => %s, metric_key => %L, metric_ascending => %L, keep_every_n_steps => %s',
                                              floor(random() * 20), (1 + floor(random() * 8)) * interval '1 day', floor(random() * 5),
                                              CASE WHEN random() < 0.5 THEN 'loss' ELSE 'acc' END, random() < 0.5, (1 + floor(random() * 5)) * 10));
SELECT * FROM pg_temp.check('all', 'all rules combined');

SELECT cmp_ok((SELECT count(*) FROM got), '>', (SELECT count(*) FROM before) / 10,
              'the scenarios removed a good share of the checkpoints (the comparisons are not vacuous)');
SELECT cmp_ok((SELECT count(*) FROM before b WHERE b.state <> 'deleted' AND b.checkpoint_id NOT IN (SELECT checkpoint_id FROM got)),
              '>', (SELECT count(*) FROM before) / 10, 'and kept a good share');

-- Nothing a kept checkpoint needs was removed: no non-deleted checkpoint of
-- any scenario has a link, at any depth, that GC deleted.
SELECT is((WITH RECURSIVE up(start, id) AS (
             SELECT c.checkpoint_id, c.parent_id FROM tforge.checkpoints c
              WHERE c.state <> 'deleted' AND c.parent_id IS NOT NULL
                AND c.training_run_id IN (SELECT run FROM before)
             UNION
             SELECT up.start, c.parent_id FROM up JOIN tforge.checkpoints c ON c.checkpoint_id = up.id
              WHERE c.parent_id IS NOT NULL)
           SELECT count(*) FROM up WHERE up.id IN (SELECT checkpoint_id FROM got)),
          0::bigint, 'no kept checkpoint has a link that GC deleted');

-- A second pass of GC under the same policies finds nothing more to do
-- except what the brute force also finds.
SELECT is((SELECT count(*) FROM (SELECT DISTINCT run FROM before) r, tforge.checkpoint_gc(r.run)),
          (SELECT count(*) FROM (SELECT DISTINCT run FROM before) r, pg_temp.brute_gc(r.run, now())),
          'GC is idempotent: a second pass removes what brute force finds (nothing)');

-- 7. checkpoint_gc() with no argument collects every run, each under its own policy.
SELECT pg_temp.make_run('multi' || i, 40) FROM generate_series(1, 4) i;
DO $$ BEGIN
  PERFORM tforge.set_checkpoint_policy('multi1', max_checkpoints_per_run => 3, keep_best_n => 1);
  PERFORM tforge.set_checkpoint_policy('multi2', max_age => '3 days', max_checkpoints_per_run => NULL);
END $$;
CREATE TEMP TABLE multi_expected AS
  SELECT g FROM generate_series(1, 4) i, pg_temp.brute_gc('multi' || i, now()) g;
CREATE TEMP TABLE all_expected AS
  SELECT g FROM (SELECT DISTINCT training_run_id r FROM tforge.checkpoints) r, pg_temp.brute_gc(r.r, now()) g;
SELECT set_eq('SELECT * FROM tforge.checkpoint_gc()', 'SELECT * FROM all_expected',
              'checkpoint_gc() removes, over every run, what brute force finds run by run (runs without a policy use the default)');
SELECT cmp_ok((SELECT count(*) FROM multi_expected), '>', 0::bigint, 'the default and per-run policies removed something');

-- 8. A broken chain (cycle or missing parent) stops nothing and loses nothing.
SELECT pg_temp.make_run('broken', 30);
DO $$ BEGIN PERFORM tforge.set_checkpoint_policy('broken', max_checkpoints_per_run => 2, keep_best_n => 0); END $$;
UPDATE tforge.checkpoints SET parent_id = 'nowhere'
 WHERE checkpoint_id = (SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'broken' AND parent_id IS NOT NULL ORDER BY step LIMIT 1);
-- A cycle through the newest checkpoint and its parent's parent.
UPDATE tforge.checkpoints c SET parent_id = n.newest, checkpoint_type = 'incremental'
  FROM (SELECT checkpoint_id AS newest FROM tforge.checkpoints WHERE training_run_id = 'broken' ORDER BY step DESC, created_at DESC LIMIT 1) n
 WHERE c.checkpoint_id = (SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'broken' AND checkpoint_id <> n.newest
                           ORDER BY step, checkpoint_id LIMIT 1);
UPDATE tforge.checkpoints SET parent_id = (SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'broken' ORDER BY step, checkpoint_id LIMIT 1)
 WHERE checkpoint_id = (SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'broken' ORDER BY step DESC, created_at DESC LIMIT 1);
CREATE TEMP TABLE broken_expected AS SELECT g FROM pg_temp.brute_gc('broken', now()) g;
SELECT set_eq('SELECT * FROM tforge.checkpoint_gc(''broken'')', 'SELECT * FROM broken_expected',
              'on a run with a cycle and a missing parent GC ends and removes what brute force finds');
SELECT throws_ok($$SELECT tforge.chain_length((SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'broken' ORDER BY step DESC, created_at DESC LIMIT 1))$$,
                 '55000', NULL, 'the cycle is there: chain_length refuses it');

-- 9. An unknown run: nothing to do.
SELECT is((SELECT count(*) FROM tforge.checkpoint_gc('no such run')), 0::bigint, 'GC of an unknown run removes nothing');
SELECT is((SELECT gc_removed FROM tforge.checkpoint_runs WHERE training_run_id = 'all1'),
          (SELECT count(*) FROM got WHERE run = 'all1'), 'checkpoint_runs counts what GC removed');

SELECT * FROM finish();
ROLLBACK;
