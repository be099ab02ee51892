-- CREATE EXTENSION refuses a schema tforge that a role other than a
-- superuser owns (issue 13): PostgreSQL would install into it, and its
-- owner could put objects there that tforge's functions find (an exact
-- match operator for a tforge enum beats pg_catalog's anyenum one) and run
-- as whoever calls them.
SET client_min_messages = warning;
DROP EXTENSION tforge CASCADE;
DROP SCHEMA IF EXISTS tforge CASCADE;
RESET client_min_messages;
\set sqlstate '\\echo SQLSTATE :LAST_ERROR_SQLSTATE'
\set SHOW_CONTEXT never
CREATE ROLE tforge_schema_squatter NOLOGIN;
CREATE SCHEMA tforge AUTHORIZATION tforge_schema_squatter;
CREATE EXTENSION tforge;
:sqlstate
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'tforge';
-- A superuser's schema is used as before.
ALTER SCHEMA tforge OWNER TO CURRENT_USER;
CREATE EXTENSION tforge;
SELECT extname, extnamespace::regnamespace FROM pg_extension WHERE extname = 'tforge';
DROP ROLE tforge_schema_squatter;
