/*
 * calibration.c: calibrated runtime bounds ("upper_s", deadline_coverage).
 *
 * Each profile keeps, in tforge.profiles.calibration, the ln of actual ÷
 * predicted runtime of its last tforge.kernel_window completions, the
 * prediction being the one adaptive made from the profile as it stood.
 * For a new task the bound with coverage c is prediction * exp(q), q the
 * ceil((n + 1) * c)-th smallest of the n ratios: split conformal
 * prediction, which covers a new run with probability at least c when the
 * ratios are exchangeable (Vovk, Gammerman and Shafer; Lei et al. 2018).
 * Recent ratios only, so the bound follows a user's drift; the state is
 * bounded per profile. With fewer than ceil(c / (1 - c)) ratios there is no
 * finite bound: the caller falls back (the type's ratios, the request).
 */
#include "postgres.h"

#include <math.h>
#include <stdlib.h>

#include "catalog/pg_type.h"
#include "utils/array.h"

#include "calibration.h"
#include "kernel_mode.h"
#include "tforge.h"

/* Ratios outside exp(+-LOG_RATIO_LIMIT) say nothing more: clamp them. */
#define LOG_RATIO_LIMIT 50.0

/* The ratios of arr (NULL: none), checked, in place; *n their count. */
static const double *
ReadRatios(ArrayType *arr, int *n)
{
	const double *v;
	int			i;

	*n = 0;
	if (arr == NULL || ARR_NDIM(arr) == 0)
		return NULL;
	if (ARR_NDIM(arr) != 1 || ARR_HASNULL(arr) || ARR_ELEMTYPE(arr) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid calibration ring: expected a one-dimensional float8[] without NULLs")));
	*n = ARR_DIMS(arr)[0];
	v = (const double *) ARR_DATA_PTR(arr);
	for (i = 0; i < *n; i++)
		if (!(fabs(v[i]) <= LOG_RATIO_LIMIT))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid calibration ring: ln ratio \"%g\" outside [-%g, %g]",
							v[i], LOG_RATIO_LIMIT, LOG_RATIO_LIMIT)));
	return v;
}

ArrayType *
CalibrationAdd(ArrayType *arr, double log_ratio)
{
	int			n;
	const double *v = ReadRatios(arr, &n);
	int			keep = Min(n, tforge_kernel_window - 1);

	if (isnan(log_ratio))
		log_ratio = 0;
	log_ratio = Max(-LOG_RATIO_LIMIT, Min(LOG_RATIO_LIMIT, log_ratio));
	return Float8ArrayTail(keep > 0 ? v + n - keep : NULL, keep, &log_ratio, 1);
}

/*
 * The k-th smallest (0-based) of v[0..n-1], which it reorders: Hoare's
 * selection, O(n) on average. The value is the k-th of the sorted ratios
 * whatever the algorithm, so the bound is exactly the sorted quantile's.
 */
static double
SelectKth(double *v, int n, int k)
{
	int			lo = 0,
				hi = n - 1;

	/* Wirth's variant: partition around v[k] until k's place is fixed */
	while (lo < hi)
	{
		double		pivot = v[k];
		int			i = lo,
					j = hi;

		do
		{
			while (v[i] < pivot)
				i++;
			while (pivot < v[j])
				j--;
			if (i <= j)
			{
				double		t = v[i];

				v[i] = v[j];
				v[j] = t;
				i++;
				j--;
			}
		} while (i <= j);
		if (j < k)
			lo = i;
		if (k < i)
			hi = j;
	}
	return v[k];
}

bool
CalibrationQuantile(ArrayType *arr, double coverage, double *q)
{
	int			n;
	const double *v = ReadRatios(arr, &n);
	double	   *copy;
	int			rank;

	if (n == 0)
		return false;
	rank = (int) ceil((n + 1) * coverage - 1e-9);
	if (rank > n)
		return false;
	rank = Max(rank, 1);
	copy = palloc(sizeof(double) * n);
	memcpy(copy, v, sizeof(double) * n);
	*q = SelectKth(copy, n, rank - 1);
	pfree(copy);
	return true;
}

void
CalibrationCheckCoverage(double coverage)
{
	if (!(coverage > 0 && coverage < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("coverage must be strictly between 0 and 1, got %g", coverage),
				 errhint("0.9 asks for a bound that 90 %% of runs stay under.")));
}
