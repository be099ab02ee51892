/*
 * submit_batch.c: tforge.submit_tasks, many submits in one statement
 * (issue 16).
 *
 * A batch of n tasks of one type costs what submit_task costs once plus
 * one INSERT of n rows, instead of n calls:
 *
 *   - arguments are checked first, every element before anything is read
 *     or written (a bad element fails the whole call; nothing changes);
 *   - admission control judges the batch as a whole (GovernorAdmitTasks:
 *     one RED draw, one token per task);
 *   - the learned state is read once per call for the type (tau, the
 *     type's profile) and once per distinct task key (the key's profile),
 *     through the same key -> type -> tau fallback as submit_task
 *     (LearnedFor in queue.c), and the columns it implies are computed once
 *     per group of tasks that share a key, a requested_s bound, a cpu count
 *     and whether they declared resources (SubmitColumns): nothing changes
 *     the learned state between the submits of one call, so every task gets
 *     exactly what submit_task would have given it;
 *   - one INSERT ... SELECT of unnest()ed arrays writes all the rows, so the
 *     table's defaults, constraints, foreign key, triggers and row security
 *     apply as for any client, and RETURNING gives the task ids in the
 *     arrays' order (the unnests run in the select list, which emits rows in
 *     array order, and the insert assigns ids and returns rows in the order
 *     it receives them);
 *   - one NOTIFY tforge_tasks for the type (wakeup.c).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "estimate.h"
#include "queue.h"
#include "tforge.h"

/*
 * The insert: one row per element of the per-task arrays $4..$15; the
 * predictions and confidences of group $15[i] are the $18 values from
 * ($15[i] - 1) * $18 + 1 in the flat arrays $16 and $17. RESOURCES_ARG
 * stands for tforge.resources[] here.
 */
static QueueStatement submit_batch_insert = {
	"INSERT INTO tforge.tasks (task_type, task_key, payload, resources, priority, submitted_at,"
	"                          deadline, predicted_runtime_s, laxity_key, prediction_strategy,"
	"                          prediction_confidence, prediction_source, available_at, max_attempts,"
	"                          predictions, prediction_confidences, predictions_source)"
	" SELECT $1, r.k, COALESCE(r.p, '{}'::pg_catalog.jsonb), r.res, COALESCE(r.pri, 0), $2,"
	"        r.dl, r.pred, r.lax, r.strat, r.conf, r.src, $2, $3,"
	"        $16[(r.g - 1) * $18 + 1 : r.g * $18], $17[(r.g - 1) * $18 + 1 : r.g * $18], r.psrc"
	"   FROM (SELECT pg_catalog.unnest($4) AS p, pg_catalog.unnest($5) AS k, pg_catalog.unnest($6) AS pri,"
	"                pg_catalog.unnest($7) AS res, pg_catalog.unnest($8) AS dl, pg_catalog.unnest($9) AS pred,"
	"                pg_catalog.unnest($10) AS lax, pg_catalog.unnest($11) AS strat,"
	"                pg_catalog.unnest($12) AS conf, pg_catalog.unnest($13) AS src,"
	"                pg_catalog.unnest($14) AS psrc, pg_catalog.unnest($15) AS g) r"
	" RETURNING task_id",
	18, {TEXTOID, TIMESTAMPTZOID, INT4OID, JSONBARRAYOID, TEXTARRAYOID, INT4ARRAYOID, RESOURCES_ARG,
		TIMESTAMPTZARRAYOID, FLOAT8ARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, FLOAT8ARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, INT4OID}
};

/* What decides a task's learned columns besides its type. */
typedef struct TaskQuery
{
	int			i;				/* position in the batch (0-based) */
	text	   *key;			/* NULL: no key */
	double		bound;			/* payload's requested_s; 0: none */
	double		procs;			/* resources.cpu; 0: unknown */
	bool		undeclared;		/* resources NULL or all fields NULL */
} TaskQuery;

/* Orders tasks by key (no key first), then the rest of what decides their columns; 0: same columns. */
static int
CompareColumns(const TaskQuery *a, const TaskQuery *b)
{
	if ((a->key == NULL) != (b->key == NULL))
		return a->key == NULL ? -1 : 1;
	if (a->key != NULL)
	{
		int			la = VARSIZE_ANY_EXHDR(a->key);
		int			lb = VARSIZE_ANY_EXHDR(b->key);
		int			c = memcmp(VARDATA_ANY(a->key), VARDATA_ANY(b->key), Min(la, lb));

		if (c != 0)
			return c;
		if (la != lb)
			return la < lb ? -1 : 1;
	}
	if (a->bound != b->bound)
		return a->bound < b->bound ? -1 : 1;
	if (a->procs != b->procs)
		return a->procs < b->procs ? -1 : 1;
	if (a->undeclared != b->undeclared)
		return a->undeclared ? 1 : -1;
	return 0;
}

/* qsort: CompareColumns, then position (a total order). */
static int
CompareTaskQuery(const void *pa, const void *pb)
{
	const TaskQuery *a = pa;
	const TaskQuery *b = pb;
	int			c = CompareColumns(a, b);

	if (c != 0)
		return c;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* An array of n datums of a built-in type. */
static Datum
BuiltinArray(Datum *values, bool *nulls, int n, Oid type)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(values, nulls, 1, dims, lbs, type, typlen, typbyval, typalign));
}

/*
 * submit_tasks(task_type, payloads, task_keys, priorities, resources,
 *              sla_multiplier, max_attempts) -> SETOF task_id
 *
 * One task per element of payloads (a NULL element is {}), with the
 * task_keys, priorities and resources at the same positions (each array
 * NULL or as long as payloads; a NULL element is no key, priority 0, no
 * resources, as submit_task's defaults); returns the task ids in order.
 */
PG_FUNCTION_INFO_V1(tforge_submit_tasks);
Datum
tforge_submit_tasks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			resources_array_type = ArgType(fcinfo, 4);
	Oid			resources_type = get_element_type(resources_array_type);
	TimestampTz arrival = GetCurrentTransactionStartTimestamp();
	BatchArray	payloads,
				keys,
				priorities,
				resources;
	double		sla;
	int32		attempts;
	TaskQuery  *tasks;
	LearnedLookup lk;
	int			n,
				i,
				ngroups = 0;
	int			k = EST_NSTRATEGIES;
	bool		any_learned_resources = false;

	/* per task */
	Datum	   *res;
	bool	   *resnull;
	Datum	   *deadline,
			   *predicted,
			   *laxity,
			   *strategy,
			   *confidence,
			   *source,
			   *psource,
			   *group;
	bool	   *confnull;

	/* per group */
	Datum	   *preds,
			   *confs;

	Datum		v[18];
	bool		vn[18] = {0};
	uint64		inserted;

	CheckWritable("tforge.submit_tasks()");
	RequireArg(fcinfo, 0, "task_type");
	RequireArg(fcinfo, 1, "payloads");
	if (!OidIsValid(resources_type))
		elog(ERROR, "tforge.submit_tasks: resources is not an array");
	GetBatchArray(fcinfo, 1, "payloads", &payloads);
	GetBatchArray(fcinfo, 2, "task_keys", &keys);
	GetBatchArray(fcinfo, 3, "priorities", &priorities);
	GetBatchArray(fcinfo, 4, "resources", &resources);
	n = payloads.n;
	/* what the per-task arrays below may take, whatever the arrays given */
	if ((Size) n > MaxAllocSize / (sizeof(Datum) * EST_NSTRATEGIES))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a batch of %d tasks is too large", n),
				 errhint("Submit at most %d tasks per call.",
						 (int) (MaxAllocSize / (sizeof(Datum) * EST_NSTRATEGIES)))));
	{
		static const char *const names[3] = {"task_keys", "priorities", "resources"};
		const BatchArray *const arrays[3] = {&keys, &priorities, &resources};

		CheckBatchLengths("payloads", n, 3, names, arrays);
	}
	SubmitOptions(fcinfo, 5, 6, &sla, &attempts);

	/* every element checked, and what decides its learned columns */
	tasks = palloc(sizeof(TaskQuery) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		rnull = !resources.given || resources.nulls[i];
		Datum		r = rnull ? (Datum) 0 : resources.values[i];

		tasks[i].i = i;
		tasks[i].key = !keys.given || keys.nulls[i] ? NULL : DatumGetTextPP(keys.values[i]);
		tasks[i].bound = payloads.nulls[i] ? 0 : RequestedBound(DatumGetJsonbP(payloads.values[i]));
		tasks[i].undeclared = CheckResources(r, rnull, resources_type);
		tasks[i].procs = ResourcesProcessors(r, rnull);
	}

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	PushActiveSnapshot(GetTransactionSnapshot());
	LearnedBegin(&lk, PG_GETARG_DATUM(0));	/* 42704 for an unknown type, even for no tasks */
	if (n == 0)
	{
		LearnedEnd(&lk);
		PopActiveSnapshot();
		return (Datum) 0;
	}
	GovernorAdmitTasks(n);

	res = palloc(sizeof(Datum) * n);
	resnull = palloc(sizeof(bool) * n);
	deadline = palloc(sizeof(Datum) * n);
	predicted = palloc(sizeof(Datum) * n);
	laxity = palloc(sizeof(Datum) * n);
	strategy = palloc(sizeof(Datum) * n);
	confidence = palloc(sizeof(Datum) * n);
	confnull = palloc(sizeof(bool) * n);
	source = palloc(sizeof(Datum) * n);
	psource = palloc(sizeof(Datum) * n);
	group = palloc(sizeof(Datum) * n);
	preds = palloc(sizeof(Datum) * mul_size(n, k));
	confs = palloc(sizeof(Datum) * mul_size(n, k));

	/*
	 * Tasks in key order, so that LearnedFor reads each key's profile once;
	 * one group per run of tasks that decide the same columns.
	 */
	qsort(tasks, n, sizeof(TaskQuery), CompareTaskQuery);
	{
		Learned		l;
		SubmitRow	row;
		Datum		dl = 0,
					pred = 0,
					lax = 0,
					strat = 0,
					conf = 0,
					src = 0,
					psrc = 0,
					lres = 0;
		bool		noconf = true,
					learned_res = false,
					nolres = true;

		for (i = 0; i < n; i++)
		{
			TaskQuery  *t = &tasks[i];
			int			pos = t->i;
			int			j;

			if (i == 0 || CompareColumns(t, &tasks[i - 1]) != 0)
			{
				l.query.bound = t->bound;
				l.query.procs = t->procs;
				l.coverage = 0;
				LearnedFor(&lk, PointerGetDatum(t->key), t->key == NULL, t->undeclared, resources_type, &l);
				SubmitColumns(&l, t->undeclared, sla, 0, arrival, &row);
				dl = TimestampTzGetDatum(row.deadline);
				pred = Float8GetDatum(row.predicted);
				lax = TimestampTzGetDatum(row.laxity);
				strat = CStringGetTextDatum(row.strategy);
				conf = Float8GetDatum(row.confidence);
				noconf = row.noconfidence;
				src = CStringGetTextDatum(row.source);
				psrc = CStringGetTextDatum(l.source);
				learned_res = row.learned_resources;
				lres = l.resources;
				nolres = l.noresources;
				any_learned_resources |= learned_res;
				for (j = 0; j < k; j++)
				{
					preds[ngroups * k + j] = Float8GetDatum(l.pred[j]);
					confs[ngroups * k + j] = Float8GetDatum(l.conf[j]);
				}
				ngroups++;
			}
			deadline[pos] = dl;
			predicted[pos] = pred;
			laxity[pos] = lax;
			strategy[pos] = strat;
			confidence[pos] = conf;
			confnull[pos] = noconf;
			source[pos] = src;
			psource[pos] = psrc;
			group[pos] = Int32GetDatum(ngroups);
			res[pos] = learned_res ? lres : resources.given ? resources.values[pos] : (Datum) 0;
			resnull[pos] = learned_res ? nolres : !resources.given || resources.nulls[pos];
		}
	}
	LearnedEnd(&lk);
	PopActiveSnapshot();

	/* the arguments of submit_batch_insert */
	v[0] = PG_GETARG_DATUM(0);
	v[1] = TimestampTzGetDatum(arrival);
	v[2] = Int32GetDatum(attempts);
	v[3] = PG_GETARG_DATUM(1);
	v[4] = keys.given ? PG_GETARG_DATUM(2) : (Datum) 0;
	vn[4] = !keys.given;
	v[5] = priorities.given ? PG_GETARG_DATUM(3) : (Datum) 0;
	vn[5] = !priorities.given;
	if (any_learned_resources)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			dims[1] = {n};
		int			lbs[1] = {1};

		get_typlenbyvalalign(resources_type, &typlen, &typbyval, &typalign);
		v[6] = PointerGetDatum(construct_md_array(res, resnull, 1, dims, lbs, resources_type,
												  typlen, typbyval, typalign));
	}
	else
	{
		v[6] = resources.given ? PG_GETARG_DATUM(4) : (Datum) 0;
		vn[6] = !resources.given;
	}
	v[7] = BuiltinArray(deadline, NULL, n, TIMESTAMPTZOID);
	v[8] = BuiltinArray(predicted, NULL, n, FLOAT8OID);
	v[9] = BuiltinArray(laxity, NULL, n, TIMESTAMPTZOID);
	v[10] = BuiltinArray(strategy, NULL, n, TEXTOID);
	v[11] = BuiltinArray(confidence, confnull, n, FLOAT8OID);
	v[12] = BuiltinArray(source, NULL, n, TEXTOID);
	v[13] = BuiltinArray(psource, NULL, n, TEXTOID);
	v[14] = BuiltinArray(group, NULL, n, INT4OID);
	v[15] = BuiltinArray(preds, NULL, ngroups * k, FLOAT8OID);
	v[16] = BuiltinArray(confs, NULL, ngroups * k, FLOAT8OID);
	v[17] = Int32GetDatum(k);
	/* learning off: no predictions to score (as submit_task) */
	vn[13] = vn[15] = vn[16] = !tforge_learning_enabled;

	SPI_connect();
	inserted = Execute(&submit_batch_insert, resources_array_type, v, vn, 0);
	if (inserted != (uint64) n)
		SkippedByTrigger("tasks", psprintf("the insert of " UINT64_FORMAT " of the %d submitted tasks",
										   (uint64) n - inserted, n));
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		id = ResultValue(i, 1, &isnull);

		if (isnull)
			elog(ERROR, "tforge.submit_tasks: an inserted task has no id");
		ClaimPrefixInserted(DatumGetInt64(id));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &id, &isnull);
	}
	SPI_finish();
	WakeWorkers(PG_GETARG_DATUM(0));
	return (Datum) 0;
}
