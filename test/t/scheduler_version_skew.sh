#!/usr/bin/env bash
# Version skew (issue 17): between `make install` of a new library and ALTER
# EXTENSION taskguard UPDATE the scheduler finds an older schema.  It logs one
# WARNING with the hint to update, then runs the installed schema's own steps
# (taskguard._tick_steps() / _tick_step() of that version) without errors;
# after the update it loads the new step list and says nothing more.
# Own cluster: the scheduler's database starts at release 0.1.0.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."

cur=$(sed -n "s/^default_version = '\(.*\)'/\1/p" taskguard.control)
dir=$TG_WORK/sched_skew
port=$(tg_pick_port)
tg_init_cluster "$dir" "$port" "taskguard.database = 'jobs'" "taskguard.naptime = 100" \
    "cron.database_name = 'postgres'"
tg_start
trap 'tg_stop immediate' EXIT
DB=jobs
psql -X -q -d postgres -c "CREATE DATABASE jobs" >/dev/null
q "CREATE EXTENSION taskguard VERSION '0.1.0'" >/dev/null
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'taskguard'")" 0.1.0 "the scheduler's database has the 0.1.0 schema"
ok "$(tg_wait_for 10 "SELECT passes > 20 FROM taskguard.scheduler_status"; echo $?)" "the scheduler makes passes on the 0.1.0 schema"

warn="extension taskguard is at version 0.1.0 in database \"jobs\" but the library is version $cur"
is "$(grep -c "WARNING:  taskguard scheduler: $warn" "$TG_LOGFILE")" 1 "one WARNING names both versions"
is "$(grep -A3 "WARNING:  taskguard scheduler: $warn" "$TG_LOGFILE" | grep -c 'HINT:  Run ALTER EXTENSION taskguard UPDATE')" 1 \
   "its hint says to run ALTER EXTENSION taskguard UPDATE"
is "$(q "SELECT string_agg(k, ',' ORDER BY k) FROM taskguard.scheduler_status, jsonb_object_keys(total_counts) k")" \
   "$(q "SELECT string_agg(s, ',' ORDER BY s) FROM unnest(taskguard._tick_steps()) s")" \
   "it runs the step list of the installed 0.1.0 schema"

# the old schema's steps do their work: a lease expires and is reaped, the retry is requeued
q "SELECT taskguard.enqueue('t', '{}', queue => 'skew') FROM generate_series(1, 3)" >/dev/null
q "SELECT count(*) FROM taskguard.claim('skew', 'w-gone', 3, '1 second')" >/dev/null
ok "$(tg_wait_for 20 "SELECT count(*) = 0 FROM taskguard.task WHERE queue = 'skew' AND status = 'running'"; echo $?)" \
   "0.1.0 steps reap expired leases"
p0=$(q "SELECT passes FROM taskguard.scheduler_status")
ok "$(tg_wait_for 10 "SELECT passes > $p0 + 20 FROM taskguard.scheduler_status"; echo $?)" "passes go on"
is "$(grep -c "WARNING:  taskguard scheduler" "$TG_LOGFILE")" 1 "still one WARNING after many passes"
is "$(grep -cE 'ERROR|taskguard scheduler step' "$TG_LOGFILE")" 0 "no step error, no ERROR in the log"

# the update: the scheduler loads the new steps, no new warning
q "ALTER EXTENSION taskguard UPDATE" >/dev/null
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'taskguard'")" "$cur" "ALTER EXTENSION taskguard UPDATE to $cur"
p1=$(q "SELECT passes FROM taskguard.scheduler_status")
ok "$(tg_wait_for 10 "SELECT passes > $p1 + 10 FROM taskguard.scheduler_status"; echo $?)" "passes go on after the update"
is "$(q "SELECT string_agg(k, ',' ORDER BY k) FROM taskguard.scheduler_status, jsonb_object_keys(total_counts) k")" \
   "$(q "SELECT string_agg(s, ',' ORDER BY s) FROM unnest(taskguard._tick_steps()) s")" \
   "it runs the step list of the updated schema"
is "$(grep -c "WARNING:  taskguard scheduler" "$TG_LOGFILE")" 1 "no new warning once the versions match"
is "$(grep -cE 'ERROR|taskguard scheduler step' "$TG_LOGFILE")" 0 "no step error, no ERROR in the log"
done_testing
