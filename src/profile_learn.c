/*
 * profile_learn.c: profile learning, the side of runtime profiles that the
 * queue drives: one completion recorded into the type's and the key's rows
 * of tforge.profiles (in the completing transaction), and the resources a
 * profile predicts for submit_task and tforge.estimate. The rolling_stats
 * type itself is in profile.c, the strategies in estimate.c.
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

#include "estimate.h"
#include "profile.h"
#include "queue.h"
#include "tforge.h"

/*
 * A profile's first completion ($1, $2: type and key), as ProfileChange
 * would record it into an empty profile; nothing when a concurrent first
 * completion created the row meanwhile (the caller then updates it).
 */
static QueueStatement profile_insert[2] = {
	/* [0]: in a 0.1.0 schema, without the learning columns of 0.2.0 */
	{"INSERT INTO tforge.profiles (task_type, task_key, runtime, cpu, memory, gpu_memory, scores, completions)"
	" VALUES ($1, $2, tforge.rolling_stats_add(NULL, $3), tforge.rolling_stats_add(NULL, $4),"
	"         tforge.rolling_stats_add(NULL, $5), tforge.rolling_stats_add(NULL, $6),"
	"         tforge.rescore(NULL, NULL, NULL), 1)"
	" ON CONFLICT ON CONSTRAINT profiles_type_key DO NOTHING",
	6, {TEXTOID, TEXTOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID}},
	{"INSERT INTO tforge.profiles (task_type, task_key, runtime, cpu, memory, gpu_memory, scores, completions,"
	"                             recent)"
	" VALUES ($1, $2, tforge.rolling_stats_add(NULL, $3), tforge.rolling_stats_add(NULL, $4),"
	"         tforge.rolling_stats_add(NULL, $5), tforge.rolling_stats_add(NULL, $6),"
	"         tforge.rescore(NULL, NULL, NULL), 1, tforge._kernel_ring_add(NULL, $3, $7, $8))"
	" ON CONFLICT ON CONSTRAINT profiles_type_key DO NOTHING",
	8, {TEXTOID, TEXTOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID}}
};

/*
 * payload->requested_s, the runtime the submitter asked for (a kill limit):
 * it bounds every prediction; 0 when it is not a positive finite number.
 */
double
RequestedBound(Jsonb *payload)
{
	double		v;

	if (JsonbNumber(payload, "requested_s", &v) && v > 0 && !isinf(v))
		return v;
	return 0;
}

/*
 * Bytes a profile predicts from a quantile of its samples: rounded up, and
 * kept in [0, 1e18] whatever statistics an import or a caller supplied, so
 * that the conversion to bigint can neither overflow nor see a NaN.
 */
static int64
PredictedBytes(double q)
{
	if (!(q > 0))
		return 0;
	if (q > MAX_USAGE)
		return (int64) MAX_USAGE;
	return (int64) ceil(q);
}

/*
 * The resources a profile predicts: cpu cores (mean cpu s / mean runtime
 * s, at most MAX_CPU_CORES), and the 95th percentile of recent memory and
 * GPU memory peaks, bytes rounded up (PredictedBytes). A task given less
 * memory than it needs fails, one given a little more only wastes some.
 */
void
ProfilePredictResources(RollingStats *runtime, Datum cpu, bool nocpu, Datum memory, bool nomemory,
						Datum gpu_memory, bool nogpu_memory, Datum *v, bool *n)
{
	RollingStats *s;
	int			i;

	for (i = 0; i < 4; i++)
	{
		v[i] = (Datum) 0;
		n[i] = true;
	}
	if (!nocpu && runtime != NULL && runtime->mean > 0)
	{
		double		cores = DatumGetRollingStatsP(cpu)->mean / runtime->mean;

		/* samples entered within range, but imported statistics need not have */
		v[0] = Float8GetDatum(cores > 0 ? Min(cores, MAX_CPU_CORES) : 0);
		n[0] = false;
	}
	if (!nomemory && (s = DatumGetRollingStatsP(memory))->nring > 0)
	{
		v[1] = Int64GetDatum(PredictedBytes(RollingStatsQuantile(s, 0.95)));
		n[1] = false;
	}
	if (!nogpu_memory && (s = DatumGetRollingStatsP(gpu_memory))->nring > 0)
	{
		v[3] = Int64GetDatum(PredictedBytes(RollingStatsQuantile(s, 0.95)));
		n[3] = false;
	}
}

Datum
ProfileResources(Oid resources_type, RollingStats *runtime, Datum cpu, bool nocpu,
				 Datum memory, bool nomemory, Datum gpu_memory, bool nogpu_memory)
{
	TupleDesc	desc;
	Datum		v[4];
	bool		n[4];
	HeapTuple	tuple;

	CheckResourcesLayout(resources_type);
	desc = lookup_rowtype_tupdesc(resources_type, -1);
	ProfilePredictResources(runtime, cpu, nocpu, memory, nomemory, gpu_memory, nogpu_memory, v, n);
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
 * usage->key for a profile: a number in [0, 1e18]; false when absent, and
 * false with a WARNING added to *warnings (raised once the completion is
 * known to stand) when it is anything else.
 */
bool
UsageSample(Jsonb *usage, int64 task_id, const char *key, double *out, List **warnings)
{
	double		v;

	if (!JsonbNumber(usage, key, &v))
		return false;
	if (UsableAmount(v))
	{
		*out = v;
		return true;
	}
	*warnings = lappend(*warnings,
						psprintf("usage \"%s\" of task " INT64_FORMAT " not profiled: %s is not " USABLE_AMOUNT,
								 key, task_id, isnan(v) ? JsonbFieldText(usage, key, true) : float8out_internal(v)));
	return false;
}

/*
 * The one place where a completion's samples enter learning, after they
 * were read (complete_task: UsageSample and the runtime its UPDATE
 * computed; _profile_record: its arguments). A sample outside its range is
 * left out of the profiles, with a WARNING added to *warnings:
 *
 *   runtime_s                          LearnableSeconds, (0, 1e9] s
 *   cpu_s, memory_bytes, gpu_memory_bytes  UsableAmount, [0, 1e18]
 *   cpu_s                              at most MAX_CPU_CORES times the
 *                                      runtime_s of the same run
 *   procs (the task's resources.cpu)   KnownProcessors, (0, 1e18], else
 *                                      0 (unknown), without a WARNING
 *
 * so that every statistic and every prediction made from them stays finite
 * and in its range: 1e18 s of cpu in 1e-300 s of runtime would predict
 * infinite cores. check_runtime: the runtime is not yet checked (complete_task
 * checks and explains it itself).
 */
void
CompletionSamples(Completion *c, const char *who, bool check_runtime, List **warnings)
{
	static const char *const names[4] = {"runtime_s", "cpu_s", "memory_bytes", "gpu_memory_bytes"};
	int			i;

	if (check_runtime && c->has[0] && !LearnableSeconds(c->samples[0]))
	{
		*warnings = lappend(*warnings,
							psprintf("runtime of %s not profiled: %s is not " LEARNABLE_SECONDS,
									 who, float8out_internal(c->samples[0])));
		c->has[0] = false;
	}
	for (i = 1; i < 4; i++)
		if (c->has[i] && !UsableAmount(c->samples[i]))
		{
			*warnings = lappend(*warnings,
								psprintf("usage \"%s\" of %s not profiled: %s is not " USABLE_AMOUNT,
										 names[i], who, float8out_internal(c->samples[i])));
			c->has[i] = false;
		}
	if (c->has[0] && c->has[1] && c->samples[1] > c->samples[0] * MAX_CPU_CORES)
	{
		*warnings = lappend(*warnings,
							psprintf("usage \"cpu_s\" of %s not profiled: %s s of cpu in %s s of runtime is more than 1e6 cores",
									 who, float8out_internal(c->samples[1]), float8out_internal(c->samples[0])));
		c->has[1] = false;
	}
	/* resources.cpu is the submitter's, checked at submit: silently unknown */
	c->procs = KnownProcessors(c->procs);
}

/*
 * A completion's usage argument as complete_task and complete_tasks read
 * it before their UPDATE: a document that is not a JSON object is ignored
 * (WARNING; NULL returned); *has_reported says whether it reports a
 * runtime, *reported (else 0) which.
 */
Jsonb *
CompletionUsage(Jsonb *usage, int64 task_id, double *reported, bool *has_reported)
{
	if (usage != NULL && !JB_ROOT_IS_OBJECT(usage))
	{
		ereport(WARNING,
				(errmsg("usage of task " INT64_FORMAT " ignored: not a JSON object", task_id)));
		usage = NULL;
	}
	*reported = 0;
	*has_reported = JsonbNumber(usage, "runtime_s", reported);
	return usage;
}

/*
 * The one reading of a completed task's row: row row of the last
 * statement, a completion's UPDATE returning COMPLETED_RETURNING (queue.h),
 * for task task_id completed with usage (CompletionUsage's). Fills c (the
 * caller zeroed it) with the runtime the UPDATE computed, the requested
 * bound, the processors, what was predicted at submit and the usage's
 * samples, checked (CompletionSamples, its WARNINGs given now), and t with
 * the task's type, key and claim time (datums of the statement's result).
 */
void
CompletedRow(uint64 row, int64 task_id, Jsonb *usage, Completion *c, CompletedTask *t)
{
	List	   *warnings = NIL;
	ListCell   *lc;
	bool		isnull;
	bool		nosource;
	bool		nopredictions;
	Datum		source;
	Datum		d;

	t->task_type = ResultValue(row, 2, &isnull);
	t->task_key = ResultValue(row, 3, &t->nokey);
	c->samples[0] = DatumGetFloat8(ResultValue(row, 4, &isnull));
	c->has[0] = !isnull;
	d = ResultValue(row, 5, &isnull);
	c->bound = isnull ? 0 : RequestedBound(DatumGetJsonbP(d));
	t->claimed = DatumGetTimestampTz(ResultValue(row, 6, &t->noclaimed));
	d = ResultValue(row, 7, &isnull);
	c->procs = isnull ? 0 : DatumGetFloat8(d);
	/* calibration's basis (estimate.c) */
	source = ResultValue(row, 8, &nosource);
	d = ResultValue(row, 9, &nopredictions);
	c->learn.submitted = SubmittedPredictionOf(source, nosource, d, nopredictions);

	c->has[1] = UsageSample(usage, task_id, "cpu_s", &c->samples[1], &warnings);
	c->has[2] = UsageSample(usage, task_id, "memory_bytes", &c->samples[2], &warnings);
	c->has[3] = UsageSample(usage, task_id, "gpu_memory_bytes", &c->samples[3], &warnings);
	CompletionSamples(c, psprintf("task " INT64_FORMAT, task_id), false, &warnings);
	foreach(lc, warnings)
		ereport(WARNING, (errmsg_internal("%s", (char *) lfirst(lc))));
}

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
	bool		learning;
	int64		completions;
	Datum		runtime;
	RollingStats *stats;
	LearnColumns lc;

	/* a 0.1.0 schema (before ALTER EXTENSION UPDATE) lacks the ring, calibration and pooled scores */
	learning = ColumnIndexIfAny(slot->tts_tupleDescriptor, "recent") >= 0;
	RowEditBegin(&e, slot);
	completions = RowEditCount(&e, "completions", "the number of completions a profile has seen");
	runtime = RowEditGet(&e, "runtime", &noruntime);
	stats = noruntime ? NULL : DatumGetRollingStatsP(runtime);

	if (tforge_profile_sample_after == 0 || (stats ? stats->count : 0) < tforge_profile_sample_after ||
		completions % tforge_profile_sample_every == 0)
	{
		c->learn.has_runtime = c->has[0];
		c->learn.runtime = c->samples[0];
		c->learn.query.bound = c->bound;
		c->learn.query.procs = c->procs;
		lc.scores = RowEditGet(&e, "scores", &lc.noscores);
		lc.norecent = lc.nocalibration = lc.nopooled = true;
		lc.recent = lc.calibration = lc.pooled = (Datum) 0;
		if (learning)
		{
			lc.recent = RowEditGet(&e, "recent", &lc.norecent);
			lc.calibration = RowEditGet(&e, "calibration", &lc.nocalibration);
			lc.pooled = RowEditGet(&e, "pooled", &lc.nopooled);
		}
		(void) RowEditGet(&e, "task_key", &nokey);
		LearnProfileUpdate(stats, RowEditGet(&e, "task_type", &isnull), !nokey, &lc, &c->learn);
		RowEditSet(&e, "scores", lc.scores, lc.noscores);
		if (learning)
		{
			RowEditSet(&e, "recent", lc.recent, lc.norecent);
			RowEditSet(&e, "calibration", lc.calibration, lc.nocalibration);
			RowEditSet(&e, "pooled", lc.pooled, lc.nopooled);
		}
		AddSample(&e, "runtime", c->has[0], c->samples[0]);
		AddSample(&e, "cpu", c->has[1], c->samples[1]);
		AddSample(&e, "memory", c->has[2], c->samples[2]);
		AddSample(&e, "gpu_memory", c->has[3], c->samples[3]);
	}
	return RowEditFinish(&e);
}

/* Whether tforge.profiles has 0.2.0's learning columns (not before the upgrade from 0.1.0). */
static bool
ProfilesHaveLearningColumns(void)
{
	return get_attnum(TforgeTable("profiles"), "recent") != InvalidAttrNumber;
}

/* The profile after completion c (ProfileChange), for a batch learning in memory (batch.c). */
HeapTuple
ProfileLearn(TupleTableSlot *slot, Completion *c)
{
	return ProfileChange(slot, c);
}

/*
 * Create the profile of task_type and task_key (NULL when nokey) with c as
 * its first completion; false when it exists already (a concurrent first
 * completion created it meanwhile). Either way c carries nothing to the
 * type's profile: a new profile scored nothing.
 */
bool
ProfileCreate(Datum task_type, Datum task_key, bool nokey, Completion *c)
{
	Datum		v[8];
	bool		n[8];
	int			i;

	v[0] = task_type;
	n[0] = false;
	v[1] = task_key;
	n[1] = nokey;
	for (i = 0; i < 4; i++)
	{
		v[2 + i] = Float8GetDatum(c->samples[i]);
		n[2 + i] = !c->has[i];
	}
	v[6] = Float8GetDatum(c->bound);
	v[7] = Float8GetDatum(c->procs);
	n[6] = n[7] = false;
	c->learn.carried = false;
	return Execute(&profile_insert[ProfilesHaveLearningColumns() ? 1 : 0], InvalidOid, v, n, 0) == 1;
}

/*
 * Record one completion in the profiles of task_type and of task_key (when
 * not NULL), the key's first; a profile's first completion creates it.
 */
void
ProfileRecord(Datum task_type, Datum task_key, bool nokey, Completion *c)
{
	int			k;

	for (k = nokey ? 1 : 0; k < 2; k++)
	{
		Datum		keys[2] = {task_type, task_key};
		bool		keynulls[2] = {false, k == 1};
		int			attempt;

		for (attempt = 0; !UpdateLearned("profiles", "profiles_type_key", 2, keys, keynulls,
										 ProfileChange, NULL, c); attempt++)
		{
			if (attempt == CREATE_ATTEMPTS)
				ConcurrentlyDeleted("profile", task_type);
			if (ProfileCreate(task_type, task_key, keynulls[1], c))
				break;
		}
	}
}

/*
 * _profile_record(task_type, task_key, runtime_s, cpu_s, memory_bytes,
 *                 gpu_memory_bytes, bound) -> void
 *
 * What complete_task records, for tests and imports of past runs; samples
 * outside their ranges are left out with a WARNING, as complete_task does
 * (CompletionSamples).
 */
PG_FUNCTION_INFO_V1(tforge_profile_record);
Datum
tforge_profile_record(PG_FUNCTION_ARGS)
{
	Completion	c;
	List	   *warnings = NIL;
	ListCell   *lc;
	int			i;
	double		tau_default;
	bool		isnull;

	memset(&c, 0, sizeof(c));
	RequireArg(fcinfo, 0, "task_type");
	for (i = 0; i < 4; i++)
	{
		c.has[i] = !PG_ARGISNULL(2 + i);
		c.samples[i] = c.has[i] ? PG_GETARG_FLOAT8(2 + i) : 0;
	}
	CompletionSamples(&c, "a recorded run", true, &warnings);
	c.bound = PG_ARGISNULL(6) ? 0 : PG_GETARG_FLOAT8(6);
	if (isnan(c.bound) || isinf(c.bound))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("runtime bound must be a finite number, got \"%s\"", float8out_internal(c.bound))));

	CheckWritable("tforge._profile_record()");
	foreach(lc, warnings)
		ereport(WARNING, (errmsg_internal("%s", (char *) lfirst(lc))));
	SPI_connect();
	/* Refused here, not by profiles' foreign key (23503). */
	if (!TypeColumn(PG_GETARG_DATUM(0), "default_tau_s", &tau_default, &isnull))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task type \"%s\" does not exist", TextDatumGetCString(PG_GETARG_DATUM(0))),
				 errhint("Define it with tforge.define_task_type(name, default_tau_s).")));
	ProfileRecord(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_ARGISNULL(1), &c);
	SPI_finish();
	PG_RETURN_VOID();
}
