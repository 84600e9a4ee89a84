/*
 * breaker.c — circuit breakers (docs/reference.md#breakers): state in shared memory, settings
 * cached per backend, state persisted to taskguard.breaker_saved.
 *
 * Shared state: a dynahash keyed by (database oid, service name) holding one
 * BreakerCore each (the state machine is breaker_core.c), guarded by
 * TgLock(TG_LOCK_BREAKER): LW_SHARED to look, LW_EXCLUSIVE to change.  One
 * extra entry per database, with an empty service name, says that the
 * database's saved rows were loaded and from which table (a re-created
 * extension has a new table, so its database is purged and reloaded).
 * Nothing here runs SQL while holding the lock.
 *
 * Every change bumps the entry's version (a cluster-wide counter).  A state
 * change is written to the table at once, in a subtransaction of the caller
 * (best effort: it never fails the caller and never waits for a row another
 * transaction holds); the version counts as saved only when that transaction
 * commits.  The scheduler step _breaker_maintain() writes whatever is still
 * unsaved, so a change made by a transaction that rolled back stays in shared
 * memory and reaches the table anyway.
 *
 * Settings come from taskguard.breaker_config, read once per backend and
 * re-read after a relcache invalidation of that table (its statement trigger
 * sends one on every change).
 *
 * The table is shared by every database and tenant, so a new breaker is
 * charged to the tenant of the caller that allocates it (the first tenant of
 * taskguard._tenant_scope(); roles mapped to none are not charged): one
 * tenant holds at most taskguard.breaker_tenant_share percent of the table
 * (at least BREAKER_TENANT_MIN).  Counting for breakers that exist is never
 * limited.  Every refused allocation is counted in shared memory
 * (taskguard._breaker_table(), the alert breaker_table_full and the
 * Prometheus counters), so a full table never loses failures silently.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/pg_list.h"
#include "common/hashfn.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "breaker.h"
#include "breaker_core.h"
#include "taskguard.h"

/* Databases whose saved rows can be marked loaded at once. */
#define BREAKER_MAX_DBS 64
/* State writes remembered per transaction until it commits. */
#define BREAKER_MAX_PENDING 64
/* A tenant may always hold this many breakers, whatever its share. */
#define BREAKER_TENANT_MIN 8

/* Why BreakerEnter() allocated nothing. */
typedef enum BreakerRefusal
{
	BREAKER_REFUSED_NONE = 0,
	BREAKER_REFUSED_FULL,		/* no free slot and none idle */
	BREAKER_REFUSED_SHARE		/* the caller's tenant holds its share */
} BreakerRefusal;

/* Who allocates a breaker: hash 0 = no tenant (not limited). */
typedef struct BreakerOwner
{
	uint64		hash;
	char	   *tenant;			/* for messages; NULL when hash is 0 */
} BreakerOwner;

typedef struct BreakerKey
{
	Oid			dbid;
	char		service[BREAKER_NAME_MAX + 1];	/* "" marks a database's load entry */
} BreakerKey;

typedef struct BreakerEntry
{
	BreakerKey	key;
	BreakerCore core;
	uint64		version;		/* bumped on every change */
	uint64		saved_version;	/* the newest version known to be in the table */
	Oid			saved_relid;	/* load entry: the table it was loaded from */
	uint64		owner;			/* BreakerOwner.hash of who allocated it */
} BreakerEntry;

typedef struct BreakerShared
{
	int			nbreakers;		/* entries that are breakers (not load entries) */
	int			ndbs;			/* load entries */
	uint64		version;		/* last version handed out */
	uint64		refused_full;	/* allocations refused: no room (cluster-wide) */
	uint64		refused_share;	/* allocations refused: tenant share used up */
	TimestampTz last_refused_at;	/* 0 = never */
} BreakerShared;

/* A copy of one entry, taken under the lock, to use after releasing it. */
typedef struct BreakerSnap
{
	BreakerKey	key;
	BreakerCore core;
	uint64		version;
} BreakerSnap;

typedef struct BreakerPending
{
	BreakerKey	key;
	uint64		version;
	SubTransactionId subid;
} BreakerPending;

typedef struct BreakerConfigEntry
{
	char		service[BREAKER_NAME_MAX + 1];
	BreakerConfig cfg;
} BreakerConfigEntry;

static BreakerShared *breaker_shared = NULL;
static HTAB *breaker_hash = NULL;

/* Backend-local caches, reset by BreakerRelcacheCallback. */
static bool breaker_callbacks_set = false;
static Oid	config_relid = InvalidOid;
static Oid	saved_relid = InvalidOid;
static TgConfigCache config_cc;	/* relids: breaker_config */
static bool db_loaded = false;
static HTAB *config_cache = NULL;
static BreakerConfig config_default;
static bool warned_full = false;

static BreakerPending pending[BREAKER_MAX_PENDING];
static int	npending = 0;

PG_FUNCTION_INFO_V1(taskguard_breaker_allow);
PG_FUNCTION_INFO_V1(taskguard_breaker_record);
PG_FUNCTION_INFO_V1(taskguard_breaker_reset);
PG_FUNCTION_INFO_V1(taskguard_breaker_force);
PG_FUNCTION_INFO_V1(taskguard_breaker_is_open);
PG_FUNCTION_INFO_V1(taskguard_breaker_claimed);
PG_FUNCTION_INFO_V1(taskguard_breaker_task_done);
PG_FUNCTION_INFO_V1(taskguard_breaker_maintain);
PG_FUNCTION_INFO_V1(taskguard_breaker_live);
PG_FUNCTION_INFO_V1(taskguard_breaker_config_changed);
PG_FUNCTION_INFO_V1(taskguard_breaker_table);

/* Charged for breakers made by roles whose scope is empty (fail-closed roles). */
#define BREAKER_NO_TENANT_NAME "(no tenant)"

/* Hash capacity: the breakers plus one load entry per database. */
static int
BreakerHashSize(void)
{
	return tg_max_breakers + BREAKER_MAX_DBS;
}

/* Shared memory for the header and the hash (taskguard.c adds it up). */
Size
BreakerShmemSize(void)
{
	return add_size(MAXALIGN(sizeof(BreakerShared)),
					hash_estimate_size(BreakerHashSize(), sizeof(BreakerEntry)));
}

/* Hash only the used part of the name: most names are far shorter than the key. */
static uint32
BreakerKeyHash(const void *key, Size keysize)
{
	const BreakerKey *k = (const BreakerKey *) key;

	return hash_bytes((const unsigned char *) k->service, strnlen(k->service, BREAKER_NAME_MAX)) ^
		murmurhash32((uint32) k->dbid);
}

/* Create or attach the header and the hash; under AddinShmemInitLock. */
void
BreakerShmemInit(void)
{
	HASHCTL		info;
	bool		found;

	breaker_shared = ShmemInitStruct("taskguard breakers", sizeof(BreakerShared), &found);
	if (!found)
		memset(breaker_shared, 0, sizeof(BreakerShared));
	info.keysize = sizeof(BreakerKey);
	info.entrysize = sizeof(BreakerEntry);
	info.hash = BreakerKeyHash;
	breaker_hash = ShmemInitHash("taskguard breaker hash", BreakerHashSize(), BreakerHashSize(),
								 &info, HASH_ELEM | HASH_FUNCTION | HASH_FIXED_SIZE);
}

/* ---- keys and arguments ---- */

/* Key of (this database, name); zero-padded, since keys compare with memcmp. */
static void
BreakerKeyFor(BreakerKey *key, const char *name, int len)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	memcpy(key->service, name, len);
}

/* Byte length of a text argument without detoasting it. */
static int64
BreakerArgLength(FunctionCallInfo fcinfo, int argno)
{
	return (int64) toast_raw_datum_size(PG_GETARG_DATUM(argno)) - VARHDRSZ;
}

/* The key of a service argument; false for NULL, '' or an over-long name. */
static bool
BreakerKeyFromArg(FunctionCallInfo fcinfo, int argno, BreakerKey *key)
{
	int64		len;
	text	   *t;

	if (PG_ARGISNULL(argno))
		return false;
	len = BreakerArgLength(fcinfo, argno);
	if (len < 1 || len > BREAKER_NAME_MAX)
		return false;
	t = PG_GETARG_TEXT_PP(argno);
	BreakerKeyFor(key, VARDATA_ANY(t), (int) len);
	return true;
}

/* Like BreakerKeyFromArg, but a bad name is the caller's error. */
static void
BreakerCheckService(FunctionCallInfo fcinfo, int argno, BreakerKey *key)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"service\" must not be NULL")));
	if (!BreakerKeyFromArg(fcinfo, argno, key))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("service must be 1 to %d bytes, got %lld",
						BREAKER_NAME_MAX, (long long) BreakerArgLength(fcinfo, argno))));
}

/* Refuse a NULL argument, naming it. */
static void
BreakerRequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be NULL", name)));
}

/*
 * Who the caller is charged as: its first tenant (TenantScopeOfCaller(), the
 * rule of tenant.c), or no one for an unmapped role.  An empty scope (a role
 * that sees no tenant) is charged as one tenant of its own.  May run SQL
 * (cached per backend), so never under our lock.
 */
static void
BreakerCallerOwner(BreakerOwner *owner)
{
	ArrayType  *scope = TenantScopeOfCaller();
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	owner->hash = 0;
	owner->tenant = NULL;
	if (scope == NULL)
		return;
	deconstruct_array(scope, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	owner->tenant = (n > 0 && !nulls[0]) ? TextDatumGetCString(elems[0]) :
		pstrdup(BREAKER_NO_TENANT_NAME);
	owner->hash = hash_bytes_extended((const unsigned char *) owner->tenant,
									  strlen(owner->tenant), 0);
	if (owner->hash == 0)
		owner->hash = 1;		/* 0 means "no tenant" */
}

/* A core time as a timestamptz Datum; BREAKER_NO_TIME becomes NULL. */
static Datum
BreakerTimeDatum(int64 t, bool *isnull)
{
	*isnull = (t == BREAKER_NO_TIME);
	return TimestampTzGetDatum(t);
}

/* ---- backend caches ---- */

/*
 * Our tables changed (or all caches were reset): re-check the load of saved
 * state (the settings are a TgConfigCache of their own).
 */
static void
BreakerRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == config_relid || relid == saved_relid)
	{
		db_loaded = false;
		config_relid = InvalidOid;
		saved_relid = InvalidOid;
	}
}

/* Forget the writes of an aborted subtransaction (and of its children). */
static void
BreakerSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			kept = 0;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	for (int i = 0; i < npending; i++)
		if (pending[i].subid < mySubid)
			pending[kept++] = pending[i];
	npending = kept;
}

/* At commit, the versions this transaction wrote are in the table. */
static void
BreakerXactCallback(XactEvent event, void *arg)
{
	if (npending == 0)
		return;
	if (event == XACT_EVENT_COMMIT && breaker_hash != NULL)
	{
		LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE);
		for (int i = 0; i < npending; i++)
		{
			BreakerEntry *e = hash_search(breaker_hash, &pending[i].key, HASH_FIND, NULL);

			if (e != NULL && e->saved_version < pending[i].version)
				e->saved_version = pending[i].version;
		}
		LWLockRelease(TgLock(TG_LOCK_BREAKER));
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		npending = 0;
}

/* Register this backend's callbacks once. */
static void
BreakerBackendInit(void)
{
	if (breaker_callbacks_set)
		return;
	CacheRegisterRelcacheCallback(BreakerRelcacheCallback, (Datum) 0);
	RegisterXactCallback(BreakerXactCallback, NULL);
	RegisterSubXactCallback(BreakerSubXactCallback, NULL);
	breaker_callbacks_set = true;
}

/* Find our two tables; false while the extension is not (fully) there. */
static bool
BreakerLookupRelids(void)
{
	Oid			nsp;

	BreakerBackendInit();
	if (OidIsValid(config_relid) && OidIsValid(saved_relid))
		return true;
	nsp = get_namespace_oid("taskguard", true);
	if (!OidIsValid(nsp))
		return false;
	config_relid = get_relname_relid("breaker_config", nsp);
	saved_relid = get_relname_relid("breaker_saved", nsp);
	return OidIsValid(config_relid) && OidIsValid(saved_relid);
}

/*
 * SPI as the owner of breaker_saved, under the pinned search_path: any role
 * that may record an outcome reads the settings and saves state through the
 * internal helpers, which it may not execute itself.  An error restores the
 * user and the path with the (sub)transaction's abort.
 */
static void
BreakerSpiConnect(TgSavedUser *saved)
{
	TgActAsRelOwner(saved_relid, saved);
	TgSpiConnect();
}

static void
BreakerSpiFinish(const TgSavedUser *saved)
{
	SPI_finish();
	TgRestoreUser(saved);
}

/* Column col of SPI result row as int4 (NULL → 0). */
static int32
SpiInt4(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/* Column col of SPI result row as int8 or timestamptz (NULL → ifnull). */
static int64
SpiInt8(int row, int col, int64 ifnull)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? ifnull : DatumGetInt64(d);
}

/* Read breaker_config (with '*' and built-in defaults resolved). */
static void
BreakerConfigLoad(void)
{
	HASHCTL		info;
	HTAB	   *cache;
	TgSavedUser saved;

	if (config_cache != NULL)
	{
		hash_destroy(config_cache);
		config_cache = NULL;
	}
	info.keysize = BREAKER_NAME_MAX + 1;
	info.entrysize = sizeof(BreakerConfigEntry);
	info.hcxt = TopMemoryContext;
	cache = hash_create("taskguard breaker config", 64, &info,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	config_default = breaker_default_config;

	BreakerSpiConnect(&saved);
	if (SPI_execute("SELECT service, failure_threshold, window_us, cooldown_us,"
					" half_open_max_calls, success_threshold"
					" FROM taskguard._breaker_config_rows()", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read taskguard.breaker_config");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *service = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		BreakerConfig cfg;

		cfg.failure_threshold = SpiInt4(i, 2);
		cfg.window_us = SpiInt8(i, 3, breaker_default_config.window_us);
		cfg.cooldown_us = SpiInt8(i, 4, breaker_default_config.cooldown_us);
		cfg.half_open_max_calls = SpiInt4(i, 5);
		cfg.success_threshold = SpiInt4(i, 6);
		if (strcmp(service, "*") == 0)
			config_default = cfg;
		else if (strlen(service) <= BREAKER_NAME_MAX)
		{
			BreakerConfigEntry *e = hash_search(cache, service, HASH_ENTER, NULL);

			e->cfg = cfg;
		}
	}
	BreakerSpiFinish(&saved);
	config_cache = cache;
}

/* Make the settings cache current; runs SQL, so never under our lock. */
static void
BreakerEnsureConfig(void)
{
	BreakerBackendInit();
	if (!TgConfigCacheCurrent(&config_cc) || config_cache == NULL)
	{
		uint64		generation = TgConfigCacheLoadBegin(&config_cc);

		if (!BreakerLookupRelids())
		{
			config_default = breaker_default_config;
			return;				/* no copy: looked up again next time */
		}
		config_cc.relids[0] = config_relid;
		BreakerConfigLoad();
		TgConfigCacheLoadEnd(&config_cc, generation);
	}
}

/* Settings of a service from the cache; call BreakerEnsureConfig first. */
static const BreakerConfig *
BreakerConfigLookup(const char *service)
{
	BreakerConfigEntry *e = NULL;

	if (config_cache != NULL)
		e = hash_search(config_cache, service, HASH_FIND, NULL);
	return e != NULL ? &e->cfg : &config_default;
}

/* Settings of a service, refreshing the cache first; not under our lock. */
static const BreakerConfig *
BreakerConfigFor(const char *service)
{
	BreakerEnsureConfig();
	return BreakerConfigLookup(service);
}

/* ---- the shared table (callers hold the lock as stated) ---- */

/* Mark a change: a new cluster-wide version.  LW_EXCLUSIVE. */
static void
BreakerBump(BreakerEntry *e)
{
	Assert(LWLockHeldByMeInMode(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE));
	e->version = ++breaker_shared->version;
}

/* Copy an entry out, to use after releasing the lock. */
static void
BreakerSnapOf(BreakerSnap *snap, const BreakerEntry *e)
{
	snap->key = e->key;
	snap->core = e->core;
	snap->version = e->version;
}

/*
 * Evict one idle breaker, preferring one already saved: of any database when
 * owner is 0, else only one that owner allocated in this database.
 */
static bool
BreakerEvictOne(TimestampTz now, uint64 owner)
{
	HASH_SEQ_STATUS st;
	BreakerEntry *e;
	BreakerEntry *victim = NULL;

	hash_seq_init(&st, breaker_hash);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		if (e->key.service[0] == '\0' || !BreakerCoreIdle(&e->core, now))
			continue;
		if (owner != 0 && (e->owner != owner || e->key.dbid != MyDatabaseId))
			continue;
		victim = e;
		if (e->version == e->saved_version)
		{
			hash_seq_term(&st);
			break;
		}
	}
	if (victim == NULL)
		return false;
	Assert(LWLockHeldByMeInMode(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE));
	Assert(breaker_shared->nbreakers > 0);
	hash_search(breaker_hash, &victim->key, HASH_REMOVE, NULL);
	breaker_shared->nbreakers--;
	return true;
}

/* How many breakers one tenant may hold. */
static int
BreakerTenantLimit(void)
{
	return Max(BREAKER_TENANT_MIN, (int) ((int64) tg_max_breakers * tg_breaker_tenant_share / 100));
}

/* Breakers of this database that owner allocated.  Any lock mode. */
static int
BreakerOwnerCount(uint64 owner)
{
	HASH_SEQ_STATUS st;
	BreakerEntry *e;
	int			n = 0;

	hash_seq_init(&st, breaker_hash);
	while ((e = hash_seq_search(&st)) != NULL)
		if (e->owner == owner && e->key.dbid == MyDatabaseId && e->key.service[0] != '\0')
			n++;
	return n;
}

/* Count a refused allocation, so that it shows.  LW_EXCLUSIVE. */
static void
BreakerCountRefusal(BreakerRefusal why, TimestampTz now)
{
	if (why == BREAKER_REFUSED_SHARE)
		breaker_shared->refused_share++;
	else
		breaker_shared->refused_full++;
	breaker_shared->last_refused_at = now;
}

/* May owner take one more slot?  Makes room among its own idle ones if need be. */
static bool
BreakerOwnerHasRoom(uint64 owner, TimestampTz now)
{
	if (owner == 0 || BreakerOwnerCount(owner) < BreakerTenantLimit())
		return true;
	return BreakerEvictOne(now, owner);
}

/*
 * The entry of key, created for owner if need be; NULL (and *why, counted)
 * when the table is full or owner's tenant holds its share.  LW_EXCLUSIVE.
 */
static BreakerEntry *
BreakerEnter(const BreakerKey *key, TimestampTz now, uint64 owner, BreakerRefusal *why)
{
	BreakerEntry *e = hash_search(breaker_hash, key, HASH_FIND, NULL);
	bool		found;

	Assert(LWLockHeldByMeInMode(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE));
	*why = BREAKER_REFUSED_NONE;
	if (e != NULL)
		return e;
	if (!BreakerOwnerHasRoom(owner, now))
		*why = BREAKER_REFUSED_SHARE;
	else if (breaker_shared->nbreakers >= tg_max_breakers && !BreakerEvictOne(now, 0))
		*why = BREAKER_REFUSED_FULL;
	else if ((e = hash_search(breaker_hash, key, HASH_ENTER_NULL, &found)) == NULL)
		*why = BREAKER_REFUSED_FULL;
	if (*why != BREAKER_REFUSED_NONE)
	{
		BreakerCountRefusal(*why, now);
		return NULL;
	}
	Assert(!found);
	BreakerCoreInit(&e->core);
	e->version = 0;
	e->saved_version = 0;
	e->saved_relid = InvalidOid;
	e->owner = owner;
	breaker_shared->nbreakers++;
	return e;
}

/* The clean error for a refused allocation (the caller released the lock). */
static void
BreakerRaiseFull(BreakerRefusal why, const BreakerOwner *owner)
{
	if (why == BREAKER_REFUSED_SHARE)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many circuit breakers for tenant \"%s\": it holds all %d its share allows",
						owner->tenant, BreakerTenantLimit()),
				 errdetail("One tenant may hold taskguard.breaker_tenant_share (%d%%) of taskguard.max_breakers (%d), at least %d.",
						   tg_breaker_tenant_share, tg_max_breakers, BREAKER_TENANT_MIN),
				 errhint("Reuse service names, or ask an administrator to reset unused breakers.")));
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("too many circuit breakers: all %d of taskguard.max_breakers are in use and none is idle",
					tg_max_breakers),
			 errhint("Raise taskguard.max_breakers (needs a restart) or reset unused breakers with taskguard.breaker_reset().")));
}

/* Remove every breaker of this database (its extension was re-created). */
static void
BreakerPurgeDatabase(void)
{
	HASH_SEQ_STATUS st;
	BreakerEntry *e;

	hash_seq_init(&st, breaker_hash);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		if (e->key.dbid != MyDatabaseId || e->key.service[0] == '\0')
			continue;
		hash_search(breaker_hash, &e->key, HASH_REMOVE, NULL);
		breaker_shared->nbreakers--;
	}
}

/* ---- persistence ---- */

/* Write one snapshot through taskguard._breaker_save; true if written. */
static bool
BreakerSaveSpi(const BreakerSnap *snap)
{
	Oid			types[10] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID,
	TIMESTAMPTZOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID};
	Datum		values[10];
	char		nulls[10];
	bool		isnull;
	bool		saved = false;
	TgSavedUser user;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(snap->key.service);
	values[1] = CStringGetTextDatum(BreakerStateName(snap->core.state));
	values[2] = CStringGetTextDatum(BreakerModeName(snap->core.mode));
	values[3] = Int32GetDatum(snap->core.failures);
	values[4] = Int32GetDatum(snap->core.successes);
	values[5] = BreakerTimeDatum(snap->core.window_start, &isnull);
	nulls[5] = isnull ? 'n' : ' ';
	values[6] = Int64GetDatum(snap->core.window_us);
	values[7] = BreakerTimeDatum(snap->core.opened_at, &isnull);
	nulls[7] = isnull ? 'n' : ' ';
	values[8] = BreakerTimeDatum(snap->core.changed_at, &isnull);
	nulls[8] = isnull ? 'n' : ' ';
	values[9] = Int64GetDatum((int64) snap->version);

	BreakerSpiConnect(&user);
	if (SPI_execute_with_args("SELECT taskguard._breaker_save($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
							  10, types, values, nulls, false, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		saved = !isnull && DatumGetBool(d);
	}
	BreakerSpiFinish(&user);
	return saved;
}

/*
 * Persist a snapshot in the caller's transaction, best effort: in a
 * subtransaction, so a failure only logs; the version counts as saved when
 * the transaction commits.  Returns true if the row was written.
 */
static bool
BreakerSave(const BreakerSnap *snap)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool saved = false;

	if (XactReadOnly || RecoveryInProgress() || IsInParallelMode() || !BreakerLookupRelids())
		return false;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		saved = BreakerSaveSpi(snap);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		ereport(LOG,
				(errmsg("taskguard: could not save circuit breaker \"%s\": %s",
						snap->key.service, edata->message),
				 errdetail("The scheduler saves it on its next pass.")));
		FreeErrorData(edata);
	}
	PG_END_TRY();

	if (saved && npending < BREAKER_MAX_PENDING)
	{
		pending[npending].key = snap->key;
		pending[npending].version = snap->version;
		pending[npending].subid = GetCurrentSubTransactionId();
		npending++;
	}
	return saved;
}

/* One row of taskguard._breaker_saved_rows() as a snapshot. */
static void
BreakerSnapFromSpi(BreakerSnap *snap, int row)
{
	char	   *service = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1);
	char	   *state = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2);
	char	   *mode = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 3);

	BreakerKeyFor(&snap->key, service, Min(strlen(service), BREAKER_NAME_MAX));
	BreakerCoreInit(&snap->core);
	snap->core.state = (uint8) Max(BreakerStateFromName(state), 0);
	snap->core.mode = (uint8) Max(BreakerModeFromName(mode), 0);
	snap->core.failures = SpiInt4(row, 4);
	snap->core.successes = SpiInt4(row, 5);
	snap->core.window_start = SpiInt8(row, 6, BREAKER_NO_TIME);
	snap->core.window_us = SpiInt8(row, 7, 0);
	snap->core.opened_at = SpiInt8(row, 8, BREAKER_NO_TIME);
	snap->core.changed_at = SpiInt8(row, 9, BREAKER_NO_TIME);
	snap->version = (uint64) SpiInt8(row, 10, 0);
}

/* Put the saved rows of this database into shared memory.  No lock held. */
static void
BreakerLoadSaved(void)
{
	BreakerSnap *snaps;
	uint64		nrows;
	uint64		maxver;
	BreakerKey	skey;
	BreakerEntry *s;
	TimestampTz now = GetCurrentTimestamp();
	int			skipped = 0;
	TgSavedUser saved;
	BreakerRefusal why;

	BreakerSpiConnect(&saved);
	if (SPI_execute("SELECT taskguard._breaker_saved_max_version()", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read taskguard.breaker_saved");
	maxver = (uint64) SpiInt8(0, 1, 0);
	if (SPI_execute("SELECT service, state::text, mode, failures, successes, window_start,"
					" window_us, opened_at, changed_at, version"
					" FROM taskguard._breaker_saved_rows()", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read taskguard.breaker_saved");
	nrows = SPI_processed;
	snaps = palloc(sizeof(BreakerSnap) * Max(nrows, 1));
	for (uint64 i = 0; i < nrows; i++)
		BreakerSnapFromSpi(&snaps[i], i);

	BreakerKeyFor(&skey, "", 0);
	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE);
	s = hash_search(breaker_hash, &skey, HASH_FIND, NULL);
	if (s == NULL || s->saved_relid != saved_relid)
	{
		if (s != NULL)
			BreakerPurgeDatabase();
		if (breaker_shared->version < maxver)
			breaker_shared->version = maxver;
		for (uint64 i = 0; i < nrows; i++)
		{
			BreakerEntry *e = hash_search(breaker_hash, &snaps[i].key, HASH_FIND, NULL);

			if (e != NULL)
				continue;		/* live state wins */
			e = BreakerEnter(&snaps[i].key, now, 0, &why);
			if (e == NULL)
			{
				skipped++;
				continue;
			}
			e->core = snaps[i].core;
			e->version = e->saved_version = snaps[i].version;
		}
		if (s == NULL && breaker_shared->ndbs < BREAKER_MAX_DBS)
		{
			bool		found;

			s = hash_search(breaker_hash, &skey, HASH_ENTER_NULL, &found);
			if (s != NULL)
			{
				BreakerCoreInit(&s->core);
				s->version = s->saved_version = 0;
				breaker_shared->ndbs++;
			}
		}
		if (s != NULL)
			s->saved_relid = saved_relid;
	}
	LWLockRelease(TgLock(TG_LOCK_BREAKER));
	BreakerSpiFinish(&saved);
	if (skipped > 0)
		ereport(LOG,
				(errmsg("taskguard: %d saved circuit breakers did not fit into taskguard.max_breakers (%d)",
						skipped, tg_max_breakers)));
}

/* Load this database's saved breakers once (per backend check, per cluster load). */
static void
BreakerEnsureLoaded(void)
{
	BreakerKey	skey;
	BreakerEntry *s;
	bool		loaded;

	if (db_loaded)
		return;
	/*
	 * Not on a standby: what it loaded would be taken for live state and hide
	 * the rows the primary saves later, there and after a promotion (an open
	 * breaker let calls through).  Its breaker_status shows the saved rows.
	 */
	if (RecoveryInProgress())
		return;
	if (!BreakerLookupRelids())
		return;
	BreakerKeyFor(&skey, "", 0);
	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_SHARED);
	s = hash_search(breaker_hash, &skey, HASH_FIND, NULL);
	loaded = (s != NULL && s->saved_relid == saved_relid);
	LWLockRelease(TgLock(TG_LOCK_BREAKER));
	if (!loaded)
		BreakerLoadSaved();
	db_loaded = true;
}

/* ---- operations ---- */

/* A copy of key's core; false if it has no breaker. */
static bool
BreakerPeek(const BreakerKey *key, BreakerCore *core)
{
	BreakerEntry *e;

	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_SHARED);
	e = hash_search(breaker_hash, key, HASH_FIND, NULL);
	if (e != NULL)
		*core = e->core;
	LWLockRelease(TgLock(TG_LOCK_BREAKER));
	return e != NULL;
}

/* Let a call through, taking a half-open probe; allocates nothing. */
static bool
BreakerAllow(const BreakerKey *key)
{
	BreakerCore core;
	const BreakerConfig *cfg;
	TimestampTz now;
	BreakerEntry *e;
	bool		allowed = true;
	int			changed = 0;

	if (!BreakerPeek(key, &core) || core.mode == BREAKER_DISABLED ||
		(core.mode == BREAKER_AUTO && core.state == BREAKER_CLOSED))
		return true;
	if (core.mode == BREAKER_FORCED_OPEN)
		return false;
	cfg = BreakerConfigFor(key->service);
	now = GetCurrentTimestamp();
	if (!BreakerCoreWouldAllow(&core, cfg, now))
		return false;

	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE);
	e = hash_search(breaker_hash, key, HASH_FIND, NULL);
	if (e != NULL)
	{
		allowed = BreakerCoreAllow(&e->core, cfg, now, &changed);
		if (changed)
			BreakerBump(e);
	}
	LWLockRelease(TgLock(TG_LOCK_BREAKER));
	return allowed;
}

/* Would a call be refused?  No side effects. */
static bool
BreakerRefuses(const BreakerKey *key)
{
	BreakerCore core;

	if (!BreakerPeek(key, &core) || core.mode == BREAKER_DISABLED)
		return false;
	if (core.mode == BREAKER_FORCED_OPEN)
		return true;
	if (core.state == BREAKER_CLOSED)
		return false;
	return !BreakerCoreWouldAllow(&core, BreakerConfigFor(key->service), GetCurrentTimestamp());
}

/* See breaker.h. */
bool
BreakerIsOpen(const char *service, int len)
{
	BreakerKey	key;

	if (!tg_shmem_ready || breaker_hash == NULL || len < 1 || len > BREAKER_NAME_MAX)
		return false;
	BreakerKeyFor(&key, service, len);
	BreakerEnsureLoaded();
	return BreakerRefuses(&key);
}

/*
 * Record an outcome; returns the state after it, or -1 when the table is
 * full and raise_when_full is false.
 */
static int
BreakerRecord(const BreakerKey *key, bool success, bool raise_when_full)
{
	const BreakerConfig *cfg = BreakerConfigFor(key->service);
	TimestampTz now = GetCurrentTimestamp();
	BreakerEntry *e;
	BreakerSnap snap;
	BreakerOwner owner = {0, NULL};
	BreakerRefusal why = BREAKER_REFUSED_NONE;
	int			changed;

	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE);
	e = hash_search(breaker_hash, key, HASH_FIND, NULL);
	if (e == NULL && success)
	{
		LWLockRelease(TgLock(TG_LOCK_BREAKER));
		return BREAKER_CLOSED;	/* a success on an unknown breaker changes nothing */
	}
	if (e == NULL)
	{
		/* a new breaker: learn whom to charge (SQL) without holding the lock */
		LWLockRelease(TgLock(TG_LOCK_BREAKER));
		BreakerCallerOwner(&owner);
		LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE);
		e = BreakerEnter(key, now, owner.hash, &why);
	}
	if (e == NULL)
	{
		LWLockRelease(TgLock(TG_LOCK_BREAKER));
		if (raise_when_full)
			BreakerRaiseFull(why, &owner);
		if (!warned_full)
			ereport(LOG,
					(errmsg("taskguard: no room for the circuit breaker of service \"%s\": %s",
							key->service, why == BREAKER_REFUSED_SHARE ?
							"its tenant holds its share of taskguard.max_breakers" :
							"taskguard.max_breakers is full"),
					 errdetail("Refusals are counted in taskguard._breaker_table() and raise the alert breaker_table_full.")));
		warned_full = true;
		return -1;
	}
	changed = BreakerCoreRecord(&e->core, cfg, now, success);
	if (changed)
		BreakerBump(e);
	BreakerSnapOf(&snap, e);
	LWLockRelease(TgLock(TG_LOCK_BREAKER));
	if (changed & BREAKER_CHANGED_STATE)
		BreakerSave(&snap);
	return snap.core.state;
}

/* ---- SQL functions ---- */

/* taskguard.breaker_allow(service text) RETURNS boolean */
Datum
taskguard_breaker_allow(PG_FUNCTION_ARGS)
{
	BreakerKey	key;

	TgRequireShmem("taskguard.breaker_allow()");
	/* it may take a half-open probe, and a standby holds no live breakers */
	PreventCommandDuringRecovery("taskguard.breaker_allow()");
	BreakerCheckService(fcinfo, 0, &key);
	BreakerEnsureLoaded();
	PG_RETURN_BOOL(BreakerAllow(&key));
}

/* taskguard.breaker_record(service text, success boolean) RETURNS taskguard.breaker_state */
Datum
taskguard_breaker_record(PG_FUNCTION_ARGS)
{
	BreakerKey	key;
	int			state;

	TgRequireShmem("taskguard.breaker_record()");
	/*
	 * A standby's breakers would change in its own shared memory only (it
	 * cannot save them) and come back wrong after a promotion: refuse, as
	 * writes do there (25006 read_only_sql_transaction).
	 */
	PreventCommandDuringRecovery("taskguard.breaker_record()");
	BreakerCheckService(fcinfo, 0, &key);
	BreakerRequireArg(fcinfo, 1, "success");
	BreakerEnsureLoaded();
	state = BreakerRecord(&key, PG_GETARG_BOOL(1), true);
	return DirectFunctionCall2(enum_in, CStringGetDatum(BreakerStateName(state)),
							   ObjectIdGetDatum(get_fn_expr_rettype(fcinfo->flinfo)));
}

/* taskguard.breaker_reset(service text) RETURNS void */
Datum
taskguard_breaker_reset(PG_FUNCTION_ARGS)
{
	BreakerKey	key;
	BreakerEntry *e;
	BreakerSnap snap;
	TimestampTz now = GetCurrentTimestamp();

	TgRequireShmem("taskguard.breaker_reset()");
	PreventCommandDuringRecovery("taskguard.breaker_reset()");
	BreakerCheckService(fcinfo, 0, &key);
	BreakerEnsureLoaded();

	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE);
	e = hash_search(breaker_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		BreakerCoreReset(&e->core, now);
		BreakerBump(e);
		BreakerSnapOf(&snap, e);
	}
	else
	{
		/* not live: still overwrite a saved row, so the view forgets it too */
		snap.key = key;
		BreakerCoreReset(&snap.core, now);
		snap.version = ++breaker_shared->version;
	}
	LWLockRelease(TgLock(TG_LOCK_BREAKER));
	BreakerSave(&snap);
	PG_RETURN_VOID();
}

/* taskguard.breaker_force(service text, mode text) RETURNS void */
Datum
taskguard_breaker_force(PG_FUNCTION_ARGS)
{
	BreakerKey	key;
	BreakerEntry *e;
	BreakerSnap snap;
	char	   *modename;
	int			mode;
	int			changed = 0;
	TimestampTz now = GetCurrentTimestamp();
	BreakerOwner owner;
	BreakerRefusal why = BREAKER_REFUSED_NONE;

	TgRequireShmem("taskguard.breaker_force()");
	PreventCommandDuringRecovery("taskguard.breaker_force()");
	BreakerCheckService(fcinfo, 0, &key);
	BreakerRequireArg(fcinfo, 1, "mode");
	modename = text_to_cstring(PG_GETARG_TEXT_PP(1));
	mode = BreakerModeFromName(modename);
	if (mode < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mode must be 'open', 'disabled' or 'auto', got \"%.100s\"", modename)));
	BreakerEnsureLoaded();
	BreakerCallerOwner(&owner);

	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE);
	e = hash_search(breaker_hash, &key, HASH_FIND, NULL);
	if (e == NULL && mode != BREAKER_AUTO &&
		(e = BreakerEnter(&key, now, owner.hash, &why)) == NULL)
	{
		LWLockRelease(TgLock(TG_LOCK_BREAKER));
		BreakerRaiseFull(why, &owner);
	}
	if (e != NULL)
	{
		changed = BreakerCoreForce(&e->core, (BreakerMode) mode, now);
		if (changed)
			BreakerBump(e);
		BreakerSnapOf(&snap, e);
	}
	LWLockRelease(TgLock(TG_LOCK_BREAKER));
	if (changed)
		BreakerSave(&snap);
	PG_RETURN_VOID();
}

/* taskguard._breaker_is_open(service text): claim()'s check, no side effects. */
Datum
taskguard_breaker_is_open(PG_FUNCTION_ARGS)
{
	int64		len;
	text	   *t;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	len = BreakerArgLength(fcinfo, 0);
	if (len < 1 || len > BREAKER_NAME_MAX)
		PG_RETURN_BOOL(false);
	t = PG_GETARG_TEXT_PP(0);
	PG_RETURN_BOOL(BreakerIsOpen(VARDATA_ANY(t), (int) len));
}

/*
 * taskguard._breaker_claimed(service text): claim() hands out a task of this
 * service; takes a half-open probe.  False: do not hand it out.
 */
Datum
taskguard_breaker_claimed(PG_FUNCTION_ARGS)
{
	BreakerKey	key;

	if (!tg_shmem_ready || !BreakerKeyFromArg(fcinfo, 0, &key))
		PG_RETURN_BOOL(true);
	BreakerEnsureLoaded();
	PG_RETURN_BOOL(BreakerAllow(&key));
}

/*
 * taskguard._breaker_task_done(service text, success boolean): complete() and
 * fail() report an outcome.  Never raises because the table is full.
 */
Datum
taskguard_breaker_task_done(PG_FUNCTION_ARGS)
{
	BreakerKey	key;

	if (!tg_shmem_ready || PG_ARGISNULL(1) || !BreakerKeyFromArg(fcinfo, 0, &key))
		PG_RETURN_VOID();
	BreakerEnsureLoaded();
	(void) BreakerRecord(&key, PG_GETARG_BOOL(1), false);
	PG_RETURN_VOID();
}

/*
 * taskguard._breaker_maintain(): scheduler step.  Half-opens cooled breakers
 * of this database and saves every unsaved one; returns how many it saved.
 */
Datum
taskguard_breaker_maintain(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS st;
	BreakerEntry *e;
	BreakerSnap *snaps;
	int			nsnaps = 0;
	int			cap = 16;
	int			saved = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (!tg_shmem_ready || !BreakerLookupRelids())
		PG_RETURN_INT32(0);
	BreakerEnsureLoaded();
	BreakerEnsureConfig();
	snaps = palloc(sizeof(BreakerSnap) * cap);

	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_EXCLUSIVE);
	hash_seq_init(&st, breaker_hash);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		if (e->key.dbid != MyDatabaseId || e->key.service[0] == '\0')
			continue;
		if (BreakerCoreTick(&e->core, BreakerConfigLookup(e->key.service), now))
			BreakerBump(e);
		if (e->version == e->saved_version)
			continue;
		if (nsnaps == cap)
		{
			cap *= 2;
			snaps = repalloc(snaps, sizeof(BreakerSnap) * cap);
		}
		BreakerSnapOf(&snaps[nsnaps++], e);
	}
	LWLockRelease(TgLock(TG_LOCK_BREAKER));

	for (int i = 0; i < nsnaps; i++)
		if (BreakerSave(&snaps[i]))
			saved++;
	PG_RETURN_INT32(saved);
}

/*
 * taskguard._breaker_live(): the live breakers of this database, for the
 * breaker_status view; no rows when not preloaded.
 */
Datum
taskguard_breaker_live(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS st;
	BreakerEntry *e;
	BreakerSnap *snaps = NULL;
	int			nsnaps = 0;
	TimestampTz now = GetCurrentTimestamp();

	InitMaterializedSRF(fcinfo, 0);
	if (!tg_shmem_ready || !BreakerLookupRelids())
		return (Datum) 0;
	BreakerEnsureLoaded();
	BreakerEnsureConfig();

	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_SHARED);
	snaps = palloc(sizeof(BreakerSnap) * Max(breaker_shared->nbreakers, 1));
	hash_seq_init(&st, breaker_hash);
	while ((e = hash_seq_search(&st)) != NULL)
	{
		if (e->key.dbid != MyDatabaseId || e->key.service[0] == '\0')
			continue;
		if (nsnaps < Max(breaker_shared->nbreakers, 1))
			BreakerSnapOf(&snaps[nsnaps++], e);
	}
	LWLockRelease(TgLock(TG_LOCK_BREAKER));

	for (int i = 0; i < nsnaps; i++)
	{
		BreakerCore *c = &snaps[i].core;
		Datum		values[8];
		bool		nulls[8] = {0};

		values[0] = CStringGetTextDatum(snaps[i].key.service);
		values[1] = CStringGetTextDatum(BreakerStateName(c->state));
		values[2] = CStringGetTextDatum(BreakerModeName(c->mode));
		values[3] = Int32GetDatum(BreakerCoreFailures(c, now));
		values[4] = Int32GetDatum(c->successes);
		values[5] = BreakerTimeDatum(c->opened_at, &nulls[5]);
		values[6] = BreakerTimeDatum(BreakerCoreNextProbe(c, BreakerConfigLookup(snaps[i].key.service)),
									 &nulls[6]);
		values[7] = BreakerTimeDatum(c->changed_at, &nulls[7]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* 0.1.0's trigger function of breaker_config (0.2.0: _config_changed). */
Datum
taskguard_breaker_config_changed(PG_FUNCTION_ARGS)
{
	return TgConfigChangedTrigger(fcinfo);
}

/*
 * taskguard._breaker_table(): how full the cluster-wide breaker table is and
 * how many allocations it refused since the server started.  No row when not
 * preloaded.
 */
Datum
taskguard_breaker_table(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[6];
	bool		nulls[6] = {0};
	TimestampTz last;

	InitMaterializedSRF(fcinfo, 0);
	if (!tg_shmem_ready || breaker_hash == NULL)
		return (Datum) 0;
	LWLockAcquire(TgLock(TG_LOCK_BREAKER), LW_SHARED);
	values[0] = Int32GetDatum(tg_max_breakers);
	values[1] = Int32GetDatum(breaker_shared->nbreakers);
	values[2] = Int32GetDatum(BreakerTenantLimit());
	values[3] = Int64GetDatum((int64) breaker_shared->refused_full);
	values[4] = Int64GetDatum((int64) breaker_shared->refused_share);
	last = breaker_shared->last_refused_at;
	LWLockRelease(TgLock(TG_LOCK_BREAKER));
	values[5] = TimestampTzGetDatum(last);
	nulls[5] = (last == 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
