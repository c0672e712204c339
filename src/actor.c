/*
 * actor.c — identity: resolves the caller of every RPC, in one place.
 *
 * PostgREST puts the verified JWT claims into the transaction-local setting
 * request.jwt.claims (after the transaction it reads '' rather than NULL, so
 * '' means "no claims"). Without claims the database role decides: superusers
 * and members of mps_admin are platform admins (psql, pg_cron), but never when
 * the role in effect is one of the API roles anon/authenticated.
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "actor.h"
#include "spi_util.h"

#define ADMIN_ROLE "mps_admin"

/* Role oid by name, or InvalidOid when the role does not exist. */
static Oid
role_oid(const char *name)
{
	return get_role_oid(name, true);
}

static bool
is_api_role(Oid role)
{
	Oid			anon = role_oid("anon");
	Oid			authenticated = role_oid("authenticated");

	return (OidIsValid(anon) && role == anon) ||
		(OidIsValid(authenticated) && role == authenticated);
}

/* Text value of a top-level string key of a jsonb object, or NULL. */
static char *
jsonb_string(Jsonb *jb, const char *key)
{
	JsonbValue	k;
	JsonbValue *v;

	if (!JB_ROOT_IS_OBJECT(jb))
		return NULL;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

static bool
looks_like_uuid(const char *s)
{
	int			i;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
		}
		else if (!isxdigit((unsigned char) s[i]))
			return false;
	}
	return true;
}

void
mps_actor_resolve(MpsActor *actor)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	Oid			outer = GetOuterUserId();

	memset(actor, 0, sizeof(*actor));

	if (claims != NULL && claims[0] != '\0')
	{
		Jsonb	   *jb;
		char	   *role;
		char	   *sub;

		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
		role = jsonb_string(jb, "role");
		sub = jsonb_string(jb, "sub");
		actor->via = "jwt";

		/* A service_role claim counts only from a role that is not anon/authenticated. */
		if (role != NULL && strcmp(role, "service_role") == 0 && !is_api_role(outer))
			actor->is_admin = true;
		if (sub != NULL && looks_like_uuid(sub))
		{
			pg_uuid_t  *u = DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(sub)));

			actor->user_id = *u;
			actor->has_user = true;
		}
		return;
	}

	actor->via = "db_role";
	if (!is_api_role(outer))
	{
		Oid			admin = role_oid(ADMIN_ROLE);

		if (superuser_arg(outer) || (OidIsValid(admin) && has_privs_of_role(outer, admin)))
			actor->is_admin = true;
	}
}

void
mps_actor_require_admin(const MpsActor *actor, const char *action)
{
	if (!actor->is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: %s needs a platform admin", action),
				 errdetail("The caller is %s.",
						   actor->has_user ? "an authenticated user without platform-admin rights"
						   : "not signed in"),
				 errhint("Call it with the service_role key, or as a database role in mps_admin.")));
}

void
mps_actor_require_user(const MpsActor *actor, const char *action)
{
	if (!actor->has_user && !actor->is_admin)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: %s needs a signed-in user", action),
				 errdetail("No JWT subject came with the call."),
				 errhint("Sign in first and call it with the user's access token.")));
}

char *
mps_uuid_to_cstring(const pg_uuid_t *u)
{
	return DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum((pg_uuid_t *) u)));
}

static MpsPlan member_by_user = {
	"SELECT id FROM mps.member_profiles WHERE auth_user_id = $1 AND status = 'active'",
	1, {UUIDOID}
};

bool
mps_actor_member_id(const MpsActor *actor, pg_uuid_t *member_id)
{
	Datum		v[1];

	if (!actor->has_user)
		return false;
	v[0] = UUIDPGetDatum((pg_uuid_t *) &actor->user_id);
	if (mps_exec(&member_by_user, v, NULL, false, 1) == 0)
		return false;
	return mps_col_uuid(0, 1, member_id);
}

static MpsPlan merchant_user_anywhere = {
	"SELECT 1 FROM mps.merchant_users WHERE user_id = $1 LIMIT 1", 1, {UUIDOID}
};

bool
mps_actor_is_merchant_user_anywhere(const MpsActor *actor)
{
	Datum		v[1];

	if (!actor->has_user)
		return false;
	v[0] = UUIDPGetDatum((pg_uuid_t *) &actor->user_id);
	return mps_exec(&merchant_user_anywhere, v, NULL, false, 1) > 0;
}

/* ---- SQL-callable: the same resolution for the SQL-written RPCs and RLS ---- */

PG_FUNCTION_INFO_V1(mps_caller_is_admin);
Datum
mps_caller_is_admin(PG_FUNCTION_ARGS)
{
	MpsActor	a;

	mps_actor_resolve(&a);
	PG_RETURN_BOOL(a.is_admin);
}

PG_FUNCTION_INFO_V1(mps_caller_user_id);
Datum
mps_caller_user_id(PG_FUNCTION_ARGS)
{
	MpsActor	a;
	pg_uuid_t  *u;

	mps_actor_resolve(&a);
	if (!a.has_user)
		PG_RETURN_NULL();
	u = palloc(sizeof(pg_uuid_t));
	*u = a.user_id;
	PG_RETURN_UUID_P(u);
}

PG_FUNCTION_INFO_V1(mps_require_admin);
Datum
mps_require_admin(PG_FUNCTION_ARGS)
{
	MpsActor	a;

	mps_actor_resolve(&a);
	mps_actor_require_admin(&a, text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
