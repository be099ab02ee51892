/*
 * chain.c: checkpoint chains (DESIGN.md component 4, issue 14).
 *
 * An incremental checkpoint is a delta on its parent, so restoring it means
 * applying its whole chain, root first. Everything in tforge that follows
 * parent_id links walks them here, with ChainWalk: the chain functions
 * (chain_length, chain_root, restoration_chain, chain_size,
 * validate_checkpoint, estimate_restore_time), find_restore_point
 * (chain_select.c) and checkpoint_gc's ancestor closure (chain_ancestors).
 *
 * Reading protocol: links are read by index scans under the active
 * snapshot, with AccessShareLock on the table and its indexes, as a SELECT
 * takes: a probe of checkpoints_pkey per link, except that ChainWalk follows
 * a dense chain along checkpoints_run_idx (see ChainNext). Because the scans
 * bypass the executor, the caller must have SELECT on tforge.checkpoints,
 * and a table with row-level security enabled is refused rather than read
 * around its policies. Nothing here writes. Scans run in the memory context
 * they were opened in (ChainWalker.cxt): index AMs allocate scan state
 * lazily and free it at index_endscan.
 *
 * Bounds: in one snapshot a checkpoint_id has one visible row version, so
 * a row version (TID) met twice is a cycle. ChainWalk finds it with Brent's
 * algorithm (within the chain's length plus twice the cycle's, with no
 * extra memory); the walks that must visit each row once anyway
 * (chain_ancestors, find_restore_point) keep a hash of visited TIDs. A
 * strict walk raises 55000 for a cycle and 42704 for a missing parent,
 * naming the checkpoint; a lenient one reports how it ended.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "chain.h"
#include "tforge.h"

static const char *const StateLabels[CKPT_NSTATES] = {
	"creating", "complete", "corrupted", "deleted"
};
static const char *const TypeLabels[CKPT_NTYPES] = {
	"full", "incremental", "emergency"
};

/* ---- errors (each has its one definition here) ---------------------------- */

void
ReportMissingCheckpoint(const char *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("checkpoint \"%s\" does not exist", id)));
}

static void
ReportBrokenChain(const char *id, const char *parent)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("parent \"%s\" of checkpoint \"%s\" does not exist", parent, id),
			 errdetail("The chain of checkpoint \"%s\" is broken, so it cannot be restored.", id),
			 errhint("Set its parent_id to an existing checkpoint, or delete it.")));
}

static void
ReportCycle(const char *start, const char *again)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("checkpoint chain of \"%s\" contains a cycle", start),
			 errdetail("Checkpoint \"%s\" is its own ancestor.", again),
			 errhint("Set parent_id of one checkpoint of the cycle to NULL or to a checkpoint outside it.")));
}

/* ---- enum labels ---------------------------------------------------------- */

/* Position of an enum value among labels (cached per walker). */
static int
EnumIndex(Oid value, const char *const *labels, int nlabels, EnumCache *cache)
{
	HeapTuple	tup;
	const char *label;
	int			i;

	for (i = 0; i < cache->n; i++)
		if (cache->oids[i] == value)
			return cache->index[i];
	tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(value));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid internal value for enum: %u", value)));
	label = NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel);
	for (i = 0; i < nlabels; i++)
		if (strcmp(label, labels[i]) == 0)
			break;
	if (i == nlabels)
		elog(ERROR, "unknown checkpoint enum label \"%s\"", label);
	ReleaseSysCache(tup);
	if (cache->n < (int) lengthof(cache->oids))
	{
		cache->oids[cache->n] = value;
		cache->index[cache->n] = i;
		cache->n++;
	}
	return i;
}

int
CheckpointStateIndex(Oid value)
{
	EnumCache	cache = {0};

	return EnumIndex(value, StateLabels, CKPT_NSTATES, &cache);
}

int
CheckpointTypeIndex(Oid value)
{
	EnumCache	cache = {0};

	return EnumIndex(value, TypeLabels, CKPT_NTYPES, &cache);
}

/* ---- the walker ----------------------------------------------------------- */

/* Attribute number of a column of tforge.checkpoints. */
static AttrNumber
Column(Relation rel, const char *name)
{
	AttrNumber	att = get_attnum(RelationGetRelid(rel), name);

	if (att == InvalidAttrNumber)
		elog(ERROR, "column tforge.checkpoints.%s is missing", name);
	return att;
}

/*
 * Opens tforge.checkpoints for reading as a SELECT would: SELECT privilege
 * required, row-level security honoured by refusing. On a Citus cluster
 * where tforge.distribute() distributed it by training run, the rows are in
 * shards: the walker reads the shard of its run (w->run) when that shard is
 * on this node (a call delegated to the run's node, or a shard query
 * there), and refuses (55000) rather than walk the empty shell otherwise,
 * or when the caller names no run. A coordinator-only table read on a
 * worker is refused too (citus.c).
 */
Relation
CheckpointsOpen(ChainWalker *w)
{
	Oid			relid = TforgeTable("checkpoints");
	Oid			readid = relid;
	AclResult	acl;

	w->shard[0] = '\0';
	w->rowtype = get_rel_type_id(relid);
	if (CitusRoutesTable(relid))
	{
		int64		shardid;

		if (w->run == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tforge.checkpoints is distributed by training run: this call must name the run"),
					 errdetail("Its rows are in shards; the table this function reads directly is an empty shell."),
					 errhint("Call the form that takes training_run_id first, e.g. tforge.chain_length(training_run_id, checkpoint_id), as a statement of its own.")));
		readid = CitusLocalShard(relid, w->run, &shardid);
		if (!OidIsValid(readid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the checkpoints of training run \"%s\" are in shard " INT64_FORMAT ", which is not on this node",
							w->run, shardid),
					 errdetail("This function reads the shard directly, without Citus's planner."),
					 errhint("Call it as a statement of its own, SELECT tforge.f(training_run_id, ...), so that Citus delegates it to the run's node.")));
		snprintf(w->shard, sizeof(w->shard), "_" INT64_FORMAT, shardid);
	}
	acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, "checkpoints");
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("checkpoint chains cannot be read under row-level security on tforge.checkpoints")));
	if (!ActiveSnapshotSet())
		elog(ERROR, "no active snapshot to read checkpoints with");
	return table_open(readid, AccessShareLock);
}

/* Opens tforge.<index> of the checkpoints table (of its shard, on Citus). */
Relation
CheckpointsIndexOpen(ChainWalker *w, const char *index)
{
	return index_open(TforgeTable(psprintf("%s%s", index, w->shard)), AccessShareLock);
}

/* The slot's row as a tforge.checkpoints datum (a shard's row has its own row type). */
Datum
CheckpointRowDatum(ChainWalker *w, TupleTableSlot *slot)
{
	TupleDesc	desc;
	HeapTuple	tuple;

	if (w->shard[0] == '\0')
		return ExecFetchSlotHeapTupleDatum(slot);
	/* the shard's columns are the table's, in the same order */
	desc = lookup_rowtype_tupdesc(w->rowtype, -1);
	if (desc->natts != slot->tts_tupleDescriptor->natts)
		elog(ERROR, "tforge: shard of tforge.checkpoints has %d columns, the table %d",
			 slot->tts_tupleDescriptor->natts, desc->natts);
	slot_getallattrs(slot);
	tuple = heap_form_tuple(desc, slot->tts_values, slot->tts_isnull);
	ReleaseTupleDesc(desc);
	return HeapTupleGetDatum(tuple);
}

int
ChainRunArg(FunctionCallInfo fcinfo, int plain_nargs, const char **run)
{
	*run = NULL;
	if (PG_NARGS() <= plain_nargs)
		return 0;
	RequireArg(fcinfo, 0, "training_run_id");
	*run = text_to_cstring(PG_GETARG_TEXT_PP(0));
	return 1;
}

void
ChainWalkerBegin(ChainWalker *w, bool full, const char *run)
{
	memset(w, 0, sizeof(*w));
	w->full = full;
	w->run = run;
	w->cxt = CurrentMemoryContext;
	w->rel = CheckpointsOpen(w);
	w->irel = CheckpointsIndexOpen(w, "checkpoints_pkey");
	w->att_id = Column(w->rel, "checkpoint_id");
	w->att_run = Column(w->rel, "training_run_id");
	w->att_epoch = Column(w->rel, "epoch");
	w->att_step = Column(w->rel, "step");
	w->att_type = Column(w->rel, "checkpoint_type");
	w->att_state = Column(w->rel, "state");
	w->att_size = Column(w->rel, "size_bytes");
	w->att_created = Column(w->rel, "created_at");
	w->att_parent = Column(w->rel, "parent_id");
	w->att_path = Column(w->rel, "storage_path");
	ScanKeyEntryInitialize(&w->key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   w->irel->rd_indcollation[0], F_TEXTEQ, (Datum) 0);
	w->scan = index_beginscan(w->rel, w->irel, GetActiveSnapshot(), 1, 0);
	w->slot = table_slot_create(w->rel, NULL);
}

void
ChainWalkerEnd(ChainWalker *w)
{
	if (w->runscan != NULL)
	{
		index_endscan(w->runscan);
		ExecDropSingleTupleTableSlot(w->runslot);
	}
	if (w->runirel != NULL)
		index_close(w->runirel, NoLock);
	ExecDropSingleTupleTableSlot(w->slot);
	index_endscan(w->scan);
	index_close(w->irel, NoLock);
	table_close(w->rel, NoLock);
}

/* A nullable text column as a palloc'd C string, NULL for NULL. */
static char *
TextColumn(TupleTableSlot *slot, AttrNumber att)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* A NOT NULL column (the table's constraints guarantee it). */
static Datum
Required(TupleTableSlot *slot, AttrNumber att)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);

	if (isnull)
		elog(ERROR, "NULL in a NOT NULL column of tforge.checkpoints");
	return d;
}

void
ChainLinkFromSlot(ChainWalker *w, TupleTableSlot *slot, ChainLink *link)
{
	link->id = TextColumn(slot, w->att_id);
	link->parent = TextColumn(slot, w->att_parent);
	link->run = TextColumn(slot, w->att_run);
	link->path = w->full ? TextColumn(slot, w->att_path) : NULL;
	link->epoch = DatumGetInt32(Required(slot, w->att_epoch));
	link->step = DatumGetInt64(Required(slot, w->att_step));
	link->size = DatumGetInt64(Required(slot, w->att_size));
	link->created = DatumGetTimestampTz(Required(slot, w->att_created));
	link->state = EnumIndex(DatumGetObjectId(Required(slot, w->att_state)),
							StateLabels, CKPT_NSTATES, &w->states);
	link->type = EnumIndex(DatumGetObjectId(Required(slot, w->att_type)),
						   TypeLabels, CKPT_NTYPES, &w->types);
	if (link->id == NULL || link->run == NULL)
		elog(ERROR, "NULL in a NOT NULL column of tforge.checkpoints");
	link->tid = slot->tts_tid;
}

/*
 * The visible row of checkpoint id into *link (allocated in the caller's
 * memory context); false when there is none. The scan itself runs in the
 * walker's context: index AMs allocate scan state lazily (nbtree's list of
 * killed items, when a probe meets a dead row version) and free it at
 * index_endscan, so a caller's short-lived context must not own it.
 */
bool
ChainFetch(ChainWalker *w, const char *id, ChainLink *link)
{
	text	   *key = cstring_to_text(id);
	MemoryContext old;
	bool		found;

	CHECK_FOR_INTERRUPTS();
	old = MemoryContextSwitchTo(w->cxt);
	w->key.sk_argument = PointerGetDatum(key);
	index_rescan(w->scan, &w->key, 1, NULL, 0);
	found = index_getnext_slot(w->scan, ForwardScanDirection, w->slot);
	MemoryContextSwitchTo(old);
	if (found)
		ChainLinkFromSlot(w, w->slot, link);
	ExecClearTuple(w->slot);
	pfree(key);
	return found;
}

/* A set of row versions (TIDs), for cycle detection. */
HTAB *
TidSetCreate(const char *name, Size entrysize)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(ItemPointerData);
	ctl.entrysize = Max(entrysize, sizeof(ItemPointerData));
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* How many rows the run cursor reads looking for one parent. */
#define CURSOR_LOOKAHEAD 16

/* Is the text column att of slot equal to the C string s? */
static bool
TextColumnEquals(TupleTableSlot *slot, AttrNumber att, const char *s)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);
	text	   *t;
	size_t		len = strlen(s);
	bool		eq;

	if (isnull)
		return false;
	t = DatumGetTextPP(d);
	eq = VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
	if ((Pointer) t != DatumGetPointer(d))
		pfree(t);
	return eq;
}

/*
 * The parent of child into *link; false when it does not exist.
 *
 * Most chains are dense: an incremental checkpoint is a delta on its run's
 * previous checkpoint, so reading the run newest first (checkpoints_run_idx,
 * from child's step down) meets each parent within a few rows. A walk
 * therefore opens that run cursor at its first parent and reads on from
 * it, which costs a step along the index's leaf pages per link instead of a
 * descent of checkpoints_pkey; a recursive CTE makes that descent for every
 * link. When the parent is not among the next CURSOR_LOOKAHEAD rows (a
 * sparse chain, a parent in another run or at a step not below its child)
 * the cursor is dropped and this and every later link is a probe of
 * checkpoints_pkey, so a sparse chain costs at most CURSOR_LOOKAHEAD rows
 * more than probing. Both read under the same snapshot, so they find the
 * same row.
 */
static bool
ChainNext(ChainWalker *w, const ChainLink *child, ChainLink *link)
{
	if (!w->cursor_off)
	{
		MemoryContext old = MemoryContextSwitchTo(w->cxt);
		bool		found = false;
		int			k;

		if (w->runscan == NULL)
		{
			w->runirel = CheckpointsIndexOpen(w, "checkpoints_run_idx");
			ScanKeyEntryInitialize(&w->runkeys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
								   w->runirel->rd_indcollation[0], F_TEXTEQ,
								   PointerGetDatum(cstring_to_text(child->run)));
			ScanKeyEntryInitialize(&w->runkeys[1], 0, 2, BTLessEqualStrategyNumber, InvalidOid,
								   InvalidOid, F_INT8LE, Int64GetDatum(child->step));
			w->runscan = index_beginscan(w->rel, w->runirel, GetActiveSnapshot(), 2, 0);
			index_rescan(w->runscan, w->runkeys, 2, NULL, 0);
			w->runslot = table_slot_create(w->rel, NULL);
		}
		for (k = 0; k < CURSOR_LOOKAHEAD; k++)
		{
			CHECK_FOR_INTERRUPTS();
			if (!index_getnext_slot(w->runscan, ForwardScanDirection, w->runslot))
				break;
			if (TextColumnEquals(w->runslot, w->att_id, child->parent))
			{
				found = true;
				break;
			}
		}
		MemoryContextSwitchTo(old);
		if (found)
		{
			ChainLinkFromSlot(w, w->runslot, link);
			return true;
		}
		w->cursor_off = true;
	}
	return ChainFetch(w, child->parent, link);
}

ChainEnd
ChainWalk(ChainWalker *w, const char *id, bool strict, ChainLink **links, int *nlinks)
{
	int			cap = 64;
	int			n = 0;
	ChainLink  *out = palloc(cap * sizeof(ChainLink));
	ItemPointerData tortoise;
	int			power = 1;
	int			lam = 0;

	/*
	 * Cycles are found with Brent's algorithm: the "tortoise" row is moved
	 * to the newest link whenever the number of steps since it was placed
	 * reaches a power of two, and a link equal to it closes a cycle. A cycle
	 * of k rows entered after m links is found within m + 2k links, with no
	 * memory beyond the chain itself (a hash of visited rows cost more than
	 * the probe in a long chain).
	 */
	if (!ChainFetch(w, id, &out[0]))
	{
		if (strict)
			ReportMissingCheckpoint(id);
		*links = out;
		*nlinks = 0;
		return CHAIN_MISSING;
	}
	tortoise = out[0].tid;
	n = 1;
	for (;;)
	{
		if (out[n - 1].parent == NULL)
			break;
		if (n == cap)
		{
			if (cap >= (int) (MaxAllocSize / sizeof(ChainLink) / 2))
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("checkpoint chain of \"%s\" is too long", id)));
			cap *= 2;
			out = repalloc(out, cap * sizeof(ChainLink));
		}
		if (!ChainNext(w, &out[n - 1], &out[n]))
		{
			if (strict)
				ReportBrokenChain(out[n - 1].id, out[n - 1].parent);
			*links = out;
			*nlinks = n;
			return CHAIN_BROKEN;
		}
		if (ItemPointerEquals(&out[n].tid, &tortoise))
		{
			if (strict)
				ReportCycle(id, out[n].id);
			*links = out;
			*nlinks = n;
			return CHAIN_CYCLE;
		}
		n++;
		if (++lam == power)
		{
			tortoise = out[n - 1].tid;
			power *= 2;
			lam = 0;
		}
	}
	*links = out;
	*nlinks = n;
	return CHAIN_ROOT;
}

/*
 * The strict chain of the function's checkpoint id: its first argument, or
 * its second after training_run_id (plain_nargs: the plain form's number of
 * arguments). A checkpoint of another run than the one named is unknown.
 */
static int
StrictChain(FunctionCallInfo fcinfo, int plain_nargs, ChainLink **links, bool full)
{
	const char *run;
	int			arg = ChainRunArg(fcinfo, plain_nargs, &run);
	char	   *id = text_to_cstring(PG_GETARG_TEXT_PP(arg));
	ChainWalker w;
	int			n;

	ChainWalkerBegin(&w, full, run);
	if (run != NULL)
	{
		ChainLink	first;

		if (!ChainFetch(&w, id, &first) || strcmp(first.run, run) != 0)
			ReportMissingCheckpoint(id);
	}
	(void) ChainWalk(&w, id, true, links, &n);
	ChainWalkerEnd(&w);
	Assert(n >= 1);
	return n;
}

/* ---- SQL functions -------------------------------------------------------- */

/* tforge.checkpoint_can_transition: the lifecycle's edges. */
PG_FUNCTION_INFO_V1(chain_can_transition);
Datum
chain_can_transition(PG_FUNCTION_ARGS)
{
	int			from = CheckpointStateIndex(PG_GETARG_OID(0));
	int			to = CheckpointStateIndex(PG_GETARG_OID(1));

	/* creating -> complete | corrupted, complete -> corrupted, any -> deleted */
	PG_RETURN_BOOL(to == CKPT_DELETED ||
				   (from == CKPT_CREATING && (to == CKPT_COMPLETE || to == CKPT_CORRUPTED)) ||
				   (from == CKPT_COMPLETE && to == CKPT_CORRUPTED));
}

/* tforge._checkpoint_missing: the 42704 error, for the PL/pgSQL functions. */
PG_FUNCTION_INFO_V1(chain_checkpoint_missing);
Datum
chain_checkpoint_missing(PG_FUNCTION_ARGS)
{
	RequireArg(fcinfo, 0, "checkpoint_id");
	ReportMissingCheckpoint(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/* tforge.get_checkpoint([training_run_id,] id): the row, by one probe. */
PG_FUNCTION_INFO_V1(chain_get_checkpoint);
Datum
chain_get_checkpoint(PG_FUNCTION_ARGS)
{
	ChainWalker w;
	const char *run;
	int			arg = ChainRunArg(fcinfo, 1, &run);
	char	   *id;
	bool		found;
	Datum		result = (Datum) 0;

	if (PG_ARGISNULL(arg))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("checkpoint_id must not be NULL")));
	id = text_to_cstring(PG_GETARG_TEXT_PP(arg));
	ChainWalkerBegin(&w, true, run);
	w.key.sk_argument = PointerGetDatum(cstring_to_text(id));
	index_rescan(w.scan, &w.key, 1, NULL, 0);
	found = index_getnext_slot(w.scan, ForwardScanDirection, w.slot);
	if (found && run != NULL)
	{
		ChainLink	link;

		ChainLinkFromSlot(&w, w.slot, &link);
		found = strcmp(link.run, run) == 0;
	}
	if (found)
		result = CheckpointRowDatum(&w, w.slot);
	ChainWalkerEnd(&w);
	if (!found)
		ReportMissingCheckpoint(id);
	PG_RETURN_DATUM(result);
}

/* tforge.chain_length(id): checkpoints in the chain, 1 for a root. */
PG_FUNCTION_INFO_V1(chain_length);
Datum
chain_length(PG_FUNCTION_ARGS)
{
	ChainLink  *links;

	PG_RETURN_INT32(StrictChain(fcinfo, 1, &links, false));
}

/* tforge.chain_root(id) */
PG_FUNCTION_INFO_V1(chain_root);
Datum
chain_root(PG_FUNCTION_ARGS)
{
	ChainLink  *links;
	int			n = StrictChain(fcinfo, 1, &links, false);

	PG_RETURN_TEXT_P(cstring_to_text(links[n - 1].id));
}

/* Sum of size_bytes over the chain; 22003 beyond bigint. */
static int64
ChainBytes(const ChainLink *links, int n)
{
	int64		total = 0;
	int			i;

	for (i = 0; i < n; i++)
		if (pg_add_s64_overflow(total, links[i].size, &total))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("size of the checkpoint chain of \"%s\" is out of range for type bigint",
							links[0].id)));
	return total;
}

/* tforge.chain_size(id) */
PG_FUNCTION_INFO_V1(chain_size);
Datum
chain_size(PG_FUNCTION_ARGS)
{
	ChainLink  *links;
	int			n = StrictChain(fcinfo, 1, &links, false);

	PG_RETURN_INT64(ChainBytes(links, n));
}

/* tforge.restoration_chain(id): ids root first. */
PG_FUNCTION_INFO_V1(chain_restoration_chain);
Datum
chain_restoration_chain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ChainLink  *links;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	n = StrictChain(fcinfo, 1, &links, false);
	for (i = n - 1; i >= 0; i--)
	{
		Datum		value = PointerGetDatum(cstring_to_text(links[i].id));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}

/*
 * tforge.validate_checkpoint(id): one message per problem, root first. The
 * seed's checks: a non-empty storage path on every link, epoch and step
 * never decreasing from a parent to its child, the parent in the same run.
 */
PG_FUNCTION_INFO_V1(chain_validate_checkpoint);
Datum
chain_validate_checkpoint(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ChainLink  *links;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	n = StrictChain(fcinfo, 1, &links, true);
	for (i = n - 1; i >= 0; i--)
	{
		const ChainLink *c = &links[i];
		const ChainLink *p = i + 1 < n ? &links[i + 1] : NULL;
		char	   *problems[4];
		int			np = 0;
		int			k;

		if (c->path == NULL || c->path[0] == '\0')
			problems[np++] = psprintf("checkpoint \"%s\" has no storage path", c->id);
		if (p != NULL && strcmp(p->run, c->run) != 0)
			problems[np++] = psprintf("parent \"%s\" of checkpoint \"%s\" belongs to training run \"%s\", not \"%s\"",
									  p->id, c->id, p->run, c->run);
		if (p != NULL && c->epoch < p->epoch)
			problems[np++] = psprintf("checkpoint \"%s\" is at epoch %d, before its parent \"%s\" at epoch %d",
									  c->id, c->epoch, p->id, p->epoch);
		if (p != NULL && c->step < p->step)
			problems[np++] = psprintf("checkpoint \"%s\" is at step " INT64_FORMAT ", before its parent \"%s\" at step " INT64_FORMAT,
									  c->id, c->step, p->id, p->step);
		for (k = 0; k < np; k++)
		{
			Datum		value = PointerGetDatum(cstring_to_text(problems[k]));
			bool		isnull = false;

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
		}
	}
	return (Datum) 0;
}

/* A finite, non-negative (positive when strictly) float8 argument. */
static double
CheckRate(double v, const char *name, bool strictly)
{
	if (isnan(v) || isinf(v) || v < 0 || (strictly && v == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a %s finite number, got %s", name,
						strictly ? "positive" : "non-negative", float8out_internal(v))));
	return v;
}

/*
 * tforge.estimate_restore_time(id, base_ms, per_checkpoint_ms, bytes_per_ms),
 * in milliseconds (the seed's "base time + per-checkpoint overhead +
 * size-based transfer time"):
 *   base_ms + per_checkpoint_ms * chain_length + chain_size / bytes_per_ms
 */
PG_FUNCTION_INFO_V1(chain_estimate_restore_time);
Datum
chain_estimate_restore_time(PG_FUNCTION_ARGS)
{
	int			at = PG_NARGS() - 3;	/* after the id (and the run) */
	double		base = CheckRate(PG_GETARG_FLOAT8(at), "base_ms", false);
	double		per = CheckRate(PG_GETARG_FLOAT8(at + 1), "per_checkpoint_ms", false);
	double		rate = CheckRate(PG_GETARG_FLOAT8(at + 2), "bytes_per_ms", true);
	ChainLink  *links;
	int			n = StrictChain(fcinfo, 4, &links, false);
	double		ms = base + per * n + (double) ChainBytes(links, n) / rate;

	if (isinf(ms))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("restore time of checkpoint \"%s\" is out of range", links[0].id)));
	PG_RETURN_FLOAT8(ms);
}

/*
 * tforge._checkpoint_ancestors(run, ids): the given checkpoints and every
 * ancestor, each once (checkpoint_gc keeps them). Lenient: an unknown id, a
 * missing parent or a cycle ends that walk, never the function, so a broken
 * chain keeps what is reachable and stops nothing. One set of visited rows
 * serves every walk, so shared ancestors are read once: at most one probe
 * per checkpoint overall.
 */
PG_FUNCTION_INFO_V1(chain_ancestors);
Datum
chain_ancestors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *run = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *ids = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			i;
	ChainWalker w;
	HTAB	   *seen;
	MemoryContext walkcxt;
	MemoryContext old;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (ARR_NDIM(ids) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("checkpoint_ids must be a one-dimensional array")));
	deconstruct_array(ids, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);

	ChainWalkerBegin(&w, false, run);
	seen = TidSetCreate("tforge checkpoint ancestors", 0);
	walkcxt = AllocSetContextCreate(CurrentMemoryContext, "tforge chain link",
									ALLOCSET_SMALL_SIZES);
	for (i = 0; i < nelems; i++)
	{
		char	   *id;

		if (nulls[i])
			continue;
		old = MemoryContextSwitchTo(walkcxt);
		id = TextDatumGetCString(elems[i]);
		for (;;)
		{
			ChainLink	link;
			bool		again;
			Datum		value;
			bool		isnull = false;

			if (!ChainFetch(&w, id, &link))
				break;
			hash_search(seen, &link.tid, HASH_ENTER, &again);
			if (again)
				break;
			MemoryContextSwitchTo(old);
			value = PointerGetDatum(cstring_to_text(link.id));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
			pfree(DatumGetPointer(value));
			MemoryContextSwitchTo(walkcxt);
			if (link.parent == NULL)
				break;
			id = link.parent;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(walkcxt);
	}
	ChainWalkerEnd(&w);
	return (Datum) 0;
}
