/*
 * estimate.h: runtime estimation strategies over a rolling_stats profile.
 */
#ifndef TFORGE_ESTIMATE_H
#define TFORGE_ESTIMATE_H

#include "utils/array.h"

/*
 * The strategies, in the order of a profile's scoreboard and of
 * tforge.estimation_strategies(); "adaptive" is not a candidate itself but
 * the choice among the others. The kernel-mode family (0.2.0) comes after
 * adaptive, so that predictions stored by 0.1.0 keep their positions.
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
	EST_ADAPTIVE,
	EST_KERNEL,					/* kernel mode with the request and processors */
	EST_KERNEL_FREE,			/* kernel mode without the request */
	EST_KERNEL_LONG,			/* the same with longer memory */
	EST_NSTRATEGIES
} EstimateStrategy;

/* What a prediction for one new task knows besides the profile. */
typedef struct EstimateQuery
{
	double		bound;			/* requested seconds: caps every prediction; 0: none */
	double		procs;			/* processors (resources.cpu); 0: unknown */
} EstimateQuery;

/*
 * One completion as the learning columns of a profile record it, and what
 * the key's profile passes on to the type's (recorded right after it).
 */
typedef struct LearnSample
{
	bool		has_runtime;
	double		runtime;		/* seconds, > 0 */
	EstimateQuery query;		/* the task's request and processors */
	double		submitted;		/* adaptive's prediction stored at submit; 0: none */
	bool		carried;		/* acc holds the key profile's scores of this run */
	double		acc[EST_NSTRATEGIES];

	/*
	 * A batch learning in memory (batch.c) gives the type's pooled
	 * scoreboard as it stands (NULL: none) instead of letting a key's
	 * profile read the type's row from the table.
	 */
	bool		type_given;
	ArrayType  *type_pooled;
} LearnSample;

/* The learning columns of a profile (in: as stored; out: after a completion). */
typedef struct LearnColumns
{
	Datum		scores;
	bool		noscores;
	Datum		recent;
	bool		norecent;
	Datum		calibration;
	bool		nocalibration;
	Datum		pooled;
	bool		nopooled;
} LearnColumns;

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
 * Every strategy's prediction and confidence for a new task from a row of
 * tforge.profiles (slot; is_key: a key's profile, whose type's row then
 * gives the pooled choice and calibration), and, when coverage is in
 * (0, 1), the calibrated upper bound (*upper, NaN when there is none).
 * submit_task calls this on the profile it read.
 */
struct TupleTableSlot;
extern void EstimateProfileRow(struct TupleTableSlot *slot, Datum task_type, bool is_key,
							   const EstimateQuery *q, double coverage,
							   double *pred, double *conf, double *upper);

/*
 * A profile's learning columns after one completion (cols in and out):
 * every strategy scored on what it predicted from the profile as it stands
 * (stats, NULL for none), the run added to the ring of recent completions,
 * the calibration ratio recorded; on a type's profile (is_key false) also
 * the pooled choice. A key's profile is recorded first and leaves its
 * scores in s for its type's.
 */
extern void LearnProfileUpdate(const struct RollingStats *stats, Datum task_type, bool is_key,
							   LearnColumns *cols, LearnSample *s);

/* v as a task's processors: a number in (0, 1e18], else 0 (unknown). */
static inline double
KnownProcessors(double v)
{
	return v > 0 && v <= 1e18 ? v : 0;
}

/*
 * Adaptive's prediction that submit_task stored in a task's row (its
 * predictions_source and predictions columns, as complete_task's UPDATE
 * returns them) when a profile made it, the prediction a deadline_coverage
 * bound scaled; 0 when there is none.
 */
extern double SubmittedPredictionOf(Datum source, bool nosource, Datum predictions, bool nopredictions);

/* resources.cpu of a tforge.resources value (NULL: 0), the processors of a task. */
extern double ResourcesProcessors(Datum resources, bool isnull);

/*
 * A profile's scoreboard (NULL: none yet) after scoring what every candidate
 * predicts from s against *actual (the SQL rescore); s or actual NULL only
 * normalises the scoreboard.
 */
extern ArrayType *EstimateRescore(const struct RollingStats *s, ArrayType *scores,
								  const double *actual, double bound);

/*
 * What a profile's statistics predict of a task's resources (profile_learn.c):
 * v[0] cores (mean cpu s / mean runtime s), v[1] memory and v[3] GPU memory
 * bytes (95th percentile of recent peaks, rounded up); n[i] true: none
 * (v[2], the GPU count, never).
 */
extern void ProfilePredictResources(struct RollingStats *runtime, Datum cpu, bool nocpu,
									Datum memory, bool nomemory, Datum gpu_memory,
									bool nogpu_memory, Datum *v, bool *n);

/* GUC tforge.learning_strategy: the strategy used when none is given. */
extern char *tforge_learning_strategy;

#endif							/* TFORGE_ESTIMATE_H */
