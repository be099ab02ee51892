/*
 * queue.c: the queue's hot path: submit_task, claim_tasks, complete_task,
 * and the learning they do in the caller's transaction (DESIGN.md
 * component 1).
 *
 * Every worker cycle runs these three functions, so they are C, and what
 * they do costs three statements of their own:
 *
 *   submit_task    index probes of the type's tau (or default) and profile,
 *                  the estimate in C, one INSERT
 *   claim_tasks    a probe of tasks_lease_idx (the expiry statement runs only
 *                  when a lease did expire), one UPDATE of the head of
 *                  tasks_claim_idx locked with SKIP LOCKED
 *   complete_task  one UPDATE of the task, then the type's tau and the
 *                  type's and key's profiles rewritten in place (see
 *                  "learned state" below)
 *
 * The statements stay SQL, so row locks, SKIP LOCKED, the FK to task_types
 * and the tables' constraints behave as for any client; their plans are
 * prepared once per backend and kept (SPI_keepplan).
 *
 * Search path: the SQL functions are declared SECURITY DEFINER with
 * SET search_path = pg_catalog, pg_temp, and every statement here names its
 * objects with the schema, so neither a caller's path nor a replan after an
 * invalidation can change what they mean. Plans are generic
 * (CURSOR_OPT_GENERIC_PLAN): each statement finds rows by key or takes the
 * head of an index, and a custom plan per call would cost more than the
 * statement (the one exception is a claim of several tasks). claim_tasks
 * also runs with enable_sort = off (its SET clause), so that stale
 * statistics never turn the claim into a sort of every pending task.
 *
 * The helpers that tests and operators call directly (update_tau,
 * _profile_record, expire_leases) are C too and share this code.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "calibration.h"
#include "estimate.h"
#include "profile.h"
#include "tforge.h"

/* Longest runtime tau learns from, and longest prediction, in seconds. */
#define MAX_RUNTIME_S 1e9

/* Largest usage value a profile records (keeps variances finite). */
#define MAX_USAGE 1e18

#define MAX_ARGS 16

/* Stands in a statement's argument types for tforge.resources. */
#define RESOURCES_ARG InvalidOid

/* One statement, prepared on first use in a backend and kept. */
typedef struct QueueStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[MAX_ARGS];
	int			plan_option;	/* CURSOR_OPT_GENERIC_PLAN unless given */
	Oid			resources_type; /* what RESOURCES_ARG meant when prepared */
	SPIPlanPtr	plan;
} QueueStatement;

/* submit_task: the insert (the reads are index probes, below). */
static QueueStatement submit_insert = {
	"INSERT INTO tforge.tasks (task_type, task_key, payload, resources, priority, submitted_at,"
	"                          deadline, predicted_runtime_s, laxity_key, prediction_strategy,"
	"                          prediction_confidence, prediction_source, available_at, max_attempts,"
	"                          predictions, prediction_confidences, predictions_source)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $6, $13, $14, $15, $16)"
	" RETURNING task_id",
	16, {TEXTOID, TEXTOID, JSONBOID, RESOURCES_ARG, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	FLOAT8OID, TIMESTAMPTZOID, TEXTOID, FLOAT8OID, TEXTOID, INT4OID, FLOAT8ARRAYOID,
	FLOAT8ARRAYOID, TEXTOID}
};

/*
 * Requeue (or bury, once max_attempts claims were used) the tasks whose
 * lease expired before $1; the lease index bounds the scan.
 */
static QueueStatement expire_leases = {
	"WITH expired AS ("
	"  SELECT k.task_id FROM tforge.tasks k"
	"   WHERE k.status = 'running' AND k.lease_expires_at < $1"
	"   FOR UPDATE SKIP LOCKED)"
	"UPDATE tforge.tasks k"
	"   SET status = CASE WHEN k.attempts >= k.max_attempts THEN 'dead' ELSE 'pending' END::tforge.task_status,"
	"       last_error = pg_catalog.format('lease of worker \"%s\" expired at %s', k.worker_id, k.lease_expires_at),"
	"       worker_id = NULL, lease_expires_at = NULL,"
	"       completed_at = CASE WHEN k.attempts >= k.max_attempts THEN $1 END"
	"  FROM expired e"
	" WHERE k.task_id = e.task_id",
	1, {TIMESTAMPTZOID}
};

/*
 * The claim: the head of tasks_claim_idx (least laxity, then priority,
 * then arrival) among tasks available at $1 that fit capacity $2. For one
 * task, the common case, a primary-key update of the head the subquery
 * locked, with a generic plan; without a capacity the statement has no
 * resource test at all. A batch is planned per call with the actual $3, as
 * a generic plan for an unknown LIMIT would join the batch to every row of
 * tasks by hash.
 */
#define CLAIM_SET \
	"   SET status = 'running', worker_id = $4, claimed_at = $1," \
	"       lease_s = $5, lease_expires_at = $1 + $6, attempts = k.attempts + 1"
#define CLAIM_HEAD(fits, limit) \
	"SELECT h.task_id FROM tforge.tasks h" \
	" WHERE h.status = 'pending' AND h.available_at <= $1" fits \
	" ORDER BY h.laxity_key, h.priority DESC, h.submitted_at, h.task_id" \
	" LIMIT " limit \
	" FOR UPDATE SKIP LOCKED"
#define CLAIM_FITS \
	" AND ($2 IS NULL OR h.resources IS NULL OR tforge.resources_fit(h.resources, $2))"
#define CLAIM_ONE(fits) \
	"UPDATE tforge.tasks k" CLAIM_SET \
	" WHERE k.task_id = (" CLAIM_HEAD(fits, "1") ")" \
	" RETURNING k"
#define CLAIM_ARGTYPES {TIMESTAMPTZOID, RESOURCES_ARG, INT4OID, TEXTOID, FLOAT8OID, INTERVALOID}

static QueueStatement claim_one = {CLAIM_ONE(""), 6, CLAIM_ARGTYPES};
static QueueStatement claim_one_fitting = {CLAIM_ONE(CLAIM_FITS), 6, CLAIM_ARGTYPES};
static QueueStatement claim_batch = {
	"WITH picked AS (" CLAIM_HEAD(CLAIM_FITS, "$3") ")"
	"UPDATE tforge.tasks k" CLAIM_SET
	"  FROM picked p"
	" WHERE k.task_id = p.task_id"
	" RETURNING k",
	6, CLAIM_ARGTYPES, CURSOR_OPT_CUSTOM_PLAN
};

/*
 * complete_task: the task held by worker $2 is done at $3; its runtime is
 * the reported one ($5) or claim to completion, NULL unless tau can learn
 * from it. The row keeps what submit predicted beside the runtime observed,
 * which is all the scoring there is (view tforge.prediction_scores).
 */
static QueueStatement complete = {
	"UPDATE tforge.tasks t"
	"   SET status = 'done', completed_at = $3, usage = $4, lease_expires_at = NULL,"
	"       runtime_s = tforge._positive_or_null(coalesce($5, extract(epoch FROM $3 - t.claimed_at)::float8)),"
	"       deadline_met = ($3 <= t.deadline)"
	" WHERE t.task_id = $1 AND t.status = 'running' AND t.worker_id = $2"
	" RETURNING t, t.task_type, t.task_key, t.runtime_s, t.payload, t.claimed_at, (t.resources).cpu",
	5, {INT8OID, TEXTOID, TIMESTAMPTZOID, JSONBOID, FLOAT8OID}
};

/* Why a task is not held: its status and worker, locked. */
static QueueStatement held_by = {
	"SELECT t.status::text, t.worker_id FROM tforge.tasks t WHERE t.task_id = $1 FOR UPDATE",
	1, {INT8OID}
};

/*
 * A profile's first completion ($1, $2: type and key), as ProfileChange
 * would record it into an empty profile; nothing when a concurrent first
 * completion created the row meanwhile (the caller then updates it).
 */
static QueueStatement profile_insert = {
	"INSERT INTO tforge.profiles (task_type, task_key, runtime, cpu, memory, gpu_memory, scores, completions,"
	"                             recent)"
	" VALUES ($1, $2, tforge.rolling_stats_add(NULL, $3), tforge.rolling_stats_add(NULL, $4),"
	"         tforge.rolling_stats_add(NULL, $5), tforge.rolling_stats_add(NULL, $6),"
	"         tforge.rescore(NULL, NULL, NULL), 1, tforge._kernel_ring_add(NULL, $3, $7, $8))"
	" ON CONFLICT ON CONSTRAINT profiles_type_key DO NOTHING",
	8, {TEXTOID, TEXTOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID}
};

/*
 * The type's first learned runtime $2: tau starts from the type's default,
 * as if the default were tau, lambda the type's or $3. Nothing when a
 * concurrent first completion created the row meanwhile.
 */
static QueueStatement tau_insert = {
	"INSERT INTO tforge.task_tau (task_type, tau_s, samples)"
	"SELECT tt.name, tforge.ema(tt.default_tau_s, $2, coalesce(tt.lambda, $3)), 1"
	"  FROM tforge.task_types tt"
	" WHERE tt.name = $1"
	" ON CONFLICT ON CONSTRAINT task_tau_pkey DO NOTHING"
	" RETURNING tau_s",
	3, {TEXTOID, FLOAT8OID, FLOAT8OID}
};

/* The statement's plan, prepared (again, if tforge.resources changed). */
static SPIPlanPtr
StatementPlan(QueueStatement *stmt, Oid resources_type)
{
	Oid			argtypes[MAX_ARGS];
	SPIPlanPtr	plan;
	int			i;

	if (stmt->plan != NULL && stmt->resources_type == resources_type)
		return stmt->plan;
	for (i = 0; i < stmt->nargs; i++)
		argtypes[i] = stmt->argtypes[i] == RESOURCES_ARG ? resources_type : stmt->argtypes[i];
	plan = SPI_prepare_cursor(stmt->sql, stmt->nargs, argtypes,
							  stmt->plan_option ? stmt->plan_option : CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "could not prepare a tforge queue statement: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep a tforge queue statement");
	if (stmt->plan != NULL)
		SPI_freeplan(stmt->plan);
	stmt->plan = plan;
	stmt->resources_type = resources_type;
	return plan;
}

/* Run a statement; nulls[i] true means argument i is NULL. Returns SPI_processed. */
static uint64
Execute(QueueStatement *stmt, Oid resources_type, Datum *values, const bool *nulls, long limit)
{
	char		n[MAX_ARGS];
	int			i;
	int			rc;

	for (i = 0; i < stmt->nargs; i++)
		n[i] = nulls[i] ? 'n' : ' ';
	rc = SPI_execute_plan(StatementPlan(stmt, resources_type), values, n, false, limit);
	if (rc < 0)
		elog(ERROR, "tforge queue statement failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column col (1-based) of result row row; *isnull says whether it is NULL. */
static Datum
ResultValue(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* A value for an error message: its text, or <NULL> as PL/pgSQL prints it. */
static const char *
ValueText(Datum value, bool isnull, Oid type)
{
	Oid			out;
	bool		varlena;

	if (isnull)
		return "<NULL>";
	getTypeOutputInfo(type, &out, &varlena);
	return OidOutputFunctionCall(out, value);
}

/* The type of argument argno as called (tforge.resources), even without an expression. */
static Oid
ArgType(FunctionCallInfo fcinfo, int argno)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, argno);
	Oid		   *types;
	int			nargs;

	if (OidIsValid(type))
		return type;
	(void) get_func_signature(fcinfo->flinfo->fn_oid, &types, &nargs);
	Assert(argno < nargs);
	return types[argno];
}

/* Whether a float8 is a number of seconds tau can learn from: (0, 1e9]. */
static inline bool
LearnableSeconds(double s)
{
	return s > 0 && s <= MAX_RUNTIME_S;
}

/* _positive_or_null(value) -> value when tau can learn from it, else NULL. */
PG_FUNCTION_INFO_V1(tforge_positive_or_null);
Datum
tforge_positive_or_null(PG_FUNCTION_ARGS)
{
	if (!LearnableSeconds(PG_GETARG_FLOAT8(0)))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}

/*
 * tforge.resources: refuse a negative, NaN or infinite field (22023).
 * Returns whether every field is NULL (SQL's "row IS NULL").
 */
static bool
CheckResources(Datum value, bool isnull, Oid type)
{
	HeapTupleHeader row;
	bool		all_null = true;
	bool		bad = false;
	int			i;

	if (isnull)
		return true;
	row = DatumGetHeapTupleHeader(value);
	for (i = 1; i <= 4; i++)
	{
		bool		fnull;
		Datum		f = GetAttributeByNum(row, i, &fnull);

		if (fnull)
			continue;
		all_null = false;
		switch (i)
		{
			case 1:				/* cpu float8 */
				bad |= isnan(DatumGetFloat8(f)) || DatumGetFloat8(f) < 0 || isinf(DatumGetFloat8(f));
				break;
			case 3:				/* gpu_count integer */
				bad |= DatumGetInt32(f) < 0;
				break;
			default:			/* memory_bytes, gpu_memory_bytes bigint */
				bad |= DatumGetInt64(f) < 0;
				break;
		}
	}
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid resources %s", ValueText(value, false, type)),
				 errdetail("Every field must be NULL or a finite number not below zero.")));
	return all_null;
}

/* doc->key, or NULL when doc is not an object or has no such key. */
static JsonbValue *
JsonbField(Jsonb *doc, const char *key)
{
	if (doc == NULL || !JB_ROOT_IS_OBJECT(doc))
		return NULL;
	return getKeyJsonValueFromContainer(&doc->root, key, strlen(key), NULL);
}

/*
 * A numeric field of a JSON object: false when absent or JSON null, else
 * true with *out its value, NaN when it is not a number or beyond 1e300.
 */
static bool
JsonbNumber(Jsonb *doc, const char *key, double *out)
{
	JsonbValue *v = JsonbField(doc, key);

	if (v == NULL || v->type == jbvNull)
		return false;
	*out = NAN;
	if (v->type == jbvNumeric)
	{
		double		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
														   NumericGetDatum(v->val.numeric)));

		if (fabs(d) < 1e300)
			*out = d;
	}
	return true;
}

/* The JSON text of doc->key (which exists), cut to 40 characters when clip. */
static char *
JsonbFieldText(Jsonb *doc, const char *key, bool clip)
{
	Jsonb	   *field = JsonbValueToJsonb(JsonbField(doc, key));
	char	   *text = JsonbToCString(NULL, &field->root, VARSIZE(field));

	if (clip && pg_mbstrlen(text) > 40)
		return psprintf("%.*s...", pg_mbcharcliplen(text, strlen(text), 40), text);
	return text;
}

/* ---- submit_task ---------------------------------------------------------- */

/*
 * submit_task reads rows by key on every call: the type's tau (its
 * definition when nothing is learned yet) and the profile its estimate
 * comes from. Through SPI each read would cost an
 * executor start several times the index probe itself, so they are index
 * probes: the same snapshot rules and AccessShareLocks as a SELECT.
 */

/*
 * The first row of tforge.<table>, in the order of its index tforge.<index>,
 * that matches the scan keys and the active snapshot; an empty slot if none.
 * The scan keys' attribute numbers are index columns.
 */
static TupleTableSlot *
IndexFirst(const char *table, const char *index, ScanKey key, int nkeys, Relation *relp)
{
	Oid			nsp = get_namespace_oid("tforge", false);
	Oid			relid = get_relname_relid(table, nsp);
	Oid			indexid = get_relname_relid(index, nsp);
	Relation	rel;
	Relation	irel;
	IndexScanDesc scan;
	TupleTableSlot *slot;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "tforge.%s or its index tforge.%s is missing", table, index);
	rel = table_open(relid, AccessShareLock);
	irel = index_open(indexid, AccessShareLock);
	scan = index_beginscan(rel, irel, GetActiveSnapshot(), nkeys, 0);
	index_rescan(scan, key, nkeys, NULL, 0);
	slot = table_slot_create(rel, NULL);
	if (!index_getnext_slot(scan, ForwardScanDirection, slot))
		ExecClearTuple(slot);
	index_endscan(scan);
	index_close(irel, NoLock);
	*relp = rel;
	return slot;
}

/* The row of tforge.<table> with key (keys) in its unique index tforge.<index>. */
static TupleTableSlot *
LookupRow(const char *table, const char *index, int nkeys, const Datum *keys,
		  const bool *keynulls, Relation *relp)
{
	ScanKeyData key[2];
	int			i;

	Assert(nkeys <= 2);
	for (i = 0; i < nkeys; i++)
	{
		if (keynulls[i])
			ScanKeyEntryInitialize(&key[i], SK_ISNULL | SK_SEARCHNULL, i + 1, InvalidStrategy,
								   InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
		else
			ScanKeyEntryInitialize(&key[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
								   DEFAULT_COLLATION_OID, F_TEXTEQ, keys[i]);
	}
	return IndexFirst(table, index, key, nkeys, relp);
}

/* Release what LookupRow returned; locks stay until the end of the transaction. */
static void
LookupEnd(TupleTableSlot *slot, Relation rel)
{
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
}

/* Attribute number (0-based) of column name in desc. */
static int
ColumnIndex(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
			return i;
	elog(ERROR, "tforge: column \"%s\" is missing", name);
	return -1;					/* keep the compiler quiet */
}

/* Column name of the slot's row, copied out of the buffer. */
static Datum
Column(TupleTableSlot *slot, const char *name, bool *isnull)
{
	int			i = ColumnIndex(slot->tts_tupleDescriptor, name);
	Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, i);
	Datum		d = slot_getattr(slot, i + 1, isnull);

	return *isnull ? (Datum) 0 : datumCopy(d, att->attbyval, att->attlen);
}

/*
 * Float8 column of the row of tforge.<table> whose one-column unique index
 * tforge.<index> has key, as the active snapshot sees it; false when there
 * is no such row.
 */
static bool
LookupFloat8(const char *table, const char *index, Datum key, const char *column,
			 double *value, bool *isnull)
{
	Relation	rel;
	TupleTableSlot *slot;
	bool		keynull = false;
	bool		found;

	slot = LookupRow(table, index, 1, &key, &keynull, &rel);
	found = !TupIsNull(slot);
	if (found)
	{
		Datum		d = Column(slot, column, isnull);

		*value = *isnull ? 0 : DatumGetFloat8(d);
	}
	LookupEnd(slot, rel);
	return found;
}

/* What submit_task knows of a task type and of the task's profile. */
typedef struct Learned
{
	double		tau;			/* learned, else the type's default */
	const char *source;			/* profile of the predictions: key, type, default */
	int64		runs;			/* runtimes in that profile */
	double		pred[EST_NSTRATEGIES];	/* every strategy's prediction */
	double		conf[EST_NSTRATEGIES];	/* and its confidence */
	Datum		resources;		/* what the profile predicts, if asked */
	bool		noresources;
	EstimateQuery query;		/* in: the task's request and processors */
	double		coverage;		/* in: of the calibrated bound; 0: none */
	double		upper;			/* the calibrated bound (s); NaN: none */
} Learned;

/*
 * payload->requested_s, the runtime the submitter asked for (a kill limit):
 * it bounds every prediction; 0 when it is not a positive finite number.
 */
static double
RequestedBound(Jsonb *payload)
{
	double		v;

	if (JsonbNumber(payload, "requested_s", &v) && v > 0 && !isinf(v))
		return v;
	return 0;
}

/*
 * The resources a profile predicts: cpu cores (mean cpu s / mean runtime
 * s), and the 95th percentile of recent memory and GPU memory peaks, bytes
 * rounded up. A task given less memory than it needs fails, one given a
 * little more only wastes some.
 */
static Datum
ProfileResources(Oid resources_type, RollingStats *runtime, Datum cpu, bool nocpu,
				 Datum memory, bool nomemory, Datum gpu_memory, bool nogpu_memory)
{
	TupleDesc	desc = lookup_rowtype_tupdesc(resources_type, -1);
	Datum		v[4] = {0, 0, 0, 0};
	bool		n[4] = {true, true, true, true};
	RollingStats *s;
	HeapTuple	tuple;

	if (!nocpu && runtime != NULL && runtime->mean > 0)
	{
		v[0] = Float8GetDatum(DatumGetRollingStatsP(cpu)->mean / runtime->mean);
		n[0] = false;
	}
	if (!nomemory && (s = DatumGetRollingStatsP(memory))->nring > 0)
	{
		v[1] = Int64GetDatum((int64) ceil(RollingStatsQuantile(s, 0.95)));
		n[1] = false;
	}
	if (!nogpu_memory && (s = DatumGetRollingStatsP(gpu_memory))->nring > 0)
	{
		v[3] = Int64GetDatum((int64) ceil(RollingStatsQuantile(s, 0.95)));
		n[3] = false;
	}
	tuple = heap_form_tuple(desc, v, n);
	ReleaseTupleDesc(desc);
	return HeapTupleGetDatum(tuple);
}

/*
 * _profile_resources(runtime, cpu, memory, gpu_memory) -> resources: what
 * a profile's statistics predict (ProfileResources), for tforge.estimate.
 */
PG_FUNCTION_INFO_V1(tforge_profile_resources);
Datum
tforge_profile_resources(PG_FUNCTION_ARGS)
{
	Oid			resources_type = get_fn_expr_rettype(fcinfo->flinfo);

	if (!OidIsValid(resources_type))
		resources_type = get_func_rettype(fcinfo->flinfo->fn_oid);
	PG_RETURN_DATUM(ProfileResources(resources_type,
									 PG_ARGISNULL(0) ? NULL : PG_GETARG_ROLLING_STATS_P(0),
									 PG_GETARG_DATUM(1), PG_ARGISNULL(1),
									 PG_GETARG_DATUM(2), PG_ARGISNULL(2),
									 PG_GETARG_DATUM(3), PG_ARGISNULL(3)));
}

/*
 * The type's tau and, when learning is on, every strategy's prediction
 * from the profile an estimate uses: the key's when it has runtimes, else
 * the type's, else tau for all (source "default"). want_resources also
 * asks for the resources the profile predicts. False when the type does
 * not exist.
 */
static bool
ReadLearned(Datum task_type, Datum task_key, bool nokey, bool want_resources,
			Oid resources_type, Learned *l)
{
	double		bound = l->query.bound;
	Relation	rel;
	TupleTableSlot *slot;
	Datum		keys[2] = {task_type, task_key};
	bool		keynulls[2] = {false, true};
	bool		isnull;
	int			attempt;
	int			i;

	/* a learned tau implies the type (task_tau references task_types) */
	if (!LookupFloat8("task_tau", "task_tau_pkey", task_type, "tau_s", &l->tau, &isnull) &&
		!LookupFloat8("task_types", "task_types_pkey", task_type, "default_tau_s", &l->tau, &isnull))
		return false;

	l->source = "default";
	l->runs = 0;
	l->noresources = true;
	l->upper = NAN;
	for (i = 0; i < EST_NSTRATEGIES; i++)
	{
		l->pred[i] = bound > 0 ? Min(l->tau, bound) : l->tau;
		l->conf[i] = 0;
	}
	if (!tforge_learning_enabled)
		return true;

	/* the key's profile, then the type's (key NULL) */
	for (attempt = nokey ? 1 : 0; attempt < 2; attempt++)
	{
		Datum		runtime;

		keynulls[1] = attempt == 1;
		slot = LookupRow("profiles", "profiles_type_key", 2, keys, keynulls, &rel);
		if (!TupIsNull(slot) && (runtime = Column(slot, "runtime", &isnull), !isnull))
		{
			RollingStats *stats = DatumGetRollingStatsP(runtime);

			l->source = attempt == 0 ? "key" : "type";
			l->runs = stats->count;
			EstimateProfileRow(slot, task_type, attempt == 0, &l->query, l->coverage, l->pred, l->conf,
							   &l->upper);
			if (want_resources)
			{
				bool		nocpu,
							nomem,
							nogmem;
				Datum		cpu = Column(slot, "cpu", &nocpu);
				Datum		mem = Column(slot, "memory", &nomem);
				Datum		gmem = Column(slot, "gpu_memory", &nogmem);

				l->resources = ProfileResources(resources_type, stats, cpu, nocpu, mem, nomem, gmem, nogmem);
				l->noresources = false;
			}
			LookupEnd(slot, rel);
			break;
		}
		LookupEnd(slot, rel);
	}
	return true;
}

/* A float8[] of n values. */
static Datum
Float8Array(const double *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
		d[i] = Float8GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/*
 * submit_task(task_type, payload, resources, priority, task_key,
 *             sla_multiplier, max_attempts) -> task_id
 *
 * deadline   = arrival + sla_multiplier * tau
 * laxity_key = deadline - predicted runtime
 *
 * The prediction is tau unless learning applies: the profile has
 * tforge.learning_min_executions runs, the configured strategy's confidence
 * reaches tforge.learning_confidence_threshold and the task declared no
 * resources; then the estimate is the prediction and fills the resources.
 * Either way every strategy's prediction is stored for the completion to
 * score. The deadline is tau's, unless deadline_coverage asks for the
 * calibrated bound (estimate.c) and the profile has one: then
 * deadline = arrival + that bound.
 */
PG_FUNCTION_INFO_V1(tforge_submit_task);
Datum
tforge_submit_task(PG_FUNCTION_ARGS)
{
	Oid			resources_type = ArgType(fcinfo, 2);
	Jsonb	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	double		sla = PG_ARGISNULL(5) ? tforge_sla_multiplier : PG_GETARG_FLOAT8(5);
	int32		attempts = PG_ARGISNULL(6) ? tforge_max_attempts : PG_GETARG_INT32(6);
	double		coverage = PG_NARGS() > 7 && !PG_ARGISNULL(7) ? PG_GETARG_FLOAT8(7) : 0;
	TimestampTz arrival = GetCurrentTransactionStartTimestamp();
	bool		undeclared;
	Learned		l;
	double		predicted;
	Datum		v[16];
	bool		n[16] = {0};
	bool		isnull;
	int64		task_id;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task_type must not be NULL")));
	if (!(sla > 0 && !isinf(sla)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sla_multiplier must be a positive finite number, got %s", float8out_internal(sla))));
	if (attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1, got %d", attempts)));
	if (PG_NARGS() > 7 && !PG_ARGISNULL(7))
		CalibrationCheckCoverage(coverage);
	undeclared = CheckResources(PG_GETARG_DATUM(2), PG_ARGISNULL(2), resources_type);

	l.query.bound = RequestedBound(payload);
	l.query.procs = ResourcesProcessors(PG_GETARG_DATUM(2), PG_ARGISNULL(2));
	l.coverage = coverage;
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!ReadLearned(PG_GETARG_DATUM(0), PG_GETARG_DATUM(4), PG_ARGISNULL(4),
					 undeclared, resources_type, &l))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task type \"%s\" does not exist", TextDatumGetCString(PG_GETARG_DATUM(0))),
				 errhint("Define it with tforge.define_task_type(name, default_tau_s).")));
	PopActiveSnapshot();

	/* the columns of submit_insert */
	v[0] = PG_GETARG_DATUM(0);
	v[1] = PG_GETARG_DATUM(4);
	n[1] = PG_ARGISNULL(4);
	v[2] = payload ? JsonbPGetDatum(payload) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	v[3] = PG_GETARG_DATUM(2);
	n[3] = PG_ARGISNULL(2);
	v[4] = Int32GetDatum(PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3));
	v[5] = TimestampTzGetDatum(arrival);
	v[9] = CStringGetTextDatum("tau");
	n[10] = true;				/* prediction_confidence */
	v[11] = CStringGetTextDatum("type");
	v[12] = Int32GetDatum(attempts);
	v[13] = Float8Array(l.pred, EST_NSTRATEGIES);
	v[14] = Float8Array(l.conf, EST_NSTRATEGIES);
	v[15] = CStringGetTextDatum(l.source);
	n[13] = n[14] = n[15] = !tforge_learning_enabled;

	predicted = l.tau;
	if (strcmp(l.source, "default") != 0 && undeclared)
	{
		int			s = (int) EstimateStrategyFromName(tforge_learning_strategy);

		if (l.runs >= tforge_learning_min_executions &&
			l.conf[s] >= tforge_learning_confidence_threshold && l.pred[s] > 0)
		{
			predicted = Min(l.pred[s], MAX_RUNTIME_S);
			v[3] = l.resources;
			n[3] = l.noresources;
			v[9] = CStringGetTextDatum(tforge_learning_strategy);
			v[10] = Float8GetDatum(l.conf[s]);
			n[10] = false;
			v[11] = CStringGetTextDatum(l.source);
		}
	}

	v[6] = TimestampTzGetDatum(arrival + (coverage > 0 && !isnan(l.upper)
										  ? DeadlineOffset(1.0, Min(l.upper, MAX_RUNTIME_S))
										  : DeadlineOffset(sla, l.tau)));
	v[7] = Float8GetDatum(predicted);
	v[8] = DirectFunctionCall2(timestamptz_mi_interval, v[6],
							   DirectFunctionCall7(make_interval, 0, 0, 0, 0, 0, 0,
												   Float8GetDatum(predicted)));

	SPI_connect();
	Execute(&submit_insert, resources_type, v, n, 1);
	task_id = DatumGetInt64(ResultValue(0, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT64(task_id);
}

/* ---- claim_tasks ---------------------------------------------------------- */

/*
 * Whether a lease expired before at: the head of tasks_lease_idx, which
 * holds only leased (running) tasks. Almost every claim finds none, and
 * this probe costs a fraction of the statement that would find none.
 */
static bool
LeaseExpired(TimestampTz at)
{
	ScanKeyData key;
	Relation	rel;
	TupleTableSlot *slot;
	bool		found;

	ScanKeyInit(&key, 1, BTLessStrategyNumber, F_TIMESTAMPTZ_LT, TimestampTzGetDatum(at));
	PushActiveSnapshot(GetTransactionSnapshot());
	slot = IndexFirst("tasks", "tasks_lease_idx", &key, 1, &rel);
	found = !TupIsNull(slot);
	LookupEnd(slot, rel);
	PopActiveSnapshot();
	return found;
}

/* Requeue or bury every task whose lease expired before at; how many. */
static uint64
ExpireLeases(TimestampTz at)
{
	Datum		v = TimestampTzGetDatum(at);
	bool		n = false;

	if (!LeaseExpired(at))
		return 0;
	return Execute(&expire_leases, InvalidOid, &v, &n, 0);
}

/* expire_leases() -> integer: requeues (or buries) every task whose lease expired. */
PG_FUNCTION_INFO_V1(tforge_expire_leases);
Datum
tforge_expire_leases(PG_FUNCTION_ARGS)
{
	uint64		n;

	SPI_connect();
	n = ExpireLeases(GetCurrentTimestamp());
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}

/*
 * claim_tasks(worker_id, max_tasks, capacity, lease) -> SETOF tasks
 *
 * Expires leases first, so that a task whose worker vanished is claimable
 * again, then leases up to max_tasks tasks; SKIP LOCKED lets concurrent
 * claimers pass each other's picks.
 */
PG_FUNCTION_INFO_V1(tforge_claim_tasks);
Datum
tforge_claim_tasks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			resources_type = ArgType(fcinfo, 2);
	TimestampTz at = GetCurrentTimestamp();
	double		lease_s = NAN;
	Datum		v[6];
	bool		n[6] = {false, false, false, false, false, false};
	uint64		claimed;
	uint64		i;

	if (PG_ARGISNULL(0) || VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("worker_id must not be empty")));
	if (PG_ARGISNULL(1) || PG_GETARG_INT32(1) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_tasks must be at least 1, got %s",
						ValueText(PG_GETARG_DATUM(1), PG_ARGISNULL(1), INT4OID))));
	if (!PG_ARGISNULL(3))
		lease_s = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
													 DirectFunctionCall2(extract_interval,
																		 CStringGetTextDatum("epoch"),
																		 PG_GETARG_DATUM(3))));
	if (!(lease_s > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lease must be a positive interval, got %s",
						PG_ARGISNULL(3) ? "NULL" : ValueText(PG_GETARG_DATUM(3), false, INTERVALOID))));
	CheckResources(PG_GETARG_DATUM(2), PG_ARGISNULL(2), resources_type);

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();

	ExpireLeases(at);

	v[0] = TimestampTzGetDatum(at);
	v[1] = PG_GETARG_DATUM(2);
	n[1] = PG_ARGISNULL(2);
	v[2] = PG_GETARG_DATUM(1);
	v[3] = PG_GETARG_DATUM(0);
	v[4] = Float8GetDatum(lease_s);
	v[5] = PG_GETARG_DATUM(3);
	claimed = Execute(PG_GETARG_INT32(1) > 1 ? &claim_batch :
					  PG_ARGISNULL(2) ? &claim_one : &claim_one_fitting,
					  resources_type, v, n, 0);
	for (i = 0; i < claimed; i++)
	{
		bool		isnull;
		HeapTupleHeader row = DatumGetHeapTupleHeader(ResultValue(i, 1, &isnull));
		HeapTupleData tuple;

		tuple.t_len = HeapTupleHeaderGetDatumLength(row);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = row;
		tuplestore_puttuple(rsinfo->setResult, &tuple);
	}

	SPI_finish();
	return (Datum) 0;
}

/* ---- complete_task and learning --------------------------------------------- */

/* Raise why task_id is not held by worker_id: 42704 or 55000. */
static void
NotHeld(int64 task_id, const char *worker_id)
{
	Datum		v = Int64GetDatum(task_id);
	bool		n = false;
	bool		isnull;
	char	   *status;
	char	   *holder;

	if (Execute(&held_by, InvalidOid, &v, &n, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task " INT64_FORMAT " does not exist", task_id)));
	status = TextDatumGetCString(ResultValue(0, 1, &isnull));
	holder = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("task " INT64_FORMAT " is not held by worker \"%s\"", task_id, worker_id),
			 strcmp(status, "running") == 0
			 ? errdetail("The task is running for worker \"%s\".", holder ? holder : "")
			 : errdetail("The task is %s.", status),
			 errhint("A worker may only heartbeat, complete or fail a task it has claimed and whose lease has not been given to another worker.")));
}

/*
 * usage->key for a profile: a number in [0, 1e18]; false when absent, and
 * false with a WARNING added to *warnings (raised once the completion is
 * known to stand) when it is anything else.
 */
static bool
UsageSample(Jsonb *usage, int64 task_id, const char *key, double *out, List **warnings)
{
	double		v;

	if (!JsonbNumber(usage, key, &v))
		return false;
	if (v >= 0 && v <= MAX_USAGE)
	{
		*out = v;
		return true;
	}
	*warnings = lappend(*warnings,
						psprintf("usage \"%s\" of task " INT64_FORMAT " not profiled: %s is not a number between 0 and 1e18",
								 key, task_id, isnan(v) ? JsonbFieldText(usage, key, true) : float8out_internal(v)));
	return false;
}

/* ---- learned state, updated in place ------------------------------------ */

/*
 * Every completion rewrites its type's tau and profile, one or two rows
 * that all completions of the type share. An UPDATE through SPI would
 * spend most of its time starting the executor and re-reading the tables'
 * CHECK constraints; these rows are instead changed like a catalog row:
 * found by key, rewritten with heap_update (HOT when the page has room,
 * indexed again when not), waiting for a concurrent writer and then
 * changing its new version, as UPDATE does (UpdateInPlace). The new values
 * are computed here, and checked as the tables' constraints would. These
 * tables have no triggers; tforge alone writes them.
 */

/* Computes the new version of a locked row; arg is the caller's. */
typedef HeapTuple (*RowChange) (TupleTableSlot *slot, void *arg);

/* Index entries for a new row version that is not HOT, as for a catalog row. */
static void
IndexNewVersion(Relation rel, HeapTuple tuple)
{
	CatalogIndexState indexes;
	TupleTableSlot *slot;
	int			i;

	if (HeapTupleIsHeapOnly(tuple))
		return;
	indexes = CatalogOpenIndexes(rel);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	for (i = 0; i < indexes->ri_NumIndices; i++)
	{
		IndexInfo  *info = indexes->ri_IndexRelationInfo[i];
		Relation	index = indexes->ri_IndexRelationDescs[i];
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		if (!info->ii_ReadyForInserts)
			continue;
		if (info->ii_Expressions != NIL || info->ii_Predicate != NIL)
			elog(ERROR, "tforge: index \"%s\" on learned state has expressions or a predicate",
				 RelationGetRelationName(index));
		FormIndexDatum(info, slot, NULL, values, isnull);
		index_insert(index, values, isnull, &tuple->t_self, rel,
					 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, false, info);
	}
	ExecDropSingleTupleTableSlot(slot);
	CatalogCloseIndexes(indexes);
}

/*
 * Rewrite the row of tforge.<table> with key (keys) in its unique index
 * tforge.<index>: false when there is no such row. As UPDATE does, a row
 * a concurrent transaction is changing is waited for, and its new version
 * changed in turn (READ COMMITTED) or refused (REPEATABLE READ and above).
 */
static bool
UpdateInPlace(const char *table, const char *index, int nkeys, const Datum *keys,
			  const bool *keynulls, RowChange change, void *arg)
{
	Relation	rel;
	TupleTableSlot *slot;
	ItemPointerData tid;
	bool		done = false;

	PushActiveSnapshot(GetTransactionSnapshot());
	slot = LookupRow(table, index, nkeys, keys, keynulls, &rel);
	PopActiveSnapshot();
	if (TupIsNull(slot))
	{
		LookupEnd(slot, rel);
		return false;
	}
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	LockRelationOid(RelationGetRelid(rel), RowExclusiveLock);

	tid = slot->tts_tid;
	for (;;)
	{
		HeapTuple	tuple = change(slot, arg);
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		TM_Result	result;

		result = heap_update(rel, &tid, tuple, GetCurrentCommandId(true), InvalidSnapshot, true,
							 &tmfd, &lockmode);
		if (result == TM_Ok)
		{
			IndexNewVersion(rel, tuple);
			done = true;
			break;
		}
		if ((result != TM_Updated && result != TM_Deleted) || IsolationUsesXactSnapshot())
		{
			if (result == TM_Updated || result == TM_Deleted)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			elog(ERROR, "unexpected heap_update status %u on tforge.%s", result, table);
		}
		/* a concurrent transaction committed a new version: change that one */
		if (result == TM_Deleted || ItemPointerEquals(&tid, &tmfd.ctid))
			break;				/* gone: the caller creates the row */
		tid = tmfd.ctid;
		if (!table_tuple_fetch_row_version(rel, &tid, SnapshotAny, slot))
			break;
	}
	if (done)
		CommandCounterIncrement();
	LookupEnd(slot, rel);
	return done;
}

/* The next version of a row being rewritten: the slot's, with some columns replaced. */
typedef struct RowEdit
{
	TupleTableSlot *slot;		/* the version it replaces */
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
} RowEdit;

static void
RowEditBegin(RowEdit *e, TupleTableSlot *slot)
{
	int			natts = slot->tts_tupleDescriptor->natts;

	e->slot = slot;
	e->values = palloc0(sizeof(Datum) * natts);
	e->nulls = palloc0(sizeof(bool) * natts);
	e->replace = palloc0(sizeof(bool) * natts);
}

/* The column's value in the version being replaced. */
static Datum
RowEditGet(RowEdit *e, const char *name, bool *isnull)
{
	return slot_getattr(e->slot, ColumnIndex(e->slot->tts_tupleDescriptor, name) + 1, isnull);
}

static void
RowEditSet(RowEdit *e, const char *name, Datum value, bool isnull)
{
	int			i = ColumnIndex(e->slot->tts_tupleDescriptor, name);

	e->values[i] = value;
	e->nulls[i] = isnull;
	e->replace[i] = true;
}

/* The new version, its updated_at now(). */
static HeapTuple
RowEditFinish(RowEdit *e)
{
	RowEditSet(e, "updated_at", TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
	return heap_modify_tuple(ExecFetchSlotHeapTuple(e->slot, false, NULL), e->slot->tts_tupleDescriptor,
							 e->values, e->nulls, e->replace);
}

/*
 * How often a completion tries to create learned state it found missing
 * before giving up: only a concurrent delete of the row it just found
 * created (reset_tau, expire_profiles) can make it try again.
 */
#define CREATE_ATTEMPTS 3

static void
ConcurrentlyDeleted(const char *what, Datum task_type)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not record the %s of task type \"%s\": it was deleted concurrently",
					what, TextDatumGetCString(task_type)),
			 errhint("Retry the transaction.")));
}

/* Float8 column of task_type's definition in a snapshot of its own; false if undefined. */
static bool
TypeColumn(Datum task_type, const char *column, double *value, bool *isnull)
{
	bool		found;

	PushActiveSnapshot(GetTransactionSnapshot());
	found = LookupFloat8("task_types", "task_types_pkey", task_type, column, value, isnull);
	PopActiveSnapshot();
	return found;
}

/* One completion, as a profile records it. */
typedef struct Completion
{
	double		samples[4];		/* runtime, cpu, memory, GPU memory */
	bool		has[4];
	double		bound;			/* caps scored predictions; 0: none */
	double		procs;			/* the task's resources.cpu; 0: unknown */
	LearnSample learn;			/* estimate.c's, carried from the key's profile to the type's */
} Completion;

/* rolling_stats column name with sample x added, when there is one (NULL stays NULL without). */
static void
AddSample(RowEdit *e, const char *name, bool has, double x)
{
	bool		isnull;
	Datum		stats = RowEditGet(e, name, &isnull);

	if (has)
		RowEditSet(e, name, PointerGetDatum(RollingStatsAdd(isnull ? NULL : DatumGetRollingStatsP(stats), x)),
				   false);
}

/*
 * A profile after one more completion: completions + 1, and, unless
 * sampling skips it (past tforge.profile_sample_after recorded runs only
 * every tforge.profile_sample_every-th completion counts), the strategies
 * scored on what they predicted before the run enters the profile, then
 * each sample added to its statistics.
 */
static HeapTuple
ProfileChange(TupleTableSlot *slot, void *arg)
{
	Completion *c = (Completion *) arg;
	RowEdit		e;
	bool		isnull;
	bool		noruntime;
	bool		nokey;
	int64		completions;
	Datum		runtime;
	RollingStats *stats;
	LearnColumns lc;

	RowEditBegin(&e, slot);
	completions = DatumGetInt64(RowEditGet(&e, "completions", &isnull)) + 1;
	runtime = RowEditGet(&e, "runtime", &noruntime);
	stats = noruntime ? NULL : DatumGetRollingStatsP(runtime);

	RowEditSet(&e, "completions", Int64GetDatum(completions), false);
	if (tforge_profile_sample_after == 0 || (stats ? stats->count : 0) < tforge_profile_sample_after ||
		completions % tforge_profile_sample_every == 0)
	{
		c->learn.has_runtime = c->has[0];
		c->learn.runtime = c->samples[0];
		c->learn.query.bound = c->bound;
		c->learn.query.procs = c->procs;
		lc.scores = RowEditGet(&e, "scores", &lc.noscores);
		lc.recent = RowEditGet(&e, "recent", &lc.norecent);
		lc.calibration = RowEditGet(&e, "calibration", &lc.nocalibration);
		lc.pooled = RowEditGet(&e, "pooled", &lc.nopooled);
		(void) RowEditGet(&e, "task_key", &nokey);
		LearnProfileUpdate(stats, RowEditGet(&e, "task_type", &isnull), !nokey, &lc, &c->learn);
		RowEditSet(&e, "scores", lc.scores, lc.noscores);
		RowEditSet(&e, "recent", lc.recent, lc.norecent);
		RowEditSet(&e, "calibration", lc.calibration, lc.nocalibration);
		RowEditSet(&e, "pooled", lc.pooled, lc.nopooled);
		AddSample(&e, "runtime", c->has[0], c->samples[0]);
		AddSample(&e, "cpu", c->has[1], c->samples[1]);
		AddSample(&e, "memory", c->has[2], c->samples[2]);
		AddSample(&e, "gpu_memory", c->has[3], c->samples[3]);
	}
	return RowEditFinish(&e);
}

/*
 * Record one completion in the profiles of task_type and of task_key (when
 * not NULL), the key's first; a profile's first completion creates it.
 */
static void
ProfileRecord(Datum task_type, Datum task_key, bool nokey, Completion *c)
{
	int			k;

	for (k = nokey ? 1 : 0; k < 2; k++)
	{
		Datum		keys[2] = {task_type, task_key};
		bool		keynulls[2] = {false, k == 1};
		int			attempt;

		for (attempt = 0; !UpdateInPlace("profiles", "profiles_type_key", 2, keys, keynulls,
										 ProfileChange, c); attempt++)
		{
			Datum		v[8];
			bool		n[8];
			int			i;

			if (attempt == CREATE_ATTEMPTS)
				ConcurrentlyDeleted("profile", task_type);
			v[0] = task_type;
			n[0] = false;
			v[1] = task_key;
			n[1] = keynulls[1];
			for (i = 0; i < 4; i++)
			{
				v[2 + i] = Float8GetDatum(c->samples[i]);
				n[2 + i] = !c->has[i];
			}
			v[6] = Float8GetDatum(c->bound);
			v[7] = Float8GetDatum(c->procs);
			n[6] = n[7] = false;
			c->learn.carried = false;	/* a new profile scored nothing */
			if (Execute(&profile_insert, InvalidOid, v, n, 0) == 1)
				break;
		}
	}
}

/* One runtime into a tau row. */
typedef struct TauSample
{
	double		runtime_s;
	double		lambda;
	double		tau;			/* out: the new tau */
} TauSample;

/* tau = lambda * runtime + (1 - lambda) * tau, samples + 1. */
static HeapTuple
TauChange(TupleTableSlot *slot, void *arg)
{
	TauSample  *t = (TauSample *) arg;
	RowEdit		e;
	bool		isnull;

	RowEditBegin(&e, slot);
	t->tau = Ema(DatumGetFloat8(RowEditGet(&e, "tau_s", &isnull)), t->runtime_s, t->lambda);
	if (!LearnableSeconds(t->tau))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("new tau %s s of a task type is not a number of seconds above 0 and at most 1e9",
						float8out_internal(t->tau))));
	RowEditSet(&e, "tau_s", Float8GetDatum(t->tau), false);
	RowEditSet(&e, "samples", Int64GetDatum(DatumGetInt64(RowEditGet(&e, "samples", &isnull)) + 1), false);
	return RowEditFinish(&e);
}

/* The EMA weight of task_type's tau: its own lambda, else tforge.ema_lambda. */
static double
TypeLambda(Datum task_type)
{
	double		lambda;
	bool		isnull;

	if (TypeColumn(task_type, "lambda", &lambda, &isnull) && !isnull)
		return lambda;
	return tforge_ema_lambda;
}

/* One runtime into the type's tau; false when the type does not exist. */
static bool
TauUpdate(Datum task_type, double runtime_s, double *tau)
{
	TauSample	t = {runtime_s, TypeLambda(task_type), 0};
	bool		keynull = false;
	double		tau_default;
	int			attempt;

	for (attempt = 0; attempt < CREATE_ATTEMPTS; attempt++)
	{
		Datum		v[3] = {task_type, Float8GetDatum(runtime_s), Float8GetDatum(tforge_ema_lambda)};
		bool		n[3] = {false, false, false};
		bool		isnull;

		if (UpdateInPlace("task_tau", "task_tau_pkey", 1, &task_type, &keynull, TauChange, &t))
		{
			*tau = t.tau;
			return true;
		}
		if (Execute(&tau_insert, InvalidOid, v, n, 1) == 1)
		{
			*tau = DatumGetFloat8(ResultValue(0, 1, &isnull));
			return true;
		}
		if (!TypeColumn(task_type, "default_tau_s", &tau_default, &isnull))
			return false;
	}
	ConcurrentlyDeleted("tau", task_type);
	return false;				/* keep the compiler quiet */
}

/*
 * complete_task(task_id, worker_id, usage) -> tasks
 *
 * Marks the task done (its row keeps what submit predicted beside the
 * runtime observed: that is the score) and, in the same transaction,
 * records the run in the type's and key's profiles and updates tau. The type's shared rows are written last, so that concurrent
 * completions of one type hold them only until commit. A runtime that tau
 * cannot learn from (not a number, not in (0, 1e9] s) never loses the
 * completion: the task is done with runtime_s NULL, and a WARNING says why.
 */
PG_FUNCTION_INFO_V1(tforge_complete_task);
Datum
tforge_complete_task(PG_FUNCTION_ARGS)
{
	int64		task_id;
	char	   *worker_id;
	Jsonb	   *usage = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	TimestampTz at = GetCurrentTimestamp();
	double		reported = 0;
	bool		has_reported;
	Completion	c = {{0, 0, 0, 0}, {false, false, false, false}, 0, 0};
	List	   *warnings = NIL;
	ListCell   *lc;
	Datum		v[5];
	bool		n[5] = {false, false, false, false, false};
	bool		isnull;
	bool		nokey;
	Datum		task;
	Datum		task_type;
	Datum		task_key;
	Datum		payload;
	double		tau;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task_id must not be NULL")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("worker_id must not be NULL")));
	task_id = PG_GETARG_INT64(0);
	worker_id = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (usage != NULL && !JB_ROOT_IS_OBJECT(usage))
	{
		ereport(WARNING,
				(errmsg("usage of task " INT64_FORMAT " ignored: not a JSON object", task_id)));
		usage = NULL;
	}
	has_reported = JsonbNumber(usage, "runtime_s", &reported);

	c.has[1] = UsageSample(usage, task_id, "cpu_s", &c.samples[1], &warnings);
	c.has[2] = UsageSample(usage, task_id, "memory_bytes", &c.samples[2], &warnings);
	c.has[3] = UsageSample(usage, task_id, "gpu_memory_bytes", &c.samples[3], &warnings);

	SPI_connect();

	v[0] = Int64GetDatum(task_id);
	v[1] = PG_GETARG_DATUM(1);
	v[2] = TimestampTzGetDatum(at);
	v[3] = PointerGetDatum(usage);
	n[3] = usage == NULL;
	v[4] = Float8GetDatum(reported);
	n[4] = !has_reported;
	if (Execute(&complete, InvalidOid, v, n, 0) == 0)
		NotHeld(task_id, worker_id);

	task = SPI_datumTransfer(ResultValue(0, 1, &isnull), false, -1);
	task_type = ResultValue(0, 2, &isnull);
	task_key = ResultValue(0, 3, &nokey);
	c.samples[0] = DatumGetFloat8(ResultValue(0, 4, &isnull));
	c.has[0] = !isnull;
	payload = ResultValue(0, 5, &isnull);
	c.bound = isnull ? 0 : RequestedBound(DatumGetJsonbP(payload));
	{
		Datum		cpu = ResultValue(0, 7, &isnull);
		double		procs = isnull ? 0 : DatumGetFloat8(cpu);

		c.procs = procs > 0 && procs <= MAX_USAGE ? procs : 0;
	}

	foreach(lc, warnings)
		ereport(WARNING, (errmsg_internal("%s", (char *) lfirst(lc))));
	ProfileRecord(task_type, task_key, nokey, &c);
	if (c.has[0])
		TauUpdate(task_type, c.samples[0], &tau);
	else
	{
		const char *why;

		if (has_reported && !isnan(reported))
			why = float8out_internal(reported);
		else if (JsonbField(usage, "runtime_s") != NULL)
			why = JsonbFieldText(usage, "runtime_s", false);
		else
		{
			TimestampTz claimed = DatumGetTimestampTz(ResultValue(0, 6, &isnull));

			why = isnull ? "NULL" :
				ValueText(DirectFunctionCall2(extract_interval, CStringGetTextDatum("epoch"),
											  DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(at),
																  TimestampTzGetDatum(claimed))),
						  false, NUMERICOID);
		}
		ereport(WARNING,
				(errmsg("runtime of task " INT64_FORMAT " not learned: %s is not a number of seconds above 0 and at most 1e9",
						task_id, why)));
	}

	SPI_finish();
	PG_RETURN_DATUM(task);
}

/*
 * update_tau(task_type, runtime_s) -> new tau
 *
 * tau = lambda * runtime + (1 - lambda) * tau, lambda the type's or
 * tforge.ema_lambda.
 */
PG_FUNCTION_INFO_V1(tforge_update_tau);
Datum
tforge_update_tau(PG_FUNCTION_ARGS)
{
	double		runtime_s;
	double		tau;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	runtime_s = PG_ARGISNULL(1) ? NAN : PG_GETARG_FLOAT8(1);
	if (!LearnableSeconds(runtime_s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("runtime_s must be a number of seconds above 0 and at most 1e9, got %s",
						PG_ARGISNULL(1) ? "NULL" : float8out_internal(runtime_s))));
	SPI_connect();
	if (!TauUpdate(PG_GETARG_DATUM(0), runtime_s, &tau))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task type \"%s\" does not exist", TextDatumGetCString(PG_GETARG_DATUM(0))),
				 errhint("Define it with tforge.define_task_type(name, default_tau_s).")));
	SPI_finish();
	PG_RETURN_FLOAT8(tau);
}

/*
 * _profile_record(task_type, task_key, runtime_s, cpu_s, memory_bytes,
 *                 gpu_memory_bytes, bound) -> void
 *
 * What complete_task records, for tests and imports of past runs. A runtime
 * that is not in (0, 1e18] s carries no information about the next run and
 * is left out (with a WARNING above 1e18 s).
 */
PG_FUNCTION_INFO_V1(tforge_profile_record);
Datum
tforge_profile_record(PG_FUNCTION_ARGS)
{
	Completion	c;
	int			i;

	memset(&c, 0, sizeof(c));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task_type must not be NULL")));
	for (i = 0; i < 4; i++)
	{
		c.has[i] = !PG_ARGISNULL(2 + i);
		c.samples[i] = c.has[i] ? PG_GETARG_FLOAT8(2 + i) : 0;
	}
	if (c.has[0] && c.samples[0] > MAX_USAGE && !isinf(c.samples[0]))
		ereport(WARNING,
				(errmsg("runtime %s s not profiled: above 1e18 s", float8out_internal(c.samples[0]))));
	if (c.has[0] && !(c.samples[0] > 0 && c.samples[0] <= MAX_USAGE))
		c.has[0] = false;
	c.bound = PG_ARGISNULL(6) ? 0 : PG_GETARG_FLOAT8(6);
	if (isnan(c.bound) || isinf(c.bound))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("runtime bound must be a finite number, got \"%s\"", float8out_internal(c.bound))));

	SPI_connect();
	ProfileRecord(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_ARGISNULL(1), &c);
	SPI_finish();
	PG_RETURN_VOID();
}
