/*
 * wakeup.c
 *		Wake-ups: a transaction that submitted tasks NOTIFYs channel
 *		tforge_tasks at commit, once per task type (the payload), so that
 *		idle workers block on LISTEN instead of polling.
 *
 * PostgreSQL serializes every committing transaction that notifies (a lock
 * on the database held until the commit is written), so two clients
 * submitting at once wait for each other's commits even when nobody is
 * listening. tforge therefore notifies only while some backend may be
 * listening on tforge_tasks:
 *
 *   - LISTEN tforge_tasks (seen by the utility hook, before it runs) counts
 *     the backend as a listener in shared memory until the backend exits (an
 *     UNLISTEN is not subtracted: a listener counted too long only costs a
 *     notification nobody reads);
 *   - a submit records its task type; just before its transaction commits,
 *     the transaction notifies each recorded type if the count is above
 *     zero. Types recorded in a subtransaction that aborts are forgotten,
 *     as PostgreSQL forgets such a subtransaction's NOTIFY.
 *
 * The count and the commits meet as in Dekker's algorithm: a submitter
 * that is about to commit without notifying first publishes its
 * transaction id in shared memory and then reads the count; a backend that
 * starts listening first adds itself to the count and then waits for every
 * published transaction to end. So either the submitter sees the listener
 * and notifies, or the LISTEN waits until the submitter has committed, and
 * the worker's check for work after LISTEN finds its tasks. Without
 * shared_preload_libraries there is no count, and every transaction that
 * submitted notifies.
 *
 * PostgreSQL folds identical (channel, payload) notifications of one
 * transaction into one and drops them on abort. A transaction that has
 * submitted tasks cannot be PREPAREd (two-phase commit): PREPARE notifies
 * whatever the count, and PostgreSQL refuses to PREPARE a NOTIFY.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "queue.h"
#include "tforge.h"

/* The channel idle workers LISTEN on. */
#define WAKEUP_CHANNEL "tforge_tasks"

/* NOTIFY's payload limit (async.c keeps it private). */
#define WAKEUP_PAYLOAD_MAX (BLCKSZ - NAMEDATALEN - 128)

typedef struct WakeupShared
{
	pg_atomic_uint32 listeners; /* backends that ran LISTEN tforge_tasks and still run */
	/* by backend id - 1: a transaction committing without notifying, or 0 */
	pg_atomic_uint32 committing[FLEXIBLE_ARRAY_MEMBER];
} WakeupShared;

static WakeupShared *wakeup_shared = NULL;
static bool counted = false;	/* this backend is one of the listeners */
static bool published = false;	/* this backend's committing slot is set */

/* Types this transaction submitted, with the nesting level that recorded each. */
typedef struct PendingType
{
	char	   *type;
	int			level;
} PendingType;

static List *pending = NIL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

static void
Notify(const char *type)
{
	/* A payload longer than NOTIFY allows wakes everybody, without a type. */
	Async_Notify(WAKEUP_CHANNEL, strlen(type) < WAKEUP_PAYLOAD_MAX ? type : "");
}

void
WakeWorkers(Datum task_type)
{
	char	   *type = TextDatumGetCString(task_type);
	MemoryContext old;
	PendingType *p;
	ListCell   *lc;

	if (wakeup_shared == NULL)
	{
		Notify(type);
		pfree(type);
		return;
	}
	foreach(lc, pending)
	{
		p = (PendingType *) lfirst(lc);
		if (strcmp(p->type, type) == 0 && p->level <= GetCurrentTransactionNestLevel())
		{
			pfree(type);
			return;
		}
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc(sizeof(PendingType));
	p->type = pstrdup(type);
	p->level = GetCurrentTransactionNestLevel();
	pending = lappend(pending, p);
	MemoryContextSwitchTo(old);
	pfree(type);
}

/* This backend's committing slot, or NULL when it has none. */
static pg_atomic_uint32 *
CommittingSlot(void)
{
	if (wakeup_shared == NULL || MyBackendId == InvalidBackendId || MyBackendId > MaxBackends)
		return NULL;
	return &wakeup_shared->committing[MyBackendId - 1];
}

static void
NotifyPending(void)
{
	ListCell   *lc;

	foreach(lc, pending)
		Notify(((PendingType *) lfirst(lc))->type);
}

static void
WakeupXact(XactEvent event, void *arg)
{
	pg_atomic_uint32 *slot;
	TransactionId xid;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (pending == NIL)
				break;
			slot = CommittingSlot();
			xid = GetTopTransactionIdIfAny();
			if (slot == NULL || !TransactionIdIsValid(xid))
			{
				NotifyPending();
				pending = NIL;
				break;
			}
			pg_atomic_write_u32(slot, xid);
			published = true;
			pg_memory_barrier();
			if (pg_atomic_read_u32(&wakeup_shared->listeners) > 0)
				NotifyPending();
			pending = NIL;
			break;
		case XACT_EVENT_PRE_PREPARE:
			NotifyPending();
			pending = NIL;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
			if (published && (slot = CommittingSlot()) != NULL)
				pg_atomic_write_u32(slot, InvalidTransactionId);
			published = false;
			pending = NIL;		/* the memory went with TopTransactionContext */
			break;
		default:
			break;
	}
}

static void
WakeupSubXact(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *kept = NIL;
	ListCell   *lc;

	MemoryContext old;

	if (pending == NIL || (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB))
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	foreach(lc, pending)
	{
		PendingType *p = (PendingType *) lfirst(lc);

		if (p->level < level)
			kept = lappend(kept, p);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			p->level = level - 1;	/* the parent's now */
			kept = lappend(kept, p);
		}
	}
	pending = kept;
	MemoryContextSwitchTo(old);
}

static void
Unlisten(int code, Datum arg)
{
	if (counted && wakeup_shared != NULL)
		pg_atomic_fetch_sub_u32(&wakeup_shared->listeners, 1);
	counted = false;
}

/* LISTEN tforge_tasks: count this backend as a listener first (see the top of the file). */
static void
WakeupProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					 ProcessUtilityContext context, ParamListInfo params,
					 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (IsA(stmt, ListenStmt) && wakeup_shared != NULL &&
		strcmp(((ListenStmt *) stmt)->conditionname, WAKEUP_CHANNEL) == 0)
	{
		int			i;

		if (!counted)
		{
			before_shmem_exit(Unlisten, (Datum) 0);
			pg_atomic_fetch_add_u32(&wakeup_shared->listeners, 1);	/* a full barrier */
			counted = true;
		}
		/* every time: a LISTEN cancelled during its wait may be run again */
		pg_memory_barrier();
		for (i = 0; i < MaxBackends; i++)
		{
			TransactionId xid = pg_atomic_read_u32(&wakeup_shared->committing[i]);

			if (TransactionIdIsValid(xid) && !TransactionIdIsCurrentTransactionId(xid))
				XactLockTableWait(xid, NULL, NULL, XLTW_None);
		}
	}
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

static Size
WakeupSharedSize(void)
{
	return add_size(offsetof(WakeupShared, committing), mul_size(MaxBackends, sizeof(pg_atomic_uint32)));
}

static void
WakeupShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(WakeupSharedSize()));
}

static void
WakeupShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wakeup_shared = ShmemInitStruct("tforge wakeup", WakeupSharedSize(), &found);
	if (!found)
	{
		int			i;

		pg_atomic_init_u32(&wakeup_shared->listeners, 0);
		for (i = 0; i < MaxBackends; i++)
			pg_atomic_init_u32(&wakeup_shared->committing[i], InvalidTransactionId);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* _PG_init: the listener count lives in shared memory, so only with shared_preload_libraries. */
void
WakeupInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = WakeupShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = WakeupShmemStartup;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = WakeupProcessUtility;
	RegisterXactCallback(WakeupXact, NULL);
	RegisterSubXactCallback(WakeupSubXact, NULL);
}
