/*
 * tau.c: the learned runtime of a task type (tau, seconds), and the queue's
 * settings.
 *
 * Tau follows an exponential moving average of observed runtimes. The state
 * itself lives in the table tforge.task_tau (WAL-logged, updated in the
 * completing transaction); this file holds the arithmetic, the GUCs and tau
 * learning: one runtime into a type's row (TauUpdate, which complete_task
 * and update_tau share). The retry backoff of failed tasks is here too,
 * beside its settings.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "queue.h"
#include "tforge.h"

double tforge_ema_lambda = 0.2;
double tforge_sla_multiplier = 2.0;
int	tforge_max_attempts = 3;
static double tforge_retry_backoff_base = 1.0;
static double tforge_retry_backoff_max = 3600.0;

void
TauInit(void)
{
	DefineCustomRealVariable("tforge.ema_lambda",
							 "Weight of a new runtime sample in a task type's tau.",
							 "tau_new = lambda * runtime + (1 - lambda) * tau_old; "
							 "a task type's own lambda overrides it.",
							 &tforge_ema_lambda,
							 0.2, 0.0, 1.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomRealVariable("tforge.sla_multiplier",
							 "Default deadline of a task, in multiples of its type's tau.",
							 "deadline = arrival + sla_multiplier * tau at submit time.",
							 &tforge_sla_multiplier,
							 2.0, 0.0001, 1.0e6,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.max_attempts",
							"Default number of claims a task may use before it is dead.",
							NULL,
							&tforge_max_attempts,
							3, 1, 1000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("tforge.retry_backoff_base",
							 "Delay before the first retry of a failed task, in seconds.",
							 "The n-th retry waits base * 2^(n-1) seconds, at most tforge.retry_backoff_max.",
							 &tforge_retry_backoff_base,
							 1.0, 0.0, 86400.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomRealVariable("tforge.retry_backoff_max",
							 "Longest delay before a retry of a failed task, in seconds.",
							 NULL,
							 &tforge_retry_backoff_max,
							 3600.0, 0.0, 31536000.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

/* Refuse a value that is not a finite number. */
static void
CheckFinite(double value, const char *what)
{
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number, got %g", what, value)));
}

/*
 * ema(old, sample, lambda) = lambda * sample + (1 - lambda) * old
 *
 * Written exactly as the seed gives it, so that tau 5 s, runtime 10 s and
 * lambda 0.2 give 6 s with no rounding drift.
 */
double
Ema(double old, double sample, double lambda)
{
	double		result;

	CheckFinite(old, "old value");
	CheckFinite(sample, "sample");
	if (isnan(lambda) || lambda < 0.0 || lambda > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lambda must be between 0 and 1, got %g", lambda),
				 errhint("lambda is the weight of the new sample: 0 ignores it, 1 keeps only it.")));

	result = lambda * sample + (1.0 - lambda) * old;

	/*
	 * Two positive runtimes never average to 0, but the formula can
	 * underflow to it (old = sample = 4.9e-324, lambda 0.5: both products
	 * round to 0), which would make a learnable tau unlearnable. The
	 * smaller input is then the nearest value the average can have. Every
	 * other result is the formula's, to the bit.
	 */
	if (result <= 0.0 && old > 0.0 && sample > 0.0)
		result = Min(old, sample);
	if (isinf(result))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("moving average overflows double precision")));
	return result;
}

PG_FUNCTION_INFO_V1(tforge_ema);
Datum
tforge_ema(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(Ema(PG_GETARG_FLOAT8(0), PG_GETARG_FLOAT8(1), PG_GETARG_FLOAT8(2)));
}

/*
 * sla_multiplier * tau seconds in microseconds: the time from a task's
 * arrival to its deadline. Refuses offsets beyond 1e11 s (about 3,000
 * years), which no deadline means and which would overflow timestamp
 * arithmetic further on.
 */
TimeOffset
DeadlineOffset(double sla, double tau)
{
	double		seconds = sla * tau;

	CheckFinite(sla, "sla_multiplier");
	CheckFinite(tau, "tau");
	if (!(seconds >= 0.0 && seconds <= 1e11))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("deadline out of range: sla_multiplier %g times tau %g s is %g s", sla, tau, seconds),
				 errhint("A deadline must lie within 1e11 seconds of the task's arrival.")));
	return (TimeOffset) rint(seconds * 1e6);
}

/* _deadline_offset(sla_multiplier, tau) -> interval: DeadlineOffset as an interval. */
PG_FUNCTION_INFO_V1(tforge_deadline_offset);
Datum
tforge_deadline_offset(PG_FUNCTION_ARGS)
{
	Interval   *result = (Interval *) palloc0(sizeof(Interval));

	result->time = DeadlineOffset(PG_GETARG_FLOAT8(0), PG_GETARG_FLOAT8(1));
	PG_RETURN_INTERVAL_P(result);
}

/*
 * _retry_backoff(attempts) -> float8: the one definition of how long a
 * failed task waits before it may be claimed again, in seconds, after its
 * attempts-th claim failed: base * 2^(attempts - 1), at most the cap
 * (tforge.retry_backoff_base and tforge.retry_backoff_max). The exponent
 * stops at 1000 (2^1000 * 86400, the largest base, is still a finite
 * float8), so any number of attempts gives the cap rather than an
 * overflow. fail_task and fail_tasks both call it. STABLE: it reads the
 * settings (their values, not SHOW's six significant digits).
 */
PG_FUNCTION_INFO_V1(tforge_retry_backoff);
Datum
tforge_retry_backoff(PG_FUNCTION_ARGS)
{
	int64		doublings = Min((int64) PG_GETARG_INT32(0) - 1, 1000);

	PG_RETURN_FLOAT8(Min(tforge_retry_backoff_max, tforge_retry_backoff_base * pow(2.0, (double) doublings)));
}

/* ---- tau learning ---------------------------------------------------------- */

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
 * _check_seconds(value, what) -> value, or 22023 unless tau can hold it
 * (22004 for NULL). The SQL side of LearnableSeconds: define_task_type and
 * set_tau refuse with it, and the CHECK constraints of task_types and
 * task_tau call _positive_or_null, so the bound is written once, in queue.h.
 */
PG_FUNCTION_INFO_V1(tforge_check_seconds);
Datum
tforge_check_seconds(PG_FUNCTION_ARGS)
{
	const char *what = PG_ARGISNULL(1) ? "value" : text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what),
				 errdetail("%s must be " LEARNABLE_SECONDS ".", what)));
	if (!LearnableSeconds(PG_GETARG_FLOAT8(0)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be " LEARNABLE_SECONDS ", got %s", what,
						float8out_internal(PG_GETARG_FLOAT8(0)))));
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
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
				 errmsg("new tau %s s of a task type is not " LEARNABLE_SECONDS,
						float8out_internal(t->tau))));
	RowEditSet(&e, "tau_s", Float8GetDatum(t->tau), false);
	(void) RowEditCount(&e, "samples", "the number of runtimes a task type's tau has absorbed");
	return RowEditFinish(&e);
}

/* The tau the row holds as written (a BEFORE trigger may have changed it). */
static void
TauWritten(TupleTableSlot *slot, void *arg)
{
	TauSample  *t = (TauSample *) arg;
	bool		isnull;
	Datum		tau = slot_getattr(slot, ColumnIndex(slot->tts_tupleDescriptor, "tau_s") + 1, &isnull);

	if (!isnull)
		t->tau = DatumGetFloat8(tau);
}

/* The EMA weight of task_type's tau: its own lambda, else tforge.ema_lambda. */
double
TypeLambda(Datum task_type)
{
	double		lambda;
	bool		isnull;

	if (TypeColumn(task_type, "lambda", &lambda, &isnull) && !isnull)
		return lambda;
	return tforge_ema_lambda;
}

/* The tau row after one runtime (TauChange), for a batch learning in memory (batch.c). */
HeapTuple
TauLearn(TupleTableSlot *slot, double runtime_s, double lambda)
{
	TauSample	t = {runtime_s, lambda, 0};

	return TauChange(slot, &t);
}

/*
 * Create the type's tau row from its first learned runtime; false when the
 * row exists already (a concurrent first completion created it) or the
 * type does not exist.
 */
bool
TauCreate(Datum task_type, double runtime_s)
{
	Datum		v[3] = {task_type, Float8GetDatum(runtime_s), Float8GetDatum(tforge_ema_lambda)};
	bool		n[3] = {false, false, false};

	return Execute(&tau_insert, InvalidOid, v, n, 1) == 1;
}

/* One runtime into the type's tau; false when the type does not exist. */
bool
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

		if (UpdateLearned("task_tau", "task_tau_pkey", 1, &task_type, &keynull, TauChange, TauWritten, &t))
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

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", PG_ARGISNULL(0) ? "task_type" : "runtime_s")));
	runtime_s = PG_GETARG_FLOAT8(1);
	if (!LearnableSeconds(runtime_s))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("runtime_s must be " LEARNABLE_SECONDS ", got %s",
						PG_ARGISNULL(1) ? "NULL" : float8out_internal(runtime_s))));
	CheckWritable("tforge.update_tau()");
	SPI_connect();
	if (!TauUpdate(PG_GETARG_DATUM(0), runtime_s, &tau))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task type \"%s\" does not exist", TextDatumGetCString(PG_GETARG_DATUM(0))),
				 errhint("Define it with tforge.define_task_type(name, default_tau_s).")));
	SPI_finish();
	PG_RETURN_FLOAT8(tau);
}