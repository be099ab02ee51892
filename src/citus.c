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
#include "fmgr.h"
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
