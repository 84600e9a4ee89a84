/*
 * breaker.c — circuit breakers in shared memory (SPEC §6).
 * Placeholder until the breaker capability lands: no shared state yet.
 */
#include "postgres.h"

#include "taskguard.h"

Size
BreakerShmemSize(void)
{
	return 0;
}

void
BreakerShmemInit(void)
{
}
