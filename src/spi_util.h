/*
 * spi_util.h — prepared-once SPI plans and typed column readers.
 */
#ifndef MPS_SPI_UTIL_H
#define MPS_SPI_UTIL_H

#include "postgres.h"
#include "executor/spi.h"
#include "utils/uuid.h"

#define MPS_PLAN_MAX_ARGS 32

/*
 * A statement with its parameter types; the plan is prepared on first use and
 * kept for the life of the backend (plancache revalidates it after DDL).
 *
 * It runs as a generic plan, planned once: a custom plan would be re-planned
 * on every call whenever its parameters make it look cheaper, as with the
 * optional parts of a movement. (A transaction by its id is read by key in its
 * own partition instead, src/row_read.c, so one partition is locked, not every
 * month's.)
 */
typedef struct MpsPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[MPS_PLAN_MAX_ARGS];
	SPIPlanPtr	plan;
} MpsPlan;

/*
 * Run a kept plan; returns SPI_processed. nulls: ' ' or 'n' per arg, or NULL.
 * MPS's C functions are volatile and often read after waiting for a lock, so
 * they pass read_only = false: each statement then sees what committed before it.
 */
extern uint64 mps_exec(MpsPlan *p, Datum *values, const char *nulls,
					   bool read_only, long count);

/*
 * The same, read-only, on a snapshot taken now, whatever the isolation level:
 * for rows other transactions commit while this one runs (the binding
 * attempts that background workers write), which a REPEATABLE READ
 * transaction's own snapshot would hide.
 */
extern uint64 mps_exec_latest(MpsPlan *p, Datum *values, const char *nulls, long count);

/* Column readers over SPI_tuptable row `row`, column `col` (1-based). */
extern bool mps_col_isnull(uint64 row, int col);
extern int64 mps_col_int64(uint64 row, int col, int64 if_null);
extern int32 mps_col_int32(uint64 row, int col, int32 if_null);
extern bool mps_col_bool(uint64 row, int col, bool if_null);
extern char *mps_col_text(uint64 row, int col);	/* palloc'd in caller's context, or NULL */
extern bool mps_col_uuid(uint64 row, int col, pg_uuid_t *out);
extern TimestampTz mps_col_timestamptz(uint64 row, int col, TimestampTz if_null);
extern Datum mps_col_datum_copy(uint64 row, int col, bool *isnull);

/* Readers copy text and datums into the caller's context (SPI_palloc). */
extern void mps_spi_connect(void);
extern void mps_spi_finish(void);

#endif
