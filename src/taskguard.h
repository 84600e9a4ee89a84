/*
 * taskguard.h — what the capability files share: GUC variables, the shared
 * memory registry and the "needs preloading" guard.
 */
#ifndef TASKGUARD_H
#define TASKGUARD_H

#include "postgres.h"

#include "utils/array.h"
#include "storage/lwlock.h"

/* GUCs (taskguard.c) */
extern char *tg_database;
extern int	tg_naptime_ms;
extern bool tg_notify;
extern int	tg_notify_interval_ms;
extern int	tg_max_breakers;
extern int	tg_breaker_tenant_share;
extern int	tg_max_counters;
extern int	tg_batch_size;
extern int	tg_worker_capacity;
extern char *tg_task_retention;
extern char *tg_task_ring_slot;
extern bool tg_task_ring_moving;
extern int64 TgIntervalUsecs(const char *text, int64 fallback);

/* The ring of partitions of taskguard.task (task_ring.c). */
#define TASK_RING_PARTITIONS 4
extern int	TaskRingCurrentGen(void);

/* Locks of our tranche, one per shared structure. */
typedef enum TgLockId
{
	TG_LOCK_QUEUE = 0,
	TG_LOCK_SCHEDULER,
	TG_LOCK_BREAKER,
	TG_LOCK_COUNTERS,
	TG_LOCK_CLAIM_MARK,
	TG_LOCK_FLOW,
	TG_LOCK_COUNT
} TgLockId;

extern bool tg_shmem_ready;
extern LWLock *TgLock(TgLockId id);
extern void TgRequireShmem(const char *what);

/* SPI_connect, checked the same way by every caller (taskguard.c). */
extern void TgSpiConnect(void);

/*
 * A backend's copy of configuration tables (taskguard.c), re-read after a
 * relcache invalidation of one of them; the tables' statement trigger
 * taskguard._config_changed() sends it when a change commits.  Use:
 *
 *     if (!TgConfigCacheCurrent(&c)) {
 *         uint64 gen = TgConfigCacheLoadBegin(&c);
 *         ... set c.relids, read the tables ...
 *         TgConfigCacheLoadEnd(&c, gen);
 *     }
 *
 * An invalidation of one of its tables that arrives while they are read (of
 * any table during the first read, when the relids are not known yet) leaves
 * the copy stale, so a change that commits during the read is seen by the
 * next call; changes committed before the read are taken in first.
 */
#define TG_CONFIG_CACHE_RELS 4

typedef struct TgConfigCache
{
	Oid			relids[TG_CONFIG_CACHE_RELS];	/* its tables (InvalidOid: unused) */
	uint64		generation;		/* bumped by each invalidation that concerns it */
	uint64		loaded;			/* generation the copy was read at; 0: none */
	bool		loading;		/* between LoadBegin and LoadEnd */
	struct TgConfigCache *next; /* registered caches */
} TgConfigCache;

extern bool TgConfigCacheCurrent(TgConfigCache *cache);
extern uint64 TgConfigCacheLoadBegin(TgConfigCache *cache);
extern void TgConfigCacheLoadEnd(TgConfigCache *cache, uint64 generation);
extern Datum TgConfigChangedTrigger(FunctionCallInfo fcinfo);

/* The user a backend acted as before TgActAsRelOwner(). */
typedef struct TgSavedUser
{
	Oid			userid;
	int			sec_context;
	int			guc_level;		/* GUC nest level of the pinned search_path */
} TgSavedUser;

/* What every statement run with more rights than its caller resolves names in. */
#define TG_PINNED_SEARCH_PATH "pg_catalog, taskguard, pg_temp"

extern void TgActAsRelOwner(Oid relid, TgSavedUser *saved);
extern void TgRestoreUser(const TgSavedUser *saved);

/* tenant.c: the caller's tenants (NULL: not bound; the cache, copy to keep), its first ('' for none). */
extern ArrayType *TenantScopeOfCaller(void);
extern const char *TenantFirstOfCaller(void);

/* Each capability that keeps shared state provides a size and an init. */
extern Size QueueShmemSize(void);
extern void QueueShmemInit(void);
extern Size SchedulerShmemSize(void);
extern void SchedulerShmemInit(void);
extern Size BreakerShmemSize(void);
extern void BreakerShmemInit(void);
extern Size CounterShmemSize(void);
extern void CounterShmemInit(void);
extern Size ClaimMarkShmemSize(void);
extern void ClaimMarkShmemInit(void);
extern Size FlowShmemSize(void);
extern void FlowShmemInit(void);

/* background_worker.c */
extern void SchedulerRegisterLauncher(void);
extern void SchedulerDefineGucs(void);

#endif
