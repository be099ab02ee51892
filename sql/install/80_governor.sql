-- The governor: RED and AIMD admission control (DESIGN.md component 6, seed 004).
--
-- The pure functions below are the arithmetic the background worker and
-- submit_task's admission use (src/red_aimd.c). The worker itself runs only
-- when tforge is in shared_preload_libraries: it samples pressure every
-- tforge.governor_interval, steps the AIMD state machine in shared memory,
-- records each state change and control action in tforge.governor_events
-- (and NOTIFYs channel tforge_governor), and runs the housekeeping.

CREATE FUNCTION tforge.red_drop_probability(fill float8, min_th float8 DEFAULT 0.6,
                                            max_th float8 DEFAULT 1.0, max_p float8 DEFAULT 0.3)
  RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_red_drop_probability'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.red_drop_probability(float8, float8, float8, float8) IS
  'random early detection: 0 below min_th, max_p * (fill - min_th) / (max_th - min_th) up to max_th, max_p at and above it';

CREATE FUNCTION tforge.red_should_drop(fill float8, min_th float8 DEFAULT 0.6, max_th float8 DEFAULT 1.0,
                                       max_p float8 DEFAULT 0.3, draw float8 DEFAULT pg_catalog.random())
  RETURNS boolean
  AS 'MODULE_PATHNAME', 'tforge_red_should_drop'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.red_should_drop(float8, float8, float8, float8, float8) IS
  'whether random early detection drops at this fill: draw < red_drop_probability(fill, ...); draw is uniform in [0, 1), random() by default';

CREATE TYPE tforge.aimd_state AS (state text, scale float8);
COMMENT ON TYPE tforge.aimd_state IS
  'state of the AIMD governor: state Normal, Degraded or Recovering, and the scale (min_scale ... 1) admissions are multiplied by';

CREATE FUNCTION tforge.aimd_step(state tforge.aimd_state, pressure float8,
                                 enter float8 DEFAULT 0.70, exit float8 DEFAULT 0.55, severe float8 DEFAULT 0.90,
                                 decrease float8 DEFAULT 0.5, increase float8 DEFAULT 0.05,
                                 min_scale float8 DEFAULT 0.1)
  RETURNS tforge.aimd_state
  AS 'MODULE_PATHNAME', 'tforge_aimd_step'
  LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.aimd_step(tforge.aimd_state, float8, float8, float8, float8, float8, float8, float8) IS
  'one tick of the AIMD governor: Normal -> Degraded (scale * decrease) above enter; Degraded -> Recovering below exit, another decrease above severe; Recovering -> Degraded above enter, scale + increase below exit until 1.0 -> Normal; scale never below min_scale; a NULL state is (Normal, 1)';

-- The flight recorder -----------------------------------------------------------

CREATE TABLE tforge.governor_events (
  event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_time timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  event      text NOT NULL CHECK (event IN ('start', 'override', 'state_change', 'scale_down', 'scale_up')),
  state      text NOT NULL CHECK (state IN ('Normal', 'Degraded', 'Recovering')),
  pressure   float8,
  source     text,
  scale      float8 NOT NULL CHECK (scale > 0 AND scale <= 1),
  detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX governor_events_time_idx ON tforge.governor_events (event_time);
COMMENT ON TABLE tforge.governor_events IS
  'the governor''s flight recorder: every state change and control action, with the pressure, its source and the scale after it; purged after tforge.governor_events_keep';
COMMENT ON COLUMN tforge.governor_events.event IS
  'start (worker started), override (superuser override set or cleared), state_change, scale_down (decrease while Degraded), scale_up (increase while Recovering)';
COMMENT ON COLUMN tforge.governor_events.state IS 'the state after the event';
COMMENT ON COLUMN tforge.governor_events.pressure IS 'pressure the decision was made on (fraction; 1 = at the limit)';
COMMENT ON COLUMN tforge.governor_events.source IS 'the source of that pressure: cgroup, psi, memory_limit, queue, gpu or override';
COMMENT ON COLUMN tforge.governor_events.scale IS 'the scale after the event';
COMMENT ON COLUMN tforge.governor_events.detail IS 'the previous state and scale and every source''s pressure at the time';
SELECT pg_catalog.pg_extension_config_dump('tforge.governor_events', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.governor_events_event_id_seq', '');

-- Status and control -----------------------------------------------------------

CREATE FUNCTION tforge.governor_status(
    OUT running boolean, OUT state text, OUT scale float8, OUT pressure float8, OUT source text,
    OUT sampled_at timestamptz, OUT queue_fill float8, OUT pending bigint,
    OUT admitted bigint, OUT refused bigint, OUT refused_red bigint, OUT refused_rate bigint,
    OUT override float8, OUT worker_pid integer, OUT database name, OUT started_at timestamptz,
    OUT starts bigint, OUT cgroup_pressure float8, OUT psi_pressure float8,
    OUT memory_limit_pressure float8, OUT queue_pressure float8, OUT gpu_pressure float8)
  AS 'MODULE_PATHNAME', 'tforge_governor_status'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tforge.governor_status() IS
  'the governor now: whether its worker runs, state, scale, pressure and source, last sample, queue fill and pending count, admissions and refusals (by RED and by rate) since the server started, the override, each source''s pressure; without the preload only the session''s admissions';

CREATE FUNCTION tforge.governor_override(pressure float8) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_governor_override'
  LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION tforge.governor_override(float8) IS
  'superuser only, for tests and drills: the governor uses this pressure (0 ... 10) instead of the measured one from its next sample on; NULL goes back to measuring; not transactional';

CREATE FUNCTION tforge.governor_housekeeping(
    OUT task text, OUT every interval, OUT last_run timestamptz, OUT last_result bigint,
    OUT runs bigint, OUT failures bigint, OUT last_error text)
  RETURNS SETOF record
  AS 'MODULE_PATHNAME', 'tforge_governor_housekeeping'
  LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION tforge.governor_housekeeping() IS
  'the governor''s housekeeping: expire_leases, expire_profiles, purge_tasks (after tforge.task_retention), purge_events (after tforge.governor_events_keep); each task''s schedule (NULL = off), last run, rows it touched, runs, failures and last error';

GRANT EXECUTE ON FUNCTION tforge.governor_status(), tforge.governor_housekeeping() TO tforge_reader;
REVOKE ALL ON FUNCTION tforge.governor_override(float8) FROM PUBLIC;
