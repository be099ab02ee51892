/*
 * pool_read.c: the reads of a GPU pool that the allocator makes most often,
 * without an SQL statement: best fit (BestFit) and the block a free starts
 * from with its free neighbours (ReadFreeSpan). Each is a few index probes
 * with the snapshot a statement would take at that point, so they see what
 * the statements of pool.c would see; a statement's planning and executor
 * start-up cost more than the probes themselves. On a Citus cluster the
 * tables are read through statements instead (pool.c: best_fit,
 * free_plan), which ask the same questions of the device's shard.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_enum.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "pool.h"
#include "tforge.h"

/* The first row of an index scan with the given keys in direction dir; false if none. */
static bool
FirstByIndex(Relation rel, Relation index, Snapshot snapshot, ScanKey keys, int nkeys,
			 ScanDirection dir, TupleTableSlot *slot)
{
	IndexScanDesc scan = index_beginscan(rel, index, snapshot, nkeys, 0);
	bool		found;

	index_rescan(scan, keys, nkeys, NULL, 0);
	found = index_getnext_slot(scan, dir, slot);
	index_endscan(scan);
	return found;
}

bool
FetchVisibleAt(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot)
{
	/* a hint may point past the end of a table that a vacuum truncated since */
	return ItemPointerGetBlockNumber(tid) < RelationGetNumberOfBlocks(rel) &&
		table_tuple_fetch_row_version(rel, tid, snapshot, slot);
}

/*
 * The row of block block_id in gpu_blocks (rel, block id column id_att)
 * that snapshot sees, into slot, at the place this backend last saw it;
 * false when there is no hint or the hinted place does not hold it.
 */
static bool
FetchBlockHinted(Relation rel, AttrNumber id_att, int64 block_id, Snapshot snapshot, TupleTableSlot *slot)
{
	ItemPointerData tid;
	bool		isnull;
	Datum		id;

	if (!PoolBlockRowHint(RelationGetRelid(rel), block_id, &tid) || !FetchVisibleAt(rel, &tid, snapshot, slot))
		return false;
	id = slot_getattr(slot, id_att, &isnull);
	return !isnull && DatumGetInt64(id) == block_id;
}

bool
ProbeBlock(Relation rel, Relation pkey, AttrNumber id_att, int64 block_id, Snapshot snapshot, TupleTableSlot *slot)
{
	ScanKeyData key;

	if (FetchBlockHinted(rel, id_att, block_id, snapshot, slot))
		return true;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(block_id));
	if (!FirstByIndex(rel, pkey, snapshot, &key, 1, ForwardScanDirection, slot))
		return false;
	PoolBlockRowSeen(RelationGetRelid(rel), block_id, &slot->tts_tid);
	return true;
}

/*
 * free_plan without a statement, for a table that is not a Citus table:
 * the block by its primary key, the free block ending where it starts by
 * an equality probe of the free list's (device, end) and the block after
 * it by an equality probe of (device, offset), with the
 * snapshot a statement would take now (so reading what every earlier
 * holder of the device lock committed). Saves a statement's executor
 * start-up on every free. (A backward probe of (device, offset) for the
 * block before it read the rest of a leaf page, a few hundred entries:
 * PostgreSQL's B-tree scans a page at a time whatever the LIMIT; equality
 * probes read only the entries that match.)
 */
void
ReadFreeSpan(text *device_id, int64 block_id, FreeSpan *span)
{
	Relation	rel = table_open(TforgeTable("gpu_blocks"), AccessShareLock);
	Relation	pkey = index_open(TforgeTable("gpu_blocks_pkey"), AccessShareLock);
	Relation	byoffset = index_open(TforgeTable("gpu_blocks_offset"), AccessShareLock);
	Relation	freelist = table_open(TforgeTable("gpu_free_blocks"), AccessShareLock);
	Relation	byend = index_open(TforgeTable("gpu_free_blocks_end_idx"), AccessShareLock);
	TupleTableSlot *freeslot = table_slot_create(freelist, NULL);
	AttrNumber	free_id_att = attnameAttNum(freelist, "block_id", false);
	AttrNumber	free_offset_att = attnameAttNum(freelist, "offset_bytes", false);
	TupleDesc	desc = RelationGetDescr(rel);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	AttrNumber	id_att = attnameAttNum(rel, "block_id", false);
	AttrNumber	device_att = attnameAttNum(rel, "device_id", false);
	AttrNumber	offset_att = attnameAttNum(rel, "offset_bytes", false);
	AttrNumber	size_att = attnameAttNum(rel, "size_bytes", false);
	AttrNumber	status_att = attnameAttNum(rel, "status", false);
	Oid			free_label;
	Snapshot	snapshot;
	ScanKeyData keys[2];
	bool		isnull;
	HeapTuple	label;

	if (id_att <= 0 || device_att <= 0 || offset_att <= 0 || size_att <= 0 || status_att <= 0 ||
		free_id_att <= 0 || free_offset_att <= 0)
		elog(ERROR, "tforge.gpu_blocks or tforge.gpu_free_blocks lacks a column of a block");
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	label = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(TupleDescAttr(desc, status_att - 1)->atttypid),
							CStringGetDatum("free"));
	if (!HeapTupleIsValid(label))
		elog(ERROR, "tforge.gpu_block_status has no label \"free\"");
	free_label = ((Form_pg_enum) GETSTRUCT(label))->oid;
	ReleaseSysCache(label);
	memset(span, 0, sizeof(FreeSpan));

	/* as a statement through SPI: see this transaction's earlier writes, and a new snapshot under READ COMMITTED */
	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());

	if (ProbeBlock(rel, pkey, id_att, block_id, snapshot, slot) &&
		DatumGetBool(DirectFunctionCall2Coll(texteq, TupleDescAttr(desc, device_att - 1)->attcollation,
											 slot_getattr(slot, device_att, &isnull), PointerGetDatum(device_id))))
	{
		Oid			status = DatumGetObjectId(slot_getattr(slot, status_att, &isnull));
		int64		end;

		span->offset = DatumGetInt64(slot_getattr(slot, offset_att, &isnull));
		span->size = DatumGetInt64(slot_getattr(slot, size_att, &isnull));
		span->status = DatumGetCString(DirectFunctionCall1(enum_out, ObjectIdGetDatum(status)));
		end = span->offset + span->size;

		/* the free block before it: the free list's entry ending at its offset */
		ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(device_id));
		keys[0].sk_collation = byend->rd_indcollation[0];
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(span->offset));
		if (FirstByIndex(freelist, byend, snapshot, keys, 2, ForwardScanDirection, freeslot))
		{
			span->has_left = true;
			span->left = DatumGetInt64(slot_getattr(freeslot, free_id_att, &isnull));
			PoolListRowSeen(POOL_LIST_FREE, RelationGetRelid(freelist), span->left, &freeslot->tts_tid);
			span->left_offset = DatumGetInt64(slot_getattr(freeslot, free_offset_att, &isnull));
		}

		/* the block after it: the one starting where it ends */
		keys[0].sk_collation = byoffset->rd_indcollation[0];
		ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(end));
		if (FirstByIndex(rel, byoffset, snapshot, keys, 2, ForwardScanDirection, slot) &&
			DatumGetObjectId(slot_getattr(slot, status_att, &isnull)) == free_label)
		{
			span->has_right = true;
			span->right = DatumGetInt64(slot_getattr(slot, id_att, &isnull));
			span->right_end = end + DatumGetInt64(slot_getattr(slot, size_att, &isnull));
		}
	}
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	ExecDropSingleTupleTableSlot(freeslot);
	index_close(byend, NoLock);
	table_close(freelist, NoLock);
	index_close(byoffset, NoLock);
	index_close(pkey, NoLock);
	table_close(rel, NoLock);
}

/*
 * Best fit for actual bytes aligned to alignment on device_id: the first
 * entry of the free list, in its (device, size, offset) order from size
 * actual up, whose block holds the allocation at an aligned offset; the
 * rule of pool.c's best_fit statement. False when none does. read_only: a
 * lookup in the caller's snapshot (best_fit_block, a STABLE function);
 * else as a statement of the allocation would read, after its earlier
 * writes and with a new snapshot.
 */
bool
BestFit(text *device_id, int64 actual, int64 alignment, bool read_only, BestFitBlock *fit)
{
	Relation	rel = table_open(TforgeTable("gpu_free_blocks"), AccessShareLock);
	Relation	index = index_open(TforgeTable("gpu_free_blocks_fit_idx"), AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	AttrNumber	id_att = attnameAttNum(rel, "block_id", false);
	AttrNumber	offset_att = attnameAttNum(rel, "offset_bytes", false);
	AttrNumber	size_att = attnameAttNum(rel, "size_bytes", false);
	ScanKeyData keys[2];
	IndexScanDesc scan;
	Snapshot	snapshot;
	bool		found = false;
	bool		isnull;

	if (id_att <= 0 || offset_att <= 0 || size_att <= 0)
		elog(ERROR, "tforge.gpu_free_blocks lacks a column of a block");
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	if (!read_only)
		CommandCounterIncrement();
	snapshot = RegisterSnapshot(read_only ? GetActiveSnapshot() : GetTransactionSnapshot());
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ, PointerGetDatum(device_id));
	keys[0].sk_collation = index->rd_indcollation[0];
	ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(actual));
	scan = index_beginscan(rel, index, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	while (!found && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		int64		offset = DatumGetInt64(slot_getattr(slot, offset_att, &isnull));
		int64		size = DatumGetInt64(slot_getattr(slot, size_att, &isnull));
		int64		start = (offset + (alignment - 1)) & ~(alignment - 1);

		/* sizes and offsets are below 2^62, alignments at most 2^62: no overflow */
		if (start + actual <= offset + size)
		{
			found = true;
			fit->block_id = DatumGetInt64(slot_getattr(slot, id_att, &isnull));
			fit->offset = offset;
			fit->size = size;
			fit->start = start;
			PoolListRowSeen(POOL_LIST_FREE, RelationGetRelid(rel), fit->block_id, &slot->tts_tid);
		}
		CHECK_FOR_INTERRUPTS();
	}
	index_endscan(scan);
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, NoLock);
	table_close(rel, NoLock);
	return found;
}
