# tforge: PGXS build plus the README's two commands.
#
#   make demo   install what is missing, build, install, run the demo scenario
#   make test   install what is missing, build, install, run every pg_regress
#               and pgTAP suite in a throwaway cluster; prints "N passed, M failed"
#   make stress the long suites: crash cycles under a mixed load (fsync = on)
#
# The version lives in META.json; tforge.control's default_version must agree
# (the build stops when it does not).

EXTENSION  = tforge
EXTVERSION = $(shell sed -n 's/^ *"version": *"\([0-9.]*\)".*/\1/p' META.json | head -n 1)

MODULE_big = tforge
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from one fragment per component, in file
# name order, so each component's SQL sits beside its C file and its tests.
INSTALL_FRAGMENTS = $(sort $(wildcard sql/install/*.sql))

# Upgrade scripts are assembled the same way, from the files listed (in order)
# in sql/upgrade/tforge--A--B.files: changes to A's objects live in
# sql/upgrade/B/, components new in B are their install fragments unchanged.
# Install scripts of earlier versions are kept frozen as sql/tforge--A.sql.
UPGRADE_LISTS   = $(sort $(wildcard sql/upgrade/$(EXTENSION)--*--*.files))
UPGRADE_SCRIPTS = $(patsubst sql/upgrade/%.files,sql/%.sql,$(UPGRADE_LISTS))
OLD_SCRIPTS     = $(filter-out sql/$(EXTENSION)--$(EXTVERSION).sql $(UPGRADE_SCRIPTS),$(wildcard sql/$(EXTENSION)--*.sql))

DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(UPGRADE_SCRIPTS)
DATA       = $(OLD_SCRIPTS)

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/[a-z]*.sql)))
REGRESS      := $(filter-out $(EXTENSION)--%,$(REGRESS))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -DTFORGE_VERSION='"$(EXTVERSION)"'
EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql $(UPGRADE_SCRIPTS) results regression.diffs regression.out

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
endif

sql/$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_FRAGMENTS) META.json
	@printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit' > $@
	@for f in $(INSTALL_FRAGMENTS); do printf '\n-- ---- %s ----\n' "$$f"; cat "$$f"; done >> $@

# sql/tforge--A--B.sql from its list of fragments.
sql/$(EXTENSION)--%.sql: sql/upgrade/$(EXTENSION)--%.files $(INSTALL_FRAGMENTS) $(wildcard sql/upgrade/*/*.sql) META.json
	@printf '%s\n' '\echo Use "ALTER EXTENSION $(EXTENSION) UPDATE" to load this file. \quit' > $@
	@for f in $$(grep -v '^#' $<); do printf '\n-- ---- %s ----\n' "$$f"; cat "$$f"; done >> $@

# One version number: the control file's default_version is META.json's.
all: check-version
.PHONY: check-version
check-version:
	@grep -q "^default_version = '$(EXTVERSION)'$$" $(EXTENSION).control || \
		{ echo "$(EXTENSION).control: default_version is not $(EXTVERSION) (META.json)" >&2; exit 1; }


.PHONY: demo test stress setup bench
setup:
	@test/lib/setup.sh

demo:
	@test/lib/harness.sh demo

test:
	@test/lib/harness.sh test

stress:
	@test/lib/harness.sh stress

bench:
	@test/lib/harness.sh bench

# Every object depends on every header (PGXS does not track them).
$(OBJS): $(wildcard src/*.h)
