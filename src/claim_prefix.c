/*
 * claim_prefix.c: a claim inside a long transaction starts its scan past
 * the tasks that transaction already claimed.
 *
 * A claim updates a task from pending to running; the task's entry in
 * tasks_claim_idx (partial on status = 'pending') stays until a vacuum after
 * the transaction ends, and no scan can mark it dead before then, since the
 * version it points to is still the live one for every other session. The
 * claim scans the index from its head, so the i-th claim of one transaction
 * stepped over the i - 1 entries of the tasks it claimed before: N claims in
 * one transaction cost O(N^2).
 *
 * The verified prefix. After a claim, this backend remembers a position of
 * tasks_claim_idx below which every entry is "own-dead": the last version
 * of its heap-only chain was updated or deleted by this transaction (or one
 * of its subtransactions not aborted). Such an entry reaches no version any
 * snapshot of this transaction can see again, whatever the snapshot, type
 * filter, capacity or lock, so a claim may start at the position instead of
 * the head. The position is found by walking the index from the previous
 * one (or the head) over own-dead entries (Walk, OwnDead); each entry is
 * walked over once per validity period, so claims cost O(1) amortized.
 *
 * It stays valid only while no entry below it could have appeared, that
 * is while no pending version was written there:
 *
 *   - by another transaction: its entry is invisible to every snapshot
 *     until it commits, and every commit of a transaction that wrote
 *     anything moves PostgreSQL's count of completed transactions
 *     (xactCompletionCount, which snapshots use to know whether they may be
 *     reused); a claim reads it before its statement takes its snapshot,
 *     and when it moved since the position was verified, walks from the
 *     head again;
 *   - by this transaction: its writes to tforge.tasks are counted, as they
 *     happen, in the statistics PostgreSQL keeps per transaction (the
 *     inserts and updates of pg_stat_xact_user_tables). The queue's own
 *     writes report themselves here: a claim's and a completion's updates
 *     (which write no pending version) and a submit's inserts (whose keys,
 *     read back by task_id, become holes in the prefix when they are before
 *     the position). When the counts moved by more than that (a retry, a
 *     lease expiry, a direct INSERT or UPDATE, a GPU claim), the claim walks
 *     from the head again.
 *
 * A hole is the key of a task this transaction submitted before the
 * position (its laxity can be below that of tasks it claimed): the claim
 * starts at the first hole whose entries are not all own-dead yet, and a
 * hole whose entries are (the task was claimed) is dropped.
 *
 * So it costs nothing outside long transactions: no trigger, no shared
 * memory, and a transaction that has not claimed yet does not look at it.
 * (A superuser who turns track_counts off and on again between two claims
 * of one transaction hides the writes made meanwhile from it.)
 *
 * An aborted subtransaction may make own-dead entries live again: the
 * position is dropped at every subtransaction abort and at transaction end.
 * The position is not used under SERIALIZABLE (the claim's index scan is
 * then also the read that predicate locking must see), for a table Citus
 * routes or one with inheritance children, with track_counts off, nor when
 * tasks_claim_idx is not the index the queue created: the claim then scans
 * from the head as before. Only transactions that already claimed walk at
 * all: a transaction's first claim costs what it did.
 *
 * What it does not help: an entry that is not own-dead (a task not yet
 * available, of another type, too large for the capacity, or locked by
 * another session) stops the walk for good, and the own-dead entries after
 * it are stepped over by each claim as before.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "access/transam.h"
#include "pgstat.h"
#include "storage/procarray.h"
#include "storage/bufmgr.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "queue.h"
#include "tforge.h"

/* A key of tasks_claim_idx: (laxity_key, priority DESC, submitted_at, task_id). */
typedef struct ClaimKey
{
	TimestampTz laxity;
	int32		priority;
	TimestampTz submitted;
	int64		task_id;
} ClaimKey;

/* The index's columns, in order, and their types. */
static const char *const key_columns[4] = {"laxity_key", "priority", "submitted_at", "task_id"};
static const Oid key_types[4] = {TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID, INT8OID};

/*
 * Most keys of pending versions this backend wrote between two claims, and
 * most holes, that a position keeps; beyond them the walk starts over.
 */
#define MAX_OWN_KEYS 32

/* This backend's state; the position is for the current transaction only. */
static struct
{
	bool		claimed;		/* this transaction claimed a task */
	bool		valid;			/* key is a verified position */
	ClaimKey	key;			/* every entry before it is own-dead, but the holes */
	int			nholes;			/* keys before key of pending versions this */
	ClaimKey	holes[MAX_OWN_KEYS];	/* transaction wrote since, ascending */
	uint64		completions;	/* xactCompletionCount when key was verified */
	int64		inserted;		/* this transaction's inserts into tforge.tasks then, */
	int64		updated;		/* and its updates */
	int64		own_inserted;	/* inserts and updates the queue reported since */
	int64		own_updated;
	int			nown;			/* task_id of each task submitted since */
	int64		own[MAX_OWN_KEYS];
	bool		callbacks;
} prefix;

static void
PrefixXactCallback(XactEvent event, void *arg)
{
	prefix.valid = false;
	prefix.claimed = false;
}

static void
PrefixSubXactCallback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid,
					  void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		prefix.valid = false;
}

static void
RegisterCallbacks(void)
{
	if (prefix.callbacks)
		return;
	RegisterXactCallback(PrefixXactCallback, NULL);
	RegisterSubXactCallback(PrefixSubXactCallback, NULL);
	prefix.callbacks = true;
}

/* <0, 0, >0 as a is before, at or after b in tasks_claim_idx's order. */
static int
ClaimKeyCmp(const ClaimKey *a, const ClaimKey *b)
{
	if (a->laxity != b->laxity)
		return a->laxity < b->laxity ? -1 : 1;
	if (a->priority != b->priority)
		return a->priority > b->priority ? -1 : 1;	/* DESC */
	if (a->submitted != b->submitted)
		return a->submitted < b->submitted ? -1 : 1;
	if (a->task_id != b->task_id)
		return a->task_id < b->task_id ? -1 : 1;
	return 0;
}

static Datum
KeyDatum(const ClaimKey *k, int i)
{
	switch (i)
	{
		case 0:
			return TimestampTzGetDatum(k->laxity);
		case 1:
			return Int32GetDatum(k->priority);
		case 2:
			return TimestampTzGetDatum(k->submitted);
		default:
			return Int64GetDatum(k->task_id);
	}
}

static void
SetKeyDatum(ClaimKey *k, int i, Datum d)
{
	switch (i)
	{
		case 0:
			k->laxity = DatumGetTimestampTz(d);
			break;
		case 1:
			k->priority = DatumGetInt32(d);
			break;
		case 2:
			k->submitted = DatumGetTimestampTz(d);
			break;
		default:
			k->task_id = DatumGetInt64(d);
			break;
	}
}

/*
 * Whether the index is tasks_claim_idx as created: four key columns, the
 * ones above in order, priority descending and the others ascending, each
 * NOT NULL (the ranges claims scan, from a position or from the shared
 * bound of claim_head.c, hold no NULL, which sorts last); and
 * built, valid and kept up to date by every write. A scan of the index
 * stands for a scan of the pending tasks: one that a failed CREATE INDEX
 * CONCURRENTLY left behind under the name (not ready: no metapage, and no
 * entry for anything written since; ready but not valid: no entry for some
 * tasks) would miss them, or fail to read it.
 */
bool
ClaimIndexShape(Relation heap, Relation index)
{
	TupleDesc	desc = RelationGetDescr(heap);
	int			i;

	if (!index->rd_index->indisvalid || !index->rd_index->indisready || !index->rd_index->indislive)
		return false;
	if (heap->rd_rel->relhassubclass || heap->rd_rel->relkind != RELKIND_RELATION ||
		index->rd_rel->relam != BTREE_AM_OID || index->rd_index->indnkeyatts != 4 ||
		index->rd_index->indnatts != 4)
		return false;
	for (i = 0; i < 4; i++)
	{
		AttrNumber	att = index->rd_index->indkey.values[i];
		Form_pg_attribute a;
		bool		desc_expected = (i == 1);

		if (att <= 0 || att > desc->natts)
			return false;
		a = TupleDescAttr(desc, att - 1);
		if (a->attisdropped || !a->attnotnull || a->atttypid != key_types[i] ||
			strcmp(NameStr(a->attname), key_columns[i]) != 0 ||
			index->rd_opcintype[i] != key_types[i] ||
			((index->rd_indoption[i] & INDOPTION_DESC) != 0) != desc_expected)
			return false;
	}
	return true;
}

/*
 * Whether the entry at tid is own-dead: the last version of its heap-only
 * chain was updated or deleted by this transaction. Anything unexpected
 * (a pruned or redirected-away item, a broken chain) is not.
 */
static bool
OwnDead(Relation heap, ItemPointer tid)
{
	Buffer		buf;
	Page		page;
	OffsetNumber off = ItemPointerGetOffsetNumber(tid);
	TransactionId prev_xmax = InvalidTransactionId;
	bool		at_root = true;
	bool		result = false;

	buf = ReadBuffer(heap, ItemPointerGetBlockNumber(tid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	for (;;)
	{
		ItemId		lp;
		HeapTupleHeader htup;

		if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
			break;
		lp = PageGetItemId(page, off);
		if (ItemIdIsRedirected(lp) && at_root)
		{
			off = ItemIdGetRedirect(lp);
			at_root = false;
			continue;
		}
		if (!ItemIdIsNormal(lp))
			break;
		htup = (HeapTupleHeader) PageGetItem(page, lp);
		if (TransactionIdIsValid(prev_xmax) &&
			!TransactionIdEquals(prev_xmax, HeapTupleHeaderGetXmin(htup)))
			break;
		at_root = false;
		if (HeapTupleHeaderIsHotUpdated(htup))
		{
			prev_xmax = HeapTupleHeaderGetUpdateXid(htup);
			if (ItemPointerGetBlockNumber(&htup->t_ctid) != BufferGetBlockNumber(buf))
				break;
			off = ItemPointerGetOffsetNumber(&htup->t_ctid);
			continue;
		}
		if (!(htup->t_infomask & HEAP_XMAX_INVALID) && !HEAP_XMAX_IS_LOCKED_ONLY(htup->t_infomask))
			result = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetUpdateXid(htup));
		break;
	}
	UnlockReleaseBuffer(buf);
	return result;
}

/* How a walk ended. */
typedef enum WalkEnd
{
	WALK_EMPTY,					/* no entry at all */
	WALK_STOPPED,				/* at an entry not own-dead, its key in *stop */
	WALK_END,					/* past the last entry (or past upto), the last key in *stop */
} WalkEnd;

/*
 * Walk the index from key from (the head when NULL) over own-dead entries,
 * up to key upto when not NULL.
 */
static WalkEnd
Walk(Relation heap, Relation index, const ClaimKey *from, const ClaimKey *upto, ClaimKey *stop)
{
	WalkEnd		end = WALK_EMPTY;
	ClaimKey	k;
	ScanKeyData row;
	ScanKeyData members[4];
	IndexScanDesc scan;
	ItemPointer tid;
	int			i;

	scan = index_beginscan(heap, index, SnapshotAny, from != NULL ? 1 : 0, 0);
	scan->xs_want_itup = true;
	if (from != NULL)
	{
		/*
		 * (laxity_key, priority, submitted_at, task_id) at or after from in
		 * the index's order: each member's strategy is the one that column
		 * decides with when the columns before it are equal (priority is
		 * descending: lower is after), the last one inclusive.
		 */
		for (i = 0; i < 4; i++)
			ScanKeyEntryInitialize(&members[i], SK_ROW_MEMBER | (i == 3 ? SK_ROW_END : 0), i + 1,
								   i == 1 ? BTLessEqualStrategyNumber : BTGreaterEqualStrategyNumber,
								   index->rd_opcintype[i], index->rd_indcollation[i],
								   get_opfamily_proc(index->rd_opfamily[i], index->rd_opcintype[i],
													 index->rd_opcintype[i], BTORDER_PROC),
								   KeyDatum(from, i));
		ScanKeyEntryInitialize(&row, SK_ROW_HEADER, 1, BTGreaterEqualStrategyNumber, InvalidOid,
							   InvalidOid, InvalidOid, PointerGetDatum(members));
		index_rescan(scan, &row, 1, NULL, 0);
	}
	else
		index_rescan(scan, NULL, 0, NULL, 0);

	while ((tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
	{
		if (scan->xs_itup == NULL)
			elog(ERROR, "tforge: tasks_claim_idx returned no index tuple");
		for (i = 0; i < 4; i++)
		{
			bool		isnull;
			Datum		d = index_getattr(scan->xs_itup, i + 1, scan->xs_itupdesc, &isnull);

			if (isnull)
				elog(ERROR, "tforge: NULL key in tasks_claim_idx");
			SetKeyDatum(&k, i, d);
		}
		if (upto != NULL && ClaimKeyCmp(&k, upto) > 0)
			break;
		*stop = k;
		end = WALK_END;
		if (!OwnDead(heap, tid))
		{
			end = WALK_STOPPED;
			break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	index_endscan(scan);
	return end;
}

/* Add key k to the holes (ascending, once); false when they are full. */
static bool
AddHole(const ClaimKey *k)
{
	int			i;
	int			c = 1;

	for (i = 0; i < prefix.nholes; i++)
		if ((c = ClaimKeyCmp(k, &prefix.holes[i])) <= 0)
			break;
	if (i < prefix.nholes && c == 0)
		return true;
	if (prefix.nholes == MAX_OWN_KEYS)
		return false;
	memmove(&prefix.holes[i + 1], &prefix.holes[i], sizeof(ClaimKey) * (prefix.nholes - i));
	prefix.holes[i] = *k;
	prefix.nholes++;
	return true;
}

/*
 * Where the claim starts, from a valid position: the first hole whose
 * entries are not all own-dead (holes whose entries are own-dead by now are
 * dropped), else the position walked on. False when the walk found no entry.
 */
static bool
FromPosition(Relation heap, Relation index, ClaimKey *start)
{
	ClaimKey	stop;
	WalkEnd		end;

	while (prefix.nholes > 0)
	{
		if (Walk(heap, index, &prefix.holes[0], &prefix.holes[0], &stop) == WALK_STOPPED)
		{
			*start = prefix.holes[0];
			return true;
		}
		prefix.nholes--;
		memmove(&prefix.holes[0], &prefix.holes[1], sizeof(ClaimKey) * prefix.nholes);
	}
	end = Walk(heap, index, &prefix.key, NULL, &stop);
	if (end == WALK_EMPTY)
		return false;
	prefix.key = stop;
	*start = stop;
	return true;
}

/* This transaction's inserts and updates of relation relid so far (its pending statistics). */
static void
OwnCounts(Oid relid, int64 *inserted, int64 *updated)
{
	PgStat_TableStatus *entry = find_tabstat_entry(relid);
	PgStat_TableXactStatus *trans;

	*inserted = *updated = 0;
	for (trans = entry != NULL ? entry->trans : NULL; trans != NULL; trans = trans->upper)
	{
		*inserted += trans->tuples_inserted + trans->inserted_pre_truncdrop;
		*updated += trans->tuples_updated + trans->updated_pre_truncdrop;
	}
}

/* PostgreSQL's count of completed transactions (that had an xid). */
static uint64
Completions(void)
{
	uint64		n;

	pg_read_barrier();
	LWLockAcquire(ProcArrayLock, LW_SHARED);
	n = ShmemVariableCache->xactCompletionCount;
	LWLockRelease(ProcArrayLock);
	return n;
}

/*
 * Add the keys of the tasks submitted since the last claim that are before
 * the position to the holes; false when one cannot be read or they are too many.
 */
static bool
AddSubmitted(Relation heap)
{
	int			i;

	for (i = 0; i < prefix.nown; i++)
	{
		ScanKeyData id;
		Relation	rel;
		TupleTableSlot *slot;
		ClaimKey	k;
		int			j;

		ScanKeyInit(&id, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(prefix.own[i]));
		slot = IndexFirst("tasks", "tasks_pkey", &id, 1, &rel);

		if (TupIsNull(slot))
		{
			LookupEnd(slot, rel);
			return false;
		}
		for (j = 0; j < 4; j++)
		{
			bool		isnull;
			Datum		d = Column(slot, key_columns[j], &isnull);

			if (isnull)
				break;
			SetKeyDatum(&k, j, d);
		}
		LookupEnd(slot, rel);
		if (j < 4)
			return false;
		if (ClaimKeyCmp(&k, &prefix.key) < 0 && !AddHole(&k))
			return false;
	}
	return true;
}

/*
 * Where a claim in this transaction may start its scan of tasks_claim_idx:
 * true with the key in start[0..3] (an inclusive bound), false to scan from
 * the head. Call it before the claim's statement takes its snapshot.
 */
bool
ClaimPrefix(Datum *start)
{
	Oid			relid;
	Oid			indexid;
	Relation	heap;
	Relation	index;
	ClaimKey	from;
	bool		found = false;
	uint64		completions;
	int64		inserted;
	int64		updated;
	int			i;

	if (!prefix.claimed || IsolationIsSerializable() || !pgstat_track_counts)
		return false;
	relid = TforgeRelid("tasks");
	indexid = TforgeRelid("tasks_claim_idx");
	if (!OidIsValid(relid) || !OidIsValid(indexid) || CitusRoutesTable(relid))
		return false;

	heap = table_open(relid, AccessShareLock);
	index = index_open(indexid, AccessShareLock);
	if (ClaimIndexShape(heap, index))
	{
		completions = Completions();
		OwnCounts(relid, &inserted, &updated);
		/*
		 * No other transaction committed, and this one wrote no more than
		 * the queue reported: the tasks it submitted before the position
		 * are holes in it.
		 */
		PushActiveSnapshot(GetTransactionSnapshot());
		if (!(prefix.valid && completions == prefix.completions &&
			  inserted - prefix.inserted == prefix.own_inserted &&
			  updated - prefix.updated == prefix.own_updated &&
			  prefix.nown == prefix.own_inserted && AddSubmitted(heap)))
			prefix.valid = false;
		PopActiveSnapshot();
		prefix.completions = completions;
		prefix.inserted = inserted;
		prefix.updated = updated;
		prefix.own_inserted = prefix.own_updated = 0;
		prefix.nown = 0;

		if (prefix.valid)
			found = FromPosition(heap, index, &from);
		else
		{
			ClaimKey	stop;

			prefix.nholes = 0;
			found = Walk(heap, index, NULL, NULL, &stop) != WALK_EMPTY;
			prefix.key = stop;
			from = stop;
		}
		prefix.valid = found;
		for (i = 0; i < 4 && found; i++)
			start[i] = KeyDatum(&from, i);
	}
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return found;
}

/* The transaction claimed n tasks (n rows of tforge.tasks updated, none pending). */
void
ClaimPrefixClaimed(uint64 n)
{
	RegisterCallbacks();
	prefix.claimed = true;
	prefix.own_updated += n;
}

/* The queue updated n rows of tforge.tasks, to no pending version. */
void
ClaimPrefixUpdated(uint64 n)
{
	if (prefix.claimed)
		prefix.own_updated += n;
}

/* The queue inserted task task_id. */
void
ClaimPrefixInserted(int64 task_id)
{
	if (!prefix.claimed)
		return;
	prefix.own_inserted++;
	if (prefix.nown < MAX_OWN_KEYS)
		prefix.own[prefix.nown++] = task_id;
}
