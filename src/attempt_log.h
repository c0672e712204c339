/*
 * attempt_log.h — recording a refused binding-password attempt so that it
 * survives the caller's rollback.
 */
#ifndef MPS_ATTEMPT_LOG_H
#define MPS_ATTEMPT_LOG_H

#include "postgres.h"
#include "utils/uuid.h"

#include "actor.h"

/*
 * Take the card's attempt lock until the (sub)transaction ends: one attempt
 * per card at a time, and a bounded number of attempt workers (attempt_log.c).
 * Count and check a card's attempts only under it.
 */
extern void mps_attempt_serialize(const pg_uuid_t *card_id);

/*
 * Write (card, member, outcome) to mps.card_binding_attempts and an audit
 * event in a transaction of its own (a short-lived background worker), and
 * wait for it. Raises MP214 when it could not be recorded: a refusal that
 * cannot be counted is not given at all.
 */
extern void mps_record_attempt_autonomously(const MpsActor *actor, const pg_uuid_t *card_id,
											const pg_uuid_t *member_id, bool has_member,
											const char *outcome);

#endif
