/*
 * idem.h — idempotency keys and merchant order numbers.
 */
#ifndef MPS_IDEM_H
#define MPS_IDEM_H

#include "postgres.h"
#include "common/cryptohash.h"
#include "datatype/timestamp.h"
#include "utils/uuid.h"

/* A digest of every parameter of a request (sha256 over length-prefixed fields). */
typedef struct MpsRequestHash
{
	pg_cryptohash_ctx *ctx;
	uint8		digest[32];
} MpsRequestHash;

extern void mps_reqhash_init(MpsRequestHash *h, const char *operation);
extern void mps_reqhash_str(MpsRequestHash *h, const char *value);	/* NULL allowed */
extern void mps_reqhash_uuid(MpsRequestHash *h, const pg_uuid_t *value);
extern void mps_reqhash_final(MpsRequestHash *h);

/* Raise MP506 unless the key is 1..200 printable characters. */
extern void mps_idem_check_key(const char *key);

/*
 * Claim (scope, key) for a new movement with id tx_id. Returns true when the
 * key is new. Returns false when an earlier call with the same parameters owns
 * it (its movement is put in *prior_tx / *prior_at: replay it). Raises MP501
 * when the key was used with other parameters or for another operation. A
 * concurrent call with the same key waits here until the first one ends.
 */
extern bool mps_idem_claim(const pg_uuid_t *scope, const char *key, const char *operation,
						   const MpsRequestHash *h, const pg_uuid_t *tx_id, TimestampTz tx_at,
						   pg_uuid_t *prior_tx, TimestampTz *prior_at);

/* Claim a merchant order number for a movement; raises MP502 when it is taken. */
extern void mps_order_claim(const pg_uuid_t *merchant_id, const char *order_no,
							const pg_uuid_t *tx_id, TimestampTz tx_at);

/* Raise MP004 unless the order number is 1..64 printable characters. */
extern void mps_order_check(const char *order_no);

#endif
