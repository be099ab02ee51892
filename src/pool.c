/*
 * pool.c: GPU memory pools (DESIGN.md component 3; seed 002, task 2): the
 * pure helpers, best-fit allocation with splitting, freeing with merging,
 * LRU eviction of cached blocks, block state changes and defragmentation.
 *
 * The state is the table tforge.gpu_blocks (sql/install/60_gpu.sql): per
 * device, blocks tiling [0, total_memory), never overlapping (an exclusion
 * constraint), never two free blocks side by side. Every write here is an
 * SQL statement through SPI with a plan kept per backend, so constraints,
 * the foreign key and row locks behave as for any client.
 *
 * Locking protocol: every change to the blocks of a device first locks the
 * device's row in tforge.gpu_devices in the mode of FOR NO KEY UPDATE
 * (LockDevice), then reads the blocks it will change with a new snapshot,
 * then writes. One lock per device, always taken first, so changes on one
 * device serialize and cannot deadlock with each other; other devices are
 * not touched. gpu_touch alone changes only last_accessed of one row and
 * takes just that row's lock.
 *
 * Cost: the device's row is found and locked by an index probe, as
 * logical replication's apply locks the row it changes; then an allocation
 * is the best fit (a walk of the free list's index, BestFit in
 * pool_read.c), the block taken (an UPDATE by id) and, when the block was
 * larger or misaligned, the free gap and tail inserted; a free reads the
 * block and its free neighbours by index probes (ReadFreeSpan) and is an
 * UPDATE, with a DELETE per free neighbour merged. Every step is an index probe, so both
 * are O(log n) in the blocks of the device. The block itself is read and
 * updated first at the row version this backend last saw (a TID checked
 * against the snapshot and the block id; PoolBlockRowSeen in
 * pool_lists.c), since a probe of the primary key walks the block's whole
 * HOT chain: each allocate+free pair adds two versions, and PostgreSQL
 * prunes them only once the page is nearly full. Short statements rather than
 * one CTE each: a statement's executor start-up grows with its plan, and
 * these touch the fewest rows and index entries a split or merge can (the
 * block keeps its row; only a new remainder is a new row). What every write
 * to gpu_blocks costs beyond that is its indexes and constraints, which
 * sql/install/60_gpu.sql and pool_rules.c keep cheap: a block that fits
 * exactly is taken and freed by HOT updates (no index of gpu_blocks covers
 * what they change; the free list, the tensor index and the eviction order
 * are tables the trigger of pool_lists.c keeps). Best
 * fit walks the free list gpu_free_blocks (device, size, offset) from the
 * aligned size up; a block that is large enough but cannot hold the allocation at
 * an aligned offset is passed over, which only happens for sizes below
 * actual size + alignment in pools whose blocks were allocated with
 * smaller alignments.
 *
 * On a Citus cluster (tforge.distribute()) gpu_devices and gpu_blocks are
 * distributed by device_id: their rows are in shards, and the tables under
 * their own names are empty shells. Every statement then goes through
 * Citus's planner with its parameters bound (no kept generic plan: Citus
 * routes a statement by the device it names), the device's row lock is a
 * SELECT ... FOR NO KEY UPDATE instead of the index probe, and every
 * statement about a block names the block's device too, so each is a
 * router query to the device's shard (local when the call was delegated to
 * that node). Only finding the device
 * of a block by its id (and gpu_touch's UPDATE by block id) asks every shard.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "parser/parse_relation.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "pool.h"
#include "queue.h"
#include "tforge.h"

/* Largest device, and so largest size or alignment: 2^62 bytes. */
#define POOL_MAX_BYTES (INT64CONST(1) << 62)

static PoolStatement device_total = {
	"SELECT d.total_memory FROM tforge.gpu_devices d WHERE d.device_id = $1",
	1, {TEXTOID}
};

/*
 * Best fit for $2 bytes aligned to $3 on device $1: the smallest free
 * block, then the lowest offset, in which align_up(offset, $3) + $2 <=
 * offset + size; start is that aligned offset. The one definition of best
 * fit: best_fit_block runs it alone, allocations (AllocateFit) first;
 * outside Citus both walk the same index without a statement (BestFit,
 * pool_read.c).
 * (Blocks of exactly the size first, by an equality probe in a UNION ALL,
 * cost more than they saved: the probe reads every free block of that
 * size on its leaf page, as the range scan reads the rest of it, and the
 * second scan node adds to every execution's start-up.)
 */
#define BEST_FIT \
	"SELECT f.block_id, f.offset_bytes, f.size_bytes, (f.offset_bytes + ($3 - 1)) & ~($3 - 1) AS start" \
	"  FROM tforge.gpu_free_blocks f" \
	" WHERE f.device_id = $1 AND f.size_bytes >= $2" \
	"   AND ((f.offset_bytes + ($3 - 1)) & ~($3 - 1)) + $2 <= f.offset_bytes + f.size_bytes" \
	" ORDER BY f.size_bytes, f.offset_bytes LIMIT 1"

static PoolStatement best_fit = {BEST_FIT, 3, {TEXTOID, INT8OID, INT8OID}};

/*
 * Allocation, after best fit found block $1 of device $2, free and
 * spanning [$10, $10 + $11) as the free list says: the block
 * becomes the allocation [$3, $3 + $4); InsertFree (insert_free below)
 * then adds the leading alignment gap and the tail as free blocks. The
 * block shrinks before the free blocks appear, so the exclusion constraint
 * never sees an overlap. (Best fit and this UPDATE as one statement, an
 * UPDATE ... FROM the best fit, costs more: its plan's start-up outweighs
 * the second statement's.)
 */
static PoolStatement take_block = {
	"UPDATE tforge.gpu_blocks b"
	"   SET offset_bytes = $3, size_bytes = $4, alignment = $5, status = $6::tforge.gpu_block_status,"
	"       tensor_id = $7, priority = $8, allocated_at = $9, last_accessed = $9"
	" WHERE b.block_id = $1 AND b.device_id = $2"
	"   AND b.status OPERATOR(pg_catalog.=) 'free' AND b.offset_bytes = $10 AND b.size_bytes = $11",
	11, {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, INT8OID, INT8OID}
};

/*
 * take_block with the block's row version named by its TID as well ($12):
 * see ExecOnBlock.
 */
static PoolStatement take_block_at = {
	"UPDATE tforge.gpu_blocks b"
	"   SET offset_bytes = $3, size_bytes = $4, alignment = $5, status = $6::tforge.gpu_block_status,"
	"       tensor_id = $7, priority = $8, allocated_at = $9, last_accessed = $9"
	" WHERE b.ctid = $12 AND b.block_id = $1 AND b.device_id = $2"
	"   AND b.status OPERATOR(pg_catalog.=) 'free' AND b.offset_bytes = $10 AND b.size_bytes = $11",
	12, {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, INT8OID, INT8OID,
	TIDOID}
};

/*
 * A free, read first: block $1 of device $2 (its offset, size and status)
 * and its free neighbours, the free block ending where it starts (id,
 * offset) and the free block starting where it ends (id, end). No row:
 * no such block.
 */
static PoolStatement free_plan = {
	"SELECT b.offset_bytes, b.size_bytes, b.status::text, l.block_id, l.offset_bytes, r.block_id, r.end_bytes"
	"  FROM tforge.gpu_blocks b"
	"  LEFT JOIN LATERAL (SELECT z.block_id, z.offset_bytes, z.status FROM tforge.gpu_blocks z"
	"                      WHERE z.device_id = $2 AND z.offset_bytes < b.offset_bytes"
	"                      ORDER BY z.offset_bytes DESC LIMIT 1) l ON l.status OPERATOR(pg_catalog.=) 'free'"
	"  LEFT JOIN LATERAL (SELECT z.block_id, z.offset_bytes + z.size_bytes AS end_bytes, z.status FROM tforge.gpu_blocks z"
	"                      WHERE z.device_id = $2 AND z.offset_bytes = b.offset_bytes + b.size_bytes) r"
	"         ON r.status OPERATOR(pg_catalog.=) 'free'"
	" WHERE b.block_id = $1 AND b.device_id = $2",
	2, {INT8OID, TEXTOID}
};

/* A merged neighbour goes: block $1 of device $2. */
static PoolStatement delete_block = {
	"DELETE FROM tforge.gpu_blocks b WHERE b.block_id = $1 AND b.device_id = $2",
	2, {INT8OID, TEXTOID}
};

/* Then block $1 of device $2 becomes the free block [$3, $3 + $4) over its neighbours' space. */
static PoolStatement free_block = {
	"UPDATE tforge.gpu_blocks b"
	"   SET status = 'free', alignment = NULL, tensor_id = NULL, priority = 0,"
	"       allocated_at = NULL, last_accessed = NULL, offset_bytes = $3, size_bytes = $4"
	" WHERE b.block_id = $1 AND b.device_id = $2",
	4, {INT8OID, TEXTOID, INT8OID, INT8OID}
};

/* free_block with the block's row version named by its TID as well ($5): see ExecOnBlock. */
static PoolStatement free_block_at = {
	"UPDATE tforge.gpu_blocks b"
	"   SET status = 'free', alignment = NULL, tensor_id = NULL, priority = 0,"
	"       allocated_at = NULL, last_accessed = NULL, offset_bytes = $3, size_bytes = $4"
	" WHERE b.ctid = $5 AND b.block_id = $1 AND b.device_id = $2",
	5, {INT8OID, TEXTOID, INT8OID, INT8OID, TIDOID}
};

/* The status of block $1 of device $2. */
static PoolStatement block_status = {
	"SELECT b.status::text FROM tforge.gpu_blocks b WHERE b.block_id = $1 AND b.device_id = $2",
	2, {INT8OID, TEXTOID}
};

static PoolStatement set_status = {
	"UPDATE tforge.gpu_blocks b SET status = $3::tforge.gpu_block_status WHERE b.block_id = $1 AND b.device_id = $2",
	3, {INT8OID, TEXTOID, TEXTOID}
};

/* The device of block $1, on a Citus cluster (BlockDevice): asks every shard. */
static PoolStatement block_device = {
	"SELECT b.device_id FROM tforge.gpu_blocks b WHERE b.block_id = $1",
	1, {INT8OID}
};

/* LockDevice on a Citus cluster: the row lock, through the device's shard. */
static PoolStatement lock_device = {
	"SELECT d.total_memory FROM tforge.gpu_devices d WHERE d.device_id = $1 FOR NO KEY UPDATE",
	1, {TEXTOID}
};

static PoolStatement touch = {
	"UPDATE tforge.gpu_blocks b SET last_accessed = $2"
	" WHERE b.block_id = $1 AND b.status OPERATOR(pg_catalog.<>) 'free'",
	2, {INT8OID, TIMESTAMPTZOID}
};

/* gpu_touch(device, block, at): block $1 of device $3, one shard on Citus. */
static PoolStatement touch_on = {
	"UPDATE tforge.gpu_blocks b SET last_accessed = $2"
	" WHERE b.block_id = $1 AND b.device_id = $3 AND b.status OPERATOR(pg_catalog.<>) 'free'",
	3, {INT8OID, TIMESTAMPTZOID, TEXTOID}
};

/* The next victim: the least recently accessed cached block. */
static PoolStatement lru_cached = {
	"SELECT c.block_id FROM tforge.gpu_cached_blocks c"
	" WHERE c.device_id = $1 ORDER BY c.last_accessed, c.block_id LIMIT 1",
	1, {TEXTOID}
};

static PoolStatement pool_stats = {
	"SELECT s.free_bytes, s.largest_free_block, s.fragmentation_ratio FROM tforge._gpu_stats($1, $2) s",
	2, {TEXTOID, INT8OID}
};

/* The largest free block, for claims: its span. */
static PoolStatement largest_free = {
	"SELECT f.offset_bytes, f.size_bytes FROM tforge.gpu_free_blocks f"
	" WHERE f.device_id = $1 ORDER BY f.size_bytes DESC, f.offset_bytes LIMIT 1",
	1, {TEXTOID}
};

/* The blocks of tensor $1 and their devices, from the tensor list (its index). */
static PoolStatement tensor_blocks = {
	"SELECT t.block_id, t.device_id FROM tforge.gpu_tensor_blocks t WHERE t.tensor_id = $1 ORDER BY t.block_id",
	1, {TEXTOID}
};

/* The devices holding blocks of the tensors in $1, from the tensor list (its index). */
static PoolStatement tensor_devices = {
	"SELECT DISTINCT t.device_id FROM tforge.gpu_tensor_blocks t WHERE t.tensor_id = ANY ($1)",
	1, {TEXTARRAYOID}
};

static PoolStatement all_blocks = {
	"SELECT b.block_id, b.offset_bytes, b.size_bytes, b.alignment, b.status::text, b.tensor_id"
	"  FROM tforge.gpu_blocks b WHERE b.device_id = $1 ORDER BY b.offset_bytes",
	1, {TEXTOID}
};

static PoolStatement delete_free = {
	"DELETE FROM tforge.gpu_blocks b WHERE b.device_id = $1 AND b.status OPERATOR(pg_catalog.=) 'free'",
	1, {TEXTOID}
};

static PoolStatement move_block = {
	"UPDATE tforge.gpu_blocks b SET offset_bytes = $2 WHERE b.block_id = $1 AND b.device_id = $3",
	3, {INT8OID, INT8OID, TEXTOID}
};

static PoolStatement insert_free = {
	"INSERT INTO tforge.gpu_blocks (device_id, offset_bytes, size_bytes, status) VALUES ($1, $2, $3, 'free')",
	3, {TEXTOID, INT8OID, INT8OID}
};

/* ---- pure helpers ---------------------------------------------------------- */

static inline bool
IsPowerOfTwo(int64 n)
{
	return n > 0 && (n & (n - 1)) == 0;
}

/* 22023 unless alignment is a power of two. */
static void
CheckAlignment(int64 alignment)
{
	if (!IsPowerOfTwo(alignment))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alignment must be a power of two, got " INT64_FORMAT, alignment),
				 errhint("Use 1, 2, 4, ..., 256, ...")));
}

/* size rounded up to a multiple of alignment (a power of two); 22003 on overflow. */
static int64
AlignUp(int64 size, int64 alignment)
{
	int64		sum;

	CheckAlignment(alignment);
	if (size < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("size must not be negative, got " INT64_FORMAT, size)));
	if (pg_add_s64_overflow(size, alignment - 1, &sum))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("size " INT64_FORMAT " aligned to " INT64_FORMAT " is out of range for bigint",
						size, alignment)));
	return sum & ~(alignment - 1);
}

PG_FUNCTION_INFO_V1(tforge_align_up);
Datum
tforge_align_up(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(AlignUp(PG_GETARG_INT64(0), PG_GETARG_INT64(1)));
}

PG_FUNCTION_INFO_V1(tforge_is_power_of_two);
Datum
tforge_is_power_of_two(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(IsPowerOfTwo(PG_GETARG_INT64(0)));
}

/* 22023 for a negative byte count. */
static void
CheckBytes(int64 value, const char *what)
{
	if (value < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative, got " INT64_FORMAT, what, value)));
}

/* memory pressure = allocated / total, clamped to [0, 1] */
PG_FUNCTION_INFO_V1(tforge_memory_pressure);
Datum
tforge_memory_pressure(PG_FUNCTION_ARGS)
{
	int64		allocated = PG_GETARG_INT64(0);
	int64		total = PG_GETARG_INT64(1);

	CheckBytes(allocated, "allocated bytes");
	CheckBytes(total, "total bytes");
	if (total == 0)
		PG_RETURN_FLOAT8(allocated > 0 ? 1.0 : 0.0);
	PG_RETURN_FLOAT8(Min(1.0, (double) allocated / (double) total));
}

/* seconds to OOM = free bytes / allocation rate (bytes/s); Infinity for a rate <= 0 */
PG_FUNCTION_INFO_V1(tforge_estimate_oom_seconds);
Datum
tforge_estimate_oom_seconds(PG_FUNCTION_ARGS)
{
	int64		free_bytes = PG_GETARG_INT64(0);
	double		rate = PG_GETARG_FLOAT8(1);

	CheckBytes(free_bytes, "free bytes");
	if (isnan(rate))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("allocation rate must be a number, got NaN")));
	if (rate <= 0)
		PG_RETURN_FLOAT8(get_float8_infinity());
	PG_RETURN_FLOAT8((double) free_bytes / rate);
}

/* pool size = ceil(peak * headroom / page) * page, bytes */
PG_FUNCTION_INFO_V1(tforge_optimal_pool_size);
Datum
tforge_optimal_pool_size(PG_FUNCTION_ARGS)
{
	int64		peak = PG_GETARG_INT64(0);
	double		headroom = PG_GETARG_FLOAT8(1);
	int64		page = PG_GETARG_INT64(2);
	double		pages;

	CheckBytes(peak, "peak usage");
	if (isnan(headroom) || isinf(headroom) || headroom < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headroom factor must be a finite number >= 0, got %s", float8out_internal(headroom))));
	if (page <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("page size must be positive, got " INT64_FORMAT, page)));
	pages = ceil((double) peak * headroom / (double) page);
	if (!(pages * (double) page < 9.2233720368547758e18))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("pool size for peak " INT64_FORMAT " with headroom %s is out of range for bigint",
						peak, float8out_internal(headroom))));
	PG_RETURN_INT64((int64) pages * page);
}

/* fragmentation > threshold and largest free block < min_block_size */
PG_FUNCTION_INFO_V1(tforge_should_defragment);
Datum
tforge_should_defragment(PG_FUNCTION_ARGS)
{
	HeapTupleHeader stats = PG_GETARG_HEAPTUPLEHEADER(0);
	double		threshold = PG_GETARG_FLOAT8(1);
	int64		min_block = PG_GETARG_INT64(2);
	bool		fnull;
	bool		lnull;
	Datum		frag = GetAttributeByName(stats, "fragmentation_ratio", &fnull);
	Datum		largest = GetAttributeByName(stats, "largest_free_block", &lnull);

	if (isnan(threshold))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fragmentation threshold must be a number, got NaN")));
	if (fnull || lnull)
		PG_RETURN_NULL();
	PG_RETURN_BOOL(DatumGetFloat8(frag) > threshold && DatumGetInt64(largest) < min_block);
}

/* ---- devices and blocks ------------------------------------------------------ */

static void
UnknownDevice(text *device_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("GPU device \"%s\" does not exist", text_to_cstring(device_id)),
			 errhint("Add it with tforge.gpu_add_device().")));
}

static void
UnknownBlock(int64 block_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("GPU block " INT64_FORMAT " does not exist", block_id)));
}

/* 55000: the block's status does not allow what was asked. */
static void
WrongStatus(int64 block_id, const char *status, const char *action)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s GPU block " INT64_FORMAT ": it is %s", action, block_id, status)));
}

/*
 * Lock the device's row in tforge.gpu_devices (as SELECT ... FOR NO KEY
 * UPDATE would) and return its total memory; 42704 if there is no such
 * device. The row is found and locked the way logical replication's apply
 * finds the row it changes (RelationFindReplTupleByIndex: the primary key,
 * waiting for a transaction that holds the row, then the newest version),
 * which costs an index probe instead of a statement. Statements run after
 * it take a new snapshot and see what the previous holder committed.
 */
static int64
LockDevice(text *device_id)
{
	Relation	rel;
	TupleDesc	desc;
	TupleTableSlot *key;
	TupleTableSlot *row;
	AttrNumber	id_att;
	AttrNumber	total_att;
	bool		found;
	bool		isnull = true;
	int64		total = 0;

	if (PoolRouted())
	{
		Datum		v = PointerGetDatum(device_id);

		if (PoolExec(&lock_device, &v, NULL, false) == 0)
			UnknownDevice(device_id);
		total = ResultInt8(0, 1, &isnull);
		if (isnull)
			elog(ERROR, "tforge: GPU device without total memory");
		return total;
	}
	rel = table_open(TforgeTable("gpu_devices"), RowShareLock);
	desc = RelationGetDescr(rel);
	key = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	row = table_slot_create(rel, NULL);
	id_att = attnameAttNum(rel, "device_id", false);
	total_att = attnameAttNum(rel, "total_memory", false);
	if (id_att <= 0 || total_att <= 0)
		elog(ERROR, "tforge.gpu_devices lacks device_id or total_memory");
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	ExecClearTuple(key);
	memset(key->tts_isnull, true, sizeof(bool) * desc->natts);
	key->tts_values[id_att - 1] = PointerGetDatum(device_id);
	key->tts_isnull[id_att - 1] = false;
	ExecStoreVirtualTuple(key);
	found = RelationFindReplTupleByIndex(rel, TforgeTable("gpu_devices_pkey"), LockTupleNoKeyExclusive, key, row);
	if (found)
	{
		Datum		d = slot_getattr(row, total_att, &isnull);

		total = isnull ? 0 : DatumGetInt64(d);
	}
	ExecDropSingleTupleTableSlot(key);
	ExecDropSingleTupleTableSlot(row);
	table_close(rel, NoLock);
	if (!found)
		UnknownDevice(device_id);
	if (isnull)
		elog(ERROR, "tforge: GPU device without total memory");
	return total;
}

/* The device of a block, as the latest snapshot sees it (a block never changes device); NULL if none. */
static text *
BlockDevice(int64 block_id)
{
	Relation	rel;
	AttrNumber	id_att;
	AttrNumber	device_att;
	Relation	pkey;
	Snapshot	snapshot;
	TupleTableSlot *slot;
	text	   *device = NULL;

	if (PoolRouted())
	{
		Datum		v = Int64GetDatum(block_id);
		bool		isnull;
		Datum		d;

		if (PoolExec(&block_device, &v, NULL, false) == 0)
			return NULL;
		d = ResultValue(0, 1, &isnull);
		return isnull ? NULL : DatumGetTextPCopy(d);
	}
	rel = table_open(TforgeTable("gpu_blocks"), AccessShareLock);
	id_att = attnameAttNum(rel, "block_id", false);
	device_att = attnameAttNum(rel, "device_id", false);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	if (id_att <= 0 || device_att <= 0)
		elog(ERROR, "tforge.gpu_blocks lacks block_id or device_id");
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	pkey = index_open(TforgeTable("gpu_blocks_pkey"), AccessShareLock);
	slot = table_slot_create(rel, NULL);
	if (ProbeBlock(rel, pkey, id_att, block_id, snapshot, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, device_att, &isnull);

		if (!isnull)
			device = DatumGetTextPCopy(d);
	}
	ExecDropSingleTupleTableSlot(slot);
	index_close(pkey, NoLock);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
	return device;
}

/* Lock the device of a block (42704 if the block is unknown); returns its id. */
static text *
LockBlockDevice(int64 block_id)
{
	text	   *device = BlockDevice(block_id);

	if (device == NULL)
		UnknownBlock(block_id);
	(void) LockDevice(device);
	return device;
}

/* tforge._gpu_total(device_id): total memory, or 42704. */
PG_FUNCTION_INFO_V1(tforge_gpu_total);
Datum
tforge_gpu_total(PG_FUNCTION_ARGS)
{
	text	   *device_id = PG_GETARG_TEXT_PP(0);
	Datum		v = PointerGetDatum(device_id);
	int64		total;

	SPI_connect();
	if (PoolExec(&device_total, &v, NULL, true) == 0)
		UnknownDevice(device_id);
	total = ResultInt8(0, 1, NULL);
	SPI_finish();
	PG_RETURN_INT64(total);
}

static void InsertFree(text *device_id, int64 start, int64 end);

/*
 * Run stmt, an UPDATE of block block_id whose WHERE names the block by its
 * id: first as at, the same statement with the row version also named by
 * the TID this backend last saw it at (one more parameter, after stmt's in
 * values), which the planner reads by a TID scan instead of a probe of
 * the primary key that walks the block's HOT chain (see
 * PoolBlockRowSeen). When the hint is stale at finds no row and stmt runs
 * as it always did. Returns the rows updated.
 */
static uint64
ExecOnBlock(PoolStatement *at, PoolStatement *stmt, Datum *values, int64 block_id)
{
	ItemPointerData tid;
	uint64		n;

	Assert(at->nargs == stmt->nargs + 1);
	if (!PoolRouted() && PoolBlockRowHint(TforgeTable("gpu_blocks"), block_id, &tid))
	{
		values[stmt->nargs] = PointerGetDatum(&tid);
		n = PoolExec(at, values, NULL, false);
		if (n > 0)
			return n;
	}
	return PoolExec(stmt, values, NULL, false);
}

/* Best fit (see best_fit): BestFit's index walk, or the statement on a Citus cluster. */
static bool
FindBestFit(text *device_id, int64 actual, int64 alignment, bool read_only, BestFitBlock *fit)
{
	Datum		v[3] = {PointerGetDatum(device_id), Int64GetDatum(actual), Int64GetDatum(alignment)};

	if (!PoolRouted())
		return BestFit(device_id, actual, alignment, read_only, fit);
	if (PoolExec(&best_fit, v, NULL, read_only) == 0)
		return false;
	fit->block_id = ResultInt8(0, 1, NULL);
	fit->offset = ResultInt8(0, 2, NULL);
	fit->size = ResultInt8(0, 3, NULL);
	fit->start = ResultInt8(0, 4, NULL);
	return true;
}

/*
 * Allocate actual bytes aligned to alignment in the best fit on a locked
 * device; false when nothing fits. *block_id and *offset: the allocation.
 * Short statements, each an index probe and each routed to the device's
 * shard on a Citus cluster: best fit, the block taken, then the free gap
 * and tail inserted (gap first).
 */
static bool
AllocateFit(text *device_id, int64 actual, int64 alignment, const char *status, text *tensor_id,
			int32 priority, int64 *block_id, int64 *offset)
{
	Datum		t[12];
	BestFitBlock fit;
	int64		from;
	int64		size;

	if (!FindBestFit(device_id, actual, alignment, false, &fit))
		return false;
	*block_id = fit.block_id;
	from = fit.offset;
	size = fit.size;
	*offset = fit.start;
	t[0] = Int64GetDatum(*block_id);
	t[1] = PointerGetDatum(device_id);
	t[2] = Int64GetDatum(*offset);
	t[3] = Int64GetDatum(actual);
	t[4] = Int64GetDatum(alignment);
	t[5] = CStringGetTextDatum(status);
	t[6] = PointerGetDatum(tensor_id);
	t[7] = Int32GetDatum(priority);
	t[8] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	t[9] = Int64GetDatum(from);
	t[10] = Int64GetDatum(size);
	/* no row: a BEFORE trigger skipped it (the device lock keeps the free list and the block in step) */
	if (ExecOnBlock(&take_block_at, &take_block, t, *block_id) != 1)
		SkippedByTrigger("gpu_blocks", psprintf("the allocation of GPU block " INT64_FORMAT, *block_id));
	InsertFree(device_id, from, *offset);
	InsertFree(device_id, *offset + actual, from + size);
	return true;
}

/* free_plan through SPI (a Citus table): the same span. */
static void
ReadFreeSpanRouted(text *device_id, int64 block_id, FreeSpan *span)
{
	Datum		v[2] = {Int64GetDatum(block_id), PointerGetDatum(device_id)};
	bool		isnull;

	memset(span, 0, sizeof(FreeSpan));
	if (PoolExec(&free_plan, v, NULL, false) == 0)
		return;
	span->offset = ResultInt8(0, 1, NULL);
	span->size = ResultInt8(0, 2, NULL);
	span->status = ResultText(0, 3);
	span->left = ResultInt8(0, 4, &isnull);
	span->has_left = !isnull;
	if (span->has_left)
		span->left_offset = ResultInt8(0, 5, NULL);
	span->right = ResultInt8(0, 6, &isnull);
	span->has_right = !isnull;
	if (span->has_right)
		span->right_end = ResultInt8(0, 7, NULL);
}

/*
 * Free a block of a locked device and merge it with its free neighbours;
 * 42704 if there is no such block, 55000 if it is free already. Returns
 * the block's size. The neighbours go first, then the block grows over
 * their space (so no two rows ever overlap); the freed block keeps its id.
 */
static int64
FreeLocked(text *device_id, int64 block_id)
{
	Datum		v[5] = {0, PointerGetDatum(device_id), 0, 0, 0};
	FreeSpan	span;
	int64		from;
	int64		end;

	if (PoolRouted())
		ReadFreeSpanRouted(device_id, block_id, &span);
	else
		ReadFreeSpan(device_id, block_id, &span);
	if (span.status == NULL)
		UnknownBlock(block_id);
	if (strcmp(span.status, "free") == 0)
		WrongStatus(block_id, span.status, "free");
	from = span.offset;
	end = span.offset + span.size;
	if (span.has_left)
	{
		v[0] = Int64GetDatum(span.left);
		PoolExec(&delete_block, v, NULL, false);
		from = span.left_offset;
	}
	if (span.has_right)
	{
		v[0] = Int64GetDatum(span.right);
		PoolExec(&delete_block, v, NULL, false);
		end = span.right_end;
	}
	v[0] = Int64GetDatum(block_id);
	v[2] = Int64GetDatum(from);
	v[3] = Int64GetDatum(end - from);
	if (ExecOnBlock(&free_block_at, &free_block, v, block_id) != 1)	/* (the device lock keeps it otherwise) */
		SkippedByTrigger("gpu_blocks", psprintf("the release of GPU block " INT64_FORMAT, block_id));
	return span.size;
}

/*
 * Evict the least recently accessed cached block of a locked device; its
 * size, or 0 if none. The caller runs each eviction in an SPI connection of
 * its own (SPI_connect ... SPI_finish), so that an eviction's statements
 * and their results go with it: a device may hold any number of cached
 * blocks, and each eviction's results (about 8 kB) otherwise stayed until
 * the call returned.
 */
static int64
EvictOne(text *device_id)
{
	Datum		v = PointerGetDatum(device_id);

	if (PoolExec(&lru_cached, &v, NULL, false) == 0)
		return 0;
	return FreeLocked(device_id, ResultInt8(0, 1, NULL));
}

/*
 * Evict cached blocks, least recently accessed first, until the allocation
 * fits, and make it. The evictions run in a subtransaction that is rolled
 * back when even evicting every cached block is not enough: a failed
 * allocation changes nothing.
 */
static bool
EvictAndAllocate(text *device_id, int64 actual, int64 alignment, const char *status, text *tensor_id,
				 int32 priority, int64 *block_id, int64 *offset)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	bool		found = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	for (;;)
	{
		bool		evicted;

		CHECK_FOR_INTERRUPTS();
		SPI_connect();			/* (EvictOne) */
		evicted = EvictOne(device_id) > 0;
		found = evicted && AllocateFit(device_id, actual, alignment, status, tensor_id, priority,
									   block_id, offset);
		SPI_finish();
		if (!evicted || found)
			break;
	}
	if (found)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcontext);
	CurrentResourceOwner = oldowner;
	return found;
}

/* The allocation's size after alignment, validated (22023, 22003). */
static int64
RequestSize(int64 size, int64 alignment)
{
	CheckAlignment(alignment);
	if (size <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("allocation size must be positive, got " INT64_FORMAT, size)));
	return AlignUp(size, alignment);
}

/* 22023 when even the whole device could not hold the allocation. */
static void
CheckFitsDevice(text *device_id, int64 size, int64 actual, int64 total)
{
	if (actual > total)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("allocation of " INT64_FORMAT " bytes (" INT64_FORMAT " aligned) exceeds the " INT64_FORMAT
						" bytes of GPU device \"%s\"", size, actual, total, text_to_cstring(device_id))));
}

static void
PreventWrites(const char *what)
{
	PreventCommandIfReadOnly(what);
	PreventCommandDuringRecovery(what);
}

/*
 * gpu_allocate(device_id, tensor_id, size, alignment, pinned, priority)
 *   -> (success, block_id, offset_bytes, actual_size, error)
 */
PG_FUNCTION_INFO_V1(tforge_gpu_allocate);
Datum
tforge_gpu_allocate(PG_FUNCTION_ARGS)
{
	MemoryContext outer = CurrentMemoryContext;
	TupleDesc	desc;
	text	   *device_id;
	text	   *tensor_id;
	int64		size;
	int64		alignment;
	int64		actual;
	int64		total;
	int64		block_id;
	int64		offset;
	const char *status;
	Datum		r[5] = {0, 0, 0, 0, 0};
	bool		rn[5] = {false, true, true, false, true};

	RequireArg(fcinfo, 0, "device_id");
	RequireArg(fcinfo, 1, "tensor_id");
	RequireArg(fcinfo, 2, "size");
	RequireArg(fcinfo, 3, "alignment");
	RequireArg(fcinfo, 4, "pinned");
	RequireArg(fcinfo, 5, "priority");
	device_id = PG_GETARG_TEXT_PP(0);
	tensor_id = PG_GETARG_TEXT_PP(1);
	size = PG_GETARG_INT64(2);
	alignment = PG_GETARG_INT64(3);
	if (VARSIZE_ANY_EXHDR(tensor_id) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tensor_id must not be empty")));
	actual = RequestSize(size, alignment);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "tforge.gpu_allocate must return a record");
	PreventWrites("gpu_allocate()");

	SPI_connect();
	total = LockDevice(device_id);
	CheckFitsDevice(device_id, size, actual, total);
	r[3] = Int64GetDatum(actual);
	status = PG_GETARG_BOOL(4) ? "pinned" : "allocated";
	if (AllocateFit(device_id, actual, alignment, status, tensor_id, PG_GETARG_INT32(5), &block_id, &offset) ||
		EvictAndAllocate(device_id, actual, alignment, status, tensor_id, PG_GETARG_INT32(5), &block_id, &offset))
	{
		r[0] = BoolGetDatum(true);
		r[1] = Int64GetDatum(block_id);
		rn[1] = false;
		r[2] = Int64GetDatum(offset);
		rn[2] = false;
	}
	else
	{
		Datum		v[2] = {PointerGetDatum(device_id), Int64GetDatum(total)};
		int64		free_bytes;
		int64		largest;
		double		frag;
		MemoryContext spi;

		if (PoolExec(&pool_stats, v, NULL, false) != 1)
			elog(ERROR, "tforge: no statistics for GPU device");
		free_bytes = ResultInt8(0, 1, NULL);
		largest = ResultInt8(0, 2, NULL);
		frag = DatumGetFloat8(ResultValue(0, 3, &rn[4]));
		spi = MemoryContextSwitchTo(outer);
		r[0] = BoolGetDatum(false);
		r[4] = CStringGetTextDatum(psprintf("out of memory on GPU device \"%s\": requested " INT64_FORMAT
											" bytes (" INT64_FORMAT " aligned to " INT64_FORMAT "), "
											INT64_FORMAT " bytes free, largest free block " INT64_FORMAT
											" bytes, fragmentation %.4f",
											text_to_cstring(device_id), size, actual, alignment,
											free_bytes, largest, frag));
		rn[4] = false;
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), r, rn)));
}

/* best_fit_block(device_id, size, alignment) -> block_id or NULL, changing nothing */
PG_FUNCTION_INFO_V1(tforge_best_fit_block);
Datum
tforge_best_fit_block(PG_FUNCTION_ARGS)
{
	text	   *device_id;
	int64		actual;
	Datum		v;
	int64		block_id = 0;
	bool		found;

	RequireArg(fcinfo, 0, "device_id");
	RequireArg(fcinfo, 1, "size");
	RequireArg(fcinfo, 2, "alignment");
	device_id = PG_GETARG_TEXT_PP(0);
	actual = RequestSize(PG_GETARG_INT64(1), PG_GETARG_INT64(2));
	SPI_connect();
	v = PointerGetDatum(device_id);
	if (PoolExec(&device_total, &v, NULL, true) == 0)
		UnknownDevice(device_id);
	CheckFitsDevice(device_id, PG_GETARG_INT64(1), actual, ResultInt8(0, 1, NULL));
	{
		BestFitBlock fit;

		found = FindBestFit(device_id, actual, PG_GETARG_INT64(2), true, &fit);
		if (found)
			block_id = fit.block_id;
	}
	SPI_finish();
	if (!found)
		PG_RETURN_NULL();
	PG_RETURN_INT64(block_id);
}

/* gpu_free(block_id) */
PG_FUNCTION_INFO_V1(tforge_gpu_free);
Datum
tforge_gpu_free(PG_FUNCTION_ARGS)
{
	int64		block_id = PG_GETARG_INT64(0);

	PreventWrites("gpu_free()");
	SPI_connect();
	(void) FreeLocked(LockBlockDevice(block_id), block_id);
	SPI_finish();
	PG_RETURN_VOID();
}

/* What a state change does to each status: the new status, or NULL to refuse (55000). */
typedef struct StatusChange
{
	const char *action;
	const char *from_allocated;
	const char *from_pinned;
	const char *from_cached;
} StatusChange;

static const StatusChange to_cached = {"mark cached", "cached", NULL, "cached"};
static const StatusChange to_pinned = {"pin", "pinned", "pinned", "pinned"};
static const StatusChange to_unpinned = {"unpin", "allocated", "allocated", "cached"};

/* device: the block's device as the caller names it, or NULL to look it up. */
static void
ChangeStatus(text *device, int64 block_id, const StatusChange *change)
{
	Datum		v[3];
	char	   *status;
	const char *next = NULL;

	PreventWrites(change->action);
	SPI_connect();
	if (device != NULL)
		(void) LockDevice(device);
	else
		device = LockBlockDevice(block_id);
	v[1] = PointerGetDatum(device);
	v[0] = Int64GetDatum(block_id);
	if (PoolExec(&block_status, v, NULL, false) == 0)
		UnknownBlock(block_id);
	status = ResultText(0, 1);
	if (strcmp(status, "allocated") == 0)
		next = change->from_allocated;
	else if (strcmp(status, "pinned") == 0)
		next = change->from_pinned;
	else if (strcmp(status, "cached") == 0)
		next = change->from_cached;
	if (next == NULL)
		WrongStatus(block_id, status, change->action);
	if (strcmp(next, status) != 0)
	{
		v[2] = CStringGetTextDatum(next);
		PoolExec(&set_status, v, NULL, false);
	}
	SPI_finish();
}

PG_FUNCTION_INFO_V1(tforge_gpu_mark_cached);
Datum
tforge_gpu_mark_cached(PG_FUNCTION_ARGS)
{
	ChangeStatus(NULL, PG_GETARG_INT64(0), &to_cached);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tforge_gpu_pin);
Datum
tforge_gpu_pin(PG_FUNCTION_ARGS)
{
	ChangeStatus(NULL, PG_GETARG_INT64(0), &to_pinned);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tforge_gpu_unpin);
Datum
tforge_gpu_unpin(PG_FUNCTION_ARGS)
{
	ChangeStatus(NULL, PG_GETARG_INT64(0), &to_unpinned);
	PG_RETURN_VOID();
}

/*
 * gpu_touch's one definition: last_accessed of block block_id set to at,
 * only the block's row locked (see the banner); device NULL: the block's
 * own, found by its id.
 */
static void
Touch(text *device, int64 block_id, Datum at)
{
	Datum		v[3];

	PreventWrites("gpu_touch()");
	SPI_connect();
	v[0] = Int64GetDatum(block_id);
	v[1] = at;
	v[2] = PointerGetDatum(device);
	if (PoolExec(device == NULL ? &touch : &touch_on, v, NULL, false) == 0)
	{
		if (device == NULL && (device = BlockDevice(block_id)) == NULL)
			UnknownBlock(block_id);
		v[1] = PointerGetDatum(device);
		if (PoolExec(&block_status, v, NULL, false) == 0)
			UnknownBlock(block_id);
		WrongStatus(block_id, ResultText(0, 1), "touch");
	}
	SPI_finish();
}

/* gpu_touch(block_id, at) */
PG_FUNCTION_INFO_V1(tforge_gpu_touch);
Datum
tforge_gpu_touch(PG_FUNCTION_ARGS)
{
	RequireArg(fcinfo, 0, "block_id");
	RequireArg(fcinfo, 1, "at");
	Touch(NULL, PG_GETARG_INT64(0), PG_GETARG_DATUM(1));
	PG_RETURN_VOID();
}

/*
 * The block calls with the block's device named by the caller (issue 12):
 * gpu_free, gpu_mark_cached, gpu_pin, gpu_unpin and gpu_touch(device_id,
 * block_id, ...). They skip finding the device of the block, which on a
 * Citus cluster asks every shard, so Citus delegates each whole call to the
 * device's node; a block that is not on the named device is unknown (42704).
 */
PG_FUNCTION_INFO_V1(tforge_gpu_free_on);
Datum
tforge_gpu_free_on(PG_FUNCTION_ARGS)
{
	text	   *device;
	int64		block_id;

	RequireArg(fcinfo, 0, "device_id");
	RequireArg(fcinfo, 1, "block_id");
	device = PG_GETARG_TEXT_PP(0);
	block_id = PG_GETARG_INT64(1);
	PreventWrites("gpu_free()");
	SPI_connect();
	(void) LockDevice(device);
	(void) FreeLocked(device, block_id);
	SPI_finish();
	PG_RETURN_VOID();
}

/* gpu_mark_cached, gpu_pin, gpu_unpin (device_id, block_id) */
static Datum
ChangeStatusOn(FunctionCallInfo fcinfo, const StatusChange *change)
{
	RequireArg(fcinfo, 0, "device_id");
	RequireArg(fcinfo, 1, "block_id");
	ChangeStatus(PG_GETARG_TEXT_PP(0), PG_GETARG_INT64(1), change);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(tforge_gpu_mark_cached_on);
Datum
tforge_gpu_mark_cached_on(PG_FUNCTION_ARGS)
{
	return ChangeStatusOn(fcinfo, &to_cached);
}

PG_FUNCTION_INFO_V1(tforge_gpu_pin_on);
Datum
tforge_gpu_pin_on(PG_FUNCTION_ARGS)
{
	return ChangeStatusOn(fcinfo, &to_pinned);
}

PG_FUNCTION_INFO_V1(tforge_gpu_unpin_on);
Datum
tforge_gpu_unpin_on(PG_FUNCTION_ARGS)
{
	return ChangeStatusOn(fcinfo, &to_unpinned);
}

/* gpu_touch(device_id, block_id, at) */
PG_FUNCTION_INFO_V1(tforge_gpu_touch_on);
Datum
tforge_gpu_touch_on(PG_FUNCTION_ARGS)
{
	RequireArg(fcinfo, 0, "device_id");
	RequireArg(fcinfo, 1, "block_id");
	RequireArg(fcinfo, 2, "at");
	Touch(PG_GETARG_TEXT_PP(0), PG_GETARG_INT64(1), PG_GETARG_DATUM(2));
	PG_RETURN_VOID();
}

/* gpu_evict(device_id, needed) -> bytes freed */
PG_FUNCTION_INFO_V1(tforge_gpu_evict);
Datum
tforge_gpu_evict(PG_FUNCTION_ARGS)
{
	text	   *device_id = PG_GETARG_TEXT_PP(0);
	int64		needed = PG_GETARG_INT64(1);
	int64		freed = 0;
	int64		one;

	if (needed < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bytes needed must not be negative, got " INT64_FORMAT, needed)));
	PreventWrites("gpu_evict()");
	SPI_connect();
	(void) LockDevice(device_id);
	while (freed < needed)
	{
		CHECK_FOR_INTERRUPTS();
		SPI_connect();			/* (EvictOne) */
		one = EvictOne(device_id);
		SPI_finish();
		if (one <= 0)
			break;
		freed += one;
	}
	SPI_finish();
	PG_RETURN_INT64(freed);
}

/* One block of a device being defragmented. */
typedef struct DefragBlock
{
	int64		block_id;
	int64		offset;
	int64		size;
	int64		alignment;
	bool		free;
	bool		pinned;
	char	   *tensor_id;
	int64		new_offset;
} DefragBlock;

/* Add a free block [start, end) unless empty. */
static void
InsertFree(text *device_id, int64 start, int64 end)
{
	Datum		v[3] = {PointerGetDatum(device_id), Int64GetDatum(start), Int64GetDatum(end - start)};

	if (end > start)
		PoolExec(&insert_free, v, NULL, false);
}

/*
 * gpu_defragment(device_id) -> SETOF (block_id, tensor_id, old_offset, new_offset, size_bytes)
 *
 * Pinned blocks stay; the stretches between them are compacted: each
 * allocated or cached block, in offset order, moves to the lowest offset
 * at or after the end of the block before it (or the stretch's start) that
 * is a multiple of its alignment. Blocks only move down, and in offset
 * order, so no move overlaps a block that has not moved yet. The free
 * blocks are replaced by the alignment gaps and one free block at the end
 * of each stretch.
 */
PG_FUNCTION_INFO_V1(tforge_gpu_defragment);
Datum
tforge_gpu_defragment(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *device_id = PG_GETARG_TEXT_PP(0);
	Datum		dv = PointerGetDatum(device_id);
	DefragBlock *blocks;
	uint64		nblocks;
	uint64		i;
	int64		total;
	int64		cursor = 0;

	PreventWrites("gpu_defragment()");
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	total = LockDevice(device_id);
	nblocks = PoolExec(&all_blocks, &dv, NULL, false);
	blocks = palloc0(sizeof(DefragBlock) * (nblocks + 1));
	for (i = 0; i < nblocks; i++)
	{
		char	   *status = ResultText(i, 5);
		bool		isnull;

		blocks[i].block_id = ResultInt8(i, 1, NULL);
		blocks[i].offset = ResultInt8(i, 2, NULL);
		blocks[i].size = ResultInt8(i, 3, NULL);
		blocks[i].alignment = ResultInt8(i, 4, &isnull);
		blocks[i].free = strcmp(status, "free") == 0;
		blocks[i].pinned = strcmp(status, "pinned") == 0;
		blocks[i].tensor_id = ResultText(i, 6);
		if (!blocks[i].free && (isnull || !IsPowerOfTwo(blocks[i].alignment)))
			elog(ERROR, "tforge: GPU block " INT64_FORMAT " has no valid alignment", blocks[i].block_id);
	}

	/* the new layout */
	for (i = 0; i < nblocks; i++)
	{
		DefragBlock *b = &blocks[i];

		if (b->free)
			continue;
		if (b->pinned)
			b->new_offset = b->offset;
		else
			b->new_offset = (cursor + (b->alignment - 1)) & ~(b->alignment - 1);
		Assert(b->new_offset <= b->offset);
		cursor = b->new_offset + b->size;
	}

	/* free blocks out, blocks down in offset order, then the free space back */
	PoolExec(&delete_free, &dv, NULL, false);
	for (i = 0; i < nblocks; i++)
	{
		DefragBlock *b = &blocks[i];
		Datum		v[3] = {Int64GetDatum(b->block_id), Int64GetDatum(b->new_offset), dv};

		if (b->free || b->new_offset == b->offset)
			continue;
		PoolExec(&move_block, v, NULL, false);
		{
			Datum		out[5] = {Int64GetDatum(b->block_id), CStringGetTextDatum(b->tensor_id),
			Int64GetDatum(b->offset), Int64GetDatum(b->new_offset), Int64GetDatum(b->size)};
			bool		outnull[5] = {false, false, false, false, false};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, outnull);
		}
	}
	cursor = 0;
	for (i = 0; i < nblocks; i++)
	{
		DefragBlock *b = &blocks[i];

		if (b->free)
			continue;
		InsertFree(device_id, cursor, b->new_offset);
		cursor = b->new_offset + b->size;
	}
	InsertFree(device_id, cursor, total);
	SPI_finish();
	return (Datum) 0;
}

/* ---- the queue's use of the pool -------------------------------------------- */

int64
PoolClaimableBytes(text *device_id)
{
	Datum		v = PointerGetDatum(device_id);
	int64		offset;
	int64		size;
	int64		start;

	(void) LockDevice(device_id);
	if (PoolExec(&largest_free, &v, NULL, false) == 0)
		return 0;
	offset = ResultInt8(0, 1, NULL);
	size = ResultInt8(0, 2, NULL);
	start = (offset + (POOL_TASK_ALIGNMENT - 1)) & ~(int64) (POOL_TASK_ALIGNMENT - 1);
	/* a request of at most this many bytes, aligned, fits in the largest block */
	return Max(0, (offset + size - start) & ~(int64) (POOL_TASK_ALIGNMENT - 1));
}

/* The tensor id of a task's GPU memory: task:<task_id>. */
static text *
TaskTensor(int64 task_id)
{
	return cstring_to_text(psprintf("task:" INT64_FORMAT, task_id));
}

bool
PoolClaimTask(text *device_id, int64 task_id, int64 gpu_memory_bytes)
{
	int64		actual = RequestSize(gpu_memory_bytes, POOL_TASK_ALIGNMENT);
	int64		block_id;
	int64		offset;

	(void) LockDevice(device_id);
	return AllocateFit(device_id, actual, POOL_TASK_ALIGNMENT, "allocated", TaskTensor(task_id), 0,
					   &block_id, &offset);
}

void
PoolReleaseTask(int64 task_id)
{
	Datum		v = PointerGetDatum(TaskTensor(task_id));
	uint64		n = PoolExec(&tensor_blocks, &v, NULL, false);
	int64	   *ids = palloc(sizeof(int64) * (n + 1));
	text	  **devices = palloc(sizeof(text *) * (n + 1));
	uint64		i;

	/* copied out first: the frees below run statements of their own */
	for (i = 0; i < n; i++)
	{
		ids[i] = ResultInt8(i, 1, NULL);
		devices[i] = cstring_to_text(ResultText(i, 2));
	}
	for (i = 0; i < n; i++)
	{
		(void) LockDevice(devices[i]);
		(void) FreeLocked(devices[i], ids[i]);
	}
}

/* qsort: device ids in byte order, the one order devices are locked in together. */
static int
CompareDeviceIds(const void *pa, const void *pb)
{
	const text *a = *(const text *const *) pa;
	const text *b = *(const text *const *) pb;
	int			la = VARSIZE_ANY_EXHDR(a);
	int			lb = VARSIZE_ANY_EXHDR(b);
	int			c = memcmp(VARDATA_ANY(a), VARDATA_ANY(b), Min(la, lb));

	return c != 0 ? c : (la > lb) - (la < lb);
}

void
PoolLockTaskDevices(const int64 *task_ids, int ntasks, text *also)
{
	uint64		n = 0;
	text	  **devices;
	uint64		i;

	if (ntasks > 0)
	{
		Datum	   *tensors = palloc(sizeof(Datum) * ntasks);
		Datum		v;
		int			j;

		for (j = 0; j < ntasks; j++)
			tensors[j] = PointerGetDatum(TaskTensor(task_ids[j]));
		v = PointerGetDatum(construct_array(tensors, ntasks, TEXTOID, -1, false, TYPALIGN_INT));
		n = PoolExec(&tensor_devices, &v, NULL, false);
	}
	devices = palloc(sizeof(text *) * (n + 1));
	for (i = 0; i < n; i++)
	{
		char	   *id = ResultText(i, 1);

		if (id == NULL)
			elog(ERROR, "tforge: a GPU block without a device");
		devices[i] = cstring_to_text(id);
	}
	if (n == 0)
		return;					/* nothing held: a claim locks its own device alone */
	if (also != NULL)
		devices[n++] = also;
	qsort(devices, n, sizeof(text *), CompareDeviceIds);
	for (i = 0; i < n; i++)
		if (i == 0 || CompareDeviceIds(&devices[i - 1], &devices[i]) != 0)
			(void) LockDevice(devices[i]);
}

/* Whether tuple (a version of the trigger's row) has status label. */
static bool
StatusIs(TriggerData *trigdata, HeapTuple tuple, const char *label)
{
	int			attnum = SPI_fnumber(trigdata->tg_relation->rd_att, "status");
	char	   *status;

	if (attnum <= 0)
		elog(ERROR, "tforge._gpu_release_task: the table has no column status");
	status = SPI_getvalue(tuple, trigdata->tg_relation->rd_att, attnum);
	return status != NULL && strcmp(status, label) == 0;
}

/*
 * Whether the trigger's old row asked for GPU memory ((resources).gpu_memory_bytes
 * > 0). A tforge.resources changed under the library (a superuser's ALTER
 * TYPE) is refused (55000, CheckResourcesLayout) rather than misread.
 */
static bool
NeededGpuMemory(TriggerData *trigdata)
{
	int			attnum = SPI_fnumber(trigdata->tg_relation->rd_att, "resources");
	bool		isnull;
	Datum		resources;
	Datum		bytes;

	if (attnum <= 0)
		elog(ERROR, "tforge._gpu_release_task: the table has no column resources");
	resources = heap_getattr(trigdata->tg_trigtuple, attnum, trigdata->tg_relation->rd_att, &isnull);
	if (isnull)
		return false;
	CheckResourcesLayout(HeapTupleHeaderGetTypeId(DatumGetHeapTupleHeader(resources)));
	bytes = GetAttributeByNum(DatumGetHeapTupleHeader(resources), 4, &isnull);
	return !isnull && DatumGetInt64(bytes) > 0;
}

/*
 * Trigger on tforge.tasks, AFTER UPDATE OF status: frees the task's GPU
 * memory when the task leaves 'running' and asked for some. Completion,
 * failure, lease expiry and a direct UPDATE all end a run this way.
 *
 * The trigger has no WHEN clause: PostgreSQL compiles a trigger's WHEN
 * clause afresh for every statement that updates the table (stringToNode
 * and expression planning), and every claim and completion is such a
 * statement, so the whole test is here, cheapest first: most tasks state
 * no GPU memory.
 */
PG_FUNCTION_INFO_V1(tforge_gpu_release_task);
Datum
tforge_gpu_release_task(PG_FUNCTION_ARGS)
{
	/* its column reads assume tforge.tasks' row type (a composite resources) */
	TriggerData *trigdata = TforgeTrigger(fcinfo, "tforge._gpu_release_task", "tasks");
	bool		isnull;
	Datum		task_id;
	int			attnum;

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._gpu_release_task() must be fired as an AFTER UPDATE row trigger")));
	if (!NeededGpuMemory(trigdata) || !StatusIs(trigdata, trigdata->tg_trigtuple, "running") ||
		StatusIs(trigdata, trigdata->tg_newtuple, "running"))
		return PointerGetDatum(NULL);
	attnum = SPI_fnumber(trigdata->tg_relation->rd_att, "task_id");
	if (attnum <= 0)
		elog(ERROR, "tforge._gpu_release_task: the table has no column task_id");
	task_id = heap_getattr(trigdata->tg_trigtuple, attnum, trigdata->tg_relation->rd_att, &isnull);
	if (!isnull)
	{
		/*
		 * The function has no SET clause (sql/install/99_privileges.sql):
		 * fmgr would then save and set search_path for every claim and
		 * completion, which mostly free nothing. Its statements pin the path
		 * here instead, whoever updated the row.
		 */
		int			level = NewGUCNestLevel();

		(void) set_config_option("search_path", "pg_catalog, tforge, pg_temp", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		SPI_connect();
		PoolReleaseTask(DatumGetInt64(task_id));
		SPI_finish();
		AtEOXact_GUC(true, level);
	}
	return PointerGetDatum(NULL);
}
