/*
 * pass.c — pass cards (次卡, seed 002): purchase_pass. Review (rejection) is
 * in pass_review.c, redemption in pass_redeem.c, shared input in pass_input.c.
 *
 * A purchase sells one plan to one member, quantity times; nothing else is on
 * the order (纯净单): its order number is claimed in the merchant's order
 * registry, so it can be neither charged nor redeemed. The first purchase of
 * a plan creates the member's pass, active when the plan auto-activates,
 * otherwise suspended until head office approves it (activate_member_pass).
 * A later purchase tops the same pass up and never changes its status (seed
 * 002, B1); while the pass still awaits review the top-up joins that review.
 *
 * Locks: the card (when its balance pays), then the pass row FOR UPDATE, the
 * same order everywhere, so purchases, redemptions and reviews of one pass
 * run one after the other.
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
#include "idem.h"
#include "ids.h"
#include "merchant.h"
#include "pass.h"
#include "qr.h"
#include "ref_cache.h"
#include "spi_util.h"

static MpsPlan purchase_result = {
	"SELECT mps_internal.pass_purchase_result($1)", 1, {UUIDOID}
};

typedef struct PassPlanRow
{
	pg_uuid_t	id;
	char	   *code;
	int32		uses_per_purchase;
	int64		price;
	char		currency[4];
	bool		has_validity;
	int32		validity_days;
	bool		auto_activate;
	bool		is_active;
	int			exponent;
	int64		max_amount;
} PassPlanRow;

static MpsPlan plan_by_code = {
	"SELECT p.id, p.code, p.uses_per_purchase, p.price, p.currency::text, p.validity_days,"
	" p.auto_activate, p.is_active"
	" FROM mps.pass_plans p WHERE p.code = upper(btrim($1))",
	1, {TEXTOID}
};

static void
load_plan(const char *code, PassPlanRow *plan)
{
	Datum		v[1];
	MpsCurrency cur;

	if (code == NULL)
		pass_required("p_plan_code", "Pass the code of the pass plan to sell.");
	v[0] = CStringGetTextDatum(code);
	if (mps_exec(&plan_by_code, v, NULL, false, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_PLAN_NOT_FOUND),
				 errmsg("pass plan not found"),
				 errdetail("No pass plan has code \"%s\".", code),
				 errhint("List the plans on sale with list_pass_plans().")));
	mps_col_uuid(0, 1, &plan->id);
	plan->code = mps_col_text(0, 2);
	plan->uses_per_purchase = mps_col_int32(0, 3, 0);
	plan->price = mps_col_int64(0, 4, 0);
	strlcpy(plan->currency, mps_col_text(0, 5), sizeof(plan->currency));
	plan->has_validity = !mps_col_isnull(0, 6);
	plan->validity_days = mps_col_int32(0, 6, 0);
	plan->auto_activate = mps_col_bool(0, 7, true);
	plan->is_active = mps_col_bool(0, 8, false);
	mps_currency_of_row(plan->currency, &cur);
	plan->exponent = cur.exponent;
	plan->max_amount = cur.max_amount;
}

static MpsPlan member_status = {
	"SELECT status FROM mps.member_profiles WHERE id = $1", 1, {UUIDOID}
};

static void
require_member(const pg_uuid_t *member_id)
{
	Datum		v[1];
	char	   *status;

	v[0] = UUIDPGetDatum((pg_uuid_t *) member_id);
	status = mps_exec(&member_status, v, NULL, false, 1) ? mps_col_text(0, 1) : NULL;
	if (status == NULL || strcmp(status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MEMBER_NOT_FOUND),
				 errmsg("member not found"),
				 errdetail("Member %s %s.", mps_uuid_to_cstring(member_id),
						   status ? psprintf("is %s", status) : "does not exist"),
				 errhint("Check the member id.")));
}

/* The member pays from a card they are bound to (not as viewer), with their own code. */
static void
require_members_card(const MpsQr *qr, const pg_uuid_t *member_id, const char *role)
{
	if (role == NULL || strcmp(role, "viewer") == 0 ||
		(qr->has_holder && memcmp(&qr->holder_member_id, member_id, sizeof(pg_uuid_t)) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_CARD_NOT_MEMBERS),
				 errmsg("card is not the member's"),
				 errdetail("The code is for card %s, which member %s %s.",
						   mps_uuid_to_cstring(&qr->card_id), mps_uuid_to_cstring(member_id),
						   role == NULL ? "is not bound to" :
						   strcmp(role, "viewer") == 0 ? "may only view" : "holds, but the code is another member's"),
				 errhint("The pass's member pays with their own payment code.")));
}

typedef struct LivePass
{
	pg_uuid_t	id;
	char		status[16];
	int32		total_uses;
	bool		has_expiry;
	TimestampTz expires_at;
} LivePass;

static MpsPlan live_pass = {
	"SELECT id, status::text, total_uses, expires_at FROM mps.member_passes"
	" WHERE member_id = $1 AND plan_id = $2 AND status IN ('active', 'suspended') FOR UPDATE",
	2, {UUIDOID, UUIDOID}
};

static MpsPlan expire_pass = {
	"UPDATE mps.member_passes SET status = 'expired', on_hold = false, status_reason = 'expired',"
	" updated_at = $2 WHERE id = $1",
	2, {UUIDOID, TIMESTAMPTZOID}
};

static MpsPlan insert_pass = {
	"INSERT INTO mps.member_passes (id, member_id, plan_id, status, status_reason, activated_at,"
	" expires_at, created_at, updated_at)"
	" VALUES ($1, $2, $3, $4::mps.pass_status, $5, $6,"
	" CASE WHEN $6 IS NOT NULL AND $7 IS NOT NULL THEN $6 + $7 * interval '24 hours' END, $8, $8)"
	" ON CONFLICT (member_id, plan_id) WHERE status IN ('active', 'suspended') DO NOTHING",
	8, {UUIDOID, UUIDOID, UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID}
};

static bool
lock_live_pass(const pg_uuid_t *member_id, const PassPlanRow *plan, TimestampTz now, LivePass *p)
{
	Datum		v[2];

	v[0] = UUIDPGetDatum((pg_uuid_t *) member_id);
	v[1] = UUIDPGetDatum((pg_uuid_t *) &plan->id);
	if (mps_exec(&live_pass, v, NULL, false, 1) == 0)
		return false;
	mps_col_uuid(0, 1, &p->id);
	strlcpy(p->status, mps_col_text(0, 2), sizeof(p->status));
	p->total_uses = mps_col_int32(0, 3, 0);
	p->has_expiry = !mps_col_isnull(0, 4);
	p->expires_at = mps_col_timestamptz(0, 4, 0);
	if (p->has_expiry && p->expires_at <= now)
	{
		/* Its uses are gone; what the expiry job would do, and this purchase starts anew. */
		v[0] = UUIDPGetDatum(&p->id);
		v[1] = TimestampTzGetDatum(now);
		mps_exec(&expire_pass, v, NULL, false, 0);
		return false;
	}
	return true;
}

/*
 * The member's live pass of the plan, locked; created when there is none
 * (first purchase). A concurrent first purchase of the same pair makes the
 * insert wait and then do nothing; the pass it made is then locked instead.
 */
static bool
lock_or_create_pass(const pg_uuid_t *member_id, const PassPlanRow *plan, TimestampTz now, LivePass *p)
{
	int			attempt;

	for (attempt = 0; attempt < 3; attempt++)
	{
		Datum		v[8];
		char		n[8];
		pg_uuid_t	id;

		if (lock_live_pass(member_id, plan, now, p))
			return false;
		mps_uuid7(now, &id);
		memset(n, ' ', sizeof(n));
		v[0] = UUIDPGetDatum(&id);
		v[1] = UUIDPGetDatum((pg_uuid_t *) member_id);
		v[2] = UUIDPGetDatum((pg_uuid_t *) &plan->id);
		v[3] = CStringGetTextDatum(plan->auto_activate ? "active" : "suspended");
		if (plan->auto_activate)
		{
			n[4] = 'n';
			v[5] = TimestampTzGetDatum(now);
		}
		else
		{
			v[4] = CStringGetTextDatum("awaiting review");
			n[5] = 'n';
		}
		v[6] = Int32GetDatum(plan->validity_days);
		if (!plan->has_validity)
			n[6] = 'n';
		v[7] = TimestampTzGetDatum(now);
		if (mps_exec(&insert_pass, v, n, false, 0) == 1)
		{
			if (!lock_live_pass(member_id, plan, now, p))
				elog(ERROR, "mps: new pass not found");
			return true;
		}
	}
	elog(ERROR, "mps: could not create or find the member's pass");
	return false;
}

static MpsPlan pending_orders = {
	"SELECT EXISTS (SELECT 1 FROM mps.pass_topup_orders WHERE pass_id = $1 AND review_state = 'pending')",
	1, {UUIDOID}
};

static MpsPlan add_uses = {
	"UPDATE mps.member_passes SET total_uses = total_uses + $2, remaining_uses = remaining_uses + $2,"
	" expires_at = CASE WHEN $3 AND expires_at IS NOT NULL AND $4::integer IS NOT NULL"
	"   THEN greatest(expires_at, $5 + $4 * interval '24 hours') ELSE expires_at END,"
	" updated_at = $5 WHERE id = $1 RETURNING remaining_uses, status::text, expires_at",
	5, {UUIDOID, INT4OID, BOOLOID, INT4OID, TIMESTAMPTZOID}
};

static MpsPlan insert_order = {
	"INSERT INTO mps.pass_topup_orders (id, created_at, pass_id, member_id, plan_id, merchant_id,"
	" first_purchase, quantity, uses, unit_price, total, currency, payments, card_id, card_amount,"
	" card_tx_id, card_tx_at, card_balance_after, review_state, remaining_after, pass_status_after,"
	" expires_after, order_no, idempotency_key, actor_user_id)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14, $15, $16, $17, $18,"
	" $19::mps.pass_review_state, $20, $21::mps.pass_status, $22, $23, $24, $25)",
	25, {UUIDOID, TIMESTAMPTZOID, UUIDOID, UUIDOID, UUIDOID, UUIDOID,
		BOOLOID, INT4OID, INT4OID, INT8OID, INT8OID, TEXTOID, TEXTOID, UUIDOID, INT8OID,
		UUIDOID, TIMESTAMPTZOID, INT8OID,
	TEXTOID, INT4OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, UUIDOID}
};

#define MAX_PASS_USES 1000000

/*
 * purchase_pass(p_merchant_code, p_plan_code, p_member_id, p_quantity,
 *               p_payments, p_idempotency_key, p_order_no)
 */
PG_FUNCTION_INFO_V1(mps_purchase_pass);
Datum
mps_purchase_pass(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	MpsMerchant merchant;
	PassPlanRow plan;
	PassPayments pay;
	char	   *merchant_code = pass_arg_text(fcinfo, 0);
	char	   *plan_code = pass_arg_text(fcinfo, 1);
	pg_uuid_t  *member_id;
	int32		quantity;
	Jsonb	   *payments = PG_ARGISNULL(4) ? NULL : PG_GETARG_JSONB_P(4);
	char	   *key = pass_arg_text(fcinfo, 5);
	char	   *order_no = pass_arg_text(fcinfo, 6);
	int64		total;
	int64		card_amount;
	int32		uses;
	MpsRequestHash h;
	MpsMovement m;
	pg_uuid_t	order_id;
	TimestampTz at;
	pg_uuid_t	prior;
	TimestampTz prior_at;
	MpsQr		qr;
	MpsCard		card;
	LivePass	pass;
	bool		first;
	const char *review;
	int32		remaining;
	char	   *status;
	bool		has_expiry;
	TimestampTz expires_at;
	Datum		v[25];
	char		n[25];
	MpsJson        buf;
	Datum		result;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "purchase_pass");
	if (PG_ARGISNULL(2))
		pass_required("p_member_id", "Pass the id of the member who buys the pass.");
	member_id = PG_GETARG_UUID_P(2);
	if (PG_ARGISNULL(3))
		pass_required("p_quantity", "Pass how many times the plan is bought (1 to 100).");
	quantity = PG_GETARG_INT32(3);
	if (quantity < 1 || quantity > 100)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_INVALID),
				 errmsg("invalid quantity"),
				 errdetail("p_quantity = %d.", quantity),
				 errhint("Buy a plan 1 to 100 times per purchase.")));
	mps_idem_check_key(key);
	mps_order_check(order_no);

	mps_spi_connect();
	mps_merchant_for_call(&actor, merchant_code, "purchase_pass", &merchant);
	load_plan(plan_code, &plan);
	if (!plan.is_active)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_PLAN_INACTIVE),
				 errmsg("pass plan is not on sale"),
				 errdetail("Plan %s is inactive.", plan.code),
				 errhint("The platform admin can put it on sale with update_pass_plan().")));
	if (strcmp(plan.currency, merchant.currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_CURRENCY_MISMATCH),
				 errmsg("pass plan and merchant currencies differ"),
				 errdetail("Plan %s is priced in %s; merchant %s takes %s.",
						   plan.code, plan.currency, merchant.code, merchant.currency),
				 errhint("Sell plans priced in %s at this merchant.", merchant.currency)));
	require_member(member_id);
	total = plan.price * quantity;	/* price <= max_amount, quantity <= 100 */
	uses = plan.uses_per_purchase * quantity;
	if (total > plan.max_amount)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_AMOUNT_INVALID),
				 errmsg("invalid amount for the purchase total"),
				 errdetail("%d x %s %s is above the limit of %s %s.", quantity,
						   pass_major_text(plan.price, plan.exponent), plan.currency,
						   pass_major_text(plan.max_amount, plan.exponent), plan.currency),
				 errhint("Buy fewer at a time.")));

	/* Payment lines: by method, adding up to the price. */
	if (payments == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_PAYMENT_INVALID),
				 errmsg("payment lines are required"),
				 errdetail("p_payments is missing; the purchase costs %s %s.",
						   pass_major_text(total, plan.exponent), plan.currency),
				 errhint(PASS_PAY_HINT)));
	pass_parse_payments(payments, plan.exponent, plan.max_amount, plan.currency, &pay);
	if (pay.total != total)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_PAYMENT_MISMATCH),
				 errmsg("payment lines do not add up to the price"),
				 errdetail("The lines add up to %s %s; %d x %s costs %s %s.",
						   pass_major_text(pay.total, plan.exponent), plan.currency, quantity, plan.code,
						   pass_major_text(total, plan.exponent), plan.currency),
				 errhint("Pay exactly the price, split across methods as the customer paid.")));
	card_amount = pay.card >= 0 ? pay.line[pay.card].amount : 0;

	/* The key: a retry with the same parameters gets the first result. */
	mps_movement_init(&m, "pass_purchase");
	at = m.created_at;
	mps_uuid7(at, &order_id);
	mps_reqhash_init(&h, "pass_purchase");
	mps_reqhash_uuid(&h, &merchant.id);
	mps_reqhash_str(&h, plan.code);
	mps_reqhash_uuid(&h, member_id);
	mps_reqhash_str(&h, psprintf("%d", quantity));
	pass_hash_payments(&h, &pay);
	mps_reqhash_str(&h, order_no);
	mps_reqhash_final(&h);
	if (!mps_idem_claim(&merchant.id, key, "pass_purchase", &h, &order_id, at, &prior, &prior_at))
	{
		result = pass_result_row(&purchase_result, &prior);
		mps_spi_finish();
		PG_RETURN_DATUM(result);
	}
	/* 纯净单: the order carries this purchase only; no charge or redemption can use it. */
	if (order_no)
		mps_order_claim(&merchant.id, order_no, &order_id, at);

	/* Card balance: the charge's path (code check before, then the card lock). */
	if (card_amount > 0)
	{
		char	   *role;
		bool		code_used;
		bool		code_revoked;
		ItemPointerData code_tid;

		mps_qr_verify(pay.line[pay.card].qr, &qr);
		mps_card_lock_for_payment(&qr.card_id, member_id, qr.id, &card, &role, &code_used,
								  &code_revoked, &code_tid);
		m.qr_tid = code_tid;
		mps_card_require_usable(&card);
		if (strcmp(card.currency, plan.currency) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_CURRENCY_MISMATCH),
					 errmsg("card and merchant currencies differ"),
					 errdetail("The card holds %s; plan %s costs %s.", card.currency, plan.code, plan.currency),
					 errhint("Pay with a card in %s.", plan.currency)));
		require_members_card(&qr, member_id, role);
		if (card.balance < card_amount)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_INSUFFICIENT_BALANCE),
					 errmsg("insufficient balance"),
					 errdetail("The card holds %s %s; the purchase takes %s %s from it.",
							   pass_major_text(card.balance, card.exponent), card.currency,
							   pass_major_text(card_amount, card.exponent), card.currency),
					 errhint("Recharge the card or pay the difference another way.")));
		mps_qr_require_live(&qr, code_used, code_revoked);
	}

	/* The pass, after the card: the lock order of every pass RPC. */
	first = lock_or_create_pass(member_id, &plan, at, &pass);
	if (pass.total_uses > MAX_PASS_USES - uses)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_INVALID),
				 errmsg("pass would hold too many uses"),
				 errdetail("The pass was sold %d uses; this purchase adds %d; the limit is %d.",
						   pass.total_uses, uses, MAX_PASS_USES),
				 errhint("Buy fewer at a time.")));
	if (first)
		review = plan.auto_activate ? "auto" : "pending";
	else
	{
		/* B1: a top-up keeps the status; it is reviewed only with a pass still under review. */
		v[0] = UUIDPGetDatum(&pass.id);
		mps_exec(&pending_orders, v, NULL, false, 1);
		review = mps_col_bool(0, 1, false) ? "pending" : "auto";
	}
	memset(n, ' ', sizeof(n));
	v[0] = UUIDPGetDatum(&pass.id);
	v[1] = Int32GetDatum(uses);
	v[2] = BoolGetDatum(!first);
	v[3] = Int32GetDatum(plan.validity_days);
	if (!plan.has_validity)
		n[3] = 'n';
	v[4] = TimestampTzGetDatum(at);
	mps_exec(&add_uses, v, n, false, 1);
	remaining = mps_col_int32(0, 1, 0);
	status = mps_col_text(0, 2);
	has_expiry = !mps_col_isnull(0, 3);
	expires_at = mps_col_timestamptz(0, 3, 0);

	if (card_amount > 0)
	{
		m.raw_amount = card_amount;
		m.final_amount = card_amount;
		m.amount = -card_amount;
		m.has_merchant = true;
		m.merchant_id = merchant.id;
		m.has_member = true;
		m.member_id = *member_id;
		m.qr_code_id = qr.id;
		m.consume_code = true;
		m.idempotency_key = key;
		m.order_no = order_no;
		m.reason = psprintf("pass %s x %d", plan.code, quantity);
		mps_json_start(&buf);
		mps_json_str(&buf, "pass_order_id", mps_uuid_to_cstring(&order_id));
		mps_json_str(&buf, "pass_id", mps_uuid_to_cstring(&pass.id));
		mps_json_str(&buf, "plan", plan.code);
		m.details_json = mps_json_finish(&buf);
		m.details = mps_json_jsonb(&buf);
		mps_movement_prepare(&card, &m);
		mps_json_start(&buf);
		mps_json_str(&buf, "merchant", merchant.code);
		mps_json_str(&buf, "pass_order_id", mps_uuid_to_cstring(&order_id));
		mps_json_int(&buf, "final_amount", card_amount);
		mps_json_int(&buf, "balance_after", m.balance_after);
		if (!mps_movement_write(&actor, &card, &m, "tx.pass_purchase", &buf))
			mps_qr_raise_taken(&qr);
	}

	memset(n, ' ', sizeof(n));
	v[0] = UUIDPGetDatum(&order_id);
	v[1] = TimestampTzGetDatum(at);
	v[2] = UUIDPGetDatum(&pass.id);
	v[3] = UUIDPGetDatum(member_id);
	v[4] = UUIDPGetDatum(&plan.id);
	v[5] = UUIDPGetDatum(&merchant.id);
	v[6] = BoolGetDatum(first);
	v[7] = Int32GetDatum(quantity);
	v[8] = Int32GetDatum(uses);
	v[9] = Int64GetDatum(plan.price);
	v[10] = Int64GetDatum(total);
	v[11] = CStringGetTextDatum(plan.currency);
	v[12] = CStringGetTextDatum(pay.json);
	if (card_amount > 0)
	{
		v[13] = UUIDPGetDatum(&card.id);
		v[15] = UUIDPGetDatum(&m.tx_id);
		v[16] = TimestampTzGetDatum(m.created_at);
		v[17] = Int64GetDatum(m.balance_after);
	}
	else
		n[13] = n[15] = n[16] = n[17] = 'n';
	v[14] = Int64GetDatum(card_amount);
	v[18] = CStringGetTextDatum(review);
	v[19] = Int32GetDatum(remaining);
	v[20] = CStringGetTextDatum(status);
	v[21] = TimestampTzGetDatum(expires_at);
	if (!has_expiry)
		n[21] = 'n';
	if (order_no)
		v[22] = CStringGetTextDatum(order_no);
	else
		n[22] = 'n';
	v[23] = CStringGetTextDatum(key);
	if (actor.has_user)
		v[24] = UUIDPGetDatum(&actor.user_id);
	else
		n[24] = 'n';
	mps_exec(&insert_order, v, n, false, 0);

	mps_json_start(&buf);
	mps_json_str(&buf, "order_id", mps_uuid_to_cstring(&order_id));
	mps_json_str(&buf, "plan", plan.code);
	mps_json_str(&buf, "merchant", merchant.code);
	mps_json_bool(&buf, "first_purchase", first);
	mps_json_int(&buf, "uses_added", uses);
	mps_json_int(&buf, "remaining_uses", remaining);
	mps_json_str(&buf, "status", status);
	mps_json_str(&buf, "review_state", review);
	mps_json_int(&buf, "total", total);
	mps_json_raw(&buf, "payments", pay.json);
	mps_audit(&actor, "pass.purchase", "member_pass", mps_uuid_to_cstring(&pass.id), NULL,
			  mps_json_finish(&buf), key);

	result = pass_result_row(&purchase_result, &order_id);
	mps_spi_finish();
	PG_RETURN_DATUM(result);
}
