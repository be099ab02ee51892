/*
 * pool_spi.c: how the GPU pool's C code (pool.c, pool_lists.c) runs its
 * SQL statements: each statement is prepared on first use in a backend and
 * its plan kept; on a Citus cluster (tforge.distribute()), where the pool's
 * tables are Citus tables, each runs with its parameters bound instead, so
 * that Citus routes it by the device it names (see pool.c's banner).
 */
#include "postgres.h"

#include "executor/spi.h"

#include "pool.h"
#include "queue.h"
#include "tforge.h"

/* The statement's plan, prepared on first use and kept for the backend. */
static SPIPlanPtr
PoolPlan(PoolStatement *stmt)
{
	SPIPlanPtr	plan;

	if (stmt->plan != NULL)
		return stmt->plan;
	plan = SPI_prepare_cursor(stmt->sql, stmt->nargs, stmt->argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "could not prepare a tforge pool statement: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep a tforge pool statement");
	stmt->plan = plan;
	return plan;
}

/*
 * True when the pool's tables are Citus tables (see pool.c's banner):
 * statements are planned with their parameters, and nothing is read
 * directly. 55000 when they are kept on the coordinator and this is a
 * Citus worker.
 */
bool
PoolRouted(void)
{
	return CitusRoutesTable(TforgeTable("gpu_blocks"));
}

/* Run a statement (read_only for the STABLE lookups); returns SPI_processed. */
uint64
PoolExec(PoolStatement *stmt, const Datum *values, const bool *nulls, bool read_only)
{
	char		n[POOL_MAX_ARGS];
	int			i;
	int			rc;

	for (i = 0; i < stmt->nargs; i++)
		n[i] = nulls != NULL && nulls[i] ? 'n' : ' ';
	if (PoolRouted())
		rc = SPI_execute_with_args(stmt->sql, stmt->nargs, stmt->argtypes, (Datum *) values, n, read_only, 0);
	else
		rc = SPI_execute_plan(PoolPlan(stmt), (Datum *) values, n, read_only, 0);
	if (rc < 0)
		elog(ERROR, "tforge pool statement failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Column col (1-based) of result row row as int64; NULL gives -1 and
 * *isnull. The row is checked as for every statement's result (ResultValue,
 * statement.c).
 */
int64
ResultInt8(uint64 row, int col, bool *isnull)
{
	bool		null;
	Datum		d = ResultValue(row, col, &null);

	if (isnull != NULL)
		*isnull = null;
	return null ? -1 : DatumGetInt64(d);
}

/* Column col of row row as a C string in the current context; NULL if NULL. */
char *
ResultText(uint64 row, int col)
{
	bool		null;

	(void) ResultValue(row, col, &null);
	return null ? NULL : SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}
