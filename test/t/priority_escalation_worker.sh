#!/usr/bin/env bash
# priority_escalation_worker.sh — the background worker (no tick()) raises the
# priority of a waiting task as it ages.
. "$(dirname "$0")/../lib/tap.sh"

# Until the scheduler lands on main there is no worker to watch: skip, visibly.
if ! tg_wait_for 10 "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'taskguard scheduler')"; then
    echo "1..0 # SKIP no taskguard scheduler background worker is running"
    exit 0
fi

id=$(q "SELECT taskguard.enqueue('prio_worker', queue => 'prio_worker_q', run_at => now() + interval '1 day')")
is "$(q "SELECT priority FROM taskguard.task WHERE id = $id")" MEDIUM "a new task starts at MEDIUM"
q "UPDATE taskguard.task SET enqueued_at = now() - interval '7 hours' WHERE id = $id" >/dev/null
tg_wait_for 20 "SELECT priority = 'CRITICAL' FROM taskguard.task WHERE id = $id"
ok $? "the scheduler escalates it to CRITICAL (aging +0.5, SLA breached +1)"
is "$(q "SELECT priority_score FROM taskguard.task WHERE id = $id")" 3.5 "score 3.5"
is "$(q "SELECT base_score || '/' || escalated_score FROM taskguard.task_escalation WHERE task_id = $id")" \
    "2/3.5" "the escalation remembers its base"
q "SELECT taskguard.cancel($id)" >/dev/null
done_testing
