/*
 * notify_throttle.c — the task queue's C side: the NOTIFY throttle.
 *
 * A notifying commit takes a cluster-wide lock, so enqueue() notifies a queue
 * at most once per taskguard.notify_interval.  A NOTIFY that the throttle
 * swallows is remembered as "pending" and sent by the next scheduler pass, so
 * no wake-up is lost for longer than one naptime.
 *
 * Shared state: a fixed table of slots indexed by the hash of (database, queue).
 * last_sent and pending are atomics (the hot path takes no lock); the name is
 * written under TG_LOCK_QUEUE when a slot changes owner.
 */
#include "postgres.h"

#include "commands/async.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "notify_throttle.h"
#include "taskguard.h"

#define QUEUE_SLOTS 256
/*
 * The payload is the queue name: up to 200 characters (enqueue's limit), so
 * up to 200 × MAX_MULTIBYTE_CHAR_LEN bytes.  A longer name is cut at a
 * character boundary, never inside a character (listeners decode it).
 */
#define QUEUE_NAME_CHARS 200
#define QUEUE_NAME_MAX (QUEUE_NAME_CHARS * MAX_MULTIBYTE_CHAR_LEN)

typedef struct QueueSlot
{
	pg_atomic_uint64 last_sent;		/* TimestampTz of the last NOTIFY */
	pg_atomic_uint32 pending;		/* a NOTIFY was swallowed */
	Oid			dbid;
	char		name[QUEUE_NAME_MAX + 1];
} QueueSlot;

static QueueSlot *queue_slots = NULL;

PG_FUNCTION_INFO_V1(taskguard_notify);
PG_FUNCTION_INFO_V1(taskguard_send_pending_notifies);

Size
QueueShmemSize(void)
{
	return mul_size(sizeof(QueueSlot), QUEUE_SLOTS);
}

void
QueueShmemInit(void)
{
	bool		found;

	queue_slots = ShmemInitStruct("taskguard queue slots", QueueShmemSize(), &found);
	if (!found)
	{
		for (int i = 0; i < QUEUE_SLOTS; i++)
		{
			pg_atomic_init_u64(&queue_slots[i].last_sent, 0);
			pg_atomic_init_u32(&queue_slots[i].pending, 0);
			queue_slots[i].dbid = InvalidOid;
			queue_slots[i].name[0] = '\0';
		}
	}
}

/* The slot of (MyDatabaseId, name), taking it over if another queue had it. */
static QueueSlot *
QueueSlotFor(const char *name, int len)
{
	uint32		h = hash_bytes((const unsigned char *) name, len) ^ MyDatabaseId;
	QueueSlot  *slot = &queue_slots[h % QUEUE_SLOTS];

	Assert(queue_slots != NULL && len >= 0);
	if (slot->dbid != MyDatabaseId || strncmp(slot->name, name, QUEUE_NAME_MAX) != 0)
	{
		LWLockAcquire(TgLock(TG_LOCK_QUEUE), LW_EXCLUSIVE);
		slot->dbid = MyDatabaseId;
		strlcpy(slot->name, name, Min(len, QUEUE_NAME_MAX) + 1);
		pg_atomic_write_u64(&slot->last_sent, 0);
		LWLockRelease(TgLock(TG_LOCK_QUEUE));
	}
	return slot;
}

/* True when this caller should send the NOTIFY now (and claims the slot). */
static bool
QueueThrottleAllows(QueueSlot *slot)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		last = pg_atomic_read_u64(&slot->last_sent);

	if (now - (TimestampTz) last < (TimestampTz) tg_notify_interval_ms * 1000)
		return false;
	return pg_atomic_compare_exchange_u64(&slot->last_sent, &last, (uint64) now);
}

/* Bytes of name that go into the payload: whole characters, at most QUEUE_NAME_MAX. */
static int
QueuePayloadLength(const char *name, int len)
{
	Assert(len >= 0);
	if (len <= QUEUE_NAME_MAX)
		return len;
	return pg_mbcliplen(name, len, QUEUE_NAME_MAX);
}

/*
 * taskguard._notify(queue text): NOTIFY taskguard, queue — throttled when
 * preloaded, direct otherwise.
 */
Datum
taskguard_notify(PG_FUNCTION_ARGS)
{
	text	   *queue;
	char	   *name;
	int			len;

	if (PG_ARGISNULL(0) || !tg_notify)
		PG_RETURN_VOID();
	queue = PG_GETARG_TEXT_PP(0);
	len = QueuePayloadLength(VARDATA_ANY(queue), VARSIZE_ANY_EXHDR(queue));
	name = pnstrdup(VARDATA_ANY(queue), len);

	if (queue_slots != NULL && tg_notify_interval_ms > 0)
	{
		QueueSlot  *slot = QueueSlotFor(name, len);

		if (!QueueThrottleAllows(slot))
		{
			pg_atomic_write_u32(&slot->pending, 1);
			PG_RETURN_VOID();
		}
	}
	Async_Notify("taskguard", name);
	PG_RETURN_VOID();
}

/* Send the NOTIFYs the throttle swallowed in this database; how many. */
int
QueueSendPendingNotifies(void)
{
	int			sent = 0;

	if (queue_slots == NULL)
		return 0;
	for (int i = 0; i < QUEUE_SLOTS; i++)
	{
		QueueSlot  *slot = &queue_slots[i];
		char		name[QUEUE_NAME_MAX + 1];

		if (slot->dbid != MyDatabaseId || pg_atomic_read_u32(&slot->pending) == 0 ||
			!QueueThrottleAllows(slot))
			continue;
		LWLockAcquire(TgLock(TG_LOCK_QUEUE), LW_SHARED);
		strlcpy(name, slot->name, sizeof(name));
		LWLockRelease(TgLock(TG_LOCK_QUEUE));
		pg_atomic_write_u32(&slot->pending, 0);
		Async_Notify("taskguard", name);
		sent++;
	}
	return sent;
}

/* taskguard._send_pending_notifies() RETURNS int */
Datum
taskguard_send_pending_notifies(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(QueueSendPendingNotifies());
}
