/*
 * semver_ops.c: precedence, hashing and sort support for tforge.semver.
 *
 * Every operation works on the order-preserving key (semver.h): precedence
 * is memcmp() with "a proper prefix is lower", equality is byte equality of
 * the keys, and the hash is hash_any() of the key. Build metadata is outside
 * the key, so 1.0.0+a = 1.0.0+b and both hash alike, which is what lets the
 * hash opclass and hashed GROUP BY agree with "=".
 *
 * The abbreviated key used by sorts and index builds is the key's first
 * SIZEOF_DATUM bytes read big-endian and zero padded: zero padding keeps the
 * prefix rule (a shorter key pads with 0x00, below every byte that could
 * follow), so comparing abbreviations as unsigned integers never contradicts
 * the full comparison. A plain release such as 12.4.31 fits entirely.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/hyperloglog.h"
#include "utils/sortsupport.h"

#include "semver.h"

/* Precedence of two semvers: <0, 0 or >0. */
static inline int
KeyCompare(const struct varlena *a, const struct varlena *b)
{
	SemverParts pa;
	SemverParts pb;
	int			cmp;

	SemverGetParts(a, &pa);
	SemverGetParts(b, &pb);
	cmp = memcmp(pa.key, pb.key, Min(pa.keylen, pb.keylen));
	if (cmp != 0)
		return cmp;
	return (pa.keylen > pb.keylen) - (pa.keylen < pb.keylen);
}

/* Compare two semver arguments, freeing detoasted copies (index scans). */
static int
ArgCompare(FunctionCallInfo fcinfo)
{
	struct varlena *a = PG_GETARG_VARLENA_PP(0);
	struct varlena *b = PG_GETARG_VARLENA_PP(1);
	int			cmp = KeyCompare(a, b);

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return cmp;
}

PG_FUNCTION_INFO_V1(semver_cmp);
Datum
semver_cmp(PG_FUNCTION_ARGS)
{
	int			cmp = ArgCompare(fcinfo);

	PG_RETURN_INT32((cmp > 0) - (cmp < 0));
}

PG_FUNCTION_INFO_V1(semver_eq);
Datum
semver_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ArgCompare(fcinfo) == 0);
}

PG_FUNCTION_INFO_V1(semver_ne);
Datum
semver_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ArgCompare(fcinfo) != 0);
}

PG_FUNCTION_INFO_V1(semver_lt);
Datum
semver_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ArgCompare(fcinfo) < 0);
}

PG_FUNCTION_INFO_V1(semver_le);
Datum
semver_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ArgCompare(fcinfo) <= 0);
}

PG_FUNCTION_INFO_V1(semver_gt);
Datum
semver_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ArgCompare(fcinfo) > 0);
}

PG_FUNCTION_INFO_V1(semver_ge);
Datum
semver_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ArgCompare(fcinfo) >= 0);
}

/* The higher of two versions; on equal precedence the first argument. */
PG_FUNCTION_INFO_V1(semver_larger);
Datum
semver_larger(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VARLENA_PP(0);
	struct varlena *b = PG_GETARG_VARLENA_PP(1);

	PG_RETURN_POINTER(KeyCompare(a, b) >= 0 ? a : b);
}

/* The lower of two versions; on equal precedence the first argument. */
PG_FUNCTION_INFO_V1(semver_smaller);
Datum
semver_smaller(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VARLENA_PP(0);
	struct varlena *b = PG_GETARG_VARLENA_PP(1);

	PG_RETURN_POINTER(KeyCompare(a, b) <= 0 ? a : b);
}

PG_FUNCTION_INFO_V1(semver_hash);
Datum
semver_hash(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	SemverParts parts;
	Datum		h;

	SemverGetParts(v, &parts);
	h = hash_any(parts.key, parts.keylen);
	PG_FREE_IF_COPY(v, 0);
	return h;
}

PG_FUNCTION_INFO_V1(semver_hash_extended);
Datum
semver_hash_extended(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	uint64		seed = (uint64) PG_GETARG_INT64(1);
	SemverParts parts;
	Datum		h;

	SemverGetParts(v, &parts);
	h = hash_any_extended(parts.key, parts.keylen, seed);
	PG_FREE_IF_COPY(v, 0);
	return h;
}

/* sort support: state of the abbreviation-abort heuristic */
typedef struct SemverSortState
{
	int64		input_count;	/* values abbreviated so far */
	bool		estimating;		/* still watching cardinality */
	hyperLogLogState abbr_card; /* distinct abbreviations seen */
} SemverSortState;

/* Full comparison of two Datums, for sorts (detoasts packed values only). */
static int
SemverFastCmp(Datum x, Datum y, SortSupport ssup)
{
	struct varlena *a = (struct varlena *) DatumGetPointer(x);
	struct varlena *b = (struct varlena *) DatumGetPointer(y);
	struct varlena *da = pg_detoast_datum_packed(a);
	struct varlena *db = pg_detoast_datum_packed(b);
	int			cmp = KeyCompare(da, db);

	if (da != a)
		pfree(da);
	if (db != b)
		pfree(db);
	return cmp;
}

/* The key's first SIZEOF_DATUM bytes, big-endian, zero padded. */
static Datum
SemverAbbrevConvert(Datum original, SortSupport ssup)
{
	SemverSortState *state = (SemverSortState *) ssup->ssup_extra;
	struct varlena *v = (struct varlena *) DatumGetPointer(original);
	struct varlena *dv = pg_detoast_datum_packed(v);
	SemverParts parts;
	Datum		res = 0;
	int			i;
	int			n;

	SemverGetParts(dv, &parts);
	n = Min(parts.keylen, SIZEOF_DATUM);
	for (i = 0; i < n; i++)
		res |= ((Datum) parts.key[i]) << (8 * (SIZEOF_DATUM - 1 - i));

	if (state->estimating)
	{
		uint32		h;

#if SIZEOF_DATUM == 8
		h = DatumGetUInt32(hash_uint32((uint32) (res ^ (res >> 32))));
#else
		h = DatumGetUInt32(hash_uint32((uint32) res));
#endif
		addHyperLogLog(&state->abbr_card, h);
	}
	state->input_count++;

	if (dv != v)
		pfree(dv);
	return res;
}

/*
 * Abandon abbreviation when nearly every abbreviation is the same (say a
 * column of pre-releases of one core with long common prefixes); the rule
 * is the one core uses for uuid: give up below one distinct value in 2,000.
 */
static bool
SemverAbbrevAbort(int memtupcount, SortSupport ssup)
{
	SemverSortState *state = (SemverSortState *) ssup->ssup_extra;
	double		abbr_card;

	if (memtupcount < 10000 || state->input_count < 10000 || !state->estimating)
		return false;
	abbr_card = estimateHyperLogLog(&state->abbr_card);
	if (abbr_card > 100000.0)
	{
		state->estimating = false;
		return false;
	}
	if (abbr_card < state->input_count / 2000.0 + 0.5)
		return true;
	return false;
}

PG_FUNCTION_INFO_V1(semver_sortsupport);
Datum
semver_sortsupport(PG_FUNCTION_ARGS)
{
	SortSupport ssup = (SortSupport) PG_GETARG_POINTER(0);

	if (ssup->abbreviate)
	{
		MemoryContext old = MemoryContextSwitchTo(ssup->ssup_cxt);
		SemverSortState *state = palloc(sizeof(SemverSortState));

		state->input_count = 0;
		state->estimating = true;
		initHyperLogLog(&state->abbr_card, 10);
		MemoryContextSwitchTo(old);

		ssup->ssup_extra = state;
		ssup->comparator = ssup_datum_unsigned_cmp;
		ssup->abbrev_converter = SemverAbbrevConvert;
		ssup->abbrev_abort = SemverAbbrevAbort;
		ssup->abbrev_full_comparator = SemverFastCmp;
	}
	else
		ssup->comparator = SemverFastCmp;
	PG_RETURN_VOID();
}
