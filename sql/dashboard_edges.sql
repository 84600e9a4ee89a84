-- dashboard_edges: the dashboard numbers at the edges — no data, 0 % and
-- 100 % — in taskguard.dashboard, retry_effectiveness, failure_distribution,
-- idempotency_stats, alerts, the health score and prometheus_metrics().
-- Before issue 23 a success rate was NULL whenever the recovered or the
-- exhausted count was zero: with every retry failing the dashboard showed
-- NULL, the health score 99 and the "retry success below 30 %" alert stayed
-- off.
\set VERBOSITY terse
SET taskguard.notify = off;
-- start from nothing (as metrics.sql does)
DELETE FROM taskguard.dead_letter;
DELETE FROM taskguard.failure_event;
DELETE FROM taskguard.task;
DELETE FROM taskguard.schedule;
SELECT count(taskguard.breaker_reset(service)) >= 0 AS reset FROM taskguard.breaker_status;
DELETE FROM taskguard.breaker_saved;
SELECT taskguard._flush_counters() >= 0 AS flushed;
DELETE FROM taskguard.idempotency_counter;
SELECT taskguard._rollup(100000) >= 0 AS folded;
DELETE FROM taskguard.failure_total;
DELETE FROM taskguard.failure_hourly;
DELETE FROM taskguard.activity_minute;
DELETE FROM taskguard.dlq_rollup;
DELETE FROM taskguard.metric_tenant;
DELETE FROM taskguard.alert_state;

CREATE FUNCTION pg_temp.prom(name text) RETURNS text LANGUAGE sql AS $$
SELECT string_agg(line, ' ' ORDER BY line)
  FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\n') line
 WHERE line LIKE name || ' %' OR line LIKE name || '{%'
$$;
CREATE FUNCTION pg_temp.add(n int, status taskguard.dlq_status, ftype taskguard.failure_type,
                            retries int, resolution text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation,
                                   retry_count, max_retries, resolved_at, resolution)
SELECT 'edge', status, ftype, 0.9, 'RETRY_WITH_BACKOFF', retries, 5,
       CASE WHEN status = 'RESOLVED' THEN now() END, resolution
  FROM generate_series(1, n)
$$;

-- 1. No data: rates unknown (NULL, NaN in Prometheus), nothing costs, no alert.
SELECT running, ready, dlq_depth, abandoned_24h, failures_1h, idempotency_hit_rate_pct,
       open_breakers, schedule_health, health_score, retry_success_pct FROM taskguard.dashboard;
SELECT failure_type, retried, recovered, exhausted, success_rate_pct, avg_retries
  FROM taskguard.retry_effectiveness WHERE failure_type = 'TRANSIENT_NETWORK';
SELECT count(*) AS types, sum(records) AS records, max(pct) AS max_pct, max(avg_confidence) AS max_conf
  FROM taskguard.failure_distribution;
SELECT count(*) AS idempotency_rows FROM taskguard.idempotency_stats;
SELECT alert, level, value FROM taskguard.alerts;
SELECT pg_temp.prom('taskguard_transient_retry_success_percent') AS transient,
       pg_temp.prom('taskguard_health_score') AS health,
       pg_temp.prom('idempotency_hit_rate_percent') AS idem,
       pg_temp.prom('taskguard_retry_success_rate_percent') LIKE '%TRANSIENT_NETWORK"} NaN%' AS per_type_nan;

-- 2. 0 %: every retried transient record was abandoned (two of them, after
-- 5 retries each); one abandoned without a retry does not count.
SELECT pg_temp.add(2, 'ABANDONED', 'TRANSIENT_NETWORK', 5);
SELECT pg_temp.add(1, 'ABANDONED', 'TRANSIENT_DATABASE', 0);
SELECT dlq_depth, abandoned_24h, health_score, retry_success_pct FROM taskguard.dashboard;
SELECT failure_type, retried, recovered, exhausted, success_rate_pct, avg_retries
  FROM taskguard.retry_effectiveness WHERE failure_type IN ('TRANSIENT_NETWORK', 'TRANSIENT_DATABASE')
 ORDER BY 1;
SELECT alert, level, value, threshold FROM taskguard.alerts WHERE alert = 'retry_success_rate';
SELECT pg_temp.prom('taskguard_transient_retry_success_percent') AS transient,
       pg_temp.prom('taskguard_retry_success_rate_percent{failure_type="TRANSIENT_NETWORK"}') AS per_type,
       pg_temp.prom('taskguard_alert_active') AS alerts_on;
-- failure_distribution: the shares add up to 100
SELECT failure_type, records, open_records, pct, avg_confidence FROM taskguard.failure_distribution
 WHERE records > 0 ORDER BY 1;

-- 3. 100 %: every concluded transient record recovered by a retry (the
-- three abandoned today still cost 0.9: 99).
DELETE FROM taskguard.dead_letter;
SELECT pg_temp.add(3, 'RESOLVED', 'TRANSIENT_NETWORK', 1, 'retry');
SELECT pg_temp.add(1, 'RESOLVED', 'TRANSIENT_NETWORK', 0, 'manual');
SELECT dlq_depth, abandoned_24h, health_score, retry_success_pct FROM taskguard.dashboard;
SELECT failure_type, retried, recovered, exhausted, success_rate_pct, avg_retries
  FROM taskguard.retry_effectiveness WHERE failure_type = 'TRANSIENT_NETWORK';
SELECT count(*) AS retry_alerts FROM taskguard.alerts WHERE alert = 'retry_success_rate';
SELECT pg_temp.prom('taskguard_transient_retry_success_percent') AS transient;
SELECT failure_type, records, open_records, pct FROM taskguard.failure_distribution
 WHERE records > 0 ORDER BY 1;

-- 4. Idempotency: checks with no duplicate are 0 %, all duplicates 100 %.
INSERT INTO taskguard.idempotency_counter (task_name, checks, duplicates) VALUES ('none_dup', 4, 0);
SELECT task_name, checks, duplicates, hit_rate_pct FROM taskguard.idempotency_stats;
SELECT idempotency_hit_rate_pct, health_score FROM taskguard.dashboard;
UPDATE taskguard.idempotency_counter SET duplicates = 4, last_duplicate_at = now();
SELECT task_name, checks, duplicates, hit_rate_pct FROM taskguard.idempotency_stats;
SELECT idempotency_hit_rate_pct, health_score FROM taskguard.dashboard;
SELECT alert, level, value FROM taskguard.alerts WHERE alert = 'idempotency_hit_rate';
SELECT pg_temp.prom('idempotency_hit_rate_percent') AS idem;
DELETE FROM taskguard.idempotency_counter;

-- 5. The health score: 100 only when nothing costs, 0 only when everything
-- is at its worst; one open dead letter (0.3 points) is 99, not 100.
SELECT taskguard.health_score(0, 0, 0, 100, 0, 100) AS perfect,
       taskguard.health_score(0, 0, 0, NULL, NULL, NULL) AS unknown_costs_nothing,
       taskguard.health_score(1, 0, 0, 100, 0, 100) AS one_dead_letter,
       taskguard.health_score(0, 0, 0, 100, 0, 0) AS retries_all_fail,
       taskguard.health_score(100, 50, 2, 0, 10, 0) AS worst,
       taskguard.health_score(99, 50, 2, 0, 10, 0) AS nearly_worst;

-- clean up for the tests after this one
DELETE FROM taskguard.dead_letter;
SELECT taskguard._rollup(100000) >= 0 AS folded;
DELETE FROM taskguard.failure_total;
DELETE FROM taskguard.failure_hourly;
DELETE FROM taskguard.activity_minute;
DELETE FROM taskguard.dlq_rollup;
DELETE FROM taskguard.metric_tenant;
DELETE FROM taskguard.alert_state;
