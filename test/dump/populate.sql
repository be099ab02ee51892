-- State in every component, for the dump/restore check (test/lib/run-tests.sh).
SET client_min_messages = warning;
CREATE EXTENSION tforge;
SELECT tforge.define_task_type('etl', 30, 0.5);
SELECT tforge.submit_task('etl', task_key => 'u1') FROM generate_series(1, 5);
SELECT tforge.complete_task(task_id, 'w', '{"runtime_s": 12, "cpu_s": 3}') FROM tforge.claim_tasks('w', 3);
SELECT tforge.update_tau('cpu-light', 9);
SELECT tforge.register_model('m1', '1.2.3-rc.1'::tforge.semver, 'pytorch', '{1,3,224,224}', '{1,1000}', 100, 'abc');
SELECT tforge.transition_model('m1', '1.2.3-rc.1', 'validating');
INSERT INTO tforge.signal_types (name, half_life) VALUES ('views', '1 hour');
SELECT tforge.record_signal(1, 'views', 2, '2026-01-01 00:00+00');
CREATE TABLE public.versions (v tforge.semver, s tforge.decay_score, w tforge.window_counter, r tforge.rolling_stats);
INSERT INTO public.versions
SELECT '1.0.0-alpha.1+build', tforge.decay_add(tforge.decay_empty('1 hour'), 3, '2026-01-01 00:00+00'),
       tforge.window_add(tforge.window_empty(), '2026-01-01 00:00+00', 3), tforge.rolling_stats_add(NULL, 4.5);
SELECT tforge.complete_checkpoint((tforge.create_checkpoint('run1', 0, 100, metrics => '{"loss": 0.5}')).checkpoint_id, 10, '/c/1');
SELECT tforge.complete_checkpoint((tforge.create_checkpoint('run1', 0, 200, 'incremental')).checkpoint_id, 1, '/c/2');
SELECT tforge.set_checkpoint_policy('run1', keep_best_n => 1);
SELECT tforge.set_checkpoint_policy(NULL, max_checkpoints_per_run => 7);
SELECT tforge.gpu_add_device('gpu0', 65536, 1215, '8.6');
SELECT tforge.gpu_allocate('gpu0', t, s) FROM (VALUES ('a', 1000), ('b', 3000), ('c', 500)) v(t, s);
SELECT tforge.gpu_free(2), tforge.gpu_pin(3);
-- Tasks in every state: running under a claim token (one holding GPU memory
-- on gpu0), dead, and a done one purged into the archive; a validation.
SELECT tforge.submit_task('gpu-inference', resources => ROW(NULL, NULL, NULL, 2048)::tforge.resources, task_key => 'g');
SELECT task_id FROM tforge.claim_tasks('wg', 1, gpu_device => 'gpu0');
SELECT task_id FROM tforge.claim_tasks('w2', 1);
SELECT tforge.fail_task(t.task_id, 'w3', 'boom', false, t.claim_token) FROM tforge.claim_tasks('w3', 1) t;
UPDATE tforge.tasks SET completed_at = now() - interval '30 days' WHERE task_id = 1;
SELECT tforge.purge_tasks('1 day');
SELECT tforge.record_validation('m1', '1.2.3-rc.1', '{10,20,30}', 0.9, '{}');
