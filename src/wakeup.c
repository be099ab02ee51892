/*
 * wakeup.c
 *		Wake-ups: a transaction that submitted tasks NOTIFYs channel
 *		tforge_tasks at commit, once per task type (the payload), so that
 *		idle workers block on LISTEN instead of polling.
 *
 * PostgreSQL serializes every committing transaction that notifies (a lock
 * on the database held until the commit is written), so two clients
 * submitting at once wait for each other's commits even when nobody is
 * listening. tforge therefore notifies only while some backend of the
 * database may be listening on tforge_tasks (NOTIFY reaches the listeners
 * of its own database only):
 *
 *   - each backend has a flag in shared memory, the database it listens in
 *     on tforge_tasks or none, and a count of the set flags. LISTEN
 *     tforge_tasks (seen by the utility hook, before it runs) sets the flag
 *     at once; what the transaction does to the channel afterwards is
 *     settled when it ends, as PostgreSQL settles its own LISTEN and
 *     UNLISTEN at commit: a commit leaves the flag set if the transaction's
 *     last LISTEN, UNLISTEN tforge_tasks, UNLISTEN * or DISCARD ALL (of a
 *     subtransaction that did not roll back) was a LISTEN, and cleared if
 *     it was one of the others; an abort puts back what the last commit
 *     left. Backend exit clears it. So the flag is set a little early (from
 *     the LISTEN statement to its commit) and cleared a little late (an
 *     UNLISTEN at its commit), never the other way round: a listener is
 *     never missing;
 *   - a submit records its task type; just before its transaction commits,
 *     the transaction notifies each recorded type if some backend's flag
 *     names its database (the count, zero when nobody listens anywhere,
 *     spares the look at the flags). Types recorded in a subtransaction
 *     that aborts are forgotten, as PostgreSQL forgets such a
 *     subtransaction's NOTIFY.
 *
 * The flags and the commits meet as in Dekker's algorithm: a submitter
 * that is about to commit without notifying first publishes its
 * transaction id in shared memory and then reads the flags; a backend that
 * starts listening first sets its flag and then waits for every published
 * transaction to end (a full barrier between the write and the reads on
 * both sides). So either the submitter sees the listener and notifies, or
 * the LISTEN waits until the submitter has committed, and the worker's
 * check for work after LISTEN finds its tasks. Without
 * shared_preload_libraries there are no flags, and every transaction that
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

/*
 * slots[] holds two arrays of MaxBackends entries, by backend id - 1: first
 * each backend's committing transaction (one committing without notifying,
 * or 0), then each backend's listening flag (the database it listens in on
 * tforge_tasks, or InvalidOid). A submitter reads the second array whole,
 * so it is kept dense.
 */
typedef struct WakeupShared
{
	pg_atomic_uint32 listeners; /* backends whose listening flag is set, in any database */
	pg_atomic_uint32 slots[FLEXIBLE_ARRAY_MEMBER];
} WakeupShared;

#define COMMITTING(i) (&wakeup_shared->slots[(i)])
#define LISTENING(i) (&wakeup_shared->slots[MaxBackends + (i)])

static WakeupShared *wakeup_shared = NULL;
static bool counted = false;	/* this backend is one of the listeners */
static bool listening = false;	/* it listens on tforge_tasks as of its last commit */
static bool exit_hook = false;	/* Unlisten is registered to run at backend exit */
static bool published = false;	/* this backend's committing slot is set */

/* Types this transaction submitted, with the nesting level that recorded each. */
typedef struct PendingType
{
	char	   *type;
	int			level;
} PendingType;

static List *pending = NIL;

/*
 * What this transaction did to tforge_tasks: LISTEN (true) or UNLISTEN
 * tforge_tasks, UNLISTEN *, DISCARD ALL (false), in order, with the nesting
 * level that did it. The last one that survives to the commit is the state.
 */
typedef struct PendingListen
{
	bool		listen;
	int			level;
} PendingListen;

static List *pending_listen = NIL;

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

/* This backend's index in the slots, or -1 when it has none (no shared memory). */
static int
MySlot(void)
{
	if (wakeup_shared == NULL || MyBackendId == InvalidBackendId || MyBackendId > MaxBackends)
		return -1;
	return MyBackendId - 1;
}

/*
 * Set or clear this backend's listening flag (and the count). The flag is
 * written before the fetch_add, a full barrier, and the caller reads the
 * committing slots after it (see the top of the file).
 */
static void
SetCounted(bool on)
{
	int			me = MySlot();

	if (on == counted || me < 0)
		return;
	pg_atomic_write_u32(LISTENING(me), on ? MyDatabaseId : InvalidOid);
	if (on)
		pg_atomic_fetch_add_u32(&wakeup_shared->listeners, 1);
	else
		pg_atomic_fetch_sub_u32(&wakeup_shared->listeners, 1);
	counted = on;
}

/* Does some backend listen on tforge_tasks in this database? (After the caller's barrier.) */
static bool
Listened(void)
{
	int			i;

	if (pg_atomic_read_u32(&wakeup_shared->listeners) == 0)
		return false;
	pg_read_barrier();			/* the flags as of that count, or later */
	for (i = 0; i < MaxBackends; i++)
		if (pg_atomic_read_u32(LISTENING(i)) == MyDatabaseId)
			return true;
	return false;
}

/* Record a LISTEN (true) or an UNLISTEN (false) of tforge_tasks by this transaction. */
static void
RecordListen(bool listen)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingListen *p = palloc(sizeof(PendingListen));

	p->listen = listen;
	p->level = GetCurrentTransactionNestLevel();
	pending_listen = lappend(pending_listen, p);
	MemoryContextSwitchTo(old);
}

/* At the end of a transaction: the count follows what it left (see the top of the file). */
static void
SettleListen(bool commit)
{
	if (commit && pending_listen != NIL)
		listening = ((PendingListen *) llast(pending_listen))->listen;
	pending_listen = NIL;		/* the memory goes with TopTransactionContext */
	SetCounted(listening);
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
	int			me;
	TransactionId xid;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (pending == NIL)
				break;
			me = MySlot();
			xid = GetTopTransactionIdIfAny();
			if (me < 0 || !TransactionIdIsValid(xid))
			{
				NotifyPending();
				pending = NIL;
				break;
			}
			pg_atomic_write_u32(COMMITTING(me), xid);
			published = true;
			pg_memory_barrier();
			if (Listened())
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
			if (published && (me = MySlot()) >= 0)
				pg_atomic_write_u32(COMMITTING(me), InvalidTransactionId);
			published = false;
			pending = NIL;		/* the memory went with TopTransactionContext */
			/* PostgreSQL refuses to PREPARE a LISTEN or UNLISTEN: nothing to settle */
			SettleListen(event == XACT_EVENT_COMMIT);
			break;
		default:
			break;
	}
}

/* Keep what a released subtransaction recorded (now its parent's); forget a rolled-back one's. */
static List *
SubXactEnd(List *list, bool commit, int level, size_t level_offset)
{
	List	   *kept = NIL;
	ListCell   *lc;

	foreach(lc, list)
	{
		void	   *p = lfirst(lc);
		int		   *plevel = (int *) ((char *) p + level_offset);

		if (*plevel < level)
			kept = lappend(kept, p);
		else if (commit)
		{
			*plevel = level - 1;	/* the parent's now */
			kept = lappend(kept, p);
		}
	}
	return kept;
}

static void
WakeupSubXact(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	bool		commit = (event == SUBXACT_EVENT_COMMIT_SUB);
	MemoryContext old;

	if ((pending == NIL && pending_listen == NIL) ||
		(event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB))
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	pending = SubXactEnd(pending, commit, level, offsetof(PendingType, level));
	pending_listen = SubXactEnd(pending_listen, commit, level, offsetof(PendingListen, level));
	MemoryContextSwitchTo(old);
}

/* Backend exit: no longer a listener (PostgreSQL unlistens it too). */
static void
Unlisten(int code, Datum arg)
{
	listening = false;
	SetCounted(false);
}

/* Is this utility statement an UNLISTEN of tforge_tasks (by name, UNLISTEN * or DISCARD ALL)? */
static bool
IsUnlisten(Node *stmt)
{
	if (IsA(stmt, UnlistenStmt))
	{
		const char *name = ((UnlistenStmt *) stmt)->conditionname;

		return name == NULL || strcmp(name, WAKEUP_CHANNEL) == 0;
	}
	return IsA(stmt, DiscardStmt) && ((DiscardStmt *) stmt)->target == DISCARD_ALL;
}

/* LISTEN tforge_tasks: count this backend as a listener first (see the top of the file). */
static void
WakeupProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					 ProcessUtilityContext context, ParamListInfo params,
					 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	bool		listen = IsA(stmt, ListenStmt) && wakeup_shared != NULL &&
		strcmp(((ListenStmt *) stmt)->conditionname, WAKEUP_CHANNEL) == 0;
	bool		unlisten = !listen && wakeup_shared != NULL && IsUnlisten(stmt);

	if (listen)
	{
		int			i;

		if (!exit_hook)
		{
			before_shmem_exit(Unlisten, (Datum) 0);
			exit_hook = true;
		}
		SetCounted(true);
		/* every time: a LISTEN cancelled during its wait may be run again */
		pg_memory_barrier();
		for (i = 0; i < MaxBackends; i++)
		{
			TransactionId xid = pg_atomic_read_u32(COMMITTING(i));

			if (TransactionIdIsValid(xid) && !TransactionIdIsCurrentTransactionId(xid))
				XactLockTableWait(xid, NULL, NULL, XLTW_None);
		}
	}
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	/* it ran: its transaction's end settles the count (an error rolls it back, and with it this) */
	if (listen || unlisten)
		RecordListen(listen);
}

static Size
WakeupSharedSize(void)
{
	return add_size(offsetof(WakeupShared, slots), mul_size(mul_size(MaxBackends, 2), sizeof(pg_atomic_uint32)));
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
		{
			pg_atomic_init_u32(COMMITTING(i), InvalidTransactionId);
			pg_atomic_init_u32(LISTENING(i), InvalidOid);
		}
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
