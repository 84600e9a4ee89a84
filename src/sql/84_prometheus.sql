-- 84_prometheus.sql — taskguard.prometheus_metrics(): the dashboards in the
-- Prometheus text exposition format (version 0.0.4).  Counters come from the
-- monotonic totals (taskguard.failure_total, idempotency_counter), never from
-- counts of rows that get pruned.  SECURITY INVOKER: a tenant-mapped role
-- gets its tenant's numbers.  dashboards/postgres_exporter/queries.yaml
-- publishes the same families under the same names (test/t/metrics_exporter.sh
-- compares the two): a name changed here changes there.

-- A label value escaped for the exposition format (\ " and newline).
CREATE FUNCTION taskguard._prom_label(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT '"' || replace(replace(replace(coalesce(value, ''), E'\\', E'\\\\'), '"', E'\\"'),
                      E'\n', E'\\n') || '"'
$$;

-- A sample value: integers as such, others with up to 6 decimals.
CREATE FUNCTION taskguard._prom_value(value numeric)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN value IS NULL THEN 'NaN'
            WHEN value = trunc(value) THEN trunc(value)::text
            ELSE round(value, 6)::text END
$$;

-- One metric family: HELP and TYPE lines, then its samples (may be none).
CREATE FUNCTION taskguard._prom_family(name text, type text, help text, samples text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT format(E'# HELP %s %s\n# TYPE %s %s\n', name,
              replace(replace(help, E'\\', E'\\\\'), E'\n', E'\\n'), name, type)
       || coalesce(samples, '')
$$;

-- Per-task retry policy changes, by hand (retry_apply_advice) and automatic.
-- PL/pgSQL: its table comes later in the install script (86_retry_advice.sql),
-- and a SQL function's body is checked when it is created.
CREATE FUNCTION taskguard._prom_retry_policy_changes(OUT changes_manual bigint,
    OUT changes_auto bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    SELECT count(*) FILTER (WHERE NOT c.auto), count(*) FILTER (WHERE c.auto)
      INTO changes_manual, changes_auto
      FROM taskguard.retry_policy_change c;
END
$$;

CREATE FUNCTION taskguard.prometheus_metrics()
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
