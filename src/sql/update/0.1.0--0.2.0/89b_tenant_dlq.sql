-- 0.2.0: a tenant-bound reader finds its dead-letter records through its
-- tenant's index range, not among every tenant's (issue 24; 50_dlq.sql).
CREATE INDEX dead_letter_tenant_idx ON taskguard.dead_letter (tenant, last_failed_at, id);
-- The dead-letter queue as operators and dashboards see it (also the CSV export).
-- Row security (90_access.sql) decides what a caller sees; the two branches
-- only decide how the rows are found, so that a tenant-bound reader pays for
-- its own records, not for the other tenants' (issue 24): the policy,
-- coalesce(tenant = ANY (scope), scope IS NULL), is no index key.  One-time
-- filters on the caller's scope run one branch:
--  1. an unbound caller: every record.  The branch has no WHERE of its own
--     (its filter is the outer one, pushed in as a one-time filter), so it
--     stays a member of the append and a caller's ORDER BY last_failed_at
--     DESC LIMIT n is a Merge Append over dead_letter_recent_idx, an index
--     scan of n rows.  A WHERE in the branch made it a subquery planned
--     without the caller's order: a sort of every record (90 ms at 250,000).
--  2. a tenant-bound caller: its tenants' records through
--     dead_letter_tenant_idx (planned without the caller's order, so a page
--     sorts the caller's own records).
CREATE OR REPLACE VIEW taskguard.dlq WITH (security_invoker = true) AS
SELECT d.id, d.task_id, d.task_ref, d.task_name, d.args, d.queue, d.tenant, d.service,
       d.status, d.failure_type, d.confidence, d.remediation, d.error_type, d.message,
       d.context, d.retry_count, d.max_retries, d.priority, d.first_failed_at,
       d.last_failed_at, d.next_retry_at, d.resolved_at, d.resolution, d.alert_level, d.rule
  FROM (SELECT 1 AS branch, x.* FROM taskguard.dead_letter x
        UNION ALL
        SELECT 2, x.* FROM taskguard.dead_letter x
         WHERE taskguard._tenant_scope() IS NOT NULL
           AND x.tenant = ANY (taskguard._tenant_scope())) d
 WHERE d.branch = 2 OR taskguard._tenant_scope() IS NULL;


-- The rollup readers (80_metrics.sql, failure_trend of 82_dashboard.sql): a
-- tenant-bound reader reads its tenants' rollup rows by key, not every
-- tenant's through a join to _visible_tenants; and it reads them even when
-- its tenants are every tenant there is (the all_tenants rows, which row
-- security hides from it, served it then: no failures at all).  Row security
-- still filters every branch (the views run as their caller, as
-- 90_access.sql leaves them).
CREATE INDEX failure_hourly_tenant_idx ON taskguard.failure_hourly (tenant, bucket) WHERE NOT all_tenants;
CREATE OR REPLACE VIEW taskguard._dlq_counts WITH (security_invoker = true) AS
SELECT s.tenant, s.status, s.failure_type, s.by_retry,
       sum(s.records)::bigint AS records, sum(s.retried)::bigint AS retried,
       sum(s.retry_sum)::bigint AS retry_sum, sum(s.confidence_sum) AS confidence_sum
  FROM (SELECT r.tenant, r.status, r.failure_type, r.by_retry, r.records, r.retried,
               r.retry_sum, r.confidence_sum
          FROM taskguard.dlq_rollup r WHERE taskguard._tenant_scope() IS NULL
        UNION ALL
        SELECT r.tenant, r.status, r.failure_type, r.by_retry, r.records, r.retried,
               r.retry_sum, r.confidence_sum
          FROM taskguard.dlq_rollup r WHERE r.tenant = ANY (taskguard._tenant_scope())
        UNION ALL
        SELECT d.tenant, d.status, d.failure_type, d.by_retry, d.records, d.retried,
               d.retry_sum, d.confidence_sum
          FROM taskguard.dlq_delta d
         WHERE taskguard._tenant_scope() IS NULL OR d.tenant = ANY (taskguard._tenant_scope())) s
 GROUP BY 1, 2, 3, 4
HAVING sum(s.records) <> 0;

CREATE OR REPLACE VIEW taskguard._failure_totals WITH (security_invoker = true) AS
SELECT s.task_name, s.failure_type, s.priority,
       sum(s.failures)::bigint AS failures, sum(s.retries)::bigint AS retries,
       sum(s.retry_sum)::bigint AS retry_sum, sum(s.abandons)::bigint AS abandons,
       sum(s.abandoned)::bigint AS abandoned
  FROM (SELECT t.task_name, t.failure_type, t.priority, t.failures, t.retries,
               t.retry_sum, t.abandons, t.abandoned
          FROM taskguard.failure_total t
         WHERE t.all_tenants AND taskguard._tenant_scope() IS NULL
        UNION ALL
        SELECT t.task_name, t.failure_type, t.priority, t.failures, t.retries,
               t.retry_sum, t.abandons, t.abandoned
          FROM taskguard.failure_total t
         WHERE NOT t.all_tenants AND taskguard._tenant_scope() IS NOT NULL
           AND t.tenant = ANY (taskguard._tenant_scope())
        UNION ALL
        SELECT d.task_name, d.failure_type, d.priority, d.failures, d.retries,
               d.retry_sum, d.abandons, d.abandoned
          FROM taskguard.event_delta d
         WHERE taskguard._tenant_scope() IS NULL OR d.tenant = ANY (taskguard._tenant_scope())) s
 GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW taskguard._failure_hours WITH (security_invoker = true) AS
SELECT s.bucket, s.failure_type,
       sum(s.failures)::bigint AS failures, sum(s.retries)::bigint AS retries,
       sum(s.abandons)::bigint AS abandons
  FROM (SELECT h.bucket, h.failure_type, h.failures, h.retries, h.abandons
          FROM taskguard.failure_hourly h
         WHERE h.all_tenants AND taskguard._tenant_scope() IS NULL
        UNION ALL
        SELECT h.bucket, h.failure_type, h.failures, h.retries, h.abandons
          FROM taskguard.failure_hourly h
         WHERE NOT h.all_tenants AND taskguard._tenant_scope() IS NOT NULL
           AND h.tenant = ANY (taskguard._tenant_scope())
        UNION ALL
        SELECT date_trunc('hour', d.minute), d.failure_type, d.failures, d.retries, d.abandons
          FROM taskguard.event_delta d
         WHERE d.failures > 0
           AND (taskguard._tenant_scope() IS NULL OR d.tenant = ANY (taskguard._tenant_scope()))) s
 GROUP BY 1, 2;

CREATE OR REPLACE VIEW taskguard.failure_trend WITH (security_invoker = true) AS
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
