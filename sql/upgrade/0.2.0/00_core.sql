-- 0.1.0 -> 0.2.0: the core's check, as in sql/install/00_core.sql (issue 13).

-- CREATE EXTENSION uses a schema tforge that exists already, whoever owns
-- it. Its owner could then create objects in it (an operator for a tforge
-- enum that the functions' search_path pg_catalog, tforge, pg_temp finds
-- as an exact match, run by whoever calls them, superusers included) and
-- drop what others create there: refused unless a superuser owns it.
DO $$
DECLARE
  owner name;
BEGIN
  SELECT r.rolname INTO owner
    FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
   WHERE n.nspname OPERATOR(pg_catalog.=) 'tforge' AND NOT r.rolsuper;
  IF FOUND THEN
    RAISE EXCEPTION 'schema "tforge" is owned by role "%", which is not a superuser', owner
      USING ERRCODE = 'insufficient_privilege',
            DETAIL = 'Its owner could add objects that tforge''s functions would find and run as their callers.',
            HINT = 'Drop or rename that schema (or make a superuser its owner), then install or update tforge.';
  END IF;
END
$$;
