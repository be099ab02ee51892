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
-- issue 10) and a trailing task_types filter (issue 16): DROP + CREATE, as
-- the signature changes; the grant is renewed.
DROP FUNCTION tforge.claim_tasks(text, integer, tforge.resources, interval);
CREATE FUNCTION tforge.claim_tasks(
    worker_id text,
    max_tasks integer DEFAULT 1,
    capacity  tforge.resources DEFAULT NULL,
    lease     interval DEFAULT '5 min',
    gpu_device text DEFAULT NULL,
    task_types text[] DEFAULT NULL)
  RETURNS SETOF tforge.tasks
  AS 'MODULE_PATHNAME', 'tforge_claim_tasks'
  LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
  -- The claim walks tasks_claim_idx in order whatever the statistics say:
  -- its statements are planned with enable_sort off (Execute, statement.c).
  SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.claim_tasks(text, integer, tforge.resources, interval, text, text[]) IS
  'leases up to max_tasks pending tasks that fit capacity, least laxity first, then priority, then arrival; concurrent claimers never get the same task; with gpu_device, each claimed task''s gpu_memory_bytes is allocated on that device in the same transaction (tensor task:<task_id>) and tasks that do not fit its free memory are passed over; with task_types, only tasks of those types are claimed (NULL: any type)';
GRANT EXECUTE ON FUNCTION tforge.claim_tasks(text, integer, tforge.resources, interval, text, text[]) TO tforge_worker;
-- 0.1.0 -> 0.2.0: changes to the queue's 0.1.0 objects (install fragment
-- sql/install/20_queue.sql holds the same definitions).

-- Fencing tokens (issue 13): a sequence, a column at the end of tasks, and
-- a claim_token parameter on the worker calls (DROP + CREATE: the
-- signatures change).
CREATE SEQUENCE tforge.claim_token_seq;
COMMENT ON SEQUENCE tforge.claim_token_seq IS 'fencing tokens of claims (tforge.tasks.claim_token)';
SELECT pg_catalog.pg_extension_config_dump('tforge.claim_token_seq', '');

ALTER TABLE tforge.tasks ADD COLUMN claim_token bigint;
COMMENT ON COLUMN tforge.tasks.claim_token IS 'fencing token of the latest claim (from tforge.claim_token_seq): heartbeat, complete_task and fail_task given a token refuse (55000) any other claim of the task';

DROP FUNCTION tforge.heartbeat(bigint, text);
DROP FUNCTION tforge.complete_task(bigint, text, jsonb);
DROP FUNCTION tforge.fail_task(bigint, text, text, boolean);
DROP FUNCTION tforge._held_task(bigint, text);

-- The running task held by worker (under claim_token when given), locked;
-- 42704 or 55000 otherwise. One definition, in C (HeldTask in queue.c),
-- which complete_task shares.
CREATE FUNCTION tforge._held_task(task_id bigint, worker_id text, claim_token bigint DEFAULT NULL)
  RETURNS tforge.tasks
  AS 'MODULE_PATHNAME', 'tforge_held_task'
  LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge._held_task(bigint, text, bigint) IS
  'internal: locks and returns the running task held by worker_id (under claim_token when not NULL), or raises 42704/55000';

CREATE FUNCTION tforge.heartbeat(task_id bigint, worker_id text, claim_token bigint DEFAULT NULL) RETURNS timestamptz
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  k tforge.tasks := tforge._held_task(task_id, worker_id, claim_token);
  expires timestamptz := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => k.lease_s);
BEGIN
  UPDATE tforge.tasks t SET lease_expires_at = expires WHERE t.task_id = k.task_id;
  RETURN expires;
END
$$;
COMMENT ON FUNCTION tforge.heartbeat(bigint, text, bigint) IS
  'extends the lease of a running task held by worker_id (under claim_token, the claim''s fencing token, when given) by the lease it was claimed with; returns the new expiry';

CREATE FUNCTION tforge.complete_task(task_id bigint, worker_id text, usage jsonb DEFAULT NULL,
                                     claim_token bigint DEFAULT NULL)
  RETURNS tforge.tasks
  AS 'MODULE_PATHNAME', 'tforge_complete_task'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.complete_task(bigint, text, jsonb, bigint) IS
  'marks a task held by worker_id (under claim_token, the claim''s fencing token, when given) done, records its runtime (usage->runtime_s, else claim to now) and, in the same transaction, updates tau and profiles';

-- How long a failed task waits before its next claim (seconds), after its
-- attempts-th claim failed: base * 2^(attempts - 1), at most the cap
-- (tforge.retry_backoff_base, tforge.retry_backoff_max). One definition, in
-- C (tau.c), which fail_task and fail_tasks both call.
CREATE FUNCTION tforge._retry_backoff(attempts integer) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_retry_backoff'
  LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._retry_backoff(integer) IS
  'internal: seconds a task waits before its next claim after its attempts-th claim failed: least(tforge.retry_backoff_max, tforge.retry_backoff_base * 2^(least(attempts - 1, 1000)))';

CREATE FUNCTION tforge.fail_task(task_id bigint, worker_id text, error text, retry boolean DEFAULT true,
                                 claim_token bigint DEFAULT NULL)
  RETURNS tforge.task_status
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  k       tforge.tasks := tforge._held_task(task_id, worker_id, claim_token);
  at      timestamptz := pg_catalog.clock_timestamp();
  backoff float8;
  result  tforge.task_status;
BEGIN
  IF coalesce(retry, true) AND k.attempts < k.max_attempts THEN
    backoff := tforge._retry_backoff(k.attempts);
    result := 'pending';
  ELSE
    result := 'dead';
  END IF;
  UPDATE tforge.tasks t
     SET status = result, last_error = error, worker_id = NULL, lease_expires_at = NULL,
         available_at = CASE WHEN result = 'pending' THEN at + pg_catalog.make_interval(secs => backoff) ELSE t.available_at END,
         completed_at = CASE WHEN result = 'dead' THEN at END
   WHERE t.task_id = k.task_id;
  RETURN result;
END
$$;
COMMENT ON FUNCTION tforge.fail_task(bigint, text, text, boolean, bigint) IS
  'records a failure of a task held by worker_id (under claim_token, the claim''s fencing token, when given): retried after exponential backoff while attempts remain, else dead; returns the new status';

GRANT EXECUTE ON FUNCTION tforge.heartbeat(bigint, text, bigint),
                          tforge.complete_task(bigint, text, jsonb, bigint),
                          tforge.fail_task(bigint, text, text, boolean, bigint)
   TO tforge_worker;

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
  'queues a task; its deadline is now() + sla_multiplier (default tforge.sla_multiplier) * tau of its type, or, with deadline_coverage in (0,1), now() + the runtime its profile''s past runs stayed under with that probability (tforge.estimate''s upper_s) when there is one; NOTIFYs tforge_tasks (payload: the task type) at commit; returns task_id';
GRANT EXECUTE ON FUNCTION tforge.submit_task(text, jsonb, tforge.resources, integer, text, float8, integer, float8)
   TO tforge_worker;

-- One definition of the seconds bound (issue 13): the CHECK constraints of
-- task_types and task_tau call _positive_or_null (LearnableSeconds in C)
-- instead of repeating (0, 1e9]; _check_seconds is C and shares its words.
ALTER TABLE tforge.task_types
  DROP CONSTRAINT task_types_default_tau_s_check,
  ADD CONSTRAINT task_types_default_tau_s_check CHECK (tforge._positive_or_null(default_tau_s) IS NOT NULL);
ALTER TABLE tforge.task_tau
  DROP CONSTRAINT task_tau_tau_s_check,
  ADD CONSTRAINT task_tau_tau_s_check CHECK (tforge._positive_or_null(tau_s) IS NOT NULL);

CREATE OR REPLACE FUNCTION tforge._check_seconds(value float8, what text) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_check_seconds'
  LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._check_seconds(float8, text) IS 'internal: returns value, or error 22023 unless it is a number of seconds in (0, 1e9] (22004 for NULL)';

-- A NULL task type is refused with 22004 (issue 13: set_tau(NULL, ...)
-- reached task_tau's NOT NULL constraint, 23502).
CREATE OR REPLACE FUNCTION tforge._task_type(task_type text) RETURNS tforge.task_types
  LANGUAGE plpgsql STABLE CALLED ON NULL INPUT AS $$
DECLARE
  t tforge.task_types;
BEGIN
  IF task_type IS NULL THEN
    RAISE EXCEPTION 'task type must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT * INTO t FROM tforge.task_types tt WHERE tt.name = task_type;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task type "%" does not exist', task_type
      USING ERRCODE = 'undefined_object',
            HINT = 'Define it with tforge.define_task_type(name, default_tau_s).';
  END IF;
  RETURN t;
END
$$;
COMMENT ON FUNCTION tforge._task_type(text) IS 'internal: the task type''s definition, or error 42704 (22004 for NULL)';

-- define_task_type refuses a NULL name with 22004, not 22023.
CREATE OR REPLACE FUNCTION tforge.define_task_type(name text, default_tau_s float8, lambda float8 DEFAULT NULL)
  RETURNS tforge.task_types
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t tforge.task_types;
BEGIN
  IF name IS NULL THEN
    RAISE EXCEPTION 'name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF name = '' THEN
    RAISE EXCEPTION 'task type name must not be empty' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM tforge._check_seconds(default_tau_s, 'default_tau_s');
  IF lambda IS NOT NULL AND (lambda = 'NaN' OR lambda < 0 OR lambda > 1) THEN
    RAISE EXCEPTION 'lambda must be between 0 and 1, got %', lambda
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO tforge.task_types AS tt (name, default_tau_s, lambda)
  VALUES (define_task_type.name, define_task_type.default_tau_s, define_task_type.lambda)
  ON CONFLICT ON CONSTRAINT task_types_pkey DO NOTHING
  RETURNING * INTO t;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task type "%" already exists', name
      USING ERRCODE = 'duplicate_object',
            HINT = 'Use tforge.set_tau() to change its runtime.';
  END IF;
  RETURN t;
END
$$;

-- tasks.task_type: the foreign key becomes two triggers (install fragment
-- sql/install/20_queue.sql says why).
ALTER TABLE tforge.tasks DROP CONSTRAINT tasks_task_type_fkey;
-- Every task names a task type that exists. A foreign key would lock the
-- type's row FOR KEY SHARE on every submit (a WAL record per task, and a
-- MultiXact whenever two submits of a type overlap), so two triggers keep the
-- rule instead, under every isolation level: a task's type must exist as the
-- latest snapshot sees task_types, and a type that tasks name cannot be
-- deleted, renamed or truncated away (src/task_type_ref.c).
CREATE FUNCTION tforge._task_type_exists() RETURNS trigger
  AS 'MODULE_PATHNAME', 'tforge_task_type_exists'
  LANGUAGE C;
COMMENT ON FUNCTION tforge._task_type_exists() IS
  'internal: trigger refusing (23503) a task whose task_type is not a row of tforge.task_types';
CREATE TRIGGER tasks_type_exists BEFORE INSERT ON tforge.tasks
  FOR EACH ROW EXECUTE FUNCTION tforge._task_type_exists();
COMMENT ON TRIGGER tasks_type_exists ON tforge.tasks IS
  'a new task''s type must exist in tforge.task_types (the foreign key, without locking the type''s row)';
-- AFTER, not BEFORE: any BEFORE UPDATE row trigger, whatever its columns,
-- makes PostgreSQL lock each row before updating it (a WAL record per claim
-- and per completion).
CREATE TRIGGER tasks_type_changed AFTER UPDATE OF task_type ON tforge.tasks
  FOR EACH ROW EXECUTE FUNCTION tforge._task_type_exists();
COMMENT ON TRIGGER tasks_type_changed ON tforge.tasks IS
  'a task moved to another type must name a row of tforge.task_types';
CREATE FUNCTION tforge._task_type_in_use() RETURNS trigger
  AS 'MODULE_PATHNAME', 'tforge_task_type_in_use'
  LANGUAGE C;
COMMENT ON FUNCTION tforge._task_type_in_use() IS
  'internal: trigger refusing (23503) to delete, rename or truncate away a task type that tasks name; waits for tasks being inserted first';
CREATE TRIGGER task_types_in_use BEFORE DELETE OR UPDATE OF name ON tforge.task_types
  FOR EACH ROW EXECUTE FUNCTION tforge._task_type_in_use();
COMMENT ON TRIGGER task_types_in_use ON tforge.task_types IS
  'a task type that tasks name cannot be deleted or renamed (the foreign key''s other side)';
CREATE TRIGGER task_types_truncate BEFORE TRUNCATE ON tforge.task_types
  FOR EACH STATEMENT EXECUTE FUNCTION tforge._task_type_in_use();
COMMENT ON TRIGGER task_types_truncate ON tforge.task_types IS
  'tforge.task_types cannot be truncated while tforge.tasks has rows';

-- Claims walk the dead head of tasks_claim_idx until a vacuum removes it
-- (sql/install/20_queue.sql): the queue is vacuumed when 1% of it is dead.
ALTER TABLE tforge.tasks SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
