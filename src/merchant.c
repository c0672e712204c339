/*
 * merchant.c — resolving the merchant of a charge or refund.
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "errors.h"
#include "merchant.h"
#include "ref_cache.h"
#include "row_read.h"

/* The merchant, by its code. */
static MpsTable merchant_columns = {
	"mps", "merchants", 4, {
		{"id", UUIDOID, MPS_COL_DATUM},
		{"code", TEXTOID, MPS_COL_DATUM},
		{"status", InvalidOid, MPS_COL_ENUM},
		{"currency", BPCHAROID, MPS_COL_DATUM},
	}
};
static MpsRowKey merchant_by_code = {&merchant_columns, 1, {"code"}};

/* Whether a user is one of the merchant's, by (merchant_id, user_id). */
static MpsTable merchant_user_columns = {
	"mps", "merchant_users", 1, {
		{"role", InvalidOid, MPS_COL_ENUM},
	}
};
static MpsRowKey merchant_user = {&merchant_user_columns, 2, {"merchant_id", "user_id"}};

/*
 * The refusal of a caller who is not the merchant's: the same whether the
 * code names no merchant or another's, so it tells nothing of which.
 */
static void
not_the_callers(const char *action, const char *code)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: %s for merchant %s", action, code),
			 errdetail("The caller is not a user of merchant %s.", code),
			 errhint("Sign in as one of the merchant's operators.")));
}

void
mps_merchant_for_call(const MpsActor *actor, const char *code, const char *action, MpsMerchant *m)
{
	Datum		key[2];
	Datum		v[4];
	bool		n[4];
	bool		is_user;
	MpsCurrency cur;

	memset(m, 0, sizeof(*m));
	if (code == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MERCHANT_UNKNOWN),
				 errmsg("unknown merchant"),
				 errdetail("p_merchant_code is missing."),
				 errhint("Pass the merchant's code, e.g. SHOP001.")));
	/* As the code was always matched: upper(btrim(code)). */
	key[0] = DirectFunctionCall1Coll(upper, DEFAULT_COLLATION_OID,
									 DirectFunctionCall1(btrim1, CStringGetTextDatum(code)));
	if (!mps_row_read(&merchant_by_code, 0, key, false, v, n, NULL))
	{
		/* Only the platform admin learns that a code names no merchant. */
		if (!actor->is_admin)
			not_the_callers(action, TextDatumGetCString(key[0]));
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MERCHANT_UNKNOWN),
				 errmsg("unknown merchant"),
				 errdetail("No merchant has code \"%s\".", code),
				 errhint("Check the merchant code.")));
	}
	m->id = *DatumGetUUIDP(v[0]);
	text_to_cstring_buffer(DatumGetTextPP(v[1]), m->code, sizeof(m->code));
	strlcpy(m->status, DatumGetCString(v[2]), sizeof(m->status));
	text_to_cstring_buffer(DatumGetTextPP(v[3]), m->currency, sizeof(m->currency));
	is_user = false;
	if (actor->has_user)
	{
		key[0] = UUIDPGetDatum(&m->id);
		key[1] = UUIDPGetDatum((pg_uuid_t *) &actor->user_id);
		is_user = mps_row_read(&merchant_user, 0, key, false, v, n, NULL);
	}
	mps_currency_of_row(m->currency, &cur);
	m->exponent = cur.exponent;
	m->max_amount = cur.max_amount;

	/* Who may act for it comes before what state it is in. */
	if (!actor->is_admin && !is_user)
		not_the_callers(action, m->code);
	if (strcmp(m->status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MERCHANT_INACTIVE),
				 errmsg("merchant is not active"),
				 errdetail("Merchant %s is %s.", m->code, m->status),
				 errhint("The platform admin can reactivate it with update_merchant().")));
}
