/*
 * lease.c — where the lease reaper starts looking.
 *
 * The reaper scans task_lease_idx for running tasks whose lease ran out
 * (lease_expires_at < now()).  Each completed task leaves the entry of its
 * running version behind until vacuum removes it, and while another session
 * holds an old snapshot vacuum may not: a scan from the oldest expiry then
 * visits every task completed since, every pass.  So a pass looks only at
 * leases that ran out in the last REAP_WINDOW; leases older than that were
 * reaped by earlier passes.  A full scan from the oldest expiry runs when
 * this process has not finished one for REAP_FULL_EVERY: the first pass of a
 * scheduler (or of any session calling tick()), and the bound for a lease
 * that expired before its claim committed (a claim transaction that lasted
 * longer than its lease plus the window) or that no pass saw.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#define REAP_WINDOW_US (2 * 60 * USECS_PER_SEC)
#define REAP_FULL_EVERY_US (10 * 60 * USECS_PER_SEC)

static TimestampTz last_full_reap = 0;	/* per process: 0 = never */

PG_FUNCTION_INFO_V1(taskguard_reap_since);
PG_FUNCTION_INFO_V1(taskguard_reap_full_done);

/*
 * taskguard._reap_since() RETURNS timestamptz: the oldest expiry this pass
 * must look at; -infinity when a full scan is due.
 */
Datum
taskguard_reap_since(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz since;

	if (last_full_reap == 0 || now - last_full_reap >= REAP_FULL_EVERY_US)
		TIMESTAMP_NOBEGIN(since);
	else
		since = now - REAP_WINDOW_US;
	PG_RETURN_TIMESTAMPTZ(since);
}

/* taskguard._reap_full_done(): a scan from -infinity found no more expired leases. */
Datum
taskguard_reap_full_done(PG_FUNCTION_ARGS)
{
	last_full_reap = GetCurrentTransactionStartTimestamp();
	PG_RETURN_VOID();
}
