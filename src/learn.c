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

#include "utils/guc.h"

#include "estimate.h"
#include "profile.h"
#include "tforge.h"

static bool tforge_learning_enabled = true;
static int	tforge_learning_min_executions = 5;
static double tforge_learning_confidence_threshold = 0.5;
static int	tforge_profile_ttl = 30 * 24 * 3600;
static int	tforge_profile_sample_after = 10000;
static int	tforge_profile_sample_every = 10;

/* Accept only the names of estimate.c's strategies. */
static bool
CheckStrategy(char **newval, void **extra, GucSource source)
{
	static const char *const names[] = {
		"average", "p95", "linear", "ewma", "last2", "median", "last", "ensemble", "adaptive"
	};
	int			i;

	for (i = 0; i < lengthof(names); i++)
		if (strcmp(*newval, names[i]) == 0)
			return true;
	GUC_check_errdetail("Valid strategies are average, p95, linear, ewma, last2, median, last, ensemble and adaptive.");
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
							   "One of average, p95, linear, ewma, last2, median, last, ensemble, adaptive.",
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
	DefineCustomIntVariable("tforge.profile_ttl",
							"Age after which tforge.expire_profiles() removes a profile not updated since.",
							"0 keeps profiles forever.",
							&tforge_profile_ttl,
							30 * 24 * 3600, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_S,
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
