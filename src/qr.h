/*
 * qr.h — QR payment codes: issue, verify, check their state.
 */
#ifndef MPS_QR_H
#define MPS_QR_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/uuid.h"

#include "compat.h"

#define MPS_QR_LOOKUP_LEN 12	/* 9 random bytes, base64url */
#define MPS_QR_SECRET_LEN 22	/* 16 random bytes (128 bits), base64url */

typedef struct MpsQr
{
	int64		id;
	char		lookup[MPS_QR_LOOKUP_LEN + 1];
	pg_uuid_t	card_id;
	bool		has_holder;
	pg_uuid_t	holder_member_id;
	TimestampTz expires_at;
} MpsQr;

/* Split "MPS1.<lookup>.<secret>"; raises MP301 when malformed. */
extern void mps_qr_parse(const char *plain, char *lookup, char *secret);

/*
 * Find the code by its lookup id and run the one bcrypt check; raises MP301
 * (unknown or wrong secret), MP303 revoked, MP304 used, MP302 expired. Needs
 * SPI; takes no lock.
 */
extern void mps_qr_verify(const char *plain, MpsQr *qr);

/* Raise MP303/MP304 when the code, as read under the card lock, is revoked or used up. */
extern void mps_qr_require_live(const MpsQr *qr, bool used, bool revoked);

/* After a consumption found the code taken: raise the error its state calls for. */
mps_noreturn extern void mps_qr_raise_taken(const MpsQr *qr);

/*
 * Proof that the member is present, for what moves uses rather than money
 * (pass redemption, listing her passes): mps_qr_verify, and the code must be
 * a member's own (not a card's shared code) whose holder is still bound to
 * its card, not as a viewer (MP301, MP209). Needs SPI; takes no lock.
 */
extern void mps_qr_verify_member(const char *plain, MpsQr *qr);

/* Use up a verified single-use code for use_id (a redemption batch); MP303/MP304 when taken meanwhile. */
extern void mps_qr_consume(const MpsQr *qr, const pg_uuid_t *use_id);

#endif
