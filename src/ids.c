/*
 * ids.c — transaction ids and random tokens.
 *
 * Transaction ids are UUIDv7: 48 bits of Unix milliseconds taken from the
 * row's created_at, then random bits. A refund can therefore derive the
 * original's month from its id and probe one partition only. The number shown
 * to people is the same 128 bits in Crockford base32, so it is unique without
 * any counter row.
 */
#include "postgres.h"

#include "fmgr.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "ids.h"

void
mps_uuid7(TimestampTz ts, pg_uuid_t *out)
{
	/* TimestampTz counts microseconds since 2000-01-01; UUIDv7 wants Unix ms. */
	int64		unix_ms = (ts / 1000) +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
	int			i;

	if (!pg_strong_random(out->data, UUID_LEN))
		ereport(ERROR, (errmsg("could not generate random bytes")));
	for (i = 0; i < 6; i++)
		out->data[i] = (unsigned char) (unix_ms >> (40 - 8 * i));
	out->data[6] = (out->data[6] & 0x0F) | 0x70;	/* version 7 */
	out->data[8] = (out->data[8] & 0x3F) | 0x80;	/* RFC 4122 variant */
}

char *
mps_tx_no(const pg_uuid_t *id)
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	char	   *out = palloc(2 + 26 + 1);
	int			bit;
	int			n = 0;

	out[n++] = 'M';
	out[n++] = 'P';
	/* 128 bits, 5 at a time from the top: 26 digits (the last has 3 bits). */
	for (bit = 0; bit < 128; bit += 5)
	{
		int			v = 0;
		int			k;

		for (k = 0; k < 5; k++)
		{
			int			b = bit + k;

			v <<= 1;
			if (b < 128 && (id->data[b / 8] >> (7 - b % 8)) & 1)
				v |= 1;
		}
		out[n++] = alphabet[v];
	}
	out[n] = '\0';
	return out;
}

char *
mps_random_token(int nbytes)
{
	static const char b64url[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char *raw = palloc(nbytes);
	char	   *out = palloc((nbytes * 4) / 3 + 4);
	int			i;
	int			n = 0;
	uint32		acc = 0;
	int			bits = 0;

	if (!pg_strong_random(raw, nbytes))
		ereport(ERROR, (errmsg("could not generate random bytes")));
	for (i = 0; i < nbytes; i++)
	{
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6)
		{
			bits -= 6;
			out[n++] = b64url[(acc >> bits) & 0x3F];
		}
	}
	if (bits > 0)
		out[n++] = b64url[(acc << (6 - bits)) & 0x3F];
	out[n] = '\0';
	pfree(raw);
	return out;
}

PG_FUNCTION_INFO_V1(mps_tx_no_sql);
Datum
mps_tx_no_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(mps_tx_no(PG_GETARG_UUID_P(0))));
}

/* A 16-digit card number: "8", 14 random digits, and the Luhn check digit. */
PG_FUNCTION_INFO_V1(mps_new_card_no);
Datum
mps_new_card_no(PG_FUNCTION_ARGS)
{
	char		no[17];
	unsigned char raw[14];
	int			sum = 0;
	int			i;

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR, (errmsg("could not generate random bytes")));
	no[0] = '8';
	for (i = 0; i < 14; i++)
		no[i + 1] = '0' + raw[i] % 10;	/* slight bias is harmless: numbers are not secrets */
	/* Luhn over the 15 digits, doubling every other one from the right-most. */
	for (i = 0; i < 15; i++)
	{
		int			d = no[14 - i] - '0';

		if (i % 2 == 0)
		{
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	no[15] = '0' + (10 - sum % 10) % 10;
	no[16] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(no));
}
