-- submit_tasks (src/submit_batch.c): many tasks of one type in one INSERT,
-- with the columns submit_task would give each; every argument error.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
SET tforge.sla_multiplier = 2;

-- Keys, priorities and resources by position; NULL elements are the defaults.
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{"n": 1}', NULL, '{"n": 3, "requested_s": 1}']::jsonb[],
                                  ARRAY['a', NULL, 'a'], ARRAY[5, NULL, -1],
                                  ARRAY[NULL, ROW(2, 1024, 0, 0), NULL]::tforge.resources[]) AS task_id;
-- deadline = arrival + 2 * tau (5 s); laxity_key = deadline - predicted (tau; nothing learned yet).
SELECT task_id, task_key, payload, priority, resources, deadline - submitted_at AS slack,
       deadline - laxity_key AS predicted, prediction_strategy, prediction_source, predictions_source,
       max_attempts, status
  FROM tforge.tasks ORDER BY task_id;
-- The same task on its own (another transaction: another arrival) gets the same columns.
SELECT tforge.submit_task('cpu-light', '{"n": 1}', NULL, 5, 'a') AS d;
SELECT count(DISTINCT (deadline - submitted_at, laxity_key - submitted_at, predicted_runtime_s, predictions,
                       prediction_confidences, task_key, payload, priority)) AS distinct_rows
  FROM tforge.tasks WHERE task_id IN (1, 4);
-- sla_multiplier and max_attempts for the whole batch.
SELECT count(*) FROM tforge.submit_tasks('gpu-training', array_fill('{}'::jsonb, ARRAY[4]),
                                         sla_multiplier => 3, max_attempts => 7);
SELECT deadline - submitted_at AS slack, max_attempts, count(*)
  FROM tforge.tasks WHERE task_type = 'gpu-training' GROUP BY 1, 2;
-- An empty batch.
SELECT count(*) FROM tforge.submit_tasks('cpu-light', '{}');

-- Every argument error; none of them inserts anything.
SELECT * FROM tforge.submit_tasks(NULL, ARRAY['{}']::jsonb[]);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', NULL);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}', '{}']::jsonb[], ARRAY['k']);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[], priorities => ARRAY[1, 2]);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[], resources => '{}'::tforge.resources[]);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY[['{}'], ['{}']]::jsonb[]);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[], ARRAY[['a']]);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}', '{}']::jsonb[],
                                  resources => ARRAY[NULL, ROW(-1, NULL, NULL, NULL)]::tforge.resources[]);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[],
                                  resources => ARRAY[ROW('NaN', NULL, NULL, NULL)]::tforge.resources[]);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[], sla_multiplier => 0);
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[], sla_multiplier => 'Infinity');
:sqlstate
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[], max_attempts => 0);
:sqlstate
SELECT * FROM tforge.submit_tasks('no-such-type', ARRAY['{}']::jsonb[]);
:sqlstate
SELECT * FROM tforge.submit_tasks('no-such-type', '{}');
:sqlstate
BEGIN READ ONLY;
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[]);
:sqlstate
ROLLBACK;
SELECT count(*) AS tasks FROM tforge.tasks;
RESET tforge.sla_multiplier;
