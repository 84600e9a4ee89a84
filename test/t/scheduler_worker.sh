#!/usr/bin/env bash
# The background worker on the harness cluster, without tick(): it runs passes,
# reaps expired leases, comes back after pg_terminate_backend, and SIGHUP
# changes its naptime.
. "$(dirname "$0")/../lib/tap.sh"

ok "$(tg_wait_for 10 "SELECT passes > 0 FROM taskguard.scheduler_status"; echo $?)" "scheduler runs passes"
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'taskguard scheduler' AND datname = 'taskguard'")" 1 \
   "backend_type is 'taskguard scheduler', connected to taskguard.database"
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'taskguard launcher'")" 1 "one launcher"

# an expired lease is reaped by the worker
id=$(q "SELECT taskguard.enqueue('reap_me', '{}', 'sched_q')")
q "SELECT count(*) FROM taskguard.claim('sched_q', 'doomed', 1, '50 milliseconds')" >/dev/null
ok "$(tg_wait_for 5 "SELECT status <> 'running' FROM taskguard.task WHERE id = $id"; echo $?)" "expired lease reaped within 5 s"
like_reap=$(q "SELECT last_error LIKE '%LeaseExpired%' OR EXISTS (SELECT 1 FROM taskguard.task WHERE id = $id AND status = 'failed') FROM taskguard.task WHERE id = $id")
is "$like_reap" t "reaped task is recorded as a LeaseExpired failure"

# a due retry is back on its queue within 3 x naptime (the worker, no tick())
naptime_ms=$(q "SELECT extract(epoch FROM current_setting('taskguard.naptime')::interval) * 1000")
id=$(q "SELECT taskguard.enqueue('retry_me', '{}', 'sched_retry')")
q "SELECT count(*) FROM taskguard.claim('sched_retry', 'w', 1)" >/dev/null
is "$(q "SELECT (taskguard.fail($id, 'psycopg.errors.DeadlockDetected', 'deadlock detected', '{}', 1)).action")" retry \
   "a deadlock is retried"
q "UPDATE taskguard.task SET run_at = now() + interval '1 hour' WHERE id = $id" >/dev/null
due=$(q "WITH u AS (UPDATE taskguard.dead_letter SET next_retry_at = clock_timestamp() WHERE task_id = $id RETURNING next_retry_at) SELECT next_retry_at FROM u")
ok "$(tg_wait_for 10 "SELECT status = 'ready' FROM taskguard.task WHERE id = $id"; echo $?)" "the worker requeues the due retry"
lag=$(q "SELECT round(extract(epoch FROM run_at - '$due'::timestamptz) * 1000) FROM taskguard.task WHERE id = $id")
ok "$([ "$lag" -le $((3 * ${naptime_ms%.*})) ]; echo $?)" "back on its queue ${lag} ms after it was due (3 x naptime = $((3 * ${naptime_ms%.*})) ms)"
is "$(q "SELECT status FROM taskguard.dead_letter WHERE task_id = $id")" RETRYING "its record is RETRYING"

# pg_terminate_backend: the launcher starts a new scheduler
old=$(q "SELECT pid FROM taskguard.scheduler_status")
q "SELECT pg_terminate_backend($old)" >/dev/null
ok "$(tg_wait_for 10 "SELECT pid IS NOT NULL AND pid <> $old AND passes > 0 FROM taskguard.scheduler_status"; echo $?)" \
   "scheduler is back after pg_terminate_backend"

# SIGHUP changes the naptime: 1 h stops passes, 50 ms brings them back quickly
q "ALTER SYSTEM SET taskguard.naptime = '1h'" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null
ok "$(tg_wait_for 5 "SELECT current_setting('taskguard.naptime') = '1h'"; echo $?)" "reload applied"
sleep 0.5   # let a pass that was already running finish
p1=$(q "SELECT passes FROM taskguard.scheduler_status")
q "SELECT pg_sleep(1)" >/dev/null
p2=$(q "SELECT passes FROM taskguard.scheduler_status")
ok "$([ $((p2 - p1)) -le 1 ]; echo $?)" "with naptime 1h at most one pass in 1 s ($p1 -> $p2)"
q "ALTER SYSTEM SET taskguard.naptime = '50ms'" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null
ok "$(tg_wait_for 5 "SELECT passes >= $p2 + 10 FROM taskguard.scheduler_status"; echo $?)" "with naptime 50ms ten passes soon follow"
q "ALTER SYSTEM RESET taskguard.naptime" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null
is "$(q "SELECT last_error FROM taskguard.scheduler_status")" "" "no step has failed"
done_testing
