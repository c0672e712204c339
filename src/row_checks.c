/*
 * row_checks.c — the CHECK constraints of cards and transactions.
 *
 * Every movement updates a card and writes a transaction. PostgreSQL parses
 * and plans each CHECK constraint of a table again for every statement that
 * writes it (the expression is stored as a node tree in text form), and for
 * these two tables the rules spelled out in SQL are about 12 KB of node text
 * per movement. A call to one of these functions is a short node tree, so
 * each table's rules cost one small parse per statement. The rules are the
 * ones a column-by-column CHECK would state; test 25_invariants breaks each.
 *
 * Both functions are non-strict and say NULL ("not known", which a CHECK
 * lets pass) only where SQL would: for a NULL in a NOT NULL column, which is
 * refused before any CHECK runs.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "compat.h"

/* The label of an enum value, for the rules that depend on a kind or type. */
static const char *
enum_label(Datum value)
{
	return DatumGetCString(DirectFunctionCall1(enum_out, value));
}

static bool
is_card_number(text *t)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len != 16)
		return false;
	for (int i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool
is_bcrypt_hash(text *t)
{
	return VARSIZE_ANY_EXHDR(t) >= 2 && memcmp(VARDATA_ANY(t), "$2", 2) == 0;
}

/*
 * card_row_valid(card_no, card_type, balance, points, fixed_discount_bp,
 *                binding_password_hash, face_value, level_id):
 * a 16-digit card number; balance and points never negative; a fixed
 * discount between 0 and 10000 basis points, and only on corporate cards;
 * levels only on standard cards; a binding password only as a bcrypt hash;
 * a face value, when set, above 0, and always set on a voucher.
 */
PG_FUNCTION_INFO_V1(mps_card_row_valid);
Datum
mps_card_row_valid(PG_FUNCTION_ARGS)
{
	const char *type;
	int32		fixed_bp;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		PG_RETURN_NULL();
	type = enum_label(PG_GETARG_DATUM(1));
	fixed_bp = PG_GETARG_INT32(4);
	PG_RETURN_BOOL(is_card_number(PG_GETARG_TEXT_PP(0))
				   && PG_GETARG_INT64(2) >= 0
				   && PG_GETARG_INT64(3) >= 0
				   && fixed_bp >= 0 && fixed_bp <= 10000
				   && (fixed_bp == 0 || strcmp(type, "corporate") == 0)
				   && (PG_ARGISNULL(5) || is_bcrypt_hash(PG_GETARG_TEXT_PP(5)))
				   && (PG_ARGISNULL(6) ? strcmp(type, "voucher") != 0 : PG_GETARG_INT64(6) > 0)
				   && (PG_ARGISNULL(7) || strcmp(type, "standard") == 0));
}

/*
 * transaction_row_valid(kind, amount, raw_amount, discount_amount,
 *                       final_amount, refunded_amount, balance_after,
 *                       points_after, original_tx_id):
 * the price parts never negative and raw - discount = final; refunds of it
 * never above its final amount; balance and points after it never negative;
 * a payment or pass purchase takes its final amount off the card, a refund or
 * recharge puts it on, and a refund names the payment it refunds. Other kinds
 * (adjustments, pass redemptions) may move any amount.
 */
PG_FUNCTION_INFO_V1(mps_transaction_row_valid);
Datum
mps_transaction_row_valid(PG_FUNCTION_ARGS)
{
	const char *kind;
	int64		amount;
	int64		raw;
	int64		discount;
	int64		final;
	int64		refunded;
	bool		sign_ok;

	for (int i = 0; i < 8; i++)
		if (PG_ARGISNULL(i))
			PG_RETURN_NULL();
	kind = enum_label(PG_GETARG_DATUM(0));
	amount = PG_GETARG_INT64(1);
	raw = PG_GETARG_INT64(2);
	discount = PG_GETARG_INT64(3);
	final = PG_GETARG_INT64(4);
	refunded = PG_GETARG_INT64(5);

	if (strcmp(kind, "payment") == 0 || strcmp(kind, "pass_purchase") == 0)
		sign_ok = final != PG_INT64_MIN && amount == -final;
	else if (strcmp(kind, "refund") == 0)
		sign_ok = amount == final && !PG_ARGISNULL(8);
	else if (strcmp(kind, "recharge") == 0)
		sign_ok = amount == final;
	else
		sign_ok = true;

	/* raw - discount = final, with both >= 0 checked first so it cannot overflow */
	PG_RETURN_BOOL(raw >= 0 && discount >= 0 && final >= 0
				   && raw - discount == final
				   && refunded >= 0 && refunded <= final
				   && PG_GETARG_INT64(6) >= 0
				   && PG_GETARG_INT64(7) >= 0
				   && sign_ok);
}
