/*
 * notify_throttle.h — the queue's C helpers (NOTIFY throttle).
 */
#ifndef TASKGUARD_NOTIFY_THROTTLE_H
#define TASKGUARD_NOTIFY_THROTTLE_H

extern int	QueueSendPendingNotifies(void);

#endif
