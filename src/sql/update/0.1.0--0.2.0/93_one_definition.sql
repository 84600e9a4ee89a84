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

-- NULL arguments are refused with one phrasing, argument "x" must not be NULL (22004).
CREATE OR REPLACE FUNCTION taskguard.idempotency_release(key text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_live boolean;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'argument "key" must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF key = '' THEN
        RAISE EXCEPTION 'key must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM taskguard.idempotency_record r
     WHERE r.tenant = coalesce(taskguard._effective_tenant(NULL), '')
       AND r.key_digest = taskguard._idempotency_digest(idempotency_release.key)
    RETURNING r.expires_at > now() INTO v_live;
    RETURN coalesce(v_live, false);
END
$$;
CREATE OR REPLACE FUNCTION taskguard.dlq_purge(older_than interval DEFAULT '30 days',
    statuses taskguard.dlq_status[] DEFAULT '{RESOLVED}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval, got %', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF statuses IS NULL THEN
        RAISE EXCEPTION 'argument "statuses" must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    WITH gone AS (
        DELETE FROM taskguard.dead_letter d
         WHERE d.status = ANY(statuses)
           AND coalesce(d.resolved_at, d.last_failed_at) < now() - older_than
        RETURNING d.id, d.task_id),
    unlinked AS (
        UPDATE taskguard.task t
           SET failure_id = NULL,
               status = CASE WHEN t.status = 'failed' THEN 'cancelled' ELSE t.status END,
               finished_at = CASE WHEN t.status = 'failed' THEN now() ELSE t.finished_at END
          FROM gone WHERE t.id = gone.task_id AND t.failure_id = gone.id
        RETURNING 1)
    SELECT count(*) INTO v_n FROM gone;
    RETURN v_n;
END
$$;

-- One trigger function for every table a backend caches (TgConfigCache in
-- src/taskguard.c); the four 0.1.0 functions that did the same go.  Their C
-- symbols stay in the library, so a 0.1.0 schema keeps working until updated.
CREATE FUNCTION taskguard._config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_config_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION taskguard._config_changed() FROM PUBLIC;
DO $$
DECLARE
    v_trigger text;
    v_table   text;
BEGIN
    FOR v_trigger, v_table IN
        VALUES ('tenant_member_changed', 'tenant_member'),
               ('tenant_bound_role_changed', 'tenant_bound_role'),
               ('priority_config_changed', 'task_config'),
               ('priority_config_changed', 'customer_tier'),
               ('priority_config_changed', 'priority_queue'),
               ('classification_rule_invalidate', 'classification_rule'),
               ('retry_policy_invalidate', 'retry_policy'),
               ('breaker_config_changed', 'breaker_config')
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE'
                       ' ON taskguard.%I FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed()',
                       v_trigger, v_table);
    END LOOP;
END
$$;
DROP FUNCTION taskguard._tenant_member_changed();
DROP FUNCTION taskguard._priority_config_changed();
DROP FUNCTION taskguard._classify_invalidate();
DROP FUNCTION taskguard._breaker_config_changed();
