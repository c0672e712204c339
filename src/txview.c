/*
 * txview.c — loading a movement for replay, and converting for results.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "money.h"
#include "ref_cache.h"
#include "row_read.h"
#include "txview.h"

/* A movement by its key (id, created_at), for a replay. */
enum
{
	TV_CARD, TV_CURRENCY, TV_KIND, TV_AMOUNT, TV_RAW, TV_DISCOUNT, TV_FINAL, TV_BALANCE_AFTER,
	TV_POINTS_DELTA, TV_POINTS_AFTER, TV_LEVEL_BEFORE, TV_LEVEL_AFTER, TV_MERCHANT, TV_ORIGINAL,
	TV_ORDER_NO, TV_DETAILS, TV_NCOLS
};

static MpsTable movement_columns = {
	"mps", "transactions", TV_NCOLS, {
		{"card_id", UUIDOID, MPS_COL_DATUM},
		{"currency", BPCHAROID, MPS_COL_DATUM},
		{"kind", InvalidOid, MPS_COL_ENUM},
		{"amount", INT8OID, MPS_COL_DATUM},
		{"raw_amount", INT8OID, MPS_COL_DATUM},
		{"discount_amount", INT8OID, MPS_COL_DATUM},
		{"final_amount", INT8OID, MPS_COL_DATUM},
		{"balance_after", INT8OID, MPS_COL_DATUM},
		{"points_delta", INT8OID, MPS_COL_DATUM},
		{"points_after", INT8OID, MPS_COL_DATUM},
		{"level_before", INT4OID, MPS_COL_DATUM},
		{"level_after", INT4OID, MPS_COL_DATUM},
		{"merchant_id", UUIDOID, MPS_COL_DATUM},
		{"original_tx_id", UUIDOID, MPS_COL_DATUM},
		{"order_no", TEXTOID, MPS_COL_DATUM},
		{"details", JSONBOID, MPS_COL_DATUM},
	}
};
static MpsRowKey movement_by_key = {&movement_columns, 2, {"id", "created_at"}};

/* A whole number in details, as (details->>key)::bigint reads it; 0 when absent or null. */
static int64
details_int(Datum details, const char *key)
{
	Jsonb	   *jb = DatumGetJsonbP(details);
	JsonbValue	buf;
	JsonbValue *v;

	if (!JB_ROOT_IS_OBJECT(jb))
		return 0;
	v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key), &buf);
	if (v == NULL || v->type == jbvNull)
		return 0;
	if (v->type == jbvNumeric)
		return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
	if (v->type == jbvString)
		return DatumGetInt64(DirectFunctionCall1(int8in,
												 CStringGetDatum(pnstrdup(v->val.string.val,
																		  v->val.string.len))));
	elog(ERROR, "mps: details.%s of a transaction is not a number", key);
	return 0;
}

/*
 * A copy of s in the context of SPI's caller: the view outlives
 * mps_spi_finish(), which frees everything allocated under SPI.
 */
static char *
upper_strdup(const char *s)
{
	size_t		len = strlen(s) + 1;
	char	   *copy = SPI_palloc(len);

	memcpy(copy, s, len);
	return copy;
}

bool
mps_txview_load(const pg_uuid_t *tx_id, TimestampTz created_at, MpsTxView *view)
{
	Datum		keys[2];
	Datum		v[TV_NCOLS];
	bool		n[TV_NCOLS];
	MpsCurrency cur;
	MpsLevel	level;

	memset(view, 0, sizeof(*view));
	keys[0] = UUIDPGetDatum((pg_uuid_t *) tx_id);
	keys[1] = TimestampTzGetDatum(created_at);
	if (!mps_row_read(&movement_by_key, created_at, keys, false, v, n, NULL))
		return false;
	view->tx_id = *tx_id;
	view->created_at = created_at;
	view->card_id = *DatumGetUUIDP(v[TV_CARD]);
	text_to_cstring_buffer(DatumGetTextPP(v[TV_CURRENCY]), view->currency, sizeof(view->currency));
	strlcpy(view->kind, DatumGetCString(v[TV_KIND]), sizeof(view->kind));
	view->amount = DatumGetInt64(v[TV_AMOUNT]);
	view->raw_amount = DatumGetInt64(v[TV_RAW]);
	view->discount_amount = DatumGetInt64(v[TV_DISCOUNT]);
	view->final_amount = DatumGetInt64(v[TV_FINAL]);
	view->balance_after = DatumGetInt64(v[TV_BALANCE_AFTER]);
	view->points_delta = DatumGetInt64(v[TV_POINTS_DELTA]);
	view->points_after = DatumGetInt64(v[TV_POINTS_AFTER]);
	view->has_merchant = !n[TV_MERCHANT];
	if (view->has_merchant)
		view->merchant_id = *DatumGetUUIDP(v[TV_MERCHANT]);
	view->has_original = !n[TV_ORIGINAL];
	if (view->has_original)
		view->original_tx_id = *DatumGetUUIDP(v[TV_ORIGINAL]);
	view->order_no = n[TV_ORDER_NO] ? NULL : upper_strdup(TextDatumGetCString(v[TV_ORDER_NO]));
	if (!n[TV_DETAILS])
	{
		view->details = upper_strdup(DatumGetCString(DirectFunctionCall1(jsonb_out, v[TV_DETAILS])));
		view->refunded_total = details_int(v[TV_DETAILS], "refunded_total");
		view->original_final = details_int(v[TV_DETAILS], "original_final");
	}

	/* Exponent and level codes from the kept copy (ref_cache.c), as a card read gets them. */
	mps_currency_of_row(view->currency, &cur);
	view->exponent = cur.exponent;
	if (!n[TV_LEVEL_BEFORE])
	{
		mps_level_by_id(DatumGetInt32(v[TV_LEVEL_BEFORE]), &level);
		strlcpy(view->level_before, level.valid ? level.code : "", sizeof(view->level_before));
	}
	if (!n[TV_LEVEL_AFTER])
	{
		mps_level_by_id(DatumGetInt32(v[TV_LEVEL_AFTER]), &level);
		strlcpy(view->level_after, level.valid ? level.code : "", sizeof(view->level_after));
	}
	return true;
}

void
mps_txview_from(const MpsCard *card, const MpsMovement *m, MpsTxView *view)
{
	memset(view, 0, sizeof(*view));
	view->tx_id = m->tx_id;
	view->created_at = m->created_at;
	view->card_id = card->id;
	strlcpy(view->currency, card->currency, sizeof(view->currency));
	view->exponent = card->exponent;
	strlcpy(view->kind, m->kind, sizeof(view->kind));
	view->amount = m->amount;
	view->raw_amount = m->raw_amount;
	view->discount_amount = m->discount_amount;
	view->final_amount = m->final_amount;
	view->balance_after = m->balance_after;
	view->points_delta = m->points_delta;
	view->points_after = m->points_after;
	strlcpy(view->level_before, m->level_before.valid ? m->level_before.code : "",
			sizeof(view->level_before));
	strlcpy(view->level_after, m->level_after.valid ? m->level_after.code : "",
			sizeof(view->level_after));
	view->has_merchant = m->has_merchant;
	view->merchant_id = m->merchant_id;
	view->has_original = m->has_original;
	view->original_tx_id = m->original_tx_id;
	view->order_no = m->order_no ? pstrdup(m->order_no) : NULL;
	view->details = m->details_json ? pstrdup(m->details_json) : NULL;
}

Datum
mps_major_datum(int64 minor, int exponent)
{
	return NumericGetDatum(mps_numeric_from_minor(minor, exponent));
}

Datum
mps_text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL || s[0] == '\0');
	return *isnull ? (Datum) 0 : CStringGetTextDatum(s);
}
