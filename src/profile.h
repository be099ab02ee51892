/*
 * profile.h: the rolling_stats type shared by profile.c and estimate.c.
 *
 * A rolling_stats value is a varlena (STORAGE = main): a fixed header with
 * Welford's running moments over every sample ever added, followed by a
 * ring of the most recent samples (at most "capacity" of them) from which
 * quantiles and the recency-based estimators are computed.
 */
#ifndef TFORGE_PROFILE_H
#define TFORGE_PROFILE_H

#include "postgres.h"

#include "fmgr.h"

/* Binary and in-memory layout version, carried by send/recv. */
#define ROLLING_STATS_VERSION 1

/* Limits on the ring: large enough for quantiles, small enough to detoast fast. */
#define ROLLING_STATS_MIN_CAPACITY 1
#define ROLLING_STATS_MAX_CAPACITY 4096

typedef struct RollingStats
{
	int32		vl_len_;		/* varlena header (do not touch directly) */
	uint16		capacity;		/* ring size */
	uint16		nring;			/* samples held in the ring, <= capacity */
	uint16		head;			/* ring slot the next sample goes to */
	uint16		unused;
	int64		count;			/* samples ever added */
	double		mean;			/* Welford running mean */
	double		m2;				/* Welford sum of squared deviations */
	double		min;
	double		max;
	double		ring[FLEXIBLE_ARRAY_MEMBER];
} RollingStats;

#define ROLLING_STATS_SIZE(cap) (offsetof(RollingStats, ring) + sizeof(double) * (cap))

#define DatumGetRollingStatsP(X)	((RollingStats *) PG_DETOAST_DATUM(X))
#define PG_GETARG_ROLLING_STATS_P(n) DatumGetRollingStatsP(PG_GETARG_DATUM(n))
#define PG_RETURN_ROLLING_STATS_P(x) PG_RETURN_POINTER(x)

/* The i-th most recent... oldest-first copy of the ring into out[nring]. */
extern void RollingStatsRecent(const RollingStats *s, double *out);

/* s (NULL: a new series) with one more finite sample x, as a new value. */
extern RollingStats *RollingStatsAdd(const RollingStats *s, double x);

/* Sort n float8 values (none NaN) in ascending order. */
extern void SortFloat8(double *v, int n);

/* Quantile p in [0,1] of sorted values, interpolated like percentile_cont. */
extern double SortedQuantile(const double *sorted, int n, double p);

/* s (NULL: a new series) with one more finite sample x, as a new value. */
extern RollingStats *RollingStatsAdd(const RollingStats *s, double x);

/* Quantile p in [0,1] of the recent samples (nring > 0), as percentile_cont. */
extern double RollingStatsQuantile(const RollingStats *s, double p);

/* Default ring size for new values (GUC tforge.profile_window). */
extern int	tforge_profile_window;

#endif							/* TFORGE_PROFILE_H */
