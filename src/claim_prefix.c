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
 * It stays valid only while no entry below it could have appeared. Every
 * path that writes a pending version (submit, retry, lease expiry, a direct
 * INSERT, UPDATE or COPY) fires trigger tasks_pending_added (AFTER ROW, so
 * after the index entry exists; ENABLE ALWAYS, so also on a subscriber and
 * under session_replication_role = replica), which adds one to a counter in
 * shared memory, and, in the writing backend, records the lowest key it
 * wrote. A claim reads the counter before its statement takes its snapshot:
 *
 *   - the counter moved by more than this backend's own writes: another
 *     session wrote a pending version, possibly below the position: the walk
 *     starts over from the head;
 *   - only by this backend's: the walk starts at the lower of the position
 *     and the lowest key written;
 *   - a write whose trigger has not fired yet belongs to a statement still
 *     running, so no snapshot can see it; once it commits, the counter has
 *     moved (the trigger fires before the commit).
 *
 * An aborted subtransaction may make own-dead entries live again: the
 * position is dropped at every subtransaction abort and at transaction end.
 * The position is not used under SERIALIZABLE (the claim's index scan is
 * then also the read that predicate locking must see), for a table Citus
 * routes, without shared memory (tforge not in shared_preload_libraries),
 * nor when trigger tasks_pending_added is missing or not ENABLE ALWAYS
 * (a 0.1.0 schema): the claim then scans from the head as before. Only
 * transactions that already claimed walk at all: a transaction's first
 * claim costs what it did.
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
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "queue.h"
#include "tforge.h"

#define PENDING_TRIGGER "tasks_pending_added"

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

typedef struct PrefixShared
{
	pg_atomic_uint64 pending_added; /* pending versions written, by anyone */
} PrefixShared;

static PrefixShared *prefix_shared = NULL;

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
	ClaimKey	holes[MAX_OWN_KEYS];	/* backend wrote since, ascending */
	uint64		seen;			/* pending_added when key was verified */
	uint64		own_seen;		/* own_added then */
	int			nown;			/* keys of the pending versions this backend */
	ClaimKey	own[MAX_OWN_KEYS];	/* wrote since the last claim */
	bool		own_unknown;	/* more, or one whose key it could not read */
	uint64		own_added;		/* pending versions this backend wrote, ever */
	bool		callbacks;
} prefix;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
PrefixShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(PrefixShared)));
}

static void
PrefixShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	prefix_shared = ShmemInitStruct("tforge claim prefix", sizeof(PrefixShared), &found);
	if (!found)
		pg_atomic_init_u64(&prefix_shared->pending_added, 0);
	LWLockRelease(AddinShmemInitLock);
}

void
ClaimPrefixInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = PrefixShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = PrefixShmemStartup;
}

static void
PrefixXactCallback(XactEvent event, void *arg)
{
	prefix.valid = false;
	prefix.claimed = false;
	prefix.nown = 0;
	prefix.own_unknown = false;
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
 * ones above in order, priority descending and the others ascending.
 */
static bool
IndexShapeExpected(Relation heap, Relation index)
{
	TupleDesc	desc = RelationGetDescr(heap);
	int			i;

	if (index->rd_rel->relam != BTREE_AM_OID || index->rd_index->indnkeyatts != 4 ||
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
		if (a->attisdropped || a->atttypid != key_types[i] || strcmp(NameStr(a->attname), key_columns[i]) != 0 ||
			index->rd_opcintype[i] != key_types[i] ||
			((index->rd_indoption[i] & INDOPTION_DESC) != 0) != desc_expected)
			return false;
	}
	return true;
}

/* Whether function fn is tforge._pending_added(). */
static bool
PendingAddedFunction(Oid fn)
{
	char	   *name = get_func_name(fn);

	return name != NULL && strcmp(name, "_pending_added") == 0 &&
		get_func_namespace(fn) == get_namespace_oid("tforge", true);
}

/* Whether trigger tasks_pending_added fires on every write of a pending version. */
static bool
TriggerInPlace(Relation heap)
{
	TriggerDesc *td = heap->trigdesc;
	int			i;

	if (td == NULL)
		return false;
	for (i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (strcmp(t->tgname, PENDING_TRIGGER) == 0)
			return t->tgenabled == TRIGGER_FIRES_ALWAYS &&
				TRIGGER_FOR_ROW(t->tgtype) && TRIGGER_FOR_AFTER(t->tgtype) &&
				TRIGGER_FOR_INSERT(t->tgtype) && TRIGGER_FOR_UPDATE(t->tgtype) &&
				t->tgnattr == 0 && PendingAddedFunction(t->tgfoid);
	}
	return false;
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
	uint64		now;
	int			i;

	if (!prefix.claimed || prefix_shared == NULL || IsolationIsSerializable())
		return false;
	relid = TforgeRelid("tasks");
	indexid = TforgeRelid("tasks_claim_idx");
	if (!OidIsValid(relid) || !OidIsValid(indexid) || CitusRoutesTable(relid))
		return false;
	RegisterCallbacks();

	heap = table_open(relid, AccessShareLock);
	index = index_open(indexid, AccessShareLock);
	if (TriggerInPlace(heap) && IndexShapeExpected(heap, index))
	{
		pg_memory_barrier();
		now = pg_atomic_read_u64(&prefix_shared->pending_added);
		/* only this backend wrote pending versions since: those before the position are holes */
		if (prefix.valid && !prefix.own_unknown &&
			now - prefix.seen == prefix.own_added - prefix.own_seen)
		{
			for (i = 0; i < prefix.nown && prefix.valid; i++)
				if (ClaimKeyCmp(&prefix.own[i], &prefix.key) < 0 && !AddHole(&prefix.own[i]))
					prefix.valid = false;
		}
		else
			prefix.valid = false;
		prefix.nown = 0;
		prefix.own_unknown = false;
		prefix.seen = now;
		prefix.own_seen = prefix.own_added;

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

/* The transaction claimed a task: its later claims use the prefix. */
void
ClaimPrefixClaimed(void)
{
	RegisterCallbacks();
	prefix.claimed = true;
}

/*
 * tforge._pending_added(): trigger tasks_pending_added, AFTER INSERT OR
 * UPDATE FOR EACH ROW WHEN the new version is pending: counts the version in
 * shared memory and notes its key for this backend's next claim.
 */
PG_FUNCTION_INFO_V1(tforge_pending_added);
Datum
tforge_pending_added(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	TupleDesc	desc;
	ClaimKey	k;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._pending_added() must be fired as an AFTER INSERT or UPDATE row trigger")));
	if (RelationGetRelid(trigdata->tg_relation) != TforgeRelid("tasks"))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._pending_added() fires only on tforge.tasks, not on \"%s\"",
						RelationGetRelationName(trigdata->tg_relation))));

	RegisterCallbacks();
	if (prefix_shared != NULL)
		pg_atomic_fetch_add_u64(&prefix_shared->pending_added, 1);
	prefix.own_added++;

	tuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	for (i = 0; i < 4 && tuple != NULL; i++)
	{
		int			att = SPI_fnumber(desc, key_columns[i]);
		bool		isnull;
		Datum		d;

		if (att <= 0 || TupleDescAttr(desc, att - 1)->atttypid != key_types[i])
			break;
		d = heap_getattr(tuple, att, desc, &isnull);
		if (isnull)
			break;
		SetKeyDatum(&k, i, d);
	}
	if (i < 4 || prefix.nown == MAX_OWN_KEYS)
		prefix.own_unknown = true;
	else
		prefix.own[prefix.nown++] = k;
	return PointerGetDatum(NULL);
}
