-- Checkpoint chains (DESIGN.md component 4, seed 002 task 3, issue 14).
--
-- Training checkpoints of each run, full or incremental (an incremental one
-- is a delta on its parent), their lifecycle, per-run retention policies and
-- a garbage collector that never removes a checkpoint that a kept one needs.
-- Chain traversal (walking parent_id links) is C, in src/chain.c: every
-- function that follows links (chain_*, restoration_chain,
-- validate_checkpoint, estimate_restore_time, find_restore_point and the GC's
-- ancestor closure) uses the same bounded walk, by index probes of
-- checkpoints_pkey.
--
-- Checkpoint ids are 'ckpt-' followed by a number from the sequence
-- tforge.checkpoint_id_seq: generated, unique, text.
--
-- Locking protocol: every change that can add or remove a link of a run
-- (create_checkpoint, checkpoint_gc, delete_checkpoint) first upserts the
-- run's row in tforge.checkpoint_runs, which locks and updates it. They
-- therefore run one after the other per run; in READ COMMITTED the second
-- one's statements see the first one's committed rows (so GC sees a new
-- child, and a create sees that GC removed its parent), and in REPEATABLE
-- READ or SERIALIZABLE the second one fails with 40001 instead of working
-- from a stale snapshot. complete_checkpoint and mark_checkpoint_corrupted
-- lock only the checkpoint's row: neither adds a link, and a checkpoint in
-- state creating is never collected.

CREATE TYPE tforge.checkpoint_type AS ENUM ('full', 'incremental', 'emergency');
COMMENT ON TYPE tforge.checkpoint_type IS
  'kind of training checkpoint: full (complete model state), incremental (a delta on its parent checkpoint), emergency (written on failure detection)';

CREATE TYPE tforge.checkpoint_state AS ENUM ('creating', 'complete', 'corrupted', 'deleted');
COMMENT ON TYPE tforge.checkpoint_state IS
  'lifecycle of a checkpoint: creating -> complete | corrupted, complete -> corrupted, any -> deleted (the row stays; its files may be removed)';

CREATE SEQUENCE tforge.checkpoint_id_seq;
COMMENT ON SEQUENCE tforge.checkpoint_id_seq IS
  'numbers of checkpoint ids (''ckpt-'' || nextval)';

-- ---------------------------------------------------------------- tables

CREATE TABLE tforge.checkpoints (
  checkpoint_id   text COLLATE "C" PRIMARY KEY
                  DEFAULT 'ckpt-' OPERATOR(pg_catalog.||) pg_catalog.nextval('tforge.checkpoint_id_seq'::pg_catalog.regclass)::text,
  training_run_id text COLLATE "C" NOT NULL CHECK (training_run_id OPERATOR(pg_catalog.<>) ''),
  epoch           integer NOT NULL CHECK (epoch OPERATOR(pg_catalog.>=) 0),
  step            bigint NOT NULL CHECK (step OPERATOR(pg_catalog.>=) 0),
  checkpoint_type tforge.checkpoint_type NOT NULL DEFAULT 'full',
  state           tforge.checkpoint_state NOT NULL DEFAULT 'creating',
  size_bytes      bigint NOT NULL DEFAULT 0 CHECK (size_bytes OPERATOR(pg_catalog.>=) 0),
  created_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  parent_id       text COLLATE "C"
                  CONSTRAINT checkpoints_parent_check CHECK (parent_id OPERATOR(pg_catalog.<>) checkpoint_id),
  metrics         jsonb NOT NULL DEFAULT '{}'
                  CONSTRAINT checkpoints_metrics_check
                  CHECK (pg_catalog.jsonb_typeof(metrics) OPERATOR(pg_catalog.=) 'object'
                         AND NOT pg_catalog.jsonb_path_exists(metrics, '$.* ? (@.type() != "number")')),
  storage_path    text
);
COMMENT ON TABLE tforge.checkpoints IS
  'training checkpoints: one row per checkpoint, never removed by tforge (deleted ones stay with state deleted so their storage_path can be cleaned up); parent_id links an incremental checkpoint to the checkpoint it is a delta on';
COMMENT ON COLUMN tforge.checkpoints.checkpoint_id IS 'generated id, ''ckpt-'' || nextval(''tforge.checkpoint_id_seq'')';
COMMENT ON COLUMN tforge.checkpoints.created_at IS 'clock_timestamp() at creation, so checkpoints created in one transaction are ordered';
COMMENT ON COLUMN tforge.checkpoints.parent_id IS 'the checkpoint this one is a delta on (incremental checkpoints); NULL for a chain''s root';
COMMENT ON COLUMN tforge.checkpoints.metrics IS 'numbers by name (loss, accuracy, ...): a JSON object whose values are all numbers';
COMMENT ON COLUMN tforge.checkpoints.storage_path IS 'where the checkpoint''s files are, set by tforge.complete_checkpoint';

-- Walking down a chain (dependants of a checkpoint) is an index probe.
CREATE INDEX checkpoints_parent_idx ON tforge.checkpoints (parent_id) WHERE parent_id IS NOT NULL;
-- A run's checkpoints newest first: list, latest, find_restore_point.
CREATE INDEX checkpoints_run_idx ON tforge.checkpoints (training_run_id, step DESC, created_at DESC, checkpoint_id DESC);
-- The same order over the checkpoints GC considers (deleted rows accumulate
-- and are skipped by the index, not filtered).
CREATE INDEX checkpoints_run_live_idx ON tforge.checkpoints (training_run_id, step DESC, created_at DESC, checkpoint_id DESC)
  WHERE state OPERATOR(pg_catalog.<>) 'deleted'::tforge.checkpoint_state;

CREATE TABLE tforge.checkpoint_runs (
  training_run_id     text COLLATE "C" PRIMARY KEY,
  checkpoints_created bigint NOT NULL DEFAULT 0,
  last_created_at     timestamptz,
  last_gc_at          timestamptz,
  gc_removed          bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE tforge.checkpoint_runs IS
  'one row per training run that created or collected checkpoints; its row lock serializes create_checkpoint, checkpoint_gc and delete_checkpoint on the run';

CREATE TABLE tforge.checkpoint_policies (
  training_run_id         text COLLATE "C",
  max_checkpoints_per_run integer CHECK (max_checkpoints_per_run OPERATOR(pg_catalog.>=) 0),
  max_age                 interval CHECK (max_age OPERATOR(pg_catalog.>=) '0'::interval),
  keep_best_n             integer NOT NULL DEFAULT 0 CHECK (keep_best_n OPERATOR(pg_catalog.>=) 0),
  metric_key              text CHECK (metric_key OPERATOR(pg_catalog.<>) ''),
  metric_ascending        boolean NOT NULL DEFAULT true,
  keep_every_n_steps      integer CHECK (keep_every_n_steps OPERATOR(pg_catalog.>) 0),
  CONSTRAINT checkpoint_policies_run_key UNIQUE NULLS NOT DISTINCT (training_run_id)
);
COMMENT ON TABLE tforge.checkpoint_policies IS
  'GC policies: one row per training run that has its own, plus the default (training_run_id NULL) for every other run; set with tforge.set_checkpoint_policy. NULL max_checkpoints_per_run, max_age, metric_key or keep_every_n_steps: no such rule';
COMMENT ON COLUMN tforge.checkpoint_policies.max_checkpoints_per_run IS 'an unprotected checkpoint not among this many newest non-deleted ones of its run is eligible; NULL: no count limit';
COMMENT ON COLUMN tforge.checkpoint_policies.max_age IS 'an unprotected checkpoint older than this is eligible; NULL: no age limit';
COMMENT ON COLUMN tforge.checkpoint_policies.keep_best_n IS 'how many complete checkpoints with the best metric_key are protected';
COMMENT ON COLUMN tforge.checkpoint_policies.metric_ascending IS 'true: lower metric is better (a loss); false: higher is better';
COMMENT ON COLUMN tforge.checkpoint_policies.keep_every_n_steps IS 'checkpoints whose step is a multiple of this are protected; NULL: none';
-- The key (training_run_id) is NULL for the default policy, so it cannot be
-- the replica identity: the whole row is. Without one a FOR ALL TABLES
-- publication refuses set_checkpoint_policy's UPDATE and
-- clear_checkpoint_policy's DELETE (55000).
ALTER TABLE tforge.checkpoint_policies REPLICA IDENTITY FULL;

-- The default policy. pg_dump dumps it with the other rows and pg_restore
-- copies it into a table CREATE EXTENSION has already given one: the
-- trigger below turns that second default row into an update of the first.
INSERT INTO tforge.checkpoint_policies
  (training_run_id, max_checkpoints_per_run, max_age, keep_best_n, metric_key, metric_ascending, keep_every_n_steps)
VALUES (NULL, 10, NULL, 3, 'loss', true, NULL);

CREATE FUNCTION tforge._checkpoint_policies_default() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  updated bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.training_run_id IS NULL THEN
      RAISE EXCEPTION 'the default checkpoint policy cannot be deleted'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Change it with tforge.set_checkpoint_policy(NULL, ...).';
    END IF;
    RETURN OLD;
  END IF;
  IF NEW.training_run_id IS NULL THEN
    -- The relation the trigger fires on: tforge.checkpoint_policies, or on
    -- a Citus cluster the node's placement of it (a reference table).
    EXECUTE format('UPDATE %s p
       SET max_checkpoints_per_run = $1.max_checkpoints_per_run, max_age = $1.max_age,
           keep_best_n = $1.keep_best_n, metric_key = $1.metric_key,
           metric_ascending = $1.metric_ascending, keep_every_n_steps = $1.keep_every_n_steps
     WHERE p.training_run_id IS NULL', TG_RELID::regclass) USING NEW;
    GET DIAGNOSTICS updated = ROW_COUNT;
    IF updated > 0 THEN
      RETURN NULL;
    END IF;
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION tforge._checkpoint_policies_default() IS
  'internal trigger: keeps exactly one default policy row (an INSERT of another one, as pg_restore does, updates it instead) and refuses to delete it';
CREATE TRIGGER checkpoint_policies_default
  BEFORE INSERT OR DELETE ON tforge.checkpoint_policies
  FOR EACH ROW EXECUTE FUNCTION tforge._checkpoint_policies_default();

SELECT pg_catalog.pg_extension_config_dump('tforge.checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.checkpoint_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.checkpoint_runs', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.checkpoint_policies', '');

-- ---------------------------------------------------------------- lifecycle trigger

CREATE FUNCTION tforge.checkpoint_can_transition(from_state tforge.checkpoint_state, to_state tforge.checkpoint_state)
  RETURNS boolean
  AS 'MODULE_PATHNAME', 'chain_can_transition'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.checkpoint_can_transition(tforge.checkpoint_state, tforge.checkpoint_state) IS
  'true when a checkpoint may move from from_state to to_state: creating -> complete | corrupted, complete -> corrupted, any -> deleted; nothing else';

CREATE FUNCTION tforge._checkpoints_lifecycle() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NEW.state IS DISTINCT FROM OLD.state
     AND NOT tforge.checkpoint_can_transition(OLD.state, NEW.state) THEN
    RAISE EXCEPTION 'invalid checkpoint state transition from "%" to "%"', OLD.state, NEW.state
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = format('Checkpoint "%s" is %s; states move only creating -> complete or corrupted, complete -> corrupted, and any -> deleted.',
                            OLD.checkpoint_id, OLD.state);
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION tforge._checkpoints_lifecycle() IS
  'internal trigger: refuses (55000) any UPDATE of tforge.checkpoints that moves a checkpoint along an edge its lifecycle does not have';
-- The WHEN clause runs the C test for every row; the PL/pgSQL function only
-- runs to raise the error (GC marks thousands of rows at once).
CREATE TRIGGER checkpoints_lifecycle
  BEFORE UPDATE OF state ON tforge.checkpoints
  FOR EACH ROW
  WHEN (OLD.state IS DISTINCT FROM NEW.state
        AND NOT tforge.checkpoint_can_transition(OLD.state, NEW.state))
  EXECUTE FUNCTION tforge._checkpoints_lifecycle();

-- ---------------------------------------------------------------- C: chains

CREATE FUNCTION tforge._checkpoint_missing(checkpoint_id text) RETURNS void
  AS 'MODULE_PATHNAME', 'chain_checkpoint_missing'
  LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._checkpoint_missing(text) IS
  'internal: raises the 42704 error for an unknown checkpoint (its one definition)';

CREATE FUNCTION tforge.get_checkpoint(checkpoint_id text) RETURNS tforge.checkpoints
  AS 'MODULE_PATHNAME', 'chain_get_checkpoint'
  LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.get_checkpoint(text) IS
  'the checkpoint''s row; 42704 when it does not exist';

-- The run-keyed forms (issue 12): the same function with training_run_id
-- first. On a single node they answer as the plain form for a checkpoint of
-- that run (42704 for a checkpoint of another run); on a Citus cluster,
-- where tforge.distribute() distributes the checkpoints by training run,
-- Citus delegates each call to the node holding the run's shard, and the
-- plain forms of the chain functions refuse (55000: the C walk reads one
-- shard, and needs the run to find it).
CREATE FUNCTION tforge.get_checkpoint(training_run_id text, checkpoint_id text) RETURNS tforge.checkpoints
  AS 'MODULE_PATHNAME', 'chain_get_checkpoint'
  LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.get_checkpoint(text, text) IS
  'get_checkpoint(checkpoint_id) for a checkpoint of the named training run (routed by run on Citus); 42704 when the run has no such checkpoint';

CREATE FUNCTION tforge.chain_length(checkpoint_id text) RETURNS integer
  AS 'MODULE_PATHNAME', 'chain_length'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.chain_length(text) IS
  'number of checkpoints in the restoration chain of a checkpoint (itself and every ancestor; 1 for a root); 42704 for an unknown checkpoint or a missing parent, 55000 for a cycle';

CREATE FUNCTION tforge.chain_length(training_run_id text, checkpoint_id text) RETURNS integer
  AS 'MODULE_PATHNAME', 'chain_length'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.chain_length(text, text) IS
  'chain_length(checkpoint_id) for a checkpoint of the named training run (routed by run on Citus); 42704 when the run has no such checkpoint';

CREATE FUNCTION tforge.chain_root(checkpoint_id text) RETURNS text
  AS 'MODULE_PATHNAME', 'chain_root'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.chain_root(text) IS
  'id of the root of a checkpoint''s chain (the ancestor without a parent; the checkpoint itself when it has none); 42704 / 55000 as chain_length';

CREATE FUNCTION tforge.chain_root(training_run_id text, checkpoint_id text) RETURNS text
  AS 'MODULE_PATHNAME', 'chain_root'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.chain_root(text, text) IS
  'chain_root(checkpoint_id) for a checkpoint of the named training run (routed by run on Citus); 42704 when the run has no such checkpoint';

CREATE FUNCTION tforge.restoration_chain(checkpoint_id text) RETURNS SETOF text
  AS 'MODULE_PATHNAME', 'chain_restoration_chain'
  LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION tforge.restoration_chain(text) IS
  'ids of the checkpoints to apply to restore a checkpoint, root first, the checkpoint last; 42704 / 55000 as chain_length';

CREATE FUNCTION tforge.restoration_chain(training_run_id text, checkpoint_id text) RETURNS SETOF text
  AS 'MODULE_PATHNAME', 'chain_restoration_chain'
  LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION tforge.restoration_chain(text, text) IS
  'restoration_chain(checkpoint_id) for a checkpoint of the named training run (routed by run on Citus); 42704 when the run has no such checkpoint';

CREATE FUNCTION tforge.chain_size(checkpoint_id text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'chain_size'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.chain_size(text) IS
  'sum of size_bytes over a checkpoint''s restoration chain (22003 beyond bigint); 42704 / 55000 as chain_length';

CREATE FUNCTION tforge.chain_size(training_run_id text, checkpoint_id text) RETURNS bigint
  AS 'MODULE_PATHNAME', 'chain_size'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.chain_size(text, text) IS
  'chain_size(checkpoint_id) for a checkpoint of the named training run (routed by run on Citus); 42704 when the run has no such checkpoint';

CREATE FUNCTION tforge.validate_checkpoint(checkpoint_id text) RETURNS SETOF text
  AS 'MODULE_PATHNAME', 'chain_validate_checkpoint'
  LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION tforge.validate_checkpoint(text) IS
  'problems of a checkpoint''s chain, one message each, root first: a link without storage path, an epoch or step smaller than its parent''s, a parent in another run; no row when valid; 42704 / 55000 as chain_length';

CREATE FUNCTION tforge.validate_checkpoint(training_run_id text, checkpoint_id text) RETURNS SETOF text
  AS 'MODULE_PATHNAME', 'chain_validate_checkpoint'
  LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 1;
COMMENT ON FUNCTION tforge.validate_checkpoint(text, text) IS
  'validate_checkpoint(checkpoint_id) for a checkpoint of the named training run (routed by run on Citus); 42704 when the run has no such checkpoint';

CREATE FUNCTION tforge.estimate_restore_time(checkpoint_id text, base_ms double precision,
                                             per_checkpoint_ms double precision,
                                             bytes_per_ms double precision)
  RETURNS double precision
  AS 'MODULE_PATHNAME', 'chain_estimate_restore_time'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.estimate_restore_time(text, double precision, double precision, double precision) IS
  'milliseconds to restore a checkpoint: base_ms + per_checkpoint_ms * chain_length + chain_size / bytes_per_ms (base and per-checkpoint finite and >= 0, bytes_per_ms finite and > 0, else 22023)';

CREATE FUNCTION tforge.estimate_restore_time(training_run_id text, checkpoint_id text, base_ms double precision,
                                             per_checkpoint_ms double precision,
                                             bytes_per_ms double precision)
  RETURNS double precision
  AS 'MODULE_PATHNAME', 'chain_estimate_restore_time'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.estimate_restore_time(text, text, double precision, double precision, double precision) IS
  'estimate_restore_time(checkpoint_id, ...) for a checkpoint of the named training run (routed by run on Citus); 42704 when the run has no such checkpoint';

CREATE FUNCTION tforge._checkpoint_ancestors(training_run_id text, checkpoint_ids text[]) RETURNS SETOF text
  AS 'MODULE_PATHNAME', 'chain_ancestors'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._checkpoint_ancestors(text, text[]) IS
  'internal (checkpoint_gc): the given checkpoints of the run and all their ancestors, each once (on Citus, read from the run''s shard); unknown ids and missing parents end a walk, a cycle ends it where it closes (a broken chain never stops GC, and nothing reachable is removed)';

-- ---------------------------------------------------------------- C: GC rule and selection

CREATE FUNCTION tforge.is_gc_eligible(checkpoint tforge.checkpoints, policy tforge.checkpoint_policies,
                                      is_latest boolean, is_best boolean, newest_rank bigint,
                                      at timestamptz)
  RETURNS boolean
  AS 'MODULE_PATHNAME', 'chain_is_gc_eligible'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.is_gc_eligible(tforge.checkpoints, tforge.checkpoint_policies, boolean, boolean, bigint, timestamptz) IS
  'the GC rule for one checkpoint: false when deleted or protected (is_latest, is_best, state creating, step a multiple of keep_every_n_steps); otherwise true when at - created_at > max_age or newest_rank (1 = newest non-deleted of its run by step, created_at) > max_checkpoints_per_run. checkpoint_gc removes the eligible checkpoints that no kept checkpoint needs';

CREATE FUNCTION tforge.selection_score(checkpoint tforge.checkpoints, chain_length integer,
                                       prefer_full boolean DEFAULT false)
  RETURNS numeric
  AS 'MODULE_PATHNAME', 'chain_selection_score'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.selection_score(tforge.checkpoints, integer, boolean) IS
  'restore-point score, higher is better: F * 10^49 + step * 10^30 + (microseconds of created_at since 2000-01-01 UTC + 10^18) * 10^10 + (10^10 - chain_length), F = 1 for a full checkpoint when prefer_full, else 0; orders exactly as (preferred type, higher step, later created_at, shorter chain)';

CREATE FUNCTION tforge.find_restore_point(training_run_id text, max_epoch integer DEFAULT NULL,
                                          max_step bigint DEFAULT NULL,
                                          require_complete boolean DEFAULT true,
                                          prefer_full boolean DEFAULT false)
  RETURNS tforge.checkpoints
  AS 'MODULE_PATHNAME', 'chain_find_restore_point'
  LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.find_restore_point(text, integer, bigint, boolean, boolean) IS
  'the checkpoint of a run to restore: among those with epoch <= max_epoch and step <= max_step (NULL: no limit) whose whole chain is restorable (no link corrupted, deleted, missing or in a cycle; with require_complete every link complete, else complete or creating), the one with the highest selection_score (highest step, then latest created_at; with prefer_full a full checkpoint first); NULL when none';

-- ---------------------------------------------------------------- reads

CREATE FUNCTION tforge.list_checkpoints(training_run_id text) RETURNS SETOF tforge.checkpoints
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  IF list_checkpoints.training_run_id IS NULL THEN
    RAISE EXCEPTION 'training_run_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  RETURN QUERY SELECT c.* FROM tforge.checkpoints c
                WHERE c.training_run_id = list_checkpoints.training_run_id
                ORDER BY c.step, c.created_at, c.checkpoint_id;
END
$$;
COMMENT ON FUNCTION tforge.list_checkpoints(text) IS
  'every checkpoint of a run, deleted ones included, oldest first (step, created_at, checkpoint_id); no row for an unknown run';

CREATE FUNCTION tforge.latest_checkpoint(training_run_id text) RETURNS tforge.checkpoints
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  r tforge.checkpoints;
BEGIN
  IF latest_checkpoint.training_run_id IS NULL THEN
    RAISE EXCEPTION 'training_run_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT c.* INTO r FROM tforge.checkpoints c
   WHERE c.training_run_id = latest_checkpoint.training_run_id
     AND c.state OPERATOR(pg_catalog.=) 'complete'::tforge.checkpoint_state
   ORDER BY c.step DESC, c.created_at DESC, c.checkpoint_id DESC
   LIMIT 1;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.latest_checkpoint(text) IS
  'the run''s complete checkpoint with the highest step (then latest created_at, then highest checkpoint_id); NULL when it has none';

CREATE FUNCTION tforge.find_checkpoints_by_metric(training_run_id text, metric_key text,
                                                  threshold double precision, ascending boolean DEFAULT true)
  RETURNS SETOF tforge.checkpoints
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  IF find_checkpoints_by_metric.training_run_id IS NULL OR find_checkpoints_by_metric.metric_key IS NULL
     OR find_checkpoints_by_metric.threshold IS NULL OR find_checkpoints_by_metric.ascending IS NULL THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN find_checkpoints_by_metric.training_run_id IS NULL THEN 'training_run_id'
           WHEN find_checkpoints_by_metric.metric_key IS NULL THEN 'metric_key'
           WHEN find_checkpoints_by_metric.threshold IS NULL THEN 'threshold'
           ELSE 'ascending' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF find_checkpoints_by_metric.threshold = 'NaN'::float8 THEN
    RAISE EXCEPTION 'threshold must be a number, got NaN' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY
    SELECT c.* FROM tforge.checkpoints c
     WHERE c.training_run_id = find_checkpoints_by_metric.training_run_id
       AND c.state OPERATOR(pg_catalog.<>) 'deleted'::tforge.checkpoint_state
       AND c.metrics ? find_checkpoints_by_metric.metric_key
       AND CASE WHEN find_checkpoints_by_metric.ascending
                THEN (c.metrics -> find_checkpoints_by_metric.metric_key)::numeric < find_checkpoints_by_metric.threshold::numeric
                ELSE (c.metrics -> find_checkpoints_by_metric.metric_key)::numeric > find_checkpoints_by_metric.threshold::numeric END
     ORDER BY CASE WHEN find_checkpoints_by_metric.ascending
                   THEN (c.metrics -> find_checkpoints_by_metric.metric_key)::numeric
                   ELSE -(c.metrics -> find_checkpoints_by_metric.metric_key)::numeric END,
              c.step DESC, c.created_at DESC, c.checkpoint_id DESC;
END
$$;
COMMENT ON FUNCTION tforge.find_checkpoints_by_metric(text, text, double precision, boolean) IS
  'the run''s non-deleted checkpoints whose metric is strictly better than threshold (ascending: lower is better, metric < threshold; else metric > threshold), best first, then highest step; checkpoints without the metric are never returned';

CREATE FUNCTION tforge.checkpoint_total_count() RETURNS bigint
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.count(*) FROM tforge.checkpoints c
   WHERE c.state OPERATOR(pg_catalog.<>) 'deleted'::tforge.checkpoint_state
$$;
COMMENT ON FUNCTION tforge.checkpoint_total_count() IS
  'number of checkpoints that are not deleted, over all runs';

CREATE FUNCTION tforge.checkpoint_total_size() RETURNS bigint
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT COALESCE(pg_catalog.sum(c.size_bytes), 0)::bigint FROM tforge.checkpoints c
   WHERE c.state OPERATOR(pg_catalog.<>) 'deleted'::tforge.checkpoint_state
$$;
COMMENT ON FUNCTION tforge.checkpoint_total_size() IS
  'storage used: sum of size_bytes of the checkpoints that are not deleted, over all runs';

-- ---------------------------------------------------------------- writes

-- Locks (and touches) the run's row: see the locking protocol above.
-- PL/pgSQL, not SQL: Citus cannot route a SQL function's parameterized
-- INSERT into a distributed table (tforge.distribute()).
CREATE FUNCTION tforge._lock_checkpoint_run(training_run_id text, what text) RETURNS void
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- values, not calls, in DO UPDATE SET: Citus routes only immutable calls there
  created integer := CASE WHEN what = 'create' THEN 1 ELSE 0 END;
  created_at timestamptz := CASE WHEN what = 'create' THEN pg_catalog.now() END;
  gc_at timestamptz := CASE WHEN what = 'gc' THEN pg_catalog.now() END;
BEGIN
  IF training_run_id IS NULL THEN
    RAISE EXCEPTION 'training run id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  INSERT INTO tforge.checkpoint_runs AS r (training_run_id, checkpoints_created, last_created_at, last_gc_at)
  VALUES (_lock_checkpoint_run.training_run_id, created, created_at, gc_at)
  ON CONFLICT ON CONSTRAINT checkpoint_runs_pkey DO UPDATE
     SET checkpoints_created = r.checkpoints_created + created,
         last_created_at = COALESCE(created_at, r.last_created_at),
         last_gc_at = COALESCE(gc_at, r.last_gc_at);
END
$$;
COMMENT ON FUNCTION tforge._lock_checkpoint_run(text, text) IS
  'internal: locks and updates the run''s row in tforge.checkpoint_runs (what: create, gc or delete), so that changes of the run''s links serialize';

CREATE FUNCTION tforge.create_checkpoint(training_run_id text, epoch integer, step bigint,
                                         checkpoint_type tforge.checkpoint_type DEFAULT 'full',
                                         metrics jsonb DEFAULT '{}',
                                         parent_id text DEFAULT NULL)
  RETURNS tforge.checkpoints
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r tforge.checkpoints;
  p tforge.checkpoints;
  bad text;
BEGIN
  IF create_checkpoint.training_run_id IS NULL OR create_checkpoint.epoch IS NULL
     OR create_checkpoint.step IS NULL OR create_checkpoint.checkpoint_type IS NULL
     OR create_checkpoint.metrics IS NULL THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN create_checkpoint.training_run_id IS NULL THEN 'training_run_id'
           WHEN create_checkpoint.epoch IS NULL THEN 'epoch'
           WHEN create_checkpoint.step IS NULL THEN 'step'
           WHEN create_checkpoint.checkpoint_type IS NULL THEN 'checkpoint_type'
           ELSE 'metrics' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF create_checkpoint.training_run_id = '' THEN
    RAISE EXCEPTION 'training_run_id must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF create_checkpoint.epoch < 0 OR create_checkpoint.step < 0 THEN
    RAISE EXCEPTION '% must not be negative, got %',
      CASE WHEN create_checkpoint.epoch < 0 THEN 'epoch' ELSE 'step' END,
      CASE WHEN create_checkpoint.epoch < 0 THEN create_checkpoint.epoch::bigint ELSE create_checkpoint.step END
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF jsonb_typeof(create_checkpoint.metrics) <> 'object' THEN
    RAISE EXCEPTION 'metrics must be a JSON object, got JSON %', jsonb_typeof(create_checkpoint.metrics)
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass numbers by name, e.g. ''{"loss": 0.25}''.';
  END IF;
  SELECT m.key INTO bad FROM jsonb_each(create_checkpoint.metrics) m
   WHERE jsonb_typeof(m.value) <> 'number' ORDER BY m.key LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'metric "%" must be a number, got %', bad, create_checkpoint.metrics -> bad
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF create_checkpoint.parent_id IS NOT NULL AND create_checkpoint.checkpoint_type <> 'incremental' THEN
    RAISE EXCEPTION 'a % checkpoint has no parent', create_checkpoint.checkpoint_type
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Only incremental checkpoints are deltas on a parent.';
  END IF;

  PERFORM tforge._lock_checkpoint_run(create_checkpoint.training_run_id, 'create');

  IF create_checkpoint.checkpoint_type = 'incremental' THEN
    IF create_checkpoint.parent_id IS NULL THEN
      p := tforge.latest_checkpoint(create_checkpoint.training_run_id);
      IF p.checkpoint_id IS NULL THEN
        RAISE EXCEPTION 'training run "%" has no complete checkpoint to be the parent of an incremental checkpoint',
          create_checkpoint.training_run_id
          USING ERRCODE = 'object_not_in_prerequisite_state',
                HINT = 'Create and complete a full checkpoint first, or name the parent.';
      END IF;
    ELSE
      SELECT c.* INTO p FROM tforge.checkpoints c WHERE c.checkpoint_id = create_checkpoint.parent_id;
      IF NOT FOUND THEN
        PERFORM tforge._checkpoint_missing(create_checkpoint.parent_id);
      END IF;
    END IF;
    IF p.training_run_id <> create_checkpoint.training_run_id THEN
      RAISE EXCEPTION 'parent "%" belongs to training run "%", not "%"', p.checkpoint_id,
        p.training_run_id, create_checkpoint.training_run_id
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p.step >= create_checkpoint.step THEN
      RAISE EXCEPTION 'parent "%" is at step %, not below step %', p.checkpoint_id, p.step, create_checkpoint.step
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'An incremental checkpoint is a delta on an earlier checkpoint of its run.';
    END IF;
    IF p.state <> 'complete' THEN
      RAISE EXCEPTION 'parent "%" is %, not complete', p.checkpoint_id, p.state
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'An incremental checkpoint needs a complete parent.';
    END IF;
  END IF;

  INSERT INTO tforge.checkpoints AS c (training_run_id, epoch, step, checkpoint_type, metrics, parent_id)
  VALUES (create_checkpoint.training_run_id, create_checkpoint.epoch, create_checkpoint.step,
          create_checkpoint.checkpoint_type, create_checkpoint.metrics, p.checkpoint_id)
  RETURNING c.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.create_checkpoint(text, integer, bigint, tforge.checkpoint_type, jsonb, text) IS
  'creates a checkpoint in state creating and returns it; an incremental one''s parent is parent_id or else the run''s latest complete checkpoint, and must be complete, in the same run and at a lower step (55000 when there is none or it is not complete, 22023 otherwise)';

CREATE FUNCTION tforge.complete_checkpoint(training_run_id text, checkpoint_id text, size_bytes bigint, storage_path text)
  RETURNS tforge.checkpoints
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r tforge.checkpoints;
BEGIN
  IF complete_checkpoint.checkpoint_id IS NULL OR complete_checkpoint.size_bytes IS NULL
     OR complete_checkpoint.storage_path IS NULL OR complete_checkpoint.training_run_id IS NULL THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN complete_checkpoint.checkpoint_id IS NULL THEN 'checkpoint_id'
           WHEN complete_checkpoint.size_bytes IS NULL THEN 'size_bytes'
           WHEN complete_checkpoint.storage_path IS NULL THEN 'storage_path'
           ELSE 'training_run_id' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF complete_checkpoint.size_bytes < 0 THEN
    RAISE EXCEPTION 'size_bytes must not be negative, got %', complete_checkpoint.size_bytes
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF complete_checkpoint.storage_path = '' THEN
    RAISE EXCEPTION 'storage_path must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT c.* INTO r FROM tforge.checkpoints c
   WHERE c.training_run_id = complete_checkpoint.training_run_id
     AND c.checkpoint_id = complete_checkpoint.checkpoint_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM tforge._checkpoint_missing(complete_checkpoint.checkpoint_id);
  END IF;
  IF r.state <> 'creating' THEN
    RAISE EXCEPTION 'invalid checkpoint state transition from "%" to "complete"', r.state
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = format('Checkpoint "%s" is %s; only a checkpoint being created can complete.', r.checkpoint_id, r.state);
  END IF;
  UPDATE tforge.checkpoints c
     SET state = 'complete', size_bytes = complete_checkpoint.size_bytes,
         storage_path = complete_checkpoint.storage_path
   WHERE c.training_run_id = complete_checkpoint.training_run_id
     AND c.checkpoint_id = complete_checkpoint.checkpoint_id
  RETURNING c.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.complete_checkpoint(text, text, bigint, text) IS
  'run-keyed form (routed by run on Citus; 42704 when the run has no such checkpoint): records that a checkpoint was written: state creating -> complete, with its size (>= 0) and non-empty storage path; 42704 unknown, 55000 when not creating';

-- The plain forms of complete_checkpoint, mark_checkpoint_corrupted and
-- delete_checkpoint find the checkpoint's run (on Citus: asking every
-- shard) and call the run-keyed form, which does the work.
CREATE FUNCTION tforge.complete_checkpoint(checkpoint_id text, size_bytes bigint, storage_path text)
  RETURNS tforge.checkpoints
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run text;
BEGIN
  SELECT c.training_run_id INTO run FROM tforge.checkpoints c WHERE c.checkpoint_id = complete_checkpoint.checkpoint_id;
  RETURN tforge.complete_checkpoint(COALESCE(run, ''), complete_checkpoint.checkpoint_id,
                                    complete_checkpoint.size_bytes, complete_checkpoint.storage_path);
END
$$;
COMMENT ON FUNCTION tforge.complete_checkpoint(text, bigint, text) IS
  'records that a checkpoint was written: state creating -> complete, with its size (>= 0) and non-empty storage path; 42704 unknown, 55000 when not creating';


CREATE FUNCTION tforge.mark_checkpoint_corrupted(training_run_id text, checkpoint_id text)
  RETURNS tforge.checkpoints
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r tforge.checkpoints;
BEGIN
  IF mark_checkpoint_corrupted.checkpoint_id IS NULL THEN
    RAISE EXCEPTION 'checkpoint_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF mark_checkpoint_corrupted.training_run_id IS NULL THEN
    RAISE EXCEPTION 'training_run_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT c.* INTO r FROM tforge.checkpoints c
   WHERE c.training_run_id = mark_checkpoint_corrupted.training_run_id
     AND c.checkpoint_id = mark_checkpoint_corrupted.checkpoint_id FOR UPDATE;
  IF NOT FOUND THEN
    PERFORM tforge._checkpoint_missing(mark_checkpoint_corrupted.checkpoint_id);
  END IF;
  -- The lifecycle trigger judges changes of state only; staying corrupted
  -- is not a move the lifecycle has, so it is refused here.
  IF r.state = 'corrupted' THEN
    RAISE EXCEPTION 'invalid checkpoint state transition from "corrupted" to "corrupted"'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = format('Checkpoint "%s" is already corrupted.', r.checkpoint_id);
  END IF;
  UPDATE tforge.checkpoints c SET state = 'corrupted'
   WHERE c.training_run_id = mark_checkpoint_corrupted.training_run_id
     AND c.checkpoint_id = mark_checkpoint_corrupted.checkpoint_id
  RETURNING c.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.mark_checkpoint_corrupted(text, text) IS
  'run-keyed form (routed by run on Citus; 42704 when the run has no such checkpoint): marks a creating or complete checkpoint corrupted (no chain through it is restorable any more); 42704 unknown, 55000 when corrupted or deleted';

CREATE FUNCTION tforge.mark_checkpoint_corrupted(checkpoint_id text)
  RETURNS tforge.checkpoints
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run text;
BEGIN
  SELECT c.training_run_id INTO run FROM tforge.checkpoints c WHERE c.checkpoint_id = mark_checkpoint_corrupted.checkpoint_id;
  RETURN tforge.mark_checkpoint_corrupted(COALESCE(run, ''), mark_checkpoint_corrupted.checkpoint_id);
END
$$;
COMMENT ON FUNCTION tforge.mark_checkpoint_corrupted(text) IS
  'marks a creating or complete checkpoint corrupted (no chain through it is restorable any more); 42704 unknown, 55000 when corrupted or deleted';

CREATE FUNCTION tforge.delete_checkpoint(training_run_id text, checkpoint_id text, "cascade" boolean)
  RETURNS SETOF text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r tforge.checkpoints;
  dependant text;
  dependants text[];
BEGIN
  IF delete_checkpoint.checkpoint_id IS NULL OR delete_checkpoint."cascade" IS NULL THEN
    RAISE EXCEPTION '% must not be NULL',
      CASE WHEN delete_checkpoint.checkpoint_id IS NULL THEN 'checkpoint_id' ELSE 'cascade' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF delete_checkpoint.training_run_id IS NULL THEN
    RAISE EXCEPTION 'training_run_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT c.* INTO r FROM tforge.checkpoints c
   WHERE c.training_run_id = delete_checkpoint.training_run_id
     AND c.checkpoint_id = delete_checkpoint.checkpoint_id;
  IF NOT FOUND THEN
    PERFORM tforge._checkpoint_missing(delete_checkpoint.checkpoint_id);
  END IF;
  PERFORM tforge._lock_checkpoint_run(r.training_run_id, 'delete');

  -- Every descendant, by probes of checkpoints_parent_idx (UNION: a cycle
  -- ends the recursion).
  dependants := ARRAY(
    WITH RECURSIVE d(checkpoint_id) AS (
      SELECT c.checkpoint_id FROM tforge.checkpoints c
       WHERE c.training_run_id = delete_checkpoint.training_run_id
         AND c.parent_id = delete_checkpoint.checkpoint_id
      UNION
      SELECT c.checkpoint_id FROM tforge.checkpoints c JOIN d ON c.parent_id = d.checkpoint_id
       WHERE c.training_run_id = delete_checkpoint.training_run_id
    )
    SELECT d.checkpoint_id FROM d WHERE d.checkpoint_id <> delete_checkpoint.checkpoint_id);

  SELECT c.checkpoint_id INTO dependant
    FROM tforge.checkpoints c
   WHERE c.training_run_id = delete_checkpoint.training_run_id
     AND c.checkpoint_id = ANY (dependants) AND c.state <> 'deleted'
   ORDER BY c.step, c.checkpoint_id LIMIT 1;
  IF FOUND AND NOT delete_checkpoint."cascade" THEN
    RAISE EXCEPTION 'checkpoint "%" has dependants that are not deleted', delete_checkpoint.checkpoint_id
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = format('Checkpoint "%s" needs it to be restored.', dependant),
            HINT = 'Delete the dependants first, or pass cascade => true.';
  END IF;

  RETURN QUERY
    WITH gone AS (
      UPDATE tforge.checkpoints c SET state = 'deleted'
       WHERE c.training_run_id = delete_checkpoint.training_run_id AND c.state <> 'deleted'
         AND (c.checkpoint_id = delete_checkpoint.checkpoint_id OR c.checkpoint_id = ANY (dependants))
      RETURNING c.checkpoint_id, c.step
    )
    SELECT gone.checkpoint_id FROM gone ORDER BY gone.step, gone.checkpoint_id;
END
$$;
COMMENT ON FUNCTION tforge.delete_checkpoint(text, text, boolean) IS
  'run-keyed form (routed by run on Citus; 42704 when the run has no such checkpoint; dependants are those of the same run): marks a checkpoint deleted and returns the ids it marked (the row stays; storage_path says which files to remove); 55000 while a checkpoint that depends on it is not deleted, unless cascade, which deletes those dependants too; 42704 unknown';

CREATE FUNCTION tforge.delete_checkpoint(checkpoint_id text, "cascade" boolean DEFAULT false)
  RETURNS SETOF text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run text;
BEGIN
  SELECT c.training_run_id INTO run FROM tforge.checkpoints c WHERE c.checkpoint_id = delete_checkpoint.checkpoint_id;
  RETURN QUERY SELECT d.id FROM tforge.delete_checkpoint(COALESCE(run, ''), delete_checkpoint.checkpoint_id,
                                                         delete_checkpoint."cascade") AS d(id);
END
$$;
COMMENT ON FUNCTION tforge.delete_checkpoint(text, boolean) IS
  'marks a checkpoint deleted and returns the ids it marked (the row stays; storage_path says which files to remove); 55000 while a checkpoint that depends on it is not deleted, unless cascade, which deletes those dependants too; 42704 unknown';

CREATE FUNCTION tforge.set_checkpoint_policy(training_run_id text,
                                             max_checkpoints_per_run integer DEFAULT -1,
                                             max_age interval DEFAULT '-1 second',
                                             keep_best_n integer DEFAULT -1,
                                             metric_key text DEFAULT '',
                                             metric_ascending boolean DEFAULT NULL,
                                             keep_every_n_steps integer DEFAULT -1)
  RETURNS tforge.checkpoint_policies
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d tforge.checkpoint_policies;
  r tforge.checkpoint_policies;
BEGIN
  IF set_checkpoint_policy.training_run_id = '' THEN
    RAISE EXCEPTION 'training_run_id must not be empty' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Pass NULL to change the default policy.';
  END IF;
  IF set_checkpoint_policy.max_checkpoints_per_run < -1 OR set_checkpoint_policy.keep_best_n < -1
     OR set_checkpoint_policy.max_age < '-1 second'::interval
     OR (set_checkpoint_policy.max_age < '0'::interval AND set_checkpoint_policy.max_age <> '-1 second'::interval) THEN
    RAISE EXCEPTION '% must not be negative, got %',
      CASE WHEN set_checkpoint_policy.max_checkpoints_per_run < -1 THEN 'max_checkpoints_per_run'
           WHEN set_checkpoint_policy.keep_best_n < -1 THEN 'keep_best_n' ELSE 'max_age' END,
      CASE WHEN set_checkpoint_policy.max_checkpoints_per_run < -1 THEN set_checkpoint_policy.max_checkpoints_per_run::text
           WHEN set_checkpoint_policy.keep_best_n < -1 THEN set_checkpoint_policy.keep_best_n::text
           ELSE set_checkpoint_policy.max_age::text END
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Omit an argument to take the default policy''s value, or pass NULL for no limit.';
  END IF;
  IF set_checkpoint_policy.keep_every_n_steps = 0 OR set_checkpoint_policy.keep_every_n_steps < -1 THEN
    RAISE EXCEPTION 'keep_every_n_steps must be positive, got %', set_checkpoint_policy.keep_every_n_steps
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Pass NULL to protect no step.';
  END IF;
  IF set_checkpoint_policy.keep_best_n IS NULL THEN
    RAISE EXCEPTION 'keep_best_n must not be NULL' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Pass 0 to protect no checkpoint by its metric.';
  END IF;

  -- The default row is locked so two changes of it (or a change racing a
  -- run's copy of it) serialize.
  SELECT p.* INTO d FROM tforge.checkpoint_policies p WHERE p.training_run_id IS NULL FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the default checkpoint policy is missing' USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  r.training_run_id := set_checkpoint_policy.training_run_id;
  r.max_checkpoints_per_run := CASE WHEN set_checkpoint_policy.max_checkpoints_per_run IS NOT DISTINCT FROM -1
                                    THEN d.max_checkpoints_per_run ELSE set_checkpoint_policy.max_checkpoints_per_run END;
  r.max_age := CASE WHEN set_checkpoint_policy.max_age IS NOT DISTINCT FROM '-1 second'::interval
                    THEN d.max_age ELSE set_checkpoint_policy.max_age END;
  r.keep_best_n := CASE WHEN set_checkpoint_policy.keep_best_n = -1 THEN d.keep_best_n ELSE set_checkpoint_policy.keep_best_n END;
  r.metric_key := CASE WHEN set_checkpoint_policy.metric_key IS NOT DISTINCT FROM '' THEN d.metric_key ELSE set_checkpoint_policy.metric_key END;
  r.metric_ascending := coalesce(set_checkpoint_policy.metric_ascending, d.metric_ascending);
  r.keep_every_n_steps := CASE WHEN set_checkpoint_policy.keep_every_n_steps IS NOT DISTINCT FROM -1
                               THEN d.keep_every_n_steps ELSE set_checkpoint_policy.keep_every_n_steps END;

  IF r.training_run_id IS NULL THEN
    UPDATE tforge.checkpoint_policies p
       SET max_checkpoints_per_run = r.max_checkpoints_per_run, max_age = r.max_age,
           keep_best_n = r.keep_best_n, metric_key = r.metric_key,
           metric_ascending = r.metric_ascending, keep_every_n_steps = r.keep_every_n_steps
     WHERE p.training_run_id IS NULL
    RETURNING p.* INTO r;
  ELSE
    INSERT INTO tforge.checkpoint_policies AS p
    VALUES (r.*)
    ON CONFLICT ON CONSTRAINT checkpoint_policies_run_key DO UPDATE
       SET max_checkpoints_per_run = EXCLUDED.max_checkpoints_per_run, max_age = EXCLUDED.max_age,
           keep_best_n = EXCLUDED.keep_best_n, metric_key = EXCLUDED.metric_key,
           metric_ascending = EXCLUDED.metric_ascending, keep_every_n_steps = EXCLUDED.keep_every_n_steps
    RETURNING p.* INTO r;
  END IF;
  RETURN r;
END
$$;
COMMENT ON FUNCTION tforge.set_checkpoint_policy(text, integer, interval, integer, text, boolean, integer) IS
  'sets the GC policy of a training run (NULL: the default policy) and returns it; call it with named arguments: an omitted one (its default -1, ''-1 second'', '''' or NULL is a placeholder) takes the default policy''s current value, NULL means no such rule (max_checkpoints_per_run, max_age, metric_key, keep_every_n_steps)';

CREATE FUNCTION tforge.clear_checkpoint_policy(training_run_id text) RETURNS boolean
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF clear_checkpoint_policy.training_run_id IS NULL THEN
    RAISE EXCEPTION 'training_run_id must not be NULL' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'The default policy cannot be removed; change it with tforge.set_checkpoint_policy(NULL, ...).';
  END IF;
  DELETE FROM tforge.checkpoint_policies p WHERE p.training_run_id = clear_checkpoint_policy.training_run_id;
  RETURN FOUND;
END
$$;
COMMENT ON FUNCTION tforge.clear_checkpoint_policy(text) IS
  'removes a run''s own GC policy so the default applies to it again; true when there was one';

CREATE FUNCTION tforge.checkpoint_policy(training_run_id text) RETURNS tforge.checkpoint_policies
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT p.* FROM tforge.checkpoint_policies p
   WHERE p.training_run_id = $1 OR p.training_run_id IS NULL
   ORDER BY p.training_run_id NULLS LAST
   LIMIT 1
$$;
COMMENT ON FUNCTION tforge.checkpoint_policy(text) IS
  'the GC policy that applies to a run: its own row, else the default row (training_run_id NULL)';

CREATE FUNCTION tforge.checkpoint_gc(training_run_id text DEFAULT NULL) RETURNS SETOF text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run text;
  pol tforge.checkpoint_policies;
  removed bigint;
BEGIN
  FOR run IN
    SELECT checkpoint_gc.training_run_id WHERE checkpoint_gc.training_run_id IS NOT NULL
    UNION ALL
    SELECT DISTINCT c.training_run_id FROM tforge.checkpoints c
     WHERE checkpoint_gc.training_run_id IS NULL
       AND c.state OPERATOR(pg_catalog.<>) 'deleted'::tforge.checkpoint_state
    ORDER BY 1
  LOOP
    PERFORM tforge._lock_checkpoint_run(run, 'gc');
    pol := tforge.checkpoint_policy(run);
    IF pol.keep_best_n IS NULL THEN
      RAISE EXCEPTION 'the default checkpoint policy is missing' USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- The GC rule (issue 14), statement by statement:
    --   live      the run's non-deleted checkpoints, newest_rank 1 = newest
    --             by (step, created_at, checkpoint_id) descending;
    --   latest    the newest complete one (as latest_checkpoint);
    --   best      keep_best_n complete ones with the best metric_key, ties
    --             to the newer; a checkpoint without the metric never counts;
    --   eligible  tforge.is_gc_eligible (protection, max_age, max count);
    --   kept      every survivor (live and not eligible) and all its ancestors;
    --   removed   eligible and not kept: marked deleted, ids returned
    --             unsorted (a sort would be the one n log n step).
    RETURN QUERY
      WITH live AS MATERIALIZED (
        -- the row spelled out: on Citus a whole-row reference would have
        -- the shard's row type, which is_gc_eligible does not take
        SELECT ROW(c.checkpoint_id, c.training_run_id, c.epoch, c.step, c.checkpoint_type, c.state,
                   c.size_bytes, c.created_at, c.parent_id, c.metrics, c.storage_path)::tforge.checkpoints AS c,
               c.checkpoint_id, c.state, c.metrics,
               pg_catalog.row_number() OVER (ORDER BY c.step DESC, c.created_at DESC, c.checkpoint_id DESC) AS newest_rank
          FROM tforge.checkpoints c
         WHERE c.training_run_id = run
           AND c.state OPERATOR(pg_catalog.<>) 'deleted'::tforge.checkpoint_state
      ),
      latest AS (
        SELECT l.checkpoint_id FROM live l
         WHERE l.state OPERATOR(pg_catalog.=) 'complete'::tforge.checkpoint_state
         ORDER BY l.newest_rank LIMIT 1
      ),
      best AS (
        SELECT l.checkpoint_id FROM live l
         WHERE pol.keep_best_n > 0 AND pol.metric_key IS NOT NULL
           AND l.state OPERATOR(pg_catalog.=) 'complete'::tforge.checkpoint_state
           AND l.metrics OPERATOR(pg_catalog.?) pol.metric_key
         ORDER BY CASE WHEN pol.metric_ascending THEN (l.metrics OPERATOR(pg_catalog.->) pol.metric_key)::numeric
                       ELSE OPERATOR(pg_catalog.-) (l.metrics OPERATOR(pg_catalog.->) pol.metric_key)::numeric END,
                  l.newest_rank
         LIMIT pol.keep_best_n
      ),
      judged AS MATERIALIZED (
        SELECT l.checkpoint_id, l.newest_rank,
               tforge.is_gc_eligible(l.c, pol,
                                     l.checkpoint_id IN (SELECT latest.checkpoint_id FROM latest),
                                     l.checkpoint_id IN (SELECT best.checkpoint_id FROM best),
                                     l.newest_rank, pg_catalog.now()) AS eligible
          FROM live l
      ),
      -- (through the run's row, so that on Citus the walk runs in the
      -- run's shard query, on the node that holds the run)
      kept AS (
        SELECT k FROM tforge.checkpoint_runs r,
               LATERAL tforge._checkpoint_ancestors(r.training_run_id,
                 ARRAY(SELECT j.checkpoint_id FROM judged j WHERE NOT j.eligible)) k
         WHERE r.training_run_id = run
      ),
      gone AS (
        UPDATE tforge.checkpoints c SET state = 'deleted'
          FROM judged j
         WHERE c.training_run_id = run AND c.checkpoint_id = j.checkpoint_id AND j.eligible
           AND c.state OPERATOR(pg_catalog.<>) 'deleted'::tforge.checkpoint_state
           AND j.checkpoint_id NOT IN (SELECT kept.k FROM kept)
        RETURNING c.checkpoint_id
      )
      SELECT gone.checkpoint_id FROM gone;
    GET DIAGNOSTICS removed = ROW_COUNT;
    UPDATE tforge.checkpoint_runs r SET gc_removed = r.gc_removed + removed WHERE r.training_run_id = run;
  END LOOP;
END
$$;
COMMENT ON FUNCTION tforge.checkpoint_gc(text) IS
  'garbage-collects one run''s checkpoints (NULL: every run) under its policy: protected are the latest complete, the keep_best_n best complete by metric_key, those at a step multiple of keep_every_n_steps and those creating; an unprotected non-deleted checkpoint is eligible when older than max_age or not among the max_checkpoints_per_run newest; eligible ones are marked deleted unless a kept checkpoint needs them (ancestors of every kept checkpoint are kept); returns the ids marked, in no particular order (linear in the run: no sort)';

-- ---------------------------------------------------------------- privileges

-- Workers create, complete and flag checkpoints; GC, delete and policies are
-- for tforge_admin (99_privileges grants every volatile function to it). The
-- writers are SECURITY DEFINER, so no role below the owner writes the tables
-- directly; readers see the tables through 99_privileges' SELECT grant.
GRANT EXECUTE ON FUNCTION tforge.create_checkpoint(text, integer, bigint, tforge.checkpoint_type, jsonb, text) TO tforge_worker;
GRANT EXECUTE ON FUNCTION tforge.complete_checkpoint(text, bigint, text) TO tforge_worker;
GRANT EXECUTE ON FUNCTION tforge.mark_checkpoint_corrupted(text) TO tforge_worker;
GRANT EXECUTE ON FUNCTION tforge.complete_checkpoint(text, text, bigint, text) TO tforge_worker;
GRANT EXECUTE ON FUNCTION tforge.mark_checkpoint_corrupted(text, text) TO tforge_worker;
