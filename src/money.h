/*
 * money.h — amounts: numeric major units at the edge, int64 minor units inside.
 */
#ifndef MPS_MONEY_H
#define MPS_MONEY_H

#include "postgres.h"
#include "utils/numeric.h"

/* Rejects NaN, infinities, zero, negatives, excess decimals and amounts above max_minor. */
extern int64 mps_amount_from_numeric(Numeric value, int exponent, int64 max_minor,
									 const char *param, const char *currency);
/* The same, optionally accepting zero (a unit price of a free item). */
extern int64 mps_amount_from_numeric_ex(Numeric value, int exponent, int64 max_minor,
										const char *param, const char *currency, bool allow_zero);
/* The largest minor-unit exponent a currency may have (mps.currencies' CHECK). */
#define MPS_MAX_EXPONENT 4

extern Numeric mps_numeric_from_minor(int64 minor, int exponent);

/* round_half_up(amount * bp / 10000), exact, for amount >= 0 and 0 <= bp <= 10000. */
extern int64 mps_basis_points_of(int64 amount, int32 bp);

/* floor(amount * num / den) with a 128-bit intermediate; all arguments >= 0, den > 0. */
extern int64 mps_mul_div_floor(int64 amount, int64 num, int64 den);

#endif
