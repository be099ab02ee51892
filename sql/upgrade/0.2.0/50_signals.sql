-- Signals: changes to objects 0.1.0 created (see sql/install/50_signals.sql).

-- record_signal reads the half-life by its own statement, then upserts with
-- INSERT ... VALUES: on a Citus cluster the upsert runs on the entity's shard.
CREATE OR REPLACE FUNCTION tforge.record_signal(entity_id bigint, signal_type text, weight float8 DEFAULT 1,
                                     at timestamptz DEFAULT pg_catalog.now())
  RETURNS float8
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  hl interval;
  result float8;
BEGIN
  IF pg_catalog.num_nulls(entity_id, signal_type, weight, at) > 0 THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN entity_id IS NULL THEN 'entity_id' WHEN signal_type IS NULL THEN 'signal_type'
           WHEN weight IS NULL THEN 'weight' ELSE 'at' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT t.half_life INTO hl FROM tforge.signal_types t
   WHERE t.name OPERATOR(pg_catalog.=) record_signal.signal_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'signal type "%" does not exist', signal_type
      USING ERRCODE = '42704', HINT = 'Define it with tforge.define_signal_type().';
  END IF;
  INSERT INTO tforge.signals AS s (entity_id, signal_type, score, counts)
  VALUES (record_signal.entity_id, record_signal.signal_type,
          tforge.decay_score(record_signal.weight, record_signal.at, hl),
          tforge.window_add(tforge.window_empty(), record_signal.at))
  ON CONFLICT ON CONSTRAINT signals_pkey DO UPDATE
     SET score = tforge.decay_add(s.score, record_signal.weight, record_signal.at),
         counts = tforge.window_add(s.counts, record_signal.at)
  RETURNING tforge.decay_value(s.score, record_signal.at) INTO result;
  RETURN result;
END
$$;

-- Union of stored counters (e.g. every entity's counts of a signal type).
-- Its state is a window_counter, not internal: a sharded engine (Citus)
-- runs it as partial aggregates on the shards and merges them.
CREATE AGGREGATE tforge.window_union(tforge.window_counter) (
  SFUNC = tforge.window_merge,
  STYPE = tforge.window_counter,
  COMBINEFUNC = tforge.window_merge,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.window_union(tforge.window_counter) IS
  'the counter of the union of all input counters'' events (NULLs are skipped)';


-- window_agg with a window_counter state instead of internal (Citus runs it
-- as partial aggregates on the shards): the aggregates and their support
-- functions are replaced; the 0.1.0 C entry points stay in the library.
DROP AGGREGATE tforge.window_agg(timestamptz);
DROP AGGREGATE tforge.window_agg(timestamptz, bigint);
DROP FUNCTION tforge.window_agg_trans(internal, timestamptz);
DROP FUNCTION tforge.window_agg_trans(internal, timestamptz, bigint);
DROP FUNCTION tforge.window_agg_combine(internal, internal);
DROP FUNCTION tforge.window_agg_serial(internal);
DROP FUNCTION tforge.window_agg_deserial(bytea, internal);
DROP FUNCTION tforge.window_agg_final(internal);
-- window_agg's state is a window_counter, not internal: a sharded engine
-- (Citus) runs it as partial aggregates on the shards (worker_partial_agg)
-- and combines them on the coordinator, which it refuses for a pseudo-type
-- state. The step and merge functions rewrite a state they made in place
-- (every bucket stored), so folding n events stays linear; the final
-- function stores the compact form.
CREATE FUNCTION tforge.window_agg_step(state tforge.window_counter, at timestamptz)
  RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tforge.window_agg_step(state tforge.window_counter, at timestamptz, n bigint)
  RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tforge.window_agg_merge(a tforge.window_counter, b tforge.window_counter)
  RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION tforge.window_agg_done(state tforge.window_counter) RETURNS tforge.window_counter
  AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.window_agg_step(tforge.window_counter, timestamptz) IS
  'transition function of window_agg(at): the state with one event at time at (NULL time: unchanged)';
COMMENT ON FUNCTION tforge.window_agg_step(tforge.window_counter, timestamptz, bigint) IS
  'transition function of window_agg(at, n): the state with n events at time at (NULL time or n: unchanged)';
COMMENT ON FUNCTION tforge.window_agg_merge(tforge.window_counter, tforge.window_counter) IS
  'combine function of window_agg: the union of two states (NULL: the other one)';
COMMENT ON FUNCTION tforge.window_agg_done(tforge.window_counter) IS
  'final function of window_agg: the state in its compact stored form';

CREATE AGGREGATE tforge.window_agg(at timestamptz) (
  SFUNC = tforge.window_agg_step,
  STYPE = tforge.window_counter,
  FINALFUNC = tforge.window_agg_done,
  COMBINEFUNC = tforge.window_agg_merge,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.window_agg(timestamptz) IS
  'window counter of a set of event times (NULL times are skipped)';

CREATE AGGREGATE tforge.window_agg(at timestamptz, n bigint) (
  SFUNC = tforge.window_agg_step,
  STYPE = tforge.window_counter,
  FINALFUNC = tforge.window_agg_done,
  COMBINEFUNC = tforge.window_agg_merge,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE tforge.window_agg(timestamptz, bigint) IS
  'window counter of a set of (time, number of events) rows (NULLs are skipped)';

-- A signal type without a name is refused with 22004 by the validating
-- trigger (issue 13: define_signal_type(NULL, ...) reached the primary key's
-- NOT NULL, 23502). Body as in sql/install/50_signals.sql.
CREATE OR REPLACE FUNCTION tforge.signal_types_check() RETURNS trigger
  LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.half_life IS DISTINCT FROM OLD.half_life THEN
    RAISE EXCEPTION 'cannot change the half-life of signal type "%"', OLD.name
      USING ERRCODE = '55000',
            HINT = 'Stored scores decay with the old half-life; define a new signal type instead.';
  END IF;
  IF NEW.name IS NULL THEN
    RAISE EXCEPTION 'name of a signal type must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF NEW.half_life IS NULL THEN
    RAISE EXCEPTION 'half_life of signal type "%" must not be NULL', NEW.name
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF pg_catalog.date_part('epoch', NEW.half_life) OPERATOR(pg_catalog.<=) 0 THEN
    RAISE EXCEPTION 'half-life must be positive, got "%"', NEW.half_life
      USING ERRCODE = '22023';
  END IF;
  -- the decay type has its own checks (range, microsecond precision)
  PERFORM tforge.decay_empty(NEW.half_life);
  IF pg_catalog.array_ndims(NEW.windows) OPERATOR(pg_catalog.>) 1 THEN
    RAISE EXCEPTION 'windows of signal type "%" must be a one-dimensional array', NEW.name
      USING ERRCODE = '22023';
  END IF;
  IF NEW.windows IS NULL THEN
    RAISE EXCEPTION 'windows of signal type "%" must not be NULL', NEW.name
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF pg_catalog.array_position(NEW.windows, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'windows of signal type "%" must not contain NULL', NEW.name
      USING ERRCODE = '22023';
  END IF;
  NEW.windows := ARRAY(SELECT DISTINCT tforge.window_check(w)
                         FROM pg_catalog.unnest(NEW.windows) AS u(w) ORDER BY 1);
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION tforge.signal_types_check() IS
  'trigger: validates a signal type (positive half-life, countable windows), deduplicates and sorts its windows';

-- record_signals refuses arrays of more than one dimension with 22023
-- (issue 13: array_position gave 0A000). Body as in sql/install/50_signals.sql.
CREATE OR REPLACE FUNCTION tforge.record_signals(entity_ids bigint[], signal_type text, weights float8[] DEFAULT NULL,
                                      ats timestamptz[] DEFAULT NULL)
  RETURNS bigint
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  hl interval := tforge.signal_half_life(signal_type);
  n int := pg_catalog.cardinality(entity_ids);
  touched bigint;
BEGIN
  IF pg_catalog.array_ndims(entity_ids) OPERATOR(pg_catalog.>) 1 OR pg_catalog.array_ndims(weights) OPERATOR(pg_catalog.>) 1
     OR pg_catalog.array_ndims(ats) OPERATOR(pg_catalog.>) 1 THEN
    RAISE EXCEPTION 'entity_ids, weights and ats must be one-dimensional arrays' USING ERRCODE = '22023';
  END IF;
  IF entity_ids IS NULL OR signal_type IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', CASE WHEN entity_ids IS NULL THEN 'entity_ids' ELSE 'signal_type' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF pg_catalog.array_position(entity_ids, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'entity_ids must not contain NULL' USING ERRCODE = '22023';
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

-- define_signal_type refuses a name already defined with 42710 (as
-- define_task_type does) instead of the primary key's 23505. Body as in
-- sql/install/50_signals.sql.
CREATE OR REPLACE FUNCTION tforge.define_signal_type(name text, half_life interval,
                                          windows interval[] DEFAULT '{1 hour,24 hours,7 days}')
  RETURNS tforge.signal_types
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t tforge.signal_types;
BEGIN
  -- a name taken is refused as define_task_type refuses one (42710), not by
  -- the primary key's unique violation
  INSERT INTO tforge.signal_types AS s (name, half_life, windows) VALUES ($1, $2, $3)
  ON CONFLICT ON CONSTRAINT signal_types_pkey DO NOTHING
  RETURNING s.* INTO t;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'signal type "%" already exists', $1
      USING ERRCODE = 'duplicate_object',
            HINT = 'Its half-life is fixed; define a signal type under another name.';
  END IF;
  RETURN t;
END
$$;
