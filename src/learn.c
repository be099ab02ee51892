/*
 * learn.c: the settings of runtime learning (profiles and estimation).
 *
 * The profiles themselves are rows of tforge.profiles, updated by
 * tforge.complete_task in the completing transaction; the statistics type
 * is in profile.c and the strategies in estimate.c. PL/pgSQL reads these
 * settings through tforge._setting(), which loads the library first.
 */
#include "postgres.h"

#include <limits.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "estimate.h"
#include "kernel_mode.h"
#include "profile.h"
#include "tforge.h"

bool tforge_learning_enabled = true;
int	tforge_learning_min_executions = 5;
double tforge_learning_confidence_threshold = 0.5;
static int	tforge_profile_ttl = 30 * 24 * 3600;
int	tforge_profile_sample_after = 10000;
int	tforge_profile_sample_every = 10;

/* Accept only the names of estimate.c's strategies. */
static bool
CheckStrategy(char **newval, void **extra, GucSource source)
{
	if (EstimateStrategyKnown(*newval))
		return true;
	GUC_check_errdetail("Valid strategies are average, p95, linear, ewma, last2, median, last, ensemble, adaptive, kernel, kernel_free and kernel_long.");
	return false;
}

void
LearnInit(void)
{
	DefineCustomBoolVariable("tforge.learning_enabled",
							 "Let submit_task fill undeclared resources and runtimes from learned profiles.",
							 NULL,
							 &tforge_learning_enabled,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.learning_min_executions",
							"Runs a profile needs before submit_task uses its estimate.",
							NULL,
							&tforge_learning_min_executions,
							5, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("tforge.learning_confidence_threshold",
							 "Confidence an estimate needs before submit_task uses it.",
							 "Confidence is the strategy's recent accuracy on the profile, shrunk while few runs were scored.",
							 &tforge_learning_confidence_threshold,
							 0.5, 0.0, 1.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("tforge.learning_strategy",
							   "Estimation strategy used when none is named.",
							   "One of average, p95, linear, ewma, last2, median, last, ensemble, adaptive, kernel, kernel_free, kernel_long.",
							   &tforge_learning_strategy,
							   "adaptive",
							   PGC_USERSET, 0,
							   CheckStrategy, NULL, NULL);
	DefineCustomIntVariable("tforge.profile_window",
							"Recent samples a new profile keeps for quantiles and recency-based estimates.",
							NULL,
							&tforge_profile_window,
							64, 1, 4096,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.kernel_window",
							"Recent completions a profile keeps for the kernel-mode strategies and for calibrated bounds.",
							"Each keeps ln runtime, requested seconds and processors; calibration keeps as many ratios of actual to predicted runtime.",
							&tforge_kernel_window,
							128, KERNEL_RING_MIN, KERNEL_RING_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	/*
	 * Superuser: the governor's housekeeping deletes profiles by it, and
	 * ALTER DATABASE ... SET by a database owner who is not a superuser
	 * would otherwise reach that worker (a 1 s TTL empties profiles the
	 * owner has no right to delete). expire_profiles(older_than) takes a
	 * TTL per call.
	 */
	DefineCustomIntVariable("tforge.profile_ttl",
							"Age after which tforge.expire_profiles() removes a profile not updated since.",
							"0 keeps profiles forever.",
							&tforge_profile_ttl,
							30 * 24 * 3600, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.profile_sample_after",
							"Runs after which a profile only records every Nth completion.",
							"0 records every completion forever.",
							&tforge_profile_sample_after,
							10000, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("tforge.profile_sample_every",
							"N of tforge.profile_sample_after: one completion in N is recorded.",
							NULL,
							&tforge_profile_sample_every,
							10, 1, 1000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
}

/*
 * _csv_records(text) -> SETOF text[]: the records of an RFC 4180 document.
 *
 * An unquoted empty field is NULL, a quoted one ("") the empty string, so
 * tforge.export_profiles('csv') can tell a missing statistic from an empty
 * key. Any deviation (a quote inside an unquoted field, text after a
 * closing quote, an unterminated quote) is a 22P02 error naming the line.
 */
PG_FUNCTION_INFO_V1(tforge_csv_records);
Datum
tforge_csv_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *doc = PG_GETARG_TEXT_PP(0);
	const char *p = VARDATA_ANY(doc);
	const char *end = p + VARSIZE_ANY_EXHDR(doc);
	int			line = 1;
	ArrayBuildState *fields = NULL;
	StringInfoData field;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	initStringInfo(&field);

	while (p < end)
	{
		bool		quoted = false;
		bool		eol = false;
		Datum		value;
		bool		isnull;

		resetStringInfo(&field);
		if (*p == '"')
		{
			quoted = true;
			p++;
			for (;;)
			{
				if (p >= end)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							 errmsg("invalid CSV: unterminated quoted field at line %d", line)));
				if (*p == '"')
				{
					if (p + 1 < end && p[1] == '"')
					{
						appendStringInfoChar(&field, '"');
						p += 2;
						continue;
					}
					p++;
					break;
				}
				if (*p == '\n')
					line++;
				appendStringInfoChar(&field, *p++);
			}
		}
		else
		{
			while (p < end && *p != ',' && *p != '\n' && *p != '\r')
			{
				if (*p == '"')
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							 errmsg("invalid CSV: quote inside an unquoted field at line %d", line)));
				appendStringInfoChar(&field, *p++);
			}
		}

		/* what ends the field: a comma, the end of the record, or junk */
		if (p < end && *p == ',')
			p++;
		else if (p >= end || *p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))
		{
			eol = true;
			p += (p >= end) ? 0 : (*p == '\r' ? 2 : 1);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid CSV: unexpected character after a field at line %d", line)));

		isnull = !quoted && field.len == 0;
		value = isnull ? (Datum) 0 : PointerGetDatum(cstring_to_text_with_len(field.data, field.len));
		fields = accumArrayResult(fields, value, isnull, TEXTOID, CurrentMemoryContext);

		if (eol || p >= end)
		{
			Datum		rec;
			bool		recnull = false;

			/* a comma at the very end of the document opens one last, empty field */
			if (!eol)
				fields = accumArrayResult(fields, (Datum) 0, true, TEXTOID, CurrentMemoryContext);
			rec = makeArrayResult(fields, CurrentMemoryContext);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &rec, &recnull);
			fields = NULL;
			line++;
		}
	}
	return (Datum) 0;
}
