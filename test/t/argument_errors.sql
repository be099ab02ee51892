-- Argument errors, generated from the catalog: every tforge function a role
-- can call (every public one, and the _-prefixed ones PUBLIC or a tforge
-- role may execute), every argument position, called with otherwise valid
-- sample arguments and that one argument NULL.
--
--   STRICT function                      returns NULL (no rows for a set)
--   argument in null_allowed below, or   succeeds: NULL means something
--     declared DEFAULT NULL                the function documents
--   argument in null_other below         fails with the SQLSTATE given there
--   any other argument                   fails with 22004
--                                        (null_value_not_allowed, DESIGN.md)
--
-- The same calls with out-of-range numbers (-1, the type's extremes, NaN,
-- +-Infinity) and unknown names must fail with a code DESIGN.md names
-- (22023, 22003, 22P02, 22004, 42704, 55000, ...) or succeed: never an
-- internal error (XX000), a table constraint's violation (23xxx) or another
-- 42xxx error leaking from a statement inside the function.
--
-- A new function is covered without touching this file, as long as its
-- sample call (found by argument name and type below) succeeds; the suite
-- fails and names it when it does not: add a sample_arg row then.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT no_plan();
SET client_min_messages = error;

-- ---------------------------------------------------------------- seeded state

-- Tasks 1..3 running, held by w1 (task 1 with a known claim token), 4
-- pending; a learned profile; a model with a staged version and a
-- validation; a signal type with signals; a GPU device with an allocated
-- block; a training run with a complete checkpoint; a GC policy.
\o /dev/null
CREATE TEMP TABLE seed (k text PRIMARY KEY, v text);
INSERT INTO seed SELECT 'task' || g, tforge.submit_task('cpu-light', task_key => 'k1')::text FROM generate_series(1, 3) g;
INSERT INTO seed SELECT 'claimed', count(*)::text FROM tforge.claim_tasks('w1', 3);
INSERT INTO seed SELECT 'token', claim_token::text FROM tforge.tasks WHERE task_id = (SELECT v::bigint FROM seed WHERE k = 'task1');
INSERT INTO seed VALUES ('pending', tforge.submit_task('cpu-heavy')::text);
SELECT tforge._profile_record('cpu-light', 'k1', 3, 1, 100, NULL, NULL);
SELECT tforge.register_model('m1', '1.0.0', 'pytorch', '{1,3}', '{1,10}', 1024, 'sha', '{}', 'model one');
SELECT tforge.register_model('m1', '0.9.0', 'pytorch', '{1,3}', '{1,10}', 1024, 'sha', '{}', 'model one');
SELECT tforge.transition_model('m1', '1.0.0', 'validating');
SELECT tforge.transition_model('m1', '0.9.0', 'validating');
SELECT tforge.record_validation('m1', '1.0.0', '{10,20,30}', 0.9);
SELECT tforge.record_validation('m1', '0.9.0', '{10,20,30}', 0.8);
SELECT tforge.define_signal_type('click', '1 hour');
SELECT tforge.record_signal(1, 'click', 1.0, '2026-01-01 00:00+00');
SELECT tforge.record_signal(2, 'click', 2.0, '2026-01-01 00:01+00');
SELECT tforge.gpu_add_device('gpu0', 1048576);
SELECT tforge.gpu_add_device('gpu1', 1048576);
INSERT INTO seed SELECT 'block', (tforge.gpu_allocate('gpu0', 't1', 4096)).block_id::text;
INSERT INTO seed SELECT 'ckpt', (tforge.create_checkpoint('run1', 0, 10, metrics => '{"loss": 0.5}')).checkpoint_id;
SELECT tforge.complete_checkpoint((SELECT v FROM seed WHERE k = 'ckpt'), 100, '/ckpt/1');
INSERT INTO seed SELECT 'ckpt2', (tforge.create_checkpoint('run1', 1, 20)).checkpoint_id;
SELECT tforge.set_checkpoint_policy('run1', max_checkpoints_per_run => 5);
\o

-- ---------------------------------------------------------------- the functions

CREATE TEMP VIEW covered AS
SELECT p.oid, p.oid::regprocedure::text AS sig, p.proname::text AS proname, p.proisstrict, p.proretset,
       p.prokind, p.provariadic <> 0 AS variadic, p.pronargs
  FROM pg_proc p
 WHERE p.pronamespace = 'tforge'::regnamespace AND p.prokind IN ('f', 'a') AND p.pronargs > 0
   AND p.prorettype <> 'trigger'::regtype
   -- internal arguments cannot be passed from SQL (type support functions)
   AND NOT 'internal'::regtype = ANY (p.proargtypes::oid[])
   AND (p.proname !~ '^_'
        OR has_function_privilege('tforge_admin', p.oid, 'EXECUTE')
        OR has_function_privilege('public', p.oid, 'EXECUTE'));

CREATE TEMP VIEW covered_arg AS
SELECT c.*, a.i::int AS argno, a.t::regtype AS typ,
       coalesce(nullif(p.proargnames[a.i], ''), '$' || a.i) AS argname,
       pg_get_function_arg_default(c.oid, a.i::int) AS argdefault
  FROM covered c JOIN pg_proc p ON p.oid = c.oid,
       unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i);

-- ---------------------------------------------------------------- sample arguments

-- By argument name (any function), then by type. An expression as SQL.
CREATE TEMP TABLE sample_by_name (argname text PRIMARY KEY, expr text NOT NULL);
INSERT INTO sample_by_name VALUES
  ('task_type', $$'cpu-light'$$), ('worker_id', $$'w1'$$),
  ('task_id', (SELECT v FROM seed WHERE k = 'task1')),
  ('claim_token', (SELECT v FROM seed WHERE k = 'token')),
  ('task_ids', format('ARRAY[%s, %s]', (SELECT v FROM seed WHERE k = 'task2'), (SELECT v FROM seed WHERE k = 'task3'))),
  ('task_key', $$'k1'$$), ('task_keys', $$'{k1,k2}'$$), ('payload', $$'{"x": 1}'$$),
  ('payloads', $$ARRAY['{}', '{}']::jsonb[]$$), ('priorities', $$'{0,1}'$$),
  ('usage', $$'{"runtime_s": 3}'$$), ('usages', $$ARRAY['{"runtime_s": 3}', '{}']::jsonb[]$$),
  ('error', $$'boom'$$), ('errors', $$'{}'$$),
  ('max_tasks', '2'), ('lease', $$'1 min'$$), ('task_types', $$'{cpu-light}'$$),
  ('sla_multiplier', '2'), ('max_attempts', '3'), ('deadline_coverage', '0.9'), ('coverage', '0.9'),
  ('runtime_s', '4.5'), ('default_tau_s', '5'), ('tau', '7'), ('lambda', '0.5'), ('name', $$'new-name'$$),
  ('strategy', $$'ensemble'$$), ('bound', '100'), ('processors', '2'),
  ('format', $$'json'$$), ('data', $$'{"format": "tforge-profiles", "version": 1, "profiles": []}'$$),
  ('older_than', $$'1 day'$$),
  ('model_id', $$'m1'$$), ('version', $$'1.0.0'$$), ('current_version', $$'1.0.0'$$),
  ('baseline_version', $$'0.9.0'$$), ('framework', $$'pytorch'$$), ('state', $$'staging'$$),
  ('previous_production', $$'keep'$$), ('accuracy', '0.9'), ('min_accuracy', '0.5'),
  ('latencies_ms', $$'{10,20,30}'$$), ('max_latency_ms', '100'),
  ('signal_type', $$'click'$$), ('entity_id', '1'), ('entity_ids', $$'{1,2}'$$),
  ('weight', '1.5'), ('weights', $$'{1.5,2}'$$), ('ats', $$'{2026-01-01 00:00+00,2026-01-01 00:01+00}'$$),
  ('k', '2'), ('half_life', $$'1 hour'$$), ('window_length', $$'1 hour'$$), ('windows', $$'{1 hour}'$$),
  ('device_id', $$'gpu0'$$), ('block_id', (SELECT v FROM seed WHERE k = 'block')),
  ('tensor_id', $$'t2'$$), ('total_memory', '1048576'), ('size', '4096'), ('needed', '4096'),
  ('alignment', '256'), ('compute_capability', $$'8.6'$$),
  ('training_run_id', $$'run1'$$), ('checkpoint_id', quote_literal((SELECT v FROM seed WHERE k = 'ckpt2'))),
  ('parent_id', 'NULL'), ('size_bytes', '100'), ('storage_path', $$'/ckpt/x'$$),
  ('metric_key', $$'loss'$$), ('threshold', '1'), ('epoch', '2'), ('step', '30'),
  ('max_epoch', '5'), ('max_step', '100'), ('metrics', $$'{"loss": 0.4}'$$),
  ('pressure', '0.5'), ('fill', '0.5'), ('quantile', '0.5'),
  ('stats', $$(SELECT tforge.rolling_stats_agg(g) FROM generate_series(1, 10) g)$$);

CREATE TEMP TABLE sample_by_type (typ regtype PRIMARY KEY, expr text NOT NULL);
INSERT INTO sample_by_type VALUES
  ('text', $$'cpu-light'$$), ('cstring', $$'1.0.0'$$),
  ('bigint', '1'), ('integer', '1'), ('smallint', '1'),
  ('double precision', '0.5'), ('real', '0.5'), ('numeric', '0.5'), ('boolean', 'true'),
  ('jsonb', $$'{}'$$), ('json', $$'{}'$$), ('interval', $$'1 hour'$$),
  ('timestamp with time zone', $$'2026-01-01 00:10+00'$$),
  ('tforge.semver', $$'1.0.0'$$), ('tforge.semver_range', $$'[1.0.0,2.0.0)'$$),
  ('tforge.semver_range[]', $$'{"[1.0.0,2.0.0)"}'$$),
  ('tforge.rolling_stats', $$(SELECT tforge.rolling_stats_agg(g) FROM generate_series(1, 10) g)$$),
  ('tforge.decay_score', $$'(1.5,2026-01-01 00:00:00+00,3600)'$$),
  ('tforge.window_counter', $$tforge.window_add(tforge.window_empty(), '2026-01-01 00:05+00', 3)$$),
  ('tforge.resources', $$ROW(1, 1048576, 0, 0)$$),
  ('tforge.resources[]', $$ARRAY[ROW(1, 1048576, 0, 0), ROW(1, 1048576, 0, 0)]::tforge.resources[]$$),
  ('tforge.deployment_state', $$'staging'$$), ('tforge.checkpoint_type', $$'full'$$),
  ('tforge.checkpoint_state', $$'complete'$$), ('tforge.gpu_block_status', $$'allocated'$$),
  ('tforge.aimd_state', $$ROW('normal', 1.0, NULL)$$),
  ('tforge.gpu_pool_stats', $$tforge.gpu_pool_stats('gpu0')$$),
  ('tforge.gpu_device_span', $$'("gpu0","gpu1")'$$),
  ('tforge.gpu_device_span[]', $$'{"(\"gpu0\",\"gpu1\")"}'$$),
  ('tforge.checkpoints', $$(SELECT c FROM tforge.checkpoints c ORDER BY step LIMIT 1)$$),
  ('tforge.checkpoint_policies', $$(SELECT p FROM tforge.checkpoint_policies p LIMIT 1)$$),
  ('regclass', $$'tforge.tasks'$$),
  ('integer[]', $$'{1,3}'$$), ('double precision[]', $$'{10,20,30}'$$), ('bigint[]', $$'{1,2}'$$),
  ('text[]', $$'{a}'$$), ('timestamp with time zone[]', $$'{2026-01-01 00:00+00}'$$),
  ('interval[]', $$'{1 hour}'$$);

-- Where name and type do not give a valid call: per function (its name or
-- its full signature) and argument.
CREATE TEMP TABLE sample_arg (fn text, argname text, expr text NOT NULL, PRIMARY KEY (fn, argname));
INSERT INTO sample_arg VALUES
  ('define_task_type', 'name', $$'new-type'$$),
  ('set_tau', 'task_type', $$'cpu-heavy'$$),
  ('register_model', 'version', $$'2.0.0'$$),
  ('transition_model', 'version', $$'1.0.0'$$),
  ('get_model_version', 'version', $$'1.0.0'$$),
  ('complete_task', 'claim_token', (SELECT v FROM seed WHERE k = 'token')),
  ('_import_version', 'version', $$'1'$$),
  ('_import_csv_row', 'r', $$'{1,k1}'$$), ('_import_csv_row', 'fields', '2'), ('_import_csv_row', 'line', '2'),
  ('_lock_checkpoint_run', 'what', $$'gc'$$),
  ('_refuse_read_only', 'what', $$'tforge.x()'$$),
  ('_gpu_stats', 'total', '1048576'),
  ('_gpu_block_held', 'tensor_id', $$'t1'$$),
  ('_gpu_block_placed', 'offset_bytes', '0'), ('_gpu_block_placed', 'size_bytes', '4096'),
  ('_setting', 'name', $$'tforge.ema_lambda'$$),
  ('_known_signal_type', 'signal_type', $$'click'$$),
  ('_trending_limit', 'k', '3'),
  ('_kernel_ring_add', 'ring', 'NULL'), ('_kernel_ring_add', 'requested_s', '5'),
  ('gpu_add_device', 'device_id', $$'gpu9'$$),
  ('gpu_allocate', 'size', '4096'),
  ('gpu_evict', 'needed', '0'),
  ('red_drop_probability', 'fill', '0.7'), ('red_drop_probability', 'min_th', '0.6'),
  ('red_drop_probability', 'max_th', '1.0'), ('red_drop_probability', 'max_p', '0.3'),
  ('red_should_drop', 'fill', '0.7'), ('red_should_drop', 'min_th', '0.6'), ('red_should_drop', 'max_th', '1.0'),
  ('red_should_drop', 'max_p', '0.3'), ('red_should_drop', 'draw', '0.5'),
  ('aimd_step', 'state', $$ROW('normal', 1.0)$$), ('aimd_step', 'pressure', '0.5'),
  ('aimd_step', 'enter', '0.7'), ('aimd_step', 'exit', '0.55'), ('aimd_step', 'severe', '0.9'),
  ('aimd_step', 'decrease', '0.5'), ('aimd_step', 'increase', '0.05'), ('aimd_step', 'min_scale', '0.1'),
  ('should_defragment', 'stats', $$tforge.gpu_pool_stats('gpu0')$$),
  ('should_defragment', 'frag_threshold', '0.3'), ('should_defragment', 'min_block_size', '4096'),
  ('window_agg_done', 'state', $$tforge.window_add(tforge.window_empty(), '2026-01-01 00:05+00', 3)$$),
  ('window_agg_step', 'state', $$tforge.window_add(tforge.window_empty(), '2026-01-01 00:05+00', 3)$$),
  ('decay_score_in', '$1', $$'(1.5,2026-01-01 00:00:00+00,3600)'$$),
  ('rolling_stats_in', '$1', $$(SELECT tforge.rolling_stats_agg(g) FROM generate_series(1, 10) g)::text$$),
  ('window_counter_in', '$1', $$tforge.window_add(tforge.window_empty(), '2026-01-01 00:05+00', 3)::text$$),
  ('claim_tasks', 'gpu_device', 'NULL'),
  ('fail_tasks', 'errors', $$'{a,b}'$$),
  ('gpu_remove_device', 'device_id', $$'gpu1'$$),
  ('estimate_from', 'scores', 'NULL'), ('estimate_all', 'scores', 'NULL'),
  ('rescore', 'scores', 'NULL'), ('rescore', 'actual', '4'),
  ('create_checkpoint', 'checkpoint_type', $$'full'$$),
  ('delete_checkpoint', 'checkpoint_id', quote_literal((SELECT v FROM seed WHERE k = 'ckpt2'))),
  ('find_checkpoints_by_metric', 'threshold', '1'),
  ('decay_agg', 'half_life', $$'1 hour'$$), ('decay_agg_trans', '$4', $$'1 hour'$$),
  ('gpu_device_span', '$2', $$'gpu1'$$),
  ('gpu_device_span', '$3', $$'[)'$$), ('semver_range', '$2', $$'2.0.0'$$), ('semver_range', '$3', $$'[)'$$),
  ('semver_range_diff', '$2', $$'0.9.0'$$),
  ('_check_seconds', 'value', '5'), ('_check_seconds', 'what', $$'tau'$$),
  ('_csv_field', 'value', $$'a'$$),
  ('rolling_stats_quantile', '$2', '0.5'),
  ('governor_override', 'pressure', '0.5'),
  ('distribute', 'shard_count', '4');

-- Functions whose sample call cannot succeed here, and the SQLSTATE it gets
-- instead; NULL arguments are then judged against that.
CREATE TEMP TABLE sample_state (fn text PRIMARY KEY, sqlstate text NOT NULL, why text NOT NULL);
INSERT INTO sample_state VALUES
  ('_checkpoint_missing', '42704', 'raises 42704 for the checkpoint it is given: that is its job'),
  ('distribute', '55000', 'needs Citus, not installed in the test database');

-- The sample value of one argument, as SQL cast to its type.
CREATE FUNCTION pg_temp.sample(c_sig text, c_proname text, c_argname text, c_typ regtype) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT '(' || coalesce((SELECT expr FROM sample_arg WHERE fn IN (c_sig, c_proname) AND argname = c_argname
                           ORDER BY fn = c_sig DESC LIMIT 1),
                         (SELECT expr FROM sample_by_name WHERE argname = c_argname),
                         (SELECT expr FROM sample_by_type WHERE typ = c_typ), 'NULL')
         || ')::' || CASE WHEN c_typ::text LIKE 'any%' THEN 'text' ELSE c_typ::text END
$$;

-- ---------------------------------------------------------------- NULL: allowed, or another code

-- Arguments whose NULL means something documented (COMMENT ON the function
-- says what): the call succeeds. Arguments declared DEFAULT NULL are allowed
-- by their declaration and need no row here.
CREATE TEMP TABLE null_allowed (fn text, argname text, why text NOT NULL, PRIMARY KEY (fn, argname));
INSERT INTO null_allowed VALUES
  -- aggregates skip rows whose input is NULL (SQL's rule for aggregates)
  ('decay_agg', 'weight', 'aggregate: a NULL row is skipped'),
  ('decay_agg', 'at', 'aggregate: a NULL row is skipped'),
  ('window_agg', 'at', 'aggregate: a NULL row is skipped'),
  ('window_agg', 'n', 'aggregate: a NULL row is skipped'),
  ('rolling_stats_agg', '$1', 'aggregate: a NULL row is skipped'),
  ('window_union', '$1', 'aggregate: a NULL row is skipped'),
  ('max', '$1', 'aggregate: a NULL row is skipped'),
  ('min', '$1', 'aggregate: a NULL row is skipped'),
  -- aggregate transition functions: a NULL state is the empty state, a NULL row adds nothing
  ('decay_agg_trans', '$1', 'aggregate state: NULL is the empty state'),
  ('decay_agg_trans', '$2', 'aggregate row: NULL adds nothing'),
  ('decay_agg_trans', '$3', 'aggregate row: NULL adds nothing'),
  ('window_agg_step', 'state', 'aggregate state: NULL is the empty state'),
  ('window_agg_step', 'at', 'aggregate row: NULL adds nothing'),
  ('window_agg_step', 'n', 'aggregate row: NULL adds nothing'),
  ('window_agg_merge', 'a', 'aggregate combine: NULL is the empty state'),
  ('window_agg_merge', 'b', 'aggregate combine: NULL is the empty state'),
  ('rolling_stats_add', 'stats', 'aggregate state: NULL is the empty state'),
  ('rolling_stats_add', 'sample', 'aggregate row: NULL adds nothing'),
  ('rolling_stats_merge', 'a', 'aggregate combine: NULL is the empty state'),
  ('rolling_stats_merge', 'b', 'aggregate combine: NULL is the empty state'),
  -- range constructors (core's range_constructor): a NULL bound is unbounded
  ('semver_range', '$1', 'range constructor: NULL lower bound is unbounded'),
  ('semver_range', '$2', 'range constructor: NULL upper bound is unbounded'),
  ('gpu_device_span', '$1', 'range constructor: NULL lower bound is unbounded'),
  ('gpu_device_span', '$2', 'range constructor: NULL upper bound is unbounded'),
  -- a resources field or argument that is NULL means "no requirement" / "unlimited" (DESIGN 1)
  ('resources_fit', 'requirement', 'NULL requirement: needs nothing'),
  ('resources_fit', 'capacity', 'NULL capacity: unlimited'),
  ('_profile_resources', 'runtime', 'a type without that profile column'),
  ('_profile_resources', 'cpu', 'a type without that profile column'),
  ('_profile_resources', 'memory', 'a type without that profile column'),
  ('_profile_resources', 'gpu_memory', 'a type without that profile column'),
  -- learned values a completion did not report
  ('_profile_record', 'task_key', 'NULL: the type''s profile only'),
  ('_profile_record', 'runtime_s', 'not reported by the completion'),
  ('_profile_record', 'cpu_s', 'not reported by the completion'),
  ('_profile_record', 'memory_bytes', 'not reported by the completion'),
  ('_profile_record', 'gpu_memory_bytes', 'not reported by the completion'),
  ('_profile_record', 'bound', 'NULL: no requested bound'),
  ('_kernel_ring_add', 'ring', 'NULL: an empty ring'),
  ('_kernel_ring_add', 'requested_s', 'NULL: no requested bound'),
  ('_kernel_ring_add', 'processors', 'NULL: processors not declared'),
  ('_profile_for', 'task_key', 'NULL: the type''s profile'),
  ('rescore', 'scores', 'NULL: a fresh scoreboard'),
  -- read functions where NULL means "none" or "all"
  ('fail_task', 'error', 'NULL: no error text'),
  ('fail_tasks', 'errors', 'NULL: no error texts'),
  ('model_meets_sla', 'max_latency_ms', 'NULL: no latency requirement'),
  ('model_meets_sla', 'min_accuracy', 'NULL: no accuracy requirement'),
  ('set_checkpoint_policy', 'max_checkpoints_per_run', 'NULL: no such rule (COMMENT)'),
  ('set_checkpoint_policy', 'max_age', 'NULL: no such rule (COMMENT)'),
  ('set_checkpoint_policy', 'metric_key', 'NULL: no such rule (COMMENT)'),
  ('set_checkpoint_policy', 'keep_every_n_steps', 'NULL: no such rule (COMMENT)'),
  ('set_checkpoint_policy', 'training_run_id', 'NULL: the default policy (COMMENT)'),
  ('checkpoint_policy', 'training_run_id', 'NULL: the default policy'),
  ('_check_seconds', 'what', 'NULL: the value is named "value"'),
  ('_refuse_read_only', 'what', 'internal: names the refused call'),
  ('_gpu_block_held', 'tensor_id', 'CHECK helper: a block without tensor'),
  ('_lock_checkpoint_run', 'what', 'internal: names the locking operation'),
  ('_import_csv_row', 'line', 'internal: the record number, only for the error message'),
  ('_import_csv_row', 'fields', 'internal: import_profiles passes the header''s field count'),
  ('_csv_field', 'value', 'NULL: an empty CSV field'),
  ('_iso_utc', 'ts', 'NULL: a JSON or CSV null'),
  ('_gpu_block_held', 'status', 'CHECK helper: NULL columns are judged by their NOT NULL constraints'),
  ('_gpu_block_held', 'alignment', 'CHECK helper: NULL columns are judged by their NOT NULL constraints'),
  ('_gpu_block_placed', 'offset_bytes', 'CHECK helper: NULL columns are judged by their NOT NULL constraints'),
  ('_gpu_block_placed', 'size_bytes', 'CHECK helper: NULL columns are judged by their NOT NULL constraints'),
  ('_gpu_block_placed', 'alignment', 'CHECK helper: NULL columns are judged by their NOT NULL constraints'),
  ('_gpu_stats', 'device_id', 'internal view helper: statistics of no device'),
  ('_gpu_stats', 'total', 'internal view helper: statistics of no device'),
  ('_kernel_ring_add', 'runtime_s', 'a runtime not in (0, 1e18] changes nothing (COMMENT)'),
  ('_profile_for', 'task_type', 'internal: NULL when there is no profile (COMMENT)'),
  ('_trending_limit', 'k', 'trending''s k: NULL is LIMIT NULL, no limit'),
  ('trending', 'k', 'NULL: no limit (LIMIT NULL)'),
  ('estimate_from', 'stats', 'no profile: no estimate (the fallback chain passes NULL)'),
  ('estimate_all', 'stats', 'no profile: no estimate (the fallback chain passes NULL)'),
  ('rescore', 'stats', 'no profile: the scoreboard unchanged'),
  ('rescore', 'actual', 'no runtime: the scoreboard unchanged'),
  ('governor_override', 'pressure', 'NULL goes back to measuring (COMMENT)'),
  ('fail_task', 'retry', 'NULL: retry, the default (coalesce(retry, true) since 0.1.0)'),
  ('fail_tasks', 'retry', 'NULL: retry, the default, as fail_task'),
  ('aimd_step', 'state', 'a NULL state is (Normal, 1) (COMMENT)'),
  ('record_validation', 'errors', 'NULL: no errors'),
  ('register_model', 'input_shape', 'NULL: shape unknown, stored as {}'),
  ('register_model', 'output_shape', 'NULL: shape unknown, stored as {}'),
  ('submit_task', 'payload', 'NULL: the default payload {} (since 0.1.0)'),
  ('submit_task', 'priority', 'NULL: the default priority 0 (since 0.1.0)'),
  -- Left as they are (see the report of branch nullcodes): SQL read
  -- functions, inlined by the planner, that answer a NULL with the empty
  -- answer (score 0, count 0, no rows) instead of 22004. Refusing would need
  -- a non-inlinable check in each; make them refuse and drop these rows.
  ('_known_signal_type', 'signal_type', 'GAP: NULL passes through, the read functions then find nothing'),
  ('signal_score', 'entity_id', 'GAP: inlined read function, answers 0'),
  ('signal_score', 'signal_type', 'GAP: inlined read function, answers 0'),
  ('signal_score', 'at', 'GAP: inlined read function, answers 0'),
  ('signal_count', 'entity_id', 'GAP: inlined read function, answers 0'),
  ('signal_count', 'signal_type', 'GAP: inlined read function, answers 0'),
  ('signal_count', 'window_length', 'GAP: inlined read function, answers NULL'),
  ('signal_count', 'at', 'GAP: inlined read function, answers NULL'),
  ('signal_velocity', 'entity_id', 'GAP: inlined read function, answers 0'),
  ('signal_velocity', 'signal_type', 'GAP: inlined read function, answers 0'),
  ('signal_velocity', 'window_length', 'GAP: inlined read function, answers NULL'),
  ('signal_velocity', 'at', 'GAP: inlined read function, answers NULL'),
  ('signal_windows', 'entity_id', 'GAP: inlined read function, answers the empty counts'),
  ('signal_windows', 'signal_type', 'GAP: inlined read function, answers no rows'),
  ('signal_windows', 'at', 'GAP: inlined read function, answers NULL counts'),
  ('trending', 'signal_type', 'GAP: inlined read function, answers no rows'),
  ('trending', 'at', 'GAP: inlined read function, answers NULL scores');

-- Arguments whose NULL is refused with a code other than 22004, and why.
CREATE TEMP TABLE null_other (fn text, argname text, sqlstate text NOT NULL, why text NOT NULL, PRIMARY KEY (fn, argname));
INSERT INTO null_other VALUES
  ('_import_version', 'version', '22P02', 'a profile document without a version is malformed'),
  ('_import_csv_row', 'r', '22P02', 'a CSV record that is missing is a malformed document'),
  ('semver_range', '$3', '22000', 'core''s range constructor refuses NULL flags with 22000'),
  ('gpu_device_span', '$3', '22000', 'core''s range constructor refuses NULL flags with 22000');

-- ---------------------------------------------------------------- the calls

-- The statement for a call: whether the result is NULL (no rows for a set).
CREATE FUNCTION pg_temp.statement(c_oid oid, args text[]) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN p.proretset
              THEN format('SELECT count(*) = 0 FROM (SELECT %s(%s)) s', call, list)
              ELSE format('SELECT (%s(%s)) IS NULL', call, list) END
    FROM pg_proc p,
         LATERAL (SELECT format('%I.%I', p.pronamespace::regnamespace, p.proname) AS call,
                         array_to_string(CASE WHEN p.provariadic <> 0
                           THEN args[1:cardinality(args) - 1] || ('VARIADIC ' || args[cardinality(args)])
                           ELSE args END, ', ') AS list) x
   WHERE p.oid = c_oid
$$;

-- Run a statement in a subtransaction that is always undone.
CREATE FUNCTION pg_temp.try(stmt text, OUT state text, OUT message text, OUT is_null boolean) LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE stmt INTO is_null;
    RAISE SQLSTATE 'TAPOK' USING MESSAGE = coalesce(is_null::text, 'null');
  EXCEPTION WHEN OTHERS THEN
    state := SQLSTATE;
    message := SQLERRM;
  END;
  IF state = 'TAPOK' THEN
    state := '00000';
    is_null := message::boolean;
    message := NULL;
  ELSE
    is_null := NULL;
  END IF;
END $$;

CREATE TEMP TABLE call (oid oid, sig text, proname text, argno int, argname text, typ regtype, kind text,
                        value text, stmt text, expected text, why text, state text, message text, is_null boolean,
                        sample_state text);

-- Baseline (argno 0) and NULL in each position.
INSERT INTO call (oid, sig, proname, argno, argname, typ, kind, stmt)
SELECT c.oid, c.sig, c.proname, 0, NULL, NULL, 'sample',
       pg_temp.statement(c.oid, array_agg(pg_temp.sample(c.sig, c.proname, c.argname, c.typ) ORDER BY c.argno))
  FROM covered_arg c GROUP BY c.oid, c.sig, c.proname;
INSERT INTO call (oid, sig, proname, argno, argname, typ, kind, value, stmt, expected, why)
SELECT a.oid, a.sig, a.proname, a.argno, a.argname, a.typ, 'null', 'NULL',
       pg_temp.statement(a.oid, array_agg(CASE WHEN b.argno = a.argno THEN 'NULL::' || b.typ::text
                                               ELSE pg_temp.sample(b.sig, b.proname, b.argname, b.typ) END
                                          ORDER BY b.argno)),
       CASE WHEN a.proisstrict THEN 'strict'
            WHEN o.sqlstate IS NOT NULL THEN o.sqlstate
            WHEN n.why IS NOT NULL OR a.argdefault ~ '^NULL(::|$)' THEN 'allowed'
            ELSE '22004' END,
       coalesce(o.why, n.why, CASE WHEN a.argdefault ~ '^NULL(::|$)' THEN 'DEFAULT NULL' END)
  FROM covered_arg a JOIN covered_arg b ON b.oid = a.oid
  LEFT JOIN null_allowed n ON n.fn IN (a.sig, a.proname) AND n.argname = a.argname
  LEFT JOIN null_other o ON o.fn IN (a.sig, a.proname) AND o.argname = a.argname
 GROUP BY a.oid, a.sig, a.proname, a.argno, a.argname, a.typ, a.proisstrict, a.argdefault, o.sqlstate, o.why, n.why;

-- Out-of-range numbers and unknown names in each position.
CREATE TEMP TABLE bad_value (typ regtype, value text);
INSERT INTO bad_value VALUES
  ('bigint', '-1'), ('bigint', '9223372036854775807'), ('bigint', '(-9223372036854775807 - 1)'),
  ('integer', '-1'), ('integer', '2147483647'), ('integer', '(-2147483647 - 1)'),
  ('smallint', '-1'), ('smallint', '32767'),
  ('double precision', '-1'), ('double precision', $$'NaN'$$), ('double precision', $$'Infinity'$$),
  ('double precision', $$'-Infinity'$$), ('double precision', '1e308'), ('double precision', '4.9e-324'),
  ('interval', $$'-1 second'$$), ('interval', $$'0'$$), ('interval', $$'178000000 years'$$),
  ('interval', $$'-178000000 years'$$),
  ('timestamp with time zone', $$'infinity'$$), ('timestamp with time zone', $$'-infinity'$$),
  ('text', $$'no-such-name'$$), ('text', $$''$$);
INSERT INTO call (oid, sig, proname, argno, argname, typ, kind, value, stmt)
SELECT a.oid, a.sig, a.proname, a.argno, a.argname, a.typ, CASE WHEN a.typ = 'text'::regtype THEN 'name' ELSE 'range' END,
       v.value,
       pg_temp.statement(a.oid, array_agg(CASE WHEN b.argno = a.argno THEN '(' || v.value || ')::' || b.typ::text
                                               ELSE pg_temp.sample(b.sig, b.proname, b.argname, b.typ) END
                                          ORDER BY b.argno))
  FROM covered_arg a JOIN bad_value v ON v.typ = a.typ JOIN covered_arg b ON b.oid = a.oid
 GROUP BY a.oid, a.sig, a.proname, a.argno, a.argname, a.typ, v.value;

UPDATE call c SET sample_state = coalesce((SELECT s.sqlstate FROM sample_state s WHERE s.fn IN (c.sig, c.proname)), '00000');

DO $$
DECLARE
  r record;
  t record;
BEGIN
  FOR r IN SELECT ctid, stmt FROM call LOOP
    t := pg_temp.try(r.stmt);
    UPDATE call SET state = t.state, message = t.message, is_null = t.is_null WHERE ctid = r.ctid;
  END LOOP;
END
$$;

-- ---------------------------------------------------------------- results

SELECT diag(format('%s functions, %s arguments: %s NULL calls (%s refused with 22004, %s allowed, %s STRICT, %s with another code), %s out-of-range and %s unknown-name calls',
                   (SELECT count(DISTINCT oid) FROM call), (SELECT count(*) FROM call WHERE kind = 'null'),
                   (SELECT count(*) FROM call WHERE kind = 'null'),
                   (SELECT count(*) FROM call WHERE kind = 'null' AND expected = '22004'),
                   (SELECT count(*) FROM call WHERE kind = 'null' AND expected = 'allowed'),
                   (SELECT count(*) FROM call WHERE kind = 'null' AND expected = 'strict'),
                   (SELECT count(*) FROM call WHERE kind = 'null' AND expected NOT IN ('22004', 'allowed', 'strict')),
                   (SELECT count(*) FROM call WHERE kind = 'range'), (SELECT count(*) FROM call WHERE kind = 'name')));

SELECT is(ARRAY(SELECT sig || ': ' || state || ' ' || message || ' -- ' || stmt FROM call
                 WHERE kind = 'sample' AND state <> sample_state ORDER BY 1),
          '{}'::text[],
          'every function''s sample call succeeds (else add a sample_arg row in test/t/argument_errors.sql)');

-- One test per function: NULL in each argument.
SELECT is(ARRAY(SELECT format('%s (%s): %s, expected %s%s', c.argname, c.argno,
                              CASE WHEN c.state = '00000' THEN 'returned ' || CASE WHEN c.is_null THEN 'NULL' ELSE 'a value' END
                                   ELSE c.state || ' ' || c.message END,
                              CASE c.expected WHEN 'strict' THEN 'NULL (STRICT)' WHEN 'allowed' THEN 'success' ELSE c.expected END,
                              CASE WHEN c.why IS NOT NULL THEN ' (' || c.why || ')' ELSE '' END)
                  FROM call c
                 WHERE c.oid = f.oid AND c.kind = 'null'
                   AND NOT CASE c.expected
                             WHEN 'strict' THEN c.state = '00000' AND c.is_null
                             WHEN 'allowed' THEN c.state = c.sample_state
                             ELSE c.state = c.expected END
                 ORDER BY c.argno),
          '{}'::text[],
          format('%s: NULL in each of its %s arguments', f.sig, f.pronargs))
  FROM covered f
 WHERE EXISTS (SELECT 1 FROM call s WHERE s.oid = f.oid AND s.kind = 'sample' AND s.state = s.sample_state)
 ORDER BY f.sig;

-- Every refusal names the argument (message style: the argument's name in
-- the message, lower case start, no final period).
SELECT is(ARRAY(SELECT format('%s %s: %s', sig, argname, message) FROM call
                 WHERE kind = 'null' AND expected = '22004' AND state = '22004'
                   -- an argument "what" names the value for the message
                   AND NOT EXISTS (SELECT 1 FROM covered_arg w WHERE w.oid = call.oid AND w.argname = 'what')
                   AND argname !~ '^[$]'
                   AND (position(replace(argname, '_', ' ') IN message) = 0 AND position(argname IN message) = 0
                        OR message ~ '\.$' OR message ~ '^[A-Z][a-z]')
                 ORDER BY 1),
          '{}'::text[], 'every 22004 refusal names its argument, starts lower case, ends without a period');

-- Out-of-range numbers and unknown names: success or one of DESIGN.md's
-- codes (22023 or 22003 out of range, 22P02 malformed text, 22004 NULL,
-- 42704 unknown object, 55000 wrong state, 53000 admission refused); never
-- XX000, a constraint's 23xxx, a 42xxx or a 22008 leaking from a statement
-- inside the function. Where core's own answer is the documented one:
CREATE TEMP TABLE bad_value_other (fn text, argname text, sqlstate text, why text NOT NULL, PRIMARY KEY (fn, argname, sqlstate));
INSERT INTO bad_value_other VALUES
  ('_setting', 'name', '42501', 'only tforge.* settings may be read (privileges.sql pins it)'),
  ('semver_range', '$3', '42601', 'core''s range constructor: invalid range bound flags'),
  ('gpu_device_span', '$3', '42601', 'core''s range constructor: invalid range bound flags'),
  ('gpu_device_span', '$1', '22000', 'core''s range constructor: lower bound above upper bound'),
  ('gpu_device_span', '$2', '22000', 'core''s range constructor: lower bound above upper bound'),
  ('semver_range', '$1', '22000', 'core''s range constructor: lower bound above upper bound'),
  ('semver_range', '$2', '22000', 'core''s range constructor: lower bound above upper bound');
SELECT is(ARRAY(SELECT format('%s %s = %s: %s %s', sig, argname, value, state, message) FROM call c
                 WHERE kind IN ('range', 'name')
                   AND state NOT IN ('00000', '22023', '22003', '22P02', '22004', '42704', '55000', '53000')
                   AND NOT EXISTS (SELECT 1 FROM bad_value_other o
                                    WHERE o.fn IN (c.sig, c.proname) AND o.argname = c.argname AND o.sqlstate = c.state)
                 ORDER BY 1),
          '{}'::text[],
          'out-of-range numbers and unknown names: success or a code DESIGN.md names');

-- An unknown task type, model, signal type, device or checkpoint is 42704
-- (DESIGN.md), except where the function creates it or documents another
-- answer for it:
CREATE TEMP TABLE unknown_name_other (fn text, argname text, why text NOT NULL, PRIMARY KEY (fn, argname));
INSERT INTO unknown_name_other VALUES
  ('register_model', 'model_id', 'creates the model'),
  ('gpu_add_device', 'device_id', 'creates the device'),
  ('get_block', 'device_id', 'NULL when the device has no such block (COMMENT)'),
  ('eviction_candidates', 'device_id', 'no cached blocks: no rows'),
  ('_gpu_device_span', 'device_id', 'internal: the span of a device id, known or not'),
  ('_gpu_stats', 'device_id', 'internal view helper: statistics of the rows given'),
  ('_profile_for', 'task_type', 'internal: NULL when there is no profile (COMMENT)');
SELECT is(ARRAY(SELECT format('%s %s: %s %s', sig, argname, state, message) FROM call c
                 WHERE kind = 'name' AND value = $$'no-such-name'$$
                   AND argname IN ('task_type', 'model_id', 'signal_type', 'device_id', 'checkpoint_id')
                   AND state <> '42704'
                   AND NOT EXISTS (SELECT 1 FROM unknown_name_other o WHERE o.fn IN (c.sig, c.proname) AND o.argname = c.argname)
                 ORDER BY 1),
          '{}'::text[],
          format('an unknown task type, model, signal type, device or checkpoint is 42704 (%s calls)',
                 (SELECT count(*) FROM call WHERE kind = 'name' AND value = $$'no-such-name'$$
                     AND argname IN ('task_type', 'model_id', 'signal_type', 'device_id', 'checkpoint_id'))));

-- Every row of the lists above names an argument of a covered function, so
-- a renamed or dropped function cannot leave a stale exception behind.
SELECT is(ARRAY(SELECT l.list || ': ' || l.fn || ' ' || l.argname
                  FROM (SELECT 'null_allowed' AS list, fn, argname FROM null_allowed
                        UNION ALL SELECT 'null_other', fn, argname FROM null_other
                        UNION ALL SELECT 'sample_arg', fn, argname FROM sample_arg
                        UNION ALL SELECT 'bad_value_other', fn, argname FROM bad_value_other
                        UNION ALL SELECT 'unknown_name_other', fn, argname FROM unknown_name_other) l
                 WHERE NOT EXISTS (SELECT 1 FROM covered_arg a WHERE l.fn IN (a.sig, a.proname) AND a.argname = l.argname)
                 ORDER BY 1),
          '{}'::text[], 'every exception listed in this suite names an argument of a covered function');
SELECT is(ARRAY(SELECT fn FROM sample_state s WHERE NOT EXISTS (SELECT 1 FROM covered c WHERE s.fn IN (c.sig, c.proname))),
          '{}'::text[], 'every sample_state row names a covered function');

SELECT * FROM finish();
ROLLBACK;
