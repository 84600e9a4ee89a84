/*
 * cron_parse.c — the cron parser and evaluator (pure C, libc only).
 *
 * Grammar (pg_cron's, which is Vixie cron's, made stricter where Vixie cron
 * silently accepts nonsense):
 *   expression = "@" word | N "second(s)" | field{5}, separated by blanks
 *   field      = item {"," item}
 *   item       = "*" ["/" step] | value ["-" value ["/" step]]
 *   value      = number | name (months jan..dec, weekdays sun..sat, any case)
 * Day of week 7 is Sunday, like 0.  A step needs a range or "*" ("5/15" is
 * refused, as pg_cron refuses it); reversed ranges ("10-5") are refused.
 *
 * The @ forms are lower case, as pg_cron compares them with strcmp; @reboot
 * is valid (pg_cron accepts it) and has no next occurrence.
 *
 * Day matching follows Vixie cron and pg_cron: when the day-of-month or the
 * day-of-week field starts with '*', a day must match both fields; otherwise
 * it matches when either does.  Under the OR rule every schedule fires (every
 * month has every weekday); under the AND rule a schedule fires when some
 * selected month has some selected day, 29 February included (its weekday
 * cycles through all seven over the years).  A schedule that never fires
 * ("0 0 31 2 *") is valid, as pg_cron accepts it: CronNeverFires() tells, and
 * the analysis reports it instead of the parser refusing it.
 *
 * Times are epoch seconds in UTC, converted with days-from-civil arithmetic.
 */
#include "cron_parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct CronFieldSpec
{
	const char *name;
	int			low;
	int			high;
	const char *const *names;	/* names[i] is value low + i, or NULL */
} CronFieldSpec;

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec", NULL
};

static const char *const weekday_names[] = {
	"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

static const CronFieldSpec field_specs[5] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day of month", 1, 31, NULL},
	{"month", 1, 12, month_names},
	{"day of week", 0, 7, weekday_names},
};

/* The @ forms and their five fields; dow_star as pg_cron sets it. */
typedef struct CronAtForm
{
	const char *word;
	const char *fields;
	bool		dow_star;
} CronAtForm;

static const CronAtForm at_forms[] = {
	{"hourly", "0 * * * *", false},
	{"daily", "0 0 * * *", false},
	{"midnight", "0 0 * * *", false},
	{"weekly", "0 0 * * 0", true},
	{"monthly", "0 0 1 * *", true},
	{"yearly", "0 0 1 1 *", true},
	{"annually", "0 0 1 1 *", true},
};

#define N_AT_FORMS (sizeof(at_forms) / sizeof(at_forms[0]))

/* Longest days of each month (February in a leap year). */
static const int max_month_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* Values above this are "out of range" whatever the field (no overflow). */
#define CRON_VALUE_CAP 1000000

static bool
CronIsBlank(char c)
{
	return c != '\0' && strchr(CRON_BLANKS, c) != NULL;
}

static bool
CronIsDigit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
CronIsAlpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
CronLower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* Case-insensitive comparison of s[0..len) with the NUL-terminated word. */
static bool
CronWordIs(const char *s, size_t len, const char *word)
{
	size_t		i;

	for (i = 0; i < len; i++)
		if (word[i] == '\0' || CronLower(s[i]) != word[i])
			return false;
	return word[len] == '\0';
}

/*
 * Case-sensitive comparison of s[0..len) with the NUL-terminated word: the @
 * forms, which pg_cron compares with strcmp ("@DAILY" is refused there).
 */
static bool
CronWordIsExact(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

/*
 * Copy text for an error message: at most 60 bytes, anything but printable
 * ASCII shown as '?', so a message never carries a broken multibyte char.
 */
static void
CronShowText(char *dst, size_t dstsize, const char *src, size_t len)
{
	size_t		n = len > 60 ? 60 : len;
	size_t		i;

	if (dstsize < 64)
		return;
	for (i = 0; i < n; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f && src[i] != '"') ? src[i] : '?';
	dst[n] = '\0';
	if (n < len)
		strcat(dst, "...");
}

#if defined(__GNUC__)
#define CRON_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CRON_PRINTF(f, a)
#endif

static bool CronFail(CronError *err, const char *field, const char *text, size_t len,
					 const char *fmt,...) CRON_PRINTF(5, 6);

/* Fill err: `<field> field "<text>": <reason>` (or `expression "<text>": ...`). */
static bool
CronFail(CronError *err, const char *field, const char *text, size_t len,
		 const char *fmt,...)
{
	char		shown[64];
	char		reason[200];
	va_list		ap;

	if (err == NULL)
		return false;
	CronShowText(shown, sizeof(shown), text, len);
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	err->field = field;
	if (strcmp(field, "expression") == 0)
		snprintf(err->message, sizeof(err->message), "expression \"%s\": %s", shown, reason);
	else
		snprintf(err->message, sizeof(err->message), "%s field \"%s\": %s", field, shown, reason);
	return false;
}

/* Parse digits at s[*pos..len); the value, capped at CRON_VALUE_CAP. */
static int
CronReadNumber(const char *s, size_t len, size_t *pos)
{
	int			value = 0;

	while (*pos < len && CronIsDigit(s[*pos]))
	{
		value = value < CRON_VALUE_CAP ? value * 10 + (s[*pos] - '0') : CRON_VALUE_CAP;
		(*pos)++;
	}
	return value;
}

/* A number or (for month and weekday) a three-letter name at s[*pos]. */
static bool
CronReadValue(const CronFieldSpec *spec, const char *s, size_t len, size_t *pos,
			  int *value, CronError *err)
{
	size_t		start = *pos;

	if (*pos < len && CronIsDigit(s[*pos]))
	{
		*value = CronReadNumber(s, len, pos);
		return true;
	}
	while (*pos < len && CronIsAlpha(s[*pos]))
		(*pos)++;
	if (*pos == start)
	{
		if (*pos >= len)
			return CronFail(err, spec->name, s, len, "a value is missing");
		return CronFail(err, spec->name, s, len, "unexpected character '%c'",
						(s[*pos] >= 0x20 && s[*pos] < 0x7f) ? s[*pos] : '?');
	}
	if (spec->names == NULL)
		return CronFail(err, spec->name, s, len, "names are not allowed in this field");
	for (int i = 0; spec->names[i] != NULL; i++)
	{
		if (CronWordIs(s + start, *pos - start, spec->names[i]))
		{
			*value = spec->low + i;
			return true;
		}
	}
	return CronFail(err, spec->name, s, len, "unknown name");
}

/* One list item (a star, a value or a range, each with an optional step). */
static bool
CronParseItem(const CronFieldSpec *spec, const char *s, size_t len, uint64_t *bits,
			  CronError *err)
{
	size_t		pos = 0;
	int			lo,
				hi,
				step = 1;
	bool		ranged = true;

	if (s[0] == '*')
	{
		lo = spec->low;
		hi = spec->high;
		pos = 1;
	}
	else
	{
		if (!CronReadValue(spec, s, len, &pos, &lo, err))
			return false;
		hi = lo;
		ranged = false;
		if (pos < len && s[pos] == '-')
		{
			pos++;
			if (!CronReadValue(spec, s, len, &pos, &hi, err))
				return false;
			ranged = true;
		}
	}
	if (pos < len && s[pos] == '/')
	{
		if (!ranged)
			return CronFail(err, spec->name, s, len,
							"a step needs a range or * before it (e.g. %d-%d/n)", lo, spec->high);
		pos++;
		if (pos >= len || !CronIsDigit(s[pos]))
			return CronFail(err, spec->name, s, len, "a step must be a number");
		step = CronReadNumber(s, len, &pos);
		if (step < 1)
			return CronFail(err, spec->name, s, len, "a step must be at least 1");
	}
	if (pos < len)
		return CronFail(err, spec->name, s, len, "unexpected character '%c'",
						(s[pos] >= 0x20 && s[pos] < 0x7f) ? s[pos] : '?');
	if (lo >= CRON_VALUE_CAP || hi >= CRON_VALUE_CAP)
		return CronFail(err, spec->name, s, len, "a value is out of range %d-%d",
						spec->low, spec->high);
	if (lo < spec->low || lo > spec->high)
		return CronFail(err, spec->name, s, len, "%d is out of range %d-%d",
						lo, spec->low, spec->high);
	if (hi < spec->low || hi > spec->high)
		return CronFail(err, spec->name, s, len, "%d is out of range %d-%d",
						hi, spec->low, spec->high);
	if (lo > hi)
		return CronFail(err, spec->name, s, len, "range %d-%d is reversed", lo, hi);
	for (int v = lo; v <= hi; v += step)
		*bits |= (uint64_t) 1 << v;
	return true;
}

/* A comma-separated list of items into *bits. */
static bool
CronParseField(const CronFieldSpec *spec, const char *s, size_t len, uint64_t *bits,
			   CronError *err)
{
	size_t		start = 0;

	*bits = 0;
	for (size_t i = 0; i <= len; i++)
	{
		if (i < len && s[i] != ',')
			continue;
		if (i == start)
			return CronFail(err, spec->name, s, len, "empty list element");
		if (!CronParseItem(spec, s + start, i - start, bits, err))
			return false;
		start = i + 1;
	}
	return true;
}

/* Some selected month has some selected day of month (AND rule). */
static bool
CronSomeDayExists(const CronSchedule *sched)
{
	for (int m = 1; m <= 12; m++)
	{
		if (!(sched->months & (1u << m)))
			continue;
		for (int d = 1; d <= max_month_days[m]; d++)
			if (sched->days & ((uint32_t) 1 << d))
				return true;
	}
	return false;
}

/* An @ form; false with err filled when it is unknown. */
static bool
CronParseAt(const char *s, size_t len, CronSchedule *sched, CronError *err)
{
	size_t		wlen = 1;

	while (wlen < len && !CronIsBlank(s[wlen]))
		wlen++;
	if (wlen < len)
		return CronFail(err, "expression", s, len, "unexpected text after the @ form");
	/* pg_cron accepts @reboot: a valid schedule with no next occurrence */
	if (CronWordIsExact(s + 1, wlen - 1, "reboot"))
	{
		memset(sched, 0, sizeof(*sched));
		sched->reboot = true;
		return true;
	}
	for (size_t i = 0; i < N_AT_FORMS; i++)
	{
		if (CronWordIsExact(s + 1, wlen - 1, at_forms[i].word))
		{
			const char *f = at_forms[i].fields;

			if (!CronParse(f, strlen(f), sched, err))
				return false;
			sched->dom_star = false;
			sched->dow_star = at_forms[i].dow_star;
			return true;
		}
	}
	return CronFail(err, "expression", s, len,
					"unknown @ form (use @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually or @reboot, in lower case)");
}

/*
 * pg_cron's "N seconds" form: digits, optional blanks, "second" or "seconds"
 * in any case.  Returns 0 when s is not of that shape, -1 after a range
 * error (err filled), 1 when parsed.
 */
static int
CronParseSeconds(const char *s, size_t len, CronSchedule *sched, CronError *err)
{
	size_t		pos = 0;
	size_t		word;
	int			n;

	if (!CronIsDigit(s[0]))
		return 0;
	n = CronReadNumber(s, len, &pos);
	while (pos < len && CronIsBlank(s[pos]))
		pos++;
	word = pos;
	while (pos < len && CronIsAlpha(s[pos]))
		pos++;
	if (!CronWordIs(s + word, pos - word, "second") && !CronWordIs(s + word, pos - word, "seconds"))
		return 0;
	if (pos < len)
		return 0;
	if (n < 1 || n > 59)
	{
		CronFail(err, "seconds", s, len, "an interval in seconds must be 1-59");
		return -1;
	}
	memset(sched, 0, sizeof(*sched));
	sched->seconds = n;
	return 1;
}

bool
CronParse(const char *expr, size_t len, CronSchedule *sched, CronError *err)
{
	const char *s = expr;
	size_t		fstart[5],
				flen[5];
	int			nfields = 0;
	uint64_t	bits[5];
	int			sec;

	memset(sched, 0, sizeof(*sched));
	if (len > CRON_MAX_LENGTH)
		return CronFail(err, "expression", s, len, "is too long (%zu bytes, at most %d)",
						len, CRON_MAX_LENGTH);
	while (len > 0 && CronIsBlank(*s))
		s++, len--;
	while (len > 0 && CronIsBlank(s[len - 1]))
		len--;
	if (len == 0)
		return CronFail(err, "expression", s, len, "is empty");
	if (s[0] == '@')
		return CronParseAt(s, len, sched, err);
	sec = CronParseSeconds(s, len, sched, err);
	if (sec != 0)
		return sec > 0;

	for (size_t i = 0; i < len;)
	{
		size_t		j = i;

		while (j < len && !CronIsBlank(s[j]))
			j++;
		if (nfields < 5)
		{
			fstart[nfields] = i;
			flen[nfields] = j - i;
		}
		nfields++;
		while (j < len && CronIsBlank(s[j]))
			j++;
		i = j;
	}
	if (nfields != 5)
		return CronFail(err, "expression", s, len, "expected 5 fields, found %d", nfields);

	for (int f = 0; f < 5; f++)
		if (!CronParseField(&field_specs[f], s + fstart[f], flen[f], &bits[f], err))
			return false;

	sched->minutes = bits[0];
	sched->hours = (uint32_t) bits[1];
	sched->days = (uint32_t) bits[2];
	sched->months = (uint16_t) bits[3];
	if (bits[4] & (1u << 7))
		bits[4] |= 1;
	sched->weekdays = (uint8_t) (bits[4] & 0x7f);
	sched->dom_star = s[fstart[2]] == '*';
	sched->dow_star = s[fstart[4]] == '*';

	return true;
}

bool
CronNeverFires(const CronSchedule *sched)
{
	if (sched->seconds > 0 || sched->reboot)
		return false;
	return (sched->dom_star || sched->dow_star) && !CronSomeDayExists(sched);
}

const char *
CronCanonicalAt(const char *expr, size_t len)
{
	while (len > 0 && CronIsBlank(*expr))
		expr++, len--;
	while (len > 0 && CronIsBlank(expr[len - 1]))
		len--;
	if (len < 2 || expr[0] != '@')
		return NULL;
	for (size_t i = 0; i < N_AT_FORMS; i++)
		if (CronWordIsExact(expr + 1, len - 1, at_forms[i].word))
			return at_forms[i].fields;
	return NULL;
}

/* Division and remainder rounding toward minus infinity. */
static int64_t
CronFloorDiv(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t
CronDaysFromCivil(int64_t y, int m, int d)
{
	int64_t		era,
				yoe,
				doy,
				doe;

	y -= m <= 2;
	era = CronFloorDiv(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The civil date of a day count since 1970-01-01. */
static void
CronCivilFromDays(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t		era,
				doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = CronFloorDiv(z, 146097);
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
CronDaysInMonth(int64_t y, int m)
{
	bool		leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return (m == 2 && !leap) ? 28 : max_month_days[m];
}

/* Does the day match, under pg_cron's day-of-month/day-of-week rule? */
static bool
CronDayMatches(const CronSchedule *sched, int64_t y, int m, int d)
{
	int64_t		days = CronDaysFromCivil(y, m, d);
	int			wday = (int) (days - CronFloorDiv(days + 4, 7) * 7 + 4);
	bool		dom = (sched->days >> d) & 1;
	bool		dow = (sched->weekdays >> wday) & 1;

	if (sched->dom_star || sched->dow_star)
		return dom && dow;
	return dom || dow;
}

/* The smallest set bit >= from, up to max; -1 when none. */
static int
CronNextBit(uint64_t bits, int from, int max)
{
	for (int i = from; i <= max; i++)
		if ((bits >> i) & 1)
			return i;
	return -1;
}

bool
CronNextAfter(const CronSchedule *sched, int64_t after, int64_t *next)
{
	const int64_t max_epoch = CronDaysFromCivil(CRON_MAX_YEAR + 1, 1, 1) * 86400;
	const int64_t min_epoch = CronDaysFromCivil(-CRON_MAX_YEAR, 1, 1) * 86400;
	int64_t		minute,
				days,
				y,
				y_limit;
	int			m,
				d,
				h,
				mi;

	if (sched->reboot || after >= max_epoch || after < min_epoch)
		return false;
	if (sched->seconds > 0)
	{
		*next = (CronFloorDiv(after, sched->seconds) + 1) * sched->seconds;
		return *next < max_epoch;
	}

	minute = CronFloorDiv(after, 60) + 1;
	days = CronFloorDiv(minute, 1440);
	h = (int) ((minute - days * 1440) / 60);
	mi = (int) ((minute - days * 1440) % 60);
	CronCivilFromDays(days, &y, &m, &d);
	y_limit = y + CRON_SEARCH_YEARS;

	for (;;)
	{
		int			nh,
					nm;

		if (y > y_limit || y > CRON_MAX_YEAR)
			return false;
		if (!((sched->months >> m) & 1) || d > CronDaysInMonth(y, m))
		{
			if (++m > 12)
				m = 1, y++;
			d = 1, h = 0, mi = 0;
			continue;
		}
		if (!CronDayMatches(sched, y, m, d))
		{
			d++, h = 0, mi = 0;
			continue;
		}
		nh = CronNextBit(sched->hours, h, 23);
		if (nh < 0)
		{
			d++, h = 0, mi = 0;
			continue;
		}
		if (nh != h)
			h = nh, mi = 0;
		nm = CronNextBit(sched->minutes, mi, 59);
		if (nm < 0)
		{
			mi = 0;
			if (++h > 23)
				d++, h = 0;
			continue;
		}
		*next = (CronDaysFromCivil(y, m, d) * 1440 + h * 60 + nm) * 60;
		return *next < max_epoch;
	}
}
