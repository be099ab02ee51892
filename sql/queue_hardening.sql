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
