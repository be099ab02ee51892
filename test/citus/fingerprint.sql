-- What the cluster and the single node must agree on (test/lib/citus-test.sh).
\set T '''2026-03-01 03:00+00'''
\pset footer off
\echo signals
SELECT signal_type, entity_id, round(tforge.decay_value(score, :T)::numeric, 9) AS score,
       tforge.window_total(counts) AS total, tforge.window_count(counts, '1 hour', :T) AS last_hour
  FROM tforge.signals ORDER BY 1, 2;
\echo reads
SELECT e, round(tforge.signal_score(e, 'view', :T)::numeric, 9),
       tforge.signal_count(e, 'view', '24 hours', :T),
       round(tforge.signal_velocity(e, 'click', '1 hour', :T)::numeric, 12)
  FROM generate_series(1, 1000, 97) e ORDER BY e;
SELECT * FROM tforge.signal_windows(7, 'click', :T);
\echo trending
SELECT entity_id, round(score::numeric, 9) FROM tforge.trending('view', 10, :T);
SELECT entity_id, round(score::numeric, 9) FROM tforge.trending('click', 5, :T);
\echo aggregates
SELECT signal_type,
       round(tforge.decay_value(tforge.decay_agg(tforge.decay_value(score, :T), :T, '1 hour'), :T)::numeric, 6) AS decay,
       tforge.window_count(tforge.window_union(counts), '24 hours', :T) AS day,
       tforge.window_total(tforge.window_union(counts)) AS total,
       tforge.rolling_stats_count(tforge.rolling_stats_agg(tforge.decay_value(score, :T))) AS n,
       round(tforge.rolling_stats_mean(tforge.rolling_stats_agg(tforge.decay_value(score, :T)))::numeric, 9) AS mean,
       round(tforge.rolling_stats_max(tforge.rolling_stats_agg(tforge.decay_value(score, :T)))::numeric, 9) AS max
  FROM tforge.signals GROUP BY signal_type ORDER BY 1;
-- window_agg over every entity's newest minute (partial aggregates on the shards)
SELECT signal_type,
       tforge.window_agg(tforge.window_last_minute(counts), tforge.window_total(counts)) AS by_newest_minute,
       tforge.window_count(tforge.window_agg(tforge.window_last_minute(counts)), '1 hour', :T) AS active_last_hour
  FROM tforge.signals GROUP BY signal_type ORDER BY 1;
SELECT tforge.max(version), tforge.min(version) FROM tforge.model_versions;
SELECT model_id, tforge.max(version), tforge.min(version) FROM tforge.model_versions GROUP BY 1 ORDER BY 1;
\echo registry
SELECT model_id, version, state, size_bytes, tags FROM tforge.model_versions ORDER BY 1, 2;
SELECT model_id, version, from_state, to_state FROM tforge.model_state_history ORDER BY model_id, history_id;
SELECT model_id, version, passed, latency_p50_ms, latency_p99_ms, accuracy_score
  FROM tforge.model_validations ORDER BY model_id, version, validation_id;
SELECT m, tforge.latest_version(m), tforge.select_best_model(m) FROM (SELECT 'model-' || i AS m FROM generate_series(0, 11) i) x ORDER BY 1;
SELECT model_id, versions, latest_version, production_versions, canary_versions FROM tforge.model_summary ORDER BY 1;
SELECT tforge.model_count(), tforge.version_count();
\echo queue
SELECT state, count(*) FROM tforge.tasks GROUP BY 1 ORDER BY 1;
SELECT name, round(tforge.get_tau(name)::numeric, 9) FROM tforge.task_types ORDER BY 1;
SELECT task_type, task_key, completions, tforge.rolling_stats_count(runtime),
       round(tforge.rolling_stats_mean(runtime)::numeric, 9), round(tforge.rolling_stats_mean(memory)::numeric, 6)
  FROM tforge.profiles ORDER BY 1, 2;
\echo gpu
SELECT device_id, offset_bytes, size_bytes, alignment, status, tensor_id, priority
  FROM tforge.gpu_blocks ORDER BY 1, 2;
SELECT * FROM tforge.gpu_pools ORDER BY device_id;
SELECT d, c FROM (VALUES ('gpu-0'), ('gpu-1'), ('gpu-2'), ('gpu-3')) v(d), LATERAL tforge.gpu_check(d) c ORDER BY 1, 2;
SELECT d, tforge.best_fit_block(d, 4096) IS NOT NULL AS fits FROM (VALUES ('gpu-0'), ('gpu-1'), ('gpu-2'), ('gpu-3')) v(d) ORDER BY 1;
\echo checkpoints
-- (checkpoint ids are drawn on the node that inserts: shown as run and step)
SELECT c.training_run_id, c.epoch, c.step, c.checkpoint_type, c.state, c.size_bytes,
       (SELECT p.step FROM tforge.checkpoints p WHERE p.checkpoint_id = c.parent_id) AS parent_step,
       c.metrics, c.storage_path
  FROM tforge.checkpoints c ORDER BY c.training_run_id, c.step;
SELECT training_run_id, checkpoints_created, gc_removed FROM tforge.checkpoint_runs ORDER BY 1;
SELECT r.training_run_id, p.step AS restore_step, l.step AS latest_step,
       (SELECT string_agg(c.step::text, ',' ORDER BY c.step) FROM tforge.checkpoints c
         WHERE c.training_run_id = r.training_run_id
           AND c.checkpoint_id IN (SELECT tforge.restoration_chain(r.training_run_id, l.checkpoint_id))) AS chain,
       tforge.chain_length(r.training_run_id, l.checkpoint_id) AS length
  FROM tforge.checkpoint_runs r, LATERAL tforge.find_restore_point(r.training_run_id) p,
       LATERAL tforge.latest_checkpoint(r.training_run_id) l
 ORDER BY 1;
SELECT tforge.checkpoint_total_count(), tforge.checkpoint_total_size();
