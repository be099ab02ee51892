/*
 * tau.c: the learned runtime of a task type (tau, seconds), and the queue's
 * settings.
 *
 * Tau follows an exponential moving average of observed runtimes. The state
 * itself lives in the table tforge.task_tau (WAL-logged, updated in the
 * completing transaction); this file holds the pure arithmetic and the GUCs.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

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
