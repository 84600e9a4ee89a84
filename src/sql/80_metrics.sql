-- 80_metrics.sql — dashboards, alerts and metrics (SPEC §11).  Placeholder.

-- Scheduler step: NOTIFY taskguard_alerts for alerts that just started.
CREATE FUNCTION taskguard._check_alerts()
RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 0 $$;
