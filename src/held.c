/*
 * held.c: the one definition of "worker_id holds task_id" and of every
 * refusal it gives, for one task and for a batch.
 *
 * A worker holds a task when the task is running, leased to the worker
 * and, when the worker gives its claim token, under that claim. Without a
 * token a worker id is the only identity, so a worker id that claimed the
 * task again (after its lease expired) holds the new claim: workers that
 * may share an id pass their token.
 *
 * complete_task, complete_tasks and fail_tasks run the rule as the WHERE
 * clause of their UPDATE (queue.c, batch.c) and come here only to explain
 * a task it left out; heartbeat and fail_task (PL/pgSQL) lock the task
 * through _held_task. Whoever asks, the reason is decided by RefusalOf and
 * put in words by RefusalText: a single call raises it (42704 for a task
 * that does not exist, else 55000, the words in the errdetail), a batch
 * reports it as the item's status row (missing, not_held or stale_token,
 * the same words in the detail).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "queue.h"
#include "tforge.h"

/* What says who holds a task, after the columns before it. */
#define HOLDER_COLUMNS " t.status::text, t.worker_id, t.claim_token"
#define HOLDER_COLUMNS_010 " t.status::text, t.worker_id, NULL::bigint"

/* A task, locked, with who holds it ([0]: in a 0.1.0 schema). */
static QueueStatement held_by[2] = {
	{"SELECT t," HOLDER_COLUMNS_010 " FROM tforge.tasks t WHERE t.task_id = $1 FOR UPDATE", 1, {INT8OID}},
	{"SELECT t," HOLDER_COLUMNS " FROM tforge.tasks t WHERE t.task_id = $1 FOR UPDATE", 1, {INT8OID}}
};

/* Who holds the tasks $1 (a batch's; batches are 0.2.0's). */
static QueueStatement holders = {
	"SELECT t.task_id," HOLDER_COLUMNS " FROM tforge.tasks t WHERE t.task_id = ANY ($1)",
	1, {INT8ARRAYOID}
};

/* Who holds a task (HOLDER_COLUMNS). */
typedef struct Holder
{
	const char *status;
	const char *worker;			/* NULL: none */
	bool		noclaim;
	int64		claim;
} Holder;

/* Why a worker does not hold a task, or TASK_HELD. */
typedef enum Refusal
{
	TASK_HELD,
	TASK_MISSING,
	TASK_NOT_RUNNING,
	TASK_OTHER_WORKER,
	TASK_STALE_TOKEN
} Refusal;

/* Columns col .. col + 2 of result row row (HOLDER_COLUMNS). */
static void
ReadHolder(uint64 row, int col, Holder *h)
{
	bool		isnull;
	bool		noworker;
	Datum		worker;

	h->status = TextDatumGetCString(ResultValue(row, col, &isnull));
	worker = ResultValue(row, col + 1, &noworker);
	h->worker = noworker ? NULL : TextDatumGetCString(worker);
	h->claim = DatumGetInt64(ResultValue(row, col + 2, &h->noclaim));
}

/* The rule: whether worker_id (under token unless notoken) holds the task h (NULL: none). */
static Refusal
RefusalOf(const Holder *h, const char *worker_id, bool notoken, int64 token)
{
	if (h == NULL)
		return TASK_MISSING;
	if (strcmp(h->status, "running") != 0)
		return TASK_NOT_RUNNING;
	if (h->worker == NULL || strcmp(h->worker, worker_id) != 0)
		return TASK_OTHER_WORKER;
	if (!notoken && (h->noclaim || h->claim != token))
		return TASK_STALE_TOKEN;
	return TASK_HELD;
}

/*
 * The refusal in words, to follow "task <id> " or "The task ". TASK_HELD
 * here means that what (a statement) found the task not held and it is
 * held now: a claim committed in between.
 */
static char *
RefusalText(Refusal r, const Holder *h, const char *worker_id, int64 token, const char *what)
{
	switch (r)
	{
		case TASK_MISSING:
			return "does not exist";
		case TASK_NOT_RUNNING:
			return psprintf("is %s", h->status);
		case TASK_OTHER_WORKER:
			return psprintf("is running for worker \"%s\"", h->worker ? h->worker : "");
		case TASK_STALE_TOKEN:
			return psprintf("was claimed again: claim token " INT64_FORMAT " is stale, the current claim is %s",
							token, h->noclaim ? "without a token" : psprintf(INT64_FORMAT, h->claim));
		case TASK_HELD:
			break;
	}
	return psprintf("was not running for worker \"%s\" when %s was applied", worker_id, what);
}

/* A batch item's status for the refusal. */
static const char *
RefusalStatus(Refusal r)
{
	return r == TASK_MISSING ? "missing" : r == TASK_STALE_TOKEN ? "stale_token" : "not_held";
}

static void Refuse(Refusal r, int64 task_id, const Holder *h, const char *worker_id, int64 token,
				   const char *what) pg_attribute_noreturn();

/* Raise refusal r of task_id (42704 when it does not exist, else 55000). */
static void
Refuse(Refusal r, int64 task_id, const Holder *h, const char *worker_id, int64 token, const char *what)
{
	if (r == TASK_MISSING)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task " INT64_FORMAT " %s", task_id, RefusalText(r, h, worker_id, token, what))));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("task " INT64_FORMAT " is not held by worker \"%s\"", task_id, worker_id),
			 errdetail("The task %s.", RefusalText(r, h, worker_id, token, what)),
			 errhint("A worker may only heartbeat, complete or fail a task it has claimed and whose lease has not been given to another worker.")));
}

/* The task, locked, in the caller's memory context, and who holds it; false when there is none. */
static bool
LockTask(int64 task_id, bool tokens, Datum *task, Holder *h)
{
	Datum		v = Int64GetDatum(task_id);
	bool		n = false;
	bool		isnull;

	if (Execute(&held_by[tokens ? 1 : 0], InvalidOid, &v, &n, 1) == 0)
		return false;
	*task = SPI_datumTransfer(ResultValue(0, 1, &isnull), false, -1);
	ReadHolder(0, 2, h);
	return true;
}

/*
 * Lock the task held by worker_id (under token unless notoken; tokens:
 * the schema has them) and return it, or raise why it is not held.
 */
Datum
HeldTask(int64 task_id, const char *worker_id, bool notoken, int64 token, bool tokens)
{
	Datum		task = (Datum) 0;
	Holder		h = {0};
	bool		found = LockTask(task_id, tokens, &task, &h);
	Refusal		r = RefusalOf(found ? &h : NULL, worker_id, notoken, token);

	if (r != TASK_HELD)
		Refuse(r, task_id, &h, worker_id, token, NULL);
	return task;
}

/*
 * Raise why complete_task's UPDATE left the task out: as HeldTask, and
 * when the task is held by now (a claim committed after the UPDATE's
 * snapshot), 55000 all the same: the completion was not applied.
 */
void
TaskNotHeld(int64 task_id, const char *worker_id, bool notoken, int64 token, bool tokens)
{
	Datum		task;
	Holder		h = {0};
	bool		found = LockTask(task_id, tokens, &task, &h);

	Refuse(RefusalOf(found ? &h : NULL, worker_id, notoken, token), task_id, &h, worker_id, token,
		   "the completion");
}

/*
 * _held_task(task_id, worker_id, claim_token) -> tasks
 *
 * HeldTask for heartbeat and fail_task (PL/pgSQL), so that the rule and its
 * error have one definition.
 */
PG_FUNCTION_INFO_V1(tforge_held_task);
Datum
tforge_held_task(PG_FUNCTION_ARGS)
{
	Datum		task;

	RequireArg(fcinfo, 0, "task_id");
	RequireArg(fcinfo, 1, "worker_id");
	CheckWritable("tforge._held_task()");
	SPI_connect();
	task = HeldTask(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
					PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2), true);
	SPI_finish();
	PG_RETURN_DATUM(task);
}

static int
CompareRefusedIds(const void *a, const void *b, void *arg)
{
	const RefusedItem *items = (const RefusedItem *) arg;
	int64		x = items[*(const int *) a].task_id;
	int64		y = items[*(const int *) b].task_id;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Why worker_id does not hold each of items[0 .. n-1], which what (a
 * statement) left out: status and detail ("task <id> <RefusalText>") of
 * each, from the tasks as they stand now, read in one statement. The items
 * are sorted by task id once and each task's row finds its items by binary
 * search: O(n log n) however many items name one task.
 */
void
TaskRefusals(RefusedItem *items, int n, const char *worker_id, const char *what)
{
	int		   *order;
	Datum	   *ids;
	int			nids = 0;
	int			i;
	uint64		rows;
	uint64		r;
	Datum		arg;
	bool		argnull = false;

	if (n <= 0)
		return;
	order = palloc(sizeof(int) * n);
	ids = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
	{
		order[i] = i;
		items[i].status = NULL;
	}
	qsort_arg(order, n, sizeof(int), CompareRefusedIds, items);
	for (i = 0; i < n; i++)
		if (i == 0 || items[order[i]].task_id != items[order[i - 1]].task_id)
			ids[nids++] = Int64GetDatum(items[order[i]].task_id);
	arg = PointerGetDatum(construct_array(ids, nids, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE));
	rows = Execute(&holders, InvalidOid, &arg, &argnull, 0);
	for (r = 0; r < rows; r++)
	{
		bool		isnull;
		int64		task_id = DatumGetInt64(ResultValue(r, 1, &isnull));
		Holder		h;
		int			lo = 0;
		int			hi = n;

		ReadHolder(r, 2, &h);
		/* the first item with this id */
		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (items[order[mid]].task_id < task_id)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < n && items[order[lo]].task_id == task_id; lo++)
		{
			RefusedItem *it = &items[order[lo]];
			Refusal		why = RefusalOf(&h, worker_id, it->notoken, it->token);

			it->status = RefusalStatus(why);
			it->detail = psprintf("task " INT64_FORMAT " %s", task_id,
								  RefusalText(why, &h, worker_id, it->token, what));
		}
	}
	ResultRelease();
	pfree(DatumGetPointer(arg));
	/* no row: no such task */
	for (i = 0; i < n; i++)
		if (items[i].status == NULL)
		{
			items[i].status = RefusalStatus(TASK_MISSING);
			items[i].detail = psprintf("task " INT64_FORMAT " %s", items[i].task_id,
									   RefusalText(TASK_MISSING, NULL, worker_id, items[i].token, what));
		}
	pfree(order);
	pfree(ids);
}
