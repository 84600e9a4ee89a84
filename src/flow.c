/*
 * flow.c — flow control inside claim() (docs/reference.md#flow-control, docs/flow.md): pause,
 * concurrency caps and token-bucket rate limits from taskguard.flow_limit and
 * taskguard.flow_pause.
 *
 * Configuration: each backend caches both tables (a TgConfigCache; their
 * statement trigger is the one _config_changed), so an edit is seen by every
 * backend at its next claim (no restart).  With neither table holding a row for a
 * queue, _flow_active() is false and claim() keeps its single-statement path.
 *
 * Running counts live in shared memory, per (database, scope, value) for
 * every scope (queue, task_name, service, tenant, flow_key) of every running
 * task, once a database "tracks" (a cap exists).  Tracking starts with a
 * build: under LOCK TABLE taskguard.task IN SHARE MODE (no writer in flight)
 * the running rows are counted.  It runs on the first claim after a restart
 * and when a first cap is configured, so counts are rebuilt from the table
 * after a crash.  From then on:
 *  - a claim reserves (check and increment under TG_LOCK_FLOW, one step for
 *    all matching limits) before its UPDATE; a reservation the UPDATE did not
 *    use is given back by _flow_settle() at the end of the claim;
 *  - a row trigger sees every other move into running (counted at once) and
 *    every move out of it (complete, fail, reaping, release, cancel, delete:
 *    counted down when the transaction commits);
 *  - a transaction or savepoint that rolls back gives back what it counted up.
 * Counts therefore never fall below the committed running rows: a cap is
 * never exceeded, and nothing leaks when a worker dies (its lease is reaped,
 * which is a move out of running).
 *
 * Token buckets: per limit and value, refilled continuously at rate per
 * `per` up to burst; a claim takes one token of every matching rate limit.
 *
 * Without shared_preload_libraries a cap or rate limit cannot be kept:
 * claim() hands out no task that such a limit matches (pause still works).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "notify_throttle.h"
#include "taskguard.h"

#define FLOW_SCOPES 5
#define FLOW_ENTRIES 16384
#define FLOW_DBS 64

/* Entry kinds: a running count per scope, a token bucket per limit. */
#define FLOW_KIND_RUNNING 0
#define FLOW_KIND_BUCKET_NAMED 8
#define FLOW_KIND_BUCKET_EACH 16
#define FLOW_KIND_FAIR 24		/* a (queue, tenant)'s pass; tokens holds it */
/* A tenant not seen in a claim's list for this long rejoins at the front's pass. */
#define FLOW_FAIR_IDLE_US (1 * USECS_PER_SEC)

static const char *const flow_scope_names[FLOW_SCOPES] =
{"queue", "task_name", "service", "tenant", "flow_key"};

typedef struct FlowKey
{
	Oid			dbid;
	int32		kind;			/* FLOW_KIND_* + scope */
	uint64		vhash;			/* hash of the value */
} FlowKey;

typedef struct FlowEntry
{
	FlowKey		key;
	int32		running;
	double		tokens;
	TimestampTz refill_at;
} FlowEntry;

typedef struct FlowDb
{
	Oid			dbid;
	bool		tracking;
} FlowDb;

typedef struct FlowShared
{
	FlowDb		dbs[FLOW_DBS];
} FlowShared;

typedef struct FlowLimit
{
	int			scope;
	char	   *name;			/* NULL: '*', each value */
	int32		max_running;	/* -1: none */
	int32		rate;			/* -1: none */
	int64		per_us;
	int32		burst;
	double		weight;			/* fair share between tenants */
} FlowLimit;

typedef struct FlowPause
{
	char	   *queue;
	char	   *task_name;		/* NULL: the whole queue */
} FlowPause;

typedef struct FlowCache
{
	int			nlimits;
	FlowLimit  *limits;
	int			npauses;
	FlowPause  *pauses;
	bool		any_cap;
	bool		any_other_scope;	/* a limit on something other than the queue */
	uint32		gen;			/* bumped at every load */
	bool		fair[FLOW_SCOPES];	/* claims share between tenants / flow keys */
} FlowCache;

/* What this transaction counted: undone on rollback, applied on commit. */
typedef enum FlowOpKind
{
	FLOW_OP_RESERVED,			/* a claim's reservation, not yet used */
	FLOW_OP_UP,					/* counted up: undone on rollback */
	FLOW_OP_DOWN				/* to count down at commit */
} FlowOpKind;

typedef struct FlowOp
{
	FlowOpKind	kind;
	int			level;
	int64		task_id;
	uint64		vhash[FLOW_SCOPES];
	uint8		present;		/* bit per scope with a value */
	bool		counted;		/* running counts incremented (tracking) */
	uint32		gen;			/* flow_cache.gen when charged */
	uint64		charged;		/* bit per limit (index < 64) whose token it took */
	int			qslot;			/* its queue's wake-up slot (notify_throttle.c), -1: none */
} FlowOp;

/* A task's five values, as the claim or the trigger sees them. */
typedef struct FlowTask
{
	const char *value[FLOW_SCOPES];
	int			len[FLOW_SCOPES];
} FlowTask;

static HTAB *flow_hash = NULL;
static FlowShared *flow_shared = NULL;
static FlowCache flow_cache;
static TgConfigCache flow_config;	/* relids: flow_limit, flow_pause */
static MemoryContext flow_cxt = NULL;
static bool flow_callbacks = false;
static FlowOp *flow_ops = NULL;
static int	flow_nops = 0;
static int	flow_maxops = 0;
static uint32 flow_gen = 0;
/* Tasks this session moved into running and not out yet: a worker holding none is about to claim. */
static int	flow_held = 0;
/* Tasks this statement (a claim) handed out from its reservations: flow_started_n at flow_started_stmt. */
static TimestampTz flow_started_stmt = 0;
static int	flow_started_n = 0;

PG_FUNCTION_INFO_V1(taskguard_flow_active);
PG_FUNCTION_INFO_V1(taskguard_flow_admit);
PG_FUNCTION_INFO_V1(taskguard_flow_take);
PG_FUNCTION_INFO_V1(taskguard_flow_settle);
PG_FUNCTION_INFO_V1(taskguard_flow_task_trigger);
PG_FUNCTION_INFO_V1(taskguard_flow_tokens);

/* ---- shared memory ---- */

Size
FlowShmemSize(void)
{
	return add_size(hash_estimate_size(FLOW_ENTRIES, sizeof(FlowEntry)),
					MAXALIGN(sizeof(FlowShared)));
}

void
FlowShmemInit(void)
{
	HASHCTL		info;
	bool		found;

	info.keysize = sizeof(FlowKey);
	info.entrysize = sizeof(FlowEntry);
	flow_hash = ShmemInitHash("taskguard flow counts", FLOW_ENTRIES, FLOW_ENTRIES,
							  &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	flow_shared = ShmemInitStruct("taskguard flow", sizeof(FlowShared), &found);
	if (!found)
		memset(flow_shared, 0, sizeof(FlowShared));
}

/* This database's slot (created when create is set; NULL if full or absent). */
static FlowDb *
FlowDbSlot(bool create)
{
	for (int i = 0; i < FLOW_DBS; i++)
		if (flow_shared->dbs[i].dbid == MyDatabaseId)
			return &flow_shared->dbs[i];
	if (!create)
		return NULL;
	for (int i = 0; i < FLOW_DBS; i++)
		if (flow_shared->dbs[i].dbid == InvalidOid)
		{
			flow_shared->dbs[i].dbid = MyDatabaseId;
			flow_shared->dbs[i].tracking = false;
			return &flow_shared->dbs[i];
		}
	return NULL;
}

static bool
FlowTracking(void)
{
	FlowDb	   *db;

	if (flow_shared == NULL)
		return false;
	db = FlowDbSlot(false);
	return db != NULL && db->tracking;
}

static uint64
FlowHashValue(const char *value, int len)
{
	return hash_bytes_extended((const unsigned char *) value, len, 0x7467666cULL);
}

static FlowEntry *
FlowEntryFor(int kind, uint64 vhash, bool create)
{
	FlowKey		key;
	bool		found;
	FlowEntry  *e;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.kind = kind;
	key.vhash = vhash;
	e = hash_search(flow_hash, &key, create ? HASH_ENTER_NULL : HASH_FIND, &found);
	if (e != NULL && !found)
	{
		e->running = 0;
		e->tokens = -1;			/* a bucket starts full at first use */
		e->refill_at = 0;
	}
	return e;
}

/* ---- the configuration cache ---- */

static Oid	flow_att_rel = InvalidOid;

static void
FlowRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == flow_att_rel)
		flow_att_rel = InvalidOid;	/* the task table changed: look its columns up again */
}

static char *
FlowGetText(int row, int col)
{
	char	   *s = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return s ? MemoryContextStrdup(flow_cxt, s) : NULL;
}

static int64
FlowGetInt(int row, int col, int64 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? dflt : DatumGetInt64(d);
}

static int
FlowScopeIndex(const char *scope)
{
	for (int i = 0; i < FLOW_SCOPES; i++)
		if (strcmp(scope, flow_scope_names[i]) == 0)
			return i;
	return -1;
}

static void
FlowLoadLimits(void)
{
	if (SPI_execute("SELECT scope, name, max_running::int8, rate::int8, "
					"(extract(epoch FROM per) * 1000000)::int8, "
					"coalesce(burst, rate)::int8, weight::float8 FROM taskguard.flow_limit",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "flow_limit query failed");
	flow_cache.limits = MemoryContextAllocZero(flow_cxt, sizeof(FlowLimit) * (SPI_processed + 1));
	flow_cache.nlimits = 0;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		FlowLimit  *l = &flow_cache.limits[flow_cache.nlimits];
		char	   *scope = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		l->scope = scope ? FlowScopeIndex(scope) : -1;
		if (l->scope < 0)
			continue;
		l->name = FlowGetText(i, 2);
		if (l->name != NULL && strcmp(l->name, "*") == 0)
			l->name = NULL;
		l->max_running = (int32) FlowGetInt(i, 3, -1);
		l->rate = (int32) FlowGetInt(i, 4, -1);
		l->per_us = Max(FlowGetInt(i, 5, USECS_PER_SEC), 1);
		l->burst = (int32) Max(FlowGetInt(i, 6, 1), 1);
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 7, &isnull);

			l->weight = isnull ? 1.0 : Max(DatumGetFloat8(d), 1e-6);
		}
		/* a tenant or flow_key row with a weight (weight only, or not 1) turns fair share on */
		if ((l->max_running < 0 && l->rate < 0) || l->weight != 1.0)
			flow_cache.fair[l->scope] = true;
		flow_cache.any_cap |= l->max_running >= 0;
		flow_cache.any_other_scope |= l->scope != 0;
		flow_cache.nlimits++;
	}
}

static void
FlowLoadPauses(void)
{
	if (SPI_execute("SELECT queue, nullif(task_name, '*') FROM taskguard.flow_pause", true, 0)
		!= SPI_OK_SELECT)
		elog(ERROR, "flow_pause query failed");
	flow_cache.npauses = SPI_processed;
	flow_cache.pauses = MemoryContextAllocZero(flow_cxt, sizeof(FlowPause) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		flow_cache.pauses[i].queue = FlowGetText(i, 1);
		flow_cache.pauses[i].task_name = FlowGetText(i, 2);
	}
}

static void FlowXactCallback(XactEvent event, void *arg);
static void FlowSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);

static void
FlowEnsureCache(void)
{
	Oid			nsp;
	uint64		generation;

	if (TgConfigCacheCurrent(&flow_config))
		return;
	if (!flow_callbacks)
	{
		CacheRegisterRelcacheCallback(FlowRelcacheCallback, (Datum) 0);
		RegisterXactCallback(FlowXactCallback, NULL);
		RegisterSubXactCallback(FlowSubXactCallback, NULL);
		flow_callbacks = true;
	}
	generation = TgConfigCacheLoadBegin(&flow_config);
	if (flow_cxt == NULL)
		flow_cxt = AllocSetContextCreate(CacheMemoryContext, "taskguard flow cache",
										 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(flow_cxt);
	memset(&flow_cache, 0, sizeof(flow_cache));
	flow_cache.gen = ++flow_gen;
	nsp = get_namespace_oid("taskguard", false);
	flow_config.relids[0] = get_relname_relid("flow_limit", nsp);
	flow_config.relids[1] = get_relname_relid("flow_pause", nsp);
	if (OidIsValid(flow_config.relids[0]) && OidIsValid(flow_config.relids[1]))
	{
		TgSpiConnect();
		FlowLoadLimits();
		FlowLoadPauses();
		SPI_finish();
	}
	/* else an older schema: no flow control */
	TgConfigCacheLoadEnd(&flow_config, generation);
}

/* ---- matching ---- */

static bool
FlowValueIs(const FlowTask *t, int scope, const char *name)
{
	return t->value[scope] != NULL && (int) strlen(name) == t->len[scope] &&
		memcmp(name, t->value[scope], t->len[scope]) == 0;
}

static bool
FlowLimitMatches(const FlowLimit *l, const FlowTask *t)
{
	if (t->value[l->scope] == NULL)
		return false;
	return l->name == NULL || FlowValueIs(t, l->scope, l->name);
}

static bool
FlowPaused(const FlowTask *t)
{
	for (int i = 0; i < flow_cache.npauses; i++)
	{
		const FlowPause *p = &flow_cache.pauses[i];

		if (FlowValueIs(t, 0, p->queue) &&
			(p->task_name == NULL || FlowValueIs(t, 1, p->task_name)))
			return true;
	}
	return false;
}

static bool
FlowQueuePaused(const char *queue, int len)
{
	for (int i = 0; i < flow_cache.npauses; i++)
		if (flow_cache.pauses[i].task_name == NULL &&
			(int) strlen(flow_cache.pauses[i].queue) == len &&
			memcmp(flow_cache.pauses[i].queue, queue, len) == 0)
			return true;
	return false;
}

/* Read the five values from the function's arguments first..first+4. */
static void
FlowTaskFromArgs(FunctionCallInfo fcinfo, int first, FlowTask *t)
{
	for (int s = 0; s < FLOW_SCOPES; s++)
	{
		if (PG_ARGISNULL(first + s))
		{
			t->value[s] = NULL;
			t->len[s] = 0;
			continue;
		}
		{
			text	   *v = PG_GETARG_TEXT_PP(first + s);

			t->value[s] = VARDATA_ANY(v);
			t->len[s] = VARSIZE_ANY_EXHDR(v);
		}
	}
}

static void
FlowOpKeys(FlowOp *op, const FlowTask *t)
{
	op->present = 0;
	op->counted = false;
	op->charged = 0;
	op->gen = flow_cache.gen;
	for (int s = 0; s < FLOW_SCOPES; s++)
	{
		op->vhash[s] = 0;
		if (t->value[s] == NULL)
			continue;
		op->vhash[s] = FlowHashValue(t->value[s], t->len[s]);
		op->present |= 1 << s;
	}
}

/* ---- counting (TG_LOCK_FLOW held exclusively) ---- */

static void
FlowCount(const FlowOp *op, int delta)
{
	for (int s = 0; s < FLOW_SCOPES; s++)
	{
		FlowEntry  *e;

		if (!(op->present & (1 << s)))
			continue;
		e = FlowEntryFor(FLOW_KIND_RUNNING + s, op->vhash[s], delta > 0);
		if (e == NULL)
			continue;
		e->running = Max(e->running + delta, 0);
	}
}

/* The bucket of one limit and value, refilled to now. */
static FlowEntry *
FlowBucket(const FlowLimit *l, uint64 vhash, TimestampTz now, bool create)
{
	int			kind = (l->name ? FLOW_KIND_BUCKET_NAMED : FLOW_KIND_BUCKET_EACH) + l->scope;
	FlowEntry  *e = FlowEntryFor(kind, vhash, create);

	if (e == NULL)
		return NULL;
	if (e->tokens < 0 || e->refill_at == 0)
		e->tokens = l->burst;
	else if (now > e->refill_at)
		e->tokens = Min((double) l->burst,
						e->tokens + (double) (now - e->refill_at) * l->rate / (double) l->per_us);
	e->refill_at = now;
	return e;
}

/*
 * A claim was refused by a limit: mark the task's queue waiting, so that a
 * freed slot or the bucket's next token (due; 0 for a cap) wakes its workers
 * (notify_throttle.c).  Once per statement for a cap and once for a bucket: a claim may
 * refuse many rows.  Called under TG_LOCK_FLOW, like the count-down.
 */
static void
FlowRefused(const FlowTask *t, TimestampTz due)
{
	static TimestampTz stmt = 0;
	static bool waited = false;
	static bool due_set = false;
	TimestampTz now_stmt = GetCurrentStatementStartTimestamp();

	if (t->value[0] == NULL)
		return;
	/*
	 * A claim holding a reservation will hand out a task, and a worker that
	 * gets one does not sleep: no mark (a sorted pick checks every row, and
	 * would mark a queue nobody waits on).  Should the reservation be given
	 * back, FlowRelease marks the queue then.
	 */
	for (int i = 0; i < flow_nops; i++)
		if (flow_ops[i].kind == FLOW_OP_RESERVED)
			return;
	if (stmt != now_stmt)
	{
		stmt = now_stmt;
		waited = due_set = false;
	}
	if (due == 0 ? waited : due_set)
		return;
	waited = true;
	due_set |= due != 0;
	QueueFlowWaiting(QueueWakeSlot(t->value[0], t->len[0]), due);
}

/* When a bucket with tokens < 1 has its next whole token. */
static TimestampTz
FlowTokenDue(const FlowLimit *l, const FlowEntry *b, TimestampTz now)
{
	double		us = (1.0 - b->tokens) * (double) l->per_us / Max(l->rate, 1);

	return now + (TimestampTz) Min(Max(us, 1.0), (double) 366 * USECS_PER_DAY);
}

/*
 * May a task with these values start now?  With take, also reserve it: one
 * token of each rate limit and a running count of each scope.
 */
static bool
FlowCheck(const FlowTask *t, FlowOp *op, bool take)
{
	TimestampTz now = GetCurrentTimestamp();
	FlowEntry  *buckets[64];
	int			nbuckets = 0;

	for (int i = 0; i < flow_cache.nlimits; i++)
	{
		const FlowLimit *l = &flow_cache.limits[i];

		if (!FlowLimitMatches(l, t))
			continue;
		if (l->max_running >= 0)
		{
			FlowEntry  *e = FlowEntryFor(FLOW_KIND_RUNNING + l->scope, op->vhash[l->scope], take);

			if (!FlowTracking())
				return false;	/* counts not built: refuse rather than guess */
			if (take && e == NULL)
				return false;	/* no room to count it: refuse */
			if (e != NULL && e->running >= l->max_running)
			{
				if (take)
					FlowRefused(t, 0);
				return false;
			}
		}
		if (l->rate >= 0)
		{
			FlowEntry  *b = FlowBucket(l, op->vhash[l->scope], now, true);

			if (b == NULL)
				return false;
			if (b->tokens < 1.0)
			{
				if (take)
					FlowRefused(t, FlowTokenDue(l, b, now));
				return false;
			}
			if (nbuckets < lengthof(buckets))
				buckets[nbuckets++] = b;
			if (i < 64)
				op->charged |= UINT64CONST(1) << i;
		}
	}
	if (take)
	{
		for (int i = 0; i < nbuckets; i++)
			buckets[i]->tokens -= 1.0;
		op->counted = FlowTracking();
		if (op->counted)
			FlowCount(op, 1);
	}
	return true;
}

/* ---- this transaction's counts ---- */

static FlowOp *
FlowOpAdd(FlowOpKind kind, int64 task_id, const FlowTask *t)
{
	FlowOp	   *op;

	if (flow_nops == flow_maxops)
	{
		int			n = Max(flow_maxops * 2, 16);

		flow_ops = flow_ops == NULL
			? MemoryContextAlloc(TopMemoryContext, n * sizeof(FlowOp))
			: repalloc(flow_ops, n * sizeof(FlowOp));
		flow_maxops = n;
	}
	op = &flow_ops[flow_nops++];
	op->kind = kind;
	op->level = GetCurrentTransactionNestLevel();
	op->task_id = task_id;
	op->qslot = -1;
	FlowOpKeys(op, t);
	return op;
}

/* Undo (or, at commit, apply) the ops at level >= level; keep the others. */
static void
FlowOpsEnd(int level, bool commit)
{
	int			kept = 0;

	if (flow_nops == 0)
		return;
	if (flow_hash != NULL)
		LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
	for (int i = 0; i < flow_nops; i++)
	{
		FlowOp	   *op = &flow_ops[i];

		if (op->level < level)
		{
			flow_ops[kept++] = *op;
			continue;
		}
		if (flow_hash == NULL)
			continue;
		if (commit && op->kind == FLOW_OP_DOWN)
		{
			FlowCount(op, -1);
			/* a waiter's slot: the scheduler sees to it, at once if this session holds more */
			QueueFlowFreed(op->qslot, flow_held > 0);
		}
		else if (op->kind != FLOW_OP_DOWN && op->counted &&
				 (!commit || op->kind == FLOW_OP_RESERVED))
			FlowCount(op, -1);	/* rolled back, or reserved and never used */
	}
	if (flow_hash != NULL)
		LWLockRelease(TgLock(TG_LOCK_FLOW));
	flow_nops = kept;
}

static void
FlowXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			FlowOpsEnd(0, true);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			FlowOpsEnd(0, false);
			break;
		case XACT_EVENT_PREPARE:
			/* counted-up rows stay counted; a count-down is lost (docs/flow.md) */
			flow_nops = 0;
			break;
		default:
			break;
	}
}

static void
FlowSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_ABORT_SUB)
		FlowOpsEnd(level, false);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		for (int i = 0; i < flow_nops; i++)
			if (flow_ops[i].level >= level)
				flow_ops[i].level = level - 1;
}

/* ---- the build ---- */

/*
 * Count the running rows once no writer is in flight, and start tracking.
 * The advisory lock lets one builder at a time in; the others find it done.
 */
static void
FlowBuild(void)
{
	FlowDb	   *db;
	TgSavedUser saved;

	if (flow_shared == NULL || FlowTracking())
		return;
	TgActAsRelOwner(get_relname_relid("task", get_namespace_oid("taskguard", false)), &saved);
	TgSpiConnect();
	SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock(1953915505, 1718382455)", false, 0);
	if (!FlowTracking())
	{
		SPI_execute("LOCK TABLE taskguard.task IN SHARE MODE", false, 0);
		if (SPI_execute("SELECT queue, task_name, service, tenant, flow_key "
						"FROM taskguard.task WHERE status = 'running'", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "flow build query failed");
		LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
		{
			HASH_SEQ_STATUS seq;
			FlowEntry  *e;

			hash_seq_init(&seq, flow_hash);
			while ((e = hash_seq_search(&seq)) != NULL)
				if (e->key.dbid == MyDatabaseId)
					e->running = 0;
		}
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			FlowTask	t;
			FlowOp		op;

			for (int s = 0; s < FLOW_SCOPES; s++)
			{
				bool		isnull;
				Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
											  s + 1, &isnull);

				t.value[s] = isnull ? NULL : VARDATA_ANY(DatumGetTextPP(d));
				t.len[s] = isnull ? 0 : VARSIZE_ANY_EXHDR(DatumGetTextPP(d));
			}
			FlowOpKeys(&op, &t);
			FlowCount(&op, 1);
		}
		db = FlowDbSlot(true);
		if (db != NULL)
			db->tracking = true;
		LWLockRelease(TgLock(TG_LOCK_FLOW));
	}
	SPI_finish();
	TgRestoreUser(&saved);
}

/* ---- SQL-callable ---- */

/*
 * taskguard._flow_active(queue text) RETURNS boolean: does any pause or limit
 * concern this queue?  The one call claim() makes on its fast path.  Starts
 * the counts (a statement of its own, before claim() updates any row).
 */
Datum
taskguard_flow_active(PG_FUNCTION_ARGS)
{
	text	   *queue;
	const char *q;
	int			len;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	FlowEnsureCache();
	if (flow_cache.nlimits == 0 && flow_cache.npauses == 0)
		PG_RETURN_BOOL(false);
	if (flow_cache.any_cap && flow_shared != NULL && !FlowTracking())
		FlowBuild();
	if (flow_cache.any_other_scope)
		PG_RETURN_BOOL(true);
	queue = PG_GETARG_TEXT_PP(0);
	q = VARDATA_ANY(queue);
	len = VARSIZE_ANY_EXHDR(queue);
	for (int i = 0; i < flow_cache.npauses; i++)
		if ((int) strlen(flow_cache.pauses[i].queue) == len &&
			memcmp(flow_cache.pauses[i].queue, q, len) == 0)
			PG_RETURN_BOOL(true);
	for (int i = 0; i < flow_cache.nlimits; i++)
	{
		const char *n = flow_cache.limits[i].name;

		if (n == NULL || ((int) strlen(n) == len && memcmp(n, q, len) == 0))
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

/*
 * taskguard._flow_queue_closed(queue text) RETURNS boolean: is the queue
 * paused, or a limit on the whole queue full (at its cap, out of tokens)?
 * Then a claim hands out nothing without looking at a row: the workers a
 * freed slot's NOTIFY woke find out at once, not by walking the backlog.
 */
PG_FUNCTION_INFO_V1(taskguard_flow_queue_closed);
Datum
taskguard_flow_queue_closed(PG_FUNCTION_ARGS)
{
	text	   *queue = PG_GETARG_TEXT_PP(0);
	const char *q = VARDATA_ANY(queue);
	int			len = VARSIZE_ANY_EXHDR(queue);
	FlowTask	t;
	FlowOp		op;
	bool		closed = false;

	FlowEnsureCache();
	if (FlowQueuePaused(q, len))
		PG_RETURN_BOOL(true);
	if (flow_hash == NULL)
		PG_RETURN_BOOL(false);
	memset(&t, 0, sizeof(t));
	t.value[0] = q;
	t.len[0] = len;
	FlowOpKeys(&op, &t);
	LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
	for (int i = 0; i < flow_cache.nlimits && !closed; i++)
	{
		const FlowLimit *l = &flow_cache.limits[i];

		if (l->scope != 0 || !FlowLimitMatches(l, &t))
			continue;
		if (l->max_running >= 0)
		{
			FlowEntry  *e = FlowEntryFor(FLOW_KIND_RUNNING, op.vhash[0], false);

			closed = FlowTracking() && e != NULL && e->running >= l->max_running;
			if (closed)
				FlowRefused(&t, 0);
		}
		if (!closed && l->rate >= 0)
		{
			TimestampTz now = GetCurrentTimestamp();
			FlowEntry  *b = FlowBucket(l, op.vhash[0], now, false);

			closed = b != NULL && b->tokens < 1.0;
			if (closed)
				FlowRefused(&t, FlowTokenDue(l, b, now));
		}
	}
	LWLockRelease(TgLock(TG_LOCK_FLOW));
	PG_RETURN_BOOL(closed);
}

/*
 * taskguard._flow_admit(queue, task_name, service, tenant, flow_key) RETURNS
 * boolean: may such a task start now?  No side effect: claim()'s pick skips
 * the rows it refuses.
 */
Datum
taskguard_flow_admit(PG_FUNCTION_ARGS)
{
	FlowTask	t;
	FlowOp		op;
	bool		ok;

	FlowEnsureCache();
	FlowTaskFromArgs(fcinfo, 0, &t);
	if (FlowPaused(&t))
		PG_RETURN_BOOL(false);
	if (flow_cache.nlimits == 0)
		PG_RETURN_BOOL(true);
	if (flow_hash == NULL)
		PG_RETURN_BOOL(false);
	FlowOpKeys(&op, &t);
	LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
	ok = FlowCheck(&t, &op, false);
	LWLockRelease(TgLock(TG_LOCK_FLOW));
	PG_RETURN_BOOL(ok);
}

/*
 * taskguard._flow_take(id, queue, task_name, service, tenant, flow_key)
 * RETURNS boolean: check and reserve in one step; the row trigger turns the
 * reservation into the running count when claim() updates the row.
 */
Datum
taskguard_flow_take(PG_FUNCTION_ARGS)
{
	FlowTask	t;
	FlowOp		op;
	bool		ok;

	FlowEnsureCache();
	FlowTaskFromArgs(fcinfo, 1, &t);
	if (FlowPaused(&t))
		PG_RETURN_BOOL(false);
	if (flow_cache.nlimits == 0)
		PG_RETURN_BOOL(true);
	if (flow_hash == NULL)
		PG_RETURN_BOOL(false);
	FlowOpKeys(&op, &t);
	LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
	ok = FlowCheck(&t, &op, true);
	LWLockRelease(TgLock(TG_LOCK_FLOW));
	if (ok)
	{
		FlowOp	   *kept = FlowOpAdd(FLOW_OP_RESERVED, PG_GETARG_INT64(0), &t);

		kept->counted = op.counted;
		kept->qslot = QueueWakeSlot(t.value[0], t.len[0]);
		/* a claim of the queue got a slot: the freed one, if one was counted */
		if (op.counted)
			QueueFlowClaimed(kept->qslot);
		kept->charged = op.charged;
	}
	PG_RETURN_BOOL(ok);
}

/*
 * Give back one unused reservation: its running counts and its tokens.  It
 * may have made another claim refuse (two claims reserving the same row, one
 * of them then finding it locked): a waiting queue is told, as for a task
 * that left running, so no worker sleeps while the slot is free.
 */
static void
FlowRelease(const FlowOp *op)
{
	TimestampTz now = GetCurrentTimestamp();

	if (op->counted || op->charged)
	{
		if (QueueWakerServes())
		{
			/* a claim with nothing handed out yet may come back empty: its worker will wait */
			if (flow_started_stmt != GetCurrentStatementStartTimestamp() || flow_started_n == 0)
				QueueFlowWaiting(op->qslot, 0);
			QueueFlowFreed(op->qslot, false);
		}
		else if (QueueFlowTakeWaiting(op->qslot))
			Async_Notify("taskguard", QueueSlotName(op->qslot));
	}
	if (op->counted)
		FlowCount(op, -1);
	if (op->gen != flow_cache.gen || !TgConfigCacheCurrent(&flow_config))
		return;					/* the limits changed: keep it simple, no refund */
	for (int i = 0; i < flow_cache.nlimits && i < 64; i++)
	{
		const FlowLimit *l = &flow_cache.limits[i];
		FlowEntry  *b;

		if (!(op->charged & (UINT64CONST(1) << i)))
			continue;
		b = FlowBucket(l, op->vhash[l->scope], now, false);
		if (b != NULL)
			b->tokens = Min((double) l->burst, b->tokens + 1.0);
	}
}

/* The tasks whose reservations the last _flow_settle() gave back. */
static int64 *flow_given_back = NULL;
static int	flow_ngiven_back = 0;
static int	flow_maxgiven_back = 0;

static void
FlowRememberGivenBack(int64 task_id)
{
	if (flow_ngiven_back == flow_maxgiven_back)
	{
		int			n = Max(flow_maxgiven_back * 2, 8);

		flow_given_back = flow_given_back == NULL
			? MemoryContextAlloc(TopMemoryContext, n * sizeof(int64))
			: repalloc(flow_given_back, n * sizeof(int64));
		flow_maxgiven_back = n;
	}
	flow_given_back[flow_ngiven_back++] = task_id;
}

/*
 * taskguard._flow_settle() RETURNS int: give back the reservations this
 * claim did not use (a row another claim locked first, a breaker without a
 * probe left); how many.  More than 0 with nothing claimed: look again.
 */
Datum
taskguard_flow_settle(PG_FUNCTION_ARGS)
{
	int			released = 0;
	int			kept = 0;

	flow_ngiven_back = 0;
	if (flow_hash == NULL || flow_nops == 0)
		PG_RETURN_INT32(0);
	LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
	for (int i = 0; i < flow_nops; i++)
	{
		if (flow_ops[i].kind == FLOW_OP_RESERVED)
		{
			FlowRelease(&flow_ops[i]);
			FlowRememberGivenBack(flow_ops[i].task_id);
			released++;
		}
		else
			flow_ops[kept++] = flow_ops[i];
	}
	LWLockRelease(TgLock(TG_LOCK_FLOW));
	flow_nops = kept;
	PG_RETURN_INT32(released);
}

/*
 * taskguard._flow_given_back() RETURNS bigint[]: the tasks whose reservations
 * the last _flow_settle() of this session gave back.  claim() looks again past
 * them: another claim holds their rows, and reserving one of them again would
 * refuse the free task behind it for the claim's own reservation.
 */
PG_FUNCTION_INFO_V1(taskguard_flow_given_back);
Datum
taskguard_flow_given_back(PG_FUNCTION_ARGS)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(flow_ngiven_back, 1));

	for (int i = 0; i < flow_ngiven_back; i++)
		elems[i] = Int64GetDatum(flow_given_back[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, flow_ngiven_back, INT8OID, 8, FLOAT8PASSBYVAL,
										  TYPALIGN_DOUBLE));
}

/* Attribute numbers of the task table: the five values, status, id. */
static int	flow_att[FLOW_SCOPES + 2];

static void
FlowAttnums(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (flow_att_rel == RelationGetRelid(rel))
		return;
	for (int s = 0; s < FLOW_SCOPES; s++)
		flow_att[s] = SPI_fnumber(desc, flow_scope_names[s]);
	flow_att[FLOW_SCOPES] = SPI_fnumber(desc, "status");
	flow_att[FLOW_SCOPES + 1] = SPI_fnumber(desc, "id");
	flow_att_rel = RelationGetRelid(rel);
}

/* The five values of a task row. */
static void
FlowTaskFromTuple(Relation rel, HeapTuple tuple, FlowTask *t)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int s = 0; s < FLOW_SCOPES; s++)
	{
		int			att = flow_att[s];
		bool		isnull = true;
		Datum		d = (Datum) 0;

		if (att > 0)
			d = heap_getattr(tuple, att, desc, &isnull);
		t->value[s] = isnull ? NULL : VARDATA_ANY(DatumGetTextPP(d));
		t->len[s] = isnull ? 0 : VARSIZE_ANY_EXHDR(DatumGetTextPP(d));
	}
}

static bool
FlowRowRunning(Relation rel, HeapTuple tuple)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, flow_att[FLOW_SCOPES], RelationGetDescr(rel), &isnull);
	text	   *v;

	if (isnull)
		return false;
	v = DatumGetTextPP(d);
	return VARSIZE_ANY_EXHDR(v) == 7 && memcmp(VARDATA_ANY(v), "running", 7) == 0;
}

static int64
FlowRowId(Relation rel, HeapTuple tuple)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, flow_att[FLOW_SCOPES + 1],
								 RelationGetDescr(rel), &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* A row moved into running: use its reservation, or count it up now. */
static void
FlowRowStarted(int64 id, const FlowTask *t)
{
	FlowOp	   *op = NULL;

	flow_held++;
	for (int i = flow_nops - 1; i >= 0 && op == NULL; i--)
		if (flow_ops[i].kind == FLOW_OP_RESERVED && flow_ops[i].task_id == id)
			op = &flow_ops[i];
	if (op != NULL)
	{
		if (flow_started_stmt != GetCurrentStatementStartTimestamp())
		{
			flow_started_stmt = GetCurrentStatementStartTimestamp();
			flow_started_n = 0;
		}
		flow_started_n++;
		op->kind = FLOW_OP_UP;
		op->level = GetCurrentTransactionNestLevel();
		if (op->counted || !FlowTracking())
			return;
	}
	else if (FlowTracking())
		op = FlowOpAdd(FLOW_OP_UP, id, t);
	else
		return;
	LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
	FlowCount(op, 1);
	LWLockRelease(TgLock(TG_LOCK_FLOW));
	op->counted = true;
}

/*
 * A row left running: count it down at commit.  In the scheduler's database
 * the commit tells the scheduler if a claim of the queue is waiting
 * (notify_throttle.c: it notifies only if nobody takes the slot back at once).
 * Elsewhere, if a claim of the queue was refused since the last wake-up, or a
 * cap it counts towards is full, wake the queue's workers now (the NOTIFY
 * goes out at commit; not throttled, a throttled one would leave the slot
 * idle until the scheduler's pass).  Nobody waiting: no NOTIFY (a notifying
 * commit takes a cluster-wide lock).
 */
static void
FlowRowStopped(const FlowTask *t)
{
	FlowOp	   *op;
	bool		full = false;

	flow_held = Max(flow_held - 1, 0);
	if (!FlowTracking())
		return;
	op = FlowOpAdd(FLOW_OP_DOWN, 0, t);
	op->qslot = QueueWakeSlot(t->value[0], t->len[0]);
	if (QueueWakerServes())
		return;
	if (QueueFlowTakeWaiting(op->qslot))
		full = true;

	FlowEnsureCache();
	LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_SHARED);
	for (int i = 0; i < flow_cache.nlimits && !full; i++)
	{
		const FlowLimit *l = &flow_cache.limits[i];
		FlowEntry  *e;

		if (l->max_running < 0 || !FlowLimitMatches(l, t))
			continue;
		e = FlowEntryFor(FLOW_KIND_RUNNING + l->scope, op->vhash[l->scope], false);
		full = e != NULL && e->running >= l->max_running;
	}
	LWLockRelease(TgLock(TG_LOCK_FLOW));
	if (full && t->value[0] != NULL)
		Async_Notify("taskguard", pnstrdup(t->value[0], pg_mbcliplen(t->value[0], t->len[0], 800)));
}

/*
 * Row trigger on taskguard.task (BEFORE INSERT, UPDATE OF status, DELETE;
 * its WHEN fires it only when a row enters or leaves running).
 */
Datum
taskguard_flow_task_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	ret;
	FlowTask	t;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_flow_task_trigger must be called as a trigger")));
	rel = td->tg_relation;
	ret = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	/* the ring rotation moving a row between partitions: no task came or went */
	if (tg_task_ring_moving)
		return PointerGetDatum(ret);
	/* nothing counted, and no reservation of this claim to use */
	if (!FlowTracking() && flow_nops == 0)
		return PointerGetDatum(ret);
	if (!flow_callbacks)
		FlowEnsureCache();		/* registers the transaction callbacks */
	FlowAttnums(rel);

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		if (FlowRowRunning(rel, td->tg_trigtuple))
		{
			FlowTaskFromTuple(rel, td->tg_trigtuple, &t);
			FlowRowStopped(&t);
		}
		return PointerGetDatum(ret);
	}
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) && FlowRowRunning(rel, td->tg_trigtuple))
	{
		if (FlowRowRunning(rel, td->tg_newtuple))
			return PointerGetDatum(ret);
		FlowTaskFromTuple(rel, td->tg_trigtuple, &t);
		FlowRowStopped(&t);
		return PointerGetDatum(ret);
	}
	if (FlowRowRunning(rel, ret))
	{
		FlowTaskFromTuple(rel, ret, &t);
		FlowRowStarted(FlowRowId(rel, ret), &t);
	}
	return PointerGetDatum(ret);
}

/*
 * taskguard._flow_tokens(scope, name, value) RETURNS real: tokens left in the
 * bucket of limit (scope, name) for value, refilled to now; NULL without a
 * rate limit or shared memory.
 */
Datum
taskguard_flow_tokens(PG_FUNCTION_ARGS)
{
	char	   *scope = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	text	   *value = PG_GETARG_TEXT_PP(2);
	double		tokens = -1;

	FlowEnsureCache();
	if (flow_hash == NULL)
		PG_RETURN_NULL();
	for (int i = 0; i < flow_cache.nlimits; i++)
	{
		FlowLimit  *l = &flow_cache.limits[i];

		if (l->rate < 0 || strcmp(flow_scope_names[l->scope], scope) != 0 ||
			strcmp(l->name ? l->name : "*", name) != 0)
			continue;
		LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
		{
			FlowEntry  *b = FlowBucket(l, FlowHashValue(VARDATA_ANY(value),
														  VARSIZE_ANY_EXHDR(value)),
									   GetCurrentTimestamp(), false);

			tokens = b ? b->tokens : l->burst;
		}
		LWLockRelease(TgLock(TG_LOCK_FLOW));
	}
	if (tokens < 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT4((float4) tokens);
}

/* ---- fair share between tenants (stride scheduling) ---- */

/*
 * taskguard._flow_fair(queue text) RETURNS text: what claims share between,
 * 'tenant' or 'flow_key' (tenants first), or NULL: claim order as is.
 */
PG_FUNCTION_INFO_V1(taskguard_flow_fair);
Datum
taskguard_flow_fair(PG_FUNCTION_ARGS)
{
	FlowEnsureCache();
	if (flow_hash == NULL)
		PG_RETURN_NULL();
	if (flow_cache.fair[3])
		PG_RETURN_TEXT_P(cstring_to_text("tenant"));
	if (flow_cache.fair[4])
		PG_RETURN_TEXT_P(cstring_to_text("flow_key"));
	PG_RETURN_NULL();
}

/* A group's weight: its own row's of the scope, else the '*' row's, else 1. */
static double
FlowGroupWeight(int scope, const char *value)
{
	double		w = 1.0;

	for (int i = 0; i < flow_cache.nlimits; i++)
	{
		const FlowLimit *l = &flow_cache.limits[i];

		if (l->scope != scope)
			continue;
		if (l->name == NULL)
			w = l->weight;
		else if (value != NULL && strcmp(l->name, value) == 0)
			return l->weight;
	}
	return w;
}

static uint64
FlowFairHash(text *queue, int scope, const char *value)
{
	uint64		h = FlowHashValue(VARDATA_ANY(queue), VARSIZE_ANY_EXHDR(queue)) + scope;

	return value == NULL ? h ^ UINT64CONST(0x9e3779b97f4a7c15)
		: hash_bytes_extended((const unsigned char *) value, strlen(value), h);
}

static int
FlowScopeArg(FunctionCallInfo fcinfo, int argno)
{
	char	   *scope = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	int			s = FlowScopeIndex(scope);

	if (s != 3 && s != 4)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fair share is by tenant or flow_key, not \"%s\"", scope)));
	return s;
}

typedef struct FlowFairGroup
{
	char	   *tenant;			/* NULL: tasks without a tenant */
	double		pass;
} FlowFairGroup;

static int
FlowFairCompare(const void *a, const void *b)
{
	const FlowFairGroup *x = a;
	const FlowFairGroup *y = b;

	if (x->pass != y->pass)
		return x->pass < y->pass ? -1 : 1;
	if (x->tenant == NULL || y->tenant == NULL)
		return (x->tenant == NULL) - (y->tenant == NULL);
	return strcmp(x->tenant, y->tenant);
}

/*
 * taskguard._flow_fair_order(queue text, scope text, groups text[]) RETURNS
 * text[]: the tenants or flow keys (NULL: none) in the order a claim should
 * try them, lowest pass first.  A group new, or back after an idle spell,
 * starts at the lowest pass of those still active (its share, no catch-up).
 */
PG_FUNCTION_INFO_V1(taskguard_flow_fair_order);
Datum
taskguard_flow_fair_order(PG_FUNCTION_ARGS)
{
	text	   *queue = PG_GETARG_TEXT_PP(0);
	int			scope = FlowScopeArg(fcinfo, 1);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(2);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	FlowFairGroup *g;
	FlowEntry **e;
	double		vmin = -1;
	TimestampTz now = GetCurrentTimestamp();
	Datum	   *out;

	FlowEnsureCache();
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0 || flow_hash == NULL)
		PG_RETURN_ARRAYTYPE_P(arr);
	g = palloc(sizeof(FlowFairGroup) * n);
	e = palloc(sizeof(FlowEntry *) * n);
	LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		g[i].tenant = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
		e[i] = FlowEntryFor(FLOW_KIND_FAIR, FlowFairHash(queue, scope, g[i].tenant), true);
		if (e[i] != NULL && e[i]->tokens >= 0 && now - e[i]->refill_at < FLOW_FAIR_IDLE_US &&
			(vmin < 0 || e[i]->tokens < vmin))
			vmin = e[i]->tokens;
	}
	for (int i = 0; i < n; i++)
	{
		if (e[i] == NULL)
			g[i].pass = Max(vmin, 0);
		else
		{
			if (e[i]->tokens < 0 || now - e[i]->refill_at >= FLOW_FAIR_IDLE_US)
				e[i]->tokens = Max(Max(vmin, 0), e[i]->tokens);
			e[i]->refill_at = now;
			g[i].pass = e[i]->tokens;
		}
	}
	LWLockRelease(TgLock(TG_LOCK_FLOW));
	qsort(g, n, sizeof(FlowFairGroup), FlowFairCompare);
	out = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		out[i] = g[i].tenant ? CStringGetTextDatum(g[i].tenant) : (Datum) 0;
		nulls[i] = g[i].tenant == NULL;
	}
	{
		int			dims[1] = {n};
		int			lbs[1] = {1};

		PG_RETURN_ARRAYTYPE_P(construct_md_array(out, nulls, 1, dims, lbs, TEXTOID, -1, false,
												 TYPALIGN_INT));
	}
}

/* taskguard._flow_fair_charge(queue, scope, value): the group got a task. */
PG_FUNCTION_INFO_V1(taskguard_flow_fair_charge);
Datum
taskguard_flow_fair_charge(PG_FUNCTION_ARGS)
{
	text	   *queue = PG_GETARG_TEXT_PP(0);
	int			scope = FlowScopeArg(fcinfo, 1);
	char	   *value = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	FlowEntry  *e;

	FlowEnsureCache();
	if (flow_hash == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(TgLock(TG_LOCK_FLOW), LW_EXCLUSIVE);
	e = FlowEntryFor(FLOW_KIND_FAIR, FlowFairHash(queue, scope, value), true);
	if (e != NULL)
		e->tokens = Max(e->tokens, 0) + 1.0 / FlowGroupWeight(scope, value);
	LWLockRelease(TgLock(TG_LOCK_FLOW));
	PG_RETURN_VOID();
}
