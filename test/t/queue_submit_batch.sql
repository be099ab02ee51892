-- submit_tasks (issue 16, src/submit_batch.c): one INSERT for a batch, and
-- every task gets the row submit_task would have given it: deadline,
-- predicted runtime, laxity key, priority, resources and the predictions
-- stored for scoring, over mixed keys (learned, unlearned, none), requested
-- bounds, declared resources and two types. The batch goes through the
-- executor (triggers and constraints on tforge.tasks apply to every row);
-- bad arguments fail the whole call and change nothing; read-only
-- transactions are refused.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(32);

SET LOCAL client_min_messages = error;
SET LOCAL tforge.learning_min_executions = 3;
SET LOCAL tforge.learning_confidence_threshold = 0;

-- ------------------------------------------------------------ learned state
-- Type sb-a learns from completions: key 'hot' 6 runs (learning applies),
-- key 'cold' 1 run (too few: the key's profile has runtimes, but tau
-- predicts), no key 4 runs. Type sb-b has learned nothing.
SELECT 1 FROM tforge.define_task_type('sb-a', 8);
SELECT 1 FROM tforge.define_task_type('sb-b', 3);
CREATE FUNCTION pg_temp.run(tt text, k text, usage jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE id bigint; tok bigint;
BEGIN
  id := tforge.submit_task(tt, task_key => k);
  SELECT task_id, claim_token INTO id, tok FROM tforge.claim_tasks('learner', 1);
  PERFORM tforge.complete_task(id, 'learner', usage, tok);
END $$;
SELECT pg_temp.run('sb-a', 'hot', jsonb_build_object('runtime_s', 2 + i * 0.25, 'cpu_s', 1 + i * 0.1,
                                                     'memory_bytes', 1000000 + i * 1000))
  FROM generate_series(1, 6) i;
SELECT pg_temp.run('sb-a', 'cold', '{"runtime_s": 30, "memory_bytes": 5000}');
SELECT pg_temp.run('sb-a', NULL, jsonb_build_object('runtime_s', 5 + i)) FROM generate_series(1, 4) i;
SELECT is((SELECT count(*) FROM tforge.tasks WHERE status <> 'done'), 0::bigint, 'the learning rounds left no task pending');

-- ------------------------------------------------- batch == single submits
-- The same tasks twice in this transaction (one arrival time, no learning
-- in between): once as one submit_tasks per type, once as submit_task
-- calls. Positions: 1 hot, 2 hot with requested_s 1.5 (bounds the
-- estimate), 3 hot declaring resources (tau, its resources kept), 4 hot
-- declaring only a cpu count (any declared field makes the task declared:
-- tau), 5 cold, 6 no key, 7 a key never seen, 8 hot again with priority 7,
-- 9 no key with an all-NULL resources row (undeclared: learning applies).
CREATE TEMP TABLE spec (tt text, pos int, payload jsonb, task_key text, priority int, resources tforge.resources);
INSERT INTO spec
SELECT tt, pos, payload::jsonb, task_key, priority, resources
  FROM (VALUES ('sb-a'), ('sb-b')) t(tt),
       (VALUES (1, '{"n": 1}', 'hot', NULL::int, NULL::tforge.resources),
               (2, '{"n": 2, "requested_s": 1.5}', 'hot', 1, NULL),
               (3, '{"n": 3}', 'hot', 2, ROW(2, 4096, 0, 0)::tforge.resources),
               (4, '{"n": 4}', 'hot', 3, ROW(4, NULL, NULL, NULL)::tforge.resources),
               (5, NULL, 'cold', 4, NULL),
               (6, '{"n": 6}', NULL, 5, NULL),
               (7, '{"n": 7}', 'never-seen', 6, NULL),
               (8, '{"n": 8}', 'hot', 7, NULL),
               (9, '{"n": 9}', NULL, -2, ROW(NULL, NULL, NULL, NULL)::tforge.resources)) s(pos, payload, task_key, priority, resources);

CREATE TEMP TABLE batch_ids AS
SELECT s.tt, b.task_id, b.pos
  FROM (SELECT DISTINCT tt FROM spec) s,
       LATERAL tforge.submit_tasks(s.tt,
                                   ARRAY(SELECT payload FROM spec WHERE spec.tt = s.tt ORDER BY pos),
                                   ARRAY(SELECT task_key FROM spec WHERE spec.tt = s.tt ORDER BY pos),
                                   ARRAY(SELECT priority FROM spec WHERE spec.tt = s.tt ORDER BY pos),
                                   ARRAY(SELECT resources FROM spec WHERE spec.tt = s.tt ORDER BY pos))
               WITH ORDINALITY AS b(task_id, pos);
CREATE TEMP TABLE single_ids AS
SELECT tt, pos, tforge.submit_task(tt, payload, resources, priority, task_key) AS task_id
  FROM (SELECT * FROM spec ORDER BY tt, pos) s;

SELECT is((SELECT count(*) FROM batch_ids), 18::bigint, 'submit_tasks returned one id per task');
SELECT is((SELECT array_agg(pos ORDER BY task_id) FROM batch_ids WHERE tt = 'sb-a'),
          (SELECT array_agg(pos ORDER BY pos) FROM batch_ids WHERE tt = 'sb-a'),
          'the ids come back in input order and ascend with it');
SELECT is((SELECT array_agg((t.payload->>'n')::int ORDER BY b.pos) FROM batch_ids b JOIN tforge.tasks t USING (task_id)
            WHERE b.tt = 'sb-a' AND t.payload ? 'n'),
          ARRAY[1, 2, 3, 4, 6, 7, 8, 9], 'each id is the task of its position');

-- the learning cases the comparison must cover actually occur
SELECT is((SELECT array_agg(t.prediction_strategy || '/' || t.prediction_source ORDER BY b.pos)
             FROM batch_ids b JOIN tforge.tasks t USING (task_id) WHERE b.tt = 'sb-a'),
          ARRAY['adaptive/key', 'adaptive/key', 'tau/type', 'tau/type', 'tau/type', 'adaptive/type',
                'adaptive/type', 'adaptive/key', 'adaptive/type'],
          'sb-a: learned keys, bounds, declared resources, too few runs, no key, unknown key');
SELECT is((SELECT array_agg(DISTINCT t.prediction_strategy || '/' || t.predictions_source)
             FROM batch_ids b JOIN tforge.tasks t USING (task_id) WHERE b.tt = 'sb-b'),
          ARRAY['tau/default'], 'sb-b: nothing learned, tau for all');

CREATE FUNCTION pg_temp.cols(ids text) RETURNS TABLE (tt text, pos int, r text) LANGUAGE sql AS $$
  SELECT i.tt, i.pos,
         concat_ws(' | ', t.task_type, t.task_key, t.payload::text, t.resources::text, t.priority,
                   t.status, t.submitted_at, t.available_at, t.deadline, float8send(t.predicted_runtime_s),
                   t.laxity_key, t.prediction_strategy, float8send(t.prediction_confidence),
                   t.prediction_source, t.max_attempts, t.attempts,
                   (SELECT string_agg(encode(float8send(x), 'hex'), ',') FROM unnest(t.predictions) x),
                   (SELECT string_agg(encode(float8send(x), 'hex'), ',') FROM unnest(t.prediction_confidences) x),
                   t.predictions_source)
    FROM tforge.tasks t
    JOIN (SELECT * FROM batch_ids WHERE ids = 'batch' UNION ALL SELECT tt, task_id, pos FROM single_ids WHERE ids = 'single') i
      USING (task_id)
$$;
SELECT results_eq($$SELECT tt, pos, r FROM pg_temp.cols('batch') ORDER BY tt, pos$$,
                  $$SELECT tt, pos, r FROM pg_temp.cols('single') ORDER BY tt, pos$$,
                  'every column of every batch row equals the single submit''s (float8 columns bit for bit)');

-- Independently of the code under test: a tau-predicted task's deadline is
-- arrival + 2 (sla_multiplier) * tau of its type, its laxity key the
-- deadline minus tau; a learned one's laxity key is the deadline minus its
-- prediction, bounded by requested_s.
SELECT is((SELECT count(*) FROM batch_ids b JOIN tforge.tasks t USING (task_id)
            WHERE abs(extract(epoch FROM t.deadline - t.submitted_at)
                      - 2 * coalesce((SELECT tau_s FROM tforge.task_tau WHERE task_type = t.task_type),
                                     (SELECT default_tau_s FROM tforge.task_types WHERE name = t.task_type))) > 1e-6),
          0::bigint, 'every deadline is arrival + 2 * tau of the type');
SELECT is((SELECT count(*) FROM batch_ids b JOIN tforge.tasks t USING (task_id)
            WHERE abs(extract(epoch FROM t.deadline - t.laxity_key) - t.predicted_runtime_s) > 1e-6),
          0::bigint, 'every laxity key is the deadline minus the predicted runtime');
SELECT is((SELECT predicted_runtime_s FROM batch_ids JOIN tforge.tasks USING (task_id) WHERE tt = 'sb-a' AND pos = 2),
          1.5::float8, 'requested_s 1.5 bounds the learned prediction');
SELECT ok((SELECT predicted_runtime_s FROM batch_ids JOIN tforge.tasks USING (task_id) WHERE tt = 'sb-a' AND pos = 1)
            BETWEEN 2.25 AND 4, 'the hot key is predicted from its runs (2.25 .. 3.5 s, or their trend 3.75 s)');
SELECT is((SELECT resources FROM batch_ids JOIN tforge.tasks USING (task_id) WHERE tt = 'sb-a' AND pos = 3),
          ROW(2, 4096, 0, 0)::tforge.resources, 'declared resources are kept');
SELECT ok((SELECT (resources).memory_bytes FROM batch_ids JOIN tforge.tasks USING (task_id) WHERE tt = 'sb-a' AND pos = 1)
            BETWEEN 1001000 AND 1006000, 'learned resources fill an undeclared hot task (memory of its runs)');
SELECT is((SELECT array_agg(priority ORDER BY pos) FROM batch_ids JOIN tforge.tasks USING (task_id) WHERE tt = 'sb-b'),
          ARRAY[0, 1, 2, 3, 4, 5, 6, 7, -2], 'priorities by position, NULL is 0');
SELECT is((SELECT count(*) FROM batch_ids JOIN tforge.tasks USING (task_id) WHERE payload = '{}'), 2::bigint,
          'a NULL payload is {}');

-- Learning off: tau predicts, and no predictions are stored, in both paths.
SET LOCAL tforge.learning_enabled = off;
DELETE FROM batch_ids; DELETE FROM single_ids;
INSERT INTO batch_ids
SELECT 'sb-a', b.task_id, b.pos
  FROM tforge.submit_tasks('sb-a', ARRAY(SELECT payload FROM spec WHERE tt = 'sb-a' ORDER BY pos),
                           ARRAY(SELECT task_key FROM spec WHERE tt = 'sb-a' ORDER BY pos),
                           ARRAY(SELECT priority FROM spec WHERE tt = 'sb-a' ORDER BY pos),
                           ARRAY(SELECT resources FROM spec WHERE tt = 'sb-a' ORDER BY pos)) WITH ORDINALITY AS b(task_id, pos);
INSERT INTO single_ids
SELECT tt, pos, tforge.submit_task(tt, payload, resources, priority, task_key) FROM (SELECT * FROM spec WHERE tt = 'sb-a' ORDER BY pos) s;
SELECT results_eq($$SELECT tt, pos, r FROM pg_temp.cols('batch') ORDER BY tt, pos$$,
                  $$SELECT tt, pos, r FROM pg_temp.cols('single') ORDER BY tt, pos$$,
                  'learning off: every batch row equals the single submit''s');
SELECT is((SELECT count(*) FROM batch_ids JOIN tforge.tasks USING (task_id)
            WHERE prediction_strategy = 'tau' AND predictions IS NULL AND prediction_confidences IS NULL
              AND predictions_source IS NULL), 9::bigint, 'learning off: tau for all, nothing stored for scoring');
SET LOCAL tforge.learning_enabled = on;

-- sla_multiplier and max_attempts apply to the whole batch
-- (a statement does not see rows its functions insert: ids first, rows next)
CREATE TEMP TABLE ids AS
SELECT * FROM tforge.submit_tasks('sb-b', array_fill('{}'::jsonb, ARRAY[3]), sla_multiplier => 5, max_attempts => 9) s(id);
SELECT is((SELECT array_agg(DISTINCT (extract(epoch FROM t.deadline - t.submitted_at))::text || '/' || t.max_attempts)
             FROM ids s JOIN tforge.tasks t ON t.task_id = s.id),
          ARRAY['15.000000/9'], 'sla_multiplier 5 * tau 3 = 15 s, max_attempts 9');

-- ------------------------------------------------------ the executor's rules
CREATE TEMP TABLE seen (task_key text);
CREATE FUNCTION pg_temp.seen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO seen VALUES (NEW.task_key); NEW.priority := NEW.priority + 100; RETURN NEW; END $$;
CREATE TRIGGER sb_seen BEFORE INSERT ON tforge.tasks FOR EACH ROW EXECUTE FUNCTION pg_temp.seen();
TRUNCATE ids;
INSERT INTO ids SELECT * FROM tforge.submit_tasks('sb-b', ARRAY['{}', '{}', '{}']::jsonb[], ARRAY['t1', 't2', 't3'], ARRAY[1, 2, 3]);
SELECT is((SELECT array_agg(t.priority ORDER BY t.task_id) FROM ids s JOIN tforge.tasks t ON t.task_id = s.id),
          ARRAY[101, 102, 103], 'a BEFORE INSERT trigger on tasks sees and changes every row of a batch');
SELECT is((SELECT array_agg(task_key ORDER BY task_key) FROM seen), ARRAY['t1', 't2', 't3'], 'once per row');
DROP TRIGGER sb_seen ON tforge.tasks;
ALTER TABLE tforge.tasks ADD CONSTRAINT sb_small CHECK (priority < 50) NOT VALID;
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('sb-b', ARRAY['{}', '{}']::jsonb[], priorities => ARRAY[1, 50])$$,
                 '23514', NULL, 'a CHECK constraint on tasks refuses the batch');
ALTER TABLE tforge.tasks DROP CONSTRAINT sb_small;

-- ----------------------------------------------------------------- refusals
CREATE TEMP TABLE before AS SELECT count(*) AS n FROM tforge.tasks;
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('sb-a', ARRAY['{}', '{}']::jsonb[], priorities => ARRAY[1])$$,
                 '22023', NULL, 'priorities of another length are refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('sb-a', ARRAY['{}']::jsonb[],
                     resources => ARRAY[ROW(1, 1, 1, 1), ROW(1, 1, 1, 1)]::tforge.resources[])$$,
                 '22023', NULL, 'resources of another length are refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('sb-a', ARRAY[['{}', '{}'], ['{}', '{}']]::jsonb[])$$,
                 '22023', NULL, 'a two-dimensional payloads array is refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks(NULL, ARRAY['{}']::jsonb[])$$, '22004', NULL, 'a NULL task_type is refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('sb-a', ARRAY['{}', '{}']::jsonb[],
                     resources => ARRAY[NULL, ROW(-1, NULL, NULL, NULL)]::tforge.resources[])$$,
                 '22023', NULL, 'a negative resource field in any element refuses the batch');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('sb-a', ARRAY['{}']::jsonb[], sla_multiplier => 0)$$,
                 '22023', NULL, 'sla_multiplier 0 is refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('sb-a', ARRAY['{}']::jsonb[], max_attempts => 0)$$,
                 '22023', NULL, 'max_attempts 0 is refused');
SELECT throws_ok($$SELECT * FROM tforge.submit_tasks('no-such-type', '{}')$$, '42704', NULL,
                 'an unknown type is refused even for an empty batch');
SELECT is((SELECT count(*) FROM tforge.tasks), (SELECT n FROM before), 'the refused batches inserted nothing');
SELECT is((SELECT count(*) FROM tforge.submit_tasks('sb-a', '{}')), 0::bigint, 'an empty batch submits nothing');

-- read-only inside a subtransaction, which its rollback undoes (pgTAP's
-- own bookkeeping must not be rolled back with it)
CREATE FUNCTION pg_temp.read_only_submit() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  SET LOCAL transaction_read_only = on;
  PERFORM tforge.submit_tasks('sb-a', ARRAY['{}']::jsonb[]);
  RETURN 'submitted';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SELECT is(pg_temp.read_only_submit(), '25006', 'a read-only transaction is refused (25006)');

SELECT * FROM finish();
ROLLBACK;
