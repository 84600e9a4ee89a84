-- 80_retry_advice.sql — retry advice (issue 20, docs/reference.md#retry-advice): failure events
-- keep the classification's confidence and the delay before the retry; the
-- objects of src/sql/86_retry_advice.sql; access as 90_access.sql gives it.
-- Sorts last: the final bodies of what it replaces.

ALTER TABLE taskguard.failure_event ADD COLUMN confidence real, ADD COLUMN retry_delay interval;

-- Classify one failed attempt, decide, and create or update its record;
-- one event per call.  p_rec is the open record (NULL: create one),
-- p_runs_left how many runs the task's max_attempts still allows (NULL: no cap).
CREATE OR REPLACE FUNCTION taskguard._dlq_record(p_rec bigint, p_retry_count int, p_reopen boolean,
    p_task_id bigint, p_task_ref text, p_task_name text, p_args jsonb, p_queue text,
    p_tenant text, p_service text, p_priority taskguard.priority, p_external boolean,
    p_error_type text, p_message text, p_context jsonb, p_runs_left int)
RETURNS taskguard.failure_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_cls    taskguard.classification;
    v_dec    taskguard.retry_decision;
    v_max    int;
    v_status taskguard.dlq_status;
    v_id     bigint := p_rec;
    v_msg    text := left(p_message, 65536);
BEGIN
    v_cls := taskguard.classify(p_error_type, p_message,
        p_context || jsonb_build_object('retry_count', p_retry_count, 'task_name', p_task_name));
    v_dec := taskguard.retry_decision(v_cls.failure_type, p_retry_count, p_task_name, p_context);
    v_max := taskguard._policy_max_retries(v_cls.failure_type, p_task_name);
    IF p_runs_left IS NOT NULL THEN
        v_max := least(v_max, p_retry_count + greatest(p_runs_left, 0));
        IF v_dec.should_retry AND p_runs_left <= 0 THEN
            v_dec := (false, NULL, NULL, 'max_attempts reached');
        END IF;
    END IF;
    v_status := CASE WHEN v_dec.should_retry THEN 'PENDING' ELSE 'ABANDONED' END;

    IF v_id IS NULL THEN
        INSERT INTO taskguard.dead_letter AS d (task_id, task_ref, task_name, args, queue, tenant,
            service, status, failure_type, confidence, remediation, error_type, message, context,
            retry_count, max_retries, priority, next_retry_at, resolution, alert_level, rule, external)
        VALUES (p_task_id, p_task_ref, p_task_name, coalesce(p_args, '{}'), p_queue, p_tenant,
            p_service, v_status, v_cls.failure_type, v_cls.confidence, v_cls.remediation,
            left(p_error_type, 1000), v_msg, p_context, p_retry_count, v_max,
            coalesce(p_priority, 'MEDIUM'), v_dec.next_retry_at,
            CASE WHEN NOT v_dec.should_retry THEN v_dec.reason END, v_cls.alert_level, v_cls.rule,
            p_external)
        RETURNING d.id INTO v_id;
    ELSE
        UPDATE taskguard.dead_letter d
           SET status = v_status, failure_type = v_cls.failure_type, confidence = v_cls.confidence,
               remediation = v_cls.remediation, error_type = left(p_error_type, 1000),
               message = v_msg, context = p_context, retry_count = p_retry_count,
               max_retries = v_max, last_failed_at = now(), next_retry_at = v_dec.next_retry_at,
               resolution = CASE WHEN NOT v_dec.should_retry THEN v_dec.reason END,
               alert_level = v_cls.alert_level, rule = v_cls.rule, priority_pinned = false,
               args = coalesce(p_args, d.args),
               first_failed_at = CASE WHEN p_reopen THEN now() ELSE d.first_failed_at END,
               resolved_at = CASE WHEN p_reopen THEN NULL ELSE d.resolved_at END
         WHERE d.id = v_id;
    END IF;

    INSERT INTO taskguard.failure_event (failure_id, task_id, task_name, tenant, failure_type,
                                         error_type, error, retry_count, action, confidence,
                                         retry_delay)
    VALUES (v_id, p_task_id, p_task_name, p_tenant, v_cls.failure_type, left(p_error_type, 1000),
            left(p_message, 1000), p_retry_count,
            CASE WHEN v_dec.should_retry THEN 'retry' ELSE 'abandon' END, v_cls.confidence,
            CASE WHEN v_dec.should_retry THEN v_dec.delay END);

    RETURN (v_cls.failure_type, v_cls.confidence, v_cls.remediation,
            CASE WHEN v_dec.should_retry THEN 'retry' ELSE 'abandon' END,
            v_dec.next_retry_at, v_id)::taskguard.failure_outcome;
END
$$;

-- The scheduler step 'retry_tune' (auto-tuning, off by default).
-- The steps of a pass, in order.
CREATE OR REPLACE FUNCTION taskguard._tick_steps()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['breakers', 'requeue_retries', 'redispatch_lost', 'reap_leases', 'expire_keys', 'escalate',
             'prune_tasks', 'prune_failures', 'flush_counters', 'rollup', 'alerts', 'notify',
             'retry_tune']
$$;

-- Run one step with a batch bound; returns how many rows it handled.
CREATE OR REPLACE FUNCTION taskguard._tick_step(step text, batch int)
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

