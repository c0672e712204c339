/*
 * txview.h — one movement as the RPCs report it, whether just written or
 * replayed from its row for an idempotent retry.
 */
#ifndef MPS_TXVIEW_H
#define MPS_TXVIEW_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/uuid.h"

#include "card.h"

typedef struct MpsTxView
{
	pg_uuid_t	tx_id;
	TimestampTz created_at;
	pg_uuid_t	card_id;
	char		currency[4];
	int			exponent;
	char		kind[20];
	int64		amount;
	int64		raw_amount;
	int64		discount_amount;
	int64		final_amount;
	int64		balance_after;
	int64		points_delta;
	int64		points_after;
	char		level_before[40];	/* "" when none */
	char		level_after[40];
	bool		has_merchant;
	pg_uuid_t	merchant_id;
	bool		has_original;
	pg_uuid_t	original_tx_id;
	char	   *order_no;		/* NULL when none */
	char	   *details;		/* jsonb text or NULL */
	int64		refunded_total; /* refunds: the original's refunded total after this one */
	int64		original_final; /* refunds: the original's final amount */
} MpsTxView;

/*
 * Read a movement by its exact key (id, created_at); false when absent. Needs
 * SPI; the view's strings are allocated in SPI's caller's context, so they
 * outlive mps_spi_finish().
 */
extern bool mps_txview_load(const pg_uuid_t *tx_id, TimestampTz created_at, MpsTxView *view);

/* The view of a movement just applied to a card. */
extern void mps_txview_from(const MpsCard *card, const MpsMovement *m, MpsTxView *view);

/* A minor-unit amount as a numeric Datum in major units. */
extern Datum mps_major_datum(int64 minor, int exponent);

/* Text Datum or SQL NULL for an empty string. */
extern Datum mps_text_or_null(const char *s, bool *isnull);

#endif
