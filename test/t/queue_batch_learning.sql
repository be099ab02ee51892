-- Batches in C (issue 16): one complete_tasks learns, in one statement and
-- writing each learned row once, bit for bit what the same completions made
-- one at a time learn, also when the batch mixes types, keys seen before and
-- keys new in the middle of it, and runtimes tau cannot learn from. Items
-- naming the same task twice resolve as a sequence of calls would. Learned
-- rows read back through the transaction's cache of the versions it wrote
-- (rowcache.c) stay right across SAVEPOINT / ROLLBACK TO, exception blocks
-- and plain SQL writes of the same rows; concurrent batches of one type do
-- not deadlock and lose nothing; completion frees GPU blocks; a read-only
-- transaction is refused.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = error;
BEGIN;
SELECT plan(30);

-- ------------------------------------------------------- mixed exact batch
-- Items 1..60: type a or b, a key among k0..k9 (NULL every fifth; k6..k9
-- first appear after item 10), and a usage whose runtime is not learnable
-- every eleventh item. Items 1..10 warm both sides up one call at a time;
-- items 11..60 are one complete_tasks on side 'b', sixty complete_task calls
-- on side 's'.
SELECT count(tforge.define_task_type(t, 7)) FROM (VALUES ('s-a'), ('s-b'), ('b-a'), ('b-b')) v(t);
CREATE TEMP TABLE items AS
SELECT i, CASE WHEN i % 3 = 0 THEN 'b' ELSE 'a' END AS tt,
       CASE WHEN i % 5 = 0 THEN NULL WHEN i <= 10 THEN 'k' || (i * 7 % 6) ELSE 'k' || (i * 7 % 10) END AS key,
       jsonb_build_object('runtime_s', CASE WHEN i % 11 = 0 THEN -1 ELSE 0.5 + (i * 0.731) % 7 END,
                          'cpu_s', 0.1 + (i * 0.37) % 3, 'memory_bytes', 1000000 + i * 4099) AS usage
  FROM generate_series(1, 60) i;
CREATE FUNCTION pg_temp.run(side text, batch boolean, lo int, hi int) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[]; toks bigint[]; us jsonb[]; r record;
BEGIN
  FOR r IN SELECT * FROM items WHERE i BETWEEN lo AND hi ORDER BY i LOOP
    PERFORM tforge.submit_task(side || '-' || r.tt, task_key => r.key);
  END LOOP;
  SELECT array_agg(c.task_id ORDER BY c.task_id), array_agg(c.claim_token ORDER BY c.task_id) INTO ids, toks
    FROM tforge.claim_tasks('w', 1000, task_types => ARRAY[side || '-a', side || '-b']) c;
  us := ARRAY(SELECT usage FROM items WHERE i BETWEEN lo AND hi ORDER BY i);
  IF batch THEN
    RETURN QUERY SELECT c.status FROM tforge.complete_tasks('w', ids, us, toks) c;
  ELSE
    FOR j IN 1 .. pg_catalog.array_length(ids, 1) LOOP
      PERFORM tforge.complete_task(ids[j], 'w', us[j], toks[j]);
      RETURN NEXT 'done';
    END LOOP;
  END IF;
END
$$;
SELECT count(*) FROM pg_temp.run('s', false, 1, 10);
SELECT count(*) FROM pg_temp.run('b', false, 1, 10);
SELECT count(*) FROM pg_temp.run('s', false, 11, 60);
SELECT is((SELECT count(*) FROM pg_temp.run('b', true, 11, 60) s WHERE s = 'done'), 50::bigint,
          'one complete_tasks completes all fifty items');
SELECT is((SELECT string_agg(float8send(tau_s)::text, ',' ORDER BY task_type) FROM tforge.task_tau WHERE task_type LIKE 'b-%'),
          (SELECT string_agg(float8send(tau_s)::text, ',' ORDER BY task_type) FROM tforge.task_tau WHERE task_type LIKE 's-%'),
          'tau of both types after the batch is bit for bit that of single completions');
SELECT is((SELECT string_agg(samples::text, ',' ORDER BY task_type) FROM tforge.task_tau WHERE task_type LIKE 'b-%'),
          (SELECT string_agg(samples::text, ',' ORDER BY task_type) FROM tforge.task_tau WHERE task_type LIKE 's-%'),
          'with as many samples (unlearnable runtimes left out on both sides)');
SELECT results_eq(
  $$SELECT substr(task_type, 3), task_key, runtime::text, cpu::text, memory::text, gpu_memory::text, scores::text,
           recent::text, calibration::text, pooled::text, completions
      FROM tforge.profiles WHERE task_type LIKE 'b-%' ORDER BY 1, 2 NULLS FIRST$$,
  $$SELECT substr(task_type, 3), task_key, runtime::text, cpu::text, memory::text, gpu_memory::text, scores::text,
           recent::text, calibration::text, pooled::text, completions
      FROM tforge.profiles WHERE task_type LIKE 's-%' ORDER BY 1, 2 NULLS FIRST$$,
  'every profile (types, keys seen before, keys new in the batch) equals that of single completions');
SELECT is((SELECT count(*) FROM tforge.profiles WHERE task_type LIKE 'b-%' AND task_key IN ('k6', 'k7', 'k8', 'k9')), 8::bigint,
          'keys first seen inside the batch got their profiles');
SELECT results_eq(
  $$SELECT k.runtime_s, k.deadline_met FROM tforge.tasks k WHERE task_type LIKE 'b-%' ORDER BY task_id$$,
  $$SELECT k.runtime_s, k.deadline_met FROM tforge.tasks k WHERE task_type LIKE 's-%' ORDER BY task_id$$,
  'the tasks record the same runtimes');

-- ------------------------------------------------------- the same task twice
-- e's lease expired and w claimed it again: its first token is stale.
SELECT tforge.submit_task('cpu-light') AS e \gset
SELECT claim_token AS et1 FROM tforge.claim_tasks('w', 1, task_types => ARRAY['cpu-light']) \gset
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 s' WHERE task_id = :e;
SELECT claim_token AS et2 FROM tforge.claim_tasks('w', 1, task_types => ARRAY['cpu-light']) \gset
SELECT tforge.submit_task('cpu-light') AS x \gset
SELECT 1 FROM tforge.claim_tasks('w', 1, task_types => ARRAY['cpu-light']);
SELECT results_eq(
  format($$SELECT task_id, status FROM tforge.complete_tasks('w', ARRAY[%s, %s, %s, NULL, %s]::bigint[],
                                                             NULL, ARRAY[%s, %s, NULL, NULL, NULL]::bigint[])$$,
         :e, :e, :x, :x, :et1, :et2),
  format($$VALUES (%s::bigint, 'stale_token'), (%s, 'done'), (%s, 'done'), (NULL, 'missing'), (%s, 'not_held')$$, :e, :e, :x, :x),
  'items naming one task resolve in order: a stale token, then the current one completes it; a second item finds it done');
SELECT is((SELECT detail FROM tforge.complete_tasks('w', ARRAY[NULL::bigint])), 'task_id is NULL', 'a NULL id says so');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'cpu-light'), 2::bigint,
          'the two completions were learned once each');

-- -------------------------------------------- savepoints and the row cache
-- 'r-sav' runs cycles, some of them rolled back (ROLLBACK TO, an exception
-- block, a rolled-back batch); 'r-ref' runs only the ones that stand. Both
-- also see a set_tau and a reset_tau by plain SQL in between.
SELECT count(tforge.define_task_type(t, 7)) FROM (VALUES ('r-sav'), ('r-ref')) v(t);
CREATE FUNCTION pg_temp.cycle(tt text, key text, runtime float8) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  k record;
BEGIN
  PERFORM tforge.submit_task(tt, task_key => key);
  SELECT task_id, claim_token INTO k FROM tforge.claim_tasks('r', 1, task_types => ARRAY[tt]);
  PERFORM tforge.complete_task(k.task_id, 'r', jsonb_build_object('runtime_s', runtime), k.claim_token);
END
$$;
CREATE FUNCTION pg_temp.batch(tt text, keys text[], runtimes float8[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
BEGIN
  PERFORM tforge.submit_task(tt, task_key => k) FROM pg_catalog.unnest(keys) k;
  ids := ARRAY(SELECT task_id FROM tforge.claim_tasks('r', 100, task_types => ARRAY[tt]) ORDER BY task_id);
  PERFORM tforge.complete_tasks('r', ids, ARRAY(SELECT jsonb_build_object('runtime_s', x) FROM pg_catalog.unnest(runtimes) x));
END
$$;
SELECT pg_temp.cycle(t, 'k' || (i % 2), 1 + i) FROM (VALUES ('r-sav'), ('r-ref')) v(t), generate_series(1, 5) i;
SAVEPOINT s1;
SELECT pg_temp.cycle('r-sav', 'k' || (i % 2), 100 + i) FROM generate_series(1, 3) i;
SELECT pg_temp.batch('r-sav', ARRAY['k0', 'k1', 'k9'], ARRAY[50, 60, 70]::float8[]);
ROLLBACK TO SAVEPOINT s1;
SELECT pg_temp.cycle(t, 'k' || (i % 2), 2 + i) FROM (VALUES ('r-sav'), ('r-ref')) v(t), generate_series(1, 4) i;
DO $$
BEGIN
  PERFORM pg_temp.cycle('r-sav', 'k0', 500);
  PERFORM pg_temp.batch('r-sav', ARRAY['k1', 'k0'], ARRAY[400, 300]::float8[]);
  RAISE EXCEPTION 'undo';
EXCEPTION WHEN raise_exception THEN
  NULL;
END
$$;
SELECT pg_temp.batch(t, ARRAY['k1', 'k0', 'k1'], ARRAY[3, 4, 5]::float8[]) FROM (VALUES ('r-sav'), ('r-ref')) v(t);
SELECT is((SELECT float8send(tau_s) FROM tforge.task_tau WHERE task_type = 'r-sav'),
          (SELECT float8send(tau_s) FROM tforge.task_tau WHERE task_type = 'r-ref'),
          'after ROLLBACK TO and an exception block, tau is bit for bit that of the cycles that stand');
SELECT results_eq(
  $$SELECT task_key, runtime::text, scores::text, recent::text, pooled::text, completions FROM tforge.profiles WHERE task_type = 'r-sav' ORDER BY 1 NULLS FIRST$$,
  $$SELECT task_key, runtime::text, scores::text, recent::text, pooled::text, completions FROM tforge.profiles WHERE task_type = 'r-ref' ORDER BY 1 NULLS FIRST$$,
  'and so are the profiles (the rolled-back key k9 has none)');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'r-sav'), 12::bigint, 'twelve runtimes stand');
-- tau written by plain SQL in this transaction: the next completion learns from it
SELECT tforge.set_tau('r-sav', 100);
SELECT pg_temp.cycle('r-sav', 'k0', 10);
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'r-sav'), 0.2 * 10 + 0.8 * 100::float8,
          'a completion after set_tau learns from the tau set_tau wrote');
SELECT pg_temp.batch('r-sav', ARRAY['k0', 'k1'], ARRAY[20, 30]::float8[]);
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'r-sav'),
          0.2 * 30 + 0.8 * (0.2 * 20 + 0.8 * (0.2 * 10 + 0.8 * 100::float8)), 'and so does a batch after it, in order');
SELECT tforge.reset_tau('r-sav');
SELECT pg_temp.batch('r-sav', ARRAY['k0'], ARRAY[2]::float8[]);
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'r-sav'), 0.2 * 2 + 0.8 * 7::float8,
          'after reset_tau a batch starts again from the default');
SELECT is((SELECT samples FROM tforge.task_tau WHERE task_type = 'r-sav'), 1::bigint, 'with one sample');
SAVEPOINT s2;
SELECT tforge.reset_tau('r-sav');
ROLLBACK TO SAVEPOINT s2;
SELECT pg_temp.cycle('r-sav', 'k0', 4);
SELECT is((SELECT tau_s FROM tforge.task_tau WHERE task_type = 'r-sav'), 0.2 * 4 + 0.8 * (0.2 * 2 + 0.8 * 7::float8),
          'a rolled-back reset_tau leaves tau as it was');

-- ---------------------------------------------------------------- failures
SET LOCAL tforge.retry_backoff_base = 100;
SELECT tforge.submit_task('mixed') AS f \gset
SELECT 1 FROM tforge.claim_tasks('w', 1, task_types => ARRAY['mixed']);
SELECT clock_timestamp() AS before \gset
SELECT is((SELECT status FROM tforge.fail_tasks('w', ARRAY[:f]::bigint[], ARRAY['boom'])), 'pending', 'a failure with attempts left is retried');
SELECT ok((SELECT available_at BETWEEN :'before'::timestamptz + interval '100 s' AND clock_timestamp() + interval '100 s'
             FROM tforge.tasks WHERE task_id = :f), 'after base * 2^(attempts - 1) seconds, as fail_task waits');
SELECT results_eq(format($$SELECT status::text, last_error, worker_id FROM tforge.tasks WHERE task_id = %s$$, :f),
                  $$VALUES ('pending'::text, 'boom'::text, NULL::text)$$, 'the error is kept and the worker released');
SELECT is((SELECT status FROM tforge.fail_tasks('w', ARRAY[:f, :f]::bigint[], NULL, false) ORDER BY status LIMIT 1), 'not_held',
          'a task no longer running is not failed again');
SELECT throws_ok($$SELECT * FROM tforge.fail_tasks(NULL, ARRAY[1::bigint], NULL)$$, '22004', NULL, 'a NULL worker_id is refused');

-- --------------------------------------------------------- GPU, read-only
SELECT tforge.gpu_add_device('qb', 10240);
SELECT tforge.submit_task('gpu-inference', resources => ROW(NULL, NULL, 1, 4000)::tforge.resources) AS g \gset
SELECT claim_token AS gt FROM tforge.claim_tasks('wg', 1, gpu_device => 'qb') \gset
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE tensor_id = 'task:' || :g AND status <> 'free'), 1::bigint,
          'the claim allocated the task''s block');
SELECT is((SELECT status FROM tforge.complete_tasks('wg', ARRAY[:g]::bigint[], NULL, ARRAY[:gt]::bigint[])), 'done', 'completed in a batch');
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE tensor_id = 'task:' || :g AND status <> 'free'), 0::bigint,
          'and its block is free');
SAVEPOINT ro;
SET LOCAL transaction_read_only = on;
SELECT throws_ok($$SELECT * FROM tforge.complete_tasks('w', ARRAY[1::bigint])$$, '25006', NULL, 'complete_tasks refuses in a read-only transaction');
SELECT throws_ok($$SELECT * FROM tforge.fail_tasks('w', ARRAY[1::bigint], NULL)$$, '25006', NULL, 'so does fail_tasks');
ROLLBACK TO SAVEPOINT ro;

-- -------------------------------------------------- concurrent batches
-- s1 and s2 each hold ten tasks of 'memory-heavy' over keys m0..m3; s1
-- completes its batch in an open transaction (keys in one order), s2 its
-- own meanwhile (keys in another) and waits for s1's learned rows; then
-- s1 commits: no deadlock, and every completion is learned once.
SELECT dblink_connect('s1', tap_connstr()), dblink_connect('s2', tap_connstr());
SELECT * FROM dblink('s1', $$SELECT count(*) FROM (SELECT tforge.submit_task('memory-heavy', task_key => 'm' || (i % 4)) FROM generate_series(1, 20) i) s$$) AS t(x text);
CREATE TEMP TABLE c1 AS SELECT * FROM dblink('s1', $$SELECT task_id FROM tforge.claim_tasks('c1', 10, task_types => ARRAY['memory-heavy']) ORDER BY task_id$$) AS t(task_id bigint);
CREATE TEMP TABLE c2 AS SELECT * FROM dblink('s2', $$SELECT task_id FROM tforge.claim_tasks('c2', 10, task_types => ARRAY['memory-heavy']) ORDER BY task_id DESC$$) AS t(task_id bigint);
SELECT dblink_exec('s1', 'BEGIN');
SELECT * FROM dblink('s1', format($$SELECT count(*) FROM tforge.complete_tasks('c1', '%s'::bigint[], array_fill('{"runtime_s": 2}'::jsonb, ARRAY[10]))$$,
                                  (SELECT array_agg(task_id ORDER BY task_id)::text FROM c1))) AS t(x text);
SELECT dblink_send_query('s2', format($$SELECT count(*) FILTER (WHERE status = 'done') FROM tforge.complete_tasks('c2', '%s'::bigint[], array_fill('{"runtime_s": 3}'::jsonb, ARRAY[10]))$$,
                                      (SELECT array_agg(task_id ORDER BY task_id DESC)::text FROM c2)));
SELECT pg_sleep(0.3);
SELECT dblink_exec('s1', 'COMMIT');
SELECT is((SELECT x FROM dblink_get_result('s2') AS t(x bigint)), 10::bigint, 's2''s batch completed all ten after s1 committed');
SELECT * FROM dblink_get_result('s2') AS t(x bigint);
SELECT is((SELECT x FROM dblink('s1', $$SELECT samples FROM tforge.task_tau WHERE task_type = 'memory-heavy'$$) AS t(x bigint)), 20::bigint,
          'tau learned all twenty runtimes');
SELECT is((SELECT x FROM dblink('s1', $$SELECT sum(completions) FILTER (WHERE task_key IS NULL)::text || '/' || sum(completions) FILTER (WHERE task_key IS NOT NULL) FROM tforge.profiles WHERE task_type = 'memory-heavy'$$) AS t(x text)),
          '20/20', 'the type''s profile and its keys'' profiles counted every completion once');
SELECT dblink_disconnect('s1'), dblink_disconnect('s2');

SELECT * FROM finish();
ROLLBACK;
