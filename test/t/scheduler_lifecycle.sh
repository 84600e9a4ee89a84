#!/usr/bin/env bash
# The scheduler's life on its own cluster: a missing database (no FATAL loop),
# waiting quietly for CREATE EXTENSION, DROP DATABASE with and without FORCE,
# and the postmaster's crash restart after SIGKILL.
. "$(dirname "$0")/../lib/tap.sh"

dir=$TG_WORK/lifecycle
port=$(tg_pick_port)
tg_init_cluster "$dir" "$port" "taskguard.database = 'jobs'" "taskguard.naptime = 100" \
    "cron.database_name = 'postgres'"
tg_start
trap 'tg_stop immediate' EXIT
DB=postgres

# the database does not exist: the launcher waits, nothing connects, no FATAL
q "SELECT pg_sleep(1.5)" >/dev/null
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'taskguard scheduler'")" 0 "no scheduler without its database"
is "$(grep -c 'FATAL' "$TG_LOGFILE")" 0 "no FATAL in the log while the database is missing"

# the database exists, the extension not yet: connected, quiet, no passes
q "CREATE DATABASE jobs" >/dev/null
DB=jobs
ok "$(tg_wait_for 10 "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'taskguard scheduler' AND datname = 'jobs'" jobs; echo $?)" \
   "scheduler connects once the database exists"
q "CREATE EXTENSION taskguard" >/dev/null
ok "$(tg_wait_for 10 "SELECT passes > 0 FROM taskguard.scheduler_status"; echo $?)" "passes start after CREATE EXTENSION"

# plain DROP DATABASE succeeds: the scheduler sees the drop's lock and leaves
DB=postgres
is "$(psql -X -At -d postgres -c "DROP DATABASE jobs" 2>&1)" "DROP DATABASE" "DROP DATABASE (no FORCE) of the scheduler's database works"
q "CREATE DATABASE jobs" >/dev/null
psql -X -q -d jobs -c "CREATE EXTENSION taskguard" >/dev/null
DB=jobs
ok "$(tg_wait_for 10 "SELECT passes > 0 AND pid IS NOT NULL FROM taskguard.scheduler_status"; echo $?)" "scheduler back in the recreated database"
DB=postgres
is "$(psql -X -At -d postgres -c "DROP DATABASE jobs WITH (FORCE)" 2>&1)" "DROP DATABASE" "DROP DATABASE WITH (FORCE) works"
q "CREATE DATABASE jobs" >/dev/null
psql -X -q -d jobs -c "CREATE EXTENSION taskguard" >/dev/null
DB=jobs
ok "$(tg_wait_for 10 "SELECT passes > 0 AND pid IS NOT NULL FROM taskguard.scheduler_status"; echo $?)" "scheduler back after a forced drop"

# SIGKILL of the scheduler: crash restart, the scheduler comes back
pid=$(q "SELECT pid FROM taskguard.scheduler_status")
kill -9 "$pid"
sleep 1
ok "$(tg_wait_for 30 "SELECT pid IS NOT NULL AND pid <> $pid AND passes > 0 FROM taskguard.scheduler_status"; echo $?)" \
   "scheduler back after SIGKILL and the postmaster's crash restart"
is "$(grep -c 'taskguard scheduler step' "$TG_LOGFILE")" 0 "no step errors logged"
done_testing
