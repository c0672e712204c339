/*
 * actor.c — identity: resolves the caller of every RPC, in one place.
 *
 * PostgREST puts the verified JWT claims into the transaction-local setting
 * request.jwt.claims (after the transaction it reads '' rather than NULL, so
 * '' means "no claims"). Any session can set that setting, so claims count
 * only while the role in effect is one PostgREST switches into (mps.jwt_roles),
 * and a service_role claim makes an admin only under the service_role role.
 * Every other role is who the database says: superusers and members of
 * mps_admin are platform admins (psql, pg_cron); a login the platform admin
 * mapped in mps.db_role_users acts as that user (a POS server); anyone else
 * is nobody.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"
#include "utils/uuid.h"

#include "actor.h"
#include "busy_card.h"
#include "mps.h"
#include "spi_util.h"

#define ADMIN_ROLE "mps_admin"

/* Role oid by name, or InvalidOid when the role does not exist. */
static Oid
role_oid(const char *name)
{
	return get_role_oid(name, true);
}

/* Is the role in effect one PostgREST switches into (mps.jwt_roles)? */
static bool
is_jwt_role(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);
	char	   *list;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (name == NULL)
		return false;
	list = pstrdup(mps_jwt_roles ? mps_jwt_roles : "");
	if (!SplitIdentifierString(list, ',', &names))
		return true;			/* the check hook keeps this from happening; fail closed */
	foreach(lc, names)
	{
		if (strcmp((char *) lfirst(lc), name) == 0)
			found = true;
	}
	list_free(names);
	pfree(list);
	return found;
}

bool
mps_check_jwt_roles(char **newval, void **extra, GucSource source)
{
	char	   *list = pstrdup(*newval ? *newval : "");
	List	   *names;
	bool		ok = SplitIdentifierString(list, ',', &names);

	if (!ok)
		GUC_check_errdetail("mps.jwt_roles must be a comma-separated list of role names.");
	else
		list_free(names);
	pfree(list);
	return ok;
}

/* The user a database login was mapped to (mps.db_role_users), if any. */
static MpsPlan mapped_user = {
	"SELECT user_id FROM mps.db_role_users WHERE role_name = $1", 1, {NAMEOID}
};

static bool
db_role_user(Oid role, pg_uuid_t *user_id)
{
	char	   *rolname = GetUserNameFromId(role, true);
	Oid			rel;
	HeapTuple	tup;
	Oid			owner;
	Oid			save_user;
	int			save_sec;
	NameData	n;
	Datum		v[1];
	volatile bool found = false;

	/* A 0.1.0 database not yet updated has no such table: nobody is mapped. */
	rel = get_relname_relid("db_role_users", get_namespace_oid("mps", true));
	if (rolname == NULL || !OidIsValid(rel))
		return false;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
	if (!HeapTupleIsValid(tup))
		return false;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	namestrcpy(&n, rolname);
	v[0] = NameGetDatum(&n);
	/*
	 * Read as the table's owner: the caller (an RLS policy runs this as her)
	 * may not read the mapping. A nested SPI level of its own, as callers may
	 * or may not be connected.
	 */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		mps_spi_connect();
		if (mps_exec(&mapped_user, v, NULL, true, 1) > 0)
			found = mps_col_uuid(0, 1, user_id); /* copied by value */
		mps_spi_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	return found;
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

	if (is_jwt_role(outer))
	{
		Jsonb	   *jb;
		char	   *role;
		char	   *sub;

		actor->via = "jwt";
		if (claims == NULL || claims[0] == '\0')
			return;				/* a PostgREST role without claims is nobody */
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
		role = jsonb_string(jb, "role");
		sub = jsonb_string(jb, "sub");

		/* A service_role claim counts only under the service_role role itself. */
		if (role != NULL && strcmp(role, "service_role") == 0 && outer == role_oid("service_role"))
			actor->is_admin = true;
		if (sub != NULL && looks_like_uuid(sub))
		{
			pg_uuid_t  *u = DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(sub)));

			actor->user_id = *u;
			actor->has_user = true;
		}
		return;
	}

	/* Any other role: claims it set itself count for nothing. */
	actor->via = "db_role";
	{
		Oid			admin = role_oid(ADMIN_ROLE);

		if (superuser_arg(outer) || (OidIsValid(admin) && has_privs_of_role(outer, admin)))
			actor->is_admin = true;
		else if (db_role_user(outer, &actor->user_id))
			actor->has_user = true;
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

/*
 * ---- SQL-callable: the same resolution for the SQL-written RPCs and RLS ----
 * Every SQL-written RPC, reads included, and every RLS policy asks who is
 * calling through these; with early release on, that is where a read makes
 * sure what it can see is on disk (busy_card.c).
 */

PG_FUNCTION_INFO_V1(mps_caller_is_admin);
Datum
mps_caller_is_admin(PG_FUNCTION_ARGS)
{
	MpsActor	a;

	mps_flush_if_early_release();
	mps_actor_resolve(&a);
	PG_RETURN_BOOL(a.is_admin);
}

PG_FUNCTION_INFO_V1(mps_caller_user_id);
Datum
mps_caller_user_id(PG_FUNCTION_ARGS)
{
	MpsActor	a;
	pg_uuid_t  *u;

	mps_flush_if_early_release();
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

	mps_flush_if_early_release();
	mps_actor_resolve(&a);
	mps_actor_require_admin(&a, text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
