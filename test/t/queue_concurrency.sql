-- Two sessions claiming at the same time never get the same task, and no
-- completion's tau update is lost. The second and third sessions are opened
-- with dblink, so the tasks are committed before the plan starts.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT count(tforge.submit_task('cpu-light')) FROM generate_series(1, 300);
SELECT dblink_connect('c1', tap_connstr()), dblink_connect('c2', tap_connstr());

SELECT plan(9);

-- Open transactions: the first claimer's locks make the second skip its tasks.
SELECT dblink_exec('c1', 'BEGIN'), dblink_exec('c2', 'BEGIN');
CREATE TEMP TABLE one AS SELECT * FROM dblink('c1', $$ SELECT task_id FROM tforge.claim_tasks('w1', 20) $$) AS t(task_id bigint);
CREATE TEMP TABLE two AS SELECT * FROM dblink('c2', $$ SELECT task_id FROM tforge.claim_tasks('w2', 20) $$) AS t(task_id bigint);
SELECT is((SELECT count(*) FROM one), 20::bigint, 'first session claimed 20');
SELECT is((SELECT count(*) FROM two), 20::bigint, 'second session claimed 20 more without waiting');
SELECT is_empty($$ SELECT task_id FROM one INTERSECT SELECT task_id FROM two $$, 'no task claimed by both');
SELECT dblink_exec('c1', 'ROLLBACK'), dblink_exec('c2', 'ROLLBACK');
SELECT is((SELECT count(*) FROM tforge.tasks WHERE status = 'pending' AND attempts = 0), 300::bigint,
          'rolled-back claims leave the tasks as they were');

-- Both sessions drain the queue concurrently, one claim and completion per transaction.
SELECT dblink_send_query(c, format($q$
  DO $d$
  DECLARE id bigint;
  BEGIN
    LOOP
      SELECT task_id INTO id FROM tforge.claim_tasks(%L);
      EXIT WHEN id IS NULL;
      PERFORM tforge.complete_task(id, %L, '{"runtime_s": 1}');
      COMMIT;
    END LOOP;
  END $d$ $q$, w, w))
  FROM (VALUES ('c1', 'w1'), ('c2', 'w2')) v(c, w);
SELECT * FROM dblink_get_result('c1') AS t(r text);
SELECT * FROM dblink_get_result('c2') AS t(r text);

SELECT is((SELECT count(*) FROM tforge.tasks WHERE status = 'done'), 300::bigint, 'every task done');
SELECT is((SELECT count(*) FROM tforge.tasks WHERE attempts <> 1), 0::bigint, 'each claimed exactly once');
SELECT ok((SELECT count(DISTINCT worker_id) = 2 FROM tforge.tasks), 'both workers took part');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'cpu-light'), 300::bigint,
          'every completion updated tau: no lost update');
-- 300 samples of 1 s from 5 s: tau = 1 + 4 * 0.8^300 (order does not matter, all samples equal)
SELECT ok(abs(tforge.get_tau('cpu-light') - (1 + 4 * 0.8 ^ 300)) < 1e-12, 'tau converged to the runtime');

SELECT dblink_disconnect('c1'), dblink_disconnect('c2');
SELECT * FROM finish();
