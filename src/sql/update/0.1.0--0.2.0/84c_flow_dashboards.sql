-- 0.2.0 flow control (issue 19), dashboards: the views flow_status and
-- flow_paused (created by 84a with 32_flow.sql), the alert flow_held_back
-- (threshold and a branch of taskguard.alerts, as 82_dashboard.sql has them)
-- and the Prometheus families taskguard_flow_* (prometheus_metrics() as
-- 84_prometheus.sql has it).

ALTER TABLE taskguard.alert_threshold DROP CONSTRAINT alert_threshold_alert_check,
    ADD CONSTRAINT alert_threshold_alert_check CHECK (alert IN ('dlq_depth', 'idempotency_hit_rate',
                   'schedule_health', 'open_breakers', 'retry_success_rate', 'flow_held_back'));
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold, builtin)
VALUES ('flow_held_back', 'warning', '>', 300, true);

-- (alerts and prometheus_metrics() gain their rows here too: 85b restates
-- both once, with every branch and family, after all the pieces that add one.)

-- Access as 90_access.sql leaves a fresh install: the views run as their
-- caller (row security on task applies); nothing for PUBLIC.
ALTER VIEW taskguard.flow_status SET (security_invoker = true);
ALTER VIEW taskguard.flow_paused SET (security_invoker = true);
REVOKE ALL ON taskguard.flow_status, taskguard.flow_paused FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._prom_flow() FROM PUBLIC;

-- Readers and admins under 0.1.0 read the new views and run what they call
-- and the read-only new functions (_access_plan gives a fresh install that).
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
            EXECUTE format('GRANT SELECT ON taskguard.flow_status, taskguard.flow_paused TO %s', v_role);
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._flow_tokens(text, text, text), '
                           'taskguard._prom_flow(), taskguard._flow_groups(text, real, text[], text), '
                           'taskguard._check_flow_args(text, text, interval, interval) TO %s', v_role);
        END IF;
    END LOOP;
END
$$;
