-- tforge._csv_field is a SQL function the planner inlines (into
-- export_profiles), so it carries no SET search_path and names its operator
-- OPERATOR(pg_catalog.||). Body as in sql/install/30_learning.sql.

CREATE OR REPLACE FUNCTION tforge._csv_field(value text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN $1 IS NULL THEN '' ELSE '"' OPERATOR(pg_catalog.||) pg_catalog.replace($1, '"', '""') OPERATOR(pg_catalog.||) '"' END
$$;
-- 0.1.0 -> 0.2.0: changes to the learning component's 0.1.0 objects
-- (install fragment sql/install/30_learning.sql holds the same definitions).

-- profiles gets a primary key (issue 13), so that a publication FOR ALL
-- TABLES can ship the updates every completion makes. Existing rows are
-- numbered by the identity.
ALTER TABLE tforge.profiles ADD COLUMN profile_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
SELECT pg_catalog.pg_extension_config_dump('tforge.profiles_profile_id_seq', '');
COMMENT ON COLUMN tforge.profiles.profile_id IS 'surrogate key (the replica identity); a profile is named by (task_type, task_key)';

-- prediction_archive has no key: its whole row is its replica identity, so a
-- FOR ALL TABLES publication does not refuse DELETEs from it (as in the
-- install fragment).
ALTER TABLE tforge.prediction_archive REPLICA IDENTITY FULL;

-- Runtime learning, 0.1.0 -> 0.2.0 (issue 15): the kernel-mode strategies'
-- ring of recent completions, calibrated bounds and the pooled choice of
-- adaptive (new columns at the end of tforge.profiles, as in the install
-- script), estimate's upper_s and its coverage and cpu parameters, and the
-- new columns in profile export and import.

ALTER TABLE tforge.profiles
  ADD COLUMN recent float8[],
  ADD COLUMN calibration float8[],
  ADD COLUMN pooled float8[];
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

ALTER TYPE tforge.runtime_estimate ADD ATTRIBUTE upper_s float8;
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

DROP FUNCTION tforge.estimate(text, text, text, float8);
-- In C (estimate.c): two index probes and one strategy's arithmetic, no
-- statement, so an estimate costs a few microseconds whatever the history.
CREATE FUNCTION tforge.estimate(task_type text, task_key text DEFAULT NULL, strategy text DEFAULT NULL,
                                bound float8 DEFAULT NULL, coverage float8 DEFAULT NULL,
                                processors float8 DEFAULT NULL)
  RETURNS tforge.runtime_estimate
  AS 'MODULE_PATHNAME', 'tforge_estimate' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge.estimate(text, text, text, float8, float8, float8) IS
  'predicted runtime (s, capped by bound, the requested time), cpu (cores), memory and GPU memory (bytes) of a task, with confidence in [0,1]; from the key''s profile, else the type''s (source key/type), else tau (source default); processors: the task''s (its resources.cpu; the kernel strategies weigh past runs on as many higher); with coverage in (0,1), upper_s: a runtime the profile''s past runs (too few: the type''s) stayed under with that probability, capped by bound';

CREATE OR REPLACE FUNCTION tforge.export_profiles(format text DEFAULT 'json') RETURNS text
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

CREATE OR REPLACE FUNCTION tforge.import_profiles(data text, format text DEFAULT 'json') RETURNS bigint
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

DROP FUNCTION tforge._import_csv_row(text[], bigint);

-- purge_tasks and expire_profiles compute their cutoff with the new
-- tforge._cutoff: a NULL older_than is 22004 for purge_tasks (0.1.0 deleted
-- nothing), a negative one 22023 (0.1.0's purge_tasks deleted every finished
-- task), one beyond the timestamp range 22003 (0.1.0: 22008 from the
-- subtraction).
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

CREATE OR REPLACE FUNCTION tforge.expire_profiles(older_than interval DEFAULT NULL) RETURNS bigint
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

CREATE OR REPLACE FUNCTION tforge.purge_tasks(older_than interval DEFAULT '7 days') RETURNS bigint
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
