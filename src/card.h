/*
 * card.h — a card under lock, its level, and the one way money moves on it.
 */
#ifndef MPS_CARD_H
#define MPS_CARD_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "storage/itemptr.h"
#include "utils/uuid.h"

#include "actor.h"
#include "audit.h"

typedef struct MpsLevel
{
	bool		valid;
	int32		id;
	char		code[40];
	int32		discount_bp;
	int32		earn_rate_bp;
	int64		min_points;
	int64		max_points;		/* inclusive; meaningless when open */
	bool		open;
} MpsLevel;

typedef struct MpsCard
{
	pg_uuid_t	id;
	char		card_type[16];
	char		status[16];
	char		currency[4];
	int			exponent;
	int64		max_amount;
	int64		max_balance;
	int64		balance;
	int64		points;
	int32		fixed_discount_bp;
	bool		has_expiry;
	TimestampTz expires_at;
	MpsLevel	level;
	ItemPointerData tid;		/* the row version read; a movement updates it */
} MpsCard;

/* Advisory lock on the card, then its row FOR UPDATE; raises MP201 when missing. */
extern void mps_card_lock_and_load(const pg_uuid_t *card_id, MpsCard *card);

/*
 * The lock for a payment by code: also the paying member's binding role on
 * the card (NULL when none or no payer), whether the code is used or revoked
 * and where its row is, read in the same statement.
 */
extern void mps_card_lock_for_payment(const pg_uuid_t *card_id, const pg_uuid_t *payer, int64 qr_id,
									  MpsCard *card, char **payer_role, bool *code_used,
									  bool *code_revoked, ItemPointerData *code_tid);

/* Read without locking (for checks made before the lock); false when missing. */
extern bool mps_card_peek(const pg_uuid_t *card_id, MpsCard *card);

/* The same, raising MP201 when missing. */
extern void mps_card_load(const pg_uuid_t *card_id, MpsCard *card);

/* The member's binding role on the card ("owner", "admin", "member", "viewer"), or NULL. */
extern const char *mps_card_binding_role(const pg_uuid_t *card_id, const pg_uuid_t *member_id);

/* The card's first owner; false when it has none. */
extern bool mps_card_owner(const pg_uuid_t *card_id, pg_uuid_t *member_id);

/* Raise MP203/MP202/MP204 unless the card is active and unexpired. */
extern void mps_card_require_usable(const MpsCard *card);

/* The discount the card gives on a subtotal, in basis points. */
extern int32 mps_card_discount_bp(const MpsCard *card);

/* Points a payment of `paid` minor units earns on this card (personal cards only). */
extern int64 mps_card_points_for(const MpsCard *card, int64 paid);

/* The level of a personal card holding `points` (keeps `current` when it still fits). */
extern void mps_level_for_points(int64 points, const MpsLevel *current, MpsLevel *out);

/* One movement on a locked card: a transactions row, a point_ledger row when points move. */
typedef struct MpsMovement
{
	pg_uuid_t	tx_id;
	TimestampTz created_at;
	const char *kind;
	const char *status;
	int64		amount;			/* signed change of the balance */
	int64		raw_amount;
	int64		discount_amount;
	int64		final_amount;
	int64		points_delta;
	bool		has_merchant;
	pg_uuid_t	merchant_id;
	bool		has_member;
	pg_uuid_t	member_id;
	bool		has_original;
	pg_uuid_t	original_tx_id;
	int64		qr_code_id;		/* 0: none */
	bool		consume_code;	/* the movement uses up that single-use code */
	ItemPointerData qr_tid;		/* its row, as mps_card_lock_for_payment found it */
	const char *idempotency_key;
	const char *order_no;
	const char *reason;
	Datum		tag;			/* the caller's jsonb tag, or 0 */
	const char *details_json;
	Datum		details;		/* details_json as jsonb when the caller has it, else 0 */
	const char *ledger_reason;
	/* filled in by mps_movement_prepare */
	int64		balance_after;
	int64		points_after;
	MpsLevel	level_before;
	MpsLevel	level_after;
} MpsMovement;

/* Start a movement: a fresh time-ordered id stamped with the current time. */
extern void mps_movement_init(MpsMovement *m, const char *kind);

/*
 * On the locked card: the new balance (never negative), points and level,
 * into m. Nothing is written yet, so the caller can describe the outcome.
 */
extern void mps_movement_prepare(MpsCard *card, MpsMovement *m);

/*
 * Write the prepared movement: card row, transaction row, ledger row when
 * points move, the code's consumption when asked, and the audit event
 * (audit_action on entity "transaction", after = audit_after, an unfinished
 * object this adds the card's id to as "card_id" and finishes).
 * Returns false when the code to consume was no longer live (the caller
 * raises its error, which undoes the rest).
 */
extern bool mps_movement_write(const MpsActor *actor, MpsCard *card, MpsMovement *m,
							   const char *audit_action, MpsJson *audit_after);

#endif
