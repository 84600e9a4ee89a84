/*
 * classify.h — the failure taxonomy (docs/reference.md#classification) and the
 * retry policy of each type (retry.c holds the one resolver of
 * taskguard.retry_policy, used by classify.c, priority.c and SQL).
 */
#ifndef TG_CLASSIFY_H
#define TG_CLASSIFY_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "classify_match.h"

typedef enum TgJitter
{
	TG_JITTER_NONE = 0,
	TG_JITTER_FULL,
	TG_JITTER_EQUAL
} TgJitter;

/* Alert levels, in the order of taskguard.alert_level. */
#define TG_ALERT_COUNT 4

/* One retry_policy row, with a task override's NULL columns already inherited. */
typedef struct TgPolicy
{
	TgRemedy	remedy;
	bool		retryable;
	int			max_retries;
	double		base_seconds;	/* backoff base; 1 s when the row has none */
	double		cap_seconds;	/* backoff cap; 1 h when the row has none */
	double		multiplier;
	TgJitter	jitter;
	int			alert;			/* index into taskguard.alert_level */
	double		priority_adjustment;
} TgPolicy;

/*
 * The policy for a type, using the task_name override when there is one
 * (task_name may be NULL).  Loads the cache when it is stale.
 */
extern const TgPolicy *RetryPolicy(TgFailureType type, const char *task_name, int len);

/* The built-in priority adjustment of a type (retry_policy's default row). */
extern double RetryBuiltinAdjustment(TgFailureType type);

/* The index of label in names[0..n-1], or -1. */
extern int	ClassifyLabelIndex(const char *label, const char *const *names, int n);

/* The labels of taskguard.alert_level, in order. */
extern const char *const tg_alert_names[TG_ALERT_COUNT];

/* The C index of a taskguard.failure_type value. */
extern TgFailureType ClassifyTypeFromOid(Oid value);

/* The enum value of a failure type (for results). */
extern Oid	ClassifyTypeOid(TgFailureType type);

/* Seconds of an interval, the way extract(epoch from …) counts them. */
extern double IntervalSeconds(const Interval *iv);

#endif
