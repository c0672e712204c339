/*
 * ids.h — identifiers MPS makes itself: time-ordered transaction ids, their
 * printable numbers, and random tokens.
 */
#ifndef MPS_IDS_H
#define MPS_IDS_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/uuid.h"

/* A UUIDv7 whose millisecond prefix is taken from ts (so the id finds its partition). */
extern void mps_uuid7(TimestampTz ts, pg_uuid_t *out);

/* The printable transaction number for an id: "MP" + 26 Crockford base32 digits. */
extern char *mps_tx_no(const pg_uuid_t *id);

/* n random bytes as unpadded base64url (pg_strong_random). */
extern char *mps_random_token(int nbytes);

#endif
