/*
 * cron_fuzz.c — libFuzzer harness for the cron parser and evaluator.
 * Any input must either be refused with a message naming a field, or parse
 * into a schedule whose successive occurrences strictly increase.
 */
/* link: src/cron_parse.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron_parse.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t afters[] = {
		0, -1, 951782400 /* 2000-02-29 */, 4102444799 /* 2099-12-31 23:59:59 */,
		-62135596800 /* year 1 */, 9224286393600 /* year 294276 */
	};
	CronSchedule s;
	CronError	err;

	/* an @ form's canonical fields must parse too */
	{
		const char *canon = CronCanonicalAt((const char *) data, size);

		if (canon != NULL && !CronParse(canon, strlen(canon), &s, NULL))
			abort();
	}
	if (!CronParse((const char *) data, size, &s, &err))
	{
		if (err.field == NULL || strlen(err.message) == 0)
			abort();
		return 0;
	}
	for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++)
	{
		int64_t		t = afters[i],
					n;

		for (int k = 0; k < 8 && CronNextAfter(&s, t, &n); k++)
		{
			if (n <= t || (s.seconds == 0 && n % 60 != 0))
				abort();
			t = n;
		}
	}
	return 0;
}
