/*
 * row_write.c — writing rows of MPS's tables without planning a statement.
 *
 * A movement writes four or five rows (card, transaction, ledger, code,
 * audit event). As SQL, even a prepared statement builds its executor state
 * again on every run: plan tree, projections, one ModifyTable per table, and
 * each table's constraint expressions read back from their text. That setup
 * cost more than the writes themselves. Here the rows go through the
 * executor's own single-row entry points (the ones logical replication
 * applies changes with): the same constraints, index entries and row
 * triggers (foreign keys among them) as an INSERT or UPDATE, without a plan;
 * the constraints are prepared once per backend (prepared_checks below).
 *
 * The caller names the columns it gives (MpsTable); they are found by name in
 * the table's descriptor and checked against it on every use, so a changed
 * table fails loudly instead of being written wrongly. Column defaults are
 * not evaluated: an insert must give every column that has one.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "compat.h"
#include "row_write.h"

Oid
mps_partition_holding(Relation parent, TimestampTz at)
{
	PartitionKey key = RelationGetPartitionKey(parent);
	PartitionDesc desc = RelationGetPartitionDesc(parent, true);
	PartitionBoundInfo bounds = desc->boundinfo;
	Datum		value = TimestampTzGetDatum(at);
	bool		equal;
	int			offset;
	int			index;

	if (key == NULL || key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		key->parttypid[0] != TIMESTAMPTZOID)
		elog(ERROR, "mps: %s is not range-partitioned on one timestamptz",
			 RelationGetRelationName(parent));
	if (desc->nparts == 0 || bounds == NULL)
		return InvalidOid;
	/* As PostgreSQL routes a row: the greatest lower bound <= at, else the default. */
	offset = partition_range_datum_bsearch(key->partsupfunc, key->partcollation,
										   bounds, 1, &value, &equal);
	index = bounds->indexes[offset + 1];
	if (index < 0)
		index = bounds->default_index;
	return index >= 0 ? desc->oids[index] : InvalidOid;
}

/* The table itself, by its kept OID when that still names it, else by name. */
static Relation
open_table(MpsTable *t, LOCKMODE lock)
{
	Relation	rel = NULL;

	if (OidIsValid(t->relid))
	{
		rel = try_table_open(t->relid, lock);
		if (rel != NULL && (rel->rd_rel->relnamespace != t->nspid ||
							strcmp(RelationGetRelationName(rel), t->name) != 0))
		{
			table_close(rel, lock);
			rel = NULL;
		}
	}
	if (rel == NULL)
	{
		t->nspid = get_namespace_oid(t->schema, false);
		t->relid = get_relname_relid(t->name, t->nspid);
		if (!OidIsValid(t->relid))
			elog(ERROR, "mps: table %s.%s is missing", t->schema, t->name);
		rel = table_open(t->relid, lock);
		/* Another table by that name: find its columns and sequences again. */
		memset(t->attnum, 0, sizeof(t->attnum));
	}
	return rel;
}

/* Does the kept column map still fit `desc`? */
static bool
columns_fit(const MpsTable *t, TupleDesc desc)
{
	int			c;

	for (c = 0; c < t->ncols; c++)
	{
		AttrNumber	a = t->attnum[c];
		Form_pg_attribute att;

		if (a <= 0 || a > desc->natts)
			return false;
		att = TupleDescAttr(desc, a - 1);
		if (att->attisdropped || strcmp(NameStr(att->attname), t->cols[c].name) != 0)
			return false;
		if (att->atttypid != t->typid[c])
			return false;
	}
	return true;
}

/* Find the columns by name in `desc` (the table's, or a partition's). */
static void
map_columns(MpsTable *t, TupleDesc desc)
{
	int			c;

	for (c = 0; c < t->ncols; c++)
	{
		AttrNumber	a;

		t->attnum[c] = InvalidAttrNumber;
		for (a = 1; a <= desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a - 1);

			if (!att->attisdropped && strcmp(NameStr(att->attname), t->cols[c].name) == 0)
			{
				t->attnum[c] = a;
				break;
			}
		}
		if (t->attnum[c] == InvalidAttrNumber)
			elog(ERROR, "mps: column %s of %s.%s is missing", t->cols[c].name, t->schema, t->name);
		t->typid[c] = TupleDescAttr(desc, t->attnum[c] - 1)->atttypid;
		if (OidIsValid(t->cols[c].type) ? t->typid[c] != t->cols[c].type : !type_is_enum(t->typid[c]))
			elog(ERROR, "mps: column %s of %s.%s has another type than MPS writes",
				 t->cols[c].name, t->schema, t->name);
		if (t->cols[c].kind == MPS_COL_SEQUENCE)
		{
			char	   *qualified = quote_qualified_identifier(t->schema, t->name);
			Datum		seq = DirectFunctionCall2(pg_get_serial_sequence,
												  CStringGetTextDatum(qualified),
												  CStringGetTextDatum(t->cols[c].name));

			t->seqid[c] = RangeVarGetRelid(makeRangeVarFromNameList(
												textToQualifiedNameList(DatumGetTextPP(seq))),
										   NoLock, false);
		}
	}
}

/* Every column an insert leaves out must have no default: the writer would leave it NULL. */
static void
check_insert_complete(const MpsTable *t, TupleDesc desc)
{
	AttrNumber	a;
	int			c;

	for (a = 1; a <= desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a - 1);
		bool		given = false;

		if (att->attisdropped || !(att->atthasdef || att->attidentity || att->attgenerated))
			continue;
		for (c = 0; c < t->ncols && !given; c++)
			given = t->attnum[c] == a;
		if (!given)
			elog(ERROR, "mps: column %s of %s.%s has a default MPS does not give",
				 NameStr(att->attname), t->schema, t->name);
	}
}

Relation
mps_table_open(MpsTable *t, TimestampTz at, LOCKMODE lock, Relation *parent)
{
	Relation	rel = open_table(t, lock);

	*parent = NULL;
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		Oid			part = mps_partition_holding(rel, at);

		if (!OidIsValid(part))
		{
			table_close(rel, NoLock);
			return NULL;
		}
		*parent = rel;
		rel = table_open(part, lock);
	}
	if (!columns_fit(t, RelationGetDescr(rel)))
		map_columns(t, RelationGetDescr(rel));
	return rel;
}

/*
 * A table's CHECK constraints, prepared once per backend. PostgreSQL reads
 * them back from their stored text and plans them for every statement (and
 * for every write set here), which cost more than writing the row. They are
 * kept by that text and whether each is enforced: the same text is the same
 * expression, so a changed constraint is prepared again. The expressions
 * refer to no executor state (prepared without a parent), so one can be
 * evaluated in any write set.
 */
typedef struct PreparedChecks
{
	Oid			relid;
	int			ncheck;
	char	  **ccbin;
	bool	   *enforced;
	ExprState **exprs;
	MemoryContext cxt;
} PreparedChecks;

#define PREPARED_CHECKS_KEPT 16
static PreparedChecks prepared[PREPARED_CHECKS_KEPT];
static int	prepared_next;

static ExprState **
prepared_checks(Relation rel)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	int			ncheck = constr ? constr->num_check : 0;
	PreparedChecks *p = NULL;
	MemoryContext old;
	int			i;

	if (ncheck == 0)
		return NULL;
	/* A CHECK would need their expressions spliced in (ExecRelCheck does); MPS's tables have none. */
	if (mps_has_virtual_generated(RelationGetDescr(rel)))
		elog(ERROR, "mps: %s has virtual generated columns, which MPS does not write",
			 RelationGetRelationName(rel));
	for (i = 0; i < PREPARED_CHECKS_KEPT; i++)
		if (prepared[i].relid == RelationGetRelid(rel))
		{
			p = &prepared[i];
			break;
		}
	if (p != NULL && p->ncheck == ncheck)
	{
		for (i = 0; i < ncheck; i++)
			if (strcmp(p->ccbin[i], constr->check[i].ccbin) != 0 ||
				p->enforced[i] != mps_check_enforced(&constr->check[i]))
				break;
		if (i == ncheck)
			return p->exprs;
	}
	if (p == NULL)
	{
		p = &prepared[prepared_next];
		prepared_next = (prepared_next + 1) % PREPARED_CHECKS_KEPT;
	}
	if (p->cxt != NULL)
		MemoryContextDelete(p->cxt);
	memset(p, 0, sizeof(*p));
	p->cxt = AllocSetContextCreate(TopMemoryContext, "mps prepared checks", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(p->cxt);
	p->ccbin = palloc(ncheck * sizeof(char *));
	p->enforced = palloc(ncheck * sizeof(bool));
	p->exprs = palloc(ncheck * sizeof(ExprState *));
	for (i = 0; i < ncheck; i++)
	{
		p->ccbin[i] = pstrdup(constr->check[i].ccbin);
		p->enforced[i] = mps_check_enforced(&constr->check[i]);
		/* A NOT ENFORCED one stays NULL, which the executor skips. */
		p->exprs[i] = p->enforced[i] ?
			ExecInitExpr(expression_planner(stringToNode(p->ccbin[i])), NULL) : NULL;
	}
	MemoryContextSwitchTo(old);
	p->relid = RelationGetRelid(rel);
	p->ncheck = ncheck;
	return p->exprs;
}

/*
 * The partition check of a row this file routed: always true. The row went
 * to the partition whose bounds hold its key, by the parent's bounds as
 * read under the parent's lock: what PostgreSQL's own routing relies on when
 * it skips that check for rows inserted through the parent.
 */
static ExprState *
routed_check(void)
{
	static ExprState *always_true = NULL;

	if (always_true == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		always_true = ExecInitExpr((Expr *) makeBoolConst(true, false), NULL);
		MemoryContextSwitchTo(old);
	}
	return always_true;
}

void
mps_rows_begin(MpsRowWrite *w, int ntargets, const MpsRowTarget *targets)
{
	List	   *rtable = NIL;
	List	   *perminfos = NIL;
	Relation	rels[MPS_ROW_MAX_TARGETS];
	int			i;

	Assert(ntargets > 0 && ntargets <= MPS_ROW_MAX_TARGETS);
	memset(w, 0, sizeof(*w));
	w->ntargets = ntargets;
	for (i = 0; i < ntargets; i++)
	{
		Relation	rel = mps_table_open(targets[i].table, targets[i].at, RowExclusiveLock,
										 &w->parents[i]);
		RangeTblEntry *rte;

		if (rel == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("no partition of relation \"%s.%s\" found for row",
							targets[i].table->schema, targets[i].table->name),
					 errdetail("No partition holds %s.", timestamptz_to_str(targets[i].at)),
					 errhint("Run mps.ensure_partitions().")));

		w->tables[i] = targets[i].table;
		rels[i] = rel;
		rte = makeNode(RangeTblEntry);
		rte->rtekind = RTE_RELATION;
		rte->relid = RelationGetRelid(rel);
		rte->relkind = rel->rd_rel->relkind;
		rte->rellockmode = RowExclusiveLock;
		rtable = lappend(rtable, rte);
		mps_rte_add_perminfo(&perminfos, rte);
	}

	w->estate = CreateExecutorState();
	mps_init_range_table(w->estate, rtable, perminfos);
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->estate->es_snapshot = GetActiveSnapshot();
	for (i = 0; i < ntargets; i++)
	{
		w->rels[i] = makeNode(ResultRelInfo);
		InitResultRelInfo(w->rels[i], rels[i], i + 1, NULL, 0);
		mps_set_check_exprs(w->rels[i], prepared_checks(rels[i]));
		if (w->parents[i] != NULL)
			w->rels[i]->ri_PartitionCheckExpr = routed_check();
		ExecOpenIndices(w->rels[i], targets[i].if_new);
		w->new_slots[i] = ExecInitExtraTupleSlot(w->estate, RelationGetDescr(rels[i]), &TTSOpsVirtual);
	}
	mps_epq_init(&w->epq, w->estate);
	AfterTriggerBeginQuery();
}

/* Column c's value as the column stores it. */
static Datum
column_datum(MpsRowWrite *w, int t, int c, Datum value)
{
	MpsTable   *tab = w->tables[t];
	Form_pg_attribute att;

	switch (tab->cols[c].kind)
	{
		case MPS_COL_ENUM:
			att = TupleDescAttr(RelationGetDescr(w->rels[t]->ri_RelationDesc), tab->attnum[c] - 1);
			return DirectFunctionCall2(enum_in, value, ObjectIdGetDatum(att->atttypid));
		case MPS_COL_SEQUENCE:
			return Int64GetDatum(nextval_internal(tab->seqid[c], false));
		case MPS_COL_DATUM:
			break;
	}
	return value;
}

/* The slot for target t's existing row (made on first use: most targets only insert). */
static TupleTableSlot *
old_slot(MpsRowWrite *w, int t)
{
	if (w->old_slots[t] == NULL)
		w->old_slots[t] = table_slot_create(w->rels[t]->ri_RelationDesc, &w->estate->es_tupleTable);
	return w->old_slots[t];
}

/* The row to insert into target t, in its slot. */
static TupleTableSlot *
insert_slot(MpsRowWrite *w, int t, Datum *values, const bool *nulls)
{
	MpsTable   *tab = w->tables[t];
	TupleTableSlot *slot = w->new_slots[t];
	TupleDesc	desc = slot->tts_tupleDescriptor;
	int			c;

	check_insert_complete(tab, desc);
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, desc->natts * sizeof(bool));
	for (c = 0; c < tab->ncols; c++)
	{
		int			a = tab->attnum[c] - 1;
		bool		isnull = nulls != NULL && nulls[c] && tab->cols[c].kind != MPS_COL_SEQUENCE;

		slot->tts_isnull[a] = isnull;
		slot->tts_values[a] = isnull ? (Datum) 0 : column_datum(w, t, c, values[c]);
	}
	return ExecStoreVirtualTuple(slot);
}

void
mps_row_insert(MpsRowWrite *w, int t, Datum *values, const bool *nulls)
{
	ExecSimpleRelationInsert(w->rels[t], w->estate, insert_slot(w, t, values, nulls));
}

/*
 * The steps of an INSERT ... ON CONFLICT DO NOTHING (nodeModifyTable.c): look
 * for a conflicting key, waiting for its inserter; if none, insert
 * speculatively and make the index entries; a conflict that appeared
 * meanwhile takes the row back and starts again.
 */
bool
mps_row_insert_if_new(MpsRowWrite *w, int t, Datum *values, const bool *nulls)
{
	ResultRelInfo *rri = w->rels[t];
	Relation	rel = rri->ri_RelationDesc;
	TupleTableSlot *slot = insert_slot(w, t, values, nulls);
	bool		conflict;

	if (rel->rd_att->constr)
		ExecConstraints(rri, slot, w->estate);
	do
	{
		ItemPointerData conflict_tid;
		uint32		token;
		List	   *recheck;

		CHECK_FOR_INTERRUPTS();
		if (!mps_check_index_constraints(rri, slot, w->estate, &conflict_tid, NIL))
		{
			/* Above READ COMMITTED, a key this snapshot cannot see is a conflict. */
			if (IsolationUsesXactSnapshot() &&
				!table_tuple_fetch_row_version(rel, &conflict_tid, w->estate->es_snapshot,
											   old_slot(w, t)))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent update")));
			return false;
		}
		conflict = false;
		token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
		table_tuple_insert_speculative(rel, slot, w->estate->es_output_cid, 0, NULL, token);
		recheck = mps_insert_index_tuples(rri, slot, w->estate, false, true, &conflict, NIL);
		table_tuple_complete_speculative(rel, slot, token, !conflict);
		SpeculativeInsertionLockRelease(GetCurrentTransactionId());
		list_free(recheck);
	} while (conflict);
	ExecARInsertTriggers(w->estate, rri, slot, NIL, NULL);
	return true;
}

bool
mps_row_lock(MpsRowWrite *w, int t, ItemPointer tid)
{
	Relation	rel = w->rels[t]->ri_RelationDesc;
	TupleTableSlot *slot = old_slot(w, t);
	TM_FailureData tmfd;
	TM_Result	result;
	int			flags = 0;

	/* Under READ COMMITTED a writer follows an update to the newest version; above it, it fails. */
	if (!IsolationUsesXactSnapshot())
		flags |= TUPLE_LOCK_FLAG_FIND_LAST_VERSION;
	result = table_tuple_lock(rel, tid, w->estate->es_snapshot, slot, w->estate->es_output_cid,
							  LockTupleNoKeyExclusive, LockWaitBlock, flags, &tmfd);
	switch (result)
	{
		case TM_Ok:
			*tid = slot->tts_tid;
			return true;
		case TM_Deleted:
			ExecClearTuple(slot);
			return false;
		case TM_Updated:
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
			break;
		default:
			elog(ERROR, "mps: unexpected result %d locking a row of %s", (int) result,
				 RelationGetRelationName(rel));
	}
	return false;
}

Datum
mps_row_value(MpsRowWrite *w, int t, int c, bool *isnull)
{
	return slot_getattr(old_slot(w, t), w->tables[t]->attnum[c], isnull);
}

void
mps_row_update(MpsRowWrite *w, int t, ItemPointer tid, const bool *set, Datum *values,
			   const bool *nulls)
{
	MpsTable   *tab = w->tables[t];
	Relation	rel = w->rels[t]->ri_RelationDesc;
	TupleTableSlot *old = old_slot(w, t);
	TupleTableSlot *slot = w->new_slots[t];
	int			natts = slot->tts_tupleDescriptor->natts;
	int			c;

	if (TTS_EMPTY(old) || !ItemPointerEquals(&old->tts_tid, tid))
	{
		if (!table_tuple_fetch_row_version(rel, tid, SnapshotAny, old))
			elog(ERROR, "mps: row of %s vanished under its lock", RelationGetRelationName(rel));
	}
	slot_getallattrs(old);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, old->tts_values, natts * sizeof(Datum));
	memcpy(slot->tts_isnull, old->tts_isnull, natts * sizeof(bool));
	for (c = 0; c < tab->ncols; c++)
	{
		int			a = tab->attnum[c] - 1;

		if (!set[c])
			continue;
		slot->tts_isnull[a] = nulls != NULL && nulls[c];
		slot->tts_values[a] = slot->tts_isnull[a] ? (Datum) 0 : column_datum(w, t, c, values[c]);
	}
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationUpdate(w->rels[t], w->estate, &w->epq, old, slot);
	*tid = slot->tts_tid;
}

void
mps_rows_end(MpsRowWrite *w)
{
	int			i;

	AfterTriggerEndQuery(w->estate);
	EvalPlanQualEnd(&w->epq);
	for (i = 0; i < w->ntargets; i++)
	{
		ExecCloseIndices(w->rels[i]);
		table_close(w->rels[i]->ri_RelationDesc, NoLock);
		if (w->parents[i] != NULL)
			table_close(w->parents[i], NoLock);
	}
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	ExecCloseResultRelations(w->estate);
	FreeExecutorState(w->estate);
	w->estate = NULL;
}
