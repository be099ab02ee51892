-- A learned row (task_tau, profiles) that the calling statement itself
-- changed before a tforge function learns into it, as in
--   WITH u AS (UPDATE tforge.task_tau ...) SELECT tforge.update_tau(...) FROM u
-- is read in the version that statement wrote and rewritten, as a PL/pgSQL
-- function's UPDATE would (SPI makes the current command's writes visible
-- first); it used to fail with XX000 ("unexpected status 2"). A statement
-- that rewrites the row after the function did is refused by PostgreSQL
-- itself (27000), as for any function that changes the rows its caller
-- updates. Expected values are the EMA worked by hand (lambda 0.2).
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(8);
SET LOCAL tforge.ema_lambda = 0.2;

SELECT tforge.define_task_type('same-cmd', 10);
SELECT tforge.set_tau('same-cmd', 5);

-- tau: 7 written by the statement's CTE, then 3 learned: 0.8 * 7 + 0.2 * 3
SELECT lives_ok($$ WITH u AS (UPDATE tforge.task_tau SET tau_s = 7 WHERE task_type = 'same-cmd' RETURNING 1)
                    SELECT tforge.update_tau('same-cmd', 3) FROM u $$,
                'update_tau learns into a row its calling statement changed');
SELECT is((SELECT round(tau_s::numeric, 9) FROM tforge.task_tau WHERE task_type = 'same-cmd'),
          round(0.8 * 7 + 0.2 * 3, 9), 'from the version that statement wrote (0.8 * 7 + 0.2 * 3)');

-- profiles: the CTE adds 10 completions, the record one more
SELECT tforge._profile_record('same-cmd', NULL, 1, NULL, NULL, NULL, NULL);
SELECT lives_ok($$ WITH u AS (UPDATE tforge.profiles SET completions = completions + 10
                               WHERE task_type = 'same-cmd' AND task_key IS NULL RETURNING 1)
                    SELECT tforge._profile_record('same-cmd', NULL, 2, NULL, NULL, NULL, NULL) FROM u $$,
                'a profile the calling statement changed is learned into');
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'same-cmd' AND task_key IS NULL),
          12::bigint, 'both the statement''s change and the completion are kept (1 + 10 + 1)');

-- complete_task in the same statement as a change of its type's tau
SELECT tforge.set_tau('same-cmd', 10);
SELECT tforge.submit_task('same-cmd') AS id \gset
SELECT c.claim_token AS tok FROM tforge.claim_tasks('w', task_types => ARRAY['same-cmd']) c \gset
SELECT lives_ok(format($$ WITH u AS (UPDATE tforge.task_tau SET tau_s = 20 WHERE task_type = 'same-cmd' RETURNING 1)
                           SELECT tforge.complete_task(%s, 'w', '{"runtime_s": 5}', %s) FROM u $$, :id, :tok),
                'complete_task learns into a tau its calling statement changed');
SELECT is((SELECT round(tau_s::numeric, 9) FROM tforge.task_tau WHERE task_type = 'same-cmd'),
          round(0.8 * 20 + 0.2 * 5, 9), 'from the statement''s tau (0.8 * 20 + 0.2 * 5)');

-- The caller rewriting the row after the function did: PostgreSQL's own refusal.
SELECT throws_ok($$ UPDATE tforge.task_tau SET tau_s = tforge.update_tau(task_type, 3)
                     WHERE task_type = 'same-cmd' $$,
                 '27000', NULL, 'an UPDATE of the row the function rewrote is refused (27000), never XX000');
SELECT is((SELECT round(tau_s::numeric, 9) FROM tforge.task_tau WHERE task_type = 'same-cmd'),
          round(0.8 * 20 + 0.2 * 5, 9), 'and changes nothing');

SELECT * FROM finish();
ROLLBACK;
