/*
 * taskguard.c — module entry: _PG_init, the GUCs, and the shared-memory hooks
 * that give each capability file its piece of shared memory.
 *
 * Works both preloaded (shared memory, background worker) and loaded on first
 * use (every function that needs neither still works; the others raise
 * ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE through TgRequireShmem).
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "taskguard.h"

PG_MODULE_MAGIC;

char	   *tg_database = NULL;
int			tg_naptime_ms = 1000;
bool		tg_notify = true;
int			tg_notify_interval_ms = 50;
int			tg_max_breakers = 1024;
int			tg_breaker_tenant_share = 10;
int			tg_max_counters = 1024;
int			tg_batch_size = 1000;
int			tg_worker_capacity = 4;

/* interval-valued settings are read from SQL with current_setting() */
char	   *tg_task_retention = NULL;
char	   *tg_task_ring_slot = NULL;
bool		tg_task_ring_moving = false;
static char *tg_event_retention = NULL;
static char *tg_dlq_retention = NULL;
static char *tg_idempotency_ttl = NULL;
static char *tg_vacuum_blocker_age = NULL;
static char *tg_dispatch_timeout = NULL;

/* read from SQL by the scheduler step retry_tune (docs/failures.md "Retry advice") */
static bool tg_retry_auto_tune = false;

bool		tg_shmem_ready = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/* Total shared memory of all capabilities. */
static Size
TgShmemSize(void)
{
	Size		size = 0;

	size = add_size(size, QueueShmemSize());
	size = add_size(size, SchedulerShmemSize());
	size = add_size(size, BreakerShmemSize());
	size = add_size(size, CounterShmemSize());
	size = add_size(size, ClaimMarkShmemSize());
	size = add_size(size, FlowShmemSize());
	return size;
}

static void
TgShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(TgShmemSize());
	RequestNamedLWLockTranche("taskguard", TG_LOCK_COUNT);
}

static void
TgShmemStartup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	QueueShmemInit();
	SchedulerShmemInit();
	BreakerShmemInit();
	CounterShmemInit();
	ClaimMarkShmemInit();
	FlowShmemInit();
	LWLockRelease(AddinShmemInitLock);
	tg_shmem_ready = true;
}

/* The lock of one shared structure; only valid when preloaded. */
LWLock *
TgLock(TgLockId id)
{
	return &(GetNamedLWLockTranche("taskguard"))[id].lock;
}

/* Refuse cleanly when a feature needs shared memory we do not have. */
void
TgRequireShmem(const char *what)
{
	if (!tg_shmem_ready)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("taskguard must be loaded via shared_preload_libraries to use %s", what),
				 errhint("Add taskguard to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Every SPI session of taskguard starts here.  SPI_connect fails only on a
 * can't-happen (nesting gone wrong), hence elog.
 */
void
TgSpiConnect(void)
{
	int			rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		elog(ERROR, "taskguard: SPI_connect failed: %s", SPI_result_code_string(rc));
}

/* ---- configuration caches (taskguard.h) ---- */

static TgConfigCache *config_caches = NULL;
static bool config_callback_registered = false;

/* Marks stale every cache that holds relid (all of them for InvalidOid). */
static void
TgConfigCacheCallback(Datum arg, Oid relid)
{
	for (TgConfigCache *c = config_caches; c != NULL; c = c->next)
	{
		bool		known = false;
		bool		hit = (relid == InvalidOid);

		for (int i = 0; i < TG_CONFIG_CACHE_RELS; i++)
		{
			known |= OidIsValid(c->relids[i]);
			hit |= (OidIsValid(c->relids[i]) && c->relids[i] == relid);
		}
		/* while the first read looks its tables up, any table may be one of them */
		if (hit || (c->loading && !known))
			c->generation++;
	}
}

/* Is the copy of cache current?  Registers it (and our callback) on first use. */
bool
TgConfigCacheCurrent(TgConfigCache *cache)
{
	if (!config_callback_registered)
	{
		CacheRegisterRelcacheCallback(TgConfigCacheCallback, (Datum) 0);
		config_callback_registered = true;
	}
	if (cache->generation == 0)
	{
		cache->generation = 1;
		cache->next = config_caches;
		config_caches = cache;
	}
	return cache->loaded != 0 && cache->loaded == cache->generation;
}

/* Start reading the tables; the generation to give LoadEnd. */
uint64
TgConfigCacheLoadBegin(TgConfigCache *cache)
{
	Assert(cache->generation != 0); /* TgConfigCacheCurrent came first */
	/*
	 * Take in the changes committed before the read starts: the read sees
	 * them, so they must not make the new copy stale (one reload too many,
	 * in the middle of a claim for flow control's cache).
	 */
	AcceptInvalidationMessages();
	cache->loaded = 0;			/* an error during the read leaves no copy */
	cache->loading = true;
	return cache->generation;
}

/* The copy read since LoadBegin is current unless an invalidation came meanwhile. */
void
TgConfigCacheLoadEnd(TgConfigCache *cache, uint64 generation)
{
	cache->loading = false;
	cache->loaded = generation;
}

/*
 * The one statement trigger of every table a TgConfigCache holds: each
 * backend's copy goes stale when the change commits.
 */
Datum
TgConfigChangedTrigger(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskguard.%s() must be called as a trigger",
						get_func_name(fcinfo->flinfo->fn_oid))));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(taskguard_config_changed);

/* taskguard._config_changed(): TgConfigChangedTrigger as SQL sees it. */
Datum
taskguard_config_changed(PG_FUNCTION_ARGS)
{
	return TgConfigChangedTrigger(fcinfo);
}

/*
 * Parse an interval the way interval_in does, but with the datetime parser's
 * error codes instead of ereport: a check hook may run in the postmaster (at
 * SIGHUP), and catching an ERROR without a subtransaction is not safe.
 * Returns false for text that is no interval or out of range; 'infinity'
 * (accepted from PostgreSQL 17) counts as larger than any other interval.
 */
static bool
IntervalParse(const char *str, Interval *result, bool *infinite)
{
	char		workbuf[256];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype = 0;
	struct pg_itm_in itm_in;
	int			dterr;

	*infinite = false;
	dterr = ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE,
							   &dtype, &itm_in);
	/* interval_in's fallback for the ISO 8601 forms such as 'P1D' */
	if (dterr == DTERR_BAD_FORMAT)
		dterr = DecodeISO8601Interval(unconstify(char *, str), &dtype, &itm_in);
	if (dterr != 0)
		return false;
	if (dtype == DTK_LATE)
	{
		*infinite = true;
		return true;
	}
	return dtype == DTK_DELTA && itmin2interval(&itm_in, result) == 0;
}

/*
 * An interval setting's text in microseconds (a month counts 30 days), for
 * the C code that needs one on a hot path; fallback if it does not parse,
 * INT64_MAX if infinite.
 */
int64
TgIntervalUsecs(const char *text, int64 fallback)
{
	Interval	iv;
	bool		infinite;

	if (text == NULL || !IntervalParse(text, &iv, &infinite))
		return fallback;
	if (infinite)
		return PG_INT64_MAX;
	return iv.time + (int64) iv.day * USECS_PER_DAY +
		(int64) iv.month * DAYS_PER_MONTH * USECS_PER_DAY;
}

/*
 * Interval GUCs must parse as intervals and must not be negative; checked
 * when set.  A negative retention would delete finished rows at once and a
 * negative idempotency TTL would let duplicates through.  They stay strings
 * (not integer GUCs with a time unit) so every form 0.1.0 accepted in
 * postgresql.conf, such as '7 days' or '1 mon', still parses after an update:
 * an integer GUC would refuse it and silently fall back to its default.
 */
static bool
CheckIntervalGuc(char **newval, void **extra, GucSource source)
{
	Interval	iv;
	Interval	zero = {0};
	bool		infinite;

	if (*newval == NULL)
		return true;
	if (!IntervalParse(*newval, &iv, &infinite))
	{
		GUC_check_errdetail("\"%s\" is not a valid interval.", *newval);
		return false;
	}
	if (!infinite &&
		DatumGetBool(DirectFunctionCall2(interval_lt, IntervalPGetDatum(&iv),
										 IntervalPGetDatum(&zero))))
	{
		GUC_check_errdetail("\"%s\" is negative; use an interval of at least 0.", *newval);
		return false;
	}
	return true;
}

static void
DefineIntervalGuc(const char *name, const char *desc, char **var, const char *def)
{
	DefineCustomStringVariable(name, desc, NULL, var, def, PGC_SIGHUP, 0,
							   CheckIntervalGuc, NULL, NULL);
}

static void
DefineGucs(void)
{
	/*
	 * PGC_POSTMASTER GUCs may only be created while preloading (later it is a
	 * FATAL error); loaded on first use, the sizes mean nothing anyway.
	 */
	GucContext	pm = process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP;

	DefineCustomStringVariable("taskguard.database",
							   "Database in which the taskguard scheduler runs.",
							   NULL, &tg_database, "postgres",
							   pm, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("taskguard.naptime",
							"Time between scheduler passes.",
							NULL, &tg_naptime_ms, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("taskguard.notify",
							 "Send NOTIFY taskguard when a task becomes ready.",
							 NULL, &tg_notify, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskguard.notify_interval",
							"Minimum time between two NOTIFYs for one queue.",
							NULL, &tg_notify_interval_ms, 50, 0, 60 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("taskguard.batch_size",
							"Rows one scheduler step handles per transaction.",
							NULL, &tg_batch_size, 1000, 1, 1000000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskguard.worker_capacity",
							"Concurrent jobs the schedule analysis assumes by default.",
							NULL, &tg_worker_capacity, 4, 1, 100000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskguard.max_breakers",
							"Circuit breakers kept in shared memory.",
							NULL, &tg_max_breakers, 1024, 16, 1000000,
							pm, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskguard.breaker_tenant_share",
							"Percentage of taskguard.max_breakers one tenant may allocate.",
							"At least 8 breakers per tenant whatever the percentage; roles mapped to no tenant are not limited.",
							&tg_breaker_tenant_share, 10, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskguard.max_counters",
							"Per-task_name counters kept in shared memory.",
							NULL, &tg_max_counters, 1024, 16, 1000000,
							pm, 0, NULL, NULL, NULL);
	DefineIntervalGuc("taskguard.task_retention",
					  "How long succeeded and cancelled tasks are kept.",
					  &tg_task_retention, "1 day");
	DefineIntervalGuc("taskguard.task_ring_slot",
					  "Time slot of the ring of partitions of taskguard.task; at least half of taskguard.task_retention is used.",
					  &tg_task_ring_slot, "30 s");
	DefineCustomBoolVariable("taskguard.task_ring_moving",
							 "Set by the ring rotation while it moves rows between partitions of taskguard.task.",
							 NULL, &tg_task_ring_moving, false,
							 PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineIntervalGuc("taskguard.event_retention",
					  "How long failure events are kept.",
					  &tg_event_retention, "30 days");
	DefineIntervalGuc("taskguard.dlq_retention",
					  "How long resolved dead-letter records are kept.",
					  &tg_dlq_retention, "30 days");
	DefineIntervalGuc("taskguard.idempotency_ttl",
					  "How long enqueue() remembers an idempotency key.",
					  &tg_idempotency_ttl, "24 hours");
	DefineIntervalGuc("taskguard.dispatch_timeout",
					  "How long a retry handed out by claim_due_retries() may go unreported before it is due again.",
					  &tg_dispatch_timeout, "1 hour");
	DefineIntervalGuc("taskguard.vacuum_blocker_age",
					  "Age at which a session, prepared transaction or slot holding back vacuum of taskguard's tables raises the vacuum_blocker alert.",
					  &tg_vacuum_blocker_age, "5 minutes");
	DefineCustomBoolVariable("taskguard.retry_auto_tune",
							 "Let the scheduler apply retry advice within bounds, once an hour.",
							 NULL, &tg_retry_auto_tune, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	SchedulerDefineGucs();
	MarkGUCPrefixReserved("taskguard");
}

void
_PG_init(void)
{
	DefineGucs();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = TgShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = TgShmemStartup;

	SchedulerRegisterLauncher();
}

/*
 * Act as the owner of relid (when it exists) until TgRestoreUser(): the
 * per-backend configuration caches read their tables this way, so that any
 * role that may call a function can fill them, whatever its own privileges
 * on the tables.  Restricted: no temp objects, no SET ROLE meanwhile.
 *
 * The search_path is pinned to TG_PINNED_SEARCH_PATH (pg_temp last) for as
 * long: statements run with the owner's rights must not resolve a type,
 * function or operator in a schema the caller controls (a pg_temp.float8
 * domain whose CHECK calls the caller's function, say).
 */
void
TgActAsRelOwner(Oid relid, TgSavedUser *saved)
{
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	saved->guc_level = NewGUCNestLevel();
	(void) set_config_option("search_path", TG_PINNED_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
	}
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	if (OidIsValid(owner))
		SetUserIdAndSecContext(owner, saved->sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
}

/* Back to the user TgActAsRelOwner() saved. */
void
TgRestoreUser(const TgSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
	AtEOXact_GUC(true, saved->guc_level);
}
