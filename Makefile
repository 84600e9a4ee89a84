# taskguard — PGXS build.  `make test` and `make demo` (demo/run.sh) are the two entry points
# (see README.md); both run test/harness.sh, which installs what is missing.

EXTENSION   = taskguard
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" taskguard.control)

MODULE_big  = taskguard
C_SOURCES   = $(sort $(wildcard src/*.c))
OBJS        = $(C_SOURCES:.c=.o)

# The install script is the capability pieces in src/sql, in file-name order.
# Released scripts (install and update) are kept unchanged in releases/ and
# never rebuilt; each update script not yet released is the pieces of
# src/sql/update/FROM--TO/ in file-name order, where a piece NAME.include
# names a src/sql file to take whole (a file new in that version, so the
# update restates no copy of it by hand).  README "Releases and upgrades".
SQL_PARTS   = $(sort $(wildcard src/sql/*.sql))
RELEASED    = $(wildcard releases/$(EXTENSION)--*.sql)
UPDATE_DIRS = $(filter-out $(patsubst releases/$(EXTENSION)--%.sql,src/sql/update/%,$(RELEASED)), \
                           $(sort $(wildcard src/sql/update/*--*)))
UPDATE_SCRIPTS = $(patsubst src/sql/update/%,$(EXTENSION)--%.sql,$(UPDATE_DIRS))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql $(UPDATE_SCRIPTS)
DATA        = $(RELEASED)

REGRESS     = $(basename $(notdir $(sort $(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --load-extension=taskguard

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-sign-compare \
              -DTASKGUARD_VERSION='"$(EXTVERSION)"'
ifdef WERROR
PG_CPPFLAGS += -Werror
endif

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies unless the server was configured with
# --enable-depend: rebuild every object when any of our headers changes (a
# struct that grew in a header, with stale objects, corrupts the stack).
$(OBJS): $(wildcard src/*.h)

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS) taskguard.control
	@{ echo '-- generated from src/sql/*.sql by make; edit those files'; \
	   printf '%s\n' '\echo Use "CREATE EXTENSION taskguard" to load this file. \quit'; \
	   for f in $(SQL_PARTS); do echo; echo "-- ==== $$f"; cat $$f; done; } > $@

.SECONDEXPANSION:
$(UPDATE_SCRIPTS): $(EXTENSION)--%.sql: $$(sort $$(wildcard src/sql/update/%/*.sql src/sql/update/%/*.include)) $(SQL_PARTS)
	@{ echo '-- generated from src/sql/update/$*/ by make; edit the pieces there'; \
	   printf '%s\n' '\echo Use "ALTER EXTENSION taskguard UPDATE TO '"'"'$(lastword $(subst --, ,$*))'"'"'" to load this file. \quit'; \
	   for f in $(sort $(wildcard src/sql/update/$*/*.sql src/sql/update/$*/*.include)); do \
	     case $$f in *.include) inc=$$(cat $$f); echo; echo "-- ==== $$inc (whole, from $$f)"; cat $$inc ;; \
	                 *) echo; echo "-- ==== $$f"; cat $$f ;; esac; done; } > $@

.PHONY: test test-matrix demo demo-stop bench bench-peers bench-held fuzz fuzz-short soak unit check-release

test:
	bash test/harness.sh test

# The suites on every supported PostgreSQL major: Debian's 15 and servers
# built from source tarballs into a cache (README "Supported PostgreSQL versions").
test-matrix:
	bash test/matrix.sh

demo:
	bash test/harness.sh demo

# Stops the demo cluster `TG_DEMO_KEEP=1 make demo` left running.
demo-stop:
	bash test/harness.sh demo-stop

bench:
	bash test/harness.sh bench

bench-peers:
	bash test/harness.sh bench-peers

# The worker cycle while another session holds a snapshot (issue 18), ~40 min;
# HELD_MINUTES=2 for a quick run (bench/README.md).
bench-held:
	TG_BENCH_SCRIPT=bench/held_snapshot.sh bash test/harness.sh bench

soak:
	bash test/harness.sh soak

# Pure-C cores, built and tested without the server.
unit:
	bash test/unit/run.sh

fuzz:
	bash test/fuzz/run.sh $(or $(FUZZ_SECONDS),60)

fuzz-short:
	bash test/fuzz/run.sh 10

# Fails when src/sql changed without a new version and its update script
# (test/check_release.sh says what it compares).
check-release:
	bash test/check_release.sh

# Replicas and failover (docs/operations.md): a primary, a synchronous
# standby, the standby promoted under load; ~1 min, apart from `make test`.
.PHONY: test-ha
test-ha:
	bash test/ha/run.sh

# The operator console (console/README.md): http://127.0.0.1:8089/, where
# people sign in as their PostgreSQL role; the database is libpq's PGHOST,
# PGPORT and PGDATABASE (default taskguard).  TG_CONSOLE_PORT, TG_CONSOLE_HOST.
.PHONY: console
console:
	cd console && { [ -d node_modules/pg ] || npm ci --omit=dev --no-audit --no-fund --loglevel=error; } && exec node server.js
