#!/usr/bin/env bash
# client_python: the Python worker example (clients/python/example.py) works a
# mixed workload with two worker processes woken by LISTEN/NOTIFY only (their
# poll fallback is 60 s); afterwards every task ended as its failure mode says,
# and the DLQ holds exactly the expected types, statuses, counts and context.
. "$(dirname "$0")/../lib/tap.sh"
PY=/usr/bin/python3                 # Debian's, which sees python3-psycopg
EX=$(dirname "$0")/../../clients/python/example.py
export PGDATABASE=${DB:-taskguard}
Q=pyw_$$                            # a queue of this run's own

q "DELETE FROM taskguard.retry_policy WHERE task_name IN ('sync_crm', 'refresh_stats', 'call_partner')" >/dev/null
q "INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries, base_delay, max_delay, jitter)
   VALUES ('TRANSIENT_NETWORK', 'sync_crm', 5, '50 ms', '100 ms', 'none'),
          ('TRANSIENT_DATABASE', 'refresh_stats', 5, '50 ms', '100 ms', 'none'),
          ('EXTERNAL_SERVICE_UNAVAILABLE', 'call_partner', 1, '50 ms', '100 ms', 'none')" >/dev/null

# two workers, lease 2 s (render_report runs 2.5 s) renewed every 0.25 s, batches of 5
pids=()
for w in 1 2; do
    PGAPPNAME=tg_client_python $PY "$EX" work --queue $Q --batch 5 --lease 2 --heartbeat 0.25 --poll 60 --name "pyw-$w" \
        >"$TG_WORK/pyw-$w.log" 2>&1 &
    pids+=($!)
done
tg_wait_for 20 "SELECT count(*) = 2 FROM pg_stat_activity
                 WHERE application_name = 'tg_client_python' AND state = 'idle'
                   AND (query = 'SELECT 1' OR query LIKE '%taskguard.claim(%')" >/dev/null
ok $? "both workers are up and listening"

$PY "$EX" enqueue --queue $Q
ok $? "example.py enqueue puts the demo workload on the queue"

# 23 tasks succeed; 7 records reach their end: RESOLVED, ABANDONED, or PENDING until Retry-After
tg_wait_for 45 "SELECT (SELECT count(*) FROM taskguard.task WHERE queue = '$Q' AND status = 'succeeded') = 23
                   AND (SELECT count(*) FROM taskguard.dlq WHERE queue = '$Q'
                         AND (status IN ('RESOLVED', 'ABANDONED') OR failure_type = 'TRANSIENT_RATE_LIMIT')) = 7"
ok $? "the workload is worked off through NOTIFY wakeups (retries included) within 45 s"

is "$(q "SELECT string_agg(task_name || ' ' || status || ' ' || failure_type || ' ' || retry_count, ', '
                           ORDER BY task_name, failure_type::text)
           FROM taskguard.dlq WHERE queue = '$Q'")" \
   "call_partner ABANDONED EXTERNAL_SERVICE_UNAVAILABLE 1, call_partner PENDING TRANSIENT_RATE_LIMIT 0, import_row ABANDONED PERMANENT_INVALID_INPUT 0, post_ledger ABANDONED CONFIGURATION_PERMISSIONS 0, refresh_stats RESOLVED TRANSIENT_DATABASE 0, resize_image ABANDONED CONFIGURATION_MISSING_ENV 0, sync_crm RESOLVED TRANSIENT_NETWORK 1" \
   "the DLQ holds exactly the expected records, types and retry counts"
is "$(q "SELECT string_agg(failure_type || '=' || n, ' ' ORDER BY failure_type)
           FROM (SELECT e.failure_type::text, count(*) n FROM taskguard.failure_event e
                   JOIN taskguard.task t ON t.id = e.task_id WHERE t.queue = '$Q' GROUP BY 1) s")" \
   "CONFIGURATION_MISSING_ENV=1 CONFIGURATION_PERMISSIONS=1 EXTERNAL_SERVICE_UNAVAILABLE=2 PERMANENT_INVALID_INPUT=1 TRANSIENT_DATABASE=1 TRANSIENT_NETWORK=2 TRANSIENT_RATE_LIMIT=1" \
   "one failure event per failed run, by type"
is "$(q "SELECT error_type || ' ' || (context->>'sqlstate') || ' ' || rule FROM taskguard.dlq
          WHERE queue = '$Q' AND task_name = 'post_ledger'")" \
   "psycopg.errors.InsufficientPrivilege 42501 sqlstate:42501" \
   "a psycopg error is sent with its qualified type and SQLSTATE, which decides the type"
is "$(q "SELECT e.error_type || ' ' || (d.context->>'sqlstate') FROM taskguard.failure_event e
           JOIN taskguard.task t ON t.id = e.task_id
           JOIN taskguard.dlq d ON d.id = e.failure_id
          WHERE t.queue = '$Q' AND t.task_name = 'refresh_stats'" | head -1)" \
   "psycopg.errors.DeadlockDetected 40P01" "a real deadlock_detected from the server is sent with its SQLSTATE"
is "$(q "SELECT (context->>'http_status') || ' ' || (context->>'retry_after_seconds') || ' '
                || (next_retry_at >= last_failed_at + interval '119 seconds')
           FROM taskguard.dlq WHERE queue = '$Q' AND failure_type = 'TRANSIENT_RATE_LIMIT'")" \
   "429 120 true" "an HTTP 429 is sent with its status and Retry-After, and the retry waits for it"
is "$(q "SELECT (context->>'http_status') || ' ' || error_type || ' ' || (context ? 'traceback')
           FROM taskguard.dlq WHERE queue = '$Q' AND failure_type = 'EXTERNAL_SERVICE_UNAVAILABLE'")" \
   "503 requests.exceptions.HTTPError true" "an HTTP 503 from raise_for_status() is sent with its status and a traceback"
is "$(q "SELECT error_type || ' ' || (message ~ 'Connection refused') FROM taskguard.dlq
          WHERE queue = '$Q' AND task_name = 'sync_crm'")" \
   "requests.exceptions.ConnectionError true" "a requests ConnectionError is sent with its module-qualified name"
is "$(q "SELECT count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1
                                  AND result->>'sent_to' = args->>'to'
                                  AND result->>'worker' IN ('pyw-1', 'pyw-2'))
           FROM taskguard.task WHERE queue = '$Q' AND task_name = 'send_email'")" 20 \
   "every e-mail ran exactly once, its result stored"
is "$(q "SELECT status || ' ' || attempts || ' ' || (finished_at - started_at > interval '2 seconds')
           FROM taskguard.task WHERE queue = '$Q' AND task_name = 'render_report'")" \
   "succeeded 1 true" "a task running longer than its lease kept it through heartbeats"
is "$(q "SELECT count(*) FROM taskguard.failure_event e JOIN taskguard.task t ON t.id = e.task_id
          WHERE t.queue = '$Q' AND e.error_type = 'taskguard.LeaseExpired'")" 0 \
   "no lease expired, not even for tasks waiting behind it in a batch"
is "$(q "SELECT attempts || ' ' || status FROM taskguard.task WHERE queue = '$Q' AND task_name = 'sync_crm'")" \
   "3 succeeded" "the flaky task ran 3 times, each attempt passed back to fail/complete"

# a lost connection: the workers reconnect, LISTEN again and go on
is "$(q "SELECT count(pg_terminate_backend(pid)) >= 2 FROM pg_stat_activity
          WHERE application_name = 'tg_client_python'")" t "the workers' sessions are terminated"
tg_wait_for 20 "SELECT count(*) >= 2 FROM pg_stat_activity
                 WHERE application_name = 'tg_client_python' AND state = 'idle'
                   AND (query = 'SELECT 1' OR query LIKE '%taskguard.claim(%')" >/dev/null
id=$(q "SELECT taskguard.enqueue('send_email', '{\"to\": \"late@example.com\"}', queue => '$Q')")
tg_wait_for 20 "SELECT status = 'succeeded' FROM taskguard.task WHERE id = $id"
ok $? "they reconnect and work a task enqueued afterwards (woken by NOTIFY)"

# SIGTERM: each worker finishes its batch and exits 0
for p in "${pids[@]}"; do kill -TERM "$p"; done
end=$(( $(date +%s) + 15 ))
for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -le "$end" ]; do sleep 0.1; done
done
rcs=""
for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p"; rcs+="hung "; else wait "$p"; rcs+="$? "; fi
done
is "$rcs" "0 0 " "both workers stop on SIGTERM with exit status 0"
grep -q "stopped: {'claimed'" "$TG_WORK/pyw-1.log"
ok $? "and log their counts"

q "DELETE FROM taskguard.retry_policy WHERE task_name IN ('sync_crm', 'refresh_stats', 'call_partner')" >/dev/null
# leave nothing behind for the suites that count the DLQ or the queue
q "DELETE FROM taskguard.failure_event WHERE task_id IN (SELECT id FROM taskguard.task WHERE queue = '$Q')" >/dev/null
q "DELETE FROM taskguard.dead_letter WHERE queue = '$Q'" >/dev/null
q "DELETE FROM taskguard.task WHERE queue = '$Q'" >/dev/null
done_testing
