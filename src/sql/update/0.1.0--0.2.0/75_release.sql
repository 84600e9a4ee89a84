-- ---------------------------------------------------------------- release
-- issue 23: a worker shutting down gives back the tasks it claimed and has
-- not started, without using an attempt (src/sql/30_queue.sql).

-- Give back a claimed task whose handler has not started (a worker shutting
-- down with tasks in hand): ready again at once, as if never claimed — the
-- attempt is not used (attempts goes back down), so a graceful shutdown
-- costs a task none of its max_attempts.  Only the attempt the caller holds
-- (when given), only the caller's tenants.  A half-open breaker probe the
-- claim took is not handed back: it goes stale as an unanswered probe does.
CREATE FUNCTION taskguard.release(task_id bigint, attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_queue text;
BEGIN
    UPDATE taskguard.task t
       SET status = 'ready', attempts = t.attempts - 1, started_at = NULL,
           worker = NULL, lease_expires_at = NULL
     WHERE t.id = task_id AND t.status = 'running'
       AND (attempt IS NULL OR t.attempts = attempt) AND taskguard._tenant_visible(t.tenant)
    RETURNING t.queue INTO v_queue;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM taskguard._notify(v_queue);
    RETURN true;
END
$$;

-- Nothing for PUBLIC, as 90_access.sql leaves a fresh install.
REVOKE ALL ON FUNCTION taskguard.release(bigint, int) FROM PUBLIC;

-- release is a worker-level call (grant_access gives it from now on).
CREATE OR REPLACE FUNCTION taskguard._access_worker_functions()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY[
    -- queue (requeue of a failed task is a one-record DLQ retry; the bulk
    -- dlq_retry stays an admin action)
    'enqueue', 'enqueue_many', 'claim', 'complete', 'complete_many', 'fail',
    'heartbeat', 'release', 'cancel', 'requeue',
    -- classification, retry, DLQ (external-broker mode included), priority
    'record_failure', 'claim_due_retries', 'resolve', 'classify', 'backoff',
    'retry_decision', 'calculate_priority', 'priority_level',
    -- idempotency, breakers (allow and record; force/reset are admin)
    'idempotency_key', 'idempotency_check', 'idempotency_release',
    'breaker_allow', 'breaker_record']
$$;

-- Roles that already work (granted claim, as the worker and admin levels
-- are) get release too, as grant_access would give it them now.
DO $$
DECLARE
    v_role regrole;
BEGIN
    FOR v_role IN
        SELECT DISTINCT x.grantee::regrole
          FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) x
         WHERE p.oid = 'taskguard.claim(text, text, int, interval)'::regprocedure
           AND x.privilege_type = 'EXECUTE' AND x.grantee <> p.proowner AND x.grantee <> 0
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard.release(bigint, int) TO %s', v_role);
    END LOOP;
END
$$;
