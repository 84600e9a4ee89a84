/*
 * pattern_guard_test.c — the expanded size of classification_rule patterns
 * (issue 16 class 5).
 */
/* link: src/pattern_guard.c */
#include <stdio.h>
#include <string.h>

#include "pattern_guard.h"

static int	n = 0;
static int	failed = 0;

static void
is(const char *pattern, long want)
{
	long		got = tg_pattern_expanded_size(pattern, strlen(pattern));

	n++;
	printf("%sok %d - %s -> %ld (want %ld)\n", got == want ? "" : "not ", n, pattern, got, want);
	if (got != want)
		failed = 1;
}

int
main(void)
{
	is("", 0);
	is("connection refused", 18);
	is("a{3}", 3);
	is("a{2,5}", 5);
	is("a{7,}", 7);
	is("a{0}", 1);
	is("ab{3}", 4);
	is("((\\w|\\s){1,100}){1,60}\\1x", 12002);
	is("((a{2}){3}){4}", 24);
	is("(a{10})(b{20})", 30);
	is("(a{10}|b{20}){3}", 90);
	is("(?:x{4}){5}?", 20);
	is("(?=ab)(?<!c{3})d", 6);
	is("[{]{1,50}", 50);			/* a bracket is one atom */
	is("[]{}]{9}", 9);
	is("[[:alpha:]{]{4}", 4);
	is("[^]a]x", 2);
	is("\\{1,200}", 7);			/* escaped brace: the rest is literal */
	is("a{x}", 4);				/* not a bound: literal */
	is("a{1,2", 5);
	is("(((((a{255}){255}){255}){255}){255})", TG_PATTERN_SATURATED);
	is("(a*)*b", 2);
	is("(a+|b?)+c", 3);
	is("((((", 0);
	is("))a{4}", 4);
	is("a{99999999999}", 999999);	/* digits saturate, never overflow */
	is("\\", 1);
	is("[abc", 1);				/* unterminated bracket: one atom */
	printf("1..%d\n", n);
	return failed;
}
