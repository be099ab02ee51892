/*
 * governor.c: the overload governor's settings, shared memory and
 * background worker (DESIGN.md component 6, seed 004).
 *
 * Built like pg_cron's launcher and pg_stat_statements: GovernorInit(),
 * called from _PG_init, defines the GUCs; when the library is preloaded it
 * also asks for shared memory and a named LWLock tranche and, with
 * tforge.governor_enabled, registers one background worker. The worker
 * connects to tforge.governor_database and, every tforge.governor_interval:
 *
 *   1. samples pressure (fractions, 1 = at the limit) from every source
 *      present: cgroup v2 or v1 memory (usage / limit), Linux PSI
 *      (/proc/pressure/memory "some avg10" / 100), tforge.memory_limit
 *      against the resident memory of the postmaster and its children,
 *      queue fill (pending tasks / tforge.queue_capacity) and the fullest
 *      GPU pool; pressure is their maximum (or the superuser's override);
 *   2. steps the AIMD state machine (red_aimd.c), decreases after the first
 *      spaced by tforge.governor_cooldown;
 *   3. publishes state, scale and queue fill in shared memory, where
 *      submit_task's admission (admission.c) reads them;
 *   4. records every state change and control action as a row of
 *      tforge.governor_events and a NOTIFY on channel tforge_governor;
 *   5. runs the housekeeping that is due (expire_leases, expire_profiles,
 *      purge_tasks, the purge of old events), each on its own schedule.
 *
 * Locking: see GovernorShared in governor.h. Memory: each pass allocates
 * in a context reset after it; table access is SPI inside one transaction
 * per pass. The worker never runs on a standby (BgWorkerStart_
 * RecoveryFinished), exits on SIGTERM and is restarted by the postmaster
 * after an error or a kill (bgw_restart_time), and on a change of
 * tforge.governor_database (it exits so as to reconnect).
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "governor.h"
#include "tforge.h"

PGDLLEXPORT void GovernorMain(Datum main_arg);

const char *const GovernorSourceNames[GOV_NSOURCES] =
{"cgroup", "psi", "memory_limit", "queue", "gpu", "override"};

const char *const HousekeepingNames[HK_NTASKS] =
{"expire_leases", "expire_profiles", "purge_tasks", "purge_events"};

GovernorShared *governor_shared = NULL;

/* ---- settings ------------------------------------------------------------ */

bool		tforge_governor_enabled = true;
bool		tforge_admission_enabled = true;
char	   *tforge_governor_database = NULL;
int			tforge_governor_interval = 50;	/* ms */
static int	tforge_governor_cooldown = 30000;	/* ms */
static double tforge_governor_enter = 0.70;
static double tforge_governor_exit = 0.55;
static double tforge_governor_severe = 0.90;
static double tforge_governor_decrease = 0.5;
static double tforge_governor_increase = 0.05;
static double tforge_governor_min_scale = 0.1;
double		tforge_red_min_th = 0.6;
double		tforge_red_max_th = 1.0;
double		tforge_red_max_p = 0.3;
static int	tforge_memory_limit = 0;	/* kB, 0 = off */
int			tforge_queue_capacity = 10000;
double		tforge_admission_rate = 10000;
static int	tforge_governor_events_keep = 7 * 24 * 3600;	/* s, 0 = forever */
static int	tforge_task_retention = 7 * 24 * 3600;	/* s */
static int	hk_interval[HK_NTASKS] = {10, 3600, 3600, 60};	/* s, 0 = off */

/* Seconds between two runs of a housekeeping task; 0 when it is off. */
int
HousekeepingInterval(HousekeepingTask task)
{
	return hk_interval[task];
}

/* exit < enter <= severe, whichever of the three is being set. */
static bool
CheckThresholdOrder(double exit, double enter, double severe)
{
	if (exit < enter && enter <= severe)
		return true;
	GUC_check_errdetail("The governor's thresholds must satisfy tforge.governor_exit < "
						"tforge.governor_enter <= tforge.governor_severe; "
						"with this value they would be %g, %g and %g.", exit, enter, severe);
	GUC_check_errhint("Change them in an order that keeps them ordered.");
	return false;
}

static bool
CheckEnter(double *newval, void **extra, GucSource source)
{
	return CheckThresholdOrder(tforge_governor_exit, *newval, tforge_governor_severe);
}

static bool
CheckExit(double *newval, void **extra, GucSource source)
{
	return CheckThresholdOrder(*newval, tforge_governor_enter, tforge_governor_severe);
}

static bool
CheckSevere(double *newval, void **extra, GucSource source)
{
	return CheckThresholdOrder(tforge_governor_exit, tforge_governor_enter, *newval);
}

/* min_th < max_th, whichever of the two is being set. */
static bool
CheckRedOrder(double min_th, double max_th)
{
	if (min_th < max_th)
		return true;
	GUC_check_errdetail("tforge.red_min_threshold must be below tforge.red_max_threshold; "
						"with this value they would be %g and %g.", min_th, max_th);
	return false;
}

static bool
CheckRedMin(double *newval, void **extra, GucSource source)
{
	return CheckRedOrder(*newval, tforge_red_max_th);
}

static bool
CheckRedMax(double *newval, void **extra, GucSource source)
{
	return CheckRedOrder(tforge_red_min_th, *newval);
}

/* Probabilities and factors: finite, in [0, 1] (the GUC range says so too). */
static bool
CheckProbability(double *newval, void **extra, GucSource source)
{
	if (!isnan(*newval) && *newval >= 0 && *newval <= 1)
		return true;
	GUC_check_errdetail("A probability must be between 0 and 1.");
	return false;
}

/* Intervals: strictly positive. */
static bool
CheckPositiveInterval(int *newval, void **extra, GucSource source)
{
	if (*newval > 0)
		return true;
	GUC_check_errdetail("The interval must be positive.");
	return false;
}

/* The scale factors: in (0, 1). */
static bool
CheckDecrease(double *newval, void **extra, GucSource source)
{
	if (*newval > 0 && *newval < 1)
		return true;
	GUC_check_errdetail("The multiplicative decrease must be between 0 and 1 (exclusive).");
	return false;
}

static bool
CheckUnitFraction(double *newval, void **extra, GucSource source)
{
	if (*newval > 0 && *newval <= 1)
		return true;
	GUC_check_errdetail("The value must be in (0, 1].");
	return false;
}

/* ---- shared memory ------------------------------------------------------- */

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
GovernorShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(GovernorShared)));
	RequestNamedLWLockTranche("tforge_governor", 1);
}

static void
GovernorShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	governor_shared = ShmemInitStruct("tforge governor", sizeof(GovernorShared), &found);
	if (!found)
	{
		memset(governor_shared, 0, sizeof(GovernorShared));
		governor_shared->lock = &(GetNamedLWLockTranche("tforge_governor"))->lock;
		SpinLockInit(&governor_shared->mutex);
		governor_shared->database_id = InvalidOid;
		governor_shared->state = AIMD_NORMAL;
		governor_shared->scale = 1.0;
		governor_shared->pressure = get_float8_nan();
		governor_shared->source = -1;
		for (int i = 0; i < GOV_NSOURCES; i++)
			governor_shared->sources[i] = get_float8_nan();
		governor_shared->override_logged = true;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---- registration -------------------------------------------------------- */

void
GovernorInit(void)
{
	BackgroundWorker worker;

	DefineCustomBoolVariable("tforge.admission_enabled",
							 "Applies admission control (RED and the governor's rate) in submit_task.",
							 NULL, &tforge_admission_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("tforge.governor_database",
							   "Database the governor connects to: its queue, events and housekeeping.",
							   "On a change the worker restarts and connects to the new database.",
							   &tforge_governor_database, "postgres",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.governor_interval",
							"Time between two samples of the governor.",
							NULL, &tforge_governor_interval, 50, 1, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, CheckPositiveInterval, NULL, NULL);
	DefineCustomIntVariable("tforge.governor_cooldown",
							"Least time between two multiplicative decreases while Degraded.",
							"Entering Degraded is never delayed.",
							&tforge_governor_cooldown, 30000, 0, 24 * 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomRealVariable("tforge.governor_enter",
							 "Pressure above which the governor enters Degraded.",
							 NULL, &tforge_governor_enter, 0.70, 0.0, 10.0,
							 PGC_SIGHUP, 0, CheckEnter, NULL, NULL);
	DefineCustomRealVariable("tforge.governor_exit",
							 "Pressure below which the governor recovers.",
							 NULL, &tforge_governor_exit, 0.55, 0.0, 10.0,
							 PGC_SIGHUP, 0, CheckExit, NULL, NULL);
	DefineCustomRealVariable("tforge.governor_severe",
							 "Pressure above which a Degraded governor decreases its scale again.",
							 NULL, &tforge_governor_severe, 0.90, 0.0, 10.0,
							 PGC_SIGHUP, 0, CheckSevere, NULL, NULL);
	DefineCustomRealVariable("tforge.governor_decrease",
							 "Multiplicative decrease of the scale under pressure.",
							 NULL, &tforge_governor_decrease, 0.5, 0.0, 1.0,
							 PGC_SIGHUP, 0, CheckDecrease, NULL, NULL);
	DefineCustomRealVariable("tforge.governor_increase",
							 "Additive increase of the scale per interval while Recovering.",
							 NULL, &tforge_governor_increase, 0.05, 0.0, 1.0,
							 PGC_SIGHUP, 0, CheckUnitFraction, NULL, NULL);
	DefineCustomRealVariable("tforge.governor_min_scale",
							 "Floor of the governor's scale.",
							 NULL, &tforge_governor_min_scale, 0.1, 0.0, 1.0,
							 PGC_SIGHUP, 0, CheckUnitFraction, NULL, NULL);
	DefineCustomRealVariable("tforge.red_min_threshold",
							 "Queue fill at which random early detection starts refusing submits.",
							 NULL, &tforge_red_min_th, 0.6, 0.0, 1000.0,
							 PGC_SIGHUP, 0, CheckRedMin, NULL, NULL);
	DefineCustomRealVariable("tforge.red_max_threshold",
							 "Queue fill at which random early detection refuses with its highest probability.",
							 NULL, &tforge_red_max_th, 1.0, 0.0, 1000.0,
							 PGC_SIGHUP, 0, CheckRedMax, NULL, NULL);
	DefineCustomRealVariable("tforge.red_max_probability",
							 "Highest probability with which random early detection refuses a submit.",
							 NULL, &tforge_red_max_p, 0.3, 0.0, 1.0,
							 PGC_SIGHUP, 0, CheckProbability, NULL, NULL);
	DefineCustomIntVariable("tforge.memory_limit",
							"Memory the server may use: pressure is its resident memory over this; 0 = off.",
							"Resident memory is the private (anonymous) memory of the postmaster and "
							"every child plus the shared memory they have touched, counted once.",
							&tforge_memory_limit, 0, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.queue_capacity",
							"Pending tasks that make a full queue (fill 1.0) for RED and the governor.",
							NULL, &tforge_queue_capacity, 10000, 1, INT_MAX / 4,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomRealVariable("tforge.admission_rate",
							 "Submits admitted per second at scale 1 while the governor runs; 0 = no limit.",
							 "The governor's scale multiplies it.",
							 &tforge_admission_rate, 10000, 0.0, 1e9,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.governor_events_keep",
							"Age after which the governor purges its events; 0 keeps them.",
							NULL, &tforge_governor_events_keep, 7 * 24 * 3600, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.task_retention",
							"Age after which the governor's housekeeping purges done and dead tasks.",
							NULL, &tforge_task_retention, 7 * 24 * 3600, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, CheckPositiveInterval, NULL, NULL);
	DefineCustomIntVariable("tforge.expire_leases_interval",
							"Time between two runs of expire_leases() by the governor; 0 = never.",
							NULL, &hk_interval[HK_EXPIRE_LEASES], 10, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.expire_profiles_interval",
							"Time between two runs of expire_profiles() by the governor; 0 = never.",
							NULL, &hk_interval[HK_EXPIRE_PROFILES], 3600, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.purge_tasks_interval",
							"Time between two runs of purge_tasks(tforge.task_retention) by the governor; 0 = never.",
							NULL, &hk_interval[HK_PURGE_TASKS], 3600, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.purge_events_interval",
							"Time between two purges of events older than tforge.governor_events_keep; 0 = never.",
							NULL, &hk_interval[HK_PURGE_EVENTS], 60, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	/*
	 * A PGC_POSTMASTER setting can only be defined while the postmaster loads
	 * the library (as pg_stat_statements does); a backend that loads tforge
	 * later has no governor to enable.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomBoolVariable("tforge.governor_enabled",
							 "Starts the governor's background worker (needs shared_preload_libraries).",
							 NULL, &tforge_governor_enabled, true,
							 PGC_POSTMASTER, 0, NULL, NULL, NULL);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = GovernorShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = GovernorShmemStartup;

	if (!tforge_governor_enabled)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "tforge", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "GovernorMain", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "tforge governor", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "tforge governor", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * Whether the worker runs and has sampled recently enough for its scale and
 * fill to be trusted: within 20 intervals, and at least a second. (Whether
 * tforge is installed in its database is g->ready.) Caller holds
 * governor_shared->mutex.
 */
bool
GovernorWorkerAlive(TimestampTz now)
{
	GovernorShared *g = governor_shared;
	int64		stale_us = Max((int64) tforge_governor_interval * 20 * 1000, USECS_PER_SEC);

	return g->worker_pid != 0 && now - g->last_sample <= stale_us;
}

/* ---- SPI helpers (inside the pass's transaction) -------------------------- */

/*
 * The statements every pass runs, prepared on first use and kept for the
 * worker's life (SPI_keepplan): a pass every 50 ms would otherwise parse and
 * plan them every time. The plan cache re-plans them when a table they read
 * changes (DROP and CREATE EXTENSION included); search_path is pinned
 * (GovernorPinSettings), so the names they resolve never change under them.
 */
static SPIPlanPtr
KeptPlan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "tforge governor: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "tforge governor: SPI_keepplan failed");
		*plan = p;
	}
	return *plan;
}

/*
 * Run sql in a subtransaction (through *plan, kept, when plan is not NULL);
 * on error roll it back, put the message in errbuf and return false. A GPU
 * table of another shape or a housekeeping function that fails must not
 * stop the governor.
 */
static bool
SpiGuarded(const char *sql, SPIPlanPtr *plan, int nargs, Oid *types, Datum *values, int64 *result,
		   char *errbuf, size_t errlen)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		int			rc = plan != NULL ?
			SPI_execute_plan(KeptPlan(plan, sql, nargs, types), values, NULL, false, 0) :
			SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

		if (rc < 0)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
		if (result != NULL)
		{
			bool		isnull = true;
			Datum		d = 0;

			if (SPI_tuptable != NULL && SPI_processed > 0)
				d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			*result = isnull ? 0 : DatumGetInt64(d);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		strlcpy(errbuf, edata->message, errlen);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* ---- events -------------------------------------------------------------- */

/* Append "key": value to a JSON object under construction (NaN -> null). */
static void
JsonNumber(StringInfo s, const char *key, double v)
{
	if (s->len > 1)
		appendStringInfoChar(s, ',');
	if (isnan(v) || isinf(v))
		appendStringInfo(s, "\"%s\": null", key);
	else
		appendStringInfo(s, "\"%s\": %.6g", key, v);
}

/*
 * One row of tforge.governor_events and its NOTIFY on channel
 * tforge_governor (the row as JSON), both part of the pass's transaction.
 */
static void
RecordEvent(const char *event, AimdState state, double pressure, int source, double scale,
			const char *detail)
{
	static const char *sql =
		"WITH e AS (INSERT INTO tforge.governor_events (event, state, pressure, source, scale, detail)"
		" VALUES ($1, $2, $3, $4, $5, $6::pg_catalog.jsonb) RETURNING *)"
		" SELECT pg_catalog.pg_notify('tforge_governor', pg_catalog.row_to_json(e.*)::pg_catalog.text) FROM e";
	Oid			types[6] = {TEXTOID, TEXTOID, FLOAT8OID, TEXTOID, FLOAT8OID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	values[0] = CStringGetTextDatum(event);
	values[1] = CStringGetTextDatum(AimdStateNames[state]);
	values[2] = Float8GetDatum(pressure);
	if (isnan(pressure))
		nulls[2] = 'n';
	values[3] = source >= 0 ? CStringGetTextDatum(GovernorSourceNames[source]) : (Datum) 0;
	if (source < 0)
		nulls[3] = 'n';
	values[4] = Float8GetDatum(scale);
	values[5] = CStringGetTextDatum(detail);
	rc = SPI_execute_with_args(sql, 6, types, values, nulls, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "recording a governor event failed: %s", SPI_result_code_string(rc));
}

/* ---- one pass ------------------------------------------------------------ */

static char *worker_database = NULL;	/* the database this worker joined */
static SPIPlanPtr ready_plan = NULL;
static SPIPlanPtr gpu_plan = NULL;
static bool started_logged = false;
static bool gpu_warned = false;

/* Run the housekeeping that is due; results go to shared memory. */
static void
Housekeeping(TimestampTz now)
{
	GovernorShared *g = governor_shared;

	for (int t = 0; t < HK_NTASKS; t++)
	{
		int			every = hk_interval[t];
		TimestampTz last;
		int64		result = 0;
		char		err[128] = "";
		bool		ok;
		Oid			type = INT8OID;
		Datum		arg;

		LWLockAcquire(g->lock, LW_SHARED);
		last = g->hk[t].last_run;
		LWLockRelease(g->lock);
		if (every <= 0 || (last != 0 && now - last < (int64) every * USECS_PER_SEC))
			continue;

		switch ((HousekeepingTask) t)
		{
			case HK_EXPIRE_LEASES:
				ok = SpiGuarded("SELECT tforge.expire_leases()::pg_catalog.int8", NULL, 0, NULL, NULL,
								&result, err, sizeof(err));
				break;
			case HK_EXPIRE_PROFILES:
				ok = SpiGuarded("SELECT tforge.expire_profiles()", NULL, 0, NULL, NULL,
								&result, err, sizeof(err));
				break;
			case HK_PURGE_TASKS:
				arg = Int64GetDatum(tforge_task_retention);
				ok = SpiGuarded("SELECT tforge.purge_tasks(pg_catalog.make_interval(secs => $1))", NULL,
								1, &type, &arg, &result, err, sizeof(err));
				break;
			case HK_PURGE_EVENTS:
			default:
				if (tforge_governor_events_keep == 0)
				{
					ok = true;
					break;
				}
				arg = Int64GetDatum(tforge_governor_events_keep);
				ok = SpiGuarded("WITH d AS (DELETE FROM tforge.governor_events e"
								" WHERE e.event_time < pg_catalog.now() - pg_catalog.make_interval(secs => $1)"
								" RETURNING 1) SELECT pg_catalog.count(*) FROM d", NULL,
								1, &type, &arg, &result, err, sizeof(err));
				break;
		}

		LWLockAcquire(g->lock, LW_EXCLUSIVE);
		g->hk[t].last_run = now;
		g->hk[t].runs++;
		if (ok)
			g->hk[t].last_result = result;
		else
		{
			g->hk[t].failures++;
			strlcpy(g->hk[t].last_error, err, sizeof(g->hk[t].last_error));
		}
		LWLockRelease(g->lock);
		if (!ok)
			ereport(WARNING,
					(errmsg("tforge governor: housekeeping %s failed: %s", HousekeepingNames[t], err)));
	}
}

/* One sample, one AIMD step, its events and the housekeeping that is due. */
static void
GovernorPass(void)
{
	GovernorShared *g = governor_shared;
	TimestampTz now = GetCurrentTimestamp();
	double		src[GOV_NSOURCES];
	double		resident_kb = get_float8_nan();
	double		pressure = get_float8_nan();
	int			source = -1;
	bool		ready = false;
	bool		gpu = false;
	int64		pending = 0;
	double		fill = 0;
	bool		override_set;
	double		override_p;
	bool		log_override;
	AimdState	state,
				next;
	double		scale,
				next_scale;
	AimdParams	params;
	StringInfoData detail;

	for (int i = 0; i < GOV_NSOURCES; i++)
		src[i] = get_float8_nan();
	src[GOV_SRC_CGROUP] = CgroupPressure();
	src[GOV_SRC_PSI] = PsiPressure();
	if (tforge_memory_limit > 0)
	{
		resident_kb = ServerResidentKb();
		src[GOV_SRC_LIMIT] = resident_kb / (double) tforge_memory_limit;
	}

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "tforge governor: sampling");

	/*
	 * Ready when the extension tforge (not merely a schema of that name,
	 * which the database's owner could create and fill with functions this
	 * superuser would then run) is installed at 0.2.0 or later.
	 */
	if (SPI_execute_plan(KeptPlan(&ready_plan,
								  "SELECT e.oid IS NOT NULL AND pg_catalog.to_regclass('tforge.governor_events') IS NOT NULL,"
								  " e.oid IS NOT NULL AND pg_catalog.to_regclass('tforge.gpu_blocks') IS NOT NULL"
								  " AND pg_catalog.to_regclass('tforge.gpu_devices') IS NOT NULL"
								  " FROM (SELECT 1) one LEFT JOIN pg_catalog.pg_extension e"
								  " ON e.extname OPERATOR(pg_catalog.=) 'tforge'"
								  " AND e.extnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('tforge')",
								  0, NULL),
						 NULL, NULL, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;

		ready = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		gpu = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}

	if (ready)
	{
		/* pending tasks, counted up to twice the capacity (fill <= 2) */
		pending = CountPendingTasks();
		fill = (double) pending / tforge_queue_capacity;
		src[GOV_SRC_QUEUE] = fill;
	}
	if (ready && gpu)
	{
		/*
		 * The fullest device: bytes in allocated or pinned blocks over its
		 * total memory. Guarded, so that pool tables of another shape only
		 * switch this source off.
		 */
		char		err[128];
		int64		permille;

		if (SpiGuarded("SELECT (pg_catalog.max(coalesce(u.used, 0)::pg_catalog.float8"
					   " OPERATOR(pg_catalog./) d.total_memory::pg_catalog.float8)"
					   " OPERATOR(pg_catalog.*) 1e6::pg_catalog.float8)::pg_catalog.int8"
					   " FROM tforge.gpu_devices d LEFT JOIN"
					   " (SELECT b.device_id, pg_catalog.sum(b.size_bytes) AS used FROM tforge.gpu_blocks b"
					   " WHERE b.status::pg_catalog.text IN ('allocated', 'pinned') GROUP BY b.device_id) u"
					   " ON u.device_id OPERATOR(pg_catalog.=) d.device_id"
					   " WHERE d.total_memory OPERATOR(pg_catalog.>) 0::pg_catalog.int8",
					   &gpu_plan, 0, NULL, NULL, &permille, err, sizeof(err)))
			src[GOV_SRC_GPU] = permille / 1e6;
		else if (!gpu_warned)
		{
			ereport(WARNING,
					(errmsg("tforge governor: GPU pool pressure not available: %s", err)));
			gpu_warned = true;
		}
	}

	for (int i = 0; i < GOV_SRC_OVERRIDE; i++)
		if (!isnan(src[i]) && (source < 0 || src[i] > pressure))
		{
			pressure = src[i];
			source = i;
		}

	LWLockAcquire(g->lock, LW_EXCLUSIVE);
	override_set = g->override_set;
	override_p = g->override_pressure;
	log_override = !g->override_logged;
	g->override_logged = true;
	state = g->state;
	LWLockRelease(g->lock);
	SpinLockAcquire(&g->mutex);
	scale = g->scale;
	SpinLockRelease(&g->mutex);

	if (override_set)
	{
		src[GOV_SRC_OVERRIDE] = override_p;
		pressure = override_p;
		source = GOV_SRC_OVERRIDE;
	}

	next = state;
	next_scale = scale;
	if (!isnan(pressure))
	{
		params.enter = tforge_governor_enter;
		params.exit = tforge_governor_exit;
		params.severe = tforge_governor_severe;
		params.decrease = tforge_governor_decrease;
		params.increase = tforge_governor_increase;
		params.min_scale = tforge_governor_min_scale;
		AimdStep(&next, &next_scale, pressure, &params);
		/* a further decrease while Degraded waits for the cooldown */
		if (state == AIMD_DEGRADED && next == AIMD_DEGRADED && next_scale < scale &&
			now - g->last_decrease < (int64) tforge_governor_cooldown * 1000)
			next_scale = scale;
	}

	LWLockAcquire(g->lock, LW_EXCLUSIVE);
	g->state = next;
	g->pressure = pressure;
	g->source = source;
	memcpy(g->sources, src, sizeof(src));
	g->pending = pending;
	g->passes++;
	if (next_scale < scale)
		g->last_decrease = now;
	LWLockRelease(g->lock);
	SpinLockAcquire(&g->mutex);
	g->ready = ready;
	g->scale = next_scale;
	g->fill = fill;
	g->last_sample = now;
	SpinLockRelease(&g->mutex);

	if (ready)
	{
		initStringInfo(&detail);
		appendStringInfoChar(&detail, '{');
		if (!started_logged)
		{
			/* a database name may hold any character: escaped as JSON */
			appendStringInfo(&detail, "\"pid\": %d, \"database\": ", MyProcPid);
			escape_json(&detail, worker_database);
			appendStringInfo(&detail, ", \"starts\": " INT64_FORMAT, g->restarts);
			appendStringInfoChar(&detail, '}');
			RecordEvent("start", state, pressure, source, scale, detail.data);
			started_logged = true;
			resetStringInfo(&detail);
			appendStringInfoChar(&detail, '{');
		}
		if (log_override)
		{
			JsonNumber(&detail, "override", override_set ? override_p : get_float8_nan());
			appendStringInfoChar(&detail, '}');
			RecordEvent("override", state, pressure, source, scale, detail.data);
			resetStringInfo(&detail);
			appendStringInfoChar(&detail, '{');
		}
		if (next != state || next_scale != scale)
		{
			const char *event = next != state ? "state_change" :
				next_scale < scale ? "scale_down" : "scale_up";

			appendStringInfo(&detail, "\"from_state\": \"%s\"", AimdStateNames[state]);
			JsonNumber(&detail, "from_scale", scale);
			for (int i = 0; i < GOV_SRC_OVERRIDE; i++)
				JsonNumber(&detail, GovernorSourceNames[i], src[i]);
			JsonNumber(&detail, "pending", (double) pending);
			if (!isnan(resident_kb))
			{
				JsonNumber(&detail, "resident_kb", resident_kb);
				JsonNumber(&detail, "memory_limit_kb", tforge_memory_limit);
			}
			appendStringInfoChar(&detail, '}');
			RecordEvent(event, next, pressure, source, next_scale, detail.data);
		}
		pgstat_report_activity(STATE_RUNNING, "tforge governor: housekeeping");
		Housekeeping(now);
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * The worker runs as the bootstrap superuser in a database whose owner need
 * not be one, and the settings ALTER DATABASE ... SET gives the database
 * (which its owner may run) apply to it at connection. None of them may
 * steer it: search_path would let a look-alike operator or function in a
 * schema of the owner's run as the superuser (the pending count compares
 * tforge.task_status with =), and session_authorization, role,
 * default_transaction_read_only or statement_timeout would fail every pass,
 * restarting the worker every second. What the worker's statements depend
 * on is pinned here, at a priority no later setting overrides (in a
 * transaction: session_authorization looks its role up in the catalog).
 */
static void
GovernorPinSettings(void)
{
	static const char *const pinned[][2] = {
		{"session_authorization", NULL},	/* the bootstrap superuser */
		{"role", "none"},
		{"search_path", "pg_catalog, pg_temp"},
		{"default_transaction_read_only", "off"},
		{"default_transaction_isolation", "read committed"},
		{"statement_timeout", "0"},
		{"lock_timeout", "0"},
		{"idle_in_transaction_session_timeout", "0"},
	};

	StartTransactionCommand();
	for (int i = 0; i < lengthof(pinned); i++)
		SetConfigOption(pinned[i][0],
						pinned[i][1] != NULL ? pinned[i][1] : GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false),
						PGC_SUSET, PGC_S_OVERRIDE);
	CommitTransactionCommand();
}

/* on_shmem_exit: the worker no longer runs. */
static void
GovernorDetach(int code, Datum arg)
{
	GovernorShared *g = governor_shared;

	SpinLockAcquire(&g->mutex);
	g->worker_pid = 0;
	g->ready = false;
	SpinLockRelease(&g->mutex);
	LWLockAcquire(g->lock, LW_EXCLUSIVE);
	g->worker_latch = NULL;
	LWLockRelease(g->lock);
}

void
GovernorMain(Datum main_arg)
{
	MemoryContext pass_context;
	GovernorShared *g = governor_shared;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (g == NULL)
		elog(ERROR, "tforge governor: shared memory is not initialised");

	worker_database = MemoryContextStrdup(TopMemoryContext, tforge_governor_database);
	BackgroundWorkerInitializeConnection(worker_database, NULL, 0);
	GovernorPinSettings();
	pgstat_report_appname("tforge governor");

	SpinLockAcquire(&g->mutex);
	g->worker_pid = MyProcPid;
	g->database_id = MyDatabaseId;
	g->ready = false;
	SpinLockRelease(&g->mutex);
	LWLockAcquire(g->lock, LW_EXCLUSIVE);
	g->worker_latch = MyLatch;
	g->started_at = GetCurrentTimestamp();
	g->restarts++;
	LWLockRelease(g->lock);
	on_shmem_exit(GovernorDetach, 0);

	ereport(LOG,
			(errmsg("tforge governor started on database \"%s\"", worker_database)));

	pass_context = AllocSetContextCreate(TopMemoryContext, "tforge governor pass",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (strcmp(tforge_governor_database, worker_database) != 0)
			{
				ereport(LOG,
						(errmsg("tforge governor restarting to connect to database \"%s\"",
								tforge_governor_database)));
				proc_exit(1);	/* the postmaster starts us again */
			}
		}

		/* never act on a standby (a promoted one starts us afresh) */
		if (!RecoveryInProgress())
		{
			MemoryContext old = MemoryContextSwitchTo(pass_context);

			GovernorPass();
			MemoryContextSwitchTo(old);
			MemoryContextReset(pass_context);
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 tforge_governor_interval, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
