/*
 * pass_input.c — what the pass-card RPCs share: reading their JSON lists
 * (payment lines, redemption lines), the payment-line rules common to
 * purchase and redemption, and reading their results back from the rows.
 *
 * JSON input is strict: unknown keys are refused, so a misspelt "extra" or
 * "amount" cannot silently read as absent.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "audit.h"
#include "errors.h"
#include "money.h"
#include "pass.h"
#include "spi_util.h"

/* ---- JSON input ---------------------------------------------------------- */

int
pass_json_count(Jsonb *jb, const char *param, int max, int code, const char *hint)
{
	int			n;

	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(code),
				 errmsg("%s must be a JSON array", param),
				 errdetail("%s is a JSON %s.", param, JB_ROOT_IS_SCALAR(jb) ? "scalar" : "object"),
				 errhint("%s", hint)));
	n = JB_ROOT_COUNT(jb);
	if (n > max)
		ereport(ERROR,
				(errcode(code),
				 errmsg("%s has too many lines", param),
				 errdetail("%s has %d lines; at most %d are accepted.", param, n, max),
				 errhint("%s", hint)));
	return n;
}

void
pass_json_fields(Jsonb *jb, int i, const char *param, PassJsonField *fields, int nfields,
				 int code, const char *hint)
{
	JsonbValue *elem = getIthJsonbValueFromContainer(&jb->root, i);
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	char	   *key = NULL;
	int			k;

	if (elem == NULL || elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		ereport(ERROR,
				(errcode(code),
				 errmsg("%s[%d] is not a JSON object", param, i),
				 errdetail("Each element of %s must be an object.", param),
				 errhint("%s", hint)));
	for (k = 0; k < nfields; k++)
		fields[k].present = false;
	it = JsonbIteratorInit(elem->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			for (k = 0; k < nfields; k++)
				if (strcmp(fields[k].name, key) == 0)
					break;
			/* A misspelt key would otherwise read as "absent", e.g. no surcharge. */
			if (k == nfields)
				ereport(ERROR,
						(errcode(code),
						 errmsg("%s[%d] has an unknown key", param, i),
						 errdetail("Key \"%s\" is not one of the accepted keys.", key),
						 errhint("%s", hint)));
			fields[k].present = v.type != jbvNull;
			fields[k].v = v;
		}
	}
}

char *
pass_json_string(const PassJsonField *f, const char *param, int i, int max_len,
				 int code, const char *hint)
{
	char	   *s;
	int			n;

	if (!f->present)
		return NULL;
	if (f->v.type != jbvString)
		ereport(ERROR,
				(errcode(code),
				 errmsg("%s[%d].%s must be a string", param, i, f->name),
				 errdetail("%s[%d].%s has another JSON type.", param, i, f->name),
				 errhint("%s", hint)));
	s = pnstrdup(f->v.val.string.val, f->v.val.string.len);
	for (n = 0; s[n]; n++)
		if ((unsigned char) s[n] < 0x20 || s[n] == 0x7f)
			break;
	if (s[n] != '\0' || n < 1 || pg_mbstrlen(s) > max_len)
		ereport(ERROR,
				(errcode(code),
				 errmsg("%s[%d].%s is empty, too long or has control characters", param, i, f->name),
				 errdetail("%s[%d].%s must have 1 to %d printable characters.", param, i, f->name, max_len),
				 errhint("%s", hint)));
	return s;
}

int64
pass_json_amount(const PassJsonField *f, const char *param, int i, int exponent,
				 int64 max_amount, const char *currency, int code, const char *hint)
{
	char	   *label;

	if (!f->present || f->v.type != jbvNumeric)
		ereport(ERROR,
				(errcode(code),
				 errmsg("%s[%d].%s must be a number", param, i, f->name),
				 errdetail("%s[%d].%s is %s.", param, i, f->name, f->present ? "not a JSON number" : "missing"),
				 errhint("%s", hint)));
	/* Zero is a valid line here (seed 002's "0 元支付"); the rest as any amount. */
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(f->v.val.numeric),
										  NumericGetDatum(int64_to_numeric(0)))) == 0)
		return 0;
	label = psprintf("%s[%d].%s", param, i, f->name);
	return mps_amount_from_numeric(f->v.val.numeric, exponent, max_amount, label, currency);
}

char *
pass_major_text(int64 minor, int exponent)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   NumericGetDatum(mps_numeric_from_minor(minor, exponent))));
}

/* ---- payment lines ---------------------------------------------------------- */

static const struct
{
	const char *name;
	PassPayKind kind;
}			pay_methods[] =
{
	{"cash", PASS_PAY_DIRECT},
	{"bank_card", PASS_PAY_DIRECT},
	{"bizum", PASS_PAY_THIRD_PARTY},
	{"platform", PASS_PAY_THIRD_PARTY},
	{"third_party", PASS_PAY_THIRD_PARTY},
	{"member_card", PASS_PAY_MEMBER_CARD},
};


void
pass_parse_payments(Jsonb *jb, int exponent, int64 max_amount, const char *currency, PassPayments *out)
{
	PassJsonField f[3] = {{"method"}, {"amount"}, {"qr"}};
	StringInfoData json;
	int			n;
	int			i;
	int			k;

	memset(out, 0, sizeof(*out));
	out->card = -1;
	initStringInfo(&json);
	appendStringInfoChar(&json, '[');
	n = jb ? pass_json_count(jb, "p_payments", PASS_MAX_PAYMENTS, ERRCODE_MPS_PASS_PAYMENT_INVALID, PASS_PAY_HINT) : 0;
	for (i = 0; i < n; i++)
	{
		PassPayment *p = &out->line[i];
		char	   *method;
		char		secret[MPS_QR_SECRET_LEN + 1];
		MpsJson        one;

		pass_json_fields(jb, i, "p_payments", f, 3, ERRCODE_MPS_PASS_PAYMENT_INVALID, PASS_PAY_HINT);
		method = pass_json_string(&f[0], "p_payments", i, 32, ERRCODE_MPS_PASS_PAYMENT_INVALID, PASS_PAY_HINT);
		if (method == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PASS_PAYMENT_INVALID),
					 errmsg("p_payments[%d] has no method", i),
					 errdetail("Every payment line needs a \"method\"."),
					 errhint(PASS_PAY_HINT)));
		for (k = 0; k < lengthof(pay_methods); k++)
			if (strcmp(pay_methods[k].name, method) == 0)
				break;
		if (k == lengthof(pay_methods))
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PASS_PAYMENT_INVALID),
					 errmsg("unknown payment method"),
					 errdetail("p_payments[%d].method = \"%s\".", i, method),
					 errhint(PASS_PAY_HINT)));
		p->method = pay_methods[k].name;
		p->kind = pay_methods[k].kind;
		for (k = 0; k < i; k++)
			if (strcmp(out->line[k].method, p->method) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_MPS_PASS_PAYMENT_INVALID),
						 errmsg("payment method given twice"),
						 errdetail("p_payments[%d] and p_payments[%d] are both %s.", k, i, p->method),
						 errhint("Give one line per method with the method's whole amount.")));
		p->amount = pass_json_amount(&f[1], "p_payments", i, exponent, max_amount, currency,
									 ERRCODE_MPS_PASS_PAYMENT_INVALID, PASS_PAY_HINT);
		p->qr = pass_json_string(&f[2], "p_payments", i, 200, ERRCODE_MPS_PASS_PAYMENT_INVALID, PASS_PAY_HINT);
		if (p->qr && p->kind != PASS_PAY_MEMBER_CARD)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_PASS_PAYMENT_INVALID),
					 errmsg("a QR code belongs to a member_card line only"),
					 errdetail("p_payments[%d] is %s and carries \"qr\".", i, p->method),
					 errhint(PASS_PAY_HINT)));
		if (p->kind == PASS_PAY_MEMBER_CARD)
		{
			out->card = i;
			if (p->qr)
				mps_qr_parse(p->qr, p->lookup, secret);
			else if (p->amount > 0)
				ereport(ERROR,
						(errcode(ERRCODE_MPS_PASS_PAYMENT_INVALID),
						 errmsg("card balance payment needs the member's QR code"),
						 errdetail("p_payments[%d] is member_card without \"qr\".", i),
						 errhint("Scan the member's payment code and pass it as \"qr\".")));
		}
		out->total += p->amount;	/* at most 8 lines of at most max_amount: no overflow */

		mps_json_start(&one);
		mps_json_str(&one, "method", p->method);
		mps_json_raw(&one, "amount", pass_major_text(p->amount, exponent));
		appendStringInfo(&json, "%s%s", i ? ", " : "", mps_json_finish(&one));
	}
	out->n = n;
	appendStringInfoChar(&json, ']');
	out->json = json.data;
}

void
pass_hash_payments(MpsRequestHash *h, const PassPayments *p)
{
	int			i;

	for (i = 0; i < p->n; i++)
	{
		mps_reqhash_str(h, p->line[i].method);
		mps_reqhash_str(h, psprintf(INT64_FORMAT, p->line[i].amount));
		mps_reqhash_str(h, p->line[i].qr ? p->line[i].lookup : NULL);
	}
	mps_reqhash_str(h, "end-of-payments");
}

/* ---- helpers of the pass RPCs ---------------------------------------------------- */

char *
pass_arg_text(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

void
pass_required(const char *param, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_PARAMETER_REQUIRED),
			 errmsg("%s is required", param),
			 errdetail("%s is missing.", param),
			 errhint("%s", hint)));
}

Datum
pass_result_row(MpsPlan *plan, const pg_uuid_t *id)
{
	Datum		v[1];
	Datum		d;
	bool		isnull;

	v[0] = UUIDPGetDatum((pg_uuid_t *) id);
	if (mps_exec(plan, v, NULL, false, 1) == 0)
		elog(ERROR, "mps: pass result row is missing");
	d = mps_col_datum_copy(0, 1, &isnull);
	if (isnull)
		elog(ERROR, "mps: pass result row is missing");
	return d;
}
