-- Concurrent create and GC on one run lose nothing: with dblink, one
-- session creates while another collects, in both orders, in READ
-- COMMITTED and REPEATABLE READ, then both loop at once. The data must be
-- committed for the other sessions to see it, so this suite runs outside a
-- transaction (its database is dropped afterwards).
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_STOP true
SET client_min_messages = warning;

-- A call's outcome as text, so an error is a value, not an abort.
CREATE FUNCTION public.ck_try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  EXECUTE sql INTO result;
  RETURN 'ok ' || coalesce(result, '');
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END
$$;
-- True once the backend with pid waits for a lock held by holder; gives up after 10 s.
CREATE FUNCTION public.ck_blocked_by(pid int, holder int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. 200 LOOP
    IF pg_catalog.pg_blocking_pids(pid) @> ARRAY[holder] THEN
      RETURN true;
    END IF;
    PERFORM pg_catalog.pg_sleep(0.05);
  END LOOP;
  RETURN false;
END
$$;
-- A full checkpoint, completed; returns its id.
CREATE FUNCTION public.ck_full(run text, step bigint) RETURNS text LANGUAGE sql AS $$
  SELECT (tforge.complete_checkpoint((tforge.create_checkpoint(run, 0, step)).checkpoint_id, 1, '/p')).checkpoint_id
$$;
-- Loops for the stress round, each iteration its own transaction.
CREATE PROCEDURE public.ck_creator(run text, n int) LANGUAGE plpgsql AS $$
DECLARE
  c tforge.checkpoints;
BEGIN
  FOR i IN 1 .. n LOOP
    c := tforge.create_checkpoint(run, 0, 1000 + i * 10, CASE WHEN i % 10 = 0 THEN 'full' ELSE 'incremental' END::tforge.checkpoint_type);
    COMMIT;
    PERFORM tforge.complete_checkpoint(c.checkpoint_id, 1, '/p/' || i);
    COMMIT;
  END LOOP;
END
$$;
CREATE PROCEDURE public.ck_collector(run text, n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. n LOOP
    PERFORM tforge.checkpoint_gc(run);
    COMMIT;
  END LOOP;
END
$$;

-- Runs conc1, conc2, conc3, stress: keep only the newest, no best.
SELECT count(tforge.set_checkpoint_policy(r, max_checkpoints_per_run => 1, keep_best_n => 0, max_age => NULL, keep_every_n_steps => NULL))
  FROM unnest(ARRAY['conc1', 'conc2', 'conc3', 'stress']) r;
-- conc1: f1 <- i2 complete, f3 complete (newest).
SELECT public.ck_full('conc1', 10) AS f1 \gset
SELECT (tforge.complete_checkpoint((tforge.create_checkpoint('conc1', 0, 20, 'incremental')).checkpoint_id, 1, '/p')).checkpoint_id AS i2 \gset
SELECT public.ck_full('conc1', 30) AS f3 \gset
-- conc2 and conc3: g1, g2 complete.
SELECT public.ck_full('conc2', 10) AS g1, public.ck_full('conc2', 20) AS g2 \gset
SELECT public.ck_full('conc3', 10) AS h1, public.ck_full('conc3', 20) AS h2 \gset
SELECT public.ck_full('stress', 10) AS s1 \gset

SELECT dblink_connect('ck_a', tap_connstr());
SELECT dblink_connect('ck_b', tap_connstr());
CREATE TEMP TABLE pids AS
  SELECT (SELECT p FROM dblink('ck_a', 'SELECT pg_backend_pid()') t(p int)) AS a,
         (SELECT p FROM dblink('ck_b', 'SELECT pg_backend_pid()') t(p int)) AS b;

SELECT plan(13);

-- 1. A creates a child of i2 (which GC would collect) and keeps its
--    transaction open; B's GC of the run waits, then sees the child and
--    keeps its whole chain.
SELECT dblink_exec('ck_a', 'BEGIN');
SELECT is((SELECT p FROM dblink('ck_a', format($$SELECT (tforge.create_checkpoint('conc1', 0, 40, 'incremental', parent_id => %L)).parent_id$$, :'i2')) t(p text)),
          :'i2', 'A creates an incremental child of i2 and keeps its transaction open');
SELECT dblink_send_query('ck_b', $$SELECT public.ck_try('SELECT string_agg(g, '','') FROM tforge.checkpoint_gc(''conc1'') g')$$);
SELECT ok(public.ck_blocked_by(b, a), 'B''s GC of the same run waits for A') FROM pids;
SELECT dblink_exec('ck_a', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('ck_b') t(r text)), 'ok ',
          'after A commits, B''s GC sees the new child and removes nothing');
SELECT count(*) AS b_left FROM dblink_get_result('ck_b') t(r text) \gset
SELECT is((SELECT array_agg(state::text ORDER BY step) FROM tforge.checkpoints WHERE training_run_id = 'conc1'),
          ARRAY['complete', 'complete', 'complete', 'creating'], 'f1 and i2, the child''s chain, are kept');
SELECT is((SELECT count(*) FROM tforge.restoration_chain((tforge.get_checkpoint((SELECT checkpoint_id FROM tforge.checkpoints WHERE training_run_id = 'conc1' AND step = 40))).checkpoint_id)),
          3::bigint, 'the child''s chain is whole');

-- 2. B collects (removing g1) and keeps its transaction open; A, creating a
--    child of g1, waits, then is refused because g1 is gone.
SELECT dblink_exec('ck_b', 'BEGIN');
SELECT is((SELECT r FROM dblink('ck_b', $$SELECT string_agg(g, ',') FROM tforge.checkpoint_gc('conc2') g$$) t(r text)),
          :'g1', 'B''s GC removes g1 and keeps its transaction open');
SELECT dblink_send_query('ck_a', format($$SELECT public.ck_try(%L)$$,
                                        format($$SELECT (tforge.create_checkpoint('conc2', 0, 30, 'incremental', parent_id => %L)).checkpoint_id$$, :'g1')));
SELECT ok(public.ck_blocked_by(a, b), 'A, creating a child of g1, waits for B') FROM pids;
SELECT dblink_exec('ck_b', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('ck_a') t(r text)),
          format('55000 parent "%s" is deleted, not complete', :'g1'),
          'after B commits, A sees g1 deleted and its create is refused');
SELECT count(*) AS a_left FROM dblink_get_result('ck_a') t(r text) \gset

-- 3. REPEATABLE READ: A's snapshot predates B's committed GC, so A would see
--    h1 complete; the run's row was changed since, and A gets 40001.
SELECT dblink_exec('ck_a', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT n AS a_snapshot FROM dblink('ck_a', 'SELECT count(*) FROM tforge.checkpoints') t(n bigint) \gset
SELECT is((SELECT string_agg(g, ',') FROM tforge.checkpoint_gc('conc3') g), :'h1', 'GC removes h1 and commits');
SELECT is((SELECT r FROM dblink('ck_a', format($$SELECT public.ck_try(%L)$$,
                                               format($$SELECT (tforge.create_checkpoint('conc3', 0, 30, 'incremental', parent_id => %L)).checkpoint_id$$, :'h1'))) t(r text)),
          '40001 could not serialize access due to concurrent update',
          'a REPEATABLE READ create working from the old snapshot fails with 40001 instead of using the removed parent');
SELECT dblink_exec('ck_a', 'ROLLBACK');

-- 4. Both at once: A creates 60 checkpoints (incremental on the latest
--    complete, every 10th full), B runs GC 60 times, each call its own
--    transaction. Nothing is lost: every chain of a non-deleted checkpoint
--    is whole and has no deleted link.
SELECT dblink_send_query('ck_a', $$CALL public.ck_creator('stress', 60)$$);
SELECT dblink_send_query('ck_b', $$CALL public.ck_collector('stress', 60)$$);
SELECT count(*) AS a_done FROM dblink_get_result('ck_a') t(r text) \gset
SELECT count(*) AS a_left FROM dblink_get_result('ck_a') t(r text) \gset
SELECT count(*) AS b_done FROM dblink_get_result('ck_b') t(r text) \gset
SELECT count(*) AS b_left FROM dblink_get_result('ck_b') t(r text) \gset
SELECT is((SELECT count(*) FROM tforge.checkpoints WHERE training_run_id = 'stress'), 61::bigint, 'all 60 creates succeeded');
SELECT is((WITH RECURSIVE up(start, id) AS (
             SELECT checkpoint_id, parent_id FROM tforge.checkpoints
              WHERE training_run_id = 'stress' AND state <> 'deleted' AND parent_id IS NOT NULL
             UNION
             SELECT up.start, c.parent_id FROM up JOIN tforge.checkpoints c ON c.checkpoint_id = up.id WHERE c.parent_id IS NOT NULL)
           SELECT count(*) FROM up LEFT JOIN tforge.checkpoints c ON c.checkpoint_id = up.id
            WHERE c.checkpoint_id IS NULL OR c.state = 'deleted'),
          0::bigint, 'no kept checkpoint has a missing or deleted link');
-- How much B collected while A created depends on how the two were
-- scheduled; one more pass after both must leave only what the policy keeps.
SELECT count(*) AS final_gc FROM tforge.checkpoint_gc('stress') \gset
SELECT cmp_ok((SELECT count(*) FROM tforge.checkpoints WHERE training_run_id = 'stress' AND state = 'deleted'), '>', 10::bigint,
              'GC collects what the concurrent run left to collect');

SELECT * FROM finish();
SELECT dblink_disconnect('ck_a');
SELECT dblink_disconnect('ck_b');
