-- 70_scheduler.sql — one scheduler pass (docs/reference.md#scheduler), shared by the background
-- worker (each step in its own transaction) and taskguard.tick().

-- The steps of a pass, in order.
CREATE FUNCTION taskguard._tick_steps()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['breakers', 'requeue_retries', 'redispatch_lost', 'reap_leases', 'expire_keys', 'escalate',
             'rotate_tasks', 'prune_tasks', 'prune_failures', 'flush_counters', 'rollup', 'alerts', 'notify',
             'retry_tune']
$$;

-- Run one step with a batch bound; returns how many rows it handled.
CREATE FUNCTION taskguard._tick_step(step text, batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    RETURN CASE step
        WHEN 'breakers'        THEN taskguard._breaker_maintain()
        WHEN 'requeue_retries' THEN taskguard._requeue_due_retries(batch)
        WHEN 'redispatch_lost' THEN taskguard._redispatch_lost(batch)
        WHEN 'reap_leases'     THEN taskguard._reap_expired_leases(batch)
        WHEN 'expire_keys'     THEN taskguard._idempotency_expire(batch)
        WHEN 'escalate'        THEN taskguard._escalate_priorities(batch)
        WHEN 'rotate_tasks'    THEN taskguard._task_ring_rotate()
        WHEN 'prune_tasks'     THEN taskguard._prune_tasks(batch)
        WHEN 'prune_failures'  THEN taskguard._prune_failures(batch)
        WHEN 'flush_counters'  THEN taskguard._flush_counters()
        WHEN 'rollup'          THEN taskguard._rollup(batch)
        WHEN 'alerts'          THEN taskguard._check_alerts()
        WHEN 'notify'          THEN taskguard._send_pending_notifies()
        WHEN 'retry_tune'      THEN taskguard._retry_auto_tune()
    END;
END
$$;

-- One scheduler pass in the calling session; what each step did.
CREATE FUNCTION taskguard.tick()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_step  text;
    v_batch int := coalesce(nullif(current_setting('taskguard.batch_size', true), '')::int, 1000);
    v_done  jsonb := '{}';
BEGIN
    FOREACH v_step IN ARRAY taskguard._tick_steps() LOOP
        v_done := v_done || jsonb_build_object(v_step, taskguard._tick_step(v_step, v_batch));
    END LOOP;
    RETURN v_done;
END
$$;

CREATE FUNCTION taskguard._scheduler_status(
    OUT pid int, OUT launcher_pid int, OUT started_at timestamptz,
    OUT last_pass_at timestamptz, OUT last_pass_ms float8, OUT passes bigint,
    OUT last_pass_counts jsonb, OUT total_counts jsonb, OUT last_error text)
RETURNS record
AS 'MODULE_PATHNAME', 'taskguard_scheduler_status'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- The background worker: pid, last pass, its duration and what it did.
-- taskguard.database is superuser-only: a caller who may not read settings
-- sees NULL for it rather than an error.
CREATE VIEW taskguard.scheduler_status AS
SELECT s.pid, s.launcher_pid,
       CASE WHEN pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE')
            THEN pg_catalog.current_setting('taskguard.database', true) END AS database,
       s.started_at, s.last_pass_at, s.last_pass_ms, s.passes,
       s.last_pass_counts, s.total_counts, s.last_error
  FROM taskguard._scheduler_status() s;
