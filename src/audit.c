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
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/uuid.h"

#include "audit.h"
#include "spi_util.h"

static MpsPlan insert_event = {
	"INSERT INTO audit.event_log (actor_via, actor_admin, actor_user_id, action, entity_type,"
	" entity_id, before, after, idempotency_key)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9)",
	9, {TEXTOID, BOOLOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID}
};

static Datum
text_or_null(const char *s, char *null_flag)
{
	*null_flag = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

void
mps_audit(const MpsActor *actor, const char *action, const char *entity_type,
		  const char *entity_id, const char *before, const char *after,
		  const char *idempotency_key)
{
	Datum		v[9];
	char		n[10] = "         ";

	/* The xid before the event id: audit.seal's horizon relies on that order. */
	(void) GetTopTransactionId();

	v[0] = text_or_null(actor->via, &n[0]);
	v[1] = BoolGetDatum(actor->is_admin);
	if (actor->has_user)
		v[2] = UUIDPGetDatum((pg_uuid_t *) &actor->user_id);
	else
		n[2] = 'n';
	v[3] = text_or_null(action, &n[3]);
	v[4] = text_or_null(entity_type, &n[4]);
	v[5] = text_or_null(entity_id, &n[5]);
	v[6] = text_or_null(before, &n[6]);
	v[7] = text_or_null(after, &n[7]);
	v[8] = text_or_null(idempotency_key, &n[8]);
	mps_exec(&insert_event, v, n, false, 0);
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
