-- 50_dlq.sql — failures and the dead-letter queue (SPEC §4, §5).
-- Placeholder: the failure-taxonomy capability replaces this file with the
-- real classify/decide/record behaviour.

CREATE FUNCTION taskguard.fail(task_id bigint, error_type text, message text DEFAULT NULL,
    context jsonb DEFAULT '{}', attempt int DEFAULT NULL)
RETURNS taskguard.failure_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    UPDATE taskguard.task t
       SET status = 'failed', finished_at = now(), lease_expires_at = NULL,
           last_error = left(coalesce(error_type, '') || ': ' || coalesce(message, ''), 65536)
     WHERE t.id = task_id AND t.status = 'running'
       AND (attempt IS NULL OR t.attempts = attempt);
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN ('UNKNOWN', 0.2, 'MANUAL_INVESTIGATION', 'abandon', NULL, NULL)::taskguard.failure_outcome;
END
$$;

CREATE FUNCTION taskguard._dlq_task_succeeded(task_id bigint, failure_id bigint)
RETURNS void LANGUAGE sql VOLATILE AS $$ SELECT $$;

CREATE FUNCTION taskguard._dlq_task_cancelled(task_id bigint, failure_id bigint)
RETURNS void LANGUAGE sql VOLATILE AS $$ SELECT $$;

CREATE FUNCTION taskguard.dlq_retry(ids bigint[], priority taskguard.priority DEFAULT NULL,
    spread interval DEFAULT NULL)
RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 0 $$;

-- Scheduler step: put due retries back on their queues.
CREATE FUNCTION taskguard._requeue_due_retries(batch int)
RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 0 $$;

-- Scheduler step: prune old events and resolved records.
CREATE FUNCTION taskguard._prune_failures(batch int)
RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT 0 $$;
