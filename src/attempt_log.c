/*
 * attempt_log.c — an autonomous write for refused binding-password attempts.
 *
 * A wrong password must raise an error, and an error rolls back everything
 * the call wrote; yet the attempt has to be counted (for throttling) and
 * audited. PostgreSQL has no autonomous transactions, so the call starts a
 * dynamic background worker (no shared_preload_libraries needed) that writes
 * the attempt and its audit event in its own transaction, waits for it, and
 * only then raises the error. The attempts table has no foreign key to cards:
 * the caller may hold the card's row lock while it waits, and a key check
 * would wait for that lock in turn.
 *
 * Workers are few: each card's attempts take one of MPS_ATTEMPT_LANES
 * advisory locks (mps_attempt_serialize) before they count and check, and
 * keep it until the caller's (sub)transaction ends; so one attempt per card
 * runs at a time, and at most MPS_ATTEMPT_LANES workers per database, however
 * many guesses arrive at once (pg_cron and parallel query need the rest of
 * max_worker_processes). A throttled attempt is refused without a worker.
 */
#include "postgres.h"

#include "access/hash.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "attempt_log.h"
#include "errors.h"
#include "ids.h"
#include "mps.h"
#include "spi_util.h"

typedef struct AttemptMessage
{
	Oid			database;
	Oid			role;
	pg_uuid_t	attempt_id;
	pg_uuid_t	card_id;
	pg_uuid_t	member_id;
	pg_uuid_t	user_id;
	bool		has_member;
	bool		has_user;
	bool		admin;
	char		outcome[20];
} AttemptMessage;

StaticAssertDecl(sizeof(AttemptMessage) <= BGW_EXTRALEN, "attempt message must fit bgw_extra");

PGDLLEXPORT void mps_attempt_worker_main(Datum arg);

static void
could_not_record(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_MPS_ATTEMPT_NOT_RECORDED),
			 errmsg("binding attempt could not be recorded"),
			 errdetail("%s", why),
			 errhint("Try again in a moment; if it persists, raise max_worker_processes.")));
}

static MpsPlan attempt_exists = {
	"SELECT 1 FROM mps.card_binding_attempts WHERE id = $1", 1, {UUIDOID}
};

/* Two lanes: claims are rare, and each holds its lane for one bcrypt check. */
#define MPS_ATTEMPT_LANES 2

void
mps_attempt_serialize(const pg_uuid_t *card_id)
{
	uint32		key = DatumGetUInt32(hash_any(card_id->data, UUID_LEN));

	DirectFunctionCall2(pg_advisory_xact_lock_int4, Int32GetDatum(MPS_LOCK_NS_ATTEMPTS),
						Int32GetDatum((int32) (key % MPS_ATTEMPT_LANES)));
}

void
mps_record_attempt_autonomously(const MpsActor *actor, const pg_uuid_t *card_id,
								const pg_uuid_t *member_id, bool has_member, const char *outcome)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	BgwHandleStatus status;
	AttemptMessage msg;
	pid_t		pid;
	Datum		v[1];

	memset(&msg, 0, sizeof(msg));
	msg.database = MyDatabaseId;
	msg.role = GetUserId();		/* the extension owner, inside SECURITY DEFINER */
	mps_uuid7(GetCurrentTimestamp(), &msg.attempt_id);
	msg.card_id = *card_id;
	if (has_member)
		msg.member_id = *member_id;
	msg.has_member = has_member;
	msg.has_user = actor->has_user;
	msg.user_id = actor->user_id;
	msg.admin = actor->is_admin;
	strlcpy(msg.outcome, outcome, sizeof(msg.outcome));

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "mps");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "mps_attempt_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "mps binding attempt log");
	snprintf(worker.bgw_type, BGW_MAXLEN, "mps binding attempt log");
	memcpy(worker.bgw_extra, &msg, sizeof(msg));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		could_not_record("No background worker slot is free.");
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		could_not_record("The postmaster died.");
	if (status == BGWH_STARTED)
		status = WaitForBackgroundWorkerShutdown(handle);
	if (status == BGWH_POSTMASTER_DIED)
		could_not_record("The postmaster died.");

	/* Trust the row, not the exit: the worker may have failed. (A snapshot of now: ours may predate it.) */
	v[0] = UUIDPGetDatum(&msg.attempt_id);
	if (mps_exec_latest(&attempt_exists, v, NULL, 1) == 0)
		could_not_record("The attempt log worker did not write the attempt.");
}

void
mps_attempt_worker_main(Datum arg)
{
	AttemptMessage msg;
	Datum		v[5];
	char		n[6] = "     ";
	Oid			types[5] = {UUIDOID, UUIDOID, UUIDOID, UUIDOID, TEXTOID};
	char		entity[40];
	char		after[200];

	memcpy(&msg, MyBgworkerEntry->bgw_extra, sizeof(msg));
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(msg.database, msg.role, 0);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "mps: SPI_connect failed in attempt log worker");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "mps: recording a binding attempt");

	v[0] = UUIDPGetDatum(&msg.attempt_id);
	v[1] = UUIDPGetDatum(&msg.card_id);
	if (msg.has_member)
		v[2] = UUIDPGetDatum(&msg.member_id);
	else
		n[2] = 'n';
	if (msg.has_user)
		v[3] = UUIDPGetDatum(&msg.user_id);
	else
		n[3] = 'n';
	v[4] = CStringGetTextDatum(msg.outcome);
	if (SPI_execute_with_args("INSERT INTO mps.card_binding_attempts (id, card_id, member_id, user_id, outcome)"
							  " VALUES ($1, $2, $3, $4, $5)",
							  5, types, v, n, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "mps: could not insert the binding attempt");

	strlcpy(entity, DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&msg.card_id))),
			sizeof(entity));
	snprintf(after, sizeof(after), "{\"outcome\": \"%s\", \"member_id\": %s%s%s}", msg.outcome,
			 msg.has_member ? "\"" : "",
			 msg.has_member ? DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&msg.member_id))) : "null",
			 msg.has_member ? "\"" : "");
	{
		Oid			atypes[5] = {BOOLOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID};
		Datum		av[5];
		char		an[6] = "     ";

		av[0] = BoolGetDatum(msg.admin);
		if (msg.has_user)
			av[1] = UUIDPGetDatum(&msg.user_id);
		else
			an[1] = 'n';
		av[2] = CStringGetTextDatum("card.binding_attempt");
		av[3] = CStringGetTextDatum(entity);
		av[4] = CStringGetTextDatum(after);
		if (SPI_execute_with_args("INSERT INTO audit.event_log (actor_via, actor_admin, actor_user_id, action,"
								  " entity_type, entity_id, after) VALUES ('attempt_log', $1, $2, $3, 'card', $4, $5::jsonb)",
								  5, atypes, av, an, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "mps: could not audit the binding attempt");
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
