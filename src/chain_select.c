/*
 * chain_select.c: which checkpoints to keep and which to restore (issue 14).
 *
 *   is_gc_eligible      the GC rule for one checkpoint (checkpoint_gc calls
 *                       it for every live checkpoint of a run)
 *   selection_score     the order of restore points
 *   find_restore_point  the best restorable checkpoint of a run, by that
 *                       order, walking chains with chain.c's ChainWalker
 *
 * find_restore_point reads the run newest first from checkpoints_run_idx
 * and stops at the first candidate nothing later can beat; whether a chain
 * is restorable is remembered per row version, so every checkpoint of the
 * run is probed at most once however many candidates share it.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "chain.h"

/* ---- the GC rule ----------------------------------------------------------- */

/* A field of a composite argument; *isnull tells whether it is NULL. */
static Datum
Field(HeapTupleHeader row, const char *name, bool *isnull)
{
	return GetAttributeByName(row, name, isnull);
}

/* A field that must not be NULL (22004 naming it). */
static Datum
RequiredField(HeapTupleHeader row, const char *what, const char *name)
{
	bool		isnull;
	Datum		d = Field(row, name, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s.%s must not be NULL", what, name)));
	return d;
}

static void
CheckFinite(TimestampTz t, const char *name)
{
	if (TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite timestamp", name)));
}

/*
 * tforge.is_gc_eligible(checkpoint, policy, is_latest, is_best, newest_rank, at)
 *
 * The rule of issue 14 for one checkpoint. Never eligible: a deleted one
 * (already gone) and a protected one: the latest complete checkpoint, one of
 * the keep_best_n best, one whose step is a multiple of keep_every_n_steps
 * (any state), one still creating. Any other is eligible when
 *   at - created_at > max_age           (elapsed time, interval comparison)
 * or
 *   newest_rank > max_checkpoints_per_run
 * where newest_rank numbers the run's non-deleted checkpoints from 1, newest
 * first by (step, created_at, checkpoint_id). NULL limits do not apply.
 */
PG_FUNCTION_INFO_V1(chain_is_gc_eligible);
Datum
chain_is_gc_eligible(PG_FUNCTION_ARGS)
{
	HeapTupleHeader c = PG_GETARG_HEAPTUPLEHEADER(0);
	HeapTupleHeader p = PG_GETARG_HEAPTUPLEHEADER(1);
	bool		is_latest = PG_GETARG_BOOL(2);
	bool		is_best = PG_GETARG_BOOL(3);
	int64		rank = PG_GETARG_INT64(4);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(5);
	int			state = CheckpointStateIndex(DatumGetObjectId(RequiredField(c, "checkpoint", "state")));
	int64		step = DatumGetInt64(RequiredField(c, "checkpoint", "step"));
	bool		isnull;
	Datum		every;
	Datum		max_age;
	Datum		max_n;

	if (rank < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("newest_rank must be at least 1, got " INT64_FORMAT, rank)));
	CheckFinite(at, "at");

	if (state == CKPT_DELETED)
		PG_RETURN_BOOL(false);
	if (is_latest || is_best || state == CKPT_CREATING)
		PG_RETURN_BOOL(false);
	every = Field(p, "keep_every_n_steps", &isnull);
	if (!isnull)
	{
		int32		n = DatumGetInt32(every);

		if (n <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("keep_every_n_steps must be positive, got %d", n)));
		if (step % n == 0)
			PG_RETURN_BOOL(false);
	}

	max_age = Field(p, "max_age", &isnull);
	if (!isnull)
	{
		TimestampTz created = DatumGetTimestampTz(RequiredField(c, "checkpoint", "created_at"));
		Datum		elapsed;

		CheckFinite(created, "checkpoint.created_at");
		elapsed = DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(at),
									  TimestampTzGetDatum(created));
		if (DatumGetBool(DirectFunctionCall2(interval_gt, elapsed, max_age)))
			PG_RETURN_BOOL(true);
	}
	max_n = Field(p, "max_checkpoints_per_run", &isnull);
	if (!isnull && rank > (int64) DatumGetInt32(max_n))
		PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}

/* ---- the score of a restore point ------------------------------------------ */

/* What orders restore points, most significant first. */
typedef struct ScoreKey
{
	int			tier;			/* 1: a full checkpoint when full ones are preferred */
	int64		step;
	TimestampTz created;
	int32		length;			/* chain length: shorter is better */
} ScoreKey;

/* > 0 when a is the better restore point. */
static int
ScoreCompare(const ScoreKey *a, const ScoreKey *b)
{
	if (a->tier != b->tier)
		return a->tier > b->tier ? 1 : -1;
	if (a->step != b->step)
		return a->step > b->step ? 1 : -1;
	if (a->created != b->created)
		return a->created > b->created ? 1 : -1;
	if (a->length != b->length)
		return a->length < b->length ? 1 : -1;
	return 0;
}

/*
 * The key as one exact number, so that ORDER BY selection_score(...) DESC is
 * the order above:
 *   tier * 10^49 + step * 10^30 + (created_at_us + 10^18) * 10^10 + (10^10 - length)
 * created_at_us is microseconds since 2000-01-01 00:00 UTC. Each term has
 * its own digits: step < 10^19; created_at_us + 10^18 lies in
 * [0.78 * 10^18, 1.03 * 10^19) over PostgreSQL's timestamp range;
 * 10^10 - length lies in (0, 10^10) for lengths 1 .. 2^31 - 1.
 */
static Datum
ScoreNumeric(const ScoreKey *k)
{
	char		buf[64];
	/* created >= -2.2 * 10^17 over PostgreSQL's range: no wrap below zero */
	uint64		t = (uint64) k->created + UINT64CONST(1000000000000000000);
	uint64		hi = t / UINT64CONST(10000000000);
	uint64		lo = t % UINT64CONST(10000000000);

	/* tier, step in 19 digits, time in 20 digits (as 10 + 10), length term in 10 */
	snprintf(buf, sizeof(buf), "%d%019lld%010llu%010llu%010lld",
			 k->tier, (long long) k->step, (unsigned long long) hi, (unsigned long long) lo,
			 (long long) (INT64CONST(10000000000) - k->length));
	return DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* Validated key of a checkpoint (22023 for values the number cannot hold). */
static ScoreKey
MakeScoreKey(int type, int64 step, TimestampTz created, int32 length, bool prefer_full)
{
	ScoreKey	k;

	if (step < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("step must not be negative, got " INT64_FORMAT, step)));
	if (length < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("chain_length must be at least 1, got %d", length)));
	CheckFinite(created, "created_at");
	k.tier = (prefer_full && type == CKPT_FULL) ? 1 : 0;
	k.step = step;
	k.created = created;
	k.length = length;
	return k;
}

/* tforge.selection_score(checkpoint, chain_length, prefer_full) */
PG_FUNCTION_INFO_V1(chain_selection_score);
Datum
chain_selection_score(PG_FUNCTION_ARGS)
{
	HeapTupleHeader c = PG_GETARG_HEAPTUPLEHEADER(0);
	int32		length = PG_GETARG_INT32(1);
	bool		prefer_full = PG_GETARG_BOOL(2);
	int			type = CheckpointTypeIndex(DatumGetObjectId(RequiredField(c, "checkpoint", "checkpoint_type")));
	int64		step = DatumGetInt64(RequiredField(c, "checkpoint", "step"));
	TimestampTz created = DatumGetTimestampTz(RequiredField(c, "checkpoint", "created_at"));
	ScoreKey	k = MakeScoreKey(type, step, created, length, prefer_full);

	PG_RETURN_DATUM(ScoreNumeric(&k));
}

/* ---- find_restore_point --------------------------------------------------- */

/* What a walk learnt about one row version. */
typedef struct Restorability
{
	ItemPointerData tid;		/* hash key */
	char		status;			/* 0 on the current walk, 1 restorable, 2 not */
	int32		length;			/* chain length when restorable */
} Restorability;

/*
 * Whether link's whole chain is restorable: every link complete (or, without
 * require_complete, complete or creating), no parent missing, no cycle.
 * Sets *length to its chain length when it is.
 */
static bool
Restorable(ChainWalker *w, HTAB *memo, const ChainLink *link, bool require_complete,
		   int32 *length)
{
	ChainLink	cur = *link;
	ItemPointerData *path;
	int			cap = 16;
	int			n = 0;
	bool		ok;
	int32		base = 0;
	int			i;

	path = palloc(cap * sizeof(ItemPointerData));
	for (;;)
	{
		bool		found;
		Restorability *e = hash_search(memo, &cur.tid, HASH_ENTER, &found);

		if (found)
		{
			/* status 0: the walk came back to itself, a cycle */
			ok = e->status == 1;
			base = ok ? e->length : 0;
			break;
		}
		e->status = 0;
		if (n == cap)
		{
			cap *= 2;
			path = repalloc(path, cap * sizeof(ItemPointerData));
		}
		path[n++] = cur.tid;
		if (!(cur.state == CKPT_COMPLETE || (!require_complete && cur.state == CKPT_CREATING)))
		{
			ok = false;
			break;
		}
		if (cur.parent == NULL)
		{
			ok = true;
			break;
		}
		if (!ChainFetch(w, cur.parent, &cur))
		{
			ok = false;
			break;
		}
	}
	for (i = 0; i < n; i++)
	{
		Restorability *e = hash_search(memo, &path[i], HASH_FIND, NULL);

		Assert(e != NULL);
		e->status = ok ? 1 : 2;
		e->length = base + (n - i);
	}
	pfree(path);
	*length = ok ? base + n : 0;
	return ok;
}

PG_FUNCTION_INFO_V1(chain_find_restore_point);
Datum
chain_find_restore_point(PG_FUNCTION_ARGS)
{
	text	   *run;
	bool		has_max_epoch = !PG_ARGISNULL(1);
	int32		max_epoch = has_max_epoch ? PG_GETARG_INT32(1) : 0;
	bool		has_max_step = !PG_ARGISNULL(2);
	int64		max_step = has_max_step ? PG_GETARG_INT64(2) : 0;
	bool		require_complete;
	bool		prefer_full;
	ChainWalker w;
	Relation	runidx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData keys[2];
	HTAB	   *memo;
	MemoryContext rowcxt;
	MemoryContext old;
	bool		have_best = false;
	ScoreKey	best = {0};
	Datum		result = (Datum) 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL",
						PG_ARGISNULL(0) ? "training_run_id" :
						PG_ARGISNULL(3) ? "require_complete" : "prefer_full")));
	run = PG_GETARG_TEXT_PP(0);
	require_complete = PG_GETARG_BOOL(3);
	prefer_full = PG_GETARG_BOOL(4);

	ChainWalkerBegin(&w, false, text_to_cstring(run));
	runidx = CheckpointsIndexOpen(&w, "checkpoints_run_idx");
	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   runidx->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(run));
	if (has_max_step)
		ScanKeyEntryInitialize(&keys[1], 0, 2, BTLessEqualStrategyNumber, InvalidOid,
							   InvalidOid, F_INT8LE, Int64GetDatum(max_step));
	scan = index_beginscan(w.rel, runidx, GetActiveSnapshot(), has_max_step ? 2 : 1, 0);
	index_rescan(scan, keys, has_max_step ? 2 : 1, NULL, 0);
	slot = table_slot_create(w.rel, NULL);
	memo = TidSetCreate("tforge restore point", sizeof(Restorability));
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "tforge restore candidate",
								   ALLOCSET_DEFAULT_SIZES);

	/* Newest first: (step, created_at, checkpoint_id) descending. */
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		ChainLink	cand;
		ScoreKey	key;
		int32		length;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(rowcxt);
		ChainLinkFromSlot(&w, slot, &cand);
		key.tier = (prefer_full && cand.type == CKPT_FULL) ? 1 : 0;
		key.step = cand.step;
		key.created = cand.created;
		key.length = 1;
		if (have_best && (key.step != best.step || key.created != best.created))
		{
			/*
			 * Every later row is older: only a higher tier can still win, and
			 * nothing is above a preferred full checkpoint.
			 */
			if (best.tier == 1 || !prefer_full)
			{
				MemoryContextSwitchTo(old);
				break;
			}
			if (key.tier <= best.tier)
			{
				MemoryContextSwitchTo(old);
				MemoryContextReset(rowcxt);
				continue;
			}
		}
		if ((has_max_epoch && cand.epoch > max_epoch) ||
			(have_best && key.tier < best.tier) ||
			!Restorable(&w, memo, &cand, require_complete, &length))
		{
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
			continue;
		}
		key = MakeScoreKey(cand.type, cand.step, cand.created, length, prefer_full);
		MemoryContextSwitchTo(old);
		/* Equal keys: the first row read, the highest checkpoint_id, stays. */
		if (!have_best || ScoreCompare(&key, &best) > 0)
		{
			best = key;
			have_best = true;
			result = CheckpointRowDatum(&w, slot);
		}
		MemoryContextReset(rowcxt);
	}

	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	index_close(runidx, NoLock);
	ChainWalkerEnd(&w);
	if (!have_best)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
