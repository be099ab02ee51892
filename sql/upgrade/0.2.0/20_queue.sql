-- tforge.resources_fit is a SQL function the planner inlines (into the
-- claim), so it carries no SET search_path and names its operators
-- OPERATOR(pg_catalog.<=): a look-alike <= on the caller's path cannot
-- capture it. Body as in sql/install/20_queue.sql.

CREATE OR REPLACE FUNCTION tforge.resources_fit(requirement tforge.resources, capacity tforge.resources) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (($1).cpu IS NULL OR ($2).cpu IS NULL OR ($1).cpu OPERATOR(pg_catalog.<=) ($2).cpu)
     AND (($1).memory_bytes IS NULL OR ($2).memory_bytes IS NULL OR ($1).memory_bytes OPERATOR(pg_catalog.<=) ($2).memory_bytes)
     AND (($1).gpu_count IS NULL OR ($2).gpu_count IS NULL OR ($1).gpu_count OPERATOR(pg_catalog.<=) ($2).gpu_count)
     AND (($1).gpu_memory_bytes IS NULL OR ($2).gpu_memory_bytes IS NULL OR ($1).gpu_memory_bytes OPERATOR(pg_catalog.<=) ($2).gpu_memory_bytes)
$$;
