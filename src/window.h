/*
 * window.h: tforge.window_counter, bucketed event counts.
 *
 * A counter holds 60 per-minute and 168 per-hour buckets ending at the
 * minute (and hour) of its newest event, plus an all-time total. On disk it
 * is a varlena that keeps only the buckets from the newest one back to the
 * oldest non-zero one (a quiet entity costs a few dozen bytes, a busy one at
 * most about 1.9 kB); in memory it is expanded to a WindowState.
 */
#ifndef TFORGE_WINDOW_H
#define TFORGE_WINDOW_H

#include "postgres.h"

#define WINDOW_MINUTES	60
#define WINDOW_HOURS	168

typedef struct WindowState
{
	int64		total;			/* every event ever added, even too old for buckets */
	int64		head_minute;	/* minute number of the newest event; WINDOW_EMPTY_HEAD if none */
	int64		minutes[WINDOW_MINUTES];	/* indexed by minute number mod 60 */
	int64		hours[WINDOW_HOURS];	/* indexed by hour number mod 168 */
} WindowState;

#define WINDOW_EMPTY_HEAD	PG_INT64_MIN

typedef struct WindowCounter
{
	int32		vl_len_;		/* varlena header */
	uint8		version;
	uint8		nminutes;		/* minute buckets stored, newest first */
	uint8		nhours;			/* hour buckets stored, newest first */
	uint8		unused;
	int64		total;
	int64		head_minute;	/* minutes since 2000-01-01 00:00 UTC */
	int64		counts[FLEXIBLE_ARRAY_MEMBER];	/* nminutes, then nhours */
} WindowCounter;

#define PG_GETARG_WINDOW_COUNTER_P(n)	((WindowCounter *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))

#endif							/* TFORGE_WINDOW_H */
