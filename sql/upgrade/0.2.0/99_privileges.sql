-- 0.1.0 granted ALL on every table to tforge_admin: TRIGGER let it run its
-- own code as the extension's owner inside the SECURITY DEFINER queue
-- functions, REFERENCES let it pin tforge's rows with its own foreign keys.
-- Take back everything beyond SELECT, INSERT, UPDATE, DELETE from every role
-- (sql/install/99_privileges.sql, which runs next, grants what each role
-- keeps, and pins the search_path of every function 0.1.0 left unpinned).
REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA tforge
  FROM PUBLIC, tforge_reader, tforge_worker, tforge_admin;
REVOKE UPDATE ON ALL SEQUENCES IN SCHEMA tforge
  FROM PUBLIC, tforge_reader, tforge_worker, tforge_admin;
