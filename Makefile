# tforge: PGXS build plus the README's two commands.
#
#   make demo   install what is missing, build, install, run the demo scenario
#   make test   install what is missing, build, install, run every pg_regress
#               and pgTAP suite in a throwaway cluster; prints "N passed, M failed"
#
# The version lives in META.json only; the control file is generated from it.

EXTENSION  = tforge
EXTVERSION = $(shell sed -n 's/^ *"version": *"\([0-9.]*\)".*/\1/p' META.json | head -n 1)

MODULE_big = tforge
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The install script is assembled from one fragment per component, in file
# name order, so each component's SQL sits beside its C file and its tests.
INSTALL_FRAGMENTS = $(sort $(wildcard sql/install/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(EXTENSION).control

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/[a-z]*.sql)))
REGRESS      := $(filter-out $(EXTENSION)--%,$(REGRESS))
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -DTFORGE_VERSION='"$(EXTVERSION)"'
EXTRA_CLEAN = sql/$(EXTENSION)--$(EXTVERSION).sql $(EXTENSION).control results regression.diffs regression.out

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
endif

sql/$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_FRAGMENTS) META.json
	@printf '%s\n' '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit' > $@
	@for f in $(INSTALL_FRAGMENTS); do printf '\n-- ---- %s ----\n' "$$f"; cat "$$f"; done >> $@

$(EXTENSION).control: $(EXTENSION).control.in META.json
	sed 's/@EXTVERSION@/$(EXTVERSION)/' $< > $@


.PHONY: demo test setup bench
setup:
	@test/lib/setup.sh

demo:
	@test/lib/harness.sh demo

test:
	@test/lib/harness.sh test

bench:
	@test/lib/harness.sh bench

# Every object depends on every header (PGXS does not track them).
$(OBJS): $(wildcard src/*.h)
