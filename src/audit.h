/*
 * audit.h — appending to audit.event_log from C.
 */
#ifndef MPS_AUDIT_H
#define MPS_AUDIT_H

#include "postgres.h"
#include "lib/stringinfo.h"

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

/* mps_audit, as one row of write set w (target t is mps_event_log_table). */
extern void mps_audit_row(MpsRowWrite *w, int t, const MpsActor *actor, const char *action,
						  const char *entity_type, const char *entity_id, const char *before,
						  const char *after, const char *idempotency_key);

/* Tiny JSON object builder: start, add fields, finish (returns the text). */
extern void mps_json_start(StringInfo buf);
extern void mps_json_str(StringInfo buf, const char *key, const char *value);
extern void mps_json_int(StringInfo buf, const char *key, int64 value);
extern void mps_json_bool(StringInfo buf, const char *key, bool value);
extern void mps_json_raw(StringInfo buf, const char *key, const char *json);
extern char *mps_json_finish(StringInfo buf);

#endif
