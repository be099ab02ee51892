/*
 * estimate.c: runtime estimation strategies and their confidence.
 *
 * Every strategy reads one rolling_stats profile (profile.c):
 *   average   mean of every sample ever recorded
 *   p95       95th percentile of the recent samples
 *   linear    least-squares trend through the recent samples, extrapolated
 *             one step (never below the smallest recent sample)
 *   ewma      exponential moving average of the recent samples, weight
 *             tforge.ema_lambda on the newer one
 *   last2     mean of the two most recent samples (Tsafrir, Etsion and
 *             Feitelson, 2007)
 *   median    median of the five most recent samples
 *   last      the most recent sample
 *   ensemble  the candidates above averaged, each weighted by its recent
 *             accuracy on this profile
 *   adaptive  the candidate (ensemble included) whose recent predictions on
 *             this profile were the most accurate
 *
 * A profile carries a scoreboard (float8[]): element 1 is k, the number of
 * completions scored, then one recent accuracy per candidate in the order
 * of EstimateStrategy. The accuracy of one prediction p of an actual a is
 * min(p, a) / max(p, a), in [0, 1]; recent accuracy is its exponentially
 * weighted mean, the newest outcome weighing RECENT_WEIGHT. Users differ in
 * which predictor suits them, and a user's habits drift, so the choice is
 * per profile and forgets old outcomes quickly.
 *
 * When the caller gives an upper bound (the runtime the submitter asked
 * for, a kill limit) every prediction is capped by it.
 *
 * Confidence of a strategy on a profile = its recent accuracy * k / (k + 2):
 * the accuracy the strategy has been achieving, shrunk towards 0 while
 * there is little evidence (0 before any completion was scored). So it is
 * in [0, 1] and it predicts the accuracy of the next prediction.
 */
#include "postgres.h"

#include <math.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "estimate.h"
#include "profile.h"
#include "tforge.h"

/* Weight of the newest outcome in a candidate's recent accuracy. */
#define RECENT_WEIGHT 0.3

/* Accuracy assumed for a candidate that has not been scored yet. */
#define PRIOR_ACCURACY 0.5

/* Samples the median strategy looks back over. */
#define MEDIAN_SPAN 5

#define SCOREBOARD_LEN (EST_NCANDIDATES + 1)

char	   *tforge_learning_strategy = NULL;

static const char *const strategy_names[EST_NSTRATEGIES] = {
	"average", "p95", "linear", "ewma", "last2", "median", "last", "ensemble", "adaptive"
};

bool
EstimateStrategyKnown(const char *name)
{
	int			i;

	for (i = 0; i < EST_NSTRATEGIES; i++)
		if (strcmp(name, strategy_names[i]) == 0)
			return true;
	return false;
}

EstimateStrategy
EstimateStrategyFromName(const char *name)
{
	int			i;

	for (i = 0; i < EST_NSTRATEGIES; i++)
		if (strcmp(name, strategy_names[i]) == 0)
			return (EstimateStrategy) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown estimation strategy \"%s\"", name),
			 errhint("Valid strategies are average, p95, linear, ewma, last2, median, last, ensemble and adaptive.")));
	return EST_ADAPTIVE;		/* keep the compiler quiet */
}

/* A profile's scoreboard, unpacked. */
typedef struct Scoreboard
{
	double		k;				/* completions scored so far */
	double		acc[EST_NCANDIDATES];	/* recent accuracy per candidate */
} Scoreboard;

/* Unpack a scoreboard array; NULL means nothing scored yet. */
static void
ReadScoreboard(ArrayType *arr, Scoreboard *sb)
{
	int			i;

	sb->k = 0;
	for (i = 0; i < EST_NCANDIDATES; i++)
		sb->acc[i] = PRIOR_ACCURACY;
	if (arr == NULL)
		return;
	if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr) || ARR_ELEMTYPE(arr) != FLOAT8OID ||
		ARR_DIMS(arr)[0] != SCOREBOARD_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid scoreboard: expected %d non-null numbers", SCOREBOARD_LEN),
				 errdetail("A scoreboard holds the number of scored completions, then one recent accuracy per candidate strategy.")));
	{
		double	   *v = (double *) ARR_DATA_PTR(arr);

		if (!isfinite(v[0]) || v[0] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid scoreboard count \"%g\"", v[0])));
		sb->k = v[0];
		for (i = 0; i < EST_NCANDIDATES; i++)
		{
			if (isnan(v[i + 1]) || v[i + 1] < 0.0 || v[i + 1] > 1.0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid scoreboard accuracy \"%g\"", v[i + 1]),
						 errdetail("Recent accuracies lie between 0 and 1.")));
			sb->acc[i] = v[i + 1];
		}
	}
}

/* Pack a scoreboard into a float8[]. */
static ArrayType *
WriteScoreboard(const Scoreboard *sb)
{
	Datum		d[SCOREBOARD_LEN];
	int			i;

	d[0] = Float8GetDatum(sb->k);
	for (i = 0; i < EST_NCANDIDATES; i++)
		d[i + 1] = Float8GetDatum(sb->acc[i]);
	return construct_array(d, SCOREBOARD_LEN, FLOAT8OID, sizeof(float8),
						   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* The current tforge.ema_lambda (tau.c owns the setting). */
static double
EmaLambda(void)
{
	const char *v = GetConfigOption("tforge.ema_lambda", true, false);
	double		lambda = v ? strtod(v, NULL) : 0.2;

	if (!(lambda >= 0.0 && lambda <= 1.0))
		lambda = 0.2;
	return lambda;
}

/*
 * Every candidate's prediction from one profile, capped by bound when
 * bound > 0.
 */
static void
Candidates(const RollingStats *s, const Scoreboard *sb, double bound, double lambda,
		   double *out)
{
	int			n = s->nring;
	double	   *r = palloc(sizeof(double) * n);
	double	   *sorted = palloc(sizeof(double) * n);
	double		rmin;
	double		e;
	double		wsum = 0,
				vsum = 0;
	int			i,
				m;

	RollingStatsRecent(s, r);
	memcpy(sorted, r, sizeof(double) * n);
	qsort(sorted, n, sizeof(double), CompareFloat8);
	rmin = sorted[0];

	out[EST_AVERAGE] = s->mean;
	out[EST_P95] = SortedQuantile(sorted, n, 0.95);

	/*
	 * Least squares of y on x = 0 .. n-1: slope = sum((x-xm)(y-ym)) /
	 * sum((x-xm)^2), prediction at x = n.
	 */
	if (n >= 2)
	{
		double		xm = (n - 1) / 2.0;
		double		ym = 0,
					sxx = 0,
					sxy = 0;

		for (i = 0; i < n; i++)
			ym += r[i];
		ym /= n;
		for (i = 0; i < n; i++)
		{
			sxx += (i - xm) * (i - xm);
			sxy += (i - xm) * (r[i] - ym);
		}
		out[EST_LINEAR] = Max(rmin, ym + sxy / sxx * (n - xm));
	}
	else
		out[EST_LINEAR] = r[0];

	/* ewma_i = lambda * r_i + (1 - lambda) * ewma_{i-1}, started at r_0 */
	e = r[0];
	for (i = 1; i < n; i++)
		e = lambda * r[i] + (1.0 - lambda) * e;
	out[EST_EWMA] = e;

	out[EST_LAST2] = n >= 2 ? (r[n - 1] + r[n - 2]) / 2.0 : r[n - 1];

	m = Min(n, MEDIAN_SPAN);
	memcpy(sorted, r + n - m, sizeof(double) * m);
	qsort(sorted, m, sizeof(double), CompareFloat8);
	out[EST_MEDIAN] = SortedQuantile(sorted, m, 0.5);

	out[EST_LAST] = r[n - 1];

	for (i = 0; i < EST_ENSEMBLE; i++)
	{
		wsum += sb->acc[i];
		vsum += sb->acc[i] * out[i];
	}
	out[EST_ENSEMBLE] = wsum > 0 ? vsum / wsum : s->mean;

	if (bound > 0)
		for (i = 0; i < EST_NCANDIDATES; i++)
			out[i] = Min(out[i], bound);
	pfree(r);
	pfree(sorted);
}

/* The candidate with the best recent accuracy; the earliest one on ties. */
static int
BestCandidate(const Scoreboard *sb)
{
	int			best = 0;
	int			i;

	for (i = 1; i < EST_NCANDIDATES; i++)
		if (sb->acc[i] > sb->acc[best])
			best = i;
	return best;
}

static double
Confidence(const Scoreboard *sb, int candidate)
{
	return sb->acc[candidate] * sb->k / (sb->k + 2.0);
}

/* min(p, a) / max(p, a), with 0/0 counted as exact */
static double
Accuracy(double p, double a)
{
	double		hi = Max(p, a);

	if (hi <= 0)
		return p == a ? 1.0 : 0.0;
	return Max(Min(p, a), 0.0) / hi;
}

/* Optional bound argument: NULL, zero or negative means none. */
static double
GetBound(FunctionCallInfo fcinfo, int argno)
{
	double		bound;

	if (PG_ARGISNULL(argno))
		return 0;
	bound = PG_GETARG_FLOAT8(argno);
	if (isnan(bound) || isinf(bound))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("runtime bound must be a finite number, got \"%g\"", bound)));
	return bound;
}

/*
 * estimate_from(stats, strategy, scores, bound) -> (value, confidence, chosen)
 *
 * NULL stats (no profile) gives a NULL row; a NULL strategy means
 * tforge.learning_strategy.
 */
PG_FUNCTION_INFO_V1(estimate_from);
Datum
estimate_from(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	RollingStats *s;
	Scoreboard	sb;
	EstimateStrategy strategy;
	double		cand[EST_NCANDIDATES];
	int			chosen;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	strategy = EstimateStrategyFromName(PG_ARGISNULL(1)
										? (tforge_learning_strategy ? tforge_learning_strategy : "adaptive")
										: text_to_cstring(PG_GETARG_TEXT_PP(1)));
	ReadScoreboard(PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2), &sb);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = PG_GETARG_ROLLING_STATS_P(0);

	Candidates(s, &sb, GetBound(fcinfo, 3), EmaLambda(), cand);
	chosen = strategy == EST_ADAPTIVE ? BestCandidate(&sb) : (int) strategy;
	values[0] = Float8GetDatum(cand[chosen]);
	values[1] = Float8GetDatum(Confidence(&sb, chosen));
	values[2] = CStringGetTextDatum(strategy_names[chosen]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Every strategy's prediction and confidence, adaptive last. */
static void
EstimateAll(const RollingStats *s, const Scoreboard *sb, double bound, double *pred, double *conf)
{
	double		cand[EST_NCANDIDATES];
	int			i,
				best;

	Candidates(s, sb, bound, EmaLambda(), cand);
	for (i = 0; i < EST_NCANDIDATES; i++)
	{
		pred[i] = cand[i];
		conf[i] = Confidence(sb, i);
	}
	best = BestCandidate(sb);
	pred[EST_ADAPTIVE] = cand[best];
	conf[EST_ADAPTIVE] = Confidence(sb, best);
}

void
EstimateProfile(const RollingStats *s, ArrayType *scores, double bound, double *pred, double *conf)
{
	Scoreboard	sb;

	ReadScoreboard(scores, &sb);
	EstimateAll(s, &sb, bound, pred, conf);
}

/*
 * estimate_all(stats, scores, bound) -> (predictions float8[], confidences
 * float8[]): every strategy at once, in the order of
 * tforge.estimation_strategies(), so that each completion can score them all.
 */
PG_FUNCTION_INFO_V1(estimate_all);
Datum
estimate_all(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	RollingStats *s;
	Scoreboard	sb;
	double		pred[EST_NSTRATEGIES],
				conf[EST_NSTRATEGIES];
	Datum		pd[EST_NSTRATEGIES],
				cd[EST_NSTRATEGIES];
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int			i;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	ReadScoreboard(PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1), &sb);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = PG_GETARG_ROLLING_STATS_P(0);

	EstimateAll(s, &sb, GetBound(fcinfo, 2), pred, conf);
	for (i = 0; i < EST_NSTRATEGIES; i++)
	{
		pd[i] = Float8GetDatum(pred[i]);
		cd[i] = Float8GetDatum(conf[i]);
	}
	values[0] = PointerGetDatum(construct_array(pd, EST_NSTRATEGIES, FLOAT8OID, sizeof(float8),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(cd, EST_NSTRATEGIES, FLOAT8OID, sizeof(float8),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * rescore(stats, scores, actual, bound) -> scores
 *
 * Before a completed run enters its profile, score what every candidate
 * predicts from the profile as it stands: acc_new = RECENT_WEIGHT * accuracy
 * + (1 - RECENT_WEIGHT) * acc_old (the first outcome replaces the prior).
 * NULL stats (the profile's first run) leaves the scoreboard unscored.
 */
ArrayType *
EstimateRescore(const RollingStats *s, ArrayType *scores, const double *actual, double bound)
{
	Scoreboard	sb;
	double		cand[EST_NCANDIDATES];
	int			i;

	ReadScoreboard(scores, &sb);
	if (s == NULL || actual == NULL)
		return WriteScoreboard(&sb);
	if (isnan(*actual) || isinf(*actual) || *actual < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("actual runtime must be a finite non-negative number, got \"%g\"", *actual)));

	Candidates(s, &sb, bound, EmaLambda(), cand);
	for (i = 0; i < EST_NCANDIDATES; i++)
	{
		double		acc = Accuracy(cand[i], *actual);

		sb.acc[i] = sb.k > 0 ? RECENT_WEIGHT * acc + (1.0 - RECENT_WEIGHT) * sb.acc[i] : acc;
	}
	sb.k += 1;
	return WriteScoreboard(&sb);
}

PG_FUNCTION_INFO_V1(estimate_rescore);
Datum
estimate_rescore(PG_FUNCTION_ARGS)
{
	double		actual = PG_ARGISNULL(2) ? 0 : PG_GETARG_FLOAT8(2);
	ArrayType  *scores = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);

	if (PG_ARGISNULL(0))
		PG_RETURN_ARRAYTYPE_P(EstimateRescore(NULL, scores, NULL, 0));
	PG_RETURN_ARRAYTYPE_P(EstimateRescore(PG_GETARG_ROLLING_STATS_P(0), scores,
										  PG_ARGISNULL(2) ? NULL : &actual, GetBound(fcinfo, 3)));
}

/* The strategy names, in the order estimate_all returns them. */
PG_FUNCTION_INFO_V1(estimation_strategies);
Datum
estimation_strategies(PG_FUNCTION_ARGS)
{
	Datum		d[EST_NSTRATEGIES];
	int			i;

	for (i = 0; i < EST_NSTRATEGIES; i++)
		d[i] = CStringGetTextDatum(strategy_names[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, EST_NSTRATEGIES, TEXTOID, -1, false, TYPALIGN_INT));
}
