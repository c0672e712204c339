/*
 * idem.c — idempotency keys and merchant order numbers.
 *
 * The claim is the first write of a movement: INSERT ... ON CONFLICT DO
 * NOTHING into the registry, with the movement's id decided beforehand. A
 * second call with the same key blocks on the first one's index entry until
 * it commits (then it reads the row and replays it) or aborts (then it claims
 * the key itself). So two concurrent calls produce exactly one movement, and
 * a failed call leaves no trace of its key.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "actor.h"
#include "busy_card.h"
#include "errors.h"
#include "idem.h"
#include "row_write.h"
#include "spi_util.h"

void
mps_reqhash_init(MpsRequestHash *h, const char *operation)
{
	h->ctx = pg_cryptohash_create(PG_SHA256);
	if (h->ctx == NULL || pg_cryptohash_init(h->ctx) < 0)
		elog(ERROR, "mps: could not start sha256");
	mps_reqhash_str(h, operation);
}

void
mps_reqhash_str(MpsRequestHash *h, const char *value)
{
	/* Length-prefixed, with -1 for NULL, so no two field lists collide. */
	int64		len = value ? (int64) strlen(value) : -1;

	if (pg_cryptohash_update(h->ctx, (const uint8 *) &len, sizeof(len)) < 0 ||
		(value && pg_cryptohash_update(h->ctx, (const uint8 *) value, len) < 0))
		elog(ERROR, "mps: sha256 update failed");
}

void
mps_reqhash_uuid(MpsRequestHash *h, const pg_uuid_t *value)
{
	mps_reqhash_str(h, value ? mps_uuid_to_cstring(value) : NULL);
}

void
mps_reqhash_final(MpsRequestHash *h)
{
	if (pg_cryptohash_final(h->ctx, h->digest, sizeof(h->digest)) < 0)
		elog(ERROR, "mps: sha256 final failed");
	pg_cryptohash_free(h->ctx);
	h->ctx = NULL;
}

/*
 * 1..max_len characters (UTF-8 code points, not bytes), no control
 * characters, and not only spaces.
 */
static bool
printable(const char *s, int max_len)
{
	int			chars = 0;
	bool		visible = false;

	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c < 0x20 || c == 0x7f)
			return false;
		if ((c & 0xC0) != 0x80)
			chars++;			/* not a UTF-8 continuation byte */
		if (c != ' ')
			visible = true;
	}
	return visible && chars >= 1 && chars <= max_len;
}

void
mps_idem_check_key(const char *key)
{
	if (key == NULL || !printable(key, 200))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_IDEMPOTENCY_KEY_INVALID),
				 errmsg("invalid idempotency key"),
				 errdetail("p_idempotency_key is %s.", key == NULL ? "missing" : "blank, longer than 200 characters or has control characters"),
				 errhint("Pass a unique key of 1 to 200 printable characters per movement (e.g. a UUID), and the same key when retrying it.")));
}

void
mps_order_check(const char *order_no)
{
	if (order_no != NULL && !printable(order_no, 64))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_INVALID),
				 errmsg("invalid order number"),
				 errdetail("p_order_no is blank, longer than 64 characters or has control characters."),
				 errhint("Pass the merchant's own order number (1 to 64 printable characters), or leave it out.")));
}

/* A key's row; created_at as its default (now()) would give it. */
static MpsTable key_row = {
	"mps", "idempotency_registry", 7, {
		{"scope_id", UUIDOID, MPS_COL_DATUM},
		{"key", TEXTOID, MPS_COL_DATUM},
		{"operation", TEXTOID, MPS_COL_DATUM},
		{"request_hash", BYTEAOID, MPS_COL_DATUM},
		{"tx_id", UUIDOID, MPS_COL_DATUM},
		{"tx_created_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"created_at", TIMESTAMPTZOID, MPS_COL_DATUM},
	}
};

/* Insert a registry row unless its key is taken (as ON CONFLICT DO NOTHING); false when taken. */
static bool
claim(MpsTable *table, Datum *values)
{
	MpsRowTarget target = {table, 0, true};
	MpsRowWrite w;
	bool		claimed;

	mps_rows_begin(&w, 1, &target);
	claimed = mps_row_insert_if_new(&w, 0, values, NULL);
	mps_rows_end(&w);
	return claimed;
}

static MpsPlan read_key = {
	"SELECT operation, request_hash = $3, tx_id, tx_created_at FROM mps.idempotency_registry"
	" WHERE scope_id = $1 AND key = $2",
	3, {UUIDOID, TEXTOID, BYTEAOID}
};

bool
mps_idem_claim(const pg_uuid_t *scope, const char *key, const char *operation,
			   const MpsRequestHash *h, const pg_uuid_t *tx_id, TimestampTz tx_at,
			   pg_uuid_t *prior_tx, TimestampTz *prior_at)
{
	Datum		v[7];
	bytea	   *digest = palloc(VARHDRSZ + sizeof(h->digest));
	char	   *prior_op;
	bool		same;

	SET_VARSIZE(digest, VARHDRSZ + sizeof(h->digest));
	memcpy(VARDATA(digest), h->digest, sizeof(h->digest));
	v[0] = UUIDPGetDatum((pg_uuid_t *) scope);
	v[1] = CStringGetTextDatum(key);
	v[2] = CStringGetTextDatum(operation);
	v[3] = PointerGetDatum(digest);
	v[4] = UUIDPGetDatum((pg_uuid_t *) tx_id);
	v[5] = TimestampTzGetDatum(tx_at);
	v[6] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (claim(&key_row, v))
		return true;

	v[2] = PointerGetDatum(digest);
	if (mps_exec(&read_key, v, NULL, false, 1) == 0)
		elog(ERROR, "mps: idempotency key vanished after a conflict");
	prior_op = mps_col_text(0, 1);
	same = mps_col_bool(0, 2, false);
	if (strcmp(prior_op, operation) != 0 || !same)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_IDEMPOTENCY_CONFLICT),
				 errmsg("idempotency key reused with different parameters"),
				 errdetail("Key \"%s\" was first used for %s with other parameters.", key, prior_op),
				 errhint("Retry with exactly the first call's parameters, or use a new key for a new movement.")));
	mps_col_uuid(0, 3, prior_tx);
	*prior_at = mps_col_timestamptz(0, 4, 0);
	/* The first call may still be flushing its commit (busy_card.c); report it only once on disk. */
	mps_flush_before_report();
	return false;
}

static MpsTable order_row = {
	"mps", "merchant_order_registry", 5, {
		{"merchant_id", UUIDOID, MPS_COL_DATUM},
		{"order_no", TEXTOID, MPS_COL_DATUM},
		{"tx_id", UUIDOID, MPS_COL_DATUM},
		{"tx_created_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"created_at", TIMESTAMPTZOID, MPS_COL_DATUM},
	}
};

void
mps_order_claim(const pg_uuid_t *merchant_id, const char *order_no,
				const pg_uuid_t *tx_id, TimestampTz tx_at)
{
	Datum		v[5];

	v[0] = UUIDPGetDatum((pg_uuid_t *) merchant_id);
	v[1] = CStringGetTextDatum(order_no);
	v[2] = UUIDPGetDatum((pg_uuid_t *) tx_id);
	v[3] = TimestampTzGetDatum(tx_at);
	v[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	if (!claim(&order_row, v))
	{
		/* "Charged before" tells the merchant the order is paid: as a replay, only once on disk. */
		mps_flush_before_report();
		ereport(ERROR,
				(errcode(ERRCODE_MPS_ORDER_NO_USED),
				 errmsg("order number already charged"),
				 errdetail("Order \"%s\" of this merchant was charged before.", order_no),
				 errhint("Each order is charged once; retry a failed call with its original idempotency key.")));
	}
}
