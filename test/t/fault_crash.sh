#!/usr/bin/env bash
# Faults on a cluster of its own: kill -9 of a worker backend mid-task (the
# postmaster's crash restart), and pg_ctl stop -m immediate with leased tasks.
# No committed task is lost, leases are reaped after the restart, the
# scheduler comes back.
. "$(dirname "$0")/../lib/tap.sh"
dir=$TG_WORK/fault
tg_init_cluster "$dir" "$(tg_pick_port)" "taskguard.naptime = 100" "cron.database_name = 'postgres'"
tg_start
trap 'tg_stop immediate' EXIT
DB=postgres q "CREATE DATABASE taskguard" >/dev/null
q "CREATE EXTENSION IF NOT EXISTS taskguard" >/dev/null
q "SELECT count(*) FROM taskguard.enqueue_many('fault_job', (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 1000) g), 'fault')" >/dev/null

# a worker claims 10 tasks with a 2 s lease and is killed while "working"
psql -X -q -d taskguard -c "SELECT count(*) FROM taskguard.claim('fault', 'victim', 10, '2 seconds')" \
     -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
tg_wait_for 10 "SELECT count(*) = 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'" >/dev/null
victim=$(q "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'")
kill -9 "$victim"
wait 2>/dev/null
ok "$(tg_wait_for 30 "SELECT passes > 0 FROM taskguard.scheduler_status"; echo $?)" "after kill -9 and crash restart the scheduler runs again"
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fault'")" 1000 "no committed task lost by the crash"
ok "$(tg_wait_for 20 "SELECT count(*) = 0 FROM taskguard.task WHERE queue = 'fault' AND status = 'running'"; echo $?)" \
   "the victim's leases are reaped after the restart"
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fault' AND worker = 'victim' AND last_error LIKE '%LeaseExpired%' OR (queue = 'fault' AND worker = 'victim' AND failure_id IS NOT NULL)")" 10 \
   "the 10 reaped tasks are recorded as LeaseExpired failures"

# immediate shutdown with leased tasks, then restart
q "SELECT count(*) FROM taskguard.claim('fault', 'w2', 20, '2 seconds')" >/dev/null
tg_stop immediate
tg_start
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fault'")" 1000 "no task lost by an immediate shutdown"
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fault' AND worker = 'w2' AND (status = 'running' OR failure_id IS NOT NULL)")" 20 \
   "the 20 leased tasks survive the restart (running, or already reaped as failures)"
ok "$(tg_wait_for 20 "SELECT count(*) = 0 FROM taskguard.task WHERE queue = 'fault' AND status = 'running'"; echo $?)" \
   "their leases are reaped by the restarted scheduler"
ok "$(tg_wait_for 10 "SELECT passes > 0 FROM taskguard.scheduler_status"; echo $?)" "the scheduler is back"
done_testing
