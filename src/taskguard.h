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

/* scheduler.c */
extern void SchedulerRegisterLauncher(void);
extern void SchedulerDefineGucs(void);

#endif
