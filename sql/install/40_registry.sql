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
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT * INTO r FROM tforge.model_versions v
   WHERE v.model_id = get_model_version.model_id AND v.version OPERATOR(pg_catalog.=) get_model_version.version;
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
    RAISE EXCEPTION 'model_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
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
   WHERE v.state OPERATOR(pg_catalog.=) find_by_state.state
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
   WHERE mv.model_id = get_validation.model_id AND mv.version OPERATOR(pg_catalog.=) get_validation.version
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
  IF pg_catalog.num_nulls(register_model.model_id, register_model.version, register_model.framework,
                          register_model.size_bytes, register_model.tags) > 0 THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN register_model.model_id IS NULL THEN 'model_id' WHEN register_model.version IS NULL THEN 'version'
           WHEN register_model.framework IS NULL THEN 'framework' WHEN register_model.size_bytes IS NULL THEN 'size_bytes'
           ELSE 'tags' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF register_model.model_id = '' THEN
    RAISE EXCEPTION 'model_id must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF register_model.framework = '' THEN
    RAISE EXCEPTION 'framework must not be empty' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Name the framework that produced the model, e.g. ''pytorch'', ''tensorflow'' or ''onnx''.';
  END IF;
  IF register_model.size_bytes < 0 THEN
    RAISE EXCEPTION 'size_bytes must not be negative, got %', register_model.size_bytes
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF pg_catalog.jsonb_typeof(register_model.tags) <> 'object' THEN
    RAISE EXCEPTION 'tags must be a JSON object, got JSON %', pg_catalog.jsonb_typeof(register_model.tags)
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
     WHERE v.model_id = register_model.model_id AND v.version OPERATOR(pg_catalog.=) register_model.version;
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
  IF pg_catalog.num_nulls(transition_model.model_id, transition_model.version, transition_model.state,
                          transition_model.previous_production) > 0 THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN transition_model.model_id IS NULL THEN 'model_id' WHEN transition_model.version IS NULL THEN 'version'
           WHEN transition_model.state IS NULL THEN 'state' ELSE 'previous_production' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF transition_model.previous_production NOT IN ('keep', 'deprecate', 'archive') THEN
    RAISE EXCEPTION 'invalid value for previous_production: "%"', transition_model.previous_production
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use ''keep'', ''deprecate'' or ''archive''.';
  END IF;
  PERFORM tforge._require_model(transition_model.model_id);
  PERFORM 1 FROM tforge.models m WHERE m.model_id = transition_model.model_id FOR NO KEY UPDATE;
  -- Lock the version before reading its state, so a concurrent transition
  -- of the same version waits here and then sees the committed result.
  PERFORM 1 FROM tforge.model_versions v
    WHERE v.model_id = transition_model.model_id AND v.version OPERATOR(pg_catalog.=) transition_model.version
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
   WHERE v.model_id = transition_model.model_id AND v.version OPERATOR(pg_catalog.=) transition_model.version
  RETURNING * INTO r;

  IF transition_model.state = 'production' AND transition_model.previous_production <> 'keep' THEN
    FOR prev IN
      SELECT * FROM tforge.model_versions v
       WHERE v.model_id = transition_model.model_id AND v.state = 'production'
         AND v.version OPERATOR(pg_catalog.<>) transition_model.version
       ORDER BY v.version
       FOR UPDATE
    LOOP
      -- Through the lifecycle, so history shows production -> deprecated -> archived.
      UPDATE tforge.model_versions v SET state = 'deprecated'
       WHERE v.model_id = prev.model_id AND v.version OPERATOR(pg_catalog.=) prev.version;
      IF transition_model.previous_production = 'archive' THEN
        UPDATE tforge.model_versions v SET state = 'archived'
         WHERE v.model_id = prev.model_id AND v.version OPERATOR(pg_catalog.=) prev.version;
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
  sla_met boolean;
  errs text[] := coalesce(record_validation.errors, '{}');
BEGIN
  IF pg_catalog.num_nulls(record_validation.model_id, record_validation.version,
                          record_validation.latencies_ms, record_validation.accuracy) > 0 THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN record_validation.model_id IS NULL THEN 'model_id' WHEN record_validation.version IS NULL THEN 'version'
           WHEN record_validation.latencies_ms IS NULL THEN 'latencies_ms' ELSE 'accuracy' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF pg_catalog.array_ndims(errs) OPERATOR(pg_catalog.>) 1 THEN
    RAISE EXCEPTION 'errors must be a one-dimensional array' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF pg_catalog.array_position(errs, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'errors must not contain NULL' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM tforge.get_model_version(record_validation.model_id, record_validation.version);
  p50 := tforge.latency_percentile(record_validation.latencies_ms, 50);
  p99 := tforge.latency_percentile(record_validation.latencies_ms, 99);
  -- Evaluated whatever the errors, so that meets_sla's checks refuse a bad
  -- accuracy (22023) before model_validations' CHECK constraint could.
  sla_met := tforge.meets_sla(p99, record_validation.accuracy,
                              coalesce(record_validation.max_latency_ms, 'Infinity'),
                              coalesce(record_validation.min_accuracy, 0));
  INSERT INTO tforge.model_validations AS mv
         (model_id, version, passed, latency_p50_ms, latency_p99_ms, accuracy_score, errors, sample_count)
  VALUES (record_validation.model_id, record_validation.version,
          pg_catalog.cardinality(errs) = 0 AND sla_met,
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
              ON lv.model_id = v.model_id AND lv.version OPERATOR(pg_catalog.=) v.version
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
  IF pg_catalog.num_nulls(model_rollback_priority.model_id, model_rollback_priority.current_version,
                          model_rollback_priority.baseline_version, model_rollback_priority.error_weight,
                          model_rollback_priority.latency_weight, model_rollback_priority.accuracy_weight) > 0 THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN model_rollback_priority.model_id IS NULL THEN 'model_id'
           WHEN model_rollback_priority.current_version IS NULL THEN 'current_version'
           WHEN model_rollback_priority.baseline_version IS NULL THEN 'baseline_version'
           WHEN model_rollback_priority.error_weight IS NULL THEN 'error_weight'
           WHEN model_rollback_priority.latency_weight IS NULL THEN 'latency_weight'
           ELSE 'accuracy_weight' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
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
