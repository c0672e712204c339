/*
 * pass.h — what the pass-card files share: payment lines and JSON input.
 */
#ifndef MPS_PASS_H
#define MPS_PASS_H

#include "postgres.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "fmgr.h"
#include "idem.h"
#include "qr.h"
#include "spi_util.h"

#define PASS_MAX_PAYMENTS 8
#define PASS_MAX_LINES 50

typedef enum PassPayKind
{
	PASS_PAY_DIRECT,			/* cash, bank card: taken at the till */
	PASS_PAY_THIRD_PARTY,		/* Bizum, platforms: refused on a surcharge */
	PASS_PAY_MEMBER_CARD		/* the member's own card balance */
} PassPayKind;

typedef struct PassPayment
{
	const char *method;
	PassPayKind kind;
	int64		amount;			/* minor units, >= 0 */
	char	   *qr;				/* member_card: the member's QR code */
	char		lookup[MPS_QR_LOOKUP_LEN + 1];	/* its public part, for the request hash */
} PassPayment;

typedef struct PassPayments
{
	int			n;
	PassPayment line[PASS_MAX_PAYMENTS];
	int64		total;
	int			card;			/* index of the member_card line, or -1 */
	char	   *json;			/* normalised lines, for the row and the result */
} PassPayments;

/* A field of a JSON object element, as read by pass_json_fields. */
typedef struct PassJsonField
{
	const char *name;
	bool		present;		/* present and not JSON null */
	JsonbValue	v;
} PassJsonField;

/* Number of elements of a JSON array parameter (errcode when not an array). */
extern int	pass_json_count(Jsonb *jb, const char *param, int max, int code, const char *hint);

/* Read element i (an object) into fields; unknown keys are refused. */
extern void pass_json_fields(Jsonb *jb, int i, const char *param, PassJsonField *fields, int nfields,
							 int code, const char *hint);

/* A string field (NULL when absent), 1..max_len characters, no control characters. */
extern char *pass_json_string(const PassJsonField *f, const char *param, int i, int max_len,
							  int code, const char *hint);

/* A non-negative amount in minor units (zero allowed); absent is an error. */
extern int64 pass_json_amount(const PassJsonField *f, const char *param, int i, int exponent,
							  int64 max_amount, const char *currency, int code, const char *hint);

/* Parse p_payments (NULL: no lines); each method at most once. Raises MP811 / MP001. */
extern void pass_parse_payments(Jsonb *jb, int exponent, int64 max_amount, const char *currency,
								PassPayments *out);

/* Add the normalised payment lines to a request hash. */
extern void pass_hash_payments(MpsRequestHash *h, const PassPayments *p);

/* A minor-unit amount as major-unit text ("12.50"). */
extern char *pass_major_text(int64 minor, int exponent);

/* Argument n as a C string, or NULL. */
extern char *pass_arg_text(FunctionCallInfo fcinfo, int n);

/* Raise MP003 for a missing parameter. */
extern void pass_required(const char *param, const char *hint);

/* The one composite column a result query returns for id (copied out of SPI). */
extern Datum pass_result_row(MpsPlan *plan, const pg_uuid_t *id);

#define PASS_PAY_HINT "Pass p_payments as [{\"method\": \"cash\", \"amount\": 12.00}, ...]; methods: cash, bank_card, bizum, platform, third_party, member_card (with \"qr\": the member's code)."

#endif
