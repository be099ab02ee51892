-- claim_tasks(..., gpu_device): a claimed task's GPU memory is allocated in
-- the claiming transaction, a task that does not fit is passed over, and
-- completion, failure and lease expiry free the block. Concurrent claimers
-- never over-commit the device.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;

SELECT plan(25);

-- Four tasks in laxity order (same type, submitted one after the other):
-- GPU memory 4000, 8000, 3000 and none. Device of 10240 bytes.
SELECT tforge.gpu_add_device('q0', 10240);
SELECT tforge.submit_task('gpu-inference', resources => ROW(NULL, NULL, 1, m)::tforge.resources) AS t
  FROM (VALUES (1, 4000::bigint), (2, 8000), (3, 3000), (4, NULL)) v(i, m) ORDER BY i;
CREATE TEMP TABLE k AS SELECT task_id, (resources).gpu_memory_bytes AS m FROM tforge.tasks ORDER BY task_id;

-- Claim all that fit: 4000 -> 4096 at 0, leaving 6144; 8000 does not fit and
-- is passed over; 3000 -> 3072 at 4096, leaving 3072; the task without GPU
-- memory is claimed too.
SELECT set_eq($$ SELECT task_id FROM tforge.claim_tasks('w', 10, gpu_device => 'q0') $$,
              $$ SELECT task_id FROM k WHERE m IS DISTINCT FROM 8000 $$, 'the tasks that fit are claimed');
SELECT is((SELECT status FROM tforge.tasks JOIN k USING (task_id) WHERE m = 8000), 'pending'::tforge.task_status,
          'the one that does not fit stays pending');
SELECT is((SELECT string_agg(tensor_id || '=' || size_bytes || '@' || offset_bytes, ' ' ORDER BY offset_bytes)
             FROM tforge.gpu_blocks WHERE status <> 'free'),
          (SELECT format('task:%s=4096@0 task:%s=3072@4096', (SELECT task_id FROM k WHERE m = 4000),
                         (SELECT task_id FROM k WHERE m = 3000))),
          'each claimed task holds a block of its memory, as tensor task:<id>');
SELECT is((SELECT free_bytes FROM tforge.gpu_pool_stats('q0')), 3072::bigint, '3072 bytes left');
SELECT is((SELECT count(*) FROM tforge.claim_tasks('w', 10, gpu_device => 'q0')), 0::bigint,
          'nothing else fits');

-- Completion and failure free the blocks.
SELECT tforge.complete_task((SELECT task_id FROM k WHERE m = 4000), 'w', '{"runtime_s": 1}');
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE tensor_id = 'task:' || (SELECT task_id FROM k WHERE m = 4000)),
          0::bigint, 'completion frees the task''s block');
SELECT tforge.fail_task((SELECT task_id FROM k WHERE m = 3000), 'w', 'oom', retry => false);
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE status <> 'free'), 0::bigint, 'failure frees it too');
SELECT is((SELECT block_count FROM tforge.gpu_pool_stats('q0')), 1::bigint, 'the pool is one free block again');
SELECT tforge.complete_task((SELECT task_id FROM k WHERE m IS NULL), 'w');

-- Now the 8000-byte task fits; a lease that expires frees its block.
SELECT is((SELECT task_id FROM tforge.claim_tasks('w2', 1, lease => '1 millisecond', gpu_device => 'q0')),
          (SELECT task_id FROM k WHERE m = 8000), 'the large task is claimed once there is room');
SELECT is((SELECT size_bytes FROM tforge.gpu_blocks WHERE status <> 'free'), 8192::bigint, 'its block: 8000 -> 8192');
SELECT pg_sleep(0.01);
SELECT is(tforge.expire_leases(), 1, 'its lease expires');
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE status <> 'free'), 0::bigint, 'expiry frees the block');
SELECT is((SELECT task_id FROM tforge.claim_tasks('w3', 1, gpu_device => 'q0')), (SELECT task_id FROM k WHERE m = 8000),
          'the task is claimed again, with a new block');
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE tensor_id = 'task:' || (SELECT task_id FROM k WHERE m = 8000)),
          1::bigint, 'exactly one block for it');
SELECT tforge.complete_task((SELECT task_id FROM k WHERE m = 8000), 'w3');

-- A capacity with less GPU memory than the device has free wins.
SELECT tforge.submit_task('gpu-inference', resources => ROW(NULL, NULL, 1, 5000)::tforge.resources);
SELECT is((SELECT count(*) FROM tforge.claim_tasks('w', 1, ROW(NULL, NULL, NULL, 4096)::tforge.resources, gpu_device => 'q0')),
          0::bigint, 'capacity below the task: not claimed');
SELECT is((SELECT count(*) FROM tforge.claim_tasks('w', 1, ROW(NULL, NULL, NULL, 8192)::tforge.resources, gpu_device => 'q0')),
          1::bigint, 'capacity and pool above the task: claimed');
SELECT throws_ok($$ SELECT * FROM tforge.claim_tasks('w', 1, gpu_device => 'nope') $$, '42704', NULL,
                 'an unknown device is 42704');
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE status <> 'free'), 1::bigint, 'the refused claim changed nothing');
UPDATE tforge.tasks SET status = 'done' WHERE status = 'running';
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE status <> 'free'), 0::bigint, 'a direct UPDATE out of running frees too');

-- Two sessions claim from 200 tasks of 1 to 3 KiB on a 64 KiB device at
-- once, a transaction per claim, keeping what they claimed: never more
-- than the device. Each claims at most 20 tasks (at most 60 KiB), so
-- neither can fill the device alone however the two are scheduled, and
-- together they ask for more than it has.
SELECT tforge.gpu_add_device('q1', 65536);
SELECT setseed(0.5);
SELECT count(tforge.submit_task('gpu-training', resources => ROW(NULL, NULL, 1, 1 + floor(random() * 3072))::tforge.resources))
  FROM generate_series(1, 200);
SELECT dblink_connect('c1', tap_connstr()), dblink_connect('c2', tap_connstr());
SELECT dblink_send_query(c, format($q$
  DO $d$
  BEGIN
    FOR i IN 1..10 LOOP
      PERFORM tforge.claim_tasks(%L, 2, gpu_device => 'q1');
      COMMIT;
    END LOOP;
  END $d$ $q$, c))
  FROM unnest('{c1,c2}'::text[]) c;
SELECT * FROM dblink_get_result('c1') AS t(r text);
SELECT * FROM dblink_get_result('c2') AS t(r text);
CREATE TEMP TABLE got AS SELECT worker_id AS c, count(*) AS n FROM tforge.tasks WHERE worker_id IN ('c1', 'c2') GROUP BY 1;
SELECT ok((SELECT sum(n) FROM got) > 20 AND (SELECT count(*) FROM got) = 2, 'both sessions claimed, many tasks between them');
SELECT is_empty($$
  SELECT t.task_id FROM tforge.tasks t
   WHERE t.status = 'running' AND t.worker_id IN ('c1', 'c2')
     AND (SELECT count(*) FROM tforge.gpu_blocks b
           WHERE b.tensor_id = 'task:' || t.task_id AND b.device_id = 'q1'
             AND b.size_bytes = ((t.resources).gpu_memory_bytes + 255) / 256 * 256) <> 1 $$,
  'every claimed task holds exactly one block of its aligned size');
SELECT ok((SELECT sum(((resources).gpu_memory_bytes + 255) / 256 * 256) FROM tforge.tasks
            WHERE status = 'running' AND worker_id IN ('c1', 'c2')) <= 65536
          AND (SELECT sum(size_bytes) FROM tforge.gpu_blocks WHERE device_id = 'q1') = 65536
          AND NOT EXISTS (SELECT 1 FROM tforge.gpu_check('q1')),
          'the claims fit the device, and it is tiled exactly');
SELECT dblink_disconnect('c1'), dblink_disconnect('c2');

-- One call claiming many tasks on a device starts each claim past the
-- tasks it claimed before (claim_prefix.c): tasks_claim_idx returns a few
-- entries per task, not every entry this transaction already claimed
-- (2,000 tasks: about 2,000,000 that way).
SELECT tforge.gpu_add_device('q2', 1073741824);
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts, resources)
SELECT 'gpu-inference', now() - interval '1 day' + i * interval '1 s', 5, now() - interval '1 day' + i * interval '1 s' - interval '5 s',
       3, ROW(NULL, NULL, 1, 1024)::tforge.resources
  FROM generate_series(1, 2000) i;
BEGIN;  -- the counts are this backend's, reported (and reset) only between transactions
SELECT pg_stat_get_xact_tuples_returned('tforge.tasks_claim_idx'::regclass) AS returned \gset
SELECT is((SELECT count(*) FROM tforge.claim_tasks('many', 2000, gpu_device => 'q2')), 2000::bigint,
          'one call claims 2,000 tasks on a device');
SELECT cmp_ok(pg_stat_get_xact_tuples_returned('tforge.tasks_claim_idx'::regclass) - :returned, '<=', 20000::bigint,
              '... and tasks_claim_idx returns at most 10 entries per task claimed');
COMMIT;

-- The release trigger reads tforge.resources by attribute number: a type a
-- superuser changed under the library is refused (55000), not misread.
-- (throws_ok's subtransaction rolls the ALTERs back with the UPDATE.)
SELECT throws_ok($$ ALTER TYPE tforge.resources DROP ATTRIBUTE gpu_memory_bytes CASCADE;
                    ALTER TYPE tforge.resources ADD ATTRIBUTE gpu_memory_bytes text;
                    UPDATE tforge.tasks SET status = 'dead' WHERE status = 'running' AND worker_id = 'c1' $$,
                 '55000', NULL, 'the release trigger refuses a changed tforge.resources');

SELECT * FROM finish();
