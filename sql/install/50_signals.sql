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
CREATE TRIGGER signal_types_check BEFORE INSERT OR UPDATE ON tforge.signal_types
  FOR EACH ROW EXECUTE FUNCTION tforge.signal_types_check();

CREATE FUNCTION tforge.define_signal_type(name text, half_life interval,
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
-- update it. The half-life is read first, by its own statement, so that the
-- upsert is a plain INSERT ... VALUES on one entity: on a Citus cluster it
-- then runs on the shard of that entity (an INSERT ... SELECT from the
-- signal types would be planned across nodes).
CREATE FUNCTION tforge.record_signal(entity_id bigint, signal_type text, weight float8 DEFAULT 1,
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
