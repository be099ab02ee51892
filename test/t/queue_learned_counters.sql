-- Learned counters at the end of bigint: task_tau.samples and
-- profiles.completions count one more per completion. At 9223372036854775807
-- one more is out of range, as samples + 1 in SQL is (22003): the completion
-- is refused and changes nothing. It used to wrap tau's sample count around
-- to -9223372036854775808 silently, and to reach the profiles' CHECK
-- constraint (23514) for completions.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(12);
SET LOCAL client_min_messages = warning;

-- What SQL says of one more than the largest bigint: the expected SQLSTATE.
CREATE FUNCTION pg_temp.sql_state(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN '00000';
EXCEPTION WHEN others THEN
  RETURN SQLSTATE;
END $$;
SELECT pg_temp.sql_state('SELECT 9223372036854775807::bigint + 1') AS overflow \gset

-- A task of type t (key k) claimed by w; its id.
CREATE FUNCTION pg_temp.held(t text, k text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE id bigint;
BEGIN
  id := tforge.submit_task(t, task_key => k);
  PERFORM 1 FROM tforge.claim_tasks('w', task_types => ARRAY[t]) c WHERE c.task_id = id;
  RETURN id;
END $$;

-- A first completion creates the rows.
SELECT tforge.complete_task(pg_temp.held('cpu-light', 'k'), 'w', '{"runtime_s": 3}') IS NOT NULL AS first \gset

-- tau's sample count at its largest.
UPDATE tforge.task_tau SET samples = 9223372036854775807 WHERE task_type = 'cpu-light';
SELECT pg_temp.held('cpu-light', NULL) AS t1 \gset
SELECT is(pg_temp.sql_state(format($$SELECT tforge.complete_task(%s, 'w', '{"runtime_s": 3}')$$, :t1)),
          :'overflow', 'complete_task: tau''s sample count at the largest bigint is out of range, as samples + 1 is');
SELECT is((SELECT status::text FROM tforge.tasks WHERE task_id = :t1), 'running', 'the refused completion left the task running');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'cpu-light'), 9223372036854775807::bigint,
          'and tau''s sample count as it was (never negative)');
SELECT is(pg_temp.sql_state($$SELECT tforge.update_tau('cpu-light', 4)$$), :'overflow', 'update_tau: the same');
SELECT is(pg_temp.sql_state(format($$SELECT * FROM tforge.complete_tasks('w', ARRAY[%s]::bigint[], ARRAY['{"runtime_s": 3}']::jsonb[])$$, :t1)),
          :'overflow', 'complete_tasks: the same');
SELECT is((SELECT status::text FROM tforge.tasks WHERE task_id = :t1), 'running', 'the refused batch left the task running');
UPDATE tforge.task_tau SET samples = 9223372036854775806 WHERE task_type = 'cpu-light';
SELECT is((tforge.complete_task(:t1, 'w', '{"runtime_s": 3}')).status::text, 'done', 'one below the largest: the completion is applied');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'cpu-light'), 9223372036854775807::bigint,
          'and counts up to the largest bigint');

-- A profile's completion count at its largest (the key's; then the type's).
UPDATE tforge.profiles SET completions = 9223372036854775807 WHERE task_type = 'cpu-heavy';
SELECT tforge.complete_task(pg_temp.held('cpu-heavy', 'k'), 'w', '{"runtime_s": 3}') IS NOT NULL AS first \gset
UPDATE tforge.profiles SET completions = 9223372036854775807 WHERE task_type = 'cpu-heavy' AND task_key = 'k';
SELECT pg_temp.held('cpu-heavy', 'k') AS t2 \gset
SELECT is(pg_temp.sql_state(format($$SELECT tforge.complete_task(%s, 'w', '{"runtime_s": 3}')$$, :t2)),
          :'overflow', 'complete_task: a key profile''s completion count at the largest bigint is out of range');
UPDATE tforge.profiles SET completions = 0 WHERE task_type = 'cpu-heavy' AND task_key = 'k';
UPDATE tforge.profiles SET completions = 9223372036854775807 WHERE task_type = 'cpu-heavy' AND task_key IS NULL;
SELECT is(pg_temp.sql_state(format($$SELECT tforge.complete_task(%s, 'w', '{"runtime_s": 3}')$$, :t2)),
          :'overflow', 'complete_task: a type profile''s completion count at the largest bigint is out of range');
SELECT is((SELECT array_agg(completions ORDER BY task_key NULLS FIRST) FROM tforge.profiles WHERE task_type = 'cpu-heavy'),
          ARRAY[9223372036854775807, 0]::bigint[], 'the profiles as they were');
SELECT is((SELECT status::text FROM tforge.tasks WHERE task_id = :t2), 'running', 'and the task running');

SELECT * FROM finish();
ROLLBACK;
