-- Seeded workload, part 3 (test/lib/citus-test.sh), after the hot calls:
-- calls that are not delegated and run on the coordinator, the same on the
-- cluster and on a single node. GPU calls keyed by a block id (Citus finds
-- the block's device on every shard, then every statement is routed to that
-- device's shard); the queue claiming GPU memory on a distributed device;
-- checkpoint chains, created, completed and garbage-collected on the
-- coordinator. Every time is fixed.
\pset footer off

-- GPU blocks by block id (found through blocks_for_tensor: ids are drawn on
-- the node that inserts, so they differ between the cluster and one node).
SELECT tforge.gpu_free(b.block_id) FROM tforge.blocks_for_tensor('t-3') b;
SELECT tforge.gpu_free(b.block_id) FROM tforge.blocks_for_tensor('t-18') b;
SELECT tforge.gpu_mark_cached(b.block_id) FROM tforge.blocks_for_tensor('t-4') b;
SELECT tforge.gpu_mark_cached(b.block_id) FROM tforge.blocks_for_tensor('t-8') b;
SELECT tforge.gpu_touch(b.block_id, '2026-03-01 05:00+00') FROM tforge.blocks_for_tensor('t-4') b;
SELECT tforge.gpu_pin(b.block_id) FROM tforge.blocks_for_tensor('t-5') b;
SELECT tforge.gpu_unpin(b.block_id) FROM tforge.blocks_for_tensor('t-1') b;
-- refusals route too: a free block, an unknown block
\set ON_ERROR_STOP 0
\set VERBOSITY sqlstate
SELECT tforge.gpu_free(123456789);
\echo :LAST_ERROR_SQLSTATE
\set ON_ERROR_STOP 1
-- an allocation that must evict (cached blocks, least recently accessed first)
SELECT offset_bytes, size_bytes, status FROM tforge.eviction_candidates('gpu-0');
SELECT success, offset_bytes, actual_size, error FROM tforge.gpu_allocate('gpu-0', 'fill-0', 800000);
SELECT success, offset_bytes, actual_size, error FROM tforge.gpu_allocate('gpu-0', 'big-0', 40000, 4096);
SELECT offset_bytes, size_bytes, status FROM tforge.eviction_candidates('gpu-0');
SELECT block_id IS NOT NULL AS moved, tensor_id, old_offset, new_offset, size_bytes FROM tforge.gpu_defragment('gpu-2') ORDER BY old_offset;

-- The queue (on the coordinator) claims GPU memory on a distributed device;
-- completing the task frees it (the trigger on tasks).
DO $$
DECLARE
  i int;
  t tforge.tasks;
BEGIN
  FOR i IN 0 .. 5 LOOP
    PERFORM tforge.submit_task('gpu-inference', pg_catalog.jsonb_build_object('g', i),
                               ROW(NULL, NULL, NULL, 100000 * (i + 1))::tforge.resources, 0, 'gpu-key');
  END LOOP;
  FOR t IN SELECT * FROM tforge.claim_tasks('gw', 3, gpu_device => 'gpu-3') LOOP
    IF (t.payload->>'g')::int % 2 = 0 THEN
      PERFORM tforge.complete_task(t.task_id, 'gw', '{"runtime_s": 2}');
    END IF;
  END LOOP;
END
$$;
SELECT tensor_id ~ '^task:' AS task_tensor, offset_bytes, size_bytes FROM tforge.gpu_blocks
 WHERE device_id = 'gpu-3' AND status <> 'free' ORDER BY offset_bytes;

-- Checkpoints: two runs, chains of incremental checkpoints, one corrupted,
-- garbage-collected under a run policy and the default one.
SELECT (tforge.set_checkpoint_policy('run-a', max_checkpoints_per_run => 3, keep_best_n => 1)).training_run_id;
DO $$
DECLARE
  run text;
  s int;
  c tforge.checkpoints;
BEGIN
  FOREACH run IN ARRAY ARRAY['run-a', 'run-b'] LOOP
    FOR s IN 1 .. 14 LOOP
      c := tforge.create_checkpoint(run, s / 5, s * 100,
                                    CASE WHEN s % 5 = 1 THEN 'full' ELSE 'incremental' END::tforge.checkpoint_type,
                                    pg_catalog.jsonb_build_object('loss', 1.0 / s + (s % 3) * 0.1));
      IF s <> 13 THEN
        PERFORM tforge.complete_checkpoint(c.checkpoint_id, 1000 * s, run || '/' || s);
      END IF;
      IF run = 'run-b' AND s = 9 THEN
        PERFORM tforge.mark_checkpoint_corrupted(c.checkpoint_id);
      END IF;
    END LOOP;
  END LOOP;
END
$$;
-- (ids by run and step: on the cluster they are drawn on the node that inserts)
SELECT 'gc ' || c.training_run_id || ' step ' || c.step AS collected
  FROM tforge.checkpoint_gc('run-a') g JOIN tforge.checkpoints c ON c.checkpoint_id = g ORDER BY c.training_run_id, c.step;
SELECT 'gc ' || c.training_run_id || ' step ' || c.step AS collected
  FROM tforge.checkpoint_gc() g JOIN tforge.checkpoints c ON c.checkpoint_id = g ORDER BY c.training_run_id, c.step;
-- the plain forms, given only a checkpoint id, on the coordinator: found by
-- asking every shard, then done in the run's shard
-- (an id as a value: a subquery over the checkpoints would make Citus run
-- the call inside a shard query, where it may not query other shards)
SELECT checkpoint_id AS b13 FROM tforge.checkpoints WHERE training_run_id = 'run-b' AND step = 1300 \gset
SELECT state FROM tforge.mark_checkpoint_corrupted(:'b13');
SELECT count(*) AS deleted FROM tforge.delete_checkpoint(:'b13');
