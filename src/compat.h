/*
 * compat.h — what differs between the PostgreSQL majors taskguard builds on
 * (15 to 18; README "Supported PostgreSQL versions").  Every PG_VERSION_NUM
 * test of the project is here, so a source file includes this header after
 * postgres.h and reads the same on every version.
 *
 * Differences that need no guard, because the portable code is as good:
 *  - 16 removed the Abs() macro: cron_schedule.c uses abs() from the C library.
 *  - 16 made the regex library allocate with palloc in the current memory
 *    context (it used malloc): classify.c compiles cached rules with the
 *    cache's context current, which is right on every version.
 *  - 16 renamed the GUC force_parallel_mode to debug_parallel_query:
 *    sql/classify.sql sets whichever the server has.
 */
#ifndef TG_COMPAT_H
#define TG_COMPAT_H

#include "postgres.h"

/* 16 moved the varlena macros (VARDATA_ANY, VARSIZE_ANY_EXHDR, …) to varatt.h. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/*
 * A wait event for an extension's own waits.  17 lets an extension name it,
 * so pg_stat_activity shows the name instead of the generic "Extension".
 * Call it after shared memory is set up (in a worker's main, not _PG_init).
 */
#if PG_VERSION_NUM >= 170000
#include "utils/wait_event.h"
#define TgWaitEventExtension(name)	WaitEventExtensionNew(name)
#else
#define TgWaitEventExtension(name)	((uint32) PG_WAIT_EXTENSION)
#endif

#endif
