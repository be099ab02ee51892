-- Tasks, tau and the deadline queue (DESIGN.md component 1).
--
-- A task type's learned runtime (tau, seconds) follows an exponential moving
-- average of the runtimes its completions report. A task's deadline is fixed
-- at submit: deadline = arrival + sla_multiplier * tau. Workers claim the
-- task with the least laxity first: laxity = deadline - now() - predicted,
-- and since now() is common to every candidate this orders exactly like
-- laxity_key = deadline - predicted, which is stored and indexed, so a claim
-- is an index scan whatever the queue's length.
--
-- The worker-facing functions are SECURITY DEFINER with a pinned search_path,
-- so tforge_worker needs no privilege on the tables. submit_task,
-- claim_tasks and complete_task, which every worker cycle runs, are C over
-- SPI with plans kept per backend (queue.c); heartbeat and fail_task, off
-- the hot path, are PL/pgSQL and pin plan_cache_mode = force_generic_plan:
-- their statements look up one row by key, and without the setting PL/pgSQL
-- may re-plan a statement whose custom plans look cheaper than the generic
-- one, which costs more than the statement itself.

CREATE FUNCTION tforge.ema(old float8, sample float8, lambda float8) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_ema'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge.ema(float8, float8, float8) IS
  'exponential moving average step: lambda * sample + (1 - lambda) * old; lambda in [0,1], finite inputs';

-- Task types -----------------------------------------------------------------

-- The one definition of a duration tau can learn from: more than 0 and at
-- most 1e9 seconds (about 31 years; anything longer is a broken clock).
-- It is LearnableSeconds in queue.h, which the queue's C code uses; the
-- CHECK constraints of task_types and task_tau and _check_seconds (the
-- refusal of define_task_type and set_tau) call it rather than repeat it.
CREATE FUNCTION tforge._positive_or_null(value float8) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_positive_or_null'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._positive_or_null(float8) IS 'internal: value if it is a runtime tau can learn from (seconds in (0, 1e9]), else NULL';

CREATE TABLE tforge.task_types (
  name          text PRIMARY KEY CHECK (name <> ''),
  default_tau_s float8 NOT NULL CHECK (tforge._positive_or_null(default_tau_s) IS NOT NULL),
  lambda        float8 CHECK (lambda >= 0 AND lambda <= 1),
  builtin       boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tforge.task_types IS
  'task types: default runtime (tau before any completion, seconds) and an optional per-type EMA lambda';
COMMENT ON COLUMN tforge.task_types.lambda IS 'EMA weight for this type; NULL uses tforge.ema_lambda';
COMMENT ON COLUMN tforge.task_types.builtin IS 'one of the six types the extension creates (not dumped: CREATE EXTENSION makes them)';

INSERT INTO tforge.task_types (name, default_tau_s, builtin) VALUES
  ('cpu-light', 5, true), ('cpu-heavy', 15, true), ('memory-heavy', 20, true),
  ('gpu-inference', 10, true), ('gpu-training', 60, true), ('mixed', 10, true);

-- Learned state apart from the definitions, so that pg_dump keeps every
-- learned tau while the built-in definitions come from CREATE EXTENSION.
CREATE TABLE tforge.task_tau (
  task_type  text PRIMARY KEY REFERENCES tforge.task_types (name) ON DELETE CASCADE,
  tau_s      float8 NOT NULL CHECK (tforge._positive_or_null(tau_s) IS NOT NULL),
  samples    bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
) WITH (fillfactor = 10);  -- a few rows, each rewritten by every completion: room for HOT updates, short chains
COMMENT ON TABLE tforge.task_tau IS
  'learned tau per task type (seconds) and how many runtimes it has absorbed; a type without a row uses its default';

SELECT pg_catalog.pg_extension_config_dump('tforge.task_types', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('tforge.task_tau', '');

-- Raise 42704 unless the task type exists (22004 for NULL: a NULL type is
-- refused here rather than by a NOT NULL column of the table it would reach).
CREATE FUNCTION tforge._task_type(task_type text) RETURNS tforge.task_types
  LANGUAGE plpgsql STABLE AS $$
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

-- Raise 22023 unless value is a duration tau can hold (see _positive_or_null;
-- 22004 for NULL). C, so that the bound and its wording live in queue.h.
CREATE FUNCTION tforge._check_seconds(value float8, what text) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_check_seconds'
  LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION tforge._check_seconds(float8, text) IS 'internal: returns value, or error 22023 unless it is a number of seconds in (0, 1e9] (22004 for NULL)';

CREATE FUNCTION tforge.define_task_type(name text, default_tau_s float8, lambda float8 DEFAULT NULL)
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
COMMENT ON FUNCTION tforge.define_task_type(text, float8, float8) IS
  'defines a task type with its default runtime in seconds and an optional EMA lambda in [0,1]';

CREATE FUNCTION tforge.get_tau(task_type text) RETURNS float8
  LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
  t tforge.task_types := tforge._task_type(task_type);
  tau float8;
BEGIN
  SELECT s.tau_s INTO tau FROM tforge.task_tau s WHERE s.task_type = t.name;
  RETURN coalesce(tau, t.default_tau_s);
END
$$;
COMMENT ON FUNCTION tforge.get_tau(text) IS
  'current learned runtime (tau, seconds) of a task type; its default until a runtime has been learned';

CREATE FUNCTION tforge.set_tau(task_type text, tau float8) RETURNS float8
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  t tforge.task_types := tforge._task_type(task_type);
BEGIN
  PERFORM tforge._check_seconds(tau, 'tau');
  INSERT INTO tforge.task_tau AS s (task_type, tau_s) VALUES (t.name, tau)
  ON CONFLICT ON CONSTRAINT task_tau_pkey DO UPDATE SET tau_s = excluded.tau_s, updated_at = pg_catalog.now();
  RETURN tau;
END
$$;
COMMENT ON FUNCTION tforge.set_tau(text, float8) IS
  'overrides a task type''s tau (seconds, positive and finite); later completions keep learning from it';

CREATE FUNCTION tforge.update_tau(task_type text, runtime_s float8) RETURNS float8
  AS 'MODULE_PATHNAME', 'tforge_update_tau'
  LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.update_tau(text, float8) IS
  'absorbs one observed runtime (seconds) into the type''s tau: lambda * runtime + (1 - lambda) * tau; returns the new tau';

CREATE FUNCTION tforge.reset_tau(task_type text DEFAULT NULL) RETURNS integer
  LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  n integer;
BEGIN
  IF task_type IS NULL THEN
    DELETE FROM tforge.task_tau;
  ELSE
    PERFORM tforge._task_type(task_type);
    DELETE FROM tforge.task_tau s WHERE s.task_type = reset_tau.task_type;
  END IF;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
COMMENT ON FUNCTION tforge.reset_tau(text) IS
  'forgets the learned tau of one task type (or of all when NULL), returning to defaults; returns how many were reset';

-- Resources ------------------------------------------------------------------

CREATE TYPE tforge.resources AS (
  cpu              float8,
  memory_bytes     bigint,
  gpu_count        integer,
  gpu_memory_bytes bigint
);
COMMENT ON TYPE tforge.resources IS
  'resources a task needs or a worker offers; a NULL field means "not needed" in a requirement and "unlimited" in a capacity';

CREATE FUNCTION tforge.resources_fit(requirement tforge.resources, capacity tforge.resources) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (($1).cpu IS NULL OR ($2).cpu IS NULL OR ($1).cpu OPERATOR(pg_catalog.<=) ($2).cpu)
     AND (($1).memory_bytes IS NULL OR ($2).memory_bytes IS NULL OR ($1).memory_bytes OPERATOR(pg_catalog.<=) ($2).memory_bytes)
     AND (($1).gpu_count IS NULL OR ($2).gpu_count IS NULL OR ($1).gpu_count OPERATOR(pg_catalog.<=) ($2).gpu_count)
     AND (($1).gpu_memory_bytes IS NULL OR ($2).gpu_memory_bytes IS NULL OR ($1).gpu_memory_bytes OPERATOR(pg_catalog.<=) ($2).gpu_memory_bytes)
$$;
COMMENT ON FUNCTION tforge.resources_fit(tforge.resources, tforge.resources) IS
  'true when every non-NULL field of the requirement is at most the capacity''s field (NULL capacity = unlimited)';

-- The queue ------------------------------------------------------------------

CREATE TYPE tforge.task_status AS ENUM ('pending', 'running', 'done', 'dead');
COMMENT ON TYPE tforge.task_status IS
  'pending (claimable once available_at has passed), running (leased to a worker), done, dead (attempts exhausted or failed without retry)';

-- A domain rather than a CHECK on tasks: PostgreSQL evaluates a table's
-- CHECK constraints on every UPDATE of a row, and every claim and
-- completion updates a task; a domain is checked only where the column is
-- written.
CREATE DOMAIN tforge.attempt_limit AS integer CHECK (VALUE >= 1);
COMMENT ON DOMAIN tforge.attempt_limit IS 'how many claims a task may use before it is dead: at least 1';

CREATE TABLE tforge.tasks (
  task_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_type             text NOT NULL,  -- a row of task_types: see tasks_type_exists below
  task_key              text,
  payload               jsonb NOT NULL DEFAULT '{}',
  resources             tforge.resources,
  priority              integer NOT NULL DEFAULT 0,
  status                tforge.task_status NOT NULL DEFAULT 'pending',
  submitted_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
  deadline              timestamptz NOT NULL,
  predicted_runtime_s   float8 NOT NULL,
  laxity_key            timestamptz NOT NULL,
  prediction_strategy   text NOT NULL DEFAULT 'tau',
  prediction_confidence float8,
  prediction_source     text NOT NULL DEFAULT 'type',
  available_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
  attempts              integer NOT NULL DEFAULT 0,
  max_attempts          tforge.attempt_limit NOT NULL,
  worker_id             text,
  claimed_at            timestamptz,
  lease_s               float8,
  lease_expires_at      timestamptz,
  completed_at          timestamptz,
  runtime_s             float8,
  usage                 jsonb,
  deadline_met          boolean,
  last_error            text,
  -- what every estimation strategy predicted at submit (30_learning.sql)
  predictions           float8[],
  prediction_confidences float8[],
  predictions_source    text,
  claim_token           bigint
);
COMMENT ON TABLE tforge.tasks IS 'the task queue: one row per task, from submit to done or dead';
COMMENT ON COLUMN tforge.tasks.laxity_key IS 'deadline - predicted runtime: orders tasks by least laxity, independent of the clock';
COMMENT ON COLUMN tforge.tasks.predicted_runtime_s IS 'runtime predicted at submit (tau, or the learned estimate), seconds';
COMMENT ON COLUMN tforge.tasks.prediction_strategy IS 'what produced predicted_runtime_s: tau, or an estimation strategy';
COMMENT ON COLUMN tforge.tasks.available_at IS 'not claimable before this time (retry backoff)';
COMMENT ON COLUMN tforge.tasks.attempts IS 'how many times the task has been claimed';
COMMENT ON COLUMN tforge.tasks.runtime_s IS 'observed runtime: usage->runtime_s when the worker reported it, else claim to completion';
COMMENT ON COLUMN tforge.tasks.claim_token IS 'fencing token of the latest claim (from tforge.claim_token_seq): heartbeat, complete_task and fail_task given a token refuse (55000) any other claim of the task';

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

-- Fencing tokens: one value per claim, never handed out twice (not even when
-- an operator resets a task's attempts, or after a dump and restore), so a
-- worker holding an earlier claim of a task is told apart from the current
-- one even when both use the same worker id.
CREATE SEQUENCE tforge.claim_token_seq;
COMMENT ON SEQUENCE tforge.claim_token_seq IS 'fencing tokens of claims (tforge.tasks.claim_token)';
SELECT pg_catalog.pg_extension_config_dump('tforge.claim_token_seq', '');

-- The claim's scan: least laxity, then priority (higher first), then arrival.
-- (A claim of some types only uses tasks_type_claim_idx when the operator
-- created it: README, "Workers choose what they serve"; src/claim_typed.c.)
CREATE INDEX tasks_claim_idx ON tforge.tasks (laxity_key, priority DESC, submitted_at, task_id)
  WHERE status = 'pending';
-- Expired leases are found without scanning running tasks. Only running
-- tasks have a lease; the index is partial on the lease rather than on the
-- status so that the planner never prefers it to the primary key for a
-- statement that names one running task.
CREATE INDEX tasks_lease_idx ON tforge.tasks (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
-- A claim walks tasks_claim_idx from its head, over the entries of the
-- tasks claimed since the last vacuum: a claimed task's entry is only
-- marked dead by the scans that pass it, and stays on its page until a
-- vacuum removes it (no insert ever lands at the head to make room). The
-- default threshold, a fifth of the table, grows with the done tasks the
-- table keeps for tforge.task_retention, and so would the claims' walk:
-- the queue is vacuumed when 1% of it, and at least 1,000 rows, are dead.
ALTER TABLE tforge.tasks SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

SELECT pg_catalog.pg_extension_config_dump('tforge.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('tforge.tasks_task_id_seq', '');

CREATE FUNCTION tforge._deadline_offset(sla_multiplier float8, tau float8) RETURNS interval
  AS 'MODULE_PATHNAME', 'tforge_deadline_offset'
  LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION tforge._deadline_offset(float8, float8) IS
  'internal: sla_multiplier * tau seconds as an interval, or error 22003 beyond 1e11 seconds';

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

CREATE FUNCTION tforge.expire_leases() RETURNS integer
  AS 'MODULE_PATHNAME', 'tforge_expire_leases'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.expire_leases() IS
  'makes tasks whose lease expired claimable again (or dead once max_attempts claims were used); returns how many';

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

-- tforge.purge_tasks() is in 30_learning.sql: it archives prediction scores.

CREATE VIEW tforge.queue_status AS
SELECT tt.name AS task_type,
       count(k.task_id) FILTER (WHERE k.status = 'pending') AS pending,
       count(k.task_id) FILTER (WHERE k.status = 'running') AS running,
       count(k.task_id) FILTER (WHERE k.status = 'done') AS done,
       count(k.task_id) FILTER (WHERE k.status = 'dead') AS dead,
       count(k.task_id) FILTER (WHERE k.status = 'done' AND NOT k.deadline_met) AS deadline_misses,
       coalesce(s.tau_s, tt.default_tau_s) AS tau_s,
       coalesce(s.samples, 0) AS tau_samples
  FROM tforge.task_types tt
  LEFT JOIN tforge.task_tau s ON s.task_type = tt.name
  LEFT JOIN tforge.tasks k ON k.task_type = tt.name
 GROUP BY tt.name, s.tau_s, tt.default_tau_s, s.samples;
COMMENT ON VIEW tforge.queue_status IS
  'per task type: tasks pending, running, done, dead, deadlines missed by done tasks, and the current tau (seconds)';

GRANT EXECUTE ON FUNCTION tforge.submit_task(text, jsonb, tforge.resources, integer, text, float8, integer, float8),
                          tforge.claim_tasks(text, integer, tforge.resources, interval, text, text[]),
                          tforge.heartbeat(bigint, text, bigint),
                          tforge.complete_task(bigint, text, jsonb, bigint),
                          tforge.fail_task(bigint, text, text, boolean, bigint),
                          tforge.expire_leases()
   TO tforge_worker;
