-- Claim order, resource fit, lease expiry, retries and dead tasks.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(17);

-- 40 tasks over three types with sla multipliers and priorities chosen so
-- that laxity ties occur (e.g. 2 x 15 s and 4 x 5 s). Expected order worked
-- out from the definition, not from the code: all arrive at the same now(),
-- so laxity = sla * tau - tau = (sla - 1) * tau; then priority (higher
-- first), then arrival.
CREATE TEMP TABLE sub (n int PRIMARY KEY, task_type text, sla float8, prio int, tau float8, id bigint);
INSERT INTO sub (n, task_type, sla, prio, tau)
SELECT n, (ARRAY['cpu-light', 'cpu-heavy', 'gpu-training'])[1 + n % 3],
       1 + (n % 4), n % 3, (ARRAY[5, 15, 60])[1 + n % 3]
  FROM generate_series(1, 40) n;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM sub ORDER BY n LOOP
    UPDATE sub SET id = tforge.submit_task(r.task_type, sla_multiplier => r.sla, priority => r.prio) WHERE n = r.n;
  END LOOP;
END $$;
SELECT is((SELECT count(DISTINCT id) FROM sub), 40::bigint, '40 tasks submitted');

CREATE TEMP TABLE got (k serial, id bigint);
DO $$ BEGIN FOR i IN 1..40 LOOP INSERT INTO got (id) SELECT task_id FROM tforge.claim_tasks('w1'); END LOOP; END $$;
SELECT results_eq($$ SELECT id FROM got ORDER BY k $$,
                  $$ SELECT id FROM sub ORDER BY (sla - 1) * tau, prio DESC, n $$,
                  'one-by-one claims follow least laxity, then priority, then arrival');
SELECT is_empty($$ SELECT 1 FROM tforge.claim_tasks('w1') $$, 'nothing left to claim');
SELECT is((SELECT count(*) FROM tforge.tasks WHERE status = 'running' AND attempts = 1 AND worker_id = 'w1'),
          40::bigint, 'all running, each claimed once');

-- A batch claim takes the head of the same order.
UPDATE tforge.tasks SET status = 'pending', worker_id = NULL, attempts = 0;
SELECT results_eq($$ SELECT task_id FROM tforge.claim_tasks('w2', 7) ORDER BY laxity_key, priority DESC, task_id $$,
                  $$ SELECT id FROM sub ORDER BY (sla - 1) * tau, prio DESC, n LIMIT 7 $$,
                  'a claim of 7 takes the 7 least-laxity tasks');

-- Resource fit: a task is claimable when every field it states fits the capacity.
TRUNCATE tforge.tasks CASCADE;
SELECT tforge.submit_task('gpu-inference', resources => (2, 4000000000, 1, 8000000000)) AS big \gset
SELECT tforge.submit_task('gpu-inference', resources => (1, 1000000000, NULL, NULL)) AS small \gset
SELECT tforge.submit_task('gpu-inference', resources => (NULL, NULL, 4, NULL)) AS gpus \gset
SELECT tforge.submit_task('gpu-inference') AS anything \gset
SELECT set_eq($$ SELECT task_id FROM tforge.claim_tasks('cpu', 9, (1.5, 2000000000, 0, 0)) $$,
              ARRAY[:small, :anything]::bigint[], 'a CPU-only worker gets the task without GPU needs and the one without needs');
SELECT is_empty($$ SELECT 1 FROM tforge.claim_tasks('gpu1', 9, (8, 1000000000000, 1, 4000000000)) $$,
                'one GPU with 4 GB fits neither the 8 GB task nor the 4-GPU task');
SELECT set_eq($$ SELECT task_id FROM tforge.claim_tasks('gpu4', 9, (NULL, NULL, 4, NULL)) $$,
              ARRAY[:big, :gpus]::bigint[], 'NULL capacity fields are unlimited');

-- Lease expiry re-queues; the attempt is counted; max_attempts ends in dead.
TRUNCATE tforge.tasks CASCADE;
SELECT tforge.submit_task('mixed', max_attempts => 2) AS t \gset
SELECT is((SELECT attempts FROM tforge.claim_tasks('a', lease => '1 ms')), 1, 'first claim is attempt 1');
SELECT pg_sleep(0.005);
SELECT is((SELECT status FROM tforge.tasks WHERE task_id = :t), 'running'::tforge.task_status, 'still running until someone looks');
SELECT is((SELECT worker_id || ':' || attempts FROM tforge.claim_tasks('b', lease => '1 ms')), 'b:2',
          'the expired lease is re-queued and claimed again by another worker');
SELECT throws_ok(format($$ SELECT tforge.complete_task(%s, 'a') $$, :t), '55000', NULL,
                 'the first worker lost the task');
SELECT pg_sleep(0.005);
SELECT is(tforge.expire_leases(), 1, 'second expiry found');
SELECT is((SELECT status FROM tforge.tasks WHERE task_id = :t), 'dead'::tforge.task_status,
          'after max_attempts claims the task is dead, not lost');

-- Retries back off exponentially: base 10 s, attempts 1, 2, 3 -> 10, 20, 40 s.
TRUNCATE tforge.tasks CASCADE;
SET LOCAL tforge.retry_backoff_base = 10;
SELECT tforge.submit_task('mixed', max_attempts => 4) AS r \gset
CREATE TEMP TABLE backoff (attempt int, delay float8);
DO $$
DECLARE a int; at timestamptz;
BEGIN
  FOR i IN 1..3 LOOP
    SELECT attempts INTO a FROM tforge.claim_tasks('x');
    PERFORM tforge.fail_task(currval('tforge.tasks_task_id_seq'), 'x', 'try ' || i);
    SELECT available_at INTO at FROM tforge.tasks;
    INSERT INTO backoff VALUES (a, extract(epoch FROM at - clock_timestamp()));
    UPDATE tforge.tasks SET available_at = now();
  END LOOP;
END $$;
SELECT ok((SELECT bool_and(delay BETWEEN 10 * 2 ^ (attempt - 1) - 1 AND 10 * 2 ^ (attempt - 1)) FROM backoff),
          'backoff is 10, 20, 40 seconds');
SELECT is((SELECT attempts FROM tforge.claim_tasks('x')), 4, 'fourth attempt claimed');
SELECT is(tforge.fail_task(:r, 'x', 'last'), 'dead'::tforge.task_status, 'failing the last attempt buries the task');

SELECT * FROM finish();
ROLLBACK;
