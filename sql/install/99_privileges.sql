-- Privileges and search paths, last in the install script and in every
-- upgrade script (it is safe to run again), so that it covers every object
-- the fragments before it created, including ones added later.
--
-- Rule: nothing below superuser may run its code as the extension's owner.
-- The owner is the superuser who ran CREATE EXTENSION, and the queue's
-- worker functions are SECURITY DEFINER, so:
--  * no role gets TRIGGER on a tforge table (a trigger on tforge.tasks would
--    run inside submit_task as the owner), nor REFERENCES (a foreign key from
--    a user's table would block tforge's own deletes), nor TRUNCATE (it skips
--    the row-level rules and takes a lock that stops every worker; DELETE
--    does what an admin needs);
--  * every function that can resolve a name at run time has a pinned
--    search_path (below), so no operator or function from a schema on the
--    caller's path runs in it;
--  * nothing here sets default privileges.

-- Functions: PUBLIC may change nothing. ------------------------------------
--
-- Every VOLATILE function in the schema loses PUBLIC's EXECUTE here; the
-- component scripts have already granted each one to the role that needs it.
-- IMMUTABLE and STABLE functions stay executable by everybody (types and pure
-- helpers), but the tables they read are granted only to tforge's roles.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace OPERATOR(pg_catalog.=) 'tforge'::regnamespace
       AND p.provolatile OPERATOR(pg_catalog.=) 'v'
       AND p.prokind IN ('f', 'p')
  LOOP
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO tforge_admin', f);
  END LOOP;
END
$$;

-- Superusers only, so no tforge role keeps the EXECUTE the loop above
-- granted: the governor's pressure override (it checks that itself too), and
-- distributing tforge over a Citus cluster (DDL on every node).
REVOKE EXECUTE ON FUNCTION tforge.governor_override(float8),
                           tforge.distribute(integer),
                           tforge._citus_everywhere(text) FROM tforge_admin;

-- Search paths. -------------------------------------------------------------
--
-- Every function that is not C gets
--   search_path = pg_catalog, tforge, pg_temp
-- unless its definition pins one already, and so does every VOLATILE C
-- function (those run SPI statements): pg_catalog first, so no look-alike
-- operator in another schema is found before the built-in one; tforge, in
-- which only the owner can create anything; pg_temp last (never searched for
-- functions and operators). A function added later is covered as soon as
-- this fragment runs again (it ends every install and upgrade script).
--
-- The exception is the short list of LANGUAGE sql functions below, which
-- the planner inlines into their callers: a SET clause would stop that
-- (tforge.trending would lose its index scan under a Limit, resources_fit
-- would become a function call per candidate task in the claim). Their
-- bodies write every operator as OPERATOR(pg_catalog.x) and every other name
-- schema-qualified, so they resolve nothing through the caller's path; the
-- pgTAP suite search_path_hijack calls each of them with look-alike
-- operators first on the search_path. A SET clause costs about 1 microsecond
-- per call (200,000 calls of a trivial PL/pgSQL function: 90 ms without,
-- 280-350 ms with; record_signal showed no difference above the noise).
--
-- The other exceptions are two C trigger functions that fire on every
-- submit, claim or completion, where fmgr's save and restore of a SET clause
-- would cost more than the trigger: _gpu_release_task runs SQL only for a
-- task that holds GPU memory, and sets the search path above itself around
-- it (tforge_gpu_release_task, src/pool.c); _task_type_exists runs no SQL
-- (an index probe in C, src/task_type_ref.c), nor does _claim_head_lower
-- (shared memory only, src/claim_head.c).
DO $$
DECLARE
  inlined constant name[] := ARRAY['resources_fit', '_iso_utc', '_csv_field', 'find_by_state',
                                   'model_count', 'version_count', '_known_signal_type', 'signal_score',
                                   'signal_count', 'signal_velocity', 'signal_windows', 'trending'];
  pins_own_path constant name[] := ARRAY['_gpu_release_task', '_task_type_exists', '_claim_head_lower'];
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang
     WHERE p.pronamespace OPERATOR(pg_catalog.=) 'tforge'::regnamespace
       AND p.prokind IN ('f', 'p')
       AND (p.provolatile OPERATOR(pg_catalog.=) 'v' OR l.lanname NOT IN ('c', 'internal'))
       AND NOT (l.lanname OPERATOR(pg_catalog.=) 'sql'
                AND p.provolatile OPERATOR(pg_catalog.<>) 'v'
                AND p.proname OPERATOR(pg_catalog.=) ANY (inlined))
       AND NOT (l.lanname OPERATOR(pg_catalog.=) 'c'
                AND p.proname OPERATOR(pg_catalog.=) ANY (pins_own_path))
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) c
                        WHERE c LIKE 'search\_path=%')
  LOOP
    EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, tforge, pg_temp', f);
  END LOOP;
END
$$;

-- Tables and sequences. -----------------------------------------------------
--
-- Readers read everything; admins read and write rows (DESIGN.md: "tforge_admin
-- (everything)" means every function and every row, never the tables'
-- definitions or triggers). Workers write through SECURITY DEFINER
-- functions; the component scripts grant them the few tables their
-- invoker's-rights functions write (signals, model_validations).
GRANT SELECT ON ALL TABLES IN SCHEMA tforge TO tforge_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tforge TO tforge_admin;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA tforge TO tforge_admin;

-- The lists derived from tforge.gpu_blocks (free list, tensor index,
-- eviction order) are written only by its trigger, tforge._gpu_blocks_sync:
-- an admin writes the blocks, and the lists follow. A row written into a
-- list directly would send allocations to a block that is not free.
REVOKE INSERT, UPDATE, DELETE ON tforge.gpu_free_blocks, tforge.gpu_tensor_blocks, tforge.gpu_cached_blocks
  FROM tforge_admin;
