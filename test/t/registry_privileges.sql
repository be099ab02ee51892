-- Registry privileges per role: tforge_reader reads, tforge_worker also
-- records validations, tforge_admin registers and moves versions, and a
-- role with none of them can use the pure functions only.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(36);
-- tforge's operators (semver =) without schema-qualifying each one.
SET search_path = public, tforge;

CREATE ROLE reg_nobody NOLOGIN;

SET ROLE tforge_admin;
SELECT lives_ok($$SELECT tforge.register_model('priv', '1.0.0', 'onnx', '{1,4}', '{1,2}')$$, 'admin registers');
SELECT lives_ok($$SELECT tforge.register_model('priv', '1.1.0', 'onnx')$$, 'admin registers another version');
SELECT lives_ok($$SELECT tforge.transition_model('priv', '1.0.0', 'validating')$$, 'admin moves a version');
SELECT lives_ok($$UPDATE tforge.model_versions SET state = 'staging' WHERE model_id = 'priv' AND version = '1.0.0'$$,
                'admin updates the table directly (still through the lifecycle trigger)');
SELECT lives_ok($$SELECT tforge.record_validation('priv', '1.0.0', '{1,2,3}', 0.9)$$, 'admin records a validation');
RESET ROLE;

SET ROLE tforge_worker;
SELECT lives_ok($$SELECT tforge.record_validation('priv', '1.0.0', '{4,5,6}', 0.8)$$, 'worker records a validation');
SELECT throws_ok($$SELECT tforge.register_model('priv', '9.0.0', 'onnx')$$, '42501',
                 'permission denied for function register_model', 'worker cannot register');
SELECT throws_ok($$SELECT tforge.transition_model('priv', '1.0.0', 'canary')$$, '42501',
                 'permission denied for function transition_model', 'worker cannot move a version');
SELECT throws_ok($$UPDATE tforge.model_versions SET state = 'canary' WHERE model_id = 'priv'$$, '42501',
                 'permission denied for table model_versions', 'worker cannot update versions directly');
SELECT throws_ok($$DELETE FROM tforge.model_validations$$, '42501',
                 'permission denied for table model_validations', 'worker cannot delete validations');
SELECT throws_ok($$INSERT INTO tforge.model_state_history (model_id, version, to_state) VALUES ('priv', '1.0.0', 'archived')$$, '42501',
                 'permission denied for table model_state_history', 'worker cannot forge history');
SELECT is(tforge.latest_version('priv')::text, '1.1.0', 'worker reads through the lookup functions');
RESET ROLE;

SET ROLE tforge_reader;
SELECT is((SELECT count(*) FROM tforge.models WHERE model_id = 'priv'), 1::bigint, 'reader reads models');
SELECT is((SELECT count(*) FROM tforge.model_versions WHERE model_id = 'priv'), 2::bigint, 'reader reads versions');
SELECT is((SELECT count(*) FROM tforge.model_validations WHERE model_id = 'priv'), 2::bigint, 'reader reads validations');
-- registration of 1.0.0 and 1.1.0, then validating and staging for 1.0.0
SELECT is((SELECT count(*) FROM tforge.model_state_history WHERE model_id = 'priv'), 4::bigint, 'reader reads the history');
SELECT is((SELECT count(*) FROM tforge.model_summary WHERE model_id = 'priv'), 1::bigint, 'reader reads model_summary');
SELECT is((SELECT latency_p99_ms FROM tforge.latest_validations WHERE model_id = 'priv'), 6::float8, 'reader reads latest_validations');
SELECT is(tforge.latest_version('priv')::text, '1.1.0', 'reader calls latest_version');
SELECT is(ARRAY(SELECT tforge.list_versions('priv')::text), ARRAY['1.0.0', '1.1.0'], 'reader calls list_versions');
SELECT is(tforge.select_best_model('priv'), NULL, 'reader calls select_best_model');
SELECT is(tforge.model_count() >= 1, true, 'reader calls model_count');
SELECT is((tforge.get_validation('priv', '1.0.0')).accuracy_score, 0.8::float8, 'reader calls get_validation');
SELECT throws_ok($$SELECT tforge.register_model('priv', '9.0.0', 'onnx')$$, '42501',
                 'permission denied for function register_model', 'reader cannot register');
SELECT throws_ok($$SELECT tforge.transition_model('priv', '1.0.0', 'canary')$$, '42501',
                 'permission denied for function transition_model', 'reader cannot move a version');
SELECT throws_ok($$SELECT tforge.record_validation('priv', '1.0.0', '{1}', 0.9)$$, '42501',
                 'permission denied for function record_validation', 'reader cannot record a validation');
SELECT throws_ok($$UPDATE tforge.model_versions SET tags = '{"x": "y"}'$$, '42501',
                 'permission denied for table model_versions', 'reader cannot update versions');
SELECT throws_ok($$INSERT INTO tforge.model_validations (model_id, version, passed, latency_p50_ms, latency_p99_ms, accuracy_score, sample_count)
                   VALUES ('priv', '1.0.0', true, 1, 1, 1, 1)$$, '42501',
                 'permission denied for table model_validations', 'reader cannot insert validations');
RESET ROLE;

SET ROLE reg_nobody;
SELECT is(tforge.can_transition('canary', 'production'), true, 'anybody calls can_transition');
SELECT is(tforge.shape_compatibility('{1}', '{2}', '{1}', '{2}'), 1::float8, 'anybody calls shape_compatibility');
SELECT is(tforge.meets_sla(1, 1, 1, 1), true, 'anybody calls meets_sla');
SELECT is(tforge.rollback_priority(1, 1, 0, 1, 1, 0), 0::float8, 'anybody calls rollback_priority');
SELECT throws_ok($$SELECT tforge.latest_version('priv')$$, '42501',
                 'permission denied for table models', 'a role without tforge''s roles cannot read the registry');
SELECT throws_ok($$SELECT tforge.register_model('priv', '9.0.0', 'onnx')$$, '42501',
                 'permission denied for function register_model', 'nor register');
SELECT throws_ok($$SELECT tforge.record_validation('priv', '1.0.0', '{1}', 0.9)$$, '42501',
                 'permission denied for function record_validation', 'nor record validations');
RESET ROLE;

-- The admin's, worker's and reader's rows above, by who wrote them.
SELECT is(ARRAY(SELECT validated_by::text FROM tforge.model_validations WHERE model_id = 'priv' ORDER BY validation_id),
          ARRAY['tforge_admin', 'tforge_worker'], 'validations record who ran them');

SELECT * FROM finish();
ROLLBACK;
