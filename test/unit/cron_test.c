/*
 * cron_test.c — plain C tests of the cron parser and evaluator.
 * Known answers were cross-checked with an independent brute-force
 * evaluator (minute by minute over Python's datetime).
 */
/* link: src/cron_parse.c */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron_parse.h"

static int	n_tests = 0;
static int	n_failed = 0;

static void
ok(int cond, const char *what, const char *detail)
{
	n_tests++;
	if (cond)
		printf("ok %d - %s\n", n_tests, what);
	else
	{
		printf("not ok %d - %s\n#   %s\n", n_tests, what, detail ? detail : "");
		n_failed++;
	}
}

/* "YYYY-MM-DD HH:MM:SS" (UTC) to epoch seconds. */
static int64_t
Epoch(const char *s)
{
	int			y, mo, d, h, mi, se;

	if (sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6)
		abort();
	return CronDaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

static void
Format(int64_t t, char *buf, size_t size)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static const struct
{
	const char *expr;
	const char *after;
	const char *next;
}			next_cases[] = {
	{"* * * * *", "2026-01-01 00:00:00", "2026-01-01 00:01:00"},
	{"* * * * *", "2026-01-01 00:00:30", "2026-01-01 00:01:00"},
	{"*/15 * * * *", "2026-03-10 10:07:00", "2026-03-10 10:15:00"},
	{"*/15 * * * *", "2026-03-10 10:45:00", "2026-03-10 11:00:00"},
	{"5-20/5 * * * *", "2026-03-10 10:20:00", "2026-03-10 11:05:00"},
	{"0,30 * * * *", "2026-03-10 10:00:00", "2026-03-10 10:30:00"},
	{"1-5 * * * *", "2026-03-10 10:05:00", "2026-03-10 11:01:00"},
	{"0 */6 * * *", "2026-03-10 19:00:00", "2026-03-11 00:00:00"},
	{"30 9-17 * * *", "2026-03-10 17:30:00", "2026-03-11 09:30:00"},
	{"0 9 * * mon-fri", "2026-03-13 10:00:00", "2026-03-16 09:00:00"},
	{"0 9 * * MON", "2026-03-13 10:00:00", "2026-03-16 09:00:00"},
	{"0 9 * * Sun", "2026-03-13 10:00:00", "2026-03-15 09:00:00"},
	{"0 9 * * 0", "2026-03-13 10:00:00", "2026-03-15 09:00:00"},
	{"0 9 * * 7", "2026-03-13 10:00:00", "2026-03-15 09:00:00"},
	{"0 12 * * 7", "2026-03-15 12:00:00", "2026-03-22 12:00:00"},
	{"0 0 * * 1-5", "2026-01-02 12:00:00", "2026-01-05 00:00:00"},
	{"0 0 * * */2", "2026-01-01 00:00:00", "2026-01-03 00:00:00"},
	{"0 0 1 * *", "2026-01-31 00:00:00", "2026-02-01 00:00:00"},
	{"0 0 31 * *", "2026-01-31 00:00:00", "2026-03-31 00:00:00"},
	{"0 0 31 */2 *", "2026-07-31 00:00:00", "2027-01-31 00:00:00"},
	{"0 0 1,15 * *", "2026-01-15 00:00:00", "2026-02-01 00:00:00"},
	{"0 0 28-31 2 *", "2026-02-28 00:00:00", "2027-02-28 00:00:00"},
	{"0 0 29 2 *", "2026-01-01 00:00:00", "2028-02-29 00:00:00"},
	{"0 0 29 2 *", "2000-01-01 00:00:00", "2000-02-29 00:00:00"},
	{"0 0 29 2 *", "2096-03-01 00:00:00", "2104-02-29 00:00:00"},
	{"0 0 30 2 1", "2026-01-01 00:00:00", "2026-02-02 00:00:00"},
	{"0 0 29 2 1", "2028-02-27 00:00:00", "2028-02-28 00:00:00"},
	{"0 0 13 * 5", "2026-01-01 00:00:00", "2026-01-02 00:00:00"},
	{"0 0 */2 * 2", "2026-01-01 00:00:00", "2026-01-13 00:00:00"},
	{"0 0 1 * sat", "2026-01-01 00:00:00", "2026-01-03 00:00:00"},
	{"0 0 * jan,jul *", "2026-02-01 00:00:00", "2026-07-01 00:00:00"},
	{"0 12 1 JUN-aug *", "2026-08-02 00:00:00", "2027-06-01 12:00:00"},
	{"59 23 31 12 *", "2026-12-31 23:59:00", "2027-12-31 23:59:00"},
	{"0 0 1 1 *", "2026-01-01 00:00:00", "2027-01-01 00:00:00"},
	{"@hourly", "2026-03-10 10:59:59", "2026-03-10 11:00:00"},
	{"@daily", "2026-12-31 12:00:00", "2027-01-01 00:00:00"},
	{"@midnight", "2026-12-31 12:00:00", "2027-01-01 00:00:00"},
	{"@weekly", "2026-01-01 00:00:00", "2026-01-04 00:00:00"},
	{"@monthly", "2026-12-15 00:00:00", "2027-01-01 00:00:00"},
	{"@yearly", "2026-06-01 00:00:00", "2027-01-01 00:00:00"},
	{"@annually", "2026-06-01 00:00:00", "2027-01-01 00:00:00"},
	{"30 seconds", "2026-01-01 00:00:10", "2026-01-01 00:00:30"},
	{"30 seconds", "2026-01-01 00:00:30", "2026-01-01 00:01:00"},
	{"7 seconds", "2026-01-01 00:00:00", "2026-01-01 00:00:07"},
	{"1 second", "2026-01-01 00:00:00", "2026-01-01 00:00:01"},
	{" 0  12 * * * ", "2026-01-01 12:00:00", "2026-01-02 12:00:00"},
	{"0 0 * * *", "1999-12-31 23:59:59", "2000-01-01 00:00:00"}
};

static const struct
{
	const char *expr;
	const char *field;			/* the field the error must name */
	const char *text;			/* text the message must contain */
}			bad_cases[] = {
	{"", "expression", "is empty"},
	{"   \t ", "expression", "is empty"},
	{"* * * *", "expression", "expected 5 fields, found 4"},
	{"* * * * * *", "expression", "expected 5 fields, found 6"},
	{"60 * * * *", "minute", "minute field \"60\": 60 is out of range 0-59"},
	{"* 24 * * *", "hour", "24 is out of range 0-23"},
	{"* * 0 * *", "day of month", "0 is out of range 1-31"},
	{"* * 32 * *", "day of month", "32 is out of range"},
	{"* * * 13 *", "month", "13 is out of range 1-12"},
	{"* * * 0 *", "month", "0 is out of range"},
	{"* * * * 8", "day of week", "8 is out of range 0-7"},
	{"10-5 * * * *", "minute", "range 10-5 is reversed"},
	{"* * * * fri-mon", "day of week", "range 5-1 is reversed"},
	{"*/0 * * * *", "minute", "a step must be at least 1"},
	{"*/ * * * *", "minute", "a step must be a number"},
	{"5/15 * * * *", "minute", "a step needs a range"},
	{"a * * * *", "minute", "names are not allowed"},
	{"jan * * * *", "minute", "names are not allowed"},
	{"* * * foo *", "month", "month field \"foo\": unknown name"},
	{"* * * * monday", "day of week", "unknown name"},
	{"* * * * mon-", "day of week", "a value is missing"},
	{",5 * * * *", "minute", "empty list element"},
	{"5,,6 * * * *", "minute", "empty list element"},
	{"5, * * * *", "minute", "empty list element"},
	{"-5 * * * *", "minute", "unexpected character '-'"},
	{"1.5 * * * *", "minute", "unexpected character '.'"},
	{"99999999999 * * * *", "minute", "out of range"},
	{"@foo", "expression", "unknown @ form"},
	{"@", "expression", "unknown @ form"},
	{"@daily extra", "expression", "unexpected text after"},
	{"@DAILY", "expression", "unknown @ form"},
	{"@Reboot", "expression", "unknown @ form"},
	{"60 seconds", "seconds", "1-59"},
	{"0 seconds", "seconds", "1-59"},
	{"5 minutes", "expression", "expected 5 fields, found 2"},
	{"* * * * *\x01", "day of week", "unexpected character '?'"},
};

/* Every occurrence cron_next finds must be later and, for minute forms, on a minute. */
static void
TestProperties(void)
{
	const char *exprs[] = {"*/7 3-20/3 */2 * 1-5", "0 0 29 2 *", "15 10 L 1 *", "0 12 * * 0"};
	char		msg[200];

	for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++)
	{
		CronSchedule s;
		int64_t		t = Epoch("1999-12-31 23:59:59"),
					n;
		int			good = 1;

		if (!CronParse(exprs[i], strlen(exprs[i]), &s, NULL))
			continue;			/* the third one is refused on purpose */
		for (int k = 0; k < 500 && good; k++)
		{
			if (!CronNextAfter(&s, t, &n) || n <= t || n % 60 != 0)
				good = 0;
			t = n;
		}
		snprintf(msg, sizeof(msg), "500 successive occurrences of '%s' increase", exprs[i]);
		ok(good, msg, NULL);
	}
}

static void
TestLimits(void)
{
	CronSchedule s;
	CronError	err;
	char	   *big = malloc(CRON_MAX_LENGTH + 2);
	int64_t		n;

	memset(big, ' ', CRON_MAX_LENGTH + 1);
	memcpy(big, "* * * * *", 9);
	ok(!CronParse(big, CRON_MAX_LENGTH + 1, &s, &err) && strstr(err.message, "too long"),
	   "an expression over 1000 bytes is refused", err.message);
	ok(CronParse(big, CRON_MAX_LENGTH, &s, &err), "1000 bytes (padded) are accepted", err.message);
	free(big);
	CronParse("* * * * *", 9, &s, NULL);
	ok(!CronNextAfter(&s, INT64_MAX, &n), "no occurrence after the end of time", NULL);
	ok(!CronNextAfter(&s, INT64_MIN, &n), "no occurrence from before the start of time", NULL);
	ok(!CronNextAfter(&s, Epoch("294276-12-31 23:59:00"), &n), "nothing past year 294276", NULL);
	ok(CronNextAfter(&s, Epoch("-4000-01-01 00:00:00"), &n) && n == Epoch("-4000-01-01 00:01:00"),
	   "years BC work (proleptic Gregorian)", NULL);
	ok(CronParse("0 0 * * *", 9, &s, NULL) && s.dom_star && s.dow_star,
	   "a field starting with * is unrestricted", NULL);
	ok(CronParse("0 0 */2 * 1", 11, &s, NULL) && s.dom_star && !s.dow_star, "*/2 counts as a star", NULL);
	ok(strcmp(CronCanonicalAt(" @weekly ", 9), "0 0 * * 0") == 0, "@weekly canonical form", NULL);
	ok(CronCanonicalAt("@Weekly", 7) == NULL, "@ forms are lower case, as in pg_cron", NULL);
	ok(CronCanonicalAt("0 * * * *", 9) == NULL, "no canonical form for five fields", NULL);
}

/*
 * Schedules pg_cron accepts but that never fire are valid, and
 * CronNeverFires() says so; @reboot is valid with no next occurrence.
 */
static void
TestNeverFires(void)
{
	const char *never[] = {"0 0 30 2 *", "0 0 31 2 *", "0 0 31 4 *", "0 0 31 2,4,6 *",
	"0 0 30,31 feb *"};
	const char *fires[] = {"0 0 29 2 *", "0 0 30 2 1", "0 0 31 * *", "* * * * *",
	"30 seconds", "@monthly"};
	char		msg[200];
	CronSchedule s;
	CronError	err = {0};
	int64_t		n;

	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
	{
		int			parsed = CronParse(never[i], strlen(never[i]), &s, &err);

		snprintf(msg, sizeof(msg), "'%s' is valid, never fires, has no next occurrence", never[i]);
		ok(parsed && CronNeverFires(&s) && !CronNextAfter(&s, Epoch("2026-01-01 00:00:00"), &n),
		   msg, parsed ? NULL : err.message);
	}
	for (size_t i = 0; i < sizeof(fires) / sizeof(fires[0]); i++)
	{
		snprintf(msg, sizeof(msg), "'%s' fires", fires[i]);
		ok(CronParse(fires[i], strlen(fires[i]), &s, NULL) && !CronNeverFires(&s), msg, NULL);
	}
	ok(CronParse(" @reboot ", 9, &s, &err) && s.reboot && !CronNeverFires(&s) &&
	   !CronNextAfter(&s, Epoch("2026-01-01 00:00:00"), &n),
	   "@reboot is valid and has no next occurrence", err.message);
}

int
main(void)
{
	char		msg[400],
				got[320];

	for (size_t i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++)
	{
		CronSchedule s;
		CronError	err;
		int64_t		n = 0;
		int			parsed = CronParse(next_cases[i].expr, strlen(next_cases[i].expr), &s, &err);
		int			found = parsed && CronNextAfter(&s, Epoch(next_cases[i].after), &n);

		if (found)
			Format(n, got, sizeof(got));
		else
			snprintf(got, sizeof(got), "%s", parsed ? "none" : err.message);
		snprintf(msg, sizeof(msg), "'%s' after %s is %s", next_cases[i].expr,
				 next_cases[i].after, next_cases[i].next);
		ok(found && strcmp(got, next_cases[i].next) == 0, msg, got);
	}
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
	{
		CronSchedule s;
		CronError	err = {0};
		int			parsed = CronParse(bad_cases[i].expr, strlen(bad_cases[i].expr), &s, &err);

		snprintf(msg, sizeof(msg), "'%s' refused, naming the %s field", bad_cases[i].expr,
				 bad_cases[i].field);
		ok(!parsed && err.field && strcmp(err.field, bad_cases[i].field) == 0 &&
		   strstr(err.message, bad_cases[i].text) != NULL, msg, err.message);
	}
	TestProperties();
	TestLimits();
	TestNeverFires();
	printf("1..%d\n", n_tests);
	return n_failed == 0 ? 0 : 1;
}
