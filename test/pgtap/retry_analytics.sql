-- retry_analytics.sql — the analytics of issue 20 (docs/reference.md#retry-advice) with known
-- answers: the retry success rate alert per failure type, the
-- confidence-over-time view, an operator's priority reaching the broker
-- queue in external-broker mode, and their Prometheus families.  The
-- rollups and events of other tests are cleared first (rolled back at the
-- end), so every count below is the test's own.
--
-- Records (retried = retry_count > 0; concluded = recovered by a retry or
-- exhausted):
--   TRANSIENT_NETWORK    tenant acme: 5 recovered, 20 exhausted  -> 20.00 % of 25
--   SYSTEM_CPU_OVERLOAD  5 recovered, 15 exhausted               -> 25.00 % of 20 (the minimum)
--   EXTERNAL_API_ERROR   19 exhausted                            ->  0.00 % of 19 (too few)
--   TRANSIENT_DATABASE   15 recovered, 15 exhausted, 10 abandoned
--                        without a retry                         -> 50.00 % of 30
--   UNKNOWN              25 exhausted                            ->  0.00 % of 25
-- The transient types together: 20 of 55 = 36.36 %, above 30 %: the
-- combined alert stays off while TRANSIENT_NETWORK alone is at 20 %.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(23);

DELETE FROM taskguard.dlq_rollup;
DELETE FROM taskguard.dlq_delta;
DELETE FROM taskguard.failure_event;
DELETE FROM taskguard.alert_state;
DELETE FROM taskguard.retry_policy_change;

CREATE ROLE tg_ra_acme;
SELECT taskguard.grant_access('tg_ra_acme', 'reader');
INSERT INTO taskguard.tenant_member VALUES ('tg_ra_acme', 'acme');

INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence,
    remediation, retry_count, max_retries, resolved_at, resolution)
SELECT 'ana_' || lower(ft), tn, st::taskguard.dlq_status, ft::taskguard.failure_type, 0.9,
       'RETRY_WITH_BACKOFF', rc, 3, CASE WHEN st = 'RESOLVED' THEN now() END,
       CASE WHEN st = 'RESOLVED' THEN 'retry' ELSE 'retries exhausted' END
  FROM (VALUES ('TRANSIENT_NETWORK', 'acme', 'RESOLVED', 1, 5),
               ('TRANSIENT_NETWORK', 'acme', 'ABANDONED', 3, 20),
               ('SYSTEM_CPU_OVERLOAD', NULL, 'RESOLVED', 2, 5),
               ('SYSTEM_CPU_OVERLOAD', NULL, 'ABANDONED', 3, 15),
               ('EXTERNAL_API_ERROR', NULL, 'ABANDONED', 3, 19),
               ('TRANSIENT_DATABASE', NULL, 'RESOLVED', 1, 15),
               ('TRANSIENT_DATABASE', NULL, 'ABANDONED', 3, 15),
               ('TRANSIENT_DATABASE', NULL, 'ABANDONED', 0, 10),
               ('UNKNOWN', NULL, 'ABANDONED', 3, 25)) v (ft, tn, st, rc, n),
       generate_series(1, v.n);

-- 1. the rate per type, and an alert per type below the threshold
SELECT results_eq(
    $$SELECT failure_type::text, retried, recovered, exhausted, success_rate_pct
        FROM taskguard.retry_effectiveness WHERE retried > 0 ORDER BY failure_type::text$$,
    $$VALUES ('EXTERNAL_API_ERROR', 19::bigint, 0::bigint, 19::bigint, 0.00::numeric),
             ('SYSTEM_CPU_OVERLOAD', 20, 5, 15, 25.00),
             ('TRANSIENT_DATABASE', 30, 15, 15, 50.00),
             ('TRANSIENT_NETWORK', 25, 5, 20, 20.00),
             ('UNKNOWN', 25, 0, 25, 0.00)$$,
    'retry_effectiveness: the success rate of each failure type');
SELECT results_eq(
    $$SELECT alert, level::text, value, threshold FROM taskguard.alerts
       WHERE alert LIKE 'retry\_success\_rate%' ORDER BY alert$$,
    $$VALUES ('retry_success_rate:SYSTEM_CPU_OVERLOAD', 'warning', 25.00::numeric, 30::numeric),
             ('retry_success_rate:TRANSIENT_NETWORK', 'warning', 20.00, 30),
             ('retry_success_rate:UNKNOWN', 'warning', 0.00, 30)$$,
    'one alert per type below 30 % with at least 20 concluded records; the transient types together (36.36 %) do not alert');
SELECT is(
    (SELECT detail FROM taskguard.alerts WHERE alert = 'retry_success_rate:TRANSIENT_NETWORK'),
    'TRANSIENT_NETWORK: 20.00 % of 25 concluded retried records recovered by a retry (20 exhausted; judged from 20)',
    'the detail says the rate, the sample and the minimum');
SELECT is(
    (SELECT value FROM taskguard.alerts WHERE alert = 'retry_success_rate'), NULL,
    'the combined transient alert stays off (36.36 %)');

-- the most severe level breached; the thresholds are retry_success_rate's
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold)
VALUES ('retry_success_rate', 'critical', '<', 10);
SELECT results_eq(
    $$SELECT alert, level::text, threshold FROM taskguard.alerts
       WHERE alert LIKE 'retry\_success\_rate:%' ORDER BY alert$$,
    $$VALUES ('retry_success_rate:SYSTEM_CPU_OVERLOAD', 'warning', 30::numeric),
             ('retry_success_rate:TRANSIENT_NETWORK', 'warning', 30),
             ('retry_success_rate:UNKNOWN', 'critical', 10)$$,
    'a type below the critical threshold alerts at critical only');

-- the minimum sample: one more exhausted EXTERNAL_API_ERROR record makes 20
INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation,
    retry_count, max_retries)
VALUES ('ana_external_api_error', 'ABANDONED', 'EXTERNAL_API_ERROR', 0.9, 'RETRY_WITH_BACKOFF', 3, 3);
SELECT is(
    (SELECT level::text FROM taskguard.alerts WHERE alert = 'retry_success_rate:EXTERNAL_API_ERROR'),
    'critical', 'a type reaching 20 concluded records is judged');

-- the scheduler's step records each type's alert once (one alert_state row each)
SELECT is(taskguard._check_alerts() >= 4, true, '_check_alerts announces the per-type alerts');
SELECT results_eq(
    $$SELECT alert, level::text FROM taskguard.alert_state
       WHERE alert LIKE 'retry\_success\_rate:%' ORDER BY alert$$,
    $$VALUES ('retry_success_rate:EXTERNAL_API_ERROR', 'critical'),
             ('retry_success_rate:SYSTEM_CPU_OVERLOAD', 'warning'),
             ('retry_success_rate:TRANSIENT_NETWORK', 'warning'),
             ('retry_success_rate:UNKNOWN', 'critical')$$,
    'alert_state keeps one row per type');
SELECT is(taskguard._check_alerts(), 0, 'and announces nothing again on the next pass');

-- a tenant-mapped reader judges its own tenant's records only
SET ROLE tg_ra_acme;
SELECT results_eq(
    $$SELECT alert FROM taskguard.alerts WHERE alert LIKE 'retry\_success\_rate%' ORDER BY alert$$,
    $$VALUES ('retry_success_rate'::text), ('retry_success_rate:TRANSIENT_NETWORK')$$,
    'a reader mapped to acme judges acme''s records only (TRANSIENT_NETWORK: 20 %, alone and as the transient types)');
RESET ROLE;

UPDATE taskguard.alert_threshold SET enabled = false WHERE alert = 'retry_success_rate';
SELECT is((SELECT count(*) FROM taskguard.alerts WHERE alert LIKE 'retry\_success\_rate%'), 0::bigint,
          'disabling the retry_success_rate thresholds turns the per-type alerts off');
UPDATE taskguard.alert_threshold SET enabled = true WHERE alert = 'retry_success_rate';
DELETE FROM taskguard.alert_threshold WHERE alert = 'retry_success_rate' AND level = 'critical';

-- 2. classification confidence over time
CREATE TEMP TABLE h AS SELECT date_trunc('hour', now()) - interval '2 hours' AS h;
INSERT INTO taskguard.failure_event (time, task_name, tenant, failure_type, retry_count, action,
                                     confidence)
SELECT h.h + v.m * interval '1 minute', 'ana_events', v.tn, v.ft::taskguard.failure_type, 0, 'retry',
       v.c::real
  FROM h, (VALUES (5, 'acme', 'TRANSIENT_NETWORK', 0.95), (6, 'acme', 'TRANSIENT_NETWORK', 0.9),
                  (7, 'acme', 'TRANSIENT_NETWORK', 1.0), (10, 'acme', 'TRANSIENT_NETWORK', 0.55),
                  (1, 'bolt', 'TRANSIENT_NETWORK', 0.3), (0, NULL, 'UNKNOWN', NULL),
                  (61, NULL, 'UNKNOWN', 0),
                  (-28 * 60, NULL, 'TRANSIENT_NETWORK', 0.7)) v (m, tn, ft, c);
SELECT results_eq(
    $$SELECT time - (SELECT h FROM h), failure_type::text, band_low, band_high, band, events,
             avg_confidence
        FROM taskguard.classification_confidence ORDER BY 1, 2, band$$,
    $$VALUES (interval '0', 'TRANSIENT_NETWORK', 0.3::numeric, 0.4::numeric, '0.3-0.4', 1::bigint, 0.300::numeric),
             (interval '0', 'TRANSIENT_NETWORK', 0.5, 0.6, '0.5-0.6', 1, 0.550),
             (interval '0', 'TRANSIENT_NETWORK', 0.9, 1.0, '0.9-1.0', 3, 0.950),
             (interval '0', 'UNKNOWN', NULL, NULL, 'unknown', 1, NULL),
             (interval '1 hour', 'UNKNOWN', 0.0, 0.1, '0.0-0.1', 1, 0.000)$$,
    'classification_confidence: events of the last 24 hours by hour, type and band (1.0 in the top band, no confidence: unknown)');
SET ROLE tg_ra_acme;
SELECT results_eq(
    $$SELECT band, events FROM taskguard.classification_confidence ORDER BY band$$,
    $$VALUES ('0.5-0.6', 1::bigint), ('0.9-1.0', 3)$$,
    'a reader mapped to acme sees acme''s events only');
RESET ROLE;
SELECT ok((SELECT 'security_barrier=true' = ANY (c.reloptions) FROM pg_class c
            WHERE c.oid = 'taskguard.classification_confidence'::regclass),
          'classification_confidence is a security barrier (it filters by tenant itself)');

-- values outside 0..1 go to the edge bands, NaN is unknown; none raises
INSERT INTO taskguard.failure_event (time, task_name, failure_type, retry_count, action, confidence)
SELECT (SELECT h FROM h) + interval '2 hours', 'ana_odd', 'UNKNOWN', 0, 'abandon', c
  FROM unnest('{-0.5,1.5,NaN,Infinity,-Infinity}'::real[]) c;
SELECT results_eq(
    $$SELECT band, events FROM taskguard.classification_confidence
       WHERE time = (SELECT h FROM h) + interval '2 hours' ORDER BY band$$,
    $$VALUES ('0.0-0.1', 2::bigint), ('0.9-1.0', 2), ('unknown', 1)$$,
    'confidence -0.5 and -Infinity in the lowest band, 1.5 and Infinity in the highest, NaN unknown');
DELETE FROM taskguard.failure_event WHERE task_name = 'ana_odd';

-- 3. external-broker mode: the retry's priority names the broker queue
INSERT INTO taskguard.task_config (task_name, base_priority) VALUES ('ana_high', 'HIGH')
ON CONFLICT (task_name) DO UPDATE SET base_priority = 'HIGH';
CREATE TEMP TABLE ext AS
SELECT (taskguard.record_failure('ana_plain', '{}', 'ValueError', 'bad row',
                                 task_ref => 'ana-ref-1')).failure_id AS plain,
       (taskguard.record_failure('ana_high', '{}', 'requests.exceptions.ConnectionError',
                                 'connection refused', task_ref => 'ana-ref-2')).failure_id AS high;
SELECT is((SELECT status::text || ' ' || priority FROM taskguard.dead_letter WHERE id = (SELECT plain FROM ext)),
          'ABANDONED MEDIUM', 'a permanent failure of an unconfigured task: ABANDONED at MEDIUM');
SELECT is(taskguard.dlq_retry(ARRAY[(SELECT plain FROM ext)], 'CRITICAL'), 1,
          'an operator retries it at CRITICAL');
UPDATE taskguard.dead_letter SET next_retry_at = now() - interval '1 second'
 WHERE id = (SELECT high FROM ext);
CREATE TEMP TABLE claimed AS
SELECT d.id, d.priority::text AS priority, q.queue
  FROM taskguard.claim_due_retries(10000) d
  LEFT JOIN taskguard.priority_queue q ON q.priority = d.priority
 WHERE d.id IN ((SELECT plain FROM ext), (SELECT high FROM ext));
SELECT is((SELECT priority || ' ' || queue FROM claimed WHERE id = (SELECT plain FROM ext)),
          'CRITICAL critical', 'claim_due_retries hands it out at CRITICAL: the critical queue');
SELECT is((SELECT priority || ' ' || queue FROM claimed WHERE id = (SELECT high FROM ext)),
          'HIGH high', 'an unpinned retry gets its recomputed priority (task configured HIGH): the high queue');
SELECT is((SELECT priority::text FROM taskguard.dead_letter WHERE id = (SELECT high FROM ext)),
          'HIGH', 'and the record keeps the priority its retry runs at');

-- 4. Prometheus
INSERT INTO taskguard.retry_policy_change (task_name, failure_type, old_policy, new_policy, auto)
VALUES ('ana_plain', 'UNKNOWN', '{}', '{}', true), ('ana_plain', 'UNKNOWN', '{}', '{}', false),
       ('ana_plain', 'UNKNOWN', '{}', '{}', true);
SELECT ok(strpos(taskguard.prometheus_metrics(),
                 E'taskguard_classified_failures_last_day{failure_type="UNKNOWN",band="0.0-0.1"} 1\n'
                 'taskguard_classified_failures_last_day{failure_type="UNKNOWN",band="unknown"} 1\n') > 0,
          'taskguard_classified_failures_last_day counts the events of a type and band');
SELECT ok(strpos(taskguard.prometheus_metrics(),
                 E'taskguard_retry_policy_changes_total{auto="false"} 1\ntaskguard_retry_policy_changes_total{auto="true"} 2\n') > 0,
          'taskguard_retry_policy_changes_total counts changes by hand and automatic ones');
SELECT ok(strpos(taskguard.prometheus_metrics(),
                 E'taskguard_alert_active{alert="retry_success_rate:TRANSIENT_NETWORK",level="warning"} 1\n') > 0,
          'the per-type alert is in taskguard_alert_active');

SELECT * FROM finish();
ROLLBACK;
