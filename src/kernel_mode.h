/*
 * kernel_mode.h: the kernel-mode family of runtime predictors over a ring
 * of a profile's recent completions (kernel_mode.c).
 */
#ifndef TFORGE_KERNEL_MODE_H
#define TFORGE_KERNEL_MODE_H

#include "utils/array.h"

struct RollingStats;

/* Values per completion in a ring: runtime s, requested s, processors. */
#define KERNEL_RING_FIELDS 3

/* Bounds of tforge.kernel_window (completions a ring keeps). */
#define KERNEL_RING_MIN 1
#define KERNEL_RING_MAX 1024

/* One past completion, as the ring holds it. */
typedef struct KernelPoint
{
	double		secs;			/* runtime_s */
	double		logr;			/* its ln */
	double		requested;		/* requested seconds, 0 when unknown */
	double		procs;			/* processors (resources.cpu), 0 when unknown */
} KernelPoint;

/* A ring unpacked: n completions, oldest first, and their positions by runtime. */
typedef struct KernelRing
{
	int			n;
	KernelPoint *p;
	int		   *order;			/* NULL until a prediction needs them: ring
								 * positions, shortest run first (ties: older first) */
	double	   *gaps;			/* NULL until a prediction needs them: gaps[i] =
								 * exp(-(ln run order[i] - ln run order[i-1]) / h) */
} KernelRing;

/* What a submit knows of the new task. */
typedef struct KernelQuery
{
	double		requested;		/* requested seconds (the bound), 0: none */
	double		procs;			/* processors, 0: unknown */
} KernelQuery;

/* The variants, in the order of their strategies in estimate.c. */
typedef enum KernelVariant
{
	KERNEL_REQUEST,				/* request as translation, point and cap; processors */
	KERNEL_FREE,				/* the same without the request */
	KERNEL_LONG,				/* without the request, slow decay only: longer memory */
	KERNEL_NVARIANTS
} KernelVariant;

/*
 * Unpack a ring column (NULL: none) into r; when there is none, the
 * runtimes of stats' recent ring (NULL: none) stand in, without features.
 * Errors (22023) on a malformed ring.
 */
extern void KernelRingRead(ArrayType *arr, const struct RollingStats *stats, KernelRing *r);

/* The ring arr (NULL: empty) with one more completion, trimmed to tforge.kernel_window. */
extern ArrayType *KernelRingAdd(ArrayType *arr, double runtime_s, double requested, double procs);

/* A one-dimensional float8[] of head's nhead values then tail's ntail. */
extern ArrayType *Float8ArrayTail(const double *head, int nhead, const double *tail, int ntail);

/*
 * A variant's prediction (seconds) from a ring with n > 0; 0 when it is
 * empty. The first prediction without a request keeps in r what the others
 * share.
 */
extern double KernelPredict(KernelRing *r, const KernelQuery *q, KernelVariant v);

/* GUC tforge.kernel_window. */
extern int	tforge_kernel_window;

#endif							/* TFORGE_KERNEL_MODE_H */
