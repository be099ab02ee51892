-- Batches (new in 0.2.0): many submits, completions or failures in one
-- statement however large the batch. submit_tasks (C, src/submit_batch.c)
-- inserts its tasks in one INSERT, each with the columns submit_task would
-- give it. complete_tasks and fail_tasks (C, src/batch.c) update every held
-- task in one UPDATE and learn the completions in array order, so a batch
-- learns exactly what the same calls made one at a time learn: tau, profiles
-- and prediction scores are bit-for-bit those of the sequence.
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

-- complete_tasks and fail_tasks are C (src/batch.c): one UPDATE of every
-- held task of the batch, then, for complete_tasks, the completions learned
-- in array order in memory and each learned row (a key's or type's profile,
-- a type's tau) locked once and written once per batch. An item that names
-- a task not held by worker_id is reported, not applied: status missing
-- (no such task, or a NULL id), not_held (the task is not running, or runs
-- for another worker; also a second item of a task an earlier item of the
-- batch completed) or stale_token (claimed again since the item's token).
CREATE FUNCTION tforge.complete_tasks(
    worker_id    text,
    task_ids     bigint[],
    usages       jsonb[] DEFAULT NULL,
    claim_tokens bigint[] DEFAULT NULL)
  RETURNS TABLE (task_id bigint, status text, detail text)
  AS 'MODULE_PATHNAME', 'tforge_complete_tasks'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.complete_tasks(text, bigint[], jsonb[], bigint[]) IS
  'completes the tasks held by worker_id in one statement, learning tau, profiles and scores exactly as complete_task(task_ids[i], worker_id, usages[i], claim_tokens[i]) one at a time in array order would, each learned row written once per batch; one row per item: status done, or missing / not_held / stale_token (with a detail) for an item left unchanged while the others were completed';

CREATE FUNCTION tforge.fail_tasks(
    worker_id    text,
    task_ids     bigint[],
    errors       text[],
    retry        boolean DEFAULT true,
    claim_tokens bigint[] DEFAULT NULL)
  RETURNS TABLE (task_id bigint, status text, detail text)
  AS 'MODULE_PATHNAME', 'tforge_fail_tasks'
  LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tforge.fail_tasks(text, bigint[], text[], boolean, bigint[]) IS
  'records failures of the tasks held by worker_id in one statement, each as fail_task(task_ids[i], worker_id, errors[i], retry, claim_tokens[i]) would; one row per item: the new status (pending or dead), or missing / not_held / stale_token (with a detail) for an item left unchanged while the others were failed';

GRANT EXECUTE ON FUNCTION tforge.submit_tasks(text, jsonb[], text[], integer[], tforge.resources[], float8, integer),
                          tforge.complete_tasks(text, bigint[], jsonb[], bigint[]),
                          tforge.fail_tasks(text, bigint[], text[], boolean, bigint[])
   TO tforge_worker;
