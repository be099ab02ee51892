-- Core: roles, schema privileges, version and settings helpers.
--
-- The schema tforge itself is created by CREATE EXTENSION (tforge.control).
-- Roles are cluster-wide, so they are created only when missing and survive
-- DROP EXTENSION.

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

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tforge_reader') THEN
    CREATE ROLE tforge_reader NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tforge_worker') THEN
    CREATE ROLE tforge_worker NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tforge_admin') THEN
    CREATE ROLE tforge_admin NOLOGIN;
  END IF;
END
$$;

-- Each role has what the one before it has.
GRANT tforge_reader TO tforge_worker;
GRANT tforge_worker TO tforge_admin;

-- Everybody may use the schema's types and pure functions; state-changing
-- functions are revoked from PUBLIC at the end of the script (99_privileges).
GRANT USAGE ON SCHEMA tforge TO PUBLIC;

CREATE FUNCTION tforge.library_version() RETURNS text
  AS 'MODULE_PATHNAME', 'tforge_library_version'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.library_version() IS
  'version of the loaded tforge shared library; equals the extension version when both are current';

CREATE FUNCTION tforge._setting(name text) RETURNS text
  AS 'MODULE_PATHNAME', 'tforge_setting'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._setting(text) IS
  'internal: current value of a tforge.* setting (loads the library first so the setting is defined)';
