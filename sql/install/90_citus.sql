-- Scale-out on Citus (issue 12): tforge.distribute() spreads an installed
-- tforge over a Citus cluster. Without Citus it only raises a clear error;
-- nothing else in tforge depends on Citus. Where each table goes, and the
-- query pattern each choice serves, is written down in the README section
-- "Scale-out on Citus" and in tforge.distribution (the plan below).

-- The plan, one row per table, in the order tforge.distribute() places them
-- (a reference table before the tables that refer to it, a co-location
-- group's first table before the others). Placement 'coordinator': a plain
-- PostgreSQL table on the coordinator, which distribute() leaves alone: the
-- task queue and its learned state, which claim_tasks needs in one index;
-- the governor's event log, written by the coordinator's own background
-- worker (see the README). Checkpoints are distributed by training run: the
-- calls that name only a checkpoint id have run-keyed forms.
CREATE VIEW tforge.distribution (step, table_name, placement, distribution_column, colocate_with, serves) AS
  VALUES
    (1, 'tforge.signal_types'::text, 'reference', NULL::text, NULL::text,
     'every node joins a signal type''s half-life to its own shard of signals: record_signal runs where the entity is'),
    (2, 'tforge.signals', 'distributed', 'entity_id', NULL::text,
     'record_signal(s), signal_score/count/velocity/windows touch one entity: one shard; trending merges k rows per shard'),
    (3, 'tforge.models', 'distributed', 'model_id', NULL::text,
     'every registry call names one model: one shard holds it with its versions, history and validations'),
    (4, 'tforge.model_versions', 'distributed', 'model_id', 'tforge.models',
     'register_model, transition_model, latest_version, select_best_model: one shard, joins stay local'),
    (5, 'tforge.model_state_history', 'distributed', 'model_id', 'tforge.models',
     'the history trigger of model_versions writes into the co-located shard'),
    (6, 'tforge.model_validations', 'distributed', 'model_id', 'tforge.models',
     'record_validation and select_best_model read and write next to the version they validate'),
    (7, 'tforge.gpu_devices', 'distributed', 'device_id', NULL,
     'every allocation, eviction and defragmentation locks one device''s row first: one shard per device, devices never wait on each other across nodes'),
    (8, 'tforge.gpu_free_blocks', 'distributed', 'device_id', 'tforge.gpu_devices',
     'the free list of a device, which the trigger of gpu_blocks writes in the co-located shard: best fit reads it next to the blocks'),
    (9, 'tforge.gpu_tensor_blocks', 'distributed', 'device_id', 'tforge.gpu_devices',
     'the blocks of a tensor, written by the trigger of gpu_blocks in the co-located shard; blocks_for_tensor asks every shard'),
    (10, 'tforge.gpu_cached_blocks', 'distributed', 'device_id', 'tforge.gpu_devices',
     'the eviction order of a device, written by the trigger of gpu_blocks in the co-located shard'),
    (11, 'tforge.gpu_blocks', 'distributed', 'device_id', 'tforge.gpu_devices',
     'gpu_allocate, gpu_free, gpu_evict, gpu_defragment: best fit, split and merge read and write one device''s blocks next to its row; no overlap is enforced per device in its shard'),
    (12, 'tforge.checkpoint_policies', 'reference', NULL, NULL,
     'checkpoint_gc reads the run''s policy (or the default row) on the node where the run''s checkpoints are'),
    (13, 'tforge.checkpoint_runs', 'distributed', 'training_run_id', NULL,
     'the run''s row lock serializes create, GC and delete of its checkpoints, in the run''s shard next to them'),
    (14, 'tforge.checkpoints', 'distributed', 'training_run_id', 'tforge.checkpoint_runs',
     'create_checkpoint, checkpoint_gc, find_restore_point and the run-keyed forms of the chain calls name the run: one shard, where the C chain walks read the run''s shard directly'),
    (15, 'tforge.task_types', 'coordinator', NULL, NULL,
     'the queue''s C code reads it by index probe; no distributed table joins it'),
    (16, 'tforge.task_tau', 'coordinator', NULL, NULL,
     'complete_task learns tau in the claim''s transaction, next to the queue'),
    (17, 'tforge.tasks', 'coordinator', NULL, NULL,
     'claim_tasks takes the least-laxity head over all pending tasks in one index walk: a global order no shard has'),
    (18, 'tforge.profiles', 'coordinator', NULL, NULL,
     'learned runtime profiles, read and written by the queue''s C code by index probe'),
    (19, 'tforge.prediction_archive', 'coordinator', NULL, NULL,
     'written by purge_tasks from the queue'),
    (20, 'tforge.governor_events', 'coordinator', NULL, NULL,
     'written by the governor''s background worker on the node it watches; read by governor_status there');
COMMENT ON VIEW tforge.distribution IS
  'how tforge.distribute() places tforge''s tables on a Citus cluster (reference, distributed, or left on the coordinator), with the query pattern each choice serves';

-- Functions delegated to the node holding their key: the call is sent
-- whole to that node, which runs it against its local shard (Citus's
-- create_distributed_function with a distribution argument, co-located with
-- the table the key belongs to).
CREATE VIEW tforge.distributed_functions (function_name, distribution_argument, colocate_with) AS
  VALUES
    ('tforge.record_signal(bigint,text,double precision,timestamp with time zone)'::text,
     'entity_id', 'tforge.signals'::text),
    ('tforge.signal_score(bigint,text,timestamp with time zone)', 'entity_id', 'tforge.signals'),
    ('tforge.signal_count(bigint,text,interval,timestamp with time zone)', 'entity_id', 'tforge.signals'),
    ('tforge.signal_velocity(bigint,text,interval,timestamp with time zone)', 'entity_id', 'tforge.signals'),
    ('tforge.register_model(text,tforge.semver,text,integer[],integer[],bigint,text,jsonb,text)',
     'model_id', 'tforge.models'),
    ('tforge.transition_model(text,tforge.semver,tforge.deployment_state,text)', 'model_id', 'tforge.models'),
    ('tforge.record_validation(text,tforge.semver,double precision[],double precision,text[],double precision,double precision)',
     'model_id', 'tforge.models'),
    ('tforge.get_model_version(text,tforge.semver)', 'model_id', 'tforge.models'),
    ('tforge.latest_version(text)', 'model_id', 'tforge.models'),
    ('tforge.get_validation(text,tforge.semver)', 'model_id', 'tforge.models'),
    ('tforge.select_best_model(text)', 'model_id', 'tforge.models'),
    ('tforge.model_meets_sla(text,tforge.semver,double precision,double precision)', 'model_id', 'tforge.models'),
    ('tforge.gpu_add_device(text,bigint,integer,text)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_remove_device(text)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_allocate(text,text,bigint,bigint,boolean,integer)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_evict(text,bigint)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_defragment(text)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.best_fit_block(text,bigint,bigint)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_pool_stats(text)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.fragmentation_ratio(text)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.eviction_candidates(text)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_check(text)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_free(text,bigint)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_mark_cached(text,bigint)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_pin(text,bigint)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_unpin(text,bigint)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.gpu_touch(text,bigint,timestamp with time zone)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.get_block(text,bigint)', 'device_id', 'tforge.gpu_devices'),
    ('tforge.create_checkpoint(text,integer,bigint,tforge.checkpoint_type,jsonb,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.complete_checkpoint(text,text,bigint,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.mark_checkpoint_corrupted(text,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.delete_checkpoint(text,text,boolean)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.checkpoint_gc(text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.list_checkpoints(text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.latest_checkpoint(text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.find_checkpoints_by_metric(text,text,double precision,boolean)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.find_restore_point(text,integer,bigint,boolean,boolean)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.get_checkpoint(text,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.chain_length(text,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.chain_root(text,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.restoration_chain(text,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.chain_size(text,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.validate_checkpoint(text,text)', 'training_run_id', 'tforge.checkpoints'),
    ('tforge.estimate_restore_time(text,text,double precision,double precision,double precision)', 'training_run_id', 'tforge.checkpoints');
COMMENT ON VIEW tforge.distributed_functions IS
  'the calls tforge.distribute() delegates to the Citus node that holds their key, with the argument that routes them';

CREATE FUNCTION tforge.assert_local_table(rel regclass) RETURNS regclass
  AS 'MODULE_PATHNAME', 'tforge_assert_local_table' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.assert_local_table(regclass) IS
  'its argument when C code on this node may read the table directly; 55000 for a Citus shell table, or for a coordinator-only table on a Citus worker';

-- Runs a DDL statement on the coordinator and on every worker: before a
-- table is distributed, the workers' copies of it are the ones CREATE
-- EXTENSION made there, and Citus keeps them as the table's shell.
CREATE FUNCTION tforge._citus_everywhere(ddl text) RETURNS void
  LANGUAGE plpgsql VOLATILE
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
BEGIN
  EXECUTE ddl;
  -- On a worker Citus refuses DDL on objects it tracks unless it is told
  -- not to propagate it (the coordinator already sent it everywhere it must).
  FOR r IN SELECT * FROM pg_catalog.run_command_on_workers(
             'SET citus.enable_ddl_propagation TO off; ' OPERATOR(pg_catalog.||) ddl) LOOP
    IF NOT r.success THEN
      RAISE EXCEPTION 'could not run "%" on worker %:%: %', ddl, r.nodename, r.nodeport, r.result
        USING ERRCODE = '55000';
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION tforge._citus_everywhere(text) IS
  'internal (tforge.distribute): runs a DDL statement on the coordinator and every Citus worker';

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
  fk record;
  fks text[] := '{}';
  rel regclass;
  was_citus boolean;
  changed boolean := false;
  old_messages text := pg_catalog.current_setting('client_min_messages');
BEGIN
  IF shard_count IS NOT NULL AND (shard_count < 1 OR shard_count > 64000) THEN
    RAISE EXCEPTION 'shard_count must be between 1 and 64000, got %', shard_count
      USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') THEN
    RAISE EXCEPTION 'Citus is not installed in this database'
      USING ERRCODE = '55000',
            DETAIL = 'tforge.distribute() spreads tforge''s tables over a Citus cluster; a single server needs nothing.',
            HINT = 'Preload citus on every node, CREATE EXTENSION citus before tforge on the coordinator, add the workers with citus_add_node(), then call tforge.distribute() there.';
  END IF;
  IF NOT pg_catalog.citus_is_coordinator() THEN
    RAISE EXCEPTION 'tforge.distribute() must run on the Citus coordinator'
      USING ERRCODE = '55000',
            HINT = 'Add the workers with citus_add_node() on the coordinator and call it there.';
  END IF;

  -- All or nothing. Everything below on the coordinator, Citus's
  -- create_*_table and create_distributed_function included, runs in the
  -- caller's transaction (Citus commits it on the workers with two-phase
  -- commit): an error anywhere undoes all of it. The statements sent with
  -- run_command_on_workers (tforge._citus_everywhere, the sequence ranges)
  -- commit on their own; they only reshape the workers' copies of tforge's
  -- tables and functions, which nothing reads before the tables are
  -- distributed, and repeating them is harmless, so after a failure the
  -- cluster works as before and tforge.distribute() can simply be called
  -- again. So that it rarely comes to that, every precondition that can be
  -- checked is checked here first, before anything changes.
  IF pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'on' THEN
    RAISE EXCEPTION 'cannot execute tforge.distribute() in a read-only transaction'
      USING ERRCODE = '25006';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n
                  WHERE n.groupid OPERATOR(pg_catalog.<>) 0 AND n.isactive
                    AND n.noderole OPERATOR(pg_catalog.=) 'primary') THEN
    RAISE EXCEPTION 'the Citus cluster has no active worker node'
      USING ERRCODE = '55000',
            HINT = 'Add the workers with citus_add_node() first.';
  END IF;
  FOR f IN
    SELECT w.nodename, w.nodeport, w.success, w.result
      FROM pg_catalog.run_command_on_workers(
             'SELECT (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = ''tforge'')'
             ' || '' '' || (SELECT pg_catalog.count(*) FROM pg_catalog.pg_available_extensions a WHERE a.name = ''btree_gist'')') w
  LOOP
    IF NOT f.success THEN
      RAISE EXCEPTION 'worker %:% cannot be reached: %', f.nodename, f.nodeport, f.result
        USING ERRCODE = '55000';
    END IF;
    IF f.result IS NULL OR pg_catalog.split_part(f.result, ' ', 1) OPERATOR(pg_catalog.<>)
         (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'tforge') THEN
      RAISE EXCEPTION 'worker %:% does not have tforge % installed (it has %)', f.nodename, f.nodeport,
        (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'tforge'),
        COALESCE(NULLIF(pg_catalog.split_part(f.result, ' ', 1), ''), 'none')
        USING ERRCODE = '55000',
              HINT = 'CREATE EXTENSION tforge on the coordinator after citus_add_node() installs it on every worker; ALTER EXTENSION tforge UPDATE runs on all of them.';
    END IF;
    IF pg_catalog.split_part(f.result, ' ', 2) OPERATOR(pg_catalog.=) '0' THEN
      RAISE EXCEPTION 'worker %:% cannot install btree_gist', f.nodename, f.nodeport
        USING ERRCODE = '55000',
              DETAIL = 'GPU blocks keep their no-overlap constraint per device with btree_gist''s GiST operator class for text.';
    END IF;
  END LOOP;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions a WHERE a.name OPERATOR(pg_catalog.=) 'btree_gist') THEN
    RAISE EXCEPTION 'the coordinator cannot install btree_gist' USING ERRCODE = '55000';
  END IF;
  -- Citus distributes no table that a plain table outside tforge's plan
  -- refers to with a foreign key.
  SELECT c.conrelid::regclass::text AS tbl, c.conname, c.confrelid::regclass::text AS target INTO fk
    FROM pg_catalog.pg_constraint c
   WHERE c.contype OPERATOR(pg_catalog.=) 'f'
     AND c.confrelid::regclass::text IN (SELECT d.table_name FROM tforge.distribution d
                                          WHERE d.placement OPERATOR(pg_catalog.<>) 'coordinator')
     AND c.conrelid::regclass::text NOT IN (SELECT d.table_name FROM tforge.distribution d
                                             WHERE d.placement OPERATOR(pg_catalog.<>) 'coordinator')
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                      WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.conrelid)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'table % refers to % (foreign key %), which tforge.distribute() would distribute',
      fk.tbl, fk.target, fk.conname
      USING ERRCODE = '55000',
            HINT = 'Drop the foreign key, or distribute that table with Citus first.';
  END IF;

  -- model_versions carries the lifecycle and history triggers, signal_types
  -- its validation trigger: each fires on the shard it is attached to and
  -- touches only co-located rows (the history row of the same model).
  PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  -- Keys to a reference table need one connection per node in the
  -- transaction that creates them.
  PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);

  -- A foreign key from a plain table to a new reference table would make
  -- Citus convert the plain table (and rebuild the extension's views on
  -- it). Keys between tables of the plan are dropped here and added back
  -- once both ends are distributed, which Citus supports.
  FOR fk IN
    SELECT c.conrelid::regclass AS tbl, c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def
      FROM pg_catalog.pg_constraint c
     WHERE c.contype OPERATOR(pg_catalog.=) 'f'
       AND c.conrelid::regclass::text IN (SELECT d.table_name FROM tforge.distribution d
                                           WHERE d.placement OPERATOR(pg_catalog.<>) 'coordinator')
       AND c.confrelid::regclass::text IN (SELECT d.table_name FROM tforge.distribution d
                                            WHERE d.placement OPERATOR(pg_catalog.=) 'reference')
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.conrelid)
  LOOP
    PERFORM tforge._citus_everywhere(pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I',
                                                      fk.tbl, fk.conname));
    fks := fks OPERATOR(pg_catalog.||)
           pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.tbl, fk.conname, fk.def);
  END LOOP;

  FOR t IN SELECT d.* FROM tforge.distribution d
            WHERE d.placement OPERATOR(pg_catalog.<>) 'coordinator' ORDER BY d.step LOOP
    rel := t.table_name::regclass;
    was_citus := EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                          WHERE p.logicalrelid OPERATOR(pg_catalog.=) rel);
    IF NOT was_citus THEN
      changed := true;
      IF t.table_name IN ('tforge.gpu_free_blocks', 'tforge.gpu_tensor_blocks', 'tforge.gpu_cached_blocks') THEN
        -- The lists derived from gpu_blocks go out empty; they are
        -- rebuilt from the distributed blocks below.
        EXECUTE pg_catalog.format('DELETE FROM %s', rel);
      END IF;
      IF t.table_name IN ('tforge.model_state_history', 'tforge.model_validations') THEN
        -- A distributed table's unique keys include its distribution
        -- column: the serial id stays unique, now together with model_id.
        PERFORM tforge._citus_everywhere(pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I, ADD PRIMARY KEY (model_id, %I)',
                                  rel, pg_catalog.split_part(t.table_name, '.', 2) OPERATOR(pg_catalog.||) '_pkey',
                                  CASE t.table_name WHEN 'tforge.model_state_history' THEN 'history_id'
                                                    ELSE 'validation_id' END));
      END IF;
      IF t.table_name OPERATOR(pg_catalog.=) 'tforge.gpu_blocks' THEN
        -- The primary key gains the distribution column (block ids stay
        -- unique), and Citus accepts an exclusion constraint only when it
        -- compares the distribution column with =: no two blocks of a
        -- device overlap becomes (device_id =, byte range &&), which needs
        -- btree_gist's GiST operator class for text. It holds within each
        -- shard, and a device's blocks are all in one shard.
        PERFORM pg_catalog.set_config('client_min_messages', 'warning', true);
        CREATE EXTENSION IF NOT EXISTS btree_gist SCHEMA public;
        PERFORM pg_catalog.set_config('client_min_messages', old_messages, true);
        PERFORM tforge._citus_everywhere(
          'ALTER TABLE tforge.gpu_blocks DROP CONSTRAINT gpu_blocks_pkey, ADD PRIMARY KEY (block_id, device_id),'
          ' DROP CONSTRAINT gpu_blocks_no_overlap, ADD CONSTRAINT gpu_blocks_no_overlap EXCLUDE USING gist ('
          'device_id WITH OPERATOR(pg_catalog.=),'
          ' pg_catalog.int8range(offset_bytes, offset_bytes OPERATOR(pg_catalog.+) size_bytes) WITH OPERATOR(pg_catalog.&&))');
      END IF;
      IF t.table_name OPERATOR(pg_catalog.=) 'tforge.checkpoints' THEN
        -- Checkpoint ids stay unique (each node draws from its own range of
        -- checkpoint_id_seq), now together with their run; the chain walks
        -- probe the key's first column, checkpoint_id, as before.
        PERFORM tforge._citus_everywhere(
          'ALTER TABLE tforge.checkpoints DROP CONSTRAINT checkpoints_pkey, ADD PRIMARY KEY (checkpoint_id, training_run_id)');
      END IF;
      IF t.placement OPERATOR(pg_catalog.=) 'reference' THEN
        PERFORM pg_catalog.create_reference_table(rel);
      ELSIF t.colocate_with IS NULL THEN
        -- A co-location group of its own: the groups share no key (and
        -- checkpoint runs are text COLLATE "C", unlike model ids).
        PERFORM pg_catalog.create_distributed_table(rel, t.distribution_column,
                                                    colocate_with => 'none', shard_count => shard_count);
      ELSE
        PERFORM pg_catalog.create_distributed_table(rel, t.distribution_column,
                                                    colocate_with => t.colocate_with);
      END IF;
    END IF;
    object := t.table_name;
    placement := t.placement;
    detail := CASE WHEN was_citus THEN 'already distributed'
                   WHEN t.placement OPERATOR(pg_catalog.=) 'reference' THEN 'copied to every node'
                   ELSE pg_catalog.format('by %s', t.distribution_column)
                        OPERATOR(pg_catalog.||) COALESCE(' with ' OPERATOR(pg_catalog.||) t.colocate_with, '') END;
    RETURN NEXT;
  END LOOP;

  FOR i IN 1 .. pg_catalog.cardinality(fks) LOOP
    EXECUTE fks[i];
  END LOOP;
  IF changed THEN
    -- The rows now live in shards; the local copy Citus leaves behind would
    -- only be read by mistake (once every table of the plan is distributed,
    -- no plain table refers to them any more).
    PERFORM pg_catalog.set_config('client_min_messages', 'warning', true);
    FOR t IN SELECT d.* FROM tforge.distribution d
              WHERE d.placement OPERATOR(pg_catalog.<>) 'coordinator' ORDER BY d.step DESC LOOP
      PERFORM pg_catalog.truncate_local_data_after_distributing_table(t.table_name::regclass);
    END LOOP;
    PERFORM pg_catalog.set_config('client_min_messages', old_messages, true);
    -- The lists derived from gpu_blocks, in each device's shards.
    PERFORM tforge._gpu_rebuild_lists();
  END IF;

  -- Serial and identity ids (history_id, validation_id, block_id) are drawn on the node that
  -- inserts: a delegated call or a trigger on a shard draws on a worker.
  -- Each worker draws from its own range, as Citus does for the sequences it
  -- creates itself: group << 48 onwards (the coordinator is group 0).
  FOR f IN
    SELECT DISTINCT dep.objid::regclass AS seq
      FROM pg_catalog.pg_depend dep
      JOIN tforge.distribution d ON dep.refobjid OPERATOR(pg_catalog.=) d.table_name::regclass
     WHERE dep.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
       AND dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
       AND dep.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::"char"[])  -- serial and identity
       AND d.placement OPERATOR(pg_catalog.=) 'distributed'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) dep.objid
                      AND c.relkind OPERATOR(pg_catalog.=) 'S')
    UNION  -- a sequence a column default calls (checkpoint ids: 'ckpt-' || nextval)
    SELECT DISTINCT dep.refobjid::regclass
      FROM pg_catalog.pg_depend dep
      JOIN pg_catalog.pg_attrdef ad ON dep.objid OPERATOR(pg_catalog.=) ad.oid
      JOIN tforge.distribution d ON ad.adrelid OPERATOR(pg_catalog.=) d.table_name::regclass
     WHERE dep.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::regclass
       AND dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
       AND d.placement OPERATOR(pg_catalog.=) 'distributed'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) dep.refobjid
                      AND c.relkind OPERATOR(pg_catalog.=) 'S')
  LOOP
    FOR t IN SELECT * FROM pg_catalog.run_command_on_workers(pg_catalog.format(
        'SELECT pg_catalog.setval(%1$L, g.base + 1, false) FROM (SELECT groupid::bigint << 48 AS base FROM pg_catalog.pg_dist_local_group) g'
        ' WHERE (SELECT s.last_value FROM %1$s s) < g.base', f.seq)) LOOP
      IF NOT t.success THEN
        RAISE EXCEPTION 'could not move sequence % on worker %:%: %', f.seq, t.nodename, t.nodeport, t.result
          USING ERRCODE = '55000';
      END IF;
    END LOOP;
    object := f.seq::text;
    placement := 'per node';
    detail := 'each worker draws from its own range (group << 48 onwards)';
    RETURN NEXT;
  END LOOP;

  -- Citus cannot plan a SQL-language function over a Citus table: it
  -- decides whether a query is distributed before PostgreSQL inlines the
  -- function, and it cannot plan the function's parameterized body either.
  -- Each such function becomes a PL/pgSQL wrapper around its own unchanged
  -- SQL body, on every node (one definition of what it computes; run
  -- tforge.distribute() again after ALTER EXTENSION tforge UPDATE).
  FOR f IN
    SELECT p.oid, p.proretset, pg_catalog.pg_get_functiondef(p.oid) AS def,
           (SELECT y.typtype OPERATOR(pg_catalog.=) 'c' FROM pg_catalog.pg_type y
             WHERE y.oid OPERATOR(pg_catalog.=) p.prorettype) AS composite,
           p.prorettype::regtype::text AS rettype,
           pg_catalog.regexp_replace(p.prosrc, ';?\s*$', '') AS body
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace OPERATOR(pg_catalog.=) 'tforge'::regnamespace
       AND p.provolatile OPERATOR(pg_catalog.<>) 'v'  -- queries; Citus routes a SQL function's INSERT
       AND p.prolang OPERATOR(pg_catalog.=) (SELECT l.oid FROM pg_catalog.pg_language l
                                             WHERE l.lanname OPERATOR(pg_catalog.=) 'sql')
       AND p.prosrc OPERATOR(pg_catalog.~)
           ('tforge\.(' OPERATOR(pg_catalog.||)
            (SELECT pg_catalog.string_agg(pg_catalog.split_part(d.table_name, '.', 2), '|')
               FROM tforge.distribution d WHERE d.placement OPERATOR(pg_catalog.<>) 'coordinator')
            OPERATOR(pg_catalog.||) ')\M')
     ORDER BY p.oid
  LOOP
    PERFORM tforge._citus_everywhere(
      pg_catalog.regexp_replace(
        pg_catalog.left(f.def, pg_catalog.strpos(f.def, 'AS $function$') - 1),
        '\n LANGUAGE sql\n', E'\n LANGUAGE plpgsql\n')
      OPERATOR(pg_catalog.||) pg_catalog.format(E'AS $tforge_citus$\n#variable_conflict use_column\n%sBEGIN\n  %s;\nEND\n$tforge_citus$',
        CASE WHEN f.composite AND NOT f.proretset
             THEN pg_catalog.format(E'DECLARE\n  tforge_row %s;\n', f.rettype) ELSE '' END,
        CASE WHEN f.proretset THEN 'RETURN QUERY ' OPERATOR(pg_catalog.||) f.body
             -- a row (get_block, _gpu_stats): the body's first row, or NULL
             WHEN f.composite THEN f.body OPERATOR(pg_catalog.||)
                                   E'\n  INTO tforge_row;\n  IF NOT FOUND THEN\n    RETURN NULL;\n  END IF;\n  RETURN tforge_row'
             ELSE 'RETURN (' OPERATOR(pg_catalog.||) f.body OPERATOR(pg_catalog.||) ')' END));
    object := f.oid::regprocedure::text;
    placement := 'rewritten';
    detail := 'PL/pgSQL wrapper around its SQL body';
    RETURN NEXT;
  END LOOP;

  -- A lookup of a reference table that a query on a shard calls (the
  -- signal type check in signal_score, trending ...) reads the node's own
  -- placement of the reference table; Citus refuses that as a nested
  -- distributed query unless the function allows it. The same for the
  -- device lookups a query on a device's shard calls (gpu_check's total,
  -- the gpu_pools view's statistics): they read the co-located shard of the
  -- same device, on the same node.
  FOR f IN SELECT u.fn FROM pg_catalog.unnest(ARRAY['tforge.signal_half_life(text)', 'tforge._gpu_total(text)',
                                                    'tforge._gpu_stats(text,bigint)']::regprocedure[]) AS u(fn) LOOP
    PERFORM tforge._citus_everywhere(pg_catalog.format(
      'ALTER FUNCTION %s SET citus.allow_nested_distributed_execution = on', f.fn));
    object := f.fn::text;
    placement := 'everywhere';
    detail := 'reads a local placement or co-located shard inside shard queries';
    RETURN NEXT;
  END LOOP;

  FOR f IN SELECT d.* FROM tforge.distributed_functions d LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                    WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
                      AND o.objid OPERATOR(pg_catalog.=) f.function_name::regprocedure
                      AND o.distribution_argument_index IS NOT NULL) THEN
      PERFORM pg_catalog.create_distributed_function(f.function_name::regprocedure, f.distribution_argument,
                                                     colocate_with => f.colocate_with);
    END IF;
    object := f.function_name;
    placement := 'delegated';
    detail := pg_catalog.format('by %s with %s', f.distribution_argument, f.colocate_with);
    RETURN NEXT;
  END LOOP;

  FOR t IN
    SELECT c.oid::regclass::text AS table_name FROM pg_catalog.pg_class c
     WHERE c.relnamespace OPERATOR(pg_catalog.=) 'tforge'::regnamespace
       AND c.relkind OPERATOR(pg_catalog.=) 'r'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.oid)
     ORDER BY c.relname
  LOOP
    object := t.table_name;
    placement := 'coordinator';
    detail := 'plain table on the coordinator';
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION tforge.distribute(integer) IS
  'on a Citus coordinator: makes signal_types and checkpoint_policies reference tables, distributes signals by entity_id, the registry by model_id, GPU pools by device_id and checkpoints by training_run_id, delegates the hot calls to the node holding their key, keeps the queue and the governor''s events on the coordinator (tforge.distribution); 55000 without Citus';
