/*
 * tforge.c: the module's entry point.
 *
 * Holds PG_MODULE_MAGIC and _PG_init, which lets each component register
 * its GUCs, then reserves the "tforge." prefix so a misspelt setting is an
 * error instead of a silent placeholder.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "tforge.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	TauInit();
	LearnInit();
	GovernorInit();
	PlannerHookInit();
	WakeupInit();
	ClaimHeadInit();

	MarkGUCPrefixReserved("tforge");
}

/* The library's version, so a test can check it against the extension's. */
PG_FUNCTION_INFO_V1(tforge_library_version);
Datum
tforge_library_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(TFORGE_VERSION));
}

/*
 * Value of a tforge setting as text. Calling it also loads the library, so
 * the setting exists even in a backend that has not used tforge's C code yet
 * (PL/pgSQL's current_setting() would fail on an unloaded prefix).
 *
 * Everybody may execute it (the STABLE functions that read settings run as
 * their caller), so it answers only for tforge's own settings, and with
 * restrict_privileged: a name from SQL must never read data_directory,
 * hba_file or another setting its caller may not see (SHOW would refuse).
 */
#define TFORGE_SETTING_PREFIX "tforge."

PG_FUNCTION_INFO_V1(tforge_setting);
Datum
tforge_setting(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	const char *value;

	if (pg_strncasecmp(name, TFORGE_SETTING_PREFIX, strlen(TFORGE_SETTING_PREFIX)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("tforge._setting reads only tforge.* settings, not \"%s\"", name),
				 errhint("Use SHOW or current_setting() for other settings.")));
	value = GetConfigOption(name, false, true);
	PG_RETURN_TEXT_P(cstring_to_text(value));
}
