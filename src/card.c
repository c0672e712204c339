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

#include "audit.h"
#include "busy_card.h"
#include "card.h"
#include "errors.h"
#include "ids.h"
#include "money.h"
#include "mps.h"
#include "ref_cache.h"
#include "row_read.h"
#include "row_write.h"
#include "spi_util.h"

/* A card as read; the currency's caps and the level come from ref_cache.c. */
enum
{
	CARD_TYPE, CARD_STATUS, CARD_CURRENCY, CARD_LEVEL, CARD_BALANCE, CARD_POINTS,
	CARD_FIXED_DISCOUNT, CARD_EXPIRES_AT, CARD_NCOLS
};

static MpsTable card_columns = {
	"mps", "cards", CARD_NCOLS, {
		{"card_type", InvalidOid, MPS_COL_ENUM},
		{"status", InvalidOid, MPS_COL_ENUM},
		{"currency", BPCHAROID, MPS_COL_DATUM},
		{"level_id", INT4OID, MPS_COL_DATUM},
		{"balance", INT8OID, MPS_COL_DATUM},
		{"points", INT8OID, MPS_COL_DATUM},
		{"fixed_discount_bp", INT4OID, MPS_COL_DATUM},
		{"expires_at", TIMESTAMPTZOID, MPS_COL_DATUM},
	}
};
static MpsRowKey card_by_id = {&card_columns, 1, {"id"}};

/* The paying member's binding, by (card_id, member_id). */
static MpsTable binding_columns = {
	"mps", "card_bindings", 1, {
		{"role", InvalidOid, MPS_COL_ENUM},
	}
};
static MpsRowKey binding_by_member = {&binding_columns, 2, {"card_id", "member_id"}};

/* A code's state, by its id. */
static MpsTable code_state_columns = {
	"mps", "card_qr_codes", 2, {
		{"used_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"revoked_at", TIMESTAMPTZOID, MPS_COL_DATUM},
	}
};
static MpsRowKey code_by_id = {&code_state_columns, 1, {"id"}};

static void
copy_cstr(char *dst, size_t size, const char *src)
{
	strlcpy(dst, src ? src : "", size);
}

/* The card, locked when asked; false when there is none. */
static bool
read_card(const pg_uuid_t *card_id, bool for_update, MpsCard *card)
{
	Datum		key = UUIDPGetDatum((pg_uuid_t *) card_id);
	Datum		v[CARD_NCOLS];
	bool		n[CARD_NCOLS];
	MpsCurrency cur;

	memset(card, 0, sizeof(*card));
	if (!mps_row_read(&card_by_id, 0, &key, for_update, v, n, &card->tid))
		return false;
	if (!for_update)
		ItemPointerSetInvalid(&card->tid);
	card->id = *card_id;
	copy_cstr(card->card_type, sizeof(card->card_type), DatumGetCString(v[CARD_TYPE]));
	copy_cstr(card->status, sizeof(card->status), DatumGetCString(v[CARD_STATUS]));
	copy_cstr(card->currency, sizeof(card->currency), TextDatumGetCString(v[CARD_CURRENCY]));
	if (!n[CARD_LEVEL])
		mps_level_by_id(DatumGetInt32(v[CARD_LEVEL]), &card->level);
	card->balance = DatumGetInt64(v[CARD_BALANCE]);
	card->points = DatumGetInt64(v[CARD_POINTS]);
	card->fixed_discount_bp = DatumGetInt32(v[CARD_FIXED_DISCOUNT]);
	card->has_expiry = !n[CARD_EXPIRES_AT];
	card->expires_at = n[CARD_EXPIRES_AT] ? 0 : DatumGetTimestampTz(v[CARD_EXPIRES_AT]);
	mps_currency_of_row(card->currency, &cur);
	card->exponent = cur.exponent;
	card->max_amount = cur.max_amount;
	card->max_balance = cur.max_balance;
	return true;
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

	mps_busy_card_lock(MPS_LOCK_NS_CARD, (int32) key);
}

void
mps_card_lock_and_load(const pg_uuid_t *card_id, MpsCard *card)
{
	lock_card(card_id);
	if (!read_card(card_id, true, card))
		card_not_found(card_id);
}

void
mps_card_lock_for_payment(const pg_uuid_t *card_id, const pg_uuid_t *payer, int64 qr_id,
						  MpsCard *card, char **payer_role, bool *code_used, bool *code_revoked,
						  ItemPointerData *code_tid)
{
	Datum		key;
	Datum		v[2];
	bool		n[2];

	mps_card_lock_and_load(card_id, card);
	*payer_role = payer ? (char *) mps_card_binding_role(card_id, payer) : NULL;
	*code_used = false;
	*code_revoked = false;
	key = Int64GetDatum(qr_id);
	if (mps_row_read(&code_by_id, 0, &key, false, v, n, code_tid))
	{
		*code_used = !n[0];
		*code_revoked = !n[1];
	}
	else
		ItemPointerSetInvalid(code_tid);
}

bool
mps_card_peek(const pg_uuid_t *card_id, MpsCard *card)
{
	return read_card(card_id, false, card);
}

void
mps_card_load(const pg_uuid_t *card_id, MpsCard *card)
{
	if (!read_card(card_id, false, card))
		card_not_found(card_id);
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

const char *
mps_card_binding_role(const pg_uuid_t *card_id, const pg_uuid_t *member_id)
{
	Datum		keys[2];
	Datum		role;
	bool		isnull;

	keys[0] = UUIDPGetDatum((pg_uuid_t *) card_id);
	keys[1] = UUIDPGetDatum((pg_uuid_t *) member_id);
	if (!mps_row_read(&binding_by_member, 0, keys, false, &role, &isnull, NULL))
		return NULL;
	return DatumGetCString(role);
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

/* The rows a movement writes (see mps_movement_write). */
static MpsTable card_money = {
	"mps", "cards", 4, {
		{"balance", INT8OID, MPS_COL_DATUM},
		{"points", INT8OID, MPS_COL_DATUM},
		{"level_id", INT4OID, MPS_COL_DATUM},
		{"updated_at", TIMESTAMPTZOID, MPS_COL_DATUM},
	}
};

enum
{
	TX_ID, TX_CREATED_AT, TX_CARD_ID, TX_KIND, TX_STATUS, TX_CURRENCY, TX_AMOUNT, TX_RAW,
	TX_DISCOUNT, TX_FINAL, TX_REFUNDED, TX_POINTS_DELTA, TX_BALANCE_AFTER, TX_POINTS_AFTER,
	TX_LEVEL_BEFORE, TX_LEVEL_AFTER, TX_MERCHANT, TX_MEMBER, TX_ACTOR, TX_ORIGINAL, TX_QR,
	TX_IDEM_KEY, TX_ORDER_NO, TX_REASON, TX_TAG, TX_DETAILS, TX_NCOLS
};

static MpsTable transaction_row = {
	"mps", "transactions", TX_NCOLS, {
		{"id", UUIDOID, MPS_COL_DATUM},
		{"created_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"card_id", UUIDOID, MPS_COL_DATUM},
		{"kind", InvalidOid, MPS_COL_ENUM},
		{"status", InvalidOid, MPS_COL_ENUM},
		{"currency", BPCHAROID, MPS_COL_DATUM},
		{"amount", INT8OID, MPS_COL_DATUM},
		{"raw_amount", INT8OID, MPS_COL_DATUM},
		{"discount_amount", INT8OID, MPS_COL_DATUM},
		{"final_amount", INT8OID, MPS_COL_DATUM},
		{"refunded_amount", INT8OID, MPS_COL_DATUM},
		{"points_delta", INT8OID, MPS_COL_DATUM},
		{"balance_after", INT8OID, MPS_COL_DATUM},
		{"points_after", INT8OID, MPS_COL_DATUM},
		{"level_before", INT4OID, MPS_COL_DATUM},
		{"level_after", INT4OID, MPS_COL_DATUM},
		{"merchant_id", UUIDOID, MPS_COL_DATUM},
		{"member_id", UUIDOID, MPS_COL_DATUM},
		{"actor_user_id", UUIDOID, MPS_COL_DATUM},
		{"original_tx_id", UUIDOID, MPS_COL_DATUM},
		{"qr_code_id", INT8OID, MPS_COL_DATUM},
		{"idempotency_key", TEXTOID, MPS_COL_DATUM},
		{"order_no", TEXTOID, MPS_COL_DATUM},
		{"reason", TEXTOID, MPS_COL_DATUM},
		{"tag", JSONBOID, MPS_COL_DATUM},
		{"details", JSONBOID, MPS_COL_DATUM},
	}
};

static MpsTable ledger_row = {
	"mps", "point_ledger", 7, {
		{"id", INT8OID, MPS_COL_SEQUENCE},
		{"created_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"card_id", UUIDOID, MPS_COL_DATUM},
		{"tx_id", UUIDOID, MPS_COL_DATUM},
		{"delta", INT8OID, MPS_COL_DATUM},
		{"points_after", INT8OID, MPS_COL_DATUM},
		{"reason", TEXTOID, MPS_COL_DATUM},
	}
};

/* A code's use; revoked_at is read, not written. */
static MpsTable code_use = {
	"mps", "card_qr_codes", 3, {
		{"used_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"used_tx_id", UUIDOID, MPS_COL_DATUM},
		{"revoked_at", TIMESTAMPTZOID, MPS_COL_DATUM},
	}
};

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

#define SET_TEXT(i, s) do { if (s) v[i] = CStringGetTextDatum(s); else n[i] = true; } while (0)
#define SET_JSONB(i, s) do { if (s) v[i] = DirectFunctionCall1(jsonb_in, CStringGetDatum(s)); else n[i] = true; } while (0)
#define SET_UUID(i, has, u) do { if (has) v[i] = UUIDPGetDatum((pg_uuid_t *) (u)); else n[i] = true; } while (0)

/* Use up the code: false when it was used or revoked meanwhile (the job that expires codes takes no card lock). */
static bool
consume_code(MpsRowWrite *w, int t, const MpsMovement *m)
{
	ItemPointerData tid = m->qr_tid;
	Datum		v[3];
	bool		n[3] = {false, false, false};
	bool		set[3] = {true, true, false};
	bool		isnull;

	if (!ItemPointerIsValid(&tid) || !mps_row_lock(w, t, &tid))
		return false;
	(void) mps_row_value(w, t, 0, &isnull);
	if (!isnull)
		return false;
	(void) mps_row_value(w, t, 2, &isnull);
	if (!isnull)
		return false;
	v[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	v[1] = UUIDPGetDatum((pg_uuid_t *) &m->tx_id);
	mps_row_update(w, t, &tid, set, v, n);
	return true;
}

/*
 * A movement's rows go through row_write.c: one executor state for all of
 * them, no statement to plan or set up. The audit event's entity is the
 * transaction: its id is time-ordered, so the event index grows at its right
 * edge like the transactions' own; its "card_id" is added here, last so it
 * wins over any other, so every movement's event names its card. The code is used up first: when it is no
 * longer live nothing else is written, and the caller raises.
 */
bool
mps_movement_write(const MpsActor *actor, MpsCard *card, MpsMovement *m,
				   const char *audit_action, MpsJson *audit_after)
{
	MpsRowTarget targets[5];
	int			ntargets = 0;
	int			t_card, t_tx, t_event, t_ledger = -1, t_code = -1;
	MpsRowWrite w;
	Datum		v[TX_NCOLS];
	bool		n[TX_NCOLS];
	bool		set_card[4] = {true, true, true, true};

	if (!ItemPointerIsValid(&card->tid))
		elog(ERROR, "mps: movement on card %s without its lock", mps_uuid_to_cstring(&card->id));
	t_card = ntargets;
	targets[ntargets++] = (MpsRowTarget) {&card_money, 0};
	t_tx = ntargets;
	targets[ntargets++] = (MpsRowTarget) {&transaction_row, m->created_at};
	t_event = ntargets;
	targets[ntargets++] = (MpsRowTarget) {&mps_event_log_table, 0};
	if (m->points_delta != 0)
	{
		t_ledger = ntargets;
		targets[ntargets++] = (MpsRowTarget) {&ledger_row, m->created_at};
	}
	if (m->consume_code && m->qr_code_id != 0)
	{
		t_code = ntargets;
		targets[ntargets++] = (MpsRowTarget) {&code_use, 0};
	}
	mps_rows_begin(&w, ntargets, targets);

	if (t_code >= 0 && !consume_code(&w, t_code, m))
	{
		mps_rows_end(&w);
		return false;
	}

	memset(n, false, sizeof(n));
	v[0] = Int64GetDatum(m->balance_after);
	v[1] = Int64GetDatum(m->points_after);
	if (m->level_after.valid)
		v[2] = Int32GetDatum(m->level_after.id);
	else
		n[2] = true;
	v[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	mps_row_update(&w, t_card, &card->tid, set_card, v, n);

	memset(n, false, sizeof(n));
	v[TX_ID] = UUIDPGetDatum(&m->tx_id);
	v[TX_CREATED_AT] = TimestampTzGetDatum(m->created_at);
	v[TX_CARD_ID] = UUIDPGetDatum(&card->id);
	v[TX_KIND] = CStringGetDatum(m->kind);
	v[TX_STATUS] = CStringGetDatum(m->status);
	v[TX_CURRENCY] = CStringGetTextDatum(card->currency);
	v[TX_AMOUNT] = Int64GetDatum(m->amount);
	v[TX_RAW] = Int64GetDatum(m->raw_amount);
	v[TX_DISCOUNT] = Int64GetDatum(m->discount_amount);
	v[TX_FINAL] = Int64GetDatum(m->final_amount);
	v[TX_REFUNDED] = Int64GetDatum(0);
	v[TX_POINTS_DELTA] = Int64GetDatum(m->points_delta);
	v[TX_BALANCE_AFTER] = Int64GetDatum(m->balance_after);
	v[TX_POINTS_AFTER] = Int64GetDatum(m->points_after);
	if (m->level_before.valid)
		v[TX_LEVEL_BEFORE] = Int32GetDatum(m->level_before.id);
	else
		n[TX_LEVEL_BEFORE] = true;
	if (m->level_after.valid)
		v[TX_LEVEL_AFTER] = Int32GetDatum(m->level_after.id);
	else
		n[TX_LEVEL_AFTER] = true;
	SET_UUID(TX_MERCHANT, m->has_merchant, &m->merchant_id);
	SET_UUID(TX_MEMBER, m->has_member, &m->member_id);
	SET_UUID(TX_ACTOR, actor->has_user, &actor->user_id);
	SET_UUID(TX_ORIGINAL, m->has_original, &m->original_tx_id);
	if (m->qr_code_id)
		v[TX_QR] = Int64GetDatum(m->qr_code_id);
	else
		n[TX_QR] = true;
	SET_TEXT(TX_IDEM_KEY, m->idempotency_key);
	SET_TEXT(TX_ORDER_NO, m->order_no);
	SET_TEXT(TX_REASON, m->reason);
	v[TX_TAG] = m->tag;
	n[TX_TAG] = m->tag == (Datum) 0;
	if (m->details != (Datum) 0)
		v[TX_DETAILS] = m->details;
	else
		SET_JSONB(TX_DETAILS, m->details_json);
	mps_row_insert(&w, t_tx, v, n);

	if (t_ledger >= 0)
	{
		memset(n, false, sizeof(n));
		v[0] = (Datum) 0;
		v[1] = TimestampTzGetDatum(m->created_at);
		v[2] = UUIDPGetDatum(&card->id);
		v[3] = UUIDPGetDatum(&m->tx_id);
		v[4] = Int64GetDatum(m->points_delta);
		v[5] = Int64GetDatum(m->points_after);
		v[6] = CStringGetTextDatum(m->ledger_reason ? m->ledger_reason : m->kind);
		mps_row_insert(&w, t_ledger, v, n);
	}

	mps_json_str(audit_after, "card_id", mps_uuid_to_cstring(&card->id));
	mps_json_finish(audit_after);
	mps_audit_row(&w, t_event, actor, audit_action, "transaction", mps_uuid_to_cstring(&m->tx_id),
				  (Datum) 0, mps_json_jsonb(audit_after), m->idempotency_key);
	mps_rows_end(&w);

	card->balance = m->balance_after;
	card->points = m->points_after;
	card->level = m->level_after;
	return true;
}
