-- Scale-out on Citus (issue 12): tforge.distribute() spreads an installed
-- tforge over a Citus cluster. Without Citus it only raises a clear error;
-- nothing else in tforge depends on Citus. Where each table goes, and the
-- query pattern each choice serves, is written down in the README section
-- "Scale-out on Citus" and in tforge.distribution (the plan below).

-- The plan, one row per table tforge.distribute() touches, in the order it
-- distributes them (a reference table before the tables that refer to it, a
-- co-location group's first table before the others). Tables not listed
-- stay on the coordinator as plain PostgreSQL tables: the task queue and its
-- learned state (task_types, task_tau, tasks, profiles, prediction_archive),
-- which claim_tasks needs in one index (see the README).
CREATE VIEW tforge.distribution (step, table_name, placement, distribution_column, colocate_with, serves) AS
  VALUES
    (1, 'tforge.signal_types'::regclass, 'reference', NULL::text, NULL::regclass,
     'every node joins a signal type''s half-life to its own shard of signals: record_signal runs where the entity is'),
    (2, 'tforge.signals'::regclass, 'distributed', 'entity_id', NULL::regclass,
     'record_signal(s), signal_score/count/velocity/windows touch one entity: one shard; trending merges k rows per shard'),
    (3, 'tforge.models'::regclass, 'distributed', 'model_id', NULL::regclass,
     'every registry call names one model: one shard holds it with its versions, history and validations'),
    (4, 'tforge.model_versions'::regclass, 'distributed', 'model_id', 'tforge.models'::regclass,
     'register_model, transition_model, latest_version, select_best_model: one shard, joins stay local'),
    (5, 'tforge.model_state_history'::regclass, 'distributed', 'model_id', 'tforge.models'::regclass,
     'the history trigger of model_versions writes into the co-located shard'),
    (6, 'tforge.model_validations'::regclass, 'distributed', 'model_id', 'tforge.models'::regclass,
     'record_validation and select_best_model read and write next to the version they validate');
COMMENT ON VIEW tforge.distribution IS
  'how tforge.distribute() places tforge''s tables on a Citus cluster, with the query pattern each choice serves; tables not listed stay on the coordinator';

-- Functions delegated to the node holding their key: the call is sent
-- whole to that node, which runs it against its local shard (Citus's
-- create_distributed_function with a distribution argument, co-located with
-- the table the key belongs to).
CREATE VIEW tforge.distributed_functions (function_name, distribution_argument, colocate_with) AS
  VALUES
    ('tforge.record_signal(bigint,text,double precision,timestamp with time zone)'::regprocedure,
     'entity_id', 'tforge.signals'::regclass),
    ('tforge.signal_score(bigint,text,timestamp with time zone)'::regprocedure, 'entity_id', 'tforge.signals'::regclass),
    ('tforge.signal_count(bigint,text,interval,timestamp with time zone)'::regprocedure, 'entity_id', 'tforge.signals'::regclass),
    ('tforge.signal_velocity(bigint,text,interval,timestamp with time zone)'::regprocedure, 'entity_id', 'tforge.signals'::regclass),
    ('tforge.register_model(text,tforge.semver,text,integer[],integer[],bigint,text,jsonb,text)'::regprocedure,
     'model_id', 'tforge.models'::regclass),
    ('tforge.transition_model(text,tforge.semver,tforge.deployment_state,text)'::regprocedure, 'model_id', 'tforge.models'::regclass),
    ('tforge.record_validation(text,tforge.semver,double precision[],double precision,text[],double precision,double precision)'::regprocedure,
     'model_id', 'tforge.models'::regclass),
    ('tforge.get_model_version(text,tforge.semver)'::regprocedure, 'model_id', 'tforge.models'::regclass),
    ('tforge.latest_version(text)'::regprocedure, 'model_id', 'tforge.models'::regclass),
    ('tforge.get_validation(text,tforge.semver)'::regprocedure, 'model_id', 'tforge.models'::regclass),
    ('tforge.select_best_model(text)'::regprocedure, 'model_id', 'tforge.models'::regclass),
    ('tforge.model_meets_sla(text,tforge.semver,double precision,double precision)'::regprocedure, 'model_id', 'tforge.models'::regclass);
COMMENT ON VIEW tforge.distributed_functions IS
  'the calls tforge.distribute() delegates to the Citus node that holds their key, with the argument that routes them';

CREATE FUNCTION tforge.assert_local_table(rel regclass) RETURNS regclass
  AS 'MODULE_PATHNAME', 'tforge_assert_local_table' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.assert_local_table(regclass) IS
  'its argument when C code on this node may read the table directly; 55000 for a Citus shell table, or for a coordinator-only table on a Citus worker';

-- Distributes tforge on the coordinator of a Citus cluster, following
-- tforge.distribution and tforge.distributed_functions. Idempotent: what is
-- already distributed is skipped. Returns what it did, one row per object.
CREATE FUNCTION tforge.distribute(shard_count integer DEFAULT NULL)
  RETURNS TABLE (object text, placement text, detail text)
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t record;
  f record;
  was_citus boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
    RAISE EXCEPTION 'Citus is not installed in this database'
      USING ERRCODE = '55000',
            DETAIL = 'tforge.distribute() spreads tforge''s tables over a Citus cluster; a single server needs nothing.',
            HINT = 'Preload citus on every node, CREATE EXTENSION citus before tforge on the coordinator, add the workers with citus_add_node(), then call tforge.distribute() there.';
  END IF;
  IF shard_count IS NOT NULL AND (shard_count < 1 OR shard_count > 64000) THEN
    RAISE EXCEPTION 'shard_count must be between 1 and 64000, got %', shard_count
      USING ERRCODE = '22023';
  END IF;
  IF NOT pg_catalog.citus_is_coordinator() THEN
    RAISE EXCEPTION 'tforge.distribute() must run on the Citus coordinator'
      USING ERRCODE = '55000',
            HINT = 'Add the workers with citus_add_node() on the coordinator and call it there.';
  END IF;

  -- model_versions carries the lifecycle and history triggers, signal_types
  -- its validation trigger: each fires on the shard it is attached to and
  -- touches only co-located rows (the history row of the same model).
  PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);

  FOR t IN SELECT d.* FROM tforge.distribution d ORDER BY d.step LOOP
    was_citus := EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                          WHERE p.logicalrelid OPERATOR(pg_catalog.=) t.table_name);
    IF NOT was_citus THEN
      IF t.table_name OPERATOR(pg_catalog.=) 'tforge.model_state_history'::regclass
         OR t.table_name OPERATOR(pg_catalog.=) 'tforge.model_validations'::regclass THEN
        -- A distributed table's unique keys include its distribution
        -- column: the serial id stays unique, now together with model_id.
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD PRIMARY KEY (model_id, %I)',
                                  t.table_name, pg_catalog.split_part(t.table_name::text, '.', 2) || '_pkey',
                                  CASE WHEN t.table_name OPERATOR(pg_catalog.=) 'tforge.model_state_history'::regclass
                                       THEN 'history_id' ELSE 'validation_id' END);
      END IF;
      IF t.placement OPERATOR(pg_catalog.=) 'reference' THEN
        PERFORM pg_catalog.create_reference_table(t.table_name);
      ELSIF t.colocate_with IS NULL THEN
        PERFORM pg_catalog.create_distributed_table(t.table_name, t.distribution_column,
                                                    shard_count => shard_count);
      ELSE
        PERFORM pg_catalog.create_distributed_table(t.table_name, t.distribution_column,
                                                    colocate_with => t.colocate_with::text);
      END IF;
      -- The rows now live in shards; the local copy Citus leaves behind
      -- would only be read by mistake.
      PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name);
    END IF;
    object := t.table_name::text;
    placement := t.placement;
    detail := CASE WHEN was_citus THEN 'already distributed'
                   WHEN t.placement OPERATOR(pg_catalog.=) 'reference' THEN 'copied to every node'
                   ELSE pg_catalog.format('by %s', t.distribution_column)
                        OPERATOR(pg_catalog.||) COALESCE(' with ' OPERATOR(pg_catalog.||) t.colocate_with::text, '') END;
    RETURN NEXT;
  END LOOP;

  FOR f IN SELECT d.* FROM tforge.distributed_functions d LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                    WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
                      AND o.objid OPERATOR(pg_catalog.=) f.function_name
                      AND o.distribution_argument_index IS NOT NULL) THEN
      PERFORM pg_catalog.create_distributed_function(f.function_name, f.distribution_argument,
                                                     colocate_with => f.colocate_with::text);
    END IF;
    object := f.function_name::text;
    placement := 'delegated';
    detail := pg_catalog.format('by %s with %s', f.distribution_argument, f.colocate_with);
    RETURN NEXT;
  END LOOP;

  FOR t IN
    SELECT c.oid::regclass AS table_name FROM pg_catalog.pg_class c
     WHERE c.relnamespace OPERATOR(pg_catalog.=) 'tforge'::regnamespace
       AND c.relkind OPERATOR(pg_catalog.=) 'r'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.oid)
     ORDER BY c.relname
  LOOP
    object := t.table_name::text;
    placement := 'coordinator';
    detail := 'plain table on the coordinator';
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION tforge.distribute(integer) IS
  'on a Citus coordinator: makes signal_types a reference table, distributes signals by entity_id and the registry by model_id, delegates the hot calls to the node holding their key, keeps the queue on the coordinator; 55000 without Citus';
