-- Batches (new in 0.2.0): many submits, completions or failures in one
-- statement. submit_tasks (C, src/submit_batch.c) inserts its tasks in one
-- INSERT, each with the columns submit_task would give it. complete_tasks
-- and fail_tasks apply their items in array order through the single-task
-- functions (complete_task, fail_task), so a batch learns exactly what the
-- same calls made one at a time learn: tau, profiles and prediction scores
-- are bit-for-bit those of the sequence.
--
-- A completion or failure that the single call would refuse (the task does
-- not exist, is not running for this worker, or runs under another claim
-- token) does not fail the batch: it is reported as a result row and the
-- other items are applied. Argument errors (arrays of different lengths,
-- NULL arrays) still fail the whole statement, before anything changes.
--
-- Wake-ups: every submit_task and submit_tasks NOTIFYs channel tforge_tasks
-- with the task type as payload (wakeup.c); PostgreSQL folds identical
-- notifications of one transaction into one and sends none when the
-- transaction aborts, so a batch wakes the listeners once per type.

-- The batch functions refuse in a read-only transaction and on a standby
-- with 25006 before they look at their arguments, as the C calls do
-- (PreventCommandIfReadOnly).
CREATE FUNCTION tforge._refuse_read_only(what text) RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'on' THEN
    RAISE EXCEPTION 'cannot execute % in a read-only transaction', what USING ERRCODE = '25006';
  END IF;
END
$$;
COMMENT ON FUNCTION tforge._refuse_read_only(text) IS
  'internal: raises 25006 (naming what) in a read-only transaction, which includes every transaction on a standby';

-- Why a task a batch names cannot be completed or failed by worker_id under
-- claim_token: NULL when it can (the row is then locked), else a
-- (status, detail) pair. The rule is HeldTask's (queue.c), stated per item
-- instead of as an error.
CREATE FUNCTION tforge._batch_refusal(task_id bigint, worker_id text, claim_token bigint,
                                      OUT status text, OUT detail text)
  LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_variable
DECLARE
  k record;
BEGIN
  IF task_id IS NULL THEN
    status := 'missing'; detail := 'task_id is NULL';
    RETURN;
  END IF;
  SELECT t.status, t.worker_id, t.claim_token INTO k
    FROM tforge.tasks t WHERE t.task_id = task_id FOR UPDATE;
  IF NOT FOUND THEN
    status := 'missing'; detail := pg_catalog.format('task %s does not exist', task_id);
  ELSIF k.status OPERATOR(pg_catalog.<>) 'running'::tforge.task_status THEN
    status := 'not_held'; detail := pg_catalog.format('task %s is %s', task_id, k.status);
  ELSIF k.worker_id IS DISTINCT FROM worker_id THEN
    status := 'not_held';
    detail := pg_catalog.format('task %s is running for worker "%s"', task_id, coalesce(k.worker_id, ''));
  ELSIF claim_token IS NOT NULL AND k.claim_token IS DISTINCT FROM claim_token THEN
    status := 'stale_token';
    detail := pg_catalog.format('task %s was claimed again: claim token %s is stale, the current claim is %s',
                                task_id, claim_token, coalesce(k.claim_token::text, 'without a token'));
  END IF;
END
$$;
COMMENT ON FUNCTION tforge._batch_refusal(bigint, text, bigint) IS
  'internal: NULL status if worker_id holds the running task (under claim_token when not NULL; the row is then locked), else why not: missing, not_held or stale_token, with a detail';

-- submit_tasks is C (src/submit_batch.c): one INSERT of all the rows, the
-- learned state read once per task key, the same columns as submit_task.
CREATE FUNCTION tforge.submit_tasks(
    task_type      text,
    payloads       jsonb[],
    task_keys      text[] DEFAULT NULL,
    priorities     integer[] DEFAULT NULL,
    resources      tforge.resources[] DEFAULT NULL,
    sla_multiplier float8 DEFAULT NULL,
    max_attempts   integer DEFAULT NULL)
  RETURNS SETOF bigint
  AS 'MODULE_PATHNAME', 'tforge_submit_tasks'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.submit_tasks(text, jsonb[], text[], integer[], tforge.resources[], float8, integer) IS
  'queues one task of task_type per payload (a NULL payload is {}), with the task_keys, priorities and resources at the same positions (each array NULL or as long as payloads; a NULL element is no key, priority 0, no resources), with the columns submit_task would give each, in one INSERT; admission control admits or refuses the batch as a whole (one RED draw, one rate token per task); returns the task_ids in order and NOTIFYs tforge_tasks once with the task type';

CREATE FUNCTION tforge.complete_tasks(
    worker_id    text,
    task_ids     bigint[],
    usages       jsonb[] DEFAULT NULL,
    claim_tokens bigint[] DEFAULT NULL)
  RETURNS TABLE (task_id bigint, status text, detail text)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_variable
DECLARE
  n integer := coalesce(pg_catalog.cardinality(task_ids), 0);
  r record;
BEGIN
  PERFORM tforge._refuse_read_only('tforge.complete_tasks()');
  IF worker_id IS NULL THEN
    RAISE EXCEPTION 'worker_id must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF task_ids IS NULL THEN
    RAISE EXCEPTION 'task_ids must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF (usages IS NOT NULL AND pg_catalog.cardinality(usages) OPERATOR(pg_catalog.<>) n)
     OR (claim_tokens IS NOT NULL AND pg_catalog.cardinality(claim_tokens) OPERATOR(pg_catalog.<>) n) THEN
    RAISE EXCEPTION 'usages and claim_tokens must be NULL or as long as task_ids (%)', n
      USING ERRCODE = '22023';
  END IF;
  FOR i IN 1 .. n LOOP
    task_id := task_ids[i];
    r := tforge._batch_refusal(task_id, worker_id, claim_tokens[i]);
    IF r.status IS NULL THEN
      PERFORM tforge.complete_task(task_id, worker_id, usages[i], claim_tokens[i]);
      status := 'done'; detail := NULL;
    ELSE
      status := r.status; detail := r.detail;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION tforge.complete_tasks(text, bigint[], jsonb[], bigint[]) IS
  'completes the tasks held by worker_id in array order, each exactly as complete_task(task_ids[i], worker_id, usages[i], claim_tokens[i]) would; one row per item: status done, or missing / not_held / stale_token (with a detail) for an item that was left unchanged while the others were completed';

CREATE FUNCTION tforge.fail_tasks(
    worker_id    text,
    task_ids     bigint[],
    errors       text[],
    retry        boolean DEFAULT true,
    claim_tokens bigint[] DEFAULT NULL)
  RETURNS TABLE (task_id bigint, status text, detail text)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_variable
DECLARE
  n integer := coalesce(pg_catalog.cardinality(task_ids), 0);
  r record;
BEGIN
  PERFORM tforge._refuse_read_only('tforge.fail_tasks()');
  IF worker_id IS NULL THEN
    RAISE EXCEPTION 'worker_id must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF task_ids IS NULL THEN
    RAISE EXCEPTION 'task_ids must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF (errors IS NOT NULL AND pg_catalog.cardinality(errors) OPERATOR(pg_catalog.<>) n)
     OR (claim_tokens IS NOT NULL AND pg_catalog.cardinality(claim_tokens) OPERATOR(pg_catalog.<>) n) THEN
    RAISE EXCEPTION 'errors and claim_tokens must be NULL or as long as task_ids (%)', n
      USING ERRCODE = '22023';
  END IF;
  FOR i IN 1 .. n LOOP
    task_id := task_ids[i];
    r := tforge._batch_refusal(task_id, worker_id, claim_tokens[i]);
    IF r.status IS NULL THEN
      status := tforge.fail_task(task_id, worker_id, errors[i], retry, claim_tokens[i])::text;
      detail := NULL;
    ELSE
      status := r.status; detail := r.detail;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION tforge.fail_tasks(text, bigint[], text[], boolean, bigint[]) IS
  'records failures of the tasks held by worker_id in array order, each exactly as fail_task(task_ids[i], worker_id, errors[i], retry, claim_tokens[i]) would; one row per item: the new status (pending or dead), or missing / not_held / stale_token (with a detail) for an item that was left unchanged while the others were failed';

GRANT EXECUTE ON FUNCTION tforge.submit_tasks(text, jsonb[], text[], integer[], tforge.resources[], float8, integer),
                          tforge.complete_tasks(text, bigint[], jsonb[], bigint[]),
                          tforge.fail_tasks(text, bigint[], text[], boolean, bigint[])
   TO tforge_worker;
