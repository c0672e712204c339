/*
 * ref_cache.h — the currencies and membership levels, kept per backend.
 */
#ifndef MPS_REF_CACHE_H
#define MPS_REF_CACHE_H

#include "postgres.h"

#include "card.h"

typedef struct MpsCurrency
{
	char		code[4];
	int			exponent;
	int64		max_amount;
	int64		max_balance;
} MpsCurrency;

/* The currency with this code into *out; false when none. Needs an SPI connection. */
extern bool mps_currency_find(const char *code, MpsCurrency *out);

/* The currency of a row whose foreign key names it (a missing one is a bug). Needs SPI. */
extern void mps_currency_of_row(const char *code, MpsCurrency *out);

/* The level with this id into *out (out->valid false when none). Needs SPI. */
extern void mps_level_by_id(int32 id, MpsLevel *out);

/* The highest level whose min_points <= points (out->valid false when none). Needs SPI. */
extern void mps_level_by_points(int64 points, MpsLevel *out);

/* Registers the invalidation callback; called once from _PG_init. */
extern void mps_ref_cache_init(void);

#endif
