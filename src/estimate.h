/*
 * estimate.h: runtime estimation strategies over a rolling_stats profile.
 */
#ifndef TFORGE_ESTIMATE_H
#define TFORGE_ESTIMATE_H

#include "utils/array.h"

/*
 * The candidates, in the order of a profile's scoreboard and of
 * tforge.estimation_strategies(); "adaptive" is not a candidate itself but
 * the choice among them.
 */
typedef enum EstimateStrategy
{
	EST_AVERAGE,
	EST_P95,
	EST_LINEAR,
	EST_EWMA,
	EST_LAST2,
	EST_MEDIAN,
	EST_LAST,
	EST_ENSEMBLE,
	EST_NCANDIDATES,
	EST_ADAPTIVE = EST_NCANDIDATES
} EstimateStrategy;

#define EST_NSTRATEGIES (EST_NCANDIDATES + 1)

/* Whether name is one of the strategies (the GUC's check hook). */
extern bool EstimateStrategyKnown(const char *name);

/* Parse a strategy name; errors (22023) on an unknown one. */
extern EstimateStrategy EstimateStrategyFromName(const char *name);

/*
 * Every strategy's prediction from a profile (runtime stats and scoreboard,
 * NULL for none) and its confidence, in the order of EstimateStrategy;
 * bound > 0 caps the predictions.
 */
struct RollingStats;
extern void EstimateProfile(const struct RollingStats *s, ArrayType *scores, double bound,
							double *pred, double *conf);

/*
 * A profile's scoreboard (NULL: none yet) after scoring what every candidate
 * predicts from s against *actual (the SQL rescore); s or actual NULL only
 * normalises the scoreboard.
 */
extern ArrayType *EstimateRescore(const struct RollingStats *s, ArrayType *scores,
								  const double *actual, double bound);

/* GUC tforge.learning_strategy: the strategy used when none is given. */
extern char *tforge_learning_strategy;

#endif							/* TFORGE_ESTIMATE_H */
