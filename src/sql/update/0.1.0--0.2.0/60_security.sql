-- Issue 16 (locked down).  Classes 1–3 and 7: the caller's tenant scope
-- fails closed, workers change state only through the functions (which run
-- as their owner under a pinned search_path and scope every row to the
-- caller's tenants), internal helpers are not for workers or readers,
-- breaker force/reset is an admin action, views that filter by tenant
-- themselves are security barriers.  docs/security.md has the threat model.

-- ---------------------------------------------------------------- tenant scope
CREATE TABLE taskguard.tenant_bound_role (
    role  name PRIMARY KEY,
    since timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.tenant_bound_role', '');
-- every role mapped today is bound from now on
INSERT INTO taskguard.tenant_bound_role (role)
SELECT DISTINCT m.role FROM taskguard.tenant_member m;

CREATE OR REPLACE FUNCTION taskguard._tenant_member_bind()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    INSERT INTO taskguard.tenant_bound_role (role) VALUES (NEW.role) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenant_member_bind
    AFTER INSERT OR UPDATE OF role ON taskguard.tenant_member
    FOR EACH ROW EXECUTE FUNCTION taskguard._tenant_member_bind();

CREATE TRIGGER tenant_bound_role_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.tenant_bound_role
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._tenant_member_changed();

-- The role a call acts for (SET ROLE's role; inside a SECURITY DEFINER
-- function current_user is the owner instead).  For messages.
CREATE OR REPLACE FUNCTION taskguard._tenant_caller()
RETURNS name
AS 'MODULE_PATHNAME', 'taskguard_tenant_caller'
LANGUAGE C STABLE PARALLEL SAFE;

-- Refuse a tenant the caller is not mapped to (insufficient_privilege).
CREATE OR REPLACE FUNCTION taskguard._tenant_refused(tenant text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION 'role "%" may not act for tenant "%"', taskguard._tenant_caller(), tenant
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'The role is mapped to other tenants in taskguard.tenant_member.',
              HINT = 'Leave tenant NULL to act for the role''s own tenant.';
END
$$;

ALTER TABLE taskguard.tenant_bound_role ENABLE ROW LEVEL SECURITY;
CREATE POLICY bound_read ON taskguard.tenant_bound_role FOR SELECT
    USING (role = current_user OR (SELECT taskguard._tenant_scope()) IS NULL);
CREATE POLICY bound_write ON taskguard.tenant_bound_role FOR ALL
    USING ((SELECT taskguard._tenant_scope()) IS NULL)
    WITH CHECK ((SELECT taskguard._tenant_scope()) IS NULL);

-- ---------------------------------------------------------------- worker calls
CREATE OR REPLACE FUNCTION taskguard.enqueue(task_name text, args jsonb DEFAULT '{}',
    queue text DEFAULT 'default', run_at timestamptz DEFAULT now(),
    priority taskguard.priority DEFAULT NULL, tenant text DEFAULT NULL,
    customer_tier text DEFAULT 'standard', service text DEFAULT NULL,
    idempotency_key text DEFAULT NULL, max_attempts int DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_id     bigint;
    v_prio   taskguard.priority_result;
    v_tenant text := taskguard._effective_tenant(tenant);
    v_tier   text := coalesce(customer_tier, 'standard');
BEGIN
    -- one simple expression on the hot path; the checker names the bad argument
    IF task_name IS NULL OR task_name = '' OR length(task_name) > 1000 OR queue IS NULL
       OR queue = '' OR length(queue) > 200 OR NOT isfinite(coalesce(run_at, now()))
       OR max_attempts < 1 THEN
        PERFORM taskguard._check_enqueue(task_name, queue, run_at, max_attempts);
    END IF;
    IF idempotency_key IS NOT NULL THEN
        v_id := taskguard._idempotency_find(idempotency_key, v_tenant, task_name);
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
    END IF;
    IF priority IS NULL THEN
        v_prio := taskguard.calculate_priority(task_name, jsonb_build_object('customer_tier', v_tier));
    ELSE
        v_prio := (priority, taskguard._priority_score(priority), NULL, NULL);
    END IF;

    INSERT INTO taskguard.task AS t (queue, task_name, args, priority, priority_score, run_at,
                                     max_attempts, tenant, customer_tier, service, idempotency_key)
    VALUES (queue, task_name, coalesce(args, '{}'), v_prio.priority, v_prio.score,
            coalesce(run_at, now()), max_attempts, v_tenant, v_tier, service, idempotency_key)
    RETURNING t.id INTO v_id;

    IF idempotency_key IS NOT NULL THEN
        v_id := taskguard._idempotency_bind(idempotency_key, v_tenant, task_name, v_id);
    END IF;
    IF coalesce(run_at, now()) <= now() THEN
        PERFORM taskguard._notify(queue);
    END IF;
    RETURN v_id;
END
$$;

CREATE OR REPLACE FUNCTION taskguard.enqueue_many(task_name text, args jsonb[],
    queue text DEFAULT 'default', run_at timestamptz DEFAULT now(),
    priority taskguard.priority DEFAULT NULL, tenant text DEFAULT NULL,
    customer_tier text DEFAULT 'standard', service text DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_prio   taskguard.priority_result;
    v_tenant text := taskguard._effective_tenant(tenant);
    v_tier   text := coalesce(customer_tier, 'standard');
BEGIN
    IF task_name IS NULL OR task_name = '' OR length(task_name) > 1000 OR queue IS NULL
       OR queue = '' OR length(queue) > 200 OR NOT isfinite(coalesce(run_at, now())) THEN
        PERFORM taskguard._check_enqueue(task_name, queue, run_at, NULL);
    END IF;
    IF args IS NULL THEN
        PERFORM taskguard._require(args, 'args');
    END IF;
    IF priority IS NULL THEN
        v_prio := taskguard.calculate_priority(task_name, jsonb_build_object('customer_tier', v_tier));
    ELSE
        v_prio := (priority, taskguard._priority_score(priority), NULL, NULL);
    END IF;

    RETURN QUERY
    INSERT INTO taskguard.task AS t (queue, task_name, args, priority, priority_score, run_at,
                                     tenant, customer_tier, service)
    SELECT enqueue_many.queue, enqueue_many.task_name, coalesce(a.arg, '{}'), v_prio.priority,
           v_prio.score, coalesce(enqueue_many.run_at, now()), v_tenant, v_tier, enqueue_many.service
      FROM unnest(args) WITH ORDINALITY AS a(arg, ord)
     ORDER BY a.ord
    RETURNING t.id;

    IF FOUND AND coalesce(run_at, now()) <= now() THEN
        PERFORM taskguard._notify(queue);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION taskguard.claim(queue text DEFAULT 'default', worker text DEFAULT NULL,
    batch int DEFAULT 1, lease interval DEFAULT '5 minutes')
RETURNS SETOF taskguard.task
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 10
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
-- One plan for every call.  With `LIMIT batch` the generic plan's estimate
-- is 10% of the table, so the plan cache found it dearer than a custom plan
-- and planned the claim afresh on every call (a quarter of a worker's
-- backend CPU at batch 1); the plan below is the right one for any batch.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    -- the caller's tenants (NULL: all); the owner's rights bypass row security
    v_scope text[] := taskguard._tenant_scope();
BEGIN
    IF queue IS NULL THEN
        PERFORM taskguard._require(queue, 'queue');
    END IF;
    IF length(worker) > 200 THEN
        RAISE EXCEPTION 'worker must be at most 200 characters, got %', length(worker)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch IS NULL OR batch < 1 OR batch > 10000 THEN
        RAISE EXCEPTION 'batch must be between 1 and 10000, got %', batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lease IS NULL OR lease <= interval '0' OR lease > interval '1 year' THEN
        RAISE EXCEPTION 'lease must be a positive interval of at most 1 year, got %', lease
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- One task (a worker's single mode): the same pick, breaker check and
    -- update as below in one UPDATE, without the CTEs, the array and the sort
    -- (7 % less CPU a task in four A/B runs of the single-mode statement,
    -- 4 % over the whole peers benchmark: bench/README.md run E).  Kept apart
    -- on purpose: one statement for every batch (this UPDATE with
    -- = ANY(ARRAY(... LIMIT batch)) in a CTE, for the sort) was no faster at
    -- batch 1 than the general path below.
    -- The probe of a half-open breaker is taken for the picked row only; a row
    -- whose service has no probe left is not updated and stays ready.
    IF batch = 1 THEN
        RETURN QUERY
        UPDATE taskguard.task t
           SET status = 'running', attempts = t.attempts + 1, started_at = now(),
               worker = claim.worker, lease_expires_at = now() + lease
         WHERE t.id = (SELECT p.id FROM taskguard.task p
                        WHERE p.queue = claim.queue AND p.status = 'ready' AND p.run_at <= now()
                          AND (v_scope IS NULL OR p.tenant = ANY (v_scope))
                          AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                        ORDER BY p.priority_score DESC, p.run_at, p.id
                        LIMIT 1
                        FOR UPDATE SKIP LOCKED)
           AND (t.service IS NULL OR taskguard._breaker_claimed(t.service))
        RETURNING t.*;
        RETURN;
    END IF;

    RETURN QUERY
    WITH picked AS (
        SELECT t.id, t.service FROM taskguard.task t
         WHERE t.queue = claim.queue AND t.status = 'ready' AND t.run_at <= now()
           AND (v_scope IS NULL OR t.tenant = ANY (v_scope))
           AND (t.service IS NULL OR NOT taskguard._breaker_is_open(t.service))
         ORDER BY t.priority_score DESC, t.run_at, t.id
         LIMIT batch
         FOR UPDATE SKIP LOCKED),
    -- Circuit breakers (docs/reference.md#breakers): take a half-open probe for each row handed
    -- out; a row whose service has no probe left is not claimed (it stays
    -- ready, its attempts untouched).  A volatile CTE runs once per row.
    allowed AS (
        SELECT p.id FROM picked p
         WHERE p.service IS NULL OR taskguard._breaker_claimed(p.service)),
    -- = ANY(ARRAY()): found by primary key whatever the estimate of batch
    -- (joined to the CTE, a generic plan hashed it against a seq scan).
    claimed AS (
        UPDATE taskguard.task t
           SET status = 'running', attempts = t.attempts + 1, started_at = now(),
               worker = claim.worker, lease_expires_at = now() + lease
         WHERE t.id = ANY (ARRAY(SELECT a.id FROM allowed a))
        RETURNING t.*)
    -- handed out in claim order, so a worker runs the most urgent first
    SELECT c.* FROM claimed c ORDER BY c.priority_score DESC, c.run_at, c.id;
END
$$;

CREATE OR REPLACE FUNCTION taskguard.complete(task_id bigint, result jsonb DEFAULT NULL, attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_task taskguard.task;
BEGIN
    UPDATE taskguard.task t
       SET status = 'succeeded', finished_at = now(), result = complete.result,
           lease_expires_at = NULL
     WHERE t.id = task_id AND t.status = 'running'
       AND (attempt IS NULL OR t.attempts = attempt) AND taskguard._tenant_visible(t.tenant)
    RETURNING t.* INTO v_task;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF v_task.failure_id IS NOT NULL THEN
        PERFORM taskguard._dlq_task_succeeded(v_task.id, v_task.failure_id);
    END IF;
    IF v_task.service IS NOT NULL THEN
        PERFORM taskguard._breaker_task_done(v_task.service, true);
    END IF;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION taskguard.complete_many(task_ids bigint[], attempts int[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_done int;
BEGIN
    IF task_ids IS NULL THEN
        RETURN 0;
    END IF;
    IF attempts IS NOT NULL AND cardinality(attempts) <> cardinality(task_ids) THEN
        RAISE EXCEPTION 'attempts has % elements but task_ids has %',
            cardinality(attempts), cardinality(task_ids)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    WITH done AS (
        UPDATE taskguard.task t
           SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL
          FROM unnest(task_ids, complete_many.attempts) AS w(id, attempt)
         WHERE t.id = w.id AND t.status = 'running'
           AND (w.attempt IS NULL OR t.attempts = w.attempt) AND taskguard._tenant_visible(t.tenant)
        RETURNING t.id, t.failure_id, t.service),
    dlq AS (
        SELECT taskguard._dlq_task_succeeded(d.id, d.failure_id)
          FROM done d WHERE d.failure_id IS NOT NULL),
    brk AS (
        SELECT taskguard._breaker_task_done(d.service, true)
          FROM done d WHERE d.service IS NOT NULL)
    SELECT count(*) + 0 * (SELECT count(*) FROM dlq) + 0 * (SELECT count(*) FROM brk)
      INTO v_done FROM done;
    RETURN v_done;
END
$$;

CREATE OR REPLACE FUNCTION taskguard.heartbeat(task_id bigint, lease interval DEFAULT '5 minutes',
                                    attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    IF lease IS NULL OR lease <= interval '0' OR lease > interval '1 year' THEN
        RAISE EXCEPTION 'lease must be a positive interval of at most 1 year, got %', lease
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE taskguard.task t
       SET lease_expires_at = greatest(t.lease_expires_at, clock_timestamp() + lease)
     WHERE t.id = task_id AND t.status = 'running'
       AND (attempt IS NULL OR t.attempts = attempt) AND taskguard._tenant_visible(t.tenant);
    RETURN FOUND;
END
$$;

-- Cancel a task that has not finished; an open DLQ record is abandoned with it.
CREATE OR REPLACE FUNCTION taskguard.cancel(task_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_task taskguard.task;
BEGIN
    UPDATE taskguard.task t
       SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
     WHERE t.id = task_id AND t.status IN ('ready', 'failed', 'running')
       AND taskguard._tenant_visible(t.tenant)
    RETURNING t.* INTO v_task;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF v_task.failure_id IS NOT NULL THEN
        PERFORM taskguard._dlq_task_cancelled(v_task.id, v_task.failure_id);
    END IF;
    RETURN true;
END
$$;

-- Put a task that is not running back to ready now; with an open DLQ record
-- this is dlq_retry of that record.
CREATE OR REPLACE FUNCTION taskguard.requeue(task_id bigint, priority taskguard.priority DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_task taskguard.task;
BEGIN
    SELECT * INTO v_task FROM taskguard.task t
     WHERE t.id = task_id AND taskguard._tenant_visible(t.tenant) FOR UPDATE;
    IF NOT FOUND OR v_task.status = 'running' THEN
        RETURN false;
    END IF;
    IF v_task.failure_id IS NOT NULL THEN
        RETURN taskguard._dlq_retry(ARRAY[v_task.failure_id], priority, NULL) > 0;
    END IF;
    UPDATE taskguard.task t
       SET status = 'ready', run_at = now(), finished_at = NULL, result = NULL,
           priority = coalesce(requeue.priority, t.priority),
           priority_score = coalesce(taskguard._priority_score(requeue.priority), t.priority_score),
           max_attempts = CASE WHEN t.max_attempts <= t.attempts THEN t.attempts + 1
                               ELSE t.max_attempts END
     WHERE t.id = task_id;
    PERFORM taskguard._notify(v_task.queue);
    RETURN true;
END
$$;

-- Forget a key of the caller's tenant now; true when a live key was removed.
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
        RAISE EXCEPTION 'key must not be NULL' USING ERRCODE = 'null_value_not_allowed';
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

-- A worker reports that its attempt failed (docs/reference.md#queue, #dlq).
CREATE OR REPLACE FUNCTION taskguard.fail(task_id bigint, error_type text, message text DEFAULT NULL,
    context jsonb DEFAULT '{}', attempt int DEFAULT NULL)
RETURNS taskguard.failure_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_task taskguard.task;
    v_rec  bigint;
    v_rc   int := 0;
    v_out  taskguard.failure_outcome;
BEGIN
    SELECT * INTO v_task FROM taskguard.task t
     WHERE t.id = fail.task_id AND taskguard._tenant_visible(t.tenant) FOR UPDATE;
    IF NOT FOUND OR v_task.status <> 'running'
       OR (attempt IS NOT NULL AND v_task.attempts <> attempt) THEN
        RETURN NULL;
    END IF;
    IF v_task.failure_id IS NOT NULL THEN
        SELECT d.id, d.retry_count + 1 INTO v_rec, v_rc FROM taskguard.dead_letter d
         WHERE d.id = v_task.failure_id AND d.status <> 'RESOLVED'
           AND d.task_id = v_task.id AND d.tenant IS NOT DISTINCT FROM v_task.tenant
         FOR UPDATE;
        v_rc := coalesce(v_rc, 0);
    END IF;

    v_out := taskguard._dlq_record(v_rec, v_rc, false, v_task.id, NULL, v_task.task_name,
        v_task.args, v_task.queue, v_task.tenant, v_task.service, v_task.priority, false,
        error_type, message, taskguard._dlq_context(context),
        v_task.max_attempts - v_task.attempts);

    UPDATE taskguard.task t
       SET status = 'failed', finished_at = now(), lease_expires_at = NULL,
           run_at = coalesce(v_out.next_retry_at, t.run_at),
           failure_id = v_out.failure_id,
           last_error = left(coalesce(fail.error_type, '') || ': ' ||
                             coalesce(left(fail.message, 65536), ''), 65536)
     WHERE t.id = v_task.id;

    IF v_task.service IS NOT NULL AND v_out.failure_type IN
       ('EXTERNAL_SERVICE_UNAVAILABLE', 'EXTERNAL_API_ERROR', 'TRANSIENT_NETWORK') THEN
        PERFORM taskguard._breaker_task_done(v_task.service, false);
    END IF;
    RETURN v_out;
END
$$;

-- External-broker mode: a task run by Celery, Sidekiq, … failed.  The same
-- (tenant, task_ref) always updates the same record.
CREATE OR REPLACE FUNCTION taskguard.record_failure(task_name text, args jsonb, error_type text,
    message text DEFAULT NULL, context jsonb DEFAULT '{}', tenant text DEFAULT NULL,
    task_ref text DEFAULT NULL)
RETURNS taskguard.failure_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_tenant text := taskguard._effective_tenant(tenant);
    v_rec    taskguard.dead_letter;
    v_rc     int := 0;
    v_ctx    jsonb := taskguard._dlq_context(context);
BEGIN
    PERFORM taskguard._require(task_name, 'task_name');
    IF task_name = '' OR length(task_name) > 1000 THEN
        RAISE EXCEPTION 'task_name must be 1 to 1000 characters, got %', length(task_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF task_ref IS NOT NULL THEN
        -- serialise the first failures of one ref; later ones find the record
        PERFORM pg_advisory_xact_lock(hashtext('taskguard.dead_letter'),
                                      hashtext(coalesce(v_tenant, '') || chr(31) || task_ref));
        SELECT * INTO v_rec FROM taskguard.dead_letter d
         WHERE d.task_ref IS NOT NULL AND coalesce(d.tenant, '') = coalesce(v_tenant, '')
           AND md5(d.task_ref) = md5(record_failure.task_ref)
         FOR UPDATE;
        IF FOUND AND v_rec.status <> 'RESOLVED' THEN
            v_rc := v_rec.retry_count + 1;
        END IF;
    END IF;
    RETURN taskguard._dlq_record(v_rec.id, v_rc, v_rec.status = 'RESOLVED', NULL, task_ref,
        task_name, args, coalesce(v_ctx->>'queue', v_rec.queue), v_tenant,
        coalesce(v_ctx->>'service', v_rec.service), v_rec.priority, true,
        error_type, message, v_ctx, NULL);
END
$$;

-- External mode: hand due PENDING records (now RETRYING) to the application's dispatcher.
CREATE OR REPLACE FUNCTION taskguard.claim_due_retries(batch int DEFAULT 100)
RETURNS SETOF taskguard.dead_letter
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 100
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    IF batch IS NULL OR batch < 1 OR batch > 10000 THEN
        RAISE EXCEPTION 'batch must be between 1 and 10000, got %', batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM taskguard.dead_letter d
         WHERE d.status = 'PENDING' AND d.next_retry_at <= now() AND d.external
           AND taskguard._tenant_visible(d.tenant)
           AND (d.service IS NULL OR NOT taskguard._breaker_is_open(d.service))
         ORDER BY d.next_retry_at, d.id
         LIMIT batch
         FOR UPDATE SKIP LOCKED)
    UPDATE taskguard.dead_letter d
       SET status = 'RETRYING', next_retry_at = NULL, dispatched_at = now()
      FROM due WHERE d.id = due.id
    RETURNING d.*;
END
$$;

CREATE OR REPLACE FUNCTION taskguard.resolve(failure_id bigint, note text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
SELECT taskguard._dlq_resolve(ARRAY(SELECT d.id FROM taskguard.dead_letter d
                                     WHERE d.id = $1 AND taskguard._tenant_visible(d.tenant)),
                              note) > 0
$$;

-- Scheduler step: due PENDING records of queue tasks become RETRYING and
-- their tasks ready, at a recomputed priority; services with an open
-- breaker wait.  Returns how many tasks were put back.
CREATE OR REPLACE FUNCTION taskguard._requeue_due_retries(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_dids   bigint[];
    v_tids   bigint[];
    v_prios  taskguard.priority[];
    v_scores real[];
    v_queues text[];
BEGIN
    -- Set-based: one ordered scan takes a batch of due records; those whose
    -- task still waits on them go back to the queue with a recomputed
    -- priority (tid not NULL), the others (task gone or moved on) are
    -- abandoned.  Row-by-row this step was 20x slower (bench/scheduler.sh).
    SELECT array_agg(x.did), array_agg(x.tid), array_agg((x.p).priority), array_agg((x.p).score)
      INTO v_dids, v_tids, v_prios, v_scores
      FROM (SELECT d.id AS did, w.tid,
                   CASE WHEN w.tid IS NOT NULL
                        THEN taskguard._retry_priority(d.priority_pinned, d.priority, d.task_name,
                                 t.customer_tier, d.failure_type, d.retry_count, t.enqueued_at) END AS p
              FROM taskguard.dead_letter d LEFT JOIN taskguard.task t ON t.id = d.task_id
                   -- the link must hold both ways and within one tenant
                   CROSS JOIN LATERAL (SELECT CASE WHEN t.status = 'failed' AND t.failure_id = d.id
                                                    AND t.tenant IS NOT DISTINCT FROM d.tenant
                                              THEN t.id END AS tid) w
             WHERE d.status = 'PENDING' AND d.next_retry_at <= now() AND NOT d.external
               AND (d.service IS NULL OR NOT taskguard._breaker_is_open(d.service))
             ORDER BY d.next_retry_at
             LIMIT batch
             FOR UPDATE OF d SKIP LOCKED) x;
    IF v_dids IS NULL THEN
        RETURN 0;
    END IF;

    -- The batch goes through arrays, not CTE joins: unnest() keeps the
    -- updates on the primary keys, where a CTE join chose hash joins over
    -- whole-table scans (O(table) per batch).  A task changed between the
    -- scan and its update can only be one being cancelled, whose cancel()
    -- then settles its record after us.
    WITH tasks AS (
        UPDATE taskguard.task t
           SET status = 'ready', run_at = now(), finished_at = NULL,
               priority = u.prio, priority_score = u.score
          FROM unnest(v_tids, v_dids, v_prios, v_scores) AS u(tid, did, prio, score)
         WHERE u.tid IS NOT NULL AND t.id = u.tid
           AND t.status = 'failed' AND t.failure_id = u.did
        RETURNING t.queue)
    SELECT array_agg(DISTINCT queue) INTO v_queues FROM tasks;

    UPDATE taskguard.dead_letter d
       SET status = CASE WHEN u.tid IS NULL THEN 'ABANDONED' ELSE 'RETRYING' END::taskguard.dlq_status,
           next_retry_at = NULL,
           priority = coalesce(u.prio, d.priority),
           resolution = CASE WHEN u.tid IS NULL THEN 'task no longer waiting' ELSE d.resolution END
      FROM unnest(v_dids, v_tids, v_prios) AS u(did, tid, prio)
     WHERE d.id = u.did;

    FOR i IN 1 .. coalesce(cardinality(v_queues), 0) LOOP
        PERFORM taskguard._notify(v_queues[i]);
    END LOOP;
    RETURN cardinality(array_remove(v_tids, NULL));
END
$$;

-- ---------------------------------------------------------------- access levels
DROP FUNCTION taskguard._access_worker_tables();

-- Functions of the worker level: the queue, failure, idempotency and breaker
-- calls, nothing else.  Workers write no table directly: the calls that
-- change state are SECURITY DEFINER and scope every row they touch to the
-- caller's tenants themselves; internal helpers (leading underscore) are not
-- executable by workers or readers, so they cannot be called with forged
-- arguments.  Forcing and resetting a breaker is an admin action.
CREATE OR REPLACE FUNCTION taskguard._access_worker_functions()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY[
    -- queue (requeue of a failed task is a one-record DLQ retry; the bulk
    -- dlq_retry stays an admin action)
    'enqueue', 'enqueue_many', 'claim', 'complete', 'complete_many', 'fail',
    'heartbeat', 'cancel', 'requeue',
    -- classification, retry, DLQ (external-broker mode included), priority
    'record_failure', 'claim_due_retries', 'resolve', 'classify', 'backoff',
    'retry_decision', 'calculate_priority', 'priority_level',
    -- idempotency, breakers (allow and record; force/reset are admin)
    'idempotency_key', 'idempotency_check', 'idempotency_release',
    'breaker_allow', 'breaker_record']
$$;

-- What one access level is granted: (privileges, object) pairs, the object
-- already quoted (regclass / regprocedure output), computed from the catalog
-- at call time.  Every level may read every table (the functions read the
-- configuration; row security limits what a mapped role sees).  No level gets
-- TRIGGER (a trigger on these tables would run inside the scheduler's
-- superuser transactions), TRUNCATE (it ignores row security) or REFERENCES.
CREATE OR REPLACE FUNCTION taskguard._access_plan(access text)
RETURNS TABLE (privileges text, object text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
WITH ns AS (SELECT 'taskguard'::regnamespace AS oid),
rels AS (
    SELECT c.oid, c.relkind, c.relname::text AS relname, c.oid::regclass::text AS qname
      FROM pg_catalog.pg_class c, ns WHERE c.relnamespace = ns.oid
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S')),
procs AS (
    SELECT p.oid, p.proname::text AS proname, p.provolatile,
           'FUNCTION ' || p.oid::regprocedure::text AS qname
      FROM pg_catalog.pg_proc p, ns WHERE p.pronamespace = ns.oid AND p.prokind = 'f'),
view_deps AS (        -- functions a view calls (EXECUTE is checked as the caller)
    SELECT DISTINCT d.refobjid AS oid
      FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_rewrite w ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = w.oid
      JOIN rels v ON v.oid = w.ev_class AND v.relkind IN ('v', 'm')
     WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass),
common AS (
    SELECT 'USAGE'::text AS privileges, 'SCHEMA taskguard'::text AS object
    UNION ALL SELECT 'SELECT', 'TABLE ' || r.qname FROM rels r WHERE r.relkind IN ('r', 'p')
    UNION ALL SELECT 'EXECUTE', p.qname FROM procs p
               WHERE p.proname IN ('_tenant_scope', '_tenant_refused', '_effective_tenant',
                                   '_tenant_visible', '_tenant_caller')),
worker AS (
    SELECT * FROM common
    UNION ALL SELECT 'EXECUTE', p.qname FROM procs p
     WHERE p.proname = ANY (taskguard._access_worker_functions())),
reader AS (
    SELECT * FROM common
    UNION ALL SELECT 'SELECT', 'TABLE ' || r.qname FROM rels r WHERE r.relkind IN ('v', 'm')
    UNION ALL SELECT 'EXECUTE', p.qname FROM procs p
     WHERE p.proname = ANY (taskguard._access_reader_functions())
        OR p.provolatile <> 'v' OR p.oid IN (SELECT oid FROM view_deps)),
admin AS (
    SELECT 'USAGE'::text AS privileges, 'SCHEMA taskguard'::text AS object
    UNION ALL SELECT CASE WHEN r.relkind = 'S' THEN 'USAGE, SELECT, UPDATE'
                          WHEN r.relkind IN ('v', 'm') THEN 'SELECT'
                          ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
                     CASE WHEN r.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || r.qname
      FROM rels r
    UNION ALL SELECT 'EXECUTE', p.qname FROM procs p)
SELECT * FROM worker WHERE access = 'worker'
UNION ALL SELECT * FROM reader WHERE access = 'reader'
UNION ALL SELECT * FROM admin WHERE access = 'admin'
$$;

-- Views that filter by tenant themselves become security barriers (the
-- others are security_invoker since 0.1.0).
DO $$
DECLARE
    v_view regclass;
BEGIN
    FOR v_view IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind = 'v'
           AND EXISTS (
               SELECT 1 FROM pg_catalog.pg_depend d
                 JOIN pg_catalog.pg_rewrite w ON d.classid = 'pg_catalog.pg_rewrite'::regclass
                      AND d.objid = w.oid
                WHERE w.ev_class = c.oid AND d.refclassid = 'pg_catalog.pg_proc'::regclass
                  AND d.refobjid = 'taskguard._tenant_visible(text)'::regprocedure)
         ORDER BY c.oid
    LOOP
        EXECUTE format('ALTER VIEW %s SET (security_barrier = true)', v_view);
    END LOOP;
END
$$;

-- Nothing for PUBLIC on what this update adds.
REVOKE ALL ON taskguard.tenant_bound_role FROM PUBLIC;
REVOKE ALL ON ROUTINE taskguard._tenant_caller(), taskguard._tenant_member_bind() FROM PUBLIC;

-- Roles 0.1.0's grant_access gave the worker or reader level lose what those
-- levels no longer give (table writes, sequences, internal helpers, breaker
-- force/reset): all their privileges on the schema's objects are taken back
-- and their levels granted again from the new plan.  Admins (EXECUTE on
-- tick(), given to no other level) keep everything.  Levels are read from
-- direct grants only, as grant_access gave them.
DO $$
DECLARE
    v_role   oid;
    v_worker boolean;
    v_reader boolean;
BEGIN
    FOR v_role IN
        SELECT DISTINCT a.grantee
          FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
         WHERE c.relnamespace = 'taskguard'::regnamespace AND a.grantee <> 0
           AND a.grantee <> c.relowner
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) x
                            WHERE p.oid = 'taskguard.tick()'::regprocedure AND x.grantee = a.grantee)
    LOOP
        SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) x
                        WHERE p.pronamespace = 'taskguard'::regnamespace AND p.proname = 'claim'
                          AND x.grantee = v_role) INTO v_worker;
        SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) x
                        WHERE c.oid = 'taskguard.dashboard'::regclass AND x.grantee = v_role)
          INTO v_reader;
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA taskguard FROM %s', v_role::regrole);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA taskguard FROM %s', v_role::regrole);
        EXECUTE format('REVOKE ALL ON ALL ROUTINES IN SCHEMA taskguard FROM %s', v_role::regrole);
        IF v_worker THEN
            PERFORM taskguard._access_apply(pg_catalog.pg_get_userbyid(v_role), 'worker', true);
        END IF;
        IF v_reader THEN
            PERFORM taskguard._access_apply(pg_catalog.pg_get_userbyid(v_role), 'reader', true);
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- dlq_purge
-- class 6: a purged open record's waiting task is cancelled, not left failed forever
-- Delete records in the given statuses whose last activity is older than
-- older_than.  A queue task still waiting on a purged record for its retry
-- (status failed) would wait forever with no record: it is cancelled.
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
        RAISE EXCEPTION 'statuses must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
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
