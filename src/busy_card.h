/*
 * busy_card.h — a busy card's commit: early lock release, flush before the reply.
 */
#ifndef MPS_BUSY_CARD_H
#define MPS_BUSY_CARD_H

/* Register the setting and the after-commit flush (from _PG_init). */
extern void mps_busy_card_init(void);

/*
 * Take a card's advisory lock (namespace, key) for the transaction. Busy when
 * someone holds it now, or waits for it at commit: then the commit is early.
 */
extern void mps_busy_card_lock(int32 namespace, int32 key);

/* Flush all WAL written so far: before reporting a movement that may have committed that way. */
extern void mps_flush_before_report(void);

/*
 * With early release on: flush all WAL written so far, so that what a read
 * can see is on disk (a released card's last commit may not be yet).
 */
extern void mps_flush_if_early_release(void);

#endif
