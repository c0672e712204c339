/*
 * charge.c — merchant_charge_by_qr: a merchant takes a payment from a card
 * through the member's QR code.
 *
 * Order of work, chosen so that nothing slow runs under the card lock:
 *   1. caller, merchant, amount, key checks (no writes);
 *   2. claim the idempotency key (a retry replays the first result here);
 *   3. find the code and run its one bcrypt check — before any lock;
 *   4. lock the card and read it, the holder's binding and the code's state
 *      (index probes by key, src/row_read.c);
 *   5. price (card discount), balance check, points and level;
 *   6. write card row, transaction, ledger, code consumption and audit event
 *      (mps_movement_write, without statements: src/row_write.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
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
#include "pricing.h"
#include "qr.h"
#include "spi_util.h"
#include "tag.h"
#include "stamps.h"
#include "txview.h"

/* A member's code pays only while that member is still bound to the card (not as viewer). */
static void
require_holder_bound(const MpsQr *qr, const char *role)
{
	if (!qr->has_holder)
		return;
	if (role == NULL || strcmp(role, "viewer") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_NOT_BOUND),
				 errmsg("code holder may not pay with this card"),
				 errdetail("Member %s is %s card %s.", mps_uuid_to_cstring(&qr->holder_member_id),
						   role ? "only a viewer of" : "no longer bound to",
						   mps_uuid_to_cstring(&qr->card_id)),
				 errhint("Pay with another card.")));
}

static Datum
charge_result(FunctionCallInfo fcinfo, const MpsTxView *t)
{
	TupleDesc	tupdesc;
	Datum		values[16];
	bool		nulls[16];
	pg_uuid_t  *tx = palloc(sizeof(pg_uuid_t));
	pg_uuid_t  *card = palloc(sizeof(pg_uuid_t));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mps: result type must be composite");
	memset(nulls, 0, sizeof(nulls));
	*tx = t->tx_id;
	*card = t->card_id;
	values[0] = UUIDPGetDatum(tx);
	values[1] = CStringGetTextDatum(mps_tx_no(tx));
	values[2] = UUIDPGetDatum(card);
	values[3] = CStringGetTextDatum(t->currency);
	values[4] = mps_major_datum(t->raw_amount, t->exponent);
	values[5] = mps_major_datum(t->discount_amount, t->exponent);
	values[6] = mps_major_datum(t->final_amount, t->exponent);
	values[7] = mps_major_datum(t->balance_after, t->exponent);
	values[8] = Int64GetDatum(t->points_delta);
	values[9] = Int64GetDatum(t->points_after);
	values[10] = mps_text_or_null(t->level_before, &nulls[10]);
	values[11] = mps_text_or_null(t->level_after, &nulls[11]);
	values[12] = BoolGetDatum(strcmp(t->level_before, t->level_after) != 0);
	values[13] = mps_text_or_null(t->order_no, &nulls[13]);
	values[14] = TimestampTzGetDatum(t->created_at);
	if (t->details)
		values[15] = DirectFunctionCall1(jsonb_in, CStringGetDatum(t->details));
	else
		nulls[15] = true;
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

static char *
arg_text(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

static char *
arg_jsonb_text(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL
		: DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(n)));
}

/*
 * The charge, for merchant_charge_by_qr and redeem_stamp. Both take
 * (p_merchant_code, p_qr_plain, p_raw_amount, p_idempotency_key, p_tag,
 * p_order_no, p_items); redeem_stamp adds p_activity_id (redeem > 0).
 */
static Datum
do_charge(FunctionCallInfo fcinfo, int32 redeem)
{
	const char *operation = redeem ? "redeem_stamp" : "charge";
	MemoryContext fn_cxt = CurrentMemoryContext;
	MemoryContext old;
	MpsActor	actor;
	MpsMerchant merchant;
	char	   *merchant_code = arg_text(fcinfo, 0);
	char	   *qr_plain = arg_text(fcinfo, 1);
	char	   *key = arg_text(fcinfo, 3);
	char	   *tag;
	char	   *order_no = arg_text(fcinfo, 5);
	char	   *items = arg_jsonb_text(fcinfo, 6);
	MpsPriced	priced;
	char		lookup[MPS_QR_LOOKUP_LEN + 1];
	char		secret[MPS_QR_SECRET_LEN + 1];
	int64		raw;
	MpsRequestHash h;
	MpsMovement m;
	pg_uuid_t	prior_tx;
	TimestampTz prior_at;
	MpsQr		qr;
	MpsCard		card;
	MpsTxView	view;
	MpsJson        audit_after;

	char	   *holder_role;
	bool		code_used;
	bool		code_revoked;
	ItemPointerData code_tid;
	MpsRedemption redemption;
	pg_uuid_t	payer;
	bool		has_payer = false;
	int32		group_id = 0;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, operation);
	mps_idem_check_key(key);
	mps_order_check(order_no);
	tag = mps_tag_arg(fcinfo, 4);
	if (!PG_ARGISNULL(6) || redeem)
		mps_require_marketing();
	if (redeem && PG_ARGISNULL(6))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_ITEMS_INVALID),
				 errmsg("invalid line items"),
				 errdetail("A stamp redemption needs the order's line items."),
				 errhint("Pass p_items with the reward item in it.")));
	memset(&redemption, 0, sizeof(redemption));

	mps_spi_connect();
	mps_merchant_for_call(&actor, merchant_code, operation, &merchant);
	if (items)
	{
		/* Line items set the raw amount; a raw amount given as well must agree. */
		mps_parse_items(DatumGetJsonbP(PG_GETARG_DATUM(6)), merchant.exponent, merchant.max_amount,
						merchant.currency, &priced);
		raw = priced.items_total;
		if (!PG_ARGISNULL(2) &&
			mps_amount_from_numeric(PG_GETARG_NUMERIC(2), merchant.exponent, merchant.max_amount,
									"p_raw_amount", merchant.currency) != raw)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_RAW_AMOUNT_MISMATCH),
					 errmsg("raw amount does not match the line items"),
					 errdetail("p_raw_amount is %s; the items add up to %s.",
							   DatumGetCString(DirectFunctionCall1(numeric_out, PG_GETARG_DATUM(2))),
							   DatumGetCString(DirectFunctionCall1(numeric_out, mps_major_datum(raw, merchant.exponent)))),
					 errhint("Leave p_raw_amount out, or pass the items' total.")));
		if (raw == 0)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_AMOUNT_INVALID),
					 errmsg("invalid amount for p_items"),
					 errdetail("The items add up to zero."),
					 errhint("A charge needs something to pay.")));
	}
	else
		raw = mps_amount_from_numeric(PG_ARGISNULL(2) ? NULL : PG_GETARG_NUMERIC(2),
									  merchant.exponent, merchant.max_amount,
									  "p_raw_amount", merchant.currency);
	mps_qr_parse(qr_plain, lookup, secret);

	/* 2. The key: a retry with the same parameters gets the first result. */
	mps_movement_init(&m, "payment");
	mps_reqhash_init(&h, operation);
	mps_reqhash_uuid(&h, &merchant.id);
	mps_reqhash_str(&h, lookup);
	mps_reqhash_str(&h, DatumGetCString(DirectFunctionCall1(numeric_out,
															NumericGetDatum(mps_numeric_from_minor(raw, merchant.exponent)))));
	mps_reqhash_str(&h, order_no);
	mps_reqhash_str(&h, tag);
	mps_reqhash_str(&h, items);
	mps_reqhash_str(&h, psprintf("%d", redeem));
	mps_reqhash_final(&h);
	if (!mps_idem_claim(&merchant.id, key, operation, &h, &m.tx_id, m.created_at,
						&prior_tx, &prior_at))
	{
		if (!mps_txview_load(&prior_tx, prior_at, &view))
			elog(ERROR, "mps: idempotent replay found no transaction");
		mps_spi_finish();
		return charge_result(fcinfo, &view);
	}
	if (order_no)
		mps_order_claim(&merchant.id, order_no, &m.tx_id, m.created_at);

	/* 3. The code and its bcrypt check, before any lock. */
	mps_qr_verify(qr_plain, &qr);

	/* 4. The card, locked, with the holder's binding and the code as they are now. */
	mps_card_lock_for_payment(&qr.card_id, qr.has_holder ? &qr.holder_member_id : NULL, qr.id,
							  &card, &holder_role, &code_used, &code_revoked, &code_tid);
	mps_card_require_usable(&card);
	if (strcmp(card.currency, merchant.currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_CURRENCY_MISMATCH),
				 errmsg("card and merchant currencies differ"),
				 errdetail("The card holds %s; merchant %s charges in %s.",
						   card.currency, merchant.code, merchant.currency),
				 errhint("Pay with a card in %s.", merchant.currency)));
	require_holder_bound(&qr, holder_role);
	mps_qr_require_live(&qr, code_used, code_revoked);

	/* 5. Price, balance, points. */
	m.raw_amount = raw;
	if (items)
	{
		MpsRule    *rules = NULL;
		int			nrules = 0;

		/* The group is the paying member's: the code's holder, or the card's owner. */
		if (qr.has_holder)
		{
			payer = qr.holder_member_id;
			has_payer = true;
		}
		else
			has_payer = mps_card_owner(&card.id, &payer);
		if (has_payer)
			group_id = mps_member_group(&payer);
		if (redeem)
		{
			if (group_id == 0)
				ereport(ERROR,
						(errcode(ERRCODE_MPS_GROUP_NOT_FOUND),
						 errmsg("member has no marketing group"),
						 errdetail("Stamps belong to a marketing group; the paying member is in none."),
						 errhint("Put the member in a group with set_member_marketing_group().")));
			mps_stamps_prepare_redemption(&payer, group_id, redeem, &priced, &redemption);
		}
		nrules = mps_load_rules(group_id, card.currency, &rules);
		mps_price(&priced, rules, nrules, mps_card_discount_bp(&card), card.exponent);
		m.final_amount = priced.final_amount;
		m.discount_amount = raw - priced.final_amount;
		m.details_json = priced.details.data;
	}
	else
	{
		m.discount_amount = mps_basis_points_of(raw, mps_card_discount_bp(&card));
		m.final_amount = raw - m.discount_amount;
	}
	m.amount = -m.final_amount;
	if (card.balance < m.final_amount)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_INSUFFICIENT_BALANCE),
				 errmsg("insufficient balance"),
				 errdetail("The card holds %s %s; the charge needs %s %s.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, mps_major_datum(card.balance, card.exponent))),
						   card.currency,
						   DatumGetCString(DirectFunctionCall1(numeric_out, mps_major_datum(m.final_amount, card.exponent))),
						   card.currency),
				 errhint("Recharge the card or pay the difference another way.")));
	m.points_delta = mps_card_points_for(&card, m.final_amount);
	m.ledger_reason = "earned";
	m.has_merchant = true;
	m.merchant_id = merchant.id;
	m.has_member = qr.has_holder;
	m.member_id = qr.holder_member_id;
	m.qr_code_id = qr.id;
	m.consume_code = true;
	m.qr_tid = code_tid;
	m.idempotency_key = key;
	m.order_no = order_no;
	m.tag = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);

	/* 6. Write: stamps (their summary goes into the details), then the movement. */
	if (items && has_payer && group_id != 0)
	{
		StringInfoData stamps;
		StringInfoData details;

		initStringInfo(&stamps);
		mps_stamps_commit(&payer, group_id, &priced, redeem ? &redemption : NULL, &m.tx_id, &stamps);
		initStringInfo(&details);
		appendBinaryStringInfo(&details, priced.details.data, priced.details.len - 1);
		appendStringInfo(&details, ", \"stamps\": %s}", stamps.data);
		m.details_json = details.data;
	}
	mps_movement_prepare(&card, &m);
	mps_json_start(&audit_after);
	mps_json_str(&audit_after, "merchant", merchant.code);
	mps_json_int(&audit_after, "final_amount", m.final_amount);
	mps_json_int(&audit_after, "balance_after", m.balance_after);
	mps_json_int(&audit_after, "points_delta", m.points_delta);
	mps_json_str(&audit_after, "level_after", m.level_after.valid ? m.level_after.code : NULL);
	if (redeem)
		mps_json_int(&audit_after, "redeemed_activity", redeem);
	if (!mps_movement_write(&actor, &card, &m, redeem ? "tx.redeem_stamp" : "tx.charge",
							&audit_after))
		mps_qr_raise_taken(&qr);

	old = MemoryContextSwitchTo(fn_cxt);
	mps_txview_from(&card, &m, &view);
	MemoryContextSwitchTo(old);
	mps_spi_finish();
	return charge_result(fcinfo, &view);
}

PG_FUNCTION_INFO_V1(mps_merchant_charge_by_qr);
Datum
mps_merchant_charge_by_qr(PG_FUNCTION_ARGS)
{
	return do_charge(fcinfo, 0);
}

/* redeem_stamp(..., p_activity_id): a charge that comps the activity's reward. */
PG_FUNCTION_INFO_V1(mps_redeem_stamp);
Datum
mps_redeem_stamp(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(7) || PG_GETARG_INT32(7) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("stamp activity is required"),
				 errdetail("p_activity_id is missing."),
				 errhint("Pass the id of the stamp activity to redeem.")));
	return do_charge(fcinfo, PG_GETARG_INT32(7));
}
