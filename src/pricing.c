/*
 * pricing.c — marketing-group pricing of line items (seed 004), exact.
 *
 * Every active rule of the member's group that matches a line applies, and
 * they all stack: first the PERCENTAGE rules, in rule id order, each
 * multiplying what is left by (1 - r/100); then the FIXED_AMOUNT rules, each
 * taking its amount per unit; never below zero. The arithmetic is exact:
 * a line total L after k percentage rules is L * prod(10000 - bp_i) /
 * 10000^k, held as an integer at scale 10000^k in 128 bits (a group has at
 * most 6 percentage rules, so this cannot overflow for any allowed amount).
 * The line is rounded once, half-up, to the minor unit. Each rule's reported
 * amount is the difference of the rounded running totals before and after it,
 * so the amounts add up exactly to the line's discount. The card's discount
 * is then taken on the subtotal, rounded half-up once.
 */
#include "postgres.h"

#include "common/int.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "actor.h"
#include "card.h"
#include "errors.h"
#include "money.h"
#include "mps.h"
#include "pricing.h"
#include "ref_cache.h"
#include "spi_util.h"

void
mps_require_marketing(void)
{
	if (!mps_marketing_enabled)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_FEATURE_DISABLED),
				 errmsg("marketing features are switched off"),
				 errdetail("mps.marketing_enabled is off in this deployment."),
				 errhint("Ask the platform admin to enable marketing groups (mps.marketing_enabled = on).")));
}

static void
items_invalid(int line, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_ITEMS_INVALID),
			 errmsg("invalid line items"),
			 line > 0 ? errdetail("Line %d: %s.", line, why) : errdetail("%s.", why),
			 errhint("Pass p_items as [{\"product_id\": \"P1\", \"category_id\": \"C1\", \"quantity\": 2, \"unit_price\": 3.50}, ...].")));
}

static JsonbValue *
item_field(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
}

static char *
id_field(JsonbContainer *obj, const char *key, int line, bool required)
{
	JsonbValue *v = item_field(obj, key);
	char	   *s;

	if (v == NULL || v->type == jbvNull)
	{
		if (required)
			items_invalid(line, psprintf("%s is missing", key));
		return NULL;
	}
	if (v->type == jbvString)
		s = pnstrdup(v->val.string.val, v->val.string.len);
	else if (v->type == jbvNumeric)
		s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	else
		items_invalid(line, psprintf("%s must be a string", key));
	if (strlen(s) < 1 || strlen(s) > 64)
		items_invalid(line, psprintf("%s must have 1 to 64 characters", key));
	return s;
}

static MpsPlan catalogue_categories = {
	"SELECT p.id, p.category_id FROM mps.products p WHERE p.id = ANY ($1) AND p.deleted_at IS NULL",
	1, {TEXTARRAYOID}
};

/*
 * Where the catalogue holds a line's product, the line's category is the
 * catalogue's, whatever the till sent: CATEGORY rules and stamp targets go by
 * it, so a till cannot move an item into a discounted or stamped category.
 * Products the catalogue does not hold keep the till's category.
 */
static void
catalogue_categories_apply(MpsPriced *out)
{
	Datum	   *ids = palloc(sizeof(Datum) * out->nlines);
	Datum		v[1];
	uint64		n;
	uint64		r;
	int			i;

	for (i = 0; i < out->nlines; i++)
		ids[i] = CStringGetTextDatum(out->lines[i].product_id);
	v[0] = PointerGetDatum(construct_array(ids, out->nlines, TEXTOID, -1, false, TYPALIGN_INT));
	n = mps_exec(&catalogue_categories, v, NULL, false, 0);
	for (r = 0; r < n; r++)
	{
		char	   *id = mps_col_text(r, 1);
		char	   *category = mps_col_text(r, 2);

		for (i = 0; i < out->nlines; i++)
			if (strcmp(out->lines[i].product_id, id) == 0)
				out->lines[i].category_id = category;
	}
}

void
mps_parse_items(Jsonb *items, int exponent, int64 max_amount, const char *currency, MpsPriced *out)
{
	int			n;
	int			i;

	memset(out, 0, sizeof(*out));
	if (!JB_ROOT_IS_ARRAY(items) || JB_ROOT_IS_SCALAR(items))
		items_invalid(0, "p_items must be a JSON array");
	n = JB_ROOT_COUNT(items);
	if (n < 1 || n > 1000)
		items_invalid(0, "p_items must have 1 to 1000 lines");
	out->nlines = n;
	out->lines = palloc0(sizeof(MpsLine) * n);
	for (i = 0; i < n; i++)
	{
		JsonbValue *item = getIthJsonbValueFromContainer(&items->root, i);
		MpsLine    *line = &out->lines[i];
		JsonbValue *v;
		char	   *qty_text;
		int64		qty;
		char	   *end;
		char		param[32];

		if (item == NULL || item->type != jbvBinary || !JsonContainerIsObject(item->val.binary.data))
			items_invalid(i + 1, "each line must be an object");
		line->product_id = id_field(item->val.binary.data, "product_id", i + 1, true);
		line->category_id = id_field(item->val.binary.data, "category_id", i + 1, false);

		v = item_field(item->val.binary.data, "quantity");
		if (v == NULL || v->type != jbvNumeric)
			items_invalid(i + 1, "quantity must be a whole number");
		qty_text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		qty = strtol(qty_text, &end, 10);
		if (*end != '\0' || qty < 1 || qty > MPS_MAX_LINE_QUANTITY)
			items_invalid(i + 1, psprintf("quantity must be a whole number from 1 to %d", MPS_MAX_LINE_QUANTITY));
		line->quantity = (int32) qty;

		v = item_field(item->val.binary.data, "unit_price");
		if (v == NULL || v->type != jbvNumeric)
			items_invalid(i + 1, "unit_price must be a number");
		snprintf(param, sizeof(param), "p_items[%d].unit_price", i + 1);
		line->unit_price = mps_amount_from_numeric_ex(v->val.numeric, exponent, max_amount,
													  param, currency, true);
		line->line_total = line->unit_price * line->quantity;
		out->items_total += line->line_total;
		if (out->items_total > max_amount)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_AMOUNT_INVALID),
					 errmsg("invalid amount for p_items"),
					 errdetail("The items add up to more than the currency's limit."),
					 errhint("Split the order.")));
	}
	catalogue_categories_apply(out);
}

static MpsPlan member_group = {
	"SELECT g.id FROM mps.member_profiles m JOIN mps.marketing_groups g ON g.id = m.marketing_group_id"
	" WHERE m.id = $1 AND g.is_active AND g.deleted_at IS NULL",
	1, {UUIDOID}
};

int32
mps_member_group(const pg_uuid_t *member_id)
{
	Datum		v[1];

	v[0] = UUIDPGetDatum((pg_uuid_t *) member_id);
	if (mps_exec(&member_group, v, NULL, false, 1) == 0)
		return 0;
	return mps_col_int32(0, 1, 0);
}

static MpsPlan group_rules = {
	"SELECT id, name, receipt_name, product_scope, target_id, adjustment_type, value_bp, amount_minor"
	" FROM mps.mg_discount_rules WHERE marketing_group_id = $1 AND is_active AND deleted_at IS NULL"
	" AND (adjustment_type = 'PERCENTAGE' OR currency = $2) ORDER BY id",
	2, {INT4OID, TEXTOID}
};

int
mps_load_rules(int32 group_id, const char *currency, MpsRule **rules)
{
	Datum		v[2];
	uint64		n;
	uint64		i;
	int			npct = 0;

	*rules = NULL;
	if (group_id == 0)
		return 0;
	v[0] = Int32GetDatum(group_id);
	v[1] = CStringGetTextDatum(currency);
	n = mps_exec(&group_rules, v, NULL, false, 0);
	/* In the caller's context (SPI_palloc), so the rules can outlive SPI. */
	*rules = SPI_palloc(sizeof(MpsRule) * Max(n, 1));
	memset(*rules, 0, sizeof(MpsRule) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		MpsRule    *r = &(*rules)[i];
		char	   *scope = mps_col_text(i, 4);

		r->id = mps_col_int32(i, 1, 0);
		r->name = mps_col_text(i, 2);
		r->receipt_name = mps_col_text(i, 3);
		r->scope = scope[0];
		r->target_id = mps_col_text(i, 5);
		r->percentage = strcmp(mps_col_text(i, 6), "PERCENTAGE") == 0;
		r->value_bp = mps_col_int32(i, 7, 0);
		r->amount_minor = mps_col_int64(i, 8, 0);
		if (r->percentage && ++npct > MPS_MAX_PCT_RULES_PER_GROUP)
			elog(ERROR, "mps: group %d has more than %d percentage rules", group_id,
				 MPS_MAX_PCT_RULES_PER_GROUP);
	}
	return (int) n;
}

static bool
rule_matches(const MpsRule *r, const MpsLine *line)
{
	switch (r->scope)
	{
		case 'G':
			return true;
		case 'P':
			return strcmp(r->target_id, line->product_id) == 0;
		case 'C':
			return line->category_id != NULL && strcmp(r->target_id, line->category_id) == 0;
	}
	return false;
}

/* round_half_up(v / scale) for v >= 0. */
static int64
round_scaled(int128 v, int128 scale)
{
	return (int64) ((v + scale / 2) / scale);
}

static void
json_money(StringInfo buf, const char *key, int64 minor, int exponent)
{
	appendStringInfo(buf, "\"%s\": %s", key,
					 DatumGetCString(DirectFunctionCall1(numeric_out,
														 NumericGetDatum(mps_numeric_from_minor(minor, exponent)))));
}

static void
json_text(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, "\"%s\": ", key);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/*
 * Price one line into line->final_amount; with d given, append the line's
 * JSON (its applied rules and amounts) to it.
 */
void
mps_price_line(MpsLine *line, const MpsRule *rules, int nrules, StringInfo d, int exponent)
{
	int32		paid_units = line->quantity - line->comped_units;
	int64		base = line->unit_price * paid_units;
	int128		scale = 1;
	int128		v;
	int64		before;
	bool		first_rule = true;
	int			pass;
	int			j;

	/*
	 * The scale is 10000^k for the k percentage rules that match this line;
	 * after j of them v is L * 10000^(k-j) * prod(10000 - bp), so each next
	 * division by 10000 is exact.
	 */
	for (j = 0; j < nrules; j++)
		if (rules[j].percentage && rule_matches(&rules[j], line))
			scale *= 10000;
	v = (int128) base * scale;

	if (d)
	{
		json_text(d, "product_id", line->product_id);
		appendStringInfoString(d, ", ");
		json_text(d, "category_id", line->category_id);
		appendStringInfo(d, ", \"quantity\": %d, \"comped_units\": %d, ", line->quantity, line->comped_units);
		json_money(d, "unit_price", line->unit_price, exponent);
		appendStringInfoString(d, ", ");
		json_money(d, "line_total", line->line_total, exponent);
		appendStringInfoString(d, ", \"applied_rules\": [");
	}

	/* Pass 0: percentages; pass 1: fixed amounts. */
	for (pass = 0; pass < 2; pass++)
	{
		for (j = 0; j < nrules; j++)
		{
			const MpsRule *r = &rules[j];

			if (r->percentage != (pass == 0) || !rule_matches(r, line) || paid_units == 0)
				continue;
			before = d ? round_scaled(v, scale) : 0;
			if (r->percentage)
				v = v / 10000 * (10000 - r->value_bp);	/* exact, see above */
			else
			{
				int128		off = (int128) r->amount_minor * paid_units * scale;

				v = v > off ? v - off : 0;
			}
			if (d == NULL)
				continue;
			if (!first_rule)
				appendStringInfoString(d, ", ");
			first_rule = false;
			appendStringInfo(d, "{\"rule_id\": %d, ", r->id);
			json_text(d, "name", r->name);
			appendStringInfoString(d, ", ");
			json_text(d, "receipt_name", r->receipt_name);
			appendStringInfo(d, ", \"product_scope\": \"%s\", \"adjustment_type\": \"%s\", ",
							 r->scope == 'G' ? "GLOBAL" : r->scope == 'C' ? "CATEGORY" : "PRODUCT",
							 r->percentage ? "PERCENTAGE" : "FIXED_AMOUNT");
			if (r->percentage)
				appendStringInfo(d, "\"adjustment_value\": %d.%02d, ", r->value_bp / 100, r->value_bp % 100);
			else
			{
				json_money(d, "adjustment_value", r->amount_minor, exponent);
				appendStringInfoString(d, ", ");
			}
			json_money(d, "calculated_amount", before - round_scaled(v, scale), exponent);
			appendStringInfoChar(d, '}');
		}
	}
	line->final_amount = round_scaled(v, scale);
	if (d)
	{
		appendStringInfoString(d, "], ");
		json_money(d, "final", line->final_amount, exponent);
	}
}

void
mps_price(MpsPriced *p, const MpsRule *rules, int nrules, int32 card_discount_bp, int exponent)
{
	StringInfo	d = &p->details;
	int			i;

	initStringInfo(d);
	appendStringInfoString(d, "{\"lines\": [");
	p->subtotal = 0;
	for (i = 0; i < p->nlines; i++)
	{
		if (i > 0)
			appendStringInfoString(d, ", ");
		appendStringInfo(d, "{\"line\": %d, ", i + 1);
		mps_price_line(&p->lines[i], rules, nrules, d, exponent);
		appendStringInfoChar(d, '}');
		p->subtotal += p->lines[i].final_amount;
	}
	p->card_discount = mps_basis_points_of(p->subtotal, card_discount_bp);
	p->final_amount = p->subtotal - p->card_discount;
	appendStringInfoString(d, "], ");
	json_money(d, "items_total", p->items_total, exponent);
	appendStringInfoString(d, ", ");
	json_money(d, "mg_discount", p->items_total - p->subtotal, exponent);
	appendStringInfoString(d, ", ");
	json_money(d, "subtotal", p->subtotal, exponent);
	appendStringInfo(d, ", \"card_discount_bp\": %d, ", card_discount_bp);
	json_money(d, "card_discount", p->card_discount, exponent);
	appendStringInfoString(d, ", ");
	json_money(d, "final", p->final_amount, exponent);
	appendStringInfoChar(d, '}');
}

static void
not_own_member(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: price_order for another member"),
			 errdetail("Members price their own orders; merchant users price anyone's."),
			 errhint("Pass your own member id.")));
}

/*
 * price_order(p_member_id, p_items, p_card_id): the price a charge would
 * compute, without charging anything. The card (its discount and currency)
 * is p_card_id (one the member holds), or else her own standard card.
 */
PG_FUNCTION_INFO_V1(mps_price_order);
Datum
mps_price_order(PG_FUNCTION_ARGS)
{
	static MpsPlan personal_card = {
		"SELECT b.card_id FROM mps.card_bindings b JOIN mps.cards c ON c.id = b.card_id"
		" WHERE b.member_id = $1 AND b.role = 'owner' AND c.card_type = 'standard'"
		" ORDER BY c.created_at LIMIT 1",
		1, {UUIDOID}
	};
	static MpsPlan members_card = {
		"SELECT 1 FROM mps.card_bindings WHERE card_id = $1 AND member_id = $2", 2, {UUIDOID, UUIDOID}
	};
	static MpsPlan member_exists = {
		"SELECT auth_user_id FROM mps.member_profiles WHERE id = $1", 1, {UUIDOID}
	};
	MpsActor	actor;
	pg_uuid_t  *member;
	pg_uuid_t	card_id;
	MpsCard		card;
	MpsPriced	priced;
	MpsRule    *rules;
	int			nrules;
	Datum		v[1];
	pg_uuid_t	auth_user;
	bool		has_auth;
	bool		may_price_anyone;
	char	   *json;
	MemoryContext fn_cxt = CurrentMemoryContext;
	MemoryContext old;

	mps_actor_resolve(&actor);
	mps_actor_require_user(&actor, "price_order");
	mps_require_marketing();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
				 errmsg("member and items are required"),
				 errdetail("%s is missing.", PG_ARGISNULL(0) ? "p_member_id" : "p_items"),
				 errhint("Pass the member's id and the order's line items.")));
	member = PG_GETARG_UUID_P(0);

	mps_spi_connect();
	v[0] = UUIDPGetDatum(member);
	/*
	 * Who may ask comes first: a member prices her own orders only, and to
	 * her an absent member and another's look the same (42501).
	 */
	may_price_anyone = actor.is_admin || mps_actor_is_merchant_user_anywhere(&actor);
	if (mps_exec(&member_exists, v, NULL, false, 1) == 0)
	{
		if (!may_price_anyone)
			not_own_member();
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MEMBER_NOT_FOUND),
				 errmsg("member not found"),
				 errdetail("No member %s.", mps_uuid_to_cstring(member)),
				 errhint("Check the member id.")));
	}
	has_auth = mps_col_uuid(0, 1, &auth_user);
	if (!may_price_anyone &&
		!(has_auth && actor.has_user && memcmp(&auth_user, &actor.user_id, sizeof(pg_uuid_t)) == 0))
		not_own_member();

	/*
	 * The card is one the member holds: any other card, present or not, is
	 * "not found", so its discount is never told.
	 */
	if (!PG_ARGISNULL(2))
	{
		Datum		cv[2];

		card_id = *PG_GETARG_UUID_P(2);
		cv[0] = UUIDPGetDatum(&card_id);
		cv[1] = UUIDPGetDatum(member);
		if (mps_exec(&members_card, cv, NULL, false, 1) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_CARD_NOT_FOUND),
					 errmsg("card not found"),
					 errdetail("Member %s holds no card %s.", mps_uuid_to_cstring(member),
							   mps_uuid_to_cstring(&card_id)),
					 errhint("Pass one of the member's cards, or none for her personal card.")));
	}
	else if (mps_exec(&personal_card, v, NULL, false, 1) == 0 || !mps_col_uuid(0, 1, &card_id))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_CARD_NOT_FOUND),
				 errmsg("card not found"),
				 errdetail("Member %s has no personal card.", mps_uuid_to_cstring(member)),
				 errhint("Pass p_card_id.")));
	if (!mps_card_peek(&card_id, &card))
		elog(ERROR, "mps: card %s of a binding is missing", mps_uuid_to_cstring(&card_id));

	mps_parse_items(DatumGetJsonbP(PG_GETARG_DATUM(1)), card.exponent, card.max_amount,
					card.currency, &priced);
	nrules = mps_load_rules(mps_member_group(member), card.currency, &rules);
	mps_price(&priced, rules, nrules, mps_card_discount_bp(&card), card.exponent);
	old = MemoryContextSwitchTo(fn_cxt);
	json = pstrdup(priced.details.data);
	MemoryContextSwitchTo(old);
	mps_spi_finish();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}

PG_FUNCTION_INFO_V1(mps_require_marketing_sql);
Datum
mps_require_marketing_sql(PG_FUNCTION_ARGS)
{
	mps_require_marketing();
	PG_RETURN_VOID();
}

/*
 * mps_internal.mg_line_final(group, product, category, quantity, unit price
 * in minor units, currency): one line priced by the group's rules, the same
 * arithmetic as a charge. The rules are read once per query (fn_extra), so
 * pricing many lines in one statement costs the arithmetic only; this is what
 * the pricing benchmark measures.
 */
typedef struct LineCache
{
	int32		group_id;
	char		currency[4];
	int			exponent;
	int			nrules;
	MpsRule    *rules;
} LineCache;

PG_FUNCTION_INFO_V1(mps_mg_line_final);
Datum
mps_mg_line_final(PG_FUNCTION_ARGS)
{
	LineCache  *cache = (LineCache *) fcinfo->flinfo->fn_extra;
	int32		group_id;
	char	   *currency;
	MpsLine		line;

	/* NULL in, NULL out, as a STRICT function (the category may be NULL). */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		PG_RETURN_NULL();
	group_id = PG_GETARG_INT32(0);
	currency = text_to_cstring(PG_GETARG_TEXT_PP(5));
	memset(&line, 0, sizeof(line));
	line.quantity = PG_GETARG_INT32(3);
	line.unit_price = PG_GETARG_INT64(4);
	if (line.quantity < 1 || line.unit_price < 0 ||
		pg_mul_s64_overflow(line.unit_price, line.quantity, &line.line_total))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_PARAMETER_INVALID),
				 errmsg("invalid line"),
				 errdetail("quantity = %d, unit price = " INT64_FORMAT " minor units.",
						   line.quantity, line.unit_price),
				 errhint("A line has a quantity of at least 1 and a price of 0 or more.")));

	if (cache == NULL || cache->group_id != group_id || strcmp(cache->currency, currency) != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		MpsCurrency cur;

		cache = palloc0(sizeof(LineCache));
		cache->group_id = group_id;
		strlcpy(cache->currency, currency, sizeof(cache->currency));
		mps_spi_connect();
		if (!mps_currency_find(currency, &cur))
			ereport(ERROR,
					(errcode(ERRCODE_MPS_CURRENCY_UNKNOWN),
					 errmsg("unknown currency"),
					 errdetail("Currency \"%s\" is not configured.", currency),
					 errhint("Use one of mps.currencies.")));
		cache->exponent = cur.exponent;
		cache->nrules = mps_load_rules(group_id, currency, &cache->rules);	/* SPI_palloc: fn_mcxt */
		mps_spi_finish();
		fcinfo->flinfo->fn_extra = cache;
		MemoryContextSwitchTo(old);
	}
	line.product_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	line.category_id = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	mps_price_line(&line, cache->rules, cache->nrules, NULL, cache->exponent);
	PG_RETURN_INT64(line.final_amount);
}
