/*
 * merchant.h — the merchant a money call acts for, and who may act for it.
 */
#ifndef MPS_MERCHANT_H
#define MPS_MERCHANT_H

#include "postgres.h"
#include "utils/uuid.h"

#include "actor.h"

typedef struct MpsMerchant
{
	pg_uuid_t	id;
	char		code[40];
	char		status[16];
	char		currency[4];
	int			exponent;
	int64		max_amount;
} MpsMerchant;

/*
 * Load by code (MP401 unknown, MP402 not active) and check that the caller is
 * one of its users or the platform admin (42501).
 */
extern void mps_merchant_for_call(const MpsActor *actor, const char *code, const char *action,
								  MpsMerchant *m);

#endif
