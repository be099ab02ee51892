-- Seeded workload, part 4 (test/lib/citus-test.sh): the calls keyed by a
-- GPU device or a training run that name a block or a checkpoint, one
-- top-level statement each, so that Citus delegates every one to the node
-- of its key. Ids are drawn on the node that inserts (they differ from a
-- single node's), so they are kept in psql variables and never printed.
-- The same output on the cluster and on a single node.
\pset footer off
SELECT block_id AS b1 FROM tforge.gpu_allocate('gpu-1', 'h-1', 4096) \gset
SELECT block_id AS b2 FROM tforge.gpu_allocate('gpu-2', 'h-2', 8192, 512, true) \gset
SELECT tforge.gpu_touch('gpu-1', :b1, '2026-03-01 06:00+00');
SELECT tforge.gpu_pin('gpu-1', :b1);
SELECT tforge.gpu_unpin('gpu-1', :b1);
SELECT tforge.gpu_mark_cached('gpu-1', :b1);
SELECT offset_bytes, size_bytes, status, tensor_id, last_accessed FROM tforge.get_block('gpu-1', :b1);
SELECT tforge.gpu_unpin('gpu-2', :b2);
SELECT tforge.gpu_mark_cached('gpu-2', :b2);
SELECT offset_bytes, size_bytes, status, tensor_id FROM tforge.get_block('gpu-2', :b2);
SELECT tforge.gpu_free('gpu-1', :b1);
SELECT offset_bytes IS NULL AS gone FROM tforge.get_block('gpu-1', :b1);
SELECT success, offset_bytes, actual_size FROM tforge.gpu_allocate('gpu-1', 'h-3', 2048);
SELECT checkpoint_id AS c1 FROM tforge.create_checkpoint('run-h', 0, 100, 'full', '{"loss": 0.9}') \gset
SELECT state, size_bytes FROM tforge.complete_checkpoint('run-h', :'c1', 500, '/h/1');
SELECT checkpoint_id AS c2 FROM tforge.create_checkpoint('run-h', 0, 200, 'incremental', '{"loss": 0.5}') \gset
SELECT state, size_bytes FROM tforge.complete_checkpoint('run-h', :'c2', 700, '/h/2');
SELECT checkpoint_id AS c3 FROM tforge.create_checkpoint('run-h', 1, 300, 'incremental', '{"loss": 0.7}') \gset
SELECT state, size_bytes FROM tforge.complete_checkpoint('run-h', :'c3', 900, '/h/3');
SELECT checkpoint_id AS c4 FROM tforge.create_checkpoint('run-h', 1, 400, 'incremental', '{"loss": 0.4}') \gset
SELECT tforge.chain_length('run-h', :'c3');
SELECT tforge.chain_size('run-h', :'c3');
SELECT tforge.chain_root('run-h', :'c3') AS root \gset
SELECT :'root' = :'c1' AS root_is_first;
SELECT count(*) AS links FROM tforge.restoration_chain('run-h', :'c3');
SELECT count(*) AS problems FROM tforge.validate_checkpoint('run-h', :'c3');
SELECT tforge.estimate_restore_time('run-h', :'c3', 10, 5, 100);
SELECT step, state FROM tforge.get_checkpoint('run-h', :'c2');
SELECT step FROM tforge.find_restore_point('run-h');
SELECT step FROM tforge.latest_checkpoint('run-h');
SELECT step, state FROM tforge.list_checkpoints('run-h');
SELECT step FROM tforge.find_checkpoints_by_metric('run-h', 'loss', 0.8);
SELECT state FROM tforge.mark_checkpoint_corrupted('run-h', :'c3');
SELECT step FROM tforge.find_restore_point('run-h');
SELECT count(*) AS collected FROM tforge.checkpoint_gc('run-h');
SELECT count(*) AS deleted FROM tforge.delete_checkpoint('run-h', :'c2', true);
SELECT step, state FROM tforge.list_checkpoints('run-h');
