-- fill_every_table.sql — puts rows in every table of taskguard through the
-- 0.1.0 API (which later versions keep): tasks in every status, DLQ records
-- in every status, failure events, idempotency keys and counters, saved
-- breakers, schedules, rules, tiers, task configuration, tenant mappings,
-- alert thresholds and state, escalations, and the metric rollups with
-- deltas still to fold.  Used by the upgrade and the backup tests; run as a
-- superuser with psql -v ON_ERROR_STOP=1.
SET client_min_messages = warning;

INSERT INTO taskguard.customer_tier (tier, sla, bonus) VALUES ('gold', '10 minutes', 0.75);
INSERT INTO taskguard.task_config (task_name, base_priority) VALUES ('charge', 'HIGH');
INSERT INTO taskguard.classification_rule (priority, error_type_pattern, message_pattern,
    failure_type, confidence)
VALUES (10, 'StripeError', 'card declined', 'BUSINESS_LOGIC_VIOLATION', 0.95);
INSERT INTO taskguard.retry_policy (failure_type, task_name, retryable, max_retries,
    base_delay, max_delay, remediation, alert_level)
SELECT failure_type, 'charge', retryable, 2, base_delay, max_delay, remediation, alert_level
  FROM taskguard.retry_policy WHERE task_name IS NULL AND failure_type = 'TRANSIENT_NETWORK';
INSERT INTO taskguard.breaker_config (service, failure_threshold, "window", cooldown,
    half_open_max_calls, success_threshold)
VALUES ('stripe', 3, '30 seconds', '10 seconds', 1, 1);
INSERT INTO taskguard.schedule (name, schedule, command, expected_duration)
VALUES ('nightly-report', '0 3 * * *', 'SELECT 1', '20 minutes'),
       ('every-5', '*/5 * * * *', 'SELECT 2', NULL);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold)
VALUES ('dlq_depth', 'info', '>', 5);
INSERT INTO taskguard.tenant_member (role, tenant) VALUES ('fill_tenant_role', 'acme');

-- tasks: ready, ready in the future, running, succeeded, cancelled, failed
-- waiting for a retry (PENDING record), failed for good (ABANDONED), resolved
SELECT taskguard.enqueue('charge', '{"n": 1}', tenant => 'acme', service => 'stripe',
                         idempotency_key => 'order-1');
SELECT taskguard.enqueue('email', '{"n": 2}', run_at => now() + interval '1 hour');
SELECT taskguard.enqueue_many('email', ARRAY['{"n": 3}', '{"n": 4}', '{"n": 5}',
                              '{"n": 6}', '{"n": 7}', '{"n": 8}']::jsonb[], queue => 'mail');
SELECT count(*) FROM taskguard.claim('mail', 'w1', 6, '5 minutes');
SELECT taskguard.complete(id) FROM taskguard.task WHERE args->>'n' = '3';
SELECT taskguard.cancel(id) FROM taskguard.task WHERE args->>'n' = '4';
SELECT taskguard.fail(id, 'requests.exceptions.ConnectionError', 'connection refused',
                      '{"http_status": 503}') FROM taskguard.task WHERE args->>'n' = '5';
SELECT taskguard.fail(id, 'ValueError', 'invalid input: bad email')
  FROM taskguard.task WHERE args->>'n' = '6';
SELECT taskguard.fail(id, 'StripeError', 'card declined')
  FROM taskguard.task WHERE args->>'n' = '7';
SELECT taskguard.dlq_resolve(ARRAY(SELECT failure_id FROM taskguard.task WHERE args->>'n' = '7'), 'refunded by hand');
SELECT taskguard.dlq_abandon(ARRAY(SELECT failure_id FROM taskguard.task WHERE args->>'n' = '6'), 'bad data');
-- a RETRYING record of an external broker
SELECT taskguard.record_failure('celery.send_mail', '{"to": "a@example.com"}', 'TimeoutError', 'timed out',
                                task_ref => 'celery-123');
SELECT taskguard.dlq_retry(ARRAY(SELECT id FROM taskguard.dead_letter WHERE task_ref = 'celery-123'));
SELECT count(*) FROM taskguard.claim_due_retries(10);

-- idempotency, breakers, priority escalation, metrics
SELECT taskguard.idempotency_check('pay-42', '1 hour', 'charge');
SELECT taskguard.idempotency_check('pay-42', '1 hour', 'charge');
SELECT taskguard.breaker_record('stripe', false) FROM generate_series(1, 3);
SELECT taskguard.breaker_force('ses', 'open');
-- a ready task waiting for a day: the escalation step raises it
UPDATE taskguard.task SET enqueued_at = now() - interval '1 day' WHERE args->>'n' = '2';
SELECT taskguard.tick();
SELECT taskguard.prometheus_metrics() IS NOT NULL;
-- a failure after the scheduler's pass: its rollup deltas are not folded yet
SELECT taskguard.record_failure('celery.refund', '{"order": 9}', 'TimeoutError', 'timed out',
                                task_ref => 'celery-456');

-- 0.2.0 tables that no 0.1.0 call fills (skipped on 0.1.0)
DO $$
BEGIN
    IF to_regclass('taskguard.retry_policy_change') IS NOT NULL THEN
        EXECUTE $q$INSERT INTO taskguard.retry_policy_change (task_name, failure_type, old_policy,
                       new_policy, reason)
                   VALUES ('charge', 'TRANSIENT_NETWORK', '{"max_retries": 5}', '{"max_retries": 2}',
                           'filled by fill_every_table.sql')$q$;
    END IF;
    IF to_regclass('taskguard.flow_limit') IS NOT NULL THEN
        EXECUTE $q$INSERT INTO taskguard.flow_limit (scope, name, max_running, rate, per, burst, weight)
                   VALUES ('flow_key', 'fill-account', 1000, 1000, '1 minute', 100, 2)$q$;
        EXECUTE $q$INSERT INTO taskguard.flow_pause (queue, task_name) VALUES ('fill-paused', '*')$q$;
    END IF;
END
$$;
