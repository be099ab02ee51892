-- tforge's semver operators moved from schema tforge to pg_catalog
-- (sql/upgrade/0.2.0/10_semver.sql): the registry functions that named them
-- as OPERATOR(tforge.=) / OPERATOR(tforge.<>) now write OPERATOR(pg_catalog.=)
-- and OPERATOR(pg_catalog.<>), and find_by_state, a SQL function left
-- unpinned so the planner can inline it, qualifies its enum comparison.
-- Bodies as in sql/install/40_registry.sql; CREATE OR REPLACE keeps their
-- grants and comments, and the privileges fragment that runs last pins the
-- search_path of the PL/pgSQL ones again.

CREATE OR REPLACE FUNCTION tforge.get_model_version(model_id text, version tforge.semver)
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

CREATE OR REPLACE FUNCTION tforge.find_by_state(state tforge.deployment_state) RETURNS SETOF tforge.model_versions
  LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT * FROM tforge.model_versions v
   WHERE v.state OPERATOR(pg_catalog.=) find_by_state.state
   ORDER BY v.model_id, v.version
$$;

CREATE OR REPLACE FUNCTION tforge.get_validation(model_id text, version tforge.semver)
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

CREATE OR REPLACE FUNCTION tforge.register_model(model_id text, version tforge.semver, framework text,
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

CREATE OR REPLACE FUNCTION tforge.transition_model(model_id text, version tforge.semver,
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

CREATE OR REPLACE FUNCTION tforge.select_best_model(model_id text) RETURNS tforge.semver
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

-- record_validation refuses an accuracy outside [0, 1] with 22023 even when
-- errors are given (issue 13: it reached model_validations' CHECK, 23514).
-- Body as in sql/install/40_registry.sql.
CREATE OR REPLACE FUNCTION tforge.record_validation(model_id text, version tforge.semver,
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

-- A NULL argument is refused with 22004 (null_value_not_allowed, DESIGN.md),
-- not 22023: _require_model (and through it latest_version, list_versions,
-- select_best_model) and model_rollback_priority, whose weights are now
-- required too (0.1.0 returned NULL for a NULL weight).
CREATE OR REPLACE FUNCTION tforge._require_model(model_id text) RETURNS void
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

CREATE OR REPLACE FUNCTION tforge.model_rollback_priority(model_id text, current_version tforge.semver,
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
