/*
 * idempotency.c — idempotency keys and per-task_name check counters (docs/reference.md#idempotency).
 *
 * Keys: idempotency_key() is the hex SHA-256 of task_name || chr(31) ||
 * args::text, computed with PostgreSQL's own cryptohash over the UTF-8 bytes,
 * so it is the same on every server.  idempotency_check() records a key in
 * taskguard.idempotency_record through one saved INSERT … ON CONFLICT plan: the
 * unique index on (tenant, digest) decides races, a rolled-back check leaves
 * nothing behind, and an expired row is taken over in place.
 *
 * Counters: checks and duplicates per (database, tenant, task_name) live in a shared
 * hash table so that counting never makes a hot row.  The scheduler's
 * _flush_counters() takes them out (removing the entries) and adds them to
 * taskguard.idempotency_counter; if that transaction aborts, the taken counts
 * are put back.  Increments take TG_LOCK_COUNTERS shared (counts are atomics);
 * creating or removing an entry takes it exclusive.  When the table is full,
 * new names count in a per-database "(other)" bucket; if even those slots run
 * out, counts are dropped with one WARNING per backend.  Counting never raises.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "idempotency.h"
#include "taskguard.h"

/* Extra hash slots kept for the per-database "(other)" buckets. */
#define COUNTER_OVERFLOW_SLOTS 64
#define COUNTER_OVERFLOW_NAME "(other)"

typedef struct CounterKey
{
	Oid			dbid;
	uint32		overflow;		/* 1 for the "(other)" bucket */
	char		tenant[COUNTER_TENANT_MAX + 1]; /* zero-padded; "" = no tenant */
	char		name[COUNTER_NAME_MAX + 1]; /* zero-padded; "" = no task_name */
} CounterKey;

typedef struct CounterEntry
{
	CounterKey	key;
	pg_atomic_uint64 checks;
	pg_atomic_uint64 duplicates;
	pg_atomic_uint64 last_duplicate;	/* TimestampTz, 0 = never */
} CounterEntry;

/* Counts taken by _flush_counters() in this transaction, put back on abort. */
typedef struct CounterTaken
{
	CounterKey	key;
	uint64		checks;
	uint64		duplicates;
	uint64		last_duplicate;
	SubTransactionId subid;
} CounterTaken;

static HTAB *counter_hash = NULL;
static List *counters_taken = NIL;
static bool counter_callbacks_registered = false;
static bool counter_full_warned = false;


PG_FUNCTION_INFO_V1(taskguard_idempotency_key);
PG_FUNCTION_INFO_V1(taskguard_idempotency_digest);
PG_FUNCTION_INFO_V1(taskguard_idempotency_check);
PG_FUNCTION_INFO_V1(taskguard_idempotency_count);
PG_FUNCTION_INFO_V1(taskguard_idempotency_live_counters);
PG_FUNCTION_INFO_V1(taskguard_idempotency_take_counters);
PG_FUNCTION_INFO_V1(taskguard_idempotency_count_tenant);
PG_FUNCTION_INFO_V1(taskguard_idempotency_tenant_counters);
PG_FUNCTION_INFO_V1(taskguard_idempotency_take_tenant_counters);
PG_FUNCTION_INFO_V1(taskguard_xact_owns);

/* ---------------------------------------------------------------------
 * Shared-memory counters
 * --------------------------------------------------------------------- */

static long
CounterCapacity(void)
{
	return (long) tg_max_counters + COUNTER_OVERFLOW_SLOTS;
}

Size
CounterShmemSize(void)
{
	return hash_estimate_size(CounterCapacity(), sizeof(CounterEntry));
}

void
CounterShmemInit(void)
{
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(CounterKey);
	info.entrysize = sizeof(CounterEntry);
	counter_hash = ShmemInitHash("taskguard idempotency counters",
								 CounterCapacity(), CounterCapacity(),
								 &info, HASH_ELEM | HASH_BLOBS);
}

/*
 * The zero-padded key of (this database, tenant, name); both are cut at a
 * character boundary.  The overflow bucket keeps the tenant, so a full table
 * never moves one tenant's counts into another's.
 */
static void
CounterMakeKey(CounterKey *key, const char *tenant, int tenantlen,
			   const char *name, int len, bool overflow)
{
	memset(key, 0, sizeof(*key));
	key->dbid = MyDatabaseId;
	key->overflow = overflow ? 1 : 0;
	if (tenantlen > 0)
		memcpy(key->tenant, tenant, pg_mbcliplen(tenant, tenantlen, COUNTER_TENANT_MAX));
	if (!overflow && len > 0)
	{
		len = pg_mbcliplen(name, len, COUNTER_NAME_MAX);
		memcpy(key->name, name, len);
	}
}

/* A new entry for key, or the database's overflow bucket when full; NULL if
 * even that cannot be had.  Caller holds TG_LOCK_COUNTERS exclusive. */
static CounterEntry *
CounterEnter(CounterKey *key)
{
	CounterEntry *entry;
	bool		found;

	if (hash_get_num_entries(counter_hash) >= tg_max_counters && !key->overflow)
	{
		entry = hash_search(counter_hash, key, HASH_FIND, NULL);
		if (entry != NULL)
			return entry;
		CounterMakeKey(key, key->tenant, strlen(key->tenant), NULL, 0, true);
	}
	entry = hash_search(counter_hash, key, HASH_ENTER_NULL, &found);
	if (entry != NULL && !found)
	{
		pg_atomic_init_u64(&entry->checks, 0);
		pg_atomic_init_u64(&entry->duplicates, 0);
		pg_atomic_init_u64(&entry->last_duplicate, 0);
	}
	return entry;
}

/* Add to an entry's counts; last_duplicate only moves forward. */
static void
CounterBump(CounterEntry *entry, uint64 checks, uint64 duplicates, uint64 last_duplicate)
{
	uint64		old;

	if (checks)
		pg_atomic_fetch_add_u64(&entry->checks, checks);
	if (duplicates)
		pg_atomic_fetch_add_u64(&entry->duplicates, duplicates);
	old = pg_atomic_read_u64(&entry->last_duplicate);
	while (last_duplicate > old &&
		   !pg_atomic_compare_exchange_u64(&entry->last_duplicate, &old, last_duplicate))
		;
}

/* Count for key; never raises (a full table folds or drops with a WARNING). */
static void
CounterAddKey(CounterKey *key, uint64 checks, uint64 duplicates, uint64 last_duplicate)
{
	LWLock	   *lock = TgLock(TG_LOCK_COUNTERS);
	CounterEntry *entry;

	LWLockAcquire(lock, LW_SHARED);
	entry = hash_search(counter_hash, key, HASH_FIND, NULL);
	if (entry == NULL)
	{
		LWLockRelease(lock);
		LWLockAcquire(lock, LW_EXCLUSIVE);
		entry = CounterEnter(key);
	}
	if (entry != NULL)
		CounterBump(entry, checks, duplicates, last_duplicate);
	LWLockRelease(lock);

	if (entry == NULL && !counter_full_warned)
	{
		counter_full_warned = true;
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("taskguard idempotency counters are full; some checks are not counted"),
				 errhint("Increase taskguard.max_counters.")));
	}
}

/* Count checks and duplicates of task_name (len 0: none) for tenant (0: none). */
void
CounterAdd(const char *tenant, int tenantlen, const char *name, int len,
		   int64 checks, int64 duplicates)
{
	CounterKey	key;

	if (counter_hash == NULL || (checks <= 0 && duplicates <= 0))
		return;
	CounterMakeKey(&key, tenant, tenantlen, name, len, false);
	CounterAddKey(&key, Max(checks, 0), Max(duplicates, 0),
				  duplicates > 0 ? (uint64) GetCurrentTimestamp() : 0);
}

/* Put back counts taken at subtransaction subid (InvalidSubTransactionId: all). */
static void
CounterRestoreTaken(SubTransactionId subid)
{
	List	   *keep = NIL;
	ListCell   *lc;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	foreach(lc, counters_taken)
	{
		CounterTaken *t = lfirst(lc);

		if (subid != InvalidSubTransactionId && t->subid != subid)
		{
			keep = lappend(keep, t);
			continue;
		}
		if (counter_hash != NULL)
			CounterAddKey(&t->key, t->checks, t->duplicates, t->last_duplicate);
		pfree(t);
	}
	list_free(counters_taken);
	counters_taken = keep;
	MemoryContextSwitchTo(old);
}

static void
CounterXactCallback(XactEvent event, void *arg)
{
	if (counters_taken == NIL)
		return;
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		CounterRestoreTaken(InvalidSubTransactionId);
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_PREPARE)
	{
		list_free_deep(counters_taken);
		counters_taken = NIL;
	}
}

static void
CounterSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (counters_taken == NIL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		CounterRestoreTaken(mySubid);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, counters_taken)
		{
			CounterTaken *t = lfirst(lc);

			if (t->subid == mySubid)
				t->subid = parentSubid;
		}
	}
}

/* The SQL task_name of a counter key: NULL for none, "(other)" for overflow. */
static Datum
CounterNameDatum(const CounterKey *key, bool *isnull)
{
	*isnull = false;
	if (key->overflow)
		return CStringGetTextDatum(COUNTER_OVERFLOW_NAME);
	if (key->name[0] == '\0')
	{
		*isnull = true;
		return (Datum) 0;
	}
	return CStringGetTextDatum(key->name);
}

/*
 * One ([tenant,] task_name, checks, duplicates, last_duplicate_at) row; the
 * tenant column ('' = none) only in the 0.2.0 shape.
 */
static void
CounterPutRow(ReturnSetInfo *rsinfo, const CounterKey *key, uint64 checks,
			  uint64 duplicates, uint64 last_duplicate, bool with_tenant)
{
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	int			c = 0;

	if (with_tenant)
		values[c++] = CStringGetTextDatum(key->tenant);
	values[c] = CounterNameDatum(key, &nulls[c]);
	c++;
	values[c++] = Int64GetDatum((int64) checks);
	values[c++] = Int64GetDatum((int64) duplicates);
	values[c] = TimestampTzGetDatum((TimestampTz) last_duplicate);
	nulls[c] = (last_duplicate == 0);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

static Datum CounterLive(FunctionCallInfo fcinfo, bool with_tenant);
static Datum CounterTake(FunctionCallInfo fcinfo, bool with_tenant);

/*
 * taskguard._idempotency_live_counters(): this database's counts not yet
 * flushed, a row per tenant and task_name, without the tenant (0.1.0's shape).
 */
Datum
taskguard_idempotency_live_counters(PG_FUNCTION_ARGS)
{
	return CounterLive(fcinfo, false);
}

/* taskguard._idempotency_tenant_counters(): the same with the tenant first. */
Datum
taskguard_idempotency_tenant_counters(PG_FUNCTION_ARGS)
{
	return CounterLive(fcinfo, true);
}

/* taskguard._idempotency_take_counters(): 0.1.0's shape, see CounterTake(). */
Datum
taskguard_idempotency_take_counters(PG_FUNCTION_ARGS)
{
	return CounterTake(fcinfo, false);
}

/* taskguard._idempotency_take_tenant_counters(): with the tenant first. */
Datum
taskguard_idempotency_take_tenant_counters(PG_FUNCTION_ARGS)
{
	return CounterTake(fcinfo, true);
}

/* This database's counts not yet flushed.  Empty when not preloaded. */
static Datum
CounterLive(FunctionCallInfo fcinfo, bool with_tenant)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	CounterEntry *entry;

	InitMaterializedSRF(fcinfo, 0);
	if (counter_hash == NULL)
		PG_RETURN_VOID();

	LWLockAcquire(TgLock(TG_LOCK_COUNTERS), LW_SHARED);
	hash_seq_init(&seq, counter_hash);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (entry->key.dbid != MyDatabaseId)
			continue;
		CounterPutRow(rsinfo, &entry->key, pg_atomic_read_u64(&entry->checks),
					  pg_atomic_read_u64(&entry->duplicates),
					  pg_atomic_read_u64(&entry->last_duplicate), with_tenant);
	}
	LWLockRelease(TgLock(TG_LOCK_COUNTERS));
	PG_RETURN_VOID();
}

/*
 * This database's live counts, removed from shared memory; they come back
 * if the transaction aborts.
 */
static Datum
CounterTake(FunctionCallInfo fcinfo, bool with_tenant)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	CounterEntry *entry;
	List	   *taken = NIL;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	if (counter_hash == NULL)
		PG_RETURN_VOID();
	if (!counter_callbacks_registered)
	{
		RegisterXactCallback(CounterXactCallback, NULL);
		RegisterSubXactCallback(CounterSubXactCallback, NULL);
		counter_callbacks_registered = true;
	}

	LWLockAcquire(TgLock(TG_LOCK_COUNTERS), LW_EXCLUSIVE);
	hash_seq_init(&seq, counter_hash);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		CounterTaken *t;

		if (entry->key.dbid != MyDatabaseId)
			continue;
		t = MemoryContextAlloc(TopMemoryContext, sizeof(CounterTaken));
		t->key = entry->key;
		t->checks = pg_atomic_read_u64(&entry->checks);
		t->duplicates = pg_atomic_read_u64(&entry->duplicates);
		t->last_duplicate = pg_atomic_read_u64(&entry->last_duplicate);
		t->subid = GetCurrentSubTransactionId();
		hash_search(counter_hash, &entry->key, HASH_REMOVE, NULL);
		taken = lappend(taken, t);
	}
	LWLockRelease(TgLock(TG_LOCK_COUNTERS));

	foreach(lc, taken)
	{
		CounterTaken *t = lfirst(lc);
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		counters_taken = lappend(counters_taken, t);
		MemoryContextSwitchTo(old);
		CounterPutRow(rsinfo, &t->key, t->checks, t->duplicates, t->last_duplicate, with_tenant);
	}
	list_free(taken);
	PG_RETURN_VOID();
}

/*
 * taskguard._idempotency_count(task_name text, checks int, duplicates int):
 * 0.1.0's count for the enqueue path, for the caller's first tenant.
 * No-op when not preloaded.
 */
Datum
taskguard_idempotency_count(PG_FUNCTION_ARGS)
{
	text	   *name = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	int32		checks = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	int32		duplicates = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	const char *tenant = TenantFirstOfCaller();

	CounterAdd(tenant, strlen(tenant), name ? VARDATA_ANY(name) : NULL,
			   name ? VARSIZE_ANY_EXHDR(name) : 0, checks, duplicates);
	PG_RETURN_VOID();
}

/*
 * taskguard._idempotency_count(task_name text, tenant text, checks int,
 * duplicates int): count for the enqueue path, which knows the tenant.
 */
Datum
taskguard_idempotency_count_tenant(PG_FUNCTION_ARGS)
{
	text	   *name = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	text	   *tenant = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	int32		checks = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT32(2);
	int32		duplicates = PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3);

	CounterAdd(tenant ? VARDATA_ANY(tenant) : NULL, tenant ? VARSIZE_ANY_EXHDR(tenant) : 0,
			   name ? VARDATA_ANY(name) : NULL, name ? VARSIZE_ANY_EXHDR(name) : 0,
			   checks, duplicates);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------------
 * Hashing
 * --------------------------------------------------------------------- */

/* Feed len bytes of server-encoded text to ctx as UTF-8. */
static void
IdemHashUpdateUtf8(pg_cryptohash_ctx *ctx, const char *s, int len)
{
	char	   *u = pg_server_to_any(s, len, PG_UTF8);
	size_t		ulen = (u == s) ? (size_t) len : strlen(u);

	if (pg_cryptohash_update(ctx, (const uint8 *) u, ulen) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256: %s", pg_cryptohash_error(ctx))));
	if (u != s)
		pfree(u);
}

static pg_cryptohash_ctx *
IdemHashBegin(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize SHA-256: %s", pg_cryptohash_error(ctx))));
	return ctx;
}

static void
IdemHashEnd(pg_cryptohash_ctx *ctx, uint8 *digest)
{
	if (pg_cryptohash_final(ctx, digest, PG_SHA256_DIGEST_LENGTH) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not finalize SHA-256: %s", pg_cryptohash_error(ctx))));
	pg_cryptohash_free(ctx);
}

/* SHA-256 of a key as stored in the index: the raw bytes of the text. */
static bytea *
IdemKeyDigest(text *key)
{
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	pg_cryptohash_ctx *ctx = IdemHashBegin();

	if (pg_cryptohash_update(ctx, (const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256: %s", pg_cryptohash_error(ctx))));
	IdemHashEnd(ctx, (uint8 *) VARDATA(result));
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return result;
}

/* Refuse a NULL or empty text argument, naming it. */
static text *
IdemRequireText(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	text	   *t;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be NULL", argname)));
	t = PG_GETARG_TEXT_PP(argno);
	if (VARSIZE_ANY_EXHDR(t) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));
	return t;
}

/*
 * taskguard.idempotency_key(task_name text, args jsonb DEFAULT '{}'):
 * lowercase hex SHA-256 of task_name || chr(31) || args::text in UTF-8.
 * A NULL args hashes like '{}'.
 */
Datum
taskguard_idempotency_key(PG_FUNCTION_ARGS)
{
	static const char hexdigits[] = "0123456789abcdef";
	text	   *name = IdemRequireText(fcinfo, 0, "task_name");
	const char *args = "{}";
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_STRING_LENGTH];
	pg_cryptohash_ctx *ctx;

	if (!PG_ARGISNULL(1))
	{
		Jsonb	   *jb = PG_GETARG_JSONB_P(1);

		args = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	}
	ctx = IdemHashBegin();
	IdemHashUpdateUtf8(ctx, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name));
	IdemHashUpdateUtf8(ctx, "\x1f", 1);
	IdemHashUpdateUtf8(ctx, args, strlen(args));
	IdemHashEnd(ctx, digest);

	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
	{
		hex[2 * i] = hexdigits[digest[i] >> 4];
		hex[2 * i + 1] = hexdigits[digest[i] & 0xf];
	}
	hex[2 * PG_SHA256_DIGEST_LENGTH] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}

/* taskguard._idempotency_digest(key text): the indexed digest of a key. */
Datum
taskguard_idempotency_digest(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(IdemKeyDigest(PG_GETARG_TEXT_PP(0)));
}

/* ---------------------------------------------------------------------
 * idempotency_check
 * --------------------------------------------------------------------- */

/* A TTL must be positive and at most 1000 years. */
static void
IdemCheckTtl(Interval *ttl)
{
	Interval	zero = {0, 0, 0};
	Interval	most = {0, 0, 1000 * MONTHS_PER_YEAR};

	if (!DatumGetBool(DirectFunctionCall2(interval_gt, IntervalPGetDatum(ttl),
										  IntervalPGetDatum(&zero))) ||
		DatumGetBool(DirectFunctionCall2(interval_gt, IntervalPGetDatum(ttl),
										 IntervalPGetDatum(&most))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ttl must be a positive interval of at most 1000 years, got %s",
						DatumGetCString(DirectFunctionCall1(interval_out,
															IntervalPGetDatum(ttl))))));
}

/*
 * The caller's tenant is taskguard._effective_tenant(NULL) — its first
 * tenant, '' for none — computed once per call in C (TenantFirstOfCaller(),
 * cached per backend) and passed to the plans as $5; the counters use the
 * same value.
 */
static SPIPlanPtr check_insert_plan = NULL;
static SPIPlanPtr check_takeover_plan = NULL;

/* taskguard.idempotency_record, whose owner records keys. */
static Oid
IdemRecordRelid(void)
{
	Oid			relid = get_relname_relid("idempotency_record",
										  get_namespace_oid("taskguard", false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table taskguard.idempotency_record does not exist")));
	return relid;
}

static SPIPlanPtr
IdemPrepare(const char *sql)
{
	Oid			types[5] = {BYTEAOID, TEXTOID, TEXTOID, INTERVALOID, TEXTOID};
	SPIPlanPtr	plan = SPI_prepare(sql, 5, types);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	SPI_keepplan(plan);
	return plan;
}

/*
 * Record a key; true when it is new to its tenant.  The fast path is a plain
 * INSERT … ON CONFLICT DO NOTHING (it waits for a concurrent uncommitted
 * insert of the same key, so the unique index decides every race).  On a
 * conflict the row may have expired: take it over in place with an UPDATE
 * that re-checks expires_at under the row lock.  If that finds no row, the
 * scheduler deleted the expired row in between, so insert once more.
 */
static bool
IdemRecordKey(Datum *values, char *nulls)
{
	int			ret;

	if (check_insert_plan == NULL)
		check_insert_plan = IdemPrepare(
			"INSERT INTO taskguard.idempotency_record "
			"  (tenant, key_digest, key, task_name, expires_at) "
			"VALUES ($5, $1, $2, $3, now() + $4) "
			"ON CONFLICT DO NOTHING");
	if (check_takeover_plan == NULL)
		check_takeover_plan = IdemPrepare(
			"UPDATE taskguard.idempotency_record r "
			"   SET key = $2, task_name = $3, task_id = NULL, created_at = now(), "
			"       expires_at = now() + $4 "
			" WHERE r.tenant = $5 AND r.key_digest = $1 "
			"   AND r.expires_at <= now()");

	ret = SPI_execute_plan(check_insert_plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "idempotency_check: unexpected SPI result %d", ret);
	if (SPI_processed > 0)
		return true;

	ret = SPI_execute_plan(check_takeover_plan, values, nulls, false, 0);
	if (ret != SPI_OK_UPDATE)
		elog(ERROR, "idempotency_check: unexpected SPI result %d", ret);
	if (SPI_processed > 0)
		return true;

	ret = SPI_execute_plan(check_insert_plan, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "idempotency_check: unexpected SPI result %d", ret);
	return SPI_processed > 0;
}

/*
 * taskguard.idempotency_check(key text, ttl interval, task_name text):
 * true the first time key is seen in this tenant within ttl, else false.
 */
Datum
taskguard_idempotency_check(PG_FUNCTION_ARGS)
{
	text	   *key = IdemRequireText(fcinfo, 0, "key");
	text	   *name = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	int			keylen = VARSIZE_ANY_EXHDR(key);
	int			namelen = name ? VARSIZE_ANY_EXHDR(name) : 0;
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	Interval   *ttl;
	bool		first;
	TgSavedUser saved;
	const char *tenant;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"ttl\" must not be NULL")));
	ttl = PG_GETARG_INTERVAL_P(1);
	IdemCheckTtl(ttl);

	values[0] = PointerGetDatum(IdemKeyDigest(key));
	values[1] = PointerGetDatum(key);
	nulls[1] = keylen <= IDEM_KEY_STORE_MAX ? ' ' : 'n';
	values[2] = PointerGetDatum(name);
	nulls[2] = namelen > 0 ? ' ' : 'n';
	values[3] = IntervalPGetDatum(ttl);
	tenant = TenantFirstOfCaller();
	values[4] = CStringGetTextDatum(tenant);

	/*
	 * As the table's owner, under the pinned search_path: workers hold no
	 * write privilege on idempotency_record (docs/reference.md#tenants).  The tenant was
	 * judged from the caller above.  An error restores user and path with
	 * the transaction's abort.
	 */
	TgActAsRelOwner(IdemRecordRelid(), &saved);
	TgSpiConnect();
	first = IdemRecordKey(values, nulls);
	SPI_finish();
	TgRestoreUser(&saved);

	CounterAdd(tenant, strlen(tenant), name ? VARDATA_ANY(name) : NULL, namelen,
			   1, first ? 0 : 1);
	PG_RETURN_BOOL(first);
}

/* taskguard._xact_owns(xid): was a row version written by this transaction? */
Datum
taskguard_xact_owns(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(TransactionIdIsCurrentTransactionId(DatumGetTransactionId(PG_GETARG_DATUM(0))));
}
