-- console/test/data.sql — demo-like data for the console test (test/t/console.sh),
-- in its own database: queues of several tenants, failures of every kind,
-- retries that recovered and ones that gave up, idempotency duplicates,
-- schedules with a hotspot and a duplicate, an open circuit breaker.
-- Run as a superuser; taskguard.tick() stands in for the scheduler (which
-- works in database taskguard only).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

INSERT INTO taskguard.breaker_config (service, failure_threshold, "window", cooldown)
VALUES ('stripe', 5, '60 seconds', '1 hour') ON CONFLICT (service) DO UPDATE SET cooldown = '1 hour';

SELECT count(*) FROM (
    SELECT taskguard.enqueue('send_email', jsonb_build_object('to', 'user' || g || '@example.com'), 'default',
                             tenant => (ARRAY['acme', 'globex', NULL])[1 + g % 3])
      FROM generate_series(1, 120) g
    UNION ALL
    SELECT taskguard.enqueue('process_payment', jsonb_build_object('order', g), 'payments', service => 'stripe',
                             tenant => (ARRAY['acme', 'globex'])[1 + g % 2], customer_tier => 'enterprise')
      FROM generate_series(1, 60) g
    UNION ALL
    SELECT taskguard.enqueue('send_webhook', jsonb_build_object('hook', g), 'webhooks', service => 'partner-api')
      FROM generate_series(1, 60) g
    UNION ALL
    SELECT taskguard.enqueue('build_report', jsonb_build_object('month', g), 'reports', priority => 'LOW',
                             tenant => 'acme')
      FROM generate_series(1, 30) g) s;

-- idempotency: 20 keys, 5 of them submitted twice
SELECT count(*) FROM (
    SELECT taskguard.enqueue('charge_card', jsonb_build_object('order', g), 'payments',
               idempotency_key => taskguard.idempotency_key('charge_card', jsonb_build_object('order', g)))
      FROM generate_series(1, 20) g
    UNION ALL
    SELECT taskguard.enqueue('charge_card', jsonb_build_object('order', g), 'payments',
               idempotency_key => taskguard.idempotency_key('charge_card', jsonb_build_object('order', g)))
      FROM generate_series(1, 5) g) s;

-- one worker round: claim 200 tasks, fail about a third with real-world errors
CREATE TEMP TABLE claimed AS
SELECT c.* FROM unnest(ARRAY['default', 'payments', 'webhooks', 'reports']) q,
                LATERAL taskguard.claim(q, 'console-test', 60) c;
SELECT count(*) FILTER (WHERE (id % 3) <> 0 AND taskguard.complete(id, NULL, attempts)) AS completed,
       count(*) FILTER (WHERE (id % 3) = 0 AND (CASE task_name
           WHEN 'process_payment' THEN taskguard.fail(id, 'stripe.error.APIConnectionError',
                'Could not connect to Stripe: connection reset by peer', '{"http_status": 503}', attempts)
           WHEN 'send_webhook' THEN taskguard.fail(id, 'requests.exceptions.HTTPError',
                '429 Client Error: Too Many Requests', '{"http_status": 429}', attempts)
           WHEN 'send_email' THEN taskguard.fail(id, 'smtplib.SMTPAuthenticationError',
                'authentication failed: invalid api key <script>alert(1)</script>', '{}', attempts)
           WHEN 'build_report' THEN taskguard.fail(id, 'ValueError',
                'invalid literal for int() with base 10: ''Q3''', '{}', attempts)
           ELSE taskguard.fail(id, 'psycopg.errors.DeadlockDetected', 'deadlock detected',
                '{"sqlstate": "40P01"}', attempts)
           END).action IS NOT NULL) AS failed
  FROM claimed;

-- retries: half of the retryable records are retried now and succeed (recovered),
-- some of the rest are abandoned after a retry (exhausted)
SELECT taskguard.dlq_retry(ARRAY(SELECT id FROM taskguard.dead_letter WHERE status = 'PENDING' AND id % 2 = 0));
SELECT count(*) FILTER (WHERE taskguard.complete(c.id, NULL, c.attempts))
  FROM unnest(ARRAY['default', 'payments', 'webhooks', 'reports']) q,
       LATERAL taskguard.claim(q, 'console-test', 100) c;
UPDATE taskguard.dead_letter SET retry_count = 1 WHERE status = 'PENDING' AND id % 5 = 1;
SELECT taskguard.dlq_abandon(ARRAY(SELECT id FROM taskguard.dead_letter WHERE status = 'PENDING' AND id % 5 = 1),
                             'gave up');

-- external-broker records (record_failure): PENDING with a retry minutes ahead
SELECT count((taskguard.record_failure('sync_inventory', jsonb_build_object('sku', g), 'TimeoutError',
              'read timed out after 30 s', jsonb_build_object('retry_after_seconds', 600 + g), 'globex',
              'inv-' || g)).action)
  FROM generate_series(1, 8) g;

-- retry advice: poll_feed always recovered 25 s after its first failure, on
-- its third retry of five; fewer, later retries would do (taskguard.retry_advice)
INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation, error_type,
       message, retry_count, max_retries, first_failed_at, last_failed_at, resolved_at, resolution)
SELECT 'poll_feed', 'RESOLVED', 'TRANSIENT_NETWORK', 0.9, 'RETRY_WITH_BACKOFF', 'TimeoutError', 'timed out',
       3, 5, now() - interval '2 hours', now() - interval '2 hours' + interval '20 seconds',
       now() - interval '2 hours' + interval '25 seconds', 'retry'
  FROM generate_series(1, 30);

-- an open breaker
SELECT taskguard.breaker_record('stripe', false) FROM generate_series(1, 6);
SELECT taskguard.breaker_record('partner-api', false);

-- schedules: six jobs at minute 0 (a hotspot), one command scheduled twice
INSERT INTO taskguard.schedule (name, schedule, command, expected_duration)
SELECT 'hourly_' || g, '0 * * * *', 'SELECT job_' || g || '()', '3 minutes' FROM generate_series(1, 6) g;
INSERT INTO taskguard.schedule (name, schedule, command, expected_duration) VALUES
    ('nightly_export', '30 2 * * *', 'SELECT export()', '10 minutes'),
    ('nightly_export_again', '45 3 * * *', 'SELECT export()', '10 minutes');

SELECT taskguard.tick() IS NOT NULL AS ticked;
