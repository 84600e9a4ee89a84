/*
 * classify.c — taskguard.classify(error_type, message, context) (docs/reference.md#classification).
 *
 * Evidence layers, strongest first: user rules (taskguard.classification_rule),
 * context sqlstate, context http_status, the exception type and message
 * patterns (classify_match.c).  The strongest layer that matches decides; each weaker
 * layer that agrees adds 0.05 to the confidence.
 *
 * Cache: the rules and taskguard.retry_policy are read once per backend into
 * ClassifyCache (memory context under CacheMemoryContext, which also holds
 * the compiled regexes: see ClassifyCompileRegex; pg_regfree frees them), a
 * TgConfigCache (taskguard.h): the tables' statement trigger
 * taskguard._config_changed() sends a relcache invalidation, which marks every
 * backend's copy stale, and the next call reloads it (SPI).  So a rule
 * committed in one session is used by every other session at its next
 * transaction, without reconnecting, and a classify() call costs no query.
 *
 * No locks beyond those SPI takes to read the two tables on a reload.
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "regex/regex.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/syscache.h"

#include "classify.h"
#include "classify_rule.h"
#include "taskguard.h"

PG_FUNCTION_INFO_V1(taskguard_classify);
PG_FUNCTION_INFO_V1(taskguard_classify_invalidate);

/* Bytes of error_type looked at (ILIKE and the exception table). */
#define CLASSIFY_NAME_PREFIX 4096

/* A user rule; NULL/absent conditions are not checked. */
typedef struct ClassifyUserRule
{
	int			id;
	text	   *type_pattern;	/* ILIKE pattern, or NULL */
	regex_t    *message_re;		/* compiled case-insensitive regex, or NULL */
	char		sqlstate_prefix[6]; /* uppercase; "" = no condition */
	int			http_min;		/* -1 = no lower bound */
	int			http_max;		/* -1 = no upper bound */
	TgFailureType type;
	double		confidence;
	TgRemedy	remedy;
} ClassifyUserRule;

typedef struct ClassifyCache
{
	TgConfigCache cc;			/* relids: classification_rule */
	MemoryContext cxt;
	Oid			type_oids[TG_FAILURE_TYPE_COUNT];
	Oid			remedy_oids[TG_REMEDY_COUNT];
	Oid			alert_oids[TG_ALERT_COUNT];
	ClassifyUserRule *rules;	/* in priority, id order */
	int			nrules;
} ClassifyCache;

static ClassifyCache cache;

const char *const tg_alert_names[TG_ALERT_COUNT] = {"info", "warning", "error", "critical"};


double
IntervalSeconds(const Interval *iv)
{
	return iv->time / 1000000.0 +
		(DAYS_PER_YEAR * SECS_PER_DAY) * (iv->month / MONTHS_PER_YEAR) +
		((double) SECS_PER_DAY * DAYS_PER_MONTH) * (iv->month % MONTHS_PER_YEAR) +
		(double) SECS_PER_DAY * iv->day;
}

/* Index of a label in a name table, or -1. */
int
ClassifyLabelIndex(const char *label, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(label, names[i]) == 0)
			return i;
	return -1;
}

static bool
ClassifyIsTransient(TgFailureType type)
{
	return type == TG_TRANSIENT_NETWORK || type == TG_TRANSIENT_DATABASE ||
		type == TG_TRANSIENT_RATE_LIMIT;
}

/* The OID of the enum label of taskguard.<typname>. */
static Oid
ClassifyEnumOid(Oid typoid, const char *label)
{
	return DatumGetObjectId(DirectFunctionCall2(enum_in, CStringGetDatum(label),
												ObjectIdGetDatum(typoid)));
}

static Oid
ClassifyTypeOidByName(Oid nsp, const char *name)
{
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
						   CStringGetDatum(name), ObjectIdGetDatum(nsp));
}

/* ---------- the cache ---------- */

/* Drop what the previous load built. */
static void
ClassifyCacheReset(void)
{
	for (int i = 0; i < cache.nrules; i++)
		if (cache.rules[i].message_re)
			pg_regfree(cache.rules[i].message_re);
	cache.rules = NULL;
	cache.nrules = 0;
	if (cache.cxt == NULL)
		cache.cxt = AllocSetContextCreate(CacheMemoryContext, "taskguard classify cache",
										  ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(cache.cxt);
}

/* The enum OIDs and the two tables' OIDs. */
static void
ClassifyLoadOids(void)
{
	Oid			nsp = get_namespace_oid("taskguard", false);
	Oid			ft = ClassifyTypeOidByName(nsp, "failure_type");
	Oid			rem = ClassifyTypeOidByName(nsp, "remediation");
	Oid			al = ClassifyTypeOidByName(nsp, "alert_level");

	for (int i = 0; i < TG_FAILURE_TYPE_COUNT; i++)
		cache.type_oids[i] = ClassifyEnumOid(ft, tg_failure_type_names[i]);
	for (int i = 0; i < TG_REMEDY_COUNT; i++)
		cache.remedy_oids[i] = ClassifyEnumOid(rem, tg_remedy_names[i]);
	for (int i = 0; i < TG_ALERT_COUNT; i++)
		cache.alert_oids[i] = ClassifyEnumOid(al, tg_alert_names[i]);
	cache.cc.relids[0] = get_relname_relid("classification_rule", nsp);
}

/* Column c (1-based) of the current SPI row as a C string, or NULL. */
static char *
ClassifyCol(HeapTuple tup, int c)
{
	return SPI_getvalue(tup, SPI_tuptable->tupdesc, c);
}


/*
 * Compile a rule's regex like ~* does; NULL (with a warning) if it does not
 * compile.  Since PostgreSQL 16 the regex library allocates in the current
 * memory context (before, with malloc).  The compiled rule must live as long
 * as the cache, and the caller's context is SPI's, deleted at SPI_finish: so
 * compile with the cache's context current, on every version.
 */
static regex_t *
ClassifyCompileRegex(const char *pattern, int id)
{
	int			len = strlen(pattern);
	pg_wchar   *wide = palloc((len + 1) * sizeof(pg_wchar));
	int			wlen = pg_mb2wchar_with_len(pattern, wide, len);
	regex_t    *re = MemoryContextAlloc(cache.cxt, sizeof(regex_t));
	MemoryContext old;
	int			rc;

	old = MemoryContextSwitchTo(cache.cxt);
	rc = pg_regcomp(re, wide, wlen, REG_ADVANCED | REG_ICASE, DEFAULT_COLLATION_OID);
	MemoryContextSwitchTo(old);
	pfree(wide);
	if (rc != REG_OKAY)
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_REGULAR_EXPRESSION),
				 errmsg("taskguard.classification_rule %d: message_pattern does not compile; rule ignored", id)));
		return NULL;
	}
	return re;
}

/*
 * A rule stored before its pattern was checked on write (classify_rule.c)
 * whose match time can explode: skipped, with a warning.
 */
static bool
ClassifyRuleUnsafe(const char *pattern, int id)
{
	const char *problem = ClassifyRulePatternProblem(pattern, strlen(pattern));

	if (problem == NULL)
		return false;
	ereport(WARNING,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("taskguard.classification_rule %d: message_pattern is refused: %s; rule ignored",
					id, problem)));
	return true;
}

static void
ClassifyLoadRules(void)
{
	int			n;

	SPI_execute("SELECT id, error_type_pattern, message_pattern, upper(sqlstate_prefix),"
				" http_status_min, http_status_max, failure_type::text, confidence,"
				" remediation::text"
				" FROM taskguard.classification_rule ORDER BY priority, id",
				true, 0);
	n = (int) SPI_processed;
	cache.rules = MemoryContextAllocZero(cache.cxt, sizeof(ClassifyUserRule) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		ClassifyUserRule *r = &cache.rules[cache.nrules];
		char	   *v;

		memset(r, 0, sizeof(*r));
		r->id = atoi(ClassifyCol(tup, 1));
		r->type = (TgFailureType) ClassifyLabelIndex(ClassifyCol(tup, 7), tg_failure_type_names,
													 TG_FAILURE_TYPE_COUNT);
		if ((v = ClassifyCol(tup, 2)) != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(cache.cxt);

			r->type_pattern = cstring_to_text(v);
			MemoryContextSwitchTo(old);
		}
		if ((v = ClassifyCol(tup, 3)) != NULL && ClassifyRuleUnsafe(v, r->id))
			continue;
		if (v != NULL && (r->message_re = ClassifyCompileRegex(v, r->id)) == NULL)
			continue;
		if ((v = ClassifyCol(tup, 4)) != NULL)
			strlcpy(r->sqlstate_prefix, v, sizeof(r->sqlstate_prefix));
		r->http_min = (v = ClassifyCol(tup, 5)) != NULL ? atoi(v) : -1;
		r->http_max = (v = ClassifyCol(tup, 6)) != NULL ? atoi(v) : -1;
		r->confidence = strtod(ClassifyCol(tup, 8), NULL);
		r->remedy = (v = ClassifyCol(tup, 9)) != NULL ?
			(TgRemedy) ClassifyLabelIndex(v, tg_remedy_names, TG_REMEDY_COUNT) : TG_REMEDY_DEFAULT;
		cache.nrules++;
	}
}

/*
 * Read the rules as their owner, so that classify() works for any role
 * that may call it, whatever its privileges on the table.
 */
static void
ClassifyLoadTables(void)
{
	TgSavedUser saved;

	TgActAsRelOwner(cache.cc.relids[0], &saved);
	PG_TRY();
	{
		ClassifyLoadRules();
	}
	PG_FINALLY();
	{
		TgRestoreUser(&saved);
	}
	PG_END_TRY();
}

/* Make the cache current (an error while reading leaves no copy). */
static void
ClassifyEnsureCache(void)
{
	uint64		generation;

	if (TgConfigCacheCurrent(&cache.cc))
		return;
	if (!tg_match_init())
		elog(ERROR, "taskguard: built-in classification tables are inconsistent");
	generation = TgConfigCacheLoadBegin(&cache.cc);
	ClassifyCacheReset();
	ClassifyLoadOids();
	TgSpiConnect();
	ClassifyLoadTables();
	SPI_finish();
	TgConfigCacheLoadEnd(&cache.cc, generation);
}


TgFailureType
ClassifyTypeFromOid(Oid value)
{
	ClassifyEnsureCache();
	for (int i = 0; i < TG_FAILURE_TYPE_COUNT; i++)
		if (cache.type_oids[i] == value)
			return (TgFailureType) i;
	return TG_UNKNOWN;
}

Oid
ClassifyTypeOid(TgFailureType type)
{
	ClassifyEnsureCache();
	return cache.type_oids[type];
}

/* ---------- context ---------- */

/* What classify() uses of its context argument. */
typedef struct ClassifyContext
{
	char		sqlstate[6];	/* uppercase, "" if absent or malformed */
	int			http_status;	/* 100..599, else -1 */
	int			retry_count;	/* >= 0 */
	const char *task_name;		/* not NUL-terminated */
	int			task_name_len;
} ClassifyContext;

/* A JSON number or numeric string as a double; false if neither. */
static bool
ClassifyJsonNumber(JsonbValue *v, double *out)
{
	char	   *s,
			   *end;

	if (v->type == jbvNumeric)
		s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString && v->val.string.len > 0 && v->val.string.len < 32)
		s = pnstrdup(v->val.string.val, v->val.string.len);
	else
		return false;
	*out = strtod(s, &end);
	return end != s && *end == '\0' && !isnan(*out);
}

static void
ClassifyReadContext(Jsonb *jb, ClassifyContext *cx)
{
	JsonbValue	v;
	double		d;

	memset(cx, 0, sizeof(*cx));
	cx->http_status = -1;
	if (jb == NULL || !JB_ROOT_IS_OBJECT(jb))
		return;
	if (getKeyJsonValueFromContainer(&jb->root, "sqlstate", 8, &v) &&
		v.type == jbvString && v.val.string.len == 5)
	{
		for (int i = 0; i < 5; i++)
		{
			char		c = v.val.string.val[i];

			if (!isalnum((unsigned char) c))
			{
				cx->sqlstate[0] = '\0';
				break;
			}
			cx->sqlstate[i] = pg_ascii_toupper(c);
		}
	}
	if (getKeyJsonValueFromContainer(&jb->root, "http_status", 11, &v) &&
		ClassifyJsonNumber(&v, &d) && d >= 100 && d <= 599 && d == floor(d))
		cx->http_status = (int) d;
	if (getKeyJsonValueFromContainer(&jb->root, "retry_count", 11, &v) &&
		ClassifyJsonNumber(&v, &d) && d > 0)
		cx->retry_count = d > INT_MAX ? INT_MAX : (int) d;
	if (getKeyJsonValueFromContainer(&jb->root, "task_name", 9, &v) &&
		v.type == jbvString)
	{
		cx->task_name = v.val.string.val;
		cx->task_name_len = v.val.string.len;
	}
}

/* ---------- evidence layers ---------- */

/* Layer 2: the type a sqlstate names, or -1. */
static int
ClassifySqlstate(const char *s)
{
	if (s[0] == '\0')
		return -1;
	if (strncmp(s, "08", 2) == 0 || strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 ||
		strcmp(s, "53300") == 0 || strcmp(s, "57014") == 0 || strcmp(s, "55P03") == 0)
		return TG_TRANSIENT_DATABASE;
	if (strcmp(s, "53100") == 0)
		return TG_SYSTEM_DISK_FULL;
	if (strcmp(s, "53200") == 0)
		return TG_SYSTEM_OUT_OF_MEMORY;
	if (strncmp(s, "22", 2) == 0)
		return TG_PERMANENT_INVALID_INPUT;
	if (strncmp(s, "28", 2) == 0)
		return TG_PERMANENT_AUTHENTICATION;
	if (strcmp(s, "42501") == 0)
		return TG_CONFIGURATION_PERMISSIONS;
	if (strcmp(s, "P0001") == 0 || strncmp(s, "23", 2) == 0)
		return TG_BUSINESS_LOGIC_VIOLATION;
	return -1;
}

/* Layer 3: the type an HTTP status names, or -1. */
static int
ClassifyHttp(int status)
{
	switch (status)
	{
		case 429:
			return TG_TRANSIENT_RATE_LIMIT;
		case 401:
		case 403:
			return TG_PERMANENT_AUTHENTICATION;
		case 404:
		case 410:
			return TG_PERMANENT_NOT_FOUND;
		case 400:
		case 422:
			return TG_PERMANENT_INVALID_INPUT;
		case 503:
		case 504:
			return TG_EXTERNAL_SERVICE_UNAVAILABLE;
	}
	return (status >= 500 && status <= 599) ? TG_EXTERNAL_API_ERROR : -1;
}

/* Does an ILIKE pattern match name (whole) or its last component? */
static bool
ClassifyIlike(text *pattern, const char *name, int len)
{
	const char *last;
	size_t		lastlen;
	text	   *t = cstring_to_text_with_len(name, len);
	bool		hit = DatumGetBool(DirectFunctionCall2Coll(texticlike, DEFAULT_COLLATION_OID,
														   PointerGetDatum(t),
														   PointerGetDatum(pattern)));

	pfree(t);
	if (hit)
		return true;
	tg_match_last_component(name, len, &last, &lastlen);
	if ((int) lastlen == len)
		return false;
	t = cstring_to_text_with_len(last, lastlen);
	hit = DatumGetBool(DirectFunctionCall2Coll(texticlike, DEFAULT_COLLATION_OID,
											   PointerGetDatum(t), PointerGetDatum(pattern)));
	pfree(t);
	return hit;
}

/* The inputs, bounded; wide is the message as pg_wchar, made on first need. */
typedef struct ClassifyInput
{
	const char *etype;
	int			etype_len;
	const char *msg;
	int			msg_len;
	pg_wchar   *wide;
	int			wide_len;
	ClassifyContext cx;
} ClassifyInput;

static bool
ClassifyRegexMatches(regex_t *re, ClassifyInput *in)
{
	if (in->msg == NULL)
		return false;
	if (in->wide == NULL)
	{
		in->wide = palloc((in->msg_len + 1) * sizeof(pg_wchar));
		in->wide_len = pg_mb2wchar_with_len(in->msg, in->wide, in->msg_len);
	}
	return pg_regexec(re, in->wide, in->wide_len, 0, NULL, 0, NULL, 0) == REG_OKAY;
}

/* Layer 1: the first user rule whose every condition holds, or NULL. */
static const ClassifyUserRule *
ClassifyUserRules(ClassifyInput *in)
{
	for (int i = 0; i < cache.nrules; i++)
	{
		const ClassifyUserRule *r = &cache.rules[i];

		if (r->sqlstate_prefix[0] != '\0' &&
			strncmp(in->cx.sqlstate, r->sqlstate_prefix, strlen(r->sqlstate_prefix)) != 0)
			continue;
		if ((r->http_min >= 0 || r->http_max >= 0) &&
			(in->cx.http_status < 0 ||
			 (r->http_min >= 0 && in->cx.http_status < r->http_min) ||
			 (r->http_max >= 0 && in->cx.http_status > r->http_max)))
			continue;
		if (r->type_pattern &&
			(in->etype == NULL || !ClassifyIlike(r->type_pattern, in->etype, in->etype_len)))
			continue;
		if (r->message_re && !ClassifyRegexMatches(r->message_re, in))
			continue;
		return r;
	}
	return NULL;
}

/* The result of classify(). */
typedef struct ClassifyResult
{
	TgFailureType type;
	double		confidence;
	TgRemedy	remedy;
	bool		retryable;
	int			alert;
	char		rule[320];
} ClassifyResult;

enum
{
	LAYER_USER, LAYER_SQLSTATE, LAYER_HTTP, LAYER_EXCEPTION, LAYER_MESSAGE, LAYER_COUNT
};

/* What each layer found: a type (-1: nothing) and a remediation override. */
typedef struct ClassifyEvidence
{
	int			types[LAYER_COUNT];
	TgRemedy	remedies[LAYER_COUNT];
	const ClassifyUserRule *user;
	const TgRule *pattern;
	const char *last;			/* the error type's last component */
	size_t		lastlen;
} ClassifyEvidence;

/* Look at every layer once. */
static void
ClassifyGather(ClassifyInput *in, ClassifyEvidence *ev)
{
	const TgRule *exc = NULL;

	memset(ev, 0, sizeof(*ev));
	ev->user = cache.nrules > 0 ? ClassifyUserRules(in) : NULL;
	if (in->etype)
		exc = tg_match_exception(in->etype, in->etype_len, &ev->last, &ev->lastlen);
	if (in->msg)
		ev->pattern = tg_match_message(in->msg, in->msg_len);
	ev->types[LAYER_USER] = ev->user ? (int) ev->user->type : -1;
	ev->types[LAYER_SQLSTATE] = ClassifySqlstate(in->cx.sqlstate);
	ev->types[LAYER_HTTP] = ClassifyHttp(in->cx.http_status);
	ev->types[LAYER_EXCEPTION] = exc ? (int) exc->type : -1;
	ev->types[LAYER_MESSAGE] = ev->pattern ? (int) ev->pattern->type : -1;
	ev->remedies[LAYER_USER] = ev->user ? ev->user->remedy : TG_REMEDY_DEFAULT;
	ev->remedies[LAYER_SQLSTATE] = ev->remedies[LAYER_HTTP] = TG_REMEDY_DEFAULT;
	ev->remedies[LAYER_EXCEPTION] = exc ? exc->remedy : TG_REMEDY_DEFAULT;
	ev->remedies[LAYER_MESSAGE] = ev->pattern ? ev->pattern->remedy : TG_REMEDY_DEFAULT;
}

/* The deciding layer's base confidence plus 0.05 per agreeing weaker layer (at most 0.99). */
static double
ClassifyConfidence(const ClassifyEvidence *ev, int decider)
{
	static const double base[LAYER_COUNT] = {0, 0.9, 0.9, 0.85, 0.6};
	double		conf;
	int			agree = 0;

	if (decider == LAYER_USER)
		conf = ev->user->confidence;
	else if (ev->types[decider] == TG_UNKNOWN)
		conf = 0.2;				/* taskguard.LeaseExpired */
	else
		conf = base[decider];
	for (int l = decider + 1; l < LAYER_COUNT; l++)
		if (ev->types[l] == ev->types[decider])
			agree++;
	if (agree > 0)
		conf = Max(conf, Min(0.99, conf + 0.05 * agree));
	return conf;
}

/* Name the deciding rule: user:<id>, sqlstate:…, http:…, exception:…, message:…. */
static void
ClassifyNameRule(const ClassifyInput *in, const ClassifyEvidence *ev, int decider,
				 char *buf, size_t size)
{
	switch (decider)
	{
		case LAYER_USER:
			snprintf(buf, size, "user:%d", ev->user->id);
			break;
		case LAYER_SQLSTATE:
			snprintf(buf, size, "sqlstate:%s", in->cx.sqlstate);
			break;
		case LAYER_HTTP:
			snprintf(buf, size, "http:%d", in->cx.http_status);
			break;
		case LAYER_EXCEPTION:
			snprintf(buf, size, "exception:%.*s",
					 pg_mbcliplen(ev->last, ev->lastlen, Min(ev->lastlen, 256)), ev->last);
			break;
		default:
			snprintf(buf, size, "message:%s", ev->pattern->text);
	}
}

/* Each retry_count beyond 2 lowers a transient type's confidence; at 5 the alert rises. */
static void
ClassifyRefine(const ClassifyInput *in, ClassifyResult *res)
{
	int			rc = in->cx.retry_count;

	if (!ClassifyIsTransient(res->type) || rc <= 2)
		return;
	res->confidence = Min(res->confidence, Max(0.5, res->confidence - 0.05 * (rc - 2)));
	if (rc >= 5 && res->alert < TG_ALERT_COUNT - 1)
		res->alert++;
}

/* Run the layers, decide, apply the policy and refine by retry_count. */
static void
ClassifyRun(ClassifyInput *in, ClassifyResult *res)
{
	ClassifyEvidence ev;
	int			decider = -1;
	const TgPolicy *policy;

	ClassifyGather(in, &ev);
	for (int l = 0; l < LAYER_COUNT && decider < 0; l++)
		if (ev.types[l] >= 0)
			decider = l;
	if (decider < 0)
	{
		res->type = TG_UNKNOWN;
		res->confidence = 0.2;
		strlcpy(res->rule, "default", sizeof(res->rule));
	}
	else
	{
		res->type = (TgFailureType) ev.types[decider];
		res->confidence = ClassifyConfidence(&ev, decider);
		ClassifyNameRule(in, &ev, decider, res->rule, sizeof(res->rule));
	}
	policy = RetryPolicy(res->type, in->cx.task_name, in->cx.task_name_len);
	res->remedy = decider >= 0 && ev.remedies[decider] != TG_REMEDY_DEFAULT ?
		ev.remedies[decider] : policy->remedy;
	res->retryable = policy->retryable;
	res->alert = policy->alert;
	ClassifyRefine(in, res);
}

/* A text argument, only its first `limit` bytes detoasted, clipped to whole characters. */
static void
ClassifyArgPrefix(FunctionCallInfo fcinfo, int argno, int limit, const char **s, int *len)
{
	struct varlena *v;

	*s = NULL;
	*len = 0;
	if (PG_ARGISNULL(argno))
		return;
	v = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(argno));
	if (VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
		v = pg_detoast_datum_slice(v, 0, limit);
	*s = VARDATA_ANY(v);
	*len = VARSIZE_ANY_EXHDR(v);
	if (*len > limit)
		*len = pg_mbcliplen(*s, *len, limit);
	if (*len == 0)
		*s = NULL;
}

/*
 * taskguard.classify(error_type text, message text, context jsonb)
 * RETURNS taskguard.classification.  Never raises for any input.
 */
Datum
taskguard_classify(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc = (TupleDesc) fcinfo->flinfo->fn_extra;
	ClassifyInput in;
	ClassifyResult res;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	if (tupdesc == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "taskguard.classify must return a composite type");
		tupdesc = BlessTupleDesc(CreateTupleDescCopy(tupdesc));
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = tupdesc;
	}
	ClassifyEnsureCache();

	memset(&in, 0, sizeof(in));
	ClassifyArgPrefix(fcinfo, 0, CLASSIFY_NAME_PREFIX, &in.etype, &in.etype_len);
	ClassifyArgPrefix(fcinfo, 1, TG_MATCH_PREFIX, &in.msg, &in.msg_len);
	ClassifyReadContext(PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2), &in.cx);
	ClassifyRun(&in, &res);

	values[0] = ObjectIdGetDatum(cache.type_oids[res.type]);
	values[1] = Float4GetDatum((float4) res.confidence);
	values[2] = ObjectIdGetDatum(cache.remedy_oids[res.remedy]);
	values[3] = BoolGetDatum(res.retryable);
	values[4] = ObjectIdGetDatum(cache.alert_oids[res.alert]);
	values[5] = CStringGetTextDatum(res.rule);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* 0.1.0's trigger function of classification_rule and retry_policy (0.2.0: _config_changed). */
Datum
taskguard_classify_invalidate(PG_FUNCTION_ARGS)
{
	return TgConfigChangedTrigger(fcinfo);
}
