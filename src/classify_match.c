/*
 * classify_match.c — built-in evidence of the failure taxonomy (docs/reference.md#classification, layers 4 and 5).
 *
 * Message patterns: an Aho–Corasick automaton over all patterns, built once
 * per process into static tables and run as a DFA, so a message costs one
 * table step per byte of its first TG_MATCH_PREFIX bytes whatever the number
 * of patterns.  Bytes are folded as they are read (ASCII A–Z to a–z; '_',
 * '-', tab, CR and LF to space).  When several patterns occur, the most
 * specific wins: a non-generic pattern beats a generic one ("invalid",
 * "not found", "timeout", …), then the longer one, then the earlier one.
 *
 * Exception names: a sorted table searched with bsearch, first for the whole
 * lowercased name, then for its last component.  Names that are not in the
 * table (including the generic Exception, Error, RuntimeError, OSError, …)
 * carry no evidence.
 *
 * Pure C: no backend headers, no allocation after tg_match_init(), no locks
 * (one process, one thread).
 */
#include "classify_match.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *const tg_failure_type_names[TG_FAILURE_TYPE_COUNT] = {
	"TRANSIENT_NETWORK", "TRANSIENT_DATABASE", "TRANSIENT_RATE_LIMIT",
	"PERMANENT_INVALID_INPUT", "PERMANENT_NOT_FOUND", "PERMANENT_AUTHENTICATION",
	"CONFIGURATION_MISSING_ENV", "CONFIGURATION_PERMISSIONS",
	"EXTERNAL_SERVICE_UNAVAILABLE", "EXTERNAL_API_ERROR",
	"SYSTEM_OUT_OF_MEMORY", "SYSTEM_DISK_FULL", "SYSTEM_CPU_OVERLOAD",
	"BUSINESS_LOGIC_VIOLATION", "UNKNOWN"
};

const char *const tg_remedy_names[TG_REMEDY_COUNT] = {
	"RETRY_IMMEDIATELY", "RETRY_WITH_BACKOFF", "ESCALATE_TO_ADMIN",
	"FIX_CONFIGURATION", "UPDATE_DEPENDENCIES", "CONTACT_EXTERNAL_SERVICE",
	"SCALE_RESOURCES", "MANUAL_INVESTIGATION"
};

#define P(t, ty)	{t, TG_##ty, TG_REMEDY_DEFAULT, false}
#define G(t, ty)	{t, TG_##ty, TG_REMEDY_DEFAULT, true}
#define PR(t, ty, r) {t, TG_##ty, TG_##r, false}

/* Message patterns: lowercase, spaces for '_' and '-'. */
static const TgRule patterns[] = {
	/* network */
	P("connection refused", TRANSIENT_NETWORK),
	P("connection reset", TRANSIENT_NETWORK),
	P("connection aborted", TRANSIENT_NETWORK),
	P("connection timed out", TRANSIENT_NETWORK),
	G("timed out", TRANSIENT_NETWORK),
	G("timeout", TRANSIENT_NETWORK),
	G("time out", TRANSIENT_NETWORK),
	P("network is unreachable", TRANSIENT_NETWORK),
	P("network unreachable", TRANSIENT_NETWORK),
	P("network is down", TRANSIENT_NETWORK),
	P("host is unreachable", TRANSIENT_NETWORK),
	P("no route to host", TRANSIENT_NETWORK),
	P("name or service not known", TRANSIENT_NETWORK),
	P("temporary failure in name resolution", TRANSIENT_NETWORK),
	P("nodename nor servname provided", TRANSIENT_NETWORK),
	P("could not resolve host", TRANSIENT_NETWORK),
	P("no such host", TRANSIENT_NETWORK),
	P("getaddrinfo", TRANSIENT_NETWORK),
	P("econnrefused", TRANSIENT_NETWORK),
	P("econnreset", TRANSIENT_NETWORK),
	P("econnaborted", TRANSIENT_NETWORK),
	P("etimedout", TRANSIENT_NETWORK),
	P("ehostunreach", TRANSIENT_NETWORK),
	P("enetunreach", TRANSIENT_NETWORK),
	P("enotfound", TRANSIENT_NETWORK),
	P("eai again", TRANSIENT_NETWORK),
	P("socket hang up", TRANSIENT_NETWORK),
	P("broken pipe", TRANSIENT_NETWORK),
	P("failed to establish a new connection", TRANSIENT_NETWORK),
	P("remote end closed connection", TRANSIENT_NETWORK),
	P("connection closed by peer", TRANSIENT_NETWORK),
	P("network error", TRANSIENT_NETWORK),
	/* database */
	P("deadlock detected", TRANSIENT_DATABASE),
	P("deadlock found", TRANSIENT_DATABASE),
	P("could not serialize", TRANSIENT_DATABASE),
	P("serialization failure", TRANSIENT_DATABASE),
	P("server closed the connection", TRANSIENT_DATABASE),
	P("too many connections", TRANSIENT_DATABASE),
	P("too many clients", TRANSIENT_DATABASE),
	P("remaining connection slots are reserved", TRANSIENT_DATABASE),
	P("could not obtain lock", TRANSIENT_DATABASE),
	P("lock not available", TRANSIENT_DATABASE),
	P("lock wait timeout exceeded", TRANSIENT_DATABASE),
	P("canceling statement due to", TRANSIENT_DATABASE),
	P("the database system is", TRANSIENT_DATABASE),
	P("terminating connection due to", TRANSIENT_DATABASE),
	P("database is locked", TRANSIENT_DATABASE),
	P("could not connect to server", TRANSIENT_DATABASE),
	P("connection to server at", TRANSIENT_DATABASE),
	/* rate limit */
	P("rate limit", TRANSIENT_RATE_LIMIT),
	P("ratelimit", TRANSIENT_RATE_LIMIT),
	P("rate exceeded", TRANSIENT_RATE_LIMIT),
	P("too many requests", TRANSIENT_RATE_LIMIT),
	P("throttl", TRANSIENT_RATE_LIMIT),
	P("quota exceeded", TRANSIENT_RATE_LIMIT),
	P("request limit exceeded", TRANSIENT_RATE_LIMIT),
	P("slow down", TRANSIENT_RATE_LIMIT),
	/* disk */
	P("no space left on device", SYSTEM_DISK_FULL),
	P("disk full", SYSTEM_DISK_FULL),
	P("disk quota exceeded", SYSTEM_DISK_FULL),
	P("enospc", SYSTEM_DISK_FULL),
	P("could not extend file", SYSTEM_DISK_FULL),
	P("not enough space on the disk", SYSTEM_DISK_FULL),
	P("insufficient disk space", SYSTEM_DISK_FULL),
	/* memory */
	P("out of memory", SYSTEM_OUT_OF_MEMORY),
	P("cannot allocate memory", SYSTEM_OUT_OF_MEMORY),
	P("enomem", SYSTEM_OUT_OF_MEMORY),
	P("java heap space", SYSTEM_OUT_OF_MEMORY),
	P("gc overhead limit exceeded", SYSTEM_OUT_OF_MEMORY),
	P("memory allocation failed", SYSTEM_OUT_OF_MEMORY),
	P("insufficient memory", SYSTEM_OUT_OF_MEMORY),
	P("oomkilled", SYSTEM_OUT_OF_MEMORY),
	P("oom killed", SYSTEM_OUT_OF_MEMORY),
	/* cpu */
	P("load average", SYSTEM_CPU_OVERLOAD),
	P("cpu overload", SYSTEM_CPU_OVERLOAD),
	P("cpu limit exceeded", SYSTEM_CPU_OVERLOAD),
	P("cpu time limit exceeded", SYSTEM_CPU_OVERLOAD),
	P("system overloaded", SYSTEM_CPU_OVERLOAD),
	P("time limit exceeded", SYSTEM_CPU_OVERLOAD),
	/* authentication */
	P("invalid api key", PERMANENT_AUTHENTICATION),
	P("incorrect api key", PERMANENT_AUTHENTICATION),
	P("unauthorized", PERMANENT_AUTHENTICATION),
	P("unauthenticated", PERMANENT_AUTHENTICATION),
	P("not authenticated", PERMANENT_AUTHENTICATION),
	P("authentication failed", PERMANENT_AUTHENTICATION),
	P("authentication required", PERMANENT_AUTHENTICATION),
	P("invalid token", PERMANENT_AUTHENTICATION),
	P("token expired", PERMANENT_AUTHENTICATION),
	P("expired token", PERMANENT_AUTHENTICATION),
	P("token has expired", PERMANENT_AUTHENTICATION),
	P("jwt expired", PERMANENT_AUTHENTICATION),
	P("invalid credentials", PERMANENT_AUTHENTICATION),
	P("bad credentials", PERMANENT_AUTHENTICATION),
	P("password authentication failed", PERMANENT_AUTHENTICATION),
	P("invalid password", PERMANENT_AUTHENTICATION),
	P("incorrect password", PERMANENT_AUTHENTICATION),
	P("login failed", PERMANENT_AUTHENTICATION),
	P("signature does not match", PERMANENT_AUTHENTICATION),
	P("signaturedoesnotmatch", PERMANENT_AUTHENTICATION),
	P("invalid signature", PERMANENT_AUTHENTICATION),
	P("invalid access key", PERMANENT_AUTHENTICATION),
	/* permissions */
	P("permission denied", CONFIGURATION_PERMISSIONS),
	P("access denied", CONFIGURATION_PERMISSIONS),
	P("accessdenied", CONFIGURATION_PERMISSIONS),
	P("not authorized to perform", CONFIGURATION_PERMISSIONS),
	P("insufficient privilege", CONFIGURATION_PERMISSIONS),
	P("operation not permitted", CONFIGURATION_PERMISSIONS),
	P("read only file system", CONFIGURATION_PERMISSIONS),
	P("must be owner of", CONFIGURATION_PERMISSIONS),
	P("eacces", CONFIGURATION_PERMISSIONS),
	/* missing configuration and dependencies */
	P("environment variable", CONFIGURATION_MISSING_ENV),
	P("not configured", CONFIGURATION_MISSING_ENV),
	P("missing setting", CONFIGURATION_MISSING_ENV),
	P("improperly configured", CONFIGURATION_MISSING_ENV),
	P("improperlyconfigured", CONFIGURATION_MISSING_ENV),
	P("missing required configuration", CONFIGURATION_MISSING_ENV),
	P("unable to locate credentials", CONFIGURATION_MISSING_ENV),
	PR("no module named", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	PR("cannot find module", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	PR("could not load file or assembly", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	PR("library not loaded", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	PR("undefined symbol", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	/* not found */
	G("not found", PERMANENT_NOT_FOUND),
	G("does not exist", PERMANENT_NOT_FOUND),
	P("no such file", PERMANENT_NOT_FOUND),
	P("no such key", PERMANENT_NOT_FOUND),
	P("nosuchkey", PERMANENT_NOT_FOUND),
	P("no such bucket", PERMANENT_NOT_FOUND),
	P("matching query does not exist", PERMANENT_NOT_FOUND),
	P("enoent", PERMANENT_NOT_FOUND),
	/* invalid input */
	G("invalid", PERMANENT_INVALID_INPUT),
	G("malformed", PERMANENT_INVALID_INPUT),
	G("validation", PERMANENT_INVALID_INPUT),
	G("cannot parse", PERMANENT_INVALID_INPUT),
	P("could not parse", PERMANENT_INVALID_INPUT),
	P("failed to parse", PERMANENT_INVALID_INPUT),
	P("parse error", PERMANENT_INVALID_INPUT),
	P("unexpected token", PERMANENT_INVALID_INPUT),
	P("expecting value", PERMANENT_INVALID_INPUT),
	P("invalid input syntax", PERMANENT_INVALID_INPUT),
	P("is not valid json", PERMANENT_INVALID_INPUT),
	P("value too long for type", PERMANENT_INVALID_INPUT),
	P("bad request", PERMANENT_INVALID_INPUT),
	P("unprocessable entity", PERMANENT_INVALID_INPUT),
	/* external services */
	P("service unavailable", EXTERNAL_SERVICE_UNAVAILABLE),
	P("service temporarily unavailable", EXTERNAL_SERVICE_UNAVAILABLE),
	P("bad gateway", EXTERNAL_SERVICE_UNAVAILABLE),
	P("gateway timeout", EXTERNAL_SERVICE_UNAVAILABLE),
	P("gateway time out", EXTERNAL_SERVICE_UNAVAILABLE),
	P("upstream connect error", EXTERNAL_SERVICE_UNAVAILABLE),
	P("no healthy upstream", EXTERNAL_SERVICE_UNAVAILABLE),
	P("overloaded", EXTERNAL_SERVICE_UNAVAILABLE),
	P("under maintenance", EXTERNAL_SERVICE_UNAVAILABLE),
	P("internal server error", EXTERNAL_API_ERROR),
	P("invalid response", EXTERNAL_API_ERROR),
	P("unexpected response", EXTERNAL_API_ERROR),
	P("api error", EXTERNAL_API_ERROR),
	/* business rules */
	P("insufficient funds", BUSINESS_LOGIC_VIOLATION),
	P("insufficient balance", BUSINESS_LOGIC_VIOLATION),
	P("business rule", BUSINESS_LOGIC_VIOLATION),
	P("card declined", BUSINESS_LOGIC_VIOLATION),
	P("card was declined", BUSINESS_LOGIC_VIOLATION),
	P("out of stock", BUSINESS_LOGIC_VIOLATION),
	P("violates unique constraint", BUSINESS_LOGIC_VIOLATION),
	P("violates foreign key constraint", BUSINESS_LOGIC_VIOLATION),
	P("violates check constraint", BUSINESS_LOGIC_VIOLATION),
	P("violates not null constraint", BUSINESS_LOGIC_VIOLATION),
	P("already exists", BUSINESS_LOGIC_VIOLATION),
};

#define E(n, ty)	{n, TG_##ty, TG_REMEDY_DEFAULT, false}
#define ER(n, ty, r) {n, TG_##ty, TG_##r, false}

/*
 * Exception names, lowercase; a name with a separator only matches the
 * whole type name (e.g. kombu's OperationalError is a broker, not a
 * database, failure).  Sorted by tg_match_init().
 */
static TgRule exceptions[] = {
	/* whole names first looked up */
	E("taskguard.leaseexpired", UNKNOWN),
	E("kombu.exceptions.operationalerror", TRANSIENT_NETWORK),
	E("amqp.exceptions.connectionforced", TRANSIENT_NETWORK),
	E("celery.exceptions.timeouterror", TRANSIENT_NETWORK),
	E("timeout::error", TRANSIENT_NETWORK),
	E("json.syntaxerror", PERMANENT_INVALID_INPUT),
	E("redis.exceptions.connectionerror", TRANSIENT_NETWORK),
	/* network: Python, requests, urllib3, httpx, aiohttp, boto */
	E("connectionerror", TRANSIENT_NETWORK),
	E("connectionrefusederror", TRANSIENT_NETWORK),
	E("connectionreseterror", TRANSIENT_NETWORK),
	E("connectionabortederror", TRANSIENT_NETWORK),
	E("brokenpipeerror", TRANSIENT_NETWORK),
	E("timeouterror", TRANSIENT_NETWORK),
	E("timeout", TRANSIENT_NETWORK),
	E("gaierror", TRANSIENT_NETWORK),
	E("herror", TRANSIENT_NETWORK),
	E("connecttimeout", TRANSIENT_NETWORK),
	E("readtimeout", TRANSIENT_NETWORK),
	E("writetimeout", TRANSIENT_NETWORK),
	E("pooltimeout", TRANSIENT_NETWORK),
	E("chunkedencodingerror", TRANSIENT_NETWORK),
	E("proxyerror", TRANSIENT_NETWORK),
	E("sslerror", TRANSIENT_NETWORK),
	E("newconnectionerror", TRANSIENT_NETWORK),
	E("maxretryerror", TRANSIENT_NETWORK),
	E("protocolerror", TRANSIENT_NETWORK),
	E("readtimeouterror", TRANSIENT_NETWORK),
	E("connecttimeouterror", TRANSIENT_NETWORK),
	E("nameresolutionerror", TRANSIENT_NETWORK),
	E("connecterror", TRANSIENT_NETWORK),
	E("networkerror", TRANSIENT_NETWORK),
	E("remoteprotocolerror", TRANSIENT_NETWORK),
	E("timeoutexception", TRANSIENT_NETWORK),
	E("clientconnectionerror", TRANSIENT_NETWORK),
	E("clientconnectorerror", TRANSIENT_NETWORK),
	E("serverdisconnectederror", TRANSIENT_NETWORK),
	E("servertimeouterror", TRANSIENT_NETWORK),
	E("endpointconnectionerror", TRANSIENT_NETWORK),
	E("connectionclosederror", TRANSIENT_NETWORK),
	E("apiconnectionerror", TRANSIENT_NETWORK),
	E("apitimeouterror", TRANSIENT_NETWORK),
	/* network: Java, Go, Node, Ruby, .NET */
	E("connectexception", TRANSIENT_NETWORK),
	E("sockettimeoutexception", TRANSIENT_NETWORK),
	E("socketexception", TRANSIENT_NETWORK),
	E("unknownhostexception", TRANSIENT_NETWORK),
	E("noroutetohostexception", TRANSIENT_NETWORK),
	E("httptimeoutexception", TRANSIENT_NETWORK),
	E("httpconnecttimeoutexception", TRANSIENT_NETWORK),
	E("connecttimeoutexception", TRANSIENT_NETWORK),
	E("resourceaccessexception", TRANSIENT_NETWORK),
	E("closedchannelexception", TRANSIENT_NETWORK),
	E("operror", TRANSIENT_NETWORK),
	E("dnserror", TRANSIENT_NETWORK),
	E("deadlineexceeded", TRANSIENT_NETWORK),
	E("errunexpectedeof", TRANSIENT_NETWORK),
	E("econnrefused", TRANSIENT_NETWORK),
	E("econnreset", TRANSIENT_NETWORK),
	E("econnaborted", TRANSIENT_NETWORK),
	E("etimedout", TRANSIENT_NETWORK),
	E("ehostunreach", TRANSIENT_NETWORK),
	E("enetunreach", TRANSIENT_NETWORK),
	E("enotfound", TRANSIENT_NETWORK),
	E("eai_again", TRANSIENT_NETWORK),
	E("epipe", TRANSIENT_NETWORK),
	E("und_err_connect_timeout", TRANSIENT_NETWORK),
	E("fetcherror", TRANSIENT_NETWORK),
	E("opentimeout", TRANSIENT_NETWORK),
	E("connectionfailed", TRANSIENT_NETWORK),
	E("cannotconnecterror", TRANSIENT_NETWORK),
	E("httprequestexception", TRANSIENT_NETWORK),
	E("taskcanceledexception", TRANSIENT_NETWORK),
	E("webexception", TRANSIENT_NETWORK),
	/* database */
	E("operationalerror", TRANSIENT_DATABASE),
	E("interfaceerror", TRANSIENT_DATABASE),
	E("deadlockdetected", TRANSIENT_DATABASE),
	E("serializationfailure", TRANSIENT_DATABASE),
	E("locknotavailable", TRANSIENT_DATABASE),
	E("querycanceled", TRANSIENT_DATABASE),
	E("querycancelederror", TRANSIENT_DATABASE),
	E("adminshutdown", TRANSIENT_DATABASE),
	E("toomanyconnections", TRANSIENT_DATABASE),
	E("cannotconnectnow", TRANSIENT_DATABASE),
	E("sqltransientconnectionexception", TRANSIENT_DATABASE),
	E("sqltransientexception", TRANSIENT_DATABASE),
	E("sqlrecoverableexception", TRANSIENT_DATABASE),
	E("sqltimeoutexception", TRANSIENT_DATABASE),
	E("cannotacquirelockexception", TRANSIENT_DATABASE),
	E("deadlockloserdataaccessexception", TRANSIENT_DATABASE),
	E("cannotserializetransactionexception", TRANSIENT_DATABASE),
	E("pessimisticlockingfailureexception", TRANSIENT_DATABASE),
	E("transientdataaccessresourceexception", TRANSIENT_DATABASE),
	E("querytimeoutexception", TRANSIENT_DATABASE),
	E("cannotcreatetransactionexception", TRANSIENT_DATABASE),
	E("lockacquisitionexception", TRANSIENT_DATABASE),
	E("optimisticlockexception", TRANSIENT_DATABASE),
	E("deadlocked", TRANSIENT_DATABASE),
	E("lockwaittimeout", TRANSIENT_DATABASE),
	E("connectionnotestablished", TRANSIENT_DATABASE),
	E("connectionbad", TRANSIENT_DATABASE),
	E("dbupdateconcurrencyexception", TRANSIENT_DATABASE),
	/* rate limit */
	E("ratelimiterror", TRANSIENT_RATE_LIMIT),
	E("ratelimitexceeded", TRANSIENT_RATE_LIMIT),
	E("ratelimitexception", TRANSIENT_RATE_LIMIT),
	E("ratelimited", TRANSIENT_RATE_LIMIT),
	E("toomanyrequests", TRANSIENT_RATE_LIMIT),
	E("toomanyrequestsexception", TRANSIENT_RATE_LIMIT),
	E("toomanyrequestserror", TRANSIENT_RATE_LIMIT),
	E("throttled", TRANSIENT_RATE_LIMIT),
	E("throttling", TRANSIENT_RATE_LIMIT),
	E("throttlingexception", TRANSIENT_RATE_LIMIT),
	E("throttledexception", TRANSIENT_RATE_LIMIT),
	E("requestthrottled", TRANSIENT_RATE_LIMIT),
	E("requestlimitexceeded", TRANSIENT_RATE_LIMIT),
	E("provisionedthroughputexceededexception", TRANSIENT_RATE_LIMIT),
	E("slowdown", TRANSIENT_RATE_LIMIT),
	E("resourceexhausted", TRANSIENT_RATE_LIMIT),
	/* invalid input */
	E("valueerror", PERMANENT_INVALID_INPUT),
	E("validationerror", PERMANENT_INVALID_INPUT),
	E("jsondecodeerror", PERMANENT_INVALID_INPUT),
	E("unicodedecodeerror", PERMANENT_INVALID_INPUT),
	E("unicodeencodeerror", PERMANENT_INVALID_INPUT),
	E("dataerror", PERMANENT_INVALID_INPUT),
	E("invalidtextrepresentation", PERMANENT_INVALID_INPUT),
	E("invaliddatetimeformat", PERMANENT_INVALID_INPUT),
	E("numericvalueoutofrange", PERMANENT_INVALID_INPUT),
	E("suspiciousoperation", PERMANENT_INVALID_INPUT),
	E("paramvalidationerror", PERMANENT_INVALID_INPUT),
	E("invalidrequesterror", PERMANENT_INVALID_INPUT),
	E("badrequesterror", PERMANENT_INVALID_INPUT),
	E("unprocessableentityerror", PERMANENT_INVALID_INPUT),
	E("invalidurl", PERMANENT_INVALID_INPUT),
	E("missingschema", PERMANENT_INVALID_INPUT),
	E("invalidschema", PERMANENT_INVALID_INPUT),
	E("illegalargumentexception", PERMANENT_INVALID_INPUT),
	E("numberformatexception", PERMANENT_INVALID_INPUT),
	E("datetimeparseexception", PERMANENT_INVALID_INPUT),
	E("jsonparseexception", PERMANENT_INVALID_INPUT),
	E("jsonprocessingexception", PERMANENT_INVALID_INPUT),
	E("mismatchedinputexception", PERMANENT_INVALID_INPUT),
	E("invalidformatexception", PERMANENT_INVALID_INPUT),
	E("constraintviolationexception", PERMANENT_INVALID_INPUT),
	E("methodargumentnotvalidexception", PERMANENT_INVALID_INPUT),
	E("badrequestexception", PERMANENT_INVALID_INPUT),
	E("unmarshaltypeerror", PERMANENT_INVALID_INPUT),
	E("numerror", PERMANENT_INVALID_INPUT),
	E("invalidargument", PERMANENT_INVALID_INPUT),
	E("argumenterror", PERMANENT_INVALID_INPUT),
	E("recordinvalid", PERMANENT_INVALID_INPUT),
	E("parsererror", PERMANENT_INVALID_INPUT),
	E("argumentexception", PERMANENT_INVALID_INPUT),
	E("argumentnullexception", PERMANENT_INVALID_INPUT),
	E("argumentoutofrangeexception", PERMANENT_INVALID_INPUT),
	E("formatexception", PERMANENT_INVALID_INPUT),
	E("jsonexception", PERMANENT_INVALID_INPUT),
	/* not found */
	E("doesnotexist", PERMANENT_NOT_FOUND),
	E("objectdoesnotexist", PERMANENT_NOT_FOUND),
	E("http404", PERMANENT_NOT_FOUND),
	E("filenotfounderror", PERMANENT_NOT_FOUND),
	E("nosuchkey", PERMANENT_NOT_FOUND),
	E("nosuchbucket", PERMANENT_NOT_FOUND),
	E("nosuchkeyexception", PERMANENT_NOT_FOUND),
	E("nosuchbucketexception", PERMANENT_NOT_FOUND),
	E("resourcenotfoundexception", PERMANENT_NOT_FOUND),
	E("notfounderror", PERMANENT_NOT_FOUND),
	E("notfound", PERMANENT_NOT_FOUND),
	E("filenotfoundexception", PERMANENT_NOT_FOUND),
	E("nosuchfileexception", PERMANENT_NOT_FOUND),
	E("entitynotfoundexception", PERMANENT_NOT_FOUND),
	E("emptyresultdataaccessexception", PERMANENT_NOT_FOUND),
	E("notfoundexception", PERMANENT_NOT_FOUND),
	E("errnotexist", PERMANENT_NOT_FOUND),
	E("errnorows", PERMANENT_NOT_FOUND),
	E("enoent", PERMANENT_NOT_FOUND),
	E("recordnotfound", PERMANENT_NOT_FOUND),
	E("keynotfoundexception", PERMANENT_NOT_FOUND),
	E("directorynotfoundexception", PERMANENT_NOT_FOUND),
	/* authentication */
	E("authenticationerror", PERMANENT_AUTHENTICATION),
	E("authenticationfailed", PERMANENT_AUTHENTICATION),
	E("notauthenticated", PERMANENT_AUTHENTICATION),
	E("invalidtoken", PERMANENT_AUTHENTICATION),
	E("invalidtokenerror", PERMANENT_AUTHENTICATION),
	E("expiredsignatureerror", PERMANENT_AUTHENTICATION),
	E("invalidsignatureerror", PERMANENT_AUTHENTICATION),
	E("invalidpassword", PERMANENT_AUTHENTICATION),
	E("invalidauthorizationspecification", PERMANENT_AUTHENTICATION),
	E("expiredtoken", PERMANENT_AUTHENTICATION),
	E("expiredtokenexception", PERMANENT_AUTHENTICATION),
	E("invalidclienttokenid", PERMANENT_AUTHENTICATION),
	E("unrecognizedclientexception", PERMANENT_AUTHENTICATION),
	E("signaturedoesnotmatch", PERMANENT_AUTHENTICATION),
	E("invalidaccesskeyid", PERMANENT_AUTHENTICATION),
	E("authenticationexception", PERMANENT_AUTHENTICATION),
	E("badcredentialsexception", PERMANENT_AUTHENTICATION),
	E("credentialsexpiredexception", PERMANENT_AUTHENTICATION),
	E("notauthorizedexception", PERMANENT_AUTHENTICATION),
	E("unauthenticated", PERMANENT_AUTHENTICATION),
	E("unauthorizederror", PERMANENT_AUTHENTICATION),
	E("invalidauthenticitytoken", PERMANENT_AUTHENTICATION),
	/* permissions */
	E("permissionerror", CONFIGURATION_PERMISSIONS),
	E("permissiondenied", CONFIGURATION_PERMISSIONS),
	E("permissiondeniederror", CONFIGURATION_PERMISSIONS),
	E("insufficientprivilege", CONFIGURATION_PERMISSIONS),
	E("accessdenied", CONFIGURATION_PERMISSIONS),
	E("accessdeniedexception", CONFIGURATION_PERMISSIONS),
	E("securityexception", CONFIGURATION_PERMISSIONS),
	E("errpermission", CONFIGURATION_PERMISSIONS),
	E("eacces", CONFIGURATION_PERMISSIONS),
	E("eperm", CONFIGURATION_PERMISSIONS),
	E("unauthorizedaccessexception", CONFIGURATION_PERMISSIONS),
	/* missing configuration and dependencies */
	E("improperlyconfigured", CONFIGURATION_MISSING_ENV),
	E("nocredentialserror", CONFIGURATION_MISSING_ENV),
	E("partialcredentialserror", CONFIGURATION_MISSING_ENV),
	E("noregionerror", CONFIGURATION_MISSING_ENV),
	E("configurationerrorsexception", CONFIGURATION_MISSING_ENV),
	ER("importerror", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	ER("modulenotfounderror", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	ER("classnotfoundexception", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	ER("noclassdeffounderror", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	ER("unsatisfiedlinkerror", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	ER("err_module_not_found", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	ER("module_not_found", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	ER("loaderror", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	ER("typeloadexception", CONFIGURATION_MISSING_ENV, UPDATE_DEPENDENCIES),
	/* external services */
	E("serviceunavailable", EXTERNAL_SERVICE_UNAVAILABLE),
	E("serviceunavailableexception", EXTERNAL_SERVICE_UNAVAILABLE),
	E("serviceunavailableerror", EXTERNAL_SERVICE_UNAVAILABLE),
	E("unavailable", EXTERNAL_SERVICE_UNAVAILABLE),
	E("brokenresourceerror", EXTERNAL_SERVICE_UNAVAILABLE),
	E("internalservererror", EXTERNAL_API_ERROR),
	E("internalfailure", EXTERNAL_API_ERROR),
	E("apierror", EXTERNAL_API_ERROR),
	E("apistatuserror", EXTERNAL_API_ERROR),
	E("badgateway", EXTERNAL_SERVICE_UNAVAILABLE),
	E("gatewaytimeout", EXTERNAL_SERVICE_UNAVAILABLE),
	/* system */
	E("memoryerror", SYSTEM_OUT_OF_MEMORY),
	E("outofmemoryerror", SYSTEM_OUT_OF_MEMORY),
	E("outofmemoryexception", SYSTEM_OUT_OF_MEMORY),
	E("outofmemory", SYSTEM_OUT_OF_MEMORY),
	E("nomemoryerror", SYSTEM_OUT_OF_MEMORY),
	E("insufficientmemoryexception", SYSTEM_OUT_OF_MEMORY),
	E("enomem", SYSTEM_OUT_OF_MEMORY),
	E("diskfull", SYSTEM_DISK_FULL),
	E("enospc", SYSTEM_DISK_FULL),
	E("softtimelimitexceeded", SYSTEM_CPU_OVERLOAD),
	E("timelimitexceeded", SYSTEM_CPU_OVERLOAD),
	E("rejectedexecutionexception", SYSTEM_CPU_OVERLOAD),
	/* business rules */
	E("integrityerror", BUSINESS_LOGIC_VIOLATION),
	E("uniqueviolation", BUSINESS_LOGIC_VIOLATION),
	E("foreignkeyviolation", BUSINESS_LOGIC_VIOLATION),
	E("checkviolation", BUSINESS_LOGIC_VIOLATION),
	E("notnullviolation", BUSINESS_LOGIC_VIOLATION),
	E("raiseexception", BUSINESS_LOGIC_VIOLATION),
	E("dataintegrityviolationexception", BUSINESS_LOGIC_VIOLATION),
	E("duplicatekeyexception", BUSINESS_LOGIC_VIOLATION),
	E("recordnotunique", BUSINESS_LOGIC_VIOLATION),
	E("carderror", BUSINESS_LOGIC_VIOLATION),
	E("failedprecondition", BUSINESS_LOGIC_VIOLATION),
};

#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))
#define NEXCEPTIONS (sizeof(exceptions) / sizeof(exceptions[0]))

#define MAX_STATES 4096
#define MAX_CLASSES 48

static bool built = false;
static bool build_ok = false;
static size_t nexceptions = 0;	/* after removing duplicates */
static unsigned char byte_class[256];	/* input byte -> alphabet class */
static uint16_t delta[MAX_STATES][MAX_CLASSES];
static int16_t state_best[MAX_STATES];	/* best pattern ending here, or -1 */
static int	pattern_score[NPATTERNS];

/* ASCII folding of message bytes: case, and '_' '-' and whitespace as space. */
static unsigned char
MatchFold(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 'a';
	if (c == '_' || c == '-' || c == '\t' || c == '\n' || c == '\r')
		return ' ';
	return c;
}

/* Does pattern candidate beat pattern best (-1: none yet)? */
static bool
MatchBetter(int candidate, int best)
{
	return best < 0 || pattern_score[candidate] > pattern_score[best];
}

/* Build the alphabet classes; false when there are too many or a pattern is not folded. */
static bool
MatchBuildAlphabet(void)
{
	unsigned char class_of[256];
	int			nclasses = 1;	/* class 0: bytes in no pattern */

	memset(class_of, 0, sizeof(class_of));
	for (size_t p = 0; p < NPATTERNS; p++)
	{
		const unsigned char *s = (const unsigned char *) patterns[p].text;

		if (*s == '\0')
			return false;
		for (; *s; s++)
		{
			if (MatchFold(*s) != *s)
				return false;
			if (class_of[*s] == 0)
			{
				if (nclasses >= MAX_CLASSES)
					return false;
				class_of[*s] = (unsigned char) nclasses++;
			}
		}
	}
	for (int b = 0; b < 256; b++)
		byte_class[b] = class_of[MatchFold((unsigned char) b)];
	return true;
}

/* Build the trie of all patterns; returns the number of states, 0 on overflow. */
static int
MatchBuildTrie(uint16_t *parent)
{
	int			nstates = 1;

	for (size_t p = 0; p < NPATTERNS; p++)
	{
		const unsigned char *s = (const unsigned char *) patterns[p].text;
		int			state = 0;

		pattern_score[p] = (patterns[p].generic ? 0 : 1000) + (int) strlen(patterns[p].text);
		for (; *s; s++)
		{
			int			c = byte_class[*s];

			if (delta[state][c] == 0)
			{
				if (nstates >= MAX_STATES)
					return 0;
				parent[nstates] = (uint16_t) state;
				delta[state][c] = (uint16_t) nstates++;
			}
			state = delta[state][c];
		}
		if (state_best[state] < 0)
			state_best[state] = (int16_t) p;
	}
	return nstates;
}

/*
 * Turn the trie into a DFA: breadth first, each state's failure link is the
 * longest proper suffix that is also a trie path; missing transitions follow
 * it, and a state inherits the best pattern of its failure state.
 */
static void
MatchBuildDfa(int nstates, const uint16_t *parent)
{
	static uint16_t queue[MAX_STATES];
	static uint16_t fail[MAX_STATES];
	int			head = 0,
				tail = 0;

	queue[tail++] = 0;
	fail[0] = 0;
	while (head < tail)
	{
		int			s = queue[head++];

		for (int c = 0; c < MAX_CLASSES; c++)
		{
			int			t = delta[s][c];

			if (t != 0 && parent[t] == s)
			{
				fail[t] = (s == 0) ? 0 : delta[fail[s]][c];
				if (state_best[fail[t]] >= 0 &&
					(state_best[t] < 0 || MatchBetter(state_best[fail[t]], state_best[t])))
					state_best[t] = state_best[fail[t]];
				queue[tail++] = (uint16_t) t;
			}
			else
				delta[s][c] = (s == 0) ? 0 : delta[fail[s]][c];
		}
	}
	(void) nstates;
}

static int
MatchCompareRule(const void *a, const void *b)
{
	return strcmp(((const TgRule *) a)->text, ((const TgRule *) b)->text);
}

/* Sort the exception table (lowercasing it) and drop duplicate names. */
static bool
MatchBuildExceptions(void)
{
	size_t		n = 0;

	for (size_t i = 0; i < NEXCEPTIONS; i++)
		for (const char *s = exceptions[i].text; *s; s++)
			if (*s >= 'A' && *s <= 'Z')
				return false;
	qsort(exceptions, NEXCEPTIONS, sizeof(TgRule), MatchCompareRule);
	for (size_t i = 0; i < NEXCEPTIONS; i++)
		if (n == 0 || strcmp(exceptions[n - 1].text, exceptions[i].text) != 0)
			exceptions[n++] = exceptions[i];
	nexceptions = n;
	return true;
}

bool
tg_match_init(void)
{
	static uint16_t parent[MAX_STATES];
	int			nstates;

	if (built)
		return build_ok;
	built = true;
	memset(delta, 0, sizeof(delta));
	memset(state_best, -1, sizeof(state_best));
	if (!MatchBuildAlphabet())
		return false;
	nstates = MatchBuildTrie(parent);
	if (nstates == 0)
		return false;
	MatchBuildDfa(nstates, parent);
	build_ok = MatchBuildExceptions();
	return build_ok;
}

const TgRule *
tg_match_message(const char *msg, size_t len)
{
	const unsigned char *s = (const unsigned char *) msg;
	int			state = 0;
	int			best = -1;

	if (msg == NULL || !tg_match_init())
		return NULL;
	if (len > TG_MATCH_PREFIX)
		len = TG_MATCH_PREFIX;
	for (size_t i = 0; i < len; i++)
	{
		int			found;

		state = delta[state][byte_class[s[i]]];
		found = state_best[state];
		if (found >= 0 && MatchBetter(found, best))
			best = found;
	}
	return best < 0 ? NULL : &patterns[best];
}

void
tg_match_last_component(const char *name, size_t len, const char **last, size_t *lastlen)
{
	size_t		start = 0;

	for (size_t i = len; i > 0; i--)
	{
		char		c = name[i - 1];

		if (c == '.' || c == ':' || c == '$' || c == '/')
		{
			start = i;
			break;
		}
	}
	*last = name + start;
	*lastlen = len - start;
}

/* Look one lowercased name up in the sorted exception table. */
static const TgRule *
MatchLookup(const char *name, size_t len)
{
	char		key[TG_MATCH_MAX_NAME + 1];
	TgRule		probe = {key, TG_UNKNOWN, TG_REMEDY_DEFAULT, false};

	if (len == 0 || len > TG_MATCH_MAX_NAME)
		return NULL;
	for (size_t i = 0; i < len; i++)
	{
		char		c = name[i];

		if (c == '\0')
			return NULL;
		key[i] = (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
	}
	key[len] = '\0';
	return bsearch(&probe, exceptions, nexceptions, sizeof(TgRule), MatchCompareRule);
}

const TgRule *
tg_match_exception(const char *name, size_t len, const char **last, size_t *lastlen)
{
	const char *tail;
	size_t		taillen;
	const TgRule *rule;

	if (last)
		*last = NULL;
	if (lastlen)
		*lastlen = 0;
	if (name == NULL || !tg_match_init())
		return NULL;
	/* trim blanks, and Go's pointer star */
	while (len > 0 && (*name == ' ' || *name == '*'))
		name++, len--;
	while (len > 0 && name[len - 1] == ' ')
		len--;
	tg_match_last_component(name, len, &tail, &taillen);
	if (last)
		*last = tail;
	if (lastlen)
		*lastlen = taillen;
	rule = MatchLookup(name, len);
	if (rule == NULL && taillen != len)
		rule = MatchLookup(tail, taillen);
	return rule;
}

const TgRule *
tg_match_patterns(size_t *count)
{
	*count = NPATTERNS;
	return patterns;
}

const TgRule *
tg_match_exceptions(size_t *count)
{
	tg_match_init();
	*count = nexceptions;
	return exceptions;
}
