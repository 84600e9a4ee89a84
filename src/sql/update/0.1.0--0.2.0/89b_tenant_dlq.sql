-- 0.2.0: a tenant-bound reader finds its dead-letter records through its
-- tenant's index range, not among every tenant's (issue 24; 50_dlq.sql).
CREATE INDEX dead_letter_tenant_idx ON taskguard.dead_letter (tenant, last_failed_at, id);
-- The dead-letter queue as operators and dashboards see it (also the CSV export).
-- Row security (90_access.sql) decides what a caller sees; the three
-- branches only decide how the rows are found, so that a tenant-bound reader
-- pays for its own records, not for the other tenants' (issue 24): the
-- policy, coalesce(tenant = ANY (scope), scope IS NULL), is no index key.
-- One-time filters on the caller's scope run one branch:
--  1. an unbound caller: every record.  The branch has no WHERE of its own
--     (its filter is the outer one, pushed in as a one-time filter), so it
--     stays a member of the append and a caller's ORDER BY last_failed_at
--     DESC LIMIT n is a Merge Append over dead_letter_recent_idx, an index
--     scan of n rows; a WHERE in the branch made it a subquery planned
--     without the caller's order (a sort of every record, 90 ms at 250,000).
--  2. a caller bound to one tenant (or the first of several): its records
--     through dead_letter_tenant_idx.  Its ORDER BY keeps the rows in the
--     caller's usual order for the Merge Append.
--  3. the further tenants of a caller bound to several, by the same index.
-- The scope is sorted and free of duplicates (src/tenant.c), so no record
-- comes out of two branches.
CREATE OR REPLACE VIEW taskguard.dlq WITH (security_invoker = true) AS
SELECT d.id, d.task_id, d.task_ref, d.task_name, d.args, d.queue, d.tenant, d.service,
       d.status, d.failure_type, d.confidence, d.remediation, d.error_type, d.message,
       d.context, d.retry_count, d.max_retries, d.priority, d.first_failed_at,
       d.last_failed_at, d.next_retry_at, d.resolved_at, d.resolution, d.alert_level, d.rule
  FROM (SELECT 1 AS branch, x.* FROM taskguard.dead_letter x
        UNION ALL
        (SELECT 2, x.* FROM taskguard.dead_letter x
          WHERE taskguard._tenant_scope() IS NOT NULL
            AND x.tenant = (taskguard._tenant_scope())[1]
          ORDER BY x.last_failed_at DESC, x.id DESC)
        UNION ALL
        SELECT 3, x.* FROM taskguard.dead_letter x
         WHERE cardinality(taskguard._tenant_scope()) > 1
           AND x.tenant = ANY ((taskguard._tenant_scope())[2:])) d
 WHERE d.branch > 1 OR taskguard._tenant_scope() IS NULL;
