/*
 * pattern_guard.h — how much a user regex can cost, measured on its text
 * (pure C, no backend headers: test/unit/pattern_guard_test.c links it alone).
 *
 * PostgreSQL's regex engine matches a pattern without back-references with
 * automata, in time linear in the text but proportional to the size of the
 * automaton; that size (and the compile time) grows with the pattern written
 * out in full, every bounded repetition expanded: ((a|b){1,100}){1,60} is
 * 12,000 atoms.  classify_rule.c refuses patterns that expand too far.
 */
#ifndef TG_PATTERN_GUARD_H
#define TG_PATTERN_GUARD_H

#include <stddef.h>

/* The longest message_pattern, in bytes. */
#define TG_PATTERN_MAX_BYTES 1000

/* The largest expanded size a classification rule's message_pattern may have. */
#define TG_PATTERN_MAX_EXPANDED 2000

/* Sizes are saturated here (no overflow, whatever the nesting). */
#define TG_PATTERN_SATURATED 1000000000L

/*
 * The size of an ARE pattern with every bounded repetition written out: each
 * atom (a character, an escape, a bracket expression) counts 1, a group the
 * sum of what it holds (all branches), and a bound multiplies what it applies
 * to — {m,n} by n, {m} and {m,} by m; *, + and ? by 1.  Over-estimates rather
 * than under-estimates (it does not know expanded-syntax comments).
 */
extern long tg_pattern_expanded_size(const char *pattern, size_t len);

#endif
