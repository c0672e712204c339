/*
 * qr.c — QR payment codes: rotate, revoke, cron rotation, verify, state checks.
 *
 * A code is "MPS1.<lookup>.<secret>": the lookup id (9 random bytes) finds the
 * row by a unique index, the secret (16 random bytes, 128 bits) is checked
 * against its bcrypt hash (libxcrypt), and only that hash is stored. The plain
 * code is returned once, by the call that made it. Because the secret is
 * random and long, a low bcrypt cost loses nothing (mps.qr_bcrypt_cost).
 *
 * Every code is single-use: the charge that uses it consumes it, a member's
 * own code (holder set) and the shared code of a prepaid or corporate card (no
 * holder) alike; a display of a shared code shows the next one from
 * rotate_card_qr(p_shared := true). Rotation revokes the previous live code of
 * the same holder; every code stays in the table as history. (Shared codes
 * issued by 0.1.0 say single_use = false; they pay once as well.)
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "actor.h"
#include "audit.h"
#include "bcrypt.h"
#include "card.h"
#include "errors.h"
#include "ids.h"
#include "mps.h"
#include "qr.h"
#include "row_read.h"
#include "spi_util.h"

#define QR_PREFIX "MPS1."

/* ---- parsing and verification (used by the charge) ---- */

static bool
is_b64url(const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
		if (!(isalnum((unsigned char) s[i]) || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

static void
qr_invalid(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_QR_INVALID),
			 errmsg("invalid QR code"),
			 errdetail("%s", why),
			 errhint("Ask the member to show a fresh code (rotate_card_qr).")));
}

void
mps_qr_parse(const char *plain, char *lookup, char *secret)
{
	size_t		plen = strlen(QR_PREFIX);

	if (plain == NULL)
		qr_invalid("p_qr_plain is missing.");
	if (strlen(plain) != plen + MPS_QR_LOOKUP_LEN + 1 + MPS_QR_SECRET_LEN ||
		strncmp(plain, QR_PREFIX, plen) != 0 ||
		plain[plen + MPS_QR_LOOKUP_LEN] != '.' ||
		!is_b64url(plain + plen, MPS_QR_LOOKUP_LEN) ||
		!is_b64url(plain + plen + MPS_QR_LOOKUP_LEN + 1, MPS_QR_SECRET_LEN))
		qr_invalid("The text is not an MPS payment code.");
	memcpy(lookup, plain + plen, MPS_QR_LOOKUP_LEN);
	lookup[MPS_QR_LOOKUP_LEN] = '\0';
	memcpy(secret, plain + plen + MPS_QR_LOOKUP_LEN + 1, MPS_QR_SECRET_LEN);
	secret[MPS_QR_SECRET_LEN] = '\0';
}

/* A code by its public lookup id (unique): one index probe, before any lock. */
enum
{
	CODE_ID, CODE_CARD, CODE_HOLDER, CODE_HASH, CODE_EXPIRES, CODE_USED,
	CODE_REVOKED, CODE_NCOLS
};

static MpsTable code_columns = {
	"mps", "card_qr_codes", CODE_NCOLS, {
		{"id", INT8OID, MPS_COL_DATUM},
		{"card_id", UUIDOID, MPS_COL_DATUM},
		{"holder_member_id", UUIDOID, MPS_COL_DATUM},
		{"secret_hash", TEXTOID, MPS_COL_DATUM},
		{"expires_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"used_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"revoked_at", TIMESTAMPTZOID, MPS_COL_DATUM},
	}
};
static MpsRowKey code_by_lookup = {&code_columns, 1, {"lookup_id"}};

void
mps_qr_verify(const char *plain, MpsQr *qr)
{
	char		secret[MPS_QR_SECRET_LEN + 1];
	Datum		key;
	Datum		v[CODE_NCOLS];
	bool		n[CODE_NCOLS];

	memset(qr, 0, sizeof(*qr));
	mps_qr_parse(plain, qr->lookup, secret);
	key = CStringGetTextDatum(qr->lookup);
	if (!mps_row_read(&code_by_lookup, 0, &key, false, v, n, NULL))
		qr_invalid("No such payment code.");
	qr->id = DatumGetInt64(v[CODE_ID]);
	qr->card_id = *DatumGetUUIDP(v[CODE_CARD]);
	qr->has_holder = !n[CODE_HOLDER];
	if (qr->has_holder)
		qr->holder_member_id = *DatumGetUUIDP(v[CODE_HOLDER]);
	qr->expires_at = DatumGetTimestampTz(v[CODE_EXPIRES]);
	/* The secret first: a code's state is told only to whoever holds it. */
	if (!mps_bcrypt_matches_token(secret, TextDatumGetCString(v[CODE_HASH])))
		qr_invalid("No such payment code.");
	if (!n[CODE_REVOKED])
		ereport(ERROR,
				(errcode(ERRCODE_MPS_QR_REVOKED),
				 errmsg("QR code has been revoked"),
				 errdetail("The code was replaced or revoked."),
				 errhint("Ask the member to show the current code.")));
	if (!n[CODE_USED])
		ereport(ERROR,
				(errcode(ERRCODE_MPS_QR_USED),
				 errmsg("QR code has already been used"),
				 errdetail("A payment code pays once."),
				 errhint("Ask the member to show a fresh code.")));
	if (qr->expires_at <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_MPS_QR_EXPIRED),
				 errmsg("QR code has expired"),
				 errdetail("The code expired at %s.", timestamptz_to_str(qr->expires_at)),
				 errhint("Ask the member to show a fresh code.")));
}

static MpsPlan qr_state = {
	"SELECT used_at IS NOT NULL, revoked_at IS NOT NULL FROM mps.card_qr_codes WHERE id = $1",
	1, {INT8OID}
};

void
mps_qr_require_live(const MpsQr *qr, bool used, bool revoked)
{
	if (revoked)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_QR_REVOKED),
				 errmsg("QR code has been revoked"),
				 errdetail("The code was replaced or revoked while the charge ran."),
				 errhint("Ask the member to show the current code.")));
	if (used)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_QR_USED),
				 errmsg("QR code has already been used"),
				 errdetail("Another charge used this code first."),
				 errhint("Ask the member to show a fresh code.")));
}

void
mps_qr_raise_taken(const MpsQr *qr)
{
	Datum		v[1];

	v[0] = Int64GetDatum(qr->id);
	if (mps_exec(&qr_state, v, NULL, false, 1) == 0)
		elog(ERROR, "mps: QR code %lld vanished", (long long) qr->id);
	mps_qr_require_live(qr, mps_col_bool(0, 1, false), mps_col_bool(0, 2, false));
	elog(ERROR, "mps: QR code %lld is live but could not be consumed", (long long) qr->id);
}

/* ---- the member at the till (pass redemption and listing) ---- */

void
mps_qr_verify_member(const char *plain, MpsQr *qr)
{
	const char *role;

	mps_qr_verify(plain, qr);
	/* A card's shared code sits on a counter or a display: it shows no one is here. */
	if (!qr->has_holder)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_QR_INVALID),
				 errmsg("invalid QR code"),
				 errdetail("A card's shared code names no member."),
				 errhint("Ask the member to show her own code (rotate_card_qr in her app).")));
	role = mps_card_binding_role(&qr->card_id, &qr->holder_member_id);
	if (role == NULL || strcmp(role, "viewer") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_NOT_BOUND),
				 errmsg("the code's holder is no longer bound to its card"),
				 errdetail("The member who made this code is not bound to card %s (or only as a viewer).",
						   mps_uuid_to_cstring(&qr->card_id)),
				 errhint("Ask the member to show a code of a card she holds.")));
}

static MpsPlan consume_code = {
	"UPDATE mps.card_qr_codes SET used_at = now(), used_tx_id = $2"
	" WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL",
	2, {INT8OID, UUIDOID}
};

void
mps_qr_consume(const MpsQr *qr, const pg_uuid_t *use_id)
{
	Datum		v[2];

	v[0] = Int64GetDatum(qr->id);
	v[1] = UUIDPGetDatum((pg_uuid_t *) use_id);
	/* A charge with the same code waits for this row or makes this wait: one of them wins. */
	if (mps_exec(&consume_code, v, NULL, false, 0) != 1)
		mps_qr_raise_taken(qr);
}

/*
 * mps_internal.member_at_till(p_qr_plain) -> uuid: the member whose own live
 * code this is (verified, not consumed). For list_member_passes: a merchant
 * sees a member's passes only while she shows a code.
 */
PG_FUNCTION_INFO_V1(mps_member_at_till);
Datum
mps_member_at_till(PG_FUNCTION_ARGS)
{
	MpsQr		qr;
	pg_uuid_t  *member = palloc(sizeof(pg_uuid_t));

	mps_spi_connect();
	mps_qr_verify_member(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)), &qr);
	mps_spi_finish();
	*member = qr.holder_member_id;
	PG_RETURN_UUID_P(member);
}

/* ---- issuing ---- */

typedef struct QrIssued
{
	char	   *plain;
	int64		id;
	pg_uuid_t	card_id;
	TimestampTz expires_at;
	bool		single_use;
} QrIssued;

static MpsPlan revoke_live = {
	"UPDATE mps.card_qr_codes SET revoked_at = now(), revoke_reason = $3"
	" WHERE card_id = $1 AND expires_at > now() AND holder_member_id IS NOT DISTINCT FROM $2"
	" AND used_at IS NULL AND revoked_at IS NULL",
	3, {UUIDOID, UUIDOID, TEXTOID}
};

static MpsPlan revoke_all_live = {
	"UPDATE mps.card_qr_codes SET revoked_at = now(), revoke_reason = $2"
	" WHERE card_id = $1 AND expires_at > now() AND used_at IS NULL AND revoked_at IS NULL",
	2, {UUIDOID, TEXTOID}
};

static MpsPlan insert_code = {
	"INSERT INTO mps.card_qr_codes (lookup_id, card_id, holder_member_id, single_use, secret_hash,"
	" issued_at, expires_at) VALUES ($1, $2, $3, $4, $5, now(), $6) RETURNING id",
	6, {TEXTOID, UUIDOID, UUIDOID, BOOLOID, TEXTOID, TIMESTAMPTZOID}
};

/* Revoke the holder's live code (if any) and issue a new one. Card is locked. */
static void
issue_code(const MpsActor *actor, const pg_uuid_t *card_id, const pg_uuid_t *holder,
		   int ttl_seconds, const char *why, QrIssued *out)
{
	Datum		v[6];
	char		n[7] = "      ";
	char	   *lookup = mps_random_token(9);
	char	   *secret = mps_random_token(16);
	StringInfoData plain;
	MpsJson        after;
	uint64		revoked;

	v[0] = UUIDPGetDatum((pg_uuid_t *) card_id);
	if (holder)
		v[1] = UUIDPGetDatum((pg_uuid_t *) holder);
	else
		n[1] = 'n';
	v[2] = CStringGetTextDatum("rotated");
	revoked = mps_exec(&revoke_live, v, n, false, 0);

	out->expires_at = GetCurrentTransactionStartTimestamp() + (int64) ttl_seconds * USECS_PER_SEC;
	out->single_use = true;
	out->card_id = *card_id;
	v[0] = CStringGetTextDatum(lookup);
	v[1] = UUIDPGetDatum((pg_uuid_t *) card_id);
	if (holder)
		v[2] = UUIDPGetDatum((pg_uuid_t *) holder);
	else
		n[2] = 'n';
	n[1] = ' ';
	v[3] = BoolGetDatum(out->single_use);
	v[4] = CStringGetTextDatum(mps_bcrypt_hash(secret, mps_qr_bcrypt_cost));
	v[5] = TimestampTzGetDatum(out->expires_at);
	mps_exec(&insert_code, v, n, false, 1);
	out->id = mps_col_int64(0, 1, 0);

	initStringInfo(&plain);
	appendStringInfo(&plain, "%s%s.%s", QR_PREFIX, lookup, secret);
	out->plain = plain.data;

	mps_json_start(&after);
	mps_json_int(&after, "qr_id", out->id);
	mps_json_str(&after, "holder_member_id", holder ? mps_uuid_to_cstring(holder) : NULL);
	mps_json_bool(&after, "single_use", out->single_use);
	mps_json_int(&after, "ttl_seconds", ttl_seconds);
	mps_json_int(&after, "revoked_previous", (int64) revoked);
	mps_json_str(&after, "why", why);
	mps_audit(actor, "qr.rotate", "card", mps_uuid_to_cstring(card_id), NULL,
			  mps_json_finish(&after), NULL);
}

/* The caller's binding role on the card ("" when not bound); fills member_id. */
static const char *
caller_role(const MpsActor *actor, const pg_uuid_t *card_id, pg_uuid_t *member_id, bool *has_member)
{
	const char *role;

	*has_member = mps_actor_member_id(actor, member_id);
	if (!*has_member)
		return "";
	role = mps_card_binding_role(card_id, member_id);
	return role ? role : "";
}

static bool
is_shared_card_type(const MpsCard *card)
{
	return strcmp(card->card_type, "prepaid") == 0 || strcmp(card->card_type, "corporate") == 0;
}

static void
not_allowed(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: %s", what),
			 errdetail("The caller is not bound to this card with a role that allows it."),
			 errhint("Members rotate their own code; owners and admins of prepaid/corporate cards rotate the shared code.")));
}

/*
 * Before the card lock: a caller who is not bound to the card with a role
 * that may do this is refused here, alike for a card that does not exist,
 * and takes no lock. (resolve_holder decides again under the lock.)
 */
static void
require_may_act(const MpsActor *actor, const pg_uuid_t *card_id, bool shared, const char *what)
{
	pg_uuid_t	member;
	bool		has_member;
	const char *role;

	if (actor->is_admin)
		return;
	role = caller_role(actor, card_id, &member, &has_member);
	if (strcmp(role, "owner") == 0 || strcmp(role, "admin") == 0 ||
		(!shared && strcmp(role, "member") == 0))
		return;
	not_allowed(what);
}

static int
checked_ttl(FunctionCallInfo fcinfo, int argno)
{
	int			ttl;

	if (PG_ARGISNULL(argno))
		return mps_qr_default_ttl;
	ttl = PG_GETARG_INT32(argno);
	if (ttl < 30 || ttl > mps_qr_max_ttl)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_QR_TTL_INVALID),
				 errmsg("invalid QR code lifetime"),
				 errdetail("p_ttl_seconds = %d.", ttl),
				 errhint("Pass between 30 and %d seconds, or leave it out for the default (%d).",
						 mps_qr_max_ttl, mps_qr_default_ttl)));
	return ttl;
}

static pg_uuid_t *
required_card_id(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("card id is required"),
				 errdetail("p_card_id is missing."),
				 errhint("Pass the card's id.")));
	return PG_GETARG_UUID_P(argno);
}

/*
 * Decide whose code a call is about. p_shared = false: the caller's own
 * single-use code (a bound owner/admin/member), or for the platform admin the
 * card owner's. p_shared = true: the shared code of a prepaid/corporate card,
 * for its owner/admin or the platform admin. Returns the holder (NULL: shared).
 */
static pg_uuid_t *
resolve_holder(const MpsActor *actor, const MpsCard *card, bool shared, const char *what)
{
	pg_uuid_t  *member = palloc(sizeof(pg_uuid_t));
	bool		has_member;
	const char *role = caller_role(actor, &card->id, member, &has_member);

	if (shared)
	{
		if (!is_shared_card_type(card))
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PARAMETER_INVALID),
					 errmsg("shared codes exist only for prepaid and corporate cards"),
					 errdetail("Card %s is a %s card.", mps_uuid_to_cstring(&card->id), card->card_type),
					 errhint("Leave p_shared false to use the member's own code.")));
		if (!actor->is_admin && strcmp(role, "owner") != 0 && strcmp(role, "admin") != 0)
			not_allowed(what);
		return NULL;
	}
	if (strcmp(role, "owner") == 0 || strcmp(role, "admin") == 0 || strcmp(role, "member") == 0)
		return member;
	if (actor->is_admin)
	{
		if (!mps_card_owner(&card->id, member))
			ereport(ERROR,
					(errcode(ERRCODE_MPS_NOT_BOUND),
					 errmsg("card has no owner"),
					 errdetail("Card %s is not bound to any member.", mps_uuid_to_cstring(&card->id)),
					 errhint("Issue a shared code with p_shared := true, or bind the card first.")));
		return member;
	}
	if (!actor->has_user)
		mps_actor_require_user(actor, what);
	not_allowed(what);
	return NULL;
}

static Datum
issued_datum(FunctionCallInfo fcinfo, const QrIssued *q)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	pg_uuid_t  *card = palloc(sizeof(pg_uuid_t));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "mps: result type must be composite");
	*card = q->card_id;
	values[0] = CStringGetTextDatum(q->plain);
	values[1] = Int64GetDatum(q->id);
	values[2] = UUIDPGetDatum(card);
	values[3] = TimestampTzGetDatum(q->expires_at);
	values[4] = BoolGetDatum(q->single_use);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

PG_FUNCTION_INFO_V1(mps_rotate_card_qr);
Datum
mps_rotate_card_qr(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	pg_uuid_t  *card_id;
	int			ttl;
	bool		shared = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	MpsCard		card;
	pg_uuid_t  *holder;
	QrIssued	q;
	MemoryContext fn_cxt = CurrentMemoryContext;
	MemoryContext old;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "rotate_card_qr");
	card_id = required_card_id(fcinfo, 0);
	ttl = checked_ttl(fcinfo, 1);

	mps_spi_connect();
	require_may_act(&actor, card_id, shared, "rotate_card_qr");
	mps_card_lock_and_load(card_id, &card);
	holder = resolve_holder(&actor, &card, shared, "rotate_card_qr");
	mps_card_require_usable(&card);
	issue_code(&actor, card_id, holder, ttl, "rotate_card_qr", &q);
	old = MemoryContextSwitchTo(fn_cxt);
	q.plain = pstrdup(q.plain);
	MemoryContextSwitchTo(old);
	mps_spi_finish();
	return issued_datum(fcinfo, &q);
}

PG_FUNCTION_INFO_V1(mps_revoke_card_qr);
Datum
mps_revoke_card_qr(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	pg_uuid_t  *card_id;
	bool		shared = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	MpsCard		card;
	Datum		v[3];
	char		n[4] = "   ";
	uint64		revoked;
	MpsJson        after;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "revoke_card_qr");
	card_id = required_card_id(fcinfo, 0);

	mps_spi_connect();
	require_may_act(&actor, card_id, shared, "revoke_card_qr");
	mps_card_lock_and_load(card_id, &card);
	v[0] = UUIDPGetDatum(card_id);
	if (actor.is_admin && !shared)
	{
		/* The platform admin revokes every live code of the card. */
		v[1] = CStringGetTextDatum("revoked by platform admin");
		revoked = mps_exec(&revoke_all_live, v, NULL, false, 0);
	}
	else
	{
		pg_uuid_t  *holder = resolve_holder(&actor, &card, shared, "revoke_card_qr");

		if (holder)
			v[1] = UUIDPGetDatum(holder);
		else
			n[1] = 'n';
		v[2] = CStringGetTextDatum("revoked");
		revoked = mps_exec(&revoke_live, v, n, false, 0);
	}
	mps_json_start(&after);
	mps_json_bool(&after, "shared", shared);
	mps_json_int(&after, "revoked", (int64) revoked);
	mps_audit(&actor, "qr.revoke", "card", mps_uuid_to_cstring(card_id), NULL,
			  mps_json_finish(&after), NULL);
	mps_spi_finish();
	PG_RETURN_INT32((int32) revoked);
}

static MpsPlan shared_cards = {
	"SELECT DISTINCT q.card_id FROM mps.card_qr_codes q JOIN mps.cards c ON c.id = q.card_id"
	" WHERE q.expires_at > now() - interval '1 day' AND q.holder_member_id IS NULL"
	" AND q.used_at IS NULL AND q.revoked_at IS NULL"
	" AND c.status = 'active' AND c.card_type IN ('prepaid', 'corporate')",
	0, {InvalidOid}
};

/*
 * Rotate the shared code of every active prepaid/corporate card that has one
 * (live, or expired within the last day), returning the new plain codes (for
 * the service that displays them). Other cards are left alone.
 */
PG_FUNCTION_INFO_V1(mps_cron_rotate_qr_tokens);
Datum
mps_cron_rotate_qr_tokens(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MpsActor	actor;
	int			ttl;
	uint64		ncards;
	pg_uuid_t  *cards;
	uint64		i;

	mps_actor_resolve(&actor);
	mps_actor_require_admin(&actor, "cron_rotate_qr_tokens");
	ttl = checked_ttl(fcinfo, 0);
	InitMaterializedSRF(fcinfo, 0);

	mps_spi_connect();
	ncards = mps_exec(&shared_cards, NULL, NULL, false, 0);
	cards = palloc(sizeof(pg_uuid_t) * Max(ncards, 1));
	for (i = 0; i < ncards; i++)
		mps_col_uuid(i, 1, &cards[i]);
	for (i = 0; i < ncards; i++)
	{
		MpsCard		card;
		QrIssued	q;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		CHECK_FOR_INTERRUPTS();
		mps_card_lock_and_load(&cards[i], &card);
		if (strcmp(card.status, "active") != 0)
			continue;
		issue_code(&actor, &cards[i], NULL, ttl, "cron_rotate_qr_tokens", &q);
		values[0] = CStringGetTextDatum(q.plain);
		values[1] = Int64GetDatum(q.id);
		values[2] = UUIDPGetDatum(&cards[i]);
		values[3] = TimestampTzGetDatum(q.expires_at);
		values[4] = BoolGetDatum(q.single_use);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	mps_spi_finish();
	return (Datum) 0;
}
