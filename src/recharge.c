/*
 * recharge.c — recharge_card: stored value put on a card.
 *
 * Who may: the platform admin only (back office; DESIGN.md §3: money enters a
 * card only with a verified payment or by the admin's own hand). Members and
 * card admins top up through a paid top-up order. Voucher cards are never
 * recharged. The idempotency key is scoped to the card.
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
#include "money.h"
#include "spi_util.h"
#include "tag.h"
#include "txview.h"

static Datum
recharge_result(FunctionCallInfo fcinfo, const MpsTxView *t)
{
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	pg_uuid_t  *tx = palloc(sizeof(pg_uuid_t));
	pg_uuid_t  *card = palloc(sizeof(pg_uuid_t));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mps: result type must be composite");
	*tx = t->tx_id;
	*card = t->card_id;
	values[0] = UUIDPGetDatum(tx);
	values[1] = CStringGetTextDatum(mps_tx_no(tx));
	values[2] = UUIDPGetDatum(card);
	values[3] = CStringGetTextDatum(t->currency);
	values[4] = mps_major_datum(t->final_amount, t->exponent);
	values[5] = mps_major_datum(t->balance_after, t->exponent);
	values[6] = TimestampTzGetDatum(t->created_at);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

/*
 * Money enters a card without a verified payment only by the platform admin's
 * hand (back office, audited). Checked before the card is looked up or
 * locked, so the refusal is the same for any card id, existing or not.
 */
static void
require_platform_admin(const MpsActor *actor)
{
	if (!actor->is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: recharge_card"),
				 errdetail("Only the platform admin credits a card without a verified payment."),
				 errhint("Members and card admins top up through a paid top-up order.")));
}

/* recharge_card(p_card_id, p_amount, p_idempotency_key, p_payment_method, p_tag) */
PG_FUNCTION_INFO_V1(mps_recharge_card);
Datum
mps_recharge_card(PG_FUNCTION_ARGS)
{
	MemoryContext fn_cxt = CurrentMemoryContext;
	MemoryContext old;
	MpsActor	actor;
	pg_uuid_t  *card_id;
	char	   *key = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *method = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *tag;
	int64		amount;
	MpsCard		card;
	pg_uuid_t	member;
	bool		has_member;
	MpsRequestHash h;
	MpsMovement m;
	pg_uuid_t	prior_tx;
	TimestampTz prior_at;
	MpsTxView	view;
	MpsJson        audit_after;
	int			i;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "recharge_card");
	require_platform_admin(&actor);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("card id is required"),
				 errdetail("p_card_id is missing."),
				 errhint("Pass the card's id.")));
	card_id = PG_GETARG_UUID_P(0);
	mps_idem_check_key(key);
	tag = mps_tag_arg(fcinfo, 4);
	if (method)
	{
		bool		ok = strlen(method) >= 1 && strlen(method) <= 32;

		for (i = 0; method[i] && ok; i++)
			ok = islower((unsigned char) method[i]) || isdigit((unsigned char) method[i]) || method[i] == '_';
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PARAMETER_INVALID),
					 errmsg("invalid payment method"),
					 errdetail("p_payment_method = \"%s\".", method),
					 errhint("Use a short lower-case name such as cash, bank_card, wechat, alipay or stripe.")));
	}

	mps_spi_connect();

	/*
	 * The card lock first, then the checks and the key. The key's scope is
	 * the card, so whoever else could hold this key (another recharge of the
	 * card) holds the card lock too: the claim below never waits under it.
	 * A caller the checks refuse holds the lock only until that error.
	 */
	mps_card_lock_and_load(card_id, &card);
	has_member = mps_actor_member_id(&actor, &member);
	if (strcmp(card.card_type, "voucher") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_CARD_NOT_RECHARGEABLE),
				 errmsg("card cannot be recharged"),
				 errdetail("Card %s is a voucher card.", mps_uuid_to_cstring(card_id)),
				 errhint("Voucher cards carry a fixed face value; issue a new voucher instead.")));
	amount = mps_amount_from_numeric(PG_ARGISNULL(1) ? NULL : PG_GETARG_NUMERIC(1),
									 card.exponent, card.max_amount, "p_amount", card.currency);

	mps_movement_init(&m, "recharge");
	mps_reqhash_init(&h, "recharge");
	mps_reqhash_uuid(&h, card_id);
	mps_reqhash_str(&h, DatumGetCString(DirectFunctionCall1(numeric_out,
															mps_major_datum(amount, card.exponent))));
	mps_reqhash_str(&h, method);
	mps_reqhash_str(&h, tag);
	mps_reqhash_final(&h);
	if (!mps_idem_claim(card_id, key, "recharge", &h, &m.tx_id, m.created_at, &prior_tx, &prior_at))
	{
		if (!mps_txview_load(&prior_tx, prior_at, &view))
			elog(ERROR, "mps: idempotent replay found no transaction");
		mps_spi_finish();
		return recharge_result(fcinfo, &view);
	}

	mps_card_require_usable(&card);
	if (card.balance > card.max_balance - amount)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_BALANCE_LIMIT),
				 errmsg("balance limit exceeded"),
				 errdetail("The card holds %s %s; with %s more it would pass the limit of %s.",
						   DatumGetCString(DirectFunctionCall1(numeric_out, mps_major_datum(card.balance, card.exponent))),
						   card.currency,
						   DatumGetCString(DirectFunctionCall1(numeric_out, mps_major_datum(amount, card.exponent))),
						   DatumGetCString(DirectFunctionCall1(numeric_out, mps_major_datum(card.max_balance, card.exponent)))),
				 errhint("Recharge a smaller amount.")));

	m.raw_amount = amount;
	m.final_amount = amount;
	m.amount = amount;
	m.has_member = has_member;
	m.member_id = member;
	m.idempotency_key = key;
	m.reason = method;
	m.tag = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	mps_movement_prepare(&card, &m);
	mps_json_start(&audit_after);
	mps_json_int(&audit_after, "amount", amount);
	mps_json_int(&audit_after, "balance_after", m.balance_after);
	mps_json_str(&audit_after, "payment_method", method);
	mps_movement_write(&actor, &card, &m, "tx.recharge", &audit_after);

	old = MemoryContextSwitchTo(fn_cxt);
	mps_txview_from(&card, &m, &view);
	MemoryContextSwitchTo(old);
	mps_spi_finish();
	return recharge_result(fcinfo, &view);
}
