/*
 * classify_match_test.c — the pure-C message matcher and exception table (docs/reference.md#classification).
 */
/* link: src/classify_match.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify_match.h"

static int	n = 0;
static int	failed = 0;

static void
ok(int cond, const char *what)
{
	n++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n, what);
	if (!cond)
		failed = 1;
}

/* The type a message classifies as, or "none". */
static const char *
msg_type(const char *m)
{
	const TgRule *r = tg_match_message(m, strlen(m));

	return r ? tg_failure_type_names[r->type] : "none";
}

static const char *
msg_rule(const char *m)
{
	const TgRule *r = tg_match_message(m, strlen(m));

	return r ? r->text : "none";
}

static const char *
exc_type(const char *e)
{
	const TgRule *r = tg_match_exception(e, strlen(e), NULL, NULL);

	return r ? tg_failure_type_names[r->type] : "none";
}

#define IS(got, want, what) do { \
	const char *g_ = (got); \
	ok(strcmp(g_, (want)) == 0, what); \
	if (strcmp(g_, (want)) != 0) printf("#   got '%s', want '%s'\n", g_, (want)); \
} while (0)

static void
test_spec_patterns(void)
{
	/* every message pattern docs/reference.md#classification promises */
	static const struct { const char *p; const char *t; } spec[] = {
		{"connection refused", "TRANSIENT_NETWORK"}, {"connection reset", "TRANSIENT_NETWORK"},
		{"timed out", "TRANSIENT_NETWORK"}, {"timeout", "TRANSIENT_NETWORK"},
		{"network is unreachable", "TRANSIENT_NETWORK"}, {"name or service not known", "TRANSIENT_NETWORK"},
		{"temporary failure in name resolution", "TRANSIENT_NETWORK"},
		{"deadlock detected", "TRANSIENT_DATABASE"}, {"could not serialize", "TRANSIENT_DATABASE"},
		{"server closed the connection", "TRANSIENT_DATABASE"}, {"too many connections", "TRANSIENT_DATABASE"},
		{"too many clients", "TRANSIENT_DATABASE"},
		{"rate limit", "TRANSIENT_RATE_LIMIT"}, {"too many requests", "TRANSIENT_RATE_LIMIT"},
		{"throttl", "TRANSIENT_RATE_LIMIT"}, {"quota exceeded", "TRANSIENT_RATE_LIMIT"},
		{"no space left on device", "SYSTEM_DISK_FULL"}, {"disk full", "SYSTEM_DISK_FULL"},
		{"disk quota exceeded", "SYSTEM_DISK_FULL"},
		{"out of memory", "SYSTEM_OUT_OF_MEMORY"}, {"cannot allocate memory", "SYSTEM_OUT_OF_MEMORY"},
		{"load average", "SYSTEM_CPU_OVERLOAD"}, {"cpu overload", "SYSTEM_CPU_OVERLOAD"},
		{"invalid api key", "PERMANENT_AUTHENTICATION"}, {"unauthorized", "PERMANENT_AUTHENTICATION"},
		{"authentication failed", "PERMANENT_AUTHENTICATION"}, {"invalid token", "PERMANENT_AUTHENTICATION"},
		{"token expired", "PERMANENT_AUTHENTICATION"},
		{"permission denied", "CONFIGURATION_PERMISSIONS"}, {"access denied", "CONFIGURATION_PERMISSIONS"},
		{"not authorized to perform", "CONFIGURATION_PERMISSIONS"},
		{"environment variable", "CONFIGURATION_MISSING_ENV"}, {"not configured", "CONFIGURATION_MISSING_ENV"},
		{"missing setting", "CONFIGURATION_MISSING_ENV"},
		{"not found", "PERMANENT_NOT_FOUND"}, {"does not exist", "PERMANENT_NOT_FOUND"},
		{"no such file", "PERMANENT_NOT_FOUND"},
		{"invalid", "PERMANENT_INVALID_INPUT"}, {"malformed", "PERMANENT_INVALID_INPUT"},
		{"validation", "PERMANENT_INVALID_INPUT"}, {"cannot parse", "PERMANENT_INVALID_INPUT"},
		{"service unavailable", "EXTERNAL_SERVICE_UNAVAILABLE"}, {"bad gateway", "EXTERNAL_SERVICE_UNAVAILABLE"},
		{"gateway timeout", "EXTERNAL_SERVICE_UNAVAILABLE"},
		{"insufficient funds", "BUSINESS_LOGIC_VIOLATION"}, {"business rule", "BUSINESS_LOGIC_VIOLATION"},
	};
	char		buf[256];

	for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++)
	{
		/* embedded, upper-cased, in a sentence */
		size_t		k = 0;

		k += (size_t) snprintf(buf, sizeof(buf), "Error: ");
		for (const char *s = spec[i].p; *s; s++)
			buf[k++] = (*s >= 'a' && *s <= 'z') ? (char) (*s - 32) : *s;
		snprintf(buf + k, sizeof(buf) - k, " (code 7)");
		snprintf(buf + 200, 56, "spec pattern '%s'", spec[i].p);
		IS(msg_type(buf), spec[i].t, buf + 200);
	}
}

static void
test_specificity(void)
{
	IS(msg_type("Invalid API key provided"), "PERMANENT_AUTHENTICATION", "invalid api key beats invalid");
	IS(msg_type("504 Gateway Timeout"), "EXTERNAL_SERVICE_UNAVAILABLE", "gateway timeout beats timeout");
	IS(msg_rule("504 Gateway Timeout"), "gateway timeout", "rule is the specific pattern");
	IS(msg_type("disk quota exceeded"), "SYSTEM_DISK_FULL", "disk quota exceeded beats quota exceeded");
	IS(msg_type("user not found: permission denied"), "CONFIGURATION_PERMISSIONS", "specific beats generic not found");
	IS(msg_type("User is not authorized to perform: s3:GetObject"), "CONFIGURATION_PERMISSIONS",
	   "not authorized to perform");
	IS(msg_type("Validation failed: insufficient funds"), "BUSINESS_LOGIC_VIOLATION",
	   "insufficient funds beats validation");
	IS(msg_type("invalid value: timeout while reading"), "PERMANENT_INVALID_INPUT",
	   "generic tie: the longer generic wins");
	IS(msg_type("RATE_LIMIT_EXCEEDED"), "TRANSIENT_RATE_LIMIT", "underscores fold to spaces");
	IS(msg_type("rate-limited, retry later"), "TRANSIENT_RATE_LIMIT", "dashes fold to spaces");
	IS(msg_type("Request was Throttled"), "TRANSIENT_RATE_LIMIT", "throttl prefix");
	IS(msg_type("connection\tRefused"), "TRANSIENT_NETWORK", "tab folds to space");
	IS(msg_type("connect ECONNREFUSED 127.0.0.1:5432"), "TRANSIENT_NETWORK", "node error code in message");
	IS(msg_type("ModuleNotFoundError: No module named 'foo'"), "CONFIGURATION_MISSING_ENV", "no module named");
	ok(tg_match_message("No module named 'x'", 19)->remedy == TG_UPDATE_DEPENDENCIES,
	   "no module named overrides the remediation");
	IS(msg_type("connection to server at \"db\" failed: Connection refused"), "TRANSIENT_DATABASE",
	   "libpq connection failure is a database failure");
	IS(msg_type("all good"), "none", "no pattern");
	IS(msg_type(""), "none", "empty message");
	ok(tg_match_message(NULL, 10) == NULL, "NULL message");
	IS(msg_type("ssssnot founnot found"), "PERMANENT_NOT_FOUND", "overlapping prefixes (failure links)");
	IS(msg_type("connection resets"), "TRANSIENT_NETWORK", "pattern inside a longer word");
	IS(msg_type("Déjà vu: dîsk full"), "none", "non-ASCII bytes break a pattern");
	IS(msg_type("Déjà vu: disk full"), "SYSTEM_DISK_FULL", "non-ASCII before a pattern");
}

static void
test_prefix_bound(void)
{
	size_t		big = 10 * 1024 * 1024;
	char	   *m = malloc(big);

	memset(m, 'x', big);
	memcpy(m + big - 20, "connection refused", 18);
	IS(tg_match_message(m, big) ? "found" : "none", "none", "a pattern beyond the prefix is not seen");
	memcpy(m + TG_MATCH_PREFIX - 18, "connection refused", 18);
	IS(msg_type("x") , "none", "sanity");
	ok(tg_match_message(m, big) != NULL, "a pattern ending exactly at the prefix bound is seen");
	memset(m, 'x', big);
	memcpy(m + TG_MATCH_PREFIX - 17, "connection refused", 18);
	ok(tg_match_message(m, big) == NULL, "a pattern crossing the prefix bound is not seen");
	free(m);
}

static void
test_exceptions(void)
{
	IS(exc_type("requests.exceptions.ConnectionError"), "TRANSIENT_NETWORK", "python requests");
	IS(exc_type("ConnectionResetError"), "TRANSIENT_NETWORK", "python builtin");
	IS(exc_type("java.net.SocketTimeoutException"), "TRANSIENT_NETWORK", "java");
	IS(exc_type("ECONNREFUSED"), "TRANSIENT_NETWORK", "node code");
	IS(exc_type("Errno::ECONNREFUSED"), "TRANSIENT_NETWORK", "ruby ::");
	IS(exc_type("*net.OpError"), "TRANSIENT_NETWORK", "go pointer type");
	IS(exc_type("context.DeadlineExceeded"), "TRANSIENT_NETWORK", "go sentinel");
	IS(exc_type("psycopg2.errors.DeadlockDetected"), "TRANSIENT_DATABASE", "psycopg");
	IS(exc_type("django.db.utils.OperationalError"), "TRANSIENT_DATABASE", "django");
	IS(exc_type("kombu.exceptions.OperationalError"), "TRANSIENT_NETWORK", "whole name beats last component");
	IS(exc_type("Timeout::Error"), "TRANSIENT_NETWORK", "ruby Timeout::Error by whole name");
	IS(exc_type("com.example.Outer$ValidationError"), "PERMANENT_INVALID_INPUT", "java inner class $");
	IS(exc_type("net/http/NotFound"), "PERMANENT_NOT_FOUND", "slash separator");
	IS(exc_type("ImportError"), "CONFIGURATION_MISSING_ENV", "ImportError");
	ok(tg_match_exception("ImportError", 11, NULL, NULL)->remedy == TG_UPDATE_DEPENDENCIES,
	   "ImportError remediation");
	IS(exc_type("System.OutOfMemoryException"), "SYSTEM_OUT_OF_MEMORY", ".NET");
	IS(exc_type("taskguard.LeaseExpired"), "UNKNOWN", "lease expiry is UNKNOWN");
	IS(exc_type("LeaseExpired"), "none", "only the whole taskguard name");
	IS(exc_type("Exception"), "none", "generic Exception");
	IS(exc_type("builtins.RuntimeError"), "none", "generic RuntimeError");
	IS(exc_type("requests.exceptions.HTTPError"), "none", "generic HTTPError");
	IS(exc_type("StandardError"), "none", "generic StandardError");
	IS(exc_type(""), "none", "empty name");
	IS(exc_type("a."), "none", "empty last component");
	IS(exc_type("..."), "none", "only separators");
	IS(exc_type("  ValueError  "), "PERMANENT_INVALID_INPUT", "blanks trimmed");
	IS(exc_type("VALUEERROR"), "PERMANENT_INVALID_INPUT", "case-insensitive");
	{
		const char *last;
		size_t		lastlen;

		tg_match_exception("a.b::Cde", 8, &last, &lastlen);
		ok(lastlen == 3 && memcmp(last, "Cde", 3) == 0, "last component reported as written");
	}
	{
		char		longname[1000];

		memset(longname, 'a', sizeof(longname));
		memcpy(longname + sizeof(longname) - 10, "ValueError", 10);
		ok(tg_match_exception(longname, sizeof(longname), NULL, NULL) == NULL,
		   "an over-long last component carries no evidence");
		longname[sizeof(longname) - 11] = '.';
		ok(tg_match_exception(longname, sizeof(longname), NULL, NULL) != NULL,
		   "a long dotted name still matches its last component");
	}
}

static void
test_tables(void)
{
	size_t		np, ne;
	const TgRule *p = tg_match_patterns(&np);
	const TgRule *e = tg_match_exceptions(&ne);
	int			dup = 0, self = 1;

	ok(tg_match_init(), "tables build");
	for (size_t i = 0; i < np; i++)
	{
		const TgRule *r = tg_match_message(p[i].text, strlen(p[i].text));

		for (size_t j = i + 1; j < np; j++)
			if (strcmp(p[i].text, p[j].text) == 0)
				dup = 1;
		/* a pattern alone finds itself or a pattern of the same type */
		if (r == NULL || r->type != p[i].type)
		{
			self = 0;
			printf("#   pattern '%s' classifies as %s\n", p[i].text,
				   r ? tg_failure_type_names[r->type] : "none");
		}
	}
	ok(!dup, "no duplicate patterns");
	ok(self, "every pattern alone classifies as its own type");
	for (size_t i = 1; i < ne; i++)
		if (strcmp(e[i - 1].text, e[i].text) >= 0)
			dup = 1;
	ok(!dup, "exception table sorted and unique");
	ok(np >= 47 && ne >= 150, "tables have the expected size");
}

int
main(void)
{
	test_tables();
	test_spec_patterns();
	test_specificity();
	test_prefix_bound();
	test_exceptions();
	printf("1..%d\n", n);
	return failed;
}
