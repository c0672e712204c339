/*
 * spi_util.c — prepared-once SPI plans and typed column readers.
 *
 * Values read from SPI results are copied into the memory context that was
 * current before SPI_connect (the "upper" context), so they survive
 * SPI_finish and the next statement.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "spi_util.h"

void
mps_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "mps: SPI_connect failed");
}

void
mps_spi_finish(void)
{
	SPI_finish();
}

/* Copy a C string into the caller's (upper) context. */
static char *
upper_strdup(const char *s)
{
	size_t		n = strlen(s) + 1;
	char	   *copy = SPI_palloc(n);

	memcpy(copy, s, n);
	return copy;
}

static SPIPlanPtr
prepared(MpsPlan *p)
{
	if (p->plan == NULL)
	{
		/* Always the generic plan (spi_util.h). */
		SPIPlanPtr	plan = SPI_prepare_cursor(p->sql, p->nargs, p->argtypes,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "mps: SPI_prepare failed (%s): %s",
				 SPI_result_code_string(SPI_result), p->sql);
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "mps: SPI_keepplan failed");
		p->plan = plan;
	}
	return p->plan;
}

static uint64
checked(int rc, const MpsPlan *p)
{
	if (rc < 0)
		elog(ERROR, "mps: SPI_execute_plan failed (%s): %s",
			 SPI_result_code_string(rc), p->sql);
	return SPI_processed;
}

uint64
mps_exec(MpsPlan *p, Datum *values, const char *nulls, bool read_only, long count)
{
	return checked(SPI_execute_plan(prepared(p), values, nulls, read_only, count), p);
}

uint64
mps_exec_latest(MpsPlan *p, Datum *values, const char *nulls, long count)
{
	CommandCounterIncrement();
	return checked(SPI_execute_snapshot(prepared(p), values, nulls, GetLatestSnapshot(),
										InvalidSnapshot, true, false, count), p);
}

static Datum
col_datum(uint64 row, int col, bool *isnull)
{
	Assert(SPI_tuptable != NULL && row < SPI_processed);
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

bool
mps_col_isnull(uint64 row, int col)
{
	bool		isnull;

	(void) col_datum(row, col, &isnull);
	return isnull;
}

int64
mps_col_int64(uint64 row, int col, int64 if_null)
{
	bool		isnull;
	Datum		d = col_datum(row, col, &isnull);
	Oid			typ = SPI_gettypeid(SPI_tuptable->tupdesc, col);

	if (isnull)
		return if_null;
	if (typ == INT8OID)
		return DatumGetInt64(d);
	if (typ == INT4OID)
		return (int64) DatumGetInt32(d);
	if (typ == INT2OID)
		return (int64) DatumGetInt16(d);
	elog(ERROR, "mps: column %d is not an integer (type %u)", col, typ);
	return 0;
}

int32
mps_col_int32(uint64 row, int col, int32 if_null)
{
	int64		v = mps_col_int64(row, col, if_null);

	if (v < PG_INT32_MIN || v > PG_INT32_MAX)
		elog(ERROR, "mps: column %d out of int4 range", col);
	return (int32) v;
}

bool
mps_col_bool(uint64 row, int col, bool if_null)
{
	bool		isnull;
	Datum		d = col_datum(row, col, &isnull);

	return isnull ? if_null : DatumGetBool(d);
}

char *
mps_col_text(uint64 row, int col)
{
	bool		isnull;
	Datum		d = col_datum(row, col, &isnull);
	Oid			typ;
	Oid			out;
	bool		varlena;
	char	   *s;

	if (isnull)
		return NULL;
	typ = SPI_gettypeid(SPI_tuptable->tupdesc, col);
	if (typ == TEXTOID || typ == VARCHAROID || typ == BPCHAROID)
		s = TextDatumGetCString(d);
	else
	{
		getTypeOutputInfo(typ, &out, &varlena);
		s = OidOutputFunctionCall(out, d);
	}
	return upper_strdup(s);
}

bool
mps_col_uuid(uint64 row, int col, pg_uuid_t *out)
{
	bool		isnull;
	Datum		d = col_datum(row, col, &isnull);

	if (isnull)
		return false;
	memcpy(out, DatumGetUUIDP(d), sizeof(pg_uuid_t));
	return true;
}

TimestampTz
mps_col_timestamptz(uint64 row, int col, TimestampTz if_null)
{
	bool		isnull;
	Datum		d = col_datum(row, col, &isnull);

	return isnull ? if_null : DatumGetTimestampTz(d);
}

Datum
mps_col_datum_copy(uint64 row, int col, bool *isnull)
{
	Datum		d = col_datum(row, col, isnull);
	Oid			typ;
	int16		typlen;
	bool		typbyval;

	if (*isnull)
		return (Datum) 0;
	typ = SPI_gettypeid(SPI_tuptable->tupdesc, col);
	get_typlenbyval(typ, &typlen, &typbyval);
	return SPI_datumTransfer(d, typbyval, typlen);
}
