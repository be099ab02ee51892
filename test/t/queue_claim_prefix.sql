-- A claim inside a long transaction starts its scan past the tasks that
-- transaction claimed (src/claim_prefix.c, issue 16 "Linear, not
-- quadratic"). Whatever the position, every claim must return exactly what
-- a claim scanning from the head returns: the expected task below is the
-- head of the claim order computed by a plain query over tforge.tasks just
-- before each claim (status pending, available, least laxity_key, then
-- higher priority, then submitted_at, then task_id; filtered as the claim
-- is). Covered: priorities (the index's descending column), several types
-- and learned taus (varying laxity), own submits landing before the
-- position, own direct UPDATEs back to pending, a task committed meanwhile
-- by another session (submitted, or inserted directly, below the position;
-- one in flight while the claim runs), savepoints rolled back, the
-- task_types filter, the capacity filter, submit_tasks, and statistics off.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(19);

SELECT tforge.define_task_type('p-fast', 1) \g /dev/null
SELECT tforge.define_task_type('p-slow', 40) \g /dev/null
SELECT setseed(0.16) \g /dev/null

-- The head of the claim order now, for a claim with these filters.
CREATE FUNCTION pg_temp.head(types text[] DEFAULT NULL, cap tforge.resources DEFAULT NULL) RETURNS bigint LANGUAGE sql AS $$
  SELECT t.task_id FROM tforge.tasks t
   WHERE t.status = 'pending' AND t.available_at <= clock_timestamp()
     AND (types IS NULL OR t.task_type = ANY (types))
     AND (cap IS NULL OR t.resources IS NULL OR tforge.resources_fit(t.resources, cap))
   ORDER BY t.laxity_key, t.priority DESC, t.submitted_at, t.task_id
   LIMIT 1 $$;
-- One claim; its task id (NULL: none).
CREATE FUNCTION pg_temp.claim(types text[] DEFAULT NULL, cap tforge.resources DEFAULT NULL) RETURNS bigint LANGUAGE sql AS $$
  SELECT c.task_id FROM tforge.claim_tasks('w', 1, cap, task_types => types) c $$;
-- n rounds: submit 0-2 tasks (random type, priority, key), claim one, and
-- complete some claims (tau changes, so laxity does); the rounds whose
-- claim differed from the head computed just before it.
CREATE FUNCTION pg_temp.rounds(n int, types text[] DEFAULT NULL) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
  bad bigint[] := '{}'; want bigint; got bigint; tok bigint;
BEGIN
  FOR i IN 1 .. n LOOP
    FOR j IN 1 .. floor(random() * 3)::int LOOP
      PERFORM tforge.submit_task((ARRAY['p-fast', 'p-slow', 'cpu-light'])[1 + floor(random() * 3)::int],
                                 priority => floor(random() * 4)::int, task_key => 'k' || floor(random() * 3)::int);
    END LOOP;
    want := pg_temp.head(types);
    got := pg_temp.claim(types);
    IF got IS DISTINCT FROM want THEN bad := bad || i::bigint; END IF;
    IF got IS NOT NULL AND random() < 0.5 THEN
      SELECT claim_token INTO tok FROM tforge.tasks WHERE task_id = got;
      PERFORM tforge.complete_task(got, 'w', jsonb_build_object('runtime_s', 1 + floor(random() * 30)), tok);
    END IF;
  END LOOP;
  RETURN bad;
END $$;

-- Many tasks first, then claims with submits in between.
SELECT count(tforge.submit_task((ARRAY['p-fast', 'p-slow', 'cpu-light'])[1 + i % 3], priority => (i * 7) % 5))
  FROM generate_series(1, 60) i \g /dev/null
SELECT is(pg_temp.rounds(150), '{}'::bigint[], '150 claims in one transaction, each the head of the claim order');
SELECT cmp_ok((SELECT count(*) FROM tforge.tasks WHERE status <> 'pending'), '>=', 100::bigint,
              'most of the tasks were claimed in this transaction');

-- Own direct UPDATEs back to pending: the tasks are before the position.
UPDATE tforge.tasks SET status = 'pending', worker_id = NULL, lease_expires_at = NULL, claimed_at = NULL
 WHERE task_id IN (SELECT task_id FROM tforge.tasks WHERE status = 'running' ORDER BY task_id LIMIT 3);
SELECT is(pg_temp.rounds(20), '{}'::bigint[], 'tasks this transaction made pending again are claimed in order');

-- An own direct INSERT below the position.
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
VALUES ('cpu-light', '2001-01-01', 1, '1998-01-01', 3);
SELECT is(pg_temp.claim(), (SELECT task_id FROM tforge.tasks WHERE laxity_key = '1998-01-01'),
          'a task this transaction inserted directly below the position is claimed first');

-- Another session commits tasks below the position.
SELECT dblink_connect('other', public.tap_connstr()) \g /dev/null
SELECT dblink_exec('other', $$INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
                               VALUES ('cpu-light', '2001-01-01', 1, '2000-01-01', 3)$$) \g /dev/null
SELECT is(pg_temp.claim(), (SELECT task_id FROM tforge.tasks WHERE laxity_key = '2000-01-01'),
          'a task another session inserted and committed below the position is claimed first');
SELECT dblink_exec('other', $o$DO $d$ BEGIN PERFORM tforge.submit_task('cpu-light', priority => 9); END $d$$o$) \g /dev/null
SELECT is(pg_temp.rounds(10), '{}'::bigint[], 'a task another session submitted meanwhile is claimed in order');
-- In flight while a claim runs, committed before the next one.
SELECT dblink_exec('other', 'BEGIN') \g /dev/null
SELECT dblink_exec('other', $$INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
                               VALUES ('cpu-light', '2001-01-01', 1, '2000-01-02', 3)$$) \g /dev/null
SELECT is(pg_temp.rounds(3), '{}'::bigint[], 'claims while another session''s insert is not committed');
SELECT dblink_exec('other', 'COMMIT') \g /dev/null
SELECT is(pg_temp.claim(), (SELECT task_id FROM tforge.tasks WHERE laxity_key = '2000-01-02'),
          'once committed, that task is claimed first');

-- A claim called by a statement that has just made a task pending before the
-- position (its trigger fires only at the statement's end).
SELECT is(pg_temp.rounds(3), '{}'::bigint[], 'claims before the statement');
CREATE TEMP TABLE inner_claim AS
  SELECT task_id AS moved, NULL::bigint AS claimed FROM tforge.tasks WHERE status = 'pending' ORDER BY task_id DESC LIMIT 1;
WITH c AS (UPDATE tforge.tasks SET laxity_key = '1999-01-01' WHERE task_id = (SELECT moved FROM inner_claim)
           RETURNING pg_temp.claim() AS claimed)
UPDATE inner_claim SET claimed = (SELECT c.claimed FROM c);
SELECT is((SELECT claimed FROM inner_claim), (SELECT moved FROM inner_claim),
          'the claim in RETURNING of that statement takes the task it moved first');

-- Savepoints.
SELECT count(tforge.submit_task('p-slow', priority => i % 3)) FROM generate_series(1, 10) i \g /dev/null
SELECT is(pg_temp.rounds(5), '{}'::bigint[], 'claims before a savepoint');
SAVEPOINT s;
SELECT is(pg_temp.rounds(5), '{}'::bigint[], 'claims after it');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.rounds(15), '{}'::bigint[], 'after ROLLBACK TO SAVEPOINT the tasks claimed since are claimed again, in order');
CREATE FUNCTION pg_temp.claim_and_fail() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    PERFORM pg_temp.rounds(3);
    RAISE EXCEPTION 'roll back';
  EXCEPTION WHEN raise_exception THEN NULL;
  END;
END $$;
SELECT pg_temp.claim_and_fail() \g /dev/null
SELECT is(pg_temp.rounds(10), '{}'::bigint[], 'after a PL/pgSQL exception block rolled back its claims');

-- Filters.
SELECT count(tforge.submit_task((ARRAY['p-fast', 'p-slow'])[1 + i % 2], priority => i % 4)) FROM generate_series(1, 30) i \g /dev/null
SELECT is(pg_temp.rounds(12, '{p-slow}'), '{}'::bigint[], 'claims with task_types, each the head among those types');
SELECT is(pg_temp.rounds(12), '{}'::bigint[], 'then claims of any type');
SELECT count(tforge.submit_task('cpu-light', resources => ROW(i % 4, NULL, NULL, NULL)::tforge.resources))
  FROM generate_series(1, 12) i \g /dev/null
SELECT is((SELECT array_agg(i) FROM generate_series(1, 10) i
            WHERE pg_temp.head(NULL, ROW(1, NULL, NULL, NULL)::tforge.resources)
                  IS DISTINCT FROM pg_temp.claim(NULL, ROW(1, NULL, NULL, NULL)::tforge.resources)),
          NULL, 'claims with a capacity, each the head among the tasks that fit');

-- Without statistics the position is not used, and claims stay right.
SET LOCAL track_counts = off;
SELECT count(tforge.submit_task('p-fast', priority => i % 2)) FROM generate_series(1, 10) i \g /dev/null
SELECT is(pg_temp.rounds(15), '{}'::bigint[], 'with track_counts off');
RESET track_counts;

-- submit_tasks: keys of a batch become holes too.
SELECT count(*) FROM tforge.submit_tasks('p-fast', array_fill('{}'::jsonb, ARRAY[5]), array_fill('kb'::text, ARRAY[5])) \g /dev/null
SELECT is(pg_temp.rounds(8), '{}'::bigint[], 'claims after submit_tasks');

SELECT dblink_disconnect('other') \g /dev/null
SELECT * FROM finish();
ROLLBACK;
