/*
 * idempotency.c — idempotency keys and per-task_name counters (SPEC §8).
 * Placeholder until the idempotency capability lands: no shared state yet.
 */
#include "postgres.h"

#include "taskguard.h"

Size
CounterShmemSize(void)
{
	return 0;
}

void
CounterShmemInit(void)
{
}
