-- 56_export.sql — exporting the dead-letter queue to spreadsheets.  Messages,
-- arguments and task names come from workers and from the failing services
-- themselves, so a CSV export may carry formulas (=HYPERLINK(…), +cmd|…,
-- @SUM(…)) that a spreadsheet runs when the file is opened (CSV injection).
-- docs/failures.md "Exporting the DLQ" says which export to use.

-- A text made inert for a spreadsheet cell: a value that starts with =, +, -,
-- @, a tab or a carriage return gets a leading single quote (the OWASP rule);
-- others are returned unchanged.
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
