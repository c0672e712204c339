/*
 * binding.c — who holds a card: the card lock for the SQL-written binding
 * RPCs, ownership claimed with the card's binding password (a claim uses it
 * up), the password itself, and balance adjustments made by the platform
 * (voucher face value, payout on close).
 *
 * Binding passwords are chosen by people, so unlike QR secrets they get a
 * real bcrypt cost (mps.password_bcrypt_cost) and wrong guesses are
 * throttled per card: mps.binding_max_attempts wrong passwords within
 * mps.binding_window seconds close the door until the window has passed.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "actor.h"
#include "attempt_log.h"
#include "audit.h"
#include "bcrypt.h"
#include "card.h"
#include "errors.h"
#include "mps.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(mps_lock_card);
Datum
mps_lock_card(PG_FUNCTION_ARGS)
{
	MpsCard		card;

	mps_spi_connect();
	mps_card_lock_and_load(PG_GETARG_UUID_P(0), &card);
	mps_spi_finish();
	PG_RETURN_VOID();
}

static MpsPlan card_password = {
	"SELECT binding_password_hash FROM mps.cards WHERE id = $1", 1, {UUIDOID}
};

static MpsPlan recent_failures = {
	"SELECT count(*) FROM mps.card_binding_attempts"
	" WHERE card_id = $1 AND outcome = 'wrong_password' AND attempted_at > $2",
	2, {UUIDOID, TIMESTAMPTZOID}
};

static MpsPlan upsert_owner = {
	"INSERT INTO mps.card_bindings (card_id, member_id, role) VALUES ($1, $2, 'owner')"
	" ON CONFLICT (card_id, member_id) DO UPDATE SET role = 'owner'",
	2, {UUIDOID, UUIDOID}
};

static MpsPlan attempt_ok = {
	"INSERT INTO mps.card_binding_attempts (card_id, member_id, user_id, outcome)"
	" VALUES ($1, $2, $3, 'ok')",
	3, {UUIDOID, UUIDOID, UUIDOID}
};

static void
require_shared_card(const MpsCard *card)
{
	if (strcmp(card->card_type, "prepaid") != 0 && strcmp(card->card_type, "corporate") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_BINDING_NOT_ALLOWED),
				 errmsg("card does not take bindings"),
				 errdetail("Card %s is a %s card.", mps_uuid_to_cstring(&card->id), card->card_type),
				 errhint("Only prepaid and corporate cards are shared or bound later.")));
}

static MpsPlan set_password = {
	"UPDATE mps.cards SET binding_password_hash = $2, updated_at = now() WHERE id = $1",
	2, {UUIDOID, TEXTOID}
};

/* The card's binding password hash as committed now (NULL: none, or consumed). */
static char *
current_hash(pg_uuid_t *card_id)
{
	Datum		v[1];

	v[0] = UUIDPGetDatum(card_id);
	return mps_exec_latest(&card_password, v, NULL, 1) ? mps_col_text(0, 1) : NULL;
}

/*
 * Wrong passwords for the card in the window, counted on a snapshot of now:
 * the caller's own (REPEATABLE READ) snapshot would hide the attempts the
 * workers committed since. Raises MP212, without a worker, once there are
 * enough.
 */
static int64
require_not_throttled(pg_uuid_t *card_id)
{
	Datum		v[2];
	int64		failures;

	v[0] = UUIDPGetDatum(card_id);
	v[1] = TimestampTzGetDatum(GetCurrentTimestamp() - (int64) mps_binding_window * USECS_PER_SEC);
	mps_exec_latest(&recent_failures, v, NULL, 1);
	failures = mps_col_int64(0, 1, 0);
	if (failures >= mps_binding_max_attempts)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_BINDING_THROTTLED),
				 errmsg("too many wrong binding passwords"),
				 errdetail("%lld wrong passwords for this card in the last %d seconds.",
						   (long long) failures, mps_binding_window),
				 errhint("Wait %d minutes and try again.", (mps_binding_window + 59) / 60)));
	return failures;
}

static void
no_password(const pg_uuid_t *card_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_NO_BINDING_PASSWORD),
			 errmsg("card has no binding password"),
			 errdetail("Card %s cannot be claimed with a password.", mps_uuid_to_cstring(card_id)),
			 errhint("Ask the card's owner or the platform admin for a new binding password.")));
}

static void
wrong_password(const MpsActor *actor, const pg_uuid_t *card_id, const pg_uuid_t *member,
			   int64 failures)
{
	mps_record_attempt_autonomously(actor, card_id, member, true, "wrong_password");
	ereport(ERROR,
			(errcode(ERRCODE_MPS_BINDING_PASSWORD_WRONG),
			 errmsg("wrong binding password"),
			 errdetail("%lld of %d attempts left in this window.",
					   (long long) Max(mps_binding_max_attempts - failures - 1, 0),
					   mps_binding_max_attempts),
			 errhint("Check the password printed with the card.")));
}

/*
 * claim_card_ownership(p_card_id, p_binding_password): the caller becomes an
 * owner, and the password is used up (an owner sets a new one for the next).
 * The attempt runs under the card's attempt lock (counted, then checked), and
 * the bcrypt check before the card lock: a guess never holds up the card's
 * payments.
 */
PG_FUNCTION_INFO_V1(mps_claim_card_ownership);
Datum
mps_claim_card_ownership(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	pg_uuid_t  *card_id;
	char	   *password;
	pg_uuid_t	member;
	MpsCard		card;
	char	   *hash;
	char	   *locked_hash;
	const char *role;
	Datum		v[3];
	char		n[3] = "  ";
	int64		failures;
	MpsJson        after;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "claim_card_ownership");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("card id and binding password are required"),
				 errdetail("%s is missing.", PG_ARGISNULL(0) ? "p_card_id" : "p_binding_password"),
				 errhint("Pass the card's id and the binding password printed with it.")));
	card_id = PG_GETARG_UUID_P(0);
	password = text_to_cstring(PG_GETARG_TEXT_PP(1));

	mps_spi_connect();
	if (!mps_actor_member_id(&actor, &member))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MEMBER_NOT_FOUND),
				 errmsg("member not found"),
				 errdetail("The caller has no member profile."),
				 errhint("Create one with create_member_profile() first.")));
	role = mps_card_binding_role(card_id, &member);
	if (role && strcmp(role, "owner") == 0)
	{
		mps_spi_finish();
		PG_RETURN_TEXT_P(cstring_to_text("owner"));		/* already: a retry */
	}

	(void) require_not_throttled(card_id);		/* early, without waiting */
	mps_attempt_serialize(card_id);
	failures = require_not_throttled(card_id);

	mps_card_load(card_id, &card);
	require_shared_card(&card);
	mps_card_require_usable(&card);
	hash = current_hash(card_id);
	if (hash == NULL)
		no_password(card_id);
	if (!mps_bcrypt_matches(password, hash))
		wrong_password(&actor, card_id, &member, failures);

	/* Right: under the card lock, the password must still be the one checked. */
	mps_card_lock_and_load(card_id, &card);
	mps_card_require_usable(&card);
	locked_hash = current_hash(card_id);
	if (locked_hash == NULL)
		no_password(card_id);
	if (strcmp(locked_hash, hash) != 0 && !mps_bcrypt_matches(password, locked_hash))
		wrong_password(&actor, card_id, &member, failures);
	role = mps_card_binding_role(card_id, &member);

	v[0] = UUIDPGetDatum(card_id);
	v[1] = UUIDPGetDatum(&member);
	mps_exec(&upsert_owner, v, NULL, false, 0);
	n[1] = 'n';
	mps_exec(&set_password, v, n, false, 0);	/* used up */
	n[1] = ' ';
	if (actor.has_user)
		v[2] = UUIDPGetDatum(&actor.user_id);
	mps_exec(&attempt_ok, v, actor.has_user ? NULL : "  n", false, 0);

	mps_json_start(&after);
	mps_json_str(&after, "member_id", mps_uuid_to_cstring(&member));
	mps_json_str(&after, "role", "owner");
	mps_json_str(&after, "previous_role", role);
	mps_json_str(&after, "binding_password", "used");
	mps_audit(&actor, "card.claim_owner", "card", mps_uuid_to_cstring(card_id),
			  NULL, mps_json_finish(&after), NULL);
	mps_spi_finish();
	PG_RETURN_TEXT_P(cstring_to_text("owner"));
}

/* set_card_binding_password(p_card_id, p_password): the card's owner or the platform admin. */
PG_FUNCTION_INFO_V1(mps_set_card_binding_password);
Datum
mps_set_card_binding_password(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	pg_uuid_t  *card_id;
	char	   *password;
	MpsCard		card;
	pg_uuid_t	member;
	Datum		v[2];

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "set_card_binding_password");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("card id is required"),
				 errdetail("p_card_id is missing."),
				 errhint("Pass the card's id.")));
	card_id = PG_GETARG_UUID_P(0);
	password = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (password == NULL || strlen(password) < 8 || strlen(password) > 72)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_INVALID),
				 errmsg("invalid binding password"),
				 errdetail("The password is missing, shorter than 8 or longer than 72 bytes."),
				 errhint("Choose 8 to 72 characters.")));

	mps_spi_connect();
	mps_card_lock_and_load(card_id, &card);
	require_shared_card(&card);
	if (!actor.is_admin)
	{
		const char *role = mps_actor_member_id(&actor, &member)
			? mps_card_binding_role(card_id, &member) : NULL;

		if (role == NULL || strcmp(role, "owner") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied: set_card_binding_password"),
					 errdetail("Only the card's owners set its binding password."),
					 errhint("Ask an owner of the card or the platform admin.")));
	}
	v[0] = UUIDPGetDatum(card_id);
	v[1] = CStringGetTextDatum(mps_bcrypt_hash(password, mps_password_bcrypt_cost));
	mps_exec(&set_password, v, NULL, false, 0);
	mps_audit(&actor, "card.set_binding_password", "card", mps_uuid_to_cstring(card_id),
			  NULL, "{\"binding_password\": \"changed\"}", NULL);
	mps_spi_finish();
	PG_RETURN_BOOL(true);
}

/*
 * adjust_card_balance(p_card_id, p_delta, p_reason): a platform movement of
 * kind 'adjustment' (a voucher's face value in, a payout out on close).
 * Internal: callers are SQL RPCs that have checked the actor.
 */
PG_FUNCTION_INFO_V1(mps_adjust_card_balance);
Datum
mps_adjust_card_balance(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	pg_uuid_t  *card_id = PG_GETARG_UUID_P(0);
	int64		delta = PG_GETARG_INT64(1);
	char	   *reason = text_to_cstring(PG_GETARG_TEXT_PP(2));
	MpsCard		card;
	MpsMovement m;
	MpsJson        after;

	mps_actor_resolve(&actor);
	mps_actor_require_admin(&actor, "adjust_card_balance");
	mps_spi_connect();
	mps_card_lock_and_load(card_id, &card);
	if (delta < 0 && card.balance + delta < 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_INSUFFICIENT_BALANCE),
				 errmsg("insufficient balance"),
				 errdetail("The adjustment of %lld would make the balance negative.", (long long) delta),
				 errhint("Adjust by at most the balance.")));
	mps_movement_init(&m, "adjustment");
	m.amount = delta;
	m.raw_amount = delta < 0 ? -delta : delta;
	m.final_amount = m.raw_amount;
	m.reason = reason;
	mps_movement_prepare(&card, &m);
	mps_json_start(&after);
	mps_json_int(&after, "amount", delta);
	mps_json_int(&after, "balance_after", m.balance_after);
	mps_json_str(&after, "reason", reason);
	mps_movement_write(&actor, &card, &m, "tx.adjustment", &after);
	mps_spi_finish();
	PG_RETURN_INT64(m.balance_after);
}
