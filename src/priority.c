/*
 * priority.c — calculate_priority, priority_level and the escalation score
 * (docs/reference.md#priority).
 *
 * score = base + tier bonus + aging + SLA pressure + failure urgency, clamped
 * to [0, 4].  enqueue() calls this for every task, so the small configuration
 * tables (task_config, customer_tier, priority_queue) are read once per backend
 * into a cache and re-read only after a relcache invalidation of one of them:
 * their statement trigger (_config_changed, see TgConfigCache) sends one on
 * every change, and DROP/ALTER send their own.  A failure type's
 * priority_adjustment is its retry policy's, from retry.c's resolver.
 *
 * No shared state, no locks.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "classify.h"
#include "priority.h"
#include "taskguard.h"

static const char *const prio_level_names[PRIO_LEVELS] =
{"DEFERRED", "LOW", "MEDIUM", "HIGH", "CRITICAL"};

/*
 * The failure types are classify_match.h's (tg_failure_type_names, in the
 * order of the SQL enum): one list of the 15 types in C.
 */
#define PRIO_FAILURE_TYPES TG_FAILURE_TYPE_COUNT

typedef struct PrioTaskConfig
{
	char	   *task_name;
	double		base;
} PrioTaskConfig;

typedef struct PrioTier
{
	char	   *tier;
	double		sla_seconds;
	double		bonus;
} PrioTier;

/* The per-backend copy of the configuration tables. */
typedef struct PrioCache
{
	TgConfigCache cc;			/* relids: task_config, customer_tier,
								 * priority_queue */
	PrioTaskConfig *configs;	/* sorted by task_name, byte order */
	int			nconfigs;
	PrioTier   *tiers;
	int			ntiers;
	char	   *queues[PRIO_LEVELS];
} PrioCache;

static PrioCache prio_cache;

/* Labels of taskguard.priority; kept across cache reloads, keyed by type. */
static Oid	prio_enum_typid = InvalidOid;
static Datum prio_enum_labels[PRIO_LEVELS];
static MemoryContext prio_cxt = NULL;

PG_FUNCTION_INFO_V1(taskguard_calculate_priority);
PG_FUNCTION_INFO_V1(taskguard_priority_level);
PG_FUNCTION_INFO_V1(taskguard_escalation_bonus);
PG_FUNCTION_INFO_V1(taskguard_priority_config_changed);

/* ---------------------------------------------------------------------
 * The configuration cache
 * --------------------------------------------------------------------- */

/* Run a read-only query; its rows stay in SPI_tuptable. */
static void
PrioQuery(const char *sql)
{
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "priority cache query failed: %s", sql);
}

static char *
PrioGetText(int row, int col)
{
	char	   *s = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return s ? MemoryContextStrdup(prio_cxt, s) : NULL;
}

static double
PrioGetFloat(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? 0.0 : DatumGetFloat8(d);
}

static Oid
PrioRelid(const char *name)
{
	return get_relname_relid(name, get_namespace_oid("taskguard", false));
}

static void
PrioLoadConfigs(void)
{
	PrioQuery("SELECT task_name, taskguard._priority_score(base_priority)::float8 "
			  "FROM taskguard.task_config ORDER BY task_name COLLATE \"C\"");
	prio_cache.nconfigs = SPI_processed;
	prio_cache.configs = MemoryContextAlloc(prio_cxt, sizeof(PrioTaskConfig) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		prio_cache.configs[i].task_name = PrioGetText(i, 1);
		prio_cache.configs[i].base = PrioGetFloat(i, 2);
	}
}

static void
PrioLoadTiers(void)
{
	PrioQuery("SELECT tier, extract(epoch FROM sla)::float8, bonus::float8 "
			  "FROM taskguard.customer_tier");
	prio_cache.ntiers = SPI_processed;
	prio_cache.tiers = MemoryContextAlloc(prio_cxt, sizeof(PrioTier) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		prio_cache.tiers[i].tier = PrioGetText(i, 1);
		prio_cache.tiers[i].sla_seconds = PrioGetFloat(i, 2);
		prio_cache.tiers[i].bonus = PrioGetFloat(i, 3);
	}
}

static void
PrioLoadQueues(void)
{
	static const char *const defaults[PRIO_LEVELS] =
	{"deferred", "low", "default", "high", "critical"};

	for (int i = 0; i < PRIO_LEVELS; i++)
		prio_cache.queues[i] = MemoryContextStrdup(prio_cxt, defaults[i]);
	PrioQuery("SELECT taskguard._priority_score(priority)::int, queue FROM taskguard.priority_queue");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			level = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 1, &isnull));

		if (!isnull && level >= 0 && level < PRIO_LEVELS)
			prio_cache.queues[level] = PrioGetText(i, 2);
	}
}

/* Fill the cache from the tables if an invalidation emptied it. */
static void
PrioEnsureCache(void)
{
	uint64		generation;

	if (TgConfigCacheCurrent(&prio_cache.cc))
		return;
	generation = TgConfigCacheLoadBegin(&prio_cache.cc);
	if (prio_cxt == NULL)
		prio_cxt = AllocSetContextCreate(CacheMemoryContext, "taskguard priority cache",
										 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(prio_cxt);

	TgSpiConnect();
	prio_cache.cc.relids[0] = PrioRelid("task_config");
	prio_cache.cc.relids[1] = PrioRelid("customer_tier");
	prio_cache.cc.relids[2] = PrioRelid("priority_queue");
	PrioLoadConfigs();
	PrioLoadTiers();
	PrioLoadQueues();
	SPI_finish();
	TgConfigCacheLoadEnd(&prio_cache.cc, generation);
}

static const PrioTaskConfig *
PrioFindConfig(const char *task_name)
{
	int			lo = 0,
				hi = prio_cache.nconfigs - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			cmp = strcmp(task_name, prio_cache.configs[mid].task_name);

		if (cmp == 0)
			return &prio_cache.configs[mid];
		if (cmp < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

static const PrioTier *
PrioFindTier(const char *tier)
{
	for (int i = 0; tier != NULL && i < prio_cache.ntiers; i++)
		if (strcmp(prio_cache.tiers[i].tier, tier) == 0)
			return &prio_cache.tiers[i];
	return NULL;
}

/* The label Datum of a level of the enum type typid (cached per type). */
static Datum
PrioLevelDatum(Oid typid, int level)
{
	if (prio_enum_typid != typid)
	{
		for (int i = 0; i < PRIO_LEVELS; i++)
			prio_enum_labels[i] =
				DirectFunctionCall2(enum_in, CStringGetDatum(prio_level_names[i]),
									ObjectIdGetDatum(typid));
		prio_enum_typid = typid;
	}
	return prio_enum_labels[level];
}

/* ---------------------------------------------------------------------
 * The terms
 * --------------------------------------------------------------------- */

static int
PrioLevelOf(double score)
{
	if (score >= 3.5)
		return 4;
	if (score >= 2.5)
		return 3;
	if (score >= 1.5)
		return 2;
	if (score >= 0.5)
		return 1;
	return 0;
}

static double
PrioAgingBonus(double age_hours)
{
	if (age_hours >= 24)
		return 2.0;
	if (age_hours >= 12)
		return 1.0;
	if (age_hours >= 6)
		return 0.5;
	return 0.0;
}

static double
PrioSlaBonus(double age_seconds, double sla_seconds)
{
	if (sla_seconds <= 0)
		return 0.0;
	if (age_seconds >= sla_seconds)
		return 1.0;
	if (age_seconds >= sla_seconds / 2)
		return 0.5;
	return 0.0;
}

/* The SLA of a tier, falling back to standard's, then to 2 hours. */
static const PrioTier *
PrioTierOrStandard(const char *tier, bool *unknown)
{
	const PrioTier *t = PrioFindTier(tier);

	*unknown = (t == NULL);
	return t ? t : PrioFindTier("standard");
}

static double
PrioTierSla(const PrioTier *t)
{
	return t ? t->sla_seconds : 2 * 3600.0;
}

/* Seconds from ts to until, at least 0; infinite ends are handled. */
static double
PrioAgeBetween(TimestampTz ts, TimestampTz until)
{
	if (TIMESTAMP_IS_NOEND(ts) || TIMESTAMP_IS_NOBEGIN(until))
		return 0.0;
	if (TIMESTAMP_IS_NOBEGIN(ts) || TIMESTAMP_IS_NOEND(until))
		return get_float8_infinity();
	return Max(0.0, ((double) until - (double) ts) / USECS_PER_SEC);
}

/* Seconds from ts to now (the transaction start). */
static double
PrioAgeSeconds(TimestampTz ts)
{
	return PrioAgeBetween(ts, GetCurrentTransactionStartTimestamp());
}

/* ---------------------------------------------------------------------
 * Context parsing
 * --------------------------------------------------------------------- */

/* context->>field as a C string; NULL when absent or JSON null. */
static char *
PrioContextText(Jsonb *context, const char *field)
{
	JsonbValue *v;

	if (context == NULL)
		return NULL;
	v = getKeyJsonValueFromContainer(&context->root, field, strlen(field), NULL);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("context field \"%s\" must be a scalar", field)));
	}
	return NULL;
}

/* The age in seconds the context describes (age_hours, else enqueued_at), or 0. */
static double
PrioContextAge(Jsonb *context)
{
	char	   *s = PrioContextText(context, "age_hours");
	char	   *end;
	double		hours;

	if (s != NULL)
	{
		errno = 0;
		hours = strtod(s, &end);
		if (end == s || *end != '\0' || isnan(hours))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("context field \"age_hours\" must be a number, got \"%s\"", s)));
		return Max(0.0, hours) * 3600.0;
	}
	s = PrioContextText(context, "enqueued_at");
	if (s != NULL)
		return PrioAgeSeconds(DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
																	  CStringGetDatum(s),
																	  ObjectIdGetDatum(InvalidOid),
																	  Int32GetDatum(-1))));
	return 0.0;
}

/* The index of a failure type name in tg_failure_type_names; raises if unknown. */
static int
PrioFailureIndex(const char *name)
{
	for (int i = 0; i < PRIO_FAILURE_TYPES; i++)
		if (strcmp(tg_failure_type_names[i], name) == 0)
			return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("context field \"failure_type\" is not a failure type: \"%s\"", name)));
	return -1;
}

/* The priority adjustment of a failure type for task_name: its retry policy's (retry.c). */
static double
PrioFailureAdjust(const char *failure_type, const char *task_name)
{
	return RetryPolicy((TgFailureType) PrioFailureIndex(failure_type), task_name,
					   task_name ? strlen(task_name) : 0)->priority_adjustment;
}

/* ---------------------------------------------------------------------
 * SQL functions
 * --------------------------------------------------------------------- */

/* Append "term +x" to reasons. */
static void
PrioReason(List **reasons, const char *fmt,...) pg_attribute_printf(2, 3);

static void
PrioReason(List **reasons, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	*reasons = lappend(*reasons, buf.data);
}

/* A text[] of C strings. */
static Datum
PrioTextArray(List *items)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(items), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, items)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* An SLA for a reason: "15 min", "2 h", "90 s". */
static const char *
PrioDuration(double seconds)
{
	if (seconds >= 3600 && fmod(seconds, 3600) == 0)
		return psprintf("%g h", seconds / 3600);
	if (seconds >= 60 && fmod(seconds, 60) == 0)
		return psprintf("%g min", seconds / 60);
	return psprintf("%g s", seconds);
}

/* Signed term for a reason: "+1", "-0.5". */
static const char *
PrioSigned(double x)
{
	return psprintf("%s%g", x >= 0 ? "+" : "", x);
}

/*
 * taskguard.calculate_priority(task_name text, context jsonb DEFAULT '{}')
 * RETURNS taskguard.priority_result (priority, score, queue, reasons).
 * context: customer_tier, age_hours or enqueued_at, failure_type.
 */
Datum
taskguard_calculate_priority(PG_FUNCTION_ARGS)
{
	Jsonb	   *context = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	TupleDesc	tupdesc;
	char	   *task_name;
	char	   *tier_name;
	char	   *failure_type;
	const PrioTaskConfig *config;
	const PrioTier *tier;
	bool		unknown_tier;
	double		score, age, term, raw;
	List	   *reasons = NIL;
	int			level;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"task_name\" must not be NULL")));
	task_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (context != NULL && !JB_ROOT_IS_OBJECT(context))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("context must be a JSON object")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "calculate_priority must return a composite type");
	PrioEnsureCache();

	config = PrioFindConfig(task_name);
	score = config ? config->base : 2.0;
	level = PrioLevelOf(score);
	PrioReason(&reasons, "base %s %g%s", prio_level_names[level], score,
			   config ? "" : " (not configured)");

	tier_name = PrioContextText(context, "customer_tier");
	tier = PrioTierOrStandard(tier_name, &unknown_tier);
	if (unknown_tier && tier_name != NULL)
		PrioReason(&reasons, "tier %s unknown, as standard", tier_name);
	if (tier != NULL && tier->bonus != 0)
	{
		score += tier->bonus;
		PrioReason(&reasons, "tier %s %s", tier->tier, PrioSigned(tier->bonus));
	}

	age = PrioContextAge(context);
	term = PrioAgingBonus(age / 3600.0);
	if (term != 0)
	{
		score += term;
		PrioReason(&reasons, "aging %gh %s", floor(age / 360.0) / 10.0, PrioSigned(term));
	}
	term = PrioSlaBonus(age, PrioTierSla(tier));
	if (term != 0)
	{
		score += term;
		PrioReason(&reasons, "sla %s %s %s", PrioDuration(PrioTierSla(tier)),
				   term >= 1.0 ? "breached" : "half used", PrioSigned(term));
	}

	failure_type = PrioContextText(context, "failure_type");
	if (failure_type != NULL)
	{
		term = PrioFailureAdjust(failure_type, task_name);
		if (term != 0)
		{
			score += term;
			PrioReason(&reasons, "failure %s %s", failure_type, PrioSigned(term));
		}
	}

	raw = score;
	score = Min(PRIO_SCORE_MAX, Max(0.0, score));
	if (raw != score)
		PrioReason(&reasons, "clamped %g to %g", raw, score);
	level = PrioLevelOf(score);

	values[0] = PrioLevelDatum(TupleDescAttr(tupdesc, 0)->atttypid, level);
	values[1] = Float4GetDatum((float4) score);
	values[2] = CStringGetTextDatum(prio_cache.queues[level]);
	values[3] = PrioTextArray(reasons);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* taskguard.priority_level(score real): ≥3.5 CRITICAL … else DEFERRED; NaN refused. */
Datum
taskguard_priority_level(PG_FUNCTION_ARGS)
{
	float4		score = PG_GETARG_FLOAT4(0);
	Oid			typid = get_fn_expr_rettype(fcinfo->flinfo);

	if (isnan(score))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("score must be a number, got NaN")));
	if (!OidIsValid(typid))
		elog(ERROR, "could not determine the result type of priority_level");
	PG_RETURN_DATUM(PrioLevelDatum(typid, PrioLevelOf(score)));
}

/*
 * taskguard._escalation_bonus(customer_tier text, enqueued_at timestamptz,
 * as_of timestamptz DEFAULT now): the aging and SLA terms a task enqueued at
 * enqueued_at has earned by as_of.  The scheduler's escalation step adds the
 * bonus earned by now to a task's un-aged base score.
 */
Datum
taskguard_escalation_bonus(PG_FUNCTION_ARGS)
{
	char	   *tier_name = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	TimestampTz as_of = PG_ARGISNULL(2) ? GetCurrentTransactionStartTimestamp()
		: PG_GETARG_TIMESTAMPTZ(2);
	double		age = PG_ARGISNULL(1) ? 0.0 : PrioAgeBetween(PG_GETARG_TIMESTAMPTZ(1), as_of);
	bool		unknown;
	const PrioTier *tier;

	PrioEnsureCache();
	tier = PrioTierOrStandard(tier_name, &unknown);
	PG_RETURN_FLOAT4((float4) (PrioAgingBonus(age / 3600.0) +
							   PrioSlaBonus(age, PrioTierSla(tier))));
}

/* 0.1.0's trigger function of the priority tables (0.2.0: _config_changed). */
Datum
taskguard_priority_config_changed(PG_FUNCTION_ARGS)
{
	return TgConfigChangedTrigger(fcinfo);
}
