-- The queue, 0.1.0 -> 0.2.0: submit_task's deadline_coverage (issue 15).

DROP FUNCTION tforge.submit_task(text, jsonb, tforge.resources, integer, text, float8, integer);
CREATE FUNCTION tforge.submit_task(
    task_type      text,
    payload        jsonb DEFAULT '{}',
    resources      tforge.resources DEFAULT NULL,
    priority       integer DEFAULT 0,
    task_key       text DEFAULT NULL,
    sla_multiplier float8 DEFAULT NULL,
    max_attempts   integer DEFAULT NULL,
    deadline_coverage float8 DEFAULT NULL)
  RETURNS bigint
  AS 'MODULE_PATHNAME', 'tforge_submit_task'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.submit_task(text, jsonb, tforge.resources, integer, text, float8, integer, float8) IS
  'queues a task; its deadline is now() + sla_multiplier (default tforge.sla_multiplier) * tau of its type, or, with deadline_coverage in (0,1), now() + the runtime its profile''s past runs stayed under with that probability (tforge.estimate''s upper_s) when there is one; returns task_id';
GRANT EXECUTE ON FUNCTION tforge.submit_task(text, jsonb, tforge.resources, integer, text, float8, integer, float8)
   TO tforge_worker;
