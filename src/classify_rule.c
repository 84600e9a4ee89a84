/*
 * classify_rule.c — what a classification_rule's message_pattern may be
 * (issue 16, docs/failures.md "Rules that are refused").
 *
 * classify() matches the first TG_MATCH_PREFIX bytes of every message against
 * every rule, for every failure, in workers and in the scheduler, so a rule
 * whose compile or match time can explode is refused when it is written:
 *  - more than TG_PATTERN_MAX_BYTES bytes: compile time grows faster than
 *    the length (a 100 kB literal took 73 s to compile);
 *  - an expanded size (pattern_guard.c) over TG_PATTERN_MAX_EXPANDED: the
 *    automaton, its compile time and its matching cost grow with it;
 *  - back-references (\1 … \9): they make PostgreSQL's engine backtrack, in
 *    time exponential in the text (5 s on 1.2 KB was seen).
 * Rules already stored that break these (written before 0.2.0) are skipped
 * by the classify cache with a WARNING.  No shared state, no locks.
 */
#include "postgres.h"

#include "compat.h"

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
	long		size;

	/* the cheap checks first: compiling a huge pattern is what we avoid */
	if (len > TG_PATTERN_MAX_BYTES)
		return psprintf("it is %d bytes long, more than %d", len, TG_PATTERN_MAX_BYTES);
	size = tg_pattern_expanded_size(pattern, len);
	if (size > TG_PATTERN_MAX_EXPANDED)
		return psprintf("written out with its repetition bounds expanded it is %ld atoms, more than %d",
						size, TG_PATTERN_MAX_EXPANDED);
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
				 errhint("Use at most %d bytes, no back-references, and at most %d atoms with every {m,n} written out (see docs/failures.md).",
						 TG_PATTERN_MAX_BYTES, TG_PATTERN_MAX_EXPANDED)));
	PG_RETURN_BOOL(true);
}
