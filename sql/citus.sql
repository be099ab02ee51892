-- Scale-out on Citus, on a server without Citus: tforge.distribute() only
-- refuses, every table is read directly, the plan is readable.
-- (The cluster itself is tested by test/lib/citus-test.sh.)
\set SHOW_CONTEXT never
\set VERBOSITY default
-- After a statement expected to fail, :sqlstate prints the error's SQLSTATE.
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'

SELECT * FROM tforge.distribute();
:sqlstate
SELECT * FROM tforge.distribute(0);
:sqlstate

-- Without Citus every tforge table may be read directly by C code.
SELECT count(*) > 10 AS tables, count(*) = count(tforge.assert_local_table(c.oid)) AS all_readable
  FROM pg_class c
 WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind = 'r';
SELECT tforge.assert_local_table(NULL) IS NULL AS strict;
SELECT tforge.assert_local_table(0);
:sqlstate

-- The plan names existing tables and functions, and nothing is left out of
-- the co-location groups.
SELECT d.table_name, d.table_name::regclass IS NOT NULL AS exists,
       d.distribution_column IS NULL OR EXISTS (SELECT 1 FROM pg_attribute a
                                                 WHERE a.attrelid = d.table_name::regclass
                                                   AND a.attname = d.distribution_column) AS column_exists
  FROM tforge.distribution d ORDER BY d.step;
SELECT f.function_name::regprocedure IS NOT NULL AS exists,
       EXISTS (SELECT 1 FROM pg_proc p, unnest(p.proargnames) n
                WHERE p.oid = f.function_name::regprocedure AND n = f.distribution_argument) AS argument_exists,
       f.colocate_with IN (SELECT table_name FROM tforge.distribution) AS colocated
  FROM tforge.distributed_functions f ORDER BY f.function_name;

-- Only superusers may distribute (it runs DDL on every node).
SELECT has_function_privilege('tforge_admin', 'tforge.distribute(integer)', 'EXECUTE') AS admin,
       has_function_privilege('tforge_worker', 'tforge.distribute(integer)', 'EXECUTE') AS worker,
       has_function_privilege('public', 'tforge._citus_everywhere(text)', 'EXECUTE') AS public_ddl;
