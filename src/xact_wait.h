/*
 * xact_wait.h — a settlement's bounded wait for the writers of its period.
 */
#ifndef MPS_XACT_WAIT_H
#define MPS_XACT_WAIT_H

/* Register mps.settlement_wait_timeout (from _PG_init). */
extern void mps_xact_wait_init(void);

#endif
