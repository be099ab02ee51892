-- Claims past the dead head of tasks_claim_idx (src/claim_head.c): every
-- claim still takes the task that least laxity, then priority, then
-- arrival puts first among the pending ones (recomputed here by a full
-- ORDER BY over tforge.tasks before each claim), whatever wrote that task
-- below the claims' shared bound: a submit, an operator's INSERT, UPDATE
-- or COPY, a retry, an expired lease, a rolled-back claim, a write under
-- session_replication_role = replica, and writes while trigger
-- tasks_claim_head was disabled (then seen by a claimer that used the bound
-- before, and by a backend started afterwards). And a claim after thousands
-- of claims reads a few pages of the index, not the pages of every task
-- claimed since the last vacuum.
--
-- No transaction around the file: the claims commit one by one (dblink
-- sessions and a procedure that commits), and an open transaction here
-- would keep the claimed tasks' entries from ever being dead to everyone.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT plan(20);

-- No vacuum: the index keeps every claimed task's entry, as between two
-- autovacuums of a busy queue.
ALTER TABLE tforge.tasks SET (autovacuum_enabled = off);
SELECT dblink_connect('a', tap_connstr());
SELECT dblink_exec('a', 'SET tforge.retry_backoff_base = 0');

-- The pending task a claim must take now: the definition, by brute force.
CREATE FUNCTION public.first_pending(n int DEFAULT 1) RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT task_id FROM tforge.tasks
   WHERE status = 'pending' AND available_at <= pg_catalog.clock_timestamp()
   ORDER BY laxity_key, priority DESC, submitted_at, task_id LIMIT n
$$;
-- One claim by session s (committed), its task.
CREATE FUNCTION public.claim_in(s text, n int DEFAULT 1) RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT task_id FROM dblink(s, pg_catalog.format('SELECT task_id FROM tforge.claim_tasks(%L, %s)', s, n))
    AS t(task_id bigint) ORDER BY 1
$$;
-- A pending task written directly, with laxity_key ago before now.
CREATE FUNCTION public.insert_at(ago interval) RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
  VALUES ('cpu-light', now() - ago + interval '5 s', 5, now() - ago, 3) RETURNING task_id
$$;
-- Claims n tasks one at a time, each in a transaction of its own.
CREATE PROCEDURE public.drain(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. n LOOP
    PERFORM tforge.claim_tasks('drainer');
    COMMIT;
  END LOOP;
END
$$;

-- 6,000 tasks, laxity a second apart; 5,000 claimed one by one by a
-- session of their own (d), each claim in a transaction of its own.
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
SELECT 'cpu-light', now() + i * interval '1 s' + interval '5 s', 5, now() + i * interval '1 s', 3
  FROM generate_series(1, 6000) i;
SELECT dblink_connect('d', tap_connstr());
-- In 50 statements of this session: while one runs, its snapshot keeps the
-- tasks claimed meanwhile from being dead to everyone.
SELECT pg_catalog.format('SELECT dblink_exec(%L, %L)', 'd', 'CALL public.drain(100)') FROM generate_series(1, 50) \gexec

-- ---------------------------------------------------------------- pages read

-- Index pages (tasks_claim_idx) session d has read since its statistics
-- were last reported: inside one transaction block, nothing reports them.
CREATE FUNCTION public.pages_read_in(s text) RETURNS bigint LANGUAGE sql AS $$
  SELECT n FROM dblink(s, 'SELECT pg_stat_get_xact_blocks_fetched(''tforge.tasks_claim_idx''::regclass)') AS t(n bigint)
$$;
SELECT dblink_exec('d', 'BEGIN');
SELECT public.pages_read_in('d') AS before \gset
SELECT count(*) FROM dblink('d', 'SELECT task_id FROM tforge.claim_tasks(''d'')') AS t(task_id bigint);
SELECT cmp_ok(public.pages_read_in('d') - :before, '<=', 12::bigint,
              'a claim after 5,000 claims reads at most 12 pages of tasks_claim_idx');
SELECT dblink_exec('d', 'COMMIT');
CREATE EXTENSION pageinspect;
SELECT cmp_ok((SELECT count(*) FROM generate_series(1, (pg_relation_size('tforge.tasks_claim_idx') / 8192)::int - 1) b,
                      bt_page_stats('tforge.tasks_claim_idx', b) p
                WHERE p.type = 'l' AND p.dead_items >= 50), '>', 25::bigint,
              'the claimed tasks'' dead entries still fill more than 25 pages of the index');

-- Ties: tasks of one submit_tasks share their laxity_key; claims take them
-- in order all the same.
SELECT count(*) FROM tforge.submit_tasks('cpu-light', array_fill('{}'::jsonb, ARRAY[30]), sla_multiplier => 0.5);
CREATE TEMP TABLE tie_claims AS
SELECT i, public.first_pending() AS want, public.claim_in('a') AS got FROM generate_series(1, 20) i;
SELECT is((SELECT count(*) FROM tie_claims WHERE want IS NOT DISTINCT FROM got AND got IS NOT NULL), 20::bigint,
          '20 claims in a group of tasks with one laxity_key each take the first by definition');

-- ---------------------------------------------------------------- order kept

SELECT public.first_pending() AS want \gset
SELECT is(public.claim_in('a'), :want::bigint, 'a claim takes the least laxity task');

-- A submit with a deadline before every pending task's.
SELECT tforge.submit_task('cpu-light', sla_multiplier => 0.1) AS urgent \gset
SELECT is(public.first_pending(), :urgent::bigint, 'the urgent submit is first by definition');
SELECT is(public.claim_in('a'), :urgent::bigint, 'a claim takes a submitted task below the bound');

-- An operator's INSERT, and a COPY.
SELECT public.insert_at('2 hours') AS inserted \gset
SELECT is(public.claim_in('a'), :inserted::bigint, 'a claim takes a directly inserted task below the bound');
COPY tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts) FROM STDIN (FORMAT csv);
cpu-light,2000-01-01 00:00:05+00,5,2000-01-01 00:00:00+00,3
\.
SELECT task_id AS copied FROM tforge.tasks WHERE laxity_key = '2000-01-01 00:00:00+00' \gset
SELECT is(public.claim_in('a'), :copied::bigint, 'a claim takes a copied task below the bound');

-- An operator puts a done task back, with a laxity_key below the bound.
SELECT tforge.complete_task(:inserted, 'a');
UPDATE tforge.tasks SET status = 'pending', worker_id = NULL, laxity_key = now() - interval '4 hours'
 WHERE task_id = :inserted;
SELECT is(public.claim_in('a'), :inserted::bigint, 'a claim takes a task an UPDATE made pending below the bound');

-- A pending task moved below the bound.
SELECT max(task_id) AS moved FROM tforge.tasks WHERE status = 'pending' \gset
UPDATE tforge.tasks SET laxity_key = now() - interval '5 hours' WHERE task_id = :moved;
SELECT is(public.claim_in('a'), :moved::bigint, 'a claim takes a pending task whose laxity_key moved below the bound');

-- A retry (no backoff) and an expired lease bring their tasks back.
SELECT * FROM dblink('a', pg_catalog.format('SELECT tforge.fail_task(%s, %L, %L)', :moved, 'a', 'boom')) AS t(s text);
SELECT is(public.claim_in('a'), :moved::bigint, 'a claim takes a task failed for a retry below the bound');
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 s' WHERE task_id = :moved;
SELECT is(public.claim_in('a'), :moved::bigint, 'a claim takes a task whose lease expired below the bound');

-- A claim rolled back.
SELECT public.insert_at('6 hours') AS rolled \gset
SELECT dblink_exec('a', 'BEGIN');
SELECT is(public.claim_in('a'), :rolled::bigint, 'the claim in the transaction takes the task');
SELECT dblink_exec('a', 'ROLLBACK');
SELECT is(public.claim_in('a'), :rolled::bigint, 'the task is claimed again after the rollback');

-- A logical replication subscriber writes with session_replication_role = replica.
SET session_replication_role = replica;
SELECT public.insert_at('7 hours') AS replicated \gset
RESET session_replication_role;
SELECT is(public.claim_in('a'), :replicated::bigint, 'a claim takes a task written as a replica would');

-- Writes while the trigger is disabled: a claimer that used the bound
-- before sees them once the trigger is back.
ALTER TABLE tforge.tasks DISABLE TRIGGER tasks_claim_head;
SELECT public.insert_at('8 hours') AS unpublished \gset
ALTER TABLE tforge.tasks ENABLE ALWAYS TRIGGER tasks_claim_head;
SELECT is(public.claim_in('a'), :unpublished::bigint, 'a claim takes a task written while the trigger was disabled');
BEGIN;
ALTER TABLE tforge.tasks DISABLE TRIGGER ALL;
SELECT public.insert_at('9 hours') AS unpublished \gset
ALTER TABLE tforge.tasks ENABLE TRIGGER ALL;
ALTER TABLE tforge.tasks ENABLE ALWAYS TRIGGER tasks_claim_head;
COMMIT;
SELECT is(public.claim_in('a'), :unpublished::bigint, '... and in the transaction that disabled and enabled it');
-- A backend started afterwards, while the long-lived one has not looked yet.
SELECT public.claim_in('a') IS NOT NULL;
ALTER TABLE tforge.tasks DISABLE TRIGGER tasks_claim_head;
SELECT public.insert_at('10 hours') AS unpublished \gset
ALTER TABLE tforge.tasks ENABLE ALWAYS TRIGGER tasks_claim_head;
SELECT dblink_connect('b', tap_connstr());
SELECT is(public.claim_in('b'), :unpublished::bigint, '... and a backend started after that');
-- While the trigger is disabled, claims keep the order.
ALTER TABLE tforge.tasks DISABLE TRIGGER tasks_claim_head;
SELECT public.insert_at('11 hours') AS unpublished \gset
SELECT is(public.claim_in('a'), :unpublished::bigint, 'a claim while the trigger is disabled takes the least laxity task');
ALTER TABLE tforge.tasks ENABLE ALWAYS TRIGGER tasks_claim_head;

-- A batch claim takes the first five by definition.
SELECT public.insert_at(i * interval '1 hour' + interval '12 hours') FROM generate_series(1, 3) i;
SELECT ARRAY(SELECT public.first_pending(5) ORDER BY 1)::text AS want \gset
SELECT is(ARRAY(SELECT public.claim_in('a', 5))::text, :'want',
          'a batch claim takes the five least laxity tasks, three of them below the bound');

SELECT dblink_disconnect('a'), dblink_disconnect('b'), dblink_disconnect('d');
SELECT * FROM finish();
