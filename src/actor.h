/*
 * actor.h — who is calling: resolved once per call from the PostgREST JWT
 * claims or from the database role.
 */
#ifndef MPS_ACTOR_H
#define MPS_ACTOR_H

#include "postgres.h"
#include "utils/guc.h"
#include "utils/uuid.h"

typedef struct MpsActor
{
	bool		is_admin;		/* platform admin: service_role claim under service_role, superuser, or mps_admin member */
	bool		has_user;		/* a JWT subject, or the user a database login is mapped to */
	pg_uuid_t	user_id;		/* the JWT subject (auth user id) */
	const char *via;			/* "jwt" or "db_role" (for the audit log) */
} MpsActor;

extern void mps_actor_resolve(MpsActor *actor);

/* GUC check hook of mps.jwt_roles. */
extern bool mps_check_jwt_roles(char **newval, void **extra, GucSource source);

/* Raise 42501 unless the caller is a platform admin. */
extern void mps_actor_require_admin(const MpsActor *actor, const char *action);

/* Raise 42501 unless the caller carries a JWT subject (or is admin when allowed). */
extern void mps_actor_require_user(const MpsActor *actor, const char *action);

/* The caller's member profile id; false when the subject has no profile. Needs SPI. */
extern bool mps_actor_member_id(const MpsActor *actor, pg_uuid_t *member_id);

/* Is the caller a user of any merchant? Needs SPI. */
extern bool mps_actor_is_merchant_user_anywhere(const MpsActor *actor);

extern char *mps_uuid_to_cstring(const pg_uuid_t *u);

#endif
