/*
 * stripe.c — handle_stripe_event: Stripe webhooks, verified and applied.
 *
 * What this file owns: the Stripe-Signature check (HMAC-SHA256 of
 * "<t>.<raw body>" with each configured endpoint secret, PostgreSQL's own
 * common/hmac.h, compared in constant time), the timestamp tolerance, the
 * once-only record of every event id (mps.stripe_events), and the credit of
 * a paid top-up order (a recharge movement through card.c, keyed on the
 * PaymentIntent so one payment is granted once whichever events describe it),
 * and the claw-back of a refunded top-up (charge.refunded's cumulative
 * amount_refunded, the difference taken back, never below a zero balance).
 *
 * Who may: the platform admin (service_role; the Edge Function that forwards
 * Stripe's request). Refusals that Stripe should retry or that mean the
 * request is not Stripe's raise MP95x and change nothing; events that are
 * Stripe's but cannot be applied are recorded with outcome needs_review and
 * answered normally, so Stripe stops retrying and a person looks.
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "common/hashfn.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "actor.h"
#include "audit.h"
#include "card.h"
#include "errors.h"
#include "mps.h"
#include "spi_util.h"

#define STRIPE_MAX_V1 16
#define SHA256_HEX_LEN 64

/* ---- signature ---------------------------------------------------------- */

typedef struct StripeSigHeader
{
	int64		t;
	const char *t_text;			/* the timestamp as sent, for the signed payload */
	int			t_len;
	int			n_v1;
	const char *v1[STRIPE_MAX_V1];	/* each exactly SHA256_HEX_LEN characters */
} StripeSigHeader;

static void
raise_header_malformed(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_WEBHOOK_SIGNATURE_MISSING),
			 errmsg("webhook signature missing or malformed"),
			 errdetail("The Stripe-Signature header %s.", why),
			 errhint("Forward the request's Stripe-Signature header unchanged.")));
}

/*
 * Parse "t=<unix>,v1=<hex>[,v1=<hex>...]". Items are separated by commas;
 * spaces around an item are skipped; other schemes (v0, ...) are ignored, as
 * Stripe's libraries do. A v1 that is not 64 characters cannot match and is
 * dropped here.
 */
static void
parse_sig_header(char *h, StripeSigHeader *out)
{
	char	   *p = h;
	bool		have_t = false;

	memset(out, 0, sizeof(*out));
	while (*p)
	{
		char	   *item;
		char	   *end;
		char	   *eq;

		while (*p == ' ' || *p == '\t')
			p++;
		item = p;
		while (*p && *p != ',')
			p++;
		end = p;
		if (*p == ',')
			*p++ = '\0';
		while (end > item && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		eq = strchr(item, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(item, "t") == 0)
		{
			const char *d = eq + 1;
			int			n = strlen(d);
			int			i;

			if (have_t)
				raise_header_malformed("has more than one timestamp");
			if (n < 1 || n > 12)
				raise_header_malformed("has an invalid timestamp");
			for (i = 0; i < n; i++)
				if (!isdigit((unsigned char) d[i]))
					raise_header_malformed("has an invalid timestamp");
			out->t = strtoll(d, NULL, 10);
			out->t_text = d;
			out->t_len = n;
			have_t = true;
		}
		else if (strcmp(item, "v1") == 0)
		{
			if (strlen(eq + 1) == SHA256_HEX_LEN && out->n_v1 < STRIPE_MAX_V1)
				out->v1[out->n_v1++] = eq + 1;
		}
	}
	if (!have_t)
		raise_header_malformed("has no timestamp (t=)");
	if (out->n_v1 == 0)
		raise_header_malformed("has no v1 signature");
}

/* Constant-time equality of two buffers of the same length. */
static bool
equal_ct(const char *a, const char *b, int len)
{
	volatile unsigned char diff = 0;
	int			i;

	for (i = 0; i < len; i++)
		diff |= (unsigned char) a[i] ^ (unsigned char) b[i];
	return diff == 0;
}

static void
hmac_sha256_hex(const char *key, size_t key_len, const StripeSigHeader *sig,
				const char *body, size_t body_len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8		mac[PG_SHA256_DIGEST_LENGTH];
	int			i;

	if (ctx == NULL)
		elog(ERROR, "mps: out of memory for HMAC");
	if (pg_hmac_init(ctx, (const uint8 *) key, key_len) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) sig->t_text, sig->t_len) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ".", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) body, body_len) < 0 ||
		pg_hmac_final(ctx, mac, sizeof(mac)) < 0)
	{
		pg_hmac_free(ctx);
		elog(ERROR, "mps: HMAC computation failed");
	}
	pg_hmac_free(ctx);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
	{
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 0xf];
	}
	explicit_bzero(mac, sizeof(mac));
}

static MpsPlan secrets_all = {
	"SELECT secret FROM mps_internal.stripe_secrets ORDER BY id", 0, {InvalidOid}
};

/* Raise unless some v1 is the HMAC of the payload under some configured secret. */
static void
verify_signature(const StripeSigHeader *sig, const char *body, size_t body_len)
{
	uint64		n;
	uint64		r;
	bool		ok = false;
	char		hex[SHA256_HEX_LEN];
	int64		now_s;
	int64		age;

	n = mps_exec(&secrets_all, NULL, NULL, false, 0);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_WEBHOOK_NO_SECRET),
				 errmsg("no webhook secret configured"),
				 errdetail("mps_internal.stripe_secrets is empty, so no event can be verified."),
				 errhint("Add the endpoint's signing secret with mps.add_stripe_secret(); Stripe retries the event.")));
	for (r = 0; r < n; r++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull);
		text	   *s;
		int			i;

		if (isnull)
			continue;
		s = DatumGetTextPP(d);
		hmac_sha256_hex(VARDATA_ANY(s), VARSIZE_ANY_EXHDR(s), sig, body, body_len, hex);
		for (i = 0; i < sig->n_v1; i++)
			ok |= equal_ct(hex, sig->v1[i], SHA256_HEX_LEN);
	}
	explicit_bzero(hex, sizeof(hex));
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_WEBHOOK_SIGNATURE_INVALID),
				 errmsg("webhook signature invalid"),
				 errdetail("No v1 signature of the request matches a configured endpoint secret."),
				 errhint("Forward the raw request body and the Stripe-Signature header unchanged, and check that the endpoint's secret is configured.")));

	/* Only a genuine signature gets to learn that its timestamp is stale. */
	now_s = (int64) timestamptz_to_time_t(GetCurrentTimestamp());
	age = now_s - sig->t;
	if (age > mps_stripe_tolerance || -age > mps_stripe_tolerance)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_WEBHOOK_TIMESTAMP),
				 errmsg("webhook timestamp outside tolerance"),
				 errdetail("The signature's timestamp is more than %d seconds %s.",
						   mps_stripe_tolerance, age > 0 ? "old" : "in the future"),
				 errhint("A replayed or delayed request; check the server's clock (mps.stripe_tolerance).")));
}

/* ---- the event as jsonb -------------------------------------------------- */

static void
raise_payload_invalid(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_WEBHOOK_PAYLOAD_INVALID),
			 errmsg("webhook payload invalid"),
			 errdetail("The request body %s.", why),
			 errhint("Forward the raw request body of a Stripe event unchanged.")));
}

/* The value at a path of object keys, or NULL. */
static JsonbValue *
jget(JsonbContainer *c, int n, const char *const *keys)
{
	JsonbValue *v = NULL;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (c == NULL || !JsonContainerIsObject(c))
			return NULL;
		v = getKeyJsonValueFromContainer(c, keys[i], strlen(keys[i]), NULL);
		if (v == NULL)
			return NULL;
		c = (v->type == jbvBinary) ? v->val.binary.data : NULL;
	}
	return v;
}

static char *
jstr(JsonbContainer *c, int n, const char *const *keys)
{
	JsonbValue *v = jget(c, n, keys);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* An integer value of at most 18 digits; false when absent or not one. */
static bool
jint(JsonbContainer *c, int n, const char *const *keys, int64 *out)
{
	JsonbValue *v = jget(c, n, keys);
	char	   *s;
	int			i;

	if (v == NULL || v->type != jbvNumeric)
		return false;
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	i = (s[0] == '-') ? 1 : 0;
	if (s[i] == '\0' || strlen(s + i) > 18)
		return false;
	for (; s[i]; i++)
		if (!isdigit((unsigned char) s[i]))
			return false;
	*out = strtoll(s, NULL, 10);
	return true;
}

#define K(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)), ((const char *const[]){__VA_ARGS__})

/* Parse the body with PostgreSQL's JSON parser; malformed input raises MP954. */
static Jsonb *
parse_payload(char *body, int len)
{
	JsonLexContext *lex = makeJsonLexContextCstringLen(body, len, GetDatabaseEncoding(), true);
	JsonParseErrorType err = pg_parse_json(lex, &nullSemAction);
	Jsonb	   *jb;

	if (err != JSON_SUCCESS)
		raise_payload_invalid("is not valid JSON");
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(body)));
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		raise_payload_invalid("is not a JSON object");
	return jb;
}

/* ---- records ------------------------------------------------------------- */

typedef struct StripeEvent
{
	char	   *id;
	char	   *type;
	bool		has_livemode;
	bool		livemode;
	bool		has_created;
	int64		created;
	JsonbContainer *object;		/* data.object */
	Jsonb	   *payload;
} StripeEvent;

typedef struct StripeOutcome
{
	const char *outcome;
	char	   *detail;
	bool		has_order;
	pg_uuid_t	order_id;
	char	   *payment_intent;
	bool		has_tx;
	pg_uuid_t	tx_id;
} StripeOutcome;

static MpsPlan event_claim = {
	"INSERT INTO mps.stripe_events (event_id, event_type, livemode, event_created, outcome, payload)"
	" VALUES ($1, $2, $3, to_timestamp($4), 'received', $5)"
	" ON CONFLICT (event_id) DO NOTHING RETURNING 1",
	5, {TEXTOID, TEXTOID, BOOLOID, INT8OID, JSONBOID}
};

static MpsPlan event_read = {
	"SELECT event_type, outcome, order_id, detail FROM mps.stripe_events WHERE event_id = $1",
	1, {TEXTOID}
};

static MpsPlan event_finish = {
	"UPDATE mps.stripe_events SET outcome = $2, detail = $3, order_id = $4, payment_intent = $5, tx_id = $6"
	" WHERE event_id = $1",
	6, {TEXTOID, TEXTOID, TEXTOID, UUIDOID, TEXTOID, UUIDOID}
};

static MpsPlan order_card = {
	"SELECT card_id FROM mps.topup_orders WHERE id = $1", 1, {UUIDOID}
};

static MpsPlan order_lock = {
	"SELECT status, amount, lower(currency), payment_intent, member_id FROM mps.topup_orders"
	" WHERE id = $1 FOR UPDATE",
	1, {UUIDOID}
};

static MpsPlan order_by_pi = {
	"SELECT id FROM mps.topup_orders WHERE payment_intent = $1", 1, {TEXTOID}
};

static MpsPlan order_paid = {
	"UPDATE mps.topup_orders SET status = 'succeeded', payment_intent = $2, tx_id = $3, tx_created_at = $4,"
	" paid_at = now(), updated_at = now() WHERE id = $1",
	4, {UUIDOID, TEXTOID, UUIDOID, TIMESTAMPTZOID}
};

static MpsPlan order_failed = {
	"UPDATE mps.topup_orders SET status = 'failed', updated_at = now() WHERE id = $1",
	1, {UUIDOID}
};

static void
set_outcome(StripeOutcome *o, const char *outcome, const char *fmt,...) pg_attribute_printf(3, 4);

static void
set_outcome(StripeOutcome *o, const char *outcome, const char *fmt,...)
{
	StringInfoData s;

	initStringInfo(&s);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&s, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&s, needed);
	}
	o->outcome = outcome;
	o->detail = s.data;
}

/* An order id as Stripe hands it back (client_reference_id or metadata); false unless a uuid. */
static bool
parse_order_id(const char *s, pg_uuid_t *out)
{
	int			i;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		bool		dash = (i == 8 || i == 13 || i == 18 || i == 23);

		if (dash ? s[i] != '-' : !isxdigit((unsigned char) s[i]))
			return false;
	}
	*out = *DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(s)));
	return true;
}

static bool
lock_order(const pg_uuid_t *order_id, char **status, int64 *amount, char **currency,
		   char **pi, bool *has_member, pg_uuid_t *member)
{
	Datum		v[1];

	v[0] = UUIDPGetDatum((pg_uuid_t *) order_id);
	if (mps_exec(&order_lock, v, NULL, false, 1) == 0)
		return false;
	*status = mps_col_text(0, 1);
	*amount = mps_col_int64(0, 2, 0);
	*currency = mps_col_text(0, 3);
	*pi = mps_col_text(0, 4);
	*has_member = mps_col_uuid(0, 5, member);
	return true;
}

/*
 * A verified payment for an order: credit the card once. One PaymentIntent
 * is granted once whichever events describe it: the PaymentIntent's lock,
 * then the card's, then the order row; the unique payment_intent of
 * topup_orders backs it.
 */
static void
grant_payment(const MpsActor *actor, const StripeEvent *ev, const char *order_text, const char *pi,
			  bool has_amount, int64 amount, const char *currency, StripeOutcome *o)
{
	pg_uuid_t	order_id;
	pg_uuid_t	card_id;
	Datum		v[4];
	char	   *status;
	int64		o_amount;
	char	   *o_currency;
	char	   *o_pi;
	bool		has_member;
	pg_uuid_t	member;
	MpsCard		card;
	MpsMovement m;
	MpsJson		after;
	StringInfoData details;
	const char *why = NULL;

	o->payment_intent = (char *) pi;
	if (!parse_order_id(order_text, &order_id))
	{
		set_outcome(o, "needs_review", "the event names no top-up order (%s)",
					order_text ? "not an order id" : "no client_reference_id or metadata.mps_order_id");
		return;
	}
	o->has_order = true;
	o->order_id = order_id;
	if (pi == NULL)
	{
		set_outcome(o, "needs_review", "the event names no PaymentIntent");
		return;
	}
	v[0] = UUIDPGetDatum(&order_id);
	if (mps_exec(&order_card, v, NULL, false, 1) == 0 || !mps_col_uuid(0, 1, &card_id))
	{
		o->has_order = false;
		set_outcome(o, "needs_review", "no top-up order %s", order_text);
		return;
	}

	DirectFunctionCall2(pg_advisory_xact_lock_int4, Int32GetDatum(MPS_LOCK_NS_STRIPE),
						Int32GetDatum((int32) hash_bytes((const unsigned char *) pi, strlen(pi))));
	mps_card_lock_and_load(&card_id, &card);
	if (!lock_order(&order_id, &status, &o_amount, &o_currency, &o_pi, &has_member, &member))
		elog(ERROR, "mps: top-up order vanished under lock");

	if (strcmp(status, "succeeded") == 0 || strcmp(status, "refunded") == 0)
	{
		if (o_pi && strcmp(o_pi, pi) == 0)
			set_outcome(o, "ignored", "PaymentIntent %s already credited order %s", pi, order_text);
		else
			set_outcome(o, "needs_review", "order %s was already paid by another PaymentIntent", order_text);
		return;
	}
	if (strcmp(status, "failed") == 0)
	{
		set_outcome(o, "needs_review", "a payment arrived for order %s, which had failed", order_text);
		return;
	}
	v[0] = CStringGetTextDatum(pi);
	if (mps_exec(&order_by_pi, v, NULL, false, 1) > 0)
	{
		set_outcome(o, "needs_review", "PaymentIntent %s already paid another order", pi);
		return;
	}
	if (!has_amount || amount != o_amount || currency == NULL || pg_strcasecmp(currency, o_currency) != 0)
	{
		set_outcome(o, "needs_review",
					"paid %s %s but order %s is for " INT64_FORMAT " %s",
					has_amount ? psprintf(INT64_FORMAT, amount) : "(no amount)",
					currency ? currency : "(no currency)", order_text, o_amount, o_currency);
		return;
	}
	if (strcmp(card.status, "active") != 0)
		why = "the card is not active";
	else if (card.has_expiry && card.expires_at <= GetCurrentTransactionStartTimestamp())
		why = "the card has expired";
	else if (card.balance > card.max_balance - amount)
		why = "the credit would pass the card's balance limit";
	if (why)
	{
		set_outcome(o, "needs_review", "paid order %s not credited: %s", order_text, why);
		return;
	}

	mps_movement_init(&m, "recharge");
	m.raw_amount = amount;
	m.final_amount = amount;
	m.amount = amount;
	m.has_member = has_member;
	m.member_id = member;
	m.reason = "stripe";
	initStringInfo(&details);
	appendStringInfoString(&details, "{\"topup_order_id\": ");
	escape_json(&details, order_text);
	appendStringInfoString(&details, ", \"payment_intent\": ");
	escape_json(&details, pi);
	appendStringInfoString(&details, ", \"stripe_event_id\": ");
	escape_json(&details, ev->id);
	appendStringInfoChar(&details, '}');
	m.details_json = details.data;
	mps_movement_prepare(&card, &m);
	mps_json_start(&after);
	mps_json_int(&after, "amount", amount);
	mps_json_int(&after, "balance_after", m.balance_after);
	mps_json_str(&after, "payment_method", "stripe");
	mps_json_str(&after, "topup_order_id", order_text);
	mps_json_str(&after, "payment_intent", pi);
	mps_json_str(&after, "stripe_event_id", ev->id);
	mps_movement_write(actor, &card, &m, "tx.recharge", &after);

	v[0] = UUIDPGetDatum(&order_id);
	v[1] = CStringGetTextDatum(pi);
	v[2] = UUIDPGetDatum(&m.tx_id);
	v[3] = TimestampTzGetDatum(m.created_at);
	mps_exec(&order_paid, v, NULL, false, 0);
	o->has_tx = true;
	o->tx_id = m.tx_id;
	set_outcome(o, "credited", "order %s credited " INT64_FORMAT " %s", order_text, amount, o_currency);
}

/* An asynchronous payment that failed: a pending order becomes failed. */
static void
fail_payment(const char *order_text, const char *pi, StripeOutcome *o)
{
	pg_uuid_t	order_id;
	char	   *status;
	int64		o_amount;
	char	   *o_currency;
	char	   *o_pi;
	bool		has_member;
	pg_uuid_t	member;
	Datum		v[1];

	o->payment_intent = (char *) pi;
	if (!parse_order_id(order_text, &order_id) ||
		!lock_order(&order_id, &status, &o_amount, &o_currency, &o_pi, &has_member, &member))
	{
		set_outcome(o, "needs_review", "the event names no known top-up order");
		return;
	}
	o->has_order = true;
	o->order_id = order_id;
	if (strcmp(status, "pending") != 0)
	{
		set_outcome(o, "ignored", "order %s is %s, not pending", order_text, status);
		return;
	}
	v[0] = UUIDPGetDatum(&order_id);
	mps_exec(&order_failed, v, NULL, false, 0);
	set_outcome(o, "marked_failed", "order %s marked failed", order_text);
}

static MpsPlan order_refunded = {
	"UPDATE mps.topup_orders SET refunded_amount = $2, unrecovered_amount = unrecovered_amount + $3,"
	" status = CASE WHEN $2 = amount THEN 'refunded' ELSE status END, updated_at = now() WHERE id = $1",
	3, {UUIDOID, INT8OID, INT8OID}
};

static MpsPlan order_refund_state = {
	"SELECT refunded_amount FROM mps.topup_orders WHERE id = $1", 1, {UUIDOID}
};

/*
 * charge.refunded: the charge's cumulative amount_refunded. The difference
 * from what was applied is taken back from the card with an adjustment
 * movement, never below zero: what the member already spent is recorded on
 * the order (unrecovered_amount) and the event is for review.
 */
static void
claw_back(const MpsActor *actor, const StripeEvent *ev, const char *pi, bool has_refunded,
		  int64 refunded, const char *currency, StripeOutcome *o)
{
	pg_uuid_t	order_id;
	pg_uuid_t	card_id;
	Datum		v[3];
	char	   *status;
	int64		o_amount;
	char	   *o_currency;
	char	   *o_pi;
	bool		has_member;
	pg_uuid_t	member;
	int64		applied;
	int64		diff;
	int64		take;
	int64		shortfall;
	char	   *order_text;
	MpsCard		card;

	o->payment_intent = (char *) pi;
	if (pi == NULL)
	{
		set_outcome(o, "needs_review", "the refund names no PaymentIntent");
		return;
	}
	v[0] = CStringGetTextDatum(pi);
	if (mps_exec(&order_by_pi, v, NULL, false, 1) == 0 || !mps_col_uuid(0, 1, &order_id))
	{
		set_outcome(o, "needs_review", "no credited top-up order for PaymentIntent %s", pi);
		return;
	}
	o->has_order = true;
	o->order_id = order_id;
	order_text = mps_uuid_to_cstring(&order_id);
	v[0] = UUIDPGetDatum(&order_id);
	if (mps_exec(&order_card, v, NULL, false, 1) == 0 || !mps_col_uuid(0, 1, &card_id))
		elog(ERROR, "mps: top-up order without a card");

	DirectFunctionCall2(pg_advisory_xact_lock_int4, Int32GetDatum(MPS_LOCK_NS_STRIPE),
						Int32GetDatum((int32) hash_bytes((const unsigned char *) pi, strlen(pi))));
	mps_card_lock_and_load(&card_id, &card);
	if (!lock_order(&order_id, &status, &o_amount, &o_currency, &o_pi, &has_member, &member))
		elog(ERROR, "mps: top-up order vanished under lock");
	mps_exec(&order_refund_state, v, NULL, false, 1);
	applied = mps_col_int64(0, 1, 0);

	if (!has_refunded || refunded < 0 || refunded > o_amount || currency == NULL ||
		pg_strcasecmp(currency, o_currency) != 0)
	{
		set_outcome(o, "needs_review", "refund of %s %s does not fit order %s of " INT64_FORMAT " %s",
					has_refunded ? psprintf(INT64_FORMAT, refunded) : "(no amount_refunded)",
					currency ? currency : "(no currency)", order_text, o_amount, o_currency);
		return;
	}
	diff = refunded - applied;
	if (diff <= 0)
	{
		set_outcome(o, "ignored", "order %s already has " INT64_FORMAT " refunded", order_text, applied);
		return;
	}
	take = Min(diff, card.balance);
	shortfall = diff - take;
	if (take > 0)
	{
		MpsMovement m;
		MpsJson		after;
		StringInfoData details;

		mps_movement_init(&m, "adjustment");
		m.raw_amount = take;
		m.final_amount = take;
		m.amount = -take;
		m.has_member = has_member;
		m.member_id = member;
		m.reason = "stripe_refund";
		initStringInfo(&details);
		appendStringInfoString(&details, "{\"topup_order_id\": ");
		escape_json(&details, order_text);
		appendStringInfoString(&details, ", \"payment_intent\": ");
		escape_json(&details, pi);
		appendStringInfoString(&details, ", \"stripe_event_id\": ");
		escape_json(&details, ev->id);
		appendStringInfo(&details, ", \"refunded_total\": " INT64_FORMAT ", \"unrecovered\": " INT64_FORMAT "}",
						 refunded, shortfall);
		m.details_json = details.data;
		mps_movement_prepare(&card, &m);
		mps_json_start(&after);
		mps_json_int(&after, "amount", -take);
		mps_json_int(&after, "balance_after", m.balance_after);
		mps_json_str(&after, "topup_order_id", order_text);
		mps_json_str(&after, "payment_intent", pi);
		mps_json_str(&after, "stripe_event_id", ev->id);
		mps_json_int(&after, "unrecovered", shortfall);
		mps_movement_write(actor, &card, &m, "tx.adjustment", &after);
		o->has_tx = true;
		o->tx_id = m.tx_id;
	}
	v[0] = UUIDPGetDatum(&order_id);
	v[1] = Int64GetDatum(refunded);
	v[2] = Int64GetDatum(shortfall);
	mps_exec(&order_refunded, v, NULL, false, 0);
	if (shortfall > 0)
		set_outcome(o, "needs_review", "refund of " INT64_FORMAT " on order %s: " INT64_FORMAT
					" taken back, " INT64_FORMAT " already spent", diff, order_text, take, shortfall);
	else
		set_outcome(o, "refunded", "refund of " INT64_FORMAT " on order %s taken back", diff, order_text);
}

static void
apply_event(const MpsActor *actor, const StripeEvent *ev, StripeOutcome *o)
{
	JsonbContainer *obj = ev->object;
	const char *t = ev->type;
	int64		amount = 0;
	bool		has_amount;

	if (strcmp(t, "checkout.session.completed") == 0 ||
		strcmp(t, "checkout.session.async_payment_succeeded") == 0)
	{
		char	   *order = jstr(obj, K("client_reference_id"));
		char	   *pay_status = jstr(obj, K("payment_status"));

		if (order == NULL)
			order = jstr(obj, K("metadata", "mps_order_id"));
		if (pay_status == NULL || strcmp(pay_status, "paid") != 0)
		{
			if (parse_order_id(order, &o->order_id))
				o->has_order = true;
			set_outcome(o, "ignored", "checkout session not paid yet (payment_status %s)",
						pay_status ? pay_status : "missing");
			return;
		}
		has_amount = jint(obj, K("amount_total"), &amount);
		grant_payment(actor, ev, order, jstr(obj, K("payment_intent")), has_amount, amount,
					  jstr(obj, K("currency")), o);
	}
	else if (strcmp(t, "payment_intent.succeeded") == 0)
	{
		char	   *order = jstr(obj, K("metadata", "mps_order_id"));
		char	   *pi = jstr(obj, K("id"));

		if (order == NULL)
		{
			/* Not tagged for MPS: the checkout session's event grants it, if ours. */
			Datum		v[1];

			o->payment_intent = pi;
			if (pi)
			{
				v[0] = CStringGetTextDatum(pi);
				if (mps_exec(&order_by_pi, v, NULL, false, 1) > 0 && mps_col_uuid(0, 1, &o->order_id))
				{
					o->has_order = true;
					set_outcome(o, "ignored", "PaymentIntent %s already credited its order", pi);
					return;
				}
			}
			set_outcome(o, "ignored", "PaymentIntent carries no metadata.mps_order_id");
			return;
		}
		has_amount = jint(obj, K("amount_received"), &amount);
		grant_payment(actor, ev, order, pi, has_amount, amount, jstr(obj, K("currency")), o);
	}
	else if (strcmp(t, "checkout.session.async_payment_failed") == 0)
	{
		char	   *order = jstr(obj, K("client_reference_id"));

		if (order == NULL)
			order = jstr(obj, K("metadata", "mps_order_id"));
		fail_payment(order, jstr(obj, K("payment_intent")), o);
	}
	else if (strcmp(t, "charge.refunded") == 0)
	{
		has_amount = jint(obj, K("amount_refunded"), &amount);
		claw_back(actor, ev, jstr(obj, K("payment_intent")), has_amount, amount,
				  jstr(obj, K("currency")), o);
	}
	else if (strncmp(t, "charge.dispute.", 15) == 0)
	{
		/* Disputes are not clawed back automatically yet: a person decides. */
		o->payment_intent = jstr(obj, K("payment_intent"));
		set_outcome(o, "needs_review", "dispute event %s: review the payment by hand", t);
	}
	else
		set_outcome(o, "ignored", "event type %s is not handled", t);
}

static Datum
event_result(FunctionCallInfo fcinfo, const char *id, const char *type, const char *outcome,
			 bool duplicate, bool has_order, const pg_uuid_t *order_id, const char *detail)
{
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mps: result type must be composite");
	values[0] = CStringGetTextDatum(id);
	values[1] = CStringGetTextDatum(type);
	values[2] = CStringGetTextDatum(outcome);
	values[3] = BoolGetDatum(duplicate);
	if (has_order)
	{
		pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

		*u = *order_id;
		values[4] = UUIDPGetDatum(u);
	}
	else
		nulls[4] = true;
	if (detail)
		values[5] = CStringGetTextDatum(detail);
	else
		nulls[5] = true;
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

/* handle_stripe_event(p_payload text, p_signature text) */
PG_FUNCTION_INFO_V1(mps_handle_stripe_event);
Datum
mps_handle_stripe_event(PG_FUNCTION_ARGS)
{
	MemoryContext fn_cxt = CurrentMemoryContext;
	MpsActor	actor;
	text	   *body_t;
	char	   *body;
	int			body_len;
	char	   *header;
	StripeSigHeader sig;
	StripeEvent ev;
	StripeOutcome o;
	Jsonb	   *jb;
	JsonbValue *obj;
	Datum		v[6];
	char		nulls[7];
	Datum		result;
	MemoryContext old;

	mps_actor_resolve(&actor);
	mps_actor_require_admin(&actor, "handle_stripe_event");
	if (PG_ARGISNULL(1))
		raise_header_malformed("is missing");
	if (PG_ARGISNULL(0))
		raise_payload_invalid("is missing");
	body_t = PG_GETARG_TEXT_PP(0);
	body_len = VARSIZE_ANY_EXHDR(body_t);
	body = text_to_cstring(body_t);
	header = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strlen(header) > 8192)
		raise_header_malformed("is too long");
	parse_sig_header(header, &sig);

	mps_spi_connect();
	verify_signature(&sig, VARDATA_ANY(body_t), body_len);

	/* Verified: now the body may be parsed (kept past SPI_finish). */
	old = MemoryContextSwitchTo(fn_cxt);
	jb = parse_payload(body, body_len);
	memset(&ev, 0, sizeof(ev));
	memset(&o, 0, sizeof(o));
	ev.payload = jb;
	ev.id = jstr(&jb->root, K("id"));
	ev.type = jstr(&jb->root, K("type"));
	MemoryContextSwitchTo(old);
	if (ev.id == NULL || strlen(ev.id) < 1 || strlen(ev.id) > 255 ||
		ev.type == NULL || strlen(ev.type) < 1 || strlen(ev.type) > 255)
		raise_payload_invalid("is not a Stripe event (no id or type)");
	obj = jget(&jb->root, K("data", "object"));
	if (obj == NULL || obj->type != jbvBinary || !JsonContainerIsObject(obj->val.binary.data))
		raise_payload_invalid("has no data.object");
	ev.object = obj->val.binary.data;
	{
		JsonbValue *lm = jget(&jb->root, K("livemode"));

		if (lm && lm->type == jbvBool)
		{
			ev.has_livemode = true;
			ev.livemode = lm->val.boolean;
		}
	}
	ev.has_created = jint(&jb->root, K("created"), &ev.created) &&
		ev.created >= 0 && ev.created < INT64CONST(100000000000);

	/* The event id, once: a concurrent delivery waits here for the first. */
	memset(nulls, ' ', sizeof(nulls));
	v[0] = CStringGetTextDatum(ev.id);
	v[1] = CStringGetTextDatum(ev.type);
	v[2] = BoolGetDatum(ev.livemode);
	if (!ev.has_livemode)
		nulls[2] = 'n';
	v[3] = Int64GetDatum(ev.created);
	if (!ev.has_created)
		nulls[3] = 'n';
	v[4] = JsonbPGetDatum(jb);
	if (mps_exec(&event_claim, v, nulls, false, 1) == 0)
	{
		char	   *first_type;
		char	   *first_outcome;
		char	   *first_detail;
		pg_uuid_t	first_order;
		bool		has_order;

		if (mps_exec(&event_read, v, NULL, false, 1) == 0)
			elog(ERROR, "mps: stripe event neither new nor recorded");
		old = MemoryContextSwitchTo(fn_cxt);
		first_type = mps_col_text(0, 1);
		first_outcome = mps_col_text(0, 2);
		has_order = mps_col_uuid(0, 3, &first_order);
		first_detail = mps_col_text(0, 4);
		MemoryContextSwitchTo(old);
		mps_spi_finish();
		return event_result(fcinfo, ev.id, first_type, first_outcome, true, has_order,
							&first_order, first_detail);
	}

	apply_event(&actor, &ev, &o);

	memset(nulls, ' ', sizeof(nulls));
	v[0] = CStringGetTextDatum(ev.id);
	v[1] = CStringGetTextDatum(o.outcome);
	v[2] = CStringGetTextDatum(o.detail);
	v[3] = UUIDPGetDatum(&o.order_id);
	if (!o.has_order)
		nulls[3] = 'n';
	if (o.payment_intent)
		v[4] = CStringGetTextDatum(o.payment_intent);
	else
		nulls[4] = 'n';
	v[5] = UUIDPGetDatum(&o.tx_id);
	if (!o.has_tx)
		nulls[5] = 'n';
	mps_exec(&event_finish, v, nulls, false, 0);
	if (strcmp(o.outcome, "needs_review") == 0)
	{
		MpsJson		after;

		mps_json_start(&after);
		mps_json_str(&after, "event_type", ev.type);
		mps_json_str(&after, "detail", o.detail);
		mps_audit(&actor, "stripe_event.needs_review", "stripe_event", ev.id, NULL,
				  mps_json_finish(&after), NULL);
	}
	{
		char	   *detail;

		old = MemoryContextSwitchTo(fn_cxt);
		detail = pstrdup(o.detail);

		MemoryContextSwitchTo(old);
		mps_spi_finish();
		result = event_result(fcinfo, ev.id, ev.type, o.outcome, false, o.has_order, &o.order_id, detail);
	}
	return result;
}
