/*
 * chain.h: checkpoint chains (chain.c).
 *
 * A checkpoint's chain is the checkpoint and its ancestors along parent_id
 * links; restoring it applies the chain root first. ChainWalker reads
 * tforge.checkpoints by probes of checkpoints_pkey under the active
 * snapshot; it never writes.
 */
#ifndef CHAIN_H
#define CHAIN_H

#include "postgres.h"

#include "access/genam.h"
#include "access/skey.h"
#include "datatype/timestamp.h"
#include "executor/tuptable.h"
#include "storage/itemptr.h"
#include "utils/hsearch.h"
#include "utils/palloc.h"
#include "utils/relcache.h"

/* Positions of the labels of tforge.checkpoint_state and checkpoint_type. */
typedef enum CheckpointState
{
	CKPT_CREATING,
	CKPT_COMPLETE,
	CKPT_CORRUPTED,
	CKPT_DELETED,
	CKPT_NSTATES
} CheckpointState;

typedef enum CheckpointType
{
	CKPT_FULL,
	CKPT_INCREMENTAL,
	CKPT_EMERGENCY,
	CKPT_NTYPES
} CheckpointType;

/* One row of tforge.checkpoints, as the walks need it (strings palloc'd). */
typedef struct ChainLink
{
	char	   *id;
	char	   *run;
	char	   *parent;			/* NULL for a root */
	char	   *path;			/* storage_path, NULL when NULL */
	int32		epoch;
	int64		step;
	int64		size;
	TimestampTz created;
	CheckpointState state;
	CheckpointType type;
	ItemPointerData tid;		/* identifies the row version in one snapshot */
} ChainLink;

/* Small cache of enum value OID -> label position. */
typedef struct EnumCache
{
	int			n;
	Oid			oids[8];
	int			index[8];
} EnumCache;

/* Index probes of tforge.checkpoints by checkpoint_id. */
typedef struct ChainWalker
{
	MemoryContext cxt;			/* where the scan lives (ChainWalkerBegin's) */
	bool		full;			/* read run and path too */
	const char *run;			/* the training run asked about, NULL if none */
	Oid			rowtype;		/* tforge.checkpoints' row type */
	char		shard[24];		/* "_<shardid>" when rel is a Citus shard, else "" */
	Relation	rel;
	Relation	irel;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData key;
	AttrNumber	att_id,
				att_run,
				att_epoch,
				att_step,
				att_type,
				att_state,
				att_size,
				att_created,
				att_parent,
				att_path;
	EnumCache	states;
	EnumCache	types;
	/* the run cursor of ChainWalk (see ChainNext in chain.c) */
	bool		cursor_off;		/* missed once: probes only */
	Relation	runirel;
	IndexScanDesc runscan;
	TupleTableSlot *runslot;
	ScanKeyData runkeys[2];
} ChainWalker;

/* How a walk ended. */
typedef enum ChainEnd
{
	CHAIN_ROOT,					/* reached a checkpoint without parent */
	CHAIN_MISSING,				/* the first checkpoint does not exist */
	CHAIN_BROKEN,				/* a parent does not exist */
	CHAIN_CYCLE					/* a checkpoint is its own ancestor */
} ChainEnd;

/*
 * full: also read storage_path of each link. run: the training run the
 * caller names (NULL when it names none), which on a Citus cluster selects
 * the local shard of tforge.checkpoints to read (see CheckpointsOpen).
 */
extern void ChainWalkerBegin(ChainWalker *w, bool full, const char *run);
extern void ChainWalkerEnd(ChainWalker *w);
extern bool ChainFetch(ChainWalker *w, const char *id, ChainLink *link);
extern void ChainLinkFromSlot(ChainWalker *w, TupleTableSlot *slot, ChainLink *link);

/*
 * The chain of id, the checkpoint first and its root last, in *links
 * (palloc'd array, *nlinks entries). Strict walks raise 42704 / 55000; a
 * lenient one returns how it ended with the links read until then.
 */
extern ChainEnd ChainWalk(ChainWalker *w, const char *id, bool strict,
						  ChainLink **links, int *nlinks);

extern void ReportMissingCheckpoint(const char *id) pg_attribute_noreturn();

/* Enum values of tforge.checkpoint_state / checkpoint_type by label position. */
extern int	CheckpointStateIndex(Oid value);
extern int	CheckpointTypeIndex(Oid value);

/* tforge.checkpoints (privilege and RLS checked) and one of its indexes. */
extern Relation CheckpointsOpen(ChainWalker *w);
extern Relation CheckpointsIndexOpen(ChainWalker *w, const char *index);

/* A walked row as a tforge.checkpoints datum (also when read from a shard). */
extern Datum CheckpointRowDatum(ChainWalker *w, TupleTableSlot *slot);

/*
 * The run-keyed overloads take training_run_id before the arguments of the
 * plain form (plain_nargs of them): the run (NULL for the plain form) and
 * the position of the checkpoint id.
 */
extern int	ChainRunArg(FunctionCallInfo fcinfo, int plain_nargs, const char **run);

/* A hash set keyed by ItemPointerData, entries of entrysize bytes. */
extern HTAB *TidSetCreate(const char *name, Size entrysize);

#endif							/* CHAIN_H */
