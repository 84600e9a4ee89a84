#!/usr/bin/env bash
# bench/retry_advice.sh — taskguard.retry_advice (and retry_outcomes) over
# 1 M failure events of the last 30 days (issue 20: goal < 1 s).  Prints
#   metric: retry_advice_events N      metric: retry_advice_failures N
#   metric: retry_advice_groups N
#   metric: retry_advice_ms X   (min of 5; goal < 1000)
#   metric: retry_advice_median_ms X   metric: retry_outcomes_ms X
#   metric: classification_confidence_ms X (the 24-hour heatmap view)
#   metric: alerts_ms X (with the per-type retry alerts)   metric: prometheus_metrics_ms X
# The history is generated straight into dead_letter and failure_event of a
# database of its own (the scheduler's database is left alone): 20 task names
# × 6 retryable failure types = 120 groups, 0 to 5 retries per failure, one
# event per failed attempt, each group with its own recovery profile (70 %
# recovered, 25 % exhausted or abandoned, 5 % still open).
set -euo pipefail
EVENTS=${TG_BENCH_ADVICE_EVENTS:-1000000}
DB=bench_advice
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1' EXIT
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION taskguard;
-- failures: retry_count r = 0..5 gives r + 1 events; about 3.7 on average
CREATE TEMP TABLE f AS
SELECT g AS id, 'task_' || (g % 20) AS task_name,
       (ARRAY['TRANSIENT_NETWORK', 'TRANSIENT_DATABASE', 'TRANSIENT_RATE_LIMIT',
              'EXTERNAL_SERVICE_UNAVAILABLE', 'EXTERNAL_API_ERROR', 'UNKNOWN'])[1 + (g / 20) % 6]
           ::taskguard.failure_type AS failure_type,
       (hashint4(g) & 1023) AS h,
       now() - interval '29 days' * random() AS first_failed_at
  FROM generate_series(1, ($EVENTS / 3.7)::int) g;
INSERT INTO taskguard.dead_letter (id, task_name, status, failure_type, confidence, remediation,
    retry_count, max_retries, first_failed_at, last_failed_at, resolved_at, resolution)
SELECT f.id, f.task_name, o.status, f.failure_type, 0.8, 'RETRY_WITH_BACKOFF', o.rc, 5,
       f.first_failed_at, f.first_failed_at + o.rc * interval '10 seconds',
       CASE WHEN o.status = 'RESOLVED' THEN f.first_failed_at + (o.rc + 1) * interval '10 seconds'
                                          + (f.h % 7) * interval '1 second' END,
       CASE WHEN o.status = 'RESOLVED' THEN 'retry' WHEN o.status = 'ABANDONED' THEN 'max retries exceeded' END
  FROM f, LATERAL (SELECT CASE WHEN f.h % 100 < 70 THEN 'RESOLVED' WHEN f.h % 100 < 95 THEN 'ABANDONED'
                               ELSE 'PENDING' END::taskguard.dlq_status AS status,
                          CASE WHEN f.h % 100 BETWEEN 70 AND 94 THEN 5
                               ELSE (f.h / 100 + hashtext(f.task_name || f.failure_type) & 7) % 6 END AS rc) o;
INSERT INTO taskguard.failure_event (time, failure_id, task_name, failure_type, retry_count,
    action, confidence, retry_delay)
SELECT d.first_failed_at + r * interval '10 seconds', d.id, d.task_name, d.failure_type, r,
       CASE WHEN d.status = 'ABANDONED' AND r = d.retry_count THEN 'abandon' ELSE 'retry' END,
       0.8, interval '10 seconds'
  FROM taskguard.dead_letter d, generate_series(0, d.retry_count) r;
VACUUM ANALYZE taskguard.dead_letter;
VACUUM ANALYZE taskguard.failure_event;
SQL
psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
CREATE FUNCTION pg_temp.ms(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
SELECT pg_temp.ms('SELECT count(*) FROM taskguard.retry_advice') AS warm \gset
CREATE TEMP TABLE rounds AS
SELECT r, pg_temp.ms('SELECT * FROM taskguard.retry_advice') AS advice,
          pg_temp.ms('SELECT * FROM taskguard.retry_outcomes') AS outcomes,
          pg_temp.ms('SELECT * FROM taskguard.classification_confidence') AS confidence,
          pg_temp.ms('SELECT * FROM taskguard.alerts') AS alerts,
          pg_temp.ms('SELECT taskguard.prometheus_metrics()') AS metrics
  FROM generate_series(1, 5) r;
SELECT format('metric: retry_advice_events %s', count(*)) FROM taskguard.failure_event;
SELECT format('metric: retry_advice_failures %s', count(*)) FROM taskguard.dead_letter;
SELECT format('metric: retry_advice_groups %s', count(*)) FROM taskguard.retry_advice;
SELECT format('metric: retry_advice_with_advice %s', count(*) FILTER (WHERE reason NOT LIKE 'keep%'))
  FROM taskguard.retry_advice;
SELECT format('metric: retry_advice_ms %s', round(min(advice)::numeric, 1)) FROM rounds;
SELECT format('metric: retry_advice_median_ms %s',
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY advice)::numeric, 1)) FROM rounds;
SELECT format('metric: retry_outcomes_ms %s', round(min(outcomes)::numeric, 1)) FROM rounds;
SELECT format('metric: classification_confidence_events_24h %s', count(*))
  FROM taskguard.failure_event WHERE time >= date_trunc('hour', now() - interval '24 hours');
SELECT format('metric: classification_confidence_ms %s', round(min(confidence)::numeric, 1)) FROM rounds;
SELECT format('metric: alerts_ms %s', round(min(alerts)::numeric, 1)) FROM rounds;
SELECT format('metric: prometheus_metrics_ms %s', round(min(metrics)::numeric, 1)) FROM rounds;
SQL
psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "SELECT 'example: ' || task_name || ' ' || failure_type
    || ' (' || current_max_retries || ' × ' || current_base_delay || ' → ' || recommended_max_retries
    || ' × ' || recommended_base_delay || '): ' || reason
  FROM taskguard.retry_advice ORDER BY task_name, failure_type LIMIT 3"
