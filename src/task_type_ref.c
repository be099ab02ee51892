/*
 * task_type_ref.c: every task names a task type that exists, kept by two
 * triggers rather than a foreign key.
 *
 * A foreign key from tasks.task_type to task_types.name would lock the
 * type's row FOR KEY SHARE on every submit: a WAL record and a dirtied page
 * per task, and a MultiXact whenever two submits of one type overlap, which
 * on a busy queue is most of them. The same guarantee, under every
 * isolation level, costs an index probe:
 *
 *   - tasks_type_exists (BEFORE INSERT ON tasks) and tasks_type_changed
 *     (AFTER UPDATE OF task_type: a BEFORE UPDATE row trigger of any column
 *     would make PostgreSQL lock every updated task first): the row's type
 *     must be in task_types as the latest snapshot sees it (23503
 *     otherwise). The writing statement already holds ROW EXCLUSIVE on
 *     tasks when the trigger runs.
 *   - task_types_in_use (BEFORE DELETE OR UPDATE OF name, and BEFORE
 *     TRUNCATE, ON task_types): takes SHARE on tasks, which waits for every
 *     transaction that inserted or changed a task to end and keeps new ones
 *     out until this one ends (submits wait meanwhile: deleting a type stalls
 *     the queue for the deleting transaction), then refuses (23503) when a
 *     task, as the latest snapshot sees tasks, names the type.
 * Both read with the latest snapshot plus what the current command wrote,
 * so one statement that deletes a type and inserts a task of it is refused
 * whichever side runs first.
 * A type deleted by a transaction that committed before a submit's trigger
 * ran is not found by the probe; a submit that committed first is found by
 * the deleter's check; they cannot overlap, since SHARE and ROW EXCLUSIVE
 * conflict.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "queue.h"
#include "tforge.h"

/*
 * Push a copy of the latest snapshot that also sees what the current
 * command has written so far: a statement that deletes a type and inserts a task of it (one side
 * in a WITH clause) is checked by whichever side runs second.
 */
static void
PushLatestWithThisCommand(void)
{
	PushCopiedSnapshot(GetLatestSnapshot());
	GetActiveSnapshot()->curcid = GetCurrentCommandId(false) + 1;
}

/* Text column name of tuple (a row of the trigger's table); *isnull when NULL. */
static Datum
TextColumn(TriggerData *trigdata, HeapTuple tuple, const char *name, bool *isnull)
{
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0 || TupleDescAttr(desc, attnum - 1)->atttypid != TEXTOID)
		elog(ERROR, "tforge: column %s of \"%s\" is missing or not text", name,
			 RelationGetRelationName(trigdata->tg_relation));
	return heap_getattr(tuple, attnum, desc, isnull);
}

/*
 * _task_type_exists(): BEFORE INSERT, or AFTER UPDATE OF task_type, ON
 * tforge.tasks, FOR EACH ROW. A NULL type is left to the column's NOT NULL.
 */
PG_FUNCTION_INFO_V1(tforge_task_type_exists);
Datum
tforge_task_type_exists(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = TforgeTrigger(fcinfo, "tforge._task_type_exists", "tasks");
	HeapTuple	row;
	HeapTuple	result;
	Relation	rel;
	TupleTableSlot *slot;
	Datum		type;
	bool		isnull;
	bool		keynull = false;
	bool		found;

	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._task_type_exists() must be fired for each row inserted or updated")));
	row = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	/* a BEFORE trigger returns the row to write; an AFTER trigger's result is ignored */
	result = TRIGGER_FIRED_BEFORE(trigdata->tg_event) ? row : NULL;
	type = TextColumn(trigdata, row, "task_type", &isnull);
	if (isnull)
		return PointerGetDatum(result);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		bool		oldnull;
		Datum		old = TextColumn(trigdata, trigdata->tg_trigtuple, "task_type", &oldnull);

		if (!oldnull && DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, old, type)))
			return PointerGetDatum(result);
	}

	PushLatestWithThisCommand();
	slot = LookupRow("task_types", "task_types_pkey", 1, &type, &keynull, &rel);
	found = !TupIsNull(slot);
	LookupEnd(slot, rel);
	PopActiveSnapshot();
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("task type \"%s\" does not exist", TextDatumGetCString(type)),
				 errdetail("Every task of tforge.tasks names a row of tforge.task_types."),
				 errhint("Define the type first with tforge.define_task_type().")));
	return PointerGetDatum(result);
}

/*
 * _task_type_in_use(): BEFORE DELETE OR UPDATE OF name ON tforge.task_types,
 * FOR EACH ROW, and BEFORE TRUNCATE.
 */
PG_FUNCTION_INFO_V1(tforge_task_type_in_use);
Datum
tforge_task_type_in_use(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = TforgeTrigger(fcinfo, "tforge._task_type_in_use", "task_types");
	bool		truncate = TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event);
	HeapTuple	result = NULL;
	Datum		name = (Datum) 0;
	bool		isnull = false;
	bool		used;
	int			rc;
	Oid			tasks;
	Relation	rel;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		(!truncate && !(TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) &&
					   (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ||
						TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tforge._task_type_in_use() must be fired BEFORE, for each row deleted or updated, or for TRUNCATE")));
	if (!truncate)
	{
		result = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
		name = TextColumn(trigdata, trigdata->tg_trigtuple, "name", &isnull);
		if (isnull)
			return PointerGetDatum(result);
		if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		{
			bool		newnull;
			Datum		renamed = TextColumn(trigdata, trigdata->tg_newtuple, "name", &newnull);

			if (!newnull && DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, name, renamed)))
				return PointerGetDatum(result);
		}
	}

	tasks = TforgeTable("tasks");
	LockRelationOid(tasks, ShareLock);
	/*
	 * The check reads every task, as the foreign key's did: as the table's
	 * owner, past row-level security (a policy hiding some tasks from the
	 * deleter would let it delete their type), and whether or not the
	 * deleter may read tforge.tasks. The statement is fixed and
	 * schema-qualified, and the function's search_path is pinned.
	 */
	rel = table_open(tasks, NoLock);
	owner = rel->rd_rel->relowner;
	table_close(rel, NoLock);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	SPI_connect();
	{
		SPIPlanPtr	plan;
		Oid			argtypes[1] = {TEXTOID};

		plan = SPI_prepare(truncate
						   ? "SELECT 1 FROM tforge.tasks LIMIT 1"
						   : "SELECT 1 FROM tforge.tasks t WHERE t.task_type OPERATOR(pg_catalog.=) $1 LIMIT 1",
						   truncate ? 0 : 1, argtypes);
		if (plan == NULL)
			elog(ERROR, "tforge._task_type_in_use: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		PushLatestWithThisCommand();
		rc = SPI_execute_snapshot(plan, &name, NULL, GetActiveSnapshot(), InvalidSnapshot, true, false, 1);
		PopActiveSnapshot();
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "tforge._task_type_in_use: SPI_execute_snapshot failed: %s", SPI_result_code_string(rc));
		used = SPI_processed > 0;
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (used && truncate)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("cannot truncate tforge.task_types while tforge.tasks has rows"),
				 errdetail("Every task of tforge.tasks names a row of tforge.task_types.")));
	if (used)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("task type \"%s\" is named by tasks", TextDatumGetCString(name)),
				 errdetail("Every task of tforge.tasks names a row of tforge.task_types."),
				 errhint("Delete or purge the type's tasks first.")));
	return PointerGetDatum(result);
}
