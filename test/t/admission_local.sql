-- Admission control outside the governor's database (src/admission.c):
-- random early detection on this database's own pending count, counted
-- through tasks_claim_idx and shared by the backends submitting here.
-- RED refuses a submit with probability p(fill), fill = pending /
-- tforge.queue_capacity: 0 below red_min_threshold, red_max_probability at
-- or above red_max_threshold, linear between. The expected refusals are
-- that formula worked from the settings, checked against a binomial bound
-- (4.9 standard deviations: a false failure about once in a million runs).
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT plan(9);

-- n submits; how many admission control refused (53000), others re-raised.
CREATE FUNCTION pg_temp.refused(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int := 0;
BEGIN
  FOR i IN 1..n LOOP
    BEGIN
      PERFORM tforge.submit_task('cpu-light');
    EXCEPTION WHEN insufficient_resources THEN r := r + 1;
    END;
  END LOOP;
  RETURN r;
END $$;

-- A full queue: 1.2 times the capacity pending, and ten times as many done
-- tasks, which the count must not read.
SELECT current_setting('tforge.queue_capacity')::int AS cap \gset
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts, submitted_at,
                          available_at, status, completed_at)
SELECT 'cpu-light', now() + interval '1 h', 5, now(), 3, now(), now(),
       CASE WHEN i <= :cap * 1.2 THEN 'pending' ELSE 'done' END::tforge.task_status,
       CASE WHEN i <= :cap * 1.2 THEN NULL ELSE now() END
  FROM generate_series(1, :cap * 12) i;
SELECT CASE WHEN 1.2 >= current_setting('tforge.red_max_threshold')::float8
            THEN current_setting('tforge.red_max_probability')::float8
            ELSE current_setting('tforge.red_max_probability')::float8 * (1.2 - current_setting('tforge.red_min_threshold')::float8)
                 / (current_setting('tforge.red_max_threshold')::float8 - current_setting('tforge.red_min_threshold')::float8)
       END AS p \gset
SELECT pg_sleep_for(current_setting('tforge.governor_interval')::interval * 2);

SELECT pg_temp.refused(400) AS r \gset
SELECT cmp_ok(:r, '>=', floor(400 * :p - 4.9 * sqrt(400 * :p * (1 - :p)))::int,
              'a queue at 1.2 times its capacity: submits refused about p of the time (at least)');
SELECT cmp_ok(:r, '<=', ceil(400 * :p + 4.9 * sqrt(400 * :p * (1 - :p)))::int,
              'a queue at 1.2 times its capacity: submits refused about p of the time (at most)');
SELECT throws_ok($$SELECT count(tforge.submit_task('cpu-light')) FROM generate_series(1, 200)$$, '53000', NULL,
                 'a refusal is 53000 (200 submits in one statement: all admitted with probability (1 - p)^200)');

-- A submit that is refused anyway gets its own error, never admission
-- control's: in a READ ONLY transaction 25006 (CheckWritable, before any
-- work), with a NULL type 22004, with an unknown type 42704. Before, admission ran first and 53000
-- came about p of the time (and took a token of the governor's bucket).
CREATE FUNCTION pg_temp.states(n int, read_only boolean, task_type text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  st text;
  seen text[] := '{}';
BEGIN
  FOR i IN 1..n LOOP
    BEGIN
      IF read_only THEN
        PERFORM set_config('transaction_read_only', 'on', true);
      END IF;
      PERFORM tforge.submit_task(task_type);
      RAISE EXCEPTION 'admitted' USING ERRCODE = 'ZZ001';
    EXCEPTION WHEN others THEN st := SQLSTATE;
    END;
    IF NOT st = ANY (seen) THEN
      seen := seen || st;
    END IF;
  END LOOP;
  RETURN array_to_string(ARRAY(SELECT unnest(seen) ORDER BY 1), ',');
END $$;
SELECT is(pg_temp.states(200, true, 'cpu-light'), '25006',
          'READ ONLY: 200 submits to a full queue all refused with 25006, none with 53000');
SELECT is(pg_temp.states(200, false, NULL), '22004',
          'a NULL task type: 200 submits to a full queue all refused with 22004, none with 53000');
SELECT is(pg_temp.states(200, false, 'no-such-type'), '42704',
          'an unknown task type: 200 submits to a full queue all refused with 42704, none with 53000');

-- Emptied: once the count is due again, nothing is refused.
UPDATE tforge.tasks SET status = 'done', completed_at = now() WHERE status = 'pending';
SELECT pg_sleep_for(current_setting('tforge.governor_interval')::interval * 2 + interval '0.5 s');
SELECT is(pg_temp.refused(200), 0, 'an empty queue, counted again: nothing refused');

-- Another session in this database submits on the same count.
SELECT dblink_connect('other', tap_connstr());
SELECT is((SELECT r FROM dblink('other', $$
             SELECT count(*)::int FROM generate_series(1, 100) i
              WHERE tforge.submit_task('cpu-light') IS NOT NULL$$) AS t(r int)), 100,
          'another session''s submits are admitted too');
-- A transaction's own view of the queue is not everyone's: this session
-- counts inside a transaction holding a full queue of uncommitted tasks
-- (and is refused by its own view); the other session is not.
BEGIN;
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts, submitted_at,
                          available_at)
SELECT 'cpu-light', now() + interval '1 h', 5, now(), 3, now(), now() FROM generate_series(1, :cap * 12 / 10);
SELECT pg_sleep_for(current_setting('tforge.governor_interval')::interval * 2 + interval '0.5 s');
SELECT pg_temp.refused(50) >= 0 AS counted \gset
SELECT is((SELECT r FROM dblink('other', $$
             SELECT count(*)::int FROM generate_series(1, 100) i
              WHERE tforge.submit_task('cpu-light') IS NOT NULL$$) AS t(r int)), 100,
          'another session is not refused for this transaction''s uncommitted tasks');
ROLLBACK;
SELECT dblink_disconnect('other');
SELECT * FROM finish();
