/*
 * kernel_mode.c: the kernel-mode family of runtime predictors.
 *
 * Accuracy of a prediction p of an actual a is min(p, a) / max(p, a) =
 * exp(-|ln p - ln a|), so the point prediction with the best expected
 * accuracy is the peak of the log-runtime distribution smoothed by a
 * Laplace kernel: argmax over x of sum_i w_i * exp(-|x - x_i| / h), x_i the
 * log runtimes of past completions, w_i their weights. Not the mean: on the
 * KTH trace, with the same recency weights, this mode reached 62.3 %
 * against 60.9 % for a weighted median and 54.7 % for a weighted mean
 * (study of issue 15). Two constants were chosen on the KTH trace (offline
 * replay of this code, kernel strategy alone): FAST_SHARE 0.3 (61.8 %)
 * over 0.5 (61.3 %) and 0.1 (61.4 %), the exponential translation weight
 * (+0.2 point over 1 / (1 + |d|)); the others are the study's.
 *
 * Each profile keeps a ring of its last tforge.kernel_window completions
 * (column tforge.profiles.recent, a float8[] of triples oldest first:
 * runtime_s, requested seconds or 0, processors or 0). A past job's
 * weight is a mix of a fast (x FAST_DECAY per newer job) and a slow
 * (x SLOW_DECAY) recency decay, each normalised to sum 1, times
 * PROCS_MATCH when it ran on as many processors as the new task asks for.
 * The request variant also translates each past runtime by ln(new request /
 * its request), weight * exp(-|that|), adds the request itself as a point
 * and caps every point at it (a request is a kill limit: no run exceeds
 * it).
 *
 * The objective is convex between neighbouring points (a sum of
 * exponentials of x), so its maximum is at one of the points: sort them,
 * then one pass from each end gives every point's left and right sums,
 * O(K log K) for K points.
 */
#include "postgres.h"

#include <math.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "utils/array.h"

#include "kernel_mode.h"
#include "profile.h"

/* Recency decays per newer completion, and their mix (weight of the fast one). */
#define FAST_DECAY 0.75
#define SLOW_DECAY 0.99
#define FAST_SHARE 0.3
/* The long-memory variant: slow decay only, slower. */
#define LONG_DECAY 0.995
/* Weight factor of a past job on as many processors as the new task. */
#define PROCS_MATCH 2.5
/* Laplace kernel scale in ln seconds (wider than 1: the points are few and noisy). */
#define KERNEL_SCALE 1.75
/* A translated run's weight falls as exp(-|ln request ratio| / this). */
#define TRANSLATION_SCALE 1.0
/* Weight of the request as a point, relative to a past job's mean weight. */
#define REQUEST_WEIGHT 0.5

int			tforge_kernel_window = 128;

/* A point of the objective. */
typedef struct WPoint
{
	double		x;				/* ln seconds */
	double		w;
	double		v;				/* the same in seconds, exact for an untranslated run */
} WPoint;

/*
 * Sorts with the comparison inlined (PostgreSQL's sort template, the
 * algorithm of pg_qsort): a call through qsort's function pointer per
 * comparison cost more than the rest of a prediction.
 */
#define ST_SORT SortWPoints
#define ST_ELEMENT_TYPE WPoint
#define ST_COMPARE(a, b) (((a)->x > (b)->x) - ((a)->x < (b)->x))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* A ring position and its ln runtime, for the ring's order by runtime. */
typedef struct RankedPoint
{
	double		x;
	int			i;
} RankedPoint;

/*
 * rp[0..n-1], given in position order, by ln runtime, then position (a total
 * order, so the order is unique): a stable bottom-up merge sort, insertion
 * sort of runs of four first, nothing when they are in order already. pg_qsort's presorted checks at every level of
 * its recursion made it the costliest step of an estimate.
 */
static void
SortRanked(RankedPoint *rp, int n)
{
	RankedPoint *tmp;
	RankedPoint *from,
			   *to;
	int			width,
				i,
				j;

	/* runs of equal runtimes (a queue's steady task) are sorted already */
	for (i = 1; i < n && rp[i - 1].x <= rp[i].x; i++)
		;
	if (i >= n)
		return;
	tmp = palloc(sizeof(RankedPoint) * n);
	from = rp;
	to = tmp;
	for (i = 0; i < n; i += 4)
	{
		int			end = Min(i + 4, n);

		for (j = i + 1; j < end; j++)
		{
			RankedPoint v = rp[j];
			int			k = j;

			while (k > i && rp[k - 1].x > v.x)
			{
				rp[k] = rp[k - 1];
				k--;
			}
			rp[k] = v;
		}
	}
	for (width = 4; width < n; width *= 2)
	{
		int			lo;

		for (lo = 0; lo < n; lo += 2 * width)
		{
			int			mid = Min(lo + width, n),
						hi = Min(lo + 2 * width, n),
						a = lo,
						b = mid,
						k = lo;

			while (a < mid && b < hi)
				to[k++] = from[b].x < from[a].x ? from[b++] : from[a++];
			while (a < mid)
				to[k++] = from[a++];
			while (b < hi)
				to[k++] = from[b++];
		}
		{
			RankedPoint *t = from;

			from = to;
			to = t;
		}
	}
	if (from != rp)
		memcpy(rp, from, sizeof(RankedPoint) * n);
	pfree(tmp);
}

/* r->order: the ring's positions by ln runtime (the points' order when nothing translates them). */
static void
OrderRing(KernelRing *r)
{
	RankedPoint *rp = palloc(sizeof(RankedPoint) * Max(r->n, 1));
	int			i;

	for (i = 0; i < r->n; i++)
	{
		rp[i].x = r->p[i].logr;
		rp[i].i = i;
	}
	SortRanked(rp, r->n);
	r->order = palloc(sizeof(int) * Max(r->n, 1));
	for (i = 0; i < r->n; i++)
		r->order[i] = rp[i].i;
	pfree(rp);
}

static void
BadRing(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid recent-completions ring: %s", why),
			 errdetail("A ring is a float8[] of triples, oldest first: runtime_s, requested seconds (0: none), processors (0: none).")));
}

void
KernelRingRead(ArrayType *arr, const RollingStats *stats, KernelRing *r)
{
	int			i;

	r->n = 0;
	r->p = NULL;
	r->order = NULL;
	r->gaps = NULL;
	if (arr == NULL)
	{
		double	   *v;

		if (stats == NULL || stats->nring == 0)
			return;
		v = palloc(sizeof(double) * stats->nring);
		RollingStatsRecent(stats, v);
		r->p = palloc(sizeof(KernelPoint) * stats->nring);
		for (i = 0; i < stats->nring; i++)
		{
			if (v[i] <= 0)
				continue;		/* a ring of runtimes can hold a 0: no log */
			r->p[r->n].logr = log(v[i]);
			r->p[r->n].secs = v[i];
			r->p[r->n].requested = 0;
			r->p[r->n].procs = 0;
			r->n++;
		}
		pfree(v);
		return;
	}
	if (ARR_NDIM(arr) == 0)
		return;
	if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr) || ARR_ELEMTYPE(arr) != FLOAT8OID ||
		ARR_DIMS(arr)[0] % KERNEL_RING_FIELDS != 0)
		BadRing("expected a one-dimensional float8[] of non-null triples");
	{
		const double *v = (const double *) ARR_DATA_PTR(arr);
		int			n = ARR_DIMS(arr)[0] / KERNEL_RING_FIELDS;

		r->p = palloc(sizeof(KernelPoint) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			KernelPoint *p = &r->p[i];

			p->secs = v[3 * i];
			p->requested = v[3 * i + 1];
			p->procs = v[3 * i + 2];
			if (!(p->secs > 0 && p->secs <= 1e18) ||
				!(p->requested >= 0 && p->requested <= 1e18) ||
				!(p->procs >= 0 && p->procs <= 1e18))
				BadRing("a runtime outside (0, 1e18] or a request or processor count outside [0, 1e18]");
			p->logr = log(p->secs);
		}
		r->n = n;
	}
}

/* The number of completions in a ring array (NULL: none); errors (22023) on a malformed one. */
static int
RingLength(ArrayType *arr)
{
	if (arr == NULL || ARR_NDIM(arr) == 0)
		return 0;
	if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr) || ARR_ELEMTYPE(arr) != FLOAT8OID ||
		ARR_DIMS(arr)[0] % KERNEL_RING_FIELDS != 0)
		BadRing("expected a one-dimensional float8[] of non-null triples");
	return ARR_DIMS(arr)[0] / KERNEL_RING_FIELDS;
}

ArrayType *
Float8ArrayTail(const double *head, int nhead, const double *tail, int ntail)
{
	int			len = nhead + ntail;
	Size		nbytes = add_size(ARR_OVERHEAD_NONULLS(1), mul_size(sizeof(double), len));
	ArrayType  *a = (ArrayType *) palloc0(nbytes);

	SET_VARSIZE(a, nbytes);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = FLOAT8OID;
	ARR_DIMS(a)[0] = len;
	ARR_LBOUND(a)[0] = 1;
	if (nhead > 0)
		memcpy(ARR_DATA_PTR(a), head, sizeof(double) * nhead);
	if (ntail > 0)
		memcpy((double *) ARR_DATA_PTR(a) + nhead, tail, sizeof(double) * ntail);
	return a;
}

/*
 * The ring's values are copied as they are: whoever reads the ring checks
 * them (KernelRingRead; complete_task reads it to score the run before it
 * adds the run), so this only checks the shape.
 */
ArrayType *
KernelRingAdd(ArrayType *arr, double runtime_s, double requested, double procs)
{
	int			n = RingLength(arr);
	int			keep = Min(n, tforge_kernel_window - 1);
	double		add[KERNEL_RING_FIELDS];

	add[0] = runtime_s;
	add[1] = requested > 0 && requested <= 1e18 ? requested : 0;
	add[2] = procs > 0 && procs <= 1e18 ? procs : 0;
	return Float8ArrayTail(keep > 0 ? (const double *) ARR_DATA_PTR(arr) + KERNEL_RING_FIELDS * (n - keep) : NULL,
						   KERNEL_RING_FIELDS * keep, add, KERNEL_RING_FIELDS);
}

double
KernelPredict(KernelRing *r, const KernelQuery *q, KernelVariant v)
{
	int			n = r->n;
	bool		use_request = v == KERNEL_REQUEST && q->requested > 0;
	double		lr = use_request ? log(q->requested) : 0;
	double		slow = v == KERNEL_LONG ? LONG_DECAY : SLOW_DECAY;
	double		wf = 1.0,
				ws = 1.0,
				wtot = 0,
				acc,
				best = -1,
				bestv = 0;
	WPoint	   *pts;
	double	   *left;
	double	   *decay;
	double	   *weight;
	int			m = 0;
	int			i;

	if (n == 0)
		return 0;
	pts = palloc(sizeof(WPoint) * (n + 1));
	left = palloc(sizeof(double) * (n + 1));
	decay = palloc(sizeof(double) * (n + 1));
	weight = palloc(sizeof(double) * n);
	/* recency weights, newest first, by ring position */
	for (i = 0; i < n; i++)
	{
		int			j = n - 1 - i;
		double		w;

		if (v == KERNEL_LONG)
			w = ws;
		else
			w = FAST_SHARE * wf * (1.0 - FAST_DECAY) + (1.0 - FAST_SHARE) * ws * (1.0 - SLOW_DECAY);
		wf *= FAST_DECAY;
		ws *= slow;
		if (q->procs > 0 && r->p[j].procs == q->procs)
			w *= PROCS_MATCH;
		weight[j] = w;
	}
	if (!use_request)
	{
		/* the points are the runs themselves: the ring's order by runtime */
		if (r->order == NULL)
			OrderRing(r);
		for (m = 0; m < n; m++)
		{
			const KernelPoint *p = &r->p[r->order[m]];

			pts[m].x = p->logr;
			pts[m].w = weight[r->order[m]];
			pts[m].v = p->secs;
		}
	}
	else
	{
		for (i = 0; i < n; i++)
		{
			const KernelPoint *p = &r->p[n - 1 - i];	/* newest first */
			double		w = weight[n - 1 - i];
			double		x = p->logr;
			double		sec = p->secs;

			if (p->requested > 0)
			{
				double		d = lr - log(p->requested);

				x += d;
				sec *= q->requested / p->requested;
				w *= exp(-fabs(d) / TRANSLATION_SCALE);
			}
			if (x >= lr)
			{
				x = lr;
				sec = q->requested;
			}
			pts[m].x = x;
			pts[m].w = w;
			pts[m].v = sec;
			wtot += w;
			m++;
		}
		pts[m].x = lr;
		pts[m].w = REQUEST_WEIGHT * wtot / n;
		pts[m].v = q->requested;
		m++;
		SortWPoints(pts, m);
	}

	/*
	 * decay[i] = exp(-(x_i - x_{i-1}) / h), shared by both passes; for the
	 * runs in their order, the same for every variant: kept in the ring
	 */
	if (use_request || r->gaps == NULL)
	{
		for (i = 1; i < m; i++)
			decay[i] = exp(-(pts[i].x - pts[i - 1].x) / KERNEL_SCALE);
		if (!use_request)
		{
			r->gaps = palloc(sizeof(double) * (n + 1));
			memcpy(r->gaps, decay, sizeof(double) * m);
		}
	}
	else
		memcpy(decay, r->gaps, sizeof(double) * m);

	/* left[i] = sum over j <= i of w_j exp(-(x_i - x_j)/h) */
	acc = 0;
	for (i = 0; i < m; i++)
	{
		if (i > 0)
			acc *= decay[i];
		acc += pts[i].w;
		left[i] = acc;
	}
	/* right sums, and f(x_i) = left + right - w_i; the lowest x on ties */
	acc = 0;
	for (i = m - 1; i >= 0; i--)
	{
		double		f;

		if (i < m - 1)
			acc *= decay[i + 1];
		acc += pts[i].w;
		f = left[i] + acc - pts[i].w;
		if (f >= best)
		{
			best = f;
			bestv = pts[i].v;
		}
	}
	pfree(pts);
	pfree(left);
	pfree(decay);
	pfree(weight);
	return bestv;
}
