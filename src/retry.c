/*
 * retry.c — taskguard.backoff() and taskguard.retry_decision() (docs/reference.md#retry).
 *
 * Backoff works in seconds as double precision: nominal = min(cap,
 * base × multiplier^(attempt−1)), which saturates to the cap (pow() reaching
 * infinity is fine) instead of overflowing; jitter draws from pg_prng.
 * Policies: the one resolver of taskguard.retry_policy, cached per backend
 * (below).  No locks, no shared state.
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
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "classify.h"
#include "taskguard.h"

PG_FUNCTION_INFO_V1(taskguard_backoff);
PG_FUNCTION_INFO_V1(taskguard_retry_decision);
PG_FUNCTION_INFO_V1(taskguard_policy_max_retries);

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
				RetryPolicy(type, task ? VARDATA_ANY(task) : NULL,
							   task ? VARSIZE_ANY_EXHDR(task) : 0),
				context, values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---------------------------------------------------------------------
 * Retry policies: the one resolver of taskguard.retry_policy, for C
 * (classify, retry_decision, priority) and SQL (_policy_max_retries) alike.
 * The table is read once per backend, as its owner, and again after an
 * invalidation (its statement trigger _config_changed, see TgConfigCache).
 * A type whose default row was deleted gets the built-in policy.
 * --------------------------------------------------------------------- */

/* A task_name override of retry_policy. */
typedef struct RetryOverride
{
	char	   *task_name;
	TgFailureType type;
	TgPolicy	policy;
} RetryOverride;

static struct
{
	TgConfigCache cc;			/* relids: retry_policy */
	MemoryContext cxt;
	TgPolicy	defaults[TG_FAILURE_TYPE_COUNT];
	RetryOverride *overrides;	/* sorted by (task_name, type) */
	int			noverrides;
}			policies;


/* Built-in defaults (docs/reference.md#retry), used for a type whose retry_policy row was deleted. */
static const struct
{
	TgRemedy	remedy;
	bool		retryable;
	int			max_retries;
	double		base,
				cap;
	int			alert;
	double		adjust;
}			builtin_policy[TG_FAILURE_TYPE_COUNT] = {
	{TG_RETRY_WITH_BACKOFF, true, 5, 2, 300, 1, 0},
	{TG_RETRY_IMMEDIATELY, true, 5, 1, 60, 1, 0},
	{TG_RETRY_WITH_BACKOFF, true, 8, 30, 1800, 0, -1},
	{TG_MANUAL_INVESTIGATION, false, 0, 1, 3600, 2, 0},
	{TG_MANUAL_INVESTIGATION, false, 0, 1, 3600, 1, 0},
	{TG_FIX_CONFIGURATION, false, 0, 1, 3600, 3, 0},
	{TG_FIX_CONFIGURATION, false, 0, 1, 3600, 3, 0},
	{TG_FIX_CONFIGURATION, false, 0, 1, 3600, 3, 0},
	{TG_CONTACT_EXTERNAL_SERVICE, true, 6, 30, 3600, 2, -0.5},
	{TG_CONTACT_EXTERNAL_SERVICE, true, 3, 10, 600, 2, 0},
	{TG_SCALE_RESOURCES, true, 2, 300, 1800, 3, -0.5},
	{TG_SCALE_RESOURCES, true, 1, 900, 900, 3, -0.5},
	{TG_SCALE_RESOURCES, true, 3, 60, 900, 2, -0.5},
	{TG_ESCALATE_TO_ADMIN, false, 0, 1, 3600, 1, 0},
	{TG_MANUAL_INVESTIGATION, true, 3, 10, 600, 1, 0},
};

/* The built-in priority adjustment of a type (failure_types_agree.sh checks the table). */
double
RetryBuiltinAdjustment(TgFailureType type)
{
	Assert(type >= 0 && type < TG_FAILURE_TYPE_COUNT);
	return builtin_policy[type].adjust;
}


/* Column c (1-based) of the current SPI row as a C string, or NULL. */
static char *
RetryCol(HeapTuple tup, int c)
{
	return SPI_getvalue(tup, SPI_tuptable->tupdesc, c);
}

/* Apply the non-NULL columns 3..11 of a retry_policy row to *p. */
static void
RetryApplyPolicyRow(HeapTuple tup, TgPolicy *p)
{
	char	   *v;

	if ((v = RetryCol(tup, 3)) != NULL)
		p->remedy = (TgRemedy) ClassifyLabelIndex(v, tg_remedy_names, TG_REMEDY_COUNT);
	if ((v = RetryCol(tup, 4)) != NULL)
		p->retryable = (v[0] == 't');
	if ((v = RetryCol(tup, 5)) != NULL)
		p->max_retries = atoi(v);
	if ((v = RetryCol(tup, 6)) != NULL)
		p->base_seconds = strtod(v, NULL);
	if ((v = RetryCol(tup, 7)) != NULL)
		p->cap_seconds = strtod(v, NULL);
	if ((v = RetryCol(tup, 8)) != NULL)
		p->multiplier = strtod(v, NULL);
	if ((v = RetryCol(tup, 9)) != NULL)
		p->jitter = strcmp(v, "none") == 0 ? TG_JITTER_NONE :
			strcmp(v, "equal") == 0 ? TG_JITTER_EQUAL : TG_JITTER_FULL;
	if ((v = RetryCol(tup, 10)) != NULL)
		p->alert = ClassifyLabelIndex(v, tg_alert_names, TG_ALERT_COUNT);
	if ((v = RetryCol(tup, 11)) != NULL)
		p->priority_adjustment = strtod(v, NULL);
	if (p->cap_seconds < p->base_seconds)
		p->cap_seconds = p->base_seconds;
}

static int
RetryCompareOverride(const void *a, const void *b)
{
	const RetryOverride *x = a;
	const RetryOverride *y = b;
	int			c = strcmp(x->task_name, y->task_name);

	return c != 0 ? c : (int) x->type - (int) y->type;
}

/* Defaults first (task_name NULL sorts first), then overrides inheriting them. */
static void
RetryLoadPolicies(void)
{
	int			n;

	SPI_execute("SELECT failure_type::text, task_name, remediation::text, retryable, max_retries,"
				" extract(epoch FROM base_delay)::float8, extract(epoch FROM max_delay)::float8,"
				" multiplier, jitter, alert_level::text, priority_adjustment"
				" FROM taskguard.retry_policy ORDER BY task_name NULLS FIRST, failure_type",
				true, 0);
	n = (int) SPI_processed;
	policies.overrides = MemoryContextAllocZero(policies.cxt, sizeof(RetryOverride) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		int			t = ClassifyLabelIndex(RetryCol(tup, 1), tg_failure_type_names,
										   TG_FAILURE_TYPE_COUNT);
		char	   *task = RetryCol(tup, 2);

		if (t < 0)
			continue;
		if (task == NULL)
		{
			RetryApplyPolicyRow(tup, &policies.defaults[t]);
			continue;
		}
		policies.overrides[policies.noverrides].task_name = MemoryContextStrdup(policies.cxt, task);
		policies.overrides[policies.noverrides].type = (TgFailureType) t;
		policies.overrides[policies.noverrides].policy = policies.defaults[t];
		RetryApplyPolicyRow(tup, &policies.overrides[policies.noverrides].policy);
		policies.noverrides++;
	}
	qsort(policies.overrides, policies.noverrides, sizeof(RetryOverride), RetryCompareOverride);
}

/* Back to the built-in policies, in a fresh context. */
static void
RetryResetPolicies(void)
{
	policies.overrides = NULL;
	policies.noverrides = 0;
	if (policies.cxt == NULL)
		policies.cxt = AllocSetContextCreate(CacheMemoryContext, "taskguard retry policy cache",
											 ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(policies.cxt);
	for (int t = 0; t < TG_FAILURE_TYPE_COUNT; t++)
	{
		TgPolicy   *p = &policies.defaults[t];

		p->remedy = builtin_policy[t].remedy;
		p->retryable = builtin_policy[t].retryable;
		p->max_retries = builtin_policy[t].max_retries;
		p->base_seconds = builtin_policy[t].base;
		p->cap_seconds = builtin_policy[t].cap;
		p->multiplier = 2.0;
		p->jitter = TG_JITTER_FULL;
		p->alert = builtin_policy[t].alert;
		p->priority_adjustment = builtin_policy[t].adjust;
	}
}

/* Read the table as its owner, so that any role's call resolves the same policy. */
static void
RetryLoadAsOwner(Oid relid)
{
	TgSavedUser saved;

	TgActAsRelOwner(relid, &saved);
	PG_TRY();
	{
		RetryLoadPolicies();
	}
	PG_FINALLY();
	{
		TgRestoreUser(&saved);
	}
	PG_END_TRY();
}

/* Make the copy current (an error while reading leaves none). */
static void
RetryEnsurePolicies(void)
{
	uint64		generation;

	if (TgConfigCacheCurrent(&policies.cc))
		return;
	generation = TgConfigCacheLoadBegin(&policies.cc);
	RetryResetPolicies();
	policies.cc.relids[0] = get_relname_relid("retry_policy", get_namespace_oid("taskguard", false));
	if (OidIsValid(policies.cc.relids[0]))
	{
		TgSpiConnect();
		RetryLoadAsOwner(policies.cc.relids[0]);
		SPI_finish();
	}
	TgConfigCacheLoadEnd(&policies.cc, generation);
}

const TgPolicy *
RetryPolicy(TgFailureType type, const char *task_name, int len)
{
	RetryEnsurePolicies();
	if (task_name != NULL && policies.noverrides > 0)
	{
		char	   *name = pnstrdup(task_name, len);
		RetryOverride key = {name, type};
		RetryOverride *o = bsearch(&key, policies.overrides, policies.noverrides,
									  sizeof(RetryOverride), RetryCompareOverride);

		pfree(name);
		if (o)
			return &o->policy;
	}
	return &policies.defaults[type];
}

/*
 * taskguard._policy_max_retries(failure_type, task_name) RETURNS int: the
 * max_retries the decision uses, for the DLQ record (NULL type: UNKNOWN).
 */
Datum
taskguard_policy_max_retries(PG_FUNCTION_ARGS)
{
	TgFailureType type = PG_ARGISNULL(0) ? TG_UNKNOWN : ClassifyTypeFromOid(PG_GETARG_OID(0));
	text	   *task = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);

	PG_RETURN_INT32(RetryPolicy(type, task ? VARDATA_ANY(task) : NULL,
								task ? VARSIZE_ANY_EXHDR(task) : 0)->max_retries);
}
