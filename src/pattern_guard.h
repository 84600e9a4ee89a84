/*
 * pattern_guard.h — how much a user regex can cost, measured on its text
 * (pure C, no backend headers: test/unit/pattern_guard_test.c links it alone).
 *
 * PostgreSQL's regex engine matches a pattern without back-references with
 * automata, in time linear in the text but proportional to the size of the
 * automaton; that size (and the compile time) grows with the product of the
 * repetition bounds nested inside each other: ((a|b){1,100}){1,60} expands to
 * 6,000 copies.  classify_rule.c refuses patterns whose product is too big.
 */
#ifndef TG_PATTERN_GUARD_H
#define TG_PATTERN_GUARD_H

#include <stddef.h>

/* The largest product a classification rule's message_pattern may have. */
#define TG_PATTERN_MAX_REPEAT 1000

/* Products are saturated here (no overflow, whatever the nesting). */
#define TG_PATTERN_REPEAT_SATURATED 1000000000L

/*
 * The largest product of repetition bounds along any nesting path of an ARE
 * pattern: {m,n} counts n, {m} and {m,} count m, *, + and ? count 1.
 * Bracket expressions and escapes are skipped.  Over-estimates rather than
 * under-estimates (it does not know expanded-syntax comments).
 */
extern long tg_pattern_repeat_product(const char *pattern, size_t len);

#endif
