-- Everything a restore must bring back, as one text per line.
-- Every column of the rows the queue and learning keep.
SELECT 'task ' || t::text FROM tforge.tasks t ORDER BY task_id;
SELECT 'profile ' || p::text FROM tforge.profiles p ORDER BY task_type, task_key;
SELECT 'archive ' || a::text FROM tforge.prediction_archive a ORDER BY task_id;
SELECT 'validation ' || v::text FROM tforge.model_validations v ORDER BY validation_id;
SELECT 'signal ' || s::text FROM tforge.signals s ORDER BY entity_id, signal_type;
SELECT 'accuracy ' || a::text FROM tforge.prediction_accuracy a ORDER BY 1;
SELECT 'tasks', count(*), max(task_id), string_agg(status::text || ':' || coalesce(runtime_s::text, '-'), ',' ORDER BY task_id) FROM tforge.tasks
UNION ALL SELECT 'tau', count(*), NULL, string_agg(task_type || '=' || tau_s || '/' || samples, ',' ORDER BY task_type) FROM tforge.task_tau
UNION ALL SELECT 'types', count(*), NULL, string_agg(name || '=' || default_tau_s || '/' || coalesce(lambda::text, '-'), ',' ORDER BY name) FROM tforge.task_types
UNION ALL SELECT 'profiles', count(*), NULL, string_agg(task_type || '/' || coalesce(task_key, '-') || '=' || runtime::text, ',' ORDER BY task_type, task_key) FROM tforge.profiles
UNION ALL SELECT 'models', count(*), NULL, string_agg(model_id || '@' || version::text || '=' || state::text, ',') FROM tforge.model_versions
UNION ALL SELECT 'history', count(*), NULL, NULL FROM tforge.model_state_history
UNION ALL SELECT 'signals', count(*), NULL, string_agg(entity_id || '=' || score::text, ',') FROM tforge.signals
UNION ALL SELECT 'values', count(*), NULL, string_agg(v::text || '|' || s::text || '|' || w::text || '|' || r::text, ',') FROM public.versions
UNION ALL SELECT 'checkpoints', count(*), NULL, string_agg(checkpoint_id || '<' || coalesce(parent_id, '-') || ':' || state::text || ':' || created_at::text, ',' ORDER BY checkpoint_id) FROM tforge.checkpoints
UNION ALL SELECT 'checkpoint policies', count(*), NULL, string_agg(p::text, ',' ORDER BY p.training_run_id NULLS FIRST) FROM tforge.checkpoint_policies p
UNION ALL SELECT 'checkpoint runs', count(*), NULL, string_agg(r::text, ',') FROM tforge.checkpoint_runs r
UNION ALL SELECT 'next checkpoint id', NULL, NULL, (tforge.create_checkpoint('run1', 0, 300)).checkpoint_id
UNION ALL SELECT 'gpu devices', count(*), NULL, string_agg(device_id || '=' || total_memory || '/' || memory_clock_mhz || '/' || compute_capability, ',') FROM tforge.gpu_devices
UNION ALL SELECT 'gpu blocks', count(*), max(block_id), string_agg(block_id || ':' || offset_bytes || '+' || size_bytes || ':' || status || ':' || coalesce(tensor_id, '-') || ':' || coalesce(alignment::text, '-'), ',' ORDER BY device_id, offset_bytes) FROM tforge.gpu_blocks
UNION ALL SELECT 'next gpu block id', nextval(pg_get_serial_sequence('tforge.gpu_blocks', 'block_id')), NULL, NULL
UNION ALL SELECT 'gpu lists', (SELECT count(*) FROM tforge.gpu_free_blocks) + (SELECT count(*) FROM tforge.gpu_tensor_blocks)
                 + (SELECT count(*) FROM tforge.gpu_cached_blocks), NULL,
                 (SELECT string_agg(c, ',') FROM tforge.gpu_devices d, tforge.gpu_check(d.device_id) c)
UNION ALL SELECT 'next task id', tforge.submit_task('etl'), NULL, NULL;
-- The queue at work on the restored state: the running tasks completed by
-- their holders under their claim tokens (freeing the GPU block), a new
-- claim's token (the sequence carries on), what was learned, a new submit's
-- prediction.
SELECT 'complete ' || t.task_id || ' ' || (tforge.complete_task(t.task_id, t.worker_id, '{"runtime_s": 7}', t.claim_token)).status
  FROM tforge.tasks t WHERE t.status = 'running' ORDER BY t.task_id;
SELECT 'gpu block after ' || b::text FROM tforge.gpu_blocks b ORDER BY block_id;
SELECT 'claim ' || task_id || ' token ' || claim_token FROM tforge.claim_tasks('after', 1);
SELECT 'tau after ' || t.task_type || ' ' || t.tau_s || ' ' || t.samples FROM tforge.task_tau t ORDER BY task_type;
SELECT 'estimate ' || e::text FROM tforge.estimate('etl', 'u1') e;
