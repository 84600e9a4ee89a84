/*
 * task_ring.c — which partition of taskguard.task a new row goes to.
 *
 * Why: a table updated in place grows while any session holds an old
 * snapshot, because vacuum may remove no row version written after it
 * (docs/storage.md).  taskguard.task is therefore a ring of four partitions,
 * LIST-partitioned by the column gen.  Time is cut into slots; a row is
 * inserted into the partition of the slot its transaction started in, and
 * the scheduler step rotate_tasks (taskguard._task_ring_rotate, 28_task_ring.sql)
 * empties the partition of the next slot before that slot begins: it moves
 * the rows still live to the current partition and TRUNCATEs the rest away,
 * which needs no vacuum and ignores snapshots.
 *
 * The slot is taskguard.task_ring_slot, but at least half of
 * taskguard.task_retention: the ring spans four slots, so a finished task is
 * kept its retention without being moved more than once or twice.
 */
#include "postgres.h"

#include "access/xact.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "taskguard.h"

#define TASK_RING_MIN_SLOT	USECS_PER_SEC
#define TASK_RING_MAX_SLOT	(366 * USECS_PER_DAY)

PG_FUNCTION_INFO_V1(taskguard_task_gen);
PG_FUNCTION_INFO_V1(taskguard_task_ring_slot);

/*
 * The slot length in microseconds.  The two settings are parsed again only
 * when their text changes (a reload), since every insert asks.
 */
static int64
TaskRingSlotUsecs(void)
{
	static char slot_text[256];
	static char retention_text[256];
	static int64 slot_usecs = 0;
	const char *slot = tg_task_ring_slot ? tg_task_ring_slot : "30 s";
	const char *retention = tg_task_retention ? tg_task_retention : "1 day";
	int64		s;
	int64		r;

	if (slot_usecs > 0 && strcmp(slot, slot_text) == 0 &&
		strcmp(retention, retention_text) == 0)
		return slot_usecs;

	s = TgIntervalUsecs(slot, 30 * USECS_PER_SEC);
	r = TgIntervalUsecs(retention, USECS_PER_DAY);
	if (r / 2 > s)
		s = r / 2;
	s = Max(s, TASK_RING_MIN_SLOT);
	s = Min(s, TASK_RING_MAX_SLOT);

	strlcpy(slot_text, slot, sizeof(slot_text));
	strlcpy(retention_text, retention, sizeof(retention_text));
	/* a setting longer than the buffer never matches: parsed each time */
	if (strlen(slot) >= sizeof(slot_text) || strlen(retention) >= sizeof(retention_text))
		return s;
	slot_usecs = s;
	return s;
}

/*
 * The partition of the slot the current transaction started in: the same
 * for every statement of a transaction.
 */
int
TaskRingCurrentGen(void)
{
	TimestampTz start = GetCurrentTransactionStartTimestamp();
	int64		slot = start / TaskRingSlotUsecs();
	int			gen = (int) (slot % TASK_RING_PARTITIONS);

	if (gen < 0)				/* a clock before 2000 */
		gen += TASK_RING_PARTITIONS;
	return gen;
}

/*
 * taskguard._task_gen() → int: the partition of the slot the current
 * transaction started in (the default of taskguard.task.gen).
 */
Datum
taskguard_task_gen(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(TaskRingCurrentGen());
}

/* taskguard._task_ring_slot() → interval: the slot length in force. */
Datum
taskguard_task_ring_slot(PG_FUNCTION_ARGS)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->time = TaskRingSlotUsecs();
	PG_RETURN_INTERVAL_P(result);
}
