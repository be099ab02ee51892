-- Arguments a function must refuse itself, with the SQLSTATE DESIGN.md
-- names, instead of letting them reach a table constraint (issue 13):
-- a NULL is 22004 (not 23502), a value out of range 22023 (not 23514), an
-- unknown object 42704 (not 23503). The hostile sweep flags any such
-- constraint error (test/lib/hostile-sweep.sql, sweep.constraint_leak).
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
\set SHOW_CONTEXT never

-- set_tau: a NULL task type was 23502 (task_tau.task_type NOT NULL).
SELECT tforge.set_tau(NULL, 1.5);
:sqlstate
SELECT tforge.set_tau(NULL, NULL);
:sqlstate
SELECT tforge.set_tau('cpu-light', NULL);
:sqlstate
SELECT tforge.set_tau('no-such-type', 1.5);
:sqlstate
-- The bound, (0, 1e9] seconds, at both ends and just outside them.
SELECT tforge.set_tau('cpu-light', 0);
:sqlstate
SELECT tforge.set_tau('cpu-light', '-0');
:sqlstate
SELECT tforge.set_tau('cpu-light', 5e-324);
SELECT tforge.set_tau('cpu-light', 1e9);
SELECT tforge.set_tau('cpu-light', 1000000000.0000001);
:sqlstate
SELECT tforge.set_tau('cpu-light', 'NaN');
:sqlstate
SELECT tforge.set_tau('cpu-light', 'Infinity');
:sqlstate
SELECT tforge.define_task_type('slow', 1e9 * 2);
:sqlstate
SELECT tforge.define_task_type('slow', NULL);
:sqlstate
-- get_tau and reset_tau keep NULL in, NULL or all out.
SELECT tforge.get_tau(NULL) IS NULL AS get_tau_null;

-- One definition of the bound: the tables' CHECK constraints call the same
-- C function as set_tau, so a direct write obeys the same (0, 1e9].
SELECT pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid IN ('tforge.task_types'::regclass, 'tforge.task_tau'::regclass) AND contype = 'c'
   AND conname LIKE '%tau_s_check' ORDER BY conname;
\set VERBOSITY terse
INSERT INTO tforge.task_types (name, default_tau_s) VALUES ('direct', 1000000000.0000001);
:sqlstate
INSERT INTO tforge.task_types (name, default_tau_s) VALUES ('direct', 'NaN');
:sqlstate
INSERT INTO tforge.task_types (name, default_tau_s) VALUES ('direct', 1e9) RETURNING default_tau_s;
UPDATE tforge.task_tau SET tau_s = 0;
:sqlstate
\set VERBOSITY default

-- Two positive runtimes never average to 0, though the formula underflows
-- to it: 0.5 * 4.9e-324 rounds to 0, so lambda * sample + (1 - lambda) *
-- old was 0 and the first completion of a type whose tau is the smallest
-- positive double failed the CHECK (23514). Other results keep the
-- formula's bits: 0.2 * 3 + 0.8 * 3 is 3.0000000000000004.
SELECT tforge.ema(5e-324, 5e-324, 0.5) = 5e-324 AS smallest_stays;
SELECT tforge.define_task_type('tiny', 5e-324, 0.5) IS NOT NULL AS defined;
SELECT tforge.update_tau('tiny', 5e-324) = 5e-324 AS first_learned;
SELECT tforge.update_tau('tiny', 5e-324) = 5e-324 AS second_learned;
SELECT tforge.ema(5, 10, 0.2) AS seed_example;  -- 0.2 * 10 + 0.8 * 5 = 6, no drift
SELECT tforge.ema(3, 3, 0.2) = 0.2::float8 * 3 + 0.8::float8 * 3 AS formula_bits, tforge.ema(3, 3, 0.2) > 3 AS above_3;

-- define_signal_type: a NULL name was 23502 (signal_types primary key).
SELECT tforge.define_signal_type(NULL, '1 hour');
:sqlstate
INSERT INTO tforge.signal_types (name, half_life) VALUES (NULL, '1 hour');
:sqlstate
SELECT name, half_life FROM tforge.define_signal_type('clicks', '1 hour');

-- record_validation: an accuracy outside [0, 1] was 23514
-- (model_validations' CHECK) whenever errors were given.
SELECT (tforge.register_model('m', '1.0.0', 'onnx')).state;
SELECT tforge.record_validation('m', '1.0.0', '{10}', -1, '{timeout}');
:sqlstate
SELECT tforge.record_validation('m', '1.0.0', '{10}', 1.5, '{timeout}');
:sqlstate
SELECT tforge.record_validation('m', '1.0.0', '{10}', 'NaN', '{timeout}');
:sqlstate
SELECT tforge.record_validation('m', '1.0.0', '{10}', -1);
:sqlstate
SELECT passed, accuracy_score FROM tforge.record_validation('m', '1.0.0', '{10}', 0, '{timeout}');
SELECT passed, accuracy_score FROM tforge.record_validation('m', '1.0.0', '{10}', 1);
SELECT count(*) AS validations FROM tforge.model_validations;

-- _profile_record: an unknown task type was 23503 (profiles' foreign key).
SELECT tforge._profile_record('no-such-type', 'k', 1, NULL, NULL, NULL, NULL);
:sqlstate
SELECT tforge._profile_record('cpu-light', 'k', 1, NULL, NULL, NULL, NULL);
SELECT task_type, task_key, completions FROM tforge.profiles ORDER BY task_key NULLS FIRST;

-- _lock_checkpoint_run: a NULL run was 23502 (checkpoint_runs primary key).
SELECT tforge._lock_checkpoint_run(NULL, 'create');
:sqlstate
SELECT tforge._lock_checkpoint_run('run-1', 'create');
SELECT training_run_id, checkpoints_created FROM tforge.checkpoint_runs;

-- Arrays of two dimensions are refused with 22023 (array_position gave
-- 0A000, feature not supported); a lower bound other than 1 is fine.
SELECT tforge.record_signals('{{1,2},{3,4}}', 'clicks');
:sqlstate
SELECT tforge.record_signals('{1,2}', 'clicks', '{{1,2}}');
:sqlstate
SELECT tforge.record_signals('[0:1]={1,2}', 'clicks', '[5:6]={1,2}', '{2026-01-01,2026-01-02}') AS entities;
SELECT tforge.define_signal_type('views', '1 hour', '{{1 hour},{2 hours}}');
:sqlstate
SELECT tforge.record_validation('m', '1.0.0', '{10}', 0.5, '{{a},{b}}');
:sqlstate
SELECT tforge.record_validation('m', '1.0.0', '{{10},{20}}', 0.5);
:sqlstate
