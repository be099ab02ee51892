-- tforge._csv_field is a SQL function the planner inlines (into
-- export_profiles), so it carries no SET search_path and names its operator
-- OPERATOR(pg_catalog.||). Body as in sql/install/30_learning.sql.

CREATE OR REPLACE FUNCTION tforge._csv_field(value text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN $1 IS NULL THEN '' ELSE '"' OPERATOR(pg_catalog.||) pg_catalog.replace($1, '"', '""') OPERATOR(pg_catalog.||) '"' END
$$;
-- 0.1.0 -> 0.2.0: changes to the learning component's 0.1.0 objects
-- (install fragment sql/install/30_learning.sql holds the same definitions).

-- profiles gets a primary key (issue 13), so that a publication FOR ALL
-- TABLES can ship the updates every completion makes. Existing rows are
-- numbered by the identity.
ALTER TABLE tforge.profiles ADD COLUMN profile_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
SELECT pg_catalog.pg_extension_config_dump('tforge.profiles_profile_id_seq', '');
COMMENT ON COLUMN tforge.profiles.profile_id IS 'surrogate key (the replica identity); a profile is named by (task_type, task_key)';
