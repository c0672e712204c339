/*
 * xact_wait.c — waiting out the transactions in flight, for period cut-offs.
 *
 * A movement is stamped with the clock after its transaction has an xid
 * (card.c). So once every transaction that was running when a caller took
 * its snapshot has ended, every movement stamped before that moment is
 * visible: a settlement of a period that ended before the snapshot can then
 * read the period completely. Waiting uses the transactions' own xid locks, so
 * it is an ordinary lock wait (visible in pg_locks, cancellable).
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(mps_wait_for_running_transactions);
Datum
mps_wait_for_running_transactions(PG_FUNCTION_ARGS)
{
	Snapshot	snap = GetLatestSnapshot();
	TransactionId *xids;
	uint32		n = snap->xcnt;
	uint32		i;

	TransactionId next = XidFromFullTransactionId(ReadNextFullTransactionId());
	TransactionId x;
	uint32		total = n;

	/*
	 * Running xids are those listed in xip plus every xid at or above xmax
	 * that was handed out already (xip stops at xmax). Copy them first: the
	 * snapshot's arrays are reused by the next GetLatestSnapshot.
	 */
	for (x = snap->xmax; TransactionIdPrecedes(x, next);)
	{
		total++;
		TransactionIdAdvance(x);
	}
	xids = palloc(sizeof(TransactionId) * Max(total, 1));
	memcpy(xids, snap->xip, sizeof(TransactionId) * n);
	for (x = snap->xmax; TransactionIdPrecedes(x, next);)
	{
		xids[n++] = x;
		TransactionIdAdvance(x);
	}
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		/* Never our own (sub)transactions: waiting for them would never end. */
		if (TransactionIdIsValid(xids[i]) && !TransactionIdIsCurrentTransactionId(xids[i]))
			XactLockTableWait(xids[i], NULL, NULL, XLTW_None);
	}
	PG_RETURN_INT32((int32) n);
}
