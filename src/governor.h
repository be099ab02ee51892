/*
 * governor.h: the overload governor (DESIGN.md component 6, seed 004).
 *
 * red_aimd.c   pure RED and AIMD arithmetic (tforge.red_*, tforge.aimd_step)
 * governor.c   GUCs, shared memory, the background worker, its events and
 *              housekeeping
 * pressure.c   pressure sources outside the database (cgroup, PSI, /proc)
 * admission.c  GovernorAdmit (called by submit_task), governor_status(),
 *              governor_override(), governor_housekeeping()
 */
#ifndef GOVERNOR_H
#define GOVERNOR_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/spin.h"

/* AIMD states, in the order of their names in AimdStateNames */
typedef enum AimdState
{
	AIMD_NORMAL = 0,
	AIMD_DEGRADED,
	AIMD_RECOVERING
} AimdState;

#define AIMD_NSTATES 3

extern const char *const AimdStateNames[AIMD_NSTATES];

/* The AIMD parameters (tforge.aimd_step's optional arguments, the GUCs). */
typedef struct AimdParams
{
	double		enter;			/* Normal/Recovering -> Degraded above this */
	double		exit;			/* Degraded -> Recovering, and recovery, below this */
	double		severe;			/* Degraded: another decrease above this */
	double		decrease;		/* multiplicative decrease factor, (0, 1) */
	double		increase;		/* additive increase per tick, (0, 1] */
	double		min_scale;		/* floor of the scale, (0, 1] */
} AimdParams;

/* red_aimd.c */
extern double RedDropProbability(double fill, double min_th, double max_th, double max_p);
extern void AimdValidate(const AimdParams *p);
extern void AimdStep(AimdState *state, double *scale, double pressure, const AimdParams *p);
extern AimdState AimdStateFromName(const char *name);

/* Housekeeping tasks the worker runs on their own schedules */
typedef enum HousekeepingTask
{
	HK_EXPIRE_LEASES = 0,
	HK_EXPIRE_PROFILES,
	HK_PURGE_TASKS,
	HK_PURGE_EVENTS
} HousekeepingTask;

#define HK_NTASKS 4

typedef struct HousekeepingState
{
	TimestampTz last_run;		/* 0: never */
	int64		last_result;	/* rows the last successful run touched */
	int64		runs;
	int64		failures;
	char		last_error[128];
} HousekeepingState;

/* Pressure sources, in the order of their names in GovernorSourceNames */
#define GOV_SRC_CGROUP	0
#define GOV_SRC_PSI		1
#define GOV_SRC_LIMIT	2
#define GOV_SRC_QUEUE	3
#define GOV_SRC_GPU		4
#define GOV_SRC_OVERRIDE 5
#define GOV_NSOURCES	6

extern const char *const GovernorSourceNames[GOV_NSOURCES];

/*
 * Shared state. Locking protocol:
 *  - mutex (spinlock) guards the fields submit_task reads and writes on the
 *    hot path: running, database_id, scale, fill, tokens, bucket_at,
 *    last_sample, the admission counters and the RED counts of other
 *    databases. Held for a few instructions.
 *  - lock (LWLock of tranche "tforge_governor") guards everything else:
 *    state, pressure, sources, override, housekeeping. The worker writes
 *    them once per pass; readers are governor_status() and friends.
 * The worker is the only writer of the sampled fields; backends write only
 * the override (under lock) and the bucket and counters (under mutex).
 */
/*
 * RED's count of pending tasks in a database the worker does not watch
 * (admission.c), shared by the backends submitting there.
 */
#define GOV_RED_DATABASES 8
typedef struct RedCount
{
	Oid			database_id;	/* InvalidOid: a free slot */
	double		fill;			/* pending / queue_capacity, last count */
	TimestampTz counted_at;		/* when the last count finished */
	int64		cost;			/* microseconds it took */
	TimestampTz counting_since; /* a backend counts now (0: none) */
} RedCount;

typedef struct GovernorShared
{
	LWLock	   *lock;
	slock_t		mutex;

	/* under mutex */
	pid_t		worker_pid;		/* 0 when no worker runs */
	Oid			database_id;	/* database whose queue the worker measures */
	bool		ready;			/* tforge is installed there */
	double		scale;
	double		fill;			/* pending / queue_capacity, last sample */
	double		tokens;
	TimestampTz bucket_at;
	TimestampTz last_sample;
	int64		admitted;
	int64		refused_red;
	int64		refused_rate;
	RedCount	red[GOV_RED_DATABASES];

	/* under lock */
	AimdState	state;
	double		pressure;
	int			source;			/* GOV_SRC_*, -1 before the first sample */
	double		sources[GOV_NSOURCES];	/* NaN: source absent or disabled */
	int64		pending;
	bool		override_set;
	double		override_pressure;
	bool		override_logged;	/* worker recorded the current override */
	TimestampTz started_at;
	TimestampTz last_decrease;
	int64		passes;
	int64		restarts;
	HousekeepingState hk[HK_NTASKS];
	Latch	   *worker_latch;
} GovernorShared;

/* pressure.c: sources outside the database (NaN when absent) */
extern double CgroupPressure(void);
extern double PsiPressure(void);
extern double ServerResidentKb(void);

/* governor.c */
extern GovernorShared *governor_shared;

/* admission.c: pending tasks of this database, up to twice the capacity (SPI connected) */
extern int64 CountPendingTasks(void);
extern bool tforge_governor_enabled;
extern bool tforge_admission_enabled;
extern char *tforge_governor_database;
extern int	tforge_governor_interval;
extern int	tforge_queue_capacity;
extern double tforge_admission_rate;
extern double tforge_red_min_th;
extern double tforge_red_max_th;
extern double tforge_red_max_p;
extern const char *const HousekeepingNames[HK_NTASKS];
extern int	HousekeepingInterval(HousekeepingTask task);
extern bool GovernorWorkerAlive(TimestampTz now);

#endif							/* GOVERNOR_H */
