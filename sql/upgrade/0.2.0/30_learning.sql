-- tforge._csv_field is a SQL function the planner inlines (into
-- export_profiles), so it carries no SET search_path and names its operator
-- OPERATOR(pg_catalog.||). Body as in sql/install/30_learning.sql.

CREATE OR REPLACE FUNCTION tforge._csv_field(value text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN $1 IS NULL THEN '' ELSE '"' OPERATOR(pg_catalog.||) pg_catalog.replace($1, '"', '""') OPERATOR(pg_catalog.||) '"' END
$$;
