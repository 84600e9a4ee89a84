/*
 * breaker_core.c — the circuit-breaker state machine (docs/reference.md#breakers), pure C.
 *
 * closed → open when failure_threshold failures fall within one window (the
 * window starts at the first failure and lasts window_us; a failure after it
 * starts a new one; successes do not reset the count).  open → half_open once
 * cooldown has passed (on the next allow, record or scheduler tick).
 * half_open hands out at most half_open_max_calls probes per round; a round
 * whose probes have not all reported within the probe timeout (cooldown, at
 * least 10 s) of the last one handed out is forgotten, so a lost probe cannot
 * wedge the breaker.
 * success_threshold probe successes close it; one failure opens it again.
 *
 * The mode overrides what allow answers: 'open' (forced) refuses and freezes
 * the breaker open, 'disabled' allows everything while the state machine keeps
 * counting, 'auto' is normal operation.
 */
#include "breaker_core.h"

#include <string.h>

const BreakerConfig breaker_default_config = {
	.failure_threshold = 5,
	.window_us = INT64_C(60000000),
	.cooldown_us = INT64_C(30000000),
	.half_open_max_calls = 3,
	.success_threshold = 2,
};

static const char *const state_names[] = {"closed", "open", "half_open"};
static const char *const mode_names[] = {"auto", "open", "disabled"};

/* now - then >= span, without overflow; an unset time counts as long ago. */
static bool
Elapsed(int64_t then, int64_t now, int64_t span)
{
	if (then == BREAKER_NO_TIME)
		return true;
	if (now < then)
		return span <= 0;
	return (uint64_t) now - (uint64_t) then >= (uint64_t) (span < 0 ? 0 : span);
}

/* then + span, saturating. */
static int64_t
AddSat(int64_t then, int64_t span)
{
	if (span > 0 && then > INT64_MAX - span)
		return INT64_MAX;
	return then + span;
}

/* A fresh breaker: closed, automatic, nothing counted. */
void
BreakerCoreInit(BreakerCore *c)
{
	memset(c, 0, sizeof(*c));
	c->state = BREAKER_CLOSED;
	c->mode = BREAKER_AUTO;
	c->window_start = BREAKER_NO_TIME;
	c->opened_at = BREAKER_NO_TIME;
	c->changed_at = BREAKER_NO_TIME;
	c->probe_at = BREAKER_NO_TIME;
}

/* Open long enough for probes? */
static bool
Cooled(const BreakerCore *c, const BreakerConfig *cfg, int64_t now)
{
	return c->state == BREAKER_OPEN && Elapsed(c->opened_at, now, cfg->cooldown_us);
}

/* → open now; the cooldown starts. */
static void
Open(BreakerCore *c, int64_t now)
{
	c->state = BREAKER_OPEN;
	c->opened_at = now;
	c->changed_at = now;
	c->successes = 0;
	c->probes = 0;
	c->probe_at = BREAKER_NO_TIME;
}

/* → half_open: a new probe round. */
static void
EnterHalfOpen(BreakerCore *c, int64_t now)
{
	c->state = BREAKER_HALF_OPEN;
	c->changed_at = now;
	c->successes = 0;
	c->probes = 0;
	c->probe_at = BREAKER_NO_TIME;
}

/* → closed: everything counted is forgotten. */
static void
Close(BreakerCore *c, int64_t now)
{
	c->state = BREAKER_CLOSED;
	c->changed_at = now;
	c->failures = 0;
	c->successes = 0;
	c->probes = 0;
	c->window_start = BREAKER_NO_TIME;
	c->opened_at = BREAKER_NO_TIME;
	c->probe_at = BREAKER_NO_TIME;
}

/* How long a probe may stay unreported before its round is forgotten. */
static int64_t
ProbeTimeout(const BreakerConfig *cfg)
{
	return cfg->cooldown_us > BREAKER_MIN_PROBE_TIMEOUT_US ? cfg->cooldown_us
		: BREAKER_MIN_PROBE_TIMEOUT_US;
}

/* A half-open round whose last probe is older than the probe timeout is over. */
static bool
ProbesStale(const BreakerCore *c, const BreakerConfig *cfg, int64_t now)
{
	return Elapsed(c->probe_at, now, ProbeTimeout(cfg));
}

/* Would a call be let through now?  Changes nothing. */
bool
BreakerCoreWouldAllow(const BreakerCore *c, const BreakerConfig *cfg, int64_t now)
{
	if (c->mode == BREAKER_DISABLED)
		return true;
	if (c->mode == BREAKER_FORCED_OPEN)
		return false;
	switch (c->state)
	{
		case BREAKER_CLOSED:
			return true;
		case BREAKER_OPEN:
			return Cooled(c, cfg, now);
		default:
			return c->probes < cfg->half_open_max_calls || ProbesStale(c, cfg, now);
	}
}

/*
 * Let a call through?  Half-opens a cooled breaker and takes a probe when
 * half-open.  *changed gets the BREAKER_CHANGED_* flags.
 */
bool
BreakerCoreAllow(BreakerCore *c, const BreakerConfig *cfg, int64_t now, int *changed)
{
	*changed = 0;
	if (c->mode == BREAKER_DISABLED)
		return true;
	if (c->mode == BREAKER_FORCED_OPEN)
		return false;
	if (c->state == BREAKER_CLOSED)
		return true;
	if (c->state == BREAKER_OPEN)
	{
		if (!Cooled(c, cfg, now))
			return false;
		EnterHalfOpen(c, now);
		*changed = BREAKER_CHANGED_STATE | BREAKER_CHANGED_COUNTS;
	}
	if (c->probes >= cfg->half_open_max_calls && ProbesStale(c, cfg, now))
		c->probes = 0;
	if (c->probes >= cfg->half_open_max_calls)
		return false;
	c->probes++;
	c->probe_at = now;
	return true;
}

/* Record the outcome of a call; returns BREAKER_CHANGED_* flags. */
int
BreakerCoreRecord(BreakerCore *c, const BreakerConfig *cfg, int64_t now, bool success)
{
	int			changed = 0;

	if (c->mode != BREAKER_FORCED_OPEN && Cooled(c, cfg, now))
	{
		EnterHalfOpen(c, now);
		changed |= BREAKER_CHANGED_STATE | BREAKER_CHANGED_COUNTS;
	}
	switch (c->state)
	{
		case BREAKER_CLOSED:
			if (success)
				return changed;
			if (c->failures == 0 || Elapsed(c->window_start, now, c->window_us))
			{
				c->failures = 0;
				c->window_start = now;
				c->window_us = cfg->window_us;
			}
			c->failures++;
			changed |= BREAKER_CHANGED_COUNTS;
			if (c->failures >= cfg->failure_threshold)
			{
				Open(c, now);
				changed |= BREAKER_CHANGED_STATE;
			}
			return changed;
		case BREAKER_OPEN:
			return changed;		/* late outcomes of calls made before it opened */
		default:
			changed |= BREAKER_CHANGED_COUNTS;
			if (!success)
			{
				if (c->failures < INT32_MAX)
					c->failures++;
				Open(c, now);
				return changed | BREAKER_CHANGED_STATE;
			}
			c->successes++;
			if (c->successes >= cfg->success_threshold)
			{
				Close(c, now);
				changed |= BREAKER_CHANGED_STATE;
			}
			return changed;
	}
}

/* Scheduler pass: half-open a cooled breaker, end a stale probe round. */
int
BreakerCoreTick(BreakerCore *c, const BreakerConfig *cfg, int64_t now)
{
	if (c->mode != BREAKER_FORCED_OPEN && Cooled(c, cfg, now))
	{
		EnterHalfOpen(c, now);
		return BREAKER_CHANGED_STATE | BREAKER_CHANGED_COUNTS;
	}
	if (c->state == BREAKER_HALF_OPEN && c->probes >= cfg->half_open_max_calls &&
		ProbesStale(c, cfg, now))
		c->probes = 0;
	return 0;
}

/* breaker_force: forcing open opens it now; 'auto' leaves the state as is. */
int
BreakerCoreForce(BreakerCore *c, BreakerMode mode, int64_t now)
{
	int			changed = 0;

	if (mode == BREAKER_FORCED_OPEN && c->state != BREAKER_OPEN)
	{
		Open(c, now);
		changed = BREAKER_CHANGED_STATE | BREAKER_CHANGED_COUNTS;
	}
	if (c->mode != mode)
	{
		c->mode = (uint8_t) mode;
		c->changed_at = now;
		changed = BREAKER_CHANGED_STATE | BREAKER_CHANGED_COUNTS;
	}
	return changed;
}

/* breaker_reset: closed, mode auto, counters cleared. */
int
BreakerCoreReset(BreakerCore *c, int64_t now)
{
	BreakerCoreInit(c);
	c->changed_at = now;
	return BREAKER_CHANGED_STATE | BREAKER_CHANGED_COUNTS;
}

/* Failures to show: a closed breaker's count lapses with its window. */
int32_t
BreakerCoreFailures(const BreakerCore *c, int64_t now)
{
	if (c->state == BREAKER_CLOSED && Elapsed(c->window_start, now, c->window_us))
		return 0;
	return c->failures;
}

/* Closed, automatic and without live failures: safe to forget. */
bool
BreakerCoreIdle(const BreakerCore *c, int64_t now)
{
	return c->state == BREAKER_CLOSED && c->mode == BREAKER_AUTO &&
		BreakerCoreFailures(c, now) == 0;
}

/* When the next probe may go through; BREAKER_NO_TIME when not waiting. */
int64_t
BreakerCoreNextProbe(const BreakerCore *c, const BreakerConfig *cfg)
{
	if (c->mode != BREAKER_AUTO)
		return BREAKER_NO_TIME;
	if (c->state == BREAKER_OPEN && c->opened_at != BREAKER_NO_TIME)
		return AddSat(c->opened_at, cfg->cooldown_us);
	if (c->state == BREAKER_HALF_OPEN && c->probes >= cfg->half_open_max_calls &&
		c->probe_at != BREAKER_NO_TIME)
		return AddSat(c->probe_at, ProbeTimeout(cfg));
	return BREAKER_NO_TIME;
}

/* SQL name of a state (taskguard.breaker_state). */
const char *
BreakerStateName(int state)
{
	return (state >= 0 && state <= BREAKER_HALF_OPEN) ? state_names[state] : "closed";
}

/* SQL name of a mode, as breaker_force takes it. */
const char *
BreakerModeName(int mode)
{
	return (mode >= 0 && mode <= BREAKER_DISABLED) ? mode_names[mode] : "auto";
}

/* 'auto' | 'open' | 'disabled' → BreakerMode, or -1. */
int
BreakerModeFromName(const char *name)
{
	for (int i = 0; i <= BREAKER_DISABLED; i++)
		if (strcmp(name, mode_names[i]) == 0)
			return i;
	return -1;
}

/* 'closed' | 'open' | 'half_open' → BreakerState, or -1. */
int
BreakerStateFromName(const char *name)
{
	for (int i = 0; i <= BREAKER_HALF_OPEN; i++)
		if (strcmp(name, state_names[i]) == 0)
			return i;
	return -1;
}
