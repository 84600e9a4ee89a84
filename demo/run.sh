#!/usr/bin/env bash
# demo/run.sh — what `make demo` runs once test/harness.sh has started the
# demo cluster (database taskguard, scheduler running with naptime 200 ms): a
# realistic workload, then the dashboard views.
set -euo pipefail
cd "$(dirname "$0")"
P() { psql -X -q -d taskguard -v ON_ERROR_STOP=1 "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "configuration: payments are HIGH priority; demo retries come back within seconds"
P <<'SQL'
INSERT INTO taskguard.task_config (task_name, base_priority) VALUES ('process_payment', 'HIGH')
    ON CONFLICT (task_name) DO UPDATE SET base_priority = 'HIGH';
DELETE FROM taskguard.retry_policy WHERE task_name IN ('send_webhook', 'process_payment', 'sync_inventory');
INSERT INTO taskguard.retry_policy (failure_type, task_name, base_delay, max_delay, jitter)
SELECT p.failure_type, n, '1 second', '3 seconds', 'none'
  FROM taskguard.retry_policy p, unnest(ARRAY['send_webhook', 'process_payment', 'sync_inventory']) n
 WHERE p.task_name IS NULL AND p.retryable;
INSERT INTO taskguard.breaker_config (service, failure_threshold, "window", cooldown)
VALUES ('stripe', 5, '60 seconds', '3 seconds')
    ON CONFLICT (service) DO UPDATE SET failure_threshold = 5, cooldown = '3 seconds';
SQL

say "producers enqueue 1,000 tasks (emails, payments for enterprise customers, webhooks, reports)"
P <<'SQL'
SELECT count(*) AS enqueued FROM (
    SELECT taskguard.enqueue('send_email', jsonb_build_object('to', 'user' || g || '@example.com'))
      FROM generate_series(1, 400) g
    UNION ALL
    SELECT taskguard.enqueue('process_payment', jsonb_build_object('order', g), 'payments',
                             customer_tier => (ARRAY['enterprise', 'premium', 'standard', 'basic'])[1 + g % 4],
                             service => 'stripe')
      FROM generate_series(1, 200) g
    UNION ALL
    SELECT taskguard.enqueue('send_webhook', jsonb_build_object('hook', g), 'webhooks', service => 'partner-api')
      FROM generate_series(1, 250) g
    UNION ALL
    SELECT taskguard.enqueue('sync_inventory', jsonb_build_object('sku', g), 'default')
      FROM generate_series(1, 100) g
    UNION ALL
    SELECT taskguard.enqueue('build_report', jsonb_build_object('month', g), 'reports', priority => 'LOW')
      FROM generate_series(1, 50) g) s;
-- the same payment submitted twice is enqueued once
SELECT taskguard.enqueue('process_payment', '{"order": 9001}', 'payments',
           idempotency_key => taskguard.idempotency_key('process_payment', '{"order": 9001}'))
     = taskguard.enqueue('process_payment', '{"order": 9001}', 'payments',
           idempotency_key => taskguard.idempotency_key('process_payment', '{"order": 9001}'))
       AS duplicate_returned_same_task;
SELECT queue, priority, count(*) FROM taskguard.task GROUP BY 1, 2 ORDER BY 1, 2;
SQL

say "workers: claim in batches, complete most, fail some with real-world errors"
worker_sql=$(mktemp /tmp/taskguard-demo-worker.XXXXXX.sql)
trap 'rm -f "$worker_sql"' EXIT
cat > "$worker_sql" <<'SQL'
-- one worker round over every queue: ~12 % of attempts fail, each task kind its own way
WITH claimed AS (
    SELECT c.* FROM unnest(ARRAY['payments', 'webhooks', 'default', 'reports']) q,
                    LATERAL taskguard.claim(q, 'demo-worker', 50) c),
outcome AS (
    SELECT c.*, random() < 0.12 AS fails FROM claimed c)
SELECT count(*) FILTER (WHERE NOT fails AND taskguard.complete(id, '{"ok": true}', attempts)) AS completed,
       count(*) FILTER (WHERE fails AND (CASE task_name
           WHEN 'process_payment' THEN taskguard.fail(id, 'stripe.error.APIConnectionError',
                'Could not connect to Stripe: connection reset by peer', '{"http_status": 503}', attempts)
           WHEN 'send_webhook' THEN taskguard.fail(id, 'requests.exceptions.HTTPError',
                '429 Client Error: Too Many Requests', '{"http_status": 429, "retry_after_seconds": 2}', attempts)
           WHEN 'send_email' THEN taskguard.fail(id, 'smtplib.SMTPAuthenticationError',
                'authentication failed: invalid api key', '{}', attempts)
           WHEN 'sync_inventory' THEN taskguard.fail(id, 'psycopg.errors.DeadlockDetected',
                'deadlock detected', '{"sqlstate": "40P01"}', attempts)
           ELSE taskguard.fail(id, 'ValueError', 'invalid literal for int() with base 10: ''Q3''', '{}', attempts)
           END).action IS NOT NULL) AS failed
  FROM outcome;
SQL
for round in 1 2 3 4 5 6 7 8; do
    P -At -F ' ' -c "\\i $worker_sql" | sed "s/^/round $round: completed, failed = /"
    sleep 1
done

say "the scheduler brought retries back by itself (no tick() called)"
P -c "SELECT pid, passes, last_pass_ms, total_counts->'requeue_retries' AS retries_requeued,
             total_counts->'reap_leases' AS leases_reaped FROM taskguard.scheduler_status"

say "how each failure was classified"
P -c "SELECT task_name, failure_type, round(avg(confidence)::numeric, 2) AS confidence, remediation,
             status, count(*) FROM taskguard.dead_letter GROUP BY 1, 2, 4, 5 ORDER BY 1, 5"
P -c "SELECT * FROM taskguard.classify('java.net.SocketTimeoutException', 'Read timed out')"
P -c "SELECT * FROM taskguard.classify('OperationalError', 'FATAL: too many connections for role', '{\"sqlstate\": \"53300\"}')"

say "circuit breakers"
P -c "SELECT * FROM taskguard.breaker_status ORDER BY service"

say "tasks by queue and status"
P -c "SELECT queue, status, count(*) FROM taskguard.task GROUP BY 1, 2 ORDER BY 1, 2"

say "failure taxonomy (taskguard.failure_distribution)"
P -c "SELECT failure_type, remediation, records, open_records, pct, avg_confidence, failures_24h
        FROM taskguard.failure_distribution WHERE records > 0 OR failures_total > 0 ORDER BY records DESC"
say "retry effectiveness (taskguard.retry_effectiveness)"
P -c "SELECT failure_type, max_retries, retried, recovered, exhausted, in_progress, success_rate_pct,
             avg_retries FROM taskguard.retry_effectiveness WHERE retried > 0 OR in_progress > 0"
say "idempotency (taskguard.idempotency_stats)"
P -c "SELECT * FROM taskguard.idempotency_stats ORDER BY checks DESC"
say "Prometheus (taskguard.prometheus_metrics(), first samples)"
P -At -c "SELECT line FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\\n') line
           WHERE line <> '' AND line NOT LIKE '#%' LIMIT 12"
say "the dashboard (taskguard.dashboard)"
P -x -c "SELECT * FROM taskguard.dashboard"
say "alerts (taskguard.alerts; thresholds in taskguard.alert_threshold)"
P -c "SELECT * FROM taskguard.alerts"
say "top of the dead-letter queue (taskguard.dlq)"
P -c "SELECT id, task_name, status, failure_type, retry_count, max_retries, left(message, 50) AS message,
             next_retry_at FROM taskguard.dlq ORDER BY last_failed_at DESC LIMIT 10"
