/*
 * stamps.c — stamp cards (seed 004): stamps earned by charges with line
 * items, redeemed inside a charge by comping a reward item, taken back by a
 * full refund.
 *
 * A member's progress row is locked FOR UPDATE before it changes, so two
 * charges of one member on different cards cannot spend the same stamps.
 * Earning: for each active activity of the member's group, the paid (not
 * comped) units of the lines that match its stamp targets and cost more than
 * zero after their rules (a free line earns nothing). Redeeming consumes
 * stamps_required: a cyclic activity keeps the rest and counts a cycle, a
 * one-off closes for the member. A full refund reverses the charge's earning
 * (never below zero) and its redemption; a partial refund changes no stamps.
 */
#include "postgres.h"

#include "access/hash.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "errors.h"
#include "mps.h"
#include "pricing.h"
#include "spi_util.h"
#include "stamps.h"

typedef struct Target
{
	char		kind;			/* 's'tamp or 'r'eward */
	char		type;			/* 'C'ategory or 'P'roduct */
	char	   *id;
} Target;

typedef struct Activity
{
	int32		id;
	int32		required;
	int32		reward_quantity;
	char		strategy;		/* 'E'conomizador, 'G'eneroso, 'D'esignated */
	char	   *designated;
	bool		cyclic;
	int			ntargets;
	Target	   *targets;
} Activity;

static MpsPlan group_activities = {
	"SELECT a.id, a.stamps_required, a.reward_quantity, a.reward_strategy, a.designated_product_id,"
	" a.is_cyclic, t.kind, t.target_type, t.target_id"
	" FROM mps.stamp_activities a LEFT JOIN mps.stamp_targets t ON t.activity_id = a.id"
	" WHERE a.marketing_group_id = $1 AND a.is_active AND a.deleted_at IS NULL ORDER BY a.id",
	1, {INT4OID}
};

static int
load_activities(int32 group_id, Activity **out)
{
	Datum		v[1];
	uint64		n;
	uint64		i;
	int			count = 0;

	*out = NULL;
	if (group_id == 0)
		return 0;
	v[0] = Int32GetDatum(group_id);
	n = mps_exec(&group_activities, v, NULL, false, 0);
	*out = palloc0(sizeof(Activity) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int32		id = mps_col_int32(i, 1, 0);
		Activity   *a = count > 0 ? &(*out)[count - 1] : NULL;

		if (a == NULL || a->id != id)
		{
			a = &(*out)[count++];
			a->id = id;
			a->required = mps_col_int32(i, 2, 1);
			a->reward_quantity = mps_col_int32(i, 3, 1);
			a->strategy = mps_col_text(i, 4)[0];
			a->designated = mps_col_text(i, 5);
			a->cyclic = mps_col_bool(i, 6, true);
			a->targets = palloc0(sizeof(Target) * n);
		}
		if (!mps_col_isnull(i, 7))
		{
			Target	   *t = &a->targets[a->ntargets++];

			t->kind = mps_col_text(i, 7)[0];
			t->type = mps_col_text(i, 8)[0];
			t->id = mps_col_text(i, 9);
		}
	}
	return count;
}

static bool
line_matches(const Activity *a, char kind, const MpsLine *line)
{
	int			i;

	for (i = 0; i < a->ntargets; i++)
	{
		const Target *t = &a->targets[i];

		if (t->kind != kind)
			continue;
		if (t->type == 'P' && strcmp(t->id, line->product_id) == 0)
			return true;
		if (t->type == 'C' && line->category_id && strcmp(t->id, line->category_id) == 0)
			return true;
	}
	return false;
}

/*
 * All of one member's stamp work runs under one advisory lock, taken after
 * the card lock: two charges on two cards of the member then never lock
 * their progress rows in opposite orders (no deadlock).
 */
static void
member_stamp_lock(const pg_uuid_t *member)
{
	uint32		key = DatumGetUInt32(hash_any(member->data, UUID_LEN));

	DirectFunctionCall2(pg_advisory_xact_lock_int4,
						Int32GetDatum(MPS_LOCK_NS_STAMPS), Int32GetDatum((int32) key));
}

static MpsPlan lock_progress = {
	"INSERT INTO mps.member_stamp_progress (member_id, activity_id) VALUES ($1, $2)"
	" ON CONFLICT (member_id, activity_id) DO UPDATE SET member_id = excluded.member_id"
	" RETURNING current_stamps, completed_cycles, is_closed",
	2, {UUIDOID, INT4OID}
};

static MpsPlan update_progress = {
	"UPDATE mps.member_stamp_progress SET current_stamps = $3, completed_cycles = $4, is_closed = $5,"
	" last_stamp_at = CASE WHEN $6 THEN now() ELSE last_stamp_at END, updated_at = now()"
	" WHERE member_id = $1 AND activity_id = $2",
	6, {UUIDOID, INT4OID, INT4OID, INT4OID, BOOLOID, BOOLOID}
};

static MpsPlan insert_ledger = {
	"INSERT INTO mps.stamp_ledger (member_id, activity_id, tx_id, kind, delta) VALUES ($1, $2, $3, $4, $5)",
	5, {UUIDOID, INT4OID, UUIDOID, TEXTOID, INT4OID}
};

typedef struct Progress
{
	int32		current;
	int32		cycles;
	bool		closed;
} Progress;

/* Lock (creating if needed) the member's progress row for the activity. */
static void
progress_lock(const pg_uuid_t *member, int32 activity, Progress *p)
{
	Datum		v[2];

	member_stamp_lock(member);

	v[0] = UUIDPGetDatum((pg_uuid_t *) member);
	v[1] = Int32GetDatum(activity);
	mps_exec(&lock_progress, v, NULL, false, 1);
	p->current = mps_col_int32(0, 1, 0);
	p->cycles = mps_col_int32(0, 2, 0);
	p->closed = mps_col_bool(0, 3, false);
}

static void
progress_write(const pg_uuid_t *member, int32 activity, const Progress *p, bool stamped,
			   const pg_uuid_t *tx_id, const char *kind, int32 delta)
{
	Datum		v[6];

	v[0] = UUIDPGetDatum((pg_uuid_t *) member);
	v[1] = Int32GetDatum(activity);
	v[2] = Int32GetDatum(p->current);
	v[3] = Int32GetDatum(p->cycles);
	v[4] = BoolGetDatum(p->closed);
	v[5] = BoolGetDatum(stamped);
	mps_exec(&update_progress, v, NULL, false, 0);
	v[2] = UUIDPGetDatum((pg_uuid_t *) tx_id);
	v[3] = CStringGetTextDatum(kind);
	v[4] = Int32GetDatum(delta);
	mps_exec(&insert_ledger, v, NULL, false, 0);
}

void
mps_stamps_prepare_redemption(const pg_uuid_t *member, int32 group_id, int32 activity_id,
							  MpsPriced *priced, MpsRedemption *r)
{
	Activity   *acts;
	int			nacts = load_activities(group_id, &acts);
	Activity   *a = NULL;
	Progress	p;
	int32		left;
	int			i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < nacts; i++)
		if (acts[i].id == activity_id)
			a = &acts[i];
	if (a == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_MARKETING_ITEM_NOT_FOUND),
				 errmsg("stamp activity not available to this member"),
				 errdetail("Activity %d is not an active activity of the member's marketing group.", activity_id),
				 errhint("Check the activity id and the member's group.")));

	progress_lock(member, activity_id, &p);
	if (p.closed)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_STAMPS_CLOSED),
				 errmsg("stamp activity already redeemed"),
				 errdetail("Activity %d is one-off and this member has redeemed it.", activity_id),
				 errhint("Nothing more to redeem here.")));
	if (p.current < a->required)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_STAMPS_SHORT),
				 errmsg("not enough stamps"),
				 errdetail("The member has %d of the %d stamps activity %d needs.", p.current, a->required, activity_id),
				 errhint("Collect more stamps first.")));

	/* Comp reward_quantity units, choosing lines by the strategy. */
	left = a->reward_quantity;
	while (left > 0)
	{
		MpsLine    *best = NULL;

		for (i = 0; i < priced->nlines; i++)
		{
			MpsLine    *line = &priced->lines[i];
			bool		ok;

			if (line->comped_units >= line->quantity)
				continue;
			if (a->strategy == 'D')
				ok = strcmp(line->product_id, a->designated) == 0;
			else
				ok = line_matches(a, 'r', line);
			if (!ok)
				continue;
			if (best == NULL ||
				(a->strategy == 'G' ? line->unit_price > best->unit_price
				 : line->unit_price < best->unit_price))
				best = line;
		}
		if (best == NULL)
			break;
		best->comped_units++;
		left--;
	}
	if (left == a->reward_quantity)
		ereport(ERROR,
				(errcode(ERRCODE_MPS_NO_REWARD_LINE),
				 errmsg("no line qualifies for the reward"),
				 errdetail("No line of the order matches activity %d's reward%s.", activity_id,
						   a->strategy == 'D' ? " (its designated product)" : " targets"),
				 errhint("Add the reward item to the order.")));

	r->activity_id = activity_id;
	r->required = a->required;
	r->cyclic = a->cyclic;
	r->comped_units = a->reward_quantity - left;
	r->progress_current = p.current;
	r->progress_cycles = p.cycles;
}

void
mps_stamps_commit(const pg_uuid_t *member, int32 group_id, const MpsPriced *priced,
				  const MpsRedemption *r, const pg_uuid_t *tx_id, StringInfo summary)
{
	Activity   *acts;
	int			nacts = load_activities(group_id, &acts);
	int			i;
	int			j;

	appendStringInfoString(summary, "[");
	if (r && r->activity_id)
	{
		Progress	p;

		p.current = r->progress_current - r->required;
		p.cycles = r->progress_cycles + 1;
		p.closed = !r->cyclic;
		progress_write(member, r->activity_id, &p, false, tx_id, "redeem", -r->required);
		appendStringInfo(summary, "{\"activity_id\": %d, \"redeemed\": %d, \"comped_units\": %d}",
						 r->activity_id, r->required, r->comped_units);
	}
	for (i = 0; i < nacts; i++)
	{
		int32		earned = 0;
		Progress	p;

		/* Paid units only: a line that costs nothing after its rules earns nothing. */
		for (j = 0; j < priced->nlines; j++)
			if (priced->lines[j].final_amount > 0 && line_matches(&acts[i], 's', &priced->lines[j]))
				earned += priced->lines[j].quantity - priced->lines[j].comped_units;
		if (earned == 0)
			continue;
		progress_lock(member, acts[i].id, &p);
		if (p.closed)
			continue;
		p.current += earned;
		progress_write(member, acts[i].id, &p, true, tx_id, "earn", earned);
		if (summary->len > 1)
			appendStringInfoString(summary, ", ");
		appendStringInfo(summary, "{\"activity_id\": %d, \"earned\": %d, \"stamps\": %d}",
						 acts[i].id, earned, p.current);
	}
	appendStringInfoString(summary, "]");
}

static MpsPlan tx_stamps = {
	"SELECT member_id, activity_id, kind, delta FROM mps.stamp_ledger WHERE tx_id = $1 ORDER BY id",
	1, {UUIDOID}
};

void
mps_stamps_reverse(const pg_uuid_t *tx_id, const pg_uuid_t *refund_tx_id)
{
	Datum		v[1];
	uint64		n;
	uint64		i;
	pg_uuid_t  *members;
	int32	   *activities;
	char	  **kinds;
	int32	   *deltas;

	v[0] = UUIDPGetDatum((pg_uuid_t *) tx_id);
	n = mps_exec(&tx_stamps, v, NULL, false, 0);
	if (n == 0)
		return;
	members = palloc(sizeof(pg_uuid_t) * n);
	activities = palloc(sizeof(int32) * n);
	kinds = palloc(sizeof(char *) * n);
	deltas = palloc(sizeof(int32) * n);
	for (i = 0; i < n; i++)
	{
		mps_col_uuid(i, 1, &members[i]);
		activities[i] = mps_col_int32(i, 2, 0);
		kinds[i] = mps_col_text(i, 3);
		deltas[i] = mps_col_int32(i, 4, 0);
	}
	for (i = 0; i < n; i++)
	{
		Progress	p;

		progress_lock(&members[i], activities[i], &p);
		if (strcmp(kinds[i], "earn") == 0)
		{
			int32		back = Min(deltas[i], p.current);

			p.current -= back;
			progress_write(&members[i], activities[i], &p, false, refund_tx_id, "earn_reversal", -back);
		}
		else if (strcmp(kinds[i], "redeem") == 0)
		{
			p.current += -deltas[i];
			p.cycles = Max(p.cycles - 1, 0);
			p.closed = false;
			progress_write(&members[i], activities[i], &p, false, refund_tx_id, "redeem_reversal", -deltas[i]);
		}
	}
}
