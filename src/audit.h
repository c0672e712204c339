/*
 * audit.h — appending to audit.event_log from C.
 */
#ifndef MPS_AUDIT_H
#define MPS_AUDIT_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "actor.h"
#include "row_write.h"

/*
 * Append one event. before/after are JSON object texts (or NULL); build them
 * with the mps_json_* helpers.
 */
extern void mps_audit(const MpsActor *actor, const char *action, const char *entity_type,
					  const char *entity_id, const char *before, const char *after,
					  const char *idempotency_key);

/* audit.event_log, for a write set that appends its event with mps_audit_row. */
extern MpsTable mps_event_log_table;

/*
 * mps_audit, as one row of write set w (target t is mps_event_log_table);
 * before/after are jsonb datums, (Datum) 0 for none.
 */
extern void mps_audit_row(MpsRowWrite *w, int t, const MpsActor *actor, const char *action,
						  const char *entity_type, const char *entity_id, Datum before,
						  Datum after, const char *idempotency_key);

/*
 * A flat JSON object built field by field, as text (for messages and
 * results) and at the same time as jsonb (for the tables), so that storing
 * it parses nothing. A field of raw JSON text makes mps_json_jsonb parse the
 * text instead.
 */
typedef struct MpsJson
{
	StringInfoData text;
	JsonbParseState *state;
	JsonbValue *object;			/* set by mps_json_finish */
	bool		has_raw;
} MpsJson;

extern void mps_json_start(MpsJson *j);
extern void mps_json_str(MpsJson *j, const char *key, const char *value);
extern void mps_json_int(MpsJson *j, const char *key, int64 value);
extern void mps_json_bool(MpsJson *j, const char *key, bool value);
extern void mps_json_raw(MpsJson *j, const char *key, const char *json);
/* Close the object; returns its text. */
extern char *mps_json_finish(MpsJson *j);
/* The finished object as a jsonb datum. */
extern Datum mps_json_jsonb(MpsJson *j);

#endif
