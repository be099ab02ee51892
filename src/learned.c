/*
 * learned.c: writes of learned state, the rows of tforge.task_tau and
 * tforge.profiles that every completion of a type or key rewrites, through
 * the executor's update path (see "learned state" below).
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/toast_compression.h"
#include "access/toast_internals.h"
#include "access/xact.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/rls.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "optimizer/optimizer.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/nodeModifyTable.h"

#include "estimate.h"
#include "profile.h"
#include "queue.h"
#include "tforge.h"

/* ---- learned state, written through the executor ------------------------ */

/*
 * Every completion rewrites its type's tau and profiles, rows that all
 * completions of the type share. They are written the way the
 * logical-replication apply worker applies an UPDATE (worker.c,
 * apply_handle_update_internal), which is an UPDATE without a plan:
 *
 *   - the row is found by an index probe (LookupRow); under READ
 *     COMMITTED a row a concurrent transaction changed is waited for and
 *     its newest version locked and changed, as UPDATE's EvalPlanQual
 *     does; REPEATABLE READ and above refuse (40001);
 *   - the new version goes through ExecSimpleRelationUpdate's steps: the
 *     replica-identity check of publications, BEFORE ROW triggers (which
 *     may change or skip it; with them the row is locked first, as the
 *     apply worker and UPDATE do; triggers of UPDATE OF a column fire when
 *     the write changes that column, MarkUpdatedColumns), stored generated
 *     columns, NOT NULL and CHECK constraints, the new index entries
 *     (ExecOpenIndices: expression and partial indexes too) unless the
 *     update is HOT, and AFTER ROW triggers, fired at AfterTriggerEndQuery
 *     as at the end of a statement (UpdateLocked, UpdateFound); a version
 *     a concurrent update led to is written only if it still has the key
 *     (KeyChanged);
 *   - the caller's privileges are checked as UPDATE checks them. Row-level
 *     security cannot be honoured without a plan (the apply worker refuses
 *     it too), so a table where it applies is refused with 0A000 rather
 *     than written around its policies.
 *
 * This costs less than an UPDATE through SPI (no plan, no executor tree),
 * and breaks no rule a user may add to the tables. A first completion
 * creates the row through SPI (INSERT ... ON CONFLICT DO NOTHING), which
 * honours the same rules.
 */

/*
 * Compiled CHECK constraints of the learned-state tables, kept per backend.
 *
 * ExecConstraints compiles a table's CHECK constraints (stringToNode,
 * expression_planner, ExecInitExpr) once per executor state, which for a
 * one-row write costs more than the rest of the write. The expressions are
 * compiled here once and handed to the executor (ri_ConstraintExprs), as a
 * kept plan keeps its expressions; ExecConstraints still evaluates every
 * constraint the table has now. An entry is used only while each
 * constraint's stored expression (ccbin) is the one it was compiled from,
 * so a constraint added, dropped or changed is compiled afresh; a change to
 * any function (which an expression may have inlined) drops every entry.
 * Each entry's expressions live in a memory context of their own, deleted
 * when the entry is compiled again: a function changes whenever any session
 * of the database creates or replaces one, and a worker lives through many
 * such changes. An entry is only compiled again while no write uses it (an
 * entry in use is not shared with a nested write, which then lets the
 * executor compile its own, nor dropped by CheckCacheDrop).
 */
typedef struct CheckCache
{
	Oid			relid;
	int			ncheck;
	char	  **ccbin;			/* what each expression was compiled from */
	ExprState **exprs;
	MemoryContext cxt;			/* holds ccbin and exprs; NULL: never compiled */
	bool		in_use;
} CheckCache;

#define CHECK_CACHE_SIZE 4
static CheckCache check_cache[CHECK_CACHE_SIZE];
static MemoryContext check_cache_cxt = NULL;

/* A function changed: every entry is compiled again when next used. */
static void
CheckCacheDrop(Datum arg, int cacheid, uint32 hashvalue)
{
	int			i;

	for (i = 0; i < CHECK_CACHE_SIZE; i++)
		if (!check_cache[i].in_use)
			check_cache[i].relid = InvalidOid;
}

/* Whether entry e was compiled from rel's constraints as they are now. */
static bool
CheckCacheCurrent(CheckCache *e, Relation rel)
{
	TupleConstr *constr = rel->rd_att->constr;
	int			i;

	if (e->relid != RelationGetRelid(rel) || e->ncheck != constr->num_check)
		return false;
	for (i = 0; i < e->ncheck; i++)
		if (strcmp(e->ccbin[i], constr->check[i].ccbin) != 0)
			return false;
	return true;
}

/* The compiled CHECK constraints of rel, or NULL when it has none or they are in use. */
static CheckCache *
CheckCacheGet(Relation rel)
{
	TupleConstr *constr = rel->rd_att->constr;
	CheckCache *e = NULL;
	MemoryContext old;
	int			i;

	if (constr == NULL || constr->num_check == 0 || constr->num_check != rel->rd_rel->relchecks)
		return NULL;			/* (a mismatch is the executor's to report) */
	if (check_cache_cxt == NULL)
	{
		check_cache_cxt = AllocSetContextCreate(CacheMemoryContext, "tforge learned-state checks",
												ALLOCSET_SMALL_SIZES);
		CacheRegisterSyscacheCallback(PROCOID, CheckCacheDrop, (Datum) 0);
	}
	for (i = 0; i < CHECK_CACHE_SIZE; i++)
		if (check_cache[i].relid == RelationGetRelid(rel))
		{
			e = &check_cache[i];
			break;
		}
	if (e != NULL && e->in_use)
		return NULL;
	if (e != NULL && CheckCacheCurrent(e, rel))
		return e;
	if (e == NULL)
		for (i = 0; i < CHECK_CACHE_SIZE && e == NULL; i++)
			if (!OidIsValid(check_cache[i].relid) && !check_cache[i].in_use)
				e = &check_cache[i];
	if (e == NULL)
		return NULL;

	e->relid = InvalidOid;		/* until compiled */
	if (e->cxt != NULL)
		MemoryContextDelete(e->cxt);	/* the previous compilation, which no write uses */
	e->cxt = NULL;
	e->cxt = AllocSetContextCreate(check_cache_cxt, "tforge learned-state check", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(e->cxt);
	e->ncheck = constr->num_check;
	e->ccbin = palloc(sizeof(char *) * e->ncheck);
	e->exprs = palloc(sizeof(ExprState *) * e->ncheck);
	for (i = 0; i < e->ncheck; i++)
	{
		e->ccbin[i] = pstrdup(constr->check[i].ccbin);
		e->exprs[i] = ExecInitExpr(expression_planner((Expr *) stringToNode(e->ccbin[i])), NULL);
	}
	MemoryContextSwitchTo(old);
	e->relid = RelationGetRelid(rel);
	return e;
}

/* The executor state of one write, as the apply worker builds it. */
typedef struct LearnedWrite
{
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epq;
	bool		hot;			/* the new version joined the row's HOT chain */
	/* the row's key in its unique index tforge.<index> */
	const char *index;
	int			nkeys;
	const Datum *keys;
	const bool *keynulls;
} LearnedWrite;

/*
 * Whether the version a concurrent update led to (tmfd.traversed) is
 * another row: the update changed the key. UPDATE under READ COMMITTED
 * rechecks its WHERE clause on that version and passes it over; so does a
 * learned write, which then finds no row with its key (the caller creates
 * it) rather than learning into the row that now has another key.
 */
static bool
KeyChanged(LearnedWrite *w, TM_FailureData *tmfd, TupleTableSlot *locked)
{
	return tmfd->traversed && !RowHasKey(w->index, locked, w->nkeys, w->keys, w->keynulls);
}

/* Refuse the write (0A000) when row-level security applies to the table for the current user. */
static void
CheckNoRowSecurity(Relation rel)
{
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("tforge cannot write learned state into \"%s\": row-level security applies to it",
						RelationGetRelationName(rel)),
				 errdetail("Completions rewrite rows of tforge.%s without a query plan, where row-level security policies cannot be applied.",
						   RelationGetRelationName(rel)),
				 errhint("Disable row-level security on the table, or let the owner of the extension bypass it (no FORCE ROW LEVEL SECURITY).")));
}

/*
 * The executor state of single-row writes of rel without a plan, as the
 * apply worker builds it (worker.c, create_edata_for_relation): a range
 * table of rel alone, and rel's result relation in *rri. Learned-state
 * writes (below) and the GPU pool's list writes (pool_lists.c) start here;
 * RowWriteEnd releases it.
 */
EState *
RowWriteBegin(Relation rel, ResultRelInfo **rri)
{
	EState	   *estate = CreateExecutorState();
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(estate, list_make1(rte));
	*rri = makeNode(ResultRelInfo);
	InitResultRelInfo(*rri, rel, 1, NULL, 0);
	return estate;
}

/* Release what RowWriteBegin and the writes made: the indexes opened, the slots. */
void
RowWriteEnd(EState *estate, ResultRelInfo *rri)
{
	if (rri->ri_IndexRelationDescs != NULL)
		ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
}

static void
LearnedWriteBegin(LearnedWrite *w, Relation rel)
{
	w->estate = RowWriteBegin(rel, &w->rri);
	/* where AfterTriggerEndQuery finds the relation of the AFTER triggers it fires */
	w->estate->es_opened_result_relations = lappend(w->estate->es_opened_result_relations, w->rri);
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->estate->es_snapshot = GetActiveSnapshot();
	AfterTriggerBeginQuery();
	EvalPlanQualInit(&w->epq, w->estate, NULL, NIL, -1);
}

/*
 * The columns the write changes, as the SET list of the UPDATE it stands
 * for: every column whose new value differs from the version it replaces.
 * Triggers for UPDATE OF a column fire by this list (an executor state with
 * no list of updated columns fires none of them).
 */
static void
MarkUpdatedColumns(LearnedWrite *w, TupleTableSlot *old, TupleTableSlot *next)
{
	RangeTblEntry *rte = exec_rt_fetch(w->rri->ri_RangeTableIndex, w->estate);
	TriggerDesc *trigdesc = w->rri->ri_TrigDesc;
	TupleDesc	desc = old->tts_tupleDescriptor;
	Bitmapset  *cols = NULL;
	bool		listed = false;
	int			i;

	/* only a trigger of UPDATE OF columns reads the list */
	for (i = 0; trigdesc != NULL && i < trigdesc->numtriggers && !listed; i++)
		listed = trigdesc->triggers[i].tgnattr > 0 && TRIGGER_FOR_UPDATE(trigdesc->triggers[i].tgtype);
	if (!listed)
		return;
	slot_getallattrs(old);
	slot_getallattrs(next);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);

		if (a->attisdropped)
			continue;
		if (old->tts_isnull[i] != next->tts_isnull[i] ||
			(!old->tts_isnull[i] &&
			 !datumIsEqual(old->tts_values[i], next->tts_values[i], a->attbyval, a->attlen)))
			cols = bms_add_member(cols, i + 1 - FirstLowInvalidHeapAttributeNumber);
	}
	rte->updatedCols = cols;
}

/* Fire the AFTER triggers queued and release the executor state. */
static void
LearnedWriteEnd(LearnedWrite *w)
{
	EvalPlanQualEnd(&w->epq);
	AfterTriggerEndQuery(w->estate);
	RowWriteEnd(w->estate, w->rri);
}

/*
 * Make what the current command has written so far visible to the write
 * that follows, as SPI does before each statement of a function: a row the
 * calling statement itself changed (WITH u AS (UPDATE tforge.task_tau ...)
 * SELECT tforge.update_tau(...) FROM u) is then read and rewritten in its
 * newest version, instead of the version that statement replaced, which
 * the update could only find "modified by this command". Free when nothing
 * was written since the last increment (the write ends with one).
 */
static void
SeeThisCommand(void)
{
	CommandCounterIncrement();
}

/*
 * A row found for a write was changed by a concurrent transaction that
 * committed: 40001 under REPEATABLE READ and above (as UPDATE), else false
 * when it was deleted (the caller creates it again).
 */
static bool
ConcurrentChange(Relation rel, TM_Result result)
{
	if (result == TM_SelfModified)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("tuple to be updated was already modified by an operation triggered by the current command"),
				 errdetail("A row of \"%s\" was changed while tforge was writing it.",
						   RelationGetRelationName(rel))));
	if (result != TM_Updated && result != TM_Deleted)
		elog(ERROR, "tforge: unexpected status %u writing a row of \"%s\"", result,
			 RelationGetRelationName(rel));
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent %s",
						result == TM_Updated ? "update" : "delete")));
	if (result == TM_Updated)
		elog(ERROR, "tforge: lost the update chain of a row of \"%s\"", RelationGetRelationName(rel));
	return false;
}

/*
 * version as it will be stored, when it is too large to be stored as it is
 * (a profile's rings are a few kB): compressed here as TOAST would compress
 * it in heap_update, each column that may be compressed with the column's
 * method. heap_update's own toasting pass would do it while the row is
 * already locked (it writes the lock to WAL and releases the page
 * meanwhile), which lengthens the time a concurrent completion of the same
 * type waits for the row; done before, the update is a plain one. What is
 * stored is what TOAST stores; a column that does not shrink stays as it
 * was given, and a version still too large is left to heap_update. Only
 * the version written is compressed (a batch learns through in-memory
 * versions it never stores).
 */
static HeapTuple
Compressed(Relation rel, HeapTuple version)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *values;
	bool	   *nulls;
	bool		compressed = false;
	int			i;

	if (version->t_len <= TOAST_TUPLE_THRESHOLD || HeapTupleHasExternal(version))
		return version;
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(version, desc, values, nulls);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(desc, i);
		Datum		c;

		if (nulls[i] || a->attisdropped || a->attlen != -1 ||
			(a->attstorage != TYPSTORAGE_EXTENDED && a->attstorage != TYPSTORAGE_MAIN) ||
			VARATT_IS_EXTENDED(DatumGetPointer(values[i])))
			continue;
		c = toast_compress_datum(values[i], CompressionMethodIsValid(a->attcompression)
								 ? a->attcompression : default_toast_compression);
		if (DatumGetPointer(c) != NULL)
		{
			values[i] = c;
			compressed = true;
		}
	}
	return compressed ? heap_form_tuple(desc, values, nulls) : version;
}

/* Whether the table has BEFORE UPDATE ROW triggers (the write is UpdateLocked's). */
static bool
UsesBeforeTriggers(LearnedWrite *w)
{
	return w->rri->ri_TrigDesc != NULL && w->rri->ri_TrigDesc->trig_update_before_row;
}

/*
 * The write when the table has BEFORE UPDATE ROW triggers, exactly as the
 * apply worker does it: lock the row (following a concurrent update under
 * READ COMMITTED), then ExecSimpleRelationUpdate. (A trigger's row is
 * locked before it fires; PostgreSQL's UPDATE locks it then too.)
 */
static bool
UpdateLocked(LearnedWrite *w, Relation rel, ItemPointer tid, TupleTableSlot *next,
			 RowChange change, RowWritten written, void *arg)
{
	TupleTableSlot *locked = table_slot_create(rel, &w->estate->es_tupleTable);
	TM_FailureData tmfd;
	TM_Result	result;

	result = table_tuple_lock(rel, tid, w->estate->es_snapshot, locked, w->estate->es_output_cid,
							  LockTupleNoKeyExclusive, LockWaitBlock,
							  IsolationUsesXactSnapshot() ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
							  &tmfd);
	if (result != TM_Ok)
		return ConcurrentChange(rel, result);
	if (KeyChanged(w, &tmfd, locked))
		return false;
	ExecForceStoreHeapTuple(Compressed(rel, change(locked, arg)), next, true);
	MarkUpdatedColumns(w, locked, next);
	ItemPointerSetInvalid(&next->tts_tid);
	EvalPlanQualSetSlot(&w->epq, next);
	ExecOpenIndices(w->rri, false);
	ExecSimpleRelationUpdate(w->rri, w->estate, &w->epq, locked, next);
	/* a new version has a new tid; a trigger that skipped the update left the row as it was */
	if (written != NULL)
		written(ItemPointerIsValid(&next->tts_tid) && !ItemPointerEquals(&next->tts_tid, &locked->tts_tid)
				? next : locked, arg);
	return true;
}

/*
 * The index entries of an update that is not HOT, when no index key changed.
 *
 * The executor's ExecInsertIndexTuples checks a unique index's new entry
 * against every entry with its key: for a learned row rewritten many times
 * in one transaction that is every version the transaction wrote (none can
 * be pruned before it ends), so the check costs more with each completion
 * and a long transaction's learning grows quadratically. A new version
 * whose unique keys are the ones of the version it replaces cannot
 * duplicate any row: the old version still holds the key in the index, and
 * a concurrent insert of that key waits for this transaction and then finds
 * the new entry, exactly as it would after an ordinary UPDATE. So when every
 * index of the table is a plain one (no expression, predicate or exclusion
 * constraint; a unique one immediate) and the update changed none of their
 * columns, the entries are inserted as ExecInsertIndexTuples inserts them,
 * without the unique check; any other case is left to it. Returns whether
 * the entries were inserted.
 */
static bool
InsertUnchangedKeys(ResultRelInfo *rri, TupleTableSlot *old, TupleTableSlot *next, EState *estate)
{
	TupleDesc	desc = RelationGetDescr(rri->ri_RelationDesc);
	ExprContext *econtext;
	int			i;
	int			k;

	for (i = 0; i < rri->ri_NumIndices; i++)
	{
		Relation	irel = rri->ri_IndexRelationDescs[i];
		IndexInfo  *ii = rri->ri_IndexRelationInfo[i];

		if (irel == NULL || !irel->rd_index->indisready)
			continue;
		if (ii->ii_Expressions != NIL || ii->ii_Predicate != NIL || ii->ii_ExclusionOps != NULL ||
			(irel->rd_index->indisunique && !irel->rd_index->indimmediate))
			return false;
		for (k = 0; k < ii->ii_NumIndexAttrs; k++)
		{
			AttrNumber	att = ii->ii_IndexAttrNumbers[k];
			Form_pg_attribute a;
			bool		oldnull;
			bool		newnull;
			Datum		oldval;
			Datum		newval;

			if (att <= 0)
				return false;
			a = TupleDescAttr(desc, att - 1);
			oldval = slot_getattr(old, att, &oldnull);
			newval = slot_getattr(next, att, &newnull);
			if (oldnull != newnull ||
				(!oldnull && !datumIsEqual(oldval, newval, a->attbyval, a->attlen)))
				return false;
		}
	}

	econtext = GetPerTupleExprContext(estate);
	econtext->ecxt_scantuple = next;
	for (i = 0; i < rri->ri_NumIndices; i++)
	{
		Relation	irel = rri->ri_IndexRelationDescs[i];
		IndexInfo  *ii = rri->ri_IndexRelationInfo[i];
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		if (irel == NULL || !irel->rd_index->indisready)
			continue;
		FormIndexDatum(ii, next, estate, values, isnull);
		index_insert(irel, values, isnull, &next->tts_tid, rri->ri_RelationDesc,
					 UNIQUE_CHECK_NO, true, ii);
	}
	return true;
}

/*
 * The write without BEFORE triggers: ExecSimpleRelationUpdate's steps
 * (generated columns, constraints, the update, index entries, AFTER
 * triggers), with the update itself as UPDATE does it: try to update the
 * version found and, when a concurrent transaction committed a newer one
 * meanwhile, lock that one and change it instead (READ COMMITTED), or
 * refuse (40001). Locking first, as the apply worker does, would cost a WAL
 * record per row on every completion.
 */
static bool
UpdateFound(LearnedWrite *w, Relation rel, TupleTableSlot *current, TupleTableSlot *next,
			RowChange change, RowWritten written, void *arg)
{
	TupleConstr *constr = rel->rd_att->constr;
	ItemPointerData tid = current->tts_tid;
	TupleTableSlot *locked = NULL;
	List	   *recheck = NIL;
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	result;

	for (;;)
	{
		ExecForceStoreHeapTuple(Compressed(rel, change(current, arg)), next, true);
		MarkUpdatedColumns(w, current, next);
		if (constr != NULL && constr->has_generated_stored)
			ExecComputeStoredGenerated(w->rri, w->estate, next, CMD_UPDATE);
		if (constr != NULL)
			ExecConstraints(w->rri, next, w->estate);
		result = table_tuple_update(rel, &tid, next, w->estate->es_output_cid, w->estate->es_snapshot,
									InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
		if (result == TM_Ok)
			break;
		if (result != TM_Updated || IsolationUsesXactSnapshot())
			return ConcurrentChange(rel, result);
		if (locked == NULL)
			locked = table_slot_create(rel, &w->estate->es_tupleTable);
		result = table_tuple_lock(rel, &tid, w->estate->es_snapshot, locked, w->estate->es_output_cid,
								  lockmode, LockWaitBlock, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		if (result != TM_Ok)
			return ConcurrentChange(rel, result);
		if (KeyChanged(w, &tmfd, locked))
			return false;
		current = locked;
		tid = locked->tts_tid;
	}
	/*
	 * A HOT update (the common case: the tables leave room on their pages
	 * and no index covers a learned column) needs no index entries, so the
	 * indexes are opened only for one that is not.
	 */
	w->hot = !update_indexes;
	if (update_indexes)
	{
		ExecOpenIndices(w->rri, false);
		if (w->rri->ri_NumIndices > 0 && !InsertUnchangedKeys(w->rri, current, next, w->estate))
			recheck = ExecInsertIndexTuples(w->rri, next, w->estate, true, false, NULL, NIL);
	}
	ExecARUpdateTriggers(w->estate, w->rri, NULL, NULL, &tid, NULL, next, recheck, NULL, false);
	list_free(recheck);
	if (written != NULL)
		written(next, arg);
	return true;
}

/*
 * Rewrite the row of tforge.<table> with key (keys) in its unique index
 * tforge.<index>: false when there is no such row (or a concurrent
 * transaction deleted it meanwhile: the caller creates it). change computes
 * the new version from the current one; written, when not NULL, is shown the
 * row as it stands afterwards (as a BEFORE trigger left it, or the current
 * version when a trigger skipped the update).
 */
bool
UpdateLearned(const char *table, const char *index, int nkeys, const Datum *keys,
			  const bool *keynulls, RowChange change, RowWritten written, void *arg)
{
	Relation	rel;
	TupleTableSlot *found;
	TupleTableSlot *next;
	LearnedWrite w;
	ItemPointerData tid;
	CheckCache *volatile checks;
	bool		done;

	SeeThisCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	found = LookupRow(table, index, nkeys, keys, keynulls, &rel);
	if (TupIsNull(found))
	{
		LookupEnd(found, rel);
		PopActiveSnapshot();
		return false;
	}
	tid = found->tts_tid;
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	CheckNoRowSecurity(rel);
	LockRelationOid(RelationGetRelid(rel), RowExclusiveLock);
	CheckCmdReplicaIdentity(rel, CMD_UPDATE);

	LearnedWriteBegin(&w, rel);
	w.hot = false;
	w.index = index;
	w.nkeys = nkeys;
	w.keys = keys;
	w.keynulls = keynulls;
	next = table_slot_create(rel, &w.estate->es_tupleTable);
	checks = CheckCacheGet(rel);
	if (checks != NULL)
	{
		w.rri->ri_ConstraintExprs = checks->exprs;
		checks->in_use = true;
	}
	PG_TRY();
	{
		if (UsesBeforeTriggers(&w))
			done = UpdateLocked(&w, rel, &tid, next, change, written, arg);
		else
			done = UpdateFound(&w, rel, found, next, change, written, arg);
	}
	PG_FINALLY();
	{
		if (checks != NULL)
			checks->in_use = false;
	}
	PG_END_TRY();

	/*
	 * The next lookup of the row fetches this version directly, and later
	 * transactions walk its HOT chain from it, or from the chain's root,
	 * which a non-HOT version starts anew (rowcache.c; the BEFORE-trigger
	 * path does not say which it made).
	 */
	if (done && ItemPointerIsValid(&next->tts_tid))
	{
		Oid			indexid = TforgeTable(index);

		RowCacheRemember(rel, indexid, nkeys, keys, keynulls, next);
		if (!w.hot && UsesBeforeTriggers(&w))
			RowRootForget(indexid, nkeys, keys, keynulls);
		else
			RowRootRemember(rel, indexid, nkeys, keys, keynulls, w.hot ? NULL : &next->tts_tid,
							&next->tts_tid);
	}
	LearnedWriteEnd(&w);
	LookupEnd(found, rel);
	PopActiveSnapshot();
	if (done)
		CommandCounterIncrement();
	return done;
}

void
RowEditBegin(RowEdit *e, TupleTableSlot *slot)
{
	int			natts = slot->tts_tupleDescriptor->natts;

	e->slot = slot;
	e->values = palloc0(sizeof(Datum) * natts);
	e->nulls = palloc0(sizeof(bool) * natts);
	e->replace = palloc0(sizeof(bool) * natts);
}

/* The column's value in the version being replaced. */
Datum
RowEditGet(RowEdit *e, const char *name, bool *isnull)
{
	return slot_getattr(e->slot, ColumnIndex(e->slot->tts_tupleDescriptor, name) + 1, isnull);
}

void
RowEditSet(RowEdit *e, const char *name, Datum value, bool isnull)
{
	int			i = ColumnIndex(e->slot->tts_tupleDescriptor, name);

	e->values[i] = value;
	e->nulls[i] = isnull;
	e->replace[i] = true;
}

/*
 * Count one more in bigint column name (a NULL counts as 0) and return the
 * new count; 22003 when the column already holds the largest bigint, as
 * column + 1 in SQL would (what names the counter in the message). The
 * one definition of a learned counter's step: it neither wraps around to a
 * negative count nor reaches the table's constraints.
 */
int64
RowEditCount(RowEdit *e, const char *name, const char *what)
{
	bool		isnull;
	Datum		d = RowEditGet(e, name, &isnull);
	int64		count = isnull ? 0 : DatumGetInt64(d);

	if (pg_add_s64_overflow(count, 1, &count))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s is out of range: it already counts %s", what,
						DatumGetCString(DirectFunctionCall1(int8out, d))),
				 errdetail("Column %s holds at most 9223372036854775807.", name)));
	RowEditSet(e, name, Int64GetDatum(count), false);
	return count;
}

/* The new version, its updated_at now(). */
HeapTuple
RowEditFinish(RowEdit *e)
{
	RowEditSet(e, "updated_at", TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
	return heap_modify_tuple(ExecFetchSlotHeapTuple(e->slot, false, NULL), e->slot->tts_tupleDescriptor,
							 e->values, e->nulls, e->replace);
}

void
ConcurrentlyDeleted(const char *what, Datum task_type)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not record the %s of task type \"%s\": it was deleted concurrently",
					what, TextDatumGetCString(task_type)),
			 errhint("Retry the transaction.")));
}

/* Float8 column of task_type's definition in a snapshot of its own; false if undefined. */
bool
TypeColumn(Datum task_type, const char *column, double *value, bool *isnull)
{
	bool		found;

	PushActiveSnapshot(GetTransactionSnapshot());
	found = LookupFloat8("task_types", "task_types_pkey", task_type, column, value, isnull);
	PopActiveSnapshot();
	return found;
}
/* ---- batches: lock once, learn in memory, write once ------------------------ */

/*
 * Lock the row of tforge.<table> with key (keys) in its unique index
 * tforge.<index> (FOR NO KEY UPDATE, waiting for a concurrent writer) and
 * store its newest version in slot (a heap-tuple slot of the table's row
 * type, which keeps its own copy); false when there is no such row or a
 * concurrent transaction deleted it (the caller creates it). Under
 * REPEATABLE READ and above a row changed since the snapshot is 40001, as
 * for UPDATE. A batch (batch.c) locks each row it learns into this way,
 * computes every completion's change in memory, and writes the row once
 * (WriteLearned); the lock keeps the row as read until then.
 */
bool
LockLearned(const char *table, const char *index, int nkeys, const Datum *keys,
			const bool *keynulls, TupleTableSlot *slot)
{
	Relation	rel;
	TupleTableSlot *found;
	TupleTableSlot *locked;
	TM_FailureData tmfd;
	TM_Result	result;
	bool		ok = false;

	SeeThisCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	found = LookupRow(table, index, nkeys, keys, keynulls, &rel);
	if (!TupIsNull(found))
	{
		if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
			aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
		LockRelationOid(RelationGetRelid(rel), RowExclusiveLock);
		locked = table_slot_create(rel, NULL);
		result = table_tuple_lock(rel, &found->tts_tid, GetActiveSnapshot(), locked,
								  GetCurrentCommandId(false), LockTupleNoKeyExclusive, LockWaitBlock,
								  IsolationUsesXactSnapshot() ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
								  &tmfd);
		if (result == TM_Ok && tmfd.traversed && !RowHasKey(index, locked, nkeys, keys, keynulls))
			ok = false;			/* another row now: see KeyChanged */
		else if (result == TM_Ok)
		{
			ExecCopySlot(slot, locked);
			slot->tts_tid = locked->tts_tid;
			ok = true;
		}
		else
			ok = ConcurrentChange(rel, result);
		ExecDropSingleTupleTableSlot(locked);
	}
	LookupEnd(found, rel);
	PopActiveSnapshot();
	return ok;
}

/* RowChange of WriteLearned: the version computed beforehand. */
static HeapTuple
ComputedVersion(TupleTableSlot *slot, void *arg)
{
	return heap_copytuple((HeapTuple) arg);
}

/*
 * Write version as the next version of the row LockLearned locked, through
 * the same executor path as every learned-state write (UpdateLearned).
 */
void
WriteLearned(const char *table, const char *index, int nkeys, const Datum *keys,
			 const bool *keynulls, HeapTuple version)
{
	if (!UpdateLearned(table, index, nkeys, keys, keynulls, ComputedVersion, NULL, version))
		elog(ERROR, "tforge: a locked row of tforge.%s disappeared", table);
}
