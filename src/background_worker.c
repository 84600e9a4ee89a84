/*
 * background_worker.c — the background worker (docs/reference.md#scheduler).
 *
 * Two processes:
 *  - the launcher, a static worker registered in _PG_init.  It connects to no
 *    database (shared catalogs only), so it can check that taskguard.database
 *    exists before anything connects to it: no FATAL restart loop when it does
 *    not.  It starts the scheduler and starts it again when it exits.
 *  - the scheduler, a dynamic worker connected to taskguard.database.  Every
 *    taskguard.naptime it runs the steps of taskguard._tick_step(), each in its
 *    own short transaction, repeating a step while it fills its batch.  It
 *    waits quietly while the extension does not exist, and it disconnects when
 *    someone tries to DROP DATABASE its database (it sees the drop's lock), so
 *    pg_regress and plain DROP DATABASE work; WITH (FORCE) terminates it and
 *    the launcher brings it back once the database exists again.
 *
 * The scheduler runs as the bootstrap superuser, so it trusts nothing the
 * database owner may set: it pins search_path (pg_catalog, taskguard, pg_temp)
 * and the settings that could stop or redirect its steps at connect, and runs
 * every step under taskguard.step_timeout and taskguard.step_lock_timeout, so
 * one stuck step is logged and the others still run.
 *
 * Neither process runs on a hot standby (they start once recovery has
 * finished, i.e. after promotion) nor during pg_upgrade (IsBinaryUpgrade).
 * Memory of a pass lives in PassContext, reset before every step.
 *
 * Shared state: SchedulerShared (status for taskguard.scheduler_status) under
 * TG_LOCK_SCHEDULER.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "notify_throttle.h"
#include "taskguard.h"

#define MAX_STEPS 16
#define STEP_NAME_LEN 32
#define ERROR_LEN 512
/* A step that fills its batch runs again, up to this long per pass. */
#define STEP_BUDGET_MS 5000
/* Longest wait between checks for a pending DROP DATABASE. */
#define DROP_CHECK_MS 500
/* Shortest time between two scheduler starts. */
#define RELAUNCH_MS 1000
/* What the scheduler resolves names with (security rule, docs/security.md). */
#define SCHEDULER_SEARCH_PATH "pg_catalog, taskguard, pg_temp"

#ifndef TASKGUARD_VERSION
#error "TASKGUARD_VERSION must be defined (the Makefile passes taskguard.control's default_version)"
#endif

typedef struct SchedulerShared
{
	pid_t		launcher_pid;
	pid_t		pid;
	TimestampTz started_at;
	TimestampTz last_pass_at;
	double		last_pass_ms;
	int64		passes;
	int			nsteps;
	char		step_names[MAX_STEPS][STEP_NAME_LEN];
	int64		last_counts[MAX_STEPS];
	int64		total_counts[MAX_STEPS];
	char		last_error[ERROR_LEN];
	TimestampTz last_error_at;
} SchedulerShared;

static SchedulerShared *sched = NULL;

/* GUCs of the scheduler (defined in SchedulerDefineGucs) */
static int	tg_step_timeout_ms = 60 * 1000;
static int	tg_step_lock_timeout_ms = 10 * 1000;

/* Memory of the current pass: CurrentMemoryContext between transactions. */
static MemoryContext PassContext = NULL;

PGDLLEXPORT void taskguard_launcher_main(Datum arg);
PGDLLEXPORT void taskguard_scheduler_main(Datum arg);
PG_FUNCTION_INFO_V1(taskguard_scheduler_status);

Size
SchedulerShmemSize(void)
{
	return MAXALIGN(sizeof(SchedulerShared));
}

void
SchedulerShmemInit(void)
{
	bool		found;

	sched = ShmemInitStruct("taskguard scheduler", SchedulerShmemSize(), &found);
	if (!found)
		memset(sched, 0, sizeof(SchedulerShared));
}

/* Fill the fields every taskguard worker shares. */
static void
InitWorker(BackgroundWorker *w, const char *function, const char *type)
{
	memset(w, 0, sizeof(BackgroundWorker));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	strlcpy(w->bgw_library_name, "taskguard", BGW_MAXLEN);
	strlcpy(w->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(w->bgw_name, type, BGW_MAXLEN);
	strlcpy(w->bgw_type, type, BGW_MAXLEN);
}

/* taskguard.step_timeout and taskguard.step_lock_timeout. */
void
SchedulerDefineGucs(void)
{
	DefineCustomIntVariable("taskguard.step_timeout",
							"Longest time one transaction of a scheduler step may run (0: no limit).",
							NULL, &tg_step_timeout_ms, 60 * 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("taskguard.step_lock_timeout",
							"Longest time a scheduler step waits for one lock (0: no limit).",
							NULL, &tg_step_lock_timeout_ms, 10 * 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}

void
SchedulerRegisterLauncher(void)
{
	BackgroundWorker w;

	/*
	 * pg_upgrade starts both clusters with -b: the old cluster must not
	 * change (its data is being copied) and the new one is being filled by
	 * pg_restore, so there is nothing for the scheduler to do in either.
	 */
	if (IsBinaryUpgrade)
		return;
	InitWorker(&w, "taskguard_launcher_main", "taskguard launcher");
	w.bgw_restart_time = 5;
	RegisterBackgroundWorker(&w);
}

/* Sleep on our latch; SIGHUP reloads settings, SIGTERM ends us in CFI. */
static void
WaitAndReload(long ms)
{
	static uint32 wait_event = 0;

	/* a named wait event on 17+ (compat.h); registering needs shared memory, so here */
	if (wait_event == 0)
		wait_event = TgWaitEventExtension("TaskguardScheduler");
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, wait_event);
	ResetLatch(MyLatch);

	/*
	 * Between steps there is nothing to cancel: a step timeout that fired
	 * just as its step ended, or pg_cancel_backend(), must not become an
	 * ERROR outside any handler (that would be FATAL for a worker).
	 */
	QueryCancelPending = false;
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * Does the scheduler's database exist?  The launcher has no database, so it
 * scans pg_database without an index: right after initdb or a crash restart
 * the shared relcache init file may not exist yet, and building an index
 * descriptor would need pg_class.
 */
static bool
SchedulerDatabaseExists(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!found && (tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		found = strcmp(NameStr(((Form_pg_database) GETSTRUCT(tup))->datname), tg_database) == 0;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return found;
}

static BackgroundWorkerHandle *
StartScheduler(void)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	InitWorker(&w, "taskguard_scheduler_main", "taskguard scheduler");
	w.bgw_restart_time = BGW_NEVER_RESTART;
	w.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
	{
		ereport(LOG,
				(errmsg("taskguard launcher could not start the scheduler"),
				 errhint("Raise max_worker_processes.")));
		return NULL;
	}
	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		return NULL;
	return handle;
}

static bool
SchedulerAlive(BackgroundWorkerHandle *handle)
{
	pid_t		pid;

	return handle != NULL && GetBackgroundWorkerPid(handle, &pid) == BGWH_STARTED;
}

void
taskguard_launcher_main(Datum arg)
{
	BackgroundWorkerHandle *handle = NULL;
	TimestampTz last_start = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (IsBinaryUpgrade)
		proc_exit(0);			/* see SchedulerRegisterLauncher */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	LWLockAcquire(TgLock(TG_LOCK_SCHEDULER), LW_EXCLUSIVE);
	sched->launcher_pid = MyProcPid;
	LWLockRelease(TgLock(TG_LOCK_SCHEDULER));

	for (;;)
	{
		if (!SchedulerAlive(handle) &&
			TimestampDifferenceExceeds(last_start, GetCurrentTimestamp(), RELAUNCH_MS) &&
			SchedulerDatabaseExists())
		{
			if (handle)
				pfree(handle);
			handle = StartScheduler();
			last_start = GetCurrentTimestamp();
		}
		WaitAndReload(Min(tg_naptime_ms, RELAUNCH_MS));
	}
}

/*
 * Is a DROP DATABASE of our database waiting for us to leave?  dropdb holds
 * an AccessExclusiveLock on the database object while it waits for other
 * sessions to go away.
 */
static bool
DropDatabasePending(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
	if (LockAcquire(&tag, AccessShareLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, AccessShareLock, true);
	return false;
}

/* Start a short transaction with SPI and a snapshot. */
/*
 * Start a short transaction with SPI and a snapshot, under the step timeout.
 * A worker has no statement_timeout of its own (postgres.c arms it only for
 * client statements), so we arm the same timer; lock_timeout is a session
 * setting (ApplyStepSettings).
 */
static void
BeginStep(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	TgSpiConnect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	if (tg_step_timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, tg_step_timeout_ms);
}

/* Commit (the timeout covers a synchronous-replication wait too). */
static void
EndStep(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	disable_timeout(STATEMENT_TIMEOUT, false);
	MemoryContextSwitchTo(PassContext);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * The installed extension's version (in PassContext), NULL when the
 * extension does not exist in our database.
 */
static char *
InstalledVersion(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	char	   *version = NULL;

	StartTransactionCommand();
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("taskguard"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		version = MemoryContextStrdup(PassContext, isnull ? "" : TextDatumGetCString(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(PassContext);
	return version;
}

/*
 * Between `make install` of a new library and ALTER EXTENSION UPDATE the
 * schema is older than this code.  Say so once (per scheduler start and
 * installed version), then go on with the installed schema's own step list
 * and step function (LoadSteps/RunStepOnce call taskguard._tick_steps() and
 * taskguard._tick_step(), which every version has): the old steps are SQL
 * over the old tables and the C functions they name keep their behaviour
 * (release rule), so leases are still reaped and retries requeued while the
 * DBA gets round to the update.  Idling instead would stop the queue.
 */
static void
CheckInstalledVersion(const char *installed)
{
	if (strcmp(installed, TASKGUARD_VERSION) == 0)
		return;
	ereport(WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("taskguard scheduler: extension taskguard is at version %s in database \"%s\" but the library is version %s",
					installed, tg_database, TASKGUARD_VERSION),
			 errdetail("The scheduler runs the steps of the installed version %s until the extension is updated.",
					   installed),
			 errhint("Run ALTER EXTENSION taskguard UPDATE in database \"%s\".", tg_database)));
}

/*
 * Settings pinned for the life of the scheduler.  It runs as the bootstrap
 * superuser in a database whose owner may ALTER DATABASE ... SET anything
 * user-settable.  Any search_path with public in it lets the owner's objects
 * capture the names our steps use (an exact-type look-alike such as
 * public.array_agg(bigint) beats the polymorphic original wherever public
 * stands, and with public first even now() is taken); exit_on_error would turn
 * a failed step into a restart loop, a read-only or serializable default
 * would stop or slow every step.  PGC_S_SESSION outranks the database and
 * role defaults and still lets a function's own SET clause apply.
 */
static void
PinSessionSettings(void)
{
	SetConfigOption("search_path", SCHEDULER_SEARCH_PATH, PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("exit_on_error", "off", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET, PGC_S_SESSION);
}

/* lock_timeout follows taskguard.step_lock_timeout (it may change on SIGHUP). */
static void
ApplyStepSettings(void)
{
	static int	applied = -1;
	char		buf[32];

	if (applied == tg_step_lock_timeout_ms)
		return;
	snprintf(buf, sizeof(buf), "%d", tg_step_lock_timeout_ms);
	SetConfigOption("lock_timeout", buf, PGC_SUSET, PGC_S_SESSION);
	applied = tg_step_lock_timeout_ms;
}

/* Read the step list from taskguard._tick_steps() into shared memory. */
static void
LoadSteps(void)
{
	BeginStep("taskguard: loading steps");
	if (SPI_execute("SELECT unnest(taskguard._tick_steps())", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read taskguard._tick_steps()");
	LWLockAcquire(TgLock(TG_LOCK_SCHEDULER), LW_EXCLUSIVE);
	sched->nsteps = Min((int) SPI_processed, MAX_STEPS);
	for (int i = 0; i < sched->nsteps; i++)
		strlcpy(sched->step_names[i],
				SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
				STEP_NAME_LEN);
	LWLockRelease(TgLock(TG_LOCK_SCHEDULER));
	EndStep();
}

/* One transaction of one step; returns rows handled. */
static int64
RunStepOnce(const char *step, int batch)
{
	Datum		args[2];
	Oid			types[2] = {TEXTOID, INT4OID};
	bool		isnull;
	int64		n = 0;

	args[0] = CStringGetTextDatum(step);
	args[1] = Int32GetDatum(batch);
	BeginStep(step);
	if (SPI_execute_with_args("SELECT taskguard._tick_step($1, $2)", 2, types, args,
							  NULL, false, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		n = isnull ? 0 : DatumGetInt32(d);
	}
	EndStep();
	return n;
}

/*
 * Log a failed step once: the same message again in a row goes to DEBUG1,
 * so a broken step cannot flood the log every naptime.
 */
static void
ReportStepError(const char *step, ErrorData *edata)
{
	char		msg[ERROR_LEN];
	bool		repeated;

	snprintf(msg, sizeof(msg), "%s: %s", step, edata->message);
	LWLockAcquire(TgLock(TG_LOCK_SCHEDULER), LW_EXCLUSIVE);
	repeated = strcmp(sched->last_error, msg) == 0;
	strlcpy(sched->last_error, msg, ERROR_LEN);
	sched->last_error_at = GetCurrentTimestamp();
	LWLockRelease(TgLock(TG_LOCK_SCHEDULER));
	ereport(repeated ? DEBUG1 : LOG,
			(errmsg("taskguard scheduler step \"%s\" failed: %s", step, edata->message),
			 edata->detail ? errdetail_internal("%s", edata->detail) : 0));
}

/*
 * Run a step until it handles less than a batch or its budget is spent;
 * *more says it stopped on the budget with work left.
 */
static int64
RunStep(const char *step, bool *more)
{
	volatile int64 total = 0;
	volatile bool full = false;
	TimestampTz start = GetCurrentTimestamp();

	PG_TRY();
	{
		int64		n;

		do
		{
			n = RunStepOnce(step, tg_batch_size);
			total += n;
			full = n >= tg_batch_size;
			CHECK_FOR_INTERRUPTS();
		} while (full &&
				 !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), STEP_BUDGET_MS));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		disable_timeout(STATEMENT_TIMEOUT, false);
		MemoryContextSwitchTo(PassContext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(PassContext);
		ReportStepError(step, edata);
		FreeErrorData(edata);
		full = false;			/* a failing step must not make the loop spin */
		pgstat_report_activity(STATE_IDLE, NULL);
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
	*more = full;
	return total;
}

/*
 * Priority escalation reads every ready task (its candidates are hours old,
 * and no index orders ready tasks by age: one would cost every enqueue ~10 %).
 * While another session holds an old snapshot that scan also visits a dead
 * version per task claimed since, so it runs at most every ESCALATE_EVERY_MS,
 * not every naptime: aging is earned over hours.  tick() runs every step.
 */
#define ESCALATE_EVERY_MS 10000

static bool
StepResting(const char *step, TimestampTz now)
{
	static TimestampTz last_escalate = 0;

	if (strcmp(step, "escalate") != 0)
		return false;
	if (last_escalate != 0 &&
		!TimestampDifferenceExceeds(last_escalate, now, ESCALATE_EVERY_MS))
		return true;
	last_escalate = now;
	return false;
}

static void SendDueWakes(void);

/*
 * One pass: every step, then the status.  Returns true when a step stopped
 * on its budget with a full batch, so the next pass should start at once
 * (a redrive of 100,000 retries must not wait a naptime every 5 s).
 */
static bool
RunPass(void)
{
	bool		backlog = false;
	TimestampTz start = GetCurrentTimestamp();
	int64		counts[MAX_STEPS];
	char		names[MAX_STEPS][STEP_NAME_LEN];
	int			nsteps;
	long		secs;
	int			usecs;

	LWLockAcquire(TgLock(TG_LOCK_SCHEDULER), LW_SHARED);
	nsteps = sched->nsteps;
	memcpy(names, sched->step_names, sizeof(names));
	LWLockRelease(TgLock(TG_LOCK_SCHEDULER));

	ApplyStepSettings();
	for (int i = 0; i < nsteps; i++)
	{
		bool		more = false;

		MemoryContextReset(PassContext);
		if (StepResting(names[i], start))
		{
			counts[i] = 0;
			continue;
		}
		counts[i] = RunStep(names[i], &more);
		backlog |= more;
		SendDueWakes();			/* a long pass must not hold flow control's wake-ups back */
	}

	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	LWLockAcquire(TgLock(TG_LOCK_SCHEDULER), LW_EXCLUSIVE);
	for (int i = 0; i < nsteps; i++)
	{
		sched->last_counts[i] = counts[i];
		sched->total_counts[i] += counts[i];
	}
	sched->last_pass_at = start;
	sched->last_pass_ms = secs * 1000.0 + usecs / 1000.0;
	sched->passes++;
	LWLockRelease(TgLock(TG_LOCK_SCHEDULER));
	return backlog;
}

static void
SchedulerExit(int code, Datum arg)
{
	LWLockAcquire(TgLock(TG_LOCK_SCHEDULER), LW_EXCLUSIVE);
	if (sched->pid == MyProcPid)
		sched->pid = 0;
	LWLockRelease(TgLock(TG_LOCK_SCHEDULER));
	QueueWakerRegister(NULL);
}

/*
 * Flow control's wake-ups that are due (notify_throttle.c): a freed slot nobody took
 * back, a refused token that is back.  Their NOTIFYs need a transaction.
 */
static void
SendDueWakes(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (!QueueWakerDue() || RecoveryInProgress())
		return;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		(void) QueueSendWakes();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* e.g. the NOTIFY queue is full: log it, the workers' poll is the fallback */
		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

/*
 * Is there anything to do in this pass?  Loads the step list when the
 * installed version changed (CREATE EXTENSION, ALTER EXTENSION UPDATE).
 */
static bool
ReadyForPass(char *loaded_version, Size len)
{
	char	   *installed;

	/*
	 * Never true while we start after recovery, but a pass must never run
	 * on a standby: its steps all write.
	 */
	if (RecoveryInProgress())
		return false;
	installed = InstalledVersion();
	if (installed == NULL)
	{
		loaded_version[0] = '\0';	/* wait quietly for CREATE EXTENSION */
		return false;
	}
	if (strcmp(installed, loaded_version) != 0)
	{
		CheckInstalledVersion(installed);
		LoadSteps();
		strlcpy(loaded_version, installed, len);
	}
	return true;
}

void
taskguard_scheduler_main(Datum arg)
{
	char		loaded_version[NAMEDATALEN] = "";
	TimestampTz next_pass = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (IsBinaryUpgrade)
		proc_exit(0);			/* see SchedulerRegisterLauncher */
	BackgroundWorkerInitializeConnection(tg_database, NULL, 0);
	pgstat_report_appname("taskguard scheduler");
	PinSessionSettings();

	LWLockAcquire(TgLock(TG_LOCK_SCHEDULER), LW_EXCLUSIVE);
	sched->pid = MyProcPid;
	sched->started_at = GetCurrentTimestamp();
	sched->passes = 0;
	sched->nsteps = 0;
	LWLockRelease(TgLock(TG_LOCK_SCHEDULER));
	before_shmem_exit(SchedulerExit, 0);
	QueueWakerRegister(MyLatch);

	PassContext = AllocSetContextCreate(TopMemoryContext, "taskguard scheduler pass",
										ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(PassContext);
	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();

		MemoryContextReset(PassContext);
		if (DropDatabasePending())
			proc_exit(0);		/* the launcher restarts us when it exists again */

		if (now >= next_pass)
		{
			next_pass = TimestampTzPlusMilliseconds(now, tg_naptime_ms);
			if (ReadyForPass(loaded_version, sizeof(loaded_version)) && RunPass())
				next_pass = GetCurrentTimestamp();	/* backlog: go on at once */
		}
		SendDueWakes();
		/* sleep until the next pass, or until a flow control wake-up is due */
		WaitAndReload(QueueWakerTimeout(Min(Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
																				  next_pass), 1),
											  DROP_CHECK_MS)));
		SendDueWakes();
		/* a SIGHUP may shorten the naptime: don't wait out the old one */
		next_pass = Min(next_pass,
						TimestampTzPlusMilliseconds(GetCurrentTimestamp(), tg_naptime_ms));
	}
}

/* taskguard._scheduler_status(): one row of status, none when not preloaded. */
Datum
taskguard_scheduler_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9] = {0};
	StringInfoData last, total;
	SchedulerShared s;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	TgRequireShmem("taskguard.scheduler_status");

	LWLockAcquire(TgLock(TG_LOCK_SCHEDULER), LW_SHARED);
	memcpy(&s, sched, sizeof(s));
	LWLockRelease(TgLock(TG_LOCK_SCHEDULER));

	initStringInfo(&last);
	initStringInfo(&total);
	appendStringInfoChar(&last, '{');
	appendStringInfoChar(&total, '{');
	for (int i = 0; i < s.nsteps; i++)
	{
		appendStringInfo(&last, "%s\"%s\": " INT64_FORMAT, i ? ", " : "", s.step_names[i], s.last_counts[i]);
		appendStringInfo(&total, "%s\"%s\": " INT64_FORMAT, i ? ", " : "", s.step_names[i], s.total_counts[i]);
	}
	appendStringInfoChar(&last, '}');
	appendStringInfoChar(&total, '}');

	values[0] = Int32GetDatum(s.pid);
	nulls[0] = s.pid == 0;
	values[1] = Int32GetDatum(s.launcher_pid);
	nulls[1] = s.launcher_pid == 0;
	values[2] = TimestampTzGetDatum(s.started_at);
	nulls[2] = s.started_at == 0;
	values[3] = TimestampTzGetDatum(s.last_pass_at);
	nulls[3] = s.last_pass_at == 0;
	values[4] = Float8GetDatum(s.last_pass_ms);
	nulls[4] = s.passes == 0;
	values[5] = Int64GetDatum(s.passes);
	values[6] = DirectFunctionCall1(jsonb_in, CStringGetDatum(last.data));
	values[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(total.data));
	values[8] = CStringGetTextDatum(s.last_error);
	nulls[8] = s.last_error[0] == '\0';
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
