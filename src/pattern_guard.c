/*
 * pattern_guard.c — the expanded size of a regex (see pattern_guard.h).
 * One pass over the text with a stack of groups; no allocation, no locks.
 */
#include "pattern_guard.h"

#include <stdbool.h>

/* Groups deeper than this are refused as "too big" (PostgreSQL allows fewer). */
#define GUARD_MAX_DEPTH 256

static long
GuardMul(long a, long b)
{
	if (b > 0 && a > TG_PATTERN_SATURATED / b)
		return TG_PATTERN_SATURATED;
	return a * b;
}

static long
GuardAdd(long a, long b)
{
	if (a > TG_PATTERN_SATURATED - b)
		return TG_PATTERN_SATURATED;
	return a + b;
}

/* Index just after the bracket expression that starts at p[i] == '['. */
static size_t
GuardSkipBracket(const char *p, size_t len, size_t i)
{
	size_t		j = i + 1;

	if (j < len && p[j] == '^')
		j++;
	if (j < len && p[j] == ']')
		j++;					/* a leading ] is a member */
	while (j < len && p[j] != ']')
	{
		if (p[j] == '[' && j + 1 < len && (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '='))
		{
			char		close = p[j + 1];

			j += 2;
			while (j + 1 < len && !(p[j] == close && p[j + 1] == ']'))
				j++;
			j += 2;
		}
		else if (p[j] == '\\')
			j += 2;
		else
			j++;
	}
	return j + 1;
}

/* Index after a group's (?: (?= (?! (?<= (?<! prefix, if any, at p[i]. */
static size_t
GuardSkipGroupPrefix(const char *p, size_t len, size_t i)
{
	if (i + 1 >= len || p[i] != '?')
		return i;
	if (p[i + 1] == ':' || p[i + 1] == '=' || p[i + 1] == '!')
		return i + 2;
	if (p[i + 1] == '<' && i + 2 < len && (p[i + 2] == '=' || p[i + 2] == '!'))
		return i + 3;
	return i;
}

/*
 * A bound {m}, {m,} or {m,n} at p[i] == '{': its counting value in *bound
 * and the index after it; 0 when it is not a bound (then '{' is literal).
 */
static size_t
GuardParseBound(const char *p, size_t len, size_t i, long *bound)
{
	long		m = 0,
				n = -1;
	size_t		j = i + 1;
	bool		digits = false;

	while (j < len && p[j] >= '0' && p[j] <= '9')
	{
		m = m < 100000 ? m * 10 + (p[j] - '0') : m;
		digits = true;
		j++;
	}
	if (!digits)
		return 0;
	if (j < len && p[j] == ',')
	{
		j++;
		if (j < len && p[j] >= '0' && p[j] <= '9')
		{
			n = 0;
			while (j < len && p[j] >= '0' && p[j] <= '9')
			{
				n = n < 100000 ? n * 10 + (p[j] - '0') : n;
				j++;
			}
		}
	}
	if (j >= len || p[j] != '}')
		return 0;
	*bound = n >= 0 ? n : m;
	if (*bound < 1)
		*bound = 1;
	return j + 1;
}

long
tg_pattern_expanded_size(const char *p, size_t len)
{
	long		sum[GUARD_MAX_DEPTH];	/* expanded size so far of each open group */
	int			depth = 0;
	long		last = 0;		/* size of the atom a quantifier would apply to */
	long		total;
	size_t		i = 0;

	sum[0] = 0;
	while (i < len)
	{
		char		c = p[i];
		long		bound;
		size_t		next;

		if (c == '(')
		{
			if (depth + 1 >= GUARD_MAX_DEPTH)
				return TG_PATTERN_SATURATED;
			sum[++depth] = 0;
			last = 0;
			i = GuardSkipGroupPrefix(p, len, i + 1);
			continue;
		}
		if (c == ')')
		{
			last = depth > 0 ? sum[depth--] : 0;
			sum[depth] = GuardAdd(sum[depth], last);
			i++;
			continue;
		}
		if (c == '{' && (next = GuardParseBound(p, len, i, &bound)) > 0)
		{
			/* what it applies to is counted once already */
			sum[depth] = GuardAdd(sum[depth], GuardMul(last, bound - 1));
			last = 0;
			i = next;
			continue;
		}
		if (c == '*' || c == '+' || c == '?' || c == '|')
		{
			last = 0;
			i++;
			continue;
		}
		/* an atom */
		if (c == '\\')
			i += 2;
		else if (c == '[')
			i = GuardSkipBracket(p, len, i);
		else
			i++;
		last = 1;
		sum[depth] = GuardAdd(sum[depth], 1);
	}
	/* groups left open count as closed */
	total = 0;
	for (int d = 0; d <= depth; d++)
		total = GuardAdd(total, sum[d]);
	return total;
}
