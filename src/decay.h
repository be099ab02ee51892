/*
 * decay.h: tforge.decay_score, a running exponentially decayed score.
 *
 * The type is fixed size (sizeof(DecayScore), 24 bytes), passed by
 * reference, aligned on double, STORAGE plain: it is never toasted, and an
 * aggregate may update it in place.
 */
#ifndef TFORGE_DECAY_H
#define TFORGE_DECAY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/timestamp.h"

typedef struct DecayScore
{
	double		score;			/* S(t_last), never negative, finite */
	TimestampTz t_last;			/* last update; DT_NOBEGIN while empty */
	int64		half_life_us;	/* half-life in microseconds, > 0 */
} DecayScore;

#define DatumGetDecayScoreP(X)		((DecayScore *) DatumGetPointer(X))
#define DecayScorePGetDatum(X)		PointerGetDatum(X)
#define PG_GETARG_DECAY_SCORE_P(n)	DatumGetDecayScoreP(PG_GETARG_DATUM(n))
#define PG_RETURN_DECAY_SCORE_P(x)	return DecayScorePGetDatum(x)

/* Rank key of a zero score: finite, and below the key of any positive score. */
#define DECAY_RANK_FLOOR	(-1.0e308)

/* Length of an interval in microseconds (30-day months, 24-hour days). */
extern int64 IntervalMicroseconds(const Interval *span, const char *what);

/* Refuse an infinite timestamp argument. */
extern void CheckFiniteTimestamp(TimestampTz at, const char *what);

#endif							/* TFORGE_DECAY_H */
