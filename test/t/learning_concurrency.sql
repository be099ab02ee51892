-- Two sessions completing tasks of the same type and key at the same time
-- lose no profile update: the type's and the key's profiles count every
-- run and their moments equal the brute-force ones. Committed data, so the
-- suite cleans up after itself.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT count(tforge.submit_task('memory-heavy', '{}', NULL, 0, 'shared')) FROM generate_series(1, 200);
SELECT dblink_connect('c1', tap_connstr()), dblink_connect('c2', tap_connstr());

SELECT plan(6);

-- Worker w1 reports runtimes 1, 2, ... (odd claims) and w2 100, 101, ...; each
-- claim and completion is its own transaction.
SELECT dblink_send_query(c, format($q$
  DO $d$
  DECLARE id bigint; n int := 0;
  BEGIN
    LOOP
      SELECT task_id INTO id FROM tforge.claim_tasks(%L);
      EXIT WHEN id IS NULL;
      n := n + 1;
      PERFORM tforge.complete_task(id, %L, jsonb_build_object('runtime_s', %s + n, 'memory_bytes', 1000));
      COMMIT;
    END LOOP;
  END $d$ $q$, w, w, base))
  FROM (VALUES ('c1', 'w1', 0), ('c2', 'w2', 1000)) v(c, w, base);
SELECT * FROM dblink_get_result('c1') AS t(r text);
SELECT * FROM dblink_get_result('c2') AS t(r text);

SELECT is((SELECT count(*) FROM tforge.tasks WHERE status = 'done'), 200::bigint, 'every task done');
SELECT is((SELECT tforge.rolling_stats_count(runtime) FROM tforge.profiles WHERE task_type = 'memory-heavy' AND task_key = 'shared'),
          200::bigint, 'the key''s profile counts all 200 runs');
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'memory-heavy' AND task_key IS NULL),
          200::bigint, 'the type''s profile counts all 200 completions');
SELECT ok((SELECT abs(tforge.rolling_stats_mean(p.runtime) / (SELECT avg(runtime_s) FROM tforge.tasks WHERE task_type = 'memory-heavy') - 1) < 1e-12
             AND abs(tforge.rolling_stats_variance(p.runtime) / (SELECT var_samp(runtime_s) FROM tforge.tasks WHERE task_type = 'memory-heavy') - 1) < 1e-9
             FROM tforge.profiles p WHERE p.task_type = 'memory-heavy' AND p.task_key = 'shared'),
          'mean and variance equal the brute-force ones over the completed tasks');
SELECT is((SELECT tforge.rolling_stats_max(runtime) FROM tforge.profiles WHERE task_type = 'memory-heavy' AND task_key IS NULL),
          (SELECT max(runtime_s) FROM tforge.tasks WHERE task_type = 'memory-heavy'), 'max is the largest runtime');
SELECT is((SELECT count(*) FROM tforge.prediction_scores), 200::bigint, 'every prediction was scored');

SELECT dblink_disconnect('c1'), dblink_disconnect('c2');
SELECT * FROM finish();

-- Clean up the committed state.
DELETE FROM tforge.prediction_archive;
DELETE FROM tforge.profiles;
DELETE FROM tforge.tasks;
DELETE FROM tforge.task_tau;
