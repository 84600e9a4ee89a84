/*
 * classify_rule.c — what a classification_rule's message_pattern may be
 * (issue 16, docs/failures.md "Rules that are refused").
 *
 * classify() matches the first TG_MATCH_PREFIX bytes of every message against
 * every rule, for every failure, in workers and in the scheduler, so a rule
 * whose match time can explode is refused when it is written:
 *  - back-references (\1 … \9): they make PostgreSQL's engine backtrack, in
 *    time exponential in the text (5 s on 1.2 KB was seen);
 *  - nested repetition whose bounds multiply beyond TG_PATTERN_MAX_REPEAT
 *    (pattern_guard.c): the automaton, its compile time and its matching
 *    cost grow with that product.
 * Rules already stored that break these (written before 0.2.0) are skipped
 * by the classify cache with a WARNING.  No shared state, no locks.
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "regex/regex.h"
#include "utils/builtins.h"

#include "classify_rule.h"
#include "pattern_guard.h"

PG_FUNCTION_INFO_V1(taskguard_check_message_pattern);

/* Does the pattern use back-references?  False when it does not compile. */
static bool
ClassifyRuleHasBackref(const char *pattern, int len)
{
	pg_wchar   *wide = palloc((len + 1) * sizeof(pg_wchar));
	int			wlen = pg_mb2wchar_with_len(pattern, wide, len);
	regex_t		re;
	bool		backref = false;

	if (pg_regcomp(&re, wide, wlen, REG_ADVANCED | REG_ICASE, DEFAULT_COLLATION_OID) == REG_OKAY)
	{
		backref = (re.re_info & REG_UBACKREF) != 0;
		pg_regfree(&re);
	}
	pfree(wide);
	return backref;
}

/* See classify_rule.h. */
const char *
ClassifyRulePatternProblem(const char *pattern, int len)
{
	long		product = tg_pattern_repeat_product(pattern, len);

	/* the product first: it is cheap, and compiling a huge one is not */
	if (product > TG_PATTERN_MAX_REPEAT)
		return psprintf("its nested repetition bounds multiply to %ld, more than %d",
						product, TG_PATTERN_MAX_REPEAT);
	if (ClassifyRuleHasBackref(pattern, len))
		return pstrdup("it uses a back-reference (\\1 … \\9)");
	return NULL;
}

/*
 * taskguard._check_message_pattern(pattern text) RETURNS boolean: true, or
 * invalid_parameter_value naming message_pattern.  NULL is fine (no
 * condition); a pattern that does not compile is left to the table's CHECK.
 */
Datum
taskguard_check_message_pattern(PG_FUNCTION_ARGS)
{
	text	   *t;
	const char *problem;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(true);
	t = PG_GETARG_TEXT_PP(0);
	problem = ClassifyRulePatternProblem(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("message_pattern is refused: %s", problem),
				 errdetail("A rule's match time must stay bounded: classify() matches every rule against every failure."),
				 errhint("Remove back-references, and keep the product of nested {m,n} bounds at or below %d (see docs/failures.md).",
						 TG_PATTERN_MAX_REPEAT)));
	PG_RETURN_BOOL(true);
}
