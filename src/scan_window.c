/*
 * scan_window.c — where a scheduler step's scan starts.
 *
 * The lease reaper scans task_lease_idx from the oldest expiry, and task
 * pruning scans task_finished_idx from the oldest finish.  Each task leaves
 * entries there that vacuum removes later (the running version of a
 * completed task, a pruned task), and while another session holds an old
 * snapshot vacuum may not: a scan from the oldest entry then visits every
 * task completed or pruned since, every pass.  So a pass looks only at the
 * recent part of the range (the caller says where it starts); older entries
 * were handled by earlier passes.  A full scan runs when this process has not
 * finished one for that step for FULL_SCAN_EVERY: the first pass of a
 * scheduler (or of any session calling tick()), and the bound for an entry
 * no windowed pass saw (one committed long after the time it carries: a
 * claim transaction that lasted longer than its lease plus the window).
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define FULL_SCAN_EVERY_US (10 * 60 * USECS_PER_SEC)
#define SCAN_STEPS_MAX 8
#define SCAN_STEP_NAME 32

typedef struct ScanStep
{
	char		name[SCAN_STEP_NAME];
	TimestampTz last_full;		/* 0: never in this process */
} ScanStep;

static ScanStep scan_steps[SCAN_STEPS_MAX];
static int	nscan_steps = 0;

PG_FUNCTION_INFO_V1(taskguard_scan_since);
PG_FUNCTION_INFO_V1(taskguard_scan_full_done);

/* The entry of a step (NULL: unknown name, or no room: always scan in full). */
static ScanStep *
ScanStepFor(text *step, bool create)
{
	char	   *name = text_to_cstring(step);

	for (int i = 0; i < nscan_steps; i++)
		if (strcmp(scan_steps[i].name, name) == 0)
			return &scan_steps[i];
	if (!create || nscan_steps == SCAN_STEPS_MAX || strlen(name) >= SCAN_STEP_NAME)
		return NULL;
	strlcpy(scan_steps[nscan_steps].name, name, SCAN_STEP_NAME);
	scan_steps[nscan_steps].last_full = 0;
	return &scan_steps[nscan_steps++];
}

/*
 * taskguard._scan_since(step text, recent timestamptz) RETURNS timestamptz:
 * `recent` while this process finished a full scan of the step lately,
 * -infinity when a full scan is due.
 */
Datum
taskguard_scan_since(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	ScanStep   *s;
	TimestampTz since;

	TIMESTAMP_NOBEGIN(since);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_TIMESTAMPTZ(since);
	s = ScanStepFor(PG_GETARG_TEXT_PP(0), false);
	if (s != NULL && s->last_full != 0 && now - s->last_full < FULL_SCAN_EVERY_US)
		since = PG_GETARG_TIMESTAMPTZ(1);
	PG_RETURN_TIMESTAMPTZ(since);
}

/* taskguard._scan_full_done(step text): a scan from -infinity found the step's work done. */
Datum
taskguard_scan_full_done(PG_FUNCTION_ARGS)
{
	ScanStep   *s;

	if (PG_ARGISNULL(0))
		PG_RETURN_VOID();
	s = ScanStepFor(PG_GETARG_TEXT_PP(0), true);
	if (s != NULL)
		s->last_full = GetCurrentTransactionStartTimestamp();
	PG_RETURN_VOID();
}
