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
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "audit.h"
#include "errors.h"

/*
 * Every column with a default is given, as the table's defaults would fill
 * it: the identity id, clock_timestamp() and session_user.
 */
MpsTable	mps_event_log_table = {
	"audit", "event_log", 12, {
		{"id", INT8OID, MPS_COL_SEQUENCE},
		{"occurred_at", TIMESTAMPTZOID, MPS_COL_DATUM},
		{"db_role", TEXTOID, MPS_COL_DATUM},
		{"actor_via", TEXTOID, MPS_COL_DATUM},
		{"actor_admin", BOOLOID, MPS_COL_DATUM},
		{"actor_user_id", UUIDOID, MPS_COL_DATUM},
		{"action", TEXTOID, MPS_COL_DATUM},
		{"entity_type", TEXTOID, MPS_COL_DATUM},
		{"entity_id", TEXTOID, MPS_COL_DATUM},
		{"before", JSONBOID, MPS_COL_DATUM},
		{"after", JSONBOID, MPS_COL_DATUM},
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
			  const char *entity_type, const char *entity_id, Datum before, Datum after,
			  const char *idempotency_key)
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
	n[9] = before == (Datum) 0;
	v[9] = before;
	n[10] = after == (Datum) 0;
	v[10] = after;
	v[11] = text_or_null(idempotency_key, &n[11]);
	mps_row_insert(w, t, v, n);
}

static Datum
jsonb_or_none(const char *json)
{
	return json ? DirectFunctionCall1(jsonb_in, CStringGetDatum(json)) : (Datum) 0;
}

void
mps_audit(const MpsActor *actor, const char *action, const char *entity_type,
		  const char *entity_id, const char *before, const char *after,
		  const char *idempotency_key)
{
	MpsRowWrite w;
	MpsRowTarget target = {&mps_event_log_table, 0};

	mps_rows_begin(&w, 1, &target);
	mps_audit_row(&w, 0, actor, action, entity_type, entity_id, jsonb_or_none(before),
				  jsonb_or_none(after), idempotency_key);
	mps_rows_end(&w);
}

void
mps_json_start(MpsJson *j)
{
	initStringInfo(&j->text);
	appendStringInfoChar(&j->text, '{');
	j->state = NULL;
	j->object = NULL;
	j->has_raw = false;
	(void) pushJsonbValue(&j->state, WJB_BEGIN_OBJECT, NULL);
}

static void
key(MpsJson *j, const char *k)
{
	JsonbValue	v;

	if (j->text.len > 1)
		appendStringInfoChar(&j->text, ',');
	escape_json(&j->text, k);
	appendStringInfoChar(&j->text, ':');
	v.type = jbvString;
	v.val.string.val = pstrdup(k);
	v.val.string.len = strlen(k);
	(void) pushJsonbValue(&j->state, WJB_KEY, &v);
}

static void
value(MpsJson *j, JsonbValue *v)
{
	if (!j->has_raw)
		(void) pushJsonbValue(&j->state, WJB_VALUE, v);
}

void
mps_json_str(MpsJson *j, const char *k, const char *s)
{
	JsonbValue	v;

	key(j, k);
	if (s)
	{
		escape_json(&j->text, s);
		v.type = jbvString;
		v.val.string.val = pstrdup(s);
		v.val.string.len = strlen(s);
	}
	else
	{
		appendStringInfoString(&j->text, "null");
		v.type = jbvNull;
	}
	value(j, &v);
}

void
mps_json_int(MpsJson *j, const char *k, int64 n)
{
	JsonbValue	v;

	key(j, k);
	appendStringInfo(&j->text, INT64_FORMAT, n);
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	value(j, &v);
}

void
mps_json_bool(MpsJson *j, const char *k, bool b)
{
	JsonbValue	v;

	key(j, k);
	appendStringInfoString(&j->text, b ? "true" : "false");
	v.type = jbvBool;
	v.val.boolean = b;
	value(j, &v);
}

void
mps_json_raw(MpsJson *j, const char *k, const char *json)
{
	key(j, k);
	appendStringInfoString(&j->text, json ? json : "null");
	j->has_raw = true;
}

char *
mps_json_finish(MpsJson *j)
{
	appendStringInfoChar(&j->text, '}');
	if (!j->has_raw)
		j->object = pushJsonbValue(&j->state, WJB_END_OBJECT, NULL);
	return j->text.data;
}

Datum
mps_json_jsonb(MpsJson *j)
{
	Assert(j->text.data[j->text.len - 1] == '}');
	if (j->has_raw)
		return DirectFunctionCall1(jsonb_in, CStringGetDatum(j->text.data));
	return JsonbPGetDatum(JsonbValueToJsonb(j->object));
}

/* SQL-callable: the SQL-written RPCs audit through the same path and actor. */
PG_FUNCTION_INFO_V1(mps_audit_sql);
Datum
mps_audit_sql(PG_FUNCTION_ARGS)
{
	MpsActor	actor;
	MpsRowTarget target = {&mps_event_log_table, 0};
	MpsRowWrite w;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("audit event needs an action and an entity type"),
				 errdetail("p_action or p_entity_type is missing."),
				 errhint("Name the action (e.g. merchant.create) and the entity type.")));
	mps_actor_resolve(&actor);
	mps_rows_begin(&w, 1, &target);
	mps_audit_row(&w, 0, &actor, text_to_cstring(PG_GETARG_TEXT_PP(0)),
				  text_to_cstring(PG_GETARG_TEXT_PP(1)),
				  PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
				  PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3),
				  PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4),
				  PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5)));
	mps_rows_end(&w);
	PG_RETURN_VOID();
}
