/*
 * tx_partition.c — statements on the one monthly partition of
 * mps.transactions that holds a given time.
 *
 * Reading or updating one transaction by its id: the id (a UUIDv7) tells its
 * created_at, so only one partition can hold it. A generic plan over the
 * partitioned table would lock every partition (one more each month) on every
 * call; a plan made per call prunes to one partition but is planned every
 * time. So MPS finds the partition itself, from the table's own partition
 * bounds (the relcache has them), and runs a plan prepared once per
 * partition: planned once, one partition locked. A time that no partition
 * holds matches no row.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "row_write.h"
#include "tx_partition.h"

/* The partition of mps.transactions whose range holds `at`, or InvalidOid. */
static Oid
partition_holding(TimestampTz at)
{
	Oid			parent = get_relname_relid("transactions", get_namespace_oid("mps", false));
	Relation	rel;
	Oid			found;

	if (!OidIsValid(parent))
		elog(ERROR, "mps: table mps.transactions is missing");
	/* The lock any query on the table takes, and its bounds as such a query sees them. */
	rel = table_open(parent, AccessShareLock);
	found = mps_partition_holding(rel, at);
	table_close(rel, NoLock);
	return found;
}

/* The plan of `pp` for partition `relid`, prepared on first use. */
static MpsPlan *
plan_for(MpsPartitionPlan *pp, Oid relid)
{
	char	   *nspname = get_namespace_name(get_rel_namespace(relid));
	char	   *relname = get_rel_name(relid);
	char	   *name;
	MpsPartitionSlot *slot;
	MemoryContext old;
	int			i;

	if (nspname == NULL || relname == NULL)
		elog(ERROR, "mps: partition %u vanished", relid);
	name = quote_qualified_identifier(nspname, relname);
	slot = NULL;
	for (i = 0; i < pp->nslots; i++)
	{
		if (pp->slots[i].relid != relid)
			continue;
		/* The name too: a kept plan finds its table again by name after DDL. */
		if (strcmp(pp->slots[i].name, name) == 0)
			return &pp->slots[i].plan;
		slot = &pp->slots[i];	/* renamed: make its plan again */
		break;
	}

	/* That slot, a new one, or the oldest made (lookups are mostly of recent months). */
	if (slot == NULL && pp->nslots < MPS_PARTITION_SLOTS)
		slot = &pp->slots[pp->nslots++];
	else
	{
		if (slot == NULL)
		{
			slot = &pp->slots[pp->next_victim];
			pp->next_victim = (pp->next_victim + 1) % MPS_PARTITION_SLOTS;
		}
		if (slot->plan.plan != NULL)
			SPI_freeplan(slot->plan.plan);
		pfree(slot->name);
		pfree((char *) slot->plan.sql);
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	slot->relid = relid;
	slot->name = pstrdup(name);
	slot->plan.sql = psprintf(pp->sql, name);
	MemoryContextSwitchTo(old);
	slot->plan.nargs = pp->nargs;
	memcpy(slot->plan.argtypes, pp->argtypes, sizeof(pp->argtypes));
	slot->plan.plan = NULL;
	return &slot->plan;
}

uint64
mps_exec_in_tx_partition(MpsPartitionPlan *pp, TimestampTz at, Datum *values,
						 const char *nulls, bool read_only, long count)
{
	Oid			relid = partition_holding(at);

	if (!OidIsValid(relid))
		return 0;
	return mps_exec(plan_for(pp, relid), values, nulls, read_only, count);
}
