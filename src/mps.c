/*
 * mps.c — module entry: GUCs and the library magic.
 *
 * Every setting that changes what money or secrets do is PGC_SUSET, so only a
 * superuser (or ALTER SYSTEM / ALTER DATABASE by one) can change it.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "actor.h"
#include "busy_card.h"
#include "xact_wait.h"
#include "mps.h"
#include "ref_cache.h"

PG_MODULE_MAGIC;

int			mps_qr_bcrypt_cost = 4;
int			mps_qr_default_ttl = 900;
int			mps_qr_max_ttl = 86400;
char	   *mps_default_currency = NULL;
int			mps_password_bcrypt_cost = 10;
int			mps_binding_max_attempts = 5;
int			mps_binding_window = 900;
bool		mps_marketing_enabled = true;
char	   *mps_jwt_roles = NULL;
int			mps_stripe_tolerance = 300;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("mps.qr_bcrypt_cost",
							"bcrypt cost used for new QR payment codes.",
							"The secret has 128 random bits, so a low cost loses nothing; raise it to taste.",
							&mps_qr_bcrypt_cost, 4, 4, 31,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("mps.qr_default_ttl",
							"Default lifetime of a QR payment code, in seconds.",
							NULL,
							&mps_qr_default_ttl, 900, 30, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("mps.qr_max_ttl",
							"Longest lifetime a caller may ask for a QR payment code, in seconds.",
							NULL,
							&mps_qr_max_ttl, 86400, 30, 604800,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("mps.default_currency",
							   "Currency of new cards and merchants when the caller names none.",
							   NULL,
							   &mps_default_currency, "CNY",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("mps.password_bcrypt_cost",
							"bcrypt cost used for card binding passwords.",
							"People choose these, so the cost is real; each step doubles the work.",
							&mps_password_bcrypt_cost, 10, 4, 15,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("mps.binding_max_attempts",
							"Wrong binding passwords allowed per card within mps.binding_window.",
							NULL,
							&mps_binding_max_attempts, 5, 1, 100,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("mps.binding_window",
							"Window over which wrong binding passwords are counted, in seconds.",
							NULL,
							&mps_binding_window, 900, 60, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("mps.marketing_enabled",
							 "Whether marketing groups, line-item pricing and stamps are available.",
							 "The deployment's plan gate: off refuses every marketing call.",
							 &mps_marketing_enabled, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("mps.jwt_roles",
							   "Roles PostgREST switches into; request.jwt.claims count only under these.",
							   "Any other role is who the database says it is, whatever claims it sets.",
							   &mps_jwt_roles, "anon,authenticated,service_role",
							   PGC_SUSET, GUC_LIST_INPUT, mps_check_jwt_roles, NULL, NULL);
	DefineCustomIntVariable("mps.stripe_tolerance",
							"Largest age of a Stripe webhook signature accepted, in seconds.",
							"Older (or as far in the future) signed events are refused as replays (MP953).",
							&mps_stripe_tolerance, 300, 1, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);
	mps_busy_card_init();
	mps_xact_wait_init();
	mps_ref_cache_init();
	MarkGUCPrefixReserved("mps");
}
