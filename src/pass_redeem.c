/*
 * pass_redeem.c — redeem_pass: a member's pass uses spent on one order (核销).
 *
 * Seed 002's rules: one pass per order and nothing else on it (一单一卡、不混单),
 * so an order number is claimed in the merchant's order registry and can
 * carry no other redemption, charge or purchase. Only an active, unexpired
 * pass redeems. Each covered item is one use. A zero-amount redemption spends
 * uses only: no order needed, no invoice, any (zero) payment lines. A
 * redemption with a surcharge (extra_total > 0) needs its order, is paid in
 * cash or by bank card only (any third-party amount is refused), and makes an
 * invoice due. The result carries the print job rendered from the active
 * PASS_REDEMPTION_SLIP template, or says that none was produced.
 *
 * The member must be at the till: a merchant user redeems only with her own
 * live payment code (p_qr_plain), which the redemption uses up like a charge
 * does, and only a pass of the code's holder. The platform admin (back
 * office) may redeem without one.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "actor.h"
#include "audit.h"
#include "errors.h"
#include "idem.h"
#include "ids.h"
#include "merchant.h"
#include "money.h"
#include "pass.h"
#include "qr.h"
#include "spi_util.h"

#define LINE_HINT "Pass p_lines as [{\"product\": \"MILK_TEA\", \"category\": \"TEA\", \"quantity\": 1, \"extra\": 0.00}, ...]: each item one use, \"extra\" its surcharge."

typedef struct RedeemLine
{
	char	   *product;
	char	   *category;
	int32		quantity;
	int64		extra;
} RedeemLine;

/* quantity: a whole number 1..1000, default 1 (numeric_int4 would round 1.5). */
static int32
line_quantity(const PassJsonField *f, int i)
{
	char	   *s;
	int			k;

	if (!f->present)
		return 1;
	if (f->v.type == jbvNumeric)
	{
		s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(f->v.val.numeric)));
		for (k = 0; s[k] && isdigit((unsigned char) s[k]); k++)
			;
		if (s[k] == '\0' && k >= 1 && k <= 4 && atoi(s) >= 1 && atoi(s) <= 1000)
			return atoi(s);
	}
	ereport(ERROR,
			(errcode(ERRCODE_MPS_PASS_LINES_INVALID),
			 errmsg("invalid quantity in p_lines[%d]", i),
			 errdetail("p_lines[%d].quantity must be a whole number from 1 to 1000.", i),
			 errhint(LINE_HINT)));
	return 0;
}

static int
parse_lines(Jsonb *jb, int exponent, int64 max_amount, const char *currency,
			RedeemLine *lines, int32 *uses, int64 *extra_total)
{
	PassJsonField f[4] = {{"product"}, {"category"}, {"quantity"}, {"extra"}};
	int			n;
	int			i;

	*uses = 0;
	*extra_total = 0;
	if (jb == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_LINES_INVALID),
				 errmsg("redemption lines are required"),
				 errdetail("p_lines is missing."),
				 errhint(LINE_HINT)));
	n = pass_json_count(jb, "p_lines", PASS_MAX_LINES, ERRCODE_MPS_PASS_LINES_INVALID, LINE_HINT);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_LINES_INVALID),
				 errmsg("redemption lines are required"),
				 errdetail("p_lines is empty."),
				 errhint(LINE_HINT)));
	for (i = 0; i < n; i++)
	{
		RedeemLine *l = &lines[i];

		pass_json_fields(jb, i, "p_lines", f, 4, ERRCODE_MPS_PASS_LINES_INVALID, LINE_HINT);
		l->product = pass_json_string(&f[0], "p_lines", i, 64, ERRCODE_MPS_PASS_LINES_INVALID, LINE_HINT);
		l->category = pass_json_string(&f[1], "p_lines", i, 64, ERRCODE_MPS_PASS_LINES_INVALID, LINE_HINT);
		if (l->product == NULL && l->category == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PASS_LINES_INVALID),
					 errmsg("p_lines[%d] names no product and no category", i),
					 errdetail("A line needs \"product\", \"category\" or both."),
					 errhint(LINE_HINT)));
		l->quantity = line_quantity(&f[2], i);
		l->extra = f[3].present
			? pass_json_amount(&f[3], "p_lines", i, exponent, max_amount, currency,
							   ERRCODE_MPS_PASS_LINES_INVALID, LINE_HINT)
			: 0;
		*uses += l->quantity;
		*extra_total += l->extra;
	}
	if (*extra_total > max_amount)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_AMOUNT_INVALID),
				 errmsg("invalid amount for the surcharge"),
				 errdetail("The lines' extras add up to %s %s, above the limit of %s.",
						   pass_major_text(*extra_total, exponent), currency,
						   pass_major_text(max_amount, exponent)),
				 errhint("Split the order.")));
	return n;
}

static bool
array_has(ArrayType *arr, const char *s)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (s == NULL)
		return false;
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), s) == 0)
			return true;
	return false;
}

static MpsPlan claim_order = {
	"INSERT INTO mps.merchant_order_registry (merchant_id, order_no, tx_id, tx_created_at)"
	" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
	4, {UUIDOID, TEXTOID, UUIDOID, TIMESTAMPTZOID}
};

static MpsPlan order_owner = {
	"SELECT pass_id = $3 FROM mps.pass_redemption_batches WHERE merchant_id = $1 AND order_no = $2",
	3, {UUIDOID, TEXTOID, UUIDOID}
};

/* 一单一卡: the order is this redemption's alone (a concurrent claim waits, then loses). */
static void
claim_redemption_order(const MpsMerchant *merchant, const char *order_no, const pg_uuid_t *pass_id,
					   const pg_uuid_t *batch_id, TimestampTz at)
{
	Datum		v[4];
	const char *by;

	v[0] = UUIDPGetDatum((pg_uuid_t *) &merchant->id);
	v[1] = CStringGetTextDatum(order_no);
	v[2] = UUIDPGetDatum((pg_uuid_t *) batch_id);
	v[3] = TimestampTzGetDatum(at);
	if (mps_exec(&claim_order, v, NULL, false, 0) == 1)
		return;
	v[2] = UUIDPGetDatum((pg_uuid_t *) pass_id);
	if (mps_exec(&order_owner, v, NULL, false, 1) == 0)
		by = "a payment or a pass purchase";
	else
		by = mps_col_bool(0, 1, false) ? "an earlier redemption of this pass" : "another pass";
	ereport(ERROR,
			(errcode(ERRCODE_MPS_PASS_ORDER_USED),
			 errmsg("order number already used"),
			 errdetail("Order \"%s\" of merchant %s was used by %s.", order_no, merchant->code, by),
			 errhint("One order redeems one pass once and holds nothing else; retry a failed call with its original idempotency key.")));
}

static MpsPlan pass_for_update = {
	"SELECT m.member_id, m.status::text, m.on_hold, m.remaining_uses, m.expires_at,"
	" p.code, p.name, p.currency::text, p.products, p.categories, m.status_reason"
	" FROM mps.member_passes m JOIN mps.pass_plans p ON p.id = m.plan_id"
	" WHERE m.id = $1 FOR UPDATE OF m",
	1, {UUIDOID}
};

static MpsPlan spend_uses = {
	"UPDATE mps.member_passes SET used_uses = used_uses + $2, remaining_uses = remaining_uses - $2,"
	" updated_at = $3 WHERE id = $1",
	3, {UUIDOID, INT4OID, TIMESTAMPTZOID}
};

static MpsPlan insert_batch = {
	"INSERT INTO mps.pass_redemption_batches (id, created_at, pass_id, member_id, merchant_id, order_no,"
	" uses, remaining_after, currency, extra_total, payments, invoice_due, print_job, idempotency_key,"
	" actor_user_id)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12,"
	" mps_internal.pass_slip($13::jsonb || jsonb_build_object('merchant_name',"
	"   (SELECT mc.name FROM mps.merchants mc WHERE mc.id = $5)), $2), $14, $15)",
	15, {UUIDOID, TIMESTAMPTZOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID,
		INT4OID, INT4OID, TEXTOID, INT8OID, TEXTOID, BOOLOID,
	TEXTOID, TEXTOID, UUIDOID}
};

static MpsPlan insert_line = {
	"INSERT INTO mps.pass_redemptions (batch_id, line_no, product, category, quantity, extra_amount)"
	" VALUES ($1, $2, $3, $4, $5, $6)",
	6, {UUIDOID, INT4OID, TEXTOID, TEXTOID, INT4OID, INT8OID}
};

static MpsPlan redemption_result = {
	"SELECT mps_internal.pass_redemption_result($1)", 1, {UUIDOID}
};

static MpsPlan pass_pending = {
	"SELECT EXISTS (SELECT 1 FROM mps.pass_topup_orders WHERE pass_id = $1 AND review_state = 'pending')",
	1, {UUIDOID}
};


/* Only an active, unexpired pass redeems (B1: suspended is "not usable", whatever the reason). */
static void
require_redeemable(const pg_uuid_t *pass_id, const char *status, bool on_hold, const char *reason,
				   bool has_expiry, TimestampTz expires_at)
{
	char	   *id = mps_uuid_to_cstring(pass_id);
	Datum		v[1];

	if (strcmp(status, "revoked") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_REVOKED),
				 errmsg("pass is revoked"),
				 errdetail("Pass %s was revoked (%s).", id, reason ? reason : "no reason given"),
				 errhint("A revoked pass cannot be used.")));
	if (strcmp(status, "expired") == 0 ||
		(has_expiry && expires_at <= GetCurrentTransactionStartTimestamp()))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_EXPIRED),
				 errmsg("pass has expired"),
				 errdetail("Pass %s expired at %s.", id, timestamptz_to_str(expires_at)),
				 errhint("An expired pass cannot be used; the member can buy the plan again.")));
	if (strcmp(status, "suspended") == 0)
	{
		bool		pending;

		v[0] = UUIDPGetDatum((pg_uuid_t *) pass_id);
		mps_exec(&pass_pending, v, NULL, false, 1);
		pending = mps_col_bool(0, 1, false);
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_SUSPENDED),
				 errmsg("pass is suspended"),
				 errdetail("Pass %s is %s.", id,
						   on_hold ? psprintf("on hold (%s)", reason ? reason : "no reason given")
						   : pending ? "awaiting head-office review of its purchase" : "suspended"),
				 errhint(on_hold ? "The platform admin lifts a hold with resume_member_pass()."
						 : "The platform admin approves the purchase with activate_member_pass().")));
	}
}

/* redeem_pass(p_merchant_code, p_pass_id, p_lines, p_idempotency_key, p_order_no, p_payments, p_qr_plain) */
PG_FUNCTION_INFO_V1(mps_redeem_pass);
Datum
mps_redeem_pass(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	MpsMerchant merchant;
	PassPayments pay;
	RedeemLine	lines[PASS_MAX_LINES];
	char	   *merchant_code = pass_arg_text(fcinfo, 0);
	pg_uuid_t  *pass_id;
	Jsonb	   *jlines = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	char	   *key = pass_arg_text(fcinfo, 3);
	char	   *order_no = pass_arg_text(fcinfo, 4);
	Jsonb	   *payments = PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5);
	char	   *qr_plain = pass_arg_text(fcinfo, 6);
	char		lookup[MPS_QR_LOOKUP_LEN + 1];
	char		secret[MPS_QR_SECRET_LEN + 1];
	MpsQr		qr;
	int			nlines;
	int32		uses;
	int64		extra_total;
	pg_uuid_t	batch_id;
	TimestampTz at;
	pg_uuid_t	prior;
	TimestampTz prior_at;
	MpsRequestHash h;
	pg_uuid_t	member_id;
	char	   *status;
	bool		on_hold;
	int32		remaining;
	bool		has_expiry;
	TimestampTz expires_at;
	char	   *plan_code;
	char	   *plan_name;
	char	   *plan_currency;
	char	   *status_reason;
	ArrayType  *products;
	ArrayType  *categories;
	bool		isnull;
	bool		found;
	Datum		v[15];
	char		n[15];
	MpsJson        vars;
	StringInfoData summary;
	Datum		result;
	int			i;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "redeem_pass");
	if (PG_ARGISNULL(1))
		pass_required("p_pass_id", "Pass the id of the member's pass (shown in the member's app).");
	pass_id = PG_GETARG_UUID_P(1);
	mps_idem_check_key(key);
	mps_order_check(order_no);

	mps_spi_connect();
	mps_merchant_for_call(&actor, merchant_code, "redeem_pass", &merchant);
	/* The member's presence, right after who may act: nothing about the pass before it. */
	if (qr_plain)
		mps_qr_parse(qr_plain, lookup, secret);
	else if (!actor.is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("the member's payment code is required"),
				 errdetail("p_qr_plain is missing; a pass is redeemed only with its member at the till."),
				 errhint("Scan the code the member shows in her app (rotate_card_qr); it is used up by the redemption.")));
	nlines = parse_lines(jlines, merchant.exponent, merchant.max_amount, merchant.currency,
						 lines, &uses, &extra_total);
	pass_parse_payments(payments, merchant.exponent, merchant.max_amount, merchant.currency, &pay);

	/* Seed 002's backend whitelist: a surcharge is cash or bank card, never third-party. */
	if (extra_total > 0)
	{
		for (i = 0; i < pay.n; i++)
		{
			PassPayment *p = &pay.line[i];

			if (p->amount == 0 || p->kind == PASS_PAY_DIRECT)
				continue;
			if (p->kind == PASS_PAY_THIRD_PARTY)
				ereport(ERROR,
						(errcode(ERRCODE_MPS_PASS_THIRD_PARTY),
						 errmsg("third-party payment not allowed on a pass redemption"),
						 errdetail("p_payments[%d] takes %s %s by %s; the surcharge of a redemption is paid in cash or by bank card.",
								   i, pass_major_text(p->amount, merchant.exponent), merchant.currency, p->method),
						 errhint("Take the surcharge in cash or by bank card.")));
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PASS_METHOD_NOT_ALLOWED),
					 errmsg("payment method not allowed on a pass redemption"),
					 errdetail("p_payments[%d] takes %s %s by %s; the surcharge of a redemption is paid in cash or by bank card.",
							   i, pass_major_text(p->amount, merchant.exponent), merchant.currency, p->method),
					 errhint("Take the surcharge in cash or by bank card.")));
		}
		if (order_no == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
					 errmsg("p_order_no is required for a redemption with a surcharge"),
					 errdetail("The surcharge is %s %s and no order number was given.",
							   pass_major_text(extra_total, merchant.exponent), merchant.currency),
					 errhint("Pass the till's order number; only zero-amount redemptions go without one.")));
	}
	if (pay.total != extra_total)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_PAYMENT_MISMATCH),
				 errmsg("payment lines do not add up to the surcharge"),
				 errdetail("The lines add up to %s %s; the surcharge is %s %s%s.",
						   pass_major_text(pay.total, merchant.exponent), merchant.currency,
						   pass_major_text(extra_total, merchant.exponent), merchant.currency,
						   extra_total == 0 ? " (a zero-amount redemption)" : ""),
				 errhint("Pay exactly the lines' extras; a zero-amount redemption takes no payment.")));

	/* The key: a retry with the same parameters gets the first result. */
	(void) GetTopTransactionId();
	at = GetCurrentTimestamp();
	mps_uuid7(at, &batch_id);
	mps_reqhash_init(&h, "pass_redeem");
	mps_reqhash_uuid(&h, &merchant.id);
	mps_reqhash_uuid(&h, pass_id);
	for (i = 0; i < nlines; i++)
	{
		mps_reqhash_str(&h, lines[i].product);
		mps_reqhash_str(&h, lines[i].category);
		mps_reqhash_str(&h, psprintf("%d", lines[i].quantity));
		mps_reqhash_str(&h, psprintf(INT64_FORMAT, lines[i].extra));
	}
	mps_reqhash_str(&h, "end-of-lines");
	pass_hash_payments(&h, &pay);
	mps_reqhash_str(&h, order_no);
	mps_reqhash_str(&h, qr_plain ? lookup : NULL);
	mps_reqhash_final(&h);
	if (!mps_idem_claim(&merchant.id, key, "pass_redeem", &h, &batch_id, at, &prior, &prior_at))
	{
		result = pass_result_row(&redemption_result, &prior);
		mps_spi_finish();
		PG_RETURN_DATUM(result);
	}
	if (qr_plain)
		mps_qr_verify_member(qr_plain, &qr);
	if (order_no)
		claim_redemption_order(&merchant, order_no, pass_id, &batch_id, at);

	/* The pass, locked: concurrent redemptions and top-ups of it wait here. */
	v[0] = UUIDPGetDatum(pass_id);
	found = mps_exec(&pass_for_update, v, NULL, false, 1) == 1;
	if (found)
		mps_col_uuid(0, 1, &member_id);
	/* Another member's pass reads as absent: the code shows who is here. */
	if (!found || (qr_plain && memcmp(&member_id, &qr.holder_member_id, sizeof(pg_uuid_t)) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_NOT_FOUND),
				 errmsg("pass not found"),
				 errdetail(qr_plain ? "The member whose code was shown has no pass %s." : "No pass %s.",
						   mps_uuid_to_cstring(pass_id)),
				 errhint("Check the pass id (shown in the member's app).")));
	status = mps_col_text(0, 2);
	on_hold = mps_col_bool(0, 3, false);
	remaining = mps_col_int32(0, 4, 0);
	has_expiry = !mps_col_isnull(0, 5);
	expires_at = mps_col_timestamptz(0, 5, 0);
	plan_code = mps_col_text(0, 6);
	plan_name = mps_col_text(0, 7);
	plan_currency = mps_col_text(0, 8);
	products = DatumGetArrayTypeP(mps_col_datum_copy(0, 9, &isnull));
	categories = DatumGetArrayTypeP(mps_col_datum_copy(0, 10, &isnull));
	status_reason = mps_col_text(0, 11);

	require_redeemable(pass_id, status, on_hold, status_reason, has_expiry, expires_at);
	if (strcmp(plan_currency, merchant.currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_CURRENCY_MISMATCH),
				 errmsg("pass plan and merchant currencies differ"),
				 errdetail("Plan %s is sold in %s; merchant %s takes %s.",
						   plan_code, plan_currency, merchant.code, merchant.currency),
				 errhint("Redeem the pass at a merchant that takes %s.", plan_currency)));
	for (i = 0; i < nlines; i++)
		if (!array_has(products, lines[i].product) && !array_has(categories, lines[i].category))
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PASS_LINE_NOT_COVERED),
					 errmsg("line not covered by the pass"),
					 errdetail("p_lines[%d] (product %s, category %s) is not covered by plan %s.", i,
							   lines[i].product ? lines[i].product : "-",
							   lines[i].category ? lines[i].category : "-", plan_code),
					 errhint("Redeem covered items only; anything else is a separate order (不混单).")));
	if (uses > remaining)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PASS_EXHAUSTED),
				 errmsg("not enough uses left on the pass"),
				 errdetail("The order needs %d use%s; pass %s has %d left.",
						   uses, uses == 1 ? "" : "s", mps_uuid_to_cstring(pass_id), remaining),
				 errhint("Redeem fewer items, or the member buys more uses.")));

	if (qr_plain)
		mps_qr_consume(&qr, &batch_id);
	v[0] = UUIDPGetDatum(pass_id);
	v[1] = Int32GetDatum(uses);
	v[2] = TimestampTzGetDatum(at);
	mps_exec(&spend_uses, v, NULL, false, 0);
	remaining -= uses;

	/* The slip's variables (seed 002: the print job is configuration, not code). */
	initStringInfo(&summary);
	for (i = 0; i < nlines; i++)
	{
		appendStringInfo(&summary, "%s%s x%d", i ? ", " : "",
						 lines[i].product ? lines[i].product : lines[i].category, lines[i].quantity);
		if (lines[i].extra > 0)
			appendStringInfo(&summary, " (+%s)", pass_major_text(lines[i].extra, merchant.exponent));
	}
	mps_json_start(&vars);
	mps_json_str(&vars, "batch_no", mps_tx_no(&batch_id));
	mps_json_str(&vars, "plan_code", plan_code);
	mps_json_str(&vars, "plan_name", plan_name);
	mps_json_str(&vars, "merchant_code", merchant.code);
	mps_json_int(&vars, "uses", uses);
	mps_json_int(&vars, "remaining_uses", remaining);
	mps_json_str(&vars, "currency", merchant.currency);
	mps_json_str(&vars, "extra_total", pass_major_text(extra_total, merchant.exponent));
	mps_json_str(&vars, "order_no", order_no ? order_no : "");
	mps_json_str(&vars, "invoice", extra_total > 0 ? "yes" : "no");
	mps_json_str(&vars, "lines", summary.data);

	memset(n, ' ', sizeof(n));
	v[0] = UUIDPGetDatum(&batch_id);
	v[1] = TimestampTzGetDatum(at);
	v[2] = UUIDPGetDatum(pass_id);
	v[3] = UUIDPGetDatum(&member_id);
	v[4] = UUIDPGetDatum(&merchant.id);
	if (order_no)
		v[5] = CStringGetTextDatum(order_no);
	else
		n[5] = 'n';
	v[6] = Int32GetDatum(uses);
	v[7] = Int32GetDatum(remaining);
	v[8] = CStringGetTextDatum(merchant.currency);
	v[9] = Int64GetDatum(extra_total);
	v[10] = CStringGetTextDatum(pay.json);
	v[11] = BoolGetDatum(extra_total > 0);
	v[12] = CStringGetTextDatum(mps_json_finish(&vars));
	v[13] = CStringGetTextDatum(key);
	if (actor.has_user)
		v[14] = UUIDPGetDatum(&actor.user_id);
	else
		n[14] = 'n';
	mps_exec(&insert_batch, v, n, false, 0);
	for (i = 0; i < nlines; i++)
	{
		memset(n, ' ', sizeof(n));
		v[0] = UUIDPGetDatum(&batch_id);
		v[1] = Int32GetDatum(i + 1);
		if (lines[i].product)
			v[2] = CStringGetTextDatum(lines[i].product);
		else
			n[2] = 'n';
		if (lines[i].category)
			v[3] = CStringGetTextDatum(lines[i].category);
		else
			n[3] = 'n';
		v[4] = Int32GetDatum(lines[i].quantity);
		v[5] = Int64GetDatum(lines[i].extra);
		mps_exec(&insert_line, v, n, false, 0);
	}

	{
		MpsJson        after;

		mps_json_start(&after);
		mps_json_str(&after, "batch_id", mps_uuid_to_cstring(&batch_id));
		mps_json_str(&after, "merchant", merchant.code);
		mps_json_str(&after, "order_no", order_no);
		mps_json_int(&after, "uses", uses);
		mps_json_int(&after, "remaining_uses", remaining);
		mps_json_int(&after, "extra_total", extra_total);
		mps_json_bool(&after, "invoice_due", extra_total > 0);
		mps_json_raw(&after, "payments", pay.json);
		if (qr_plain)
			mps_json_int(&after, "qr_id", qr.id);
		mps_audit(&actor, "pass.redeem", "member_pass", mps_uuid_to_cstring(pass_id), NULL,
				  mps_json_finish(&after), key);
	}

	result = pass_result_row(&redemption_result, &batch_id);
	mps_spi_finish();
	PG_RETURN_DATUM(result);
}
