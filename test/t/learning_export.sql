-- Profiles export and import: json and csv round-trip exactly; a malformed
-- or newer-version document fails with a clear error and changes nothing;
-- rolling_stats round-trips through COPY BINARY.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(25);

-- Profiles with awkward keys (quote, comma, newline, empty), values with no
-- short decimal form, missing usage, a type-level row.
SELECT tforge._profile_record('cpu-light', k, r / 3.0, CASE WHEN r > 2 THEN r / 7.0 END, r * 1e9, NULL, NULL)
  FROM unnest(ARRAY['plain', 'we"ird,key' || E'\n' || 'x', '']) k, generate_series(1, 5) r;
SELECT tforge._profile_record('gpu-training', NULL, 0.1 * r, NULL, NULL, 1e10 + r, 100)
  FROM generate_series(1, 70) r;
CREATE TEMP TABLE before AS SELECT (to_jsonb(p) - 'profile_id')::text AS r FROM tforge.profiles p;  -- the surrogate key is not exported
CREATE FUNCTION pg_temp.same() RETURNS boolean LANGUAGE sql AS $$
  SELECT (SELECT array_agg(r ORDER BY r) FROM before) = (SELECT array_agg((to_jsonb(p) - 'profile_id')::text ORDER BY (to_jsonb(p) - 'profile_id')::text) FROM tforge.profiles p)
$$;
SELECT is((SELECT count(*) FROM before), 5::bigint, 'five profiles to export: three keys and the type of cpu-light, the type of gpu-training');

-- json
SELECT tforge.export_profiles('json') AS doc \gset
SELECT is((:'doc'::jsonb ->> 'version'), '1', 'json carries its schema version');
DELETE FROM tforge.profiles;
SELECT is(tforge.import_profiles(:'doc', 'json'), 5::bigint, 'json import loads five profiles');
SELECT ok(pg_temp.same(), 'json round trip is exact (every statistic, scoreboard and timestamp)');
SELECT is(tforge.import_profiles(:'doc'), 5::bigint, 'importing again replaces, json is the default format');
SELECT ok(pg_temp.same(), 'still exact after a second import');

-- csv
SELECT tforge.export_profiles('csv') AS csv \gset
SELECT is(split_part(:'csv', E'\n', 1),
          'version,task_type,task_key,runtime,cpu,memory,gpu_memory,scores,completions,created_at,updated_at,recent,calibration,pooled', 'csv header');
DELETE FROM tforge.profiles;
SELECT is(tforge.import_profiles(:'csv', 'csv'), 5::bigint, 'csv import loads five profiles');
SELECT ok(pg_temp.same(), 'csv round trip is exact');
SELECT is(tforge.export_profiles('csv'), :'csv', 'csv export of the import is byte-identical');

-- Bad documents change nothing.
SELECT throws_ok($$ SELECT tforge.import_profiles('{"format": "tforge-profiles", "version": 1, "profiles": [', 'json') $$,
                 '22P02', NULL, 'truncated json refused');
SELECT throws_ok($$ SELECT tforge.import_profiles('{"format": "tforge-profiles", "version": 2, "profiles": []}') $$,
                 '22023', 'profile document version 2 is newer than the supported version 1', 'newer json version refused');
SELECT throws_ok($$ SELECT tforge.import_profiles('{"format": "tforge-profiles", "version": "x", "profiles": []}') $$,
                 '22P02', NULL, 'non-numeric version refused');
SELECT throws_ok($$ SELECT tforge.import_profiles('{"format": "something-else", "version": 1, "profiles": []}') $$,
                 '22P02', NULL, 'foreign json document refused');
SELECT throws_ok(format($$ SELECT tforge.import_profiles(%L) $$,
                        replace(:'doc', '"task_type": "gpu-training"', '"task_type": "no-such-type"')),
                 '42704', NULL, 'profile of an unknown task type refused');
SELECT throws_ok(format($$ SELECT tforge.import_profiles(%L) $$,
                        regexp_replace(:'doc', '"runtime": "\(70,', '"runtime": "(-70,')),
                 '22P02', NULL, 'malformed statistics refused');
SELECT throws_ok(format($$ SELECT tforge.import_profiles(%L, 'csv') $$, regexp_replace(:'csv', '\n1,', E'\n2,')),
                 '22023', 'profile document version 2 is newer than the supported version 1', 'newer csv version refused');
SELECT throws_ok(format($$ SELECT tforge.import_profiles(%L, 'csv') $$, regexp_replace(:'csv', '^[^\n]*\n', '')),
                 '22P02', NULL, 'csv without its header refused');
SELECT throws_ok(format($$ SELECT tforge.import_profiles(%L, 'csv') $$, :'csv' || E'1,"cpu-light"\n'),
                 '22P02', 'invalid profile document: CSV record 7 has 2 fields, expected 14', 'short csv record refused');
SELECT throws_ok(format($$ SELECT tforge.import_profiles(%L, 'csv') $$, :'csv' || E'1,"cpu-light,\n'),
                 '22P02', NULL, 'unterminated csv quote refused');
SELECT throws_ok($$ SELECT tforge.import_profiles(NULL) $$, '22004', 'data must not be NULL', 'NULL document refused');
SELECT throws_ok($$ SELECT tforge.import_profiles('x', 'xml') $$, '22023', 'unknown profile import format "xml"', 'unknown format refused');
SELECT throws_ok($$ SELECT tforge.export_profiles('xml') $$, '22023', 'unknown profile export format "xml"', 'unknown export format refused');
SELECT ok(pg_temp.same(), 'failed imports changed nothing');

-- COPY BINARY round trip of the type (send/recv).
CREATE TEMP TABLE bin_in AS SELECT runtime FROM tforge.profiles WHERE runtime IS NOT NULL;
CREATE TEMP TABLE bin_out (runtime tforge.rolling_stats);
SELECT '/tmp/tforge_rolling_stats_' || pg_backend_pid() || '.bin' AS binfile \gset
COPY bin_in TO :'binfile' (FORMAT binary);
COPY bin_out FROM :'binfile' (FORMAT binary);
SELECT 'rm -f ' || :'binfile' AS rmcmd \gset
COPY (SELECT 1 WHERE false) TO PROGRAM :'rmcmd';  -- no rows: rm never reads its input, so nothing is written into a closed pipe
SELECT is((SELECT array_agg(runtime::text ORDER BY runtime::text) FROM bin_out),
          (SELECT array_agg(runtime::text ORDER BY runtime::text) FROM bin_in), 'COPY BINARY round-trips rolling_stats exactly');

SELECT * FROM finish();
ROLLBACK;
