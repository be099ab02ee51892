-- Registry operations: registration, lookups (the seed's get, get_latest,
-- list_versions, find_by_state, counts), validation with its percentiles,
-- selection, SLA, rollback scoring and retiring the previous production
-- version. Expected values are worked by hand in the comments or computed
-- by brute-force SQL.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
\set ON_ERROR_STOP true
BEGIN;
SELECT plan(83);
-- tforge's operators (semver =) without schema-qualifying each one.
SET search_path = public, tforge;

-- ------------------------------------------------------------ registration
SELECT is((tforge.register_model('resnet', '1.0.0', 'pytorch', '{1,3,224,224}', '{1,1000}', 102400,
                                 'sha256:aa', '{"team": "vision"}', 'ResNet-50')).state,
          'registered', 'a new version starts in state registered');
SELECT is((SELECT name FROM tforge.models WHERE model_id = 'resnet'), 'ResNet-50',
          'the first registration creates the model with its name');
SELECT row_eq($$SELECT model_id, version::text, framework, input_shape, output_shape, size_bytes, checksum, state::text, tags
                  FROM tforge.model_versions WHERE model_id = 'resnet'$$,
              ROW('resnet'::text, '1.0.0'::text, 'pytorch'::text, '{1,3,224,224}'::int[], '{1,1000}'::int[], 102400::bigint,
                  'sha256:aa'::text, 'registered'::text, '{"team": "vision"}'::jsonb),
              'every piece of metadata is stored');
SELECT throws_ok($$SELECT tforge.register_model('resnet', '1.0.0', 'pytorch')$$, '23505',
                 'version 1.0.0 of model "resnet" is already registered', 'a version is registered once');
SELECT lives_ok($$SELECT tforge.register_model('resnet', '2.0.0+build.1', 'pytorch')$$, 'build metadata is kept');
SELECT throws_ok($$SELECT tforge.register_model('resnet', '2.0.0+build.2', 'pytorch')$$, '23505',
                 'version 2.0.0+build.2 of model "resnet" is already registered',
                 'versions differing only in build metadata are the same version');
SELECT throws_ok($$SELECT tforge.register_model('', '1.0.0', 'pytorch')$$, '22023',
                 'model_id must not be empty', 'empty model_id');
SELECT throws_ok($$SELECT tforge.register_model('m', NULL, 'pytorch')$$, '22004',
                 'version must not be NULL', 'NULL version');
SELECT throws_ok($$SELECT tforge.register_model('m', '1.0.0', NULL)$$, '22004',
                 'framework must not be NULL', 'NULL framework');
SELECT throws_ok($$SELECT tforge.register_model('m', '1.0.0', '')$$, '22023',
                 'framework must not be empty', 'empty framework');
SELECT throws_ok($$SELECT tforge.register_model('m', '1.0.0', 'onnx', size_bytes => -1)$$, '22023',
                 'size_bytes must not be negative, got -1', 'negative size');
SELECT throws_ok($$SELECT tforge.register_model('m', '1.0.0', 'onnx', tags => '[1]')$$, '22023',
                 'tags must be a JSON object, got JSON array', 'tags must be an object');
SELECT throws_ok($$SELECT tforge.register_model('m', '1.0.0', 'onnx', '{1,-3}')$$, '22023',
                 'input shape must not contain a negative dimension, got "-3" (element 2)', 'negative dimension');
SELECT throws_ok($$SELECT tforge.register_model('m', '1.0.0', 'onnx', '{1}', '{{1,2},{3,4}}')$$, '22023',
                 'output shape must be a one-dimensional array, got 2 dimensions', 'two-dimensional shape');
SELECT throws_ok($$SELECT tforge.register_model('m', '1.0.0', 'onnx', '{1,NULL}')$$, '22023',
                 'input shape must not contain NULL (element 2)', 'NULL dimension');
SELECT throws_ok($$UPDATE tforge.model_versions SET input_shape = '{-1}' WHERE model_id = 'resnet'$$, '22023',
                 'input shape must not contain a negative dimension, got "-1" (element 1)',
                 'a direct UPDATE is held to the same shape rules');
SELECT is((SELECT count(*) FROM tforge.models WHERE model_id = 'm'), 0::bigint,
          'failed registrations leave no model behind');

-- ------------------------------------------------------------ lookups
-- SemVer precedence, by hand: 0.9.0 < 1.0.0 < 1.9.0 < 1.10.0-rc.1 < 1.10.0 < 2.0.0+build.1
SELECT tforge.register_model('resnet', v::tforge.semver, 'pytorch') FROM unnest(ARRAY['1.10.0', '0.9.0', '1.10.0-rc.1', '1.9.0']) v;
SELECT is(tforge.latest_version('resnet')::text, '2.0.0+build.1', 'latest_version by precedence');
SELECT is(ARRAY(SELECT tforge.list_versions('resnet')::text),
          ARRAY['0.9.0', '1.0.0', '1.9.0', '1.10.0-rc.1', '1.10.0', '2.0.0+build.1'],
          'list_versions in ascending precedence');
SELECT tforge.register_model('bert', '0.1.0', 'onnx');
SELECT tforge.register_model('bert', '0.1.1', 'onnx');
DELETE FROM tforge.model_versions WHERE model_id = 'bert' AND version = '0.1.1';
SELECT is(tforge.latest_version('bert')::text, '0.1.0', 'latest_version after a version was deleted');
SELECT throws_ok($$SELECT tforge.latest_version('nope')$$, '42704', 'model "nope" does not exist',
                 'latest_version of an unknown model');
SELECT throws_ok($$SELECT tforge.list_versions('nope')$$, '42704', 'model "nope" does not exist',
                 'list_versions of an unknown model');
SELECT is((tforge.get_model_version('resnet', '1.9.0')).framework, 'pytorch', 'get_model_version');
SELECT throws_ok($$SELECT tforge.get_model_version('resnet', '7.0.0')$$, '42704',
                 'version 7.0.0 of model "resnet" does not exist', 'get_model_version of an unknown version');
SELECT throws_ok($$SELECT tforge.get_model_version('nope', '1.0.0')$$, '42704',
                 'model "nope" does not exist', 'get_model_version of an unknown model');
-- 2 models, 6 + 1 versions.
SELECT is(tforge.model_count(), 2::bigint, 'model_count counts distinct models');
SELECT is(tforge.version_count(), 7::bigint, 'version_count counts all versions');
SELECT tforge.transition_model('resnet', '1.9.0', 'validating');
SELECT tforge.transition_model('bert', '0.1.0', 'validating');
SELECT is(ARRAY(SELECT model_id || ' ' || version::text FROM tforge.find_by_state('validating')),
          ARRAY['bert 0.1.0', 'resnet 1.9.0'], 'find_by_state, by model and version');
SELECT is(ARRAY(SELECT version::text FROM tforge.find_by_state('registered') WHERE model_id = 'resnet'),
          ARRAY['0.9.0', '1.0.0', '1.10.0-rc.1', '1.10.0', '2.0.0+build.1'], 'find_by_state in precedence order');
SELECT is(ARRAY(SELECT version::text FROM tforge.find_by_state('production')), '{}'::text[],
          'find_by_state with nothing in that state');
SELECT row_eq($$SELECT model_id, versions, latest_version::text FROM tforge.model_summary WHERE model_id = 'resnet'$$,
              ROW('resnet'::text, 6::bigint, '2.0.0+build.1'::text), 'model_summary');

-- ------------------------------------------------------------ validation
-- Latencies 1..100 ms: nearest rank p50 = value at rank ceil(0.50 * 100) = 50,
-- p99 = value at rank ceil(0.99 * 100) = 99.
SELECT tforge.transition_model('resnet', '1.0.0', 'validating');
SELECT row_eq($$SELECT passed, latency_p50_ms, latency_p99_ms, accuracy_score, errors, sample_count
                  FROM tforge.record_validation('resnet', '1.0.0', ARRAY(SELECT g::float8 FROM generate_series(100, 1, -1) g), 0.93)$$,
              ROW(true, 50::float8, 99::float8, 0.93::float8, '{}'::text[], 100),
              'record_validation computes p50 and p99 by nearest rank');
-- 7 samples: p50 rank ceil(3.5) = 4, p99 rank ceil(6.93) = 7.
SELECT row_eq($$SELECT latency_p50_ms, latency_p99_ms FROM tforge.record_validation('resnet', '1.0.0', '{9,1,8,2,7,3,6}', 0.9)$$,
              ROW(6::float8, 9::float8), 'percentiles of an odd number of samples');
SELECT row_eq($$SELECT latency_p50_ms, latency_p99_ms FROM tforge.record_validation('resnet', '1.0.0', '{42}', 0.9)$$,
              ROW(42::float8, 42::float8), 'percentiles of one sample');
SELECT is((tforge.record_validation('resnet', '1.0.0', '{1,2}', 0.9, '{"timeout on batch 3"}')).passed, false,
          'a validation with errors does not pass');
SELECT is((tforge.record_validation('resnet', '1.0.0', '{1,2,30}', 0.9, max_latency_ms => 20)).passed, false,
          'a validation over the latency limit does not pass');
SELECT is((tforge.record_validation('resnet', '1.0.0', '{1,2,3}', 0.9, max_latency_ms => 20, min_accuracy => 0.95)).passed, false,
          'a validation under the accuracy floor does not pass');
SELECT is((tforge.record_validation('resnet', '1.0.0', '{1,2,3}', 0.9, NULL, 3, 0.9)).passed, true,
          'a validation meeting both limits (inclusive) passes');
SELECT is((tforge.get_validation('resnet', '1.0.0')).latency_p99_ms, 3::float8, 'get_validation returns the latest run');
SELECT is((tforge.get_validation('resnet', '1.9.0')).validation_id, NULL, 'get_validation of a never-validated version');
SELECT throws_ok($$SELECT tforge.record_validation('resnet', '1.0.0', '{}', 0.9)$$, '22023',
                 'latencies must not be empty', 'no latencies');
SELECT throws_ok($$SELECT tforge.record_validation('resnet', '1.0.0', '{1,NaN}', 0.9)$$, '22023',
                 'latency must be a finite number >= 0, got "NaN" (element 2)', 'NaN latency');
SELECT throws_ok($$SELECT tforge.record_validation('resnet', '1.0.0', '{1,NULL}', 0.9)$$, '22023',
                 'latencies must not contain NULL (element 2)', 'NULL latency');
SELECT throws_ok($$SELECT tforge.record_validation('resnet', '1.0.0', '{1}', 1.5)$$, '22023',
                 'accuracy must be between 0 and 1, got "1.5"', 'accuracy above 1');
SELECT throws_ok($$SELECT tforge.record_validation('resnet', '1.0.0', '{1}', 0.5, '{NULL}')$$, '22023',
                 'errors must not contain NULL', 'NULL error text');
SELECT throws_ok($$SELECT tforge.record_validation('resnet', '8.0.0', '{1}', 0.5)$$, '42704',
                 'version 8.0.0 of model "resnet" does not exist', 'validation of an unknown version');

-- The percentile against a brute-force nearest rank over 300 random arrays
-- (1 to 60 samples, many ties) at 8 percentiles: the smallest value x with
-- count(values <= x) >= ceil(p * n / 100), the rank computed in numeric.
SELECT setseed(0.42);
CREATE TEMP TABLE samples AS
  SELECT a.id, ARRAY(SELECT (floor(random() * 20) + 0.5 * floor(random() * 2))::float8
                       FROM generate_series(1, 1 + (a.id * 7919) % 60) g WHERE a.id > 0) AS xs
    FROM generate_series(1, 300) a(id);
SELECT is((SELECT count(*) FROM samples s, unnest(ARRAY[0, 1, 25, 50, 90, 95, 99, 100]::float8[]) p
            WHERE tforge.latency_percentile(s.xs, p) IS DISTINCT FROM
                  (SELECT min(x) FROM unnest(s.xs) x
                    WHERE (SELECT count(*) FROM unnest(s.xs) y WHERE y <= x)
                          >= greatest(1, ceil(p::numeric * cardinality(s.xs) / 100)))),
          0::bigint, 'latency_percentile agrees with a brute-force nearest rank on 2400 cases');
SELECT is((SELECT count(*) FROM samples s, unnest(ARRAY[0.01, 0.25, 0.5, 0.9, 0.99, 1]::float8[]) f
            WHERE tforge.latency_percentile(s.xs, f * 100) IS DISTINCT FROM
                  (SELECT percentile_disc(f) WITHIN GROUP (ORDER BY x) FROM unnest(s.xs) x)),
          0::bigint, 'latency_percentile equals percentile_disc');

-- ------------------------------------------------------------ shape compatibility
-- Against a SQL reading of the definition on 500 random shape pairs (ranks
-- 0 to 4, dimensions 1 to 3 so that positions often agree):
-- (equal positions / larger rank of the inputs + the same for the outputs) / 2.
CREATE TEMP TABLE shapes AS
  SELECT i,
         ARRAY(SELECT 1 + floor(random() * 3)::int FROM generate_series(1, (i * 7) % 5) WHERE i > 0) AS ia,
         ARRAY(SELECT 1 + floor(random() * 3)::int FROM generate_series(1, (i * 11) % 4) WHERE i > 0) AS oa,
         ARRAY(SELECT 1 + floor(random() * 3)::int FROM generate_series(1, (i * 13) % 5) WHERE i > 0) AS ib,
         ARRAY(SELECT 1 + floor(random() * 3)::int FROM generate_series(1, (i * 3) % 4) WHERE i > 0) AS ob
    FROM generate_series(1, 500) i;
CREATE FUNCTION pg_temp.sim(a int[], b int[]) RETURNS float8 LANGUAGE sql AS $$
  SELECT CASE WHEN greatest(cardinality(a), cardinality(b)) = 0 THEN 1.0
              ELSE (SELECT count(*) FROM generate_subscripts(a, 1) k WHERE k <= cardinality(b) AND a[k] = b[k])::float8
                   / greatest(cardinality(a), cardinality(b)) END
$$;
SELECT is((SELECT count(*) FROM shapes
            WHERE tforge.shape_compatibility(ia, oa, ib, ob)
                  <> (pg_temp.sim(ia, ib) + pg_temp.sim(oa, ob)) / 2),
          0::bigint, 'shape_compatibility agrees with the definition on 500 random pairs');
SELECT ok((SELECT count(DISTINCT tforge.shape_compatibility(ia, oa, ib, ob)) FROM shapes) >= 5,
          'the random pairs cover several distinct scores');
SELECT is((SELECT count(*) FROM shapes WHERE tforge.shape_compatibility(ia, oa, ia, oa) <> 1), 0::bigint,
          'every shape pair is fully compatible with itself');

-- ------------------------------------------------------------ selection
-- Model "sel": versions in every state, latest validations (accuracy, p99):
--   1.0.0 production (0.95, 20)   1.1.0 canary (0.95, 15)   1.2.0 production (0.90, 5)
--   1.3.0 staging    (0.99, 1)    1.4.0 deprecated (0.99, 1)  1.5.0 canary, never validated
-- Best: among production/canary, highest accuracy 0.95 (1.0.0, 1.1.0), then lowest p99: 1.1.0.
CREATE TEMP TABLE sel_setup (version text, path text[], latencies float8[], accuracy float8);
INSERT INTO sel_setup VALUES
  ('1.0.0', '{validating,staging,canary,production}', '{20}', 0.95),
  ('1.1.0', '{validating,staging,canary}', '{15}', 0.95),
  ('1.2.0', '{validating,staging,canary,production}', '{5}', 0.90),
  ('1.3.0', '{validating,staging}', '{1}', 0.99),
  ('1.4.0', '{validating,staging,canary,production,deprecated}', '{1}', 0.99),
  ('1.5.0', '{validating,staging,canary}', NULL, NULL);
DO $$
DECLARE
  s record;
  st text;
BEGIN
  FOR s IN SELECT * FROM sel_setup ORDER BY version LOOP
    PERFORM tforge.register_model('sel', s.version::tforge.semver, 'onnx');
    FOREACH st IN ARRAY s.path LOOP
      PERFORM tforge.transition_model('sel', s.version::tforge.semver, st::tforge.deployment_state);
    END LOOP;
    IF s.latencies IS NOT NULL THEN
      PERFORM tforge.record_validation('sel', s.version::tforge.semver, s.latencies, s.accuracy);
    END IF;
  END LOOP;
END
$$;
SELECT is(tforge.select_best_model('sel')::text, '1.1.0', 'highest accuracy, then lowest p99');
SELECT tforge.record_validation('sel', '1.1.0', '{30}', 0.95);
SELECT is(tforge.select_best_model('sel')::text, '1.0.0', 'the latest validation counts (1.1.0 now has p99 30)');
SELECT tforge.record_validation('sel', '1.1.0', '{20}', 0.95);
SELECT is(tforge.select_best_model('sel')::text, '1.1.0', 'equal accuracy and p99: the higher version');
SELECT tforge.record_validation('sel', '1.2.0', '{50}', 0.96);
SELECT is(tforge.select_best_model('sel')::text, '1.2.0', 'accuracy wins over latency');
SELECT is(tforge.select_best_model('bert'), NULL, 'no candidate in production or canary: NULL');
SELECT throws_ok($$SELECT tforge.select_best_model('nope')$$, '42704', 'model "nope" does not exist',
                 'select_best_model of an unknown model');

-- ------------------------------------------------------------ SLA
SELECT ok(tforge.meets_sla(10, 0.9, 10, 0.9), 'meets_sla: both limits are inclusive');
SELECT ok(NOT tforge.meets_sla(10.001, 0.9, 10, 0.9), 'meets_sla: p99 over the limit');
SELECT ok(NOT tforge.meets_sla(10, 0.899, 10, 0.9), 'meets_sla: accuracy under the floor');
SELECT throws_ok($$SELECT tforge.meets_sla('NaN', 0.9, 10, 0.9)$$, '22023',
                 'p99 latency must be a finite number >= 0, got "NaN"', 'meets_sla refuses NaN');
SELECT throws_ok($$SELECT tforge.meets_sla(1, 0.9, 10, 2)$$, '22023',
                 'minimum accuracy must be between 0 and 1, got "2"', 'meets_sla refuses an accuracy floor above 1');
-- sel 1.2.0: p99 50, accuracy 0.96.
SELECT ok(tforge.model_meets_sla('sel', '1.2.0', 50, 0.96), 'meets_sla of a version uses its latest validation');
SELECT ok(NOT tforge.model_meets_sla('sel', '1.2.0', 49.9, 0.5), 'meets_sla of a version: too slow');
SELECT ok(NOT tforge.model_meets_sla('sel', '1.5.0', 1000, 0), 'a never-validated version does not meet any SLA');
SELECT throws_ok($$SELECT tforge.model_meets_sla('sel', '9.9.9', 1, 1)$$, '42704',
                 'version 9.9.9 of model "sel" does not exist', 'meets_sla of an unknown version');

-- ------------------------------------------------------------ rollback scoring
-- errors 3 vs 1 -> 2; p99 30 vs 20 -> (30 - 20) / 20 = 0.5; accuracy 0.5 vs 0.75 -> 0.25 * 10 = 2.5; total 5.
SELECT is(tforge.rollback_priority(30, 0.5, 3, 20, 0.75, 1), 5::float8, 'rollback_priority adds the three regressions');
SELECT is(tforge.rollback_priority(10, 0.9, 0, 20, 0.75, 1), 0::float8, 'an improvement scores 0');
-- baseline p99 0.25 ms counts as 1 ms: (2.25 - 0.25) / 1 = 2.
SELECT is(tforge.rollback_priority(2.25, 0.5, 0, 0.25, 0.5, 0), 2::float8, 'sub-millisecond baselines count as 1 ms');
-- weights 2, 0, 0: 2 * 2 new errors = 4.
SELECT is(tforge.rollback_priority(30, 0.5, 3, 20, 0.75, 1, 2, 0, 0), 4::float8, 'custom weights');
SELECT throws_ok($$SELECT tforge.rollback_priority(1, 0.5, -1, 1, 0.5, 0)$$, '22023',
                 'error count must not be negative, got "-1"', 'negative error count');
SELECT throws_ok($$SELECT tforge.rollback_priority(1, 0.5, 0, 1, 0.5, 0, latency_weight => 'Infinity')$$, '22023',
                 'latency weight must be a finite number >= 0, got "Infinity"', 'infinite weight');
-- From validations: current 1.1.0 (p99 30, accuracy 0.5, 3 errors), baseline 1.0.0 (p99 20, 0.75, 1 error).
SELECT tforge.record_validation('sel', '1.1.0', '{30}', 0.5, '{a,b,c}');
SELECT tforge.record_validation('sel', '1.0.0', '{20}', 0.75, '{a}');
SELECT is(tforge.model_rollback_priority('sel', '1.1.0', '1.0.0'), 5::float8, 'rollback_priority of two versions');
SELECT throws_ok($$SELECT tforge.model_rollback_priority('sel', '1.5.0', '1.0.0')$$, '55000',
                 'version 1.5.0 of model "sel" has no validation', 'rollback_priority needs validations');

-- ------------------------------------------------------------ retiring the previous production version
-- "promo": 1.0.0 in production, 1.1.0 and 1.2.0 and 1.3.0 in canary.
SELECT tforge.register_model('promo', v::tforge.semver, 'onnx') FROM unnest(ARRAY['1.0.0', '1.1.0', '1.2.0', '1.3.0']) v;
SELECT tforge.transition_model('promo', v::tforge.semver, s)
  FROM unnest(ARRAY['1.0.0', '1.1.0', '1.2.0', '1.3.0']) v,
       unnest(ARRAY['validating', 'staging', 'canary']::tforge.deployment_state[]) WITH ORDINALITY s(s, o)
 ORDER BY v, o;
SELECT tforge.transition_model('promo', '1.0.0', 'production');
SELECT tforge.transition_model('promo', '1.1.0', 'production');
SELECT is(ARRAY(SELECT version::text FROM tforge.find_by_state('production') WHERE model_id = 'promo'),
          ARRAY['1.0.0', '1.1.0'], 'by default the previous production version stays');
SELECT tforge.transition_model('promo', '1.2.0', 'production', 'archive');
SELECT is(ARRAY(SELECT version::text || ' ' || state FROM tforge.model_versions WHERE model_id = 'promo' ORDER BY version),
          ARRAY['1.0.0 archived', '1.1.0 archived', '1.2.0 production', '1.3.0 canary'],
          'archive retires every other production version');
SELECT is(ARRAY(SELECT coalesce(from_state::text, '-') || '>' || to_state FROM tforge.model_state_history
                 WHERE model_id = 'promo' AND version = '1.0.0' ORDER BY history_id),
          ARRAY['->registered', 'registered>validating', 'validating>staging', 'staging>canary',
                'canary>production', 'production>deprecated', 'deprecated>archived'],
          'an archived version went through deprecated, in the history');
SELECT tforge.transition_model('promo', '1.3.0', 'production', previous_production => 'deprecate');
SELECT is(ARRAY(SELECT version::text || ' ' || state FROM tforge.model_versions WHERE model_id = 'promo' ORDER BY version),
          ARRAY['1.0.0 archived', '1.1.0 archived', '1.2.0 deprecated', '1.3.0 production'],
          'deprecate retires the previous production version to deprecated');
SELECT throws_ok($$SELECT tforge.transition_model('promo', '1.3.0', 'deprecated', 'drop')$$, '22023',
                 'invalid value for previous_production: "drop"', 'unknown retirement option');
SELECT throws_ok($$SELECT tforge.transition_model('promo', '1.1.0', 'production', 'archive')$$, '55000',
                 'invalid deployment state transition from "archived" to "production"',
                 'a refused promotion ...');
SELECT is((SELECT state FROM tforge.model_versions WHERE model_id = 'promo' AND version = '1.3.0'),
          'production', '... retires nothing');

-- ------------------------------------------------------------ all or nothing
-- A bulk UPDATE moving every promo version to deprecated: 1.3.0 (production)
-- may, 1.0.0 and 1.1.0 (archived) may not, so the statement fails as a whole.
SELECT throws_ok($$UPDATE tforge.model_versions SET state = 'deprecated' WHERE model_id = 'promo'$$, '55000',
                 NULL, 'a bulk UPDATE with one bad move fails');
SELECT is(ARRAY(SELECT version::text || ' ' || state FROM tforge.model_versions WHERE model_id = 'promo' ORDER BY version),
          ARRAY['1.0.0 archived', '1.1.0 archived', '1.2.0 deprecated', '1.3.0 production'],
          '... and changes no row');

SELECT * FROM finish();
ROLLBACK;
