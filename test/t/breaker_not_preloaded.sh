#!/usr/bin/env bash
# Without shared_preload_libraries (docs/reference.md#breakers): the breaker functions raise
# object_not_in_prerequisite_state; the hooks answer "no breaker", so the queue
# keeps working; the status view shows saved rows.  Runs its own cluster.
. "$(dirname "$0")/../lib/tap.sh"

tg_init_cluster "$TG_WORK/breaker-nopreload" "$(tg_pick_port)" "shared_preload_libraries = ''" "fsync = off"
trap 'tg_stop immediate' EXIT
tg_start
psql -X -q -d postgres -c "CREATE DATABASE taskguard" &&
    psql -X -q -d taskguard -c "CREATE EXTENSION taskguard" || exit 1

sqlstate() {  # the SQLSTATE of a failing statement
    psql -X -At -d taskguard -c "\set VERBOSITY verbose" -c "$1" 2>&1 >/dev/null |
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p'
}
is "$(sqlstate "SELECT taskguard.breaker_allow('s')")" "55000" "breaker_allow needs preloading"
is "$(sqlstate "SELECT taskguard.breaker_record('s', false)")" "55000" "breaker_record needs preloading"
is "$(sqlstate "SELECT taskguard.breaker_reset('s')")" "55000" "breaker_reset needs preloading"
is "$(sqlstate "SELECT taskguard.breaker_force('s', 'open')")" "55000" "breaker_force needs preloading"
psql -X -At -d taskguard -c "SELECT taskguard.breaker_allow('s')" 2>&1 | grep -q "shared_preload_libraries"
ok $? "the error says what to do"
is "$(q "SELECT taskguard._breaker_is_open('s')")" "f" "_breaker_is_open answers false"
is "$(q "SELECT taskguard._breaker_claimed('s')")" "t" "_breaker_claimed answers true"
is "$(q "SELECT taskguard._breaker_task_done('s', false)::text")" "" "_breaker_task_done does nothing"
is "$(q "SELECT taskguard._breaker_maintain()")" "0" "_breaker_maintain does nothing"
tid=$(q "SELECT taskguard.enqueue('job', service => 's')")
is "$(q "SELECT count(*) FROM taskguard.claim('default', 'w')")" "1" "claim hands out a task with a service"
is "$(q "SELECT taskguard.complete($tid)")" "t" "complete works"
q "INSERT INTO taskguard.breaker_saved (service, state, mode, failures, opened_at, changed_at, version)
   VALUES ('saved', 'open', 'auto', 5, now(), now(), 1)" >/dev/null
is "$(q "SELECT service || ':' || state || ':' || failures FROM taskguard.breaker_status")" "saved:open:5" \
   "breaker_status shows saved rows"
is "$(q "SELECT taskguard.tick() ? 'breakers'")" "t" "tick() runs the breaker step"
done_testing
