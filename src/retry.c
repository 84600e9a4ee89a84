/*
 * retry.c — taskguard.backoff() and taskguard.retry_decision() (docs/reference.md#retry).
 *
 * Backoff works in seconds as double precision: nominal = min(cap,
 * base × multiplier^(attempt−1)), which saturates to the cap (pow() reaching
 * infinity is fine) instead of overflowing; jitter draws from pg_prng.
 * Policies come from the classify cache (classify.c).  No locks, no shared
 * state.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "classify.h"

PG_FUNCTION_INFO_V1(taskguard_backoff);
PG_FUNCTION_INFO_V1(taskguard_retry_decision);

/* Below this many seconds an interval holds them in its microsecond field. */
#define RETRY_MAX_TIME_SECONDS 9.2e12

/* Refuse an argument, naming it. */
static void
RetryBadArgument(const char *arg, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid %s for taskguard.backoff: %s", arg, detail)));
}

static TgJitter
RetryParseJitter(const char *s)
{
	if (strcmp(s, "none") == 0)
		return TG_JITTER_NONE;
	if (strcmp(s, "full") == 0)
		return TG_JITTER_FULL;
	if (strcmp(s, "equal") == 0)
		return TG_JITTER_EQUAL;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid jitter for taskguard.backoff: \"%s\"", s),
			 errhint("Use none, full or equal.")));
	return TG_JITTER_NONE;		/* not reached */
}

/* The delay in seconds of retry number `attempt` (≥ 1); arguments already checked. */
static double
RetryBackoffSeconds(int attempt, double base, double cap, double multiplier, TgJitter jitter)
{
	double		nominal;

	if (base <= 0)
		nominal = 0;
	else
		nominal = Min(cap, base * pow(multiplier, (double) attempt - 1));
	switch (jitter)
	{
		case TG_JITTER_FULL:
			return nominal * pg_prng_double(&pg_global_prng_state);
		case TG_JITTER_EQUAL:
			return nominal / 2 + nominal / 2 * pg_prng_double(&pg_global_prng_state);
		default:
			return nominal;
	}
}

/* Seconds as an interval (time field; days beyond; capped at the range). */
static Interval *
RetrySecondsToInterval(double s)
{
	Interval   *r = palloc0(sizeof(Interval));

	if (!(s > 0))
		return r;
	if (s < RETRY_MAX_TIME_SECONDS)
		r->time = (TimeOffset) llround(s * USECS_PER_SEC);
	else
	{
		double		days = floor(s / SECS_PER_DAY);

		if (days >= PG_INT32_MAX)
			r->day = PG_INT32_MAX;
		else
		{
			r->day = (int32) days;
			r->time = (TimeOffset) llround((s - days * SECS_PER_DAY) * USECS_PER_SEC);
		}
	}
	return r;
}

/*
 * taskguard.backoff(attempt int, base interval, cap interval,
 *                   multiplier float8, jitter text) RETURNS interval — STRICT.
 */
Datum
taskguard_backoff(PG_FUNCTION_ARGS)
{
	int32		attempt = PG_GETARG_INT32(0);
	Interval   *base_iv = PG_GETARG_INTERVAL_P(1);
	Interval   *cap_iv = PG_GETARG_INTERVAL_P(2);
	float8		multiplier = PG_GETARG_FLOAT8(3);
	char	   *jitter = text_to_cstring(PG_GETARG_TEXT_PP(4));
	double		base = IntervalSeconds(base_iv);
	double		cap = IntervalSeconds(cap_iv);

	if (attempt < 1)
		RetryBadArgument("attempt", psprintf("must be at least 1, got %d", attempt));
	if (base < 0)
		RetryBadArgument("base", "must not be negative");
	if (cap < base)
		RetryBadArgument("cap", "must be at least base");
	if (isnan(multiplier) || isinf(multiplier) || multiplier < 1)
		RetryBadArgument("multiplier", psprintf("must be a finite number of at least 1, got %g",
											   multiplier));
	PG_RETURN_INTERVAL_P(RetrySecondsToInterval(
		RetryBackoffSeconds(attempt, base, cap, multiplier, RetryParseJitter(jitter))));
}

/*
 * The longest Retry-After honoured: a larger one (up to Infinity or 1e308)
 * waits this long, so the retry still happens and the record still reaches
 * a conclusion instead of sitting at next_retry_at = infinity.
 */
#define RETRY_AFTER_MAX_SECONDS (30.0 * SECS_PER_DAY)

/*
 * context->>'retry_after_seconds' as seconds in [0, RETRY_AFTER_MAX_SECONDS],
 * or -1 when absent or unusable (not a number, NaN, negative).
 */
static double
RetryAfterSeconds(Jsonb *jb)
{
	JsonbValue	v;
	char	   *s,
			   *end;
	double		d;

	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb) ||
		!getKeyJsonValueFromContainer(&jb->root, "retry_after_seconds", 19, &v))
		return -1;
	if (v.type == jbvNumeric)
		s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
	else if (v.type == jbvString && v.val.string.len > 0 && v.val.string.len < 64)
		s = pnstrdup(v.val.string.val, v.val.string.len);
	else
		return -1;
	d = strtod(s, &end);
	if (end == s || *end != '\0' || isnan(d) || d < 0)
		return -1;
	return Min(d, RETRY_AFTER_MAX_SECONDS);
}

/* now() + seconds, or infinity beyond the timestamp range. */
static TimestampTz
RetryAfter(double seconds)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	double		at = (double) now + seconds * USECS_PER_SEC;

	if (at >= (double) END_TIMESTAMP)
		return DT_NOEND;
	return now + (TimestampTz) llround(seconds * USECS_PER_SEC);
}

/* The decision's values: (should_retry, delay, next_retry_at, reason). */
static void
RetryDecide(TgFailureType type, int retry_count, const TgPolicy *policy, Jsonb *context,
			Datum *values, bool *nulls)
{
	double		delay,
				floor_s;

	if (!policy->retryable || retry_count >= policy->max_retries)
	{
		values[0] = BoolGetDatum(false);
		nulls[1] = nulls[2] = true;
		values[3] = CStringGetTextDatum(!policy->retryable ?
										psprintf("%s is not retryable", tg_failure_type_names[type]) :
										psprintf("retries exhausted (%d of %d made)",
												 retry_count, policy->max_retries));
		return;
	}
	delay = RetryBackoffSeconds(retry_count + 1, policy->base_seconds, policy->cap_seconds,
								policy->multiplier, policy->jitter);
	floor_s = RetryAfterSeconds(context);
	values[0] = BoolGetDatum(true);
	values[1] = IntervalPGetDatum(RetrySecondsToInterval(Max(delay, floor_s)));
	values[2] = TimestampTzGetDatum(RetryAfter(Max(delay, floor_s)));
	values[3] = CStringGetTextDatum(psprintf("retry %d of %d%s", retry_count + 1,
											 policy->max_retries,
											 floor_s > delay ? " (Retry-After)" : ""));
}

/*
 * taskguard.retry_decision(failure_type, retry_count int, task_name text,
 *     context jsonb) RETURNS taskguard.retry_decision.
 * NULL failure_type counts as UNKNOWN, NULL retry_count as 0.
 */
Datum
taskguard_retry_decision(PG_FUNCTION_ARGS)
{
	TgFailureType type = PG_ARGISNULL(0) ? TG_UNKNOWN : ClassifyTypeFromOid(PG_GETARG_OID(0));
	int32		retry_count = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	text	   *task = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);
	Jsonb	   *context = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (retry_count < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid retry_count for taskguard.retry_decision: must not be negative, got %d",
						retry_count)));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "taskguard.retry_decision must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);
	RetryDecide(type, retry_count,
				ClassifyPolicy(type, task ? VARDATA_ANY(task) : NULL,
							   task ? VARSIZE_ANY_EXHDR(task) : 0),
				context, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
