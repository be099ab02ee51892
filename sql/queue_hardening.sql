-- The queue's C hot path against hostile or unlucky input (issue 13):
-- a first completion whose runtime cannot be learned, read-only
-- transactions, fencing tokens, poisoned usage.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
CREATE EXTENSION tforge;
RESET client_min_messages;
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
\set SHOW_CONTEXT never

-- Fault 1: the first completion of a type and key whose clock-measured
-- runtime cannot be learned (the clock stepped back: claimed a day ahead)
-- crashed the server. It completes, learns no runtime, and says why.
SELECT tforge.submit_task('cpu-light', task_key => 'k1') AS id \gset
SELECT task_id FROM tforge.claim_tasks('w');
UPDATE tforge.tasks SET claimed_at = now() + interval '1 day' WHERE task_id = :id;
SET client_min_messages = error;  -- its WARNING shows the clock, which differs per run
SELECT status, runtime_s FROM tforge.complete_task(:id, 'w');
RESET client_min_messages;
-- Both profiles were created by that completion, without a runtime; tau untouched.
SELECT task_key, completions, runtime IS NULL AS no_runtime FROM tforge.profiles ORDER BY task_key NULLS FIRST;
SELECT count(*) AS tau_rows FROM tforge.task_tau;
-- The same with a reported runtime that cannot be learned, on a fresh key.
SELECT tforge.submit_task('cpu-light', task_key => 'k2') AS id \gset
SELECT task_id FROM tforge.claim_tasks('w');
SELECT status, runtime_s FROM tforge.complete_task(:id, 'w', '{"runtime_s": -1}');
SELECT tforge.submit_task('mixed', task_key => 'k3') AS id \gset
SELECT task_id FROM tforge.claim_tasks('w');
SELECT status, runtime_s FROM tforge.complete_task(:id, 'w', '{"runtime_s": "soon"}');
SELECT task_type, task_key, completions FROM tforge.profiles ORDER BY task_type, task_key NULLS FIRST;

-- Fault 9: fencing tokens. Every claim takes a new token; a completion,
-- heartbeat or failure under an earlier claim is refused (55000) even when
-- the worker id is the same.
SELECT tforge.submit_task('cpu-heavy') AS id \gset
SELECT task_id = :id AS claimed, claim_token AS first_token FROM tforge.claim_tasks('w') \gset
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 s' WHERE task_id = :id;
SELECT task_id = :id AS claimed_again, claim_token AS second_token, attempts FROM tforge.claim_tasks('w') \gset
SELECT :second_token > :first_token AS newer, :attempts AS attempts;
SELECT tforge.heartbeat(:id, 'w', :first_token);
:sqlstate
SELECT tforge.fail_task(:id, 'w', 'late', claim_token => :first_token);
:sqlstate
SELECT tforge.complete_task(:id, 'w', '{"runtime_s": 3}', :first_token);
:sqlstate
-- A token of another task, and a token on a task of another worker.
SELECT tforge.complete_task(:id, 'w', claim_token => :second_token + 1000);
:sqlstate
SELECT tforge.complete_task(:id, 'v', claim_token => :second_token);
:sqlstate
-- Nothing changed: still running under the second claim, tau unlearned.
SELECT status, worker_id, claim_token = :second_token AS current, runtime_s FROM tforge.tasks WHERE task_id = :id;
SELECT tforge.get_tau('cpu-heavy');
-- The current token works for all three calls.
SELECT tforge.heartbeat(:id, 'w', :second_token) > now() AS extended;
SELECT status, runtime_s FROM tforge.complete_task(:id, 'w', '{"runtime_s": 3}', :second_token);
SELECT tforge.get_tau('cpu-heavy');  -- 0.2 * 3 + 0.8 * 15 = 12.6
-- Without a token, the worker id alone decides (as in 0.1.0).
SELECT tforge.submit_task('cpu-heavy') AS id \gset
SELECT claim_token AS token FROM tforge.claim_tasks('w') \gset
SELECT tforge.fail_task(:id, 'w', 'retry me');
SELECT tforge.fail_task(:id, 'w', 'again', claim_token => :token);
:sqlstate
SELECT status, claim_token = :token AS token_kept FROM tforge.tasks WHERE task_id = :id;

-- Fault 4: every state-changing function refuses (25006) in a read-only
-- transaction, before any work, and nothing changes. The fingerprint of
-- every table the queue writes, and of the token sequence, is compared
-- before and after.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(t::text, ',' ORDER BY t.task_id) FROM tforge.tasks t),
    (SELECT string_agg(s::text, ',' ORDER BY s.task_type) FROM tforge.task_tau s),
    (SELECT string_agg(p::text, ',' ORDER BY p.task_type, p.task_key) FROM tforge.profiles p),
    (SELECT last_value::text FROM tforge.claim_token_seq)))
$$;
-- A running task with its token, a running task whose lease expired, a pending task.
SELECT tforge.submit_task('gpu-training') AS held \gset
SELECT claim_token AS token FROM tforge.claim_tasks('w', lease => '1 hour') \gset
SELECT tforge.submit_task('gpu-training') AS lapsed \gset
SELECT task_id FROM tforge.claim_tasks('x');
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 s' WHERE task_id = :lapsed;
SELECT tforge.submit_task('gpu-training') AS pending \gset
SELECT pg_temp.state() AS before \gset
BEGIN READ ONLY;
SELECT tforge.submit_task('cpu-light');
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge.claim_tasks('r');
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge.expire_leases();
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge.complete_task(:held, 'w', '{"runtime_s": 7}', :token);
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge.heartbeat(:held, 'w', :token);
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge.fail_task(:held, 'w', 'x', claim_token => :token);
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge._held_task(:held, 'w', :token);
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge.update_tau('cpu-light', 500);
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge.set_tau('cpu-light', 500);
:sqlstate
ROLLBACK;
BEGIN READ ONLY;
SELECT tforge._profile_record('cpu-light', 'k9', 5, 1, 100, NULL, NULL);
:sqlstate
ROLLBACK;
SELECT pg_temp.state() = :'before' AS unchanged;
-- The same through default_transaction_read_only, one statement per transaction.
SET default_transaction_read_only = on;
SELECT tforge.submit_task('cpu-light');
:sqlstate
SELECT tforge.claim_tasks('r');
:sqlstate
SELECT tforge.expire_leases();
:sqlstate
SELECT tforge.complete_task(:held, 'w', '{"runtime_s": 7}', :token);
:sqlstate
SELECT tforge.heartbeat(:held, 'w', :token);
:sqlstate
SELECT tforge.fail_task(:held, 'w', 'x', claim_token => :token);
:sqlstate
SELECT tforge.update_tau('cpu-light', 500);
:sqlstate
SELECT tforge.set_tau('cpu-light', 500);
:sqlstate
SELECT tforge._profile_record('cpu-light', 'k9', 5, 1, 100, NULL, NULL);
:sqlstate
RESET default_transaction_read_only;
SELECT pg_temp.state() = :'before' AS unchanged;
-- And in a writable transaction each of them works.
SELECT tforge.expire_leases() AS expired;
SELECT status FROM tforge.complete_task(:held, 'w', '{"runtime_s": 7}', :token);
SELECT tforge.update_tau('cpu-light', 500) > 5 AS learned;
SELECT pg_temp.state() <> :'before' AS changed;

-- Fault 6: poisoned learning. Extreme usages leave every learned and
-- predicted value in its range, and the task still completes. Expected
-- ranges: runtime samples in (0, 1e9] s, usage samples in [0, 1e18],
-- cpu_s at most 1e6 times runtime_s; predicted cpu finite and at most 1e6
-- cores, predicted bytes in [0, 1e18].
CREATE FUNCTION pg_temp.cycle(k text, usage jsonb) RETURNS text LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
  id := tforge.submit_task('memory-heavy', task_key => k);
  PERFORM tforge.claim_tasks('p');
  RETURN (tforge.complete_task(id, 'p', usage)).status;
END $$;
-- The issue's case: 1e18 s of cpu in 1e-300 s (infinite cores).
SELECT pg_temp.cycle('poison', '{"runtime_s": 1e-300, "cpu_s": 1e18}');
SELECT pg_temp.cycle('poison', '{"runtime_s": 1e308, "cpu_s": 1e308, "memory_bytes": 1e308, "gpu_memory_bytes": 1e19}');
SELECT pg_temp.cycle('poison', '{"runtime_s": -5, "cpu_s": -1, "memory_bytes": -1}');
SELECT pg_temp.cycle('poison', '{"runtime_s": "NaN", "cpu_s": "Infinity", "memory_bytes": "-Infinity"}');
SELECT pg_temp.cycle('poison', '{"runtime_s": 2, "cpu_s": 4, "memory_bytes": 1e18, "gpu_memory_bytes": 9.3e18}');
SELECT pg_temp.cycle('poison', '{"runtime_s": 1e-300, "cpu_s": 1e-295, "memory_bytes": 0}');
-- Every statistic finite and in range: runtimes 1e-300, 2, 1e-300; cpu 4 and
-- 1e-295 (1e5 cores: kept); memory 1e18 and 0; six completions counted.
SELECT tforge.rolling_stats_count(runtime) AS runs, tforge.rolling_stats_min(runtime) AS min_runtime,
       tforge.rolling_stats_max(runtime) AS max_runtime,
       tforge.rolling_stats_count(cpu) AS cpu_runs, tforge.rolling_stats_max(cpu) AS max_cpu,
       tforge.rolling_stats_max(memory) AS max_memory, gpu_memory IS NULL AS no_gpu_memory, completions
  FROM tforge.profiles WHERE task_key = 'poison';
-- Predicted resources: cpu = mean cpu / mean runtime = ((4 + 1e-295) / 2) / ((2 + 2e-300) / 3)
-- = 3 cores (to float8 rounding); memory = 95th percentile of {1e18, 0} = 0.95e18.
SELECT r.cpu, r.memory_bytes, r.gpu_memory_bytes
  FROM tforge.profiles p, tforge._profile_resources(p.runtime, p.cpu, p.memory, p.gpu_memory) r
 WHERE p.task_key = 'poison';
-- tau absorbed only the learnable runtimes, 1e-300, 2, 1e-300 s, from 20:
-- each step 0.2 * runtime + (1 - 0.2) * tau in float8.
CREATE FUNCTION pg_temp.step(old float8, x float8) RETURNS float8 LANGUAGE sql AS $$ SELECT 0.2::float8 * x + (1 - 0.2::float8) * old $$;
SELECT tforge.get_tau('memory-heavy') = pg_temp.step(pg_temp.step(pg_temp.step(20, 1e-300), 2), 1e-300) AS tau_as_expected,
       tforge.get_tau('memory-heavy') AS tau;
-- Statistics from elsewhere (an import, or a caller of _profile_resources) are clamped
-- at prediction: memory beyond 2^63 does not wrap, cores stay finite.
SELECT r.cpu, r.memory_bytes, r.gpu_memory_bytes
  FROM (SELECT tforge.rolling_stats_agg(x) FILTER (WHERE x < 1) AS tiny,
               tforge.rolling_stats_agg(x) FILTER (WHERE x > 1) AS huge,
               tforge.rolling_stats_agg(-x) FILTER (WHERE x > 1) AS negative
          FROM (VALUES (1e-300::float8), (1e300::float8)) v(x)) s,
       tforge._profile_resources(s.tiny, s.huge, s.huge, s.negative) r;
-- _profile_record applies the same ranges.
SELECT tforge._profile_record('memory-heavy', 'direct', 1e-300, 1e18, 1e19, 'NaN', NULL);
SELECT tforge._profile_record('memory-heavy', 'direct', 2e9, 1, 1, 1, NULL);
SELECT tforge._profile_record('memory-heavy', 'direct', 1, '-Infinity', 'Infinity', -1, NULL);
SELECT tforge.rolling_stats_count(runtime) AS runs, cpu IS NULL AS no_cpu, tforge.rolling_stats_count(memory) AS memory_runs,
       tforge.rolling_stats_count(gpu_memory) AS gpu_runs, completions
  FROM tforge.profiles WHERE task_key = 'direct';
-- Fault 8: the C code reads tforge.resources by attribute number, so a
-- changed type is refused (55000) instead of misread. (Rolled back.)
BEGIN;
ALTER TYPE tforge.resources DROP ATTRIBUTE gpu_memory_bytes CASCADE;
ALTER TYPE tforge.resources ADD ATTRIBUTE gpu_memory_bytes text;
SELECT tforge._profile_resources(a, a, a, a)
  FROM (SELECT tforge.rolling_stats_agg(x) a FROM generate_series(1, 3) x) s;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
