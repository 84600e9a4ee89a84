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
	/* flow control's wake-ups (docs/flow.md "Waking the workers a limit holds back") */
	pg_atomic_uint32 waiting;		/* a claim came back short because of a limit */
	pg_atomic_uint32 freed;			/* slots freed for waiters, not yet claimed again */
	pg_atomic_uint64 wake_at;		/* the scheduler notifies then if freed > 0 (0: none) */
	pg_atomic_uint64 token_due;		/* the scheduler notifies then: a refused token is back */
	Oid			dbid;
	char		name[QUEUE_NAME_MAX + 1];
} QueueSlot;

/* The scheduler that sends flow control's deferred wake-ups, and when it wakes next. */
typedef struct QueueWaker
{
	Latch	   *latch;			/* NULL: no scheduler running */
	Oid			dbid;			/* the database it serves */
	pg_atomic_uint64 next_wake; /* earliest wake_at/token_due it knows of (0: none) */
} QueueWaker;

static QueueSlot *queue_slots = NULL;
static QueueWaker *queue_waker = NULL;

PG_FUNCTION_INFO_V1(taskguard_notify);
PG_FUNCTION_INFO_V1(taskguard_send_pending_notifies);

Size
QueueShmemSize(void)
{
	return add_size(mul_size(sizeof(QueueSlot), QUEUE_SLOTS), MAXALIGN(sizeof(QueueWaker)));
}

void
QueueShmemInit(void)
{
	bool		found;

	queue_slots = ShmemInitStruct("taskguard queue slots", QueueShmemSize(), &found);
	queue_waker = (QueueWaker *) ((char *) queue_slots +
								  MAXALIGN(mul_size(sizeof(QueueSlot), QUEUE_SLOTS)));
	if (!found)
	{
		queue_waker->latch = NULL;
		queue_waker->dbid = InvalidOid;
		pg_atomic_init_u64(&queue_waker->next_wake, 0);
		for (int i = 0; i < QUEUE_SLOTS; i++)
		{
			pg_atomic_init_u64(&queue_slots[i].last_sent, 0);
			pg_atomic_init_u32(&queue_slots[i].pending, 0);
			pg_atomic_init_u32(&queue_slots[i].waiting, 0);
			pg_atomic_init_u32(&queue_slots[i].freed, 0);
			pg_atomic_init_u64(&queue_slots[i].wake_at, 0);
			pg_atomic_init_u64(&queue_slots[i].token_due, 0);
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
		pg_atomic_write_u32(&slot->waiting, 0);
		pg_atomic_write_u32(&slot->freed, 0);
		pg_atomic_write_u64(&slot->wake_at, 0);
		pg_atomic_write_u64(&slot->token_due, 0);
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

/*
 * ---- flow control's wake-ups (docs/flow.md "Waking the workers a limit
 * holds back") ----
 *
 * A claim that a limit refuses marks its queue "waiting" (under
 * TG_LOCK_FLOW, as the count-down of a freed slot is, so no wake-up is lost
 * between the two).  When a running task of a waiting queue ends:
 *  - in the scheduler's database, its commit counts the slot as "freed" and
 *    asks the scheduler to look again QUEUE_FREED_GRACE_US later; a claim of
 *    the queue in between (usually the worker that just finished, claiming
 *    its next task) takes the slot back, and only a slot still free by then
 *    costs a NOTIFY — one wake-up per slot that needs one, not one per task;
 *  - elsewhere (no scheduler to defer to), the task's trigger sends the
 *    NOTIFY at commit.
 * A token bucket that refuses a claim records when its next token is due;
 * the scheduler notifies the queue then, so rate-limited workers sleep on
 * LISTEN instead of polling.
 */
#define QUEUE_FREED_GRACE_US 15000

/* The slot index of a queue for the wake-ups; -1 without shared memory. */
int
QueueWakeSlot(const char *queue, int len)
{
	char	   *name;

	if (queue_slots == NULL || queue == NULL)
		return -1;
	len = QueuePayloadLength(queue, len);
	name = pnstrdup(queue, len);
	return (int) (QueueSlotFor(name, len) - queue_slots);
}

/* Does a running scheduler send this database's deferred wake-ups? */
bool
QueueWakerServes(void)
{
	return queue_waker != NULL && queue_waker->latch != NULL &&
		queue_waker->dbid == MyDatabaseId;
}

/* Lower an atomic timestamp to t (0 counts as "none"); true if it moved. */
static bool
QueueLowerTime(pg_atomic_uint64 *at, TimestampTz t)
{
	uint64		old = pg_atomic_read_u64(at);

	while (old == 0 || (TimestampTz) old > t)
		if (pg_atomic_compare_exchange_u64(at, &old, (uint64) t))
			return true;
	return false;
}

/* The scheduler should look at the slots at t: wake it if it sleeps longer. */
static void
QueueWakerAt(TimestampTz t)
{
	Latch	   *latch;

	if (queue_waker == NULL || !QueueLowerTime(&queue_waker->next_wake, t))
		return;
	latch = queue_waker->latch;
	if (latch != NULL)
		SetLatch(latch);
}

/* A claim of the queue was refused by a limit; token_due: its next token (0: a cap). */
void
QueueFlowWaiting(int slot, TimestampTz token_due)
{
	if (slot < 0)
		return;
	pg_atomic_write_u32(&queue_slots[slot].waiting, 1);
	if (token_due > 0 && QueueWakerServes() &&
		QueueLowerTime(&queue_slots[slot].token_due, token_due))
		QueueWakerAt(token_due);
}

/* Was the queue waiting?  Clears it (the caller notifies at once). */
bool
QueueFlowTakeWaiting(int slot)
{
	return slot >= 0 && pg_atomic_exchange_u32(&queue_slots[slot].waiting, 0) != 0;
}

/*
 * A running task of the queue ended (committed): a slot for a waiter, if any.
 * now: the session that freed it still holds tasks (the rest of its batch), so
 * it will not claim again soon: no grace.
 */
void
QueueFlowFreed(int slot, bool now)
{
	QueueSlot  *s;
	TimestampTz at;

	if (slot < 0 || !QueueWakerServes())
		return;
	s = &queue_slots[slot];
	if (pg_atomic_read_u32(&s->waiting) == 0)
		return;
	pg_atomic_fetch_add_u32(&s->freed, 1);
	at = GetCurrentTimestamp() + (now ? 0 : QUEUE_FREED_GRACE_US);
	QueueLowerTime(&s->wake_at, at);
	QueueWakerAt(at);
}

/* A task of the queue started: it took a freed slot, if one was counted. */
void
QueueFlowClaimed(int slot)
{
	uint32		old;

	if (slot < 0)
		return;
	old = pg_atomic_read_u32(&queue_slots[slot].freed);
	while (old > 0 &&
		   !pg_atomic_compare_exchange_u32(&queue_slots[slot].freed, &old, old - 1))
		;
}

/* The scheduler: serve this database's wake-ups (NULL latch: stop). */
void
QueueWakerRegister(Latch *latch)
{
	if (queue_waker == NULL)
		return;
	LWLockAcquire(TgLock(TG_LOCK_QUEUE), LW_EXCLUSIVE);
	queue_waker->dbid = latch ? MyDatabaseId : InvalidOid;
	queue_waker->latch = latch;
	LWLockRelease(TgLock(TG_LOCK_QUEUE));
}

/* The scheduler: how long to sleep, at most ms, before a wake-up is due. */
long
QueueWakerTimeout(long ms)
{
	uint64		next;
	TimestampTz now;

	if (queue_waker == NULL || (next = pg_atomic_read_u64(&queue_waker->next_wake)) == 0)
		return ms;
	now = GetCurrentTimestamp();
	if ((TimestampTz) next <= now)
		return Min(ms, 1);		/* due: SendDueWakes runs after the wait */
	return Min(ms, (long) (((TimestampTz) next - now + 999) / 1000));
}

/* The scheduler: is a wake-up due? */
bool
QueueWakerDue(void)
{
	uint64		next;

	return queue_waker != NULL &&
		(next = pg_atomic_read_u64(&queue_waker->next_wake)) != 0 &&
		(TimestampTz) next <= GetCurrentTimestamp();
}

/* One due time of a slot: true (and cleared) if it is due; else lowers *next. */
static bool
QueueDue(pg_atomic_uint64 *at, TimestampTz now, TimestampTz *next)
{
	uint64		t = pg_atomic_read_u64(at);

	if (t == 0)
		return false;
	if ((TimestampTz) t <= now)
		return pg_atomic_compare_exchange_u64(at, &t, 0);
	if (*next == 0 || (TimestampTz) t < *next)
		*next = (TimestampTz) t;
	return false;
}

/*
 * The scheduler, in a transaction: NOTIFY the queues whose freed slot nobody
 * took back within the grace, or whose refused token is back; how many.
 */
int
QueueSendWakes(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	int			sent = 0;

	if (queue_slots == NULL)
		return 0;
	pg_atomic_write_u64(&queue_waker->next_wake, 0);
	for (int i = 0; i < QUEUE_SLOTS; i++)
	{
		QueueSlot  *slot = &queue_slots[i];
		bool		wake = false;
		char		name[QUEUE_NAME_MAX + 1];

		if (slot->dbid != MyDatabaseId)
			continue;
		if (QueueDue(&slot->wake_at, now, &next))
			wake = pg_atomic_exchange_u32(&slot->freed, 0) > 0;
		if (QueueDue(&slot->token_due, now, &next))
			wake = true;
		if (!wake)
			continue;
		pg_atomic_write_u32(&slot->waiting, 0);
		LWLockAcquire(TgLock(TG_LOCK_QUEUE), LW_SHARED);
		strlcpy(name, slot->name, sizeof(name));
		LWLockRelease(TgLock(TG_LOCK_QUEUE));
		Async_Notify("taskguard", name);
		sent++;
	}
	if (next != 0)
		QueueWakerAt(next);
	return sent;
}

/* The queue name a wake-up slot holds (the NOTIFY payload), in palloc'd memory. */
char *
QueueSlotName(int slot)
{
	char	   *name;

	Assert(slot >= 0 && slot < QUEUE_SLOTS);
	LWLockAcquire(TgLock(TG_LOCK_QUEUE), LW_SHARED);
	name = pstrdup(queue_slots[slot].name);
	LWLockRelease(TgLock(TG_LOCK_QUEUE));
	return name;
}
