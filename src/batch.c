/*
 * batch.c: complete_tasks and fail_tasks, a batch of completions or
 * failures in one statement however large (issue 16).
 *
 * complete_tasks(worker_id, task_ids, usages, claim_tokens):
 *
 *   1. one UPDATE marks every held task of the batch done, joined to the
 *      arrays by unnest, each item with its position; its WHERE clause is the one
 *      complete_task's UPDATE has (running, leased to worker_id, under the
 *      item's claim token when it gives one), so the tasks' GPU blocks are
 *      released by the same trigger and a task can only be completed once;
 *      an id given twice is tried once per round (the first occurrence that
 *      holds it wins, as in a sequence of single calls), a round passing
 *      only its own items, so that the rounds together cost O(n);
 *   2. every item the UPDATE did not complete gets a status row saying why
 *      (BatchRefusals, by the rule and in the words of the single calls'
 *      refusals, held.c): missing (no such task, or a NULL id), not_held
 *      (the task is not running, or runs for another worker) or
 *      stale_token (it was claimed again since the item's token): nothing
 *      else of the batch is lost;
 *   3. the completions are learned in array order, in memory: every
 *      learned row the batch touches (each key's profile, each type's
 *      profile and tau) is locked once, in a fixed order (per type in name
 *      order: its keys' profiles in key order, then its profile, then its
 *      tau, the order a single completion writes them in), each completion
 *      is applied to the rows it touches exactly as complete_task applies
 *      it (ProfileLearn, TauLearn: the same functions), the key's learning
 *      reading its type's pooled scoreboard as it stands at that point of
 *      the sequence, and each row is written once (WriteLearned). A row
 *      that does not exist yet is created by the first completion that
 *      touches it, as complete_task creates it. So tau, profiles and scores
 *      after a batch are bit for bit those of the same completions made one
 *      at a time, and a batch of n completions of one type writes its
 *      learned rows once, not n times.
 *
 * fail_tasks(worker_id, task_ids, errors, retry, claim_tokens) is steps 1
 * and 2 with fail_task's changes (retry after exponential backoff while
 * attempts remain, else dead); failures teach nothing.
 *
 * Errors of the learning itself (a type deleted concurrently, 40001 under
 * REPEATABLE READ) fail the whole statement, as they fail complete_task:
 * nothing of the batch is then applied. Argument errors fail it before
 * anything changes.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "estimate.h"
#include "pool.h"
#include "profile.h"
#include "queue.h"
#include "tforge.h"

/*
 * The items of one round of the batch: $1 their task ids, $7 their
 * positions in the batch (1-based), the other arrays theirs in the same
 * order (RoundArgs).
 */
#define BATCH_ITEMS(cols, names) \
	"WITH i AS (SELECT * FROM ROWS FROM (" cols ", pg_catalog.unnest($7)) AS i(" names ", ord))"

/*
 * complete_tasks' UPDATE: complete_task's (queue.c), for every item of the
 * round at once; $3 the time of completion, $5 the runtimes reported.
 */
static QueueStatement complete_batch = {
	BATCH_ITEMS("pg_catalog.unnest($1), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6)", "task_id, usage, reported, token")
	"UPDATE tforge.tasks t"
	COMPLETE_COLUMNS("i.usage", "i.reported")
	"  FROM i"
	" WHERE t.task_id = i.task_id AND t.status = 'running' AND t.worker_id = $2"
	"   AND (i.token IS NULL OR t.claim_token = i.token)"
	COMPLETED_RETURNING("i.ord", COMPLETED_PREDICTIONS),
	7, {INT8ARRAYOID, TEXTOID, TIMESTAMPTZOID, JSONBARRAYOID, FLOAT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID}
};

/*
 * fail_tasks' UPDATE: fail_task's (20_queue.sql), for every item of the
 * round at once: retried ($4: retry) after the backoff fail_task waits too
 * (tforge._retry_backoff, tau.c) while attempts remain, else dead; $3 the
 * time.
 */
#define FAIL_RETRIES "($4 AND t.attempts < t.max_attempts)"
static QueueStatement fail_batch = {
	BATCH_ITEMS("pg_catalog.unnest($1), pg_catalog.unnest($5), pg_catalog.unnest($6)", "task_id, error, token")
	"UPDATE tforge.tasks t"
	"   SET status = CASE WHEN " FAIL_RETRIES " THEN 'pending' ELSE 'dead' END::tforge.task_status,"
	"       last_error = i.error, worker_id = NULL, lease_expires_at = NULL,"
	"       available_at = CASE WHEN " FAIL_RETRIES
	"                      THEN $3 + pg_catalog.make_interval(secs => tforge._retry_backoff(t.attempts))"
	"                      ELSE t.available_at END,"
	"       completed_at = CASE WHEN " FAIL_RETRIES " THEN NULL ELSE $3 END"
	"  FROM i"
	" WHERE t.task_id = i.task_id AND t.status = 'running' AND t.worker_id = $2"
	"   AND (i.token IS NULL OR t.claim_token = i.token)"
	" RETURNING i.ord, t.status::text",
	7, {INT8ARRAYOID, TEXTOID, TIMESTAMPTZOID, BOOLOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID}
};

/* One item of a batch. */
typedef struct BatchItem
{
	int64		task_id;
	bool		noid;
	bool		notoken;
	int64		token;
	int			next_same;		/* the next item with this task_id, -1: none */
	bool		head;			/* the first item with this task_id */
	bool		applied;		/* completed or failed */
	const char *status;			/* the result row's status */
	const char *detail;
} BatchItem;

/*
 * The per-item arrays of a batch of n items (arguments argnos, names),
 * read by GetBatchArray: each NULL or as long as task_ids (22023), a NULL
 * array standing for n NULL elements.
 */
static void
ItemArrays(FunctionCallInfo fcinfo, int n, int narrays, const int *argnos, const char *const *names,
		   BatchArray *arrays)
{
	const BatchArray *check[2];
	int			i;

	Assert(narrays <= lengthof(check));
	for (i = 0; i < narrays; i++)
	{
		GetBatchArray(fcinfo, argnos[i], names[i], &arrays[i]);
		check[i] = &arrays[i];
	}
	CheckBatchLengths("task_ids", n, narrays, names, check);
	for (i = 0; i < narrays; i++)
		if (!arrays[i].given)
		{
			arrays[i].values = palloc0(sizeof(Datum) * Max(n, 1));
			arrays[i].nulls = palloc(sizeof(bool) * Max(n, 1));
			memset(arrays[i].nulls, true, sizeof(bool) * Max(n, 1));
			arrays[i].n = n;
		}
}

/*
 * Bytes a task may take in the largest array a batch allocates (its
 * completion's learning, its learning's three row uses, its item): bounds a
 * batch's size below what palloc accepts. Checked below for each of them.
 */
#define BATCH_TASK_BYTES 512

/*
 * worker_id and task_ids, checked, and the items; the element count. A
 * NULL element of task_ids is an item of no task (status missing).
 */
static int
BatchBegin(FunctionCallInfo fcinfo, const char *function, BatchItem **itemsp)
{
	BatchArray	ids;
	BatchItem  *items;
	int			i;

	CheckWritable(function);
	RequireArg(fcinfo, 0, "worker_id");
	RequireArg(fcinfo, 1, "task_ids");
	GetBatchArray(fcinfo, 1, "task_ids", &ids);
	/* what the largest per-task array of a batch may take (BATCH_TASK_BYTES) */
	if ((Size) ids.n > MaxAllocSize / BATCH_TASK_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a batch of %d tasks is too large", ids.n),
				 errhint("Give at most %d tasks per call.", (int) (MaxAllocSize / BATCH_TASK_BYTES))));
	items = palloc0(sizeof(BatchItem) * Max(ids.n, 1));
	for (i = 0; i < ids.n; i++)
	{
		items[i].noid = ids.nulls[i];
		items[i].task_id = ids.nulls[i] ? 0 : DatumGetInt64(ids.values[i]);
		items[i].next_same = -1;
		items[i].notoken = true;
	}
	*itemsp = items;
	return ids.n;
}

/*
 * The GPU devices the batch's tasks hold memory on, locked in device order
 * before any task row is (PoolLockTaskDevices): releases in the order of
 * the batch's rows would deadlock with a batch that meets the same devices
 * in the other order.
 */
static void
LockBatchDevices(BatchItem *items, int n)
{
	int64	   *ids = palloc(sizeof(int64) * Max(n, 1));
	int			nids = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (!items[i].noid)
			ids[nids++] = items[i].task_id;
	PoolLockTaskDevices(ids, nids, NULL);
}

/* claim_tokens (a NULL element: no token) into the items. */
static void
BatchTokens(const BatchArray *tokens, BatchItem *items, int n)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		items[i].notoken = tokens->nulls[i];
		items[i].token = items[i].notoken ? 0 : DatumGetInt64(tokens->values[i]);
	}
}

static int
CompareItemIds(const void *a, const void *b, void *arg)
{
	const BatchItem *items = (const BatchItem *) arg;
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	if (items[x].task_id != items[y].task_id)
		return items[x].task_id < items[y].task_id ? -1 : 1;
	return x - y;
}

/* Link the items that name the same task (next_same, in array order). */
static void
LinkDuplicates(BatchItem *items, int n)
{
	int		   *order = palloc(sizeof(int) * Max(n, 1));
	int			m = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		items[i].head = !items[i].noid;
		if (!items[i].noid)
			order[m++] = i;
	}
	qsort_arg(order, m, sizeof(int), CompareItemIds, items);
	for (i = 0; i + 1 < m; i++)
		if (items[order[i]].task_id == items[order[i + 1]].task_id)
		{
			items[order[i]].next_same = order[i + 1];
			items[order[i + 1]].head = false;
		}
	pfree(order);
}

/*
 * The rounds of a batch: the first tries each task's first item; each
 * next one, for every item of the last that was not applied, the next item
 * of its task (as in a sequence of single calls, where a later item finds
 * a task an earlier one applied done). round holds the items of the round
 * (in place); returns how many. Each item is tried at most once, so the
 * rounds together cost O(n) however many items name one task.
 */
static int
FirstRound(BatchItem *items, int n, int *round)
{
	int			k = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (items[i].head)
			round[k++] = i;
	return k;
}

static int
NextRound(BatchItem *items, int *round, int k)
{
	int			m = 0;
	int			r;

	for (r = 0; r < k; r++)
		if (!items[round[r]].applied && items[round[r]].next_same >= 0)
			round[m++] = items[round[r]].next_same;
	return m;
}

/* Elements round[0 .. k-1] of values (nulls: NULL, none is NULL) as an array of type. */
static Datum
RoundArray(const Datum *values, const bool *nulls, const int *round, int k, Oid type)
{
	Datum	   *v = palloc(sizeof(Datum) * Max(k, 1));
	bool	   *nl = palloc(sizeof(bool) * Max(k, 1));
	int			dims[1] = {k};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			r;

	for (r = 0; r < k; r++)
	{
		v[r] = values[round[r]];
		nl[r] = nulls != NULL && nulls[round[r]];
	}
	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(v, nl, 1, dims, lbs, type, typlen, typbyval, typalign));
}

/* $1 (the task ids) and $7 (the positions) of a round's statement. */
static void
RoundArgs(BatchItem *items, const int *round, int k, Datum *v)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(k, 1));
	Datum	   *ords = palloc(sizeof(Datum) * Max(k, 1));
	int			r;

	for (r = 0; r < k; r++)
	{
		ids[r] = Int64GetDatum(items[round[r]].task_id);
		ords[r] = Int64GetDatum((int64) round[r] + 1);
	}
	v[0] = PointerGetDatum(construct_array(ids, k, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE));
	v[6] = PointerGetDatum(construct_array(ords, k, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE));
}

/*
 * Why the items which[0 .. m-1] that the batch did not apply were refused:
 * the status and detail TaskRefusals gives (held.c: HeldTask's rule, from
 * the tasks as they stand now); an item without a task_id is missing.
 * Items already explained or applied are skipped, so that an item is
 * explained right after the round that tried it, before a later item of
 * the same task changes the task.
 */
static void
BatchRefusals(BatchItem *items, const int *which, int m, const char *worker_id)
{
	RefusedItem *refused = palloc(sizeof(RefusedItem) * Max(m, 1));
	int		   *from = palloc(sizeof(int) * Max(m, 1));
	int			k = 0;
	int			i;

	for (i = 0; i < m; i++)
	{
		BatchItem  *it = &items[which[i]];

		if (it->applied || it->status != NULL)
			continue;
		if (it->noid)
		{
			it->status = "missing";
			it->detail = "task_id is NULL";
			continue;
		}
		refused[k].task_id = it->task_id;
		refused[k].notoken = it->notoken;
		refused[k].token = it->token;
		from[k++] = which[i];
	}
	TaskRefusals(refused, k, worker_id, "the batch");
	for (i = 0; i < k; i++)
	{
		items[from[i]].status = refused[i].status;
		items[from[i]].detail = refused[i].detail;
	}
	pfree(refused);
	pfree(from);
}

/* BatchRefusals of every item neither applied nor explained yet. */
static void
BatchRefusalsLeft(BatchItem *items, int n, const char *worker_id)
{
	int		   *which = palloc(sizeof(int) * Max(n, 1));
	int			m = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (!items[i].applied && items[i].status == NULL)
			which[m++] = i;
	BatchRefusals(items, which, m, worker_id);
	pfree(which);
}

/* The result rows, one per item in array order. */
static void
BatchResult(FunctionCallInfo fcinfo, BatchItem *items, int n)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	for (i = 0; i < n; i++)
	{
		Datum		v[3];
		bool		nulls[3] = {items[i].noid, false, items[i].detail == NULL};

		v[0] = Int64GetDatum(items[i].task_id);
		v[1] = CStringGetTextDatum(items[i].status);
		v[2] = items[i].detail ? CStringGetTextDatum(items[i].detail) : (Datum) 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, nulls);
	}
}

/* ---- learning a batch in memory ---------------------------------------------- */

/* A learned row the batch touches, locked, with its version in memory. */
typedef struct LearnedRow
{
	int			kind;			/* ROW_KEY, ROW_TYPE, ROW_TAU */
	Datum		task_type;
	Datum		task_key;		/* ROW_KEY only */
	int			first;			/* the first completion that touches it */
	int			created_by;		/* the completion that created the row; -1: none */
	double		lambda;			/* ROW_TAU: the type's EMA weight */
	bool		changed;
	TupleTableSlot *slot;		/* the row as the completions so far leave it */
} LearnedRow;

/* One completion's use of a learned row, sorted to find the rows and their order. */
typedef struct RowUse
{
	const char *type;
	int			kind;
	const char *key;
	int			item;			/* the completion (index into the batch's learnings) */
	LearnedRow **ref;			/* where the completion keeps the row */
} RowUse;

#define ROW_KEY 0
#define ROW_TYPE 1
#define ROW_TAU 2

/* One completion of the batch, as complete_task reads it from its UPDATE. */
typedef struct Learning
{
	int			item;			/* its position in the batch */
	int64		task_id;
	Datum		task_type;
	Datum		task_key;
	bool		nokey;
	Completion	c;
	LearnedRow *key;			/* its rows */
	LearnedRow *type;
	LearnedRow *tau;
} Learning;

/* (BATCH_TASK_BYTES, above: every per-task array of a batch) */
StaticAssertDecl(sizeof(Learning) <= BATCH_TASK_BYTES && 3 * sizeof(RowUse) <= BATCH_TASK_BYTES &&
				 sizeof(BatchItem) <= BATCH_TASK_BYTES,
				 "BATCH_TASK_BYTES is below what a task takes");

static int
CompareLearnings(const void *a, const void *b)
{
	return ((const Learning *) a)->item - ((const Learning *) b)->item;
}

/* Lock order: by type, then its keys' profiles by key, the type's profile, its tau; then by completion. */
static int
CompareUses(const void *a, const void *b)
{
	const RowUse *x = (const RowUse *) a;
	const RowUse *y = (const RowUse *) b;
	int			c = strcmp(x->type, y->type);

	if (c != 0)
		return c;
	if (x->kind != y->kind)
		return x->kind - y->kind;
	if (x->kind == ROW_KEY && (c = strcmp(x->key, y->key)) != 0)
		return c;
	return x->item - y->item;
}

static const char *
RowTable(LearnedRow *r)
{
	return r->kind == ROW_TAU ? "task_tau" : "profiles";
}

static const char *
RowIndex(LearnedRow *r)
{
	return r->kind == ROW_TAU ? "task_tau_pkey" : "profiles_type_key";
}

static int
RowKeys(LearnedRow *r, Datum *keys, bool *keynulls)
{
	keys[0] = r->task_type;
	keynulls[0] = false;
	keys[1] = r->task_key;
	keynulls[1] = r->kind != ROW_KEY;
	return r->kind == ROW_TAU ? 1 : 2;
}

/*
 * Lock row r (LockLearned) and hold its version; when it does not exist,
 * create it with its first completion (first) as complete_task would.
 */
static void
LockOrCreate(LearnedRow *r, Learning *first, TupleDesc *descs)
{
	Datum		keys[2];
	bool		keynulls[2];
	int			nkeys = RowKeys(r, keys, keynulls);
	int			attempt;

	for (attempt = 0; attempt <= CREATE_ATTEMPTS; attempt++)
	{
		bool		created;

		if (r->slot == NULL)
			r->slot = MakeSingleTupleTableSlot(descs[r->kind == ROW_TAU ? 1 : 0], &TTSOpsHeapTuple);
		if (LockLearned(RowTable(r), RowIndex(r), nkeys, keys, keynulls, r->slot))
			return;
		if (attempt == CREATE_ATTEMPTS)
			break;
		if (r->kind == ROW_TAU)
			created = TauCreate(r->task_type, first->c.samples[0]);
		else
			created = ProfileCreate(r->task_type, r->task_key, r->kind != ROW_KEY, &first->c);
		if (created)
			r->created_by = r->first;
		CommandCounterIncrement();
	}
	ConcurrentlyDeleted(r->kind == ROW_TAU ? "tau" : "profile", r->task_type);
}

/* Column name of the row in memory, a copy of the array (NULL when NULL or missing). */
static ArrayType *
PooledOf(LearnedRow *r)
{
	bool		isnull;
	Datum		d;

	if (r->slot == NULL || TupIsNull(r->slot))
		return NULL;
	if (ColumnIndexIfAny(r->slot->tts_tupleDescriptor, "pooled") < 0)
		return NULL;
	d = slot_getattr(r->slot, ColumnIndex(r->slot->tts_tupleDescriptor, "pooled") + 1, &isnull);
	return isnull ? NULL : DatumGetArrayTypePCopy(d);
}

/* The next version of row r, computed in the current context, now held by its slot. */
static void
Advance(LearnedRow *r, HeapTuple next, MemoryContext keep)
{
	MemoryContext old = MemoryContextSwitchTo(keep);
	HeapTuple	copy = heap_copytuple(next);

	MemoryContextSwitchTo(old);
	ExecForceStoreHeapTuple(copy, r->slot, true);
	r->changed = true;
}

/*
 * Learn the batch's completions (in array order) into the learned rows,
 * each row locked once and written once.
 */
static void
LearnBatch(Learning *l, int n)
{
	RowUse	   *uses = palloc(sizeof(RowUse) * 3 * n);
	LearnedRow **sorted = palloc(sizeof(LearnedRow *) * 3 * n);
	TupleDesc	descs[2];
	MemoryContext keep = CurrentMemoryContext;
	MemoryContext item_cxt;
	Relation	rel;
	int			nuses = 0;
	int			nrows = 0;
	int			i;

	if (n == 0)
		return;
	/* the rows each completion touches: its key's profile, its type's profile, its type's tau */
	for (i = 0; i < n; i++)
	{
		char	   *type = TextDatumGetCString(l[i].task_type);
		int			kind;

		l[i].key = l[i].type = l[i].tau = NULL;
		for (kind = ROW_KEY; kind <= ROW_TAU; kind++)
		{
			if ((kind == ROW_KEY && l[i].nokey) || (kind == ROW_TAU && !l[i].c.has[0]))
				continue;
			uses[nuses].type = type;
			uses[nuses].kind = kind;
			uses[nuses].key = kind == ROW_KEY ? TextDatumGetCString(l[i].task_key) : NULL;
			uses[nuses].item = i;
			uses[nuses].ref = kind == ROW_KEY ? &l[i].key : kind == ROW_TYPE ? &l[i].type : &l[i].tau;
			nuses++;
		}
	}
	qsort(uses, nuses, sizeof(RowUse), CompareUses);
	for (i = 0; i < nuses; i++)
	{
		if (i == 0 || uses[i].kind != uses[i - 1].kind || strcmp(uses[i].type, uses[i - 1].type) != 0 ||
			(uses[i].kind == ROW_KEY && strcmp(uses[i].key, uses[i - 1].key) != 0))
		{
			LearnedRow *r = palloc0(sizeof(LearnedRow));
			Learning   *first = &l[uses[i].item];

			r->kind = uses[i].kind;
			r->task_type = first->task_type;
			r->task_key = first->task_key;
			r->first = uses[i].item;
			r->created_by = -1;
			if (r->kind == ROW_TAU)
				r->lambda = TypeLambda(r->task_type);
			sorted[nrows++] = r;
		}
		*uses[i].ref = sorted[nrows - 1];
	}

	/* row types of the tables, for the slots that hold versions in memory */
	rel = table_open(TforgeTable("profiles"), AccessShareLock);
	descs[0] = CreateTupleDescCopy(RelationGetDescr(rel));
	table_close(rel, NoLock);
	rel = table_open(TforgeTable("task_tau"), AccessShareLock);
	descs[1] = CreateTupleDescCopy(RelationGetDescr(rel));
	table_close(rel, NoLock);

	/* lock (or create) every row, in the order that keeps batches from deadlocking */
	for (i = 0; i < nrows; i++)
		LockOrCreate(sorted[i], &l[sorted[i]->first], descs);

	/* every completion, in order, into the rows in memory */
	item_cxt = AllocSetContextCreate(CurrentMemoryContext, "tforge batch completion", ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(item_cxt);
		Completion *c = &l[i].c;

		c->learn.carried = false;
		if (l[i].key != NULL && l[i].key->created_by != i)
		{
			c->learn.type_given = true;
			c->learn.type_pooled = PooledOf(l[i].type);
			Advance(l[i].key, ProfileLearn(l[i].key->slot, c), keep);
			c->learn.type_given = false;
		}
		if (l[i].type->created_by != i)
			Advance(l[i].type, ProfileLearn(l[i].type->slot, c), keep);
		if (l[i].tau != NULL && l[i].tau->created_by != i)
			Advance(l[i].tau, TauLearn(l[i].tau->slot, c->samples[0], l[i].tau->lambda), keep);
		MemoryContextSwitchTo(old);
		MemoryContextReset(item_cxt);
	}
	MemoryContextDelete(item_cxt);

	/* each row written once */
	for (i = 0; i < nrows; i++)
	{
		Datum		keys[2];
		bool		keynulls[2];
		int			nkeys = RowKeys(sorted[i], keys, keynulls);

		if (sorted[i]->changed)
			WriteLearned(RowTable(sorted[i]), RowIndex(sorted[i]), nkeys, keys, keynulls,
						 ExecFetchSlotHeapTuple(sorted[i]->slot, false, NULL));
		ExecDropSingleTupleTableSlot(sorted[i]->slot);
	}
}

/*
 * complete_tasks(worker_id, task_ids, usages, claim_tokens)
 *		-> TABLE (task_id, status, detail)
 */
PG_FUNCTION_INFO_V1(tforge_complete_tasks);
Datum
tforge_complete_tasks(PG_FUNCTION_ARGS)
{
	static const int argnos[2] = {2, 3};
	static const char *const names[2] = {"usages", "claim_tokens"};
	TimestampTz at = GetCurrentTimestamp();
	BatchItem  *items;
	BatchArray	arrays[2];
	Datum	   *usages;
	bool	   *nousage;
	Datum	   *reported;
	bool	   *noreported;
	double	   *reported_s;
	Learning   *l;
	char	   *worker_id;
	int		   *round;
	int			nround;
	int			nlearn = 0;
	int			n;
	int			i;
	MemoryContext outer;
	MemoryContext round_cxt;	/* a round's arguments, until the next round */
	Datum		v[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};

	n = BatchBegin(fcinfo, "tforge.complete_tasks()", &items);
	worker_id = TextDatumGetCString(PG_GETARG_DATUM(0));
	ItemArrays(fcinfo, n, 2, argnos, names, arrays);
	usages = arrays[0].values;
	nousage = arrays[0].nulls;
	BatchTokens(&arrays[1], items, n);
	InitMaterializedSRF(fcinfo, 0);
	if (n == 0)
		return (Datum) 0;
	LinkDuplicates(items, n);

	/* the usages as complete_task reads them */
	reported = palloc(sizeof(Datum) * n);
	noreported = palloc(sizeof(bool) * n);
	reported_s = palloc(sizeof(double) * n);
	for (i = 0; i < n; i++)
	{
		bool		has_reported;
		Jsonb	   *usage = CompletionUsage(nousage[i] ? NULL : DatumGetJsonbP(usages[i]), items[i].task_id,
											&reported_s[i], &has_reported);

		usages[i] = PointerGetDatum(usage);
		nousage[i] = usage == NULL;
		noreported[i] = !has_reported;
		reported[i] = Float8GetDatum(reported_s[i]);
	}
	v[1] = PG_GETARG_DATUM(0);
	v[2] = TimestampTzGetDatum(at);

	SPI_connect();
	outer = CurrentMemoryContext;
	round_cxt = AllocSetContextCreate(outer, "tforge batch round", ALLOCSET_DEFAULT_SIZES);
	LockBatchDevices(items, n);
	l = palloc0(sizeof(Learning) * n);
	round = palloc(sizeof(int) * n);
	for (nround = FirstRound(items, n, round); nround > 0; nround = NextRound(items, round, nround))
	{
		uint64		done;
		uint64		r;

		MemoryContextReset(round_cxt);
		MemoryContextSwitchTo(round_cxt);
		RoundArgs(items, round, nround, v);
		v[3] = RoundArray(usages, nousage, round, nround, JSONBOID);
		v[4] = RoundArray(reported, noreported, round, nround, FLOAT8OID);
		v[5] = RoundArray(arrays[1].values, arrays[1].nulls, round, nround, INT8OID);
		done = Execute(&complete_batch, InvalidOid, v, nulls, 0);
		MemoryContextSwitchTo(outer);

		ClaimPrefixUpdated(done);
		for (r = 0; r < done; r++)
		{
			bool		isnull;
			int			k = (int) DatumGetInt64(ResultValue(r, 1, &isnull)) - 1;
			Learning   *x = &l[nlearn++];
			CompletedTask t;

			if (k < 0 || k >= n || items[k].applied)
				elog(ERROR, "tforge: a batch completion returned item %d of %d", k + 1, n);
			items[k].applied = true;
			items[k].status = "done";
			x->item = k;
			x->task_id = items[k].task_id;
			CompletedRow(r, x->task_id, nousage[k] ? NULL : DatumGetJsonbP(usages[k]), &x->c, &t);
			x->task_type = SPI_datumTransfer(t.task_type, false, -1);
			x->nokey = t.nokey;
			x->task_key = t.nokey ? (Datum) 0 : SPI_datumTransfer(t.task_key, false, -1);
			if (!x->c.has[0])
				WarnNotLearned(x->task_id, nousage[k] ? NULL : DatumGetJsonbP(usages[k]), !noreported[k],
							   reported_s[k], at, t.claimed, t.noclaimed);
		}
		ResultRelease();
		BatchRefusals(items, round, nround, worker_id);
	}
	MemoryContextDelete(round_cxt);
	/* learned in array order, whatever order the statement returned them in */
	qsort(l, nlearn, sizeof(Learning), CompareLearnings);
	BatchRefusalsLeft(items, n, worker_id);
	LearnBatch(l, nlearn);
	BatchResult(fcinfo, items, n);
	SPI_finish();
	return (Datum) 0;
}

/*
 * fail_tasks(worker_id, task_ids, errors, retry, claim_tokens)
 *		-> TABLE (task_id, status, detail)
 */
PG_FUNCTION_INFO_V1(tforge_fail_tasks);
Datum
tforge_fail_tasks(PG_FUNCTION_ARGS)
{
	static const int argnos[2] = {2, 4};
	static const char *const names[2] = {"errors", "claim_tokens"};
	BatchItem  *items;
	BatchArray	arrays[2];
	char	   *worker_id;
	int		   *round;
	int			nround;
	int			n;
	MemoryContext outer;
	MemoryContext round_cxt;	/* a round's arguments, until the next round */
	Datum		v[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};

	n = BatchBegin(fcinfo, "tforge.fail_tasks()", &items);
	worker_id = TextDatumGetCString(PG_GETARG_DATUM(0));
	ItemArrays(fcinfo, n, 2, argnos, names, arrays);
	BatchTokens(&arrays[1], items, n);
	InitMaterializedSRF(fcinfo, 0);
	if (n == 0)
		return (Datum) 0;
	LinkDuplicates(items, n);

	v[1] = PG_GETARG_DATUM(0);
	v[2] = TimestampTzGetDatum(GetCurrentTimestamp());
	v[3] = BoolGetDatum(PG_ARGISNULL(3) || PG_GETARG_BOOL(3));
	SPI_connect();
	outer = CurrentMemoryContext;
	round_cxt = AllocSetContextCreate(outer, "tforge batch round", ALLOCSET_DEFAULT_SIZES);
	LockBatchDevices(items, n);
	round = palloc(sizeof(int) * n);
	for (nround = FirstRound(items, n, round); nround > 0; nround = NextRound(items, round, nround))
	{
		uint64		done;
		uint64		r;

		MemoryContextReset(round_cxt);
		MemoryContextSwitchTo(round_cxt);
		RoundArgs(items, round, nround, v);
		v[4] = RoundArray(arrays[0].values, arrays[0].nulls, round, nround, TEXTOID);
		v[5] = RoundArray(arrays[1].values, arrays[1].nulls, round, nround, INT8OID);
		done = Execute(&fail_batch, InvalidOid, v, nulls, 0);
		MemoryContextSwitchTo(outer);

		for (r = 0; r < done; r++)
		{
			bool		isnull;
			int			k = (int) DatumGetInt64(ResultValue(r, 1, &isnull)) - 1;

			if (k < 0 || k >= n || items[k].applied)
				elog(ERROR, "tforge: a batch failure returned item %d of %d", k + 1, n);
			items[k].applied = true;
			items[k].status = TextDatumGetCString(ResultValue(r, 2, &isnull));
		}
		ResultRelease();
		BatchRefusals(items, round, nround, worker_id);
	}
	MemoryContextDelete(round_cxt);
	BatchRefusalsLeft(items, n, worker_id);
	BatchResult(fcinfo, items, n);
	SPI_finish();
	return (Datum) 0;
}
