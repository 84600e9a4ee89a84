#!/usr/bin/env bash
# dlq_worker: the background scheduler (not tick()) puts due retries back on
# their queue; a task that fails twice and then succeeds ends RESOLVED, and a
# task that keeps failing is ABANDONED after 1 + max_retries runs.
. "$(dirname "$0")/../lib/tap.sh"

q "DELETE FROM taskguard.retry_policy WHERE task_name IN ('dlqw_flaky', 'dlqw_broken')" >/dev/null
q "INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries, base_delay, max_delay, jitter)
   VALUES ('TRANSIENT_NETWORK', 'dlqw_flaky', 5, '50 ms', '100 ms', 'none'),
          ('TRANSIENT_NETWORK', 'dlqw_broken', 2, '50 ms', '100 ms', 'none')" >/dev/null
flaky=$(q "SELECT taskguard.enqueue('dlqw_flaky', queue => 'dlqw')")
broken=$(q "SELECT taskguard.enqueue('dlqw_broken', queue => 'dlqw2')")

# claim the task of a queue once it is ready again (the worker requeues it)
claim() {  # claim QUEUE -> "id attempts"
    local out="" end=$(( $(date +%s) + 20 ))
    while [ -z "$out" ] && [ "$(date +%s)" -le "$end" ]; do
        out=$(q "SELECT id || ' ' || attempts FROM taskguard.claim('$1', 'shell')")
        [ -n "$out" ] || sleep 0.1
    done
    echo "$out"
}

for i in 1 2; do
    set -- $(claim dlqw)
    is "$1" "$flaky" "flaky run $i claimed (runs after the first are requeued by the scheduler)"
    q "SELECT taskguard.fail($1, 'requests.exceptions.ConnectionError', 'Connection refused', '{}', $2)" >/dev/null
done
set -- $(claim dlqw)
is "$2" 3 "third run of the flaky task"
is "$(q "SELECT taskguard.complete($1, NULL, $2)")" t "third run succeeds"
is "$(q "SELECT status || ' ' || retry_count || ' ' || resolution FROM taskguard.dlq WHERE task_id = $flaky")" \
   "RESOLVED 1 retry" "its record is RESOLVED by the retry"

for i in 1 2 3; do
    set -- $(claim dlqw2)
    q "SELECT taskguard.fail($1, 'ConnectionResetError', 'Connection reset by peer', '{}', $2)" >/dev/null
done
is "$(q "SELECT status || ' ' || retry_count FROM taskguard.dlq WHERE task_id = $broken")" "ABANDONED 2" \
   "the broken task is abandoned after 1 + 2 runs"
is "$(q "SELECT attempts || ' ' || status FROM taskguard.task WHERE id = $broken")" "3 failed" "and ran 3 times"
is "$(q "SELECT count(*) FROM taskguard.failure_event WHERE task_id IN ($flaky, $broken)")" 5 "one event per failed run"
q "DELETE FROM taskguard.retry_policy WHERE task_name IN ('dlqw_flaky', 'dlqw_broken')" >/dev/null
done_testing
