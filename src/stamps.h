/*
 * stamps.h — stamp cards: earning, redeeming inside a charge, reversing.
 */
#ifndef MPS_STAMPS_H
#define MPS_STAMPS_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "utils/uuid.h"

#include "pricing.h"

typedef struct MpsRedemption
{
	int32		activity_id;	/* 0: none */
	int32		required;
	bool		cyclic;
	int32		comped_units;
	int32		progress_current;
	int32		progress_cycles;
} MpsRedemption;

/*
 * Check the member can redeem the activity (MP112, MP114, MP115), lock their
 * progress, and mark the reward units comped in the order (MP116 when no line
 * qualifies). Call before pricing. Needs SPI.
 */
extern void mps_stamps_prepare_redemption(const pg_uuid_t *member, int32 group_id, int32 activity_id,
										  MpsPriced *priced, MpsRedemption *r);

/* Write the redemption (if any) and the stamps this order earns; a JSON array into summary. */
extern void mps_stamps_commit(const pg_uuid_t *member, int32 group_id, const MpsPriced *priced,
							  const MpsRedemption *r, const pg_uuid_t *tx_id, StringInfo summary);

/* A full refund of tx_id: take back what it earned (not below zero) and its redemption. */
extern void mps_stamps_reverse(const pg_uuid_t *tx_id, const pg_uuid_t *refund_tx_id);

#endif
