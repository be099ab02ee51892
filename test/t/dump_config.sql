-- pg_dump keeps user data (DESIGN.md: tables holding user data are marked
-- with pg_extension_config_dump): generated from the catalog, so a table or
-- sequence added to schema tforge without the mark fails here.
\set ECHO none
\set QUIET 1
\pset format unaligned
\pset tuples_only true
\pset pager off
BEGIN;
SELECT plan(3);

SELECT is(ARRAY(SELECT c.oid::regclass::text FROM pg_class c
                 WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('r', 'p')
                   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'tforge')::oid[])
                 ORDER BY 1),
          '{}'::text[], 'every tforge table is dumped (pg_extension_config_dump)');
SELECT is(ARRAY(SELECT c.oid::regclass::text FROM pg_class c
                 WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind = 'S'
                   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'tforge')::oid[])
                 ORDER BY 1),
          '{}'::text[], 'every tforge sequence is dumped, so restored rows keep their ids');
-- Rows CREATE EXTENSION makes itself are the only ones left out, and the
-- lists derived from tforge.gpu_blocks, which its trigger writes again as
-- the blocks are restored.
SELECT is(ARRAY(SELECT format('%s %s', c, f) FROM pg_extension e,
                       unnest(e.extconfig::regclass[], e.extcondition) u(c, f)
                 WHERE e.extname = 'tforge' AND f <> '' ORDER BY 1),
          ARRAY['tforge.gpu_cached_blocks WHERE false', 'tforge.gpu_free_blocks WHERE false',
                'tforge.gpu_tensor_blocks WHERE false', 'tforge.task_types WHERE NOT builtin'],
          'only the built-in task types and the lists derived from gpu_blocks are left out of a dump');

SELECT * FROM finish();
ROLLBACK;
