/*
 * pattern_guard_fuzz.c — libFuzzer harness for the expanded size of a
 * classification rule's pattern: any bytes, any length; the size is between
 * 0 and the saturation value and never reads outside the input.
 */
/* link: src/pattern_guard.c */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "pattern_guard.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long		n = tg_pattern_expanded_size((const char *) data, size);

	if (n < 0 || n > TG_PATTERN_SATURATED)
		abort();
	return 0;
}
