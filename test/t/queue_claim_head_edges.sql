-- Claims past the shared bound of tasks_claim_idx (src/claim_head.c) and
-- past a transaction's own claims (src/claim_prefix.c) read the index for
-- the pending tasks: whatever an operator did to the index or the table,
-- a claim takes the task that least laxity, then priority, then arrival
-- puts first among the pending ones (recomputed here by a full ORDER BY
-- over tforge.tasks), and fails with no internal error.
--
-- No transaction around the file: the claims commit one by one (dblink
-- sessions), as a queue's workers do.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT plan(9);

ALTER TABLE tforge.tasks SET (autovacuum_enabled = off);
SELECT dblink_connect('a', tap_connstr());

-- The pending task a claim must take now: the definition, by brute force.
CREATE FUNCTION public.first_pending() RETURNS bigint LANGUAGE sql AS $$
  SELECT task_id FROM tforge.tasks
   WHERE status = 'pending' AND available_at <= pg_catalog.clock_timestamp()
   ORDER BY laxity_key, priority DESC, submitted_at, task_id LIMIT 1
$$;
-- One claim by session s (committed), its task.
CREATE FUNCTION public.claim_in(s text) RETURNS bigint LANGUAGE sql AS $$
  SELECT task_id FROM dblink(s, pg_catalog.format('SELECT task_id FROM tforge.claim_tasks(%L)', s))
    AS t(task_id bigint)
$$;
-- A pending task written directly, with laxity_key ago before now.
CREATE FUNCTION public.insert_at(ago interval) RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
  VALUES ('cpu-light', now() - ago + interval '5 s', 5, now() - ago, 3) RETURNING task_id
$$;

INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
SELECT 'cpu-light', now() + i * interval '1 s' + interval '5 s', 5, now() + i * interval '1 s', 3
  FROM generate_series(1, 40) i;
SELECT public.claim_in('a') FROM generate_series(1, 5);

-- ------------------------------------------- an index a failed CIC left

-- The operator rebuilds tasks_claim_idx with CREATE INDEX CONCURRENTLY,
-- which times out waiting for a writer: the index left under the name is
-- not ready (no metapage, no entry for what is written since).
DROP INDEX tforge.tasks_claim_idx;
SELECT dblink_connect('w', tap_connstr());
SELECT dblink_exec('w', 'BEGIN');
SELECT dblink_exec('w', 'LOCK TABLE tforge.tasks IN ROW EXCLUSIVE MODE');
SELECT dblink_connect('c', tap_connstr());
SELECT dblink_exec('c', 'SET statement_timeout = ''300ms''');
SELECT dblink_exec('c', 'CREATE INDEX CONCURRENTLY tasks_claim_idx ON tforge.tasks'
                        ' (laxity_key, priority DESC, submitted_at, task_id) WHERE status = ''pending''', false);
SELECT dblink_exec('w', 'COMMIT');
SELECT ok(NOT indisready AND NOT indisvalid, 'the failed CREATE INDEX CONCURRENTLY left tasks_claim_idx not ready')
  FROM pg_index WHERE indexrelid = 'tforge.tasks_claim_idx'::regclass;
SELECT public.insert_at('1 day') AS urgent \gset
SELECT is(public.claim_in('a'), :urgent::bigint,
          'a claim with the not-ready tasks_claim_idx takes the least laxity task');
SELECT dblink_exec('a', 'BEGIN');
SELECT public.claim_in('a');
SELECT public.insert_at('2 days') AS urgent \gset
SELECT is(public.claim_in('a'), :urgent::bigint,
          '... and a second claim in one transaction');
SELECT dblink_exec('a', 'COMMIT');
SELECT dblink_exec('c', 'DROP INDEX tforge.tasks_claim_idx');
SELECT dblink_exec('c', 'CREATE INDEX tasks_claim_idx ON tforge.tasks'
                        ' (laxity_key, priority DESC, submitted_at, task_id) WHERE status = ''pending''');
SELECT public.first_pending() AS want \gset
SELECT is(public.claim_in('a'), :want::bigint, 'a claim takes the least laxity task once the index is rebuilt');

-- ------------------------------------------- laxity_key made nullable

-- A superuser drops laxity_key's NOT NULL and writes a pending task
-- without one: it sorts after every other, and is claimed once they are.
ALTER TABLE tforge.tasks ALTER COLUMN laxity_key DROP NOT NULL;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
VALUES ('cpu-light', now() + interval '1 hour', 5, NULL, 3) RETURNING task_id AS unkeyed \gset
SELECT count(*) AS keyed FROM tforge.tasks WHERE status = 'pending' AND laxity_key IS NOT NULL \gset
SELECT is(ARRAY(SELECT task_id FROM dblink('a', pg_catalog.format('SELECT task_id FROM tforge.claim_tasks(%L, %s)', 'a', :keyed))
                    AS t(task_id bigint) WHERE task_id = :unkeyed), '{}'::bigint[],
          'a batch claim takes the tasks with a laxity_key first');
SELECT is(public.claim_in('a'), :unkeyed::bigint, 'a claim then takes the task without a laxity_key');
UPDATE tforge.tasks SET status = 'pending', worker_id = NULL WHERE task_id = :unkeyed;
SELECT dblink_connect('n', tap_connstr());
SELECT is(public.claim_in('n'), :unkeyed::bigint, '... and so does a backend started afterwards');

-- ------------------------------------------- laxity_key retyped

-- A superuser retypes laxity_key: writes still succeed (the trigger has
-- nothing to publish, and claims use no bound).
ALTER TABLE tforge.tasks ALTER COLUMN laxity_key TYPE timestamp;
SELECT lives_ok($$INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
                  VALUES ('cpu-light', now(), 5, now() - interval '3 days', 3)$$,
                'a write after laxity_key was retyped succeeds');
SELECT public.first_pending() AS want \gset
SELECT is(public.claim_in('a'), :want::bigint, 'a claim after laxity_key was retyped takes the least laxity task');

SELECT dblink_disconnect('a'), dblink_disconnect('c'), dblink_disconnect('n'), dblink_disconnect('w');
SELECT * FROM finish();
