-- The queue's per-cycle storage choices (bench/queue): a profile that every
-- completion rewrites stays in its row, every column that compresses compressed;
-- the GPU release trigger (WHEN on the GPU memory only, the rest tested in
-- C) frees a block exactly when a task that asked for GPU memory leaves
-- running, and never otherwise.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
SET client_min_messages = warning;
BEGIN;
SELECT plan(17);

-- One cycle of a task of type t with a reported runtime.
CREATE FUNCTION pg_temp.cycle(t text, runtime float8) RETURNS text LANGUAGE plpgsql AS $$
DECLARE id bigint; tok bigint;
BEGIN
  id := tforge.submit_task(t);
  SELECT c.claim_token INTO tok FROM tforge.claim_tasks('w') c WHERE c.task_id = id;
  RETURN (tforge.complete_task(id, 'w', jsonb_build_object('runtime_s', runtime), tok)).status;
END $$;

-- Profiles ------------------------------------------------------------------
-- 200 completions: the ring of recent runs is full (kernel_window 128,
-- three values a run), which makes the row about 5 kB before compression.
SELECT is(count(*) FILTER (WHERE pg_temp.cycle('cpu-light', 4 + (i % 7) * 0.25) = 'done'), 200::bigint,
          '200 completions of one type')
  FROM generate_series(1, 200) i;
CREATE FUNCTION pg_temp.toast_rows() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s',
                 (SELECT reltoastrelid::regclass FROM pg_class WHERE oid = 'tforge.profiles'::regclass)) INTO n;
  RETURN n;
END $$;
-- A key profile whose key is longer than a TOAST pointer (64 hex digits,
-- which do not compress), after 200 runs of the same 4.5 s: its rings hold
-- repeated values.
SELECT tforge.define_task_type('toast-probe', 10) IS NOT NULL AS defined \gset
DO $$
BEGIN
  FOR i IN 1..200 LOOP
    PERFORM tforge._profile_record('toast-probe', md5('a') || md5('b'), 4.5, NULL, NULL, NULL, NULL);
  END LOOP;
END $$;
SELECT is((SELECT completions FROM tforge.profiles WHERE task_type = 'toast-probe' AND task_key = md5('a') || md5('b')),
          200::bigint, 'a profile with a long key recorded 200 runs');
SELECT isnt((SELECT pg_column_compression(p.calibration) FROM tforge.profiles p
              WHERE task_type = 'toast-probe' AND task_key IS NOT NULL), NULL,
            'its calibration ring of repeated values is compressed too, not only the biggest column');
SELECT cmp_ok((SELECT pg_column_size(p.*) FROM tforge.profiles p WHERE task_type = 'toast-probe' AND task_key IS NOT NULL),
              '<', 1024, 'so that the row of a compressible profile is under 1 kB (8 versions a page)');
SELECT is(pg_temp.toast_rows(), 0::bigint,
          'no profile value is stored out of line (a rewrite never writes the TOAST table)');
SELECT cmp_ok((SELECT pg_column_size(p.*) FROM tforge.profiles p WHERE task_type = 'cpu-light' AND task_key IS NULL),
              '<=', 4080, 'the full profile is compressed in its row to half a page at most (room for a HOT update)');
SELECT cmp_ok((SELECT array_length(p.recent, 1) * 8 FROM tforge.profiles p WHERE task_type = 'cpu-light' AND task_key IS NULL),
              '>', 2000, 'and it does hold a ring of over 2 kB uncompressed');
SELECT is((SELECT pg_column_compression(p.recent) FROM tforge.profiles p WHERE task_type = 'cpu-light' AND task_key IS NULL),
          CASE WHEN 'lz4' = ANY ((SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression')::text[])
               THEN 'lz4' ELSE 'pglz' END,
          'the ring is compressed with lz4 where the server has it');

-- Submit's estimate, kept per backend ------------------------------------------
-- (queue.c, EstimateProfileKept): reusing it must be invisible. A fresh
-- computation is forced by changing tforge.ema_lambda (part of the key) and
-- setting it back.
CREATE FUNCTION pg_temp.predicted() RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE id bigint := tforge.submit_task('cpu-light');
BEGIN
  RETURN (SELECT k.predictions FROM tforge.tasks k WHERE k.task_id = id);
END $$;
CREATE FUNCTION pg_temp.predicted_fresh() RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE p float8[];
BEGIN
  PERFORM set_config('tforge.ema_lambda', '0.35', true);
  PERFORM pg_temp.predicted();
  PERFORM set_config('tforge.ema_lambda', '0.2', true);
  p := pg_temp.predicted();
  RETURN p;
END $$;
SELECT set_config('tforge.ema_lambda', '0.2', true) AS lambda \gset
CREATE TEMP TABLE est AS SELECT pg_temp.predicted() AS first, pg_temp.predicted() AS second;
SELECT is((SELECT second FROM est), (SELECT first FROM est), 'a second submit of the type predicts the same');
SELECT is(pg_temp.predicted_fresh(), (SELECT first FROM est), 'and the same as a fresh computation');
SELECT set_config('tforge.ema_lambda', '0.35', true) AS lambda \gset
SELECT isnt(pg_temp.predicted(), (SELECT first FROM est), 'tforge.ema_lambda is an input: another lambda, another estimate');
SELECT set_config('tforge.ema_lambda', '0.2', true) AS lambda \gset
-- a completion recorded in the profile (200 runs: below profile_sample_after) changes it
SELECT count(*) AS claimed FROM tforge.claim_tasks('x', 1000) \gset
SELECT is(pg_temp.cycle('cpu-light', 400), 'done', 'a completion far from the others');
UPDATE est SET second = pg_temp.predicted();
SELECT ok((SELECT first <> second FROM est) AND (SELECT second FROM est) = pg_temp.predicted_fresh(),
          'after it the estimate changes, and equals a fresh computation');

-- GPU release -----------------------------------------------------------------
SELECT 1 AS added FROM tforge.gpu_add_device('r0', 8192) \gset
SELECT tforge.submit_task('gpu-inference', resources => ROW(1, NULL, 1, 3000)::tforge.resources) AS gpu \gset
SELECT tforge.submit_task('gpu-inference', resources => ROW(1, NULL, NULL, NULL)::tforge.resources) AS cpu \gset
SELECT is((SELECT count(*) FROM tforge.claim_tasks('w', 2, gpu_device => 'r0')), 2::bigint, 'both claimed on the device');
-- running -> running (a direct UPDATE that names status) keeps the block
UPDATE tforge.tasks SET status = status WHERE task_id IN (:gpu, :cpu);
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE tensor_id = 'task:' || :gpu), 1::bigint,
          'an update that leaves the task running keeps its block');
SELECT is((tforge.complete_task(:cpu, 'w')).status, 'done'::tforge.task_status,
          'a task with resources but no GPU memory completes (nothing to free)');
SELECT 1 AS completed FROM tforge.complete_task(:gpu, 'w') \gset
SELECT is((SELECT count(*) FROM tforge.gpu_blocks WHERE status <> 'free'), 0::bigint,
          'completing the GPU task frees its block');

SELECT * FROM finish();
ROLLBACK;
