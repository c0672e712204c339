/*
 * row_write.h — writing rows of MPS's tables without planning a statement
 * (see row_write.c).
 */
#ifndef MPS_ROW_WRITE_H
#define MPS_ROW_WRITE_H

#include "postgres.h"
#include "executor/executor.h"
#include "storage/lockdefs.h"
#include "utils/timestamp.h"

#define MPS_ROW_MAX_COLS 28
#define MPS_ROW_MAX_TARGETS 6

/* How a column's value is given. */
typedef enum MpsColKind
{
	MPS_COL_DATUM,				/* a Datum of the column's type */
	MPS_COL_ENUM,				/* an enum label, as CStringGetDatum(label) */
	MPS_COL_SEQUENCE			/* ignored: the next value of the column's sequence */
} MpsColKind;

typedef struct MpsColumn
{
	const char *name;
	Oid			type;			/* the column's type; checked, InvalidOid for an enum */
	MpsColKind	kind;
} MpsColumn;

/*
 * The columns of one table a write gives, in the order its values come. An
 * insert must give every column that has a default (the writer does not
 * evaluate defaults); an update changes only the columns it marks. A
 * partitioned table (by range on one timestamptz) is written in the
 * partition that holds the target's time.
 */
typedef struct MpsTable
{
	const char *schema;
	const char *name;
	int			ncols;
	MpsColumn	cols[MPS_ROW_MAX_COLS];
	/* kept per backend, checked on every use */
	Oid			relid;
	Oid			nspid;
	AttrNumber	attnum[MPS_ROW_MAX_COLS];
	Oid			typid[MPS_ROW_MAX_COLS];
	Oid			seqid[MPS_ROW_MAX_COLS];
} MpsTable;

/* One table (or, for a partitioned one, the partition holding `at`) a write set touches. */
typedef struct MpsRowTarget
{
	MpsTable   *table;
	TimestampTz at;
	bool		if_new;			/* inserted into with mps_row_insert_if_new */
} MpsRowTarget;

typedef struct MpsRowWrite
{
	EState	   *estate;
	EPQState	epq;
	int			ntargets;
	MpsTable   *tables[MPS_ROW_MAX_TARGETS];
	Relation	parents[MPS_ROW_MAX_TARGETS];	/* partitioned tables, else NULL */
	ResultRelInfo *rels[MPS_ROW_MAX_TARGETS];
	TupleTableSlot *old_slots[MPS_ROW_MAX_TARGETS];
	TupleTableSlot *new_slots[MPS_ROW_MAX_TARGETS];
} MpsRowWrite;

/*
 * Open t with `lock` (for a partitioned table, the partition holding `at`;
 * *parent is then the table itself, else NULL), its columns found. NULL when
 * no partition holds `at`.
 */
extern Relation mps_table_open(MpsTable *t, TimestampTz at, LOCKMODE lock, Relation *parent);

/* Open the targets (RowExclusiveLock, as an INSERT or UPDATE takes) and their indexes. */
extern void mps_rows_begin(MpsRowWrite *w, int ntargets, const MpsRowTarget *targets);

/* Insert one row into target t: values (and nulls, or NULL) in the table's column order. */
extern void mps_row_insert(MpsRowWrite *w, int t, Datum *values, const bool *nulls);

/*
 * Insert one row unless a row with the same unique key exists (committed, or
 * committed while this waited), as INSERT ... ON CONFLICT DO NOTHING does;
 * false when one does.
 */
extern bool mps_row_insert_if_new(MpsRowWrite *w, int t, Datum *values, const bool *nulls);

/*
 * Lock the newest version of the row at *tid (waiting for a writer), as an
 * UPDATE does; false when the row was deleted. *tid then names the newest
 * version, and mps_row_value reads its columns.
 */
extern bool mps_row_lock(MpsRowWrite *w, int t, ItemPointer tid);

/* Column c (in the table's column order) of the row last locked or fetched in target t. */
extern Datum mps_row_value(MpsRowWrite *w, int t, int c, bool *isnull);

/*
 * Update the row at *tid, which this transaction has locked (FOR UPDATE or
 * mps_row_lock) and not changed since: the columns with set[c] true take
 * values[c]. *tid then names the new version.
 */
extern void mps_row_update(MpsRowWrite *w, int t, ItemPointer tid, const bool *set,
						   Datum *values, const bool *nulls);

/* Fire the queued AFTER triggers (foreign keys) and close everything. */
extern void mps_rows_end(MpsRowWrite *w);

/* The partition of range-partitioned `parent` holding `at` (its default when none), or InvalidOid. */
extern Oid	mps_partition_holding(Relation parent, TimestampTz at);

#endif
