/*
 * merchant.c — resolving the merchant of a charge or refund.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "errors.h"
#include "merchant.h"
#include "ref_cache.h"
#include "spi_util.h"

/* The merchant and whether the calling user ($2, NULL for none) is one of its users. */
static MpsPlan merchant_by_code = {
	"SELECT m.id, m.code, m.status::text, m.currency::text,"
	" EXISTS (SELECT 1 FROM mps.merchant_users u WHERE u.merchant_id = m.id AND u.user_id = $2)"
	" FROM mps.merchants m WHERE m.code = upper(btrim($1))",
	2, {TEXTOID, UUIDOID}
};

void
mps_merchant_for_call(const MpsActor *actor, const char *code, const char *action, MpsMerchant *m)
{
	Datum		v[2];
	char		n[3] = "  ";
	bool		is_user;
	MpsCurrency cur;

	memset(m, 0, sizeof(*m));
	if (code == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MERCHANT_UNKNOWN),
				 errmsg("unknown merchant"),
				 errdetail("p_merchant_code is missing."),
				 errhint("Pass the merchant's code, e.g. SHOP001.")));
	v[0] = CStringGetTextDatum(code);
	if (actor->has_user)
		v[1] = UUIDPGetDatum((pg_uuid_t *) &actor->user_id);
	else
		n[1] = 'n';
	if (mps_exec(&merchant_by_code, v, n, false, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MERCHANT_UNKNOWN),
				 errmsg("unknown merchant"),
				 errdetail("No merchant has code \"%s\".", code),
				 errhint("Check the merchant code.")));
	mps_col_uuid(0, 1, &m->id);
	strlcpy(m->code, mps_col_text(0, 2), sizeof(m->code));
	strlcpy(m->status, mps_col_text(0, 3), sizeof(m->status));
	strlcpy(m->currency, mps_col_text(0, 4), sizeof(m->currency));
	is_user = mps_col_bool(0, 5, false);
	mps_currency_of_row(m->currency, &cur);
	m->exponent = cur.exponent;
	m->max_amount = cur.max_amount;

	/* Who may act for it comes before what state it is in. */
	if (!actor->is_admin && !is_user)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: %s for merchant %s", action, m->code),
				 errdetail("The caller is not a user of merchant %s.", m->code),
				 errhint("Sign in as one of the merchant's operators.")));
	if (strcmp(m->status, "active") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MERCHANT_INACTIVE),
				 errmsg("merchant is not active"),
				 errdetail("Merchant %s is %s.", m->code, m->status),
				 errhint("The platform admin can reactivate it with update_merchant().")));
}
