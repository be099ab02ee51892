-- The queue: submit, claim order, resources, leases, completion, failure.
-- A fresh extension, so that earlier files' state cannot leak in.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
-- After a statement expected to fail, :sqlstate prints the error's SQLSTATE.
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
-- Timestamps differ per run, so results show intervals and flags, not times.
SET tforge.sla_multiplier = 2;

-- deadline = arrival + 2 * tau; laxity_key = deadline - predicted (= tau).
SELECT tforge.submit_task('cpu-light') AS a, tforge.submit_task('gpu-training', '{"model": "m"}') AS b;
SELECT task_id, task_type, status, deadline - submitted_at AS slack, deadline - laxity_key AS predicted,
       predicted_runtime_s, prediction_strategy, attempts, max_attempts
  FROM tforge.tasks ORDER BY task_id;
-- A custom multiplier and priority.
SELECT tforge.submit_task('cpu-light', sla_multiplier => 10, priority => 7) AS c;
SELECT deadline - submitted_at AS slack, priority FROM tforge.tasks WHERE task_id = 3;

-- Claim order: least laxity (cpu-light, laxity 5 s) before gpu-training (60 s);
-- the priority-7 task has laxity 45 s.
SELECT task_id, status, worker_id, attempts, lease_expires_at - claimed_at AS lease
  FROM tforge.claim_tasks('w1', 2, lease => '30 seconds');
SELECT task_id FROM tforge.claim_tasks('w2');
SELECT count(*) AS nothing_left FROM tforge.claim_tasks('w2');

-- Heartbeat extends the lease by the claim's lease length.
SELECT tforge.heartbeat(1, 'w1') - clock_timestamp() BETWEEN '29 s' AND '30 s' AS extended;

-- Completion with a reported runtime: done, deadline met, tau learned (0.2*10 + 0.8*5 = 6).
SELECT task_id, status, runtime_s, deadline_met FROM tforge.complete_task(1, 'w1', '{"runtime_s": 10}');
SELECT tforge.get_tau('cpu-light');
-- Completion without usage: runtime is wall-clock claim -> completion (small, positive).
SELECT status, runtime_s > 0 AND runtime_s < 60 AS wall_clock FROM tforge.complete_task(3, 'w1');

-- Failure with retry backs off; failure without retry is dead.
SET tforge.retry_backoff_base = 100;
SELECT tforge.fail_task(2, 'w2', 'out of memory');
SELECT status, last_error, available_at - clock_timestamp() BETWEEN '99 s' AND '100 s' AS backed_off,
       worker_id IS NULL AS released
  FROM tforge.tasks WHERE task_id = 2;
SELECT count(*) AS not_yet FROM tforge.claim_tasks('w2');
UPDATE tforge.tasks SET available_at = now() WHERE task_id = 2;
SELECT task_id, attempts FROM tforge.claim_tasks('w2');
SELECT tforge.fail_task(2, 'w2', 'bad input', retry => false);
SELECT status, completed_at IS NOT NULL AS ended FROM tforge.tasks WHERE task_id = 2;

-- Resources: a requirement fits when each non-NULL field is within capacity.
SELECT tforge.resources_fit((2, 100, 1, NULL), (4, 200, 1, NULL)) AS fits,
       tforge.resources_fit((2, 100, 1, NULL), (1, NULL, NULL, NULL)) AS too_much_cpu,
       tforge.resources_fit((NULL, NULL, 2, 5), (NULL, NULL, 1, NULL)) AS too_many_gpus,
       tforge.resources_fit(NULL, (0, 0, 0, 0)) AS no_requirement,
       tforge.resources_fit((8, 1, 1, 1), NULL) AS unlimited;
SELECT tforge.submit_task('gpu-inference', resources => (1, 1000, 1, 4000)) AS gpu_task;
SELECT tforge.submit_task('gpu-inference', resources => (1, 1000, NULL, NULL)) AS cpu_task;
SELECT count(*) AS none_fit FROM tforge.claim_tasks('small', 5, (0.5, NULL, NULL, NULL));
SELECT task_id FROM tforge.claim_tasks('cpu-only', 5, (4, 10000, 0, 0));
SELECT task_id FROM tforge.claim_tasks('gpu-box', 5, (4, 10000, 2, 8000));

-- A bad runtime never loses the completion: done, tau unchanged, WARNING.
SELECT status, runtime_s FROM tforge.complete_task(4, 'gpu-box', '{"runtime_s": "fast"}');
SELECT status, runtime_s FROM tforge.complete_task(5, 'cpu-only', '{"runtime_s": -3}');
SELECT tforge.get_tau('gpu-inference');

-- An expired lease makes the task claimable again; after max_attempts claims it is dead.
SELECT tforge.submit_task('mixed', max_attempts => 2) AS lease_task;
SELECT task_id, attempts FROM tforge.claim_tasks('slow', lease => '1 ms');
SELECT pg_sleep(0.01);
SELECT task_id, attempts FROM tforge.claim_tasks('other', lease => '1 ms');
SELECT pg_sleep(0.01);
SELECT tforge.expire_leases();
SELECT status, attempts, last_error LIKE 'lease of worker "other" expired%' AS why FROM tforge.tasks WHERE task_id = 6;

-- cpu-light: 0.2 * (a few ms) + 0.8 * 6 = 4.8 to one decimal
SELECT task_type, pending, running, done, dead, deadline_misses, round(tau_s::numeric, 1) AS tau_s, tau_samples
  FROM tforge.queue_status ORDER BY task_type;

-- Bad input: typed errors, nothing changed.
\set SHOW_CONTEXT never
SELECT tforge.submit_task('nope');
:sqlstate
SELECT tforge.submit_task(NULL);
:sqlstate
SELECT tforge.submit_task('mixed', sla_multiplier => 0);
:sqlstate
SELECT tforge.submit_task('mixed', sla_multiplier => 'NaN');
:sqlstate
SELECT tforge.submit_task('mixed', max_attempts => 0);
:sqlstate
SELECT tforge.submit_task('mixed', resources => (-1, NULL, NULL, NULL));
:sqlstate
SELECT tforge.submit_task('mixed', resources => ('NaN', NULL, NULL, NULL));
:sqlstate
SELECT tforge.submit_task('mixed', resources => (NULL, -5, NULL, NULL));
:sqlstate
SELECT tforge.claim_tasks('', 1);
:sqlstate
SELECT tforge.claim_tasks('w', 0);
:sqlstate
SELECT tforge.claim_tasks('w', 1, lease => '0 s');
:sqlstate
SELECT tforge.claim_tasks('w', 1, lease => '-1 min');
:sqlstate
SELECT tforge.claim_tasks('w', 1, (NULL, NULL, -1, NULL));
:sqlstate
SELECT tforge.complete_task(999, 'w1');
:sqlstate
SELECT tforge.complete_task(1, 'w1');
:sqlstate
SELECT tforge.complete_task(6, 'other');
:sqlstate
SELECT tforge.heartbeat(1, 'w1');
:sqlstate
SELECT tforge.fail_task(3, 'w2', 'x');
:sqlstate
\set SHOW_CONTEXT errors
SELECT status, count(*) FROM tforge.tasks GROUP BY status ORDER BY status;
-- A deadline further than 1e11 s from arrival is refused (22003), the task not queued.
SELECT tforge.set_tau('mixed', 1e9);
\set SHOW_CONTEXT never
SELECT tforge.submit_task('mixed', sla_multiplier => 101);
:sqlstate
\set SHOW_CONTEXT errors
SELECT count(*) AS still_queued FROM tforge.tasks WHERE task_type = 'mixed' AND status = 'pending';
SELECT tforge.submit_task('mixed', sla_multiplier => 100) AS far \gset
SELECT deadline - submitted_at AS slack FROM tforge.tasks WHERE task_id = :far;
-- A runtime beyond 1e9 s is not learned, and the completion is kept.
SELECT tforge.set_tau('cpu-heavy', 15);
SELECT tforge.submit_task('cpu-heavy') AS huge \gset
SELECT task_id = :huge AS least_laxity FROM tforge.claim_tasks('w9');
SELECT status, runtime_s FROM tforge.complete_task(:huge, 'w9', '{"runtime_s": 2e9}');
SELECT tforge.get_tau('cpu-heavy');
