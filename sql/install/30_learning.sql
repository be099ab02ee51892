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
  -- A primary key, so that a publication FOR ALL TABLES can ship the
  -- updates every completion makes (a replica identity needs one, and
  -- (task_type, task_key) cannot be it: task_key is NULL for a type's
  -- profile). After the 0.1.0 columns, as the upgrade from 0.1.0 adds it.
  profile_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- runtime learning II (issue 15), added by the upgrade after profile_id
  recent      float8[],
  calibration float8[],
  pooled      float8[],
  CONSTRAINT profiles_type_key UNIQUE NULLS NOT DISTINCT (task_type, task_key)
) WITH (fillfactor = 50);  -- rewritten by every completion: room on the page keeps the updates HOT
COMMENT ON TABLE tforge.profiles IS
  'learned profile per task type (task_key NULL) and per task key: rolling statistics of runtime (s), cpu (s), peak memory and GPU memory (bytes), and the strategies'' recent accuracy';
COMMENT ON COLUMN tforge.profiles.scores IS
  'scoreboard: {completions scored, recent accuracy of each candidate strategy in tforge.estimation_strategies() order}';
-- Compressed in the row, never out of line below ~8 kB: every submit and
-- completion reads the rings, and a TOAST fetch would cost more than the
-- estimate.
-- Every column of a profile stays in its row (a completion rewrites the row,
-- an estimate reads it; an out-of-line value costs a TOAST insert and a
-- TOAST index probe each time: the scoreboard, EXTENDED in 0.1.0, was moved
-- out of line as soon as the rings made the row long). Every completion
-- rewrites the rings and the statistics: lz4 compresses them ten times faster
-- than pglz, whose compression cost more than the learning itself
-- (callgrind of complete_task). A server built without lz4 keeps pglz.
ALTER TABLE tforge.profiles ALTER COLUMN recent SET STORAGE MAIN, ALTER COLUMN calibration SET STORAGE MAIN,
  ALTER COLUMN pooled SET STORAGE MAIN, ALTER COLUMN scores SET STORAGE MAIN;
DO $$
BEGIN
  ALTER TABLE tforge.profiles ALTER COLUMN recent SET COMPRESSION lz4,
    ALTER COLUMN calibration SET COMPRESSION lz4, ALTER COLUMN pooled SET COMPRESSION lz4,
    ALTER COLUMN scores SET COMPRESSION lz4, ALTER COLUMN runtime SET COMPRESSION lz4,
    ALTER COLUMN cpu SET COMPRESSION lz4, ALTER COLUMN memory SET COMPRESSION lz4,
    ALTER COLUMN gpu_memory SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END
$$;
COMMENT ON COLUMN tforge.profiles.recent IS
  'the last tforge.kernel_window completions for the kernel-mode strategies, oldest first, as triples: runtime_s, requested seconds (0: none), processors (0: none)';
COMMENT ON COLUMN tforge.profiles.calibration IS
  'ln(actual / predicted runtime) of the last tforge.kernel_window completions, adaptive''s prediction from the profile as it stood: the calibrated bound (upper_s) is a conformal quantile of these';
COMMENT ON COLUMN tforge.profiles.pooled IS
  'on a type''s profile: the scoreboard adaptive chooses by, every strategy''s accuracy on every run of the type predicted from the profile that predicted it, long memory (newest 0.005)';
COMMENT ON COLUMN tforge.profiles.completions IS
  'completions seen, including those sampling skipped (tforge.profile_sample_after/_every)';
-- How a profile row is stored. Every completion rewrites its profiles, and
-- with kernel_window 128 a row is about 5 kB before compression (the ring
-- alone 3 kB), past the 2 kB at which PostgreSQL compresses a row. Left at
-- the defaults, each rewrite spent more in the TOAST code than in all of
-- complete_task's own work (pglz on the ring, a futile pglz on the
-- calibration ring, and scores, a plain EXTENDED column, moved out of line
-- into the TOAST table and back on every completion). So: every column
-- that can grow is MAIN (compressed in the row, out of line only past
-- ~8 kB), and so are the names (a task key longer than a TOAST pointer,
-- EXTENDED, went out of line before any MAIN column was compressed); a row
-- the toaster sees (over 2 kB: a completion that rewrote the rings) has
-- every column compressed that compresses (toast_tuple_target 128: the
-- toaster stops once the row fits the target, biggest column first, and at
-- 4080 it stopped after the ring, leaving e.g. a calibration ring of
-- repeated values or a GPU memory profile of zeros 1 kB raw), so that more
-- versions of a profile fit a page (HOT updates, no new index entries, no
-- relation extension: bench/queue's profile went from 2005 to 315 bytes,
-- from 2,580 pages to 66 after 84K-113K completions); and compression is
-- lz4 where the server has it (about ten times cheaper than pglz here, and
-- quick to give up on data that does not compress: no slower on random
-- runtimes, measured).
ALTER TABLE tforge.profiles ALTER COLUMN scores SET STORAGE MAIN;
ALTER TABLE tforge.profiles ALTER COLUMN task_type SET STORAGE MAIN, ALTER COLUMN task_key SET STORAGE MAIN;
ALTER TABLE tforge.profiles SET (toast_tuple_target = 128);
DO $lz4$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_settings s
              WHERE s.name OPERATOR(pg_catalog.=) 'default_toast_compression'
                AND 'lz4'::text OPERATOR(pg_catalog.=) ANY (s.enumvals)) THEN
    ALTER TABLE tforge.profiles
      ALTER COLUMN runtime SET COMPRESSION lz4, ALTER COLUMN cpu SET COMPRESSION lz4,
      ALTER COLUMN memory SET COMPRESSION lz4, ALTER COLUMN gpu_memory SET COMPRESSION lz4,
      ALTER COLUMN scores SET COMPRESSION lz4, ALTER COLUMN recent SET COMPRESSION lz4,
      ALTER COLUMN calibration SET COMPRESSION lz4, ALTER COLUMN pooled SET COMPRESSION lz4;
  END IF;
END
$lz4$;
-- No index on updated_at: every completion rewrites its profiles, and an
-- unindexed updated_at keeps that a HOT update; tforge.expire_profiles()
-- scans the table, one row per task type and key, once in a while.
SELECT pg_catalog.pg_extension_config_dump('tforge.profiles', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.profiles_profile_id_seq', '');
COMMENT ON COLUMN tforge.profiles.profile_id IS 'surrogate key (the replica identity); a profile is named by (task_type, task_key)';

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

-- now() - older_than for the maintenance functions (purge_tasks,
-- expire_profiles), with DESIGN.md's codes: 22004 for NULL, 22023 for a
-- negative interval, 22003 when the cutoff leaves the timestamp range
-- (instead of the subtraction's 22008).
CREATE FUNCTION tforge._cutoff(older_than interval) RETURNS timestamptz
  LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
  IF older_than IS NULL THEN
    RAISE EXCEPTION 'older_than must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF older_than < interval '0' THEN
    RAISE EXCEPTION 'older_than must not be negative, got %', older_than
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN pg_catalog.now() - older_than;
EXCEPTION WHEN datetime_field_overflow THEN
  RAISE EXCEPTION 'older_than is out of range, got %', older_than
    USING ERRCODE = 'numeric_value_out_of_range';
END
$$;
COMMENT ON FUNCTION tforge._cutoff(interval) IS
  'internal: now() - older_than for purge_tasks and expire_profiles (22004 NULL, 22023 negative, 22003 out of range)';

CREATE FUNCTION tforge.expire_profiles(older_than interval DEFAULT NULL) RETURNS bigint
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ttl_s integer := tforge._setting('tforge.profile_ttl')::integer;
  n bigint;
BEGIN
  IF older_than IS NULL THEN
    IF ttl_s = 0 THEN
      RETURN 0;
    END IF;
    older_than := pg_catalog.make_interval(secs => ttl_s);
  END IF;
  DELETE FROM tforge.profiles p WHERE p.updated_at < tforge._cutoff(older_than);
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
  chosen           text,
  upper_s          float8
);
COMMENT ON TYPE tforge.runtime_estimate IS
  'an estimate: runtime (s), cpu (cores), memory and GPU memory (bytes), confidence in [0,1], the strategy asked for, the profile used (key, type or default), the candidate chosen, and the calibrated bound for the coverage asked (s)';

CREATE FUNCTION tforge._kernel_ring_add(ring float8[], runtime_s float8, requested_s float8,
                                        processors float8) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'kernel_ring_add' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._kernel_ring_add(float8[], float8, float8, float8) IS
  'internal: a ring of recent completions with one more (kept to tforge.kernel_window); a runtime not in (0, 1e18] changes nothing';

CREATE FUNCTION tforge._kernel_ring_check(ring float8[]) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'kernel_ring_check' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._kernel_ring_check(float8[]) IS
  'internal: the ring, when it is a valid ring of recent completions (triples: runtime_s, requested s, processors), else 22023';
CREATE FUNCTION tforge._calibration_check(ratios float8[]) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'calibration_check' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._calibration_check(float8[]) IS
  'internal: the calibration ratios, when valid (ln actual/predicted within [-50, 50], no NULLs), else 22023';

-- In C (estimate.c): two index probes and one strategy's arithmetic, no
-- statement, so an estimate costs a few microseconds whatever the history.
CREATE FUNCTION tforge.estimate(task_type text, task_key text DEFAULT NULL, strategy text DEFAULT NULL,
                                bound float8 DEFAULT NULL, coverage float8 DEFAULT NULL,
                                processors float8 DEFAULT NULL)
  RETURNS tforge.runtime_estimate
  AS 'MODULE_PATHNAME', 'tforge_estimate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.estimate(text, text, text, float8, float8, float8) IS
  'predicted runtime (s, capped by bound, the requested time), cpu (cores), memory and GPU memory (bytes) of a task, with confidence in [0,1]; from the key''s profile, else the type''s (source key/type), else tau (source default); processors: the task''s (its resources.cpu; the kernel strategies weigh past runs on as many higher); with coverage in (0,1), upper_s: a runtime the profile''s past runs (too few: the type''s) stayed under with that probability, capped by bound';

-- What every strategy predicted at submit lives in the task's own row
-- (columns declared with tforge.tasks, where 0.1.0 added them after its last
-- column): complete_task rewrites that row anyway, so scoring costs no
-- extra write.
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
-- No column is a key (an admin may archive a task twice), so the whole row
-- identifies it to logical replication: without a replica identity a
-- FOR ALL TABLES publication refuses every DELETE from the table.
ALTER TABLE tforge.prediction_archive REPLICA IDENTITY FULL;
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
  cutoff timestamptz := tforge._cutoff(older_than);
  n bigint;
BEGIN
  WITH gone AS (
    DELETE FROM tforge.tasks k
     WHERE k.status IN ('done', 'dead') AND k.completed_at < cutoff
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
  SELECT CASE WHEN $1 IS NULL THEN '' ELSE '"' OPERATOR(pg_catalog.||) pg_catalog.replace($1, '"', '""') OPERATOR(pg_catalog.||) '"' END
$$;
COMMENT ON FUNCTION tforge._csv_field(text) IS 'internal: a CSV field, quoted; NULL as an empty unquoted field';

CREATE FUNCTION tforge.export_profiles(format text DEFAULT 'json') RETURNS text
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF format IS NULL THEN
    RAISE EXCEPTION 'format must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Use json or csv.';
  END IF;
  IF format = 'json' THEN
    RETURN pg_catalog.jsonb_build_object(
      'format', 'tforge-profiles', 'version', 1,
      'profiles', coalesce((
        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                 'task_type', p.task_type, 'task_key', p.task_key,
                 'runtime', p.runtime::text, 'cpu', p.cpu::text, 'memory', p.memory::text,
                 'gpu_memory', p.gpu_memory::text, 'scores', p.scores::text,
                 'completions', p.completions,
                 'created_at', tforge._iso_utc(p.created_at), 'updated_at', tforge._iso_utc(p.updated_at),
                 'recent', p.recent::text, 'calibration', p.calibration::text, 'pooled', p.pooled::text)
                 ORDER BY p.task_type, p.task_key NULLS FIRST)
          FROM tforge.profiles p), '[]'::jsonb))::text;
  ELSIF format = 'csv' THEN
    RETURN 'version,task_type,task_key,runtime,cpu,memory,gpu_memory,scores,completions,created_at,updated_at,recent,calibration,pooled' || E'\n' ||
      coalesce((
        SELECT pg_catalog.string_agg(pg_catalog.concat_ws(',', '1',
                 tforge._csv_field(p.task_type), tforge._csv_field(p.task_key),
                 tforge._csv_field(p.runtime::text), tforge._csv_field(p.cpu::text),
                 tforge._csv_field(p.memory::text), tforge._csv_field(p.gpu_memory::text),
                 tforge._csv_field(p.scores::text), p.completions::text,
                 tforge._iso_utc(p.created_at), tforge._iso_utc(p.updated_at),
                 tforge._csv_field(p.recent::text), tforge._csv_field(p.calibration::text),
                 tforge._csv_field(p.pooled::text)) || E'\n', ''
                 ORDER BY p.task_type, p.task_key NULLS FIRST)
          FROM tforge.profiles p), '');
  END IF;
  RAISE EXCEPTION 'unknown profile export format "%"', format
    USING ERRCODE = 'invalid_parameter_value', HINT = 'Use json or csv.';
END
$$;
COMMENT ON FUNCTION tforge.export_profiles(text) IS
  'every profile as a versioned document (format json or csv, version 1; since tforge 0.2.0 with the recent, calibration and pooled columns) that tforge.import_profiles reads back exactly';

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
  IF data IS NULL OR format IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', CASE WHEN data IS NULL THEN 'data' ELSE 'format' END
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF pg_catalog.to_regclass('pg_temp.tforge_import') IS NULL THEN
    CREATE TEMP TABLE tforge_import (
    task_type text, task_key text, runtime text, cpu text, memory text, gpu_memory text,
      scores text, completions text, created_at text, updated_at text,
      recent text, calibration text, pooled text) ON COMMIT DROP;
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
           e ->> 'gpu_memory', e ->> 'scores', e ->> 'completions', e ->> 'created_at', e ->> 'updated_at',
           e ->> 'recent', e ->> 'calibration', e ->> 'pooled'
      FROM pg_catalog.jsonb_array_elements(doc -> 'profiles') e;
  ELSIF format = 'csv' THEN
    -- tforge 0.1.0 wrote the first eleven columns, 0.2.0 adds three
    IF (SELECT r FROM tforge._csv_records(data) r LIMIT 1) IS DISTINCT FROM
       '{version,task_type,task_key,runtime,cpu,memory,gpu_memory,scores,completions,created_at,updated_at}'::text[]
       AND (SELECT r FROM tforge._csv_records(data) r LIMIT 1) IS DISTINCT FROM
       '{version,task_type,task_key,runtime,cpu,memory,gpu_memory,scores,completions,created_at,updated_at,recent,calibration,pooled}'::text[] THEN
      RAISE EXCEPTION 'invalid profile document: missing the CSV header line'
        USING ERRCODE = 'invalid_text_representation',
              HINT = 'The first line is version,task_type,task_key,runtime,cpu,memory,gpu_memory,scores,completions,created_at,updated_at,recent,calibration,pooled.';
    END IF;
    INSERT INTO pg_temp.tforge_import
    SELECT r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14]
      FROM (SELECT r, row_number() OVER () AS line,
                   pg_catalog.cardinality((SELECT h FROM tforge._csv_records(data) h LIMIT 1)) AS fields
              FROM tforge._csv_records(data) r) x
     WHERE x.line > 1
       AND tforge._import_csv_row(x.r, x.line, x.fields);
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
                                    completions, created_at, updated_at, recent, calibration, pooled)
  SELECT i.task_type, i.task_key, i.runtime::tforge.rolling_stats, i.cpu::tforge.rolling_stats,
         i.memory::tforge.rolling_stats, i.gpu_memory::tforge.rolling_stats,
         CASE WHEN i.scores IS NOT NULL THEN tforge.rescore(NULL, i.scores::float8[], NULL) END,
         i.completions::bigint,
         i.created_at::timestamptz, i.updated_at::timestamptz,
         CASE WHEN i.recent IS NOT NULL THEN tforge._kernel_ring_check(i.recent::float8[]) END,
         CASE WHEN i.calibration IS NOT NULL THEN tforge._calibration_check(i.calibration::float8[]) END,
         CASE WHEN i.pooled IS NOT NULL THEN tforge.rescore(NULL, i.pooled::float8[], NULL) END
    FROM pg_temp.tforge_import i
  ON CONFLICT ON CONSTRAINT profiles_type_key DO UPDATE SET
    runtime = excluded.runtime, cpu = excluded.cpu, memory = excluded.memory,
    gpu_memory = excluded.gpu_memory, scores = excluded.scores, completions = excluded.completions,
    created_at = excluded.created_at, updated_at = excluded.updated_at,
    recent = excluded.recent, calibration = excluded.calibration, pooled = excluded.pooled;
  GET DIAGNOSTICS n = ROW_COUNT;
  TRUNCATE pg_temp.tforge_import;
  RETURN n;
END
$$;
COMMENT ON FUNCTION tforge.import_profiles(text, text) IS
  'loads a document of tforge.export_profiles (json or csv), replacing profiles with the same type and key; a malformed or newer-version document changes nothing; returns how many';

CREATE FUNCTION tforge._import_csv_row(r text[], line bigint, fields integer) RETURNS boolean
  LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF pg_catalog.cardinality(r) <> fields THEN
    RAISE EXCEPTION 'invalid profile document: CSV record % has % fields, expected %', line, pg_catalog.cardinality(r), fields
      USING ERRCODE = 'invalid_text_representation';
  END IF;
  PERFORM tforge._import_version(r[1]);
  RETURN true;
END
$$;
COMMENT ON FUNCTION tforge._import_csv_row(text[], bigint, integer) IS 'internal: checks the field count (that of the header) and version of one CSV profile record';

-- submit_task and complete_task are SECURITY DEFINER, so workers need no
-- privilege on the functions above; estimate and the views are read-only.
