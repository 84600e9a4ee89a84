/*
 * classify_match_fuzz.c — libFuzzer harness for the message matcher and exception
 * lookup: any bytes, any length; the result must be NULL or a table entry.
 */
/* link: src/classify_match.c */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "classify_match.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const TgRule *r;
	const char *last;
	size_t		lastlen;

	r = tg_match_message((const char *) data, size);
	if (r && (r->type < 0 || r->type >= TG_FAILURE_TYPE_COUNT))
		abort();
	r = tg_match_exception((const char *) data, size, &last, &lastlen);
	if (r && (r->type < 0 || r->type >= TG_FAILURE_TYPE_COUNT))
		abort();
	if (last && (last < (const char *) data || last + lastlen > (const char *) data + size))
		abort();
	return 0;
}
