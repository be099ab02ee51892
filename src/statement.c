/*
 * statement.c: the queue's SPI statements and row lookups.
 *
 * Statements (QueueStatement) are prepared once per backend on first use
 * and kept (SPI_keepplan); every statement names its objects with the
 * schema, so neither a caller's path nor a replan after an invalidation can
 * change what it means. Plans are generic (CURSOR_OPT_GENERIC_PLAN) unless
 * the statement says otherwise.
 *
 * Reads by key that every worker cycle makes are index probes rather than
 * statements (IndexFirst, LookupRow): the same snapshot rules and
 * AccessShareLocks as a SELECT, without an executor start each.
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
#include "catalog/pg_enum.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/spi_priv.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/plancache.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "estimate.h"
#include "profile.h"
#include "queue.h"
#include "tforge.h"

/* The statement's plan, prepared (again, if tforge.resources changed). */
static SPIPlanPtr
StatementPlan(QueueStatement *stmt, Oid resources_type)
{
	Oid			argtypes[MAX_ARGS];
	SPIPlanPtr	plan;
	int			i;

	if (stmt->plan != NULL && stmt->resources_type == resources_type)
		return stmt->plan;
	for (i = 0; i < stmt->nargs; i++)
		argtypes[i] = stmt->argtypes[i] == RESOURCES_ARG ? resources_type : stmt->argtypes[i];
	plan = SPI_prepare_cursor(stmt->sql, stmt->nargs, argtypes,
							  stmt->plan_option ? stmt->plan_option : CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "could not prepare a tforge statement: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep a tforge statement");
	if (stmt->plan != NULL)
		SPI_freeplan(stmt->plan);
	stmt->plan = plan;
	stmt->resources_type = resources_type;
	return plan;
}

/*
 * Whether running plan will plan its statement first: a custom plan (every
 * run), or a generic plan not yet built or invalidated since.
 */
static bool
PlansOnRun(SPIPlanPtr plan)
{
	CachedPlanSource *ps;

	if (plan->plancache_list == NIL)
		return true;
	ps = (CachedPlanSource *) linitial(plan->plancache_list);
	return !ps->is_valid || ps->gplan == NULL || !ps->gplan->is_valid ||
		(plan->cursor_options & CURSOR_OPT_GENERIC_PLAN) == 0;
}

/*
 * Run a statement; nulls NULL or nulls[i] true when argument i is NULL;
 * read_only for a lookup (no new snapshot); guard: plan with the guard
 * below. Returns SPI_processed. The one way tforge's C code runs a kept
 * statement: Execute (the queue's statements, guarded) and
 * ExecuteUnguarded (the GPU pool's) are this.
 */
static pg_attribute_always_inline uint64
RunStatement(QueueStatement *stmt, Oid resources_type, const Datum *values, const bool *nulls,
			 bool read_only, long limit, bool guard)
{
	SPIPlanPtr	plan = StatementPlan(stmt, resources_type);
	char		n[MAX_ARGS];
	int			level = -1;
	int			i;
	int			rc;

	for (i = 0; i < stmt->nargs; i++)
		n[i] = nulls != NULL && nulls[i] ? 'n' : ' ';
	if (guard && PlansOnRun(plan))
	{
		level = NewGUCNestLevel();
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	}
	rc = SPI_execute_plan(plan, (Datum *) values, n, read_only, limit);
	if (level >= 0)
		AtEOXact_GUC(true, level);
	if (rc < 0)
		elog(ERROR, "tforge statement failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Run a queue statement; nulls[i] true means argument i is NULL. Returns SPI_processed.
 *
 * Every queue statement finds its rows by key or takes the head of an
 * index, and its plan is kept for the backend's life: a plan made while
 * tforge.tasks was empty (a worker started on an empty queue, a table just
 * truncated) would otherwise scan the whole table on every call as it
 * grows, until the next ANALYZE, and within one transaction for good; and
 * a queue filled since the last ANALYZE looks tiny to the planner, which
 * would then sort every pending task to find the claim's head. So
 * statements are planned with enable_seqscan and enable_sort off, for the
 * planning only: a SET clause on the function would save and restore the
 * settings on every call, planned or not.
 */
uint64
Execute(QueueStatement *stmt, Oid resources_type, Datum *values, const bool *nulls, long limit)
{
	return RunStatement(stmt, resources_type, values, nulls, false, limit, true);
}

/*
 * Run a statement planned as the planner chooses (the GPU pool's: some
 * of them read whole lists, which the guard would turn into full index
 * scans).
 */
uint64
ExecuteUnguarded(QueueStatement *stmt, const Datum *values, const bool *nulls, bool read_only)
{
	return RunStatement(stmt, InvalidOid, values, nulls, read_only, 0, false);
}

/*
 * Column col (1-based) of result row row of the last statement; *isnull
 * says whether it is NULL. SPI_tuptable belongs to the last SPI call (NULL
 * after a statement without RETURNING): callers copy out what they need
 * before the next one, and a call that breaks that rule is an error here,
 * never a dereference of a NULL or stale pointer.
 */
Datum
ResultValue(uint64 row, int col, bool *isnull)
{
	if (SPI_tuptable == NULL || row >= SPI_tuptable->numvals ||
		col < 1 || col > SPI_tuptable->tupdesc->natts)
		elog(ERROR, "tforge: the last statement has no result row " UINT64_FORMAT " column %d", row, col);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/*
 * Free the last statement's result. Every result stays in memory until the
 * function's SPI connection ends, so a loop that runs statements per item
 * (a batch's rounds, a typed claim's heads, a GPU claim's tasks) calls this
 * once it is done with each one: otherwise each statement kept about 8 kB
 * until the call returned, and one call with a large enough argument grew
 * its backend until the kernel killed it, restarting the whole server.
 */
void
ResultRelease(void)
{
	SPI_freetuptable(SPI_tuptable);
}

/*
 * 09000: a row tforge wrote did not reach tforge.<table> (what: which) -- a
 * BEFORE trigger someone put on the table returned NULL. The write is
 * refused loudly rather than reported as done.
 */
void
SkippedByTrigger(const char *table, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
			 errmsg("a trigger on tforge.%s skipped %s", table, what),
			 errdetail("A BEFORE ROW trigger on the table returned NULL, so the row was not written."),
			 errhint("Triggers on tforge's tables must return the row they are given.")));
}

/* 22004 unless argument argno (called name) is given: the one wording of a NULL argument. */
void
RequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

/*
 * Refuse to change state (25006) in a read-only transaction, in parallel
 * mode and on a standby, before any work: every SQL-callable C function that
 * writes calls it first, as a utility command would. (Statements run
 * through SPI are refused anyway, but not before the function has done
 * part of its work, and learned-state writes do not go through SPI.)
 */
void
CheckWritable(const char *function)
{
	PreventCommandIfReadOnly(function);
	PreventCommandIfParallelMode(function);
	PreventCommandDuringRecovery(function);
}

/* A value for an error message: its text, or <NULL> as PL/pgSQL prints it. */
const char *
ValueText(Datum value, bool isnull, Oid type)
{
	Oid			out;
	bool		varlena;

	if (isnull)
		return "<NULL>";
	getTypeOutputInfo(type, &out, &varlena);
	return OidOutputFunctionCall(out, value);
}

/* doc->key, or NULL when doc is not an object or has no such key. */
JsonbValue *
JsonbField(Jsonb *doc, const char *key)
{
	if (doc == NULL || !JB_ROOT_IS_OBJECT(doc))
		return NULL;
	return getKeyJsonValueFromContainer(&doc->root, key, strlen(key), NULL);
}

/*
 * A numeric field of a JSON object: false when absent or JSON null, else
 * true with *out its value, NaN when it is not a number or beyond 1e300.
 */
bool
JsonbNumber(Jsonb *doc, const char *key, double *out)
{
	JsonbValue *v = JsonbField(doc, key);

	if (v == NULL || v->type == jbvNull)
		return false;
	*out = NAN;
	if (v->type == jbvNumeric)
	{
		double		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
														   NumericGetDatum(v->val.numeric)));

		if (fabs(d) < 1e300)
			*out = d;
	}
	return true;
}

/* The JSON text of doc->key (which exists), cut to 40 characters when clip. */
char *
JsonbFieldText(Jsonb *doc, const char *key, bool clip)
{
	Jsonb	   *field = JsonbValueToJsonb(JsonbField(doc, key));
	char	   *text = JsonbToCString(NULL, &field->root, VARSIZE(field));

	if (clip && pg_mbstrlen(text) > 40)
		return psprintf("%.*s...", pg_mbcharcliplen(text, strlen(text), 40), text);
	return text;
}

/*
 * submit_task reads rows by key on every call: the type's tau (its
 * definition when nothing is learned yet) and the profile its estimate
 * comes from. Through SPI each read would cost an
 * executor start several times the index probe itself, so they are index
 * probes: the same snapshot rules and AccessShareLocks as a SELECT.
 */

/*
 * OIDs of tforge's relations by name, kept per backend: every worker cycle
 * probes six of them, and two catalog-cache lookups per name (the schema,
 * then the relation) cost a fifth of a probe. Any change to pg_class or
 * pg_namespace (a DROP, a rename, DROP EXTENSION, a cache reset) forgets
 * them all, so a name never maps to a relation it no longer names.
 */
#define RELID_CACHE_SIZE 16

typedef struct RelidEntry
{
	char		name[NAMEDATALEN];
	Oid			relid;
} RelidEntry;

static RelidEntry relid_cache[RELID_CACHE_SIZE];
static int	relid_cache_used = 0;
static bool relid_cache_registered = false;

static void
RelidCacheReset(Datum arg, int cacheid, uint32 hashvalue)
{
	relid_cache_used = 0;
}

/* OID of relation tforge.<name>; InvalidOid when there is none (or no schema tforge). */
Oid
TforgeRelid(const char *name)
{
	Oid			nsp;
	Oid			relid;
	int			i;

	if (!relid_cache_registered)
	{
		CacheRegisterSyscacheCallback(RELNAMENSP, RelidCacheReset, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, RelidCacheReset, (Datum) 0);
		relid_cache_registered = true;
	}
	for (i = 0; i < relid_cache_used; i++)
		if (strcmp(relid_cache[i].name, name) == 0)
			return relid_cache[i].relid;
	nsp = get_namespace_oid("tforge", true);
	relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
	if (OidIsValid(relid) && relid_cache_used < RELID_CACHE_SIZE && strlen(name) < NAMEDATALEN)
	{
		strlcpy(relid_cache[relid_cache_used].name, name, NAMEDATALEN);
		relid_cache[relid_cache_used].relid = relid;
		relid_cache_used++;
	}
	return relid;
}

/*
 * The TriggerData of a call of trigger function `function` (a name for
 * messages), which reads rows of tforge.<table> by that table's row type:
 * 39P01 unless it was fired as a trigger of that table (attached by an
 * admin to a table of its own, it would misread that table's rows).
 */
TriggerData *
TforgeTrigger(FunctionCallInfo fcinfo, const char *function, const char *table)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() must be fired as a trigger", function)));
	if (RelationGetRelid(trigdata->tg_relation) != TforgeRelid(table))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() fires only on tforge.%s, not on \"%s\"", function, table,
						RelationGetRelationName(trigdata->tg_relation))));
	return trigdata;
}

/* The OID of label of enum typid; InvalidOid when typid has no such label (or is no enum). */
Oid
EnumLabelOid(Oid typid, const char *label)
{
	HeapTuple	tuple = SearchSysCache2(ENUMTYPOIDNAME, ObjectIdGetDatum(typid), CStringGetDatum(label));
	Oid			oid;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	oid = ((Form_pg_enum) GETSTRUCT(tuple))->oid;
	ReleaseSysCache(tuple);
	return oid;
}

/* TforgeRelid of a relation the extension script created: a can't-happen error if it is missing. */
Oid
TforgeTable(const char *name)
{
	Oid			relid = TforgeRelid(name);

	if (!OidIsValid(relid))
		elog(ERROR, "relation tforge.%s is missing", name);
	return relid;
}

/* Open tforge.<table> and its index tforge.<index> (AccessShareLock). */
static void
OpenIndexed(const char *table, const char *index, Relation *relp, Relation *irelp)
{
	Oid			relid = TforgeRelid(table);
	Oid			indexid = TforgeRelid(index);

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "tforge.%s or its index tforge.%s is missing", table, index);
	/* never read a Citus shell table's empty local heap (src/citus.c) */
	RefuseShellTable(relid);
	*relp = table_open(relid, AccessShareLock);
	*irelp = index_open(indexid, AccessShareLock);
}

/*
 * The first row irel's scan finds under the active snapshot, in slot
 * (cleared if none), and, when root is not NULL, the TID its index entry
 * points to (the root of the row's HOT chain).
 */
static void
ScanFirst(Relation rel, Relation irel, ScanKey key, int nkeys, TupleTableSlot *slot, ItemPointer root)
{
	IndexScanDesc scan = index_beginscan(rel, irel, GetActiveSnapshot(), nkeys, 0);
	ItemPointer entry = NULL;
	bool		found = false;

	index_rescan(scan, key, nkeys, NULL, 0);
	/* index_getnext_slot's loop, keeping the entry's TID (the fetch moves xs_heaptid) */
	while (!found)
	{
		if (!scan->xs_heap_continue)
		{
			entry = index_getnext_tid(scan, ForwardScanDirection);
			if (entry == NULL)
				break;
			if (root != NULL)
				*root = *entry;
		}
		found = index_fetch_heap(scan, slot);
	}
	if (!found)
		ExecClearTuple(slot);
	index_endscan(scan);
}

/*
 * The first row of tforge.<table>, in the order of its index tforge.<index>,
 * that matches the scan keys and the active snapshot; an empty slot if none.
 * The scan keys' attribute numbers are index columns.
 */
TupleTableSlot *
IndexFirst(const char *table, const char *index, ScanKey key, int nkeys, Relation *relp)
{
	Relation	rel;
	Relation	irel;
	TupleTableSlot *slot;

	OpenIndexed(table, index, &rel, &irel);
	slot = table_slot_create(rel, NULL);
	ScanFirst(rel, irel, key, nkeys, slot, NULL);
	index_close(irel, NoLock);
	*relp = rel;
	return slot;
}

/*
 * The row of tforge.<table> with key (keys) in its unique index
 * tforge.<index>: where this transaction last wrote it, else through the
 * root of its HOT chain this backend remembers (rowcache.c), else an index
 * probe.
 */
TupleTableSlot *
LookupRow(const char *table, const char *index, int nkeys, const Datum *keys,
		  const bool *keynulls, Relation *relp)
{
	ScanKeyData key[2];
	Relation	rel;
	Relation	irel;
	TupleTableSlot *slot;
	ItemPointerData root;
	int			i;

	Assert(nkeys <= 2);
	OpenIndexed(table, index, &rel, &irel);
	/*
	 * The caches and the scan keys below compare text columns of a unique
	 * index on plain columns (a visible row with the key is then the one row).
	 */
	if (!irel->rd_index->indisunique || !heap_attisnull(irel->rd_indextuple, Anum_pg_index_indpred, NULL) ||
		!heap_attisnull(irel->rd_indextuple, Anum_pg_index_indexprs, NULL))
		elog(ERROR, "tforge: LookupRow reads by a unique index on columns, and tforge.%s is not one", index);
	for (i = 0; i < nkeys; i++)
		if (TupleDescAttr(RelationGetDescr(irel), i)->atttypid != TEXTOID || irel->rd_index->indkey.values[i] <= 0)
			elog(ERROR, "tforge: LookupRow reads by text keys, and tforge.%s is not keyed so", index);
	slot = table_slot_create(rel, NULL);
	*relp = rel;
	if (RowCacheFind(rel, irel, nkeys, keys, keynulls, slot) ||
		RowRootFind(rel, irel, nkeys, keys, keynulls, slot))
	{
		index_close(irel, NoLock);
		return slot;
	}
	for (i = 0; i < nkeys; i++)
	{
		if (keynulls[i])
			ScanKeyEntryInitialize(&key[i], SK_ISNULL | SK_SEARCHNULL, i + 1, InvalidStrategy,
								   InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
		else
			ScanKeyEntryInitialize(&key[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
								   DEFAULT_COLLATION_OID, F_TEXTEQ, keys[i]);
	}
	ScanFirst(rel, irel, key, nkeys, slot, &root);
	if (!TupIsNull(slot))
	{
		RowCacheRemember(rel, RelationGetRelid(irel), nkeys, keys, keynulls, slot);
		RowRootRemember(rel, RelationGetRelid(irel), nkeys, keys, keynulls, &root, &slot->tts_tid);
	}
	index_close(irel, NoLock);
	return slot;
}

/* Release what LookupRow returned; locks stay until the end of the transaction. */
void
LookupEnd(TupleTableSlot *slot, Relation rel)
{
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
}

/* Attribute number (0-based) of column name in desc; -1 when there is none. */
int
ColumnIndexIfAny(TupleDesc desc, const char *name)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, i)->attname), name) == 0)
			return i;
	return -1;
}

/* Attribute number (0-based) of column name in desc. */
int
ColumnIndex(TupleDesc desc, const char *name)
{
	int			i = ColumnIndexIfAny(desc, name);

	if (i < 0)
		elog(ERROR, "tforge: column \"%s\" is missing", name);
	return i;
}

/* Column name of the slot's row, copied out of the buffer. */
Datum
Column(TupleTableSlot *slot, const char *name, bool *isnull)
{
	int			i = ColumnIndex(slot->tts_tupleDescriptor, name);
	Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, i);
	Datum		d = slot_getattr(slot, i + 1, isnull);

	return *isnull ? (Datum) 0 : datumCopy(d, att->attbyval, att->attlen);
}

/*
 * Column name of the slot's row as Column, NULL when the table has no such
 * column: a column added in 0.2.0, read by the 0.2.0 library from a 0.1.0
 * schema (before ALTER EXTENSION tforge UPDATE).
 */
Datum
ColumnIfAny(TupleTableSlot *slot, const char *name, bool *isnull)
{
	if (ColumnIndexIfAny(slot->tts_tupleDescriptor, name) < 0)
	{
		*isnull = true;
		return (Datum) 0;
	}
	return Column(slot, name, isnull);
}

/*
 * Float8 column of the row of tforge.<table> whose one-column unique index
 * tforge.<index> has key, as the active snapshot sees it; false when there
 * is no such row.
 */
bool
LookupFloat8(const char *table, const char *index, Datum key, const char *column,
			 double *value, bool *isnull)
{
	Relation	rel;
	TupleTableSlot *slot;
	bool		keynull = false;
	bool		found;

	slot = LookupRow(table, index, 1, &key, &keynull, &rel);
	found = !TupIsNull(slot);
	if (found)
	{
		Datum		d = Column(slot, column, isnull);

		*value = *isnull ? 0 : DatumGetFloat8(d);
	}
	LookupEnd(slot, rel);
	return found;
}
/*
 * tforge.resources must still be (cpu float8, memory_bytes bigint,
 * gpu_count integer, gpu_memory_bytes bigint): the queue reads and builds
 * its values by attribute number. A superuser's ALTER TYPE could change it
 * under the library; that is refused here rather than misread.
 */
void
CheckResourcesLayout(Oid type)
{
	static const Oid expected[4] = {FLOAT8OID, INT8OID, INT4OID, INT8OID};
	TupleDesc	desc = lookup_rowtype_tupdesc(type, -1);
	bool		ok = desc->natts == 4;
	int			i;

	for (i = 0; ok && i < 4; i++)
		ok = !TupleDescAttr(desc, i)->attisdropped && TupleDescAttr(desc, i)->atttypid == expected[i];
	ReleaseTupleDesc(desc);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("type %s is not the one tforge defines", format_type_be(type)),
				 errdetail("tforge expects (cpu double precision, memory_bytes bigint, gpu_count integer, gpu_memory_bytes bigint)."),
				 errhint("Restore the type's definition, or reinstall the extension.")));
}

/*
 * Argument argno as an array, deconstructed: the one reader of a batch's
 * array arguments (submit_tasks, complete_tasks, fail_tasks). A NULL
 * argument is not given (a->n 0); an array of more than one dimension is
 * refused (22023) rather than read flat; NULL elements are flagged in
 * a->nulls, each caller saying what one means.
 */
void
GetBatchArray(FunctionCallInfo fcinfo, int argno, const char *name, BatchArray *a)
{
	ArrayType  *array;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	a->given = !PG_ARGISNULL(argno);
	a->n = 0;
	a->values = NULL;
	a->nulls = NULL;
	if (!a->given)
		return;
	array = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a one-dimensional array, got %d dimensions", name, ARR_NDIM(array))));
	get_typlenbyvalalign(ARR_ELEMTYPE(array), &typlen, &typbyval, &typalign);
	deconstruct_array(array, ARR_ELEMTYPE(array), typlen, typbyval, typalign, &a->values, &a->nulls, &a->n);
}

/*
 * The per-item arrays of a batch (names[i], arrays[i]) go with the array
 * against (n elements): each must be NULL or as long, else 22023 naming
 * them all, with the lengths given.
 */
void
CheckBatchLengths(const char *against, int n, int narrays, const char *const *names,
				  const BatchArray *const *arrays)
{
	StringInfoData list;
	StringInfoData lengths;
	int			i;

	for (i = 0; i < narrays; i++)
		if (arrays[i]->given && arrays[i]->n != n)
			break;
	if (i == narrays)
		return;
	initStringInfo(&list);
	initStringInfo(&lengths);
	for (i = 0; i < narrays; i++)
	{
		const char *sep = i == 0 ? "" : i == narrays - 1 ? " and " : ", ";

		appendStringInfo(&list, "%s%s", sep, names[i]);
		appendStringInfo(&lengths, "%s%s%s %s", sep, names[i], i == 0 ? " has" : "",
						 arrays[i]->given ? psprintf("%d", arrays[i]->n) : "NULL");
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must be NULL or as long as %s (%d)", list.data, against, n),
			 errdetail("%s elements.", lengths.data)));
}
