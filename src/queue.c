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
 *   complete_task  one UPDATE of the task (under the claim's fencing
 *                  token when the worker gives it), then the type's tau and
 *                  the type's and key's profiles rewritten through the
 *                  executor's update path (learned.c)
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
 * statement (the one exception is a claim of several tasks). Statements
 * are planned with enable_sort off (Execute, statement.c), so that stale
 * statistics never turn the claim into a sort of every pending task.
 *
 * The helpers that tests and operators call directly (update_tau,
 * _profile_record, expire_leases) are C too and share this code: the
 * statements and lookups are in statement.c, learned-state writes in
 * learned.c, tau learning in tau.c, profile learning in profile_learn.c
 * (queue.h lists them).
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
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "calibration.h"
#include "estimate.h"
#include "pool.h"
#include "profile.h"
#include "queue.h"
#include "tforge.h"

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

/* The tasks whose lease expired before $1: what expire_leases may release. */
static QueueStatement expired_tasks = {
	"SELECT k.task_id FROM tforge.tasks k WHERE k.status = 'running' AND k.lease_expires_at < $1",
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
/*
 * Every claim takes a fencing token (tasks.claim_token) from the sequence
 * tforge.claim_token_seq rather than reusing the attempt number: a sequence
 * value is never handed out twice, even when an operator resets attempts to
 * requeue a dead task, or after a dump and restore (the sequence is dumped),
 * so a token names one claim of one task for good.
 *
 * A database still at 0.1.0 (the library installed, ALTER EXTENSION UPDATE
 * not yet run) has no tokens: its claims run the statements without them
 * (the [0] variants), so that workers keep working across the upgrade.
 */
/* (CLAIM_SET_010, CLAIM_SET and CLAIM_FITS, which typed claims share, are in queue.h.) */
#define CLAIM_HEAD(fits, limit) \
	"SELECT h.task_id FROM tforge.tasks h" \
	" WHERE h.status = 'pending' AND h.available_at <= $1" fits \
	"   AND ($7::pg_catalog.text[] IS NULL OR h.task_type = ANY ($7))" \
	" ORDER BY h.laxity_key, h.priority DESC, h.submitted_at, h.task_id" \
	" LIMIT " limit \
	" FOR UPDATE SKIP LOCKED"
#define CLAIM_ONE(fits, set) \
	"UPDATE tforge.tasks k" set \
	" WHERE k.task_id = (" CLAIM_HEAD(fits, "1") ")" \
	" RETURNING k"
#define CLAIM_BATCH(range, set) \
	"WITH picked AS (" CLAIM_HEAD(CLAIM_FITS range, "$3") ")" \
	"UPDATE tforge.tasks k" set \
	"  FROM picked p" \
	" WHERE k.task_id = p.task_id" \
	" RETURNING k"
#define CLAIM_ARGTYPES {TIMESTAMPTZOID, RESOURCES_ARG, INT4OID, TEXTOID, FLOAT8OID, INTERVALOID, TEXTARRAYOID}

static QueueStatement claim_one[2] = {
	{CLAIM_ONE("", CLAIM_SET_010), 7, CLAIM_ARGTYPES},
	{CLAIM_ONE("", CLAIM_SET), 7, CLAIM_ARGTYPES}
};
static QueueStatement claim_one_fitting[2] = {
	{CLAIM_ONE(CLAIM_FITS, CLAIM_SET_010), 7, CLAIM_ARGTYPES},
	{CLAIM_ONE(CLAIM_FITS, CLAIM_SET), 7, CLAIM_ARGTYPES}
};
/*
 * A single claim from position ($8, $9, $10, $11) of tasks_claim_idx on
 * (claim_prefix.c): the four ranges that, one after the other, are the
 * index from there on, each an index range of its own; [range][fits][tokens].
 */
#define CLAIM_FROM_ARGTYPES {TIMESTAMPTZOID, RESOURCES_ARG, INT4OID, TEXTOID, FLOAT8OID, INTERVALOID, TEXTARRAYOID, \
	TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID, INT8OID}
#define CLAIM_FROM_1 " AND h.laxity_key = $8 AND h.priority = $9 AND h.submitted_at = $10 AND h.task_id >= $11"
#define CLAIM_FROM_2 " AND h.laxity_key = $8 AND h.priority = $9 AND h.submitted_at > $10"
#define CLAIM_FROM_3 " AND h.laxity_key = $8 AND h.priority < $9"
#define CLAIM_FROM_4 " AND h.laxity_key > $8"
#define CLAIM_FROM(range) { \
	{{CLAIM_ONE(range, CLAIM_SET_010), 11, CLAIM_FROM_ARGTYPES}, {CLAIM_ONE(range, CLAIM_SET), 11, CLAIM_FROM_ARGTYPES}}, \
	{{CLAIM_ONE(CLAIM_FITS range, CLAIM_SET_010), 11, CLAIM_FROM_ARGTYPES}, {CLAIM_ONE(CLAIM_FITS range, CLAIM_SET), 11, CLAIM_FROM_ARGTYPES}}}
static QueueStatement claim_from[4][2][2] = {
	CLAIM_FROM(CLAIM_FROM_1), CLAIM_FROM(CLAIM_FROM_2), CLAIM_FROM(CLAIM_FROM_3), CLAIM_FROM(CLAIM_FROM_4)
};

static QueueStatement claim_batch[2] = {
	{CLAIM_BATCH("", CLAIM_SET_010), 7, CLAIM_ARGTYPES, CURSOR_OPT_CUSTOM_PLAN},
	{CLAIM_BATCH("", CLAIM_SET), 7, CLAIM_ARGTYPES, CURSOR_OPT_CUSTOM_PLAN}
};

/*
 * The claims above past the shared bound $8 of tasks_claim_idx
 * (claim_head.c): every entry below it is dead. [fits][tokens] for one
 * task, [tokens] for a batch.
 */
#define CLAIM_AFTER " AND h.laxity_key >= $8"
#define CLAIM_AFTER_ARGTYPES {TIMESTAMPTZOID, RESOURCES_ARG, INT4OID, TEXTOID, FLOAT8OID, INTERVALOID, TEXTARRAYOID, \
	TIMESTAMPTZOID}
static QueueStatement claim_one_after[2][2] = {
	{{CLAIM_ONE(CLAIM_AFTER, CLAIM_SET_010), 8, CLAIM_AFTER_ARGTYPES},
	 {CLAIM_ONE(CLAIM_AFTER, CLAIM_SET), 8, CLAIM_AFTER_ARGTYPES}},
	{{CLAIM_ONE(CLAIM_FITS CLAIM_AFTER, CLAIM_SET_010), 8, CLAIM_AFTER_ARGTYPES},
	 {CLAIM_ONE(CLAIM_FITS CLAIM_AFTER, CLAIM_SET), 8, CLAIM_AFTER_ARGTYPES}}
};
static QueueStatement claim_batch_after[2] = {
	{CLAIM_BATCH(CLAIM_AFTER, CLAIM_SET_010), 8, CLAIM_AFTER_ARGTYPES, CURSOR_OPT_CUSTOM_PLAN},
	{CLAIM_BATCH(CLAIM_AFTER, CLAIM_SET), 8, CLAIM_AFTER_ARGTYPES, CURSOR_OPT_CUSTOM_PLAN}
};

/*
 * complete_task: the task held by worker $2 (under claim token $6 when
 * given) is done at $3; its runtime is the reported one ($5) or claim to
 * completion, NULL unless tau can learn from it. The row keeps what submit
 * predicted beside the runtime observed, which is all the scoring there is
 * (view tforge.prediction_scores). The WHERE clause is HeldTask's rule (held.c), as SQL.
 */
#define COMPLETE_SET \
	"UPDATE tforge.tasks t" \
	COMPLETE_COLUMNS("$4", "$5") \
	" WHERE t.task_id = $1 AND t.status = 'running' AND t.worker_id = $2"

/* [0]: 0.1.0's complete_task, without a token; [1]: with one. */
static QueueStatement complete[2] = {
	{COMPLETE_SET COMPLETED_RETURNING("t", COMPLETED_PREDICTIONS_010), 5, {INT8OID, TEXTOID, TIMESTAMPTZOID, JSONBOID, FLOAT8OID}},
	{COMPLETE_SET "   AND ($6::bigint IS NULL OR t.claim_token = $6)" COMPLETED_RETURNING("t", COMPLETED_PREDICTIONS),
	6, {INT8OID, TEXTOID, TIMESTAMPTZOID, JSONBOID, FLOAT8OID, INT8OID}}
};

/*
 * Whether the database's tforge schema has fencing tokens (0.2.0), or is
 * still 0.1.0's (the library is new, ALTER EXTENSION UPDATE not yet run).
 */
static bool
SchemaHasTokens(void)
{
	return OidIsValid(TforgeRelid("claim_token_seq"));
}

/* The type of argument argno as called (tforge.resources), even without an expression. */
Oid
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

/*
 * tforge.resources: refuse a negative, NaN or infinite field (22023).
 * Returns whether every field is NULL (SQL's "row IS NULL").
 */
bool
CheckResources(Datum value, bool isnull, Oid type)
{
	HeapTupleHeader row;
	bool		all_null = true;
	bool		bad = false;
	int			i;

	if (isnull)
		return true;
	CheckResourcesLayout(type);
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

/* ---- submit_task ---------------------------------------------------------- */

/*
 * The key -> type -> tau fallback, its one definition (submit_task and
 * submit_tasks share it): a task's predictions come from its key's profile
 * when that has runtimes, else from its type's, else they are tau (source
 * "default"). LearnedBegin reads the type's tau (or default) once;
 * LearnedFor reads the profiles, the type's at most once per lookup and a
 * key's once for as many consecutive calls as name that key; LearnedEnd
 * releases what they hold. Reads are index probes under the active
 * snapshot, which the caller pushes.
 */
void
LearnedBegin(LearnedLookup *lk, Datum task_type)
{
	bool		isnull;

	memset(lk, 0, sizeof(*lk));
	lk->task_type = task_type;
	/* a learned tau implies the type (task_tau references task_types) */
	if (!LookupFloat8("task_tau", "task_tau_pkey", task_type, "tau_s", &lk->tau, &isnull) &&
		!LookupFloat8("task_types", "task_types_pkey", task_type, "default_tau_s", &lk->tau, &isnull))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task type \"%s\" does not exist", TextDatumGetCString(task_type)),
				 errhint("Define it with tforge.define_task_type(name, default_tau_s).")));
}

/* The profile row of (type, key) (key NULL: the type's) if it has runtimes, else NULL. */
static TupleTableSlot *
ProfileWithRuntimes(LearnedLookup *lk, Datum task_key, bool nokey, Relation *rel)
{
	Datum		keys[2] = {lk->task_type, task_key};
	bool		keynulls[2] = {false, nokey};
	TupleTableSlot *slot = LookupRow("profiles", "profiles_type_key", 2, keys, keynulls, rel);
	bool		isnull;

	if (!TupIsNull(slot))
	{
		(void) slot_getattr(slot, ColumnIndex(slot->tts_tupleDescriptor, "runtime") + 1, &isnull);
		if (!isnull)
			return slot;
	}
	LookupEnd(slot, *rel);
	return NULL;
}

/*
 * Submit's estimate from a type's profile, kept per backend.
 *
 * EstimateProfileRow runs every strategy (the kernel-mode ones over the
 * whole ring) so that the completion can score them, which costs more
 * than the rest of submit_task. For a type's profile (task_key NULL; a
 * key's estimate also reads its type's row and is never kept) it is a pure
 * function of the row's runtime, scores, recent, calibration and pooled
 * columns, the query (bound, processors), the coverage asked for and
 * tforge.ema_lambda. Past tforge.profile_sample_after runs, nine
 * completions in ten leave those columns' stored bytes as they were (only
 * completions and updated_at change), so consecutive submits of a type
 * find the same bytes and take the estimate kept from the first. The key
 * is the stored bytes themselves, compared whole: any change to a column,
 * a different compression included, computes afresh. A value stored out
 * of line (a TOAST pointer could name a later value) is never kept.
 *
 * Any new input of EstimateProfileRow must join the key here.
 */
#define ESTIMATE_KEY_COLUMNS 5

static const char *const estimate_key_columns[ESTIMATE_KEY_COLUMNS] = {
	"runtime", "scores", "recent", "calibration", "pooled"
};

typedef struct EstimateCache
{
	bool		valid;
	char	   *task_type;
	double		bound;
	double		procs;
	double		coverage;
	double		lambda;
	struct varlena *column[ESTIMATE_KEY_COLUMNS];	/* NULL: SQL NULL or no such column */
	double		pred[EST_NSTRATEGIES];
	double		conf[EST_NSTRATEGIES];
	double		upper;
} EstimateCache;

static EstimateCache estimate_cache;
static MemoryContext estimate_cache_cxt = NULL;

/* The stored (not detoasted) key columns of a profile row; false if one is out of line. */
static bool
EstimateKey(TupleTableSlot *slot, struct varlena **column)
{
	int			i;

	for (i = 0; i < ESTIMATE_KEY_COLUMNS; i++)
	{
		int			att = ColumnIndexIfAny(slot->tts_tupleDescriptor, estimate_key_columns[i]);
		bool		isnull = true;
		Datum		d = att < 0 ? (Datum) 0 : slot_getattr(slot, att + 1, &isnull);

		column[i] = isnull ? NULL : (struct varlena *) DatumGetPointer(d);
		if (column[i] != NULL && VARATT_IS_EXTERNAL(column[i]))
			return false;
	}
	return true;
}

/* Whether the kept estimate was computed from exactly these inputs. */
static bool
EstimateCacheHit(const char *task_type, const EstimateQuery *q, double coverage, struct varlena **column)
{
	int			i;

	if (!estimate_cache.valid || strcmp(estimate_cache.task_type, task_type) != 0 ||
		memcmp(&estimate_cache.bound, &q->bound, sizeof(double)) != 0 ||
		memcmp(&estimate_cache.procs, &q->procs, sizeof(double)) != 0 ||
		memcmp(&estimate_cache.coverage, &coverage, sizeof(double)) != 0 ||
		memcmp(&estimate_cache.lambda, &tforge_ema_lambda, sizeof(double)) != 0)
		return false;
	for (i = 0; i < ESTIMATE_KEY_COLUMNS; i++)
	{
		struct varlena *kept = estimate_cache.column[i];

		if ((kept == NULL) != (column[i] == NULL))
			return false;
		if (kept != NULL && (VARSIZE_ANY(kept) != VARSIZE_ANY(column[i]) ||
							 memcmp(kept, column[i], VARSIZE_ANY(kept)) != 0))
			return false;
	}
	return true;
}

static void
EstimateCacheStore(const char *task_type, const EstimateQuery *q, double coverage, struct varlena **column,
				   const double *pred, const double *conf, double upper)
{
	MemoryContext old;
	int			i;

	if (estimate_cache_cxt == NULL)
		estimate_cache_cxt = AllocSetContextCreate(TopMemoryContext, "tforge submit estimate",
												   ALLOCSET_DEFAULT_SIZES);
	estimate_cache.valid = false;
	MemoryContextReset(estimate_cache_cxt);
	old = MemoryContextSwitchTo(estimate_cache_cxt);
	estimate_cache.task_type = pstrdup(task_type);
	for (i = 0; i < ESTIMATE_KEY_COLUMNS; i++)
	{
		estimate_cache.column[i] = NULL;
		if (column[i] != NULL)
		{
			estimate_cache.column[i] = palloc(VARSIZE_ANY(column[i]));
			memcpy(estimate_cache.column[i], column[i], VARSIZE_ANY(column[i]));
		}
	}
	MemoryContextSwitchTo(old);
	estimate_cache.bound = q->bound;
	estimate_cache.procs = q->procs;
	estimate_cache.coverage = coverage;
	estimate_cache.lambda = tforge_ema_lambda;
	memcpy(estimate_cache.pred, pred, sizeof(estimate_cache.pred));
	memcpy(estimate_cache.conf, conf, sizeof(estimate_cache.conf));
	estimate_cache.upper = upper;
	estimate_cache.valid = true;
}

/* EstimateProfileRow, or the estimate kept for a type's profile with the same inputs. */
static void
EstimateProfileKept(TupleTableSlot *slot, Datum task_type, bool is_key, const EstimateQuery *q,
					double coverage, double *pred, double *conf, double *upper)
{
	struct varlena *column[ESTIMATE_KEY_COLUMNS];
	char	   *type;
	bool		keep;

	if (is_key)
	{
		EstimateProfileRow(slot, task_type, is_key, q, coverage, pred, conf, upper);
		return;
	}
	type = TextDatumGetCString(task_type);
	keep = EstimateKey(slot, column);
	if (keep && EstimateCacheHit(type, q, coverage, column))
	{
		memcpy(pred, estimate_cache.pred, sizeof(estimate_cache.pred));
		memcpy(conf, estimate_cache.conf, sizeof(estimate_cache.conf));
		*upper = estimate_cache.upper;
		return;
	}
	EstimateProfileRow(slot, task_type, is_key, q, coverage, pred, conf, upper);
	if (keep)
		EstimateCacheStore(type, q, coverage, column, pred, conf, *upper);
}

/*
 * What submit knows of a task of the lookup's type with key task_key
 * (nokey: none): tau and, when learning is on, every strategy's prediction
 * from the profile the fallback picks. want_resources also asks for the
 * resources the profile predicts. l->query and l->coverage are in.
 */
void
LearnedFor(LearnedLookup *lk, Datum task_key, bool nokey, bool want_resources,
		   Oid resources_type, Learned *l)
{
	double		bound = l->query.bound;
	TupleTableSlot *slot = NULL;
	RollingStats *stats;
	bool		is_key = false;
	bool		isnull;
	int			i;

	l->tau = lk->tau;
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
		return;

	/* the key's profile (kept while the next call names the same key), then the type's */
	if (!nokey)
	{
		text	   *key = DatumGetTextPP(task_key);

		/* keys compare as the profiles index compares them (texteq: bytes) */
		if (!(lk->key_read && VARSIZE_ANY_EXHDR(key) == VARSIZE_ANY_EXHDR(lk->key) &&
			  memcmp(VARDATA_ANY(key), VARDATA_ANY(lk->key), VARSIZE_ANY_EXHDR(key)) == 0))
		{
			if (lk->key_slot != NULL)
				LookupEnd(lk->key_slot, lk->key_rel);
			lk->key_slot = ProfileWithRuntimes(lk, PointerGetDatum(key), false, &lk->key_rel);
			lk->key = key;
			lk->key_read = true;
		}
		slot = lk->key_slot;
		is_key = slot != NULL;
	}
	if (slot == NULL)
	{
		if (!lk->type_read)
			lk->type_slot = ProfileWithRuntimes(lk, (Datum) 0, true, &lk->type_rel);
		lk->type_read = true;
		slot = lk->type_slot;
	}
	if (slot == NULL)
		return;

	stats = DatumGetRollingStatsP(Column(slot, "runtime", &isnull));
	l->source = is_key ? "key" : "type";
	l->runs = stats->count;
	EstimateProfileKept(slot, lk->task_type, is_key, &l->query, l->coverage, l->pred, l->conf, &l->upper);
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
}

void
LearnedEnd(LearnedLookup *lk)
{
	if (lk->key_slot != NULL)
		LookupEnd(lk->key_slot, lk->key_rel);
	if (lk->type_slot != NULL)
		LookupEnd(lk->type_slot, lk->type_rel);
	lk->key_slot = lk->type_slot = NULL;
}

/* A float8[] of n values. */
Datum
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
 * sla_multiplier and max_attempts of a submit (NULL: the GUCs), checked:
 * 22023 unless sla is a positive finite number and attempts at least 1.
 */
void
SubmitOptions(FunctionCallInfo fcinfo, int sla_arg, int attempts_arg, double *sla, int32 *attempts)
{
	*sla = PG_ARGISNULL(sla_arg) ? tforge_sla_multiplier : PG_GETARG_FLOAT8(sla_arg);
	*attempts = PG_ARGISNULL(attempts_arg) ? tforge_max_attempts : PG_GETARG_INT32(attempts_arg);
	if (!(*sla > 0 && !isinf(*sla)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sla_multiplier must be a positive finite number, got %s", float8out_internal(*sla))));
	if (*attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1, got %d", *attempts)));
}

/*
 * The columns submit computes for a task from what is learned:
 *
 * deadline   = arrival + sla_multiplier * tau
 * laxity_key = deadline - predicted runtime
 *
 * The prediction is tau unless learning applies: the profile has
 * tforge.learning_min_executions runs, the configured strategy's confidence
 * reaches tforge.learning_confidence_threshold and the task declared no
 * resources; then the estimate is the prediction and fills the resources
 * (r->learned_resources). Either way every strategy's prediction is stored
 * for the completion to score (l->pred, l->conf, l->source). The deadline is
 * tau's, unless deadline_coverage asks for the calibrated bound
 * (estimate.c) and the profile has one: then deadline = arrival + that
 * bound.
 */
void
SubmitColumns(const Learned *l, bool undeclared, double sla, double coverage, TimestampTz arrival,
			  SubmitRow *r)
{
	r->predicted = l->tau;
	r->strategy = "tau";
	r->noconfidence = true;
	r->confidence = 0;
	r->source = "type";
	r->learned_resources = false;
	if (strcmp(l->source, "default") != 0 && undeclared)
	{
		int			s = (int) EstimateStrategyFromName(tforge_learning_strategy);

		if (l->runs >= tforge_learning_min_executions &&
			l->conf[s] >= tforge_learning_confidence_threshold && l->pred[s] > 0)
		{
			r->predicted = Min(l->pred[s], MAX_RUNTIME_S);
			r->learned_resources = true;
			r->strategy = tforge_learning_strategy;
			r->confidence = l->conf[s];
			r->noconfidence = false;
			r->source = l->source;
		}
	}
	r->deadline = arrival + (coverage > 0 && !isnan(l->upper)
							 ? DeadlineOffset(1.0, Min(l->upper, MAX_RUNTIME_S))
							 : DeadlineOffset(sla, l->tau));
	r->laxity = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval, TimestampTzGetDatum(r->deadline),
														DirectFunctionCall7(make_interval, 0, 0, 0, 0, 0, 0,
																			Float8GetDatum(r->predicted))));
}

/*
 * submit_task(task_type, payload, resources, priority, task_key,
 *             sla_multiplier, max_attempts, deadline_coverage) -> task_id
 *
 * Admission first (53000 when refused), then the learned state of the
 * type and key (LearnedFor) and the columns it implies (SubmitColumns),
 * one INSERT, and a wake-up of the type's listeners at commit.
 */
PG_FUNCTION_INFO_V1(tforge_submit_task);
Datum
tforge_submit_task(PG_FUNCTION_ARGS)
{
	Oid			resources_type = ArgType(fcinfo, 2);
	Jsonb	   *payload = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	double		sla;
	int32		attempts;
	double		coverage = PG_NARGS() > 7 && !PG_ARGISNULL(7) ? PG_GETARG_FLOAT8(7) : 0;
	TimestampTz arrival = GetCurrentTransactionStartTimestamp();
	bool		undeclared;
	LearnedLookup lk;
	Learned		l;
	SubmitRow	r;
	Datum		v[16];
	bool		n[16] = {0};
	bool		isnull;
	int64		task_id;

	RequireArg(fcinfo, 0, "task_type");
	SubmitOptions(fcinfo, 5, 6, &sla, &attempts);
	undeclared = CheckResources(PG_GETARG_DATUM(2), PG_ARGISNULL(2), resources_type);
	CheckWritable("tforge.submit_task()");
	if (PG_NARGS() > 7 && !PG_ARGISNULL(7))
		CalibrationCheckCoverage(coverage);

	l.query.bound = RequestedBound(payload);
	l.query.procs = ResourcesProcessors(PG_GETARG_DATUM(2), PG_ARGISNULL(2));
	l.coverage = coverage;
	PushActiveSnapshot(GetTransactionSnapshot());
	LearnedBegin(&lk, PG_GETARG_DATUM(0));
	LearnedFor(&lk, PG_GETARG_DATUM(4), PG_ARGISNULL(4), undeclared, resources_type, &l);
	LearnedEnd(&lk);
	PopActiveSnapshot();
	/* admission once the call is known good: a call refused anyway takes no token and gets its own error */
	GovernorAdmit();
	SubmitColumns(&l, undeclared, sla, coverage, arrival, &r);

	/* the columns of submit_insert */
	v[0] = PG_GETARG_DATUM(0);
	v[1] = PG_GETARG_DATUM(4);
	n[1] = PG_ARGISNULL(4);
	v[2] = payload ? JsonbPGetDatum(payload) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	v[3] = r.learned_resources ? l.resources : PG_GETARG_DATUM(2);
	n[3] = r.learned_resources ? l.noresources : PG_ARGISNULL(2);
	v[4] = Int32GetDatum(PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3));
	v[5] = TimestampTzGetDatum(arrival);
	v[6] = TimestampTzGetDatum(r.deadline);
	v[7] = Float8GetDatum(r.predicted);
	v[8] = TimestampTzGetDatum(r.laxity);
	v[9] = CStringGetTextDatum(r.strategy);
	v[10] = Float8GetDatum(r.confidence);
	n[10] = r.noconfidence;
	v[11] = CStringGetTextDatum(r.source);
	v[12] = Int32GetDatum(attempts);
	v[13] = Float8Array(l.pred, EST_NSTRATEGIES);
	v[14] = Float8Array(l.conf, EST_NSTRATEGIES);
	v[15] = CStringGetTextDatum(l.source);
	n[13] = n[14] = n[15] = !tforge_learning_enabled;

	SPI_connect();
	if (Execute(&submit_insert, resources_type, v, n, 1) != 1)
		SkippedByTrigger("tasks", "the insert of the submitted task");
	task_id = DatumGetInt64(ResultValue(0, 1, &isnull));
	ClaimPrefixInserted(task_id);
	SPI_finish();
	WakeWorkers(PG_GETARG_DATUM(0));
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

/*
 * Requeue or bury every task whose lease expired before at; how many. The
 * GPU devices of those tasks (and device, a claim's, when not NULL) are
 * locked first, in device order, as a batch locks them (PoolLockTaskDevices):
 * releasing them in the statement's row order could deadlock with a batch.
 */
static uint64
ExpireLeases(TimestampTz at, text *device)
{
	Datum		v = TimestampTzGetDatum(at);
	bool		n = false;
	uint64		nexpired;
	int64	   *ids;
	uint64		i;

	if (!LeaseExpired(at))
		return 0;
	if (OidIsValid(TforgeRelid("gpu_blocks")))	/* (a 0.1.0 schema has no GPU pool) */
	{
		nexpired = Execute(&expired_tasks, InvalidOid, &v, &n, 0);
		ids = palloc(sizeof(int64) * (nexpired + 1));
		for (i = 0; i < nexpired; i++)
		{
			bool		isnull;

			ids[i] = DatumGetInt64(ResultValue(i, 1, &isnull));
		}
		PoolLockTaskDevices(ids, (int) Min(nexpired, (uint64) INT_MAX), device);
	}
	return Execute(&expire_leases, InvalidOid, &v, &n, 0);
}

/* expire_leases() -> integer: requeues (or buries) every task whose lease expired. */
PG_FUNCTION_INFO_V1(tforge_expire_leases);
Datum
tforge_expire_leases(PG_FUNCTION_ARGS)
{
	uint64		n;

	CheckWritable("tforge.expire_leases()");
	SPI_connect();
	n = ExpireLeases(GetCurrentTimestamp(), NULL);
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}

/*
 * claim_tasks(..., gpu_device): claims one task at a time, each with the
 * GPU-memory capacity lowered to what the device can allocate now (pool.c
 * locks the device first), and allocates the claimed task's
 * gpu_memory_bytes as tensor "task:<task_id>" in this transaction. A task
 * needing more than the device has free is passed over by the claim's
 * index scan like any task that does not fit: it stays pending, and the
 * scan goes on to the next task in laxity order. Free memory only: cached
 * blocks are not evicted for a claim. The block is freed when the task
 * leaves 'running' (a trigger on tasks, sql/install/60_gpu.sql).
 */
static void
ClaimOnDevice(FunctionCallInfo fcinfo, text *device, QueueStatement *claim, ArrayType *types,
			  Oid resources_type, Datum *v, bool *n, int tokens)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		typed = types != NULL && TypedClaimIndex();
	TupleDesc	desc;
	int			i;

	CheckResourcesLayout(resources_type);
	desc = lookup_rowtype_tupdesc_copy(resources_type, -1);

	for (i = 0; i < PG_GETARG_INT32(1); i++)
	{
		int64		room;
		Datum		f[4] = {0, 0, 0, 0};
		bool		fn[4] = {true, true, true, true};
		HeapTupleHeader row;
		HeapTupleData tuple;
		bool		isnull;
		Datum		need;
		uint64		claimed;
		int			j;
		int			r;

		/*
		 * Each task's statements in an SPI connection of their own, so that
		 * their results and memory go when the task is claimed (ResultRelease).
		 */
		SPI_connect();
		room = PoolClaimableBytes(device);
		/* the caller's capacity, its GPU memory at most what the device has free */
		for (j = 0; j < 4 && !PG_ARGISNULL(2); j++)
			f[j] = GetAttributeByNum(PG_GETARG_HEAPTUPLEHEADER(2), j + 1, &fn[j]);
		if (fn[3] || DatumGetInt64(f[3]) > room)
			f[3] = Int64GetDatum(room);
		fn[3] = false;
		v[1] = HeapTupleGetDatum(heap_form_tuple(desc, f, fn));
		n[1] = false;
		/*
		 * A typed claim's last statement is the claim that succeeded; an
		 * untyped one starts past the tasks this transaction claimed before
		 * (claim_prefix.c), or this loop would step over each of them again.
		 */
		if (typed)
			claimed = ClaimTyped(NULL, types, 1, resources_type, v, n, tokens);
		else if (ClaimPrefix(&v[7]))
			for (claimed = 0, r = 0; r < 4 && claimed == 0; r++)
				claimed = Execute(&claim_from[r][1][tokens], resources_type, v, n, 0);
		else
			claimed = Execute(claim, resources_type, v, n, 0);
		if (claimed == 0)
		{
			SPI_finish();
			break;
		}
		if (!typed)
			ClaimPrefixClaimed(claimed);
		row = DatumGetHeapTupleHeader(ResultValue(0, 1, &isnull));
		tuple.t_len = HeapTupleHeaderGetDatumLength(row);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = row;
		tuplestore_puttuple(rsinfo->setResult, &tuple);

		need = GetAttributeByName(row, "resources", &isnull);
		if (!isnull)
			need = GetAttributeByName(DatumGetHeapTupleHeader(need), "gpu_memory_bytes", &isnull);
		if (!isnull && DatumGetInt64(need) > 0 &&
			!PoolClaimTask(device, DatumGetInt64(GetAttributeByName(row, "task_id", &isnull)),
						   DatumGetInt64(need)))
			elog(ERROR, "tforge: a claimed task's GPU memory did not fit the room measured for it");
		SPI_finish();
	}
}

/*
 * claim_tasks(worker_id, max_tasks, capacity, lease, gpu_device, task_types)
 *		-> SETOF tasks
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
	Datum		v[11];
	bool		n[11] = {false, false, false, false, false, false, false, false, false, false, false};
	uint64		claimed;
	int			tokens;
	TimestampTz bound;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL",
						PG_ARGISNULL(0) ? "worker_id" : PG_ARGISNULL(1) ? "max_tasks" : "lease")));
	if (VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)) == 0)
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
	CheckWritable("tforge.claim_tasks()");

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();

	ExpireLeases(at, PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_TEXT_PP(4) : NULL);

	v[0] = TimestampTzGetDatum(at);
	v[1] = PG_GETARG_DATUM(2);
	n[1] = PG_ARGISNULL(2);
	v[2] = PG_GETARG_DATUM(1);
	v[3] = PG_GETARG_DATUM(0);
	v[4] = Float8GetDatum(lease_s);
	v[5] = PG_GETARG_DATUM(3);
	/* task_types (0.2.0): only tasks of these types; NULL, any type */
	n[6] = PG_NARGS() <= 5 || PG_ARGISNULL(5);
	v[6] = n[6] ? (Datum) 0 : PG_GETARG_DATUM(5);
	tokens = SchemaHasTokens();
	if (PG_NARGS() > 4 && !PG_ARGISNULL(4))
	{
		ClaimOnDevice(fcinfo, PG_GETARG_TEXT_PP(4), &claim_one_fitting[tokens],
					  n[6] ? NULL : PG_GETARG_ARRAYTYPE_P(5), resources_type, v, n, tokens);
		SPI_finish();
		return (Datum) 0;
	}
	if (!n[6] && TypedClaimIndex())
	{
		/* only tasks of the listed types: their heads in tasks_type_claim_idx */
		(void) ClaimTyped(rsinfo, PG_GETARG_ARRAYTYPE_P(5), PG_GETARG_INT32(1), resources_type, v, n, tokens);
		SPI_finish();
		return (Datum) 0;
	}
	if (PG_GETARG_INT32(1) == 1 && ClaimPrefix(&v[7]))
	{
		/* past what this transaction claimed before (claim_prefix.c) */
		int			r;

		claimed = 0;
		for (r = 0; r < 4 && claimed == 0; r++)
			claimed = Execute(&claim_from[r][!PG_ARGISNULL(2)][tokens], resources_type, v, n, 0);
	}
	else if (ClaimHeadBound(&bound))
	{
		/* past the entries every claim so far left dead (claim_head.c) */
		v[7] = TimestampTzGetDatum(bound);
		claimed = Execute(PG_GETARG_INT32(1) > 1 ? &claim_batch_after[tokens] :
						  &claim_one_after[!PG_ARGISNULL(2)][tokens], resources_type, v, n, 0);
		ClaimHeadScanned();
	}
	else
		claimed = Execute(PG_GETARG_INT32(1) > 1 ? &claim_batch[tokens] :
						  PG_ARGISNULL(2) ? &claim_one[tokens] : &claim_one_fitting[tokens],
						  resources_type, v, n, 0);
	if (claimed > 0)
		ClaimPrefixClaimed(claimed);
	EmitClaimed(rsinfo, claimed);

	SPI_finish();
	return (Datum) 0;
}

/* Put the n rows (tforge.tasks) the last claim statement returned into the claim's result. */
void
EmitClaimed(ReturnSetInfo *rsinfo, uint64 n)
{
	uint64		i;

	for (i = 0; i < n; i++)
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
}

/* ---- complete_task and learning --------------------------------------------- */

/*
 * The WARNING complete_task and complete_tasks (batch.c) give when a
 * runtime is not learned, with the value it saw: the reported one, else the
 * claim-to-completion time.
 */
void
WarnNotLearned(int64 task_id, Jsonb *usage, bool has_reported, double reported, TimestampTz at,
			   TimestampTz claimed, bool noclaimed)
{
	const char *why;

	if (has_reported && !isnan(reported))
		why = float8out_internal(reported);
	else if (JsonbField(usage, "runtime_s") != NULL)
		why = JsonbFieldText(usage, "runtime_s", true);
	else
		why = noclaimed ? "NULL" :
			ValueText(DirectFunctionCall2(extract_interval, CStringGetTextDatum("epoch"),
										  DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(at),
															  TimestampTzGetDatum(claimed))),
					  false, NUMERICOID);
	ereport(WARNING,
			(errmsg("runtime of task " INT64_FORMAT " not learned: %s is not " LEARNABLE_SECONDS,
					task_id, why)));
}

/*
 * complete_task(task_id, worker_id, usage, claim_token) -> tasks
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
	double		reported;
	bool		has_reported;
	Completion	c;
	CompletedTask t;
	Datum		v[6];
	bool		n[6] = {false, false, false, false, false, false};
	bool		v010 = PG_NARGS() < 4;	/* 0.1.0's complete_task(task_id, worker_id, usage) */
	bool		notoken = v010 || PG_ARGISNULL(3);
	bool		isnull;
	uint64		completed;
	Datum		task;
	double		tau;

	memset(&c, 0, sizeof(c));
	RequireArg(fcinfo, 0, "task_id");
	RequireArg(fcinfo, 1, "worker_id");
	task_id = PG_GETARG_INT64(0);
	worker_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	CheckWritable("tforge.complete_task()");

	usage = CompletionUsage(usage, task_id, &reported, &has_reported);

	SPI_connect();

	v[0] = Int64GetDatum(task_id);
	v[1] = PG_GETARG_DATUM(1);
	v[2] = TimestampTzGetDatum(at);
	v[3] = PointerGetDatum(usage);
	n[3] = usage == NULL;
	v[4] = Float8GetDatum(reported);
	n[4] = !has_reported;
	v[5] = notoken ? (Datum) 0 : PG_GETARG_DATUM(3);
	n[5] = notoken;
	completed = Execute(&complete[v010 ? 0 : 1], InvalidOid, v, n, 0);
	ClaimPrefixUpdated(completed);
	if (completed == 0)
		TaskNotHeld(task_id, worker_id, notoken, notoken ? 0 : PG_GETARG_INT64(3), !v010);

	/*
	 * Everything the completion needs from the UPDATE's result, read now:
	 * the learning below runs statements of its own, after which
	 * SPI_tuptable is theirs (or NULL). The datums stay valid until
	 * SPI_finish.
	 */
	task = SPI_datumTransfer(ResultValue(0, 1, &isnull), false, -1);
	CompletedRow(0, task_id, usage, &c, &t);

	ProfileRecord(t.task_type, t.task_key, t.nokey, &c);
	if (c.has[0])
		TauUpdate(t.task_type, c.samples[0], &tau);
	else
		WarnNotLearned(task_id, usage, has_reported, reported, at, t.claimed, t.noclaimed);

	SPI_finish();
	PG_RETURN_DATUM(task);
}
