/*
 * cron_parse.h — the cron parser and evaluator (pure C, libc only).
 *
 * Parses pg_cron schedules (five fields, @ forms, 'N seconds') into bit sets
 * and finds the next occurrence after a time, in UTC, on epoch seconds.  No
 * backend headers: the unit test and the libFuzzer harness link it alone, and
 * cron_schedule.c turns its errors into ereport.
 */
#ifndef TASKGUARD_CRON_PARSE_H
#define TASKGUARD_CRON_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest expression accepted, in bytes (pg_cron's own buffer is 1000). */
#define CRON_MAX_LENGTH 1000

/* The characters that separate fields. */
#define CRON_BLANKS " \t\n\r\v\f"

/* A search for the next occurrence gives up after this many years. */
#define CRON_SEARCH_YEARS 400

/* Years past this are never produced (PostgreSQL's timestamps end in 294276). */
#define CRON_MAX_YEAR 294276

typedef struct CronSchedule
{
	uint64_t	minutes;		/* bit m: minute m, 0-59 */
	uint32_t	hours;			/* bit h: hour h, 0-23 */
	uint32_t	days;			/* bit d: day of month d, 1-31 */
	uint16_t	months;			/* bit m: month m, 1-12 */
	uint8_t		weekdays;		/* bit w: weekday w, 0 = Sunday .. 6 */
	bool		dom_star;		/* day-of-month field starts with '*' */
	bool		dow_star;		/* day-of-week field starts with '*' */
	int			seconds;		/* > 0: the 'N seconds' form, every N seconds */
	bool		reboot;			/* @reboot: valid, never a next occurrence */
} CronSchedule;

typedef struct CronError
{
	const char *field;			/* "minute", ..., "day of week", "seconds" or
								 * "expression" */
	char		message[300];	/* names the field and the offending text */
} CronError;

/*
 * Parse expr (len bytes, need not be NUL-terminated).  On failure returns
 * false and fills err (when not NULL).
 */
extern bool CronParse(const char *expr, size_t len, CronSchedule *sched, CronError *err);

/*
 * The first occurrence strictly after `after` (epoch seconds, UTC).  False
 * when there is none within CRON_SEARCH_YEARS or before CRON_MAX_YEAR.
 */
extern bool CronNextAfter(const CronSchedule *sched, int64_t after, int64_t *next);

/* Day count of a civil date since 1970-01-01 (proleptic Gregorian). */
extern int64_t CronDaysFromCivil(int64_t y, int m, int d);

/*
 * A valid schedule no date matches ("0 0 31 2 *"): pg_cron accepts it and
 * never runs it.  False for @reboot and the seconds form.
 */
extern bool CronNeverFires(const CronSchedule *sched);

/*
 * The canonical five fields of an @ form ("@daily" -> "0 0 * * *"), or NULL
 * when expr is not one.
 */
extern const char *CronCanonicalAt(const char *expr, size_t len);

#endif
