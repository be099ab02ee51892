/*
 * claim_typed.c: claim_tasks(..., task_types), a claim of only the listed
 * types, whose cost does not depend on how many tasks of other types are
 * pending.
 *
 * tasks_claim_idx orders every pending task by laxity: a claim of some
 * types that scanned it would step over every task of the other types
 * ahead of its own. tasks_type_claim_idx orders the pending tasks of each
 * type apart, (task_type, laxity_key, priority DESC, submitted_at,
 * task_id), so each type's head is one index probe. The index is the
 * operator's to create (README, "Workers choose what they serve"): every
 * submit would pay for its entry, and every claim and completion for its
 * upkeep, in queues whose workers never name types. Without it a typed
 * claim is the untyped claim's statement with the types as a filter
 * (queue.c), whose cost grows with the other types' backlog ahead.
 *
 * One type: one statement, the untyped claim's with h.task_type = $7 as the
 * index condition.
 *
 * Several types: their heads merged in claim order, without locking any
 * task the claim does not take. Each type's head is read first without a
 * lock (a peek: least pending, available, fitting task of the type, locked
 * by another session or not). Then, repeatedly, the type a with the least
 * head claims, with SKIP LOCKED, its least tasks strictly before the least
 * head b among the other types: every task of another type is at or after
 * b, so whatever this finds precedes everything the other types offer.
 * When it finds fewer than asked (the tasks of a before b are locked, or
 * not there any more), a has nothing more to give before b: its head is
 * read again from b on, and the merge goes on. Each round either claims or
 * moves a type's head past another's, so the merge ends after as many
 * rounds as there are types plus heads passed over (tasks locked by other
 * sessions), whatever the other types' backlog.
 *
 * Statements take their own snapshots, as any claim's statement does: a
 * task committed between the peek and the claim may be passed over by this
 * claim, as one committed after a single claim's snapshot would be.
 *
 * The claim-prefix position (claim_prefix.c) is a position in
 * tasks_claim_idx; typed claims do not start from it, but report what they
 * claimed so that it stays right for the untyped claims of the transaction.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

#include "queue.h"
#include "tforge.h"

/* Whether the operator created tasks_type_claim_idx (claims use it as it is). */
bool
TypedClaimIndex(void)
{
	return OidIsValid(TforgeRelid("tasks_type_claim_idx"));
}

/*
 * A type's head: its key in claim order, (laxity_key, priority DESC,
 * submitted_at, task_id), $8 .. $11 of the statements below.
 */
#define TYPED_ARGTYPES {TIMESTAMPTZOID, RESOURCES_ARG, INT4OID, TEXTOID, FLOAT8OID, INTERVALOID, TEXTOID, \
	TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID, INT8OID}
#define TYPED_NARGS 11

/* The type's tasks strictly before key $8..$11, and strictly after it. */
#define TYPED_BEFORE \
	" AND h.laxity_key <= $8 AND (h.laxity_key < $8 OR h.priority > $9 OR (h.priority = $9 AND" \
	"     (h.submitted_at < $10 OR (h.submitted_at = $10 AND h.task_id < $11))))"
#define TYPED_AFTER \
	" AND h.laxity_key >= $8 AND (h.laxity_key > $8 OR h.priority < $9 OR (h.priority = $9 AND" \
	"     (h.submitted_at > $10 OR (h.submitted_at = $10 AND h.task_id > $11))))"

#define TYPED_WHERE(range) \
	" FROM tforge.tasks h" \
	" WHERE h.status = 'pending' AND h.task_type = $7 AND h.available_at <= $1" CLAIM_FITS range \
	" ORDER BY h.laxity_key, h.priority DESC, h.submitted_at, h.task_id"
#define TYPED_HEAD(range, limit) \
	"SELECT h.task_id" TYPED_WHERE(range) " LIMIT " limit " FOR UPDATE SKIP LOCKED"
#define TYPED_ONE(range, set) \
	"UPDATE tforge.tasks k" set \
	" WHERE k.task_id = (" TYPED_HEAD(range, "1") ")" \
	" RETURNING k"
#define TYPED_BATCH(range, set) \
	"WITH picked AS (" TYPED_HEAD(range, "$3") ")" \
	"UPDATE tforge.tasks k" set \
	"  FROM picked p" \
	" WHERE k.task_id = p.task_id" \
	" RETURNING k"
#define TYPED_PEEK(range) \
	"SELECT h.laxity_key, h.priority, h.submitted_at, h.task_id" TYPED_WHERE(range) " LIMIT 1"

/*
 * [range: 0 from the head, 1 before $8..$11][0 one task, 1 up to $3]
 * [0 a 0.1.0 schema without tokens, 1 with]. One task has a generic plan,
 * a batch a custom one (see claim_batch in queue.c).
 */
#define TYPED_CLAIMS(range) { \
	{{TYPED_ONE(range, CLAIM_SET_010), TYPED_NARGS, TYPED_ARGTYPES}, \
	 {TYPED_ONE(range, CLAIM_SET), TYPED_NARGS, TYPED_ARGTYPES}}, \
	{{TYPED_BATCH(range, CLAIM_SET_010), TYPED_NARGS, TYPED_ARGTYPES, CURSOR_OPT_CUSTOM_PLAN}, \
	 {TYPED_BATCH(range, CLAIM_SET), TYPED_NARGS, TYPED_ARGTYPES, CURSOR_OPT_CUSTOM_PLAN}}}
static QueueStatement typed_claim[2][2][2] = {TYPED_CLAIMS(""), TYPED_CLAIMS(TYPED_BEFORE)};

/* [0 from the head, 1 after $8..$11] */
static QueueStatement typed_peek[2] = {
	{TYPED_PEEK(""), TYPED_NARGS, TYPED_ARGTYPES},
	{TYPED_PEEK(TYPED_AFTER), TYPED_NARGS, TYPED_ARGTYPES}
};

/* One listed type and its head. */
typedef struct TypedHead
{
	Datum		type;
	bool		live;			/* the type has a head (else nothing to claim) */
	Datum		key[4];			/* laxity_key, priority, submitted_at, task_id */
} TypedHead;

/* <0, 0, >0 as head a is before, at or after head b in claim order. */
static int
HeadCmp(const TypedHead *a, const TypedHead *b)
{
	TimestampTz la = DatumGetTimestampTz(a->key[0]), lb = DatumGetTimestampTz(b->key[0]);
	int32		pa = DatumGetInt32(a->key[1]), pb = DatumGetInt32(b->key[1]);
	TimestampTz sa = DatumGetTimestampTz(a->key[2]), sb = DatumGetTimestampTz(b->key[2]);
	int64		ia = DatumGetInt64(a->key[3]), ib = DatumGetInt64(b->key[3]);

	if (la != lb)
		return la < lb ? -1 : 1;
	if (pa != pb)
		return pa > pb ? -1 : 1;	/* priority DESC */
	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (ia != ib)
		return ia < ib ? -1 : 1;
	return 0;
}

/* qsort comparator of two text datums, by their bytes. */
static int
TypeNameCmp(const void *a, const void *b)
{
	text	   *ta = DatumGetTextPP(*(const Datum *) a);
	text	   *tb = DatumGetTextPP(*(const Datum *) b);
	int			la = VARSIZE_ANY_EXHDR(ta);
	int			lb = VARSIZE_ANY_EXHDR(tb);
	int			c = memcmp(VARDATA_ANY(ta), VARDATA_ANY(tb), Min(la, lb));

	return c != 0 ? c : (la > lb) - (la < lb);
}

/* Set v[7..10] ($8 .. $11) to key, or to NULL. */
static void
SetKey(Datum *v, bool *n, const TypedHead *key)
{
	int			i;

	for (i = 0; i < 4; i++)
	{
		v[7 + i] = key != NULL ? key->key[i] : (Datum) 0;
		n[7 + i] = key == NULL;
	}
}

/* Read h's head, after key after when not NULL; false when it has none. */
static bool
Peek(TypedHead *h, const TypedHead *after, Oid resources_type, Datum *v, bool *n)
{
	int			i;

	/* the key's types: timestamptz, int4, timestamptz, int8 */
	static const bool byval[4] = {FLOAT8PASSBYVAL, true, FLOAT8PASSBYVAL, FLOAT8PASSBYVAL};
	static const int16 len[4] = {8, 4, 8, 8};

	v[6] = h->type;
	SetKey(v, n, after);
	h->live = Execute(&typed_peek[after != NULL], resources_type, v, n, 1) == 1;
	for (i = 0; i < 4 && h->live; i++)
	{
		bool		isnull;
		Datum		d = ResultValue(0, i + 1, &isnull);

		if (isnull)
			elog(ERROR, "tforge: a pending task has a NULL claim key");
		h->key[i] = datumCopy(d, byval[i], len[i]);
	}
	ResultRelease();			/* the key is copied out: a claim of many types reads many heads */
	return h->live;
}

/*
 * Claim up to max tasks of h's type, before key before when not NULL; how
 * many. The rows are put into rsinfo when it is not NULL, else they are the
 * last statement's result.
 */
static uint64
ClaimFrom(ReturnSetInfo *rsinfo, const TypedHead *h, const TypedHead *before, int max,
		  Oid resources_type, Datum *v, bool *n, int tokens)
{
	uint64		claimed;

	v[2] = Int32GetDatum(max);
	v[6] = h->type;
	SetKey(v, n, before);
	claimed = Execute(&typed_claim[before != NULL][max > 1][tokens], resources_type, v, n, 0);
	if (claimed > 0)
		ClaimPrefixClaimed(claimed);
	if (rsinfo != NULL)
	{
		EmitClaimed(rsinfo, claimed);
		ResultRelease();
	}
	return claimed;
}

/*
 * Claim up to max tasks of the types in types (NULL elements and repeats
 * are ignored; an array of any shape is read as its elements) into rsinfo (when not NULL; else, max being 1, the claimed
 * row is the last statement's result). args and argnulls are the claim's
 * $1 .. $6 (queue.c). Returns how many were claimed.
 */
uint64
ClaimTyped(ReturnSetInfo *rsinfo, ArrayType *types, int max, Oid resources_type,
		   const Datum *args, const bool *argnulls, int tokens)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	TypedHead  *heads;
	int			nheads = 0;
	Datum		v[TYPED_NARGS];
	bool		n[TYPED_NARGS];
	uint64		total = 0;
	int			i;
	int			j;

	/* the distinct types (sorted by bytes: a long list costs n log n) */
	deconstruct_array(types, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	for (i = 0, j = 0; i < nelems; i++)
		if (!nulls[i])
			elems[j++] = elems[i];
	qsort(elems, j, sizeof(Datum), TypeNameCmp);
	heads = palloc0(sizeof(TypedHead) * Max(j, 1));
	for (i = 0; i < j; i++)
		if (i == 0 || TypeNameCmp(&elems[i - 1], &elems[i]) != 0)
			heads[nheads++].type = elems[i];
	for (i = 0; i < 6; i++)
	{
		v[i] = args[i];
		n[i] = argnulls[i];
	}
	n[6] = false;

	if (nheads == 1)
		return ClaimFrom(rsinfo, &heads[0], NULL, max, resources_type, v, n, tokens);

	for (i = 0; i < nheads; i++)
		(void) Peek(&heads[i], NULL, resources_type, v, n);
	while (total < (uint64) max)
	{
		TypedHead  *a = NULL;
		TypedHead  *b = NULL;

		/* a: the least head; b: the least of the others' */
		for (i = 0; i < nheads; i++)
		{
			if (!heads[i].live)
				continue;
			if (a == NULL || HeadCmp(&heads[i], a) < 0)
			{
				b = a;
				a = &heads[i];
			}
			else if (b == NULL || HeadCmp(&heads[i], b) < 0)
				b = &heads[i];
		}
		if (a == NULL)
			break;
		total += ClaimFrom(rsinfo, a, b, max - (int) total, resources_type, v, n, tokens);
		/* fewer than asked: a has nothing more to give before b (or at all) */
		if (total == (uint64) max || b == NULL)
			break;
		(void) Peek(a, b, resources_type, v, n);
	}
	return total;
}
