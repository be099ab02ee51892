-- Fencing tokens (issue 13, fault 9): a completion, heartbeat or failure
-- from an earlier claim of a task is refused with 55000, even under the
-- same worker id; the current claim's token works.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(14);

SELECT tforge.submit_task('cpu-light') AS id \gset
-- First claim by w.
SELECT claim_token AS t1 FROM tforge.claim_tasks('w') \gset
SELECT ok(:'t1' <> '', 'a claim returns a token');
-- Its lease expires; w (the same id) claims the task again.
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 s' WHERE task_id = :id;
SELECT claim_token AS t2, attempts AS a2 FROM tforge.claim_tasks('w') \gset
SELECT is(:a2, 2, 'the task was claimed a second time');
SELECT ok(:t2 <> :t1, 'the second claim has another token');
SELECT is((SELECT claim_token FROM tforge.tasks WHERE task_id = :id), :t2::bigint, 'the task row carries the current token');

SELECT throws_ok(format('SELECT tforge.complete_task(%s, %L, %L, %s)', :id, 'w', '{"runtime_s": 2}', :t1),
                 '55000', NULL, 'completion under the first token is refused');
SELECT throws_ok(format('SELECT tforge.heartbeat(%s, %L, %s)', :id, 'w', :t1),
                 '55000', NULL, 'heartbeat under the first token is refused');
SELECT throws_ok(format('SELECT tforge.fail_task(%s, %L, %L, true, %s)', :id, 'w', 'x', :t1),
                 '55000', NULL, 'failure under the first token is refused');
-- Independent check: the refusals changed nothing.
SELECT results_eq(format('SELECT status::text, worker_id, attempts, runtime_s FROM tforge.tasks WHERE task_id = %s', :id),
                  $$VALUES ('running', 'w', 2, NULL::float8)$$, 'the task is still running under the second claim');
SELECT is((SELECT count(*) FROM tforge.task_tau), 0::bigint, 'no tau learned from the stale completion');
SELECT is((SELECT count(*) FROM tforge.profiles), 0::bigint, 'no profile written by the stale completion');

SELECT lives_ok(format('SELECT tforge.heartbeat(%s, %L, %s)', :id, 'w', :t2), 'heartbeat under the second token works');
SELECT is((SELECT status::text FROM tforge.complete_task(:id, 'w', '{"runtime_s": 10}', :t2)), 'done',
          'completion under the second token works');
-- tau = 0.2 * 10 + 0.8 * 5 = 6
SELECT is(tforge.get_tau('cpu-light'), 6::float8, 'and tau learned its runtime once');

-- Concurrent sessions: a worker in another session holding the first
-- token of a re-claimed task is refused there too.
SELECT tforge.submit_task('cpu-light') AS id2 \gset
SELECT claim_token AS u1 FROM tforge.claim_tasks('w') \gset
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 s' WHERE task_id = :id2;
SELECT claim_token AS u2 FROM tforge.claim_tasks('w') \gset
SELECT is((SELECT count(*) FROM tforge.tasks WHERE task_id = :id2 AND claim_token = :u2 AND claim_token > :u1), 1::bigint,
          'tokens grow with every claim');

SELECT * FROM finish();
ROLLBACK;
