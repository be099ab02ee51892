-- Tau: the EMA and the per-type learned runtime.
-- A fresh extension, so that earlier files' state cannot leak in.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
-- After a statement expected to fail, :sqlstate prints the error's SQLSTATE.
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
\set SHOW_CONTEXT never
-- The seed's example: tau 5 s, runtime 10 s, lambda 0.2 -> 0.2*10 + 0.8*5 = 6 s.
SELECT tforge.ema(5, 10, 0.2);
-- lambda 0 keeps the old value, 1 keeps only the sample.
SELECT tforge.ema(5, 10, 0), tforge.ema(5, 10, 1);
-- 0.5*3 + 0.5*1 = 2
SELECT tforge.ema(1, 3, 0.5);
SELECT tforge.ema(5, 10, NULL) IS NULL AS strict;
SELECT tforge.ema(5, 10, 1.5);
:sqlstate
SELECT tforge.ema(5, 10, -0.1);
:sqlstate
SELECT tforge.ema(5, 10, 'NaN');
:sqlstate
SELECT tforge.ema(5, 'NaN', 0.2);
:sqlstate
SELECT tforge.ema('Infinity', 1, 0.2);
:sqlstate
SELECT tforge.ema(1e308, -1e308, 0.5);
SELECT tforge.ema(-1e308, 1e308, 0);
:sqlstate
\set SHOW_CONTEXT errors

-- The six default task types.
SELECT name, default_tau_s, lambda, builtin FROM tforge.task_types ORDER BY name;
SELECT tforge.get_tau('cpu-light'), tforge.get_tau('gpu-training');

-- update_tau: 5 -> 6 -> 0.2*20 + 0.8*6 = 8.8 -> 0.2*1 + 0.8*8.8 = 7.24
SELECT tforge.update_tau('cpu-light', 10);
SELECT tforge.update_tau('cpu-light', 20);
SELECT tforge.update_tau('cpu-light', 1);
SELECT tau_s, samples FROM tforge.task_tau WHERE task_type = 'cpu-light';
-- The GUC changes lambda: 0.5*2 + 0.5*15 = 8.5
SET tforge.ema_lambda = 0.5;
SELECT tforge.update_tau('cpu-heavy', 2);
RESET tforge.ema_lambda;
SET tforge.ema_lambda = 2;

-- set_tau, reset_tau.
SELECT tforge.set_tau('mixed', 42.5);
SELECT tforge.get_tau('mixed');
SELECT tforge.update_tau('mixed', 2.5);  -- 0.2*2.5 + 0.8*42.5 = 34.5
SELECT tforge.reset_tau('mixed');
SELECT tforge.get_tau('mixed');
SELECT tforge.reset_tau();
SELECT tforge.get_tau('cpu-light'), tforge.get_tau('cpu-heavy');
SELECT count(*) FROM tforge.task_tau;

-- A new task type with its own lambda: 0.5*20 + 0.5*4 = 12
SELECT name, default_tau_s, lambda, builtin FROM tforge.define_task_type('etl', 4, 0.5);
SELECT tforge.update_tau('etl', 20);

-- Bad input: typed errors, nothing changed.
\set SHOW_CONTEXT never
SELECT tforge.get_tau('no-such-type');
:sqlstate
SELECT tforge.set_tau('no-such-type', 1);
:sqlstate
SELECT tforge.update_tau('no-such-type', 1);
:sqlstate
SELECT tforge.reset_tau('no-such-type');
:sqlstate
SELECT tforge.set_tau('etl', 0);
:sqlstate
SELECT tforge.set_tau('etl', -3);
:sqlstate
SELECT tforge.set_tau('etl', 'NaN');
:sqlstate
SELECT tforge.set_tau('etl', 'Infinity');
:sqlstate
SELECT tforge.update_tau('etl', 0);
:sqlstate
SELECT tforge.update_tau('etl', -1);
:sqlstate
SELECT tforge.update_tau('etl', 'NaN');
:sqlstate
SELECT tforge.update_tau('etl', '-Infinity');
:sqlstate
SELECT tforge.define_task_type('etl', 1);
:sqlstate
SELECT tforge.define_task_type('', 1);
:sqlstate
SELECT tforge.define_task_type('x', 0);
:sqlstate
SELECT tforge.define_task_type('x', 1, 1.01);
:sqlstate
SELECT tforge.define_task_type('x', 1, 'NaN');
:sqlstate
\set SHOW_CONTEXT errors
SELECT tforge.get_tau('etl'), (SELECT samples FROM tforge.task_tau WHERE task_type = 'etl');
SELECT count(*) FROM tforge.task_types WHERE name = 'x';
-- Durations beyond 1e9 s (about 31 years) are refused: no task runs that long.
\set SHOW_CONTEXT never
SELECT tforge.set_tau('etl', 1e9) AS longest;
SELECT tforge.set_tau('etl', 1.0001e9);
:sqlstate
SELECT tforge.update_tau('etl', 1e308);
:sqlstate
SELECT tforge.define_task_type('forever', 1e10);
:sqlstate
\set SHOW_CONTEXT errors
