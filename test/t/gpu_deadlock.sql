-- Statements that end the runs of several GPU tasks (complete_tasks,
-- fail_tasks, expire_leases) free the tasks' blocks, which locks each
-- task's device. They lock those devices first, in device order, before any
-- task row: two batches whose tasks sit on two devices in opposite orders
-- used to lock the devices in the order they met the tasks and deadlocked
-- (40P01, one batch lost), as did a batch against a lease expiry.
--
-- Each case: session c1 ends a task on device A and keeps its transaction
-- open (it holds A); session c2 starts a statement that ends tasks on B and
-- A, in that order, and waits for A; then c1 ends a task on B. c2 must wait
-- holding nothing, so c1 gets B, commits, and both statements succeed.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;

SELECT tforge.gpu_add_device('A', 1048576), tforge.gpu_add_device('B', 1048576);
SELECT count(tforge.submit_task('gpu-inference', resources => ROW(NULL, NULL, NULL, 1024)::tforge.resources))
  FROM generate_series(1, 12);
-- Claims: w1 one task on A then one on B, w2 one on B then one on A, three times.
CREATE TABLE held (round int, worker text, device text, task_id bigint, token bigint);
DO $$
DECLARE
  c record;
BEGIN
  FOR r IN 1 .. 3 LOOP
    FOR c IN SELECT * FROM (VALUES ('w1', 'A', 1), ('w1', 'B', 2), ('w2', 'B', 3), ('w2', 'A', 4)) v(w, d, o) ORDER BY o LOOP
      INSERT INTO held SELECT r, c.w, c.d, t.task_id, t.claim_token FROM tforge.claim_tasks(c.w, 1, gpu_device => c.d) t;
    END LOOP;
  END LOOP;
END
$$;

SELECT dblink_connect('c1', tap_connstr()), dblink_connect('c2', tap_connstr());
SELECT dblink_exec('c2', $$SET deadlock_timeout = '100ms'$$);
CREATE FUNCTION public.c2_pid() RETURNS int LANGUAGE sql AS $$
  SELECT pid FROM dblink('c2', 'SELECT pg_backend_pid()') AS t(pid int)
$$;
CREATE TEMP TABLE c2 AS SELECT public.c2_pid() AS pid;

-- Wait until c2 waits for a lock (at most 10 s); true when it does.
CREATE FUNCTION public.c2_waits() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. 200 LOOP
    IF EXISTS (SELECT 1 FROM pg_stat_activity a, c2 WHERE a.pid = c2.pid AND a.wait_event_type = 'Lock') THEN
      RETURN true;
    END IF;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN false;
END
$$;

-- The ids and tokens of round r's tasks of worker w, in claim order, as array literals.
CREATE FUNCTION public.ids(r int, w text) RETURNS text LANGUAGE sql AS $$
  SELECT format('%L::bigint[], NULL, %L::bigint[]', array_agg(task_id ORDER BY device DESC), array_agg(token ORDER BY device DESC))
    FROM held WHERE round = r AND worker = w
$$;
CREATE FUNCTION public.one(r int, w text, d text) RETURNS text LANGUAGE sql AS $$
  SELECT format('ARRAY[%s]::bigint[], NULL, ARRAY[%s]::bigint[]', task_id, token)
    FROM held WHERE round = r AND worker = w AND device = d
$$;

SELECT plan(9);

-- ---- complete_tasks against complete_tasks ---------------------------------------
SELECT dblink_exec('c1', 'BEGIN');
SELECT is((SELECT string_agg(status, ',') FROM dblink('c1', format('SELECT status FROM tforge.complete_tasks(%L, %s)', 'w1', public.one(1, 'w1', 'A')))
             AS t(status text)), 'done', 'c1 completes its task on A and holds A');
SELECT dblink_send_query('c2', format('SELECT string_agg(status, '','') FROM tforge.complete_tasks(%L, %s)', 'w2', public.ids(1, 'w2')));
SELECT ok(public.c2_waits(), 'c2''s batch (tasks on B, then A) waits for A');
SELECT is((SELECT string_agg(status, ',') FROM dblink('c1', format('SELECT status FROM tforge.complete_tasks(%L, %s)', 'w1', public.one(1, 'w1', 'B')))
             AS t(status text)), 'done', 'c1 then completes its task on B: c2 holds nothing');
SELECT dblink_exec('c1', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('c2') AS t(r text)), 'done,done', 'c2''s batch completes both tasks');
SELECT * FROM dblink_get_result('c2') AS t(x text);

-- ---- fail_tasks against complete_tasks -------------------------------------------
SELECT dblink_exec('c1', 'BEGIN');
SELECT lives_ok(format($$SELECT * FROM dblink('c1', format('SELECT status FROM tforge.complete_tasks(%%L, %%s)', 'w1', %L)) AS t(s text)$$,
                       public.one(2, 'w1', 'A')), 'c1 holds A again');
SELECT dblink_send_query('c2', format('SELECT string_agg(status, '','') FROM tforge.fail_tasks(%L, %s)', 'w2',
                                      replace(public.ids(2, 'w2'), ', NULL, ', ', NULL, true, ')));
SELECT public.c2_waits();
SELECT lives_ok(format($$SELECT * FROM dblink('c1', format('SELECT status FROM tforge.complete_tasks(%%L, %%s)', 'w1', %L)) AS t(s text)$$,
                       public.one(2, 'w1', 'B')), 'c1 completes its task on B while c2''s fail_tasks waits');
SELECT dblink_exec('c1', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('c2') AS t(r text)), 'pending,pending', 'c2''s fail_tasks requeues both tasks');
SELECT * FROM dblink_get_result('c2') AS t(x text);

-- ---- expire_leases against complete_tasks ----------------------------------------
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 minute'
 WHERE task_id IN (SELECT task_id FROM held WHERE round = 3 AND worker = 'w2');
SELECT dblink_exec('c1', 'BEGIN');
SELECT * FROM dblink('c1', format('SELECT status FROM tforge.complete_tasks(%L, %s)', 'w1', public.one(3, 'w1', 'A'))) AS t(s text);
SELECT dblink_send_query('c2', 'SELECT tforge.expire_leases()::text');
SELECT public.c2_waits();
SELECT * FROM dblink('c1', format('SELECT status FROM tforge.complete_tasks(%L, %s)', 'w1', public.one(3, 'w1', 'B'))) AS t(s text);
SELECT dblink_exec('c1', 'COMMIT');
SELECT is((SELECT r FROM dblink_get_result('c2') AS t(r text)), '2', 'expire_leases requeues both expired tasks');
SELECT * FROM dblink_get_result('c2') AS t(x text);

SELECT is((SELECT string_agg(device_id || ':' || status, ',' ORDER BY device_id, status) FROM
             (SELECT device_id, status::text, count(*) FROM tforge.gpu_blocks GROUP BY 1, 2) s),
          'A:free,B:free', 'every task''s GPU memory is freed');

SELECT dblink_disconnect('c1'), dblink_disconnect('c2');
SELECT * FROM finish();
