/*
 * bcrypt.c — the one place MPS calls libxcrypt: QR secrets and card binding
 * passwords are stored only as bcrypt hashes made and checked here.
 */
#include "postgres.h"

#include <crypt.h>

#include "port.h"

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
