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

/*
 * Run a statement (read_only for the STABLE lookups); returns
 * SPI_processed. Outside Citus its plan is kept, as every statement's
 * (ExecuteUnguarded, statement.c); on a Citus cluster it is planned with
 * its parameters each time.
 */
uint64
PoolExec(PoolStatement *stmt, const Datum *values, const bool *nulls, bool read_only)
{
	char		n[MAX_ARGS];
	int			i;
	int			rc;

	if (!PoolRouted())
		return ExecuteUnguarded(stmt, values, nulls, read_only);
	for (i = 0; i < stmt->nargs; i++)
		n[i] = nulls != NULL && nulls[i] ? 'n' : ' ';
	rc = SPI_execute_with_args(stmt->sql, stmt->nargs, stmt->argtypes, (Datum *) values, n, read_only, 0);
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
