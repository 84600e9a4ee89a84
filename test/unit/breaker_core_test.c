/* breaker_core_test.c — the circuit-breaker state machine without a server. */
/* link: src/breaker_core.c */
#include <stdio.h>
#include <string.h>

#include "breaker_core.h"

#define SEC INT64_C(1000000)

static int	n = 0;
static int	failed = 0;

static void
check(int cond, const char *what)
{
	n++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n, what);
	if (!cond)
		failed = 1;
}

static BreakerConfig
cfg_of(int threshold, int window_s, int cooldown_s, int probes, int successes)
{
	BreakerConfig c = {threshold, window_s * SEC, cooldown_s * SEC, probes, successes};

	return c;
}

static void
test_cycle(void)
{
	BreakerConfig cfg = breaker_default_config;
	BreakerCore c;
	int64_t		t = 1000 * SEC;
	int			changed;

	BreakerCoreInit(&c);
	for (int i = 0; i < 4; i++)
		check(BreakerCoreRecord(&c, &cfg, t + i, false) == BREAKER_CHANGED_COUNTS, "failure below threshold counts");
	check(c.state == BREAKER_CLOSED && c.failures == 4, "4 failures: still closed");
	check(BreakerCoreRecord(&c, &cfg, t + 5, true) == 0 && c.failures == 4, "a success does not reset the count");
	check(BreakerCoreRecord(&c, &cfg, t + 6, false) & BREAKER_CHANGED_STATE, "5th failure changes the state");
	check(c.state == BREAKER_OPEN && c.opened_at == t + 6, "open, opened_at set");
	check(!BreakerCoreAllow(&c, &cfg, t + 29 * SEC, &changed) && changed == 0, "refused during cooldown");
	check(!BreakerCoreWouldAllow(&c, &cfg, t + 29 * SEC), "would refuse during cooldown");
	check(BreakerCoreWouldAllow(&c, &cfg, t + 31 * SEC) && c.state == BREAKER_OPEN,
		  "would allow after cooldown, without changing anything");
	check(BreakerCoreAllow(&c, &cfg, t + 31 * SEC, &changed) && (changed & BREAKER_CHANGED_STATE) &&
		  c.state == BREAKER_HALF_OPEN && c.probes == 1, "first allow after cooldown half-opens and takes a probe");
	check(BreakerCoreAllow(&c, &cfg, t + 32 * SEC, &changed), "second probe");
	check(BreakerCoreAllow(&c, &cfg, t + 32 * SEC, &changed), "third probe");
	check(!BreakerCoreAllow(&c, &cfg, t + 33 * SEC, &changed), "no fourth probe");
	check(BreakerCoreRecord(&c, &cfg, t + 34 * SEC, true) == BREAKER_CHANGED_COUNTS && c.successes == 1,
		  "one success: still half-open");
	check(BreakerCoreRecord(&c, &cfg, t + 35 * SEC, true) & BREAKER_CHANGED_STATE, "second success closes");
	check(c.state == BREAKER_CLOSED && c.failures == 0 && c.opened_at == BREAKER_NO_TIME, "closed and cleared");
}

static void
test_probe_failure_and_tick(void)
{
	BreakerConfig cfg = cfg_of(1, 60, 10, 2, 2);
	BreakerCore c;
	int			changed;

	BreakerCoreInit(&c);
	BreakerCoreRecord(&c, &cfg, 0, false);
	check(c.state == BREAKER_OPEN, "threshold 1 opens at once");
	check(BreakerCoreTick(&c, &cfg, 5 * SEC) == 0 && c.state == BREAKER_OPEN, "tick before cooldown: nothing");
	check(BreakerCoreTick(&c, &cfg, 11 * SEC) & BREAKER_CHANGED_STATE, "tick after cooldown half-opens");
	check(BreakerCoreAllow(&c, &cfg, 12 * SEC, &changed) && changed == 0, "probe from a half-open breaker");
	check(BreakerCoreRecord(&c, &cfg, 13 * SEC, false) & BREAKER_CHANGED_STATE, "failed probe changes state");
	check(c.state == BREAKER_OPEN && c.opened_at == 13 * SEC, "failed probe reopens with a new opened_at");
	check(!BreakerCoreWouldAllow(&c, &cfg, 20 * SEC), "new cooldown runs");
	/* a record on a cooled open breaker half-opens it first */
	check(BreakerCoreRecord(&c, &cfg, 24 * SEC, true) & BREAKER_CHANGED_STATE, "late success after cooldown");
	check(c.state == BREAKER_HALF_OPEN && c.successes == 1, "counts as a probe success");
}

static void
test_window(void)
{
	BreakerConfig cfg = cfg_of(3, 10, 30, 1, 1);
	BreakerCore c;

	BreakerCoreInit(&c);
	BreakerCoreRecord(&c, &cfg, 0, false);
	BreakerCoreRecord(&c, &cfg, 5 * SEC, false);
	check(BreakerCoreFailures(&c, 9 * SEC) == 2, "2 failures inside the window");
	check(BreakerCoreFailures(&c, 10 * SEC) == 0 && BreakerCoreIdle(&c, 10 * SEC), "they lapse with the window");
	BreakerCoreRecord(&c, &cfg, 11 * SEC, false);
	check(c.state == BREAKER_CLOSED && c.failures == 1, "a failure after the window starts a new one");
	check(!BreakerCoreIdle(&c, 12 * SEC), "live failures: not idle");
}

static void
test_stale_probes(void)
{
	BreakerConfig cfg = cfg_of(1, 60, 0, 1, 1);
	BreakerCore c;
	int			changed;

	BreakerCoreInit(&c);
	BreakerCoreRecord(&c, &cfg, 0, false);
	check(BreakerCoreAllow(&c, &cfg, 1, &changed), "cooldown 0: a probe at once");
	check(!BreakerCoreAllow(&c, &cfg, 2, &changed), "only one probe per round");
	check(!BreakerCoreWouldAllow(&c, &cfg, BREAKER_MIN_PROBE_TIMEOUT_US), "lost probe: wait for the timeout");
	check(BreakerCoreNextProbe(&c, &cfg) == 1 + BREAKER_MIN_PROBE_TIMEOUT_US, "next_probe_at = last probe + timeout");
	check(BreakerCoreAllow(&c, &cfg, 2 + BREAKER_MIN_PROBE_TIMEOUT_US, &changed), "a new round after the timeout");
}

static void
test_force_and_reset(void)
{
	BreakerConfig cfg = breaker_default_config;
	BreakerCore c;
	int			changed;

	BreakerCoreInit(&c);
	check(BreakerCoreForce(&c, BREAKER_FORCED_OPEN, 100) & BREAKER_CHANGED_STATE, "force open");
	check(c.state == BREAKER_OPEN && !BreakerCoreWouldAllow(&c, &cfg, 100 + 3600 * SEC), "forced open refuses forever");
	check(BreakerCoreTick(&c, &cfg, 100 + 3600 * SEC) == 0 && c.state == BREAKER_OPEN, "tick does not half-open a forced breaker");
	check(BreakerCoreRecord(&c, &cfg, 100 + 3600 * SEC, true) == 0, "records do not move a forced breaker");
	check(BreakerCoreNextProbe(&c, &cfg) == BREAKER_NO_TIME, "no next probe while forced");
	check(BreakerCoreForce(&c, BREAKER_FORCED_OPEN, 200) == 0, "forcing twice changes nothing");
	check(BreakerCoreForce(&c, BREAKER_DISABLED, 300) & BREAKER_CHANGED_STATE, "disable");
	check(BreakerCoreAllow(&c, &cfg, 301, &changed) && changed == 0 && c.probes == 0, "disabled allows without probes");
	check(BreakerCoreForce(&c, BREAKER_AUTO, 400) && c.state == BREAKER_OPEN, "auto keeps the state");
	check(BreakerCoreWouldAllow(&c, &cfg, 100 + 31 * SEC), "auto: cooldown counted from the forced opening");
	check(BreakerCoreReset(&c, 500) && c.state == BREAKER_CLOSED && c.mode == BREAKER_AUTO && c.changed_at == 500,
		  "reset: closed, auto");
	BreakerCoreForce(&c, BREAKER_DISABLED, 600);
	for (int i = 0; i < 5; i++)
		BreakerCoreRecord(&c, &cfg, 600 + i, false);
	check(c.state == BREAKER_OPEN && BreakerCoreWouldAllow(&c, &cfg, 700), "disabled keeps counting, still allows");
	check(!BreakerCoreIdle(&c, 700), "an open breaker is never idle");
}

static void
test_names_and_edges(void)
{
	BreakerConfig cfg = cfg_of(1, 60, 30, 1, 1);
	BreakerCore c;

	check(BreakerModeFromName("open") == BREAKER_FORCED_OPEN && BreakerModeFromName("auto") == BREAKER_AUTO &&
		  BreakerModeFromName("disabled") == BREAKER_DISABLED, "mode names");
	check(BreakerModeFromName("OPEN") == -1 && BreakerModeFromName("") == -1, "unknown modes refused");
	check(BreakerStateFromName("half_open") == BREAKER_HALF_OPEN && BreakerStateFromName("x") == -1, "state names");
	check(strcmp(BreakerStateName(99), "closed") == 0 && strcmp(BreakerModeName(-1), "auto") == 0, "out-of-range names");
	BreakerCoreInit(&c);
	BreakerCoreRecord(&c, &cfg, INT64_MAX - 1, false);
	check(BreakerCoreNextProbe(&c, &cfg) == INT64_MAX, "next probe saturates");
	check(!BreakerCoreWouldAllow(&c, &cfg, INT64_MAX - 1), "no overflow near the end of time");
	check(!BreakerCoreWouldAllow(&c, &cfg, 0), "a clock that went back: still open");
}

int
main(void)
{
	test_cycle();
	test_probe_failure_and_tick();
	test_window();
	test_stale_probes();
	test_force_and_reset();
	test_names_and_edges();
	printf("1..%d\n", n);
	return failed;
}
