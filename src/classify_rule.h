/*
 * classify_rule.h — the limits on classification_rule.message_pattern
 * (classify_rule.c).
 */
#ifndef TG_CLASSIFY_RULE_H
#define TG_CLASSIFY_RULE_H

/*
 * Why a message_pattern would make classify() too slow (palloc'd text for a
 * message), or NULL when it is acceptable.
 */
extern const char *ClassifyRulePatternProblem(const char *pattern, int len);

#endif
