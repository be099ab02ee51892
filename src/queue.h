/*
 * queue.h: what the queue's C files share.
 *
 *   queue.c          the entry points: submit_task, claim_tasks,
 *                    expire_leases, complete_task; the learned-state reads
 *                    and columns of a submit
 *   submit_batch.c   submit_tasks: many submits in one INSERT
 *   statement.c      the SPI plan cache, statement execution, row lookups by
 *                    index, the JSONB field readers and the reader of a
 *                    batch's array arguments
 *   learned.c        writes of learned state (task_tau, profiles rows)
 *   rowcache.c       where this transaction last wrote each learned row
 *   batch.c          complete_tasks and fail_tasks: a batch in one statement
 *   held.c           whether a worker holds a task, and why not (single
 *                    calls and batches)
 *   tau.c            tau learning (and the seconds bound, below)
 *   profile_learn.c  profile learning: a completion into profiles, and the
 *                    resources a profile predicts
 *   claim_prefix.c   where a claim in a long transaction may start its scan
 */
#ifndef TFORGE_QUEUE_H
#define TFORGE_QUEUE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/skey.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"

#include "estimate.h"
#include "profile.h"
#include "tforge.h"

/* Longest runtime tau learns from, and longest prediction, in seconds. */
#define MAX_RUNTIME_S 1e9

/* Largest usage value a profile records (keeps variances finite). */
#define MAX_USAGE 1e18

/*
 * Most cpu cores a run can have used (cpu_s / runtime_s) and a profile
 * predict: beyond it a report is a unit error or forged.
 */
#define MAX_CPU_CORES 1e6

/* The rule below in words, for messages. */
#define USABLE_AMOUNT "a number between 0 and 1e18"

/* Whether x is a usage value a profile records: a number in [0, 1e18]. */
static inline bool
UsableAmount(double x)
{
	return x >= 0 && x <= MAX_USAGE;
}

/* Stands in a statement's argument types for tforge.resources. */
#define RESOURCES_ARG InvalidOid

/* (QueueStatement, a statement prepared on first use and kept, is in tforge.h.) */

/* The rule below in words, for messages: "... is <LEARNABLE_SECONDS>". */
#define LEARNABLE_SECONDS "a number of seconds above 0 and at most 1e9"

/* Whether a float8 is a number of seconds tau can learn from: (0, 1e9]. */
static inline bool
LearnableSeconds(double s)
{
	return s > 0 && s <= MAX_RUNTIME_S;
}

/* Computes the new version of a locked row; arg is the caller's. */
typedef HeapTuple (*RowChange) (TupleTableSlot *slot, void *arg);

/* Shown the row as written (after BEFORE triggers); arg is the caller's. */
typedef void (*RowWritten) (TupleTableSlot *slot, void *arg);

/* The next version of a row being rewritten: the slot's, with some columns replaced. */
typedef struct RowEdit
{
	TupleTableSlot *slot;		/* the version it replaces */
	Datum	   *values;
	bool	   *nulls;
	bool	   *replace;
} RowEdit;

/*
 * How often a completion tries to create learned state it found missing
 * before giving up: only a concurrent delete of the row it just found
 * created (reset_tau, expire_profiles) can make it try again.
 */
#define CREATE_ATTEMPTS 3

/* One completion, as a profile records it. */
typedef struct Completion
{
	double		samples[4];		/* runtime, cpu, memory, GPU memory */
	bool		has[4];
	double		bound;			/* caps scored predictions; 0: none */
	double		procs;			/* the task's resources.cpu; 0: unknown */
	LearnSample learn;			/* estimate.c's, carried from the key's profile to the type's */
} Completion;

/* queue.c: what submit_task and submit_tasks (submit_batch.c) share ------ */

/* The type of argument argno as called (tforge.resources), even without an expression. */
extern Oid	ArgType(FunctionCallInfo fcinfo, int argno);

/* 22023 for a negative, NaN or infinite field; whether every field is NULL. */
extern bool CheckResources(Datum value, bool isnull, Oid type);

/* A float8[] of n values. */
extern Datum Float8Array(const double *values, int n);

/* sla_multiplier and max_attempts arguments (NULL: the GUCs), checked (22023). */
extern void SubmitOptions(FunctionCallInfo fcinfo, int sla_arg, int attempts_arg, double *sla,
						  int32 *attempts);

/* What submit knows of a task type and of the task's profile. */
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

/* The learned-state reads of one submit call (LearnedBegin, LearnedFor, LearnedEnd). */
typedef struct LearnedLookup
{
	Datum		task_type;
	double		tau;			/* learned, else the type's default */
	bool		type_read;		/* type_slot looked up (NULL: no runtimes) */
	TupleTableSlot *type_slot;
	Relation	type_rel;
	bool		key_read;		/* key_slot is key's profile (NULL: no runtimes) */
	text	   *key;
	TupleTableSlot *key_slot;
	Relation	key_rel;
} LearnedLookup;

/* The columns submit computes for a task. */
typedef struct SubmitRow
{
	TimestampTz deadline;
	double		predicted;		/* predicted_runtime_s */
	TimestampTz laxity;			/* laxity_key */
	const char *strategy;		/* prediction_strategy */
	double		confidence;		/* prediction_confidence, unless noconfidence */
	bool		noconfidence;
	const char *source;			/* prediction_source */
	bool		learned_resources;	/* resources are the profile's (Learned) */
} SubmitRow;

/* 42704 unless the type exists; reads its tau. */
extern void LearnedBegin(LearnedLookup *lk, Datum task_type);
extern void LearnedFor(LearnedLookup *lk, Datum task_key, bool nokey, bool want_resources,
					   Oid resources_type, Learned *l);
extern void LearnedEnd(LearnedLookup *lk);
extern void SubmitColumns(const Learned *l, bool undeclared, double sla, double coverage,
						  TimestampTz arrival, SubmitRow *r);

/* statement.c ------------------------------------------------------------- */

/* Run a statement; nulls[i] true means argument i is NULL. Returns SPI_processed. */
extern uint64 Execute(QueueStatement *stmt, Oid resources_type, Datum *values, const bool *nulls, long limit);

/* Column col (1-based) of row row of the last statement's result (checked). */
extern Datum ResultValue(uint64 row, int col, bool *isnull);

/* Free the last statement's result (a loop's, once done with it). */
extern void ResultRelease(void);

/* 25006 in a read-only transaction, in parallel mode or during recovery. */
extern void CheckWritable(const char *function);

/* 55000 unless tforge.resources has the four attributes the queue reads by number */
extern void CheckResourcesLayout(Oid type);

/* A value for an error message: its text, or <NULL>. */
extern const char *ValueText(Datum value, bool isnull, Oid type);

/* JSON object fields. */
extern JsonbValue *JsonbField(Jsonb *doc, const char *key);
extern bool JsonbNumber(Jsonb *doc, const char *key, double *out);
extern char *JsonbFieldText(Jsonb *doc, const char *key, bool clip);

/* OID of relation tforge.<name> (kept per backend); InvalidOid when there is none. */

/* Index probes of tforge's tables, under the active snapshot. */
extern TupleTableSlot *IndexFirst(const char *table, const char *index, ScanKey key, int nkeys,
								  Relation *relp);
extern TupleTableSlot *LookupRow(const char *table, const char *index, int nkeys, const Datum *keys,
								 const bool *keynulls, Relation *relp);
extern void LookupEnd(TupleTableSlot *slot, Relation rel);
extern int	ColumnIndexIfAny(TupleDesc desc, const char *name);
extern int	ColumnIndex(TupleDesc desc, const char *name);
extern Datum Column(TupleTableSlot *slot, const char *name, bool *isnull);
extern Datum ColumnIfAny(TupleTableSlot *slot, const char *name, bool *isnull);
extern bool LookupFloat8(const char *table, const char *index, Datum key, const char *column,
						 double *value, bool *isnull);

/* One array argument of a batch, deconstructed (GetBatchArray). */
typedef struct BatchArray
{
	bool		given;			/* the argument is not NULL */
	Datum	   *values;
	bool	   *nulls;
	int			n;
} BatchArray;

/* Argument argno as an array, deconstructed; 22023 unless it has at most one dimension. */
extern void GetBatchArray(FunctionCallInfo fcinfo, int argno, const char *name, BatchArray *a);
/* 22023 unless each array given (names[i], arrays[i]) has n elements, as many as against. */
extern void CheckBatchLengths(const char *against, int n, int narrays, const char *const *names,
							  const BatchArray *const *arrays);

/* held.c ------------------------------------------------------------------ */

/* One item a batch left out, explained by TaskRefusals. */
typedef struct RefusedItem
{
	int64		task_id;
	bool		notoken;
	int64		token;
	const char *status;			/* out: missing, not_held or stale_token */
	char	   *detail;			/* out */
} RefusedItem;

/* Lock the task held by worker_id (under token unless notoken) and return it; else 42704 or 55000. */
extern Datum HeldTask(int64 task_id, const char *worker_id, bool notoken, int64 token, bool tokens);
/* Raise why complete_task's UPDATE left the task out (HeldTask's errors). */
extern void TaskNotHeld(int64 task_id, const char *worker_id, bool notoken, int64 token,
						bool tokens) pg_attribute_noreturn();
/* Status and detail of each item a batch (what) left out, by HeldTask's rule. */
extern void TaskRefusals(RefusedItem *items, int n, const char *worker_id, const char *what);

/* rowcache.c -------------------------------------------------------------- */

/* The row with key (keys) as the active snapshot sees it, from where this transaction wrote it. */
extern bool RowCacheFind(Relation rel, Relation irel, int nkeys, const Datum *keys,
						 const bool *keynulls, TupleTableSlot *slot);
/* Remember the version in slot as the row with key (keys) in index indexid, if this transaction wrote it. */
extern void RowCacheRemember(Relation rel, Oid indexid, int nkeys, const Datum *keys,
							 const bool *keynulls, TupleTableSlot *slot);
/* The row with key (keys) as the active snapshot sees it, through the root of its HOT chain remembered across transactions. */
extern bool RowRootFind(Relation rel, Relation irel, int nkeys, const Datum *keys,
						const bool *keynulls, TupleTableSlot *slot);
/* Remember (forget) where the index entry of the row with key (keys) points, and its newest version. */
extern void RowRootRemember(Relation rel, Oid indexid, int nkeys, const Datum *keys,
							const bool *keynulls, ItemPointer root, ItemPointer last);
extern void RowRootForget(Oid indexid, int nkeys, const Datum *keys, const bool *keynulls);
/* Whether the version in slot still has key (keys) in index tforge.<index> (after following an update). */
extern bool RowHasKey(const char *index, TupleTableSlot *slot, int nkeys, const Datum *keys,
					  const bool *keynulls);

/* learned.c --------------------------------------------------------------- */

extern bool UpdateLearned(const char *table, const char *index, int nkeys, const Datum *keys,
						  const bool *keynulls, RowChange change, RowWritten written, void *arg);
extern void RowEditBegin(RowEdit *e, TupleTableSlot *slot);
extern Datum RowEditGet(RowEdit *e, const char *name, bool *isnull);
extern void RowEditSet(RowEdit *e, const char *name, Datum value, bool isnull);
extern int64 RowEditCount(RowEdit *e, const char *name, const char *what);
extern HeapTuple RowEditFinish(RowEdit *e);
extern void ConcurrentlyDeleted(const char *what, Datum task_type);
extern bool TypeColumn(Datum task_type, const char *column, double *value, bool *isnull);
/* For a batch (batch.c): lock a learned row and hold its newest version; write a computed version. */
extern bool LockLearned(const char *table, const char *index, int nkeys, const Datum *keys,
						const bool *keynulls, TupleTableSlot *slot);
extern void WriteLearned(const char *table, const char *index, int nkeys, const Datum *keys,
						 const bool *keynulls, HeapTuple version);

/* tau.c ------------------------------------------------------------------- */

/* One runtime into the type's tau; false when the type does not exist. */
extern bool TauUpdate(Datum task_type, double runtime_s, double *tau);
/* The EMA weight of the type's tau: its own lambda, else tforge.ema_lambda. */
extern double TypeLambda(Datum task_type);
/* For a batch (batch.c): the tau row after one runtime, and the row's creation. */
extern HeapTuple TauLearn(TupleTableSlot *slot, double runtime_s, double lambda);
extern bool TauCreate(Datum task_type, double runtime_s);

/* profile_learn.c --------------------------------------------------------- */

extern double RequestedBound(Jsonb *payload);
extern Datum ProfileResources(Oid resources_type, RollingStats *runtime, Datum cpu, bool nocpu,
							  Datum memory, bool nomemory, Datum gpu_memory, bool nogpu_memory);
extern bool UsageSample(Jsonb *usage, int64 task_id, const char *key, double *out, List **warnings);
extern void CompletionSamples(Completion *c, const char *who, bool check_runtime, List **warnings);
extern void ProfileRecord(Datum task_type, Datum task_key, bool nokey, Completion *c);
/* For a batch (batch.c): a profile after one completion, and a profile's creation. */
extern HeapTuple ProfileLearn(TupleTableSlot *slot, Completion *c);
extern bool ProfileCreate(Datum task_type, Datum task_key, bool nokey, Completion *c);

/* claim_typed.c and the claim statements of queue.c ------------------------ */

/*
 * What a claim sets ($1 now, $4 worker, $5 lease seconds, $6 lease), with
 * a fencing token (CLAIM_SET) or without (CLAIM_SET_010, a 0.1.0 schema),
 * and the capacity test ($2) of a claim's head.
 */
#define CLAIM_SET_010 \
	"   SET status = 'running', worker_id = $4, claimed_at = $1," \
	"       lease_s = $5, lease_expires_at = $1 + $6, attempts = k.attempts + 1"
#define CLAIM_SET CLAIM_SET_010 \
	",      claim_token = pg_catalog.nextval('tforge.claim_token_seq'::pg_catalog.regclass)"
#define CLAIM_FITS \
	" AND ($2 IS NULL OR h.resources IS NULL OR tforge.resources_fit(h.resources, $2))"

/* Put the n rows the last claim statement returned into the claim's result. */
extern void EmitClaimed(ReturnSetInfo *rsinfo, uint64 n);
/* Whether tasks_type_claim_idx exists (claim_typed.c). */
extern bool TypedClaimIndex(void);
/* Claim up to max tasks of the types in array types (claim_typed.c). */
extern uint64 ClaimTyped(ReturnSetInfo *rsinfo, ArrayType *types, int max, Oid resources_type,
						 const Datum *args, const bool *argnulls, int tokens);

/* claim_prefix.c ---------------------------------------------------------- */

/* Where this transaction's next single claim may start in tasks_claim_idx (4 key datums). */
extern bool ClaimPrefix(Datum *start);
/* What the queue wrote to tforge.tasks: n tasks claimed, n rows updated to no pending version, a task inserted. */
extern void ClaimPrefixClaimed(uint64 n);
extern void ClaimPrefixUpdated(uint64 n);
extern void ClaimPrefixInserted(int64 task_id);
/* Whether index is tasks_claim_idx as the queue created it, on heap tforge.tasks. */
extern bool ClaimIndexShape(Relation heap, Relation index);

/* claim_head.c ------------------------------------------------------------ */

/* The laxity_key below which tasks_claim_idx holds only dead entries, when known. */
extern bool ClaimHeadBound(TimestampTz *bound);
/* The claim's statement ran from that bound. */
extern void ClaimHeadScanned(void);

/* wakeup.c -------------------------------------------------------------- */

/* NOTIFY tforge_tasks, payload task_type, at this transaction's commit. */
extern void WakeWorkers(Datum task_type);

/*
 * What a completion sets on its task (complete_task and complete_tasks):
 * $3 the time of completion, usage and reported the SQL expressions of the
 * usage document and of the runtime it reports (NULL: measured by the
 * clock from the claim); tau learns runtime_s only when it is learnable.
 */
#define COMPLETE_COLUMNS(usage, reported) \
	"   SET status = 'done', completed_at = $3, usage = " usage ", lease_expires_at = NULL," \
	"       runtime_s = tforge._positive_or_null(coalesce(" reported ", extract(epoch FROM $3 - t.claimed_at)::float8))," \
	"       deadline_met = ($3 <= t.deadline)"
extern void WarnNotLearned(int64 task_id, Jsonb *usage, bool has_reported, double reported, TimestampTz at,
						   TimestampTz claimed, bool noclaimed);

/*
 * What a completion's UPDATE returns after its first column (complete_task:
 * the task row; complete_tasks: the item's position), the columns
 * CompletedRow (profile_learn.c) reads: predictions what every strategy
 * predicted at submit, COMPLETED_PREDICTIONS (0.2.0's columns) or
 * COMPLETED_PREDICTIONS_010 (a 0.1.0 schema has none).
 */
#define COMPLETED_RETURNING(first, predictions) \
	" RETURNING " first ", t.task_type, t.task_key, t.runtime_s, t.payload, t.claimed_at, (t.resources).cpu," \
	predictions
#define COMPLETED_PREDICTIONS " t.predictions_source, t.predictions"
#define COMPLETED_PREDICTIONS_010 " NULL::pg_catalog.text, NULL::pg_catalog.float8[]"

/* A completed task's row, as CompletedRow reads it beside its Completion. */
typedef struct CompletedTask
{
	Datum		task_type;		/* in the statement's result: valid until SPI_finish */
	Datum		task_key;
	bool		nokey;
	TimestampTz claimed;		/* claimed_at, unless noclaimed */
	bool		noclaimed;
} CompletedTask;

/* profile_learn.c: a completion's usage argument (NULL unless an object: WARNING) and the runtime it reports. */
extern Jsonb *CompletionUsage(Jsonb *usage, int64 task_id, double *reported, bool *has_reported);
/* profile_learn.c: row row of a completion's UPDATE (COMPLETED_RETURNING) into c and t, its WARNINGs given. */
extern void CompletedRow(uint64 row, int64 task_id, Jsonb *usage, Completion *c, CompletedTask *t);

#endif							/* TFORGE_QUEUE_H */
