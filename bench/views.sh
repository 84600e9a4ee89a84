#!/usr/bin/env bash
# bench/views.sh — every dashboard view at scale (docs/reference.md#observability).
#   metric: view_ms_<view> X      best of RUNS executions of the view's query
#   metric: slowest_view_ms X     (goal < 50), then `slowest_view: <view>`
# Data, generated set-based in a database of its own (dropped afterwards):
# ROWS (1,000,000) dead-letter records over 30 days (5 % PENDING, 1 %
# RETRYING, 54 % ABANDONED, 40 % RESOLVED by a retry), EVENTS (5,000,000)
# failure events spread over 30 days (a hash of the id, so every hour has
# every type: the trend has its full 720 x 15 points), 4 tenants, 50 task
# names, all 15 types;
# 20,000 ready and 200 running tasks; 40 schedules.  The rollups are built
# once by taskguard.rollup_rebuild() after the bulk load (in production the
# triggers and the scheduler's 'rollup' step keep them; the views read the
# same tables either way).
# For taskguard.dlq the query is its first filtered page:
#   WHERE status = 'PENDING' ORDER BY last_failed_at DESC LIMIT 50.
set -euo pipefail
ROWS=${TG_BENCH_VIEWS_ROWS:-1000000}
EVENTS=${TG_BENCH_VIEWS_EVENTS:-5000000}
RUNS=${TG_BENCH_VIEWS_RUNS:-5}
BDB=tg_bench_views
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $BDB" \
    -c "CREATE DATABASE $BDB" >/dev/null
[ -n "${TG_BENCH_VIEWS_KEEP:-}" ] ||
    trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $BDB" >/dev/null 2>&1 || true' EXIT
start=$(date +%s)
psql -X -q -At -v ON_ERROR_STOP=1 -d "$BDB" <<SQL | sed "s/^/# /"
\\timing on
CREATE EXTENSION taskguard;
SET taskguard.notify = off;
-- bulk load with the rollup triggers off, then one rollup_rebuild(): with
-- them on, a month of history arrives as one delta per event and minute.
ALTER TABLE taskguard.dead_letter DISABLE TRIGGER USER;
ALTER TABLE taskguard.failure_event DISABLE TRIGGER USER;
INSERT INTO taskguard.task (queue, task_name, status, tenant, lease_expires_at)
SELECT 'q' || (i % 4), 'task_' || (i % 50), CASE WHEN i <= 200 THEN 'running' ELSE 'ready' END,
       CASE WHEN i % 4 > 0 THEN 'tenant' || (i % 4) END,
       CASE WHEN i <= 200 THEN now() + interval '1 hour' END
  FROM generate_series(1, 20200) i;
INSERT INTO taskguard.dead_letter (task_name, args, queue, tenant, service, status, failure_type,
       confidence, remediation, error_type, message, retry_count, max_retries, priority,
       first_failed_at, last_failed_at, next_retry_at, resolved_at, resolution, external)
SELECT 'task_' || (i % 50), jsonb_build_object('n', i), 'q' || (i % 4),
       CASE WHEN i % 4 > 0 THEN 'tenant' || (i % 4) END, 'svc' || (i % 10),
       s.status, (enum_range(NULL::taskguard.failure_type))[1 + i % 15], 0.5 + (i % 50) / 100.0,
       'MANUAL_INVESTIGATION', 'SomeError', 'failure number ' || i, i % 6, 5,
       (enum_range(NULL::taskguard.priority))[1 + i % 5],
       t.at - interval '1 hour', t.at,
       CASE WHEN s.status = 'PENDING' THEN now() + (i % 600) * interval '1 second' END,
       CASE WHEN s.status = 'RESOLVED' THEN t.at END,
       CASE WHEN s.status = 'RESOLVED' THEN 'retry' WHEN s.status = 'ABANDONED' THEN 'max retries' END,
       true
  FROM generate_series(1, $ROWS) i,
       LATERAL (SELECT (CASE WHEN i % 100 < 5 THEN 'PENDING' WHEN i % 100 = 5 THEN 'RETRYING'
                             WHEN i % 100 < 60 THEN 'ABANDONED' ELSE 'RESOLVED' END)::taskguard.dlq_status
                       AS status) s,
       LATERAL (SELECT now() - (i % 43200) * interval '1 minute' AS at) t;
-- events in chunks of a million (each statement's trigger aggregates its rows)
DO \$\$
DECLARE
    n bigint := $EVENTS;
BEGIN
    FOR c IN 0 .. (n - 1) / 1000000 LOOP
        INSERT INTO taskguard.failure_event (time, failure_id, task_name, tenant, failure_type,
               error_type, error, retry_count, action)
        SELECT now() - (abs(hashint8(i)) % 2592000) * interval '1 second', 1 + i % $ROWS, 'task_' || (i % 50),
               CASE WHEN i % 4 > 0 THEN 'tenant' || (i % 4) END,
               (enum_range(NULL::taskguard.failure_type))[1 + i % 15], 'SomeError', 'failed',
               i % 6, CASE WHEN i % 3 = 0 THEN 'abandon' ELSE 'retry' END
          FROM generate_series(c * 1000000 + 1, least(n, (c + 1) * 1000000)) i;
    END LOOP;
END \$\$;
-- 40 jobs spread over the hour, 6 of them at minute 0 (an hourly hotspot)
INSERT INTO taskguard.schedule (name, schedule, command, expected_duration)
SELECT 'job' || i, CASE WHEN i <= 6 THEN '0 * * * *' ELSE ((i * 7) % 60) || ' * * * *' END,
       'SELECT ' || i, (1 + i % 3) * interval '1 minute'
  FROM generate_series(1, 40) i;
SELECT count(taskguard.idempotency_check('k' || i, task_name => 'task_' || (i % 50)))
  FROM generate_series(1, 2000) i, generate_series(1, 1 + (i % 20 = 0)::int) d;
SQL
psql -X -q -At -v ON_ERROR_STOP=1 -d "$BDB" <<'SQL' | sed 's/^/# /'
\timing on
ALTER TABLE taskguard.dead_letter ENABLE TRIGGER USER;
ALTER TABLE taskguard.failure_event ENABLE TRIGGER USER;
SELECT taskguard.rollup_rebuild();
-- the scheduler's 'rollup' and 'alerts' steps (a whole tick() would also
-- escalate the 20,000 waiting tasks)
SELECT taskguard._rollup(1000);
SELECT taskguard._check_alerts();
SQL
psql -X -q -d "$BDB" -c "VACUUM ANALYZE" >/dev/null
echo "data: $ROWS records, $EVENTS events, loaded and rolled up in $(( $(date +%s) - start )) s"
psql -X -q -At -v ON_ERROR_STOP=1 -d "$BDB" <<SQL
SET max_parallel_workers_per_gather = 0;
CREATE FUNCTION pg_temp.best_ms(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best float8 := 'Infinity';
BEGIN
    FOR r IN 1..$RUNS LOOP
        t0 := clock_timestamp();
        -- every column is computed: the rows are turned into text
        EXECUTE 'SELECT sum(length(x::text)) FROM (' || q || ') x';
        best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
    RETURN best;
END \$\$;
CREATE TEMP TABLE timing AS
SELECT v.name, pg_temp.best_ms(v.q) AS ms
  FROM (VALUES
    ('dashboard', 'SELECT * FROM taskguard.dashboard'),
    ('dlq', 'SELECT * FROM taskguard.dlq WHERE status = ''PENDING'' ORDER BY last_failed_at DESC LIMIT 50'),
    ('failure_distribution', 'SELECT * FROM taskguard.failure_distribution'),
    ('failure_trend', 'SELECT * FROM taskguard.failure_trend'),
    ('idempotency_stats', 'SELECT * FROM taskguard.idempotency_stats'),
    ('retry_effectiveness', 'SELECT * FROM taskguard.retry_effectiveness'),
    ('breaker_status', 'SELECT * FROM taskguard.breaker_status'),
    ('schedule_hotspots', 'SELECT * FROM taskguard.schedule_hotspots'),
    ('alerts', 'SELECT * FROM taskguard.alerts'),
    ('scheduler_status', 'SELECT * FROM taskguard.scheduler_status')) v(name, q);
SELECT format('metric: view_ms_%s %s', name, round(ms::numeric, 2)) FROM timing ORDER BY name;
SELECT format('metric: prometheus_metrics_ms %s',
              round(pg_temp.best_ms('SELECT taskguard.prometheus_metrics() AS m')::numeric, 2));
SELECT format('metric: slowest_view_ms %s', round(ms::numeric, 2)) FROM timing ORDER BY ms DESC LIMIT 1;
SELECT format('slowest_view: taskguard.%s', name) FROM timing ORDER BY ms DESC LIMIT 1;
SQL
