#!/usr/bin/env bash
# Circuit breakers survive a restart (docs/reference.md#breakers): open and forced breakers come
# back from taskguard.breaker_saved; a breaker that closed stays closed; a
# change made by a rolled-back transaction reaches the table via the scheduler
# step.  Restarts the harness cluster (fast shutdown) and leaves it running.
. "$(dirname "$0")/../lib/tap.sh"

q "INSERT INTO taskguard.breaker_config (service, failure_threshold, cooldown)
   VALUES ('rs_open', 2, '1 hour'), ('rs_closed', 1, '0'), ('rs_rolled', 1, '1 hour')
   ON CONFLICT (service) DO UPDATE SET failure_threshold = EXCLUDED.failure_threshold,
                                       cooldown = EXCLUDED.cooldown" >/dev/null
q "SELECT taskguard.breaker_reset(s) FROM unnest(ARRAY['rs_open','rs_closed','rs_rolled','rs_forced','rs_disabled']) s" >/dev/null

q "SELECT taskguard.breaker_record('rs_open', false)" >/dev/null
is "$(q "SELECT taskguard.breaker_record('rs_open', false)")" "open" \
   "rs_open opens at its threshold"
q "SELECT taskguard.breaker_force('rs_forced', 'open')" >/dev/null
q "SELECT taskguard.breaker_force('rs_disabled', 'disabled')" >/dev/null
# rs_closed: opened, half-opened by a probe (cooldown 0), closed by a success
is "$(q "SELECT taskguard.breaker_record('rs_closed', false)")" "open" "rs_closed opens"
q "UPDATE taskguard.breaker_config SET success_threshold = 1 WHERE service = 'rs_closed'" >/dev/null
is "$(q "SELECT taskguard.breaker_allow('rs_closed')")" "t" "rs_closed lets a probe through"
is "$(q "SELECT taskguard.breaker_record('rs_closed', true)")" "closed" "rs_closed closes"
# rs_rolled: opened inside a transaction that rolls back
psql -X -q -d taskguard -c "BEGIN" -c "SELECT taskguard.breaker_record('rs_rolled', false)" -c "ROLLBACK" >/dev/null
# (whether the table has it yet depends on the background scheduler: the
# regression test, where no scheduler runs, checks that part)
is "$(q "SELECT state FROM taskguard.breaker_status WHERE service = 'rs_rolled'")" "open" \
   "but the breaker is open in shared memory"
# the scheduler (or tick() when it has not run yet) saves it
q "SELECT taskguard.tick()" >/dev/null
ok $(tg_wait_for 10 "SELECT EXISTS (SELECT 1 FROM taskguard.breaker_saved WHERE service = 'rs_rolled' AND state = 'open')"; echo $?) \
   "the scheduler step saved rs_rolled"
before=$(q "SELECT opened_at FROM taskguard.breaker_status WHERE service = 'rs_open'")

tg_stop fast
tg_start

is "$(q "SELECT string_agg(service || ':' || state || ':' || mode, ' ' ORDER BY service)
           FROM taskguard.breaker_status WHERE service LIKE 'rs\_%'")" \
   "rs_closed:closed:auto rs_disabled:closed:disabled rs_forced:open:open rs_open:open:auto rs_rolled:open:auto" \
   "after the restart every breaker has its state and mode"
is "$(q "SELECT taskguard.breaker_allow('rs_open')")" "f" "rs_open still refuses calls"
is "$(q "SELECT taskguard._breaker_is_open('rs_forced')")" "t" "rs_forced is still forced open"
is "$(q "SELECT taskguard.breaker_allow('rs_disabled')")" "t" "rs_disabled still allows"
is "$(q "SELECT taskguard.breaker_allow('rs_closed')")" "t" "rs_closed stays closed"
is "$(q "SELECT taskguard.breaker_allow('rs_rolled')")" "f" "rs_rolled (rolled back, saved by the scheduler) is open"
is "$(q "SELECT opened_at FROM taskguard.breaker_status WHERE service = 'rs_open'")" "$before" \
   "opened_at survives, so the cooldown is not restarted"
is "$(q "SELECT failures FROM taskguard.breaker_status WHERE service = 'rs_open'")" "2" "failures survive"
# a breaker loaded from the table keeps working: a fresh failure count after reset
q "SELECT taskguard.breaker_reset('rs_open')" >/dev/null
is "$(q "SELECT taskguard.breaker_record('rs_open', false)")" "closed" "a reset loaded breaker counts from zero"

q "SELECT taskguard.breaker_reset(s) FROM unnest(ARRAY['rs_open','rs_closed','rs_rolled','rs_forced','rs_disabled']) s" >/dev/null
q "DELETE FROM taskguard.breaker_config WHERE service LIKE 'rs\_%'" >/dev/null
done_testing
