/*
 * row_read.h — reading one row by its primary key without planning a
 * statement (see row_read.c).
 */
#ifndef MPS_ROW_READ_H
#define MPS_ROW_READ_H

#include "postgres.h"
#include "access/attnum.h"
#include "storage/itemptr.h"

#include "row_write.h"

/*
 * A key of a table: the columns, in order, that lead a unique index of it
 * (its primary key when that one fits). Only the first of them may suffice
 * where the rest follow from it (a transaction's id gives its created_at).
 */
typedef struct MpsRowKey
{
	MpsTable   *table;			/* the columns a read returns */
	int			nkeys;
	const char *keys[INDEX_MAX_KEYS];
	/* kept per backend, checked on every use */
	Oid			indexid;
	Oid			opfamily[INDEX_MAX_KEYS];
	Oid			opcintype[INDEX_MAX_KEYS];
	RegProcedure eqproc[INDEX_MAX_KEYS];
} MpsRowKey;

/*
 * The row whose key columns equal `keys` (for a partitioned table, in the
 * partition holding `at`), as a statement starting now sees it; with
 * for_update, locked as SELECT ... FOR UPDATE locks it (its newest version).
 * The table's columns go to values/nulls, copied into the current memory
 * context (an enum column as its label, a cstring datum, as a write takes
 * it); *tid (when not NULL) names the row version. False: no such row.
 */
extern bool mps_row_read(MpsRowKey *pk, TimestampTz at, const Datum *keys, bool for_update,
						 Datum *values, bool *nulls, ItemPointer tid);

#endif
