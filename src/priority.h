/*
 * priority.h — priority math (docs/reference.md#priority).
 */
#ifndef TASKGUARD_PRIORITY_H
#define TASKGUARD_PRIORITY_H

#define PRIO_LEVELS 5			/* DEFERRED, LOW, MEDIUM, HIGH, CRITICAL */
#define PRIO_SCORE_MAX 4.0

#endif
