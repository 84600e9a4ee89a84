/*
 * queue.h — the queue's C helpers (NOTIFY throttle).
 */
#ifndef TASKGUARD_QUEUE_H
#define TASKGUARD_QUEUE_H

extern int	QueueSendPendingNotifies(void);

#endif
