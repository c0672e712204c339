/*
 * bcrypt.h — bcrypt hashing and checking (libxcrypt; pgcrypto for random tokens).
 */
#ifndef MPS_BCRYPT_H
#define MPS_BCRYPT_H

/* A "$2b$" hash of secret at the given cost (palloc'd). */
extern char *mps_bcrypt_hash(const char *secret, int cost);

/* Does secret match the stored hash? Compares in constant time. */
extern bool mps_bcrypt_matches(const char *secret, const char *hash);

/*
 * The same check for a random ASCII token such as a QR secret, through
 * pgcrypto (faster); falls back to mps_bcrypt_matches for anything else.
 */
extern bool mps_bcrypt_matches_token(const char *secret, const char *hash);

#endif
