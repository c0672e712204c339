/*
 * ref_cache.c — the currencies and membership levels, kept per backend.
 *
 * Every card read needs its currency's exponent and caps and its level's
 * discount and earn rate. Joining the two small tables into each read cost
 * every movement two more scans and their executor set-up; they change a few
 * times a year. So each backend keeps a copy, read with SPI on first use and
 * read again after either table changed: a statement trigger on both tables
 * (sql/69_config_audit.sql) sends a relcache invalidation for its table, which this
 * file's callback turns into "read again". PostgreSQL delivers it to every
 * backend at its next transaction start or lock, and to the changing
 * transaction itself at its next command, so a movement sees the settings
 * committed when it began (or its own), never a half-done change.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/inval.h"
#include "utils/memutils.h"

#include "ref_cache.h"
#include "spi_util.h"

static MemoryContext ref_cxt = NULL;
static bool ref_valid = false;
static uint64 ref_invalidations = 0;
static Oid	currencies_relid = InvalidOid;
static Oid	levels_relid = InvalidOid;
static MpsCurrency *currencies = NULL;
static int	ncurrencies = 0;
static MpsLevel *levels = NULL;	/* by min_points, ascending */
static int	nlevels = 0;

static MpsPlan relids_plan = {
	"SELECT 'mps.currencies'::regclass::oid::bigint, 'mps.membership_levels'::regclass::oid::bigint", 0, {0}
};
static MpsPlan currencies_plan = {
	"SELECT code::text, exponent, max_amount, max_balance FROM mps.currencies", 0, {0}
};
static MpsPlan levels_plan = {
	"SELECT id, code, discount_bp, earn_rate_bp, min_points, max_points"
	" FROM mps.membership_levels ORDER BY min_points",
	0, {0}
};

static void
ref_cache_inval(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == currencies_relid || relid == levels_relid)
	{
		ref_valid = false;
		ref_invalidations++;
	}
}

void
mps_ref_cache_init(void)
{
	CacheRegisterRelcacheCallback(ref_cache_inval, (Datum) 0);
}

/*
 * Read both tables. Callers are often in the middle of reading a row of their
 * own statement (a card's level id, then its other columns), so the caller's
 * SPI result is put back afterwards; SPI keeps it until SPI_finish.
 */
static void
ref_cache_load(void)
{
	SPITupleTable *caller_tuptable = SPI_tuptable;
	uint64		caller_processed = SPI_processed;
	uint64		invalidations_before = ref_invalidations;
	MemoryContext old;
	uint64		i;

	if (ref_valid)
		return;
	if (ref_cxt == NULL)
		ref_cxt = AllocSetContextCreate(CacheMemoryContext, "mps reference cache",
										ALLOCSET_SMALL_SIZES);
	MemoryContextReset(ref_cxt);
	currencies = NULL;
	levels = NULL;
	ncurrencies = nlevels = 0;

	mps_exec(&relids_plan, NULL, NULL, false, 1);
	currencies_relid = (Oid) mps_col_int64(0, 1, 0);
	levels_relid = (Oid) mps_col_int64(0, 2, 0);
	SPI_freetuptable(SPI_tuptable);

	mps_exec(&currencies_plan, NULL, NULL, false, 0);
	old = MemoryContextSwitchTo(ref_cxt);
	currencies = palloc0(sizeof(MpsCurrency) * Max(SPI_processed, 1));
	MemoryContextSwitchTo(old);
	for (i = 0; i < SPI_processed; i++)
	{
		MpsCurrency *c = &currencies[i];

		strlcpy(c->code, mps_col_text(i, 1), sizeof(c->code));
		c->exponent = mps_col_int32(i, 2, 2);
		c->max_amount = mps_col_int64(i, 3, 0);
		c->max_balance = mps_col_int64(i, 4, 0);
	}
	ncurrencies = (int) SPI_processed;
	SPI_freetuptable(SPI_tuptable);

	mps_exec(&levels_plan, NULL, NULL, false, 0);
	old = MemoryContextSwitchTo(ref_cxt);
	levels = palloc0(sizeof(MpsLevel) * Max(SPI_processed, 1));
	MemoryContextSwitchTo(old);
	for (i = 0; i < SPI_processed; i++)
	{
		MpsLevel   *l = &levels[i];

		l->valid = true;
		l->id = mps_col_int32(i, 1, 0);
		strlcpy(l->code, mps_col_text(i, 2), sizeof(l->code));
		l->discount_bp = mps_col_int32(i, 3, 0);
		l->earn_rate_bp = mps_col_int32(i, 4, 0);
		l->min_points = mps_col_int64(i, 5, 0);
		l->open = mps_col_isnull(i, 6);
		l->max_points = mps_col_int64(i, 6, 0);
	}
	nlevels = (int) SPI_processed;
	SPI_freetuptable(SPI_tuptable);
	SPI_tuptable = caller_tuptable;
	SPI_processed = caller_processed;
	/* An invalidation that came in while reading means: read again next time. */
	ref_valid = (ref_invalidations == invalidations_before);
}

static bool
currency_lookup(const char *code, MpsCurrency *out)
{
	int			i;

	for (i = 0; i < ncurrencies; i++)
		if (strcmp(currencies[i].code, code) == 0)
		{
			*out = currencies[i];
			return true;
		}
	return false;
}

/*
 * A stored row can name a currency or level newer than the copy: a
 * transaction that began before the change committed, reading a row made
 * after it. A miss therefore reads the tables once more before it counts.
 */
static void
ref_cache_reload(void)
{
	ref_valid = false;
	ref_cache_load();
}

bool
mps_currency_find(const char *code, MpsCurrency *out)
{
	ref_cache_load();
	if (currency_lookup(code, out))
		return true;
	ref_cache_reload();
	if (currency_lookup(code, out))
		return true;
	memset(out, 0, sizeof(*out));
	return false;
}

void
mps_currency_of_row(const char *code, MpsCurrency *out)
{
	if (!mps_currency_find(code, out))
		elog(ERROR, "mps: currency \"%s\" of a stored row is not in mps.currencies", code);
}

static bool
level_lookup(int32 id, MpsLevel *out)
{
	int			i;

	for (i = 0; i < nlevels; i++)
		if (levels[i].id == id)
		{
			*out = levels[i];
			return true;
		}
	return false;
}

void
mps_level_by_id(int32 id, MpsLevel *out)
{
	ref_cache_load();
	if (level_lookup(id, out))
		return;
	ref_cache_reload();
	if (level_lookup(id, out))
		return;
	memset(out, 0, sizeof(*out));
}

void
mps_level_by_points(int64 points, MpsLevel *out)
{
	int			i;

	ref_cache_load();
	for (i = nlevels - 1; i >= 0; i--)
		if (levels[i].min_points <= points)
		{
			*out = levels[i];
			return;
		}
	memset(out, 0, sizeof(*out));
}

/* Statement trigger on mps.currencies and mps.membership_levels: tell every backend. */
PG_FUNCTION_INFO_V1(mps_ref_cache_changed);
Datum
mps_ref_cache_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "mps: ref_cache_changed must be called as a trigger");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
