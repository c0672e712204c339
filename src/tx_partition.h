/*
 * tx_partition.h — statements on the one partition of mps.transactions that
 * holds a given time (see tx_partition.c).
 */
#ifndef MPS_TX_PARTITION_H
#define MPS_TX_PARTITION_H

#include "postgres.h"
#include "utils/timestamp.h"

#include "spi_util.h"

/* Plans kept per statement: replays and lookups reach back a few months at most. */
#define MPS_PARTITION_SLOTS 4

typedef struct MpsPartitionSlot
{
	Oid			relid;
	char	   *name;			/* schema-qualified, quoted */
	MpsPlan		plan;
} MpsPartitionSlot;

/*
 * A statement on one transactions partition: sql has one %s where the
 * partition's name goes (e.g. "SELECT ... FROM %s WHERE id = $1").
 */
typedef struct MpsPartitionPlan
{
	const char *sql;
	int			nargs;
	Oid			argtypes[MPS_PLAN_MAX_ARGS];
	int			nslots;
	int			next_victim;
	MpsPartitionSlot slots[MPS_PARTITION_SLOTS];
} MpsPartitionPlan;

/* Run pp on the partition holding `at`; returns SPI_processed (0 when none holds it). */
extern uint64 mps_exec_in_tx_partition(MpsPartitionPlan *pp, TimestampTz at, Datum *values,
									   const char *nulls, bool read_only, long count);

#endif
