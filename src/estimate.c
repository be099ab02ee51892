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
 *   adaptive  the candidate chosen by the pooled scoreboard (below)
 *   kernel, kernel_free, kernel_long
 *             the kernel-mode family (kernel_mode.c): the peak of the
 *             recency-weighted, Laplace-smoothed log-runtime distribution of
 *             the profile's ring of recent completions, with the request and
 *             processors; without the request; without it and with longer
 *             memory
 *
 * A profile carries a scoreboard (float8[]): element 1 is k, the number of
 * completions scored, then one recent accuracy per strategy in the order
 * of EstimateStrategy (adaptive's slot: the accuracy of what adaptive
 * chose). The accuracy of one prediction p of an actual a is
 * min(p, a) / max(p, a), in [0, 1]; recent accuracy is its exponentially
 * weighted mean, the newest outcome weighing RECENT_WEIGHT. It gives each
 * strategy's confidence and the ensemble's weights.
 *
 * Adaptive chooses by the type's pooled scoreboard (tforge.profiles.pooled
 * of the type's row): every candidate's accuracy on every run of the type,
 * each predicted from the profile that predicted that run (the key's, else
 * the type's), with long memory (a mean of the first 1 / POOLED_WEIGHT
 * outcomes, then the newest weighing POOLED_WEIGHT). Choosing
 * per profile on a short memory (0.1.0) picked whichever candidate had
 * been lucky lately: on stationary data (i.i.d. log-normal runtimes per
 * key) it lost 2-5 points to a per-key running median; with per-key
 * choices on long memory still 1-2 points, with shrinkage toward the pooled
 * choice 0.5-1.1; the pooled choice alone is within 0.5 point there and the
 * best of them on the KTH trace (issue 15, measured offline with the same
 * candidates). Without a pooled scoreboard (estimate_from) the profile's
 * own scoreboard chooses.
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

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/typcache.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "calibration.h"
#include "estimate.h"
#include "kernel_mode.h"
#include "profile.h"
#include "queue.h"
#include "tforge.h"

/* Weight of the newest outcome in a candidate's recent accuracy. */
#define RECENT_WEIGHT 0.3

/* Weight of the newest outcome in the pooled scoreboard: long memory. */
#define POOLED_WEIGHT 0.005

/* Lead over average a candidate needs on the pooled scoreboard, times 1 / sqrt(k + 1). */
#define CHOICE_MARGIN 0.5

/* Accuracy assumed for a candidate that has not been scored yet. */
#define PRIOR_ACCURACY 0.5

/* Samples the median strategy looks back over. */
#define MEDIAN_SPAN 5

#define SCOREBOARD_LEN (EST_NSTRATEGIES + 1)
/* A 0.1.0 scoreboard: k, then the eight candidates before adaptive. */
#define SCOREBOARD_LEN_0_1 (EST_ADAPTIVE + 1)

char	   *tforge_learning_strategy = NULL;

static const char *const strategy_names[EST_NSTRATEGIES] = {
	"average", "p95", "linear", "ewma", "last2", "median", "last", "ensemble", "adaptive",
	"kernel", "kernel_free", "kernel_long"
};

#define STRATEGY_LIST "average, p95, linear, ewma, last2, median, last, ensemble, adaptive, kernel, kernel_free and kernel_long"

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
			 errhint("Valid strategies are " STRATEGY_LIST ".")));
	return EST_ADAPTIVE;		/* keep the compiler quiet */
}

/* A profile's scoreboard, unpacked. */
typedef struct Scoreboard
{
	double		k;				/* completions scored so far */
	double		acc[EST_NSTRATEGIES];	/* recent accuracy per strategy */
} Scoreboard;

/* Unpack a scoreboard array; NULL means nothing scored yet. */
static void
ReadScoreboard(ArrayType *arr, Scoreboard *sb)
{
	int			i;

	int			len;

	sb->k = 0;
	for (i = 0; i < EST_NSTRATEGIES; i++)
		sb->acc[i] = PRIOR_ACCURACY;
	if (arr == NULL)
		return;
	if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr) || ARR_ELEMTYPE(arr) != FLOAT8OID ||
		(ARR_DIMS(arr)[0] != SCOREBOARD_LEN && ARR_DIMS(arr)[0] != SCOREBOARD_LEN_0_1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid scoreboard: expected %d non-null numbers", SCOREBOARD_LEN),
				 errdetail("A scoreboard holds the number of scored completions, then one recent accuracy per strategy (%d numbers in tforge 0.1.0).",
						   SCOREBOARD_LEN_0_1)));
	len = ARR_DIMS(arr)[0];
	{
		double	   *v = (double *) ARR_DATA_PTR(arr);

		if (!isfinite(v[0]) || v[0] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid scoreboard count \"%g\"", v[0])));
		sb->k = v[0];
		for (i = 0; i < len - 1; i++)
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
	for (i = 0; i < EST_NSTRATEGIES; i++)
		d[i + 1] = Float8GetDatum(sb->acc[i]);
	return construct_array(d, SCOREBOARD_LEN, FLOAT8OID, sizeof(float8),
						   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* Whether strategy i is a candidate of adaptive (every strategy but adaptive). */
#define IS_CANDIDATE(i) ((i) != EST_ADAPTIVE)

/*
 * The candidates' predictions from one profile (runtime stats, ring of
 * recent completions) for a query, capped by its bound; want[i] false
 * skips candidate i (NULL: all). out[EST_ADAPTIVE] is left alone.
 */
static void
Candidates(const RollingStats *s, KernelRing *ring, const EstimateQuery *q,
		   const Scoreboard *sb, double lambda, const bool *want, double *out)
{
	int			n = s->nring;
	double	   *r = palloc(sizeof(double) * n);
	double		med[MEDIAN_SPAN];
	double		e;
	double		wsum = 0,
				vsum = 0;
	bool		all[EST_NSTRATEGIES];
	KernelQuery kq = {q->bound, q->procs};
	int			i,
				j,
				m;

	if (want == NULL)
	{
		for (i = 0; i < EST_NSTRATEGIES; i++)
			all[i] = true;
		want = all;
	}
	if (want[EST_ENSEMBLE])
	{
		for (i = 0; i < EST_ENSEMBLE; i++)
			all[i] = true;
		for (i = EST_ENSEMBLE; i < EST_NSTRATEGIES; i++)
			all[i] = want[i];
		want = all;
	}

	RollingStatsRecent(s, r);

	out[EST_AVERAGE] = s->mean;
	/* the only candidate that sorts the ring: computed only when wanted */
	out[EST_P95] = 0;
	if (want[EST_P95])
	{
		double	   *sorted = palloc(sizeof(double) * n);

		memcpy(sorted, r, sizeof(double) * n);
		SortFloat8(sorted, n);
		out[EST_P95] = SortedQuantile(sorted, n, 0.95);
		pfree(sorted);
	}

	/*
	 * Least squares of y on x = 0 .. n-1: slope = sum((x-xm)(y-ym)) /
	 * sum((x-xm)^2), prediction at x = n; never below the smallest sample.
	 */
	if (n >= 2)
	{
		double		xm = (n - 1) / 2.0;
		double		ym = 0,
					sxx = 0,
					sxy = 0,
					rmin = r[0];

		for (i = 0; i < n; i++)
		{
			ym += r[i];
			rmin = Min(rmin, r[i]);
		}
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

	/* median of the last MEDIAN_SPAN samples (insertion sort of at most five) */
	m = Min(n, MEDIAN_SPAN);
	for (i = 0; i < m; i++)
	{
		double		x = r[n - m + i];

		for (j = i; j > 0 && med[j - 1] > x; j--)
			med[j] = med[j - 1];
		med[j] = x;
	}
	out[EST_MEDIAN] = SortedQuantile(med, m, 0.5);

	out[EST_LAST] = r[n - 1];

	/*
	 * The kernel family; an empty ring (runtimes of 0 only) falls back to the
	 * median. Without a request kernel is kernel_free's very computation:
	 * made once.
	 */
	if (kq.requested > 0)
	{
		out[EST_KERNEL] = want[EST_KERNEL] && ring->n > 0 ? KernelPredict(ring, &kq, KERNEL_REQUEST) : out[EST_MEDIAN];
		out[EST_KERNEL_FREE] = want[EST_KERNEL_FREE] && ring->n > 0 ? KernelPredict(ring, &kq, KERNEL_FREE) : out[EST_MEDIAN];
	}
	else
		out[EST_KERNEL] = out[EST_KERNEL_FREE] = (want[EST_KERNEL] || want[EST_KERNEL_FREE]) && ring->n > 0 ?
			KernelPredict(ring, &kq, KERNEL_FREE) : out[EST_MEDIAN];
	out[EST_KERNEL_LONG] = want[EST_KERNEL_LONG] && ring->n > 0 ? KernelPredict(ring, &kq, KERNEL_LONG) : out[EST_MEDIAN];

	for (i = 0; i < EST_ENSEMBLE; i++)
	{
		wsum += sb->acc[i];
		vsum += sb->acc[i] * out[i];
	}
	out[EST_ENSEMBLE] = wsum > 0 ? vsum / wsum : s->mean;

	if (q->bound > 0)
		for (i = 0; i < EST_NSTRATEGIES; i++)
			if (IS_CANDIDATE(i))
				out[i] = Min(out[i], q->bound);
	pfree(r);
}

/* The candidate with the best accuracy on a scoreboard; the earliest one on ties. */
static int
BestCandidate(const Scoreboard *sb)
{
	int			best = 0;
	int			i;

	for (i = 1; i < EST_NSTRATEGIES; i++)
		if (IS_CANDIDATE(i) && sb->acc[i] > sb->acc[best])
			best = i;
	return best;
}

/*
 * Adaptive's choice: by the pooled scoreboard once it scored a run, else by
 * the profile's own. On the pooled scoreboard average stays the choice
 * unless a candidate leads it by more than CHOICE_MARGIN / sqrt(k + 1)
 * (kernel_long, the other estimator right for stationary runtimes, by half
 * that): with a few dozen runs the leader among eleven candidates is mostly
 * the luckiest (make demo: 0.7-1 point below average without a margin),
 * with thousands the margin vanishes.
 * The price: a shift is followed once the pooled evidence shows it (on a
 * fresh type after five runs of a doubled runtime, 0.1.0 after four). An
 * override by a profile's own recent scoreboard (a candidate 0.25 ahead)
 * followed shifts sooner but cost 0.5 point on KTH and 1.4 points against
 * the running median on i.i.d. data with sigma 1.
 */
static int
AdaptiveChoice(const Scoreboard *pooled, const Scoreboard *own)
{
	int			best = EST_AVERAGE;
	double		margin;
	int			i;

	if (pooled == NULL || pooled->k <= 0)
		return BestCandidate(own);
	margin = CHOICE_MARGIN / sqrt(pooled->k + 1.0);
	for (i = 0; i < EST_NSTRATEGIES; i++)
	{
		double		need = i == EST_AVERAGE ? 0 : i == EST_KERNEL_LONG ? margin / 2 : margin;
		double		have = best == EST_AVERAGE ? 0 : best == EST_KERNEL_LONG ? margin / 2 : margin;

		if (IS_CANDIDATE(i) && pooled->acc[i] - need > pooled->acc[best] - have)
			best = i;
	}
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
	return Max(bound, 0);
}

/* Optional processors argument: NULL, zero or negative means unknown. */
static double
GetProcessors(FunctionCallInfo fcinfo, int argno)
{
	double		procs;

	if (PG_ARGISNULL(argno))
		return 0;
	procs = PG_GETARG_FLOAT8(argno);
	if (isnan(procs) || isinf(procs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("processors must be a finite number, got \"%g\"", procs)));
	return Max(procs, 0);
}

/*
 * One strategy's prediction from a profile: only the candidates it needs
 * are computed (the kernel family sorts its ring, so estimate pays for it
 * only when asked). *chosen is the candidate that gave it.
 */
static double
PredictOne(const RollingStats *s, KernelRing *ring, const EstimateQuery *q,
		   const Scoreboard *own, const Scoreboard *pooled, EstimateStrategy strategy, int *chosen)
{
	double		cand[EST_NSTRATEGIES];
	bool		want[EST_NSTRATEGIES] = {0};

	*chosen = strategy == EST_ADAPTIVE ? AdaptiveChoice(pooled, own) : (int) strategy;
	want[*chosen] = true;
	Candidates(s, ring, q, own, tforge_ema_lambda, want, cand);
	return cand[*chosen];
}

/*
 * estimate_from(stats, strategy, scores, bound) -> (value, confidence, chosen)
 *
 * NULL stats (no profile) gives a NULL row; a NULL strategy means
 * tforge.learning_strategy. The kernel family reads the runtimes of stats'
 * own ring (no request or processors of past runs), and adaptive the
 * scoreboard given.
 */
PG_FUNCTION_INFO_V1(estimate_from);
Datum
estimate_from(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	RollingStats *s;
	Scoreboard	sb;
	EstimateStrategy strategy;
	EstimateQuery q = {0, 0};
	KernelRing	ring;
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
	q.bound = GetBound(fcinfo, 3);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = PG_GETARG_ROLLING_STATS_P(0);
	KernelRingRead(NULL, s, &ring);

	values[0] = Float8GetDatum(PredictOne(s, &ring, &q, &sb, NULL, strategy, &chosen));
	values[1] = Float8GetDatum(Confidence(&sb, chosen));
	values[2] = CStringGetTextDatum(strategy_names[chosen]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Every strategy's prediction and confidence; *chosen: adaptive's pick. */
static void
EstimateAll(const RollingStats *s, KernelRing *ring, const EstimateQuery *q,
			const Scoreboard *sb, const Scoreboard *pooled, double *pred, double *conf, int *chosen)
{
	int			i,
				best;

	Candidates(s, ring, q, sb, tforge_ema_lambda, NULL, pred);
	for (i = 0; i < EST_NSTRATEGIES; i++)
		conf[i] = Confidence(sb, i);
	best = AdaptiveChoice(pooled, sb);
	pred[EST_ADAPTIVE] = pred[best];
	conf[EST_ADAPTIVE] = Confidence(sb, best);
	if (chosen)
		*chosen = best;
}

void
EstimateProfile(const RollingStats *s, ArrayType *scores, double bound, double *pred, double *conf)
{
	Scoreboard	sb;
	KernelRing	ring;
	EstimateQuery q = {bound, 0};

	ReadScoreboard(scores, &sb);
	KernelRingRead(NULL, s, &ring);
	EstimateAll(s, &ring, &q, &sb, NULL, pred, conf, NULL);
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
	KernelRing	ring;
	EstimateQuery q = {0, 0};
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
	q.bound = GetBound(fcinfo, 2);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = PG_GETARG_ROLLING_STATS_P(0);
	KernelRingRead(NULL, s, &ring);

	EstimateAll(s, &ring, &q, &sb, NULL, pred, conf, NULL);
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
 * Score every candidate's prediction from s (the profile before the run)
 * against actual: sb's recent accuracies move RECENT_WEIGHT toward them
 * (the first outcome replaces the prior), adaptive's slot scores the
 * candidate chosen by pooled (NULL: sb). acc (NULL: not wanted) receives
 * the accuracies, pred (NULL: not wanted) the predictions.
 */
static void
ScoreRun(const RollingStats *s, KernelRing *ring, const EstimateQuery *q, Scoreboard *sb,
		 const Scoreboard *pooled, double actual, double *acc_out, double *pred_out)
{
	double		cand[EST_NSTRATEGIES];
	double		acc[EST_NSTRATEGIES];
	int			chosen;
	int			i;

	Candidates(s, ring, q, sb, tforge_ema_lambda, NULL, cand);
	chosen = AdaptiveChoice(pooled, sb);
	cand[EST_ADAPTIVE] = cand[chosen];
	for (i = 0; i < EST_NSTRATEGIES; i++)
	{
		acc[i] = Accuracy(cand[i], actual);
		sb->acc[i] = sb->k > 0 ? RECENT_WEIGHT * acc[i] + (1.0 - RECENT_WEIGHT) * sb->acc[i] : acc[i];
	}
	sb->k += 1;
	if (acc_out)
		memcpy(acc_out, acc, sizeof(acc));
	if (pred_out)
		memcpy(pred_out, cand, sizeof(cand));
}

static void
CheckActual(double actual)
{
	if (isnan(actual) || isinf(actual) || actual < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("actual runtime must be a finite non-negative number, got \"%g\"", actual)));
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
	KernelRing	ring;
	EstimateQuery q = {bound, 0};

	ReadScoreboard(scores, &sb);
	if (s == NULL || actual == NULL)
		return WriteScoreboard(&sb);
	CheckActual(*actual);
	KernelRingRead(NULL, s, &ring);
	ScoreRun(s, &ring, &q, &sb, NULL, *actual, NULL, NULL);
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

/* ---- profiles as rows: submit, completion, tforge.estimate -------------- */

/* A profile row's learning columns, from a slot or a composite datum. */
typedef struct ProfileCols
{
	RollingStats *runtime;		/* NULL: none */
	ArrayType  *scores;
	Datum		recent;			/* detoasted only when a kernel candidate needs it */
	bool		norecent;
	Datum		calibration;	/* detoasted only for a bound */
	bool		nocalibration;
	ArrayType  *pooled;
} ProfileCols;

/* A lazily read array column; NULL when it is NULL. */
#define LAZY_ARRAY(d, isnull) ((isnull) ? NULL : DatumGetArrayTypeP(d))

/* Whether strategy i is of the kernel family (they read the ring). */
#define IS_KERNEL(i) ((i) == EST_KERNEL || (i) == EST_KERNEL_FREE || (i) == EST_KERNEL_LONG)

static ArrayType *
ArrayOrNull(Datum d, bool isnull)
{
	return isnull ? NULL : DatumGetArrayTypeP(d);
}

static void
SlotCols(TupleTableSlot *slot, ProfileCols *c)
{
	bool		isnull;
	Datum		d;

	d = Column(slot, "runtime", &isnull);
	c->runtime = isnull ? NULL : DatumGetRollingStatsP(d);
	d = Column(slot, "scores", &isnull);
	c->scores = ArrayOrNull(d, isnull);
	/* the learning columns of 0.2.0: NULL in a 0.1.0 schema */
	c->recent = ColumnIfAny(slot, "recent", &c->norecent);
	c->calibration = ColumnIfAny(slot, "calibration", &c->nocalibration);
	d = ColumnIfAny(slot, "pooled", &isnull);
	c->pooled = ArrayOrNull(d, isnull);
}

/*
 * The type's profile row (task_key NULL) as the active snapshot sees it:
 * its pooled scoreboard and calibration ratios; false when there is none.
 * An index probe of profiles_type_key, as submit_task reads its rows.
 */
static bool
TypeProfile(Datum task_type, ArrayType **pooled, ArrayType **calibration, bool want_calibration)
{
	Datum		keys[2] = {task_type, (Datum) 0};
	bool		keynulls[2] = {false, true};
	Relation	rel;
	TupleTableSlot *slot;
	bool		found;
	bool		pushed = false;

	*pooled = *calibration = NULL;
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	slot = LookupRow("profiles", "profiles_type_key", 2, keys, keynulls, &rel);
	found = !TupIsNull(slot);
	if (found)
	{
		bool		isnull;
		Datum		d;

		d = ColumnIfAny(slot, "pooled", &isnull);
		*pooled = isnull ? NULL : DatumGetArrayTypePCopy(d);
		if (want_calibration)
		{
			d = ColumnIfAny(slot, "calibration", &isnull);
			*calibration = isnull ? NULL : DatumGetArrayTypePCopy(d);
		}
	}
	LookupEnd(slot, rel);
	if (pushed)
		PopActiveSnapshot();
	return found;
}

/*
 * The calibrated bound for coverage on prediction pred: the profile's own
 * ratios, else the type's (fallback, NULL: none); capped by the request,
 * which no run exceeds; the request alone when no ratios suffice; NaN
 * when there is nothing.
 */
static double
UpperBound(double pred, double bound, double coverage, ArrayType *own, ArrayType *fallback)
{
	double		q;
	double		upper = NAN;

	if (CalibrationQuantile(own, coverage, &q) ||
		(fallback != NULL && CalibrationQuantile(fallback, coverage, &q)))
		upper = pred * exp(q);
	if (bound > 0)
		upper = isnan(upper) ? bound : Min(upper, bound);
	return upper;
}

/* Every prediction, confidence and the bound for a query from a profile's columns. */
static void
EstimateCols(const ProfileCols *c, Datum task_type, bool is_key, const EstimateQuery *q,
			 double coverage, EstimateStrategy only, double *pred, double *conf, double *upper,
			 int *chosen)
{
	Scoreboard	sb,
				pooled;
	KernelRing	ring;
	ArrayType  *pooled_arr = c->pooled;
	ArrayType  *type_calibration = NULL;
	int			best;

	if (is_key)
		TypeProfile(task_type, &pooled_arr, &type_calibration, coverage > 0);
	ReadScoreboard(c->scores, &sb);
	ReadScoreboard(pooled_arr, &pooled);
	ring.n = 0;
	ring.p = NULL;
	if ((int) only >= 0)
	{
		int			base = AdaptiveChoice(&pooled, &sb);
		int			pick = only == EST_ADAPTIVE ? base : (int) only;

		if (IS_KERNEL(pick) || (coverage > 0 && IS_KERNEL(base)))
			KernelRingRead(LAZY_ARRAY(c->recent, c->norecent), c->runtime, &ring);
		/* one strategy (tforge.estimate); adaptive's bound needs adaptive's prediction */
		pred[only] = PredictOne(c->runtime, &ring, q, &sb, &pooled, only, &best);
		conf[only] = Confidence(&sb, best);
		*chosen = best;
		if (coverage > 0)
		{
			int			ignored;
			double		basepred = only == EST_ADAPTIVE ? pred[only] :
				PredictOne(c->runtime, &ring, q, &sb, &pooled, EST_ADAPTIVE, &ignored);

			*upper = UpperBound(basepred, q->bound, coverage, LAZY_ARRAY(c->calibration, c->nocalibration),
								type_calibration);
		}
		return;
	}
	KernelRingRead(LAZY_ARRAY(c->recent, c->norecent), c->runtime, &ring);
	EstimateAll(c->runtime, &ring, q, &sb, &pooled, pred, conf, chosen);
	if (coverage > 0)
		*upper = UpperBound(pred[EST_ADAPTIVE], q->bound, coverage, LAZY_ARRAY(c->calibration, c->nocalibration),
							type_calibration);
}

void
EstimateProfileRow(TupleTableSlot *slot, Datum task_type, bool is_key, const EstimateQuery *q,
				   double coverage, double *pred, double *conf, double *upper)
{
	ProfileCols c;
	int			chosen;

	SlotCols(slot, &c);
	*upper = NAN;
	if (c.runtime == NULL)
		elog(ERROR, "tforge: estimate from a profile without runtimes");
	EstimateCols(&c, task_type, is_key, q, coverage, (EstimateStrategy) -1, pred, conf, upper, &chosen);
}

/* Errors (42501) unless the caller may SELECT from tforge.<table>, as a query of it would. */
static void
CheckSelect(const char *table)
{
	Oid			relid = TforgeTable(table);

	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, table);
}

/* The attributes of tforge.runtime_estimate that tforge.estimate fills, by name. */
enum
{
	RE_RUNTIME, RE_CPU, RE_MEMORY, RE_GPU_MEMORY, RE_CONFIDENCE, RE_STRATEGY, RE_SOURCE, RE_CHOSEN,
	RE_UPPER, RE_NATTS
};
static const char *const estimate_attnames[RE_NATTS] = {
	"runtime_s", "cpu", "memory_bytes", "gpu_memory_bytes", "confidence", "strategy", "source",
	"chosen", "upper_s"
};

/*
 * estimate(task_type, task_key, strategy, bound, coverage, processors)
 *   -> tforge.runtime_estimate
 *
 * From the key's profile, else the type's (a profile counts once it has
 * runtimes), else the type's tau with confidence 0 (source "default",
 * chosen "tau"; 42704 for an unknown type). One strategy is computed (the
 * kernel family reads the ring only when it is the one asked for, or
 * adaptive's choice), two index probes read the rows (the key's, and the
 * type's for adaptive's pooled choice and the fallback calibration): no
 * statement, no PL/pgSQL, so the cost is flat in the history's size and a
 * few microseconds. The caller needs SELECT on tforge.profiles (and on the
 * task type tables for the default), as a query of them would.
 */
PG_FUNCTION_INFO_V1(tforge_estimate);
Datum
tforge_estimate(PG_FUNCTION_ARGS)
{
	Oid		   *rettype = (Oid *) fcinfo->flinfo->fn_extra;
	EstimateStrategy strategy;
	EstimateQuery q;
	double		coverage = 0;
	bool		has_coverage = !PG_ARGISNULL(4);
	Datum		task_type;
	Datum		keys[2];
	bool		keynulls[2] = {false, false};
	Datum		out[RE_NATTS];
	bool		outnull[RE_NATTS];
	bool		found = false;
	bool		pushed = false;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tuple;
	int			attempt;
	int			i;

	RequireArg(fcinfo, 0, "task_type");
	strategy = EstimateStrategyFromName(PG_ARGISNULL(2)
										? (tforge_learning_strategy ? tforge_learning_strategy : "adaptive")
										: text_to_cstring(PG_GETARG_TEXT_PP(2)));
	q.bound = GetBound(fcinfo, 3);
	q.procs = GetProcessors(fcinfo, 5);
	if (has_coverage)
	{
		coverage = PG_GETARG_FLOAT8(4);
		CalibrationCheckCoverage(coverage);
	}
	task_type = PG_GETARG_DATUM(0);

	for (i = 0; i < RE_NATTS; i++)
		outnull[i] = true;
	out[RE_STRATEGY] = CStringGetTextDatum(strategy_names[strategy]);
	outnull[RE_STRATEGY] = false;

	CheckSelect("profiles");
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	keys[0] = task_type;
	keys[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	for (attempt = PG_ARGISNULL(1) ? 1 : 0; attempt < 2 && !found; attempt++)
	{
		Relation	rel;
		TupleTableSlot *slot;
		ProfileCols c;
		double		pred[EST_NSTRATEGIES],
					conf[EST_NSTRATEGIES];
		double		upper = NAN;
		int			chosen;

		keynulls[1] = attempt == 1;
		slot = LookupRow("profiles", "profiles_type_key", 2, keys, keynulls, &rel);
		if (!TupIsNull(slot))
		{
			SlotCols(slot, &c);
			if (c.runtime != NULL)
			{
				Datum		res[4];
				bool		resnull[4];
				bool		nocpu,
							nomem,
							nogmem;
				Datum		cpu = Column(slot, "cpu", &nocpu);
				Datum		mem = Column(slot, "memory", &nomem);
				Datum		gmem = Column(slot, "gpu_memory", &nogmem);

				found = true;
				EstimateCols(&c, task_type, attempt == 0, &q, coverage, strategy, pred, conf, &upper, &chosen);
				out[RE_RUNTIME] = Float8GetDatum(pred[strategy]);
				out[RE_CONFIDENCE] = Float8GetDatum(conf[strategy]);
				out[RE_CHOSEN] = CStringGetTextDatum(strategy_names[chosen]);
				out[RE_SOURCE] = CStringGetTextDatum(attempt == 0 ? "key" : "type");
				out[RE_UPPER] = Float8GetDatum(upper);
				outnull[RE_RUNTIME] = outnull[RE_CONFIDENCE] = outnull[RE_CHOSEN] = outnull[RE_SOURCE] = false;
				outnull[RE_UPPER] = isnan(upper);
				ProfilePredictResources(c.runtime, cpu, nocpu, mem, nomem, gmem, nogmem, res, resnull);
				out[RE_CPU] = res[0];
				outnull[RE_CPU] = resnull[0];
				out[RE_MEMORY] = res[1];
				outnull[RE_MEMORY] = resnull[1];
				out[RE_GPU_MEMORY] = res[3];
				outnull[RE_GPU_MEMORY] = resnull[3];
			}
		}
		LookupEnd(slot, rel);
	}
	if (!found)
	{
		/* no profile: the type's tau (as tforge.get_tau), with no confidence */
		double		tau;
		bool		isnull;

		CheckSelect("task_tau");
		CheckSelect("task_types");
		if (!(LookupFloat8("task_tau", "task_tau_pkey", task_type, "tau_s", &tau, &isnull) && !isnull) &&
			!(LookupFloat8("task_types", "task_types_pkey", task_type, "default_tau_s", &tau, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("task type \"%s\" does not exist", TextDatumGetCString(task_type)),
					 errhint("Define it with tforge.define_task_type(name, default_tau_s).")));
		out[RE_RUNTIME] = Float8GetDatum(q.bound > 0 ? Min(tau, q.bound) : tau);
		out[RE_CONFIDENCE] = Float8GetDatum(0);
		out[RE_SOURCE] = CStringGetTextDatum("default");
		out[RE_CHOSEN] = CStringGetTextDatum("tau");
		outnull[RE_RUNTIME] = outnull[RE_CONFIDENCE] = outnull[RE_SOURCE] = outnull[RE_CHOSEN] = false;
		/* a request is a kill limit: no run exceeds it */
		if (q.bound > 0 && has_coverage)
		{
			out[RE_UPPER] = Float8GetDatum(q.bound);
			outnull[RE_UPPER] = false;
		}
	}
	if (pushed)
		PopActiveSnapshot();

	/* the row, by attribute name (tforge.runtime_estimate gained upper_s by ALTER TYPE in an upgrade) */
	if (rettype == NULL)
	{
		rettype = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid));
		*rettype = get_func_rettype(fcinfo->flinfo->fn_oid);
		fcinfo->flinfo->fn_extra = rettype;
	}
	desc = lookup_rowtype_tupdesc(*rettype, -1);
	values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		int			k;

		values[i] = (Datum) 0;
		nulls[i] = true;
		if (att->attisdropped)
			continue;
		for (k = 0; k < RE_NATTS; k++)
			if (strcmp(NameStr(att->attname), estimate_attnames[k]) == 0)
			{
				values[i] = out[k];
				nulls[i] = outnull[k];
				break;
			}
	}
	tuple = heap_form_tuple(desc, values, nulls);
	ReleaseTupleDesc(desc);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

void
LearnProfileUpdate(const RollingStats *stats, Datum task_type, bool is_key, LearnColumns *cols,
				   LearnSample *s)
{
	Scoreboard	sb;
	Scoreboard	pooled;
	ArrayType  *pooled_arr = NULL;
	ArrayType  *type_calibration = NULL;
	double		acc[EST_NSTRATEGIES];
	double		pred[EST_NSTRATEGIES];
	bool		scored = false;
	int			i;

	ReadScoreboard(cols->noscores ? NULL : DatumGetArrayTypeP(cols->scores), &sb);
	if (is_key && s->type_given)
		pooled_arr = s->type_pooled;
	else if (is_key)
		TypeProfile(task_type, &pooled_arr, &type_calibration, false);
	else
		pooled_arr = cols->nopooled ? NULL : DatumGetArrayTypeP(cols->pooled);
	ReadScoreboard(pooled_arr, &pooled);

	if (s->has_runtime && stats != NULL)
	{
		KernelRing	ring;
		double		basis;

		CheckActual(s->runtime);
		KernelRingRead(cols->norecent ? NULL : DatumGetArrayTypeP(cols->recent), stats, &ring);
		ScoreRun(stats, &ring, &s->query, &sb, &pooled, s->runtime, acc, pred);
		scored = true;
		/*
		 * The ratio to the prediction the task's bound scaled, made at submit:
		 * the profile as it stands now has learned from runs that completed
		 * since, and ratios to its prediction were too optimistic (bound
		 * covered 85 % of the runs of users with many runs in flight where 90
		 * was asked, bench/accuracy without requests). Runs without one
		 * (predicted from tau, recorded by _profile_record) take the
		 * profile's.
		 */
		basis = s->submitted > 0 ? s->submitted : pred[EST_ADAPTIVE];

		if (basis > 0 && s->runtime > 0)
		{
			cols->calibration = PointerGetDatum(CalibrationAdd(cols->nocalibration ? NULL :
															   DatumGetArrayTypeP(cols->calibration),
															   log(s->runtime / basis)));
			cols->nocalibration = false;
		}
	}
	cols->scores = PointerGetDatum(WriteScoreboard(&sb));
	cols->noscores = false;

	if (is_key)
	{
		/* the type's profile, recorded next, pools these scores */
		s->carried = scored;
		if (scored)
			memcpy(s->acc, acc, sizeof(acc));
	}
	else
	{
		const double *a = s->carried ? s->acc : scored ? acc : NULL;

		if (a != NULL)
		{
			/* a plain mean of the first 1 / POOLED_WEIGHT runs, then exponential */
			double		w = Max(POOLED_WEIGHT, 1.0 / (pooled.k + 1.0));

			for (i = 0; i < EST_NSTRATEGIES; i++)
				pooled.acc[i] = w * a[i] + (1.0 - w) * pooled.acc[i];
			pooled.k += 1;
			cols->pooled = PointerGetDatum(WriteScoreboard(&pooled));
			cols->nopooled = false;
		}
		s->carried = false;
	}

	if (s->has_runtime && s->runtime > 0)
	{
		cols->recent = PointerGetDatum(KernelRingAdd(cols->norecent ? NULL : DatumGetArrayTypeP(cols->recent),
													 s->runtime, s->query.bound, s->query.procs));
		cols->norecent = false;
	}
}

double
SubmittedPredictionOf(Datum source, bool nosource, Datum predictions, bool nopredictions)
{
	ArrayType  *a;
	double		v;

	if (nosource || nopredictions)
		return 0;
	{
		text	   *t = DatumGetTextPP(source);

		/* "default": tau's, which no bound scaled */
		if (VARSIZE_ANY_EXHDR(t) == 7 && memcmp(VARDATA_ANY(t), "default", 7) == 0)
			return 0;
	}
	a = DatumGetArrayTypeP(predictions);
	if (ARR_NDIM(a) != 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != FLOAT8OID || ARR_DIMS(a)[0] <= EST_ADAPTIVE)
		return 0;
	v = ((const double *) ARR_DATA_PTR(a))[EST_ADAPTIVE];
	return v > 0 && v <= 1e18 ? v : 0;
}

double
ResourcesProcessors(Datum resources, bool isnull)
{
	bool		cpunull;
	Datum		cpu;
	double		v;

	if (isnull)
		return 0;
	cpu = GetAttributeByName(DatumGetHeapTupleHeader(resources), "cpu", &cpunull);
	if (cpunull)
		return 0;
	v = DatumGetFloat8(cpu);
	return KnownProcessors(v);
}

/*
 * _kernel_ring_add(ring, runtime_s, requested_s, processors) -> ring: one
 * more completion in a ring of recent completions (a profile's first, as
 * complete_task records it); a NULL or non-positive runtime changes nothing.
 */
PG_FUNCTION_INFO_V1(kernel_ring_add);
Datum
kernel_ring_add(PG_FUNCTION_ARGS)
{
	ArrayType  *ring = PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0);
	double		runtime = PG_ARGISNULL(1) ? 0 : PG_GETARG_FLOAT8(1);

	if (!(runtime > 0 && runtime <= 1e18))
	{
		if (ring == NULL)
			PG_RETURN_NULL();
		PG_RETURN_ARRAYTYPE_P(ring);
	}
	PG_RETURN_ARRAYTYPE_P(KernelRingAdd(ring, runtime, GetBound(fcinfo, 2), GetProcessors(fcinfo, 3)));
}

/* _kernel_ring_check(ring) -> ring: a ring of recent completions, validated (import). */
PG_FUNCTION_INFO_V1(kernel_ring_check);
Datum
kernel_ring_check(PG_FUNCTION_ARGS)
{
	ArrayType  *ring = PG_GETARG_ARRAYTYPE_P(0);
	KernelRing	r;

	KernelRingRead(ring, NULL, &r);
	if (r.n > KERNEL_RING_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid recent-completions ring: %d completions, at most %d", r.n, KERNEL_RING_MAX)));
	PG_RETURN_ARRAYTYPE_P(ring);
}

/* _calibration_check(ratios) -> ratios: calibration ln ratios, validated (import). */
PG_FUNCTION_INFO_V1(calibration_check);
Datum
calibration_check(PG_FUNCTION_ARGS)
{
	ArrayType  *ratios = PG_GETARG_ARRAYTYPE_P(0);
	double		q;

	(void) CalibrationQuantile(ratios, 0.5, &q);	/* reads, so validates, every ratio */
	if (ARR_NDIM(ratios) == 1 && ARR_DIMS(ratios)[0] > KERNEL_RING_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid calibration ring: %d ratios, at most %d", ARR_DIMS(ratios)[0], KERNEL_RING_MAX)));
	PG_RETURN_ARRAYTYPE_P(ratios);
}
