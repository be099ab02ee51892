/*
 * pool_rules.c: the row rules of tforge.gpu_blocks (sql/install/60_gpu.sql)
 * as C functions, for its CHECK constraints and its exclusion constraint.
 *
 * Why C: PostgreSQL rebuilds the expressions of a table's CHECK constraints
 * and index expressions for every statement that writes the table
 * (ExecRelCheck reparses each constraint's stored node tree, FormIndexDatum
 * compiles each index expression), and every allocation and free writes
 * gpu_blocks. Written as SQL operators the two CHECKs were some thirty
 * nodes to parse per statement, and the exclusion constraint's device
 * range went through the range type's constructor, a function PostgreSQL
 * finds by a linear search of its builtin function names each time. A call
 * of an extension C function is found through a hash and is one node, so
 * each rule below costs a small constant per statement. The rules
 * themselves are unchanged (each function says what it checks), and, being
 * constraints, they hold for a direct INSERT or UPDATE as well.
 *
 * All three are IMMUTABLE and PARALLEL SAFE and accept any input: a
 * constraint must not fail on a row, only reject it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_enum.h"
#include "fmgr.h"
#include "utils/rangetypes.h"
#include "utils/syscache.h"

/*
 * tforge._gpu_device_span(device_id text) -> tforge.gpu_device_span: the
 * one-value range [device_id, device_id]. Two such ranges overlap exactly
 * when the ids are equal (the range type's collation is "C": byte order).
 */
PG_FUNCTION_INFO_V1(tforge_gpu_device_span);
Datum
tforge_gpu_device_span(PG_FUNCTION_ARGS)
{
	Oid			rngtypid = get_fn_expr_rettype(fcinfo->flinfo);
	TypeCacheEntry *typcache;
	RangeBound	lower;
	RangeBound	upper;

	if (!OidIsValid(rngtypid))
		elog(ERROR, "tforge._gpu_device_span: could not determine its result type");
	typcache = range_get_typcache(fcinfo, rngtypid);
	lower.val = PG_GETARG_DATUM(0);
	lower.infinite = false;
	lower.inclusive = true;
	lower.lower = true;
	upper.val = PG_GETARG_DATUM(0);
	upper.infinite = false;
	upper.inclusive = true;
	upper.lower = false;
	PG_RETURN_RANGE_P(make_range(typcache, &lower, &upper, false));
}

/* The OID of the label 'free' of the enum of argument 0, looked up once per call site. */
static Oid
FreeLabel(FunctionCallInfo fcinfo)
{
	Oid		   *cached = (Oid *) fcinfo->flinfo->fn_extra;

	if (cached == NULL)
	{
		Oid			enumtypid = get_fn_expr_argtype(fcinfo->flinfo, 0);
		HeapTuple	tuple;

		if (!OidIsValid(enumtypid))
			elog(ERROR, "tforge._gpu_block_held: could not determine its argument type");
		tuple = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(enumtypid), CStringGetDatum("free"));
		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "tforge.gpu_block_status has no label \"free\"");
		cached = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid));
		*cached = ((Form_pg_enum) GETSTRUCT(tuple))->oid;
		ReleaseSysCache(tuple);
		fcinfo->flinfo->fn_extra = cached;
	}
	return *cached;
}

/*
 * tforge._gpu_block_held(status, tensor_id, alignment) -> boolean, the rule
 * of constraint gpu_blocks_held: a block is free exactly when it holds no
 * tensor and exactly when it has no alignment,
 *   (status = 'free') = (tensor_id IS NULL) AND (status = 'free') = (alignment IS NULL).
 * NULL (the constraint passes; the column is NOT NULL) when status is NULL.
 */
PG_FUNCTION_INFO_V1(tforge_gpu_block_held);
Datum
tforge_gpu_block_held(PG_FUNCTION_ARGS)
{
	bool		free;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	free = PG_GETARG_OID(0) == FreeLabel(fcinfo);
	PG_RETURN_BOOL(free == PG_ARGISNULL(1) && free == PG_ARGISNULL(2));
}

/*
 * tforge._gpu_block_placed(offset_bytes, size_bytes, alignment) -> boolean,
 * the rule of constraint gpu_blocks_placed: a block starts at a
 * non-negative offset, has a positive size, and its alignment, when it has
 * one (a block holding a tensor), is a power of two dividing its offset
 * and its size,
 *   offset_bytes >= 0 AND size_bytes > 0
 *   AND alignment > 0 AND alignment & (alignment - 1) = 0
 *   AND offset_bytes % alignment = 0 AND size_bytes % alignment = 0,
 * where a NULL alignment (a free block) leaves only the first two parts.
 * As SQL's AND: false as soon as a known part is false, else NULL (the
 * constraint passes; the columns are NOT NULL) when a part is unknown.
 */
PG_FUNCTION_INFO_V1(tforge_gpu_block_placed);
Datum
tforge_gpu_block_placed(PG_FUNCTION_ARGS)
{
	bool		unknown = false;
	int64		alignment = 0;

	if (!PG_ARGISNULL(2))
	{
		alignment = PG_GETARG_INT64(2);
		if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
			PG_RETURN_BOOL(false);
	}
	if (PG_ARGISNULL(0))
		unknown = true;
	else if (PG_GETARG_INT64(0) < 0 || (alignment > 0 && PG_GETARG_INT64(0) % alignment != 0))
		PG_RETURN_BOOL(false);
	if (PG_ARGISNULL(1))
		unknown = true;
	else if (PG_GETARG_INT64(1) <= 0 || (alignment > 0 && PG_GETARG_INT64(1) % alignment != 0))
		PG_RETURN_BOOL(false);
	if (unknown)
		PG_RETURN_NULL();
	PG_RETURN_BOOL(true);
}
