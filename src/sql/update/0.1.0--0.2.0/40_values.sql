-- 40_values.sql — issue 16, classes 4, 5 and 6: values that must be refused,
-- rules whose match time can explode, and a breaker table no tenant can fill
-- silently.  Mirrors src/sql/00_types.sql, 10_priority.sql, 15_classify.sql,
-- 40_breaker.sql, 56_export.sql, 82_dashboard.sql (alerts) and
-- 84_prometheus.sql (prometheus_metrics); the bodies are copies of those.

-- A negative interval setting (a placeholder set before the library loaded,
-- which its check did not see) means the default.
CREATE OR REPLACE FUNCTION taskguard._setting_interval(name text, fallback interval)
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN nullif(current_setting(name, true), '')::interval >= interval '0'
            THEN nullif(current_setting(name, true), '')::interval ELSE fallback END
$$;

-- Tier bonuses: finite, in [-4, 4]; SLAs not negative.  Rows stored by 0.1.0
-- that break this are made sane first (NaN sorted first in claim(): it
-- becomes 0; ±Infinity and other out-of-range bonuses become ±4; a negative
-- SLA becomes 0), so that the update never fails on old data.
UPDATE taskguard.customer_tier
   SET bonus = CASE WHEN bonus = 'NaN'::real THEN 0 ELSE greatest(-4, least(4, bonus)) END
 WHERE NOT (bonus BETWEEN -4 AND 4);
UPDATE taskguard.customer_tier SET sla = interval '0' WHERE sla < interval '0';
ALTER TABLE taskguard.customer_tier
    ADD CONSTRAINT customer_tier_bonus_range CHECK (bonus BETWEEN -4 AND 4),
    ADD CONSTRAINT customer_tier_sla_not_negative CHECK (sla >= interval '0');

-- Classification rules: a message_pattern whose match time can explode is
-- refused when written.  Rules stored by 0.1.0 are not re-checked here (the
-- update must not fail on them): the classify cache skips such a rule with a
-- WARNING naming it.
CREATE FUNCTION taskguard._check_message_pattern(pattern text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_check_message_pattern'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION taskguard._classification_rule_check()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM taskguard._check_message_pattern(NEW.message_pattern);
    RETURN NEW;
END
$$;

CREATE TRIGGER classification_rule_check
    BEFORE INSERT OR UPDATE OF message_pattern ON taskguard.classification_rule
    FOR EACH ROW EXECUTE FUNCTION taskguard._classification_rule_check();

-- The cluster-wide breaker table: capacity, use, refusals.
CREATE FUNCTION taskguard._breaker_table(
    OUT capacity int, OUT in_use int, OUT tenant_limit int, OUT refused_full bigint,
    OUT refused_share bigint, OUT last_refused_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'taskguard_breaker_table'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1;

-- alerts gains the row breaker_table_full.
CREATE OR REPLACE VIEW taskguard.alerts WITH (security_invoker = true) AS
WITH h AS MATERIALIZED (SELECT * FROM taskguard._health_inputs),
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
-- Circuit breaker allocations refused in the last 10 minutes (the shared
-- table was full, or a tenant held its share): failures that were not
-- counted.  No threshold: any refusal is an error.
SELECT 'breaker_table_full', 'error'::taskguard.alert_level,
       (b.refused_full + b.refused_share)::numeric, 0::numeric,
       format('%s circuit breaker allocations refused since the server started (%s with the table full, %s over a tenant''s share), the last at %s; %s of %s slots in use (taskguard.max_breakers): failures of services without a breaker are not counted',
              b.refused_full + b.refused_share, b.refused_full, b.refused_share,
              b.last_refused_at, b.in_use, b.capacity)
  FROM taskguard._breaker_table() b
 WHERE b.last_refused_at > now() - interval '10 minutes';

-- prometheus_metrics gains the breaker table counters.
CREATE OR REPLACE FUNCTION taskguard.prometheus_metrics()
RETURNS text
LANGUAGE sql STABLE PARALLEL RESTRICTED
AS $$
WITH totals AS MATERIALIZED (
    SELECT t.task_name, t.failure_type, t.priority, t.failures, t.retries, t.retry_sum,
           t.abandoned
      FROM taskguard._failure_totals t),
h AS MATERIALIZED (SELECT * FROM taskguard._health_inputs),
idem AS MATERIALIZED (
    SELECT coalesce(sum(i.checks), 0) AS checks, coalesce(sum(i.duplicates), 0) AS duplicates
      FROM taskguard.idempotency_stats i)
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
  || taskguard._prom_family('taskguard_breaker_table_full_total', 'counter',
      'Circuit breaker allocations refused because taskguard.max_breakers was full (since the server started): failures not counted.',
      (SELECT format(E'taskguard_breaker_table_full_total %s\n', b.refused_full)
         FROM taskguard._breaker_table() b))
  || taskguard._prom_family('taskguard_breaker_tenant_share_refused_total', 'counter',
      'Circuit breaker allocations refused because the tenant held its taskguard.breaker_tenant_share (since the server started).',
      (SELECT format(E'taskguard_breaker_tenant_share_refused_total %s\n', b.refused_share)
         FROM taskguard._breaker_table() b))
  || taskguard._prom_family('taskguard_breaker_slots', 'gauge',
      'Circuit breaker slots of the cluster-wide table: in use and capacity (taskguard.max_breakers).',
      (SELECT format(E'taskguard_breaker_slots{slots="used"} %s\ntaskguard_breaker_slots{slots="max"} %s\n',
                     b.in_use, b.capacity)
         FROM taskguard._breaker_table() b))
  || taskguard._prom_family('taskguard_tasks', 'gauge', 'Tasks by status (ready, running).',
      format(E'taskguard_tasks{status="ready"} %s\ntaskguard_tasks{status="running"} %s\n',
             h.ready, h.running))
  || taskguard._prom_family('taskguard_failures_last_hour', 'gauge',
      'Failed attempts in the last hour.', format(E'taskguard_failures_last_hour %s\n', h.failures_1h))
  || taskguard._prom_family('taskguard_health_score', 'gauge',
      'The dashboard health score, 0-100.',
      format(E'taskguard_health_score %s\n',
             taskguard.health_score(h.dlq_depth, h.abandoned_24h, h.open_breakers,
                                    h.schedule_health, h.idempotency_hit_rate_pct,
                                    h.retry_success_pct)))
  || taskguard._prom_family('taskguard_alert', 'gauge',
      'Alerts that are on (1), by alert and level.',
      (SELECT string_agg(format(E'taskguard_alert{alert=%s,level=%s} 1\n',
                                taskguard._prom_label(a.alert), taskguard._prom_label(a.level::text)),
                         '' ORDER BY a.alert)
         FROM taskguard.alerts a))
FROM h, idem
$$;

-- Exporting the DLQ to spreadsheets (56_export.sql).
CREATE FUNCTION taskguard.dlq_csv_safe(value text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
SELECT CASE WHEN left(value, 1) IN ('=', '+', '-', '@', E'\t', E'\r')
            THEN '''' || value ELSE value END
$$;

-- taskguard.dlq with every free-text column made inert, for
--   COPY (SELECT * FROM taskguard.dlq_export) TO STDOUT WITH CSV HEADER
-- Runs as the caller, so a tenant-mapped role exports only its tenants.
CREATE VIEW taskguard.dlq_export WITH (security_invoker = true) AS
SELECT d.id, d.task_id, taskguard.dlq_csv_safe(d.task_ref) AS task_ref,
       taskguard.dlq_csv_safe(d.task_name) AS task_name,
       taskguard.dlq_csv_safe(d.args::text) AS args, taskguard.dlq_csv_safe(d.queue) AS queue,
       taskguard.dlq_csv_safe(d.tenant) AS tenant, taskguard.dlq_csv_safe(d.service) AS service,
       d.status, d.failure_type, d.confidence, d.remediation,
       taskguard.dlq_csv_safe(d.error_type) AS error_type,
       taskguard.dlq_csv_safe(d.message) AS message,
       taskguard.dlq_csv_safe(d.context::text) AS context, d.retry_count, d.max_retries,
       d.priority, d.first_failed_at, d.last_failed_at, d.next_retry_at, d.resolved_at,
       taskguard.dlq_csv_safe(d.resolution) AS resolution, d.alert_level,
       taskguard.dlq_csv_safe(d.rule) AS rule
  FROM taskguard.dlq d;

-- Nothing for PUBLIC, as 90_access.sql leaves a fresh install.
REVOKE ALL ON FUNCTION taskguard._check_message_pattern(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._classification_rule_check() FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._breaker_table() FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard.dlq_csv_safe(text) FROM PUBLIC;
REVOKE ALL ON TABLE taskguard.dlq_export FROM PUBLIC;

-- Roles granted a level under 0.1.0 get the new objects their level gives
-- (what grant_access would give them now), so nothing they did stops working:
-- every level the IMMUTABLE helpers; readers and admins (who read alerts)
-- _breaker_table() and dlq_export; admins (who write rules) the rule trigger.
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
        EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._check_message_pattern(text), '
                       'taskguard.dlq_csv_safe(text) TO %s', v_role);
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.alerts', 'SELECT') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._breaker_table() TO %s', v_role);
            EXECUTE format('GRANT SELECT ON taskguard.dlq_export TO %s', v_role);
        END IF;
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.classification_rule', 'INSERT') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._classification_rule_check() TO %s', v_role);
        END IF;
    END LOOP;
END
$$;
