/*
 * pattern_guard.c — the repetition product of a regex (see pattern_guard.h).
 * One pass over the text with a stack of groups; no allocation, no locks.
 */
#include "pattern_guard.h"

#include <stdbool.h>

/* Groups deeper than this are refused as "too big" (PostgreSQL allows fewer). */
#define GUARD_MAX_DEPTH 256

static long
GuardMul(long a, long b)
{
	if (a > TG_PATTERN_REPEAT_SATURATED / (b > 0 ? b : 1))
		return TG_PATTERN_REPEAT_SATURATED;
	return a * b;
}

static long
GuardMax(long a, long b)
{
	return a > b ? a : b;
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
tg_pattern_repeat_product(const char *p, size_t len)
{
	long		inner[GUARD_MAX_DEPTH];	/* largest product inside each open group */
	int			depth = 0;
	long		last = 1;		/* product of the atom a quantifier would apply to */
	long		result;
	size_t		i = 0;

	inner[0] = 1;
	while (i < len)
	{
		char		c = p[i];
		long		bound;
		size_t		next;

		if (c == '\\')
		{
			last = 1;
			i += 2;
		}
		else if (c == '[')
		{
			last = 1;
			i = GuardSkipBracket(p, len, i);
		}
		else if (c == '(')
		{
			if (depth + 1 >= GUARD_MAX_DEPTH)
				return TG_PATTERN_REPEAT_SATURATED;
			inner[++depth] = 1;
			last = 1;
			i++;
		}
		else if (c == ')')
		{
			last = depth > 0 ? inner[depth--] : 1;
			inner[depth] = GuardMax(inner[depth], last);
			i++;
		}
		else if (c == '{' && (next = GuardParseBound(p, len, i, &bound)) > 0)
		{
			inner[depth] = GuardMax(inner[depth], GuardMul(last, bound));
			last = 1;
			i = next;
		}
		else
		{
			/* *, +, ? count 1: the product so far is already recorded */
			last = 1;
			i++;
		}
	}
	result = 1;
	for (int d = 0; d <= depth; d++)
		result = GuardMax(result, inner[d]);
	return result;
}
