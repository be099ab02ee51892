-- One version number: META.json, the control file, the script and the library agree.
SELECT extversion = tforge.library_version() AS versions_agree
  FROM pg_extension WHERE extname = 'tforge';
-- The three roles exist and nest.
SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'tforge\_%' ORDER BY 1;
SELECT pg_has_role('tforge_admin', 'tforge_reader', 'MEMBER') AS admin_reads,
       pg_has_role('tforge_reader', 'tforge_admin', 'MEMBER') AS reader_administers;
-- PUBLIC cannot execute any function that changes state.
SELECT count(*) AS volatile_public_functions
  FROM pg_proc p
 WHERE p.pronamespace = 'tforge'::regnamespace AND p.provolatile = 'v'
   AND has_function_privilege('public', p.oid, 'EXECUTE');
-- Every public function, type, table and view carries a comment.
SELECT p.oid::regprocedure AS uncommented_function FROM pg_proc p
 WHERE p.pronamespace = 'tforge'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
 ORDER BY 1;
SELECT c.relname AS uncommented_relation FROM pg_class c
 WHERE c.relnamespace = 'tforge'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
   AND obj_description(c.oid, 'pg_class') IS NULL ORDER BY 1;
SELECT t.typname AS uncommented_type FROM pg_type t
 WHERE t.typnamespace = 'tforge'::regnamespace AND t.typtype IN ('b', 'c', 'e', 'r', 'd')
   AND t.typrelid = 0 AND obj_description(t.oid, 'pg_type') IS NULL
   AND t.typname NOT LIKE '\_%' ORDER BY 1;
-- A misspelt tforge setting is refused (the prefix is reserved).
SET tforge.no_such_setting = 1;
