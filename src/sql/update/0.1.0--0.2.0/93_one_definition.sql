-- 0.2.0: one definition of each thing (issue 21).
-- taskguard.database is a superuser-only setting: scheduler_status shows it
-- only to a caller who may read settings (NULL for the others, not an error).
CREATE OR REPLACE VIEW taskguard.scheduler_status AS
SELECT s.pid, s.launcher_pid,
       CASE WHEN pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE')
            THEN pg_catalog.current_setting('taskguard.database', true) END AS database,
       s.started_at, s.last_pass_at, s.last_pass_ms, s.passes,
       s.last_pass_counts, s.total_counts, s.last_error
  FROM taskguard._scheduler_status() s;
ALTER VIEW taskguard.scheduler_status SET (security_invoker = true);
