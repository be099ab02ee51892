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
  IF entity_id IS NULL OR weight IS NULL OR at IS NULL THEN
    RAISE EXCEPTION 'entity id, weight and time of a signal must not be null'
      USING ERRCODE = '22023';
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

