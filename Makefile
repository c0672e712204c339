# MPS: PGXS build. `make test` and `make demo` work on a fresh machine: the
# harness installs what is missing before it calls back into this Makefile.

EXTENSION    = mps
EXTVERSION   = 0.2.0
MODULE_big   = mps
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
SQL_SOURCES  = $(sort $(wildcard sql/*.sql))
# The full script of this version is built from sql/; released versions'
# scripts (released/) are kept as shipped; an upgrade script is assembled from
# its directory in updates/, one file per change.
UPDATE_0_2_0 = $(sort $(wildcard updates/mps--0.1.0--0.2.0/*.sql))
DATA_built   = mps--$(EXTVERSION).sql mps--0.1.0--0.2.0.sql
DATA         = $(wildcard released/mps--*.sql)
SHLIB_LINK   = -lcrypt
# The harness and CI add -Werror (COPT=-Werror); a user's `make` does not.
PG_CFLAGS    = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
               -Wno-missing-field-initializers
EXTRA_CLEAN  = mps--$(EXTVERSION).sql mps--0.1.0--0.2.0.sql

# `make installcheck` runs the regress and isolation suites against the
# server of $(PG_CONFIG) (the extension installed, the Supabase roles made by
# test/sql/00_setup.sql). 41_jobs needs pg_cron's own database (cron.database_name
# = mps_cron, as the harness's cluster has it), so only the harness runs it.
TESTS_LOAD   = --inputdir=test --load-extension=pgcrypto --load-extension=pg_trgm --load-extension=mps
REGRESS      = $(filter-out 41_jobs,$(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql))))
REGRESS_OPTS = $(TESTS_LOAD)
ISOLATION    = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = $(TESTS_LOAD)

PG_CONFIG ?= $(shell command -v pg_config 2>/dev/null || echo /usr/lib/postgresql/15/bin/pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
all install installcheck:
	@echo "pg_config not found: run 'make test' or 'make demo', which install PostgreSQL first" >&2; exit 1
endif

# The extension script is the files of sql/ in name order.
mps--$(EXTVERSION).sql: $(SQL_SOURCES)
	cat $(SQL_SOURCES) > $@

mps--0.1.0--0.2.0.sql: $(UPDATE_0_2_0)
	cat $(UPDATE_0_2_0) > $@

.PHONY: test demo dev dev-stop bench
test:
	bash test/harness.sh test
demo:
	bash test/harness.sh demo
# The demo's data left running in database mps_demo; dev-stop stops it.
dev:
	bash test/harness.sh dev
dev-stop:
	bash test/harness.sh stop
bench:
	bash test/harness.sh bench
