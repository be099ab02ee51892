-- Drills against the running governor worker (test/lib/governor-drills.sh
-- points tforge.governor_database at this database, sets a 200 ms cooldown
-- and a 1 s expire_leases schedule, and runs this file with pg_prove).
-- Not in a transaction: the worker's events must be committed to be seen,
-- and ALTER SYSTEM cannot run in one.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
SELECT plan(29);

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

SELECT ok(pg_temp.wait_for($$SELECT running AND database = current_database() FROM tforge.governor_status()$$),
          'the worker runs in this database');
SELECT is((SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tforge governor' AND datname = current_database()),
          1::bigint, 'pg_stat_activity shows one backend of type "tforge governor"');

-- Notifications: a second session listens on tforge_governor throughout.
SELECT dblink_connect('listener', tap_connstr()) IS NOT NULL AS connected \gset
SELECT dblink_exec('listener', 'LISTEN tforge_governor') IS NOT NULL AS listening \gset

-- Start from Normal: pressure 0 until the governor has recovered.
SELECT tforge.governor_override(0) \gset
SELECT ok(pg_temp.wait_for($$SELECT state = 'Normal' AND scale = 1 FROM tforge.governor_status()$$),
          'pressure 0 brings the governor to Normal at scale 1');
INSERT INTO marks SELECT 'begin', clock_timestamp(), max(event_id) FROM tforge.governor_events;

-- Drill 1: 0.72 -> Degraded at 0.5 within two intervals.
INSERT INTO marks VALUES ('p072', clock_timestamp());
SELECT tforge.governor_override(0.72) \gset
SELECT ok(pg_temp.wait_for($$SELECT EXISTS (SELECT FROM tforge.governor_events e, marks m
                                      WHERE m.name = 'p072' AND e.event_time >= m.at AND e.state = 'Degraded')$$),
          'pressure 0.72: a Degraded event');
SELECT results_eq(
  $$SELECT e.event, e.state, e.scale, e.source, e.pressure FROM tforge.governor_events e, marks m
     WHERE m.name = 'p072' AND e.event_time >= m.at AND e.event <> 'override' ORDER BY e.event_id$$,
  $$VALUES ('state_change', 'Degraded', 0.5::float8, 'override', 0.72::float8)$$,
  'pressure 0.72: Normal -> Degraded at scale 0.5 (x0.5), one event');
SELECT cmp_ok((SELECT e.event_time - m.at FROM tforge.governor_events e, marks m
                WHERE m.name = 'p072' AND e.event_time >= m.at AND e.state = 'Degraded' ORDER BY e.event_id LIMIT 1),
              '<=', 2 * current_setting('tforge.governor_interval')::interval,
              'reaction within two intervals of the pressure change');
SELECT is((SELECT (state, scale) FROM tforge.governor_status()), ('Degraded'::text, 0.5::float8),
          'governor_status shows Degraded at 0.5');

-- Drill 2: 0.91 -> 0.25 -> 0.125 -> 0.1, then the floor holds.
INSERT INTO marks VALUES ('p091', clock_timestamp());
SELECT tforge.governor_override(0.91) \gset
SELECT ok(pg_temp.wait_for($$SELECT scale = 0.1 FROM tforge.governor_status()$$),
          'pressure 0.91: the scale reaches the 0.1 floor');
SELECT pg_sleep_for(3 * current_setting('tforge.governor_cooldown')::interval) \gset
SELECT results_eq(
  $$SELECT e.event, e.state, e.scale FROM tforge.governor_events e, marks m
     WHERE m.name = 'p091' AND e.event_time >= m.at AND e.event <> 'override' ORDER BY e.event_id$$,
  $$VALUES ('scale_down', 'Degraded', 0.25::float8), ('scale_down', 'Degraded', 0.125), ('scale_down', 'Degraded', 0.1)$$,
  'pressure 0.91: x0.5 to 0.25, to 0.125, clamped at 0.1, nothing below the floor');
SELECT ok((SELECT bool_and(gap >= current_setting('tforge.governor_cooldown')::interval * 0.9)
             FROM (SELECT e.event_time - lag(e.event_time) OVER (ORDER BY e.event_id) AS gap
                     FROM tforge.governor_events e, marks m
                    WHERE m.name = 'p091' AND e.event_time >= m.at AND e.event = 'scale_down') g
            WHERE gap IS NOT NULL),
          'decreases while Degraded are spaced by tforge.governor_cooldown');

-- Drill 3: 0.50 -> Recovering, +0.05 per tick to 1.0 -> Normal.
INSERT INTO marks VALUES ('p050', clock_timestamp());
SELECT tforge.governor_override(0.50) \gset
-- (wait for the event: shared memory shows a new state before its event commits)
SELECT ok(pg_temp.wait_for($$SELECT EXISTS (SELECT FROM tforge.governor_events e, marks m
                                      WHERE m.name = 'p050' AND e.event_time >= m.at AND e.state = 'Normal')$$),
          'pressure 0.50: back to Normal');
-- expected: Recovering at 0.1, then 0.15 ... 0.95 (17 increases), then Normal at 1.0
SELECT results_eq(
  $$SELECT e.event, e.state, e.scale FROM tforge.governor_events e, marks m
     WHERE m.name = 'p050' AND e.event_time >= m.at AND e.event <> 'override' ORDER BY e.event_id$$,
  $$SELECT * FROM (VALUES ('state_change', 'Recovering', 0.1::float8)) a
    UNION ALL (SELECT 'scale_up', 'Recovering', round(0.1 + 0.05 * i, 2)::float8 FROM generate_series(1, 17) i ORDER BY i)
    UNION ALL SELECT 'state_change', 'Normal', 1$$,
  'pressure 0.50: Recovering, +0.05 per tick from 0.1 to 0.95, then Normal at 1.0');
SELECT ok((SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY gap)
             BETWEEN current_setting('tforge.governor_interval')::interval * 0.5
                 AND current_setting('tforge.governor_interval')::interval * 3
             FROM (SELECT e.event_time - lag(e.event_time) OVER (ORDER BY e.event_id) AS gap
                     FROM tforge.governor_events e, marks m
                    WHERE m.name = 'p050' AND e.event_time >= m.at AND e.event <> 'override') g
            WHERE gap IS NOT NULL),
          'one increase per interval (median gap between steps)');

-- Every event since the drills began was NOTIFYed on tforge_governor with
-- the row as its JSON payload.
SELECT pg_sleep(0.2) \gset
CREATE TEMP TABLE notes AS
SELECT (extra::jsonb ->> 'event_id')::bigint AS event_id, extra::jsonb AS payload, notify_name
  FROM dblink_get_notify('listener');
SELECT set_eq(
  $$SELECT n.event_id FROM notes n, marks m WHERE n.notify_name = 'tforge_governor' AND m.name = 'begin' AND n.event_id > m.n$$,
  $$SELECT e.event_id FROM tforge.governor_events e, marks m WHERE m.name = 'begin' AND e.event_id > m.n$$,
  'one notification per event');
SELECT is((SELECT count(*) FROM notes n JOIN tforge.governor_events e USING (event_id)
            WHERE n.payload ->> 'state' = e.state AND (n.payload ->> 'scale')::float8 = e.scale
              AND n.payload ->> 'event' = e.event AND n.payload ->> 'source' IS NOT DISTINCT FROM e.source),
          (SELECT count(*) FROM notes),
          'each payload carries the event, state, scale and source of its row');
SELECT dblink_disconnect('listener') \gset

-- Admission by RED: 80 pending tasks of capacity 100 make fill 0.8, so
-- p = 0.3 * (0.8 - 0.6) / 0.4 = 0.15. The override keeps the governor
-- Normal (scale 1) although the queue itself would degrade it.
ALTER SYSTEM SET tforge.queue_capacity = 100;
SELECT pg_reload_conf() \gset
-- the SIGHUP reaches this session between statements
SELECT pg_sleep(0.5) \gset
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts)
SELECT 'cpu-light', now() + interval '10 s', 5, now() + interval '5 s', 3 FROM generate_series(1, 80);
SELECT tforge.governor_override(0) \gset
SELECT ok(pg_temp.wait_for($$SELECT queue_fill = 0.8 AND state = 'Normal' AND current_setting('tforge.queue_capacity') = '100'
                              FROM tforge.governor_status()$$),
          'the worker measures queue fill 0.8 (80 pending of 100)');
INSERT INTO marks SELECT 'red', clock_timestamp(), refused_red FROM tforge.governor_status();
-- 2,000 submits in one transaction (uncommitted, so the fill stays 0.8):
-- refusals ~ Binomial(2000, 0.15): mean 300, sd 16; bounds at 5 sd.
CREATE TEMP TABLE trials (ok boolean, msg text);
DO $$
BEGIN
  FOR i IN 1..2000 LOOP
    BEGIN
      PERFORM tforge.submit_task('cpu-light');
      INSERT INTO trials VALUES (true, NULL);
    EXCEPTION WHEN insufficient_resources THEN
      INSERT INTO trials VALUES (false, SQLERRM);
    END;
  END LOOP;
END $$;
SELECT ok((SELECT count(*) FROM trials WHERE NOT ok) BETWEEN 220 AND 380,
          format('RED refuses about 15 %% of submits at fill 0.8 (%s of 2000; bounds 220..380)',
                 (SELECT count(*) FROM trials WHERE NOT ok)));
SELECT is((SELECT DISTINCT msg FROM trials WHERE NOT ok),
          'task refused by admission control: queue fill 0.800, drop probability 0.150, scale 1.00',
          'the refusal gives fill, probability and scale');
SELECT is((SELECT s.refused_red - m.n FROM tforge.governor_status() s, marks m WHERE m.name = 'red'),
          (SELECT count(*) FROM trials WHERE NOT ok),
          'governor_status counts each refusal');
DELETE FROM trials;
DELETE FROM tforge.tasks;

-- Admission by rate: admission_rate 200 at scale 0.5 (pressure 0.72) is 100
-- submits per second with a burst of 100: in T seconds between 100 T - 1
-- and 100 + 100 T + 1 submits get through, however many are tried.
ALTER SYSTEM SET tforge.queue_capacity = 10000;
ALTER SYSTEM SET tforge.admission_rate = 200;
SELECT pg_reload_conf() \gset
-- the SIGHUP reaches this session between statements
SELECT pg_sleep(0.5) \gset
SELECT tforge.governor_override(0.72) \gset
SELECT ok(pg_temp.wait_for($$SELECT scale = 0.5 AND queue_fill = 0 AND current_setting('tforge.admission_rate') = '200'
                              FROM tforge.governor_status()$$),
          'Degraded at 0.5 with an empty queue');
INSERT INTO marks VALUES ('rate', clock_timestamp());
DO $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  WHILE clock_timestamp() < t0 + interval '2 s' LOOP
    BEGIN
      PERFORM tforge.submit_task('cpu-light');
      INSERT INTO trials VALUES (true, NULL);
    EXCEPTION WHEN insufficient_resources THEN
      INSERT INTO trials VALUES (false, SQLERRM);
    END;
  END LOOP;
  UPDATE marks SET n = extract(epoch FROM clock_timestamp() - t0) * 1000 WHERE name = 'rate';
END $$;
SELECT ok((SELECT count(*) FROM trials WHERE ok) BETWEEN 100 * m.n / 1000.0 - 1 AND 100 + 100 * m.n / 1000.0 + 1,
          format('the token bucket admits 100/s: %s admitted in %s ms (bounds %s..%s), %s tried',
                 (SELECT count(*) FROM trials WHERE ok), m.n, floor(100 * m.n / 1000.0 - 1),
                 ceil(100 + 100 * m.n / 1000.0 + 1), (SELECT count(*) FROM trials)))
  FROM marks m WHERE m.name = 'rate';
SELECT ok((SELECT bool_and(msg LIKE 'task refused by admission control: queue fill 0.000, drop probability 0.000, scale 0.50')
             FROM trials WHERE NOT ok),
          'a rate refusal gives fill 0, probability 0 and scale 0.50');
ALTER SYSTEM RESET tforge.admission_rate;
SELECT pg_reload_conf() \gset
-- the SIGHUP reaches this session between statements
SELECT pg_sleep(0.5) \gset
DELETE FROM tforge.tasks;

-- Housekeeping: a task whose lease expired is requeued by the worker
-- (tforge.expire_leases_interval is 1 s here), and the run is reported.
INSERT INTO tforge.tasks (task_type, deadline, predicted_runtime_s, laxity_key, max_attempts, status, attempts,
                         worker_id, claimed_at, lease_s, lease_expires_at)
VALUES ('cpu-light', now() + interval '10 s', 5, now() + interval '5 s', 3, 'running', 1,
        'gone', now() - interval '1 min', 30, now() - interval '30 s');
SELECT ok(pg_temp.wait_for($$SELECT status = 'pending' FROM tforge.tasks$$, 5),
          'housekeeping requeues a task whose lease expired');
SELECT ok((SELECT runs > 0 AND every = '1 s' AND last_run > now() - interval '1 min' AND failures = 0
             FROM tforge.governor_housekeeping() WHERE task = 'expire_leases'),
          'governor_housekeeping() shows expire_leases running every second');

-- The worker restarts after being killed, keeping the state in shared memory.
INSERT INTO marks SELECT 'kill', clock_timestamp(), worker_pid FROM tforge.governor_status();
SELECT ok(pg_terminate_backend((SELECT n::int FROM marks WHERE name = 'kill')), 'worker terminated');
SELECT ok(pg_temp.wait_for($$SELECT s.running AND s.worker_pid <> m.n FROM tforge.governor_status() s, marks m
                              WHERE m.name = 'kill'$$, 10),
          'a new worker runs after the kill');
SELECT ok(pg_temp.wait_for($$SELECT EXISTS (SELECT FROM tforge.governor_events e, marks m
                   WHERE m.name = 'kill' AND e.event = 'start' AND e.event_time > m.at
                     AND (e.detail ->> 'pid')::int = (SELECT worker_pid FROM tforge.governor_status()))$$, 5),
          'the new worker recorded its start');
SELECT is((SELECT state FROM tforge.governor_status()), 'Degraded', 'the state survived the restart');

SELECT tforge.governor_override(NULL) \gset
SELECT ok(pg_temp.wait_for($$SELECT override IS NULL AND source <> 'override' FROM tforge.governor_status()$$),
          'NULL clears the override: the pressure is measured again');

SELECT * FROM finish();
