-- Admission of batches (tforge.submit_tasks, src/admission.c
-- GovernorAdmitTasks) against the running governor worker: a batch is
-- admitted or refused as a whole, with one RED draw per batch and one rate
-- token per task, the bucket going into debt. Runs after drills.sql, in the
-- same database (test/lib/governor-drills.sh); puts back what it changes.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT plan(9);

-- Poll until the query returns true, at most timeout_s; whether it did.
CREATE FUNCTION pg_temp.wait_for(q text, timeout_s float8 DEFAULT 10) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamptz := clock_timestamp() + make_interval(secs => timeout_s);
  ok boolean;
BEGIN
  LOOP
    EXECUTE q INTO ok;
    IF ok THEN RETURN true; END IF;
    IF clock_timestamp() > deadline THEN RETURN false; END IF;
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
CREATE TEMP TABLE marks (name text PRIMARY KEY, at timestamptz, n bigint);
CREATE TEMP TABLE trials (ok boolean, inserted bigint, msg text);
DELETE FROM tforge.tasks;

-- RED: 80 pending tasks of capacity 100 make fill 0.8, p = 0.15 (as in
-- drills.sql). 200 batches of 10 in one transaction (uncommitted, so the
-- fill stays 0.8): refused batches ~ Binomial(200, 0.15), mean 30, sd 5.05,
-- bounds at 5 sd. A draw per task would refuse 1 - 0.85^10 = 80 % of them.
ALTER SYSTEM SET tforge.queue_capacity = 100;
SELECT pg_reload_conf() \gset
-- the SIGHUP reaches this session between statements
SELECT pg_sleep(0.5) \gset
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
SELECT 'cpu-light', now() + interval '10 s', 5, now() + interval '5 s', 3 FROM generate_series(1, 80);
SELECT tforge.governor_override(0) \gset
SELECT ok(pg_temp.wait_for($$SELECT queue_fill = 0.8 AND state = 'Normal' AND current_setting('tforge.queue_capacity') = '100'
                              FROM tforge.governor_status()$$, 20),
          'the worker measures queue fill 0.8 (80 pending of 100) in Normal');
INSERT INTO marks SELECT 'red', clock_timestamp(), refused_red FROM tforge.governor_status();
DO $$
DECLARE
  n bigint;
BEGIN
  FOR i IN 1..200 LOOP
    BEGIN
      SELECT count(*) INTO n FROM tforge.submit_tasks('cpu-light', array_fill('{}'::jsonb, ARRAY[10]));
      INSERT INTO trials VALUES (true, n, NULL);
    EXCEPTION WHEN insufficient_resources THEN
      INSERT INTO trials VALUES (false, NULL, SQLERRM);
    END;
  END LOOP;
END $$;
SELECT ok((SELECT count(*) FROM trials WHERE NOT ok) BETWEEN 5 AND 55,
          format('RED refuses about 15 %% of batches of 10 at fill 0.8, one draw per batch (%s of 200; bounds 5..55)',
                 (SELECT count(*) FROM trials WHERE NOT ok)));
SELECT is((SELECT count(*) FROM tforge.tasks), 80 + 10 * (SELECT count(*) FROM trials WHERE ok),
          'an admitted batch inserted all its tasks, a refused one none');
SELECT is((SELECT DISTINCT msg FROM trials WHERE NOT ok),
          'task refused by admission control: queue fill 0.800, drop probability 0.150, scale 1.00',
          'a refused batch gives fill, probability and scale');
SELECT is((SELECT s.refused_red - m.n FROM tforge.governor_status() s, marks m WHERE m.name = 'red'),
          10 * (SELECT count(*) FROM trials WHERE NOT ok),
          'governor_status counts the tasks of refused batches');
DELETE FROM trials;
DELETE FROM tforge.tasks;

-- Rate: admission_rate 200 at scale 0.5 is 100 tasks per second, a burst
-- of 100 tokens. After a second idle the bucket is full; a batch of 250 is
-- admitted whole and leaves the bucket 150..249 tokens in debt, so a submit
-- is refused until at least 1.51 s (151 tokens at 100/s) have passed.
ALTER SYSTEM SET tforge.queue_capacity = 10000;
ALTER SYSTEM SET tforge.admission_rate = 200;
SELECT pg_reload_conf() \gset
SELECT pg_sleep(0.5) \gset
SELECT tforge.governor_override(0.72) \gset
SELECT ok(pg_temp.wait_for($$SELECT scale = 0.5 AND queue_fill = 0 AND current_setting('tforge.admission_rate') = '200'
                              FROM tforge.governor_status()$$, 20),
          'Degraded at 0.5 with an empty queue');
SELECT pg_sleep(1.2) \gset
SELECT is((SELECT count(*) FROM tforge.submit_tasks('cpu-light', array_fill('{}'::jsonb, ARRAY[250]))), 250::bigint,
          'a batch of 250 is admitted whole although the bucket holds 100 tokens');
INSERT INTO marks VALUES ('debt', clock_timestamp());
DO $$
BEGIN
  PERFORM tforge.submit_task('cpu-light');
  INSERT INTO trials VALUES (true, 1, NULL);
EXCEPTION WHEN insufficient_resources THEN
  INSERT INTO trials VALUES (false, NULL, SQLERRM);
END $$;
SELECT is((SELECT ok FROM trials), false, 'the next submit is refused: the batch left the bucket in debt');
-- poll with single submits until one is admitted
DO $$
DECLARE
  t0 timestamptz := (SELECT at FROM marks WHERE name = 'debt');
BEGIN
  WHILE clock_timestamp() < t0 + interval '10 s' LOOP
    BEGIN
      PERFORM tforge.submit_task('cpu-light');
      UPDATE marks SET n = extract(epoch FROM clock_timestamp() - t0) * 1000 WHERE name = 'debt';
      RETURN;
    EXCEPTION WHEN insufficient_resources THEN
      PERFORM pg_sleep(0.05);
    END;
  END LOOP;
END $$;
SELECT ok((SELECT n BETWEEN 1000 AND 9000 FROM marks WHERE name = 'debt'),
          format('submits are admitted again once the debt is paid (after %s ms; at least 1510 ms after the admission, which came a little before the clock started; without debt 10 ms)',
                 (SELECT n FROM marks WHERE name = 'debt')));

ALTER SYSTEM RESET tforge.admission_rate;
ALTER SYSTEM RESET tforge.queue_capacity;
SELECT pg_reload_conf() \gset
SELECT pg_sleep(0.5) \gset
SELECT tforge.governor_override(NULL) \gset
DELETE FROM tforge.tasks;

SELECT * FROM finish();
