/*
 * row_read.c — reading one row by its primary key without planning a
 * statement.
 *
 * The reads on a movement's path (the card under its lock, the paying
 * member's binding, the code's state, the payment a refund goes back to)
 * are single-row lookups by primary key. As SQL each one built an executor
 * state, a scan and a lock node on every call, which cost several times the
 * index probe itself. Here the probe is made directly, with the snapshot and
 * row lock a statement run through SPI at this point would use.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "catalog/pg_index.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "row_read.h"

/* The equality function of each key column, found again only when the index's operator classes change. */
static void
key_procs(MpsRowKey *pk, Relation index)
{
	int			k;

	for (k = 0; k < pk->nkeys; k++)
	{
		Oid			op;

		if (pk->eqproc[k] != InvalidOid && pk->opfamily[k] == index->rd_opfamily[k] &&
			pk->opcintype[k] == index->rd_opcintype[k])
			continue;
		op = get_opfamily_member(index->rd_opfamily[k], index->rd_opcintype[k],
								 index->rd_opcintype[k], BTEqualStrategyNumber);
		if (!OidIsValid(op))
			elog(ERROR, "mps: no equality operator for key column %d of %s", k + 1,
				 RelationGetRelationName(index));
		pk->opfamily[k] = index->rd_opfamily[k];
		pk->opcintype[k] = index->rd_opcintype[k];
		pk->eqproc[k] = get_opcode(op);
	}
}

/* Does `index` lead with the key's columns, and find one row (unique, valid, whole table)? */
static bool
index_fits(const MpsRowKey *pk, Relation rel, Relation index)
{
	Form_pg_index form = index->rd_index;
	int			k;

	if (!form->indisunique || !form->indisvalid || form->indnkeyatts < pk->nkeys ||
		RelationGetIndexPredicate(index) != NIL)
		return false;
	for (k = 0; k < pk->nkeys; k++)
		if (form->indkey.values[k] == 0 ||
			form->indkey.values[k] != get_attnum(RelationGetRelid(rel), pk->keys[k]))
			return false;
	return true;
}

/*
 * The index to probe: the one kept while the table still has it (an index's
 * columns never change), else the primary key if it fits, else another.
 */
static Oid
key_index(MpsRowKey *pk, Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	Oid			primary = mps_primary_key_index(rel);
	ListCell   *lc;
	int			pass;

	if (OidIsValid(pk->indexid) && list_member_oid(indexes, pk->indexid))
		return pk->indexid;
	pk->indexid = InvalidOid;
	for (pass = 0; pass < 2 && !OidIsValid(pk->indexid); pass++)
		foreach(lc, indexes)
		{
			Oid			candidate = lfirst_oid(lc);
			Relation	index;

			if ((pass == 0) != (candidate == primary))
				continue;
			index = index_open(candidate, AccessShareLock);
			if (index_fits(pk, rel, index))
				pk->indexid = candidate;
			index_close(index, AccessShareLock);
			if (OidIsValid(pk->indexid))
				break;
		}
	return pk->indexid;
}

/* Lock the row in slot as FOR UPDATE does; false when it is gone. */
static bool
lock_row(Relation rel, Snapshot snap, TupleTableSlot *slot)
{
	TM_FailureData tmfd;
	TM_Result	result;
	ItemPointerData tid = slot->tts_tid;
	int			flags = 0;

	/* Under READ COMMITTED the newest version is locked; above it, a newer one is a conflict. */
	if (!IsolationUsesXactSnapshot())
		flags |= TUPLE_LOCK_FLAG_FIND_LAST_VERSION;
	result = table_tuple_lock(rel, &tid, snap, slot, GetCurrentCommandId(true),
							  LockTupleExclusive, LockWaitBlock, flags, &tmfd);
	switch (result)
	{
		case TM_Ok:
			return true;
		case TM_SelfModified:
			return false;
		case TM_Updated:
		case TM_Deleted:
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			return false;
		default:
			elog(ERROR, "mps: unexpected result %d locking a row of %s", (int) result,
				 RelationGetRelationName(rel));
	}
	return false;
}

bool
mps_row_read(MpsRowKey *pk, TimestampTz at, const Datum *keys, bool for_update,
			 Datum *values, bool *nulls, ItemPointer tid)
{
	MpsTable   *t = pk->table;
	LOCKMODE	lock = for_update ? RowShareLock : AccessShareLock;
	Relation	parent;
	Relation	rel = mps_table_open(t, at, lock, &parent);
	Oid			indexid;
	Relation	index;
	ScanKeyData skey[INDEX_MAX_KEYS];
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snap;
	bool		found;
	int			k;
	int			c;

	if (rel == NULL)
		return false;			/* no partition holds `at`: no such row */
	indexid = key_index(pk, rel);
	if (!OidIsValid(indexid))
		elog(ERROR, "mps: %s has no unique index on %s", RelationGetRelationName(rel), pk->keys[0]);
	index = index_open(indexid, AccessShareLock);
	key_procs(pk, index);
	for (k = 0; k < pk->nkeys; k++)
		ScanKeyEntryInitialize(&skey[k], 0, k + 1, BTEqualStrategyNumber, InvalidOid,
							   index->rd_indcollation[k], pk->eqproc[k], keys[k]);

	/* As a statement run through SPI now: it sees this transaction's writes so far. */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	snap = GetActiveSnapshot();

	slot = table_slot_create(rel, NULL);
	scan = mps_index_beginscan(rel, index, snap, pk->nkeys, 0);
	index_rescan(scan, skey, pk->nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	if (found && for_update)
		found = lock_row(rel, snap, slot);
	if (found)
	{
		TupleDesc	desc = RelationGetDescr(rel);

		for (c = 0; c < t->ncols; c++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, t->attnum[c] - 1);
			Datum		d = slot_getattr(slot, t->attnum[c], &nulls[c]);

			if (nulls[c])
				values[c] = (Datum) 0;
			else if (t->cols[c].kind == MPS_COL_ENUM)
				values[c] = DirectFunctionCall1(enum_out, d);	/* its label, as a write takes it */
			else
				values[c] = datumCopy(d, att->attbyval, att->attlen);
		}
		if (tid != NULL)
			*tid = slot->tts_tid;
	}
	ExecDropSingleTupleTableSlot(slot);
	PopActiveSnapshot();
	index_close(index, NoLock);
	table_close(rel, NoLock);
	if (parent != NULL)
		table_close(parent, NoLock);
	return found;
}
