#!/usr/bin/env bash
# Faults on a cluster of its own: kill -9 of a worker backend mid-task (the
# postmaster's crash restart), pg_ctl stop -m immediate with leased tasks, and
# kill -9 of the scheduler itself.  No committed task or dead-letter record is
# lost, leases are reaped after the restart, the scheduler comes back.
. "$(dirname "$0")/../lib/tap.sh"
dir=$TG_WORK/fault
tg_init_cluster "$dir" "$(tg_pick_port)" "taskguard.naptime = 100" "cron.database_name = 'postgres'"
tg_start
trap 'tg_stop immediate' EXIT
DB=postgres q "CREATE DATABASE taskguard" >/dev/null
q "CREATE EXTENSION IF NOT EXISTS taskguard" >/dev/null
q "SELECT count(*) FROM taskguard.enqueue_many('fault_job', (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, 1000) g), 'fault')" >/dev/null
# 30 committed dead-letter records (ABANDONED: nothing moves them) to check after each fault
q "SELECT count(*) FROM taskguard.enqueue_many('fault_dlq', array_fill('{}'::jsonb, ARRAY[30]), 'fault_dlq')" >/dev/null
q "SELECT count(taskguard.fail(id, 'ValueError', 'bad input', '{}', attempts)) FROM taskguard.claim('fault_dlq', 'w0', 30)" >/dev/null
dlq_intact() {  # the 30 records, still ABANDONED, with their tasks
    q "SELECT count(*) FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id
        WHERE t.queue = 'fault_dlq' AND d.status = 'ABANDONED' AND d.failure_type = 'PERMANENT_INVALID_INPUT'"
}
is "$(dlq_intact)" 30 "30 dead-letter records committed before the faults"

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
is "$(dlq_intact)" 30 "no dead-letter record lost by the crash"

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
is "$(dlq_intact)" 30 "no dead-letter record lost by the immediate shutdown"

# kill -9 of the scheduler while tasks are leased: the postmaster's crash restart
q "SELECT count(*) FROM taskguard.claim('fault', 'w3', 5, '1 second')" >/dev/null
sched=$(q "SELECT pid FROM taskguard.scheduler_status")
kill -9 "$sched"
ok "$(tg_wait_for 30 "SELECT pid IS NOT NULL AND pid <> $sched AND passes > 0 FROM taskguard.scheduler_status"; echo $?)" \
   "a new scheduler runs after kill -9 of the old one"
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fault'")" 1000 "no task lost by the scheduler's crash"
ok "$(tg_wait_for 20 "SELECT count(*) = 0 FROM taskguard.task WHERE queue = 'fault' AND status = 'running'"; echo $?)" \
   "w3's leases are reaped by the new scheduler"
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fault' AND worker = 'w3' AND failure_id IS NOT NULL")" 5 \
   "w3's 5 tasks are recorded as failures"
is "$(dlq_intact)" 30 "no dead-letter record lost by the scheduler's crash"
done_testing
