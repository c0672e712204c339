/*
 * busy_card.c — letting go of a busy card at its commit record, acknowledging
 * only after the flush.
 *
 * Everything that moves money on a card holds the card's lock until its
 * transaction ends. With a synchronous commit that includes the WAL flush, and
 * while the holder sleeps on the disk its CPU goes to other sessions, so the
 * next charge on the same card waits for the flush plus a scheduling delay.
 * On one busy card that wait is the limit on throughput.
 *
 * When a call had to wait for its card (someone else held it), or someone
 * waits for the card when the transaction commits, it commits asynchronously
 * instead: the commit record is written,
 * the transaction becomes visible and its locks go at once, and then, after
 * the locks are released but before the commit returns to the client, the
 * backend flushes WAL through its commit record. So:
 *   - nothing acknowledged is ever lost: the caller hears of the commit only
 *     after its flush, exactly as with a synchronous commit;
 *   - whatever a later transaction builds on it (the next charge on the card)
 *     sits later in the WAL, so it can never be durable without it;
 *   - the one difference: for the length of the flush, another session can
 *     read the committed rows before they are on disk. A crash in that
 *     window undoes them, and their caller was told nothing. The answers that
 *     report a movement as done (an idempotent replay, MP502 for an order
 *     number already charged) flush first (mps_flush_before_report).
 * Synchronous replication is left alone: with synchronous_standby_names set,
 * commits stay synchronous. Off by default (mps.busy_card_early_release).
 *
 * Refusals rest on others' commits too ("code used", "already refunded", "key
 * reused", "insufficient balance"), and such a commit may not be on disk yet
 * (early release, or a caller's own asynchronous commit). So every MP error
 * flushes all WAL written so far before it reaches the client (an
 * emit_log_hook: it runs before the message is sent).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/resowner.h"

#include "busy_card.h"
#include "compat.h"

static bool early_release = false;

static emit_log_hook_type prev_emit_log_hook = NULL;

/* This transaction commits asynchronously and must flush after its locks go. */
static bool flush_after_locks = false;

/* The card lock this transaction took without waiting, to look for waiters at commit. */
static bool watching = false;
static LOCKTAG watched_card;

static void busy_card_commit(void);

/* An MP error (a refusal MPS raised) is sent only once what it rests on is on disk. */
static void
flush_before_refusal(ErrorData *edata)
{
	if (edata->elevel == ERROR &&
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) == MAKE_SQLSTATE('M', 'P', '0', '0', '0') &&
		CritSectionCount == 0 && !proc_exit_inprogress)
		mps_flush_before_report();
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

static void
flush_after_release(ResourceReleasePhase phase, bool isCommit, bool isTopLevel, void *arg)
{
	if (phase != RESOURCE_RELEASE_AFTER_LOCKS || !isTopLevel || !flush_after_locks)
		return;
	flush_after_locks = false;
	/* XactLastCommitEnd: the end of this transaction's commit record (xact.c). */
	if (isCommit && !XLogRecPtrIsInvalid(XactLastCommitEnd))
		XLogFlush(XactLastCommitEnd);
}

static void
look_for_waiters(XactEvent event, void *arg)
{
	if (!watching)
		return;
	if (event == XACT_EVENT_PRE_COMMIT &&
		mps_lock_held_by_me(&watched_card, ExclusiveLock) &&
		LockHasWaiters(&watched_card, ExclusiveLock, false))
		busy_card_commit();
	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PARALLEL_PRE_COMMIT &&
		event != XACT_EVENT_PRE_PREPARE)
		watching = false;
}

void
mps_busy_card_init(void)
{
	DefineCustomBoolVariable("mps.busy_card_early_release",
							 "Whether a call that waited for its card releases the card at its commit record.",
							 "Its commit still returns only after the flush; see the README, \"Busy cards\".",
							 &early_release, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = flush_before_refusal;
	RegisterResourceReleaseCallback(flush_after_release, NULL);
	RegisterXactCallback(look_for_waiters, NULL);
}

void
mps_busy_card_lock(int32 namespace, int32 key)
{
	LOCKTAG		tag;

	/* The same lock as pg_advisory_xact_lock(namespace, key). */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, namespace, key, 2);
	if (LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
	{
		if (!watching)
		{
			watched_card = tag;
			watching = true;
		}
		return;
	}
	busy_card_commit();
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* This transaction commits asynchronously and flushes once its locks are gone. */
static void
busy_card_commit(void)
{
	if (!early_release || flush_after_locks)
		return;
	/* The caller chose an asynchronous commit already, or replication must confirm it. */
	if (synchronous_commit <= SYNCHRONOUS_COMMIT_OFF)
		return;
	if (SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0')
		return;
	(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	flush_after_locks = true;
}

void
mps_flush_if_early_release(void)
{
	if (early_release)
		mps_flush_before_report();
}

void
mps_flush_before_report(void)
{
	XLogRecPtr	upto;
	uint32		header;

	if (RecoveryInProgress())
		return;
	/*
	 * Everything inserted so far. At the start of a page the insert position
	 * points past the page's header, which is not written until the next
	 * record is: flushing that far would fail, so stop at the page's start.
	 */
	upto = GetXLogInsertRecPtr();
	header = XLogSegmentOffset(upto, wal_segment_size) < XLOG_BLCKSZ ?
		SizeOfXLogLongPHD : SizeOfXLogShortPHD;
	if (upto % XLOG_BLCKSZ == header)
		upto -= header;
	XLogFlush(upto);
}
