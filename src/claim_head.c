/*
 * claim_head.c: claims start their scan of tasks_claim_idx at a shared
 * bound below which every entry is dead, instead of at the index's head.
 *
 * A claim updates its task from pending to running. The task's entry in
 * tasks_claim_idx (partial on status = 'pending') stays on its page until a
 * vacuum of tforge.tasks; the scans that step over it once the claim has
 * committed mark it dead (LP_DEAD: its versions are dead to every
 * transaction), and later scans skip it, but only after reading its page.
 * A claim scans from the head, so between two vacuums each claim reads the
 * pages of every task claimed since the last one: after ten seconds of two
 * workers, some 200 index pages per claim.
 *
 * The bound. For each database, shared memory holds a laxity_key B such
 * that every entry of tasks_claim_idx with a smaller laxity_key is marked
 * dead or gone: none leads any snapshot, now or later, to a pending
 * version. A claim adds laxity_key >= B to its scan (queue.c).
 *
 * Raising it (a walk). Before its statement a claim reads the index from B
 * (or the head) with a scan that returns every entry not marked dead; the
 * first one's laxity_key S is the new bound. A marked entry never comes
 * back to life, and the entries the walk returns it does not step over, so
 * every entry below S is marked.
 *
 * Lowering it (a publication). Entries below B can appear: a submit with a
 * short deadline, a task made pending again (a retry, an expired lease, an
 * operator's UPDATE), a COPY. Every row version written to tforge.tasks
 * that is pending with a laxity_key it did not have as a pending version
 * before goes through trigger tasks_claim_head (AFTER INSERT OR UPDATE,
 * FOR EACH ROW, ENABLE ALWAYS so that it fires under
 * session_replication_role = replica too), which lowers B to that
 * laxity_key. An AFTER trigger fires once the row's index entries exist.
 *
 * The race. A walk may pass the place of an entry inserted after it read
 * that page; the writer publishes after inserting, and either:
 *   - before the walk started: then the entry was there when the walk
 *     started (it publishes after inserting), and the walk stops at it;
 *   - while the walk runs: the walk's record in the slot, which every
 *     publication lowers, holds the lowest key published since it
 *     started, and the walk stores min(S, that key);
 *   - after the walk stored its bound: the publication lowers it.
 * So the stored bound is never above a live entry. A claim takes its
 * snapshot after reading the bound: a task committed after that read may
 * be passed over by that claim, which is then one of the claims that
 * overlapped its commit, not one that followed it.
 *
 * Writes that do not publish. A superuser can disable the trigger (ALTER
 * TABLE ... DISABLE TRIGGER, pg_restore --disable-triggers) and write pending
 * tasks meanwhile. A claim uses the bound only while its relation's trigger
 * is present, enabled ALWAYS and unchanged; disabling or enabling it
 * invalidates the relation's cache entry in every backend, and each backend
 * that processes an invalidation of tforge.tasks or tasks_claim_idx drops
 * the bound (a relcache callback: a vacuum's or an ANALYZE's statistics
 * drop it too, and the walk from the head after a vacuum is short). A
 * backend drops it before its first use too, since it did not see the
 * invalidations before it started. DDL and walks exclude each other: the
 * walk opens tforge.tasks with RowExclusiveLock, which conflicts with the
 * lock ALTER TABLE ... DISABLE TRIGGER takes, until the transaction ends.
 *
 * Only with shared_preload_libraries (the slots live in shared memory),
 * for the index the queue created (the columns of claim_prefix.c, partial
 * on status = 'pending' exactly), outside SERIALIZABLE (the claim's scan is
 * then also the read predicate locking must see whole) and when Citus does
 * not route the table; otherwise claims scan from the head as before. The
 * bound is memory only: a restart starts from the head.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "queue.h"
#include "tforge.h"

/* The trigger that publishes, as the install script creates it. */
#define HEAD_TRIGGER "tasks_claim_head"

/*
 * A walk reads the first leaf page from the bound whole (the index AM reads a
 * page at a time), which costs about what the claim's own scan does. So a
 * claim walks only when the previous claim of this backend read more pages
 * of the index than a descent to the bound and the page after it.
 */
#define HEAD_WALK_PAGES 4

/* Databases whose bounds are kept; beyond them the least recently used is reused. */
#define HEAD_DATABASES 16

/* Walks of one database in progress at once; more walk without raising the bound. */
#define HEAD_WALKS 8

/* A walk in progress, and the lowest laxity_key published since it started. */
typedef struct HeadWalk
{
	uint64		id;				/* 0: no walk */
	TimestampTz lowest;
} HeadWalk;

typedef struct HeadSlot
{
	Oid			database_id;	/* InvalidOid: a free slot */
	Oid			index_id;		/* tasks_claim_idx of that database */
	uint64		epoch;			/* changes whenever the bound is dropped or the slot reused */
	bool		valid;			/* bound holds */
	TimestampTz bound;			/* no entry below it that is not marked dead */
	HeadWalk	walks[HEAD_WALKS];	/* the walks in progress */
	uint64		used;			/* a tick of the last use (least recently used goes first) */
} HeadSlot;

typedef struct ClaimHeadShared
{
	slock_t		mutex;			/* guards everything; held for a few instructions */
	uint64		ticks;			/* epochs and use ticks are drawn from it */
	HeadSlot	slots[HEAD_DATABASES];
} ClaimHeadShared;

static ClaimHeadShared *head_shared = NULL;

/* This backend's view. */
static struct
{
	bool		callback;		/* the relcache callback is registered */
	Oid			database_id;	/* the database of the relids below */
	Oid			heap_id;		/* tforge.tasks, tasks_claim_idx as last used */
	Oid			index_id;
	bool		checked;		/* their shape was checked since their last invalidation */
	bool		usable;			/* and the bound may be used for them */
	bool		dropped_once;	/* the bound was dropped at this backend's first use */
	bool		walk;			/* walk before the next claim */
	int64		fetched;		/* the index's pages read when the claim's statement started */
} mine = {.walk = true};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* This database's slot (mutex held), or NULL. */
static HeadSlot *
FindSlot(void)
{
	int			i;

	for (i = 0; i < HEAD_DATABASES; i++)
		if (head_shared->slots[i].database_id == MyDatabaseId)
			return &head_shared->slots[i];
	return NULL;
}

/* Forget the bound of slot (mutex held): walks in progress will not store theirs. */
static void
DropBound(HeadSlot *slot)
{
	slot->valid = false;
	slot->epoch = ++head_shared->ticks;
	memset(slot->walks, 0, sizeof(slot->walks));
}

/* Forget this database's bound, if it has one. */
static void
DropDatabaseBound(void)
{
	HeadSlot   *slot;

	SpinLockAcquire(&head_shared->mutex);
	if ((slot = FindSlot()) != NULL)
		DropBound(slot);
	SpinLockRelease(&head_shared->mutex);
}

/* This database's slot for index index_id (mutex held): its own, else a fresh one. */
static HeadSlot *
UseSlot(Oid index_id)
{
	HeadSlot   *slot = FindSlot();
	int			i;

	if (slot == NULL)
	{
		slot = &head_shared->slots[0];
		for (i = 0; i < HEAD_DATABASES; i++)
		{
			HeadSlot   *s = &head_shared->slots[i];

			if (!OidIsValid(s->database_id))
			{
				slot = s;
				break;
			}
			if (s->used < slot->used)
				slot = s;
		}
		slot->database_id = MyDatabaseId;
		slot->index_id = InvalidOid;
	}
	if (slot->index_id != index_id)
	{
		slot->index_id = index_id;
		DropBound(slot);
	}
	slot->used = ++head_shared->ticks;
	return slot;
}

/*
 * Relcache callback: an invalidation of tforge.tasks or tasks_claim_idx (or
 * of every relation) drops this database's bound, and the shape is checked
 * again at the next claim.
 */
static void
HeadRelcacheCallback(Datum arg, Oid relid)
{
	if (OidIsValid(relid) && relid != mine.heap_id && relid != mine.index_id)
		return;
	mine.checked = false;
	if (head_shared != NULL && OidIsValid(mine.heap_id) && mine.database_id == MyDatabaseId)
		DropDatabaseBound();
}

/* Whether the index's predicate is exactly status = 'pending' on heap's status column. */
static bool
PendingPredicate(Relation heap, Relation index)
{
	List	   *pred = RelationGetIndexPredicate(index);
	OpExpr	   *op;
	Var		   *var;
	Const	   *c;
	AttrNumber	status = SPI_fnumber(RelationGetDescr(heap), "status");

	if (list_length(pred) != 1 || !IsA(linitial(pred), OpExpr) || status <= 0)
		return false;
	op = (OpExpr *) linitial(pred);
	if (get_opcode(op->opno) != F_ENUM_EQ || list_length(op->args) != 2 ||
		!IsA(linitial(op->args), Var) || !IsA(lsecond(op->args), Const))
		return false;
	var = (Var *) linitial(op->args);
	c = (Const *) lsecond(op->args);
	return var->varattno == status && !c->constisnull && c->consttype == var->vartype &&
		OidIsValid(EnumLabelOid(var->vartype, "pending")) &&
		EnumLabelOid(var->vartype, "pending") == DatumGetObjectId(c->constvalue);
}

/* Whether heap's trigger tasks_claim_head is there as created, and enabled ALWAYS. */
static bool
Publishing(Relation heap)
{
	TriggerDesc *td = heap->trigdesc;
	int			i;

	for (i = 0; td != NULL && i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (strcmp(t->tgname, HEAD_TRIGGER) == 0)
		{
			char	   *function = get_func_name(t->tgfoid);

			return t->tgenabled == TRIGGER_FIRES_ALWAYS && t->tgnattr == 0 && t->tgqual == NULL &&
				t->tgtype == (TRIGGER_TYPE_ROW | TRIGGER_TYPE_INSERT | TRIGGER_TYPE_UPDATE) &&
				function != NULL && strcmp(function, "_claim_head_lower") == 0 &&
				get_func_namespace(t->tgfoid) == get_rel_namespace(RelationGetRelid(heap));
		}
	}
	return false;
}

/* Pages of index this backend has read in this transaction so far (-1: not counted). */
static int64
PagesRead(Relation index)
{
	return index->pgstat_info != NULL ? index->pgstat_info->t_counts.t_blocks_fetched : -1;
}

/*
 * The laxity_key of the first entry of index at or after from (the head
 * when !has_from) that is not marked dead; DT_NOEND when there is none.
 */
static TimestampTz
Walk(Relation heap, Relation index, bool has_from, TimestampTz from)
{
	TimestampTz first = DT_NOEND;
	ScanKeyData key;
	IndexScanDesc scan;

	scan = index_beginscan(heap, index, SnapshotAny, has_from ? 1 : 0, 0);
	scan->xs_want_itup = true;
	if (has_from)
	{
		ScanKeyEntryInitialize(&key, 0, 1, BTGreaterEqualStrategyNumber, TIMESTAMPTZOID,
							   index->rd_indcollation[0], F_TIMESTAMPTZ_GE, TimestampTzGetDatum(from));
		index_rescan(scan, &key, 1, NULL, 0);
	}
	else
		index_rescan(scan, NULL, 0, NULL, 0);
	if (index_getnext_tid(scan, ForwardScanDirection) != NULL)
	{
		bool		isnull;
		Datum		d;

		if (scan->xs_itup == NULL)
			elog(ERROR, "tforge: tasks_claim_idx returned no index tuple");
		d = index_getattr(scan->xs_itup, 1, scan->xs_itupdesc, &isnull);
		if (isnull)
			elog(ERROR, "tforge: NULL key in tasks_claim_idx");
		first = DatumGetTimestampTz(d);
	}
	index_endscan(scan);
	return first;
}

/*
 * before_shmem_exit and error cleanup of a walk: forget walk walk_id's
 * record (in whichever slot holds it: ids are never reused).
 */
static void
EndWalkRecord(int code, Datum arg)
{
	uint64		walk_id = DatumGetUInt64(arg);

	if (walk_id == 0 || head_shared == NULL)
		return;
	SpinLockAcquire(&head_shared->mutex);
	for (int s = 0; s < HEAD_DATABASES; s++)
		for (int i = 0; i < HEAD_WALKS; i++)
			if (head_shared->slots[s].walks[i].id == walk_id)
				head_shared->slots[s].walks[i].id = 0;
	SpinLockRelease(&head_shared->mutex);
}

/*
 * Walk, as walk walk_id (0: not recorded): an error, or a FATAL exit (a
 * backend terminated while it walks a long dead stretch), ends the record,
 * which would otherwise hold one of the HEAD_WALKS places of its slot until
 * the bound is next dropped; with all of them held, no walk raises it.
 */
static TimestampTz
WalkRecorded(Relation heap, Relation index, bool has_from, TimestampTz from, uint64 walk_id)
{
	TimestampTz first = DT_NOEND;

	PG_ENSURE_ERROR_CLEANUP(EndWalkRecord, UInt64GetDatum(walk_id));
	{
		first = Walk(heap, index, has_from, from);
	}
	PG_END_ENSURE_ERROR_CLEANUP(EndWalkRecord, UInt64GetDatum(walk_id));
	return first;
}

/*
 * The bound a claim of this database may add to its scan of
 * tasks_claim_idx (laxity_key >= *bound): true when there is one. Walks
 * from the current bound first. Call it before the claim's statement takes
 * its snapshot.
 */
bool
ClaimHeadBound(TimestampTz *bound)
{
	Oid			heap_id;
	Oid			index_id;
	Relation	heap;
	Relation	index;
	HeadSlot   *slot;
	uint64		epoch;
	bool		from_valid;
	TimestampTz from;
	TimestampTz first;
	uint64		walk_id = 0;
	bool		found = false;
	int			i;

	if (head_shared == NULL || IsolationIsSerializable())
		return false;
	heap_id = TforgeRelid("tasks");
	index_id = TforgeRelid("tasks_claim_idx");
	if (!OidIsValid(heap_id) || !OidIsValid(index_id) || CitusRoutesTable(heap_id))
		return false;
	if (!mine.callback)
	{
		CacheRegisterRelcacheCallback(HeadRelcacheCallback, (Datum) 0);
		mine.callback = true;
	}

	/* RowExclusiveLock, as the claim: excludes ALTER TABLE ... DISABLE TRIGGER until commit */
	heap = table_open(heap_id, RowExclusiveLock);
	index = index_open(index_id, AccessShareLock);
	if (!mine.checked || mine.heap_id != heap_id || mine.index_id != index_id ||
		mine.database_id != MyDatabaseId)
	{
		mine.database_id = MyDatabaseId;
		mine.heap_id = heap_id;
		mine.index_id = index_id;
		/* a change to either (the trigger's state too) invalidates them: HeadRelcacheCallback */
		mine.usable = ClaimIndexShape(heap, index) && PendingPredicate(heap, index) && Publishing(heap);
		mine.checked = true;
	}
	if (!mine.usable)
	{
		/* nothing publishes now: whatever bound there is may be too high later */
		DropDatabaseBound();
		index_close(index, NoLock);
		table_close(heap, NoLock);
		return false;
	}

	SpinLockAcquire(&head_shared->mutex);
	slot = UseSlot(index_id);
	if (!mine.dropped_once)
	{
		DropBound(slot);
		mine.dropped_once = true;
	}
	epoch = slot->epoch;
	from_valid = slot->valid;
	from = slot->bound;
	if (from_valid && !mine.walk)
	{
		/* the last claim found the bound close enough to the live head */
		*bound = from;
		SpinLockRelease(&head_shared->mutex);
		mine.fetched = PagesRead(index);
		index_close(index, NoLock);
		table_close(heap, NoLock);
		return true;
	}
	for (i = 0; i < HEAD_WALKS; i++)
		if (slot->walks[i].id == 0)
		{
			walk_id = slot->walks[i].id = ++head_shared->ticks;
			slot->walks[i].lowest = DT_NOEND;
			break;
		}
	SpinLockRelease(&head_shared->mutex);

	first = WalkRecorded(heap, index, from_valid, from, walk_id);

	SpinLockAcquire(&head_shared->mutex);
	for (i = 0; i < HEAD_WALKS && walk_id != 0; i++)
		if (slot->walks[i].id == walk_id)
		{
			/* still this database's and epoch's: the walk's result holds */
			TimestampTz walked = Min(first, slot->walks[i].lowest);

			slot->walks[i].id = 0;
			if (!slot->valid || walked > slot->bound)
				slot->bound = walked;
			slot->valid = true;
			break;
		}
	/* a walk that could not be recorded leaves the bound as others left it */
	if (slot->database_id == MyDatabaseId && slot->epoch == epoch && slot->valid)
	{
		*bound = slot->bound;
		found = true;
	}
	SpinLockRelease(&head_shared->mutex);

	mine.fetched = PagesRead(index);
	index_close(index, NoLock);
	table_close(heap, NoLock);
	return found;
}

/*
 * The claim's statement ran from the bound ClaimHeadBound gave: the next
 * claim walks if it read more than HEAD_WALK_PAGES pages of the index.
 */
void
ClaimHeadScanned(void)
{
	Relation	index = index_open(mine.index_id, NoLock);	/* the claim's statement locked it */
	int64		fetched = PagesRead(index);

	mine.walk = fetched < 0 || mine.fetched < 0 || fetched - mine.fetched > HEAD_WALK_PAGES;
	index_close(index, NoLock);
}

/*
 * tforge._claim_head_lower(): trigger tasks_claim_head, AFTER INSERT OR
 * UPDATE on tforge.tasks, FOR EACH ROW. A version that is pending with a
 * laxity_key its previous version did not have as a pending one lowers the
 * bound to that laxity_key. Runs no SQL.
 */
PG_FUNCTION_INFO_V1(tforge_claim_head_lower);
Datum
tforge_claim_head_lower(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = TforgeTrigger(fcinfo, "tforge._claim_head_lower", "tasks");
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	HeapTuple	new;
	AttrNumber	status = SPI_fnumber(desc, "status");
	AttrNumber	laxity = SPI_fnumber(desc, "laxity_key");
	Oid			pending;
	bool		isnull;
	Datum		d;
	TimestampTz key;
	HeadSlot   *slot;

	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._claim_head_lower() must be fired AFTER INSERT OR UPDATE FOR EACH ROW")));
	/*
	 * A superuser may have dropped or retyped status or laxity_key: then
	 * claims find tasks_claim_idx unlike the queue's (ClaimIndexShape,
	 * PendingPredicate) and use no bound, and there is nothing to publish.
	 */
	if (head_shared == NULL || status <= 0 || laxity <= 0 ||
		TupleDescAttr(desc, laxity - 1)->atttypid != TIMESTAMPTZOID)
		return PointerGetDatum(NULL);

	new = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	pending = EnumLabelOid(TupleDescAttr(desc, status - 1)->atttypid, "pending");
	d = heap_getattr(new, status, desc, &isnull);
	if (isnull || DatumGetObjectId(d) != pending)
		return PointerGetDatum(NULL);
	d = heap_getattr(new, laxity, desc, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);	/* no entry: laxity_key is NOT NULL, or the index has none */
	key = DatumGetTimestampTz(d);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	old = trigdata->tg_trigtuple;
		bool		oldnull;
		Datum		o = heap_getattr(old, status, desc, &oldnull);

		/* pending before with the same key: its entry was there, the bound below it */
		if (!oldnull && DatumGetObjectId(o) == pending)
		{
			o = heap_getattr(old, laxity, desc, &oldnull);
			if (!oldnull && DatumGetTimestampTz(o) == key)
				return PointerGetDatum(NULL);
		}
	}

	SpinLockAcquire(&head_shared->mutex);
	if ((slot = FindSlot()) != NULL)
	{
		if (slot->valid && key < slot->bound)
			slot->bound = key;
		for (int i = 0; i < HEAD_WALKS; i++)
			if (slot->walks[i].id != 0 && key < slot->walks[i].lowest)
				slot->walks[i].lowest = key;
	}
	SpinLockRelease(&head_shared->mutex);
	return PointerGetDatum(NULL);
}

static void
HeadShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(ClaimHeadShared)));
}

static void
HeadShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	head_shared = ShmemInitStruct("tforge claim head", sizeof(ClaimHeadShared), &found);
	if (!found)
	{
		memset(head_shared, 0, sizeof(ClaimHeadShared));
		SpinLockInit(&head_shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* _PG_init: the bounds live in shared memory, so only with shared_preload_libraries. */
void
ClaimHeadInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = HeadShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = HeadShmemStartup;
}
