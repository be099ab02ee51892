/*
 * registry.c: the pure functions of the model registry.
 *
 * The registry's state (models, versions, validations, state history) lives
 * in ordinary tables defined in sql/install/40_registry.sql; its procedures
 * are PL/pgSQL there. This file holds what is pure arithmetic or pure logic
 * and must be fast and exact: the lifecycle graph, shape compatibility, the
 * SLA test, rollback scoring and the nearest-rank latency percentile.
 * Nothing here reads or writes a table except the enum catalog, to map an
 * enum value to its label.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "registry.h"
#include "tforge.h"

/*
 * The deployment lifecycle, in the order of the enum tforge.deployment_state.
 * The labels must match the enum's labels; StateIndex refuses anything else.
 */
static const char *const StateLabels[REGISTRY_NSTATES] = {
	"registered", "validating", "staging", "canary",
	"production", "deprecated", "archived"
};

/*
 * The seed's lifecycle, written as its table of edges:
 *   registered -> validating
 *   validating -> staging | registered (on failure)
 *   staging    -> canary  | registered (on failure)
 *   canary     -> production | staging (on rollback)
 *   production -> deprecated
 *   deprecated -> archived
 * Nothing else is allowed, including staying in the same state.
 */
static const bool Transitions[REGISTRY_NSTATES][REGISTRY_NSTATES] = {
	/* to: reg    val    stg    can    prod   depr   arch */
	{false, true, false, false, false, false, false},	/* registered */
	{true, false, true, false, false, false, false},	/* validating */
	{true, false, false, true, false, false, false},	/* staging */
	{false, false, true, false, true, false, false},	/* canary */
	{false, false, false, false, false, true, false},	/* production */
	{false, false, false, false, false, false, true},	/* deprecated */
	{false, false, false, false, false, false, false},	/* archived */
};

/* Position of an enum value of tforge.deployment_state in the lifecycle. */
static int
StateIndex(Oid enumval)
{
	HeapTuple	tup;
	const char *label;
	int			i;

	tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(enumval));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid internal value for enum: %u", enumval)));
	label = NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel);
	for (i = 0; i < REGISTRY_NSTATES; i++)
	{
		if (strcmp(label, StateLabels[i]) == 0)
			break;
	}
	if (i == REGISTRY_NSTATES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown deployment state \"%s\"", label)));
	ReleaseSysCache(tup);
	return i;
}

PG_FUNCTION_INFO_V1(registry_can_transition);
Datum
registry_can_transition(PG_FUNCTION_ARGS)
{
	int			from = StateIndex(PG_GETARG_OID(0));
	int			to = StateIndex(PG_GETARG_OID(1));

	PG_RETURN_BOOL(Transitions[from][to]);
}

/* Refuse a value that is not a finite number >= 0. */
static void
CheckNonNegative(double value, const char *what)
{
	if (isnan(value) || isinf(value) || value < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number >= 0, got \"%g\"", what, value)));
}

/* Refuse an accuracy outside [0, 1]. */
static void
CheckAccuracy(double value, const char *what)
{
	if (isnan(value) || value < 0.0 || value > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 0 and 1, got \"%g\"", what, value),
				 errhint("Accuracy is a fraction: 0.95 means 95 %%.")));
}

/*
 * Elements of a shape: a one-dimensional int4 array without NULLs whose
 * elements are >= 0 (the seed's shapes are usize). An empty array is a
 * scalar's shape.
 */
static int32 *
ShapeElements(ArrayType *arr, const char *what, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int32	   *dims;
	int			i;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array, got %d dimensions",
						what, ARR_NDIM(arr))));
	deconstruct_array(arr, INT4OID, sizeof(int32), true, TYPALIGN_INT,
					  &elems, &nulls, n);
	dims = palloc(sizeof(int32) * Max(*n, 1));
	for (i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain NULL (element %d)", what, i + 1)));
		dims[i] = DatumGetInt32(elems[i]);
		if (dims[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain a negative dimension, got \"%d\" (element %d)",
							what, dims[i], i + 1)));
	}
	return dims;
}

/*
 * Similarity of two shapes: the number of positions where both have the same
 * dimension, divided by the larger rank. Identical shapes give 1, shapes of
 * different rank can never give 1, and two scalars (empty shapes) are
 * identical.
 */
static double
ShapeSimilarity(const int32 *a, int na, const int32 *b, int nb)
{
	int			common = Min(na, nb);
	int			longest = Max(na, nb);
	int			same = 0;
	int			i;

	if (longest == 0)
		return 1.0;
	for (i = 0; i < common; i++)
	{
		if (a[i] == b[i])
			same++;
	}
	return (double) same / (double) longest;
}

/*
 * shape_compatibility(in_a, out_a, in_b, out_b)
 *   = (similarity(in_a, in_b) + similarity(out_a, out_b)) / 2
 * 1.0 for an exact match of both shapes, 0.0 when no dimension lines up.
 */
PG_FUNCTION_INFO_V1(registry_shape_compatibility);
Datum
registry_shape_compatibility(PG_FUNCTION_ARGS)
{
	int			n_ia,
				n_oa,
				n_ib,
				n_ob;
	int32	   *ia = ShapeElements(PG_GETARG_ARRAYTYPE_P(0), "input shape a", &n_ia);
	int32	   *oa = ShapeElements(PG_GETARG_ARRAYTYPE_P(1), "output shape a", &n_oa);
	int32	   *ib = ShapeElements(PG_GETARG_ARRAYTYPE_P(2), "input shape b", &n_ib);
	int32	   *ob = ShapeElements(PG_GETARG_ARRAYTYPE_P(3), "output shape b", &n_ob);

	PG_RETURN_FLOAT8((ShapeSimilarity(ia, n_ia, ib, n_ib) +
					  ShapeSimilarity(oa, n_oa, ob, n_ob)) / 2.0);
}

/*
 * meets_sla(p99, accuracy, max_latency_ms, min_accuracy)
 *   = p99 <= max_latency_ms AND accuracy >= min_accuracy   (the seed's rule)
 */
PG_FUNCTION_INFO_V1(registry_meets_sla);
Datum
registry_meets_sla(PG_FUNCTION_ARGS)
{
	double		p99 = PG_GETARG_FLOAT8(0);
	double		accuracy = PG_GETARG_FLOAT8(1);
	double		max_latency = PG_GETARG_FLOAT8(2);
	double		min_accuracy = PG_GETARG_FLOAT8(3);

	CheckNonNegative(p99, "p99 latency");
	CheckAccuracy(accuracy, "accuracy");
	if (isnan(max_latency) || max_latency < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("maximum latency must not be negative or NaN, got \"%g\"", max_latency)));
	CheckAccuracy(min_accuracy, "minimum accuracy");

	PG_RETURN_BOOL(p99 <= max_latency && accuracy >= min_accuracy);
}

/*
 * rollback_priority: how urgently a version should be rolled back to a
 * baseline, from the seed's three factors, each counted only when it got
 * worse than the baseline:
 *
 *   errors   = max(0, errors_cur - errors_base)                 (count)
 *   latency  = max(0, p99_cur - p99_base) / max(p99_base, 1 ms) (relative)
 *   accuracy = max(0, acc_base - acc_cur)                       (fraction)
 *   priority = w_err * errors + w_lat * latency + w_acc * accuracy
 *
 * Defaults w_err = 1, w_lat = 1, w_acc = 10: one new error, a doubled p99
 * and a ten-point accuracy drop weigh the same. A baseline p99 below 1 ms
 * counts as 1 ms so that microseconds of jitter on a very fast model do not
 * dominate the score. 0 means no regression.
 */
PG_FUNCTION_INFO_V1(registry_rollback_priority);
Datum
registry_rollback_priority(PG_FUNCTION_ARGS)
{
	double		cur_p99 = PG_GETARG_FLOAT8(0);
	double		cur_acc = PG_GETARG_FLOAT8(1);
	int32		cur_err = PG_GETARG_INT32(2);
	double		base_p99 = PG_GETARG_FLOAT8(3);
	double		base_acc = PG_GETARG_FLOAT8(4);
	int32		base_err = PG_GETARG_INT32(5);
	double		w_err = PG_GETARG_FLOAT8(6);
	double		w_lat = PG_GETARG_FLOAT8(7);
	double		w_acc = PG_GETARG_FLOAT8(8);
	double		errors,
				latency,
				accuracy,
				result;

	CheckNonNegative(cur_p99, "current p99 latency");
	CheckAccuracy(cur_acc, "current accuracy");
	CheckNonNegative(base_p99, "baseline p99 latency");
	CheckAccuracy(base_acc, "baseline accuracy");
	if (cur_err < 0 || base_err < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("error count must not be negative, got \"%d\"",
						cur_err < 0 ? cur_err : base_err)));
	CheckNonNegative(w_err, "error weight");
	CheckNonNegative(w_lat, "latency weight");
	CheckNonNegative(w_acc, "accuracy weight");

	errors = Max(0, (double) cur_err - (double) base_err);
	latency = Max(0.0, cur_p99 - base_p99) / Max(base_p99, 1.0);
	accuracy = Max(0.0, base_acc - cur_acc);
	result = w_err * errors + w_lat * latency + w_acc * accuracy;
	if (isinf(result))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("rollback priority overflows double precision")));
	PG_RETURN_FLOAT8(result);
}

/*
 * Nearest-rank percentile of n finite values (sorted in place):
 *   rank = ceil(p / 100 * n), at least 1;  result = sorted[rank - 1]
 * i.e. the smallest value such that at least p % of the values are <= it
 * (the same value as percentile_disc(p / 100)). For integral p the rank is
 * exact: p * n is an exact integer in double, and a non-integral quotient of
 * two integers by 100 is at least 0.01 away from the next integer.
 */
double
RegistryPercentile(double *values, int n, double p)
{
	double		rank;
	int			r;

	Assert(n > 0);
	qsort(values, n, sizeof(double), CompareFloat8);
	rank = ceil(p * (double) n / 100.0);
	r = (int) Max(1.0, Min(rank, (double) n));
	return values[r - 1];
}

/*
 * Latencies of an array argument: one-dimensional, non-empty, finite, >= 0.
 * Returns a palloc'd copy the caller may sort.
 */
static double *
LatencyValues(ArrayType *arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	double	   *values;
	int			i;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("latencies must be a one-dimensional array, got %d dimensions",
						ARR_NDIM(arr))));
	deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, n);
	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("latencies must not be empty"),
				 errhint("Pass at least one measured latency in milliseconds.")));
	values = palloc(sizeof(double) * *n);
	for (i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("latencies must not contain NULL (element %d)", i + 1)));
		values[i] = DatumGetFloat8(elems[i]);
		if (isnan(values[i]) || isinf(values[i]) || values[i] < 0.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("latency must be a finite number >= 0, got \"%g\" (element %d)",
							values[i], i + 1)));
	}
	return values;
}

PG_FUNCTION_INFO_V1(registry_latency_percentile);
Datum
registry_latency_percentile(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	double		p = PG_GETARG_FLOAT8(1);
	double	   *values;
	int			n;

	if (isnan(p) || p < 0.0 || p > 100.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("percentile must be between 0 and 100, got \"%g\"", p)));
	values = LatencyValues(arr, &n);
	PG_RETURN_FLOAT8(RegistryPercentile(values, n, p));
}

/*
 * _check_shape(shape, what): true for a valid shape, else an error naming
 * it. Used by tforge.model_versions' CHECK constraints so a direct INSERT or
 * UPDATE gets the same 22023 message as register_model.
 */
PG_FUNCTION_INFO_V1(registry_check_shape);
Datum
registry_check_shape(PG_FUNCTION_ARGS)
{
	char	   *what = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int			n;

	(void) ShapeElements(PG_GETARG_ARRAYTYPE_P(0), what, &n);
	PG_RETURN_BOOL(true);
}
