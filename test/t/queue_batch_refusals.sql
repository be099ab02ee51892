-- Batch refusals: complete_tasks and fail_tasks report an item they leave
-- out with the reason and the words a single call (complete_task,
-- heartbeat, fail_task) raises for the same task: missing, not_held (not
-- running; another worker's; a later item of a task an earlier item
-- completed) and stale_token. Arrays of more than one dimension and arrays
-- of another length are refused (22023) before anything changes.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(25);

-- Tasks: d done, c running for another worker, e claimed again by w since
-- token et1 (et2 is current), p pending (never claimed), a and b held by w.
SELECT tforge.submit_task('cpu-light') AS d \gset
SELECT 1 FROM tforge.claim_tasks('w');
SELECT 1 FROM tforge.complete_task(:d, 'w', '{"runtime_s": 3}');
SELECT tforge.submit_task('cpu-light') AS c \gset
SELECT 1 FROM tforge.claim_tasks('other');
SELECT tforge.submit_task('cpu-light') AS e \gset
SELECT claim_token AS et1 FROM tforge.claim_tasks('w') \gset
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 s' WHERE task_id = :e;
SELECT claim_token AS et2 FROM tforge.claim_tasks('w') \gset
SELECT tforge.submit_task('cpu-light') AS a \gset
SELECT claim_token AS at FROM tforge.claim_tasks('w') \gset
SELECT tforge.submit_task('cpu-light') AS b \gset
SELECT claim_token AS bt FROM tforge.claim_tasks('w') \gset
-- submitted last, so that no claim above took it
SELECT tforge.submit_task('cpu-light', priority => -1) AS p \gset
UPDATE tforge.tasks SET available_at = now() + interval '1 hour' WHERE task_id = :p;

-- What a single call raises: SQLSTATE, message and detail.
CREATE FUNCTION pg_temp.raised(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  st text; msg text; det text;
BEGIN
  EXECUTE q;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
  RETURN st || ': ' || msg || ' / ' || det;
END
$$;

-- ------------------------------------------------------- single calls
SELECT is(pg_temp.raised(format('SELECT tforge.complete_task(%s, %L)', :d, 'w')),
          format('55000: task %s is not held by worker "w" / The task is done.', :d),
          'complete_task of a done task: not held, the task is done');
SELECT is(pg_temp.raised(format('SELECT tforge.complete_task(%s, %L)', :c, 'w')),
          format('55000: task %s is not held by worker "w" / The task is running for worker "other".', :c),
          'complete_task of another worker''s task: not held, whose it is');
SELECT is(pg_temp.raised(format('SELECT tforge.complete_task(%s, %L, NULL, %s)', :e, 'w', :et1)),
          format('55000: task %s is not held by worker "w" / The task was claimed again: claim token %s is stale, the current claim is %s.',
                 :e, :et1, :et2),
          'complete_task under a stale token: the tokens');
SELECT is(pg_temp.raised(format('SELECT tforge.complete_task(%s, %L)', :p, 'w')),
          format('55000: task %s is not held by worker "w" / The task is pending.', :p),
          'complete_task of a pending task: not held, pending');
SELECT is(pg_temp.raised($$SELECT tforge.complete_task(999999999, 'w')$$),
          '42704: task 999999999 does not exist / ', 'complete_task of no task: 42704');
SELECT is(pg_temp.raised(format('SELECT tforge.heartbeat(%s, %L)', :c, 'w')),
          format('55000: task %s is not held by worker "w" / The task is running for worker "other".', :c),
          'heartbeat gives the same words');
SELECT is(pg_temp.raised(format('SELECT tforge.fail_task(%s, %L, %L, true, %s)', :e, 'w', 'x', :et1)),
          format('55000: task %s is not held by worker "w" / The task was claimed again: claim token %s is stale, the current claim is %s.',
                 :e, :et1, :et2),
          'fail_task gives the same words');

-- ------------------------------------------------------------ fail_tasks
-- Every item is refused: the rows say why, in the single calls' words.
SELECT results_eq(
  format($$SELECT task_id, status, detail FROM tforge.fail_tasks('w', ARRAY[%s, %s, %s, 999999999, NULL, %s]::bigint[],
                                                                 NULL, true, ARRAY[NULL, NULL, %s, NULL, NULL, NULL]::bigint[])$$,
         :d, :c, :e, :p, :et1),
  format($$VALUES (%s::bigint, 'not_held', 'task %s is done'),
                  (%s, 'not_held', 'task %s is running for worker "other"'),
                  (%s, 'stale_token', 'task %s was claimed again: claim token %s is stale, the current claim is %s'),
                  (999999999, 'missing', 'task 999999999 does not exist'),
                  (NULL, 'missing', 'task_id is NULL'),
                  (%s, 'not_held', 'task %s is pending')$$,
         :d, :d, :c, :c, :e, :e, :et1, :et2, :p, :p),
  'fail_tasks reports each refused item with its reason and the single call''s words');
SELECT results_eq(format('SELECT status::text, worker_id FROM tforge.tasks WHERE task_id IN (%s, %s, %s, %s) ORDER BY task_id', :d, :c, :e, :p),
                  $$VALUES ('done', 'w'), ('running', 'other'), ('running', 'w'), ('pending', NULL)$$,
                  'and left every task as it was');

-- -------------------------------------------------------- complete_tasks
SELECT results_eq(
  format($$SELECT task_id, status, detail FROM tforge.complete_tasks('w',
             ARRAY[%s, %s, %s, %s, 999999999, NULL, %s, %s]::bigint[], NULL,
             ARRAY[%s, NULL, NULL, %s, NULL, NULL, NULL, NULL]::bigint[])$$,
         :a, :c, :d, :e, :p, :a, :at, :et1),
  format($$VALUES (%s::bigint, 'done', NULL::text),
                  (%s, 'not_held', 'task %s is running for worker "other"'),
                  (%s, 'not_held', 'task %s is done'),
                  (%s, 'stale_token', 'task %s was claimed again: claim token %s is stale, the current claim is %s'),
                  (999999999, 'missing', 'task 999999999 does not exist'),
                  (NULL, 'missing', 'task_id is NULL'),
                  (%s, 'not_held', 'task %s is pending'),
                  (%s, 'not_held', 'task %s is done')$$,
         :a, :c, :c, :d, :d, :e, :e, :et1, :et2, :p, :p, :a, :a),
  'complete_tasks reports each refused item with its reason; a second item of a task completed by the first finds it done');

-- Three items of one task: the stale token twice, then the current one.
-- As three single calls: refused, refused, done.
SELECT results_eq(
  format($$SELECT task_id, status, detail FROM tforge.complete_tasks('w', ARRAY[%s, %s, %s, %s]::bigint[],
             ARRAY['{"runtime_s": 1}', '{"runtime_s": 2}', '{"runtime_s": 4}', '{"runtime_s": 8}']::jsonb[],
             ARRAY[%s, %s, %s, %s]::bigint[])$$, :e, :e, :b, :e, :et1, :et1, :bt, :et2),
  format($$VALUES (%s::bigint, 'stale_token', 'task %s was claimed again: claim token %s is stale, the current claim is %s'),
                  (%s, 'stale_token', 'task %s was claimed again: claim token %s is stale, the current claim is %s'),
                  (%s, 'done', NULL::text), (%s, 'done', NULL)$$,
         :e, :e, :et1, :et2, :e, :e, :et1, :et2, :b, :e),
  'items of one task resolve in array order: stale, stale, then the current token completes it');
SELECT results_eq(format('SELECT runtime_s FROM tforge.tasks WHERE task_id IN (%s, %s) ORDER BY task_id', :e, :b),
                  $$VALUES (8::float8), (4::float8)$$, 'each task completed with its own item''s usage');

-- ------------------------------------------------------------ arguments
SELECT 1 FROM tforge.submit_task('cpu-light');
SELECT task_id AS h, claim_token AS ht FROM tforge.claim_tasks('w') \gset
SELECT throws_ok(format($$SELECT * FROM tforge.complete_tasks('w', ARRAY[[%s], [%s]]::bigint[])$$, :h, :h),
                 '22023', 'task_ids must be a one-dimensional array, got 2 dimensions',
                 'complete_tasks refuses a two-dimensional task_ids (it was read flat)');
SELECT throws_ok(format($$SELECT * FROM tforge.complete_tasks('w', ARRAY[%s], ARRAY[['{}']]::jsonb[])$$, :h),
                 '22023', 'usages must be a one-dimensional array, got 2 dimensions',
                 'and a two-dimensional usages');
SELECT throws_ok(format($$SELECT * FROM tforge.complete_tasks('w', ARRAY[%s], NULL, ARRAY[[%s]]::bigint[])$$, :h, :ht),
                 '22023', 'claim_tokens must be a one-dimensional array, got 2 dimensions',
                 'and two-dimensional claim_tokens');
SELECT throws_ok(format($$SELECT * FROM tforge.fail_tasks('w', ARRAY[[%s]]::bigint[], ARRAY['x'])$$, :h),
                 '22023', 'task_ids must be a one-dimensional array, got 2 dimensions',
                 'fail_tasks refuses a two-dimensional task_ids');
SELECT throws_ok(format($$SELECT * FROM tforge.fail_tasks('w', ARRAY[%s], ARRAY[['x']])$$, :h),
                 '22023', 'errors must be a one-dimensional array, got 2 dimensions',
                 'and two-dimensional errors');
SELECT throws_ok(format($$SELECT * FROM tforge.complete_tasks('w', ARRAY[%s], ARRAY['{}', '{}']::jsonb[])$$, :h),
                 '22023', 'usages and claim_tokens must be NULL or as long as task_ids (1)',
                 'arrays of another length are named together, as submit_tasks names them');
SELECT results_eq(format('SELECT status::text, runtime_s FROM tforge.tasks WHERE task_id = %s', :h),
                  $$VALUES ('running', NULL::float8)$$, 'the refused calls left the held task running');

-- ------------------------------------------------- many items of one task
-- x is w's, y another worker's. Items 1-100: x under a token that is not
-- its claim's; 101-200: y; 201: x under its token; 202-251: x without a
-- token. As 251 single calls: 100 stale, 100 another worker's, done, then
-- 50 that find x done (one round per item of x, each round only its own).
SELECT 1 FROM tforge.complete_task(:h, 'w', NULL, :ht);
SELECT tforge.submit_task('cpu-light') AS x \gset
SELECT claim_token AS xt FROM tforge.claim_tasks('w') \gset
SELECT tforge.submit_task('cpu-light') AS y \gset
SELECT 1 FROM tforge.claim_tasks('other');
CREATE TEMP TABLE many AS
SELECT row_number() OVER () AS n, * FROM tforge.complete_tasks('w',
  array_fill(:x::bigint, ARRAY[100]) || array_fill(:y::bigint, ARRAY[100]) || ARRAY[:x::bigint] || array_fill(:x::bigint, ARRAY[50]),
  NULL,
  array_fill(-1::bigint, ARRAY[100]) || array_fill(NULL::bigint, ARRAY[100]) || ARRAY[:xt::bigint] || array_fill(NULL::bigint, ARRAY[50]));
SELECT results_eq('SELECT min(n), max(n), status, detail, count(*) FROM many GROUP BY status, detail ORDER BY min(n)',
  format($$VALUES (1::bigint, 100::bigint, 'stale_token', 'task %s was claimed again: claim token -1 is stale, the current claim is %s', 100::bigint),
                  (101, 200, 'not_held', 'task %s is running for worker "other"', 100),
                  (201, 201, 'done', NULL, 1),
                  (202, 251, 'not_held', 'task %s is done', 50)$$, :x, :xt, :y, :x),
  'a batch naming one task 151 times resolves as 151 single calls would');
SELECT results_eq(format('SELECT status::text, worker_id FROM tforge.tasks WHERE task_id IN (%s, %s) ORDER BY task_id', :x, :y),
                  $$VALUES ('done', 'w'), ('running', 'other')$$, 'x completed once, y left to its worker');

-- A batch larger than palloc can hold per task is refused before any work
-- (54000), not left to fail allocating (XX000).
SELECT throws_ok($$SELECT count(*) FROM tforge.complete_tasks('w', array_fill(NULL::bigint, ARRAY[5000000]))$$,
                 '54000', 'a batch of 5000000 tasks is too large', 'complete_tasks: a batch too large is 54000');
SELECT throws_ok($$SELECT count(*) FROM tforge.fail_tasks('w', array_fill(NULL::bigint, ARRAY[5000000]), NULL)$$,
                 '54000', 'a batch of 5000000 tasks is too large', 'fail_tasks: a batch too large is 54000');
-- 4,000,000 completions take 4,000,000 learnings of 280 bytes, beyond the
-- 1 GB palloc accepts (they failed with XX000, "invalid memory alloc request
-- size 1120000000"): refused as well.
SELECT throws_ok($$SELECT count(*) FROM tforge.complete_tasks('w', array_fill(NULL::bigint, ARRAY[4000000]))$$,
                 '54000', 'a batch of 4000000 tasks is too large', 'complete_tasks: a batch whose learnings exceed 1 GB is 54000');
SELECT throws_ok($$SELECT count(*) FROM tforge.fail_tasks('w', array_fill(NULL::bigint, ARRAY[4000000]), NULL)$$,
                 '54000', 'a batch of 4000000 tasks is too large', 'fail_tasks: the same bound');

SELECT * FROM finish();
ROLLBACK;
