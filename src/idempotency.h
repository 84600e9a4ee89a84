/*
 * idempotency.h — idempotency keys and per-task_name check counters (docs/reference.md#idempotency).
 */
#ifndef TASKGUARD_IDEMPOTENCY_H
#define TASKGUARD_IDEMPOTENCY_H

#include "postgres.h"

/* Longest task_name kept by a counter; longer names count under their prefix. */
#define COUNTER_NAME_MAX 200
#define COUNTER_TENANT_MAX 63

/* Longest key stored verbatim next to its digest. */
#define IDEM_KEY_STORE_MAX 1024

extern void CounterAdd(const char *tenant, int tenantlen, const char *name, int len,
					   int64 checks, int64 duplicates);

#endif
