-- Backups (issue 17; src/sql/02_backup.sql, docs/operations.md "Backups").
-- 0.1.0 dumped only configuration, and of it only the rows users added: a
-- dump of a busy database restored with 0 tasks and 0 DLQ records.  Now every
-- table but the metric_snapshot cache is dumped whole, with the sequences
-- behind ids; built-in rows come back as they were edited; the rollup
-- triggers stay quiet while a dump loads.

-- BEFORE INSERT row trigger on the tables CREATE EXTENSION fills with
-- built-in rows.  While a dump loads, the row of the same key (TG_ARGV: the
-- key columns) is deleted first, so the dumped row takes its place; at any
-- other time it does nothing.  A built-in row deleted before the dump comes
-- back with the restore (the dump has no row to say it is gone).
CREATE FUNCTION taskguard._restore_builtin_row()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF pg_catalog.current_setting('search_path') IN ('', '""')
       AND NOT pg_catalog.current_setting('check_function_bodies')::boolean THEN
        EXECUTE pg_catalog.format('DELETE FROM %s t WHERE (%s) IS NOT DISTINCT FROM (%s)',
                TG_RELID::pg_catalog.regclass,
                (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', k), ', ')
                   FROM pg_catalog.unnest(TG_ARGV) k),
                (SELECT pg_catalog.string_agg(pg_catalog.format('($1).%I', k), ', ')
                   FROM pg_catalog.unnest(TG_ARGV) k))
            USING NEW;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION taskguard._restore_builtin_row() FROM PUBLIC;

-- Dumped whole from now on (a second registration replaces the condition).
SELECT pg_catalog.pg_extension_config_dump('taskguard.retry_policy', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.breaker_config', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.alert_threshold', '');

-- Not dumped by 0.1.0.
SELECT pg_catalog.pg_extension_config_dump('taskguard.customer_tier', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.priority_queue', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.task_escalation', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.task', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.task_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.idempotency_record', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.idempotency_counter', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.breaker_saved', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.dead_letter', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.dead_letter_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.failure_event', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.dlq_rollup', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.dlq_delta', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.failure_hourly', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.activity_minute', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.failure_total', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.event_delta', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.metric_tenant', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.alert_state', '');

CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.customer_tier
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('tier');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.priority_queue
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('priority');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.retry_policy
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('failure_type', 'task_name');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.breaker_config
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('service');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.alert_threshold
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('alert', 'level');

-- The rollup insert triggers do not fire while a dump loads.
DROP TRIGGER dead_letter_rollup_insert ON taskguard.dead_letter;
CREATE TRIGGER dead_letter_rollup_insert AFTER INSERT ON taskguard.dead_letter
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (pg_catalog.current_setting('search_path') NOT IN ('', '""')
          OR pg_catalog.current_setting('check_function_bodies')::boolean)
    EXECUTE FUNCTION taskguard._dlq_rollup_trigger();
DROP TRIGGER failure_event_rollup_insert ON taskguard.failure_event;
CREATE TRIGGER failure_event_rollup_insert AFTER INSERT ON taskguard.failure_event
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    WHEN (pg_catalog.current_setting('search_path') NOT IN ('', '""')
          OR pg_catalog.current_setting('check_function_bodies')::boolean)
    EXECUTE FUNCTION taskguard._event_rollup_trigger();
