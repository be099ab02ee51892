/*
 * calls.c: tforge's planner hook, for statements that are one call of a
 * tforge function (SELECT tforge.submit_task(...), SELECT ... FROM
 * tforge.claim_tasks(...)), which is how workers reach the queue.
 *
 * Two things happen to such a call before PostgreSQL's planner sees it:
 *
 *  - Its default arguments are filled in from a per-backend cache. A call
 *    that leaves arguments out (claim_tasks('w'), submit_task('t',
 *    payload => ...)) otherwise makes the planner parse the function's
 *    pg_proc.proargdefaults text into expression trees on every statement
 *    (expand_function_arguments), which cost a worker cycle more than the
 *    rest of its planning. The arguments are put in order exactly as the
 *    planner would: positional ones first, named ones at their positions,
 *    each missing one the function's default; the planner then finds
 *    nothing left to expand. Only functions of schema tforge whose
 *    parameters are not polymorphic or variadic are filled in (for them the
 *    planner adds no casts), and the cache is forgotten on any change to
 *    pg_proc or pg_namespace.
 *
 *  - On a Citus node, a call whose distribution argument is NULL is planned
 *    by PostgreSQL's planner rather than delegated (CitusNullKeyCall,
 *    citus.c).
 *
 * Every other statement goes to the previous hook (Citus's) or the
 * standard planner untouched.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "tforge.h"

/* What the hook needs to know of a function, by OID. */
typedef struct CallInfo
{
	Oid			funcid;			/* hash key */
	bool		tforge;			/* a function of schema tforge */
	int			nargs;			/* pronargs */
	List	   *defaults;		/* its default expressions, when it can be filled in */
} CallInfo;

static HTAB *call_info = NULL;
static MemoryContext call_info_context = NULL;
static planner_hook_type prev_planner = NULL;

static void
CallInfoReset(Datum arg, int cacheid, uint32 hashvalue)
{
	if (call_info_context != NULL)
		MemoryContextReset(call_info_context);
	call_info = NULL;
}

/* Whether the planner would cast none of the function's arguments. */
static bool
PlainParameters(Form_pg_proc proc)
{
	int			i;

	if (OidIsValid(proc->provariadic))
		return false;
	for (i = 0; i < proc->pronargs; i++)
		if (IsPolymorphicType(proc->proargtypes.values[i]))
			return false;
	return true;
}

/* The function's CallInfo, read from pg_proc the first time; NULL when there is no such function. */
static CallInfo *
LookupCall(Oid funcid)
{
	CallInfo   *info;
	HeapTuple	tuple;
	Form_pg_proc proc;
	Oid			nsp;
	bool		tforge;
	bool		found;
	List	   *defaults = NIL;

	if (call_info != NULL && (info = hash_search(call_info, &funcid, HASH_FIND, NULL)) != NULL)
		return info;

	/*
	 * Catalog reads first, the schema before the function: either may run
	 * the reset above, and a reset after the function's tuple was read
	 * would leave its old defaults cached.
	 */
	nsp = get_namespace_oid("tforge", true);
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tuple))
		return NULL;
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	tforge = OidIsValid(nsp) && proc->pronamespace == nsp;

	if (call_info_context == NULL)
	{
		call_info_context = AllocSetContextCreate(CacheMemoryContext, "tforge call defaults",
												  ALLOCSET_SMALL_SIZES);
		CacheRegisterSyscacheCallback(PROCOID, CallInfoReset, (Datum) 0);
		CacheRegisterSyscacheCallback(NAMESPACEOID, CallInfoReset, (Datum) 0);
	}
	if (tforge && proc->pronargdefaults > 0 && PlainParameters(proc))
	{
		MemoryContext old = MemoryContextSwitchTo(call_info_context);
		bool		isnull;
		Datum		stored = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proargdefaults, &isnull);

		if (!isnull)
			defaults = castNode(List, stringToNode(TextDatumGetCString(stored)));
		MemoryContextSwitchTo(old);
		if (list_length(defaults) != proc->pronargdefaults || proc->pronargdefaults > proc->pronargs)
			defaults = NIL;		/* not as pg_proc describes it: leave it to the planner */
	}
	if (call_info == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CallInfo);
		ctl.hcxt = call_info_context;
		call_info = hash_create("tforge call defaults", 32, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	info = hash_search(call_info, &funcid, HASH_ENTER, &found);
	info->tforge = tforge;
	info->nargs = proc->pronargs;
	info->defaults = defaults;
	ReleaseSysCache(tuple);
	return info;
}

/*
 * The call's arguments in parameter order with its defaults filled in, as
 * the planner's expand_function_arguments would make them; the call is left
 * as it is when that is already so, or when the arguments do not fit the
 * function (the planner will say why).
 */
static void
FillDefaults(FuncExpr *call, CallInfo *info)
{
	Node	   *args[FUNC_MAX_ARGS];
	int			first = info->nargs - list_length(info->defaults);
	bool		named = false;
	List	   *filled = NIL;
	ListCell   *lc;
	int			i = 0;

	foreach(lc, call->args)
		named |= IsA(lfirst(lc), NamedArgExpr);
	if (info->defaults == NIL || (!named && list_length(call->args) >= info->nargs) ||
		list_length(call->args) > info->nargs || info->nargs > FUNC_MAX_ARGS)
		return;
	memset(args, 0, sizeof(args));
	foreach(lc, call->args)
	{
		Node	   *arg = (Node *) lfirst(lc);

		if (IsA(arg, NamedArgExpr))
		{
			NamedArgExpr *na = (NamedArgExpr *) arg;

			if (na->argnumber < 0 || na->argnumber >= info->nargs || args[na->argnumber] != NULL)
				return;
			args[na->argnumber] = (Node *) na->arg;
		}
		else if (i < info->nargs && args[i] == NULL)
			args[i++] = arg;
		else
			return;
	}
	i = first;
	foreach(lc, info->defaults)
	{
		if (args[i] == NULL)
			args[i] = copyObject((Node *) lfirst(lc));
		i++;
	}
	for (i = 0; i < info->nargs; i++)
	{
		if (args[i] == NULL)
			return;
		filled = lappend(filled, args[i]);
	}
	call->args = filled;
}

/* The lone call of a query that reads no table, has no subquery and returns it; else NULL. */
static FuncExpr *
LoneCall(Query *parse)
{
	FuncExpr   *call = NULL;
	ListCell   *lc;

	if (parse->commandType != CMD_SELECT || parse->hasSubLinks || parse->cteList != NIL ||
		parse->setOperations != NULL || parse->jointree == NULL)
		return NULL;
	foreach(lc, parse->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		RangeTblFunction *rtf;

		if (rte->rtekind == RTE_RESULT)
			continue;
		if (rte->rtekind != RTE_FUNCTION || list_length(rte->functions) != 1 || call != NULL)
			return NULL;
		rtf = linitial_node(RangeTblFunction, rte->functions);
		if (!IsA(rtf->funcexpr, FuncExpr))
			return NULL;
		call = (FuncExpr *) rtf->funcexpr;
	}
	if (call == NULL)
	{
		TargetEntry *te;

		if (list_length(parse->targetList) != 1)
			return NULL;
		te = linitial_node(TargetEntry, parse->targetList);
		if (!IsA(te->expr, FuncExpr))
			return NULL;
		call = (FuncExpr *) te->expr;
	}
	return call;
}

static PlannedStmt *
TforgePlanner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	FuncExpr   *call = LoneCall(parse);
	CallInfo   *info = call != NULL ? LookupCall(call->funcid) : NULL;

	if (info != NULL && info->tforge)
	{
		FillDefaults(call, info);
		if (prev_planner != NULL && CitusNullKeyCall(call))
			return standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	if (prev_planner != NULL)
		return prev_planner(parse, query_string, cursorOptions, boundParams);
	return standard_planner(parse, query_string, cursorOptions, boundParams);
}

void
PlannerHookInit(void)
{
	prev_planner = planner_hook;
	planner_hook = TforgePlanner;
}
