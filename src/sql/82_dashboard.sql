-- 82_dashboard.sql — the dashboard views and alerts (docs/reference.md#observability).  Every view
-- here reads the rollups of 80_metrics.sql (and partial indexes of the task
-- table), never a scan of dead_letter or failure_event, and filters rows by
-- tenant with taskguard._tenant_visible().
--
-- Locks: _check_alerts() (scheduler step 'alerts') locks the alert_state rows
-- it changes; the views take none.

-- ---------------------------------------------------------------- thresholds

CREATE TABLE taskguard.alert_threshold (
    alert      text NOT NULL CHECK (alert IN ('dlq_depth', 'idempotency_hit_rate',
                   'schedule_health', 'open_breakers', 'retry_success_rate', 'flow_held_back')),
    level      taskguard.alert_level NOT NULL,
    comparison text NOT NULL CHECK (comparison IN ('>', '<')),
    threshold  numeric NOT NULL CHECK (threshold BETWEEN -1e15 AND 1e15),
    enabled    boolean NOT NULL DEFAULT true,
    builtin    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (alert, level)
);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold, builtin) VALUES
    ('dlq_depth',            'warning',  '>', 20, true),
    ('dlq_depth',            'critical', '>', 50, true),
    ('idempotency_hit_rate', 'warning',  '>', 5,  true),
    ('schedule_health',      'warning',  '<', 80, true),
    ('schedule_health',      'critical', '<', 60, true),
    ('open_breakers',        'error',    '>', 0,  true),
    ('retry_success_rate',   'warning',  '<', 30, true),
    ('flow_held_back',       'warning',  '>', 300, true);
-- Dumped whole: a restore puts the built-in rows back as they were edited
-- (02_backup.sql; docs/operations.md).
SELECT pg_catalog.pg_extension_config_dump('taskguard.alert_threshold', '');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.alert_threshold
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('alert', 'level');

-- Alerts that are on, so that each start is announced once.
CREATE TABLE taskguard.alert_state (
    alert      text PRIMARY KEY,
    level      taskguard.alert_level NOT NULL,
    value      numeric,
    started_at timestamptz NOT NULL DEFAULT now()
);
-- Dumped: without it a restored database would announce every alert that
-- is on as if it had just started.
SELECT pg_catalog.pg_extension_config_dump('taskguard.alert_state', '');

-- Values the scheduler computes each pass for the views (schedule health
-- reads cron.job and evaluates a day of buckets: not per dashboard query).
CREATE TABLE taskguard.metric_snapshot (
    name        text PRIMARY KEY,
    value       numeric,
    computed_at timestamptz NOT NULL DEFAULT now()
);
-- Not dumped: a cache the scheduler rewrites every pass, and readers ignore a
-- value older than a minute.

-- The schedule health score: the scheduler's value when under a minute old,
-- else computed now.  SECURITY DEFINER: schedules are not per tenant, and a
-- reader needs no rights on the snapshot, the schedules or cron.job.
CREATE FUNCTION taskguard._schedule_health_score()
RETURNS int
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(
    (SELECT s.value::int FROM taskguard.metric_snapshot s
      WHERE s.name = 'schedule_health' AND s.computed_at > now() - interval '1 minute'),
    (SELECT h.score FROM taskguard.schedule_health() h))
$$;

-- ---------------------------------------------------------------- health

-- Refuse a negative count or a percentage/score outside 0..upper (NULL: no
-- upper bound).
CREATE FUNCTION taskguard._check_health_input(value numeric, argname text, upper numeric)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF value < 0 OR value > upper OR value = 'NaN' THEN
        RAISE EXCEPTION '% must be %, got %', argname,
            coalesce('between 0 and ' || upper, 'at least 0'), value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN value;
END
$$;

-- The dashboard's health score, 0–100 (docs/observability.md): 100 minus
--   30 × min(1, dlq_depth / 100)                 open dead letters
--   15 × min(1, abandoned_24h / 50)              records given up on today
--   10 per open breaker, at most 20
--   15 × (100 − schedule_health) / 100
--   10 × min(1, idempotency_hit_rate_pct / 10)   duplicate submissions
--   10 × (100 − retry_success_pct) / 100         transient retries that fail
-- rounded, but 100 only when nothing costs (one open dead letter costs 0.3:
-- 99, not a perfect score) and 0 only when the penalties reach 100; a NULL
-- input (unknown) costs nothing.
CREATE FUNCTION taskguard.health_score(dlq_depth bigint, abandoned_24h bigint,
    open_breakers int, schedule_health int, idempotency_hit_rate_pct numeric,
    retry_success_pct numeric DEFAULT NULL)
RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN x.raw >= 100 THEN 100 WHEN x.raw <= 0 THEN 0
            ELSE least(99, greatest(1, round(x.raw)))::int END
  FROM (SELECT 100
    - 30 * least(1, coalesce(taskguard._check_health_input($1, 'dlq_depth', NULL), 0) / 100.0)
    - 15 * least(1, coalesce(taskguard._check_health_input($2, 'abandoned_24h', NULL), 0) / 50.0)
    - 10 * least(2, coalesce(taskguard._check_health_input($3, 'open_breakers', NULL), 0))
    - 15 * (100 - coalesce(taskguard._check_health_input($4, 'schedule_health', 100), 100)) / 100.0
    - 10 * least(1, coalesce(taskguard._check_health_input($5, 'idempotency_hit_rate_pct', 100), 0) / 10.0)
    - 10 * (100 - coalesce(taskguard._check_health_input($6, 'retry_success_pct', 100), 100)) / 100.0
    AS raw) x
$$;

-- One row of inputs shared by the dashboard and the alerts.
CREATE VIEW taskguard._health_inputs AS
WITH dlq AS (
    SELECT coalesce(sum(c.records) FILTER (WHERE c.status <> 'RESOLVED'), 0)::bigint AS depth,
           coalesce(sum(c.records) FILTER (WHERE c.status = 'PENDING'), 0)::bigint AS pending,
           coalesce(sum(c.records) FILTER (WHERE c.status = 'RETRYING'), 0)::bigint AS retrying,
           coalesce(sum(c.records) FILTER (WHERE c.status = 'ABANDONED'), 0)::bigint AS abandoned,
           -- transient types: records whose retries concluded, and those that recovered
           sum(c.records) FILTER (WHERE c.failure_type::text LIKE 'TRANSIENT%' AND c.by_retry)
               AS t_recovered,
           sum(c.retried) FILTER (WHERE c.failure_type::text LIKE 'TRANSIENT%'
                                    AND c.status = 'ABANDONED') AS t_exhausted
      FROM taskguard._dlq_counts c),
recent AS (
    SELECT coalesce(sum(a.failures) FILTER (
               WHERE a.minute >= date_trunc('minute', now() - interval '1 hour')), 0)::bigint AS failures_1h,
           coalesce(sum(a.abandoned), 0)::bigint AS abandoned_24h
      -- a tenant-bound caller reads its tenants' minutes (activity_minute_tenant_idx),
      -- not every tenant's; one-time filters pick the branch
      FROM (SELECT m.minute, m.tenant, m.failures, m.abandoned FROM taskguard.activity_minute m
             WHERE m.minute >= date_trunc('minute', now() - interval '24 hours')
               AND taskguard._tenant_scope() IS NULL
            UNION ALL
            SELECT m.minute, m.tenant, m.failures, m.abandoned FROM taskguard.activity_minute m
             WHERE m.tenant = ANY (taskguard._tenant_scope())
               AND m.minute >= date_trunc('minute', now() - interval '24 hours')
            UNION ALL
            SELECT d.minute, d.tenant, d.failures, d.abandoned FROM taskguard.event_delta d
             WHERE d.minute >= date_trunc('minute', now() - interval '24 hours')) a
     WHERE a.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v)),
idem AS (
    SELECT coalesce(round(100.0 * sum(i.duplicates) / nullif(sum(i.checks), 0), 2), 0) AS hit_rate
      FROM taskguard.idempotency_stats i),
breakers AS (
    SELECT count(*)::int AS open,
           string_agg(b.service, ', ' ORDER BY b.service) AS services
      FROM taskguard.breaker_status b WHERE b.state = 'open')
-- Tasks running and ready, counted per tenant through the partial indexes,
-- then filtered (OFFSET 0 keeps the tenant check above the GROUP BY: once per
-- tenant, not per row).  Scalar subqueries, so that a query that does not
-- read them (the alerts) does not count them: while another session holds an
-- old snapshot these scans visit a dead version per task claimed since.  A
-- tenant-bound caller's ready tasks are counted in its tenants' range of
-- task_ready_tenant_idx (one-time filters pick the branch); running tasks are
-- few, as many as workers, and all have a lease (claim() sets it), which lets
-- task_lease_idx count them.
SELECT (SELECT coalesce(sum(x.n), 0)::bigint
          FROM (SELECT r.tenant, count(*) AS n FROM taskguard.task r
                 WHERE r.status = 'running' AND r.lease_expires_at IS NOT NULL GROUP BY r.tenant
                OFFSET 0) x
         WHERE taskguard._tenant_visible(x.tenant)) AS running,
       (SELECT coalesce(sum(x.n), 0)::bigint
          FROM (SELECT r.tenant, count(*) AS n FROM taskguard.task r
                 WHERE r.status = 'ready' AND taskguard._tenant_scope() IS NULL GROUP BY r.tenant
                UNION ALL
                SELECT r.tenant, count(*) FROM taskguard.task r
                 WHERE r.status = 'ready' AND r.tenant = ANY (taskguard._tenant_scope())
                 GROUP BY r.tenant
                OFFSET 0) x
         WHERE taskguard._tenant_visible(x.tenant)) AS ready,
       dlq.depth AS dlq_depth, dlq.pending, dlq.retrying, dlq.abandoned,
       recent.abandoned_24h, recent.failures_1h,
       idem.hit_rate AS idempotency_hit_rate_pct,
       breakers.open AS open_breakers, breakers.services AS open_breaker_services,
       taskguard._schedule_health_score() AS schedule_health,
       -- NULL only when no transient record concluded (no data): 0 when every
       -- retried record was abandoned, 100 when every one recovered
       round(100.0 * coalesce(dlq.t_recovered, 0)
             / nullif(coalesce(dlq.t_recovered, 0) + coalesce(dlq.t_exhausted, 0), 0), 2)
           AS retry_success_pct
  FROM dlq, recent, idem, breakers;

-- The overview: one row.
CREATE VIEW taskguard.dashboard AS
SELECT h.running, h.ready, h.dlq_depth, h.abandoned_24h, h.failures_1h,
       h.idempotency_hit_rate_pct, h.open_breakers, h.schedule_health,
       taskguard.health_score(h.dlq_depth, h.abandoned_24h, h.open_breakers, h.schedule_health,
                              h.idempotency_hit_rate_pct, h.retry_success_pct) AS health_score,
       h.retry_success_pct, h.pending AS dlq_pending, h.retrying AS dlq_retrying,
       h.abandoned AS dlq_abandoned, now() AS generated_at
  FROM taskguard._health_inputs h;

-- ---------------------------------------------------------------- taxonomy

-- Every failure type: its default remediation, the dead-letter records of
-- that type (all, and not yet RESOLVED), their share, average confidence,
-- failed attempts in the last 24 hours (hour resolution) and ever.
CREATE VIEW taskguard.failure_distribution AS
WITH recs AS (
    SELECT c.failure_type, sum(c.records) AS records,
           sum(c.records) FILTER (WHERE c.status <> 'RESOLVED') AS open_records,
           sum(c.confidence_sum) AS confidence_sum
      FROM taskguard._dlq_counts c GROUP BY 1),
day AS (
    SELECT h.failure_type, sum(h.failures) AS failures
      FROM taskguard._failure_hours h
     WHERE h.bucket >= date_trunc('hour', now() - interval '24 hours') GROUP BY 1),
ever AS (
    SELECT t.failure_type, sum(t.failures) AS failures
      FROM taskguard._failure_totals t GROUP BY 1)
SELECT p.failure_type, p.remediation, p.alert_level, p.retryable,
       coalesce(r.records, 0)::bigint AS records,
       coalesce(r.open_records, 0)::bigint AS open_records,
       coalesce(round(100.0 * r.records / nullif(sum(r.records) OVER (), 0), 2), 0) AS pct,
       round((r.confidence_sum / nullif(r.records, 0))::numeric, 2) AS avg_confidence,
       coalesce(d.failures, 0)::bigint AS failures_24h,
       coalesce(e.failures, 0)::bigint AS failures_total
  FROM taskguard.retry_policy p
  LEFT JOIN recs r ON r.failure_type = p.failure_type
  LEFT JOIN day d ON d.failure_type = p.failure_type
  LEFT JOIN ever e ON e.failure_type = p.failure_type
 WHERE p.task_name IS NULL;

-- Failed attempts per hour and failure type, over taskguard.event_retention;
-- `time` is the hour (Grafana's time column).  It reads the rollup only (up
-- to one scheduler pass behind): an unbound caller reads the all-tenant
-- rows as they are, through the primary key, with no aggregation; a
-- tenant-bound one sums its tenants' rows (failure_hourly_tenant_idx).
CREATE VIEW taskguard.failure_trend AS
SELECT h.bucket AS time, h.failure_type, h.failures, h.retries, h.abandons
  FROM taskguard.failure_hourly h
 WHERE h.all_tenants AND taskguard._tenant_scope() IS NULL
UNION ALL
SELECT h.bucket, h.failure_type, sum(h.failures)::bigint, sum(h.retries)::bigint,
       sum(h.abandons)::bigint
  FROM taskguard.failure_hourly h
 WHERE NOT h.all_tenants AND taskguard._tenant_scope() IS NOT NULL
   AND h.tenant = ANY (taskguard._tenant_scope())   -- failure_hourly_tenant_idx
 GROUP BY 1, 2;

-- Classification confidence over time, the data of a heatmap: failed
-- attempts of the last 24 hours by hour (`time`), failure type and
-- confidence band of width 0.1 (band_low 0.9 holds 0.9 to 1.0 inclusive,
-- values outside 0..1 go to the edge bands; events recorded before 0.2.0
-- kept no confidence: band 'unknown', band_low NULL, as NaN).  Reads failure_event through its time index; the tenant filter runs
-- once per tenant, not per event.
CREATE VIEW taskguard.classification_confidence AS
SELECT date_trunc('hour', e.time) AS time, e.failure_type, b.band_low,
       b.band_low + 0.1 AS band_high,
       coalesce(to_char(b.band_low, 'FM0.0') || '-' || to_char(b.band_low + 0.1, 'FM0.0'),
                'unknown') AS band,
       count(*) AS events, round(avg(e.confidence)::numeric, 3) AS avg_confidence
  -- an unbound caller reads every event of the window; a tenant-bound one its
  -- tenants' (failure_event_tenant_idx), not the others'; one-time filters
  -- pick the branch
  FROM (SELECT f.time, f.failure_type, f.confidence FROM taskguard.failure_event f
         WHERE f.time >= date_trunc('hour', now() - interval '24 hours')
           AND taskguard._tenant_scope() IS NULL
        UNION ALL
        SELECT f.time, f.failure_type, f.confidence FROM taskguard.failure_event f
         WHERE f.tenant = ANY (taskguard._tenant_scope())
           AND f.time >= date_trunc('hour', now() - interval '24 hours')
           AND taskguard._tenant_visible(f.tenant)) e,
       LATERAL (SELECT CASE WHEN e.confidence <> 'NaN'   -- NULL and NaN: unknown
                            THEN (greatest(0, least(9, floor(e.confidence::numeric * 10)))
                                  / 10)::numeric(2, 1) END AS band_low) b
 GROUP BY 1, 2, 3;

-- ---------------------------------------------------------------- retries

-- Per failure type, over the records still kept (RESOLVED ones go after
-- taskguard.dlq_retention): records whose retries concluded — recovered (a
-- retry succeeded) or exhausted (abandoned after at least one retry) — the
-- success rate, the average retries they took against the policy's
-- max_retries, records still retrying, and retries scheduled ever.
CREATE VIEW taskguard.retry_effectiveness AS
WITH recs AS (
    SELECT c.failure_type,
           sum(c.records) FILTER (WHERE c.by_retry) AS recovered,
           sum(c.retry_sum + c.records) FILTER (WHERE c.by_retry) AS recovered_retries,
           sum(c.retried) FILTER (WHERE c.status = 'ABANDONED') AS exhausted,
           sum(c.retry_sum) FILTER (WHERE c.status = 'ABANDONED') AS exhausted_retries,
           sum(c.records) FILTER (WHERE c.status IN ('PENDING', 'RETRYING')) AS in_progress
      FROM taskguard._dlq_counts c GROUP BY 1),
ever AS (
    SELECT t.failure_type, sum(t.retries) AS retries
      FROM taskguard._failure_totals t GROUP BY 1)
SELECT p.failure_type, p.retryable, p.max_retries,
       (coalesce(r.recovered, 0) + coalesce(r.exhausted, 0))::bigint AS retried,
       coalesce(r.recovered, 0)::bigint AS recovered,
       coalesce(r.exhausted, 0)::bigint AS exhausted,
       coalesce(r.in_progress, 0)::bigint AS in_progress,
       round(100.0 * coalesce(r.recovered, 0)
             / nullif(coalesce(r.recovered, 0) + coalesce(r.exhausted, 0), 0), 2)
           AS success_rate_pct,
       round((coalesce(r.recovered_retries, 0) + coalesce(r.exhausted_retries, 0))::numeric
             / nullif(coalesce(r.recovered, 0) + coalesce(r.exhausted, 0), 0), 2) AS avg_retries,
       round(100.0 * (coalesce(r.recovered_retries, 0) + coalesce(r.exhausted_retries, 0))
             / nullif(coalesce(r.recovered, 0) + coalesce(r.exhausted, 0), 0)
             / nullif(p.max_retries, 0), 2) AS avg_retries_pct_of_max,
       coalesce(e.retries, 0)::bigint AS retries_total
  FROM taskguard.retry_policy p
  LEFT JOIN recs r ON r.failure_type = p.failure_type
  LEFT JOIN ever e ON e.failure_type = p.failure_type
 WHERE p.task_name IS NULL;

-- ---------------------------------------------------------------- alerts

-- The flow limits holding due tasks back (alerts' flow_held_back rows): the
-- tasks they hold and the oldest's wait in seconds.  A function with JIT
-- off: flow_status joins every ready and running task to every limit, so
-- with a million tasks its estimate passed jit_above_cost and PostgreSQL
-- compiled the whole alerts query for 1.3 s (bench/tenants.sh), though with
-- no flow limit the join runs no row.  Runs as its caller (row security).
CREATE FUNCTION taskguard._flow_held_back()
RETURNS TABLE (scope text, name text, waiting numeric, held_seconds numeric)
LANGUAGE sql STABLE PARALLEL RESTRICTED
SET jit = off
AS $$
SELECT s.scope, s.name, sum(s.waiting),
       round(max(extract(epoch FROM now() - s.waiting_since)), 1)
  FROM taskguard.flow_status s WHERE s.held_back GROUP BY 1, 2
$$;

-- Each alert that is on, at its most severe level breached.
CREATE VIEW taskguard.alerts AS
WITH h AS MATERIALIZED (SELECT dlq_depth, pending, retrying, abandoned, idempotency_hit_rate_pct,
                                schedule_health, open_breakers, open_breaker_services,
                                retry_success_pct FROM taskguard._health_inputs),
m (alert, value, detail) AS (
    SELECT v.alert, v.value, v.detail
      FROM h, LATERAL (VALUES
        ('dlq_depth', h.dlq_depth::numeric,
         format('%s open dead-letter records (PENDING %s, RETRYING %s, ABANDONED %s)',
                h.dlq_depth, h.pending, h.retrying, h.abandoned)),
        ('idempotency_hit_rate', h.idempotency_hit_rate_pct,
         format('%s %% of idempotency checks were duplicates', h.idempotency_hit_rate_pct)),
        ('schedule_health', h.schedule_health::numeric,
         format('schedule health score %s (see taskguard.schedule_hotspots)', h.schedule_health)),
        ('open_breakers', h.open_breakers::numeric,
         format('open circuit breakers: %s', left(h.open_breaker_services, 1000))),
        ('retry_success_rate', h.retry_success_pct,
         format('%s %% of transient failures recovered by a retry', h.retry_success_pct))
      ) v (alert, value, detail))
(SELECT DISTINCT ON (t.alert) t.alert, t.level, m.value, t.threshold, m.detail
  FROM taskguard.alert_threshold t JOIN m ON m.alert = t.alert
 WHERE t.enabled
   AND CASE t.comparison WHEN '>' THEN m.value > t.threshold ELSE m.value < t.threshold END
 ORDER BY t.alert, t.level DESC)
UNION ALL
-- Retry success rate per failure type: one alert per type, named
-- retry_success_rate:<TYPE>, at the most severe level of the
-- 'retry_success_rate' thresholds it breaches (the same thresholds as the
-- transient types' combined rate).  Only types with at least 20 concluded
-- retried records (recovered by a retry, or exhausted) are judged, so that a
-- single failure does not raise an alert (docs/failures.md "Retry analytics").
(SELECT DISTINCT ON (r.failure_type) 'retry_success_rate:' || r.failure_type, t.level,
       r.rate, t.threshold,
       format('%s: %s %% of %s concluded retried records recovered by a retry (%s exhausted; judged from 20)',
              r.failure_type, r.rate, r.concluded, r.exhausted)
  FROM (SELECT x.failure_type, x.exhausted, x.recovered + x.exhausted AS concluded,
               round(100.0 * x.recovered / nullif(x.recovered + x.exhausted, 0), 2) AS rate
          FROM (SELECT c.failure_type,
                       coalesce(sum(c.records) FILTER (WHERE c.by_retry), 0) AS recovered,
                       coalesce(sum(c.retried) FILTER (WHERE c.status = 'ABANDONED'), 0) AS exhausted
                  FROM taskguard._dlq_counts c GROUP BY 1) x) r
  JOIN taskguard.alert_threshold t ON t.alert = 'retry_success_rate'
 WHERE t.enabled AND r.concluded >= 20
   AND CASE t.comparison WHEN '>' THEN r.rate > t.threshold ELSE r.rate < t.threshold END
 ORDER BY r.failure_type, t.level DESC)
UNION ALL
-- Circuit breaker allocations refused in the last 10 minutes (the shared
-- table was full, or a tenant held its share): failures that were not
-- counted.  No threshold: any refusal is an error.
SELECT 'breaker_table_full', 'error'::taskguard.alert_level,
       (b.refused_full + b.refused_share)::numeric, 0::numeric,
       format('%s circuit breaker allocations refused since the server started (%s with the table full, %s over a tenant''s share), the last at %s; %s of %s slots in use (taskguard.max_breakers): failures of services without a breaker are not counted',
              b.refused_full + b.refused_share, b.refused_full, b.refused_share,
              b.last_refused_at, b.in_use, b.capacity)
  FROM taskguard._breaker_table() b
 WHERE b.last_refused_at > now() - interval '10 minutes'
UNION ALL
-- A session, prepared transaction or slot that has held back vacuum of
-- taskguard's tables for longer than taskguard.vacuum_blocker_age (default 5
-- minutes; 81_vacuum_blocker.sql): the oldest, in seconds.
SELECT 'vacuum_blocker', 'warning'::taskguard.alert_level, b.value, b.threshold, b.detail
  FROM taskguard._vacuum_blocker_alert() b
UNION ALL
-- A flow limit (32_flow.sql) holding due tasks back, at its cap or out of
-- tokens, for longer than the 'flow_held_back' threshold (seconds the oldest
-- has waited): one row per limit, named flow_held_back:<scope>:<name>.
(SELECT DISTINCT ON (f.scope, f.name) 'flow_held_back:' || f.scope || ':' || f.name, t.level,
       f.held_seconds, t.threshold,
       format('flow limit %s %s holds %s due tasks back, the oldest for %s s',
              f.scope, f.name, f.waiting, f.held_seconds)
  FROM taskguard._flow_held_back() f
  JOIN taskguard.alert_threshold t ON t.alert = 'flow_held_back'
 WHERE t.enabled
   AND CASE t.comparison WHEN '>' THEN f.held_seconds > t.threshold ELSE f.held_seconds < t.threshold END
 ORDER BY f.scope, f.name, t.level DESC);

-- Scheduler step 'alerts': refresh the snapshot, forget alerts that ended,
-- and NOTIFY taskguard_alerts (JSON) once for each alert that started or
-- changed level.  Returns how many were sent.
CREATE FUNCTION taskguard._check_alerts()
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    INSERT INTO taskguard.metric_snapshot AS s (name, value, computed_at)
    SELECT 'schedule_health', h.score, now() FROM taskguard.schedule_health() h
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, computed_at = EXCLUDED.computed_at;

    WITH now_on AS MATERIALIZED (SELECT * FROM taskguard.alerts),
    ended AS (
        DELETE FROM taskguard.alert_state s
         WHERE NOT EXISTS (SELECT 1 FROM now_on a WHERE a.alert = s.alert)),
    started AS (
        INSERT INTO taskguard.alert_state AS s (alert, level, value, started_at)
        SELECT a.alert, a.level, a.value, now() FROM now_on a
        ON CONFLICT (alert) DO UPDATE
           SET level = EXCLUDED.level, value = EXCLUDED.value, started_at = EXCLUDED.started_at
         WHERE s.level <> EXCLUDED.level
        RETURNING s.alert, s.started_at)
    SELECT count(pg_notify('taskguard_alerts', json_build_object(
               'alert', a.alert, 'level', a.level, 'value', a.value, 'threshold', a.threshold,
               'detail', a.detail, 'started_at', st.started_at)::text))
      INTO v_n
      FROM started st JOIN now_on a ON a.alert = st.alert;
    RETURN v_n;
END
$$;
