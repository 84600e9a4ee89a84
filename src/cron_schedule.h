/*
 * cron_schedule.h — SQL side of the cron parser and the schedule analysis
 * (docs/reference.md#schedule).  The parser itself is cron_parse.h (pure C).
 */
#ifndef TASKGUARD_CRON_SCHEDULE_H
#define TASKGUARD_CRON_SCHEDULE_H

/* cron_occurrences() refuses to return more rows than this. */
#define SCHEDULE_MAX_OCCURRENCES 1000000

/* schedule_load() refuses more buckets than this (docs/reference.md#schedule). */
#define SCHEDULE_MAX_BUCKETS 100000

#endif
