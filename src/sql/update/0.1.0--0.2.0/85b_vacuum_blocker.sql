-- 85_vacuum_blocker.sql — who holds back vacuum (issue 18): the objects of
-- src/sql/81_vacuum_blocker.sql (85a, whole), then alerts and
-- prometheus_metrics() as 0.2.0 has them (copies of 82_dashboard.sql and
-- 84_prometheus.sql): the one restatement of both for the rows and families
-- that 80d (retry analytics), 82 (no JIT, no task counts), 84 (flow control)
-- and this piece add; and access as 90_access.sql gives it.

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

-- alerts, with every 0.2.0 branch (per-type retry rates, vacuum_blocker,
-- flow_held_back).
CREATE OR REPLACE VIEW taskguard.alerts WITH (security_invoker = true) AS
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

CREATE OR REPLACE FUNCTION taskguard.prometheus_metrics()
RETURNS text
LANGUAGE sql STABLE PARALLEL RESTRICTED
-- The plan's estimate includes counting every ready task (the branch an
-- unbound caller runs); above jit_above_cost PostgreSQL then compiled it on
-- every scrape: ~200 ms, 35x a tenant-bound reader's whole answer.
SET jit = off
AS $$
WITH totals AS MATERIALIZED (
    SELECT t.task_name, t.failure_type, t.priority, t.failures, t.retries, t.retry_sum,
           t.abandoned
      FROM taskguard._failure_totals t),
h AS MATERIALIZED (SELECT * FROM taskguard._health_inputs),
idem AS MATERIALIZED (
    SELECT coalesce(sum(i.checks), 0) AS checks, coalesce(sum(i.duplicates), 0) AS duplicates
      FROM taskguard.idempotency_stats i),
bt AS MATERIALIZED (SELECT * FROM taskguard._breaker_table()),
-- the oldest holder of vacuum for a second or more (shorter ones are any busy
-- database's normal traffic), its labels, whole seconds and xmin age
vb AS MATERIALIZED (
    SELECT format('holder=%s,pid=%s,role=%s,application_name=%s,state=%s',
                  taskguard._prom_label(x.holder), taskguard._prom_label(x.pid::text),
                  taskguard._prom_label(x.role), taskguard._prom_label(x.application_name),
                  taskguard._prom_label(x.state)) AS labels,
           floor(extract(epoch FROM x.age))::bigint AS age_s, x.xmin_age
      FROM taskguard._vacuum_holders() x
     WHERE x.age >= interval '1 second'
     ORDER BY x.age DESC LIMIT 1)
SELECT
  taskguard._prom_family('task_failure_total', 'counter',
      'Failed task attempts, by failure type and task name.',
      (SELECT string_agg(format(E'task_failure_total{failure_type=%s,task_name=%s} %s\n',
                                taskguard._prom_label(x.failure_type::text),
                                taskguard._prom_label(x.task_name), x.n),
                         '' ORDER BY x.failure_type, x.task_name)
         FROM (SELECT t.failure_type, t.task_name, sum(t.failures) AS n
                 FROM totals t GROUP BY 1, 2 HAVING sum(t.failures) > 0) x))
  || taskguard._prom_family('task_retry', 'summary',
      'Retries scheduled after a failure, by task name and priority: _count is the number of retries, _sum the sum of their retry numbers (1 = first retry).',
      (SELECT string_agg(format(E'task_retry_sum{task_name=%1$s,priority=%2$s} %3$s\ntask_retry_count{task_name=%1$s,priority=%2$s} %4$s\n',
                                taskguard._prom_label(x.task_name),
                                taskguard._prom_label(x.priority::text), x.s, x.n),
                         '' ORDER BY x.task_name, x.priority)
         FROM (SELECT t.task_name, t.priority, sum(t.retries) AS n, sum(t.retry_sum) AS s
                 FROM totals t GROUP BY 1, 2 HAVING sum(t.retries) > 0) x))
  || taskguard._prom_family('task_abandoned_total', 'counter',
      'Dead-letter records that became ABANDONED, by failure type and task name.',
      (SELECT string_agg(format(E'task_abandoned_total{failure_type=%s,task_name=%s} %s\n',
                                taskguard._prom_label(x.failure_type::text),
                                taskguard._prom_label(x.task_name), x.n),
                         '' ORDER BY x.failure_type, x.task_name)
         FROM (SELECT t.failure_type, t.task_name, sum(t.abandoned) AS n
                 FROM totals t GROUP BY 1, 2 HAVING sum(t.abandoned) > 0) x))
  || taskguard._prom_family('dlq_queue_depth', 'gauge',
      'Open dead-letter records (PENDING, RETRYING or ABANDONED).',
      format(E'dlq_queue_depth %s\n', h.dlq_depth))
  || taskguard._prom_family('dlq_records', 'gauge',
      'Dead-letter records kept, by status.',
      (SELECT string_agg(format(E'dlq_records{status=%s} %s\n',
                                taskguard._prom_label(s::text),
                                coalesce((SELECT sum(c.records) FROM taskguard._dlq_counts c
                                           WHERE c.status = s), 0)),
                         '' ORDER BY s)
         FROM unnest(enum_range(NULL::taskguard.dlq_status)) s))
  || taskguard._prom_family('idempotency_hit_rate_percent', 'gauge',
      'Share of idempotency checks that found a duplicate, in percent.',
      format(E'idempotency_hit_rate_percent %s\n', taskguard._prom_value(h.idempotency_hit_rate_pct)))
  || taskguard._prom_family('idempotency_checks_total', 'counter',
      'Idempotency checks made.', format(E'idempotency_checks_total %s\n', idem.checks))
  || taskguard._prom_family('idempotency_duplicates_total', 'counter',
      'Idempotency checks that found a duplicate.',
      format(E'idempotency_duplicates_total %s\n', idem.duplicates))
  || taskguard._prom_family('schedule_health_score', 'gauge',
      'Schedule health score, 0-100 (100 = no hotspots, duplicates, overlaps or invalid schedules).',
      format(E'schedule_health_score %s\n', coalesce(h.schedule_health, 100)))
  || taskguard._prom_family('circuit_breaker_state', 'gauge',
      'Circuit breaker state by service: 0 closed, 1 half-open, 2 open.',
      (SELECT string_agg(format(E'circuit_breaker_state{service_name=%s} %s\n',
                                taskguard._prom_label(b.service),
                                CASE b.state WHEN 'open' THEN 2 WHEN 'half_open' THEN 1 ELSE 0 END),
                         '' ORDER BY b.service)
         FROM taskguard.breaker_status b))
  || taskguard._prom_family('circuit_breaker_failures', 'gauge',
      'Failures counted in the breaker''s current window, by service.',
      (SELECT string_agg(format(E'circuit_breaker_failures{service_name=%s} %s\n',
                                taskguard._prom_label(b.service), coalesce(b.failures, 0)),
                         '' ORDER BY b.service)
         FROM taskguard.breaker_status b))
  || taskguard._prom_family('taskguard_breaker_table_full_total', 'counter',
      'Circuit breaker allocations refused because taskguard.max_breakers was full (since the server started): failures not counted.',
      (SELECT format(E'taskguard_breaker_table_full_total %s\n', b.refused_full) FROM bt b))
  || taskguard._prom_family('taskguard_breaker_tenant_share_refused_total', 'counter',
      'Circuit breaker allocations refused because the tenant held its taskguard.breaker_tenant_share (since the server started).',
      (SELECT format(E'taskguard_breaker_tenant_share_refused_total %s\n', b.refused_share) FROM bt b))
  || taskguard._prom_family('taskguard_breaker_slots_used', 'gauge',
      'Circuit breaker slots of the cluster-wide table in use.',
      (SELECT format(E'taskguard_breaker_slots_used %s\n', b.in_use) FROM bt b))
  || taskguard._prom_family('taskguard_breaker_slots_max', 'gauge',
      'Circuit breaker slots of the cluster-wide table (taskguard.max_breakers).',
      (SELECT format(E'taskguard_breaker_slots_max %s\n', b.capacity) FROM bt b))
  || taskguard._prom_family('taskguard_tasks', 'gauge', 'Tasks by status (ready, running).',
      format(E'taskguard_tasks{status="ready"} %s\ntaskguard_tasks{status="running"} %s\n',
             h.ready, h.running))
  || taskguard._prom_family('taskguard_failures_last_hour', 'gauge',
      'Failed attempts in the last hour.', format(E'taskguard_failures_last_hour %s\n', h.failures_1h))
  || taskguard._prom_family('taskguard_abandoned_last_day', 'gauge',
      'Dead-letter records abandoned in the last 24 hours.',
      format(E'taskguard_abandoned_last_day %s\n', h.abandoned_24h))
  || taskguard._prom_family('taskguard_transient_retry_success_percent', 'gauge',
      'Share of concluded retried records of transient failure types that a retry recovered, in percent (NaN: none concluded).',
      format(E'taskguard_transient_retry_success_percent %s\n', taskguard._prom_value(h.retry_success_pct)))
  || taskguard._prom_family('taskguard_health_score', 'gauge',
      'The dashboard health score, 0-100.',
      format(E'taskguard_health_score %s\n',
             taskguard.health_score(h.dlq_depth, h.abandoned_24h, h.open_breakers,
                                    h.schedule_health, h.idempotency_hit_rate_pct,
                                    h.retry_success_pct)))
  || taskguard._prom_family('taskguard_retry_success_rate_percent', 'gauge',
      'Share of concluded retried records that a retry recovered, by retryable failure type, in percent (NaN: none concluded).',
      (SELECT string_agg(format(E'taskguard_retry_success_rate_percent{failure_type=%s} %s\n',
                                taskguard._prom_label(r.failure_type::text),
                                taskguard._prom_value(r.success_rate_pct)),
                         '' ORDER BY r.failure_type)
         FROM taskguard.retry_effectiveness r WHERE r.retryable))
  || taskguard._prom_family('taskguard_retry_in_progress', 'gauge',
      'Dead-letter records still being retried, by retryable failure type.',
      (SELECT string_agg(format(E'taskguard_retry_in_progress{failure_type=%s} %s\n',
                                taskguard._prom_label(r.failure_type::text), r.in_progress),
                         '' ORDER BY r.failure_type)
         FROM taskguard.retry_effectiveness r WHERE r.retryable))
  || taskguard._prom_family('taskguard_alert_active', 'gauge',
      'Alerts that are on (1), by alert and level.',
      (SELECT string_agg(format(E'taskguard_alert_active{alert=%s,level=%s} 1\n',
                                taskguard._prom_label(a.alert), taskguard._prom_label(a.level::text)),
                         '' ORDER BY a.alert)
         FROM taskguard.alerts a))
  || taskguard._prom_family('taskguard_classified_failures_last_day', 'gauge',
      'Failed attempts of the last 24 hours by failure type and classification confidence band (0.9-1.0, ..., unknown).',
      (SELECT string_agg(format(E'taskguard_classified_failures_last_day{failure_type=%s,band=%s} %s\n',
                                taskguard._prom_label(x.failure_type::text),
                                taskguard._prom_label(x.band), x.n),
                         '' ORDER BY x.failure_type, x.band)
         FROM (SELECT c.failure_type, c.band, sum(c.events) AS n
                 FROM taskguard.classification_confidence c GROUP BY 1, 2) x))
  || taskguard._prom_family('taskguard_retry_policy_changes_total', 'counter',
      'Per-task retry policy changes recorded in taskguard.retry_policy_change: by retry_apply_advice (auto="false") or auto-tuning (auto="true").',
      (SELECT format(E'taskguard_retry_policy_changes_total{auto="false"} %s\ntaskguard_retry_policy_changes_total{auto="true"} %s\n',
                     c.changes_manual, c.changes_auto)
         FROM taskguard._prom_retry_policy_changes() c))
  || taskguard._prom_family('taskguard_vacuum_blocker_age_seconds', 'gauge',
      'How long the oldest session or prepared transaction has held back vacuum of taskguard''s tables, in whole seconds, with who it is (no sample while none has held for a second; taskguard.vacuum_blockers).',
      (SELECT format(E'taskguard_vacuum_blocker_age_seconds{%s} %s\n', v.labels, v.age_s) FROM vb v))
  || taskguard._prom_family('taskguard_vacuum_blocker_xmin_age', 'gauge',
      'Age in transactions of the xmin that the oldest holder (taskguard_vacuum_blocker_age_seconds) holds.',
      (SELECT format(E'taskguard_vacuum_blocker_xmin_age{%s} %s\n', v.labels, v.xmin_age) FROM vb v))
  || taskguard._prom_flow()
FROM h, idem
$$;

-- Access as 90_access.sql leaves a fresh install: the view runs as its
-- caller (its holders come from the SECURITY DEFINER _vacuum_holders, which
-- returns no query text); nothing for PUBLIC.
ALTER VIEW taskguard.vacuum_blockers SET (security_invoker = true);
REVOKE ALL ON taskguard.vacuum_blockers FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._vacuum_holders(), taskguard._vacuum_blocker_alert() FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._flow_held_back() FROM PUBLIC;

-- Roles granted a level under 0.1.0 get what their level gives of the new
-- objects (_access_plan): readers and admins read the view and run its
-- read-only functions (the level is told by a privilege only they have).
DO $$
DECLARE
    v_role regrole;
BEGIN
    FOR v_role IN
        SELECT DISTINCT a.grantee::regrole
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname = 'taskguard' AND a.privilege_type = 'USAGE'
           AND a.grantee <> n.nspowner AND a.grantee <> 0
    LOOP
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.dlq', 'SELECT') THEN
            EXECUTE format('GRANT SELECT ON taskguard.vacuum_blockers TO %s', v_role);
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._vacuum_holders(), taskguard._vacuum_blocker_alert(),
                                  taskguard._flow_held_back() TO %s',
                           v_role);
        END IF;
    END LOOP;
END
$$;
