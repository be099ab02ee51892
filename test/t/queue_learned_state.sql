-- The learned state every completion rewrites in place (task_tau, profiles):
-- a writer waiting for another changes the committed new version under READ
-- COMMITTED and fails with 40001 under REPEATABLE READ, as UPDATE would; a
-- rolled-back completion leaves tau and the profile as they were. Also: the
-- scores of purged tasks survive in the archive, and max_attempts is checked
-- where it is written. Committed data, so the suite cleans up after itself.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SET tforge.ema_lambda = 0.5;
SELECT count(tforge.submit_task('cpu-heavy')) FROM generate_series(1, 6);
SELECT dblink_connect('c1', tap_connstr()), dblink_connect('c2', tap_connstr());
SELECT dblink_exec(c, 'SET tforge.ema_lambda = 0.5') FROM (VALUES ('c1'), ('c2')) v(c);

SELECT plan(16);

-- cpu-heavy starts at tau 15. Each session claims a task and holds it.
CREATE TEMP TABLE held AS
SELECT 'c1' AS c, (SELECT task_id FROM dblink('c1', $$ SELECT task_id FROM tforge.claim_tasks('w1') $$) AS t(task_id bigint)) AS task_id
UNION ALL
SELECT 'c2', (SELECT task_id FROM dblink('c2', $$ SELECT task_id FROM tforge.claim_tasks('w2') $$) AS t(task_id bigint));

-- READ COMMITTED: c1 completes (runtime 5) and holds its transaction open;
-- c2's completion (runtime 25) waits for it, then learns from c1's tau.
SELECT dblink_exec('c1', 'BEGIN');
SELECT dblink_exec('c1', format($$ DO $d$ BEGIN PERFORM tforge.complete_task(%s, 'w1', '{"runtime_s": 5}'); END $d$ $$,
                                (SELECT task_id FROM held WHERE c = 'c1')));
SELECT dblink_send_query('c2', format($$ SELECT status::text FROM tforge.complete_task(%s, 'w2', '{"runtime_s": 25}') $$,
                                      (SELECT task_id FROM held WHERE c = 'c2')));
SELECT pg_sleep(0.2);
SELECT is(dblink_is_busy('c2'), 1, 'a second completion of the type waits for the first one''s transaction');
SELECT dblink_exec('c1', 'COMMIT');
-- 0.5 * 5 + 0.5 * 15 = 10, then 0.5 * 25 + 0.5 * 10 = 17.5
SELECT is((SELECT status FROM dblink_get_result('c2') AS t(status text)), 'done', 'then completes');
SELECT * FROM dblink_get_result('c2') AS t(status text);
SELECT is(tforge.get_tau('cpu-heavy'), 17.5::float8,
          'the waiting completion learned from the committed tau (15 -> 10 -> 17.5)');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'cpu-heavy'), 2::bigint, 'both runtimes counted');
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'cpu-heavy' AND task_key IS NULL), 2::bigint,
          'the type''s profile counts both completions');
SELECT is((SELECT tforge.rolling_stats_recent(runtime) FROM tforge.profiles WHERE task_type = 'cpu-heavy' AND task_key IS NULL),
          '{5,25}'::float8[], 'the profile holds both runtimes, in commit order');

-- REPEATABLE READ: c1's snapshot predates c2's completion, so c1's
-- completion cannot rewrite the tau c2 changed.
DELETE FROM held;
INSERT INTO held
SELECT 'c1', (SELECT task_id FROM dblink('c1', $$ SELECT task_id FROM tforge.claim_tasks('w1') $$) AS t(task_id bigint))
UNION ALL
SELECT 'c2', (SELECT task_id FROM dblink('c2', $$ SELECT task_id FROM tforge.claim_tasks('w2') $$) AS t(task_id bigint));
SELECT dblink_exec('c1', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT is((SELECT tau FROM dblink('c1', $$ SELECT tforge.get_tau('cpu-heavy') $$) AS t(tau float8)), 17.5::float8,
          'the REPEATABLE READ snapshot is taken');
SELECT dblink_exec('c2', format($$ DO $d$ BEGIN PERFORM tforge.complete_task(%s, 'w2', '{"runtime_s": 1}'); END $d$ $$,
                                (SELECT task_id FROM held WHERE c = 'c2')));
SELECT is(dblink_exec('c1', format($$ DO $d$ BEGIN PERFORM tforge.complete_task(%s, 'w1', '{"runtime_s": 1}'); END $d$ $$,
                                (SELECT task_id FROM held WHERE c = 'c1')), false), 'ERROR',
          'a REPEATABLE READ completion of a concurrently learned type is refused');
SELECT matches(dblink_error_message('c1'), 'could not serialize access due to concurrent update',
               'with a serialization failure, as UPDATE would');
SELECT dblink_exec('c1', 'ROLLBACK');
-- 0.5 * 1 + 0.5 * 17.5 = 9.25; c1's task is still running, its completion undone
SELECT is(tforge.get_tau('cpu-heavy'), 9.25::float8, 'only the committed completion was learned');
SELECT is((SELECT status::text FROM tforge.tasks WHERE task_id = (SELECT task_id FROM held WHERE c = 'c1')), 'running',
          'the failed completion changed nothing');
-- Retried, it learns from the committed state: 0.5 * 1 + 0.5 * 9.25 = 5.125
SELECT is((SELECT tau FROM dblink('c1', $$ SELECT tforge.update_tau('cpu-heavy', 1) $$) AS t(tau float8)),
          5.125::float8, 'a retry learns from the committed tau');

-- Purging done tasks keeps their scores.
SELECT is((SELECT count(*) FROM tforge.prediction_scores WHERE task_type = 'cpu-heavy'), 3::bigint,
          'three completions scored');
SELECT tforge.purge_tasks('0 s');
SELECT is((SELECT count(*) FROM tforge.prediction_scores WHERE task_type = 'cpu-heavy'), 3::bigint,
          'purged tasks keep their scores (tforge.prediction_archive)');
SELECT is((SELECT count(*) FROM tforge.tasks WHERE status = 'done'), 0::bigint, 'the done tasks are gone');

SELECT throws_ok($$ INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
                    VALUES ('cpu-heavy', now(), 1, now(), 0) $$, '23514', NULL,
                 'max_attempts below 1 is refused on a direct insert');

SELECT dblink_disconnect('c1'), dblink_disconnect('c2');
SELECT * FROM finish();

-- Clean up the committed state.
DELETE FROM tforge.prediction_archive;
DELETE FROM tforge.profiles;
DELETE FROM tforge.tasks;
DELETE FROM tforge.task_tau;
