/*
 * xact_wait.c — waiting out the transactions that could still write into a
 * settlement period, and only those.
 *
 * A movement is stamped with the clock after its transaction has an xid
 * (card.c), so a movement stamped before a period's end belongs to a
 * transaction of this database that had started before that end. Once every
 * such transaction has ended, the period can be read completely. Others are
 * not waited for: a transaction in another database, one that started after
 * the period ended, or one without an xid (it has written nothing). A
 * prepared transaction is waited for only if it holds a lock on
 * mps.transactions or one of its partitions, i.e. wrote a movement.
 *
 * Waiting uses the transactions' own xid locks, so it is an ordinary lock wait
 * (visible in pg_locks, cancellable). The wait is bounded (mps.settlement_wait_timeout): a transaction left open
 * must not stall every merchant's settlement behind it. Running out of time
 * is MP710, naming the transaction, and changes nothing.
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/resowner.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "errors.h"
#include "spi_util.h"
#include "xact_wait.h"

static int	settlement_wait_timeout = 60000;

void
mps_xact_wait_init(void)
{
	DefineCustomIntVariable("mps.settlement_wait_timeout",
							"Longest wait of a settlement for transactions that may still write into its period.",
							"Then the settlement fails with MP710 and changes nothing; 0 waits without a limit.",
							&settlement_wait_timeout, 60000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
}

/*
 * The writers that may still add to a period ending at $1: this database's
 * sessions with an xid whose transaction started before $1, and prepared
 * transactions of this database holding a lock on the movement tables.
 */
static MpsPlan period_writers = {
	"SELECT a.backend_xid::text, a.pid, NULL::text FROM pg_catalog.pg_stat_activity a"
	" WHERE a.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())"
	"   AND a.backend_xid IS NOT NULL AND a.pid <> pg_catalog.pg_backend_pid() AND a.xact_start < $1"
	" UNION ALL"
	" SELECT p.transaction::text, NULL, p.gid FROM pg_catalog.pg_prepared_xacts p"
	" WHERE p.database = pg_catalog.current_database()"
	"   AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks x JOIN pg_catalog.pg_locks l"
	"                 ON l.virtualtransaction = x.virtualtransaction AND l.pid IS NULL"
	"               WHERE x.locktype = 'transactionid' AND x.transactionid = p.transaction AND x.pid IS NULL"
	"                 AND (l.relation = 'mps.transactions'::pg_catalog.regclass"
	"                      OR l.relation IN (SELECT inhrelid FROM pg_catalog.pg_inherits"
	"                                        WHERE inhparent = 'mps.transactions'::pg_catalog.regclass)))",
	1, {TIMESTAMPTZOID}
};

typedef struct Writer
{
	TransactionId xid;
	int			pid;			/* 0 for a prepared transaction */
	char	   *gid;			/* a prepared transaction's name, else NULL */
} Writer;

/*
 * Wait for xid to end, at most timeout_ms; false when the time ran out. An
 * ordinary lock wait on the transaction's xid lock (visible in pg_locks,
 * cancellable), under lock_timeout, in a subtransaction so that running out
 * of time can be told from any other error and leaves nothing behind.
 */
static bool
wait_for_xid(TransactionId xid, long timeout_ms)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ended = true;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		(void) set_config_option("lock_timeout", psprintf("%ld", timeout_ms), PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
		XactLockTableWait(xid, NULL, NULL, XLTW_None);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		ended = false;
	}
	PG_END_TRY();
	return ended;
}

/*
 * wait_for_running_transactions(p_period_end timestamptz DEFAULT 'infinity'):
 * returns how many transactions it waited for. 0.1.0 declared it without
 * the argument: then every writer of this database counts.
 */
PG_FUNCTION_INFO_V1(mps_wait_for_running_transactions);
Datum
mps_wait_for_running_transactions(PG_FUNCTION_ARGS)
{
	TimestampTz period_end = (PG_NARGS() > 0 && !PG_ARGISNULL(0))
		? PG_GETARG_TIMESTAMPTZ(0) : DT_NOEND;
	TimestampTz deadline;
	Datum		v[1];
	uint64		n;
	uint64		i;
	Writer	   *writers;

	mps_spi_connect();
	v[0] = TimestampTzGetDatum(period_end);
	n = mps_exec(&period_writers, v, NULL, true, 0);
	writers = SPI_palloc(sizeof(Writer) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		char	   *xid = mps_col_text(i, 1);

		writers[i].xid = (TransactionId) strtoul(xid, NULL, 10);
		writers[i].pid = mps_col_int32(i, 2, 0);
		writers[i].gid = mps_col_text(i, 3);
	}
	mps_spi_finish();

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), settlement_wait_timeout);
	for (i = 0; i < n; i++)
	{
		TransactionId xid = writers[i].xid;
		long		left_ms;

		/* Never our own (sub)transactions: waiting for them would never end. */
		if (!TransactionIdIsValid(xid) || TransactionIdIsCurrentTransactionId(xid))
			continue;
		left_ms = (long) ((deadline - GetCurrentTimestamp()) / 1000);
		/* 0: no limit, as with lock_timeout. */
		if (wait_for_xid(xid, settlement_wait_timeout == 0 ? 0 : Max(left_ms, 1)))
			continue;
		if (writers[i].gid)
			ereport(ERROR,
					(errcode(ERRCODE_MPS_SETTLEMENT_WAIT),
					 errmsg("settlement waits for a transaction that is still open"),
					 errdetail("Prepared transaction \"%s\" (xid %u) of this database wrote movements and is neither committed nor rolled back.",
							   writers[i].gid, xid),
					 errhint("COMMIT PREPARED or ROLLBACK PREPARED it, then settle again.")));
		ereport(ERROR,
				(errcode(ERRCODE_MPS_SETTLEMENT_WAIT),
				 errmsg("settlement waits for a transaction that is still open"),
				 errdetail("Transaction %u of backend %d started before the period ended and is still open after %d ms.",
						   xid, writers[i].pid, settlement_wait_timeout),
				 errhint("End that transaction (pg_stat_activity shows it), or raise mps.settlement_wait_timeout, then settle again.")));
	}
	PG_RETURN_INT32((int32) n);
}
