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
-- 0.1.0 -> 0.2.0: changes to the queue's 0.1.0 objects (install fragment
-- sql/install/20_queue.sql holds the same definitions).

-- claim_tasks gains a trailing gpu_device parameter (GPU memory pools,
-- issue 10): DROP + CREATE, as the signature changes; the grant is renewed.
DROP FUNCTION tforge.claim_tasks(text, integer, tforge.resources, interval);
CREATE FUNCTION tforge.claim_tasks(
    worker_id text,
    max_tasks integer DEFAULT 1,
    capacity  tforge.resources DEFAULT NULL,
    lease     interval DEFAULT '5 min',
    gpu_device text DEFAULT NULL)
  RETURNS SETOF tforge.tasks
  AS 'MODULE_PATHNAME', 'tforge_claim_tasks'
  LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
  SET search_path = pg_catalog, pg_temp
  -- The claim must walk tasks_claim_idx in order whatever the statistics say:
  -- a queue filled since the last ANALYZE looks tiny to the planner, which
  -- would then sort every pending task to find the first.
  SET enable_sort = off;
COMMENT ON FUNCTION tforge.claim_tasks(text, integer, tforge.resources, interval, text) IS
  'leases up to max_tasks pending tasks that fit capacity, least laxity first, then priority, then arrival; concurrent claimers never get the same task; with gpu_device, each claimed task''s gpu_memory_bytes is allocated on that device in the same transaction (tensor task:<task_id>) and tasks that do not fit its free memory are passed over';
GRANT EXECUTE ON FUNCTION tforge.claim_tasks(text, integer, tforge.resources, interval, text) TO tforge_worker;
