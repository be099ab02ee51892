-- Core: roles, schema privileges, version and settings helpers.
--
-- The schema tforge itself is created by CREATE EXTENSION (tforge.control).
-- Roles are cluster-wide, so they are created only when missing and survive
-- DROP EXTENSION.

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
