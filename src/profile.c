/*
 * profile.c: the tforge.rolling_stats type and its aggregate.
 *
 * A profile keeps, for a task type or a task key, the rolling statistics of
 * one measured quantity (runtime, cpu seconds, peak memory bytes, peak GPU
 * memory bytes): count, mean and variance by Welford's method, min, max, and
 * a bounded ring of the most recent samples for quantiles and for the
 * recency-based estimators of estimate.c.
 *
 * Text form (oldest ring sample first, every double in its shortest exact
 * decimal so that text and binary round-trip bit for bit):
 *     (count,mean,m2,min,max,capacity,{s1,s2,...})
 *
 * Memory: as an aggregate transition function rolling_stats_add updates its
 * state in place (the state lives in the aggregate's context); everywhere
 * else it returns a fresh copy.
 */
#include "postgres.h"

#include <math.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "profile.h"
#include "tforge.h"

int			tforge_profile_window = 64;

/* Allocate an empty value with the given ring size in the current context. */
static RollingStats *
RollingStatsAlloc(int capacity)
{
	Size		size = ROLLING_STATS_SIZE(capacity);
	RollingStats *s = (RollingStats *) palloc0(size);

	SET_VARSIZE(s, size);
	s->capacity = (uint16) capacity;
	return s;
}

/* Copy a value into the current memory context. */
static RollingStats *
RollingStatsCopy(const RollingStats *src)
{
	RollingStats *s = (RollingStats *) palloc(VARSIZE(src));

	memcpy(s, src, VARSIZE(src));
	return s;
}

void
RollingStatsRecent(const RollingStats *s, double *out)
{
	int			start = (s->head + s->capacity - s->nring) % s->capacity;
	int			i;

	for (i = 0; i < s->nring; i++)
		out[i] = s->ring[(start + i) % s->capacity];
}

/*
 * Samples near the limits of double precision can make the sum of squared
 * deviations (or the mean of a merge) overflow; such a value could not be
 * written out and read back, so refuse it.
 */
static void
CheckMoments(const RollingStats *s)
{
	if (!isfinite(s->mean) || !isfinite(s->m2))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("rolling_stats moments overflow double precision"),
				 errdetail("The samples are too far apart to keep a finite variance.")));
}

/* Add one sample: Welford's update plus a ring push. */
static void
RollingStatsPush(RollingStats *s, double x)
{
	double		delta;

	/*
	 * Welford (1962): n += 1; d = x - mean; mean += d / n; m2 += d * (x -
	 * mean). Numerically stable where the textbook sum of squares is not.
	 */
	if (s->count == PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("rolling_stats count out of range"),
				 errdetail("The value already holds %lld samples.", (long long) s->count)));
	s->count++;
	delta = x - s->mean;
	s->mean += delta / (double) s->count;
	s->m2 += delta * (x - s->mean);
	if (s->count == 1 || x < s->min)
		s->min = x;
	if (s->count == 1 || x > s->max)
		s->max = x;

	s->ring[s->head] = x;
	s->head = (s->head + 1) % s->capacity;
	if (s->nring < s->capacity)
		s->nring++;
	CheckMoments(s);
}

/* Refuse a sample that is not a finite number. */
static void
CheckSample(double x)
{
	if (isnan(x) || isinf(x))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rolling_stats sample must be a finite number, got \"%g\"", x)));
}

/*
 * Check the invariants of a value read from text or binary input; a value
 * that passes cannot make any accessor misbehave.
 */
static void
ValidateRollingStats(const RollingStats *s, const char *what)
{
	int			i;
	const char *bad = NULL;

	if (s->capacity < ROLLING_STATS_MIN_CAPACITY || s->capacity > ROLLING_STATS_MAX_CAPACITY)
		bad = "capacity must be between 1 and 4096";
	else if (s->count < 1)
		bad = "count must be at least 1";
	else if (s->nring < 1 || s->nring > s->capacity || (int64) s->nring > s->count)
		bad = "the ring must hold between 1 and min(count, capacity) samples";
	else if (!isfinite(s->mean) || !isfinite(s->m2) || !isfinite(s->min) || !isfinite(s->max))
		bad = "mean, m2, min and max must be finite";
	else if (s->m2 < 0.0)
		bad = "m2 must not be negative";
	else if (s->min > s->max)
		bad = "min must not exceed max";

	/*
	 * Welford's mean is a rounded convex combination of the samples, so it
	 * may stray from [min, max] by rounding only: allow a relative 1e-12.
	 */
	else if (s->mean < s->min - fabs(s->min) * 1e-12 || s->mean > s->max + fabs(s->max) * 1e-12)
		bad = "mean must lie between min and max";
	else if (s->count == 1 && (s->m2 != 0.0 || s->min != s->max))
		bad = "a single sample has m2 0 and min equal to max";
	else
	{
		for (i = 0; i < s->nring; i++)
		{
			double		x = s->ring[i];

			if (!isfinite(x) || x < s->min || x > s->max)
			{
				bad = "every recent sample must be finite and between min and max";
				break;
			}
		}
	}
	if (bad)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid %s for type rolling_stats", what),
				 errdetail("The value is inconsistent: %s.", bad)));
}

/* Parse one double at *p, advancing *p; error on anything else. */
static double
ParseDouble(char **p, const char *input)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(*p, &end);
	/* ERANGE with a nonzero finite result is a subnormal, which binary input and output carry */
	if (end == *p || (errno == ERANGE && v == 0.0) || !isfinite(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type rolling_stats: \"%s\"", input),
				 errdetail("Expected a finite number at \"%s\".", *p)));
	*p = end;
	return v;
}

/* Parse a non-negative integer at *p that fits int64. */
static int64
ParseCount(char **p, const char *input, int64 maxval)
{
	int64		v = 0;
	char	   *start = *p;

	while (**p >= '0' && **p <= '9')
	{
		int			d = **p - '0';

		if (v > (maxval - d) / 10)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("value out of range in rolling_stats: \"%s\"", input)));
		v = v * 10 + d;
		(*p)++;
	}
	if (*p == start)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type rolling_stats: \"%s\"", input),
				 errdetail("Expected a non-negative integer at \"%s\".", start)));
	return v;
}

/* Require the character c at *p. */
static void
Expect(char **p, char c, const char *input)
{
	if (**p != c)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type rolling_stats: \"%s\"", input),
				 errdetail("Expected \"%c\" at \"%s\".", c, *p)));
	(*p)++;
}

PG_FUNCTION_INFO_V1(rolling_stats_in);
Datum
rolling_stats_in(PG_FUNCTION_ARGS)
{
	char	   *input = PG_GETARG_CSTRING(0);
	char	   *p = input;
	int64		count;
	double		mean,
				m2,
				mn,
				mx;
	int64		capacity;
	RollingStats *s;
	int			n = 0;

	while (*p == ' ')
		p++;
	Expect(&p, '(', input);
	count = ParseCount(&p, input, PG_INT64_MAX);
	Expect(&p, ',', input);
	mean = ParseDouble(&p, input);
	Expect(&p, ',', input);
	m2 = ParseDouble(&p, input);
	Expect(&p, ',', input);
	mn = ParseDouble(&p, input);
	Expect(&p, ',', input);
	mx = ParseDouble(&p, input);
	Expect(&p, ',', input);
	capacity = ParseCount(&p, input, PG_INT32_MAX);
	if (capacity < ROLLING_STATS_MIN_CAPACITY || capacity > ROLLING_STATS_MAX_CAPACITY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rolling_stats capacity must be between %d and %d, got \"%lld\"",
						ROLLING_STATS_MIN_CAPACITY, ROLLING_STATS_MAX_CAPACITY,
						(long long) capacity)));
	Expect(&p, ',', input);
	Expect(&p, '{', input);

	s = RollingStatsAlloc((int) capacity);
	s->count = count;
	s->mean = mean;
	s->m2 = m2;
	s->min = mn;
	s->max = mx;
	if (*p != '}')
	{
		for (;;)
		{
			double		x = ParseDouble(&p, input);

			if (n >= capacity)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid input syntax for type rolling_stats: \"%s\"", input),
						 errdetail("More recent samples than the capacity %lld.",
								   (long long) capacity)));
			s->ring[n++] = x;
			if (*p != ',')
				break;
			p++;
		}
	}
	Expect(&p, '}', input);
	Expect(&p, ')', input);
	while (*p == ' ')
		p++;
	if (*p != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type rolling_stats: \"%s\"", input),
				 errdetail("Unexpected text after the value: \"%s\".", p)));
	s->nring = (uint16) n;
	s->head = (uint16) (n % s->capacity);
	ValidateRollingStats(s, "input");
	PG_RETURN_ROLLING_STATS_P(s);
}

/* Append a double in its shortest decimal that reads back to the same bits. */
static void
AppendDouble(StringInfo buf, double v)
{
	char		tmp[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(v, tmp);
	appendStringInfoString(buf, tmp);
}

PG_FUNCTION_INFO_V1(rolling_stats_out);
Datum
rolling_stats_out(PG_FUNCTION_ARGS)
{
	RollingStats *s = PG_GETARG_ROLLING_STATS_P(0);
	StringInfoData buf;
	double	   *recent = palloc(sizeof(double) * Max(s->nring, 1));
	int			i;

	RollingStatsRecent(s, recent);
	initStringInfo(&buf);
	appendStringInfo(&buf, "(" INT64_FORMAT ",", s->count);
	AppendDouble(&buf, s->mean);
	appendStringInfoChar(&buf, ',');
	AppendDouble(&buf, s->m2);
	appendStringInfoChar(&buf, ',');
	AppendDouble(&buf, s->min);
	appendStringInfoChar(&buf, ',');
	AppendDouble(&buf, s->max);
	appendStringInfo(&buf, ",%d,{", (int) s->capacity);
	for (i = 0; i < s->nring; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		AppendDouble(&buf, recent[i]);
	}
	appendStringInfoString(&buf, "})");
	PG_RETURN_CSTRING(buf.data);
}

/*
 * Binary form: version byte, capacity, count, mean, m2, min, max, nring,
 * then the recent samples oldest first.
 */
PG_FUNCTION_INFO_V1(rolling_stats_send);
Datum
rolling_stats_send(PG_FUNCTION_ARGS)
{
	RollingStats *s = PG_GETARG_ROLLING_STATS_P(0);
	StringInfoData buf;
	double	   *recent = palloc(sizeof(double) * Max(s->nring, 1));
	int			i;

	RollingStatsRecent(s, recent);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, ROLLING_STATS_VERSION);
	pq_sendint16(&buf, s->capacity);
	pq_sendint64(&buf, s->count);
	pq_sendfloat8(&buf, s->mean);
	pq_sendfloat8(&buf, s->m2);
	pq_sendfloat8(&buf, s->min);
	pq_sendfloat8(&buf, s->max);
	pq_sendint16(&buf, s->nring);
	for (i = 0; i < s->nring; i++)
		pq_sendfloat8(&buf, recent[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(rolling_stats_recv);
Datum
rolling_stats_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version = pq_getmsgbyte(buf);
	int			capacity;
	int			nring;
	RollingStats *s;
	int			i;

	if (version != ROLLING_STATS_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary format version for type rolling_stats: \"%d\"", version),
				 errhint("This library reads version %d.", ROLLING_STATS_VERSION)));
	capacity = (uint16) pq_getmsgint(buf, 2);
	if (capacity < ROLLING_STATS_MIN_CAPACITY || capacity > ROLLING_STATS_MAX_CAPACITY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid capacity in external rolling_stats value: \"%d\"", capacity)));
	s = RollingStatsAlloc(capacity);
	s->count = pq_getmsgint64(buf);
	s->mean = pq_getmsgfloat8(buf);
	s->m2 = pq_getmsgfloat8(buf);
	s->min = pq_getmsgfloat8(buf);
	s->max = pq_getmsgfloat8(buf);
	nring = (uint16) pq_getmsgint(buf, 2);
	if (nring > capacity)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid ring length in external rolling_stats value: \"%d\"", nring)));
	for (i = 0; i < nring; i++)
		s->ring[i] = pq_getmsgfloat8(buf);
	s->nring = (uint16) nring;
	s->head = (uint16) (nring % capacity);
	ValidateRollingStats(s, "external value");
	PG_RETURN_ROLLING_STATS_P(s);
}

/*
 * rolling_stats_add(state, sample): the aggregate's transition function and
 * the profile's update. A NULL sample leaves the state as it is, like every
 * built-in aggregate ignores NULL inputs.
 */
RollingStats *
RollingStatsAdd(const RollingStats *s, double x)
{
	RollingStats *result;

	CheckSample(x);
	result = s ? RollingStatsCopy(s) : RollingStatsAlloc(tforge_profile_window);
	RollingStatsPush(result, x);
	return result;
}

PG_FUNCTION_INFO_V1(rolling_stats_add);
Datum
rolling_stats_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	bool		inagg = AggCheckCallContext(fcinfo, &aggcontext) != 0;
	RollingStats *s;
	double		x;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	x = PG_GETARG_FLOAT8(1);
	CheckSample(x);

	if (!inagg)
		PG_RETURN_ROLLING_STATS_P(RollingStatsAdd(PG_ARGISNULL(0) ? NULL : PG_GETARG_ROLLING_STATS_P(0), x));
	if (PG_ARGISNULL(0))
	{
		MemoryContext old = MemoryContextSwitchTo(aggcontext);

		s = RollingStatsAlloc(tforge_profile_window);
		MemoryContextSwitchTo(old);
	}
	else
		s = PG_GETARG_ROLLING_STATS_P(0);	/* ours: updated in place */

	RollingStatsPush(s, x);
	PG_RETURN_ROLLING_STATS_P(s);
}

/*
 * rolling_stats_merge(a, b): statistics of the union of both sample sets
 * (the aggregate's combine function). Moments combine exactly by Chan et
 * al. (1979); the ring keeps a's recent samples followed by b's, so b
 * counts as the more recent, and the larger capacity.
 */
PG_FUNCTION_INFO_V1(rolling_stats_merge);
Datum
rolling_stats_merge(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	bool		inagg = AggCheckCallContext(fcinfo, &aggcontext) != 0;
	MemoryContext old = inagg ? MemoryContextSwitchTo(aggcontext) : CurrentMemoryContext;
	RollingStats *a,
			   *b,
			   *r;
	double	   *ra,
			   *rb;
	double		n,
				delta;
	int			cap,
				total,
				skip,
				i,
				k = 0;

	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
	{
		MemoryContextSwitchTo(old);
		PG_RETURN_NULL();
	}
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
	{
		r = RollingStatsCopy(PG_GETARG_ROLLING_STATS_P(PG_ARGISNULL(0) ? 1 : 0));
		MemoryContextSwitchTo(old);
		PG_RETURN_ROLLING_STATS_P(r);
	}
	a = PG_GETARG_ROLLING_STATS_P(0);
	b = PG_GETARG_ROLLING_STATS_P(1);
	if (a->count > PG_INT64_MAX - b->count)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("rolling_stats count out of range")));

	cap = Max(a->capacity, b->capacity);
	r = RollingStatsAlloc(cap);
	n = (double) a->count + (double) b->count;
	delta = b->mean - a->mean;
	r->count = a->count + b->count;
	r->mean = a->mean + delta * ((double) b->count / n);
	r->m2 = a->m2 + b->m2 + delta * delta * ((double) a->count * (double) b->count / n);
	r->min = Min(a->min, b->min);
	r->max = Max(a->max, b->max);
	CheckMoments(r);

	ra = palloc(sizeof(double) * a->nring);
	rb = palloc(sizeof(double) * b->nring);
	RollingStatsRecent(a, ra);
	RollingStatsRecent(b, rb);
	total = a->nring + b->nring;
	skip = total > cap ? total - cap : 0;
	for (i = 0; i < total; i++)
	{
		if (i < skip)
			continue;
		r->ring[k++] = i < a->nring ? ra[i] : rb[i - a->nring];
	}
	r->nring = (uint16) k;
	r->head = (uint16) (k % cap);
	pfree(ra);
	pfree(rb);
	MemoryContextSwitchTo(old);
	PG_RETURN_ROLLING_STATS_P(r);
}

PG_FUNCTION_INFO_V1(rolling_stats_count);
Datum
rolling_stats_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(PG_GETARG_ROLLING_STATS_P(0)->count);
}

PG_FUNCTION_INFO_V1(rolling_stats_mean);
Datum
rolling_stats_mean(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(PG_GETARG_ROLLING_STATS_P(0)->mean);
}

/* Sample variance m2 / (n - 1), NULL below two samples (as var_samp). */
PG_FUNCTION_INFO_V1(rolling_stats_variance);
Datum
rolling_stats_variance(PG_FUNCTION_ARGS)
{
	RollingStats *s = PG_GETARG_ROLLING_STATS_P(0);

	if (s->count < 2)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(s->m2 / (double) (s->count - 1));
}

PG_FUNCTION_INFO_V1(rolling_stats_stddev);
Datum
rolling_stats_stddev(PG_FUNCTION_ARGS)
{
	RollingStats *s = PG_GETARG_ROLLING_STATS_P(0);

	if (s->count < 2)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(sqrt(s->m2 / (double) (s->count - 1)));
}

PG_FUNCTION_INFO_V1(rolling_stats_min);
Datum
rolling_stats_min(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(PG_GETARG_ROLLING_STATS_P(0)->min);
}

PG_FUNCTION_INFO_V1(rolling_stats_max);
Datum
rolling_stats_max(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(PG_GETARG_ROLLING_STATS_P(0)->max);
}

PG_FUNCTION_INFO_V1(rolling_stats_window);
Datum
rolling_stats_window(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(PG_GETARG_ROLLING_STATS_P(0)->capacity);
}

/* qsort comparator for float8 values that are not NaN (tforge.h). */
int
CompareFloat8(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Float8 values that are not NaN in ascending order, the comparison inlined. */
#define ST_SORT SortFloat8Impl
#define ST_ELEMENT_TYPE double
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

void
SortFloat8(double *v, int n)
{
	SortFloat8Impl(v, n);
}

double
SortedQuantile(const double *sorted, int n, double p)
{
	/* percentile_cont: position p * (n - 1), linear between neighbours */
	double		pos = p * (double) (n - 1);
	int			lo = (int) floor(pos);
	int			hi = lo + 1 < n ? lo + 1 : lo;

	return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double) lo);
}

double
RollingStatsQuantile(const RollingStats *s, double p)
{
	double	   *v = palloc(sizeof(double) * s->nring);
	double		q;

	Assert(s->nring > 0);
	RollingStatsRecent(s, v);
	SortFloat8(v, s->nring);
	q = SortedQuantile(v, s->nring, p);
	pfree(v);
	return q;
}

/* Quantile of the recent samples, interpolated exactly as percentile_cont. */
PG_FUNCTION_INFO_V1(rolling_stats_quantile);
Datum
rolling_stats_quantile(PG_FUNCTION_ARGS)
{
	RollingStats *s = PG_GETARG_ROLLING_STATS_P(0);
	double		p = PG_GETARG_FLOAT8(1);

	if (isnan(p) || p < 0.0 || p > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantile must be between 0 and 1, got \"%g\"", p)));
	PG_RETURN_FLOAT8(RollingStatsQuantile(s, p));
}

/* The recent samples, oldest first. */
PG_FUNCTION_INFO_V1(rolling_stats_recent);
Datum
rolling_stats_recent(PG_FUNCTION_ARGS)
{
	RollingStats *s = PG_GETARG_ROLLING_STATS_P(0);
	double	   *v = palloc(sizeof(double) * s->nring);
	Datum	   *d = palloc(sizeof(Datum) * s->nring);
	int			i;

	RollingStatsRecent(s, v);
	for (i = 0; i < s->nring; i++)
		d[i] = Float8GetDatum(v[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, s->nring, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
