/*
 * classify_match.h — the pure-C evidence tables of the failure taxonomy (docs/reference.md#classification):
 * message patterns (layer 5) matched in one pass over a bounded, lowercased
 * prefix, and exception type names (layer 4).
 *
 * No backend headers: the unit test and the libFuzzer harness link classify_match.c
 * alone; classify.c turns the results into SQL values.
 */
#ifndef TG_CLASSIFY_MATCH_H
#define TG_CLASSIFY_MATCH_H

#include <stdbool.h>
#include <stddef.h>

/* Failure types, in the order of the SQL enum taskguard.failure_type. */
typedef enum TgFailureType
{
	TG_TRANSIENT_NETWORK = 0,
	TG_TRANSIENT_DATABASE,
	TG_TRANSIENT_RATE_LIMIT,
	TG_PERMANENT_INVALID_INPUT,
	TG_PERMANENT_NOT_FOUND,
	TG_PERMANENT_AUTHENTICATION,
	TG_CONFIGURATION_MISSING_ENV,
	TG_CONFIGURATION_PERMISSIONS,
	TG_EXTERNAL_SERVICE_UNAVAILABLE,
	TG_EXTERNAL_API_ERROR,
	TG_SYSTEM_OUT_OF_MEMORY,
	TG_SYSTEM_DISK_FULL,
	TG_SYSTEM_CPU_OVERLOAD,
	TG_BUSINESS_LOGIC_VIOLATION,
	TG_UNKNOWN,
	TG_FAILURE_TYPE_COUNT
} TgFailureType;

/* Remediations, in the order of the SQL enum taskguard.remediation. */
typedef enum TgRemedy
{
	TG_REMEDY_DEFAULT = -1,		/* keep the type's policy remediation */
	TG_RETRY_IMMEDIATELY = 0,
	TG_RETRY_WITH_BACKOFF,
	TG_ESCALATE_TO_ADMIN,
	TG_FIX_CONFIGURATION,
	TG_UPDATE_DEPENDENCIES,
	TG_CONTACT_EXTERNAL_SERVICE,
	TG_SCALE_RESOURCES,
	TG_MANUAL_INVESTIGATION,
	TG_REMEDY_COUNT
} TgRemedy;

/* Only this many leading bytes of a message are looked at. */
#define TG_MATCH_PREFIX 4096

/* Exception names longer than this carry no evidence. */
#define TG_MATCH_MAX_NAME 256

/* A built-in rule: a message pattern or an exception name. */
typedef struct TgRule
{
	const char *text;			/* lowercase pattern or exception name */
	TgFailureType type;
	TgRemedy	remedy;
	bool		generic;		/* a catch-all pattern: loses to specific ones */
} TgRule;

/* Build the tables; idempotent.  False only if the built-in tables are broken. */
extern bool tg_match_init(void);

/*
 * The most specific message pattern found in the first TG_MATCH_PREFIX bytes
 * of msg (case-insensitive for ASCII; '_' and '-' count as spaces), or NULL.
 */
extern const TgRule *tg_match_message(const char *msg, size_t len);

/*
 * The exception-table entry for an error type name, or NULL (unknown or
 * generic names).  The full name is tried first, then its last component
 * after '.', "::", '$' or '/'.  *last and *lastlen receive that last component
 * as written (for naming the rule); either may be NULL.
 */
extern const TgRule *tg_match_exception(const char *name, size_t len,
										const char **last, size_t *lastlen);

/* Find the last component of a type name (see tg_match_exception). */
extern void tg_match_last_component(const char *name, size_t len,
									const char **last, size_t *lastlen);

/* Names of the enum labels, for tests and messages. */
extern const char *const tg_failure_type_names[TG_FAILURE_TYPE_COUNT];
extern const char *const tg_remedy_names[TG_REMEDY_COUNT];

/* The tables themselves (for tests and documentation). */
extern const TgRule *tg_match_patterns(size_t *count);
extern const TgRule *tg_match_exceptions(size_t *count);

#endif
