/*
 * pool_lists.c: the lists derived from tforge.gpu_blocks (sql/install/60_gpu.sql),
 * and the trigger that keeps them.
 *
 * The allocator needs three orders of a device's blocks that depend on a
 * block's status: free blocks by (size, offset) for best fit, held blocks
 * by tensor id, cached blocks by (last access, block id) for eviction. As
 * partial indexes of gpu_blocks they made every allocation and free an
 * update of an indexed column, so neither could be HOT: each inserted into
 * every index of gpu_blocks and ran the GiST exclusion check again. They
 * are three tables instead, gpu_free_blocks, gpu_tensor_blocks and
 * gpu_cached_blocks, each row standing for one block, and the indexes left
 * on gpu_blocks cover only what an exact-fit allocation or its free leaves
 * alone (block id, device, offset, size).
 *
 * tforge._gpu_blocks_sync, an AFTER ROW trigger on gpu_blocks, is their one
 * writer: for every row inserted, updated or deleted, by the allocator or
 * by a direct write, it compares what the old and the new version of the
 * block contribute to each list and deletes and inserts the difference, in
 * the writing transaction (a failed write takes its list changes with it).
 * A list is therefore exactly a recount of gpu_blocks at every statement
 * boundary, which tforge.gpu_check verifies. The trigger is SECURITY
 * DEFINER: no role may write the lists itself (99_privileges.sql), and it
 * runs fixed statements on fixed tables only, refusing (39P01) any table
 * but gpu_blocks and its Citus shards. Updates that change none of the
 * listed columns (priority, alignment, allocated_at, last_accessed of a
 * block that is not cached) write nothing.
 *
 * How the lists are written: outside Citus, through the executor's
 * routines for a single row (ExecSimpleRelationInsert/Delete, as logical
 * replication's apply writes a row: constraints, unique checks and index
 * entries as for any INSERT or DELETE), the entry to delete found where
 * this backend last wrote or read it (a checked hint, see ListHint) or
 * else by a probe of the list's index on its key, with the snapshot a
 * statement would take now. That is a tenth of an SQL statement's planning and executor
 * start-up, and the trigger fires twice per allocate+free pair. On a Citus
 * cluster the lists are Citus tables (distributed next to the blocks) and
 * the same changes are SQL statements, which Citus routes to the shard of
 * the block's device.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pool.h"
#include "tforge.h"

static PoolStatement free_add = {
	"INSERT INTO tforge.gpu_free_blocks (device_id, size_bytes, offset_bytes, block_id, end_bytes)"
	" VALUES ($1, $2, $3, $4, $5)",
	5, {TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID}
};

static PoolStatement free_drop = {
	"DELETE FROM tforge.gpu_free_blocks f"
	" WHERE f.device_id = $1 AND f.size_bytes = $2 AND f.offset_bytes = $3 AND f.block_id = $4",
	4, {TEXTOID, INT8OID, INT8OID, INT8OID}
};

static PoolStatement tensor_add = {
	"INSERT INTO tforge.gpu_tensor_blocks (tensor_id, device_id, block_id) VALUES ($1, $2, $3)",
	3, {TEXTOID, TEXTOID, INT8OID}
};

static PoolStatement tensor_drop = {
	"DELETE FROM tforge.gpu_tensor_blocks t WHERE t.tensor_id = $1 AND t.device_id = $2 AND t.block_id = $3",
	3, {TEXTOID, TEXTOID, INT8OID}
};

static PoolStatement cached_add = {
	"INSERT INTO tforge.gpu_cached_blocks (device_id, block_id, last_accessed) VALUES ($1, $2, $3)",
	3, {TEXTOID, INT8OID, TIMESTAMPTZOID}
};

static PoolStatement cached_drop = {
	"DELETE FROM tforge.gpu_cached_blocks c WHERE c.device_id = $1 AND c.block_id = $2",
	2, {TEXTOID, INT8OID}
};

/* TRUNCATE of gpu_blocks: every list empties. */
static PoolStatement free_clear = {"DELETE FROM tforge.gpu_free_blocks", 0, {InvalidOid}};
static PoolStatement tensor_clear = {"DELETE FROM tforge.gpu_tensor_blocks", 0, {InvalidOid}};
static PoolStatement cached_clear = {"DELETE FROM tforge.gpu_cached_blocks", 0, {InvalidOid}};

/* ---- direct writes (not on a Citus cluster) ---------------------------------- */

/* A list table opened for one trigger event's writes. */
typedef struct ListTable
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	int			list;			/* POOL_LIST_* */
} ListTable;

/*
 * Where this backend last saw each block's row of a list: the TID of the
 * row its trigger inserted, or of the free-list row best fit or a free's
 * neighbour lookup just read (PoolListRowSeen). A deletion tries that TID
 * first and takes the row only if it is visible to the deletion's
 * snapshot and equals, column for column, the row the block's version
 * makes; anything else (another backend wrote the row, it was deleted,
 * its TID reused, the table rewritten, the slot taken by another block)
 * falls back to the index probe. Equal rows are interchangeable entries,
 * so the hint never changes which row a list loses, only how it is found.
 * Why: an allocate+free pair deletes and re-inserts the same key, and
 * until their deleters' commits are known flushed (asynchronous commit:
 * no hint bits) the dead versions of the key cannot be marked dead in the
 * index, so a probe reads every one of them (a third of the pair's
 * instructions).
 */
#define LIST_HINTS 1024			/* per list, direct-mapped by block id */

typedef struct ListHint
{
	int64		block_id;
	Oid			relid;			/* InvalidOid: empty */
	ItemPointerData tid;
} ListHint;

/* hints[POOL_LISTS]: the rows of gpu_blocks itself (PoolBlockRowSeen) */
#define HINT_BLOCKS POOL_LISTS

static ListHint hints[POOL_LISTS + 1][LIST_HINTS];

static ListHint *
HintSlot(int list, int64 block_id)
{
	return &hints[list][(uint64) block_id % LIST_HINTS];
}

static void
HintSet(int list, Oid relid, int64 block_id, ItemPointer tid)
{
	ListHint   *h = HintSlot(list, block_id);

	if (!ItemPointerIsValid(tid))
		return;
	h->block_id = block_id;
	h->relid = relid;
	ItemPointerCopy(tid, &h->tid);
}

/*
 * The same for the rows of gpu_blocks itself: the version of each block
 * this backend last saw (written, as its trigger sees it, or read by a
 * probe of the primary key). Each allocate+free pair adds two versions to
 * the block's HOT chain, which PostgreSQL prunes only once the page is
 * nearly full, so a probe by block id walks dozens of versions; the
 * allocator's reads try the hinted version first (PoolBlockRowHint).
 * Only the version a snapshot sees is visible to it, and block ids are
 * unique, so a visible row with the block's id at the hinted place is the
 * row the probe would return.
 */
void
PoolBlockRowSeen(Oid relid, int64 block_id, ItemPointer tid)
{
	ListHint   *h = HintSlot(HINT_BLOCKS, block_id);

	if (tid != NULL && ItemPointerIsValid(tid))
		HintSet(HINT_BLOCKS, relid, block_id, tid);
	else if (h->block_id == block_id)
		h->relid = InvalidOid;
}

bool
PoolBlockRowHint(Oid relid, int64 block_id, ItemPointer tid)
{
	ListHint   *h = HintSlot(HINT_BLOCKS, block_id);

	if (!OidIsValid(relid) || h->relid != relid || h->block_id != block_id)
		return false;
	ItemPointerCopy(&h->tid, tid);
	return true;
}

void
PoolListRowSeen(int list, Oid relid, int64 block_id, ItemPointer tid)
{
	Assert(list >= 0 && list < POOL_LISTS);
	HintSet(list, relid, block_id, tid);
}

/* The list table opened, with the executor state of a learned-state write (RowWriteBegin, learned.c). */
static void
ListOpen(ListTable *t, int list, const char *table)
{
	t->list = list;
	t->rel = table_open(TforgeTable(table), RowExclusiveLock);
	t->estate = RowWriteBegin(t->rel, &t->rri);
	ExecOpenIndices(t->rri, false);
	t->slot = table_slot_create(t->rel, &t->estate->es_tupleTable);
}

static void
ListClose(ListTable *t)
{
	RowWriteEnd(t->estate, t->rri);
	table_close(t->rel, NoLock);
}

/* Insert the row values/nulls (every column of the list, in table order). */
static void
ListInsert(ListTable *t, const Datum *values, const bool *nulls, int64 block_id)
{
	TupleDesc	desc = RelationGetDescr(t->rel);
	int			i;

	ExecClearTuple(t->slot);
	for (i = 0; i < desc->natts; i++)
	{
		t->slot->tts_values[i] = values[i];
		t->slot->tts_isnull[i] = nulls[i];
	}
	ExecStoreVirtualTuple(t->slot);
	t->estate->es_output_cid = GetCurrentCommandId(true);
	ExecSimpleRelationInsert(t->rri, t->estate, t->slot);
	HintSet(t->list, RelationGetRelid(t->rel), block_id, &t->slot->tts_tid);
}

/*
 * Delete the row of block block_id whose key (the leading columns of index
 * index) equals key[0 .. nkeys - 1] (equality functions eq), as a statement would now:
 * this transaction's earlier writes and everything committed are seen.
 * False when there is no such row.
 */
/*
 * Whether the row at tid is visible to snapshot and is exactly row
 * values/nulls (every column, in table order); if so it is in t->slot.
 */
static bool
ListFetchRow(ListTable *t, ItemPointer tid, Snapshot snapshot, const Datum *values, const bool *nulls)
{
	TupleDesc	desc = RelationGetDescr(t->rel);
	int			i;

	if (!FetchVisibleAt(t->rel, tid, snapshot, t->slot))
		return false;
	slot_getallattrs(t->slot);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (t->slot->tts_isnull[i] != nulls[i])
			return false;
		if (!nulls[i] && !datumIsEqual(t->slot->tts_values[i], values[i], att->attbyval, att->attlen))
			return false;
	}
	return true;
}

/*
 * The row of block block_id whose key (the leading columns of index
 * index) equals key[0 .. nkeys - 1] (equality functions eq), visible to
 * snapshot, into t->slot; false when there is none.
 */
static bool
ListProbe(ListTable *t, const char *index, int nkeys, const Datum *key, const Oid *eq, int64 block_id,
		  Snapshot snapshot)
{
	AttrNumber	block_att = attnameAttNum(t->rel, "block_id", false);
	Relation	idx = index_open(TforgeTable(index), AccessShareLock);
	ScanKeyData keys[3];
	IndexScanDesc scan;
	bool		found = false;
	int			i;

	Assert(nkeys <= 3);
	for (i = 0; i < nkeys; i++)
	{
		ScanKeyInit(&keys[i], i + 1, BTEqualStrategyNumber, eq[i], key[i]);
		keys[i].sk_collation = idx->rd_indcollation[i];
	}
	scan = index_beginscan(t->rel, idx, snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	/*
	 * Newest entries first: equal keys are ordered by heap TID, and the
	 * live row of a key that allocations and frees keep deleting and
	 * re-inserting is usually the last of a run of dead versions that
	 * cannot be marked dead yet (see the hints above).
	 */
	while (!found && block_att > 0 && index_getnext_slot(scan, BackwardScanDirection, t->slot))
	{
		bool		isnull;

		found = DatumGetInt64(slot_getattr(t->slot, block_att, &isnull)) == block_id && !isnull;
	}
	index_endscan(scan);
	index_close(idx, NoLock);
	return found;
}

/*
 * Delete the row values/nulls of block block_id (its first nkeys columns
 * the key of index index, with equality functions eq), as a statement
 * would now: this transaction's earlier writes and everything committed
 * are seen. Tries the hint first, then the index. False when there is no
 * such row.
 */
static bool
ListDelete(ListTable *t, const char *index, int nkeys, const Datum *values, const bool *nulls, const Oid *eq,
		   int64 block_id)
{
	ListHint   *hint = HintSlot(t->list, block_id);
	Snapshot	snapshot;
	bool		found;

	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	found = hint->relid == RelationGetRelid(t->rel) && hint->block_id == block_id &&
		ListFetchRow(t, &hint->tid, snapshot, values, nulls);
	hint->relid = InvalidOid;
	if (!found)
		found = ListProbe(t, index, nkeys, values, eq, block_id, snapshot);
	if (found)
	{
		t->estate->es_snapshot = snapshot;
		t->estate->es_output_cid = GetCurrentCommandId(true);
		/* no BEFORE trigger on a list, so no EvalPlanQual state is needed */
		ExecSimpleRelationDelete(t->rri, t->estate, NULL, t->slot);
		t->estate->es_snapshot = InvalidSnapshot;
	}
	UnregisterSnapshot(snapshot);
	return found;
}

/* What one version of a block contributes to the lists. */
typedef struct BlockEntry
{
	bool		present;		/* false: no such version (old of an INSERT, new of a DELETE) */
	int64		block_id;
	Datum		device_id;
	int64		offset;
	int64		size;
	bool		free;
	bool		cached;
	bool		has_tensor;
	Datum		tensor_id;
	bool		accessed_null;
	TimestampTz last_accessed;
} BlockEntry;

/* The columns of gpu_blocks the lists are made of. */
typedef struct BlockColumns
{
	int			block_id;
	int			device_id;
	int			offset;
	int			size;
	int			status;
	int			tensor_id;
	int			last_accessed;
	Oid			free_label;
	Oid			cached_label;
} BlockColumns;

/* Column name of rel, which must have type typid; its number. */
static int
Column(Relation rel, const char *name, Oid typid)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), name);

	if (attnum <= 0 || TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid != typid)
		elog(ERROR, "tforge._gpu_blocks_sync: table \"%s\" has no column %s of the expected type",
			 RelationGetRelationName(rel), name);
	return attnum;
}

/* The OID of label of enum typid. */
static Oid
Label(Oid typid, const char *label)
{
	Oid			oid = EnumLabelOid(typid, label);

	if (!OidIsValid(oid))
		elog(ERROR, "tforge.gpu_block_status has no label \"%s\"", label);
	return oid;
}

/*
 * 39P01 unless rel is tforge.gpu_blocks or, on a Citus node, one of its
 * shards (tforge.gpu_blocks_<shard id>: only the owner creates tables in
 * schema tforge). The trigger is SECURITY DEFINER and writes the lists:
 * attached by tforge_admin to a table of its own, it would write them from
 * rows that are no blocks.
 */
static void
CheckTable(Relation rel)
{
	Oid			blocks = TforgeTable("gpu_blocks");
	const char *name = RelationGetRelationName(rel);
	const char *digits = name + strlen("gpu_blocks_");
	bool		shard = false;

	if (RelationGetRelid(rel) == blocks)
		return;
	if (RelationGetNamespace(rel) == get_rel_namespace(blocks) && strncmp(name, "gpu_blocks_", strlen("gpu_blocks_")) == 0 &&
		*digits != '\0' && strspn(digits, "0123456789") == strlen(digits))
		shard = CitusRoutesTable(blocks);
	if (!shard)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._gpu_blocks_sync() fires only on tforge.gpu_blocks, not on \"%s\"", name)));
}

/* The columns of rel (gpu_blocks or a shard of it). */
static void
ReadColumns(Relation rel, BlockColumns *cols)
{
	Oid			status_type;

	cols->block_id = Column(rel, "block_id", INT8OID);
	cols->device_id = Column(rel, "device_id", TEXTOID);
	cols->offset = Column(rel, "offset_bytes", INT8OID);
	cols->size = Column(rel, "size_bytes", INT8OID);
	cols->tensor_id = Column(rel, "tensor_id", TEXTOID);
	cols->last_accessed = Column(rel, "last_accessed", TIMESTAMPTZOID);
	cols->status = SPI_fnumber(RelationGetDescr(rel), "status");
	if (cols->status <= 0)
		elog(ERROR, "tforge._gpu_blocks_sync: table \"%s\" has no column status", RelationGetRelationName(rel));
	status_type = TupleDescAttr(RelationGetDescr(rel), cols->status - 1)->atttypid;
	cols->free_label = Label(status_type, "free");
	cols->cached_label = Label(status_type, "cached");
}

/* What tuple (NULL: none) contributes to the lists. */
static void
ReadEntry(Relation rel, const BlockColumns *cols, HeapTuple tuple, BlockEntry *e)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;
	Datum		status;

	memset(e, 0, sizeof(BlockEntry));
	if (tuple == NULL)
		return;
	e->present = true;
	/* block_id, device_id, offset, size and status are NOT NULL */
	e->block_id = DatumGetInt64(heap_getattr(tuple, cols->block_id, desc, &isnull));
	e->device_id = heap_getattr(tuple, cols->device_id, desc, &isnull);
	e->offset = DatumGetInt64(heap_getattr(tuple, cols->offset, desc, &isnull));
	e->size = DatumGetInt64(heap_getattr(tuple, cols->size, desc, &isnull));
	status = heap_getattr(tuple, cols->status, desc, &isnull);
	e->free = !isnull && DatumGetObjectId(status) == cols->free_label;
	e->cached = !isnull && DatumGetObjectId(status) == cols->cached_label;
	e->tensor_id = heap_getattr(tuple, cols->tensor_id, desc, &isnull);
	e->has_tensor = !isnull;
	e->last_accessed = DatumGetTimestampTz(heap_getattr(tuple, cols->last_accessed, desc, &e->accessed_null));
}

/* Whether two text values are the same bytes (a stale "different" only costs a rewrite). */
static bool
SameText(Datum a, Datum b)
{
	return datumIsEqual(a, b, false, -1);
}

/* XX001 when a list has no entry for a block it must hold (a restore without triggers). */
static void
Missing(const char *list, const BlockEntry *e)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the %s of GPU device \"%s\" has no entry for block " INT64_FORMAT,
					list, TextDatumGetCString(e->device_id), e->block_id),
			 errhint("Run tforge._gpu_rebuild_lists() to rebuild the lists from tforge.gpu_blocks.")));
}

/*
 * One list: old's entry out (it must be there) and new's in, unless both
 * are the same entry. row(e, values, nulls) fills the list's row for a
 * block version, key columns first in index order; same(o, n) says
 * whether two versions make the same entry; has(e) whether a version has
 * an entry at all.
 */
typedef struct BlockList
{
	int			list;			/* POOL_LIST_* (the hints) */
	const char *name;			/* for messages */
	const char *table;
	const char *index;			/* an index on the key columns */
	int			nkeys;
	Oid			eq[3];			/* equality of each key column */
	PoolStatement *add;			/* on a Citus cluster: INSERT of a row */
	PoolStatement *drop;		/* ... and DELETE by the row's first columns (key and block) */
	bool		(*has) (const BlockEntry *e);
	bool		(*same) (const BlockEntry *o, const BlockEntry *n);
	void		(*row) (const BlockEntry *e, Datum *values, bool *nulls);
} BlockList;

static bool
HasFree(const BlockEntry *e)
{
	return e->present && e->free;
}

static bool
SameFree(const BlockEntry *o, const BlockEntry *n)
{
	return o->block_id == n->block_id && o->offset == n->offset && o->size == n->size &&
		SameText(o->device_id, n->device_id);
}

/* (device_id, size_bytes, offset_bytes, block_id, end_bytes) */
static void
FreeRow(const BlockEntry *e, Datum *v, bool *nulls)
{
	v[0] = e->device_id;
	v[1] = Int64GetDatum(e->size);
	v[2] = Int64GetDatum(e->offset);
	v[3] = Int64GetDatum(e->block_id);
	v[4] = Int64GetDatum(e->offset + e->size);
	memset(nulls, false, 5 * sizeof(bool));
}

static bool
HasTensor(const BlockEntry *e)
{
	return e->present && e->has_tensor;
}

static bool
SameTensor(const BlockEntry *o, const BlockEntry *n)
{
	return o->block_id == n->block_id && SameText(o->tensor_id, n->tensor_id) && SameText(o->device_id, n->device_id);
}

/* (tensor_id, device_id, block_id) */
static void
TensorRow(const BlockEntry *e, Datum *v, bool *nulls)
{
	v[0] = e->tensor_id;
	v[1] = e->device_id;
	v[2] = Int64GetDatum(e->block_id);
	memset(nulls, false, 3 * sizeof(bool));
}

static bool
HasCached(const BlockEntry *e)
{
	return e->present && e->cached;
}

static bool
SameCached(const BlockEntry *o, const BlockEntry *n)
{
	return o->block_id == n->block_id && SameText(o->device_id, n->device_id) &&
		o->accessed_null == n->accessed_null && (o->accessed_null || o->last_accessed == n->last_accessed);
}

/* (device_id, block_id, last_accessed) */
static void
CachedRow(const BlockEntry *e, Datum *v, bool *nulls)
{
	v[0] = e->device_id;
	v[1] = Int64GetDatum(e->block_id);
	v[2] = TimestampTzGetDatum(e->last_accessed);
	nulls[0] = nulls[1] = false;
	nulls[2] = e->accessed_null;
}

static const BlockList lists[] = {
	{POOL_LIST_FREE, "free list", "gpu_free_blocks", "gpu_free_blocks_fit_idx", 3, {F_TEXTEQ, F_INT8EQ, F_INT8EQ},
	&free_add, &free_drop, HasFree, SameFree, FreeRow},
	{POOL_LIST_TENSOR, "tensor index", "gpu_tensor_blocks", "gpu_tensor_blocks_tensor_idx", 3, {F_TEXTEQ, F_TEXTEQ, F_INT8EQ},
	&tensor_add, &tensor_drop, HasTensor, SameTensor, TensorRow},
	{POOL_LIST_CACHED, "eviction order", "gpu_cached_blocks", "gpu_cached_blocks_block_idx", 2, {F_TEXTEQ, F_INT8EQ},
	&cached_add, &cached_drop, HasCached, SameCached, CachedRow},
};

/* Bring one list from old's entry to new's. */
static void
SyncList(const BlockList *l, const BlockEntry *o, const BlockEntry *n, bool routed)
{
	bool		has_old = l->has(o);
	bool		has_new = l->has(n);
	Datum		v[5];
	bool		nulls[5];
	ListTable	t;

	if (!has_old && !has_new)
		return;
	if (has_old && has_new && l->same(o, n))
		return;
	if (routed)
	{
		if (has_old)
		{
			l->row(o, v, nulls);
			if (PoolExec(l->drop, v, NULL, false) != 1)
				Missing(l->name, o);
		}
		if (has_new)
		{
			l->row(n, v, nulls);
			PoolExec(l->add, v, nulls, false);
		}
		return;
	}
	ListOpen(&t, l->list, l->table);
	if (has_old)
	{
		l->row(o, v, nulls);
		if (!ListDelete(&t, l->index, l->nkeys, v, nulls, l->eq, o->block_id))
			Missing(l->name, o);
	}
	if (has_new)
	{
		l->row(n, v, nulls);
		ListInsert(&t, v, nulls, n->block_id);
	}
	ListClose(&t);
}

/*
 * Trigger on tforge.gpu_blocks: AFTER INSERT OR UPDATE OR DELETE FOR EACH
 * ROW, and AFTER TRUNCATE FOR EACH STATEMENT (the lists empty).
 */
PG_FUNCTION_INFO_V1(tforge_gpu_blocks_sync);
Datum
tforge_gpu_blocks_sync(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	BlockColumns cols;
	BlockEntry	o;
	BlockEntry	n;
	bool		routed;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._gpu_blocks_sync() must be fired as an AFTER trigger")));
	event = trigdata->tg_event;
	CheckTable(trigdata->tg_relation);
	routed = PoolRouted();
	if (TRIGGER_FIRED_BY_TRUNCATE(event))
	{
		/*
		 * On a Citus cluster TRUNCATE reaches each shard of gpu_blocks, and
		 * tforge.distribute() truncates the coordinator's local copy:
		 * neither may empty every device's lists, so there the lists stay
		 * and tforge._gpu_rebuild_lists() (which distribute() runs)
		 * rebuilds them.
		 */
		if (!routed)
		{
			SPI_connect();
			PoolExec(&free_clear, NULL, NULL, false);
			PoolExec(&tensor_clear, NULL, NULL, false);
			PoolExec(&cached_clear, NULL, NULL, false);
			SPI_finish();
		}
		return PointerGetDatum(NULL);
	}
	if (!TRIGGER_FIRED_FOR_ROW(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._gpu_blocks_sync() must be fired for each row, or for TRUNCATE")));
	ReadColumns(trigdata->tg_relation, &cols);
	ReadEntry(trigdata->tg_relation, &cols, TRIGGER_FIRED_BY_INSERT(event) ? NULL : trigdata->tg_trigtuple, &o);
	ReadEntry(trigdata->tg_relation, &cols,
			  TRIGGER_FIRED_BY_INSERT(event) ? trigdata->tg_trigtuple :
			  TRIGGER_FIRED_BY_UPDATE(event) ? trigdata->tg_newtuple : NULL, &n);
	if (n.present)
		PoolBlockRowSeen(RelationGetRelid(trigdata->tg_relation), n.block_id,
						 TRIGGER_FIRED_BY_INSERT(event) ? &trigdata->tg_trigtuple->t_self : &trigdata->tg_newtuple->t_self);
	else
		PoolBlockRowSeen(InvalidOid, o.block_id, NULL);
	if (routed)
		SPI_connect();
	for (i = 0; i < lengthof(lists); i++)
		SyncList(&lists[i], &o, &n, routed);
	if (routed)
		SPI_finish();
	return PointerGetDatum(NULL);
}
