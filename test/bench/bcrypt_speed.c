/*
 * bcrypt_speed.c — single-thread speed of one bcrypt verification through
 * libxcrypt's crypt_r (what the MPS C core uses), to set beside pgcrypto's
 * crypt() (what the SQL reference statements use). Prints ms per verify.
 *
 *   cc -O2 bcrypt_speed.c -o bcrypt_speed -lcrypt && ./bcrypt_speed 4 2000
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
main(int argc, char **argv)
{
	int			cost = argc > 1 ? atoi(argv[1]) : 4;
	int			n = argc > 2 ? atoi(argv[2]) : 2000;
	const char *secret = "abcdefghijklmnopqrstuv";	/* 22 characters, like a QR secret */
	char		setting[CRYPT_GENSALT_OUTPUT_SIZE];
	char		hash[CRYPT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(struct crypt_data));
	struct timespec a, b;
	const char *out;
	int			ok = 0;

	if (cd == NULL ||
		crypt_gensalt_rn("$2b$", cost, "0123456789abcdef", 16, setting, sizeof(setting)) == NULL)
		return 1;
	out = crypt_r(secret, setting, cd);
	if (out == NULL || out[0] == '*')
		return 1;
	strcpy(hash, out);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++)
		ok += strcmp(crypt_r(secret, hash, cd), hash) == 0;
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (ok != n)
		return 1;
	printf("%.4f\n", ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / n);
	return 0;
}
