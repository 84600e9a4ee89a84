# taskguard — PGXS build.  `make test` and `make demo` are the two entry points
# (see README.md); both run test/harness.sh, which installs what is missing.

EXTENSION   = taskguard
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" taskguard.control)

MODULE_big  = taskguard
C_SOURCES   = $(sort $(wildcard src/*.c))
OBJS        = $(C_SOURCES:.c=.o)

# The install script is the capability pieces in src/sql, in file-name order.
SQL_PARTS   = $(sort $(wildcard src/sql/*.sql))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql
DATA        = $(filter-out $(DATA_built),$(wildcard $(EXTENSION)--*--*.sql))

REGRESS     = $(basename $(notdir $(sort $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --load-extension=taskguard

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-sign-compare
ifdef WERROR
PG_CPPFLAGS += -Werror
endif

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DATA_built): $(SQL_PARTS) taskguard.control
	@{ echo '-- generated from src/sql/*.sql by make; edit those files'; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION taskguard" to load this file. \quit'; \
	   for f in $(SQL_PARTS); do echo; echo "-- ==== $$f"; cat $$f; done; } > $@

.PHONY: test demo bench bench-peers fuzz fuzz-short soak unit

test:
	bash test/harness.sh test

demo:
	bash test/harness.sh demo

bench:
	bash test/harness.sh bench

bench-peers:
	bash test/harness.sh bench-peers

soak:
	bash test/harness.sh soak

# Pure-C cores, built and tested without the server.
unit:
	bash test/unit/run.sh

fuzz:
	bash test/fuzz/run.sh $(or $(FUZZ_SECONDS),60)

fuzz-short:
	bash test/fuzz/run.sh 10
