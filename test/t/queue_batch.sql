-- Batches (issue 16): submit_tasks, complete_tasks and fail_tasks learn
-- exactly what the single calls learn, report refused items per row and
-- lose nothing; concurrent batch claimers never share a task; submits
-- NOTIFY tforge_tasks once per type per transaction, never on abort.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(33);

-- ------------------------------------------------------------ exact learning
-- Two types with the same defaults run the same rounds: each round submits
-- ten tasks over three keys, claims them and completes them in task_id
-- order with the same usages; 'bt-single' one call per task, 'bt-batch'
-- one submit_tasks and one complete_tasks per round. Later rounds' submits
-- predict from what earlier rounds learned, so the scores compare that too.
SELECT 1 FROM tforge.define_task_type('bt-single', 7);
SELECT 1 FROM tforge.define_task_type('bt-batch', 7);
CREATE FUNCTION pg_temp.run_rounds(tt text, batch boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[]; toks bigint[]; usages jsonb[]; keys text[];
BEGIN
  FOR r IN 1 .. 5 LOOP
    keys := ARRAY(SELECT 'k' || (i % 3) FROM generate_series(1, 10) i);
    IF batch THEN
      PERFORM tforge.submit_tasks(tt, array_fill('{}'::jsonb, ARRAY[10]), keys);
    ELSE
      FOR i IN 1 .. 10 LOOP PERFORM tforge.submit_task(tt, task_key => keys[i]); END LOOP;
    END IF;
    SELECT array_agg(task_id ORDER BY task_id), array_agg(claim_token ORDER BY task_id)
      INTO ids, toks FROM tforge.claim_tasks('w', 10);
    usages := ARRAY(SELECT jsonb_build_object('runtime_s', 0.5 + ((r * 10 + i) * 0.731) % 7,
                                              'cpu_s', 0.1 + ((r * 10 + i) * 0.37) % 3,
                                              'memory_bytes', 1000000 + (r * 10 + i) * 4099)
                      FROM generate_series(1, 10) i);
    IF batch THEN
      PERFORM tforge.complete_tasks('w', ids, usages, toks);
    ELSE
      FOR i IN 1 .. 10 LOOP PERFORM tforge.complete_task(ids[i], 'w', usages[i], toks[i]); END LOOP;
    END IF;
  END LOOP;
END
$$;
SELECT pg_temp.run_rounds('bt-single', false);
SELECT pg_temp.run_rounds('bt-batch', true);

SELECT is((SELECT count(*) FROM tforge.tasks WHERE task_type = 'bt-batch' AND status = 'done'), 50::bigint,
          'every task of the batch rounds is done');
SELECT isnt((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'bt-batch'), 7::float8,
            'the batch rounds moved tau off its default');
SELECT is((SELECT float8send(tau_s) FROM tforge.task_tau WHERE task_type = 'bt-batch'),
          (SELECT float8send(tau_s) FROM tforge.task_tau WHERE task_type = 'bt-single'),
          'tau after batches is bit for bit the tau of single completions');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'bt-batch'),
          (SELECT samples FROM tforge.task_tau WHERE task_type = 'bt-single'), 'with as many samples');
SELECT results_eq(
  $$SELECT task_key, runtime::text, cpu::text, memory::text, gpu_memory::text, scores::text, completions
      FROM tforge.profiles WHERE task_type = 'bt-batch' ORDER BY task_key NULLS FIRST$$,
  $$SELECT task_key, runtime::text, cpu::text, memory::text, gpu_memory::text, scores::text, completions
      FROM tforge.profiles WHERE task_type = 'bt-single' ORDER BY task_key NULLS FIRST$$,
  'profiles (type and keys) after batches equal those of single completions');
SELECT is((SELECT count(*) FROM tforge.profiles WHERE task_type = 'bt-batch'), 4::bigint,
          'one type profile and three key profiles');
SELECT results_eq(
  $$SELECT task_key, source, used, predictions::text, confidences::text, float8send(actual_s)
      FROM tforge.prediction_scores WHERE task_type = 'bt-batch' ORDER BY task_id$$,
  $$SELECT task_key, source, used, predictions::text, confidences::text, float8send(actual_s)
      FROM tforge.prediction_scores WHERE task_type = 'bt-single' ORDER BY task_id$$,
  'prediction scores after batches equal those of single completions');
SELECT results_eq(
  $$SELECT float8send(predicted_runtime_s), deadline - submitted_at FROM tforge.tasks WHERE task_type = 'bt-batch' ORDER BY task_id$$,
  $$SELECT float8send(predicted_runtime_s), deadline - submitted_at FROM tforge.tasks WHERE task_type = 'bt-single' ORDER BY task_id$$,
  'submit_tasks predicted and set deadlines as submit_task did');

-- ------------------------------------------------------------ mixed batches
-- Tasks: a (held by w), b (held by w, completed twice in the batch),
-- c (held by another worker), d (done already), e (its lease expired and it
-- was claimed again: w's token is stale), plus an id that does not exist.
DELETE FROM tforge.tasks;
SELECT tforge.submit_task('cpu-light') AS d \gset
SELECT claim_token AS dt FROM tforge.claim_tasks('w') \gset
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
SELECT tau_s AS tau0 FROM tforge.task_tau WHERE task_type = 'cpu-light' \gset

CREATE TEMP TABLE mixed AS
SELECT row_number() OVER () AS n, * FROM tforge.complete_tasks('w',
  ARRAY[:a, :c, :d, :e, 999999999, :b, :b],
  ARRAY['{"runtime_s": 4}', '{"runtime_s": 4}', '{"runtime_s": 4}', '{"runtime_s": 4}',
        '{"runtime_s": 4}', '{"runtime_s": 6}', '{"runtime_s": 6}']::jsonb[],
  ARRAY[:at, NULL, NULL, :et1, NULL, :bt, :bt]::bigint[]);
SELECT results_eq('SELECT task_id, status FROM mixed ORDER BY n',
  format($$VALUES (%s::bigint, 'done'), (%s, 'not_held'), (%s, 'not_held'), (%s, 'stale_token'),
                  (999999999, 'missing'), (%s, 'done'), (%s, 'not_held')$$, :a, :c, :d, :e, :b, :b),
  'a mixed batch reports every item, in order');
SELECT is((SELECT count(*) FROM mixed WHERE status <> 'done' AND detail IS NULL), 0::bigint,
          'every refused item says why');
SELECT results_eq(format('SELECT task_id, status::text, worker_id, runtime_s FROM tforge.tasks WHERE task_id IN (%s, %s, %s, %s, %s) ORDER BY task_id', :d, :c, :e, :a, :b),
  format($$VALUES (%s::bigint, 'done', 'w', 3::float8), (%s, 'running', 'other', NULL),
                  (%s, 'running', 'w', NULL), (%s, 'done', 'w', 4), (%s, 'done', 'w', 6)$$, :d, :c, :e, :a, :b),
  'the held tasks were completed, the others left unchanged');
-- tau = 0.2 * 6 + 0.8 * (0.2 * 4 + 0.8 * tau0): the two completions, in order
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'cpu-light'),
          0.2 * 6 + 0.8 * (0.2 * 4 + 0.8 * :tau0::float8), 'tau learned exactly the two completions, in order');
SELECT is((SELECT status FROM tforge.complete_tasks('w', ARRAY[:e], NULL, ARRAY[:et2])), 'done',
          'the current token completes the re-claimed task');

-- Failures: f retries, g is dead (no retry left), h is not held.
SELECT tforge.submit_task('cpu-light', max_attempts => 2) AS f \gset
SELECT claim_token AS ft FROM tforge.claim_tasks('w') \gset
SELECT tforge.submit_task('cpu-light', max_attempts => 1) AS g \gset
SELECT 1 FROM tforge.claim_tasks('w');
SELECT results_eq(
  format($$SELECT task_id, status FROM tforge.fail_tasks('w', ARRAY[%s, %s, %s], ARRAY['e1', 'e2', 'e3'], true, ARRAY[%s, NULL, NULL]::bigint[])$$, :f, :g, :c, :ft),
  format($$VALUES (%s::bigint, 'pending'), (%s, 'dead'), (%s, 'not_held')$$, :f, :g, :c),
  'fail_tasks reports the new status or why not, per item');
SELECT results_eq(format('SELECT task_id, status::text, last_error FROM tforge.tasks WHERE task_id IN (%s, %s, %s) ORDER BY task_id', :c, :f, :g),
  format($$VALUES (%s::bigint, 'running', NULL::text), (%s, 'pending', 'e1'), (%s, 'dead', 'e2')$$, :c, :f, :g),
  'fail_tasks changed the held tasks only');

-- Arguments: arrays of other lengths and NULL arrays fail the whole call.
SELECT throws_ok(format($$SELECT * FROM tforge.complete_tasks('w', ARRAY[%s], ARRAY['{}', '{}']::jsonb[])$$, :c),
                 '22023', NULL, 'usages of another length are refused');
SELECT throws_ok(format($$SELECT * FROM tforge.complete_tasks('w', ARRAY[%s], NULL, ARRAY[1, 2]::bigint[])$$, :c),
                 '22023', NULL, 'claim_tokens of another length are refused');
SELECT throws_ok($$SELECT * FROM tforge.complete_tasks('w', NULL)$$, '22004', NULL, 'NULL task_ids are refused');
SELECT throws_ok($$SELECT * FROM tforge.complete_tasks(NULL, ARRAY[1::bigint])$$, '22004', NULL, 'a NULL worker_id is refused');
SELECT throws_ok($$SELECT * FROM tforge.fail_tasks('w', ARRAY[1::bigint], ARRAY['x', 'y'])$$, '22023', NULL,
                 'errors of another length are refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{}']::jsonb[], ARRAY['k1', 'k2'])$$, '22023', NULL,
                 'task_keys of another length are refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('cpu-light', NULL)$$, '22004', NULL, 'NULL payloads are refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('no-such-type', ARRAY['{}']::jsonb[])$$, '42704', NULL,
                 'an unknown type is refused as submit_task refuses it');
SELECT is((SELECT count(*) FROM tforge.complete_tasks('w', '{}')), 0::bigint, 'an empty batch completes nothing');
CREATE TEMP TABLE submitted AS
SELECT * FROM tforge.submit_tasks('cpu-light', ARRAY['{"a": 1}', NULL]::jsonb[], ARRAY['x', NULL], ARRAY[5, NULL]) AS s(task_id);
SELECT results_eq($$SELECT task_key, priority, payload FROM tforge.tasks JOIN submitted USING (task_id) ORDER BY task_id$$,
                  $$VALUES ('x'::text, 5, '{"a": 1}'::jsonb), (NULL, 0, '{}')$$,
                  'submit_tasks takes keys and priorities by position; NULL means the default');

-- ------------------------------------------------------ concurrent claimers
-- Two sessions claim batches of 60 from 100 pending tasks, the first one
-- holding its claim open: they never get the same task.
SELECT dblink_connect('s1', tap_connstr()), dblink_connect('s2', tap_connstr());
SELECT * FROM dblink('s1', $$SELECT count(*) FROM tforge.submit_tasks('cpu-heavy', array_fill('{}'::jsonb, ARRAY[100]))$$) AS t(x text);
SELECT dblink_exec('s1', 'BEGIN');
CREATE TEMP TABLE got1 AS SELECT * FROM dblink('s1', $$SELECT task_id FROM tforge.claim_tasks('c1', 60) WHERE task_type = 'cpu-heavy'$$) AS t(task_id bigint);
CREATE TEMP TABLE got2 AS SELECT * FROM dblink('s2', $$SELECT task_id FROM tforge.claim_tasks('c2', 60) WHERE task_type = 'cpu-heavy'$$) AS t(task_id bigint);
SELECT dblink_exec('s1', 'COMMIT');
SELECT is((SELECT count(*) FROM got1 JOIN got2 USING (task_id)), 0::bigint, 'concurrent batch claimers share no task');
SELECT is((SELECT count(*) FROM got1) + (SELECT count(*) FROM got2), 100::bigint, 'and together they claimed all 100');

-- ---------------------------------------------------------------- wake-ups
-- s2 listens; s1 submits in transactions; a query on s2 reads what arrived.
CREATE FUNCTION pg_temp.notes() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT 1 FROM dblink('s2', 'SELECT 1') AS t(x int) WHERE false;
  SELECT extra FROM dblink_get_notify('s2') WHERE notify_name = 'tforge_tasks' ORDER BY extra;
$$;
SELECT dblink_exec('s2', 'LISTEN tforge_tasks');
SELECT pg_temp.notes();  -- nothing pending yet
SELECT dblink_exec('s1', 'BEGIN');
SELECT * FROM dblink('s1', $$SELECT count(*) FROM (VALUES (tforge.submit_task('cpu-light')), (tforge.submit_task('cpu-light')), (tforge.submit_task('mixed'))) v$$) AS t(x text);
SELECT * FROM dblink('s1', $$SELECT count(*) FROM tforge.submit_tasks('cpu-light', array_fill('{}'::jsonb, ARRAY[50]))$$) AS t(x text);
SELECT is((SELECT count(*) FROM pg_temp.notes()), 0::bigint, 'nothing is sent before commit');
SELECT dblink_exec('s1', 'COMMIT');
SELECT pg_sleep(0.2);
SELECT results_eq('SELECT * FROM pg_temp.notes()', $$VALUES ('cpu-light'::text), ('mixed')$$,
                  'a committed transaction sends one notification per type, the type as payload');
SELECT dblink_exec('s1', 'BEGIN');
SELECT * FROM dblink('s1', $$SELECT tforge.submit_task('cpu-light')$$) AS t(x text);
SELECT dblink_exec('s1', 'ROLLBACK');
SELECT pg_sleep(0.2);
SELECT is((SELECT count(*) FROM pg_temp.notes()), 0::bigint, 'an aborted transaction sends nothing');
SELECT * FROM dblink('s1', $$SELECT tforge.submit_task('memory-heavy')$$) AS t(x text);
SELECT pg_sleep(0.2);
SELECT results_eq('SELECT * FROM pg_temp.notes()', $$VALUES ('memory-heavy'::text)$$, 'a single submit wakes the listeners too');
-- Types submitted in a subtransaction that rolls back are not sent; those
-- of one that is released are.
SELECT dblink_exec('s1', 'BEGIN');
SELECT dblink_exec('s1', 'SAVEPOINT a');
SELECT * FROM dblink('s1', $$SELECT tforge.submit_task('gpu-inference')$$) AS t(x text);
SELECT dblink_exec('s1', 'ROLLBACK TO a');
SELECT dblink_exec('s1', 'SAVEPOINT b');
SELECT * FROM dblink('s1', $$SELECT tforge.submit_task('gpu-training')$$) AS t(x text);
SELECT dblink_exec('s1', 'RELEASE b');
SELECT dblink_exec('s1', 'COMMIT');
SELECT pg_sleep(0.2);
SELECT results_eq('SELECT * FROM pg_temp.notes()', $$VALUES ('gpu-training'::text)$$,
                  'a rolled-back subtransaction''s type is not sent, a released one''s is');
-- A listener that starts while a submitting transaction is open is woken
-- by its commit (tforge notifies only while a backend listens).
SELECT dblink_connect('s3', tap_connstr());
SELECT dblink_exec('s1', 'BEGIN');
SELECT * FROM dblink('s1', $$SELECT tforge.submit_task('cpu-heavy')$$) AS t(x text);
SELECT dblink_exec('s3', 'LISTEN tforge_tasks');
SELECT dblink_exec('s1', 'COMMIT');
SELECT pg_sleep(0.2);
SELECT 1 FROM dblink('s3', 'SELECT 1') AS t(x int) WHERE false;
SELECT results_eq($$SELECT extra FROM dblink_get_notify('s3') WHERE notify_name = 'tforge_tasks'$$,
                  $$VALUES ('cpu-heavy'::text)$$, 'a listener that started before the commit is woken');
SELECT dblink_disconnect('s1'), dblink_disconnect('s2'), dblink_disconnect('s3');

SELECT * FROM finish();
ROLLBACK;
