/*
 * citus.c: tforge on a Citus cluster (scale-out, see README "Scale-out on
 * Citus" and tforge.distribute() in sql/install/90_citus.sql).
 *
 * C code that reads a tforge table directly (index probes, heap scans) does
 * not go through Citus's planner. On a cluster that is only right for a
 * table whose rows are in the relation itself:
 *
 *   - a Citus table (distributed, reference, or Citus-managed local) keeps
 *     its rows in shards; the relation under the table's own name is an
 *     empty shell (or holds stale rows copied out when it was distributed);
 *   - a table tforge.distribute() leaves on the coordinator is a plain table
 *     there, and on a worker the extension's own copy of it is empty.
 *
 * RefuseShellTable(relid) is called before such a read and raises 55000 in
 * both cases, so the read never silently answers from the wrong rows. It
 * costs one syscache lookup when Citus is not installed (the single-node
 * case), and two catalog index probes when it is. It takes no locks beyond
 * AccessShareLock on Citus's catalogs, released at once.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "parser/parse_relation.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "tforge.h"

/* Citus's catalogs (pg_catalog.pg_dist_*), by name: tforge does not link Citus. */
#define CITUS_PARTITION_TABLE	"pg_dist_partition"
#define CITUS_PARTITION_INDEX	"pg_dist_partition_logical_relid_index"
#define CITUS_LOCAL_GROUP_TABLE "pg_dist_local_group"

/* True when relid has a row in pg_dist_partition (it is a Citus table). */
static bool
IsCitusTable(Oid partition, Oid relid)
{
	Oid			index = get_relname_relid(CITUS_PARTITION_INDEX, PG_CATALOG_NAMESPACE);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	bool		found;

	rel = table_open(partition, AccessShareLock);
	/* the first column of pg_dist_partition is logicalrelid (regclass) */
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, index, OidIsValid(index), NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* This node's Citus group: 0 on the coordinator (and on a node not yet added). */
static int32
CitusLocalGroup(void)
{
	Oid			relid = get_relname_relid(CITUS_LOCAL_GROUP_TABLE, PG_CATALOG_NAMESPACE);
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	int32		group = 0;

	if (!OidIsValid(relid))
		return 0;
	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull);

		if (!isnull)
			group = DatumGetInt32(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return group;
}

/* 55000: a table kept on the coordinator is read on a worker. */
static void
RefuseOnWorker(Oid relid)
{
	if (CitusLocalGroup() != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is kept on the Citus coordinator, and this node is a worker",
						get_rel_name(relid)),
				 errdetail("tforge.distribute() leaves tforge.%s on the coordinator; the copy on a worker is empty.",
						   get_rel_name(relid)),
				 errhint("Call this function on the coordinator.")));
}

void
RefuseShellTable(Oid relid)
{
	Oid			partition = get_relname_relid(CITUS_PARTITION_TABLE, PG_CATALOG_NAMESPACE);

	if (!OidIsValid(partition))
		return;					/* Citus is not installed in this database */

	if (IsCitusTable(partition, relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is a Citus table: its rows are in shards, not in the table this function reads",
						get_rel_name(relid)),
				 errdetail("This function reads the table directly, without Citus's planner."),
				 errhint("Keep tforge.%s local to the coordinator, as tforge.distribute() does, "
						 "or call the function where the shard is.", get_rel_name(relid))));
	RefuseOnWorker(relid);
}

bool
CitusRoutesTable(Oid relid)
{
	Oid			partition = get_relname_relid(CITUS_PARTITION_TABLE, PG_CATALOG_NAMESPACE);

	if (!OidIsValid(partition))
		return false;			/* Citus is not installed in this database */
	if (IsCitusTable(partition, relid))
		return true;
	RefuseOnWorker(relid);
	return false;
}

Oid
CitusLocalShard(Oid relid, const char *value, int64 *shardid)
{
	Oid			argtypes[2] = {REGCLASSOID, TEXTOID};
	Datum		args[2];
	bool		isnull = true;
	int64		id = 0;
	char	   *name;

	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(value);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT pg_catalog.get_shard_id_for_distribution_column($1, $2)",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "tforge: could not find the shard of \"%s\"", value);
	if (SPI_processed == 1 && SPI_tuptable != NULL)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			id = DatumGetInt64(d);
	}
	SPI_finish();
	if (isnull)
		elog(ERROR, "tforge: Citus gave no shard for \"%s\"", value);
	*shardid = id;
	name = psprintf("%s_" INT64_FORMAT, get_rel_name(relid), id);
	return get_relname_relid(name, get_rel_namespace(relid));
}

/*
 * tforge.assert_local_table(regclass): its argument when C code on this node
 * may read the table directly; 55000 (RefuseShellTable's message) otherwise.
 */
PG_FUNCTION_INFO_V1(tforge_assert_local_table);
Datum
tforge_assert_local_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);

	if (!OidIsValid(get_rel_namespace(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation with OID %u does not exist", relid)));
	RefuseShellTable(relid);
	PG_RETURN_OID(relid);
}

/*
 * The distribution argument of a Citus distributed function (its position,
 * from pg_dist_object), or -1 when the function is not delegated.
 */
static int
DistributionArgument(Oid funcid)
{
	Oid			relid = get_relname_relid("pg_dist_object", PG_CATALOG_NAMESPACE);
	Oid			index;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData keys[2];
	HeapTuple	tuple;
	int			result = -1;

	if (!OidIsValid(relid))
		return -1;
	index = get_relname_relid("pg_dist_object_pkey", PG_CATALOG_NAMESPACE);
	rel = table_open(relid, AccessShareLock);
	/* (classid, objid, objsubid, ...): the key's first two columns */
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ProcedureRelationId));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(funcid));
	scan = systable_beginscan(rel, index, OidIsValid(index), NULL, 2, keys);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		int			att = attnameAttNum(rel, "distribution_argument_index", false);
		bool		isnull = true;
		Datum		d = att > 0 ? heap_getattr(tuple, att, RelationGetDescr(rel), &isnull) : (Datum) 0;

		if (!isnull)
			result = DatumGetInt32(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/*
 * The planner guard. Citus 13.2 delegates a top-level call of a distributed
 * function (SELECT f(...) or SELECT ... FROM f(...)) to the node of its
 * distribution argument, and hashes that argument without checking for
 * NULL: a NULL text key (a model, device or training run) crashes the
 * backend. tforge's planner hook (calls.c), which runs before Citus's
 * (Citus is preloaded first), plans such a call of a tforge function with
 * PostgreSQL's own planner instead, which is what Citus does with a call it
 * does not delegate: the function runs on this node, with the NULL it was
 * given (checkpoint_gc(NULL) collects every run; most functions refuse a
 * NULL key). Only a query that references no table and has no subquery is
 * planned so, and only when a by-reference argument folds to NULL; every
 * other query goes to the previous hook (Citus's) untouched.
 *
 * True when the call's distribution argument, with the call's defaults (as
 * the planner adds them), is a by-reference value that folds to NULL.
 */
bool
CitusNullKeyCall(FuncExpr *call)
{
	Node	   *folded;
	List	   *args;
	Node	   *arg;
	int			n;

	bool		some_null = false;
	ListCell   *lc;

	folded = eval_const_expressions(NULL, (Node *) copyObject(call));
	if (!IsA(folded, FuncExpr))
		return false;			/* inlined or folded: Citus sees no call either */
	args = ((FuncExpr *) folded)->args;
	/* the catalog is read only for a call with some NULL by-reference argument */
	foreach(lc, args)
		if (IsA(lfirst(lc), Const) && ((Const *) lfirst(lc))->constisnull &&
			!((Const *) lfirst(lc))->constbyval)
			some_null = true;
	if (!some_null)
		return false;
	n = DistributionArgument(call->funcid);
	if (n < 0 || n >= list_length(args))
		return false;
	arg = (Node *) list_nth(args, n);
	return IsA(arg, Const) && ((Const *) arg)->constisnull && !((Const *) arg)->constbyval;
}

