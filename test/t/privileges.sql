-- Privileges, generated from the catalog: every tforge function, table,
-- view and sequence, for PUBLIC and the three roles, against DESIGN.md.
--
--   PUBLIC         uses types and pure functions, changes nothing, reads no table
--   tforge_reader  reads every table and view, changes nothing
--   tforge_worker  also runs the worker calls (queue cycle, signals, validations,
--                  GPU blocks and checkpoints once they exist)
--   tforge_admin   every function, every row; never a table's definition
--
-- Nobody below superuser owns a tforge object, holds TRIGGER, REFERENCES or
-- TRUNCATE, may create in schema tforge, or gets default privileges; every
-- SECURITY DEFINER function pins search_path; every volatile function is
-- kept from PUBLIC; and every volatile function called in a READ ONLY
-- transaction fails with 25006 or changes nothing (fingerprint of every
-- tforge table and sequence before and after).
--
-- A state-changing function that expected_role below does not name fails
-- the suite: adding one forces a decision about who may call it.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT no_plan();

-- ---------------------------------------------------------------- expectations

-- The least role that may call each VOLATILE (state-changing) function, by
-- name (overloads share it). 'superuser' means no tforge role at all.
CREATE TEMP TABLE expected_role (
  fn   name PRIMARY KEY,
  role text NOT NULL CHECK (role IN ('tforge_reader', 'tforge_worker', 'tforge_admin', 'superuser'))
);
INSERT INTO expected_role VALUES
  -- queue (DESIGN 1): workers submit, claim, heartbeat, complete, fail, requeue
  ('submit_task', 'tforge_worker'), ('submit_tasks', 'tforge_worker'),
  ('claim_tasks', 'tforge_worker'), ('heartbeat', 'tforge_worker'),
  ('complete_task', 'tforge_worker'), ('complete_tasks', 'tforge_worker'),
  ('fail_task', 'tforge_worker'), ('fail_tasks', 'tforge_worker'),
  ('expire_leases', 'tforge_worker'),
  ('define_task_type', 'tforge_admin'), ('set_tau', 'tforge_admin'),
  ('update_tau', 'tforge_admin'), ('reset_tau', 'tforge_admin'),
  ('purge_tasks', 'tforge_admin'), ('_held_task', 'tforge_admin'),
  -- learning
  ('_profile_record', 'tforge_admin'), ('expire_profiles', 'tforge_admin'),
  ('import_profiles', 'tforge_admin'),
  -- registry (DESIGN 2): workers record validations
  ('record_validation', 'tforge_worker'),
  ('register_model', 'tforge_admin'), ('transition_model', 'tforge_admin'),
  ('_model_versions_lifecycle', 'tforge_admin'), ('_model_versions_history', 'tforge_admin'),
  -- signals (DESIGN 5): workers record signals
  ('record_signal', 'tforge_worker'), ('record_signals', 'tforge_worker'),
  ('define_signal_type', 'tforge_admin'), ('signal_types_check', 'tforge_admin'),
  -- GPU pools (DESIGN 3): workers allocate, free, pin, cache, touch blocks
  ('gpu_allocate', 'tforge_worker'), ('gpu_free', 'tforge_worker'),
  ('gpu_pin', 'tforge_worker'), ('gpu_unpin', 'tforge_worker'),
  ('gpu_mark_cached', 'tforge_worker'), ('gpu_touch', 'tforge_worker'),
  ('gpu_add_device', 'tforge_admin'), ('gpu_remove_device', 'tforge_admin'),
  ('gpu_evict', 'tforge_admin'), ('gpu_defragment', 'tforge_admin'),
  ('_gpu_release_task', 'tforge_admin'), ('_gpu_blocks_sync', 'tforge_admin'),
  ('_gpu_rebuild_lists', 'tforge_admin'),
  ('_task_type_exists', 'tforge_admin'), ('_claim_head_lower', 'tforge_admin'),
  ('_task_type_in_use', 'tforge_admin'),
  -- checkpoints (DESIGN 4): workers create and complete checkpoints, and
  -- mark one corrupted when they find it unreadable
  ('create_checkpoint', 'tforge_worker'), ('complete_checkpoint', 'tforge_worker'),
  ('mark_checkpoint_corrupted', 'tforge_worker'), ('set_checkpoint_policy', 'tforge_admin'),
  ('clear_checkpoint_policy', 'tforge_admin'),
  ('checkpoint_gc', 'tforge_admin'), ('delete_checkpoint', 'tforge_admin'),
  ('_lock_checkpoint_run', 'tforge_admin'), ('_checkpoints_lifecycle', 'tforge_admin'),
  ('_checkpoint_policies_default', 'tforge_admin'),
  -- governor (DESIGN 6): the pressure override is for superusers only; status
  -- and the housekeeping report are VOLATILE because they read shared memory
  -- that changes under them, but they change nothing: readers call them
  ('governor_override', 'superuser'),
  -- Citus (scale-out): distributing runs DDL on every node
  ('distribute', 'superuser'), ('_citus_everywhere', 'superuser'),
  ('governor_status', 'tforge_reader'), ('governor_housekeeping', 'tforge_reader');

-- Tables a worker writes directly (its invoker's-rights functions do); every
-- other table is written only through SECURITY DEFINER functions or by admins.
CREATE TEMP TABLE expected_worker_writes (tbl name, privilege text, PRIMARY KEY (tbl, privilege));
INSERT INTO expected_worker_writes VALUES
  ('signals', 'INSERT'), ('signals', 'UPDATE'),
  ('model_validations', 'INSERT');

CREATE TEMP TABLE role_rank (role text PRIMARY KEY, who name NOT NULL, rank int NOT NULL);
CREATE ROLE tap_nobody;                          -- stands for PUBLIC: no membership at all
INSERT INTO role_rank VALUES ('PUBLIC', 'tap_nobody', 0), ('tforge_reader', 'tforge_reader', 1),
  ('tforge_worker', 'tforge_worker', 2), ('tforge_admin', 'tforge_admin', 3), ('superuser', 'postgres', 4);

CREATE TEMP VIEW fns AS
SELECT p.oid, p.oid::regprocedure::text AS sig, p.proname, p.provolatile, p.prosecdef, p.proconfig,
       l.lanname, p.prorettype = 'trigger'::regtype AS is_trigger, p.prokind
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'tforge'::regnamespace;

CREATE TEMP VIEW rels AS
SELECT c.oid, c.oid::regclass::text AS rel, c.relname, c.relkind, c.relowner
  FROM pg_class c
 WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f');

SELECT diag(format('covering %s functions (%s volatile), %s tables, %s views, %s sequences, 4 roles and PUBLIC',
                   (SELECT count(*) FROM fns), (SELECT count(*) FROM fns WHERE provolatile = 'v'),
                   (SELECT count(*) FROM rels WHERE relkind IN ('r', 'p')),
                   (SELECT count(*) FROM rels WHERE relkind IN ('v', 'm')),
                   (SELECT count(*) FROM rels WHERE relkind = 'S')));

-- ---------------------------------------------------------------- functions

SELECT is(ARRAY(SELECT sig FROM fns WHERE provolatile = 'v' AND prokind IN ('f', 'p')
                   AND proname NOT IN (SELECT fn FROM expected_role) ORDER BY 1),
          '{}'::text[],
          'every state-changing function has an expected role (add new ones to expected_role in test/t/privileges.sql)');

-- For each role: the volatile functions it may execute are exactly those
-- whose expected role it holds. Trigger functions are included (nobody but
-- the owner's triggers should call them).
SELECT is(ARRAY(SELECT f.sig || CASE WHEN has_function_privilege(r.who, f.oid, 'EXECUTE')
                                     THEN ' executable, expected ' ELSE ' refused, expected ' END || e.role
                  FROM fns f JOIN expected_role e ON e.fn = f.proname
                 WHERE f.provolatile = 'v'
                   AND has_function_privilege(r.who, f.oid, 'EXECUTE')
                       IS DISTINCT FROM (r.rank >= (SELECT rank FROM role_rank WHERE role = e.role))
                 ORDER BY 1),
          '{}'::text[],
          format('%s executes exactly the state-changing functions DESIGN.md gives it', r.role))
  FROM role_rank r WHERE r.role <> 'superuser' ORDER BY r.rank;

SELECT is(ARRAY(SELECT sig FROM fns WHERE provolatile <> 'v' AND NOT has_function_privilege('tforge_reader', oid, 'EXECUTE') ORDER BY 1),
          '{}'::text[], 'tforge_reader executes every read-only (immutable or stable) function');

SELECT is(ARRAY(SELECT sig FROM fns WHERE provolatile = 'v' AND has_function_privilege('tap_nobody', oid, 'EXECUTE') ORDER BY 1),
          '{}'::text[], 'no volatile function is executable by PUBLIC');

SELECT is(ARRAY(SELECT sig FROM fns
                 WHERE prosecdef
                   AND NOT EXISTS (SELECT 1 FROM unnest(proconfig) c WHERE c LIKE 'search\_path=pg\_catalog%')
                 ORDER BY 1),
          '{}'::text[], 'every SECURITY DEFINER function pins search_path, pg_catalog first');

SELECT is(ARRAY(SELECT sig FROM fns WHERE prosecdef AND has_function_privilege('tap_nobody', oid, 'EXECUTE') ORDER BY 1),
          '{}'::text[], 'no SECURITY DEFINER function is executable by PUBLIC');

-- The rule of 99_privileges.sql: everything but C and non-volatile SQL
-- functions (left inlinable, operators qualified) and every volatile
-- function pins a search_path that starts with pg_catalog; the C trigger
-- functions that pin it themselves around their SQL, or run none, are named
-- here (suite gpu_privileges checks the first, queue_task_type_ref the second,
-- queue_claim_head the third).
SELECT is(ARRAY(SELECT sig FROM fns
                 WHERE prokind IN ('f', 'p')
                   AND (provolatile = 'v' OR lanname NOT IN ('c', 'internal', 'sql'))
                   AND sig NOT IN ('tforge._gpu_release_task()', 'tforge._task_type_exists()', 'tforge._claim_head_lower()')
                   AND NOT EXISTS (SELECT 1 FROM unnest(proconfig) c WHERE c LIKE 'search\_path=pg\_catalog%')
                 ORDER BY 1),
          '{}'::text[], 'every PL/pgSQL and every volatile function pins search_path, pg_catalog first');

-- ---------------------------------------------------------------- tables, views, sequences

SELECT is(ARRAY(SELECT rel || ' ' || p
                  FROM rels, unnest('{SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER}'::text[]) p
                 WHERE relkind <> 'S' AND has_table_privilege('tap_nobody', oid, p)
                 UNION ALL
                SELECT rel || ' ' || p FROM rels, unnest('{USAGE,SELECT,UPDATE}'::text[]) p
                 WHERE CASE WHEN relkind = 'S' THEN has_sequence_privilege('tap_nobody', oid, p) ELSE false END
                 ORDER BY 1),
          '{}'::text[], 'PUBLIC has no privilege on any tforge table, view or sequence');

SELECT is(ARRAY(SELECT rel FROM rels WHERE relkind <> 'S' AND NOT has_table_privilege(r.who, oid, 'SELECT') ORDER BY 1),
          '{}'::text[], format('%s reads every tforge table and view', r.role))
  FROM role_rank r WHERE r.rank BETWEEN 1 AND 3 ORDER BY r.rank;

SELECT is(ARRAY(SELECT rel || ' ' || p FROM rels, unnest('{INSERT,UPDATE,DELETE}'::text[]) p
                 WHERE relkind IN ('r', 'p') AND has_table_privilege('tforge_reader', oid, p) ORDER BY 1),
          '{}'::text[], 'tforge_reader writes no table');

SELECT is(ARRAY(SELECT rel || ' ' || p FROM rels, unnest('{INSERT,UPDATE,DELETE}'::text[]) p
                 WHERE relkind IN ('r', 'p')
                   AND has_table_privilege('tforge_worker', oid, p)
                       IS DISTINCT FROM EXISTS (SELECT 1 FROM expected_worker_writes w
                                                 WHERE w.tbl = relname AND w.privilege = p)
                 ORDER BY 1),
          '{}'::text[], 'tforge_worker writes exactly the tables its invoker''s-rights functions write');

-- but the lists derived from tforge.gpu_blocks, which its trigger alone writes
SELECT is(ARRAY(SELECT rel || ' ' || p FROM rels, unnest('{SELECT,INSERT,UPDATE,DELETE}'::text[]) p
                 WHERE relkind IN ('r', 'p') AND NOT has_table_privilege('tforge_admin', oid, p)
                   AND NOT (relname IN ('gpu_free_blocks', 'gpu_tensor_blocks', 'gpu_cached_blocks') AND p <> 'SELECT')
                 ORDER BY 1),
          '{}'::text[], 'tforge_admin reads and writes the rows of every table but the lists derived from gpu_blocks');
SELECT is(ARRAY(SELECT rel || ' ' || p FROM rels, unnest('{INSERT,UPDATE,DELETE}'::text[]) p
                 WHERE relname IN ('gpu_free_blocks', 'gpu_tensor_blocks', 'gpu_cached_blocks')
                   AND has_table_privilege('tforge_admin', oid, p) ORDER BY 1),
          '{}'::text[], 'tforge_admin cannot write the lists derived from gpu_blocks');

-- Fault 2 (0.1.0): GRANT ALL gave tforge_admin TRIGGER, and a trigger on
-- tforge.tasks ran inside the SECURITY DEFINER submit_task as the owner.
SELECT is(ARRAY(SELECT rel || ' ' || p || ' for ' || r.role
                  FROM rels, role_rank r, unnest('{TRUNCATE,REFERENCES,TRIGGER}'::text[]) p
                 WHERE relkind <> 'S' AND r.rank BETWEEN 0 AND 3 AND has_table_privilege(r.who, oid, p)
                 ORDER BY 1),
          '{}'::text[], 'no role below superuser holds TRUNCATE, REFERENCES or TRIGGER on a tforge table');

SELECT is(ARRAY(SELECT rel || ' ' || a.privilege_type || ' to ' || a.grantee::regrole
                  FROM rels, aclexplode(coalesce((SELECT relacl FROM pg_class WHERE oid = rels.oid), '{}')) a
                 WHERE a.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER')
                   AND a.grantee <> 0 AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = a.grantee)
                 ORDER BY 1),
          '{}'::text[], 'no ACL entry grants TRUNCATE, REFERENCES or TRIGGER to a role below superuser');

SELECT is(ARRAY(SELECT rel || ' UPDATE for ' || r.role FROM rels, role_rank r
                 WHERE r.rank BETWEEN 0 AND 3 AND CASE WHEN relkind = 'S' THEN has_sequence_privilege(r.who, oid, 'UPDATE') ELSE false END
                 ORDER BY 1),
          '{}'::text[], 'no role below superuser may setval a tforge sequence');

SELECT is(ARRAY(SELECT rel FROM rels WHERE CASE WHEN relkind = 'S' THEN NOT has_sequence_privilege('tforge_admin', oid, 'USAGE') ELSE false END ORDER BY 1),
          '{}'::text[], 'tforge_admin may use every tforge sequence');

-- ---------------------------------------------------------------- ownership, schema, roles

SELECT is(ARRAY(SELECT pg_describe_object(d.classid, d.objid, d.objsubid) || ' owned by ' || o.owner::regrole
                  FROM pg_depend d
                  CROSS JOIN LATERAL (
                    SELECT relowner AS owner FROM pg_class WHERE d.classid = 'pg_class'::regclass AND oid = d.objid
                    UNION ALL SELECT proowner FROM pg_proc WHERE d.classid = 'pg_proc'::regclass AND oid = d.objid
                    UNION ALL SELECT typowner FROM pg_type WHERE d.classid = 'pg_type'::regclass AND oid = d.objid
                    UNION ALL SELECT oprowner FROM pg_operator WHERE d.classid = 'pg_operator'::regclass AND oid = d.objid
                    UNION ALL SELECT opcowner FROM pg_opclass WHERE d.classid = 'pg_opclass'::regclass AND oid = d.objid
                    UNION ALL SELECT opfowner FROM pg_opfamily WHERE d.classid = 'pg_opfamily'::regclass AND oid = d.objid
                    UNION ALL SELECT nspowner FROM pg_namespace WHERE d.classid = 'pg_namespace'::regclass AND oid = d.objid) o
                 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tforge')
                   AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = o.owner)
                 UNION ALL
                SELECT rel || ' owned by ' || relowner::regrole FROM rels
                 WHERE NOT (SELECT rolsuper FROM pg_roles WHERE oid = relowner)
                 ORDER BY 1),
          '{}'::text[], 'every tforge object is owned by a superuser');

SELECT ok((SELECT count(*) FROM pg_depend d
            WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
              AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tforge')) > 100,
          'the ownership check saw the extension''s members');

SELECT is(ARRAY(SELECT r.role FROM role_rank r
                 WHERE r.rank BETWEEN 0 AND 3 AND has_schema_privilege(r.who, 'tforge', 'CREATE') ORDER BY 1),
          '{}'::text[], 'no role below superuser may create objects in schema tforge');

SELECT is(ARRAY(SELECT coalesce(defaclnamespace::regnamespace::text, 'all schemas') || ' for ' || defaclrole::regrole
                  FROM pg_default_acl
                 WHERE defaclnamespace = 'tforge'::regnamespace
                    OR defaclrole IN ('tforge_reader'::regrole, 'tforge_worker'::regrole, 'tforge_admin'::regrole)
                    OR EXISTS (SELECT 1 FROM aclexplode(defaclacl) a
                                WHERE a.grantee IN ('tforge_reader'::regrole, 'tforge_worker'::regrole,
                                                    'tforge_admin'::regrole))
                 ORDER BY 1),
          '{}'::text[], 'no default privileges in schema tforge, by or for a tforge role');

SELECT is(ARRAY(SELECT rolname::text FROM pg_roles
                 WHERE rolname IN ('tforge_reader', 'tforge_worker', 'tforge_admin')
                   AND (rolsuper OR rolcanlogin OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication)
                 ORDER BY 1),
          '{}'::text[], 'the tforge roles are plain NOLOGIN roles');

-- ---------------------------------------------------------------- fault 2, end to end

CREATE ROLE tap_admin_login LOGIN IN ROLE tforge_admin;
GRANT CREATE ON SCHEMA public TO tap_admin_login;
CREATE FUNCTION public.tap_escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'ALTER ROLE tap_admin_login SUPERUSER';
  RETURN NEW;
END
$$;
GRANT EXECUTE ON FUNCTION public.tap_escalate() TO tap_admin_login;

CREATE TEMP TABLE trigger_attempts (rel text, what text, sqlstate text);
GRANT ALL ON trigger_attempts TO PUBLIC;
SET ROLE tap_admin_login;
DO $$
DECLARE
  r record;
  st text;
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
            WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1 LOOP
    BEGIN
      st := 'created';
      EXECUTE format('CREATE TRIGGER tap_escalate BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION public.tap_escalate()', r.rel);
    EXCEPTION WHEN others THEN
      st := SQLSTATE;
    END;
    INSERT INTO trigger_attempts VALUES (r.rel, 'CREATE TRIGGER', st);
    BEGIN
      st := 'truncated';
      EXECUTE format('TRUNCATE %s', r.rel);
      RAISE EXCEPTION USING ERRCODE = 'TAPOK';   -- undo it, if it ever worked
    EXCEPTION WHEN others THEN
      st := CASE WHEN SQLSTATE = 'TAPOK' THEN 'truncated' ELSE SQLSTATE END;
    END;
    INSERT INTO trigger_attempts VALUES (r.rel, 'TRUNCATE', st);
  END LOOP;
  FOR r IN SELECT c.conrelid::regclass AS rel, a.attname, format_type(a.atttypid, a.atttypmod) AS typ
             FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            WHERE c.connamespace = 'tforge'::regnamespace AND c.contype IN ('p', 'u')
              AND cardinality(c.conkey) = 1 ORDER BY 1 LOOP
    BEGIN
      st := 'created';
      EXECUTE format('CREATE TABLE public.tap_fk (x %s REFERENCES %s (%I))', r.typ, r.rel, r.attname);
      RAISE EXCEPTION USING ERRCODE = 'TAPOK';
    EXCEPTION WHEN others THEN
      st := CASE WHEN SQLSTATE = 'TAPOK' THEN 'created' ELSE SQLSTATE END;
    END;
    INSERT INTO trigger_attempts VALUES (r.rel, 'REFERENCES', st);
  END LOOP;
END
$$;
RESET ROLE;

SELECT is(ARRAY(SELECT rel || ' ' || what || ': ' || sqlstate FROM trigger_attempts WHERE sqlstate <> '42501' ORDER BY 1),
          '{}'::text[],
          format('tforge_admin, through a login role, is refused (42501) CREATE TRIGGER and TRUNCATE on all %s tforge tables and a foreign key to all %s keys',
                 (SELECT count(*) FROM trigger_attempts WHERE what = 'TRUNCATE'),
                 (SELECT count(*) FROM trigger_attempts WHERE what = 'REFERENCES')));
SELECT ok((SELECT count(*) FROM trigger_attempts WHERE what = 'CREATE TRIGGER' AND rel = 'tforge.tasks') = 1,
          'the attempts include tforge.tasks');

SET ROLE tap_admin_login;
SELECT lives_ok($$ SELECT tforge.submit_task('cpu-light') $$, 'tforge_admin still submits tasks');
RESET ROLE;
SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'tap_admin_login'),
          'and is not superuser afterwards');

-- ---------------------------------------------------------------- fault 3: tforge._setting

SET ROLE tap_nobody;
SELECT throws_ok($$ SELECT tforge._setting('data_directory') $$, '42501', NULL,
                 'PUBLIC cannot read data_directory through tforge._setting');
SELECT throws_ok($$ SELECT tforge._setting('hba_file') $$, '42501', NULL,
                 'PUBLIC cannot read hba_file through tforge._setting');
SELECT throws_ok($$ SELECT tforge._setting('primary_conninfo') $$, '42501', NULL,
                 'PUBLIC cannot read primary_conninfo through tforge._setting');
SELECT throws_ok($$ SELECT tforge._setting('TFORGE') $$, '42501', NULL,
                 'a name that only starts like the prefix is refused');
SELECT is(tforge._setting('tforge.ema_lambda'), current_setting('tforge.ema_lambda'),
          'tforge._setting still reads tforge settings for PUBLIC');
SELECT throws_ok($$ SELECT tforge._setting('tforge.no_such_setting') $$, '42704', NULL,
                 'an unknown tforge setting is 42704');
RESET ROLE;

-- ---------------------------------------------------------------- read-only sweep

-- Something in every component for the calls to act on.
SELECT tforge.submit_task('cpu-light', task_key => 'ro') AS tid \gset
SELECT count(*) FROM tforge.claim_tasks('w1') \gset
SELECT tforge.submit_task('cpu-heavy') AS tid2 \gset
\o /dev/null
SELECT tforge.register_model('ro-m', '1.0.0', 'pt');
SELECT tforge.define_signal_type('ro-s', '1 hour');
SELECT tforge.record_signal(1, 'ro-s', 1, '2026-01-01');
-- an expired lease for expire_leases to requeue
SELECT count(*) FROM tforge.claim_tasks('w3');
UPDATE tforge.tasks SET lease_expires_at = now() - interval '1 hour' WHERE task_id = :tid2;
-- learned rows exist, so the calls below update them rather than insert
SELECT tforge.update_tau('cpu-light', 10);
SELECT tforge._profile_record('cpu-light', 'ro', 3, 1, 100, NULL, NULL);
-- a device with an allocated and a cached block
SELECT tforge.gpu_add_device('ro-gpu', 1048576);
SELECT (tforge.gpu_allocate('ro-gpu', 'ro-t1', 4096)).block_id AS gblk \gset
SELECT (tforge.gpu_allocate('ro-gpu', 'ro-t2', 4096)).block_id AS gblk2 \gset
SELECT tforge.gpu_mark_cached(:gblk2);
-- a checkpoint to complete, mark and delete
SELECT (tforge.create_checkpoint('ro-run', 1, 5)).checkpoint_id AS ckid \gset
\o

-- Valid arguments for every state-changing function (by name); a function
-- not listed gets NULLs of its argument types, and a diag says so.
CREATE TEMP TABLE sample_call (fn name PRIMARY KEY, call text NOT NULL);
INSERT INTO sample_call VALUES
  ('define_task_type', $$SELECT tforge.define_task_type('ro-type', 5)$$),
  ('set_tau', $$SELECT tforge.set_tau('cpu-light', 7)$$),
  ('update_tau', $$SELECT tforge.update_tau('cpu-light', 500)$$),
  ('reset_tau', $$SELECT tforge.reset_tau()$$),
  ('submit_task', $$SELECT tforge.submit_task('cpu-light')$$),
  ('expire_leases', $$SELECT tforge.expire_leases()$$),
  ('claim_tasks', $$SELECT * FROM tforge.claim_tasks('w2')$$),
  ('_held_task', format($$SELECT tforge._held_task(%s, 'w1')$$, :tid)),
  ('heartbeat', format($$SELECT tforge.heartbeat(%s, 'w1')$$, :tid)),
  ('complete_task', format($$SELECT tforge.complete_task(%s, 'w1', '{"runtime_s": 3}')$$, :tid)),
  ('fail_task', format($$SELECT tforge.fail_task(%s, 'w1', 'boom')$$, :tid)),
  ('_profile_record', $$SELECT tforge._profile_record('cpu-light', 'ro', 3, 1, 100, NULL, NULL)$$),
  ('expire_profiles', $$SELECT tforge.expire_profiles('0 s')$$),
  ('purge_tasks', $$SELECT tforge.purge_tasks('0 s')$$),
  ('import_profiles', $$SELECT tforge.import_profiles(tforge.export_profiles('json'))$$),
  ('register_model', $$SELECT tforge.register_model('ro-m', '2.0.0', 'pt')$$),
  ('transition_model', $$SELECT tforge.transition_model('ro-m', '1.0.0', 'validating')$$),
  ('record_validation', $$SELECT tforge.record_validation('ro-m', '1.0.0', '{10,12}', 0.9)$$),
  ('define_signal_type', $$SELECT tforge.define_signal_type('ro-s2', '1 hour')$$),
  ('record_signal', $$SELECT tforge.record_signal(2, 'ro-s', 1)$$),
  ('record_signals', $$SELECT tforge.record_signals('{3,4}', 'ro-s')$$),
  ('gpu_add_device', $$SELECT tforge.gpu_add_device('ro-gpu2', 1048576)$$),
  ('gpu_remove_device', $$SELECT tforge.gpu_remove_device('ro-gpu')$$),
  ('gpu_allocate', $$SELECT tforge.gpu_allocate('ro-gpu', 'ro-t3', 4096)$$),
  ('gpu_free', format($$SELECT tforge.gpu_free(%s)$$, :gblk)),
  ('gpu_pin', format($$SELECT tforge.gpu_pin(%s)$$, :gblk)),
  ('gpu_unpin', format($$SELECT tforge.gpu_unpin(%s)$$, :gblk)),
  ('gpu_mark_cached', format($$SELECT tforge.gpu_mark_cached(%s)$$, :gblk)),
  ('gpu_touch', format($$SELECT tforge.gpu_touch(%s)$$, :gblk)),
  ('gpu_evict', $$SELECT tforge.gpu_evict('ro-gpu', 4096)$$),
  ('gpu_defragment', $$SELECT * FROM tforge.gpu_defragment('ro-gpu')$$),
  ('_gpu_rebuild_lists', $$SELECT tforge._gpu_rebuild_lists()$$),
  ('create_checkpoint', $$SELECT tforge.create_checkpoint('ro-run', 1, 10)$$),
  ('complete_checkpoint', format($$SELECT tforge.complete_checkpoint(%L, 100, '/ckpt/a')$$, :'ckid')),
  ('mark_checkpoint_corrupted', format($$SELECT tforge.mark_checkpoint_corrupted(%L)$$, :'ckid')),
  ('delete_checkpoint', format($$SELECT tforge.delete_checkpoint(%L)$$, :'ckid')),
  ('set_checkpoint_policy', $$SELECT tforge.set_checkpoint_policy('ro-run', max_checkpoints_per_run => 1)$$),
  ('clear_checkpoint_policy', $$SELECT tforge.clear_checkpoint_policy('ro-run')$$),
  ('checkpoint_gc', $$SELECT tforge.checkpoint_gc('ro-run')$$),
  ('_lock_checkpoint_run', $$SELECT tforge._lock_checkpoint_run('ro-run', 'gc')$$);

-- Every tforge table's rows and every sequence's state, as one hash.
CREATE FUNCTION public.tap_fingerprint() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r record;
  v text;
  acc text := '';
BEGIN
  FOR r IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
            WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('r', 'p', 'S')
            ORDER BY c.relname LOOP
    IF r.relkind = 'S' THEN
      EXECUTE format('SELECT last_value::text || is_called::text FROM %s', r.rel) INTO v;
    ELSE
      EXECUTE format('SELECT md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text), '''')) FROM %s t', r.rel) INTO v;
    END IF;
    acc := acc || r.rel::text || '=' || v || ';';
  END LOOP;
  RETURN md5(acc);
END
$$;

CREATE TEMP TABLE ro_result (sig text, call text, sampled boolean, sqlstate text, message text, changed boolean);
DO $$
DECLARE
  f record;
  c text;
  before text;
  st text;
  msg text;
BEGIN
  FOR f IN SELECT p.oid, p.oid::regprocedure::text AS sig, p.proname,
                  (SELECT string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY i)
                     FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, i)) AS nulls
             FROM pg_proc p
            WHERE p.pronamespace = 'tforge'::regnamespace AND p.provolatile = 'v' AND p.prokind = 'f'
              AND p.prorettype <> 'trigger'::regtype
            ORDER BY 2 LOOP
    c := coalesce((SELECT s.call FROM sample_call s WHERE s.fn = f.proname),
                  format('SELECT %s(%s)', f.oid::regproc, coalesce(f.nulls, '')));
    before := public.tap_fingerprint();
    BEGIN
      PERFORM set_config('transaction_read_only', 'on', true);
      EXECUTE c;
      -- It returned: carry the fingerprint out through an error that undoes the call.
      RAISE EXCEPTION USING ERRCODE = 'TAPOK', MESSAGE = public.tap_fingerprint();
    EXCEPTION WHEN others THEN
      GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    INSERT INTO ro_result
    VALUES (f.sig, c, EXISTS (SELECT 1 FROM sample_call s WHERE s.fn = f.proname), st, msg,
            st = 'TAPOK' AND msg <> before);
  END LOOP;
END
$$;

SELECT diag(format('read-only sweep: %s volatile functions called, %s with sample arguments, %s refused with 25006',
                   (SELECT count(*) FROM ro_result), (SELECT count(*) FROM ro_result WHERE sampled),
                   (SELECT count(*) FROM ro_result WHERE sqlstate = '25006')));
SELECT diag('no sample arguments (called with NULLs): ' || string_agg(sig, ', ' ORDER BY sig))
  FROM ro_result WHERE NOT sampled HAVING count(*) > 0;

-- Fault 4 (READ ONLY ignored by the C functions that rewrite learned state
-- in place) is fixed on branch harden; until that merges, these two are
-- expected to fail here. Remove them from the list once it has.
CREATE TEMP TABLE known_read_only_gaps (fn name PRIMARY KEY);
INSERT INTO known_read_only_gaps VALUES ('update_tau'), ('_profile_record');

SELECT is(ARRAY(SELECT sig || ': ' || coalesce(sqlstate, '') || CASE WHEN changed THEN ' and changed state' ELSE '' END
                  FROM ro_result
                 WHERE split_part(split_part(sig, '(', 1), '.', 2) NOT IN (SELECT fn FROM known_read_only_gaps)
                   AND (changed OR (sampled AND sqlstate NOT IN ('25006', 'TAPOK')))
                 ORDER BY 1),
          '{}'::text[],
          'every state-changing function in a READ ONLY transaction fails with 25006 or changes nothing');

SELECT todo('fault 4 is fixed on branch harden', (SELECT count(*)::int FROM known_read_only_gaps));
SELECT ok(NOT changed AND sqlstate IN ('25006', 'TAPOK'),
          format('%s in a READ ONLY transaction: %s', sig, sqlstate))
  FROM ro_result
 WHERE split_part(split_part(sig, '(', 1), '.', 2) IN (SELECT fn FROM known_read_only_gaps)
 ORDER BY sig;

SELECT is(ARRAY(SELECT sig || ': ' || sqlstate || ' ' || message FROM ro_result r
                 WHERE sampled AND sqlstate <> '25006'
                   AND split_part(split_part(r.sig, '(', 1), '.', 2) NOT IN (SELECT fn FROM known_read_only_gaps)
                 ORDER BY 1),
          '{}'::text[],
          'each sampled call reaches a write and is refused with 25006 (none fails earlier or merely returns)');

SELECT * FROM finish();
ROLLBACK;
