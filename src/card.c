/*
 * card.c — locking a card, its level and discount, and writing movements.
 *
 * Lock order, everywhere: the advisory lock (MPS_LOCK_NS_CARD, hash of the
 * card id), then the card row FOR UPDATE. Everything that changes a card's
 * balance, points, QR codes or bindings takes both, so any two such calls on
 * one card run one after the other; calls on different cards never wait.
 */
#include "postgres.h"

#include "access/hash.h"
#include "access/xact.h"
#include "common/int.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "card.h"
#include "errors.h"
#include "ids.h"
#include "money.h"
#include "mps.h"
#include "ref_cache.h"
#include "spi_util.h"

/* The currency's caps and the level come from ref_cache.c, not from joins. */
#define CARD_SELECT \
	"SELECT c.card_type::text, c.status::text, c.currency::text, c.level_id," \
	" c.balance, c.points, c.fixed_discount_bp, c.expires_at"
#define CARD_FROM " FROM mps.cards c"

static MpsPlan card_for_update = {CARD_SELECT CARD_FROM " WHERE c.id = $1 FOR UPDATE OF c", 1, {UUIDOID}};
static MpsPlan card_peek = {CARD_SELECT CARD_FROM " WHERE c.id = $1", 1, {UUIDOID}};

/*
 * A payment's one read under the lock: the card, the paying member's binding
 * role, and the state of the code it pays with, all as committed now.
 */
static MpsPlan card_for_payment = {
	CARD_SELECT ", b.role::text, q.used_at IS NOT NULL, q.revoked_at IS NOT NULL" CARD_FROM
	" LEFT JOIN mps.card_bindings b ON b.card_id = c.id AND b.member_id = $2"
	" LEFT JOIN mps.card_qr_codes q ON q.id = $3"
	" WHERE c.id = $1 FOR UPDATE OF c",
	3, {UUIDOID, UUIDOID, INT8OID}
};

static void
copy_cstr(char *dst, size_t size, const char *src)
{
	strlcpy(dst, src ? src : "", size);
}

static void
read_card(const pg_uuid_t *card_id, MpsCard *card)
{
	MpsCurrency cur;

	memset(card, 0, sizeof(*card));
	card->id = *card_id;
	copy_cstr(card->card_type, sizeof(card->card_type), mps_col_text(0, 1));
	copy_cstr(card->status, sizeof(card->status), mps_col_text(0, 2));
	copy_cstr(card->currency, sizeof(card->currency), mps_col_text(0, 3));
	if (!mps_col_isnull(0, 4))
		mps_level_by_id(mps_col_int32(0, 4, 0), &card->level);
	card->balance = mps_col_int64(0, 5, 0);
	card->points = mps_col_int64(0, 6, 0);
	card->fixed_discount_bp = mps_col_int32(0, 7, 0);
	card->has_expiry = !mps_col_isnull(0, 8);
	card->expires_at = mps_col_timestamptz(0, 8, 0);
	mps_currency_of_row(card->currency, &cur);
	card->exponent = cur.exponent;
	card->max_amount = cur.max_amount;
	card->max_balance = cur.max_balance;
}

static void
card_not_found(const pg_uuid_t *card_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_CARD_NOT_FOUND),
			 errmsg("card not found"),
			 errdetail("No card %s.", mps_uuid_to_cstring(card_id)),
			 errhint("Check the card id.")));
}

static void
lock_card(const pg_uuid_t *card_id)
{
	uint32		key = DatumGetUInt32(hash_any(card_id->data, UUID_LEN));

	DirectFunctionCall2(pg_advisory_xact_lock_int4,
						Int32GetDatum(MPS_LOCK_NS_CARD), Int32GetDatum((int32) key));
}

void
mps_card_lock_and_load(const pg_uuid_t *card_id, MpsCard *card)
{
	Datum		v[1];

	lock_card(card_id);
	v[0] = UUIDPGetDatum((pg_uuid_t *) card_id);
	if (mps_exec(&card_for_update, v, NULL, false, 1) == 0)
		card_not_found(card_id);
	read_card(card_id, card);
}

void
mps_card_lock_for_payment(const pg_uuid_t *card_id, const pg_uuid_t *payer, int64 qr_id,
						  MpsCard *card, char **payer_role, bool *code_used, bool *code_revoked)
{
	Datum		v[3];
	char		n[4] = "   ";

	lock_card(card_id);
	v[0] = UUIDPGetDatum((pg_uuid_t *) card_id);
	if (payer)
		v[1] = UUIDPGetDatum((pg_uuid_t *) payer);
	else
		n[1] = 'n';
	v[2] = Int64GetDatum(qr_id);
	if (mps_exec(&card_for_payment, v, n, false, 1) == 0)
		card_not_found(card_id);
	read_card(card_id, card);
	*payer_role = mps_col_text(0, 9);
	*code_used = mps_col_bool(0, 10, false);
	*code_revoked = mps_col_bool(0, 11, false);
}

bool
mps_card_peek(const pg_uuid_t *card_id, MpsCard *card)
{
	Datum		v[1];

	v[0] = UUIDPGetDatum((pg_uuid_t *) card_id);
	if (mps_exec(&card_peek, v, NULL, false, 1) == 0)
		return false;
	read_card(card_id, card);
	return true;
}

void
mps_card_require_usable(const MpsCard *card)
{
	char	   *id = mps_uuid_to_cstring(&card->id);

	if (strcmp(card->status, "closed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_CARD_CLOSED),
				 errmsg("card is closed"),
				 errdetail("Card %s is closed.", id),
				 errhint("A closed card cannot move money; use another card.")));
	if (strcmp(card->status, "frozen") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_CARD_FROZEN),
				 errmsg("card is frozen"),
				 errdetail("Card %s is frozen.", id),
				 errhint("Ask the card's owner or the platform admin to unfreeze it.")));
	if (card->has_expiry && card->expires_at <= GetCurrentTransactionStartTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_MPS_CARD_EXPIRED),
				 errmsg("card has expired"),
				 errdetail("Card %s expired at %s.", id, timestamptz_to_str(card->expires_at)),
				 errhint("Use another card.")));
}

int32
mps_card_discount_bp(const MpsCard *card)
{
	if (strcmp(card->card_type, "corporate") == 0)
		return card->fixed_discount_bp;
	if (strcmp(card->card_type, "standard") == 0 && card->level.valid)
		return card->level.discount_bp;
	return 0;
}

/*
 * points = floor(paid * earn_rate_bp / (10000 * 10^exponent)): earn_rate_bp
 * points per major unit, in basis points; fractions of a point are dropped.
 */
int64
mps_card_points_for(const MpsCard *card, int64 paid)
{
	int64		den = 10000;
	int			i;

	if (strcmp(card->card_type, "standard") != 0 || !card->level.valid || paid <= 0)
		return 0;
	for (i = 0; i < card->exponent; i++)
		den *= 10;
	return mps_mul_div_floor(paid, card->level.earn_rate_bp, den);
}

static MpsPlan binding_role = {
	"SELECT role::text FROM mps.card_bindings WHERE card_id = $1 AND member_id = $2",
	2, {UUIDOID, UUIDOID}
};

const char *
mps_card_binding_role(const pg_uuid_t *card_id, const pg_uuid_t *member_id)
{
	Datum		v[2];

	v[0] = UUIDPGetDatum((pg_uuid_t *) card_id);
	v[1] = UUIDPGetDatum((pg_uuid_t *) member_id);
	if (mps_exec(&binding_role, v, NULL, false, 1) == 0)
		return NULL;
	return mps_col_text(0, 1);
}

static MpsPlan card_owner = {
	"SELECT member_id FROM mps.card_bindings WHERE card_id = $1 AND role = 'owner'"
	" ORDER BY created_at, member_id LIMIT 1",
	1, {UUIDOID}
};

bool
mps_card_owner(const pg_uuid_t *card_id, pg_uuid_t *member_id)
{
	Datum		v[1];

	v[0] = UUIDPGetDatum((pg_uuid_t *) card_id);
	if (mps_exec(&card_owner, v, NULL, false, 1) == 0)
		return false;
	return mps_col_uuid(0, 1, member_id);
}

void
mps_level_for_points(int64 points, const MpsLevel *current, MpsLevel *out)
{
	if (current->valid && points >= current->min_points &&
		(current->open || points <= current->max_points))
	{
		*out = *current;
		return;
	}
	mps_level_by_points(points, out);
}

void
mps_movement_init(MpsMovement *m, const char *kind)
{
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->status = "completed";
	/*
	 * The transaction id first, the clock second: a settlement that waits for
	 * every transaction running at its snapshot then sees every movement
	 * stamped before that snapshot (see generate_settlement).
	 */
	(void) GetTopTransactionId();
	m->created_at = GetCurrentTimestamp();
	mps_uuid7(m->created_at, &m->tx_id);
}

/* The parts of a movement's statement (see write_movement below). */
#define WRITE_CARD \
	"WITH c AS (UPDATE mps.cards SET balance = $12, points = $13, level_id = $15, updated_at = now()" \
	" WHERE id = $3 RETURNING id),"
#define WRITE_TX \
	" t AS (INSERT INTO mps.transactions (id, created_at, card_id, kind, status, currency, amount," \
	" raw_amount, discount_amount, final_amount, points_delta, balance_after, points_after," \
	" level_before, level_after, merchant_id, member_id, actor_user_id, original_tx_id," \
	" qr_code_id, idempotency_key, order_no, reason, tag, details)" \
	" SELECT $1, $2, $3, $4::mps.tx_kind, $5::mps.tx_status, $6, $7, $8, $9, $10, $11, $12, $13," \
	" $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24::jsonb, $25::jsonb),"
#define WRITE_LEDGER \
	" l AS (INSERT INTO mps.point_ledger (created_at, card_id, tx_id, delta, points_after, reason)" \
	" VALUES ($2, $3, $1, $11, $13, $26)),"
#define WRITE_CONSUME \
	" q AS (UPDATE mps.card_qr_codes q SET used_at = now(), used_tx_id = $1" \
	" WHERE q.id = $20 AND q.used_at IS NULL AND q.revoked_at IS NULL RETURNING 1),"
#define WRITE_AUDIT \
	" a AS (INSERT INTO audit.event_log (actor_via, actor_admin, actor_user_id, action, entity_type," \
	" entity_id, after, idempotency_key)" \
	" SELECT $27, $28, $18, $29, 'transaction', $1::text, $30::jsonb, $21)"
/* One row when the card was updated: whether the code was consumed (always, without one). */
#define WRITE_RESULT " SELECT true FROM c"
#define WRITE_RESULT_Q " SELECT EXISTS (SELECT FROM q) FROM c"
#define WRITE_ARGS \
	30, {UUIDOID, TIMESTAMPTZOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, \
		INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, \
		INT4OID, INT4OID, UUIDOID, UUIDOID, UUIDOID, UUIDOID, \
		INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, \
		TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID}

/*
 * A movement is one statement: the card row, the transaction, the ledger row
 * when points move, the consumption of a single-use code and the audit event.
 * One executor run instead of five keeps the time under the card lock short;
 * the parts a movement does not need are left out of its statement (four
 * variants), so their tables are not even opened. The audit event's entity
 * is the transaction: its id is time-ordered, so the event index grows at its
 * right edge like the transactions' own; its "card_id" is added here, so every
 * movement's event names its card. The parts write their VALUES without
 * reading the card update's result: when it matches no row the caller raises
 * and everything rolls back, so scanning it would only cost time.
 */
static MpsPlan write_movement[4] = {
	{WRITE_CARD WRITE_TX WRITE_AUDIT WRITE_RESULT, WRITE_ARGS},
	{WRITE_CARD WRITE_TX WRITE_LEDGER WRITE_AUDIT WRITE_RESULT, WRITE_ARGS},
	{WRITE_CARD WRITE_TX WRITE_CONSUME WRITE_AUDIT WRITE_RESULT_Q, WRITE_ARGS},
	{WRITE_CARD WRITE_TX WRITE_LEDGER WRITE_CONSUME WRITE_AUDIT WRITE_RESULT_Q, WRITE_ARGS},
};

#define SET_TEXT(i, s) do { if (s) v[i] = CStringGetTextDatum(s); else n[i] = 'n'; } while (0)
#define SET_UUID(i, has, u) do { if (has) v[i] = UUIDPGetDatum((pg_uuid_t *) (u)); else n[i] = 'n'; } while (0)

void
mps_movement_prepare(MpsCard *card, MpsMovement *m)
{
	int64		new_balance;
	int64		new_points;

	/* The balance check is made by the caller with its own error; this is the backstop. */
	if (pg_add_s64_overflow(card->balance, m->amount, &new_balance) || new_balance < 0)
		elog(ERROR, "mps: movement would make the balance negative");
	new_points = card->points + m->points_delta;
	if (new_points < 0)
	{
		m->points_delta = -card->points;
		new_points = 0;
	}

	m->level_before = card->level;
	if (strcmp(card->card_type, "standard") == 0)
		mps_level_for_points(new_points, &card->level, &m->level_after);
	else
		memset(&m->level_after, 0, sizeof(m->level_after));
	m->balance_after = new_balance;
	m->points_after = new_points;
}

/*
 * The movement's audit summary with the card named first: every movement's
 * event names its card. A "card_id" the caller put in its summary comes
 * later, so it wins, as the last of duplicate keys does in jsonb.
 */
static char *
audit_with_card(const MpsCard *card, const char *after)
{
	const char *id = mps_uuid_to_cstring(&card->id);

	if (after == NULL || strcmp(after, "{}") == 0)
		return psprintf("{\"card_id\": \"%s\"}", id);
	Assert(after[0] == '{');
	return psprintf("{\"card_id\": \"%s\", %s", id, after + 1);
}

bool
mps_movement_write(const MpsActor *actor, MpsCard *card, MpsMovement *m,
				   const char *audit_action, const char *audit_after)
{
	Datum		v[30];
	char		n[31];
	bool		consume = m->consume_code && m->qr_code_id != 0;
	MpsPlan    *plan = &write_movement[(m->points_delta != 0 ? 1 : 0) + (consume ? 2 : 0)];
	bool		consumed;

	/* The xid before the audit event's id: audit.seal's horizon relies on that order. */
	(void) GetTopTransactionId();

	memset(n, ' ', sizeof(n));
	n[30] = '\0';
	v[0] = UUIDPGetDatum(&m->tx_id);
	v[1] = TimestampTzGetDatum(m->created_at);
	v[2] = UUIDPGetDatum(&card->id);
	v[3] = CStringGetTextDatum(m->kind);
	v[4] = CStringGetTextDatum(m->status);
	v[5] = CStringGetTextDatum(card->currency);
	v[6] = Int64GetDatum(m->amount);
	v[7] = Int64GetDatum(m->raw_amount);
	v[8] = Int64GetDatum(m->discount_amount);
	v[9] = Int64GetDatum(m->final_amount);
	v[10] = Int64GetDatum(m->points_delta);
	v[11] = Int64GetDatum(m->balance_after);
	v[12] = Int64GetDatum(m->points_after);
	if (m->level_before.valid)
		v[13] = Int32GetDatum(m->level_before.id);
	else
		n[13] = 'n';
	if (m->level_after.valid)
		v[14] = Int32GetDatum(m->level_after.id);
	else
		n[14] = 'n';
	SET_UUID(15, m->has_merchant, &m->merchant_id);
	SET_UUID(16, m->has_member, &m->member_id);
	SET_UUID(17, actor->has_user, &actor->user_id);
	SET_UUID(18, m->has_original, &m->original_tx_id);
	if (m->qr_code_id)
		v[19] = Int64GetDatum(m->qr_code_id);
	else
		n[19] = 'n';
	SET_TEXT(20, m->idempotency_key);
	SET_TEXT(21, m->order_no);
	SET_TEXT(22, m->reason);
	SET_TEXT(23, m->tag_json);
	SET_TEXT(24, m->details_json);
	v[25] = CStringGetTextDatum(m->ledger_reason ? m->ledger_reason : m->kind);
	SET_TEXT(26, actor->via);
	v[27] = BoolGetDatum(actor->is_admin);
	v[28] = CStringGetTextDatum(audit_action);
	v[29] = CStringGetTextDatum(audit_with_card(card, audit_after));
	if (mps_exec(plan, v, n, false, 1) != 1)
		elog(ERROR, "mps: card %s vanished under its lock", mps_uuid_to_cstring(&card->id));
	consumed = mps_col_bool(0, 1, false);

	card->balance = m->balance_after;
	card->points = m->points_after;
	card->level = m->level_after;
	return consumed;
}
