/*
 * bcrypt.c — the one place MPS runs bcrypt: QR secrets and card binding
 * passwords are stored only as bcrypt hashes made and checked here.
 *
 * Hashes are made by libxcrypt ("$2b$"). A QR secret, checked on every
 * charge, is verified by pgcrypto's crypt() instead, which the benchmark
 * measures about 8 % faster than libxcrypt's crypt_r at the same cost.
 * pgcrypto knows the prefix "$2a$" but not "$2b$"; the two compute the same
 * hash for any secret of ASCII characters shorter than 72 bytes, which every
 * QR secret is (22 base64url characters), so the stored "$2b$" hash is
 * checked under "$2a$". Binding passwords, chosen by people, stay on libxcrypt.
 */
#include "postgres.h"

#include <crypt.h>

#include "fmgr.h"
#include "port.h"
#include "utils/builtins.h"

#include "bcrypt.h"

char *
mps_bcrypt_hash(const char *secret, int cost)
{
	char		setting[CRYPT_GENSALT_OUTPUT_SIZE];
	unsigned char salt[16];
	struct crypt_data *cd;
	char	   *hash;

	if (!pg_strong_random(salt, sizeof(salt)))
		ereport(ERROR, (errmsg("could not generate random bytes")));
	if (crypt_gensalt_rn("$2b$", cost, (const char *) salt, sizeof(salt),
						 setting, sizeof(setting)) == NULL)
		elog(ERROR, "mps: crypt_gensalt_rn failed");
	cd = palloc0(sizeof(struct crypt_data));
	hash = crypt_r(secret, setting, cd);
	if (hash == NULL || hash[0] == '*')
		elog(ERROR, "mps: bcrypt failed");
	hash = pstrdup(hash);
	pfree(cd);
	return hash;
}

bool
mps_bcrypt_matches(const char *secret, const char *hash)
{
	struct crypt_data *cd = palloc0(sizeof(struct crypt_data));
	const char *out = crypt_r(secret, hash, cd);
	size_t		len = strlen(hash);
	unsigned char diff = 0;
	size_t		i;

	if (out == NULL || out[0] == '*' || strlen(out) != len)
	{
		pfree(cd);
		return false;
	}
	for (i = 0; i < len; i++)
		diff |= (unsigned char) (out[i] ^ hash[i]);
	pfree(cd);
	return diff == 0;
}

/* pgcrypto's crypt(text, text), found once per backend. */
static PGFunction pgcrypto_crypt = NULL;

bool
mps_bcrypt_matches_token(const char *secret, const char *hash)
{
	size_t		len = strlen(hash);
	char	   *as_2a;
	char	   *out;
	unsigned char diff = 0;
	size_t		i;

	if (len != 60 || strncmp(hash, "$2b$", 4) != 0 || strlen(secret) >= 72)
		return mps_bcrypt_matches(secret, hash);
	for (i = 0; secret[i]; i++)
		if ((unsigned char) secret[i] >= 0x80)
			return mps_bcrypt_matches(secret, hash);
	if (pgcrypto_crypt == NULL)
		pgcrypto_crypt = load_external_function("$libdir/pgcrypto", "pg_crypt", true, NULL);
	as_2a = pstrdup(hash);
	as_2a[2] = 'a';
	out = TextDatumGetCString(DirectFunctionCall2(pgcrypto_crypt,
												  CStringGetTextDatum(secret),
												  CStringGetTextDatum(as_2a)));
	if (strlen(out) != len)
		return false;
	for (i = 0; i < len; i++)
		diff |= (unsigned char) (out[i] ^ as_2a[i]);
	return diff == 0;
}
