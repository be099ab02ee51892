/*
 * calibration.h: calibrated runtime bounds (calibration.c).
 */
#ifndef TFORGE_CALIBRATION_H
#define TFORGE_CALIBRATION_H

#include "utils/array.h"

/* The ring arr (NULL: empty) with one more ln(actual / predicted), trimmed to tforge.kernel_window. */
extern ArrayType *CalibrationAdd(ArrayType *arr, double log_ratio);

/*
 * The conformal quantile for coverage of the ln ratios in arr (NULL: none):
 * the ceil((n + 1) * coverage)-th smallest; false when arr holds too few
 * ratios for a finite bound at that coverage.
 */
extern bool CalibrationQuantile(ArrayType *arr, double coverage, double *q);

/* Errors (22023) unless coverage is NULL-free and strictly between 0 and 1. */
extern void CalibrationCheckCoverage(double coverage);

#endif							/* TFORGE_CALIBRATION_H */
