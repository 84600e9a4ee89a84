/*
 * breaker_core.h — the circuit-breaker state machine (docs/reference.md#breakers) as pure C:
 * no backend headers, so test/unit/breaker_core_test.c links it alone.
 *
 * Times are microseconds on one monotonic-enough axis (the server passes
 * TimestampTz values); BREAKER_NO_TIME means "unset" (NULL in SQL).
 * breaker.c owns locking and storage; these functions only change the
 * struct they are given.
 */
#ifndef BREAKER_CORE_H
#define BREAKER_CORE_H

#include <stdbool.h>
#include <stdint.h>

#define BREAKER_NO_TIME INT64_MIN
/* Shortest time a half-open probe may stay unreported (see ProbeTimeout). */
#define BREAKER_MIN_PROBE_TIMEOUT_US INT64_C(10000000)

typedef enum BreakerState
{
	BREAKER_CLOSED = 0,
	BREAKER_OPEN,
	BREAKER_HALF_OPEN
} BreakerState;

typedef enum BreakerMode
{
	BREAKER_AUTO = 0,
	BREAKER_FORCED_OPEN,
	BREAKER_DISABLED
} BreakerMode;

/* What a call changed (bit flags). */
#define BREAKER_CHANGED_COUNTS 1	/* persisted counters or times */
#define BREAKER_CHANGED_STATE  2	/* state or mode */

typedef struct BreakerConfig
{
	int32_t		failure_threshold;	/* failures within window that open it */
	int64_t		window_us;
	int64_t		cooldown_us;	/* open this long before probes */
	int32_t		half_open_max_calls;	/* probes handed out per half-open round */
	int32_t		success_threshold;	/* probe successes that close it */
} BreakerConfig;

typedef struct BreakerCore
{
	uint8_t		state;			/* BreakerState */
	uint8_t		mode;			/* BreakerMode */
	int32_t		failures;		/* closed: in the current window; else: at opening */
	int32_t		successes;		/* half-open: probe successes so far */
	int32_t		probes;			/* half-open: probes handed out this round */
	int64_t		window_start;	/* first failure of the current window */
	int64_t		window_us;		/* that window's length (config at the time) */
	int64_t		opened_at;
	int64_t		changed_at;		/* last change of state or mode */
	int64_t		probe_at;		/* half-open: last probe handed out */
} BreakerCore;

extern const BreakerConfig breaker_default_config;

extern void BreakerCoreInit(BreakerCore *c);
extern bool BreakerCoreWouldAllow(const BreakerCore *c, const BreakerConfig *cfg, int64_t now);
extern bool BreakerCoreAllow(BreakerCore *c, const BreakerConfig *cfg, int64_t now, int *changed);
extern int	BreakerCoreRecord(BreakerCore *c, const BreakerConfig *cfg, int64_t now, bool success);
extern int	BreakerCoreTick(BreakerCore *c, const BreakerConfig *cfg, int64_t now);
extern int	BreakerCoreForce(BreakerCore *c, BreakerMode mode, int64_t now);
extern int	BreakerCoreReset(BreakerCore *c, int64_t now);
extern int32_t BreakerCoreFailures(const BreakerCore *c, int64_t now);
extern bool BreakerCoreIdle(const BreakerCore *c, int64_t now);
extern int64_t BreakerCoreNextProbe(const BreakerCore *c, const BreakerConfig *cfg);
extern const char *BreakerStateName(int state);
extern const char *BreakerModeName(int mode);
extern int	BreakerModeFromName(const char *name);
extern int	BreakerStateFromName(const char *name);

#endif
