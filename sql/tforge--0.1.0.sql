\echo Use "CREATE EXTENSION tforge" to load this file. \quit

-- ---- sql/install/00_core.sql ----
-- Core: roles, schema privileges, version and settings helpers.
--
-- The schema tforge itself is created by CREATE EXTENSION (tforge.control).
-- Roles are cluster-wide, so they are created only when missing and survive
-- DROP EXTENSION.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tforge_reader') THEN
    CREATE ROLE tforge_reader NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tforge_worker') THEN
    CREATE ROLE tforge_worker NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tforge_admin') THEN
    CREATE ROLE tforge_admin NOLOGIN;
  END IF;
END
$$;

-- Each role has what the one before it has.
GRANT tforge_reader TO tforge_worker;
GRANT tforge_worker TO tforge_admin;

-- Everybody may use the schema's types and pure functions; state-changing
-- functions are revoked from PUBLIC at the end of the script (99_privileges).
GRANT USAGE ON SCHEMA tforge TO PUBLIC;

CREATE FUNCTION tforge.library_version() RETURNS text
  AS 'MODULE_PATHNAME', 'tforge_library_version'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.library_version() IS
  'version of the loaded tforge shared library; equals the extension version when both are current';

CREATE FUNCTION tforge._setting(name text) RETURNS text
  AS 'MODULE_PATHNAME', 'tforge_setting'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._setting(text) IS
  'internal: current value of a tforge.* setting (loads the library first so the setting is defined)';

-- ---- sql/install/10_semver.sql ----
-- tforge.semver: Semantic Versioning 2.0.0 as a type (src/semver.c, src/semver_ops.c).
--
-- Precedence follows the specification exactly and ignores build metadata,
-- so 1.0.0+a = 1.0.0+b; the btree and hash operator classes agree with "=".

CREATE TYPE tforge.semver;

CREATE FUNCTION tforge.semver_in(cstring) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_in'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_in(cstring) IS
  'text input of tforge.semver: strict SemVer 2.0.0, 22P02 on malformed text, 22003 on a number above 2^63-1';

CREATE FUNCTION tforge.semver_out(tforge.semver) RETURNS cstring
  AS 'MODULE_PATHNAME', 'semver_out'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_out(tforge.semver) IS
  'text output of tforge.semver: the canonical SemVer text, build metadata included';

CREATE FUNCTION tforge.semver_recv(internal) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_recv'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_recv(internal) IS
  'binary input of tforge.semver: format byte 1, then the text form (validated like text input)';

CREATE FUNCTION tforge.semver_send(tforge.semver) RETURNS bytea
  AS 'MODULE_PATHNAME', 'semver_send'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_send(tforge.semver) IS
  'binary output of tforge.semver: format byte 1, then the text form';

CREATE TYPE tforge.semver (
  INPUT = tforge.semver_in,
  OUTPUT = tforge.semver_out,
  RECEIVE = tforge.semver_recv,
  SEND = tforge.semver_send,
  INTERNALLENGTH = VARIABLE,
  ALIGNMENT = int4,
  STORAGE = extended
);
COMMENT ON TYPE tforge.semver IS
  'Semantic Versioning 2.0.0 version (major.minor.patch[-prerelease][+build]); ordered by SemVer precedence, build metadata ignored';

-- Comparison

CREATE FUNCTION tforge.semver_cmp(a tforge.semver, b tforge.semver) RETURNS integer
  AS 'MODULE_PATHNAME', 'semver_cmp'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_cmp(tforge.semver, tforge.semver) IS
  '-1, 0 or 1 as a has lower, equal or higher SemVer precedence than b (build metadata ignored)';

CREATE FUNCTION tforge.semver_eq(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_eq'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_eq(tforge.semver, tforge.semver) IS
  'implementation of = for tforge.semver';

CREATE FUNCTION tforge.semver_ne(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_ne'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_ne(tforge.semver, tforge.semver) IS
  'implementation of <> for tforge.semver';

CREATE FUNCTION tforge.semver_lt(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_lt'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_lt(tforge.semver, tforge.semver) IS
  'implementation of < for tforge.semver';

CREATE FUNCTION tforge.semver_le(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_le'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_le(tforge.semver, tforge.semver) IS
  'implementation of <= for tforge.semver';

CREATE FUNCTION tforge.semver_gt(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_gt'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_gt(tforge.semver, tforge.semver) IS
  'implementation of > for tforge.semver';

CREATE FUNCTION tforge.semver_ge(tforge.semver, tforge.semver) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_ge'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
COMMENT ON FUNCTION tforge.semver_ge(tforge.semver, tforge.semver) IS
  'implementation of >= for tforge.semver';

CREATE OPERATOR tforge.= (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_eq,
  COMMUTATOR = OPERATOR(tforge.=), NEGATOR = OPERATOR(tforge.<>),
  RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
COMMENT ON OPERATOR tforge.= (tforge.semver, tforge.semver) IS
  'equal SemVer precedence (build metadata ignored: 1.0.0+a = 1.0.0+b)';

CREATE OPERATOR tforge.<> (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_ne,
  COMMUTATOR = OPERATOR(tforge.<>), NEGATOR = OPERATOR(tforge.=),
  RESTRICT = neqsel, JOIN = neqjoinsel
);
COMMENT ON OPERATOR tforge.<> (tforge.semver, tforge.semver) IS
  'different SemVer precedence';

CREATE OPERATOR tforge.< (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_lt,
  COMMUTATOR = OPERATOR(tforge.>), NEGATOR = OPERATOR(tforge.>=),
  RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
COMMENT ON OPERATOR tforge.< (tforge.semver, tforge.semver) IS
  'lower SemVer precedence';

CREATE OPERATOR tforge.<= (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_le,
  COMMUTATOR = OPERATOR(tforge.>=), NEGATOR = OPERATOR(tforge.>),
  RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
COMMENT ON OPERATOR tforge.<= (tforge.semver, tforge.semver) IS
  'lower or equal SemVer precedence';

CREATE OPERATOR tforge.> (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_gt,
  COMMUTATOR = OPERATOR(tforge.<), NEGATOR = OPERATOR(tforge.<=),
  RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
COMMENT ON OPERATOR tforge.> (tforge.semver, tforge.semver) IS
  'higher SemVer precedence';

CREATE OPERATOR tforge.>= (
  LEFTARG = tforge.semver, RIGHTARG = tforge.semver, PROCEDURE = tforge.semver_ge,
  COMMUTATOR = OPERATOR(tforge.<=), NEGATOR = OPERATOR(tforge.<),
  RESTRICT = scalargesel, JOIN = scalargejoinsel
);
COMMENT ON OPERATOR tforge.>= (tforge.semver, tforge.semver) IS
  'higher or equal SemVer precedence';

-- Sorting and hashing

CREATE FUNCTION tforge.semver_sortsupport(internal) RETURNS void
  AS 'MODULE_PATHNAME', 'semver_sortsupport'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_sortsupport(internal) IS
  'sort support for tforge.semver: byte-key comparison with abbreviated keys';

CREATE FUNCTION tforge.semver_hash(tforge.semver) RETURNS integer
  AS 'MODULE_PATHNAME', 'semver_hash'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_hash(tforge.semver) IS
  'hash of a semver consistent with = (build metadata ignored)';

CREATE FUNCTION tforge.semver_hash_extended(tforge.semver, bigint) RETURNS bigint
  AS 'MODULE_PATHNAME', 'semver_hash_extended'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_hash_extended(tforge.semver, bigint) IS
  '64-bit seeded hash of a semver consistent with = (build metadata ignored)';

CREATE OPERATOR CLASS tforge.semver_ops
  DEFAULT FOR TYPE tforge.semver USING btree AS
    OPERATOR 1 tforge.< ,
    OPERATOR 2 tforge.<= ,
    OPERATOR 3 tforge.= ,
    OPERATOR 4 tforge.>= ,
    OPERATOR 5 tforge.> ,
    FUNCTION 1 tforge.semver_cmp(tforge.semver, tforge.semver),
    FUNCTION 2 tforge.semver_sortsupport(internal);

CREATE OPERATOR CLASS tforge.semver_hash_ops
  DEFAULT FOR TYPE tforge.semver USING hash AS
    OPERATOR 1 tforge.= ,
    FUNCTION 1 tforge.semver_hash(tforge.semver),
    FUNCTION 2 tforge.semver_hash_extended(tforge.semver, bigint);

-- Parts and parsing

CREATE FUNCTION tforge.to_semver(text) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_to_semver'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.to_semver(text) IS
  'the text as a semver, or NULL when it is not a valid SemVer 2.0.0 version (or has a number above 2^63-1)';

CREATE FUNCTION tforge.is_semver(text) RETURNS boolean
  AS 'MODULE_PATHNAME', 'semver_is_semver'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.is_semver(text) IS
  'true when the text is a valid SemVer 2.0.0 version that tforge.semver can store';

CREATE FUNCTION tforge.major(tforge.semver) RETURNS bigint
  AS 'MODULE_PATHNAME', 'semver_major'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.major(tforge.semver) IS 'major version number';

CREATE FUNCTION tforge.minor(tforge.semver) RETURNS bigint
  AS 'MODULE_PATHNAME', 'semver_minor'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.minor(tforge.semver) IS 'minor version number';

CREATE FUNCTION tforge.patch(tforge.semver) RETURNS bigint
  AS 'MODULE_PATHNAME', 'semver_patch'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.patch(tforge.semver) IS 'patch version number';

CREATE FUNCTION tforge.prerelease(tforge.semver) RETURNS text
  AS 'MODULE_PATHNAME', 'semver_prerelease'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.prerelease(tforge.semver) IS
  'pre-release identifiers without the leading "-" (rc.1), or an empty string for a release';

CREATE FUNCTION tforge.build(tforge.semver) RETURNS text
  AS 'MODULE_PATHNAME', 'semver_build'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.build(tforge.semver) IS
  'build metadata without the leading "+", or an empty string when there is none';

-- Aggregates: the newest (or oldest) version of a set

CREATE FUNCTION tforge.semver_larger(tforge.semver, tforge.semver) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_larger'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_larger(tforge.semver, tforge.semver) IS
  'the higher-precedence of two semvers (the first on a tie)';

CREATE FUNCTION tforge.semver_smaller(tforge.semver, tforge.semver) RETURNS tforge.semver
  AS 'MODULE_PATHNAME', 'semver_smaller'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_smaller(tforge.semver, tforge.semver) IS
  'the lower-precedence of two semvers (the first on a tie)';

CREATE AGGREGATE tforge.max(tforge.semver) (
  SFUNC = tforge.semver_larger, STYPE = tforge.semver,
  COMBINEFUNC = tforge.semver_larger, SORTOP = OPERATOR(tforge.>), PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.max(tforge.semver) IS 'highest-precedence version of the set';

CREATE AGGREGATE tforge.min(tforge.semver) (
  SFUNC = tforge.semver_smaller, STYPE = tforge.semver,
  COMBINEFUNC = tforge.semver_smaller, SORTOP = OPERATOR(tforge.<), PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.min(tforge.semver) IS 'lowest-precedence version of the set';

-- Ranges of versions: '[1.0.0,2.0.0)'::tforge.semver_range @> '1.4.2'::tforge.semver

CREATE FUNCTION tforge.semver_range_diff(tforge.semver, tforge.semver) RETURNS double precision
  AS 'MODULE_PATHNAME', 'semver_range_diff'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.semver_range_diff(tforge.semver, tforge.semver) IS
  'distance a - b between two semvers for GiST on tforge.semver_range: never negative when a is higher, never positive when a is lower (coarse for long common prefixes)';

CREATE TYPE tforge.semver_range AS RANGE (
  SUBTYPE = tforge.semver,
  SUBTYPE_OPCLASS = tforge.semver_ops,
  SUBTYPE_DIFF = tforge.semver_range_diff
);
COMMENT ON TYPE tforge.semver_range IS
  'range of semvers by SemVer precedence, e.g. [1.0.0,2.0.0) holds every 1.x release and 2.0.0''s pre-releases';
COMMENT ON FUNCTION tforge.semver_range(tforge.semver, tforge.semver) IS
  'range [lower, upper) of semvers';
COMMENT ON FUNCTION tforge.semver_range(tforge.semver, tforge.semver, text) IS
  'range of semvers with the given bounds, e.g. ''[]''';
COMMENT ON TYPE tforge.semver_multirange IS
  'set of disjoint semver ranges';
COMMENT ON FUNCTION tforge.semver_multirange() IS
  'empty semver multirange';
COMMENT ON FUNCTION tforge.semver_multirange(tforge.semver_range) IS
  'semver multirange of one range';
COMMENT ON FUNCTION tforge.semver_multirange(tforge.semver_range[]) IS
  'semver multirange of the given ranges';

-- ---- sql/install/20_queue.sql ----
-- Tasks, tau and the deadline queue (DESIGN.md component 1).
--
-- A task type's learned runtime (tau, seconds) follows an exponential moving
-- average of the runtimes its completions report. A task's deadline is fixed
-- at submit: deadline = arrival + sla_multiplier * tau. Workers claim the
-- task with the least laxity first: laxity = deadline - now() - predicted,
-- and since now() is common to every candidate this orders exactly like
-- laxity_key = deadline - predicted, which is stored and indexed, so a claim
-- is an index scan whatever the queue's length.
--
-- The worker-facing functions are SECURITY DEFINER with a pinned search_path,
-- so tforge_worker needs no privilege on the tables. submit_task,
-- claim_tasks and complete_task, which every worker cycle runs, are C over
-- SPI with plans kept per backend (queue.c); heartbeat and fail_task, off
-- the hot path, are PL/pgSQL and pin plan_cache_mode = force_generic_plan:
-- their statements look up one row by key, and without the setting PL/pgSQL
-- may re-plan a statement whose custom plans look cheaper than the generic
-- one, which costs more than the statement itself.

CREATE FUNCTION tforge.ema(old float8, sample float8, lambda float8) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_ema'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.ema(float8, float8, float8) IS
  'exponential moving average step: lambda * sample + (1 - lambda) * old; lambda in [0,1], finite inputs';

-- Task types -----------------------------------------------------------------

CREATE TABLE tforge.task_types (
  name          text PRIMARY KEY CHECK (name <> ''),
  default_tau_s float8 NOT NULL CHECK (default_tau_s > 0 AND default_tau_s <= 1e9),
  lambda        float8 CHECK (lambda >= 0 AND lambda <= 1),
  builtin       boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tforge.task_types IS
  'task types: default runtime (tau before any completion, seconds) and an optional per-type EMA lambda';
COMMENT ON COLUMN tforge.task_types.lambda IS 'EMA weight for this type; NULL uses tforge.ema_lambda';
COMMENT ON COLUMN tforge.task_types.builtin IS 'one of the six types the extension creates (not dumped: CREATE EXTENSION makes them)';

INSERT INTO tforge.task_types (name, default_tau_s, builtin) VALUES
  ('cpu-light', 5, true), ('cpu-heavy', 15, true), ('memory-heavy', 20, true),
  ('gpu-inference', 10, true), ('gpu-training', 60, true), ('mixed', 10, true);

-- Learned state apart from the definitions, so that pg_dump keeps every
-- learned tau while the built-in definitions come from CREATE EXTENSION.
CREATE TABLE tforge.task_tau (
  task_type  text PRIMARY KEY REFERENCES tforge.task_types (name) ON DELETE CASCADE,
  tau_s      float8 NOT NULL CHECK (tau_s > 0 AND tau_s <= 1e9),
  samples    bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (fillfactor = 10);  -- a few rows, each rewritten by every completion: room for HOT updates, short chains
COMMENT ON TABLE tforge.task_tau IS
  'learned tau per task type (seconds) and how many runtimes it has absorbed; a type without a row uses its default';

SELECT pg_catalog.pg_extension_config_dump('tforge.task_types', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('tforge.task_tau', '');

-- Raise 42704 unless the task type exists.
CREATE FUNCTION tforge._task_type(task_type text) RETURNS tforge.task_types
  LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
  t tforge.task_types;
BEGIN
  SELECT * INTO t FROM tforge.task_types tt WHERE tt.name = task_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task type "%" does not exist', task_type
      USING ERRCODE = 'undefined_object',
            HINT = 'Define it with tforge.define_task_type(name, default_tau_s).';
  END IF;
  RETURN t;
END
$$;
COMMENT ON FUNCTION tforge._task_type(text) IS 'internal: the task type''s definition, or error 42704';

-- Raise 22023 unless value is a duration tau can hold (see _positive_or_null).
CREATE FUNCTION tforge._check_seconds(value float8, what text) RETURNS float8
  LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF tforge._positive_or_null(value) IS NULL THEN
    RAISE EXCEPTION '% must be a number of seconds above 0 and at most 1e9, got %', what, coalesce(value::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN value;
END
$$;
COMMENT ON FUNCTION tforge._check_seconds(float8, text) IS 'internal: returns value, or error 22023 unless it is a number of seconds in (0, 1e9]';

CREATE FUNCTION tforge.define_task_type(name text, default_tau_s float8, lambda float8 DEFAULT NULL)
  RETURNS tforge.task_types
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t tforge.task_types;
BEGIN
  IF name IS NULL OR name = '' THEN
    RAISE EXCEPTION 'task type name must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM tforge._check_seconds(default_tau_s, 'default_tau_s');
  IF lambda IS NOT NULL AND (lambda = 'NaN' OR lambda < 0 OR lambda > 1) THEN
    RAISE EXCEPTION 'lambda must be between 0 and 1, got %', lambda
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO tforge.task_types AS tt (name, default_tau_s, lambda)
  VALUES (define_task_type.name, define_task_type.default_tau_s, define_task_type.lambda)
  ON CONFLICT ON CONSTRAINT task_types_pkey DO NOTHING
  RETURNING * INTO t;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task type "%" already exists', name
      USING ERRCODE = 'duplicate_object',
            HINT = 'Use tforge.set_tau() to change its runtime.';
  END IF;
  RETURN t;
END
$$;
COMMENT ON FUNCTION tforge.define_task_type(text, float8, float8) IS
  'defines a task type with its default runtime in seconds and an optional EMA lambda in [0,1]';

CREATE FUNCTION tforge.get_tau(task_type text) RETURNS float8
  LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
  t tforge.task_types := tforge._task_type(task_type);
  tau float8;
BEGIN
  SELECT s.tau_s INTO tau FROM tforge.task_tau s WHERE s.task_type = t.name;
  RETURN coalesce(tau, t.default_tau_s);
END
$$;
COMMENT ON FUNCTION tforge.get_tau(text) IS
  'current learned runtime (tau, seconds) of a task type; its default until a runtime has been learned';

CREATE FUNCTION tforge.set_tau(task_type text, tau float8) RETURNS float8
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t tforge.task_types := tforge._task_type(task_type);
BEGIN
  PERFORM tforge._check_seconds(tau, 'tau');
  INSERT INTO tforge.task_tau AS s (task_type, tau_s) VALUES (t.name, tau)
  ON CONFLICT ON CONSTRAINT task_tau_pkey DO UPDATE SET tau_s = excluded.tau_s, updated_at = pg_catalog.now();
  RETURN tau;
END
$$;
COMMENT ON FUNCTION tforge.set_tau(text, float8) IS
  'overrides a task type''s tau (seconds, positive and finite); later completions keep learning from it';

CREATE FUNCTION tforge.update_tau(task_type text, runtime_s float8) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_update_tau'
  LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.update_tau(text, float8) IS
  'absorbs one observed runtime (seconds) into the type''s tau: lambda * runtime + (1 - lambda) * tau; returns the new tau';

CREATE FUNCTION tforge.reset_tau(task_type text DEFAULT NULL) RETURNS integer
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  n integer;
BEGIN
  IF task_type IS NULL THEN
    DELETE FROM tforge.task_tau;
  ELSE
    PERFORM tforge._task_type(task_type);
    DELETE FROM tforge.task_tau s WHERE s.task_type = reset_tau.task_type;
  END IF;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
COMMENT ON FUNCTION tforge.reset_tau(text) IS
  'forgets the learned tau of one task type (or of all when NULL), returning to defaults; returns how many were reset';

-- Resources ------------------------------------------------------------------

CREATE TYPE tforge.resources AS (
  cpu              float8,
  memory_bytes     bigint,
  gpu_count        integer,
  gpu_memory_bytes bigint
);
COMMENT ON TYPE tforge.resources IS
  'resources a task needs or a worker offers; a NULL field means "not needed" in a requirement and "unlimited" in a capacity';

CREATE FUNCTION tforge.resources_fit(requirement tforge.resources, capacity tforge.resources) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (($1).cpu IS NULL OR ($2).cpu IS NULL OR ($1).cpu <= ($2).cpu)
     AND (($1).memory_bytes IS NULL OR ($2).memory_bytes IS NULL OR ($1).memory_bytes <= ($2).memory_bytes)
     AND (($1).gpu_count IS NULL OR ($2).gpu_count IS NULL OR ($1).gpu_count <= ($2).gpu_count)
     AND (($1).gpu_memory_bytes IS NULL OR ($2).gpu_memory_bytes IS NULL OR ($1).gpu_memory_bytes <= ($2).gpu_memory_bytes)
$$;
COMMENT ON FUNCTION tforge.resources_fit(tforge.resources, tforge.resources) IS
  'true when every non-NULL field of the requirement is at most the capacity''s field (NULL capacity = unlimited)';

-- The queue ------------------------------------------------------------------

CREATE TYPE tforge.task_status AS ENUM ('pending', 'running', 'done', 'dead');
COMMENT ON TYPE tforge.task_status IS
  'pending (claimable once available_at has passed), running (leased to a worker), done, dead (attempts exhausted or failed without retry)';

-- A domain rather than a CHECK on tasks: PostgreSQL evaluates a table's
-- CHECK constraints on every UPDATE of a row, and every claim and
-- completion updates a task; a domain is checked only where the column is
-- written.
CREATE DOMAIN tforge.attempt_limit AS integer CHECK (VALUE >= 1);
COMMENT ON DOMAIN tforge.attempt_limit IS 'how many claims a task may use before it is dead: at least 1';

CREATE TABLE tforge.tasks (
  task_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_type             text NOT NULL REFERENCES tforge.task_types (name),
  task_key              text,
  payload               jsonb NOT NULL DEFAULT '{}',
  resources             tforge.resources,
  priority              integer NOT NULL DEFAULT 0,
  status                tforge.task_status NOT NULL DEFAULT 'pending',
  submitted_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
  deadline              timestamptz NOT NULL,
  predicted_runtime_s   float8 NOT NULL,
  laxity_key            timestamptz NOT NULL,
  prediction_strategy   text NOT NULL DEFAULT 'tau',
  prediction_confidence float8,
  prediction_source     text NOT NULL DEFAULT 'type',
  available_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
  attempts              integer NOT NULL DEFAULT 0,
  max_attempts          tforge.attempt_limit NOT NULL,
  worker_id             text,
  claimed_at            timestamptz,
  lease_s               float8,
  lease_expires_at      timestamptz,
  completed_at          timestamptz,
  runtime_s             float8,
  usage                 jsonb,
  deadline_met          boolean,
  last_error            text
);
COMMENT ON TABLE tforge.tasks IS 'the task queue: one row per task, from submit to done or dead';
COMMENT ON COLUMN tforge.tasks.laxity_key IS 'deadline - predicted runtime: orders tasks by least laxity, independent of the clock';
COMMENT ON COLUMN tforge.tasks.predicted_runtime_s IS 'runtime predicted at submit (tau, or the learned estimate), seconds';
COMMENT ON COLUMN tforge.tasks.prediction_strategy IS 'what produced predicted_runtime_s: tau, or an estimation strategy';
COMMENT ON COLUMN tforge.tasks.available_at IS 'not claimable before this time (retry backoff)';
COMMENT ON COLUMN tforge.tasks.attempts IS 'how many times the task has been claimed';
COMMENT ON COLUMN tforge.tasks.runtime_s IS 'observed runtime: usage->runtime_s when the worker reported it, else claim to completion';

-- The claim's scan: least laxity, then priority (higher first), then arrival.
CREATE INDEX tasks_claim_idx ON tforge.tasks (laxity_key, priority DESC, submitted_at, task_id)
  WHERE status = 'pending';
-- Expired leases are found without scanning running tasks. Only running
-- tasks have a lease; the index is partial on the lease rather than on the
-- status so that the planner never prefers it to the primary key for a
-- statement that names one running task.
CREATE INDEX tasks_lease_idx ON tforge.tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('tforge.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.tasks_task_id_seq', '');

CREATE FUNCTION tforge._deadline_offset(sla_multiplier float8, tau float8) RETURNS interval
  AS 'MODULE_PATHNAME', 'tforge_deadline_offset'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._deadline_offset(float8, float8) IS
  'internal: sla_multiplier * tau seconds as an interval, or error 22003 beyond 1e11 seconds';

-- The one definition of a duration tau can learn from: more than 0 and at
-- most 1e9 seconds (about 31 years; anything longer is a broken clock).
-- It is LearnableSeconds in queue.c, which the queue's C code uses too.
CREATE FUNCTION tforge._positive_or_null(value float8) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_positive_or_null'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._positive_or_null(float8) IS 'internal: value if it is a runtime tau can learn from (seconds in (0, 1e9]), else NULL';

CREATE FUNCTION tforge.submit_task(
    task_type      text,
    payload        jsonb DEFAULT '{}',
    resources      tforge.resources DEFAULT NULL,
    priority       integer DEFAULT 0,
    task_key       text DEFAULT NULL,
    sla_multiplier float8 DEFAULT NULL,
    max_attempts   integer DEFAULT NULL)
  RETURNS bigint
  AS 'MODULE_PATHNAME', 'tforge_submit_task'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.submit_task(text, jsonb, tforge.resources, integer, text, float8, integer) IS
  'queues a task; its deadline is now() + sla_multiplier (default tforge.sla_multiplier) * tau of its type; returns task_id';

CREATE FUNCTION tforge.expire_leases() RETURNS integer
  AS 'MODULE_PATHNAME', 'tforge_expire_leases'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.expire_leases() IS
  'makes tasks whose lease expired claimable again (or dead once max_attempts claims were used); returns how many';

CREATE FUNCTION tforge.claim_tasks(
    worker_id text,
    max_tasks integer DEFAULT 1,
    capacity  tforge.resources DEFAULT NULL,
    lease     interval DEFAULT '5 min')
  RETURNS SETOF tforge.tasks
  AS 'MODULE_PATHNAME', 'tforge_claim_tasks'
  LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
  SET search_path = pg_catalog, pg_temp
  -- The claim must walk tasks_claim_idx in order whatever the statistics say:
  -- a queue filled since the last ANALYZE looks tiny to the planner, which
  -- would then sort every pending task to find the first.
  SET enable_sort = off;
COMMENT ON FUNCTION tforge.claim_tasks(text, integer, tforge.resources, interval) IS
  'leases up to max_tasks pending tasks that fit capacity, least laxity first, then priority, then arrival; concurrent claimers never get the same task';

-- The running task held by worker, locked; 55000 otherwise.
CREATE FUNCTION tforge._held_task(task_id bigint, worker_id text) RETURNS tforge.tasks
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  k tforge.tasks;
BEGIN
  SELECT * INTO k FROM tforge.tasks t WHERE t.task_id = _held_task.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % does not exist', task_id USING ERRCODE = 'undefined_object';
  END IF;
  IF k.status <> 'running' OR k.worker_id IS DISTINCT FROM _held_task.worker_id THEN
    RAISE EXCEPTION 'task % is not held by worker "%"', task_id, worker_id
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = CASE WHEN k.status = 'running'
                          THEN pg_catalog.format('The task is running for worker "%s".', k.worker_id)
                          ELSE pg_catalog.format('The task is %s.', k.status) END,
            HINT = 'A worker may only heartbeat, complete or fail a task it has claimed and whose lease has not been given to another worker.';
  END IF;
  RETURN k;
END
$$;
COMMENT ON FUNCTION tforge._held_task(bigint, text) IS 'internal: locks and returns the running task held by worker_id, or raises 42704/55000';

CREATE FUNCTION tforge.heartbeat(task_id bigint, worker_id text) RETURNS timestamptz
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  k tforge.tasks := tforge._held_task(task_id, worker_id);
  expires timestamptz := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => k.lease_s);
BEGIN
  UPDATE tforge.tasks t SET lease_expires_at = expires WHERE t.task_id = k.task_id;
  RETURN expires;
END
$$;
COMMENT ON FUNCTION tforge.heartbeat(bigint, text) IS
  'extends the lease of a running task held by worker_id by the lease it was claimed with; returns the new expiry';

CREATE FUNCTION tforge.complete_task(task_id bigint, worker_id text, usage jsonb DEFAULT NULL)
  RETURNS tforge.tasks
  AS 'MODULE_PATHNAME', 'tforge_complete_task'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.complete_task(bigint, text, jsonb) IS
  'marks a task held by worker_id done, records its runtime (usage->runtime_s, else claim to now) and, in the same transaction, updates tau';

CREATE FUNCTION tforge.fail_task(task_id bigint, worker_id text, error text, retry boolean DEFAULT true)
  RETURNS tforge.task_status
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  k       tforge.tasks := tforge._held_task(task_id, worker_id);
  at      timestamptz := pg_catalog.clock_timestamp();
  base    float8 := tforge._setting('tforge.retry_backoff_base')::float8;
  cap     float8 := tforge._setting('tforge.retry_backoff_max')::float8;
  backoff float8;
  result  tforge.task_status;
BEGIN
  IF coalesce(retry, true) AND k.attempts < k.max_attempts THEN
    -- backoff = base * 2^(attempts - 1), at most cap (seconds)
    backoff := least(cap, base * pg_catalog.power(2::float8, least(k.attempts - 1, 1000)));
    result := 'pending';
  ELSE
    result := 'dead';
  END IF;
  UPDATE tforge.tasks t
     SET status = result, last_error = error, worker_id = NULL, lease_expires_at = NULL,
         available_at = CASE WHEN result = 'pending' THEN at + pg_catalog.make_interval(secs => backoff) ELSE t.available_at END,
         completed_at = CASE WHEN result = 'dead' THEN at END
   WHERE t.task_id = k.task_id;
  RETURN result;
END
$$;
COMMENT ON FUNCTION tforge.fail_task(bigint, text, text, boolean) IS
  'records a failure of a task held by worker_id: retried after exponential backoff while attempts remain, else dead; returns the new status';

-- tforge.purge_tasks() is in 30_learning.sql: it archives prediction scores.

CREATE VIEW tforge.queue_status AS
SELECT tt.name AS task_type,
       count(k.task_id) FILTER (WHERE k.status = 'pending') AS pending,
       count(k.task_id) FILTER (WHERE k.status = 'running') AS running,
       count(k.task_id) FILTER (WHERE k.status = 'done') AS done,
       count(k.task_id) FILTER (WHERE k.status = 'dead') AS dead,
       count(k.task_id) FILTER (WHERE k.status = 'done' AND NOT k.deadline_met) AS deadline_misses,
       coalesce(s.tau_s, tt.default_tau_s) AS tau_s,
       coalesce(s.samples, 0) AS tau_samples
  FROM tforge.task_types tt
  LEFT JOIN tforge.task_tau s ON s.task_type = tt.name
  LEFT JOIN tforge.tasks k ON k.task_type = tt.name
 GROUP BY tt.name, s.tau_s, tt.default_tau_s, s.samples;
COMMENT ON VIEW tforge.queue_status IS
  'per task type: tasks pending, running, done, dead, deadlines missed by done tasks, and the current tau (seconds)';

GRANT EXECUTE ON FUNCTION tforge.submit_task(text, jsonb, tforge.resources, integer, text, float8, integer),
                          tforge.claim_tasks(text, integer, tforge.resources, interval),
                          tforge.heartbeat(bigint, text),
                          tforge.complete_task(bigint, text, jsonb),
                          tforge.fail_task(bigint, text, text, boolean),
                          tforge.expire_leases()
   TO tforge_worker;

-- ---- sql/install/30_learning.sql ----
-- Runtime learning: profiles, estimation strategies, prediction scoring
-- (DESIGN.md component 1, "Profiles" and "Estimation"; seed 001).
--
-- tforge.complete_task records every completion in two profiles, the task
-- type's and the task key's (rows of tforge.profiles), in the completing
-- transaction. tforge.estimate predicts from the key's profile, else the
-- type's, else the type's tau. tforge.submit_task stores at submit what
-- every strategy predicted, and the done task's row, which also holds the
-- runtime observed, is that prediction's score (views
-- tforge.prediction_scores, tforge.prediction_outcomes and
-- tforge.prediction_accuracy). The C side of all this is in queue.c,
-- profile.c and estimate.c.

-- The rolling_stats type ------------------------------------------------------

CREATE TYPE tforge.rolling_stats;

CREATE FUNCTION tforge.rolling_stats_in(cstring) RETURNS tforge.rolling_stats
  AS 'MODULE_PATHNAME', 'rolling_stats_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_in(cstring) IS
  'text input of rolling_stats: (count,mean,m2,min,max,capacity,{recent samples, oldest first})';
CREATE FUNCTION tforge.rolling_stats_out(tforge.rolling_stats) RETURNS cstring
  AS 'MODULE_PATHNAME', 'rolling_stats_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_out(tforge.rolling_stats) IS
  'text output of rolling_stats; every number in its shortest exact form, so text round-trips bit for bit';
CREATE FUNCTION tforge.rolling_stats_recv(internal) RETURNS tforge.rolling_stats
  AS 'MODULE_PATHNAME', 'rolling_stats_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_recv(internal) IS 'binary input of rolling_stats (format version byte first)';
CREATE FUNCTION tforge.rolling_stats_send(tforge.rolling_stats) RETURNS bytea
  AS 'MODULE_PATHNAME', 'rolling_stats_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_send(tforge.rolling_stats) IS 'binary output of rolling_stats (format version byte first)';

CREATE TYPE tforge.rolling_stats (
  INPUT = tforge.rolling_stats_in,
  OUTPUT = tforge.rolling_stats_out,
  RECEIVE = tforge.rolling_stats_recv,
  SEND = tforge.rolling_stats_send,
  INTERNALLENGTH = VARIABLE,
  ALIGNMENT = double,
  STORAGE = main
);
COMMENT ON TYPE tforge.rolling_stats IS
  'rolling statistics of a series: count, mean and variance (Welford), min, max, and a bounded ring of the most recent samples for quantiles';

CREATE FUNCTION tforge.rolling_stats_add(stats tforge.rolling_stats, sample float8) RETURNS tforge.rolling_stats
  AS 'MODULE_PATHNAME', 'rolling_stats_add' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_add(tforge.rolling_stats, float8) IS
  'stats with one more sample (finite, else 22023); NULL stats starts a new series with tforge.profile_window recent samples; a NULL sample changes nothing';

CREATE FUNCTION tforge.rolling_stats_merge(a tforge.rolling_stats, b tforge.rolling_stats) RETURNS tforge.rolling_stats
  AS 'MODULE_PATHNAME', 'rolling_stats_merge' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_merge(tforge.rolling_stats, tforge.rolling_stats) IS
  'statistics of both series together (exact moments by Chan et al.); the recent ring holds a''s samples then b''s';

CREATE AGGREGATE tforge.rolling_stats_agg(float8) (
  SFUNC = tforge.rolling_stats_add,
  STYPE = tforge.rolling_stats,
  COMBINEFUNC = tforge.rolling_stats_merge,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.rolling_stats_agg(float8) IS
  'rolling_stats of the non-NULL inputs, in input order (use ORDER BY for a meaningful recent ring)';

CREATE FUNCTION tforge.rolling_stats_count(tforge.rolling_stats) RETURNS bigint
  AS 'MODULE_PATHNAME', 'rolling_stats_count' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_count(tforge.rolling_stats) IS 'number of samples ever added';
CREATE FUNCTION tforge.rolling_stats_mean(tforge.rolling_stats) RETURNS float8
  AS 'MODULE_PATHNAME', 'rolling_stats_mean' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_mean(tforge.rolling_stats) IS 'mean of every sample ever added';
CREATE FUNCTION tforge.rolling_stats_variance(tforge.rolling_stats) RETURNS float8
  AS 'MODULE_PATHNAME', 'rolling_stats_variance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_variance(tforge.rolling_stats) IS 'sample variance (as var_samp) of every sample; NULL below two samples';
CREATE FUNCTION tforge.rolling_stats_stddev(tforge.rolling_stats) RETURNS float8
  AS 'MODULE_PATHNAME', 'rolling_stats_stddev' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_stddev(tforge.rolling_stats) IS 'sample standard deviation (as stddev_samp); NULL below two samples';
CREATE FUNCTION tforge.rolling_stats_min(tforge.rolling_stats) RETURNS float8
  AS 'MODULE_PATHNAME', 'rolling_stats_min' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_min(tforge.rolling_stats) IS 'smallest sample ever added';
CREATE FUNCTION tforge.rolling_stats_max(tforge.rolling_stats) RETURNS float8
  AS 'MODULE_PATHNAME', 'rolling_stats_max' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_max(tforge.rolling_stats) IS 'largest sample ever added';
CREATE FUNCTION tforge.rolling_stats_window(tforge.rolling_stats) RETURNS integer
  AS 'MODULE_PATHNAME', 'rolling_stats_window' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_window(tforge.rolling_stats) IS 'how many recent samples the ring keeps';
CREATE FUNCTION tforge.rolling_stats_quantile(tforge.rolling_stats, float8) RETURNS float8
  AS 'MODULE_PATHNAME', 'rolling_stats_quantile' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_quantile(tforge.rolling_stats, float8) IS
  'quantile in [0,1] of the recent samples, interpolated as percentile_cont';
CREATE FUNCTION tforge.rolling_stats_recent(tforge.rolling_stats) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'rolling_stats_recent' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rolling_stats_recent(tforge.rolling_stats) IS 'the recent samples, oldest first';

-- Estimation strategies (estimate.c) -----------------------------------------

CREATE FUNCTION tforge.estimation_strategies() RETURNS text[]
  AS 'MODULE_PATHNAME', 'estimation_strategies' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.estimation_strategies() IS
  'the estimation strategies, in the order of a scoreboard and of tforge.estimate_all()';

CREATE FUNCTION tforge.estimate_from(stats tforge.rolling_stats, strategy text DEFAULT NULL,
                                     scores float8[] DEFAULT NULL, bound float8 DEFAULT NULL,
                                     OUT value float8, OUT confidence float8, OUT chosen text)
  AS 'MODULE_PATHNAME', 'estimate_from' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.estimate_from(tforge.rolling_stats, text, float8[], float8) IS
  'one strategy''s prediction from a rolling_stats profile and its scoreboard, capped by bound; confidence = recent accuracy * k/(k+2); chosen names the candidate adaptive picked';

CREATE FUNCTION tforge.estimate_all(stats tforge.rolling_stats, scores float8[] DEFAULT NULL,
                                    bound float8 DEFAULT NULL,
                                    OUT predictions float8[], OUT confidences float8[])
  AS 'MODULE_PATHNAME', 'estimate_all' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.estimate_all(tforge.rolling_stats, float8[], float8) IS
  'every strategy''s prediction and confidence at once, in the order of tforge.estimation_strategies()';

CREATE FUNCTION tforge.rescore(stats tforge.rolling_stats, scores float8[], actual float8,
                               bound float8 DEFAULT NULL) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'estimate_rescore' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rescore(tforge.rolling_stats, float8[], float8, float8) IS
  'the scoreboard after scoring every candidate''s prediction from stats against the actual runtime (recent accuracy, newest weight 0.3)';

-- Profiles ---------------------------------------------------------------------

CREATE TABLE tforge.profiles (
  task_type   text NOT NULL REFERENCES tforge.task_types (name) ON DELETE CASCADE,
  task_key    text,
  runtime     tforge.rolling_stats,
  cpu         tforge.rolling_stats,
  memory      tforge.rolling_stats,
  gpu_memory  tforge.rolling_stats,
  scores      float8[],
  completions bigint NOT NULL DEFAULT 0 CHECK (completions >= 0),
  created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
  updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
  CONSTRAINT profiles_type_key UNIQUE NULLS NOT DISTINCT (task_type, task_key)
) WITH (fillfactor = 50);  -- rewritten by every completion: room on the page keeps the updates HOT
COMMENT ON TABLE tforge.profiles IS
  'learned profile per task type (task_key NULL) and per task key: rolling statistics of runtime (s), cpu (s), peak memory and GPU memory (bytes), and the strategies'' recent accuracy';
COMMENT ON COLUMN tforge.profiles.scores IS
  'scoreboard: {completions scored, recent accuracy of each candidate strategy in tforge.estimation_strategies() order}';
COMMENT ON COLUMN tforge.profiles.completions IS
  'completions seen, including those sampling skipped (tforge.profile_sample_after/_every)';
-- No index on updated_at: every completion rewrites its profiles, and an
-- unindexed updated_at keeps that a HOT update; tforge.expire_profiles()
-- scans the table, one row per task type and key, once in a while.
SELECT pg_catalog.pg_extension_config_dump('tforge.profiles', '');

-- Record one completion in the type's and the key's profile (queue.c,
-- shared with complete_task). Runtimes outside (0, 1e18] s and usage values
-- outside [0, 1e18] are not recorded: 1e18 exceeds any real runtime in
-- seconds or memory in bytes, and keeps squared deviations far from
-- overflowing a profile's variance.
CREATE FUNCTION tforge._profile_record(task_type text, task_key text, runtime_s float8,
                                       cpu_s float8, memory_bytes float8, gpu_memory_bytes float8,
                                       bound float8) RETURNS void
  AS 'MODULE_PATHNAME', 'tforge_profile_record'
  LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge._profile_record(text, text, float8, float8, float8, float8, float8) IS
  'internal: adds one completion (runtime and cpu seconds, peak memory and GPU memory bytes) to the type''s and the key''s profile, scoring the strategies first';

CREATE VIEW tforge.profile_summary AS
SELECT p.task_type, p.task_key,
       tforge.rolling_stats_count(p.runtime) AS runs, p.completions,
       tforge.rolling_stats_mean(p.runtime) AS mean_s, tforge.rolling_stats_stddev(p.runtime) AS stddev_s,
       tforge.rolling_stats_min(p.runtime) AS min_s, tforge.rolling_stats_quantile(p.runtime, 0.5) AS recent_p50_s,
       tforge.rolling_stats_quantile(p.runtime, 0.95) AS recent_p95_s, tforge.rolling_stats_max(p.runtime) AS max_s,
       e.chosen AS adaptive_choice, e.value AS adaptive_estimate_s, e.confidence, p.updated_at
  FROM tforge.profiles p
  CROSS JOIN LATERAL tforge.estimate_from(p.runtime, 'adaptive', p.scores) e;
COMMENT ON VIEW tforge.profile_summary IS
  'one line per profile: runs, runtime mean/stddev/min/max (s), median and 95th percentile of recent runs, the strategy adaptive picks now, its estimate and confidence';

CREATE FUNCTION tforge.expire_profiles(older_than interval DEFAULT NULL) RETURNS bigint
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ttl_s integer := tforge._setting('tforge.profile_ttl')::integer;
  n bigint;
BEGIN
  IF older_than < interval '0' THEN
    RAISE EXCEPTION 'older_than must not be negative, got %', older_than
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF older_than IS NULL THEN
    IF ttl_s = 0 THEN
      RETURN 0;
    END IF;
    older_than := pg_catalog.make_interval(secs => ttl_s);
  END IF;
  DELETE FROM tforge.profiles p WHERE p.updated_at < pg_catalog.now() - older_than;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
COMMENT ON FUNCTION tforge.expire_profiles(interval) IS
  'deletes profiles not updated for older_than (default tforge.profile_ttl; 0 = never); returns how many';

-- Estimation -------------------------------------------------------------------

-- The fallback chain key -> type in one index probe: the key's profile when
-- it has runtimes, else the type's (task_key NULL), else NULL.
-- (PL/pgSQL rather than SQL: a SQL function that is not inlined is planned
-- again at every call, PL/pgSQL keeps the plan.)
CREATE FUNCTION tforge._profile_for(task_type text, task_key text) RETURNS tforge.profiles
  LANGUAGE plpgsql STABLE AS $$
DECLARE
  p tforge.profiles;
BEGIN
  SELECT q.* INTO p FROM tforge.profiles q
   WHERE q.task_type = _profile_for.task_type
     AND (q.task_key IS NULL OR q.task_key = _profile_for.task_key) AND q.runtime IS NOT NULL
   ORDER BY q.task_key IS NULL
   LIMIT 1;
  RETURN p;
END
$$;
COMMENT ON FUNCTION tforge._profile_for(text, text) IS
  'internal: the profile an estimate uses: the key''s, else the type''s, else NULL';

-- The resources a profile predicts (ProfileResources in queue.c, which
-- submit_task uses too).
CREATE FUNCTION tforge._profile_resources(runtime tforge.rolling_stats, cpu tforge.rolling_stats,
                                          memory tforge.rolling_stats, gpu_memory tforge.rolling_stats)
  RETURNS tforge.resources
  AS 'MODULE_PATHNAME', 'tforge_profile_resources'
  LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._profile_resources(tforge.rolling_stats, tforge.rolling_stats, tforge.rolling_stats, tforge.rolling_stats) IS
  'internal: resources a profile predicts: cpu cores (mean cpu s / mean runtime s), 95th percentile of recent memory and GPU memory peaks (bytes)';

CREATE TYPE tforge.runtime_estimate AS (
  runtime_s        float8,
  cpu              float8,
  memory_bytes     bigint,
  gpu_memory_bytes bigint,
  confidence       float8,
  strategy         text,
  source           text,
  chosen           text
);
COMMENT ON TYPE tforge.runtime_estimate IS
  'an estimate: runtime (s), cpu (cores), memory and GPU memory (bytes), confidence in [0,1], the strategy asked for, the profile used (key, type or default) and the candidate chosen';

CREATE FUNCTION tforge.estimate(task_type text, task_key text DEFAULT NULL, strategy text DEFAULT NULL,
                                bound float8 DEFAULT NULL)
  RETURNS tforge.runtime_estimate
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r tforge.runtime_estimate;
  p tforge.profiles;
  e record;
  res tforge.resources;
BEGIN
  IF estimate.task_type IS NULL THEN
    RAISE EXCEPTION 'task_type must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  r.strategy := coalesce(estimate.strategy, tforge._setting('tforge.learning_strategy'));
  p := tforge._profile_for(estimate.task_type, estimate.task_key);
  IF p IS NULL THEN
    -- no profile: the type's tau, with no confidence (both calls validate their argument)
    PERFORM tforge.estimate_from(NULL, r.strategy);
    r.runtime_s := tforge.get_tau(estimate.task_type);
    IF bound > 0 THEN
      r.runtime_s := least(r.runtime_s, bound);
    END IF;
    r.confidence := 0;
    r.source := 'default';
    r.chosen := 'tau';
    RETURN r;
  END IF;
  SELECT * INTO e FROM tforge.estimate_from(p.runtime, r.strategy, p.scores, bound);
  r.runtime_s := e.value;
  r.confidence := e.confidence;
  r.chosen := e.chosen;
  r.source := CASE WHEN p.task_key IS NULL THEN 'type' ELSE 'key' END;
  res := tforge._profile_resources(p.runtime, p.cpu, p.memory, p.gpu_memory);
  r.cpu := res.cpu;
  r.memory_bytes := res.memory_bytes;
  r.gpu_memory_bytes := res.gpu_memory_bytes;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.estimate(text, text, text, float8) IS
  'predicted runtime (s, capped by bound), cpu (cores), memory and GPU memory (bytes) of a task, with confidence in [0,1]; from the key''s profile, else the type''s (source key/type), else tau (source default)';

-- What every strategy predicted at submit lives in the task's own row:
-- complete_task rewrites that row anyway, so scoring costs no extra write.
ALTER TABLE tforge.tasks
  ADD COLUMN predictions float8[],
  ADD COLUMN prediction_confidences float8[],
  ADD COLUMN predictions_source text;
COMMENT ON COLUMN tforge.tasks.predictions IS
  'every estimation strategy''s runtime prediction at submit (s), in the order of tforge.estimation_strategies(); NULL when learning was off';
COMMENT ON COLUMN tforge.tasks.prediction_confidences IS
  'the confidence of each of those predictions';
COMMENT ON COLUMN tforge.tasks.predictions_source IS
  'which profile the predictions came from: key, type, or default (tau, nothing learned yet)';

-- Scores. What every strategy predicted at submit lives in the task's row,
-- and a completed task's row holds the runtime observed, so a completion
-- scores its predictions without writing anything more: the view
-- tforge.prediction_scores reads them off the done tasks. tforge.purge_tasks()
-- moves the scores of the tasks it deletes into tforge.prediction_archive.
CREATE TABLE tforge.prediction_archive (
  task_id      bigint NOT NULL,
  task_type    text NOT NULL,
  task_key     text,
  source       text NOT NULL,
  used         text,
  predictions  float8[] NOT NULL,
  confidences  float8[] NOT NULL,
  actual_s     float8 NOT NULL,
  completed_at timestamptz NOT NULL
);
COMMENT ON TABLE tforge.prediction_archive IS
  'scores of completed tasks that tforge.purge_tasks() deleted (columns as tforge.prediction_scores)';
SELECT pg_catalog.pg_extension_config_dump('tforge.prediction_archive', '');

CREATE VIEW tforge.prediction_scores AS
SELECT k.task_id, k.task_type, k.task_key, k.predictions_source AS source, k.prediction_strategy AS used,
       k.predictions, k.prediction_confidences AS confidences, k.runtime_s AS actual_s, k.completed_at
  FROM tforge.tasks k
 WHERE k.status = 'done' AND k.predictions IS NOT NULL AND k.runtime_s > 0
UNION ALL
SELECT a.task_id, a.task_type, a.task_key, a.source, a.used, a.predictions, a.confidences, a.actual_s,
       a.completed_at
  FROM tforge.prediction_archive a;
COMMENT ON VIEW tforge.prediction_scores IS
  'per completed task with a learned runtime: what every strategy predicted at submit (order of tforge.estimation_strategies()), what submit used, and the runtime observed; done tasks and the archive of purged ones';

CREATE FUNCTION tforge.purge_tasks(older_than interval DEFAULT '7 days') RETURNS bigint
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  WITH gone AS (
    DELETE FROM tforge.tasks k
     WHERE k.status IN ('done', 'dead') AND k.completed_at < pg_catalog.now() - older_than
    RETURNING k.*
  ), archived AS (
    INSERT INTO tforge.prediction_archive (task_id, task_type, task_key, source, used, predictions,
                                           confidences, actual_s, completed_at)
    SELECT g.task_id, g.task_type, g.task_key, g.predictions_source, g.prediction_strategy, g.predictions,
           g.prediction_confidences, g.runtime_s, g.completed_at
      FROM gone g
     WHERE g.status = 'done' AND g.predictions IS NOT NULL AND g.runtime_s > 0
  )
  SELECT count(*) INTO n FROM gone;
  RETURN n;
END
$$;
COMMENT ON FUNCTION tforge.purge_tasks(interval) IS
  'deletes done and dead tasks completed longer than older_than ago, keeping their prediction scores in tforge.prediction_archive; returns how many';

CREATE VIEW tforge.prediction_outcomes AS
SELECT s.task_id, s.task_type, s.task_key, u.strategy, s.source, u.strategy = s.used AS used,
       u.predicted_s, s.actual_s, u.confidence, s.completed_at
  FROM tforge.prediction_scores s,
       ROWS FROM (pg_catalog.unnest(tforge.estimation_strategies()), pg_catalog.unnest(s.predictions),
                  pg_catalog.unnest(s.confidences)) AS u(strategy, predicted_s, confidence);
COMMENT ON VIEW tforge.prediction_outcomes IS
  'one row per completed task and strategy: the runtime predicted at submit, the runtime observed, and whether submit used it';

CREATE VIEW tforge.prediction_accuracy AS
SELECT o.task_type, o.strategy,
       count(*) AS predictions,
       count(*) FILTER (WHERE o.used) AS used,
       avg(abs(o.predicted_s - o.actual_s)) AS mae_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(o.predicted_s - o.actual_s) / o.actual_s) AS median_ape,
       avg(CASE WHEN greatest(o.predicted_s, o.actual_s) > 0
                THEN greatest(least(o.predicted_s, o.actual_s), 0) / greatest(o.predicted_s, o.actual_s)
                ELSE 1 END) AS accuracy,
       avg((o.predicted_s < o.actual_s)::int::float8) AS under_rate,
       avg(o.confidence) AS mean_confidence
  FROM tforge.prediction_outcomes o
 GROUP BY o.task_type, o.strategy;
COMMENT ON VIEW tforge.prediction_accuracy IS
  'per task type and strategy: predictions scored, MAE (s), median absolute percentage error (fraction), accuracy = mean of min(p,a)/max(p,a), share underpredicted, mean confidence';

-- Export and import -------------------------------------------------------------

-- A timestamp in a form every DateStyle and TimeZone reads back exactly.
CREATE FUNCTION tforge._iso_utc(ts timestamptz) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
COMMENT ON FUNCTION tforge._iso_utc(timestamptz) IS 'internal: ISO 8601 UTC text of a timestamp, microseconds included';

CREATE FUNCTION tforge._csv_records(document text) RETURNS SETOF text[]
  AS 'MODULE_PATHNAME', 'tforge_csv_records' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._csv_records(text) IS
  'internal: the records of an RFC 4180 CSV document as text arrays (unquoted empty field = NULL)';

CREATE FUNCTION tforge._csv_field(value text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN $1 IS NULL THEN '' ELSE '"' || pg_catalog.replace($1, '"', '""') || '"' END
$$;
COMMENT ON FUNCTION tforge._csv_field(text) IS 'internal: a CSV field, quoted; NULL as an empty unquoted field';

CREATE FUNCTION tforge.export_profiles(format text DEFAULT 'json') RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF format = 'json' THEN
    RETURN pg_catalog.jsonb_build_object(
      'format', 'tforge-profiles', 'version', 1,
      'profiles', coalesce((
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                 'task_type', p.task_type, 'task_key', p.task_key,
                 'runtime', p.runtime::text, 'cpu', p.cpu::text, 'memory', p.memory::text,
                 'gpu_memory', p.gpu_memory::text, 'scores', p.scores::text,
                 'completions', p.completions,
                 'created_at', tforge._iso_utc(p.created_at), 'updated_at', tforge._iso_utc(p.updated_at))
                 ORDER BY p.task_type, p.task_key NULLS FIRST)
          FROM tforge.profiles p), '[]'::jsonb))::text;
  ELSIF format = 'csv' THEN
    RETURN 'version,task_type,task_key,runtime,cpu,memory,gpu_memory,scores,completions,created_at,updated_at' || E'\n' ||
      coalesce((
        SELECT pg_catalog.string_agg(pg_catalog.concat_ws(',', '1',
                 tforge._csv_field(p.task_type), tforge._csv_field(p.task_key),
                 tforge._csv_field(p.runtime::text), tforge._csv_field(p.cpu::text),
                 tforge._csv_field(p.memory::text), tforge._csv_field(p.gpu_memory::text),
                 tforge._csv_field(p.scores::text), p.completions::text,
                 tforge._iso_utc(p.created_at), tforge._iso_utc(p.updated_at)) || E'\n', ''
                 ORDER BY p.task_type, p.task_key NULLS FIRST)
          FROM tforge.profiles p), '');
  END IF;
  RAISE EXCEPTION 'unknown profile export format "%"', format
    USING ERRCODE = 'invalid_parameter_value', HINT = 'Use json or csv.';
END
$$;
COMMENT ON FUNCTION tforge.export_profiles(text) IS
  'every profile as a versioned document (format json or csv, version 1) that tforge.import_profiles reads back exactly';

CREATE FUNCTION tforge._import_version(version text) RETURNS void
  LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF version IS NULL OR version !~ '^[0-9]{1,9}$' THEN
    RAISE EXCEPTION 'invalid profile document: version % is not a positive integer', coalesce(version, 'NULL')
      USING ERRCODE = 'invalid_text_representation';
  END IF;
  IF version::integer > 1 THEN
    RAISE EXCEPTION 'profile document version % is newer than the supported version 1', version
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Upgrade tforge on this server to the version that exported the document.';
  END IF;
  IF version::integer < 1 THEN
    RAISE EXCEPTION 'invalid profile document: version % is not a positive integer', version
      USING ERRCODE = 'invalid_text_representation';
  END IF;
END
$$;
COMMENT ON FUNCTION tforge._import_version(text) IS 'internal: accepts a profile document version this tforge reads (1), else 22P02 (malformed) or 22023 (newer)';

CREATE FUNCTION tforge.import_profiles(data text, format text DEFAULT 'json') RETURNS bigint
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  doc jsonb;
  n bigint;
  missing text;
BEGIN
  IF data IS NULL THEN
    RAISE EXCEPTION 'profile document must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF pg_catalog.to_regclass('pg_temp.tforge_import') IS NULL THEN
    CREATE TEMP TABLE tforge_import (
    task_type text, task_key text, runtime text, cpu text, memory text, gpu_memory text,
      scores text, completions text, created_at text, updated_at text) ON COMMIT DROP;
  END IF;
  TRUNCATE pg_temp.tforge_import;

  IF format = 'json' THEN
    BEGIN
      doc := data::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
      RAISE EXCEPTION 'invalid profile document: not JSON' USING ERRCODE = 'invalid_text_representation',
            DETAIL = SQLERRM;
    END;
    IF pg_catalog.jsonb_typeof(doc) <> 'object' OR doc ->> 'format' IS DISTINCT FROM 'tforge-profiles'
       OR pg_catalog.jsonb_typeof(doc -> 'profiles') IS DISTINCT FROM 'array' THEN
      RAISE EXCEPTION 'invalid profile document: expected an object with "format": "tforge-profiles", "version" and a "profiles" array'
        USING ERRCODE = 'invalid_text_representation';
    END IF;
    PERFORM tforge._import_version(doc ->> 'version');
    IF EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(doc -> 'profiles') e
                WHERE pg_catalog.jsonb_typeof(e) <> 'object') THEN
      RAISE EXCEPTION 'invalid profile document: every profile must be an object'
        USING ERRCODE = 'invalid_text_representation';
    END IF;
    INSERT INTO pg_temp.tforge_import
    SELECT e ->> 'task_type', e ->> 'task_key', e ->> 'runtime', e ->> 'cpu', e ->> 'memory',
           e ->> 'gpu_memory', e ->> 'scores', e ->> 'completions', e ->> 'created_at', e ->> 'updated_at'
      FROM pg_catalog.jsonb_array_elements(doc -> 'profiles') e;
  ELSIF format = 'csv' THEN
    IF (SELECT r FROM tforge._csv_records(data) r LIMIT 1) IS DISTINCT FROM
       '{version,task_type,task_key,runtime,cpu,memory,gpu_memory,scores,completions,created_at,updated_at}'::text[] THEN
      RAISE EXCEPTION 'invalid profile document: missing the CSV header line'
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'The first line is version,task_type,task_key,runtime,cpu,memory,gpu_memory,scores,completions,created_at,updated_at.';
    END IF;
    INSERT INTO pg_temp.tforge_import
    SELECT r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11]
      FROM (SELECT r, row_number() OVER () AS line FROM tforge._csv_records(data) r) x
     WHERE x.line > 1
       AND tforge._import_csv_row(x.r, x.line);
  ELSE
    RAISE EXCEPTION 'unknown profile import format "%"', format
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use json or csv.';
  END IF;

  -- Validate every row before anything changes.
  SELECT pg_catalog.format('task_type %s, task_key %s', i.task_type, coalesce(i.task_key, 'NULL')) INTO missing
    FROM pg_temp.tforge_import i
   WHERE i.task_type IS NULL OR i.completions IS NULL OR i.completions !~ '^[0-9]{1,18}$'
      OR i.created_at IS NULL OR i.updated_at IS NULL
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invalid profile document: profile (%) lacks task_type, completions or timestamps', missing
      USING ERRCODE = 'invalid_text_representation';
  END IF;
  SELECT i.task_type INTO missing FROM pg_temp.tforge_import i
   WHERE NOT EXISTS (SELECT 1 FROM tforge.task_types t WHERE t.name = i.task_type) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'task type "%" does not exist', missing
      USING ERRCODE = 'undefined_object',
            HINT = 'Define it with tforge.define_task_type(name, default_tau_s) before importing its profiles.';
  END IF;
  SELECT pg_catalog.format('task_type %s, task_key %s', i.task_type, coalesce(i.task_key, 'NULL')) INTO missing
    FROM pg_temp.tforge_import i GROUP BY i.task_type, i.task_key HAVING count(*) > 1 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invalid profile document: profile (%) appears twice', missing
      USING ERRCODE = 'invalid_text_representation';
  END IF;

  -- The casts check every statistic, scoreboard and timestamp; any error aborts the whole import.
  INSERT INTO tforge.profiles AS p (task_type, task_key, runtime, cpu, memory, gpu_memory, scores,
                                    completions, created_at, updated_at)
  SELECT i.task_type, i.task_key, i.runtime::tforge.rolling_stats, i.cpu::tforge.rolling_stats,
         i.memory::tforge.rolling_stats, i.gpu_memory::tforge.rolling_stats,
         CASE WHEN i.scores IS NOT NULL THEN tforge.rescore(NULL, i.scores::float8[], NULL) END,
         i.completions::bigint,
         i.created_at::timestamptz, i.updated_at::timestamptz
    FROM pg_temp.tforge_import i
  ON CONFLICT ON CONSTRAINT profiles_type_key DO UPDATE SET
    runtime = excluded.runtime, cpu = excluded.cpu, memory = excluded.memory,
    gpu_memory = excluded.gpu_memory, scores = excluded.scores, completions = excluded.completions,
    created_at = excluded.created_at, updated_at = excluded.updated_at;
  GET DIAGNOSTICS n = ROW_COUNT;
  TRUNCATE pg_temp.tforge_import;
  RETURN n;
END
$$;
COMMENT ON FUNCTION tforge.import_profiles(text, text) IS
  'loads a document of tforge.export_profiles (json or csv), replacing profiles with the same type and key; a malformed or newer-version document changes nothing; returns how many';

CREATE FUNCTION tforge._import_csv_row(r text[], line bigint) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF pg_catalog.cardinality(r) <> 11 THEN
    RAISE EXCEPTION 'invalid profile document: CSV record % has % fields, expected 11', line, pg_catalog.cardinality(r)
      USING ERRCODE = 'invalid_text_representation';
  END IF;
  PERFORM tforge._import_version(r[1]);
  RETURN true;
END
$$;
COMMENT ON FUNCTION tforge._import_csv_row(text[], bigint) IS 'internal: checks the field count and version of one CSV profile record';

-- submit_task and complete_task are SECURITY DEFINER, so workers need no
-- privilege on the functions above; estimate and the views are read-only.

-- ---- sql/install/40_registry.sql ----
-- Model registry (DESIGN.md component 2, seed 002 task 1).
--
-- Models and their versions (keyed by tforge.semver), a deployment
-- lifecycle enforced by a trigger on every UPDATE, an append-only state
-- history, and validation results whose p50/p99 are computed here.
--
-- Locking protocol: every change of a version's state goes through a row
-- lock on the version (UPDATE, or SELECT ... FOR UPDATE in
-- transition_model), so two sessions moving the same version serialize and
-- the second one sees the first one's result. transition_model also takes
-- FOR NO KEY UPDATE on the model's row first, so promotions of different
-- versions of one model (which may retire each other's predecessor) run one
-- after the other; FOR NO KEY UPDATE does not conflict with the FOR KEY
-- SHARE that foreign keys take, so registering new versions is not blocked.

CREATE TYPE tforge.deployment_state AS ENUM
  ('registered', 'validating', 'staging', 'canary', 'production', 'deprecated', 'archived');
COMMENT ON TYPE tforge.deployment_state IS
  'deployment lifecycle of a model version: registered -> validating -> staging -> canary -> production -> deprecated -> archived, with failure and rollback edges (see tforge.deployment_transitions)';

CREATE FUNCTION tforge.can_transition(from_state tforge.deployment_state, to_state tforge.deployment_state)
  RETURNS boolean
  AS 'MODULE_PATHNAME', 'registry_can_transition'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.can_transition(tforge.deployment_state, tforge.deployment_state) IS
  'true when the lifecycle allows a version to move from from_state to to_state: registered->validating, validating->staging|registered, staging->canary|registered, canary->production|staging, production->deprecated, deprecated->archived; nothing else, not even staying put';

CREATE VIEW tforge.deployment_transitions AS
  SELECT f.from_state, t.to_state
    FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::tforge.deployment_state)) AS f(from_state)
   CROSS JOIN pg_catalog.unnest(pg_catalog.enum_range(NULL::tforge.deployment_state)) AS t(to_state)
   WHERE tforge.can_transition(f.from_state, t.to_state);
COMMENT ON VIEW tforge.deployment_transitions IS
  'every allowed (from_state, to_state) edge of the deployment lifecycle';

-- ---------------------------------------------------------------- pure helpers

CREATE FUNCTION tforge._check_shape(shape integer[], what text) RETURNS boolean
  AS 'MODULE_PATHNAME', 'registry_check_shape'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._check_shape(integer[], text) IS
  'internal: true for a valid tensor shape (one-dimensional, no NULL, no negative dimension), else a 22023 error naming what';

CREATE FUNCTION tforge.shape_compatibility(input_a integer[], output_a integer[],
                                           input_b integer[], output_b integer[])
  RETURNS double precision
  AS 'MODULE_PATHNAME', 'registry_shape_compatibility'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.shape_compatibility(integer[], integer[], integer[], integer[]) IS
  'shape compatibility in [0, 1]: mean over input and output of (positions with equal dimension / larger rank); 1.0 for an exact match';

CREATE FUNCTION tforge.meets_sla(latency_p99_ms double precision, accuracy double precision,
                                 max_latency_ms double precision, min_accuracy double precision)
  RETURNS boolean
  AS 'MODULE_PATHNAME', 'registry_meets_sla'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.meets_sla(double precision, double precision, double precision, double precision) IS
  'true when latency_p99_ms <= max_latency_ms and accuracy >= min_accuracy (accuracies are fractions in [0, 1])';

CREATE FUNCTION tforge.rollback_priority(current_p99_ms double precision, current_accuracy double precision,
                                         current_errors integer,
                                         baseline_p99_ms double precision, baseline_accuracy double precision,
                                         baseline_errors integer,
                                         error_weight double precision DEFAULT 1.0,
                                         latency_weight double precision DEFAULT 1.0,
                                         accuracy_weight double precision DEFAULT 10.0)
  RETURNS double precision
  AS 'MODULE_PATHNAME', 'registry_rollback_priority'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.rollback_priority(double precision, double precision, integer, double precision, double precision, integer, double precision, double precision, double precision) IS
  'urgency of rolling back to a baseline, 0 when nothing regressed: error_weight * new errors + latency_weight * relative p99 increase (baseline p99 floored at 1 ms) + accuracy_weight * accuracy drop';

CREATE FUNCTION tforge.latency_percentile(latencies_ms double precision[], percent double precision)
  RETURNS double precision
  AS 'MODULE_PATHNAME', 'registry_latency_percentile'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.latency_percentile(double precision[], double precision) IS
  'nearest-rank percentile (percent in [0, 100]): the sorted value at rank ceil(percent / 100 * n), at least 1; equals percentile_disc(percent / 100)';

-- ---------------------------------------------------------------- tables

CREATE TABLE tforge.models (
  model_id   text PRIMARY KEY CHECK (model_id <> ''),
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tforge.models IS
  'registered models, one row per model_id; created by tforge.register_model with its first version';

CREATE TABLE tforge.model_versions (
  model_id      text NOT NULL REFERENCES tforge.models ON DELETE CASCADE,
  version       tforge.semver NOT NULL,
  framework     text NOT NULL CHECK (framework <> ''),
  input_shape   integer[] NOT NULL DEFAULT '{}'
                CONSTRAINT model_versions_input_shape_check CHECK (tforge._check_shape(input_shape, 'input shape')),
  output_shape  integer[] NOT NULL DEFAULT '{}'
                CONSTRAINT model_versions_output_shape_check CHECK (tforge._check_shape(output_shape, 'output shape')),
  size_bytes    bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
  checksum      text,
  registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
  state         tforge.deployment_state NOT NULL DEFAULT 'registered',
  tags          jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(tags) = 'object'),
  PRIMARY KEY (model_id, version)
);
COMMENT ON TABLE tforge.model_versions IS
  'versions of each model with their metadata and deployment state; state changes are checked against the lifecycle by a trigger and logged in tforge.model_state_history';
CREATE INDEX model_versions_state_idx ON tforge.model_versions (state);

CREATE TABLE tforge.model_state_history (
  history_id bigserial PRIMARY KEY,
  model_id   text NOT NULL,
  version    tforge.semver NOT NULL,
  from_state tforge.deployment_state,
  to_state   tforge.deployment_state NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  changed_by name NOT NULL DEFAULT CURRENT_USER,
  FOREIGN KEY (model_id, version) REFERENCES tforge.model_versions ON DELETE CASCADE
);
COMMENT ON TABLE tforge.model_state_history IS
  'every state a model version entered, in history_id order; from_state is NULL for the row tforge.register_model writes';
CREATE INDEX model_state_history_version_idx ON tforge.model_state_history (model_id, version, history_id);

CREATE TABLE tforge.model_validations (
  validation_id  bigserial PRIMARY KEY,
  model_id       text NOT NULL,
  version        tforge.semver NOT NULL,
  passed         boolean NOT NULL,
  latency_p50_ms double precision NOT NULL CHECK (latency_p50_ms >= 0),
  latency_p99_ms double precision NOT NULL CHECK (latency_p99_ms >= latency_p50_ms),
  accuracy_score double precision NOT NULL CHECK (accuracy_score BETWEEN 0 AND 1),
  errors         text[] NOT NULL DEFAULT '{}',
  sample_count   integer NOT NULL CHECK (sample_count > 0),
  validated_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
  validated_by   name NOT NULL DEFAULT CURRENT_USER,
  FOREIGN KEY (model_id, version) REFERENCES tforge.model_versions ON DELETE CASCADE
);
COMMENT ON TABLE tforge.model_validations IS
  'validation runs of model versions (latency percentiles computed by tforge.record_validation); the latest run of a version is the one that counts';
CREATE INDEX model_validations_version_idx ON tforge.model_validations (model_id, version, validation_id);

SELECT pg_catalog.pg_extension_config_dump('tforge.models', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.model_versions', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.model_state_history', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.model_state_history_history_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.model_validations', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.model_validations_validation_id_seq', '');

CREATE VIEW tforge.latest_validations AS
  SELECT DISTINCT ON (mv.model_id, mv.version) mv.*
    FROM tforge.model_validations mv
   ORDER BY mv.model_id, mv.version, mv.validation_id DESC;
COMMENT ON VIEW tforge.latest_validations IS
  'the most recent validation run of every validated model version';

-- ---------------------------------------------------------------- lifecycle trigger

CREATE FUNCTION tforge._model_versions_lifecycle() RETURNS trigger
  LANGUAGE plpgsql AS $$
DECLARE
  allowed text;
BEGIN
  IF NEW.state IS DISTINCT FROM OLD.state
     AND NOT tforge.can_transition(OLD.state, NEW.state) THEN
    SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('"%s"', dt.to_state), ', ' ORDER BY dt.to_state), 'nothing')
      INTO allowed
      FROM tforge.deployment_transitions dt
     WHERE dt.from_state = OLD.state;
    RAISE EXCEPTION 'invalid deployment state transition from "%" to "%"', OLD.state, NEW.state
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = pg_catalog.format('Version %s of model "%s" is in state "%s", which may move to %s.',
                                       OLD.version, OLD.model_id, OLD.state, allowed),
            HINT = 'The allowed moves are listed in tforge.deployment_transitions.';
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION tforge._model_versions_lifecycle() IS
  'internal trigger: refuses (55000) any UPDATE of tforge.model_versions that moves a version along an edge the lifecycle does not have';

-- Registration rows are written by register_model, not by an INSERT
-- trigger: pg_dump restores tforge.model_versions with COPY, and an INSERT
-- trigger would then add history rows that collide with the restored ones.
CREATE FUNCTION tforge._model_versions_history() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state IS DISTINCT FROM OLD.state THEN
    INSERT INTO tforge.model_state_history (model_id, version, from_state, to_state)
    VALUES (NEW.model_id, NEW.version, OLD.state, NEW.state);
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION tforge._model_versions_history() IS
  'internal trigger: appends every state change of a model version to tforge.model_state_history';

CREATE TRIGGER model_versions_lifecycle
  BEFORE UPDATE OF state ON tforge.model_versions
  FOR EACH ROW EXECUTE FUNCTION tforge._model_versions_lifecycle();
CREATE TRIGGER model_versions_history
  AFTER UPDATE OF state ON tforge.model_versions
  FOR EACH ROW EXECUTE FUNCTION tforge._model_versions_history();

-- ---------------------------------------------------------------- lookups

-- The version row, or 42704 naming what is missing (the model or the version).
CREATE FUNCTION tforge.get_model_version(model_id text, version tforge.semver)
  RETURNS tforge.model_versions
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  r tforge.model_versions;
BEGIN
  IF get_model_version.model_id IS NULL OR get_model_version.version IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', CASE WHEN get_model_version.model_id IS NULL THEN 'model_id' ELSE 'version' END
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT * INTO r FROM tforge.model_versions v
   WHERE v.model_id = get_model_version.model_id AND v.version OPERATOR(tforge.=) get_model_version.version;
  IF NOT FOUND THEN
    IF NOT EXISTS (SELECT 1 FROM tforge.models m WHERE m.model_id = get_model_version.model_id) THEN
      RAISE EXCEPTION 'model "%" does not exist', get_model_version.model_id
        USING ERRCODE = 'undefined_object',
              HINT = 'Register it with tforge.register_model.';
    END IF;
    RAISE EXCEPTION 'version % of model "%" does not exist', get_model_version.version, get_model_version.model_id
      USING ERRCODE = 'undefined_object',
            HINT = pg_catalog.format('Its versions are listed by tforge.list_versions(%L).', get_model_version.model_id);
  END IF;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.get_model_version(text, tforge.semver) IS
  'metadata of one model version (the seed''s get); 42704 when the model or the version does not exist';

-- 42704 unless the model exists.
CREATE FUNCTION tforge._require_model(model_id text) RETURNS void
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  IF _require_model.model_id IS NULL THEN
    RAISE EXCEPTION 'model_id must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM tforge.models m WHERE m.model_id = _require_model.model_id) THEN
    RAISE EXCEPTION 'model "%" does not exist', _require_model.model_id
      USING ERRCODE = 'undefined_object',
            HINT = 'Register it with tforge.register_model.';
  END IF;
END
$$;
COMMENT ON FUNCTION tforge._require_model(text) IS
  'internal: raises 42704 when the model does not exist';

CREATE FUNCTION tforge.latest_version(model_id text) RETURNS tforge.semver
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  PERFORM tforge._require_model(latest_version.model_id);
  RETURN (SELECT v.version FROM tforge.model_versions v
           WHERE v.model_id = latest_version.model_id
           ORDER BY v.version DESC LIMIT 1);
END
$$;
COMMENT ON FUNCTION tforge.latest_version(text) IS
  'highest version of a model by SemVer precedence, whatever its state (the seed''s get_latest); 42704 for an unknown model';

CREATE FUNCTION tforge.list_versions(model_id text) RETURNS SETOF tforge.semver
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  PERFORM tforge._require_model(list_versions.model_id);
  RETURN QUERY SELECT v.version FROM tforge.model_versions v
                WHERE v.model_id = list_versions.model_id
                ORDER BY v.version;
END
$$;
COMMENT ON FUNCTION tforge.list_versions(text) IS
  'versions of a model in ascending SemVer precedence (the seed''s list_versions); 42704 for an unknown model';

CREATE FUNCTION tforge.find_by_state(state tforge.deployment_state) RETURNS SETOF tforge.model_versions
  LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT * FROM tforge.model_versions v
   WHERE v.state = find_by_state.state
   ORDER BY v.model_id, v.version
$$;
COMMENT ON FUNCTION tforge.find_by_state(tforge.deployment_state) IS
  'every model version in the given deployment state, by model_id and version (the seed''s find_by_state)';

CREATE FUNCTION tforge.model_count() RETURNS bigint
  LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT pg_catalog.count(*) FROM tforge.models $$;
COMMENT ON FUNCTION tforge.model_count() IS
  'number of registered models, i.e. distinct model_ids (the seed''s model_count)';

CREATE FUNCTION tforge.version_count() RETURNS bigint
  LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT pg_catalog.count(*) FROM tforge.model_versions $$;
COMMENT ON FUNCTION tforge.version_count() IS
  'number of model versions across all models (the seed''s version_count)';

CREATE FUNCTION tforge.get_validation(model_id text, version tforge.semver)
  RETURNS tforge.model_validations
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  r tforge.model_validations;
BEGIN
  PERFORM tforge.get_model_version(get_validation.model_id, get_validation.version);
  SELECT * INTO r FROM tforge.model_validations mv
   WHERE mv.model_id = get_validation.model_id AND mv.version OPERATOR(tforge.=) get_validation.version
   ORDER BY mv.validation_id DESC LIMIT 1;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.get_validation(text, tforge.semver) IS
  'latest validation of a model version, NULL if it has none (the seed''s get_validation); 42704 for an unknown model or version';

CREATE VIEW tforge.model_summary AS
  SELECT m.model_id, m.name, m.created_at,
         (SELECT pg_catalog.count(*) FROM tforge.model_versions v
           WHERE v.model_id = m.model_id) AS versions,
         (SELECT v.version FROM tforge.model_versions v
           WHERE v.model_id = m.model_id ORDER BY v.version DESC LIMIT 1) AS latest_version,
         (SELECT pg_catalog.array_agg(v.version ORDER BY v.version) FROM tforge.model_versions v
           WHERE v.model_id = m.model_id AND v.state = 'production') AS production_versions,
         (SELECT pg_catalog.array_agg(v.version ORDER BY v.version) FROM tforge.model_versions v
           WHERE v.model_id = m.model_id AND v.state = 'canary') AS canary_versions
    FROM tforge.models m;
COMMENT ON VIEW tforge.model_summary IS
  'one row per model: number of versions, highest version, and the versions in production and in canary';

-- ---------------------------------------------------------------- registration and lifecycle

CREATE FUNCTION tforge.register_model(model_id text, version tforge.semver, framework text,
                                      input_shape integer[] DEFAULT '{}',
                                      output_shape integer[] DEFAULT '{}',
                                      size_bytes bigint DEFAULT 0,
                                      checksum text DEFAULT NULL,
                                      tags jsonb DEFAULT '{}',
                                      name text DEFAULT NULL)
  RETURNS tforge.model_versions
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  r tforge.model_versions;
  existing tforge.semver;
BEGIN
  IF register_model.model_id IS NULL OR register_model.model_id = '' THEN
    RAISE EXCEPTION 'model_id must not be empty or NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF register_model.version IS NULL THEN
    RAISE EXCEPTION 'version must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF register_model.framework IS NULL OR register_model.framework = '' THEN
    RAISE EXCEPTION 'framework must not be empty or NULL' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Name the framework that produced the model, e.g. ''pytorch'', ''tensorflow'' or ''onnx''.';
  END IF;
  IF register_model.size_bytes IS NULL OR register_model.size_bytes < 0 THEN
    RAISE EXCEPTION 'size_bytes must not be negative or NULL, got "%"', register_model.size_bytes
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF register_model.tags IS NULL OR pg_catalog.jsonb_typeof(register_model.tags) <> 'object' THEN
    RAISE EXCEPTION 'tags must be a JSON object, got %', coalesce('JSON ' || pg_catalog.jsonb_typeof(register_model.tags), 'NULL')
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass key/value pairs, e.g. ''{"dataset": "imagenet"}''.';
  END IF;
  PERFORM tforge._check_shape(coalesce(register_model.input_shape, '{}'), 'input shape'),
          tforge._check_shape(coalesce(register_model.output_shape, '{}'), 'output shape');

  INSERT INTO tforge.models AS m (model_id, name)
  VALUES (register_model.model_id, coalesce(register_model.name, register_model.model_id))
  ON CONFLICT ON CONSTRAINT models_pkey DO NOTHING;

  INSERT INTO tforge.model_versions AS v
         (model_id, version, framework, input_shape, output_shape, size_bytes, checksum, tags)
  VALUES (register_model.model_id, register_model.version, register_model.framework,
          coalesce(register_model.input_shape, '{}'), coalesce(register_model.output_shape, '{}'),
          register_model.size_bytes, register_model.checksum, register_model.tags)
  ON CONFLICT ON CONSTRAINT model_versions_pkey DO NOTHING
  RETURNING * INTO r;
  IF NOT FOUND THEN
    SELECT v.version INTO existing FROM tforge.model_versions v
     WHERE v.model_id = register_model.model_id AND v.version OPERATOR(tforge.=) register_model.version;
    RAISE EXCEPTION 'version % of model "%" is already registered', register_model.version, register_model.model_id
      USING ERRCODE = 'unique_violation',
            DETAIL = pg_catalog.format('The registered version is %s; versions that differ only in build metadata are the same version.', existing),
            HINT = 'Register a new version number.';
  END IF;
  INSERT INTO tforge.model_state_history (model_id, version, from_state, to_state)
  VALUES (r.model_id, r.version, NULL, r.state);
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.register_model(text, tforge.semver, text, integer[], integer[], bigint, text, jsonb, text) IS
  'registers a new version of a model (creating the model on its first version) in state registered; 23505 if the version (build metadata ignored) already exists';

CREATE FUNCTION tforge.transition_model(model_id text, version tforge.semver,
                                        state tforge.deployment_state,
                                        previous_production text DEFAULT 'keep')
  RETURNS tforge.model_versions
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  r tforge.model_versions;
  prev tforge.model_versions;
BEGIN
  IF transition_model.state IS NULL THEN
    RAISE EXCEPTION 'state must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF transition_model.previous_production IS NULL
     OR transition_model.previous_production NOT IN ('keep', 'deprecate', 'archive') THEN
    RAISE EXCEPTION 'invalid value for previous_production: "%"', transition_model.previous_production
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use ''keep'', ''deprecate'' or ''archive''.';
  END IF;
  PERFORM tforge._require_model(transition_model.model_id);
  PERFORM 1 FROM tforge.models m WHERE m.model_id = transition_model.model_id FOR NO KEY UPDATE;
  -- Lock the version before reading its state, so a concurrent transition
  -- of the same version waits here and then sees the committed result.
  PERFORM 1 FROM tforge.model_versions v
    WHERE v.model_id = transition_model.model_id AND v.version OPERATOR(tforge.=) transition_model.version
    FOR UPDATE;
  r := tforge.get_model_version(transition_model.model_id, transition_model.version);
  -- The lifecycle trigger refuses bad edges; staying put is refused here
  -- because the trigger lets a same-state UPDATE (of other columns) through.
  IF r.state = transition_model.state THEN
    RAISE EXCEPTION 'invalid deployment state transition from "%" to "%"', r.state, transition_model.state
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = pg_catalog.format('Version %s of model "%s" is already in state "%s".',
                                       r.version, r.model_id, r.state);
  END IF;
  UPDATE tforge.model_versions v SET state = transition_model.state
   WHERE v.model_id = transition_model.model_id AND v.version OPERATOR(tforge.=) transition_model.version
  RETURNING * INTO r;

  IF transition_model.state = 'production' AND transition_model.previous_production <> 'keep' THEN
    FOR prev IN
      SELECT * FROM tforge.model_versions v
       WHERE v.model_id = transition_model.model_id AND v.state = 'production'
         AND v.version OPERATOR(tforge.<>) transition_model.version
       ORDER BY v.version
       FOR UPDATE
    LOOP
      -- Through the lifecycle, so history shows production -> deprecated -> archived.
      UPDATE tforge.model_versions v SET state = 'deprecated'
       WHERE v.model_id = prev.model_id AND v.version OPERATOR(tforge.=) prev.version;
      IF transition_model.previous_production = 'archive' THEN
        UPDATE tforge.model_versions v SET state = 'archived'
         WHERE v.model_id = prev.model_id AND v.version OPERATOR(tforge.=) prev.version;
      END IF;
    END LOOP;
  END IF;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.transition_model(text, tforge.semver, tforge.deployment_state, text) IS
  'moves a model version to a new deployment state along the lifecycle (55000 otherwise, 42704 for an unknown model or version); when promoting to production, previous_production = deprecate or archive retires the model''s other production versions in the same transaction';

-- ---------------------------------------------------------------- validation and selection

CREATE FUNCTION tforge.record_validation(model_id text, version tforge.semver,
                                         latencies_ms double precision[],
                                         accuracy double precision,
                                         errors text[] DEFAULT '{}',
                                         max_latency_ms double precision DEFAULT NULL,
                                         min_accuracy double precision DEFAULT NULL)
  RETURNS tforge.model_validations
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  r tforge.model_validations;
  p50 double precision;
  p99 double precision;
  errs text[] := coalesce(record_validation.errors, '{}');
BEGIN
  IF record_validation.latencies_ms IS NULL THEN
    RAISE EXCEPTION 'latencies must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF record_validation.accuracy IS NULL THEN
    RAISE EXCEPTION 'accuracy must not be NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF pg_catalog.array_position(errs, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'errors must not contain NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM tforge.get_model_version(record_validation.model_id, record_validation.version);
  p50 := tforge.latency_percentile(record_validation.latencies_ms, 50);
  p99 := tforge.latency_percentile(record_validation.latencies_ms, 99);
  INSERT INTO tforge.model_validations AS mv
         (model_id, version, passed, latency_p50_ms, latency_p99_ms, accuracy_score, errors, sample_count)
  VALUES (record_validation.model_id, record_validation.version,
          pg_catalog.cardinality(errs) = 0
            AND tforge.meets_sla(p99, record_validation.accuracy,
                                 coalesce(record_validation.max_latency_ms, 'Infinity'),
                                 coalesce(record_validation.min_accuracy, 0)),
          p50, p99, record_validation.accuracy, errs,
          pg_catalog.cardinality(record_validation.latencies_ms))
  RETURNING * INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.record_validation(text, tforge.semver, double precision[], double precision, text[], double precision, double precision) IS
  'records a validation run: p50 and p99 of latencies_ms by nearest rank (tforge.latency_percentile), accuracy in [0, 1], errors; passed when there are no errors and the optional max_latency_ms / min_accuracy are met';

CREATE FUNCTION tforge.model_meets_sla(model_id text, version tforge.semver,
                                 max_latency_ms double precision, min_accuracy double precision)
  RETURNS boolean
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  lv tforge.model_validations;
BEGIN
  lv := tforge.get_validation(model_meets_sla.model_id, model_meets_sla.version);
  IF lv.validation_id IS NULL THEN
    RETURN false;
  END IF;
  RETURN tforge.meets_sla(lv.latency_p99_ms, lv.accuracy_score, model_meets_sla.max_latency_ms, model_meets_sla.min_accuracy);
END
$$;
COMMENT ON FUNCTION tforge.model_meets_sla(text, tforge.semver, double precision, double precision) IS
  'true when the latest validation of the version meets the SLA (p99 <= max_latency_ms, accuracy >= min_accuracy); false when it has never been validated';

CREATE FUNCTION tforge.select_best_model(model_id text) RETURNS tforge.semver
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  PERFORM tforge._require_model(select_best_model.model_id);
  RETURN (SELECT v.version
            FROM tforge.model_versions v
            JOIN tforge.latest_validations lv
              ON lv.model_id = v.model_id AND lv.version OPERATOR(tforge.=) v.version
           WHERE v.model_id = select_best_model.model_id
             AND v.state IN ('production', 'canary')
           ORDER BY lv.accuracy_score DESC, lv.latency_p99_ms ASC, v.version DESC
           LIMIT 1);
END
$$;
COMMENT ON FUNCTION tforge.select_best_model(text) IS
  'best serving version of a model: among validated versions in production or canary, the highest accuracy of the latest validation, then the lowest p99, then the highest version; NULL when there is none';

CREATE FUNCTION tforge.model_rollback_priority(model_id text, current_version tforge.semver,
                                         baseline_version tforge.semver,
                                         error_weight double precision DEFAULT 1.0,
                                         latency_weight double precision DEFAULT 1.0,
                                         accuracy_weight double precision DEFAULT 10.0)
  RETURNS double precision
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  cur tforge.model_validations;
  base tforge.model_validations;
BEGIN
  cur := tforge.get_validation(model_rollback_priority.model_id, model_rollback_priority.current_version);
  base := tforge.get_validation(model_rollback_priority.model_id, model_rollback_priority.baseline_version);
  IF cur.validation_id IS NULL OR base.validation_id IS NULL THEN
    RAISE EXCEPTION 'version % of model "%" has no validation',
      CASE WHEN cur.validation_id IS NULL THEN model_rollback_priority.current_version
           ELSE model_rollback_priority.baseline_version END,
      model_rollback_priority.model_id
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'Record one with tforge.record_validation.';
  END IF;
  RETURN tforge.rollback_priority(cur.latency_p99_ms, cur.accuracy_score, pg_catalog.cardinality(cur.errors),
                                  base.latency_p99_ms, base.accuracy_score, pg_catalog.cardinality(base.errors),
                                  model_rollback_priority.error_weight, model_rollback_priority.latency_weight,
                                  model_rollback_priority.accuracy_weight);
END
$$;
COMMENT ON FUNCTION tforge.model_rollback_priority(text, tforge.semver, tforge.semver, double precision, double precision, double precision) IS
  'rollback urgency of current_version against baseline_version from their latest validations (the formula of tforge.rollback_priority); 55000 when either has no validation';

-- ---------------------------------------------------------------- privileges

-- Workers run validations; registering and moving versions is for admins
-- (99_privileges grants every volatile function to tforge_admin).
GRANT EXECUTE ON FUNCTION tforge.record_validation(text, tforge.semver, double precision[], double precision, text[], double precision, double precision) TO tforge_worker;
GRANT INSERT ON tforge.model_validations TO tforge_worker;
GRANT USAGE ON SEQUENCE tforge.model_validations_validation_id_seq TO tforge_worker;

-- ---- sql/install/50_signals.sql ----
-- Signals: decay scores, windowed counters and the signal ledger (DESIGN.md component 5).

-- ---------------------------------------------------------------- decay_score

CREATE TYPE tforge.decay_score;

CREATE FUNCTION tforge.decay_score_in(cstring) RETURNS tforge.decay_score
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tforge.decay_score_out(tforge.decay_score) RETURNS cstring
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tforge.decay_score_recv(internal) RETURNS tforge.decay_score
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tforge.decay_score_send(tforge.decay_score) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Fixed size (float8 score, timestamptz last update, int8 half-life in
-- microseconds), passed by reference, never toasted.
CREATE TYPE tforge.decay_score (
  INPUT = tforge.decay_score_in,
  OUTPUT = tforge.decay_score_out,
  RECEIVE = tforge.decay_score_recv,
  SEND = tforge.decay_score_send,
  INTERNALLENGTH = 24,
  ALIGNMENT = double,
  STORAGE = plain
);
COMMENT ON TYPE tforge.decay_score IS
  'running exponentially decayed score: (score at last update, last update, half-life in seconds)';
COMMENT ON FUNCTION tforge.decay_score_in(cstring) IS 'text input of decay_score: (score,last update,half-life seconds)';
COMMENT ON FUNCTION tforge.decay_score_out(tforge.decay_score) IS 'text output of decay_score';
COMMENT ON FUNCTION tforge.decay_score_recv(internal) IS 'binary input of decay_score';
COMMENT ON FUNCTION tforge.decay_score_send(tforge.decay_score) IS 'binary output of decay_score';

CREATE FUNCTION tforge.decay_empty(half_life interval) RETURNS tforge.decay_score
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_empty(interval) IS
  'an empty decay score (value 0, no update yet) with the given half-life';

CREATE FUNCTION tforge.decay_score(weight float8, at timestamptz, half_life interval) RETURNS tforge.decay_score
  AS 'MODULE_PATHNAME', 'decay_new' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_score(float8, timestamptz, interval) IS
  'the decay score of one event of the given weight (finite, >= 0) at the given time';

CREATE FUNCTION tforge.decay_add(score tforge.decay_score, weight float8, at timestamptz) RETURNS tforge.decay_score
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_add(tforge.decay_score, float8, timestamptz) IS
  'adds an event: S = S*exp(-lambda*(at - t_last)) + weight; an event older than the last update adds weight*exp(-lambda*(t_last - at))';

CREATE FUNCTION tforge.decay_value(score tforge.decay_score, at timestamptz) RETURNS float8
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_value(tforge.decay_score, timestamptz) IS
  'the score at time at: S*exp(-lambda*(at - t_last)); before the last update, the score at the last update';

CREATE FUNCTION tforge.decay_merge(a tforge.decay_score, b tforge.decay_score) RETURNS tforge.decay_score
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_merge(tforge.decay_score, tforge.decay_score) IS
  'the score of the union of both scores'' events; both must have the same half-life (else 22023)';

CREATE FUNCTION tforge.decay_rank_key(score tforge.decay_score) RETURNS float8
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_rank_key(tforge.decay_score) IS
  'time-invariant rank key ln(S) + lambda*t_last (t_last in seconds since 2000-01-01 UTC); -1e308 for a zero score';

CREATE FUNCTION tforge.decay_half_life(score tforge.decay_score) RETURNS interval
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_half_life(tforge.decay_score) IS 'the half-life the score decays with';

CREATE FUNCTION tforge.decay_last_update(score tforge.decay_score) RETURNS timestamptz
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_last_update(tforge.decay_score) IS
  'time of the score''s last update (its newest event); NULL for an empty score';

CREATE FUNCTION tforge.decay_agg_trans(tforge.decay_score, float8, timestamptz, interval) RETURNS tforge.decay_score
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.decay_agg_trans(tforge.decay_score, float8, timestamptz, interval) IS
  'transition function of decay_agg';

CREATE AGGREGATE tforge.decay_agg(weight float8, at timestamptz, half_life interval) (
  SFUNC = tforge.decay_agg_trans,
  STYPE = tforge.decay_score,
  COMBINEFUNC = tforge.decay_merge,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.decay_agg(float8, timestamptz, interval) IS
  'decay score of a set of weighted events (rows with a NULL weight or time are skipped); one half-life per group';

-- ---------------------------------------------------------------- window_counter

CREATE TYPE tforge.window_counter;

CREATE FUNCTION tforge.window_counter_in(cstring) RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tforge.window_counter_out(tforge.window_counter) RETURNS cstring
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tforge.window_counter_recv(internal) RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tforge.window_counter_send(tforge.window_counter) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE tforge.window_counter (
  INPUT = tforge.window_counter_in,
  OUTPUT = tforge.window_counter_out,
  RECEIVE = tforge.window_counter_recv,
  SEND = tforge.window_counter_send,
  INTERNALLENGTH = VARIABLE,
  ALIGNMENT = double,
  STORAGE = main
);
COMMENT ON TYPE tforge.window_counter IS
  'event counts in 60 minute and 168 hour buckets up to the newest event, plus an all-time total';
COMMENT ON FUNCTION tforge.window_counter_in(cstring) IS
  'text input of window_counter: total=N [minute=M m[newest,...] h[newest,...]]';
COMMENT ON FUNCTION tforge.window_counter_out(tforge.window_counter) IS 'text output of window_counter';
COMMENT ON FUNCTION tforge.window_counter_recv(internal) IS 'binary input of window_counter';
COMMENT ON FUNCTION tforge.window_counter_send(tforge.window_counter) IS 'binary output of window_counter';

CREATE FUNCTION tforge.window_empty() RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_empty() IS 'an empty window counter';

CREATE FUNCTION tforge.window_add(counter tforge.window_counter, at timestamptz, n bigint DEFAULT 1)
  RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_add(tforge.window_counter, timestamptz, bigint) IS
  'counts n (>= 0) events at time at; an event too old for the buckets still counts in the total';

CREATE FUNCTION tforge.window_merge(a tforge.window_counter, b tforge.window_counter) RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_merge(tforge.window_counter, tforge.window_counter) IS
  'the counter of the union of both counters'' events';

CREATE FUNCTION tforge.window_count(counter tforge.window_counter, window_length interval, at timestamptz)
  RETURNS bigint
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_count(tforge.window_counter, interval, timestamptz) IS
  'events in the last N clock-aligned buckets ending with the bucket of at (1-60 minutes or 1-168 hours)';

CREATE FUNCTION tforge.window_velocity(counter tforge.window_counter, window_length interval, at timestamptz)
  RETURNS float8
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_velocity(tforge.window_counter, interval, timestamptz) IS
  'window_count / window length in seconds (events per second)';

CREATE FUNCTION tforge.window_total(counter tforge.window_counter) RETURNS bigint
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_total(tforge.window_counter) IS 'all-time count of events';

CREATE FUNCTION tforge.window_check(window_length interval) RETURNS interval
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_check(interval) IS
  'returns the window unchanged if a window_counter can count it exactly, else raises 22023';

CREATE FUNCTION tforge.window_last_minute(counter tforge.window_counter) RETURNS timestamptz
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_last_minute(tforge.window_counter) IS
  'start of the minute of the newest event; NULL for an empty counter';

CREATE FUNCTION tforge.window_agg_trans(internal, timestamptz) RETURNS internal
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tforge.window_agg_trans(internal, timestamptz, bigint) RETURNS internal
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tforge.window_agg_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tforge.window_agg_serial(internal) RETURNS bytea
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tforge.window_agg_deserial(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION tforge.window_agg_final(internal) RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_agg_trans(internal, timestamptz) IS 'transition function of window_agg(at)';
COMMENT ON FUNCTION tforge.window_agg_trans(internal, timestamptz, bigint) IS 'transition function of window_agg(at, n)';
COMMENT ON FUNCTION tforge.window_agg_combine(internal, internal) IS 'combine function of window_agg';
COMMENT ON FUNCTION tforge.window_agg_serial(internal) IS 'serialization function of window_agg';
COMMENT ON FUNCTION tforge.window_agg_deserial(bytea, internal) IS 'deserialization function of window_agg';
COMMENT ON FUNCTION tforge.window_agg_final(internal) IS 'final function of window_agg';

CREATE AGGREGATE tforge.window_agg(at timestamptz) (
  SFUNC = tforge.window_agg_trans,
  STYPE = internal,
  FINALFUNC = tforge.window_agg_final,
  COMBINEFUNC = tforge.window_agg_combine,
  SERIALFUNC = tforge.window_agg_serial,
  DESERIALFUNC = tforge.window_agg_deserial,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.window_agg(timestamptz) IS
  'window counter of a set of event times (NULL times are skipped)';

CREATE AGGREGATE tforge.window_agg(at timestamptz, n bigint) (
  SFUNC = tforge.window_agg_trans,
  STYPE = internal,
  FINALFUNC = tforge.window_agg_final,
  COMBINEFUNC = tforge.window_agg_combine,
  SERIALFUNC = tforge.window_agg_serial,
  DESERIALFUNC = tforge.window_agg_deserial,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.window_agg(timestamptz, bigint) IS
  'window counter of a set of (time, number of events) rows (NULLs are skipped)';

-- ---------------------------------------------------------------- the ledger

CREATE TABLE tforge.signal_types (
  name       text PRIMARY KEY,
  half_life  interval NOT NULL,
  windows    interval[] NOT NULL DEFAULT '{1 hour,24 hours,7 days}',
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tforge.signal_types IS
  'kinds of signals: the half-life of their decay scores and the windows reported for them';
SELECT pg_catalog.pg_extension_config_dump('tforge.signal_types', '');

-- Validates a signal type and normalises its windows (deduplicated, sorted).
-- The half-life is fixed once set: stored scores carry it and could not be
-- merged with scores of a new one.
CREATE FUNCTION tforge.signal_types_check() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.half_life IS DISTINCT FROM OLD.half_life THEN
    RAISE EXCEPTION 'cannot change the half-life of signal type "%"', OLD.name
      USING ERRCODE = '55000',
            HINT = 'Stored scores decay with the old half-life; define a new signal type instead.';
  END IF;
  IF NEW.half_life IS NULL THEN
    RAISE EXCEPTION 'half-life of signal type "%" must not be null', NEW.name
      USING ERRCODE = '22023';
  END IF;
  IF pg_catalog.date_part('epoch', NEW.half_life) OPERATOR(pg_catalog.<=) 0 THEN
    RAISE EXCEPTION 'half-life must be positive, got "%"', NEW.half_life
      USING ERRCODE = '22023';
  END IF;
  -- the decay type has its own checks (range, microsecond precision)
  PERFORM tforge.decay_empty(NEW.half_life);
  IF NEW.windows IS NULL OR pg_catalog.array_position(NEW.windows, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'windows of signal type "%" must not be null', NEW.name
      USING ERRCODE = '22023';
  END IF;
  NEW.windows := ARRAY(SELECT DISTINCT tforge.window_check(w)
                         FROM pg_catalog.unnest(NEW.windows) AS u(w) ORDER BY 1);
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION tforge.signal_types_check() IS
  'trigger: validates a signal type (positive half-life, countable windows), deduplicates and sorts its windows';
CREATE TRIGGER signal_types_check BEFORE INSERT OR UPDATE ON tforge.signal_types
  FOR EACH ROW EXECUTE FUNCTION tforge.signal_types_check();

CREATE FUNCTION tforge.define_signal_type(name text, half_life interval,
                                          windows interval[] DEFAULT '{1 hour,24 hours,7 days}')
  RETURNS tforge.signal_types
  LANGUAGE sql VOLATILE AS $$
  INSERT INTO tforge.signal_types (name, half_life, windows) VALUES ($1, $2, $3)
  RETURNING *
$$;
COMMENT ON FUNCTION tforge.define_signal_type(text, interval, interval[]) IS
  'defines a signal type with its half-life and reported windows';

CREATE TABLE tforge.signals (
  entity_id   bigint NOT NULL,
  signal_type text NOT NULL REFERENCES tforge.signal_types (name) ON UPDATE CASCADE ON DELETE CASCADE,
  score       tforge.decay_score NOT NULL,
  counts      tforge.window_counter NOT NULL,
  rank_key    float8 GENERATED ALWAYS AS (tforge.decay_rank_key(score)) STORED,
  PRIMARY KEY (signal_type, entity_id)
);
COMMENT ON TABLE tforge.signals IS
  'per entity and signal type: running decay score, windowed counts and the score''s time-invariant rank key';
CREATE INDEX signals_trending ON tforge.signals (signal_type, rank_key DESC);
SELECT pg_catalog.pg_extension_config_dump('tforge.signals', '');

-- Half-life of a signal type; 42704 for an unknown one. STABLE so that an
-- index condition calls it once per scan.
CREATE FUNCTION tforge.signal_half_life(signal_type text) RETURNS interval
  LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
  hl interval;
BEGIN
  SELECT t.half_life INTO hl FROM tforge.signal_types t WHERE t.name OPERATOR(pg_catalog.=) signal_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'signal type "%" does not exist', signal_type
      USING ERRCODE = '42704', HINT = 'Define it with tforge.define_signal_type().';
  END IF;
  RETURN hl;
END
$$;
COMMENT ON FUNCTION tforge.signal_half_life(text) IS
  'half-life of a signal type; raises 42704 for an unknown signal type';

CREATE FUNCTION tforge._known_signal_type(signal_type text) RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN tforge.signal_half_life($1) IS NOT NULL THEN $1 END
$$;
COMMENT ON FUNCTION tforge._known_signal_type(text) IS
  'internal: its argument, after checking that the signal type exists (42704 otherwise)';

-- One upsert: the first event of an entity inserts its row, later ones
-- update it; the signal type's half-life comes from the same statement.
CREATE FUNCTION tforge.record_signal(entity_id bigint, signal_type text, weight float8 DEFAULT 1,
                                     at timestamptz DEFAULT pg_catalog.now())
  RETURNS float8
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  result float8;
BEGIN
  IF entity_id IS NULL OR weight IS NULL OR at IS NULL THEN
    RAISE EXCEPTION 'entity id, weight and time of a signal must not be null'
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO tforge.signals AS s (entity_id, signal_type, score, counts)
  SELECT record_signal.entity_id, t.name,
         tforge.decay_score(record_signal.weight, record_signal.at, t.half_life),
         tforge.window_add(tforge.window_empty(), record_signal.at)
    FROM tforge.signal_types t
   WHERE t.name OPERATOR(pg_catalog.=) record_signal.signal_type
  ON CONFLICT ON CONSTRAINT signals_pkey DO UPDATE
     SET score = tforge.decay_add(s.score, record_signal.weight, record_signal.at),
         counts = tforge.window_add(s.counts, record_signal.at)
  RETURNING tforge.decay_value(s.score, record_signal.at) INTO result;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'signal type "%" does not exist', signal_type
      USING ERRCODE = '42704', HINT = 'Define it with tforge.define_signal_type().';
  END IF;
  RETURN result;
END
$$;
COMMENT ON FUNCTION tforge.record_signal(bigint, text, float8, timestamptz) IS
  'records one event (weight finite and >= 0) of a signal for an entity; returns the entity''s score at that time';

-- Batch form: events of one signal type given as parallel arrays. Events of
-- the same entity are first folded with decay_agg and window_agg, so the
-- upsert touches each row once.
CREATE FUNCTION tforge.record_signals(entity_ids bigint[], signal_type text, weights float8[] DEFAULT NULL,
                                      ats timestamptz[] DEFAULT NULL)
  RETURNS bigint
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  hl interval := tforge.signal_half_life(signal_type);
  n int := pg_catalog.cardinality(entity_ids);
  touched bigint;
BEGIN
  IF entity_ids IS NULL OR pg_catalog.array_position(entity_ids, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'entity ids must not be null' USING ERRCODE = '22023';
  END IF;
  IF weights IS NOT NULL AND pg_catalog.cardinality(weights) OPERATOR(pg_catalog.<>) n THEN
    RAISE EXCEPTION 'weights has % elements, entity_ids has %', pg_catalog.cardinality(weights), n
      USING ERRCODE = '22023';
  END IF;
  IF ats IS NOT NULL AND pg_catalog.cardinality(ats) OPERATOR(pg_catalog.<>) n THEN
    RAISE EXCEPTION 'ats has % elements, entity_ids has %', pg_catalog.cardinality(ats), n
      USING ERRCODE = '22023';
  END IF;
  IF pg_catalog.array_position(weights, NULL) IS NOT NULL
     OR pg_catalog.array_position(ats, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'weights and times must not contain null' USING ERRCODE = '22023';
  END IF;

  INSERT INTO tforge.signals AS s (entity_id, signal_type, score, counts)
  SELECT e.id, record_signals.signal_type,
         tforge.decay_agg(COALESCE(e.w, 1), COALESCE(e.t, pg_catalog.now()), hl),
         tforge.window_agg(COALESCE(e.t, pg_catalog.now()))
    FROM ROWS FROM (pg_catalog.unnest(entity_ids), pg_catalog.unnest(weights),
                   pg_catalog.unnest(ats)) AS e(id, w, t)
   GROUP BY e.id
   ORDER BY e.id  -- rows locked in key order: concurrent batches cannot deadlock
  ON CONFLICT ON CONSTRAINT signals_pkey DO UPDATE
     SET score = tforge.decay_merge(s.score, excluded.score),
         counts = tforge.window_merge(s.counts, excluded.counts);
  GET DIAGNOSTICS touched = ROW_COUNT;
  RETURN touched;
END
$$;
COMMENT ON FUNCTION tforge.record_signals(bigint[], text, float8[], timestamptz[]) IS
  'records many events of one signal type (parallel arrays; weights default to 1, times to now()); returns the number of entities touched';

CREATE FUNCTION tforge.signal_score(entity_id bigint, signal_type text, at timestamptz DEFAULT pg_catalog.now())
  RETURNS float8
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT COALESCE((SELECT tforge.decay_value(s.score, $3) FROM tforge.signals s
                    WHERE s.signal_type OPERATOR(pg_catalog.=) tforge._known_signal_type($2)
                      AND s.entity_id OPERATOR(pg_catalog.=) $1), 0)
$$;
COMMENT ON FUNCTION tforge.signal_score(bigint, text, timestamptz) IS
  'decay score of an entity''s signal at a time (0 without events); 42704 for an unknown signal type';

CREATE FUNCTION tforge.signal_count(entity_id bigint, signal_type text, window_length interval,
                                    at timestamptz DEFAULT pg_catalog.now())
  RETURNS bigint
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT COALESCE((SELECT tforge.window_count(s.counts, $3, $4) FROM tforge.signals s
                    WHERE s.signal_type OPERATOR(pg_catalog.=) tforge._known_signal_type($2)
                      AND s.entity_id OPERATOR(pg_catalog.=) $1),
                  tforge.window_count(tforge.window_empty(), $3, $4))
$$;
COMMENT ON FUNCTION tforge.signal_count(bigint, text, interval, timestamptz) IS
  'events of an entity''s signal in the window (1-60 minutes or 1-168 hours) ending at a time';

CREATE FUNCTION tforge.signal_velocity(entity_id bigint, signal_type text, window_length interval,
                                       at timestamptz DEFAULT pg_catalog.now())
  RETURNS float8
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT COALESCE((SELECT tforge.window_velocity(s.counts, $3, $4) FROM tforge.signals s
                    WHERE s.signal_type OPERATOR(pg_catalog.=) tforge._known_signal_type($2)
                      AND s.entity_id OPERATOR(pg_catalog.=) $1),
                  tforge.window_velocity(tforge.window_empty(), $3, $4))
$$;
COMMENT ON FUNCTION tforge.signal_velocity(bigint, text, interval, timestamptz) IS
  'events per second of an entity''s signal over the window ending at a time';

-- Count and velocity of every window configured for the signal type.
CREATE FUNCTION tforge.signal_windows(entity_id bigint, signal_type text, at timestamptz DEFAULT pg_catalog.now())
  RETURNS TABLE (window_length interval, count bigint, velocity float8)
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT u.w, tforge.window_count(x.c, u.w, $3), tforge.window_velocity(x.c, u.w, $3)
    FROM tforge.signal_types t
   CROSS JOIN LATERAL pg_catalog.unnest(t.windows) WITH ORDINALITY AS u(w, i)
   CROSS JOIN LATERAL (SELECT COALESCE((SELECT s.counts FROM tforge.signals s
                                         WHERE s.signal_type OPERATOR(pg_catalog.=) t.name
                                           AND s.entity_id OPERATOR(pg_catalog.=) $1),
                                       tforge.window_empty()) AS c) x
   WHERE t.name OPERATOR(pg_catalog.=) tforge._known_signal_type($2)
   ORDER BY u.i
$$;
COMMENT ON FUNCTION tforge.signal_windows(bigint, text, timestamptz) IS
  'count and velocity (events per second) of an entity''s signal in each window configured for its type';

-- A negative k is the caller's mistake (22023), not LIMIT's 2201W. IMMUTABLE
-- and called with a constant k, the planner folds it to that constant, so
-- trending stays inlinable and its plan a bounded index scan; NULL passes
-- through as LIMIT NULL (no limit).
CREATE FUNCTION tforge._trending_limit(k int) RETURNS int
  LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF k < 0 THEN
    RAISE EXCEPTION 'k must not be negative, got %', k
      USING ERRCODE = '22023';
  END IF;
  RETURN k;
END
$$;
COMMENT ON FUNCTION tforge._trending_limit(int) IS
  'internal: its argument, after checking that trending''s k is not negative (22023 otherwise)';

-- Top k by current score. Ordering by the stored rank key equals ordering
-- by the score at any time, so this is a walk down signals_trending that
-- stops after k rows. Plain SQL and not STRICT so the planner inlines it and
-- EXPLAIN shows the index scan.
CREATE FUNCTION tforge.trending(signal_type text, k int, at timestamptz DEFAULT pg_catalog.now())
  RETURNS TABLE (entity_id bigint, score float8, rank_key float8)
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT s.entity_id, tforge.decay_value(s.score, $3), s.rank_key
    FROM tforge.signals s
   WHERE s.signal_type OPERATOR(pg_catalog.=) tforge._known_signal_type($1)
   ORDER BY s.rank_key DESC
   LIMIT tforge._trending_limit($2)
$$;
COMMENT ON FUNCTION tforge.trending(text, int, timestamptz) IS
  'the k entities with the highest current score of a signal type, best first (index scan on the rank key)';

GRANT EXECUTE ON FUNCTION tforge.record_signal(bigint, text, float8, timestamptz) TO tforge_worker;
GRANT EXECUTE ON FUNCTION tforge.record_signals(bigint[], text, float8[], timestamptz[]) TO tforge_worker;
GRANT INSERT, UPDATE ON tforge.signals TO tforge_worker;

-- ---- sql/install/99_privileges.sql ----
-- Privileges: PUBLIC may change nothing.
--
-- Every VOLATILE function in the schema loses PUBLIC's EXECUTE here; the
-- component scripts have already granted each one to the role that needs it.
-- IMMUTABLE and STABLE functions stay executable by everybody (types and pure
-- helpers), but the tables they read are granted only to tforge's roles.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'tforge'::regnamespace
       AND p.provolatile = 'v'
       AND p.prokind IN ('f', 'p')
  LOOP
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO tforge_admin', f);
  END LOOP;
END
$$;

GRANT SELECT ON ALL TABLES IN SCHEMA tforge TO tforge_reader;
GRANT ALL ON ALL TABLES IN SCHEMA tforge TO tforge_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA tforge TO tforge_admin;
