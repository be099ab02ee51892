/*
 * pool.h: GPU memory pools (pool.c), and what the queue calls of them.
 */
#ifndef TFORGE_POOL_H
#define TFORGE_POOL_H

#include "postgres.h"

#include "executor/spi.h"
#include "storage/itemptr.h"

#include "tforge.h"

/* Alignment the queue allocates a task's GPU memory with, bytes. */
#define POOL_TASK_ALIGNMENT 256

/*
 * For claim_tasks(..., gpu_device): locks the device and returns the largest
 * GPU memory request (bytes) that an allocation on it is sure to satisfy
 * now, without evicting. Raises 42704 for an unknown device. The caller
 * must be connected to SPI.
 */
extern int64 PoolClaimableBytes(text *device_id);

/*
 * Allocates gpu_memory_bytes for a task just claimed on device, as tensor
 * "task:<task_id>" (no eviction); false when it does not fit. SPI connected.
 */
extern bool PoolClaimTask(text *device_id, int64 task_id, int64 gpu_memory_bytes);

/*
 * Locks, in device id order, the devices that hold GPU memory of the
 * ntasks tasks task_ids, as each task's release would lock its own, with
 * device also among them when it is not NULL (a claim's device, which the
 * claim locks next; alone, it is left to the claim). A statement that ends
 * the runs of several tasks calls it before it locks any task row: their
 * releases (the trigger on tforge.tasks) would otherwise lock the devices
 * in the order the statement meets the tasks, and two such statements
 * meeting two devices in opposite orders deadlock. SPI connected.
 */
extern void PoolLockTaskDevices(const int64 *task_ids, int ntasks, text *also);

/* Frees the blocks of tensor "task:<task_id>", if any. SPI connected. */
extern void PoolReleaseTask(int64 task_id);

/* ---- pool_spi.c: the pool's SQL statements --------------------------------- */

/* One statement, prepared on first use in a backend and kept: a queue statement (tforge.h). */
typedef QueueStatement PoolStatement;

/* True when the pool's tables are Citus tables (statements routed, nothing read directly). */
extern bool PoolRouted(void);

/* Run a statement (read_only for lookups); returns SPI_processed. SPI connected. */
extern uint64 PoolExec(PoolStatement *stmt, const Datum *values, const bool *nulls, bool read_only);

/* Column col (1-based) of result row row as int64; NULL gives -1 and *isnull. */
extern int64 ResultInt8(uint64 row, int col, bool *isnull);

/* Column col of result row row as a C string; NULL if NULL. */
extern char *ResultText(uint64 row, int col);

/* ---- pool_lists.c: the lists derived from gpu_blocks --------------------- */

#define POOL_LIST_FREE 0		/* gpu_free_blocks */
#define POOL_LIST_TENSOR 1		/* gpu_tensor_blocks */
#define POOL_LIST_CACHED 2		/* gpu_cached_blocks */
#define POOL_LISTS 3

/*
 * The row of block block_id in list list (table relid) was just read at
 * tid: a deletion of it tries there before it probes the list's index.
 * Only a hint: the deletion checks the row.
 */
extern void PoolListRowSeen(int list, Oid relid, int64 block_id, ItemPointer tid);

/*
 * The version of block block_id in gpu_blocks (table relid) was just seen
 * at tid (NULL: the block is gone). Only a hint (FetchBlockHinted).
 */
extern void PoolBlockRowSeen(Oid relid, int64 block_id, ItemPointer tid);

/* Where block block_id of table relid was last seen, if known. */
extern bool PoolBlockRowHint(Oid relid, int64 block_id, ItemPointer tid);

/* ---- pool_read.c: the allocator's reads without a statement --------------- */

/* What a free reads first: the block, and its free neighbours if any. */
typedef struct FreeSpan
{
	int64		offset;			/* the block's */
	int64		size;
	char	   *status;			/* the block's status; NULL: no such block */
	bool		has_left;		/* a free block ends at offset: */
	int64		left;
	int64		left_offset;
	bool		has_right;		/* a free block starts at offset + size: */
	int64		right;
	int64		right_end;
} FreeSpan;

/* Block block_id of device device_id (status NULL: no such block) and its free neighbours. Not on Citus. */
extern void ReadFreeSpan(text *device_id, int64 block_id, FreeSpan *span);

/* The free block best fit chooses, and where in it the allocation starts. */
typedef struct BestFitBlock
{
	int64		block_id;
	int64		offset;
	int64		size;
	int64		start;
} BestFitBlock;

/* The row version at tid if snapshot sees it, into slot; false if not (or past the table's end). */
extern bool FetchVisibleAt(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot);

/*
 * Block block_id of rel (gpu_blocks, block id column id_att) as snapshot
 * sees it, into slot: at the place this backend last saw it, else by a
 * probe of the primary key pkey. Not on Citus.
 */
extern bool ProbeBlock(Relation rel, Relation pkey, AttrNumber id_att, int64 block_id, Snapshot snapshot,
					   TupleTableSlot *slot);

/* Not on Citus: pool.c's best_fit statement there. */
extern bool BestFit(text *device_id, int64 actual, int64 alignment, bool read_only, BestFitBlock *fit);

#endif							/* TFORGE_POOL_H */
