# MPS: PGXS build. `make test` and `make demo` work on a fresh machine: the
# harness installs what is missing before it calls back into this Makefile.

EXTENSION    = mps
EXTVERSION   = 0.1.0
MODULE_big   = mps
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
SQL_SOURCES  = $(sort $(wildcard sql/*.sql))
DATA_built   = mps--$(EXTVERSION).sql
SHLIB_LINK   = -lcrypt
PG_CFLAGS    = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
               -Wno-missing-field-initializers -Werror
EXTRA_CLEAN  = mps--$(EXTVERSION).sql

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
