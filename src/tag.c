/*
 * tag.c — p_tag, the caller's own label on a movement.
 *
 * It is stored on the transaction row and replayed with it, so it is kept
 * small and of one shape: a JSON object of at most MPS_TAG_MAX_BYTES bytes
 * as text. Checked before anything is read or locked.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "errors.h"
#include "tag.h"

char *
mps_tag_arg(FunctionCallInfo fcinfo, int argno)
{
	Jsonb	   *jb;
	char	   *text;

	if (PG_ARGISNULL(argno))
		return NULL;
	jb = PG_GETARG_JSONB_P(argno);
	if (JB_ROOT_IS_SCALAR(jb) || !JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_MPS_TAG_INVALID),
				 errmsg("invalid p_tag"),
				 errdetail("p_tag is a JSON %s, not an object.", JB_ROOT_IS_SCALAR(jb) ? "scalar" : "array"),
				 errhint("Pass a JSON object such as {\"till\": \"7\"}, at most %d bytes, or leave it out.",
						 MPS_TAG_MAX_BYTES)));
	/* The stored size bounds the text closely enough to skip printing a huge tag. */
	if (VARSIZE(jb) > 8 * MPS_TAG_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_TAG_INVALID),
				 errmsg("invalid p_tag"),
				 errdetail("p_tag takes %u bytes stored; the limit is %d bytes of JSON text.",
						   (unsigned) VARSIZE(jb), MPS_TAG_MAX_BYTES),
				 errhint("Keep the tag to a few short labels; the order's details belong in p_items.")));
	text = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	if (strlen(text) > MPS_TAG_MAX_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_TAG_INVALID),
				 errmsg("invalid p_tag"),
				 errdetail("p_tag has %zu bytes of JSON text; the limit is %d.", strlen(text), MPS_TAG_MAX_BYTES),
				 errhint("Keep the tag to a few short labels; the order's details belong in p_items.")));
	return text;
}
