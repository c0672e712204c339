/*
 * money.c — the one place that turns caller amounts into minor units and back.
 *
 * The RPC surface takes numeric major units ("199.00"). Each currency has an
 * exponent (CNY/EUR/USD 2, JPY 0). An amount is accepted only when it is a
 * finite, positive number whose digits beyond the exponent are all zero (so
 * 199.00 is fine for JPY, 0.015 is refused for EUR) and at most the currency's
 * cap; nothing is ever rounded on the way in.
 *
 * Rounding inside MPS happens only where a rate is applied (discounts, fees):
 * half-up to the minor unit, once per amount, via mps_basis_points_of().
 */
#include "postgres.h"

#include "fmgr.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "errors.h"
#include "money.h"
#include "ref_cache.h"
#include "spi_util.h"

static void
amount_error(const char *param, const char *text, const char *currency, const char *why,
			 const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_AMOUNT_INVALID),
			 errmsg("invalid amount for %s", param),
			 errdetail("%s = %s (%s): %s.", param, text, currency, why),
			 errhint("%s", hint)));
}

int64
mps_amount_from_numeric(Numeric value, int exponent, int64 max_minor,
						const char *param, const char *currency)
{
	return mps_amount_from_numeric_ex(value, exponent, max_minor, param, currency, false);
}

int64
mps_amount_from_numeric_ex(Numeric value, int exponent, int64 max_minor,
						   const char *param, const char *currency, bool allow_zero)
{
	char	   *text;
	const char *p;
	int128		minor = 0;
	int			frac = 0;
	bool		nonzero_excess = false;
	char		hint[128];

	if (value == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_AMOUNT_INVALID),
				 errmsg("invalid amount for %s", param),
				 errdetail("%s is missing.", param),
				 errhint("Pass a positive amount in major units, e.g. 199.00.")));

	text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value)));
	snprintf(hint, sizeof(hint), "Pass a positive amount with at most %d decimal%s, e.g. %s.",
			 exponent, exponent == 1 ? "" : "s", exponent == 0 ? "199" : "199.00");

	p = text;
	if (*p == '-')
		amount_error(param, text, currency, "amounts must be positive", hint);
	if (!isdigit((unsigned char) *p))
		amount_error(param, text, currency, "not a finite number", hint);

	for (; isdigit((unsigned char) *p); p++)
	{
		minor = minor * 10 + (*p - '0');
		if (minor > (int128) PG_INT64_MAX)
			amount_error(param, text, currency, "too large", hint);
	}
	if (*p == '.')
	{
		for (p++; isdigit((unsigned char) *p); p++)
		{
			if (frac < exponent)
			{
				minor = minor * 10 + (*p - '0');
				frac++;
			}
			else if (*p != '0')
				nonzero_excess = true;
		}
	}
	if (*p != '\0')
		amount_error(param, text, currency, "not a plain decimal number", hint);
	if (nonzero_excess)
		amount_error(param, text, currency, "more decimals than the currency has", hint);
	for (; frac < exponent; frac++)
		minor *= 10;
	if (minor == 0 && !allow_zero)
		amount_error(param, text, currency, "amounts must be greater than zero", hint);
	if (minor > (int128) max_minor)
	{
		char		limit[64];
		Numeric		n = mps_numeric_from_minor(max_minor, exponent);

		snprintf(limit, sizeof(limit), "above the limit of %s",
				 DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n))));
		amount_error(param, text, currency, limit,
					 "Split the amount, or ask the platform admin to raise the currency's max_amount.");
	}
	return (int64) minor;
}

Numeric
mps_numeric_from_minor(int64 minor, int exponent)
{
	StringInfoData buf;
	uint64		mag;
	char		digits[24];		/* 2^64 has 20 digits */
	int			n;
	int			i;

	if (exponent < 0 || exponent > MPS_MAX_EXPONENT)
		elog(ERROR, "mps: currency exponent %d out of range", exponent);
	initStringInfo(&buf);
	if (minor < 0)
	{
		appendStringInfoChar(&buf, '-');
		mag = (uint64) (-(minor + 1)) + 1;
	}
	else
		mag = (uint64) minor;
	n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long) mag);
	/* Integer part (at least "0"), then the exponent's digits, zero-padded. */
	if (n <= exponent)
		appendStringInfoChar(&buf, '0');
	else
		appendBinaryStringInfo(&buf, digits, n - exponent);
	if (exponent > 0)
	{
		appendStringInfoChar(&buf, '.');
		for (i = n; i < exponent; i++)
			appendStringInfoChar(&buf, '0');
		appendStringInfoString(&buf, digits + (n > exponent ? n - exponent : 0));
	}
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(buf.data),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

int64
mps_basis_points_of(int64 amount, int32 bp)
{
	int128		x;

	Assert(amount >= 0 && bp >= 0 && bp <= 10000);
	x = (int128) amount * bp;
	return (int64) ((x + 5000) / 10000);
}

int64
mps_mul_div_floor(int64 amount, int64 num, int64 den)
{
	Assert(amount >= 0 && num >= 0 && den > 0);
	return (int64) (((int128) amount * num) / den);
}

/* ---- SQL-callable conversions for the SQL-written RPCs and views ---- */

PG_FUNCTION_INFO_V1(mps_to_major);
Datum
mps_to_major(PG_FUNCTION_ARGS)
{
	int32		exponent = PG_GETARG_INT32(1);

	if (exponent < 0 || exponent > MPS_MAX_EXPONENT)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_INVALID),
				 errmsg("invalid currency exponent"),
				 errdetail("p_exponent = %d.", exponent),
				 errhint("A currency's exponent is 0 to %d (mps.currencies.exponent).", MPS_MAX_EXPONENT)));
	PG_RETURN_NUMERIC(mps_numeric_from_minor(PG_GETARG_INT64(0), exponent));
}

/* to_minor(amount, currency, param name): the same checks as the C RPCs. */
PG_FUNCTION_INFO_V1(mps_to_minor);
Datum
mps_to_minor(PG_FUNCTION_ARGS)
{
	char	   *currency = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	const char *param = PG_ARGISNULL(2) ? "amount" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	MpsCurrency cur;

	mps_spi_connect();
	if (!mps_currency_find(currency, &cur))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_CURRENCY_UNKNOWN),
				 errmsg("unknown currency"),
				 errdetail("Currency \"%s\" is not configured.", currency),
				 errhint("Use one of mps.currencies (e.g. CNY, EUR, USD, JPY).")));
	mps_spi_finish();
	PG_RETURN_INT64(mps_amount_from_numeric(PG_ARGISNULL(0) ? NULL : PG_GETARG_NUMERIC(0),
											cur.exponent, cur.max_amount, param, currency));
}
