/*
 * pricing.h — line items priced by a marketing group's stacked rules.
 */
#ifndef MPS_PRICING_H
#define MPS_PRICING_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#define MPS_MAX_PCT_RULES_PER_GROUP 6
/* Units on one line item (MP006 above): a till line, not a wholesale order. */
#define MPS_MAX_LINE_QUANTITY 1000

typedef struct MpsRule
{
	int32		id;
	char	   *name;
	char	   *receipt_name;
	char		scope;			/* 'G'lobal, 'C'ategory, 'P'roduct */
	char	   *target_id;
	bool		percentage;
	int32		value_bp;		/* percentage rules */
	int64		amount_minor;	/* fixed-amount rules, per unit */
} MpsRule;

typedef struct MpsLine
{
	char	   *product_id;
	char	   *category_id;	/* may be NULL */
	int32		quantity;
	int64		unit_price;		/* minor units */
	int32		comped_units;	/* units given away by a stamp reward */
	int64		line_total;		/* quantity * unit_price, before anything */
	int64		final_amount;	/* after the rules, comped units free */
} MpsLine;

typedef struct MpsPriced
{
	int			nlines;
	MpsLine    *lines;
	int64		items_total;	/* sum of line totals */
	int64		subtotal;		/* sum of line finals */
	int64		card_discount;
	int64		final_amount;
	StringInfoData details;		/* JSON: lines with their applied rules, totals */
} MpsPriced;

/*
 * Parse p_items (MP006 on anything malformed); a product the catalogue holds
 * takes its category from there. Needs SPI.
 */
extern void mps_parse_items(Jsonb *items, int exponent, int64 max_amount, const char *currency,
							MpsPriced *out);

/* The member's active marketing group, 0 when none. Needs SPI. */
extern int32 mps_member_group(const pg_uuid_t *member_id);

/* Active rules of the group for the currency, in id order. Needs SPI. */
extern int	mps_load_rules(int32 group_id, const char *currency, MpsRule **rules);

/*
 * Price every line with the rules, then the card discount (basis points) on
 * the subtotal; fills the totals and the details JSON.
 */
extern void mps_price(MpsPriced *p, const MpsRule *rules, int nrules, int32 card_discount_bp,
					  int exponent);

/* Price one line (final_amount); with details given, append its JSON. */
extern void mps_price_line(MpsLine *line, const MpsRule *rules, int nrules, StringInfo details,
						   int exponent);

/* The marketing feature gate: raises MP005 when mps.marketing_enabled is off. */
extern void mps_require_marketing(void);

#endif
