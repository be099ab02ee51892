/*
 * tforge.h: what the components of tforge share.
 *
 * Each component that registers GUCs or hooks exposes one Init function,
 * called once from _PG_init in tforge.c.
 */
#ifndef TFORGE_H
#define TFORGE_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* tau.c: EMA of task runtimes and the queue's GUCs */
extern void TauInit(void);

/* OID of relation tforge.<name> (statement.c, cached per backend): InvalidOid if none; TforgeTable errors. */
extern Oid	TforgeRelid(const char *name);
/* The OID of label of enum typid, InvalidOid when it has none (statement.c). */
extern Oid	EnumLabelOid(Oid typid, const char *label);
extern Oid	TforgeTable(const char *name);

/*
 * statement.c: the TriggerData of trigger function `function`, which reads
 * rows of tforge.<table>; 39P01 unless fired as a trigger of that table
 */
struct FunctionCallInfoBaseData;
struct TriggerData;
extern struct TriggerData *TforgeTrigger(struct FunctionCallInfoBaseData *fcinfo, const char *function,
										 const char *table);
#define MAX_ARGS 20

/*
 * statement.c: one SQL statement of tforge's C code (the queue's, the GPU
 * pool's), prepared on first use in a backend and kept.
 */
typedef struct QueueStatement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[MAX_ARGS];
	int			plan_option;	/* CURSOR_OPT_GENERIC_PLAN unless given */
	Oid			resources_type; /* what RESOURCES_ARG (queue.h) meant when prepared */
	struct _SPI_plan *plan;		/* SPIPlanPtr */
} QueueStatement;

/*
 * Run a statement without the queue's planning guard (Execute, queue.h):
 * nulls NULL or nulls[i] true when argument i is NULL; read_only for a
 * lookup. Returns SPI_processed (statement.c).
 */
extern uint64 ExecuteUnguarded(QueueStatement *stmt, const Datum *values, const bool *nulls, bool read_only);

/* 09000: a BEFORE trigger on tforge.<table> skipped the write described by what (statement.c). */
extern void SkippedByTrigger(const char *table, const char *what);

/*
 * learned.c: an executor state for writing single rows of rel without a
 * plan (its one range table entry) and rel's result relation; and its end.
 */
struct EState;
struct ResultRelInfo;
struct RelationData;
extern struct EState *RowWriteBegin(struct RelationData *rel, struct ResultRelInfo **rri);
extern void RowWriteEnd(struct EState *estate, struct ResultRelInfo *rri);
extern double tforge_ema_lambda;
extern double tforge_sla_multiplier;
extern int	tforge_max_attempts;

/* lambda * sample + (1 - lambda) * old, validated (tforge.ema) */
extern double Ema(double old, double sample, double lambda);

/* sla * tau seconds in microseconds; 22003 beyond 1e11 s */
extern TimeOffset DeadlineOffset(double sla, double tau);

/* learn.c: runtime profiles and estimation, tforge.learning_* and profile GUCs */
extern void LearnInit(void);
extern bool tforge_learning_enabled;
extern int	tforge_learning_min_executions;
extern double tforge_learning_confidence_threshold;
extern int	tforge_profile_sample_after;
extern int	tforge_profile_sample_every;

/* governor.c: the overload governor (GUCs, shared memory, worker) */
extern void GovernorInit(void);

/* admission.c: admission control; submit_task calls it first (53000 when refused) */
extern void GovernorAdmit(void);
/* admission.c: admission of a batch of n tasks as a whole (submit_tasks) */
extern void GovernorAdmitTasks(int64 n);

/*
 * citus.c: 55000 unless C code on this node may read the table directly
 * (not a Citus shell table, not a coordinator-only table read on a worker);
 * free of cost beyond one syscache lookup when Citus is not installed
 */
extern void RefuseShellTable(Oid relid);
/* profile.c: qsort comparator for float8 values that are not NaN */
extern int	CompareFloat8(const void *a, const void *b);

/*
 * citus.c: true when relid is a Citus table, whose rows C code must reach
 * through SQL (SPI), which Citus routes to the shard; false when this node
 * may read the table directly; 55000 as RefuseShellTable for a table kept on
 * the coordinator read on a worker. Same cost as RefuseShellTable.
 */
extern bool CitusRoutesTable(Oid relid);

/*
 * On a Citus node, for a table distributed by a text column: the shard
 * holding value, as *shardid, and that shard's relation on this node, or
 * InvalidOid when the shard is elsewhere (the shard is found by Citus's
 * get_shard_id_for_distribution_column, through SPI).
 */
extern Oid	CitusLocalShard(Oid relid, const char *value, int64 *shardid);

/*
 * citus.c: whether a lone call of a tforge function must be kept from
 * Citus's delegation (its distribution argument folds to NULL)
 */
struct FuncExpr;
extern bool CitusNullKeyCall(struct FuncExpr *call);

/* calls.c: installs tforge's planner hook (_PG_init) */
extern void PlannerHookInit(void);

/* wakeup.c: the count of listeners on tforge_tasks (_PG_init; shared_preload_libraries only) */
extern void WakeupInit(void);
/* claim_head.c: the claims' shared bounds of tasks_claim_idx (_PG_init; shared_preload_libraries only) */
extern void ClaimHeadInit(void);

/* statement.c: 22004 unless argument argno (called name) is given */
extern void RequireArg(FunctionCallInfo fcinfo, int argno, const char *name);

#endif							/* TFORGE_H */
