#!/usr/bin/env bash
# A full breaker table (docs/reference.md#breakers): with taskguard.max_breakers = 16, a 17th
# breaker is refused with a clean error by breaker_record/breaker_force, the
# queue hooks never raise, allow allocates nothing, and an idle breaker is
# evicted to make room.  Runs its own cluster.
. "$(dirname "$0")/../lib/tap.sh"

tg_init_cluster "$TG_WORK/breaker-capacity" "$(tg_pick_port)" "taskguard.max_breakers = 16" "fsync = off"
trap 'tg_stop immediate' EXIT
tg_start
tg_create_main_db

is "$(q "SELECT count(taskguard.breaker_record('cap' || i, false)) FROM generate_series(1, 16) i")" "16" \
   "16 breakers with live failures fit"
is "$(q "SELECT count(*) FROM taskguard.breaker_status WHERE failures = 1")" "16" "all 16 are live"

err=$(psql -X -At -d taskguard -c "SELECT taskguard.breaker_record('cap17', false)" 2>&1 >/dev/null)
case "$err" in *"taskguard.max_breakers"*) ok 0 "breaker_record on a full table names the GUC";;
               *) ok 1 "breaker_record on a full table names the GUC (got: $err)";; esac
is "$(psql -X -At -d taskguard -v VERBOSITY=verbose -c "\set VERBOSITY verbose" \
      -c "SELECT taskguard.breaker_force('cap17', 'open')" 2>&1 | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p')" \
   "53400" "breaker_force on a full table raises configuration_limit_exceeded"
is "$(q "SELECT taskguard._breaker_task_done('cap17', false)::text")" "" "the fail() hook does not raise"
is "$(q "SELECT taskguard.breaker_allow('cap17')")" "t" "allow on an unknown service still answers"
tid=$(q "SELECT taskguard.enqueue('job', service => 'cap17')")
is "$(q "SELECT count(*) FROM taskguard.claim('default', 'w')")" "1" "claim works with a full table"
is "$(q "SELECT taskguard.complete($tid)")" "t" "complete works with a full table"
is "$(q "SELECT count(*) FROM taskguard._breaker_live() WHERE service = 'cap17'")" "0" \
   "nothing was allocated for cap17"

# a reset breaker is closed and idle: it makes room
q "SELECT taskguard.breaker_reset('cap1')" >/dev/null
is "$(q "SELECT taskguard.breaker_record('cap17', false)")" "closed" "an idle breaker is evicted for a new one"
is "$(q "SELECT count(*) FROM taskguard._breaker_live()")" "16" "still 16 live breakers"
is "$(q "SELECT count(*) FROM taskguard._breaker_live() WHERE service = 'cap1'")" "0" "cap1 was the one evicted"
# an open breaker is never evicted
q "SELECT taskguard.breaker_force('cap2', 'open')" >/dev/null
err=$(psql -X -At -d taskguard -c "SELECT taskguard.breaker_force('cap18', 'disabled')" 2>&1 >/dev/null)
case "$err" in *"too many circuit breakers"*) ok 0 "full again: refused, open breakers kept";;
               *) ok 1 "full again: refused, open breakers kept (got: $err)";; esac
is "$(q "SELECT state FROM taskguard.breaker_status WHERE service = 'cap2'")" "open" "cap2 is still open"
# failures whose window has passed make a breaker idle
q "INSERT INTO taskguard.breaker_config (service, \"window\") VALUES ('cap3', '1 second')" >/dev/null
q "SELECT taskguard.breaker_reset('cap3')" >/dev/null
q "SELECT taskguard.breaker_record('cap3', false)" >/dev/null
ok $(tg_wait_for 10 "SELECT failures = 0 FROM taskguard.breaker_status WHERE service = 'cap3'"; echo $?) \
   "cap3's failure lapses with its window"
is "$(q "SELECT taskguard.breaker_record('cap19', false)")" "closed" "a lapsed breaker is evicted too"
is "$(q "SELECT count(*) FROM taskguard._breaker_live() WHERE service = 'cap3'")" "0" "cap3 was evicted"
# loading more saved rows than fit logs and goes on
! grep -E 'TRAP:|terminated by signal|PANIC' "$TG_LOGFILE" >/dev/null
ok $? "no crash in the server log"
done_testing
