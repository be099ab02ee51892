/*
 * admission.c: admission control in submit_task, and the SQL view of the
 * governor's shared state (governor_status, governor_override,
 * governor_housekeeping).
 *
 * GovernorAdmit() runs at the start of every submit_task, so it is written
 * for the hot path: in the governor's database, while its worker runs, one
 * spinlock hold reads the sampled queue fill and scale, makes the RED
 * decision and takes a token from the bucket. Elsewhere (another database,
 * or the library not preloaded) it applies RED to a pending count refreshed
 * at most once per tforge.governor_interval, by one backend for all
 * (LocalFill).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "governor.h"
#include "queue.h"
#include "tforge.h"

/* Admissions counted in this session when there is no shared memory. */
static int64 local_admitted = 0;
static int64 local_refused = 0;

/* The refusal: SQLSTATE 53000 with fill, probability and scale. */
static void
Refuse(double fill, double p, double scale, double rate)
{
	if (rate < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("task refused by admission control: queue fill %.3f, drop probability %.3f, scale %.2f",
						fill, p, scale),
				 errdetail("Random early detection refuses submits with this probability while the queue is this full."),
				 errhint("Retry later, or raise tforge.queue_capacity.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
			 errmsg("task refused by admission control: queue fill %.3f, drop probability %.3f, scale %.2f",
					fill, p, scale),
			 errdetail("The governor admits at most %g submits per second now (tforge.admission_rate %g times scale %g).",
					   rate * scale, rate, scale),
			 errhint("Retry later; the governor admits more as pressure falls.")));
}

/* RED on a fill that is known to be valid (settings are checked by their hooks). */
static inline double
RedNow(double fill)
{
	if (fill < tforge_red_min_th)
		return 0.0;
	if (fill >= tforge_red_max_th)
		return tforge_red_max_p;
	return tforge_red_max_p * (fill - tforge_red_min_th) / (tforge_red_max_th - tforge_red_min_th);
}

/*
 * Pending tasks in this database, counted up to twice the capacity (SPI
 * connected): one definition, for RED outside the governor's database and
 * for the governor's samples. tasks_claim_idx holds exactly the pending
 * tasks, so the count reads those and not the table, where done tasks
 * outnumber them more with every hour; the statement is planned as every
 * queue statement is (Execute: no sequential scan, which the planner picks
 * for it as soon as statistics call the pending tasks a fair share).
 */
static QueueStatement pending_count = {
	"SELECT pg_catalog.count(*) FROM (SELECT 1 FROM tforge.tasks t"
	" WHERE t.status OPERATOR(pg_catalog.=) 'pending'::tforge.task_status LIMIT $1) s",
	1, {INT8OID}
};

int64
CountPendingTasks(void)
{
	Datum		limit = Int64GetDatum((int64) tforge_queue_capacity * 2);
	bool		nonull = false;
	bool		isnull;
	Datum		n;

	if (Execute(&pending_count, InvalidOid, &limit, &nonull, 0) != 1)
		return 0;
	n = ResultValue(0, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(n);
}

/* The fill of this database's queue, counted now. */
static double
CountFill(void)
{
	int64		n;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	n = CountPendingTasks();
	PopActiveSnapshot();
	SPI_finish();
	return (double) n / tforge_queue_capacity;
}

/*
 * Whether a count that finished at counted_at and took cost microseconds
 * is due again at now: once per governor_interval, and never more often
 * than a hundred times the last count took, so that counting costs at most
 * about 1% of the time of whoever counts, however large the backlog (a
 * count that takes longer than the interval would otherwise run on every
 * submit, and submits would slow down with the backlog instead of being
 * refused by RED).
 */
static inline bool
CountDue(TimestampTz now, TimestampTz counted_at, int64 cost)
{
	return now - counted_at >= Max((int64) tforge_governor_interval * 1000, 100 * cost);
}

/* Whether a backend is counting into slot c now (one that has not finished in a second is taken over). */
static inline bool
Counting(const RedCount *c, TimestampTz now)
{
	return c->counting_since != 0 && now - c->counting_since < USECS_PER_SEC;
}

/*
 * This database's slot in the shared RED counts (mutex held): its own, else
 * a free one, else one whose count is due anyway and that nobody is
 * counting (the one counted longest ago); NULL when every slot is in use by
 * a database whose count is still fresh: this backend then counts for
 * itself, as without shared memory, rather than evicting a fresh count
 * (more databases than slots would otherwise evict each other's counts on
 * every submit, each eviction a count).
 */
static RedCount *
RedSlot(GovernorShared *g, TimestampTz now)
{
	RedCount   *slot = NULL;
	int			i;

	for (i = 0; i < GOV_RED_DATABASES; i++)
		if (g->red[i].database_id == MyDatabaseId)
			return &g->red[i];
	for (i = 0; i < GOV_RED_DATABASES; i++)
	{
		RedCount   *c = &g->red[i];

		if (!OidIsValid(c->database_id))
		{
			slot = c;
			break;
		}
		if (CountDue(now, c->counted_at, c->cost) && !Counting(c, now) &&
			(slot == NULL || c->counted_at < slot->counted_at))
			slot = c;
	}
	if (slot == NULL)
		return NULL;
	memset(slot, 0, sizeof(RedCount));
	slot->database_id = MyDatabaseId;
	return slot;
}

/*
 * The queue fill RED judges by outside the governor's database: a count of
 * this database's pending tasks, due as CountDue says. With the library
 * preloaded the count is shared: one backend counts while the others use
 * the last count (Counting). Only a count any backend would make now is shared: one made
 * by a transaction that has written (its own uncommitted tasks count) or
 * reads through a transaction snapshot (REPEATABLE READ: the queue as it
 * was) is that backend's alone, as is every count without the preload or
 * when every slot holds another database's fresh count.
 */
static double
LocalFill(GovernorShared *g, TimestampTz now)
{
	static TimestampTz local_at = 0;
	static double local_fill = 0;
	static int64 local_cost = 0;
	RedCount   *slot = NULL;
	double		fill = 0;
	TimestampTz done;
	bool		count = true;
	bool		shareable = !TransactionIdIsValid(GetTopTransactionIdIfAny()) &&
		!IsolationUsesXactSnapshot();

	if (g != NULL)
	{
		SpinLockAcquire(&g->mutex);
		slot = RedSlot(g, now);
		if (slot != NULL)
		{
			fill = slot->fill;
			count = CountDue(now, slot->counted_at, slot->cost);
			if (count && shareable && Counting(slot, now))
				count = false;	/* another backend counts now: use the last count */
			else if (count && shareable)
				slot->counting_since = now;
		}
		SpinLockRelease(&g->mutex);
		if (!count)
			return fill;
	}
	if (slot == NULL || !shareable)
	{
		/* this backend's own count */
		if (CountDue(now, local_at, local_cost))
		{
			local_fill = CountFill();
			local_at = GetCurrentTimestamp();
			local_cost = local_at - now;
		}
		return local_fill;
	}

	fill = CountFill();
	done = GetCurrentTimestamp();
	SpinLockAcquire(&g->mutex);
	slot = RedSlot(g, done);
	if (slot != NULL)
	{
		slot->fill = fill;
		slot->counted_at = done;
		slot->cost = done - now;
		slot->counting_since = 0;
	}
	SpinLockRelease(&g->mutex);
	return fill;
}

/*
 * Admission of one submit; returns when admitted, raises 53000 when refused.
 *
 *   RED: refuse with probability red(fill), fill = pending / queue_capacity
 *   rate: a token bucket refilled at admission_rate * scale tokens per
 *         second, holding at most one second's worth (at least one token);
 *         each admission takes a token, none left refuses.
 *
 * The rate applies only in the governor's database while its worker runs
 * (it alone knows the scale); elsewhere RED uses a local count.
 */
void
GovernorAdmit(void)
{
	GovernorAdmitTasks(1);
}

/*
 * Admission of a batch of n tasks (submit_tasks), as a whole: one RED draw
 * for the batch (RED judges the queue's fill, not the size of a call; a
 * draw per task would refuse any large batch at any fill above min_th),
 * and n tokens: the batch is admitted when the bucket holds a token and
 * takes one per task, leaving the bucket in debt that later submits wait
 * out, so the rate still bounds tasks per second and a batch larger than
 * one second's worth is not refused for ever. n = 1 is GovernorAdmit.
 * The governor's counters count tasks.
 */
void
GovernorAdmitTasks(int64 n)
{
	GovernorShared *g = governor_shared;
	static bool noticed = false;
	double		local_fill;
	TimestampTz now;
	double		draw;
	double		p;

	if (!tforge_admission_enabled)
		return;

	now = GetCurrentTimestamp();
	draw = pg_prng_double(&pg_global_prng_state);
	if (g != NULL)
	{
		double		fill,
					scale,
					rate = tforge_admission_rate;
		bool		refused_red = false,
					refused_rate = false;

		SpinLockAcquire(&g->mutex);
		if (g->ready && g->database_id == MyDatabaseId && GovernorWorkerAlive(now))
		{
			fill = g->fill;
			scale = g->scale;
			p = RedNow(fill);
			if (draw < p)
				refused_red = true;
			else if (rate > 0)
			{
				double		r = rate * scale;
				double		burst = Max(1.0, r);
				double		elapsed = g->bucket_at == 0 ? 1.0 : (now - g->bucket_at) / 1e6;

				g->tokens = Min(burst, g->tokens + r * Max(elapsed, 0.0));
				g->bucket_at = now;
				if (g->tokens >= 1.0)
					g->tokens -= (double) n;
				else
					refused_rate = true;
			}
			if (refused_red)
				g->refused_red += n;
			else if (refused_rate)
				g->refused_rate += n;
			else
				g->admitted += n;
			SpinLockRelease(&g->mutex);
			if (refused_red)
				Refuse(fill, p, scale, -1);
			if (refused_rate)
				Refuse(fill, p, scale, rate);
			return;
		}
		SpinLockRelease(&g->mutex);
	}
	else if (!noticed)
	{
		ereport(NOTICE,
				(errmsg("tforge is not in shared_preload_libraries: admission control uses random early detection on queue fill only"),
				 errhint("Preload tforge to run the governor, which also limits the admission rate.")));
		noticed = true;
	}

	/* RED on this database's own queue */
	local_fill = LocalFill(g, now);
	p = RedNow(local_fill);
	if (draw < p)
	{
		if (g != NULL)
		{
			SpinLockAcquire(&g->mutex);
			g->refused_red += n;
			SpinLockRelease(&g->mutex);
		}
		else
			local_refused += n;
		Refuse(local_fill, p, 1.0, -1);
	}
	if (g != NULL)
	{
		SpinLockAcquire(&g->mutex);
		g->admitted += n;
		SpinLockRelease(&g->mutex);
	}
	else
		local_admitted += n;
}

/* A float8 Datum, NULL for NaN. */
static Datum
NullableFloat8(double v, bool *isnull)
{
	*isnull = isnan(v);
	return Float8GetDatum(v);
}

/*
 * governor_status() -> one row: whether the worker runs, its state, scale,
 * pressure and source, the last sample, queue fill, pending count,
 * admissions and refusals, the override, each source's pressure.
 */
PG_FUNCTION_INFO_V1(tforge_governor_status);
Datum
tforge_governor_status(PG_FUNCTION_ARGS)
{
	GovernorShared *g = governor_shared;
	TupleDesc	tupdesc;
	Datum		v[22];
	bool		n[22];
	int			i;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "governor_status must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != 22)
		elog(ERROR, "governor_status returns 22 columns, not %d", tupdesc->natts);
	memset(n, true, sizeof(n));

	if (g == NULL)
	{
		v[0] = BoolGetDatum(false);
		n[0] = false;
		v[8] = Int64GetDatum(local_admitted);
		v[9] = Int64GetDatum(local_refused);
		v[10] = Int64GetDatum(local_refused);
		v[11] = Int64GetDatum(0);
		n[8] = n[9] = n[10] = n[11] = false;
	}
	else
	{
		TimestampTz now = GetCurrentTimestamp();
		bool		alive;
		Oid			db;

		LWLockAcquire(g->lock, LW_SHARED);
		SpinLockAcquire(&g->mutex);
		alive = GovernorWorkerAlive(now);
		db = g->database_id;
		v[2] = Float8GetDatum(g->scale);
		v[5] = TimestampTzGetDatum(g->last_sample);
		n[5] = g->last_sample == 0;
		v[6] = Float8GetDatum(g->fill);
		v[8] = Int64GetDatum(g->admitted);
		v[9] = Int64GetDatum(g->refused_red + g->refused_rate);
		v[10] = Int64GetDatum(g->refused_red);
		v[11] = Int64GetDatum(g->refused_rate);
		v[13] = Int32GetDatum(g->worker_pid);
		n[13] = g->worker_pid == 0;
		SpinLockRelease(&g->mutex);
		v[0] = BoolGetDatum(alive);
		v[1] = CStringGetTextDatum(AimdStateNames[g->state]);
		v[3] = NullableFloat8(g->pressure, &n[3]);
		if (g->source >= 0)
		{
			v[4] = CStringGetTextDatum(GovernorSourceNames[g->source]);
			n[4] = false;
		}
		v[7] = Int64GetDatum(g->pending);
		if (g->override_set)
		{
			v[12] = Float8GetDatum(g->override_pressure);
			n[12] = false;
		}
		v[15] = TimestampTzGetDatum(g->started_at);
		n[15] = g->started_at == 0;
		v[16] = Int64GetDatum(g->restarts);
		for (i = 0; i < GOV_SRC_OVERRIDE; i++)
			v[17 + i] = NullableFloat8(g->sources[i], &n[17 + i]);
		LWLockRelease(g->lock);
		n[0] = n[1] = n[2] = n[6] = n[7] = n[8] = n[9] = n[10] = n[11] = n[16] = false;
		if (OidIsValid(db))
		{
			char	   *name = get_database_name(db);

			if (name != NULL)
			{
				v[14] = DirectFunctionCall1(namein, CStringGetDatum(name));
				n[14] = false;
			}
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, v, n)));
}

/*
 * governor_override(pressure) -> void: the worker uses this pressure instead
 * of the measured one from its next sample on; NULL goes back to measuring.
 * Superuser only. Shared memory, not a table: the override takes effect at
 * once and is not undone by a rollback.
 */
PG_FUNCTION_INFO_V1(tforge_governor_override);
Datum
tforge_governor_override(PG_FUNCTION_ARGS)
{
	GovernorShared *g = governor_shared;
	double		p = PG_ARGISNULL(0) ? 0 : PG_GETARG_FLOAT8(0);

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to override the governor's pressure")));
	PreventCommandDuringRecovery("governor_override()");
	PreventCommandIfReadOnly("governor_override()");
	if (g == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the governor is not running"),
				 errhint("Add tforge to shared_preload_libraries and restart the server.")));
	if (!PG_ARGISNULL(0) && (isnan(p) || p < 0 || p > 10))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pressure must be between 0 and 10, got %g", p)));

	LWLockAcquire(g->lock, LW_EXCLUSIVE);
	g->override_set = !PG_ARGISNULL(0);
	g->override_pressure = p;
	g->override_logged = false;
	if (g->worker_latch != NULL)
		SetLatch(g->worker_latch);
	LWLockRelease(g->lock);
	PG_RETURN_VOID();
}

/*
 * governor_housekeeping() -> SETOF (task, every, last_run, last_result,
 * runs, failures, last_error): what the worker's housekeeping did.
 */
PG_FUNCTION_INFO_V1(tforge_governor_housekeeping);
Datum
tforge_governor_housekeeping(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	GovernorShared *g = governor_shared;
	HousekeepingState hk[HK_NTASKS];

	InitMaterializedSRF(fcinfo, 0);
	if (g != NULL)
	{
		LWLockAcquire(g->lock, LW_SHARED);
		memcpy(hk, g->hk, sizeof(hk));
		LWLockRelease(g->lock);
	}
	else
		memset(hk, 0, sizeof(hk));

	for (int t = 0; t < HK_NTASKS; t++)
	{
		Datum		v[7];
		bool		n[7] = {false, false, false, false, false, false, false};
		int			every = HousekeepingInterval((HousekeepingTask) t);
		Interval   *iv = (Interval *) palloc0(sizeof(Interval));

		iv->time = (int64) every * USECS_PER_SEC;
		v[0] = CStringGetTextDatum(HousekeepingNames[t]);
		v[1] = IntervalPGetDatum(iv);
		n[1] = every <= 0;
		v[2] = TimestampTzGetDatum(hk[t].last_run);
		n[2] = hk[t].last_run == 0;
		v[3] = Int64GetDatum(hk[t].last_result);
		n[3] = hk[t].runs == 0;
		v[4] = Int64GetDatum(hk[t].runs);
		v[5] = Int64GetDatum(hk[t].failures);
		v[6] = CStringGetTextDatum(hk[t].last_error);
		n[6] = hk[t].last_error[0] == '\0';
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}
