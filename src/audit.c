/*
 * audit.c — the C side of the audit trail.
 *
 * Events are appended on the hot path without a hash; audit.seal() chains the
 * committed ones later (see sql/30_audit.sql), so an audit insert never waits
 * for another card's audit.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "audit.h"
#include "spi_util.h"

/*
 * Every column with a default is given, as the table's defaults would fill
 * it: the identity id, clock_timestamp() and session_user.
 */
MpsTable	mps_event_log_table = {
	"audit", "event_log", false, 12, {
		{"id", INT8OID, MPS_COL_SEQUENCE},
		{"occurred_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"db_role", TEXTOID, MPS_COL_DATUM},
		{"actor_via", TEXTOID, MPS_COL_DATUM},
		{"actor_admin", BOOLOID, MPS_COL_DATUM},
		{"actor_user_id", UUIDOID, MPS_COL_DATUM},
		{"action", TEXTOID, MPS_COL_DATUM},
		{"entity_type", TEXTOID, MPS_COL_DATUM},
		{"entity_id", TEXTOID, MPS_COL_DATUM},
		{"before", JSONBOID, MPS_COL_JSONB},
		{"after", JSONBOID, MPS_COL_JSONB},
		{"idempotency_key", TEXTOID, MPS_COL_DATUM},
	}
};

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = s == NULL;
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

void
mps_audit_row(MpsRowWrite *w, int t, const MpsActor *actor, const char *action,
			  const char *entity_type, const char *entity_id, const char *before,
			  const char *after, const char *idempotency_key)
{
	Datum		v[12];
	bool		n[12];

	/* The xid before the event id: audit.seal's horizon relies on that order. */
	(void) GetTopTransactionId();
	memset(n, false, sizeof(n));
	v[0] = (Datum) 0;
	v[1] = TimestampTzGetDatum(GetCurrentTimestamp());
	v[2] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
	v[3] = text_or_null(actor->via, &n[3]);
	v[4] = BoolGetDatum(actor->is_admin);
	v[5] = UUIDPGetDatum((pg_uuid_t *) &actor->user_id);
	n[5] = !actor->has_user;
	v[6] = text_or_null(action, &n[6]);
	v[7] = text_or_null(entity_type, &n[7]);
	v[8] = text_or_null(entity_id, &n[8]);
	n[9] = before == NULL;
	v[9] = CStringGetDatum(before);
	n[10] = after == NULL;
	v[10] = CStringGetDatum(after);
	v[11] = text_or_null(idempotency_key, &n[11]);
	mps_row_insert(w, t, v, n);
}

void
mps_audit(const MpsActor *actor, const char *action, const char *entity_type,
		  const char *entity_id, const char *before, const char *after,
		  const char *idempotency_key)
{
	MpsRowWrite w;
	MpsRowTarget target = {&mps_event_log_table, 0};

	mps_rows_begin(&w, 1, &target);
	mps_audit_row(&w, 0, actor, action, entity_type, entity_id, before, after, idempotency_key);
	mps_rows_end(&w);
}

void
mps_json_start(StringInfo buf)
{
	initStringInfo(buf);
	appendStringInfoChar(buf, '{');
}

static void
key(StringInfo buf, const char *k)
{
	if (buf->len > 1)
		appendStringInfoChar(buf, ',');
	escape_json(buf, k);
	appendStringInfoChar(buf, ':');
}

void
mps_json_str(StringInfo buf, const char *k, const char *value)
{
	key(buf, k);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

void
mps_json_int(StringInfo buf, const char *k, int64 value)
{
	key(buf, k);
	appendStringInfo(buf, INT64_FORMAT, value);
}

void
mps_json_bool(StringInfo buf, const char *k, bool value)
{
	key(buf, k);
	appendStringInfoString(buf, value ? "true" : "false");
}

void
mps_json_raw(StringInfo buf, const char *k, const char *json)
{
	key(buf, k);
	appendStringInfoString(buf, json ? json : "null");
}

char *
mps_json_finish(StringInfo buf)
{
	appendStringInfoChar(buf, '}');
	return buf->data;
}

/* SQL-callable: the SQL-written RPCs audit through the same path and actor. */
PG_FUNCTION_INFO_V1(mps_audit_sql);
Datum
mps_audit_sql(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	char	   *before = NULL;
	char	   *after = NULL;

	mps_actor_resolve(&actor);
	if (!PG_ARGISNULL(3))
		before = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(3)));
	if (!PG_ARGISNULL(4))
		after = DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(4)));
	mps_spi_connect();
	mps_audit(&actor, text_to_cstring(PG_GETARG_TEXT_PP(0)), text_to_cstring(PG_GETARG_TEXT_PP(1)),
			  PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)), before, after,
			  PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5)));
	mps_spi_finish();
	PG_RETURN_VOID();
}
