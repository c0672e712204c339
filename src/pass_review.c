/*
 * pass_review.c — reject_pass_purchase: head office turns down a purchase
 * awaiting review (approval is SQL: activate_member_pass).
 *
 * The purchase's uses leave the pass; what it took from the member's card
 * balance goes back to that card as an adjustment movement (refund proper is
 * for payments), under the card lock, then the pass lock — the order every
 * pass RPC takes them in. A pass left with no standing purchase is revoked.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "actor.h"
#include "audit.h"
#include "card.h"
#include "errors.h"
#include "pass.h"
#include "row_read.h"
#include "row_write.h"
#include "spi_util.h"

static MpsPlan order_view = {
	"SELECT x FROM mps_internal.pass_order_views(ARRAY[$1]::uuid[]) x", 1, {UUIDOID}
};

static MpsPlan order_peek = {
	"SELECT pass_id, card_id, card_amount FROM mps.pass_topup_orders WHERE id = $1", 1, {UUIDOID}
};

static MpsPlan pass_lock = {
	"SELECT status::text FROM mps.member_passes WHERE id = $1 FOR UPDATE", 1, {UUIDOID}
};

static MpsPlan order_lock = {
	"SELECT review_state::text, uses, card_amount, card_tx_id, card_tx_at, merchant_id, member_id"
	" FROM mps.pass_topup_orders WHERE id = $1 FOR UPDATE",
	1, {UUIDOID}
};

static MpsPlan remove_uses = {
	"UPDATE mps.member_passes SET total_uses = total_uses - $2, remaining_uses = remaining_uses - $2,"
	" updated_at = $3 WHERE id = $1 AND remaining_uses >= $2",
	3, {UUIDOID, INT4OID, TIMESTAMPTZOID}
};

/* A rejected purchase's payment row: refunded in full. */
static MpsTable purchase_refund_state = {
	"mps", "transactions", 3, {
		{"refunded_amount", INT8OID, MPS_COL_DATUM},
		{"status", InvalidOid, MPS_COL_ENUM},
		{"final_amount", INT8OID, MPS_COL_DATUM},
	}
};
static MpsRowKey purchase_by_key = {&purchase_refund_state, 2, {"id", "created_at"}};

static void
mark_purchase_refunded(const pg_uuid_t *tx_id, TimestampTz at)
{
	Datum		keys[2];
	Datum		v[3];
	bool		n[3];
	bool		set[3] = {true, true, false};
	ItemPointerData tid;
	MpsRowTarget target = {&purchase_refund_state, at};
	MpsRowWrite w;
	bool		isnull;

	keys[0] = UUIDPGetDatum((pg_uuid_t *) tx_id);
	keys[1] = TimestampTzGetDatum(at);
	if (!mps_row_read(&purchase_by_key, at, keys, false, v, n, &tid))
		return;
	mps_rows_begin(&w, 1, &target);
	if (mps_row_lock(&w, 0, &tid))
	{
		v[0] = mps_row_value(&w, 0, 2, &isnull);
		v[1] = CStringGetDatum("refunded");
		mps_row_update(&w, 0, &tid, set, v, NULL);
	}
	mps_rows_end(&w);
}

static MpsPlan reject_order = {
	"UPDATE mps.pass_topup_orders SET review_state = 'rejected', reviewed_at = $2, reviewed_by = $3,"
	" review_note = $4, refund_tx_id = $5, refund_tx_at = $6 WHERE id = $1",
	6, {UUIDOID, TIMESTAMPTZOID, UUIDOID, TEXTOID, UUIDOID, TIMESTAMPTZOID}
};

static MpsPlan after_review = {
	"SELECT mps_internal.pass_after_review($1)::text", 1, {UUIDOID}
};

/* reject_pass_purchase(p_order_id, p_reason): the card balance part goes back to the card. */
PG_FUNCTION_INFO_V1(mps_reject_pass_purchase);
Datum
mps_reject_pass_purchase(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	pg_uuid_t  *order_id;
	char	   *reason = pass_arg_text(fcinfo, 1);
	pg_uuid_t	pass_id;
	pg_uuid_t	card_id;
	pg_uuid_t	merchant_id;
	pg_uuid_t	member_id;
	pg_uuid_t	purchase_tx;
	TimestampTz purchase_at;
	int64		card_amount;
	int32		uses;
	char	   *pass_status;
	char	   *state;
	char	   *status_after;
	MpsCard		card;
	MpsMovement m;
	TimestampTz now;
	Datum		v[6];
	char		n[6];
	MpsJson        buf;
	Datum		result;

	mps_actor_resolve(&actor);
	mps_actor_require_admin(&actor, "reject_pass_purchase");
	if (PG_ARGISNULL(0))
		pass_required("p_order_id", "Pass the order_id of the pending purchase.");
	order_id = PG_GETARG_UUID_P(0);
	if (reason && strlen(reason) > 500)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_INVALID),
				 errmsg("reason is too long"),
				 errdetail("p_reason has %zu bytes.", strlen(reason)),
				 errhint("Keep the reason under 500 bytes.")));

	mps_spi_connect();
	v[0] = UUIDPGetDatum(order_id);
	if (mps_exec(&order_peek, v, NULL, false, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_ORDER_NOT_FOUND),
				 errmsg("pass purchase not found"),
				 errdetail("No pass purchase %s.", mps_uuid_to_cstring(order_id)),
				 errhint("List pending purchases with list_pass_orders().")));
	mps_col_uuid(0, 1, &pass_id);
	mps_col_uuid(0, 2, &card_id);
	card_amount = mps_col_int64(0, 3, 0);

	/* Card, then pass, then the order as it is now. */
	if (card_amount > 0)
		mps_card_lock_and_load(&card_id, &card);
	v[0] = UUIDPGetDatum(&pass_id);
	mps_exec(&pass_lock, v, NULL, false, 1);
	pass_status = mps_col_text(0, 1);
	v[0] = UUIDPGetDatum(order_id);
	mps_exec(&order_lock, v, NULL, false, 1);
	state = mps_col_text(0, 1);
	uses = mps_col_int32(0, 2, 0);
	card_amount = mps_col_int64(0, 3, 0);
	mps_col_uuid(0, 4, &purchase_tx);
	purchase_at = mps_col_timestamptz(0, 5, 0);
	mps_col_uuid(0, 6, &merchant_id);
	mps_col_uuid(0, 7, &member_id);
	if (strcmp(state, "pending") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_NOT_PENDING),
				 errmsg("pass purchase is not awaiting review"),
				 errdetail("Purchase %s is %s.", mps_uuid_to_cstring(order_id), state),
				 errhint("Only pending purchases are approved or rejected.")));

	now = GetCurrentTimestamp();
	v[0] = UUIDPGetDatum(&pass_id);
	v[1] = Int32GetDatum(uses);
	v[2] = TimestampTzGetDatum(now);
	if (mps_exec(&remove_uses, v, NULL, false, 0) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_STATUS_CHANGE),
				 errmsg("invalid pass status change"),
				 errdetail("The uses of purchase %s have been redeemed already.", mps_uuid_to_cstring(order_id)),
				 errhint("A purchase whose uses were used cannot be rejected.")));

	memset(n, ' ', sizeof(n));
	if (card_amount > 0)
	{
		/* Like a refund: back to a frozen card too, never to a closed one. */
		if (strcmp(card.status, "closed") == 0)
			mps_card_require_usable(&card);
		mps_movement_init(&m, "adjustment");
		m.raw_amount = card_amount;
		m.final_amount = card_amount;
		m.amount = card_amount;
		m.has_merchant = true;
		m.merchant_id = merchant_id;
		m.has_member = true;
		m.member_id = member_id;
		m.has_original = true;
		m.original_tx_id = purchase_tx;
		m.reason = reason ? psprintf("pass purchase rejected: %s", reason) : "pass purchase rejected";
		mps_json_start(&buf);
		mps_json_str(&buf, "pass_order_id", mps_uuid_to_cstring(order_id));
		mps_json_str(&buf, "refund_of", "pass_purchase");
		m.details_json = mps_json_finish(&buf);
		m.details = mps_json_jsonb(&buf);
		mark_purchase_refunded(&purchase_tx, purchase_at);
		mps_movement_prepare(&card, &m);
		mps_json_start(&buf);
		mps_json_str(&buf, "original_tx_id", mps_uuid_to_cstring(&purchase_tx));
		mps_json_int(&buf, "amount", card_amount);
		mps_json_int(&buf, "balance_after", m.balance_after);
		mps_movement_write(&actor, &card, &m, "tx.pass_purchase_refund", &buf);
		v[4] = UUIDPGetDatum(&m.tx_id);
		v[5] = TimestampTzGetDatum(m.created_at);
	}
	else
		n[4] = n[5] = 'n';
	v[0] = UUIDPGetDatum(order_id);
	v[1] = TimestampTzGetDatum(now);
	if (actor.has_user)
		v[2] = UUIDPGetDatum(&actor.user_id);
	else
		n[2] = 'n';
	if (reason)
		v[3] = CStringGetTextDatum(reason);
	else
		n[3] = 'n';
	mps_exec(&reject_order, v, n, false, 0);

	v[0] = UUIDPGetDatum(&pass_id);
	mps_exec(&after_review, v, NULL, false, 1);
	status_after = mps_col_text(0, 1);

	mps_json_start(&buf);
	mps_json_str(&buf, "order_id", mps_uuid_to_cstring(order_id));
	mps_json_int(&buf, "uses_removed", uses);
	mps_json_int(&buf, "card_refund", card_amount);
	mps_json_str(&buf, "status", status_after);
	mps_json_str(&buf, "reason", reason);
	{
		MpsJson        before;

		mps_json_start(&before);
		mps_json_str(&before, "status", pass_status);
		mps_audit(&actor, "pass.purchase.reject", "member_pass", mps_uuid_to_cstring(&pass_id),
				  mps_json_finish(&before), mps_json_finish(&buf), NULL);
	}

	result = pass_result_row(&order_view, order_id);
	mps_spi_finish();
	PG_RETURN_DATUM(result);
}
