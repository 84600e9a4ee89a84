/*
 * notify_throttle.h — the queue's NOTIFY throttle and flow control's wake-ups.
 */
#ifndef TASKGUARD_NOTIFY_THROTTLE_H
#define TASKGUARD_NOTIFY_THROTTLE_H

#include "storage/latch.h"
#include "utils/timestamp.h"

extern int	QueueSendPendingNotifies(void);

/* flow control's wake-ups (notify_throttle.c) */
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
