/*
 * semver_ops.c: precedence, hashing and sort support for tforge.semver.
 *
 * Every operation works on the order-preserving key (semver.h): precedence
 * is memcmp() with "a proper prefix is lower", equality is byte equality of
 * the keys, and the hash is hash_any() of the key. Build metadata is outside
 * the key, so 1.0.0+a = 1.0.0+b and both hash alike, which is what lets the
 * hash opclass and hashed GROUP BY agree with "=".
 *
 * Sorts and index builds use abbreviated keys: the key re-encoded densely as
 * bits (SemverAbbrevConvert) and compared as unsigned integers, so most
 * comparisons never touch the values; equal abbreviations fall back to the
 * byte comparison, which reads the key in place.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/hyperloglog.h"
#include "port/pg_bitutils.h"
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

/*
 * The key of a value as stored: values nearly always arrive in-line (short
 * or 4-byte header; a version long enough to be compressed is rare), so the
 * common case reads the key in place and decodes a one-byte key length
 * inline; anything else is detoasted. Returns the copy to free, or NULL.
 */
static inline struct varlena *
DatumKey(Datum d, const uint8 **key, int *keylen)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);
	SemverParts parts;

	if (!VARATT_IS_EXTENDED(v) || VARATT_IS_SHORT(v))
	{
		const uint8 *p = (const uint8 *) VARDATA_ANY(v);

		if (p[0] < 0x80)
		{
			*key = p + 1;
			*keylen = p[0];
			return NULL;
		}
		SemverGetParts(v, &parts);
		*key = parts.key;
		*keylen = parts.keylen;
		return NULL;
	}
	v = pg_detoast_datum_packed(v);
	SemverGetParts(v, &parts);
	*key = parts.key;
	*keylen = parts.keylen;
	return v;
}

/* Precedence of two semver Datums: <0, 0 or >0. */
static inline int
DatumCompare(Datum x, Datum y)
{
	const uint8 *ka;
	const uint8 *kb;
	int			la;
	int			lb;
	struct varlena *fa = DatumKey(x, &ka, &la);
	struct varlena *fb = DatumKey(y, &kb, &lb);
	int			cmp = memcmp(ka, kb, Min(la, lb));

	if (cmp == 0)
		cmp = (la > lb) - (la < lb);
	if (fa)
		pfree(fa);
	if (fb)
		pfree(fb);
	return cmp;
}

/* Full comparison for sorts and index builds. */
static int
SemverFastCmp(Datum x, Datum y, SortSupport ssup)
{
	return DatumCompare(x, y);
}

/* Compare the two semver arguments of an operator or semver_cmp. */
static inline int
ArgCompare(FunctionCallInfo fcinfo)
{
	return DatumCompare(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1));
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
	const uint8 *key;
	int			keylen;
	struct varlena *copy = DatumKey(PG_GETARG_DATUM(0), &key, &keylen);
	Datum		h = hash_any(key, keylen);

	if (copy)
		pfree(copy);
	return h;
}

PG_FUNCTION_INFO_V1(semver_hash_extended);
Datum
semver_hash_extended(PG_FUNCTION_ARGS)
{
	const uint8 *key;
	int			keylen;
	struct varlena *copy = DatumKey(PG_GETARG_DATUM(0), &key, &keylen);
	Datum		h = hash_any_extended(key, keylen, (uint64) PG_GETARG_INT64(1));

	if (copy)
		pfree(copy);
	return h;
}

/* sort support: state of the abbreviation-abort heuristic */
typedef struct SemverSortState
{
	int64		input_count;	/* values abbreviated so far */
	bool		estimating;		/* still watching cardinality */
	hyperLogLogState abbr_card; /* distinct abbreviations seen */
} SemverSortState;

/* bit writer for abbreviated keys: MSB first, silently truncated at 64 */
typedef struct AbbrevBits
{
	uint64		acc;
	int			used;
} AbbrevBits;

/* append the low n (0..64) bits of v */
static inline void
PutBits(AbbrevBits *b, uint64 v, int n)
{
	int			room = 64 - b->used;

	if (n > room)
	{
		v >>= (n - room);
		n = room;
	}
	if (n == 0)
		return;
	if (n < 64)
		v &= (UINT64CONST(1) << n) - 1;
	b->acc |= v << (room - n);
	b->used += n;
}

/*
 * Number code: L = bit length of n as L ones and a zero, then n's bits below
 * its top bit. A longer code prefix of ones means a larger number, so the
 * code orders numbers and is prefix-free; 0..7 take at most 6 bits.
 */
static inline void
PutNumber(AbbrevBits *b, uint64 n)
{
	int			len = n ? pg_leftmost_one_pos64(n) + 1 : 0;

	if (len < 63)
		PutBits(b, ((UINT64CONST(1) << len) - 1) << 1, len + 1);
	else
		PutBits(b, ~UINT64CONST(0), 64);
	if (len > 1)
		PutBits(b, n, len - 1);
}

/* 6-bit code of an identifier character, in ASCII order; 0 ends an identifier */
static inline uint64
CharCode(uint8 c)
{
	if (c == '-')
		return 1;
	if (c <= '9')
		return 2 + (c - '0');
	if (c <= 'Z')
		return 12 + (c - 'A');
	return 38 + (c - 'a');
}

/*
 * The abbreviated key: the order-preserving key re-encoded densely as bits
 * and cut to the Datum's width. Numbers use PutNumber; after the core, 2 bits
 * say what follows (01 numeric identifier, 10 alphanumeric identifier, 11
 * release; 00 is the zero padding after the last identifier, lowest as
 * "fewer identifiers" must be); characters take 6 bits, then a 0 code. Each
 * choice point is ordered as in the byte key, so unsigned comparison of two
 * abbreviations never contradicts the full comparison. 3.7.12-alpha.5 takes
 * 66 bits, so only alpha.4 .. alpha.7 of that core share an abbreviation.
 */
static uint64
SemverAbbrev(const uint8 *key, int keylen)
{
	const uint8 *p = key;
	const uint8 *end = key + keylen;
	AbbrevBits	b = {0, 0};
	int			i;

	for (i = 0; i < 3 && b.used < 64; i++)
	{
		uint64		n = 0;

		p += SemverDecodeNumber(p, end, &n);
		PutNumber(&b, n);
	}
	while (p < end && b.used < 64)
	{
		uint8		tag = *p++;

		if (tag == SEMVER_TAG_RELEASE)
			PutBits(&b, 3, 2);
		else if (tag == SEMVER_TAG_NUMERIC)
		{
			uint64		n = 0;

			PutBits(&b, 1, 2);
			p += SemverDecodeNumber(p, end, &n);
			PutNumber(&b, n);
		}
		else
		{
			PutBits(&b, 2, 2);
			while (p < end && *p > SEMVER_TAG_RELEASE && b.used < 64)
				PutBits(&b, CharCode(*p++), 6);
			PutBits(&b, 0, 6);
			while (p < end && *p > SEMVER_TAG_RELEASE)
				p++;
		}
	}
	return b.acc;
}

/* abbrev_converter: SemverAbbrev cut to the Datum's width */
static Datum
SemverAbbrevConvert(Datum original, SortSupport ssup)
{
	SemverSortState *state = (SemverSortState *) ssup->ssup_extra;
	const uint8 *key;
	int			keylen;
	struct varlena *copy = DatumKey(original, &key, &keylen);
	uint64		bits = SemverAbbrev(key, keylen);
	Datum		res;

#if SIZEOF_DATUM == 8
	res = (Datum) bits;
#else
	res = (Datum) (bits >> 32);
#endif

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

	if (copy)
		pfree(copy);
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

/*
 * subtype_diff of tforge.semver_range, for GiST: a - b measured on the
 * 64-bit abbreviation, which never contradicts precedence: never negative
 * when a is higher, never positive when a is lower, zero for versions it
 * cannot tell apart (long common prefixes; float8 rounding is monotone).
 */
PG_FUNCTION_INFO_V1(semver_range_diff);
Datum
semver_range_diff(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VARLENA_PP(0);
	struct varlena *b = PG_GETARG_VARLENA_PP(1);
	SemverParts pa;
	SemverParts pb;

	SemverGetParts(a, &pa);
	SemverGetParts(b, &pb);
	PG_RETURN_FLOAT8((float8) SemverAbbrev(pa.key, pa.keylen) -
					 (float8) SemverAbbrev(pb.key, pb.keylen));
}
