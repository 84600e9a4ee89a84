/*
 * queue.h — the queue's C helpers (NOTIFY throttle, flow control's wake-ups).
 */
#ifndef TASKGUARD_QUEUE_H
#define TASKGUARD_QUEUE_H

#include "storage/latch.h"
#include "utils/timestamp.h"

extern int	QueueSendPendingNotifies(void);

/* flow control's wake-ups (queue.c) */
extern int	QueueWakeSlot(const char *queue, int len);
extern bool QueueWakerServes(void);
extern void QueueFlowWaiting(int slot, TimestampTz token_due);
extern bool QueueFlowTakeWaiting(int slot);
extern void QueueFlowFreed(int slot, bool now);
extern void QueueFlowClaimed(int slot);
extern void QueueWakerRegister(Latch *latch);
extern long QueueWakerTimeout(long ms);
extern bool QueueWakerDue(void);
extern int	QueueSendWakes(void);
extern char *QueueSlotName(int slot);

#endif
