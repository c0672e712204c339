/*
 * refund.c — merchant_refund_tx: money back to the card that paid (原路退回).
 *
 * Several partial refunds are allowed; their total never exceeds the
 * payment's final amount. Points come back in proportion: after refunding a
 * total R of a payment F that earned P points, floor(P * R / F) points have
 * been reversed in all, so a full refund reverses exactly P. The card's level
 * is recomputed and may go down. The payment row keeps its refunded total and
 * status (completed / partially_refunded / refunded) current.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "actor.h"
#include "audit.h"
#include "card.h"
#include "errors.h"
#include "idem.h"
#include "ids.h"
#include "merchant.h"
#include "money.h"
#include "row_read.h"
#include "row_write.h"
#include "spi_util.h"
#include "stamps.h"
#include "txview.h"

/*
 * A UUIDv7's first 48 bits are the Unix milliseconds of its created_at, so
 * [ms, ms + 1) bounds the row's partition key: the lookup reads the partition
 * holding ms (partition bounds are whole months, never inside a millisecond).
 */
static void
uuid7_time_range(const pg_uuid_t *id, TimestampTz *from, TimestampTz *to)
{
	int64		unix_ms = 0;
	int			i;

	for (i = 0; i < 6; i++)
		unix_ms = (unix_ms << 8) | id->data[i];
	*from = (unix_ms - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000) * 1000;
	*to = *from + 1000;
}

/* The original, before the card lock (its card is what to lock). */
enum
{
	ORIG_KIND, ORIG_MERCHANT, ORIG_FINAL, ORIG_REFUNDED, ORIG_POINTS, ORIG_MEMBER, ORIG_CARD,
	ORIG_CREATED_AT, ORIG_NCOLS
};

static MpsTable original_columns = {
	"mps", "transactions", ORIG_NCOLS, {
		{"kind", InvalidOid, MPS_COL_ENUM},
		{"merchant_id", UUIDOID, MPS_COL_DATUM},
		{"final_amount", INT8OID, MPS_COL_DATUM},
		{"refunded_amount", INT8OID, MPS_COL_DATUM},
		{"points_delta", INT8OID, MPS_COL_DATUM},
		{"member_id", UUIDOID, MPS_COL_DATUM},
		{"card_id", UUIDOID, MPS_COL_DATUM},
		{"created_at", TIMESTAMPTZOID, MPS_COL_DATUM},
	}
};
static MpsRowKey original_by_id = {&original_columns, 1, {"id"}};

/* What a refund changes on its payment: the refunded total and the status. */
static MpsTable original_refunds = {
	"mps", "transactions", 2, {
		{"refunded_amount", INT8OID, MPS_COL_DATUM},
		{"status", InvalidOid, MPS_COL_ENUM},
	}
};

/* The original payment as read: what the refund checks and computes from. */
typedef struct Original
{
	char	   *kind;
	bool		has_merchant;
	pg_uuid_t	merchant_id;
	int64		final_amount;
	int64		refunded;
	int64		points;
	bool		has_member;
	pg_uuid_t	member_id;
	pg_uuid_t	card_id;
	TimestampTz created_at;
	ItemPointerData tid;
} Original;

/* Read the original (the partition its id names); false when there is none. */
static bool
read_original(const pg_uuid_t *tx_id, Original *o)
{
	Datum		key = UUIDPGetDatum((pg_uuid_t *) tx_id);
	Datum		v[ORIG_NCOLS];
	bool		n[ORIG_NCOLS];
	TimestampTz from;
	TimestampTz to;

	uuid7_time_range(tx_id, &from, &to);
	if (!mps_row_read(&original_by_id, from, &key, false, v, n, &o->tid))
		return false;
	o->created_at = DatumGetTimestampTz(v[ORIG_CREATED_AT]);
	if (o->created_at < from || o->created_at >= to)
		return false;
	o->kind = DatumGetCString(v[ORIG_KIND]);
	o->has_merchant = !n[ORIG_MERCHANT];
	if (o->has_merchant)
		o->merchant_id = *DatumGetUUIDP(v[ORIG_MERCHANT]);
	o->final_amount = DatumGetInt64(v[ORIG_FINAL]);
	o->refunded = DatumGetInt64(v[ORIG_REFUNDED]);
	o->points = DatumGetInt64(v[ORIG_POINTS]);
	o->has_member = !n[ORIG_MEMBER];
	if (o->has_member)
		o->member_id = *DatumGetUUIDP(v[ORIG_MEMBER]);
	o->card_id = *DatumGetUUIDP(v[ORIG_CARD]);
	return true;
}

static Datum
refund_result(FunctionCallInfo fcinfo, const MpsTxView *t)
{
	TupleDesc	tupdesc;
	Datum		values[16];
	bool		nulls[16];
	pg_uuid_t  *tx = palloc(sizeof(pg_uuid_t));
	pg_uuid_t  *orig = palloc(sizeof(pg_uuid_t));
	pg_uuid_t  *card = palloc(sizeof(pg_uuid_t));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mps: result type must be composite");
	memset(nulls, 0, sizeof(nulls));
	*tx = t->tx_id;
	*orig = t->original_tx_id;
	*card = t->card_id;
	values[0] = UUIDPGetDatum(tx);
	values[1] = CStringGetTextDatum(mps_tx_no(tx));
	values[2] = UUIDPGetDatum(orig);
	values[3] = UUIDPGetDatum(card);
	values[4] = CStringGetTextDatum(t->currency);
	values[5] = mps_major_datum(t->final_amount, t->exponent);
	values[6] = mps_major_datum(t->refunded_total, t->exponent);
	values[7] = mps_major_datum(t->original_final - t->refunded_total, t->exponent);
	values[8] = CStringGetTextDatum(t->refunded_total == t->original_final ? "refunded" : "partially_refunded");
	values[9] = mps_major_datum(t->balance_after, t->exponent);
	values[10] = Int64GetDatum(-t->points_delta);
	values[11] = Int64GetDatum(t->points_after);
	values[12] = mps_text_or_null(t->level_before, &nulls[12]);
	values[13] = mps_text_or_null(t->level_after, &nulls[13]);
	values[14] = BoolGetDatum(strcmp(t->level_before, t->level_after) != 0);
	values[15] = TimestampTzGetDatum(t->created_at);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

static void
tx_not_found(const pg_uuid_t *tx_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_TX_NOT_FOUND),
			 errmsg("transaction not found"),
			 errdetail("No transaction %s.", mps_uuid_to_cstring(tx_id)),
			 errhint("Pass the tx_id returned by the charge.")));
}

/* Told to the platform admin only, who may know whose payment it is. */
static void
not_merchant_tx(const pg_uuid_t *tx_id, const char *merchant_code)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_NOT_MERCHANT_TX),
			 errmsg("transaction belongs to another merchant"),
			 errdetail("Transaction %s was not taken by merchant %s.",
					   mps_uuid_to_cstring(tx_id), merchant_code),
			 errhint("Only the merchant that took a payment can refund it.")));
}

static char *
minor_text(int64 minor, int exponent)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out, mps_major_datum(minor, exponent)));
}

/* merchant_refund_tx(p_merchant_code, p_tx_id, p_refund_amount, p_idempotency_key, p_reason) */
PG_FUNCTION_INFO_V1(mps_merchant_refund_tx);
Datum
mps_merchant_refund_tx(PG_FUNCTION_ARGS)
{
	MemoryContext fn_cxt = CurrentMemoryContext;
	MemoryContext old;
	MpsActor	actor;
	MpsMerchant merchant;
	char	   *merchant_code = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	pg_uuid_t  *orig_id;
	char	   *key = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *reason = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	int64		amount;
	MpsRequestHash h;
	MpsMovement m;
	pg_uuid_t	prior_tx;
	TimestampTz prior_at;
	Original	orig;
	MpsRowTarget original_target = {&original_refunds, 0};
	MpsRowWrite ow;
	bool		set_both[2] = {true, true};
	bool		isnull;
	int64		new_refunded;
	int64		reversed_before;
	int64		reversed_after;
	MpsCard		card;
	MpsTxView	view;
	Datum		v[2];
	MpsJson        details;
	MpsJson        audit_after;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "merchant_refund_tx");
	mps_idem_check_key(key);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("transaction id is required"),
				 errdetail("p_tx_id is missing."),
				 errhint("Pass the tx_id returned by the charge.")));
	orig_id = PG_GETARG_UUID_P(1);
	if (reason && strlen(reason) > 500)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_INVALID),
				 errmsg("refund reason is too long"),
				 errdetail("p_reason has %zu bytes.", strlen(reason)),
				 errhint("Keep the reason under 500 bytes.")));

	mps_spi_connect();
	mps_merchant_for_call(&actor, merchant_code, "merchant_refund_tx", &merchant);
	amount = mps_amount_from_numeric(PG_ARGISNULL(2) ? NULL : PG_GETARG_NUMERIC(2),
									 merchant.exponent, merchant.max_amount,
									 "p_refund_amount", merchant.currency);

	mps_movement_init(&m, "refund");
	mps_reqhash_init(&h, "refund");
	mps_reqhash_uuid(&h, &merchant.id);
	mps_reqhash_uuid(&h, orig_id);
	mps_reqhash_str(&h, minor_text(amount, merchant.exponent));
	mps_reqhash_str(&h, reason);
	mps_reqhash_final(&h);
	if (!mps_idem_claim(&merchant.id, key, "refund", &h, &m.tx_id, m.created_at,
						&prior_tx, &prior_at))
	{
		if (!mps_txview_load(&prior_tx, prior_at, &view))
			elog(ERROR, "mps: idempotent replay found no transaction");
		mps_spi_finish();
		return refund_result(fcinfo, &view);
	}

	/* The original and its card; checked under the card lock, below. */
	if (!read_original(orig_id, &orig))
		tx_not_found(orig_id);
	/*
	 * Another merchant's payment is "not found" to a merchant user, as an
	 * absent one is, and its card is not locked; a payment's merchant never
	 * changes, so this unlocked read decides.
	 */
	if (!orig.has_merchant || memcmp(&orig.merchant_id, &merchant.id, sizeof(pg_uuid_t)) != 0)
	{
		if (!actor.is_admin)
			tx_not_found(orig_id);
		not_merchant_tx(orig_id, merchant.code);
	}
	mps_card_lock_and_load(&orig.card_id, &card);

	/*
	 * The payment's newest version, locked: only refunds change it, under the
	 * card lock now held, so its refunded total cannot change any more; it
	 * may have changed since the read above.
	 */
	original_target.at = orig.created_at;
	mps_rows_begin(&ow, 1, &original_target);
	if (!mps_row_lock(&ow, 0, &orig.tid))
		elog(ERROR, "mps: payment %s vanished under its card lock", mps_uuid_to_cstring(orig_id));
	orig.refunded = DatumGetInt64(mps_row_value(&ow, 0, 0, &isnull));

	if (strcmp(orig.kind, "payment") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_NOT_REFUNDABLE),
				 errmsg("transaction is not refundable"),
				 errdetail("Transaction %s is a %s; only payments are refunded.",
						   mps_uuid_to_cstring(orig_id), orig.kind),
				 errhint("Refund the original payment instead.")));
	if (orig.refunded >= orig.final_amount)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_NOT_REFUNDABLE),
				 errmsg("transaction is not refundable"),
				 errdetail("Transaction %s is already fully refunded (%s %s).",
						   mps_uuid_to_cstring(orig_id), minor_text(orig.final_amount, card.exponent),
						   card.currency),
				 errhint("Nothing is left to refund.")));
	if (amount > orig.final_amount - orig.refunded)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_REFUND_EXCEEDS),
				 errmsg("refund exceeds the refundable amount"),
				 errdetail("Asked %s %s; refundable %s %s (paid %s, refunded %s).",
						   minor_text(amount, card.exponent), card.currency,
						   minor_text(orig.final_amount - orig.refunded, card.exponent), card.currency,
						   minor_text(orig.final_amount, card.exponent),
						   minor_text(orig.refunded, card.exponent)),
				 errhint("Refund at most the remaining amount.")));
	if (strcmp(card.status, "closed") == 0)
		mps_card_require_usable(&card);

	new_refunded = orig.refunded + amount;
	v[0] = Int64GetDatum(new_refunded);
	v[1] = CStringGetDatum(new_refunded == orig.final_amount ? "refunded" : "partially_refunded");
	mps_row_update(&ow, 0, &orig.tid, set_both, v, NULL);
	mps_rows_end(&ow);

	/* Proportional points: cumulative floor, so a full refund reverses all. */
	reversed_before = mps_mul_div_floor(orig.points, orig.refunded, orig.final_amount);
	reversed_after = mps_mul_div_floor(orig.points, new_refunded, orig.final_amount);

	m.raw_amount = amount;
	m.final_amount = amount;
	m.amount = amount;
	m.points_delta = -(reversed_after - reversed_before);
	m.ledger_reason = "refund_reversal";
	m.has_merchant = true;
	m.merchant_id = merchant.id;
	m.has_member = orig.has_member;
	m.member_id = orig.member_id;
	m.has_original = true;
	m.original_tx_id = *orig_id;
	m.idempotency_key = key;
	m.reason = reason;
	mps_json_start(&details);
	mps_json_int(&details, "refunded_total", new_refunded);
	mps_json_int(&details, "original_final", orig.final_amount);
	m.details_json = mps_json_finish(&details);
	m.details = mps_json_jsonb(&details);

	mps_movement_prepare(&card, &m);
	mps_json_start(&audit_after);
	mps_json_str(&audit_after, "original_tx_id", mps_uuid_to_cstring(orig_id));
	mps_json_str(&audit_after, "merchant", merchant.code);
	mps_json_int(&audit_after, "amount", amount);
	mps_json_int(&audit_after, "refunded_total", new_refunded);
	mps_json_int(&audit_after, "balance_after", m.balance_after);
	mps_json_int(&audit_after, "points_delta", m.points_delta);
	mps_json_str(&audit_after, "reason", reason);
	mps_movement_write(&actor, &card, &m, "tx.refund", &audit_after);
	/* A full refund takes back the stamps the charge earned and its redemption. */
	if (new_refunded == orig.final_amount)
		mps_stamps_reverse(orig_id, &m.tx_id);

	old = MemoryContextSwitchTo(fn_cxt);
	mps_txview_from(&card, &m, &view);
	view.refunded_total = new_refunded;
	view.original_final = orig.final_amount;
	MemoryContextSwitchTo(old);
	mps_spi_finish();
	return refund_result(fcinfo, &view);
}
