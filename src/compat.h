/*
 * compat.h — the differences between PostgreSQL versions in the server API
 * that MPS calls, all in one place.
 *
 * Every PG_VERSION_NUM test of the extension is here; the .c files call
 * these wrappers and read the same on every version. Each wrapper keeps what
 * the call does on 15 (the version MPS is built and tested on), and its
 * comment names the version that changed the call. The branches for 16, 17
 * and 18 follow those versions' headers and sources.
 */
#ifndef MPS_COMPAT_H
#define MPS_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "access/tupdesc.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "utils/relcache.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#include "varatt.h"				/* 16 moved the varlena macros out of postgres.h */
#endif

/* 15 brought MarkGUCPrefixReserved and InitMaterializedSRF, which MPS calls as they are. */
#if PG_VERSION_NUM < 150000
#error "MPS needs PostgreSQL 15 or later"
#endif

/* 18 replaced pg_attribute_noreturn(), written after a declaration, by pg_noreturn before it. */
#if PG_VERSION_NUM >= 180000
#define mps_noreturn pg_noreturn
#else
#define mps_noreturn pg_attribute_noreturn()
#endif

/* Does this transaction hold `mode` on `tag`, exactly that mode? 17 added "or stronger". */
static inline bool
mps_lock_held_by_me(const LOCKTAG *tag, LOCKMODE mode)
{
#if PG_VERSION_NUM >= 170000
	return LockHeldByMe(tag, mode, false);
#else
	return LockHeldByMe(tag, mode);
#endif
}

/* Start an index scan; 18 added the instrumentation to fill (none here: no EXPLAIN). */
static inline IndexScanDesc
mps_index_beginscan(Relation heap, Relation index, Snapshot snapshot, int nkeys, int norderbys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys);
#else
	return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

/* The primary key's index, none when it is deferrable; 18 made "deferrable too" an argument. */
static inline Oid
mps_primary_key_index(Relation rel)
{
#if PG_VERSION_NUM >= 180000
	return RelationGetPrimaryKeyIndex(rel, false);
#else
	return RelationGetPrimaryKeyIndex(rel);
#endif
}

/*
 * Give a range table entry its permission info. 16 moved the permission
 * fields out of RangeTblEntry into a list beside the range table, which the
 * executor reads for the columns a row error may show and a trigger sees as
 * updated; 15 has nothing to add.
 */
static inline void
mps_rte_add_perminfo(List **perminfos, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	(void) addRTEPermissionInfo(perminfos, rte);
#endif
}

/*
 * Set up the range table of an executor state made by hand. 16 added the
 * permission list; 18 added the entries left after partition pruning, which
 * here are all of them (each names a table written).
 */
static inline void
mps_init_range_table(EState *estate, List *rtable, List *perminfos)
{
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, rtable, perminfos, bms_add_range(NULL, 1, list_length(rtable)));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(estate, rtable, perminfos);
#else
	ExecInitRangeTable(estate, rtable);
#endif
}

/* EvalPlanQual state without a plan, as logical replication has; 16 added result relations. */
static inline void
mps_epq_init(EPQState *epq, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	EvalPlanQualInit(epq, estate, NULL, NIL, -1, NIL);
#else
	EvalPlanQualInit(epq, estate, NULL, NIL, -1);
#endif
}

/* Index entries for a new row, in every index; 16 added "summarizing ones only" (HOT updates). */
static inline List *
mps_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate, bool update,
						bool noDupErr, bool *specConflict, List *arbiterIndexes)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, update, noDupErr, specConflict,
								 arbiterIndexes, false);
#else
	return ExecInsertIndexTuples(rri, slot, estate, update, noDupErr, specConflict,
								 arbiterIndexes);
#endif
}

/*
 * Look for a row whose key a row not yet inserted would take. 18 added the
 * TID of a row to leave out of the search (just inserted); none here.
 */
static inline bool
mps_check_index_constraints(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
							ItemPointer conflictTid, List *arbiterIndexes)
{
#if PG_VERSION_NUM >= 180000
	ItemPointerData none;

	ItemPointerSetInvalid(&none);
	return ExecCheckIndexConstraints(rri, slot, estate, conflictTid, &none, arbiterIndexes);
#else
	return ExecCheckIndexConstraints(rri, slot, estate, conflictTid, arbiterIndexes);
#endif
}

/* Hand the executor a table's prepared CHECK expressions; 18 renamed the field. */
static inline void
mps_set_check_exprs(ResultRelInfo *rri, ExprState **exprs)
{
#if PG_VERSION_NUM >= 180000
	rri->ri_CheckConstraintExprs = exprs;
#else
	rri->ri_ConstraintExprs = exprs;
#endif
}

/* Is a CHECK constraint enforced? 18 added NOT ENFORCED ones, which the executor skips. */
static inline bool
mps_check_enforced(const ConstrCheck *check)
{
#if PG_VERSION_NUM >= 180000
	return check->ccenforced;
#else
	return true;
#endif
}

/* Has the table virtual generated columns? 18 added them (computed on read, stored as NULL). */
static inline bool
mps_has_virtual_generated(TupleDesc desc)
{
#if PG_VERSION_NUM >= 180000
	return desc->constr != NULL && desc->constr->has_generated_virtual;
#else
	return false;
#endif
}

#endif
