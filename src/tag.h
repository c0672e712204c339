/*
 * tag.h — p_tag, the caller's own label on a movement (charges, recharges).
 */
#ifndef MPS_TAG_H
#define MPS_TAG_H

#include "postgres.h"
#include "fmgr.h"

/* At most this many bytes of JSON text: a label, not a document store. */
#define MPS_TAG_MAX_BYTES 2048

/* Argument argno as checked JSON text (NULL when SQL NULL); raises MP010. */
extern char *mps_tag_arg(FunctionCallInfo fcinfo, int argno);

#endif
