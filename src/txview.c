/*
 * txview.c — loading a movement for replay, and converting for results.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "money.h"
#include "ref_cache.h"
#include "spi_util.h"
#include "tx_partition.h"
#include "txview.h"

static MpsPartitionPlan load_tx = {
	"SELECT t.card_id, t.currency::text, t.kind::text, t.amount, t.raw_amount,"
	" t.discount_amount, t.final_amount, t.balance_after, t.points_delta, t.points_after,"
	" t.level_before, t.level_after, t.merchant_id, t.original_tx_id, t.order_no, t.details::text,"
	" (t.details->>'refunded_total')::bigint, (t.details->>'original_final')::bigint"
	" FROM %s t WHERE t.id = $1 AND t.created_at = $2",
	2, {UUIDOID, TIMESTAMPTZOID}
};

bool
mps_txview_load(const pg_uuid_t *tx_id, TimestampTz created_at, MpsTxView *view)
{
	Datum		v[2];
	MpsCurrency cur;
	MpsLevel	level;
	bool		has_before;
	bool		has_after;
	int32		before;
	int32		after;

	memset(view, 0, sizeof(*view));
	v[0] = UUIDPGetDatum((pg_uuid_t *) tx_id);
	v[1] = TimestampTzGetDatum(created_at);
	if (mps_exec_in_tx_partition(&load_tx, created_at, v, NULL, false, 1) == 0)
		return false;
	view->tx_id = *tx_id;
	view->created_at = created_at;
	mps_col_uuid(0, 1, &view->card_id);
	strlcpy(view->currency, mps_col_text(0, 2), sizeof(view->currency));
	strlcpy(view->kind, mps_col_text(0, 3), sizeof(view->kind));
	view->amount = mps_col_int64(0, 4, 0);
	view->raw_amount = mps_col_int64(0, 5, 0);
	view->discount_amount = mps_col_int64(0, 6, 0);
	view->final_amount = mps_col_int64(0, 7, 0);
	view->balance_after = mps_col_int64(0, 8, 0);
	view->points_delta = mps_col_int64(0, 9, 0);
	view->points_after = mps_col_int64(0, 10, 0);
	has_before = !mps_col_isnull(0, 11);
	before = mps_col_int32(0, 11, 0);
	has_after = !mps_col_isnull(0, 12);
	after = mps_col_int32(0, 12, 0);
	view->has_merchant = mps_col_uuid(0, 13, &view->merchant_id);
	view->has_original = mps_col_uuid(0, 14, &view->original_tx_id);
	view->order_no = mps_col_text(0, 15);
	view->details = mps_col_text(0, 16);
	view->refunded_total = mps_col_int64(0, 17, 0);
	view->original_final = mps_col_int64(0, 18, 0);

	/* Exponent and level codes from the kept copy (ref_cache.c), as a card read gets them. */
	mps_currency_of_row(view->currency, &cur);
	view->exponent = cur.exponent;
	if (has_before)
	{
		mps_level_by_id(before, &level);
		strlcpy(view->level_before, level.valid ? level.code : "", sizeof(view->level_before));
	}
	if (has_after)
	{
		mps_level_by_id(after, &level);
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
