-- The governor's pure functions: RED ramps, every AIMD transition, the
-- seed's container-test sequence, bad input; GUC check hooks.
-- Expected values worked by hand from the seed's formulas (in comments).
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'

-- RED, seed defaults (min 0.6, max 1.0, max_p 0.3): p = 0.3 * (fill - 0.6) / 0.4
-- fill 0.7 -> 0.075, 0.8 -> 0.15, 0.9 -> 0.225, 1.0 and above -> 0.3.
SELECT fill, round(tforge.red_drop_probability(fill)::numeric, 12) AS p
  FROM unnest(ARRAY[0, 0.3, 0.59, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0, 1.5, 100]::float8[]) fill;
-- custom ramp: 0.6 * (0.5 - 0.2) / (0.8 - 0.2) = 0.3; below 0.2 -> 0; at 0.8 -> 0.6
SELECT round(tforge.red_drop_probability(0.5, 0.2, 0.8, 0.6)::numeric, 12) AS mid,
       tforge.red_drop_probability(0.1, 0.2, 0.8, 0.6) AS below,
       tforge.red_drop_probability(0.8, 0.2, 0.8, 0.6) AS at_max,
       tforge.red_drop_probability(0.9, 0.2, 0.8, 0) AS never;
-- should_drop is draw < p: p(0.8) = 0.15
SELECT tforge.red_should_drop(0.8, draw => 0.149) AS below_p, tforge.red_should_drop(0.8, draw => 0.151) AS above_p,
       tforge.red_should_drop(0.5, draw => 0) AS under_min, tforge.red_should_drop(2, draw => 0.2999) AS full;
-- RED with random draws drops about p of the time (p = 0.3 at a full queue;
-- 10,000 draws: mean 3,000, sd 46; bounds at 6 sd)
SELECT count(*) FILTER (WHERE tforge.red_should_drop(1.0)) BETWEEN 2724 AND 3276 AS near_p
  FROM generate_series(1, 10000);
-- NULL in, NULL out (STRICT)
SELECT tforge.red_drop_probability(NULL) IS NULL AS strict;
-- bad input: 22023
SELECT tforge.red_drop_probability('NaN');
:sqlstate
SELECT tforge.red_drop_probability(-0.1);
:sqlstate
SELECT tforge.red_drop_probability(0.5, 0.8, 0.8);
:sqlstate
SELECT tforge.red_drop_probability(0.5, 0.9, 0.6);
:sqlstate
SELECT tforge.red_drop_probability(0.5, max_p => 1.5);
:sqlstate
SELECT tforge.red_drop_probability(0.5, max_th => 'Infinity');
:sqlstate
SELECT tforge.red_should_drop(0.5, draw => 1);
:sqlstate
SELECT tforge.red_should_drop(0.5, draw => -0.5);
:sqlstate

-- AIMD, seed defaults: enter 0.70, exit 0.55, severe 0.90, x0.5, +0.05, floor 0.1.
-- Every transition of the seed's state machine, one row each.
SELECT st AS from_state, sc AS from_scale, p AS pressure, (tforge.aimd_step(ROW(st, sc)::tforge.aimd_state, p)).*
  FROM (VALUES
    ('Normal', 1::float8, 0.70::float8),  -- not above enter: stays
    ('Normal', 1, 0.701),                 -- above enter: Degraded x0.5
    ('Normal', 1, 0.99),                  -- one decrease, even when severe
    ('Degraded', 0.5, 0.55),              -- not below exit: holds
    ('Degraded', 0.5, 0.90),              -- not above severe: holds
    ('Degraded', 0.5, 0.549),             -- below exit: Recovering, scale kept
    ('Degraded', 0.5, 0.901),             -- above severe: x0.5 again
    ('Degraded', 0.125, 0.95),            -- 0.0625 clamps at 0.1
    ('Degraded', 0.1, 0.95),              -- at the floor: stays
    ('Recovering', 0.5, 0.701),           -- above enter: Degraded x0.5
    ('Recovering', 0.5, 0.70),            -- between exit and enter: holds
    ('Recovering', 0.5, 0.55),            -- not below exit: holds
    ('Recovering', 0.5, 0.5),             -- below exit: +0.05
    ('Recovering', 0.95, 0.1),            -- reaches 1.0: Normal
    ('Recovering', 0.98, 0),              -- capped at 1.0: Normal
    ('Recovering', 0.1, 0.99)             -- 0.05 clamps at 0.1
  ) AS t(st, sc, p);
-- a NULL state is (Normal, 1)
SELECT (tforge.aimd_step(NULL, 0.5)).*, (tforge.aimd_step(NULL, 0.8)).*;
-- custom parameters: enter 0.5, exit 0.2, severe 0.6, x0.25, +0.5, floor 0.05
SELECT (tforge.aimd_step(('Normal', 1), 0.51, 0.5, 0.2, 0.6, 0.25, 0.5, 0.05)).*;
SELECT (tforge.aimd_step(('Degraded', 0.0625), 0.61, 0.5, 0.2, 0.6, 0.25, 0.5, 0.05)).*;
SELECT (tforge.aimd_step(('Recovering', 0.6), 0.1, 0.5, 0.2, 0.6, 0.25, 0.5, 0.05)).*;

-- The seed's container test as a pressure trace, one tick per row:
-- 70.1 % -> Degraded 0.5; 90.1 % -> 0.25 -> 0.125 -> 0.1 (floor) -> 0.1;
-- then 50 %: Recovering, +0.05 per tick, 18 increments from 0.1 to 1.0 -> Normal.
WITH RECURSIVE trace(tick, p) AS (
  SELECT 1, 0.701::float8
  UNION ALL
  SELECT tick + 1, CASE WHEN tick < 5 THEN 0.901 ELSE 0.50 END FROM trace WHERE tick < 25
), run(tick, p, s) AS (
  SELECT 1, 0.701::float8, tforge.aimd_step(NULL, 0.701)
  UNION ALL
  SELECT t.tick, t.p, tforge.aimd_step(r.s, t.p) FROM run r JOIN trace t ON t.tick = r.tick + 1
)
SELECT tick, p AS pressure, (s).state, (s).scale FROM run ORDER BY tick;

-- bad input
SELECT tforge.aimd_step(('Normal', 1), 0.5, enter => 0.5);          -- exit 0.55 >= enter
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), 0.5, severe => 0.6);         -- severe < enter
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), 0.5, decrease => 1);
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), 0.5, decrease => 0);
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), 0.5, increase => 0);
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), 0.5, min_scale => 0);
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), 0.5, min_scale => 1.5);
:sqlstate
SELECT tforge.aimd_step(('Overloaded', 0.5), 0.5);
:sqlstate
SELECT tforge.aimd_step(('Degraded', 0.05), 0.5);                  -- below the floor
:sqlstate
SELECT tforge.aimd_step(('Degraded', 1.5), 0.5);
:sqlstate
SELECT tforge.aimd_step(('Normal', 0.5), 0.5);                     -- Normal is scale 1
:sqlstate
SELECT tforge.aimd_step(('Degraded', NULL), 0.5);
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), NULL);
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), 'NaN');
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), -1);
:sqlstate
SELECT tforge.aimd_step(('Normal', 1), 0.5, enter => NULL);
:sqlstate

-- governor_override is for superusers only, and range-checked
CREATE ROLE tforge_gov_user;
SET ROLE tforge_gov_user;
SELECT tforge.governor_override(0.5);
:sqlstate
RESET ROLE;
GRANT EXECUTE ON FUNCTION tforge.governor_override(float8) TO tforge_gov_user;
SET ROLE tforge_gov_user;
SELECT tforge.governor_override(0.5);
:sqlstate
RESET ROLE;
DROP OWNED BY tforge_gov_user;
DROP ROLE tforge_gov_user;
SELECT tforge.governor_override(11);
:sqlstate
SELECT tforge.governor_override('NaN');
:sqlstate
SELECT tforge.governor_override(-0.1);
:sqlstate
-- governor_status is readable by tforge_reader; override is not granted to it
SELECT has_function_privilege('tforge_reader', 'tforge.governor_status()', 'EXECUTE') AS reader_status,
       has_function_privilege('tforge_reader', 'tforge.governor_housekeeping()', 'EXECUTE') AS reader_housekeeping,
       has_function_privilege('tforge_reader', 'tforge.governor_override(float8)', 'EXECUTE') AS reader_override,
       has_function_privilege('public', 'tforge.governor_override(float8)', 'EXECUTE') AS public_override;
SELECT task, every FROM tforge.governor_housekeeping() ORDER BY task;

-- GUC check hooks (ALTER SYSTEM validates without writing on error):
-- thresholds in order, probabilities in [0, 1], intervals > 0.
ALTER SYSTEM SET tforge.governor_enter = 0.5;
:sqlstate
ALTER SYSTEM SET tforge.governor_exit = 0.8;
:sqlstate
ALTER SYSTEM SET tforge.governor_severe = 0.6;
:sqlstate
ALTER SYSTEM SET tforge.red_min_threshold = 1.0;
:sqlstate
ALTER SYSTEM SET tforge.red_max_threshold = 0.5;
:sqlstate
ALTER SYSTEM SET tforge.red_max_probability = 1.5;
:sqlstate
ALTER SYSTEM SET tforge.governor_decrease = 1;
:sqlstate
ALTER SYSTEM SET tforge.governor_interval = 0;
:sqlstate
ALTER SYSTEM SET tforge.task_retention = 0;
:sqlstate
SET tforge.governor_interval = 100;
:sqlstate
