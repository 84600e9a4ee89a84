-- metrics: the rollups, the dashboard views, alerts and prometheus_metrics()
-- on a constructed data set whose numbers are worked out by hand.
\set VERBOSITY terse
SET taskguard.notify = off;
-- start from nothing: earlier tests left tasks, records, events and counters
DELETE FROM taskguard.dead_letter;
DELETE FROM taskguard.failure_event;
DELETE FROM taskguard.task;
DELETE FROM taskguard.schedule;
SELECT count(taskguard.breaker_reset(service)) >= 0 AS reset FROM taskguard.breaker_status;
DELETE FROM taskguard.breaker_saved;
SELECT taskguard._flush_counters() >= 0 AS flushed;
DELETE FROM taskguard.idempotency_counter;
-- the deletions reach the rollup through the triggers
SELECT taskguard._rollup(100000) >= 0 AS folded;
SELECT coalesce(sum(records), 0) = 0 AS ok FROM taskguard.dlq_rollup;
DELETE FROM taskguard.failure_total;
DELETE FROM taskguard.failure_hourly;
DELETE FROM taskguard.activity_minute;
DELETE FROM taskguard.dlq_rollup;
DELETE FROM taskguard.metric_tenant;
DELETE FROM taskguard.alert_state;
SELECT * FROM taskguard.dashboard \gset d_
SELECT :d_dlq_depth = 0 AND :d_failures_1h = 0 AND :d_health_score = 100 AS empty_ok;

-- 1. The constructed set.  No tenant: TRANSIENT_NETWORK 3 PENDING (retry_count
-- 0, 1, 2), 1 RETRYING, 4 RESOLVED by a retry (retry_count 0, 0, 1, 3: 8
-- retries), 2 ABANDONED after 5 retries each (10 retries); 1 ABANDONED
-- PERMANENT_INVALID_INPUT, 1 PERMANENT_NOT_FOUND resolved by hand.  Tenant
-- acme: 2 PENDING EXTERNAL_API_ERROR.
INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence,
       remediation, retry_count, max_retries, resolution, priority)
VALUES ('fetch', NULL, 'PENDING',   'TRANSIENT_NETWORK', 0.9, 'RETRY_WITH_BACKOFF', 0, 5, NULL, 'HIGH'),
       ('fetch', NULL, 'PENDING',   'TRANSIENT_NETWORK', 0.9, 'RETRY_WITH_BACKOFF', 1, 5, NULL, 'HIGH'),
       ('fetch', NULL, 'PENDING',   'TRANSIENT_NETWORK', 0.9, 'RETRY_WITH_BACKOFF', 2, 5, NULL, 'HIGH'),
       ('fetch', NULL, 'RETRYING',  'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 1, 5, NULL, 'HIGH'),
       ('fetch', NULL, 'RESOLVED',  'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 0, 5, 'retry', 'HIGH'),
       ('fetch', NULL, 'RESOLVED',  'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 0, 5, 'retry', 'HIGH'),
       ('fetch', NULL, 'RESOLVED',  'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 1, 5, 'retry', 'HIGH'),
       ('fetch', NULL, 'RESOLVED',  'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 3, 5, 'retry', 'HIGH'),
       ('fetch', NULL, 'ABANDONED', 'TRANSIENT_NETWORK', 0.9, 'RETRY_WITH_BACKOFF', 5, 5, 'max retries', 'HIGH'),
       ('fetch', NULL, 'ABANDONED', 'TRANSIENT_NETWORK', 0.9, 'RETRY_WITH_BACKOFF', 5, 5, 'max retries', 'HIGH'),
       ('parse', NULL, 'ABANDONED', 'PERMANENT_INVALID_INPUT', 0.85, 'MANUAL_INVESTIGATION', 0, 0, 'not retryable', 'MEDIUM'),
       ('lookup', NULL, 'RESOLVED', 'PERMANENT_NOT_FOUND', 0.85, 'MANUAL_INVESTIGATION', 0, 0, 'fixed by hand', 'MEDIUM'),
       ('charge', 'acme', 'PENDING', 'EXTERNAL_API_ERROR', 0.9, 'CONTACT_EXTERNAL_SERVICE', 0, 3, NULL, 'LOW'),
       ('charge', 'acme', 'PENDING', 'EXTERNAL_API_ERROR', 0.9, 'CONTACT_EXTERNAL_SERVICE', 1, 3, NULL, 'LOW');
-- Events: 5 retries of fetch 10 minutes ago (retry numbers 1..5, the record's
-- priority HIGH), 2 abandoned parses 3 hours ago, one UNKNOWN retry 2 days
-- ago, one acme charge 5 minutes ago.
INSERT INTO taskguard.failure_event (time, failure_id, task_name, tenant, failure_type,
       retry_count, action)
SELECT now() - interval '10 minutes',
       (SELECT min(id) FROM taskguard.dead_letter WHERE task_name = 'fetch'),
       'fetch', NULL, 'TRANSIENT_NETWORK', i, 'retry'
  FROM generate_series(0, 4) i;
INSERT INTO taskguard.failure_event (time, task_name, tenant, failure_type, retry_count, action)
VALUES (now() - interval '3 hours', 'parse', NULL, 'PERMANENT_INVALID_INPUT', 0, 'abandon'),
       (now() - interval '3 hours', 'parse', NULL, 'PERMANENT_INVALID_INPUT', 0, 'abandon'),
       (now() - interval '2 days', 'old', NULL, 'UNKNOWN', 0, 'retry'),
       (now() - interval '5 minutes', 'charge', 'acme', 'EXTERNAL_API_ERROR', 0, 'retry');
-- Tasks: 3 ready (one of acme), then one claimed (running).
SELECT count(taskguard.enqueue('work', '{}', 'mq')) FROM generate_series(1, 2);
SELECT taskguard.enqueue('work', '{}', 'mq_acme', tenant => 'acme') > 0 AS enqueued;
SELECT count(*) AS claimed FROM taskguard.claim('mq', 'w1');
-- Idempotency: 20 checks, 1 duplicate (5.00 %).
SELECT count(*) FILTER (WHERE taskguard.idempotency_check('metrics-k' || (i % 19), task_name => 'fetch'))
       AS first_seen FROM generate_series(0, 19) i;

-- 2. The dashboard before the scheduler folded anything (rollup + deltas):
-- depth 5 PENDING + 1 RETRYING + 3 ABANDONED; abandoned today 3; failures
-- in the last hour 5 + 1; transient retries 4 recovered of 6 concluded.
-- health = 100 - 30*9/100 - 15*3/50 - 10*5.00/10 - 10*(100-66.67)/100 = 88.07
SELECT running, ready, dlq_depth, abandoned_24h, failures_1h, idempotency_hit_rate_pct,
       open_breakers, schedule_health, health_score, retry_success_pct,
       dlq_pending, dlq_retrying, dlq_abandoned
  FROM taskguard.dashboard;
SELECT count(*) > 0 AS deltas_pending FROM taskguard.dlq_delta;
-- after a scheduler pass the rollups hold it all, and the numbers are the same
SELECT (taskguard.tick()->>'rollup')::int > 0 AS rolled_up;
SELECT count(*) AS deltas_left FROM taskguard.dlq_delta;
SELECT count(*) AS deltas_left FROM taskguard.event_delta;
SELECT running, ready, dlq_depth, abandoned_24h, failures_1h, idempotency_hit_rate_pct,
       open_breakers, schedule_health, health_score, retry_success_pct
  FROM taskguard.dashboard;
SELECT count(*) = 1 AS one_row FROM taskguard.dashboard;

-- 3. Failure taxonomy: records per type (share of 14), open ones, average
-- confidence (TRANSIENT_NETWORK: (3*0.9 + 5*0.8 + 2*0.9)/10 = 0.85), failed
-- attempts in 24 hours (the UNKNOWN one is 2 days old) and ever.
SELECT failure_type, remediation, records, open_records, pct, avg_confidence,
       failures_24h, failures_total
  FROM taskguard.failure_distribution
 WHERE records > 0 OR failures_total > 0
 ORDER BY records DESC, failure_type;
SELECT count(*) AS failure_types FROM taskguard.failure_distribution;
-- trend: hourly buckets, failures per type
SELECT failure_type, sum(failures) AS failures, sum(retries) AS retries, sum(abandons) AS abandons
  FROM taskguard.failure_trend GROUP BY 1 ORDER BY 1;
SELECT bool_and(time = date_trunc('hour', time)) AS hourly,
       bool_and(time > now() - interval '3 days') AS recent
  FROM taskguard.failure_trend;

-- 4. Retry effectiveness: TRANSIENT_NETWORK 4 recovered, 2 exhausted:
-- 66.67 %, (8 + 10) / 6 = 3.00 retries, 60 % of the policy's 5; 4 in progress
-- (3 PENDING + 1 RETRYING); 5 retries scheduled (events).
SELECT failure_type, retryable, max_retries, retried, recovered, exhausted, in_progress,
       success_rate_pct, avg_retries, avg_retries_pct_of_max, retries_total
  FROM taskguard.retry_effectiveness
 WHERE retried > 0 OR in_progress > 0 OR retries_total > 0
 ORDER BY failure_type;
SELECT count(*) AS failure_types FROM taskguard.retry_effectiveness;

-- 5. Alerts: none at the defaults (depth 9 <= 20, hit rate 5.00 is not > 5).
SELECT alert, level, comparison, threshold FROM taskguard.alert_threshold ORDER BY alert, level;
SELECT * FROM taskguard.alerts;
SELECT taskguard._check_alerts() AS sent;
-- 20 more PENDING records: depth 29, a warning, announced once
INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation)
SELECT 'bulk', 'PENDING', 'UNKNOWN', 0.2, 'MANUAL_INVESTIGATION' FROM generate_series(1, 20);
SELECT alert, level, value, threshold, detail FROM taskguard.alerts;
SELECT taskguard._check_alerts() AS sent;
SELECT taskguard._check_alerts() AS sent_again;
SELECT alert, level, value FROM taskguard.alert_state;
-- 30 more: depth 59, critical (a new level is announced)
INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation)
SELECT 'bulk', 'PENDING', 'UNKNOWN', 0.2, 'MANUAL_INVESTIGATION' FROM generate_series(1, 30);
SELECT alert, level, value FROM taskguard.alerts;
SELECT taskguard._check_alerts() AS sent;
-- an open breaker
SELECT taskguard.breaker_force('metrics-svc', 'open');
SELECT alert, level, value, detail FROM taskguard.alerts WHERE alert = 'open_breakers';
SELECT open_breakers, health_score FROM taskguard.dashboard;
SELECT taskguard._check_alerts() AS sent;
SELECT taskguard.breaker_force('metrics-svc', 'auto');
SELECT taskguard.breaker_reset('metrics-svc');
-- the bulk records go: the depth alert ends and is forgotten
DELETE FROM taskguard.dead_letter WHERE task_name = 'bulk';
SELECT taskguard._check_alerts() AS sent;
SELECT count(*) AS alerts_on FROM taskguard.alert_state;
-- duplicate schedules: 3 duplicates of one command, health 70 (a warning)
INSERT INTO taskguard.schedule (name, schedule, command)
VALUES ('m1', '0 3 * * *', 'SELECT 1'), ('m2', '10 3 * * *', 'SELECT 1'),
       ('m3', '20 3 * * *', 'SELECT 1'), ('m4', '30 3 * * *', 'SELECT 1');
SELECT taskguard._check_alerts() AS sent;
SELECT schedule_health FROM taskguard.dashboard;
SELECT alert, level, value FROM taskguard.alerts;
-- a disabled threshold is not evaluated; an edited one is
UPDATE taskguard.alert_threshold SET enabled = false WHERE alert = 'schedule_health';
UPDATE taskguard.alert_threshold SET threshold = 5 WHERE alert = 'dlq_depth' AND level = 'warning';
SELECT alert, level, value, threshold FROM taskguard.alerts;
UPDATE taskguard.alert_threshold SET enabled = true WHERE alert = 'schedule_health';
UPDATE taskguard.alert_threshold SET threshold = 20 WHERE alert = 'dlq_depth' AND level = 'warning';
DELETE FROM taskguard.schedule;
SELECT taskguard._check_alerts() AS sent;

-- 6. Prometheus: counters from the totals, labels escaped.
SELECT line FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\n') line
 WHERE line ~ '^(task_failure_total|task_retry_count|task_retry_sum|task_abandoned_total|dlq_queue_depth|idempotency_hit_rate_percent|schedule_health_score|taskguard_tasks|taskguard_health_score)'
 ORDER BY line;
SELECT count(*) AS families FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\n') line
 WHERE line LIKE '# TYPE %';
SELECT taskguard.prometheus_metrics() LIKE E'%\n' AS ends_with_newline;
-- every sample line is `name{labels} value` or `name value`
SELECT count(*) AS malformed FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\n') line
 WHERE line <> '' AND line NOT LIKE '# %'
   AND line !~ '^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? (-?[0-9.]+(e[+-]?[0-9]+)?|NaN)$';
-- a task name with a quote, a backslash and a newline
INSERT INTO taskguard.failure_event (task_name, failure_type, retry_count, action)
VALUES (E'we"ird\\na\nme', 'UNKNOWN', 0, 'abandon');
SELECT line FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\n') line
 WHERE line LIKE 'task_failure_total%we%';
SELECT taskguard._prom_label(E'a"b\\c\nd') AS escaped, taskguard._prom_label(NULL) AS null_label,
       taskguard._prom_label('') AS empty_label;
SELECT taskguard._prom_value(NULL) AS v_null, taskguard._prom_value(3) AS v_int,
       taskguard._prom_value(2.5) AS v_frac, taskguard._prom_value(1e20) AS v_huge;

-- 7. Counters never go down: pruning events and purging records leaves them.
SELECT taskguard.tick()->>'rollup' IS NOT NULL AS ticked;
SELECT sum(failures) AS failures_before FROM taskguard._failure_totals \gset
DELETE FROM taskguard.failure_event;
SELECT taskguard.dlq_purge('0 seconds', '{RESOLVED,ABANDONED}') AS purged;
SELECT taskguard.tick()->>'rollup' IS NOT NULL AS ticked;
SELECT sum(failures) = :failures_before AS totals_kept FROM taskguard._failure_totals;
SELECT sum(failures) AS trend_kept FROM taskguard.failure_trend;
SELECT dlq_depth, abandoned_24h FROM taskguard.dashboard;
SELECT line FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\n') line
 WHERE line LIKE 'task_failure_total%fetch%' OR line LIKE 'dlq_records%';

-- 8. The real path: fail() a task, retry it from the DLQ, complete it.
SELECT taskguard.enqueue('real', '{}', 'mreal') AS rt \gset
SELECT (taskguard.fail(id, 'requests.exceptions.ConnectionError', 'connection refused', '{}', attempts)).action
  FROM taskguard.claim('mreal', 'w1');
SELECT dlq_depth, failures_1h FROM taskguard.dashboard;
SELECT taskguard.dlq_retry(ARRAY[(SELECT id FROM taskguard.dead_letter WHERE task_id = :rt)]) AS retried;
SELECT taskguard.complete(id, NULL, attempts) FROM taskguard.claim('mreal', 'w1');
SELECT status, resolution FROM taskguard.dead_letter WHERE task_id = :rt;
SELECT failure_type, recovered, exhausted, success_rate_pct, avg_retries
  FROM taskguard.retry_effectiveness WHERE failure_type = 'TRANSIENT_NETWORK';
SELECT dlq_depth, failures_1h FROM taskguard.dashboard;

-- 9. rollup_rebuild() recomputes the same state from the base tables.
SELECT taskguard.tick()->>'rollup' IS NOT NULL AS ticked;
CREATE TEMP TABLE before_rebuild AS SELECT status, failure_type, by_retry, records, retried, retry_sum
  FROM taskguard._dlq_counts;
SELECT taskguard.rollup_rebuild() >= 0 AS rebuilt;
SELECT count(*) AS differences FROM (
    (SELECT * FROM before_rebuild EXCEPT ALL
     SELECT status, failure_type, by_retry, records, retried, retry_sum FROM taskguard._dlq_counts)
    UNION ALL
    (SELECT status, failure_type, by_retry, records, retried, retry_sum FROM taskguard._dlq_counts
     EXCEPT ALL SELECT * FROM before_rebuild)) x;
SELECT sum(failures) >= :failures_before AS totals_kept FROM taskguard._failure_totals;

-- 10. Tenants: a role mapped to acme sees acme's numbers only.
CREATE ROLE metrics_acme;
INSERT INTO taskguard.tenant_member VALUES ('metrics_acme', 'acme');
-- reader access: grant_access() when the access capability is there, else its grants
DO $$
BEGIN
    IF to_regprocedure('taskguard.grant_access(name,text)') IS NOT NULL THEN
        EXECUTE 'SELECT taskguard.grant_access(''metrics_acme'', ''reader'')';
    ELSE
        GRANT USAGE ON SCHEMA taskguard TO metrics_acme;
        GRANT SELECT ON ALL TABLES IN SCHEMA taskguard TO metrics_acme;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA taskguard TO metrics_acme;
    END IF;
END $$;
INSERT INTO taskguard.failure_event (time, task_name, tenant, failure_type, retry_count, action)
VALUES (now(), 'charge', 'acme', 'EXTERNAL_API_ERROR', 1, 'retry'),
       (now(), 'other', 'globex', 'TRANSIENT_DATABASE', 0, 'retry');
-- before the scheduler folds them, the views that add pending deltas see
-- them (failure_trend reads the rollup only: at most a pass behind)
SET ROLE metrics_acme;
SELECT running, ready, dlq_depth, failures_1h, dlq_pending FROM taskguard.dashboard;
SELECT failure_type, records, failures_total FROM taskguard.failure_distribution
 WHERE records > 0 OR failures_total > 0;
SELECT failure_type, sum(failures) FROM taskguard.failure_trend GROUP BY 1;
SELECT count(*) AS visible FROM taskguard.retry_effectiveness WHERE retried > 0;
SELECT line FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\n') line
 WHERE line LIKE 'task_failure_total{%' OR line LIKE 'dlq_queue_depth %';
RESET ROLE;
-- everyone else sees every tenant
SELECT failure_type, sum(failures) FROM taskguard._failure_hours
 WHERE failure_type IN ('EXTERNAL_API_ERROR', 'TRANSIENT_DATABASE') GROUP BY 1 ORDER BY 1;
SELECT taskguard.tick()->>'rollup' IS NOT NULL AS ticked;
SELECT failure_type, sum(failures) FROM taskguard.failure_trend
 WHERE failure_type IN ('EXTERNAL_API_ERROR', 'TRANSIENT_DATABASE') GROUP BY 1 ORDER BY 1;
SET ROLE metrics_acme;
SELECT failure_type, sum(failures) FROM taskguard.failure_trend GROUP BY 1;
RESET ROLE;
DELETE FROM taskguard.tenant_member WHERE role = 'metrics_acme';
DROP OWNED BY metrics_acme;
DROP ROLE metrics_acme;

-- 11. Bad input.
\set VERBOSITY sqlstate
SELECT taskguard.health_score(-1, 0, 0, 100, 0);
SELECT taskguard.health_score(0, -5, 0, 100, 0);
SELECT taskguard.health_score(0, 0, -1, 100, 0);
SELECT taskguard.health_score(0, 0, 0, 101, 0);
SELECT taskguard.health_score(0, 0, 0, -1, 0);
SELECT taskguard.health_score(0, 0, 0, 100, 100.5);
SELECT taskguard.health_score(0, 0, 0, 100, 'NaN');
SELECT taskguard.health_score(0, 0, 0, 100, 0, -0.1);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold) VALUES ('nope', 'info', '>', 1);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold) VALUES ('dlq_depth', 'info', '>=', 1);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold) VALUES ('dlq_depth', 'info', '>', NULL);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold) VALUES ('dlq_depth', 'info', '>', 1e16);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold) VALUES ('dlq_depth', 'loud', '>', 1);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold) VALUES ('dlq_depth', 'warning', '>', 1);
\set VERBOSITY terse
SELECT taskguard.health_score(NULL, NULL, NULL, NULL, NULL) AS all_unknown;
SELECT taskguard.health_score(0, 0, 0, 100, 0, 100) AS perfect;
SELECT taskguard.health_score(9223372036854775807, 9223372036854775807, 2147483647, 0, 100, 0) AS worst;
SELECT taskguard.health_score(50, 25, 1, 80, 2.5, 50) AS middling;
-- a user threshold at another level works and is evaluated
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold) VALUES ('dlq_depth', 'info', '>', 0);
SELECT alert, level FROM taskguard.alerts WHERE alert = 'dlq_depth';
DELETE FROM taskguard.alert_threshold WHERE NOT builtin;
-- the rollup step with a zero batch does nothing
SELECT taskguard._rollup(0) AS folded;
-- leave nothing behind for later tests
DELETE FROM taskguard.dead_letter;
DELETE FROM taskguard.failure_event;
DELETE FROM taskguard.task;
SELECT taskguard._rollup(100000) >= 0 AS folded;
