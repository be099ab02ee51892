/*
 * wakeup.c
 *		Wake-ups: a submit NOTIFYs channel tforge_tasks with the task type as
 *		payload, so that idle workers block on LISTEN instead of polling.
 *
 * PostgreSQL queues a notification until commit, drops it on abort and
 * folds identical (channel, payload) notifications of one transaction into
 * one, so a transaction that submits many tasks of one type wakes the
 * listeners once per type. A transaction that has notified cannot be
 * PREPAREd (two-phase commit): that is PostgreSQL's rule for NOTIFY.
 */
#include "postgres.h"

#include "commands/async.h"
#include "utils/builtins.h"

#include "queue.h"

/* The channel idle workers LISTEN on. */
#define WAKEUP_CHANNEL "tforge_tasks"

/* NOTIFY's payload limit (async.c keeps it private). */
#define WAKEUP_PAYLOAD_MAX (BLCKSZ - NAMEDATALEN - 128)

void
WakeWorkers(Datum task_type)
{
	char	   *type = TextDatumGetCString(task_type);

	/* A payload longer than NOTIFY allows wakes everybody, without a type. */
	Async_Notify(WAKEUP_CHANNEL, strlen(type) < WAKEUP_PAYLOAD_MAX ? type : "");
	pfree(type);
}
