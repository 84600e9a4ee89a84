/*
 * schedule.h — SQL side of the cron parser and the schedule analysis
 * (SPEC §10).  The parser itself is cron_parse.h (pure C).
 */
#ifndef TASKGUARD_SCHEDULE_H
#define TASKGUARD_SCHEDULE_H

/* cron_occurrences() refuses to return more rows than this. */
#define SCHEDULE_MAX_OCCURRENCES 1000000

/* schedule_load() refuses more buckets than this (SPEC §10). */
#define SCHEDULE_MAX_BUCKETS 100000

#endif
