-- Model registry: pure functions on good and bad input, and the messages of
-- the registry's errors. Expected values are worked by hand in comments.
\pset null '<NULL>'
SET client_min_messages = warning;
\set SHOW_CONTEXT never
-- tforge's operators (semver =) without schema-qualifying each one.
SET search_path = public, tforge;

-- Runs a statement; its single value, or its SQLSTATE and message.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  EXECUTE sql INTO result;
  RETURN coalesce(result, '<NULL>');
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The lifecycle as a grid: rows are from, columns to, in enum order
-- (reg val stg can prd dep arc); X marks an allowed move.
SELECT f AS from_state,
       string_agg(CASE WHEN tforge.can_transition(f, t) THEN 'X' ELSE '.' END, ' ' ORDER BY t) AS "reg val stg can prd dep arc"
  FROM unnest(enum_range(NULL::tforge.deployment_state)) f,
       unnest(enum_range(NULL::tforge.deployment_state)) t
 GROUP BY f ORDER BY f;
SELECT * FROM tforge.deployment_transitions ORDER BY 1, 2;
SELECT tforge.can_transition(NULL, 'staging') AS strict_null;
SELECT pg_temp.try($$SELECT tforge.can_transition('canary', 'live')$$);

-- shape_compatibility = (sim(in_a, in_b) + sim(out_a, out_b)) / 2,
-- sim = equal positions / larger rank.
SELECT tforge.shape_compatibility('{1,3,224,224}', '{1,1000}', '{1,3,224,224}', '{1,1000}') AS exact;       -- 1
SELECT tforge.shape_compatibility('{1,3,224,224}', '{1,1000}', '{1,3,256,256}', '{1,1000}') AS resized;     -- (2/4 + 2/2) / 2 = 0.75
SELECT tforge.shape_compatibility('{1,3,224,224}', '{10}', '{3,224,224}', '{10}') AS rank_differs;          -- (1/4 + 1) / 2 = 0.625 (only 224 = 224 at position 3)
SELECT tforge.shape_compatibility('{1,3,224}', '{10}', '{1,3,224,224}', '{10}') AS prefix;                  -- (3/4 + 1) / 2 = 0.875
SELECT tforge.shape_compatibility('{8}', '{4}', '{9}', '{5}') AS nothing_matches;                           -- 0
SELECT tforge.shape_compatibility('{}', '{}', '{}', '{}') AS scalars;                                        -- 1
SELECT tforge.shape_compatibility('{}', '{7}', '{5}', '{7}') AS scalar_vs_vector;                           -- (0/1 + 1) / 2 = 0.5
SELECT tforge.shape_compatibility('{0,5}', '{0}', '{0,5}', '{0}') AS zero_dims;                             -- 1
SELECT tforge.shape_compatibility(NULL, '{1}', '{1}', '{1}') AS strict_null;
SELECT pg_temp.try($$SELECT tforge.shape_compatibility('{1,-1}', '{1}', '{1}', '{1}')$$);
SELECT pg_temp.try($$SELECT tforge.shape_compatibility('{1}', '{1,NULL}', '{1}', '{1}')$$);
SELECT pg_temp.try($$SELECT tforge.shape_compatibility('{1}', '{1}', '{{1,2},{3,4}}', '{1}')$$);
SELECT pg_temp.try($$SELECT tforge.shape_compatibility('{1}', '{1}', '{1}', '{-2147483648}')$$);

-- meets_sla: p99 <= max AND accuracy >= min, both inclusive.
SELECT tforge.meets_sla(10, 0.9, 10, 0.9) AS on_both_limits,
       tforge.meets_sla(10.5, 0.9, 10, 0.9) AS too_slow,
       tforge.meets_sla(10, 0.89, 10, 0.9) AS not_accurate,
       tforge.meets_sla(0, 1, 0, 1) AS perfect,
       tforge.meets_sla(1e9, 0, 'Infinity', 0) AS no_latency_limit;
SELECT pg_temp.try($$SELECT tforge.meets_sla('NaN', 0.9, 10, 0.9)$$);
SELECT pg_temp.try($$SELECT tforge.meets_sla(-1, 0.9, 10, 0.9)$$);
SELECT pg_temp.try($$SELECT tforge.meets_sla(1, 1.01, 10, 0.9)$$);
SELECT pg_temp.try($$SELECT tforge.meets_sla(1, 0.9, 'NaN', 0.9)$$);
SELECT pg_temp.try($$SELECT tforge.meets_sla(1, 0.9, -5, 0.9)$$);
SELECT pg_temp.try($$SELECT tforge.meets_sla(1, 0.9, 10, -0.1)$$);

-- rollback_priority = 1 * new errors + 1 * max(0, p99 - base) / max(base, 1) + 10 * max(0, acc_base - acc)
SELECT tforge.rollback_priority(30, 0.5, 3, 20, 0.75, 1) AS all_three;         -- 2 + 0.5 + 2.5 = 5
SELECT tforge.rollback_priority(20, 0.75, 1, 20, 0.75, 1) AS unchanged;        -- 0
SELECT tforge.rollback_priority(10, 0.875, 0, 20, 0.75, 4) AS improved;        -- 0 (improvements do not offset)
SELECT tforge.rollback_priority(40, 0.75, 0, 10, 0.75, 0) AS latency_only;     -- 30 / 10 = 3
SELECT tforge.rollback_priority(0.75, 0.75, 0, 0.25, 0.75, 0) AS sub_ms_base;  -- 0.5 / 1 = 0.5
SELECT tforge.rollback_priority(20, 0.5, 0, 20, 1, 0) AS accuracy_only;        -- 0.5 * 10 = 5
SELECT tforge.rollback_priority(30, 0.5, 3, 20, 0.75, 1, 0.5, 2, 4) AS weighted; -- 0.5 * 2 + 2 * 0.5 + 4 * 0.25 = 3
SELECT pg_temp.try($$SELECT tforge.rollback_priority(1, 0.5, -1, 1, 0.5, 0)$$);
SELECT pg_temp.try($$SELECT tforge.rollback_priority(1, 0.5, 0, 1, 0.5, -2)$$);
SELECT pg_temp.try($$SELECT tforge.rollback_priority('Infinity', 0.5, 0, 1, 0.5, 0)$$);
SELECT pg_temp.try($$SELECT tforge.rollback_priority(1, 0.5, 0, 1, 2, 0)$$);
SELECT pg_temp.try($$SELECT tforge.rollback_priority(1, 0.5, 0, 1, 0.5, 0, error_weight => -1)$$);
SELECT pg_temp.try($$SELECT tforge.rollback_priority(1e308, 0, 0, 0, 1, 0, 0, 10, 0)$$);

-- latency_percentile, nearest rank: sorted value at rank ceil(p / 100 * n), at least 1.
-- {10,20,30,40}: p0 -> rank 1 = 10, p25 -> 1 = 10, p26 -> ceil(1.04) = 2 = 20,
-- p50 -> 2 = 20, p51 -> ceil(2.04) = 3 = 30, p99 -> ceil(3.96) = 4 = 40, p100 -> 40.
SELECT p, tforge.latency_percentile('{40,10,30,20}', p) AS value
  FROM unnest(ARRAY[0, 25, 26, 50, 51, 99, 100]) p;
SELECT tforge.latency_percentile('{5}', 99) AS single, tforge.latency_percentile('{3,3,3}', 50) AS ties,
       tforge.latency_percentile('{0,0.5}', 50) AS zero_allowed;
SELECT pg_temp.try($$SELECT tforge.latency_percentile('{}', 50)$$);
SELECT pg_temp.try($$SELECT tforge.latency_percentile('{1,2}', 101)$$);
SELECT pg_temp.try($$SELECT tforge.latency_percentile('{1,2}', 'NaN')$$);
SELECT pg_temp.try($$SELECT tforge.latency_percentile('{1,-2}', 50)$$);
SELECT pg_temp.try($$SELECT tforge.latency_percentile('{1,Infinity}', 50)$$);
SELECT pg_temp.try($$SELECT tforge.latency_percentile('{{1,2},{3,4}}', 50)$$);

-- Registry operations and their errors.
SELECT model_id, version, framework, input_shape, output_shape, size_bytes, checksum, state, tags
  FROM tforge.register_model('rg_resnet', '1.0.0', 'pytorch', '{1,3,224,224}', '{1,1000}', 97800000,
                             'sha256:1f0e', '{"dataset": "imagenet"}', 'ResNet-50');
SELECT model_id, version, state FROM tforge.register_model('rg_resnet', '1.1.0-rc.1', 'pytorch');
SELECT tforge.register_model('rg_resnet', '1.0.0', 'pytorch');
SELECT model_id, version, state FROM tforge.transition_model('rg_resnet', '1.0.0', 'validating');
SELECT tforge.transition_model('rg_resnet', '1.0.0', 'production');
UPDATE tforge.model_versions SET state = 'archived' WHERE model_id = 'rg_resnet' AND version = '1.0.0';
SELECT tforge.transition_model('rg_resnet', '1.0.0', 'validating');
SELECT tforge.transition_model('rg_resnet', '3.0.0', 'validating');
SELECT tforge.transition_model('rg_nothing', '1.0.0', 'validating');
SELECT tforge.transition_model('rg_resnet', '1.0.0', 'staging', 'retire');
SELECT pg_temp.try($$SELECT tforge.register_model('rg_x', '1.0.0', '')$$);
SELECT pg_temp.try($$SELECT tforge.register_model(NULL, '1.0.0', 'onnx')$$);
SELECT pg_temp.try($$SELECT tforge.register_model('rg_x', '1.0.0', 'onnx', size_bytes => -5)$$);
SELECT pg_temp.try($$SELECT tforge.register_model('rg_x', '1.0.0', 'onnx', tags => '"gpu"')$$);
SELECT pg_temp.try($$SELECT tforge.register_model('rg_x', '1.0.0', 'onnx', '{3,-224}')$$);
SELECT pg_temp.try($$SELECT tforge.transition_model('rg_resnet', '1.0.0', NULL)$$);
SELECT pg_temp.try($$SELECT tforge.latest_version('rg_nothing')$$);
SELECT pg_temp.try($$SELECT tforge.latest_version(NULL)$$);
SELECT pg_temp.try($$SELECT tforge.transition_model('rg_resnet', NULL, 'staging')$$);
SELECT pg_temp.try($$SELECT tforge.record_validation(NULL, '1.0.0', '{1}', 0.5)$$);
SELECT pg_temp.try($$SELECT tforge.get_validation('rg_resnet', '2.0.0')$$);
SELECT pg_temp.try($$SELECT tforge.record_validation('rg_resnet', '1.0.0', NULL, 0.9)$$);
SELECT pg_temp.try($$SELECT tforge.record_validation('rg_resnet', '1.0.0', '{1}', NULL)$$);
SELECT pg_temp.try($$SELECT tforge.record_validation('rg_resnet', '1.0.0', '{1}', -0.5)$$);
SELECT pg_temp.try($$SELECT tforge.record_validation('rg_resnet', '1.0.0', '{1}', 0.5, '{ok,NULL}')$$);
SELECT pg_temp.try($$SELECT tforge.record_validation('rg_resnet', '1.0.0', '{1}', 0.5, max_latency_ms => -1)$$);
SELECT pg_temp.try($$SELECT tforge.model_rollback_priority('rg_resnet', '1.0.0', '1.1.0-rc.1')$$);
-- latencies 1, 2, ..., 10: p50 = rank 5 = 5, p99 = rank ceil(9.9) = 10.
SELECT passed, latency_p50_ms, latency_p99_ms, accuracy_score, errors, sample_count
  FROM tforge.record_validation('rg_resnet', '1.0.0', '{10,9,8,7,6,5,4,3,2,1}', 0.91);
SELECT passed, errors FROM tforge.record_validation('rg_resnet', '1.0.0', '{1}', 0.91, '{"nan in output 7"}');
SELECT model_id, version, from_state, to_state FROM tforge.model_state_history
 WHERE model_id = 'rg_resnet' ORDER BY history_id;
SELECT tforge.latest_version('rg_resnet'), tforge.select_best_model('rg_resnet');
SELECT * FROM tforge.list_versions('rg_resnet');

DELETE FROM tforge.models WHERE model_id = 'rg_resnet';
SELECT count(*) AS leftover_versions FROM tforge.model_versions WHERE model_id = 'rg_resnet';
