/*
 * scheduler.c — the background worker (SPEC §9).  Placeholder.
 */
#include "postgres.h"

#include "taskguard.h"

Size
SchedulerShmemSize(void)
{
	return 0;
}

void
SchedulerShmemInit(void)
{
}

void
SchedulerRegisterLauncher(void)
{
}
