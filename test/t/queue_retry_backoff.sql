-- The retry backoff has one definition (tforge._retry_backoff, tau.c):
-- fail_task and fail_tasks give a failed task the same available_at offset
-- for every attempt, the cap included. Expected values are worked by hand:
-- base 1.5 s, cap 2000 s, backoff = least(2000, 1.5 * 2^(attempts - 1)).
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(12);

SET LOCAL tforge.retry_backoff_base = 1.5;
SET LOCAL tforge.retry_backoff_max = 2000;

-- attempts -> seconds, by hand (1.5 doubled; 1.5 * 2^11 = 3072 is past the cap)
CREATE TEMP TABLE hand (attempts integer PRIMARY KEY, backoff_s float8 NOT NULL);
INSERT INTO hand VALUES
  (1, 1.5), (2, 3), (3, 6), (4, 12), (5, 24), (6, 48), (7, 96), (8, 192), (9, 384),
  (10, 768), (11, 1536), (12, 2000), (1001, 2000), (2000000000, 2000);

SELECT results_eq($$SELECT attempts, tforge._retry_backoff(attempts) FROM hand ORDER BY attempts$$,
                  $$SELECT attempts, backoff_s FROM hand ORDER BY attempts$$,
                  '_retry_backoff is least(cap, base * 2^(attempts - 1)) for attempts 1..12 and past the cap');
SELECT is(tforge._retry_backoff(NULL), NULL, 'NULL attempts: NULL');

-- Two tasks per row of hand, claimed by 'w' and put at that attempt: one
-- failed alone with fail_task, one in a single fail_tasks call.
SELECT 1 FROM tforge.define_task_type('rb', 1);
CREATE TEMP TABLE failed (attempts integer, single boolean, task_id bigint,
                          before timestamptz, after timestamptz, available_at timestamptz);
INSERT INTO failed (attempts, single, task_id)
SELECT h.attempts, s.single, tforge.submit_task('rb')
  FROM hand h CROSS JOIN (VALUES (true), (false)) s(single) ORDER BY 2, 1;
SELECT is((SELECT count(*) FROM tforge.claim_tasks('w', 100, task_types => ARRAY['rb'])), 28::bigint, 'every task claimed');
UPDATE tforge.tasks t SET attempts = f.attempts, max_attempts = 2147483647 FROM failed f WHERE t.task_id = f.task_id;

CREATE FUNCTION pg_temp.fail_singly() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  f record;
  t0 timestamptz;
BEGIN
  FOR f IN SELECT * FROM failed WHERE single ORDER BY attempts LOOP
    t0 := clock_timestamp();
    IF tforge.fail_task(f.task_id, 'w', 'boom') <> 'pending' THEN
      RAISE EXCEPTION 'task % was not retried', f.task_id;
    END IF;
    UPDATE failed SET before = t0, after = clock_timestamp() WHERE task_id = f.task_id;
  END LOOP;
END
$$;
SELECT pg_temp.fail_singly();

SELECT clock_timestamp() AS t0 \gset
SELECT is((SELECT count(*) FROM tforge.fail_tasks('w', ARRAY(SELECT task_id FROM failed WHERE NOT single ORDER BY attempts),
                                                  NULL) WHERE status = 'pending'),
          14::bigint, 'fail_tasks retries every task of the batch');
UPDATE failed SET before = :'t0', after = clock_timestamp() WHERE NOT single;
UPDATE failed f SET available_at = t.available_at FROM tforge.tasks t WHERE t.task_id = f.task_id;

-- available_at = the failure's time + backoff, the failure's time lying
-- between before and after
SELECT is(ARRAY(SELECT f.attempts FROM failed f JOIN hand h USING (attempts)
                 WHERE f.single AND NOT (f.available_at - make_interval(secs => h.backoff_s) BETWEEN f.before AND f.after)
                 ORDER BY 1),
          '{}'::integer[], 'fail_task: available_at is the failure''s time + the hand-computed backoff, attempts 1..12 and past the cap');
SELECT is(ARRAY(SELECT f.attempts FROM failed f JOIN hand h USING (attempts)
                 WHERE NOT f.single AND NOT (f.available_at - make_interval(secs => h.backoff_s) BETWEEN f.before AND f.after)
                 ORDER BY 1),
          '{}'::integer[], 'fail_tasks: the same for every task of the batch');
-- the batch fails every task at one time: its offsets are exact
SELECT results_eq($$SELECT f.attempts, f.available_at - b.available_at FROM failed f, failed b
                    WHERE NOT f.single AND NOT b.single AND b.attempts = 1 ORDER BY 1$$,
                  $$SELECT attempts, make_interval(secs => backoff_s) - interval '1.5 s' FROM hand ORDER BY 1$$,
                  'fail_tasks: the offsets between the batch''s tasks are exactly the hand-computed backoffs');
-- single and batch: the same offset for every attempt, up to the clock
-- (the offset of each lies between available_at - after and - before)
SELECT is(ARRAY(SELECT s.attempts FROM failed s JOIN failed b USING (attempts)
                 WHERE s.single AND NOT b.single
                   AND NOT (s.available_at - s.after <= b.available_at - b.before
                            AND b.available_at - b.after <= s.available_at - s.before)
                 ORDER BY 1),
          '{}'::integer[], 'single and batch failures give the same available_at offset at every attempt');
SELECT results_eq($$SELECT status::text, count(*) FROM tforge.tasks WHERE task_type = 'rb' GROUP BY 1$$,
                  $$VALUES ('pending'::text, 28::bigint)$$, 'every failed task is pending again');

-- the settings' values, not the six digits SHOW prints
SET LOCAL tforge.retry_backoff_base = 1.23456789;
SELECT is(tforge._retry_backoff(1), 1.23456789::float8, 'the base is used as set, to the last digit');
SELECT is(tforge._retry_backoff(3), 4 * 1.23456789::float8, 'and doubled per attempt');
SET LOCAL tforge.retry_backoff_max = 0;
SELECT is(tforge._retry_backoff(5), 0::float8, 'a cap of 0: retried at once');

SELECT * FROM finish();
ROLLBACK;
