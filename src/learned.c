/*
 * learned.c: writes of learned state, the rows of tforge.task_tau and
 * tforge.profiles that every completion of a type or key rewrites.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
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

#include "estimate.h"
#include "profile.h"
#include "queue.h"
#include "tforge.h"

/* ---- learned state, updated in place ------------------------------------ */

/*
 * Every completion rewrites its type's tau and profile, one or two rows
 * that all completions of the type share. An UPDATE through SPI would
 * spend most of its time starting the executor and re-reading the tables'
 * CHECK constraints; these rows are instead changed like a catalog row:
 * found by key, rewritten with heap_update (HOT when the page has room,
 * indexed again when not), waiting for a concurrent writer and then
 * changing its new version, as UPDATE does (UpdateInPlace). The new values
 * are computed here, and checked as the tables' constraints would. These
 * tables have no triggers; tforge alone writes them.
 */

/* Index entries for a new row version that is not HOT, as for a catalog row. */
static void
IndexNewVersion(Relation rel, HeapTuple tuple)
{
	CatalogIndexState indexes;
	TupleTableSlot *slot;
	int			i;

	if (HeapTupleIsHeapOnly(tuple))
		return;
	indexes = CatalogOpenIndexes(rel);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	ExecStoreHeapTuple(tuple, slot, false);
	for (i = 0; i < indexes->ri_NumIndices; i++)
	{
		IndexInfo  *info = indexes->ri_IndexRelationInfo[i];
		Relation	index = indexes->ri_IndexRelationDescs[i];
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		if (!info->ii_ReadyForInserts)
			continue;
		if (info->ii_Expressions != NIL || info->ii_Predicate != NIL)
			elog(ERROR, "tforge: index \"%s\" on learned state has expressions or a predicate",
				 RelationGetRelationName(index));
		FormIndexDatum(info, slot, NULL, values, isnull);
		index_insert(index, values, isnull, &tuple->t_self, rel,
					 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, false, info);
	}
	ExecDropSingleTupleTableSlot(slot);
	CatalogCloseIndexes(indexes);
}

/*
 * Rewrite the row of tforge.<table> with key (keys) in its unique index
 * tforge.<index>: false when there is no such row. As UPDATE does, a row
 * a concurrent transaction is changing is waited for, and its new version
 * changed in turn (READ COMMITTED) or refused (REPEATABLE READ and above).
 */
bool
UpdateInPlace(const char *table, const char *index, int nkeys, const Datum *keys,
			  const bool *keynulls, RowChange change, void *arg)
{
	Relation	rel;
	TupleTableSlot *slot;
	ItemPointerData tid;
	bool		done = false;

	PushActiveSnapshot(GetTransactionSnapshot());
	slot = LookupRow(table, index, nkeys, keys, keynulls, &rel);
	PopActiveSnapshot();
	if (TupIsNull(slot))
	{
		LookupEnd(slot, rel);
		return false;
	}
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	LockRelationOid(RelationGetRelid(rel), RowExclusiveLock);

	tid = slot->tts_tid;
	for (;;)
	{
		HeapTuple	tuple = change(slot, arg);
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		TM_Result	result;

		result = heap_update(rel, &tid, tuple, GetCurrentCommandId(true), InvalidSnapshot, true,
							 &tmfd, &lockmode);
		if (result == TM_Ok)
		{
			IndexNewVersion(rel, tuple);
			done = true;
			break;
		}
		if ((result != TM_Updated && result != TM_Deleted) || IsolationUsesXactSnapshot())
		{
			if (result == TM_Updated || result == TM_Deleted)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			elog(ERROR, "unexpected heap_update status %u on tforge.%s", result, table);
		}
		/* a concurrent transaction committed a new version: change that one */
		if (result == TM_Deleted || ItemPointerEquals(&tid, &tmfd.ctid))
			break;				/* gone: the caller creates the row */
		tid = tmfd.ctid;
		if (!table_tuple_fetch_row_version(rel, &tid, SnapshotAny, slot))
			break;
	}
	if (done)
		CommandCounterIncrement();
	LookupEnd(slot, rel);
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