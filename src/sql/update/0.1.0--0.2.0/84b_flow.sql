-- 0.2.0 flow control (issue 19, docs/flow.md): enqueue() and enqueue_many()
-- take flow_key (enqueue also the debounce arguments) and claim() takes the
-- flow path while a pause or limit concerns its queue.  New signatures: the
-- old functions were dropped by 84_flow_control.sql; the roles that could
-- run them get the new ones (below).

CREATE FUNCTION taskguard.enqueue(task_name text, args jsonb DEFAULT '{}',
    queue text DEFAULT 'default', run_at timestamptz DEFAULT now(),
    priority taskguard.priority DEFAULT NULL, tenant text DEFAULT NULL,
    customer_tier text DEFAULT 'standard', service text DEFAULT NULL,
    idempotency_key text DEFAULT NULL, max_attempts int DEFAULT NULL,
    flow_key text DEFAULT NULL, debounce_key text DEFAULT NULL,
    debounce interval DEFAULT NULL, debounce_max interval DEFAULT NULL)
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
    IF flow_key IS NOT NULL OR debounce_key IS NOT NULL OR debounce IS NOT NULL
       OR debounce_max IS NOT NULL THEN
        PERFORM taskguard._check_flow_args(flow_key, debounce_key, debounce, debounce_max);
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

    IF debounce_key IS NOT NULL THEN
        v_id := taskguard._enqueue_debounced(queue, task_name, coalesce(args, '{}'),
            v_prio.priority, v_prio.score, coalesce(run_at, now()) + coalesce(debounce, '0'),
            max_attempts, v_tenant, v_tier, service, idempotency_key, flow_key, debounce_key,
            debounce_max);
    ELSE
        INSERT INTO taskguard.task AS t (queue, task_name, args, priority, priority_score, run_at,
                                         max_attempts, tenant, customer_tier, service,
                                         idempotency_key, flow_key)
        VALUES (queue, task_name, coalesce(args, '{}'), v_prio.priority, v_prio.score,
                coalesce(run_at, now()), max_attempts, v_tenant, v_tier, service,
                idempotency_key, flow_key)
        RETURNING t.id INTO v_id;
    END IF;

    IF idempotency_key IS NOT NULL THEN
        v_id := taskguard._idempotency_bind(idempotency_key, v_tenant, task_name, v_id);
    END IF;
    IF coalesce(run_at, now()) + coalesce(debounce, interval '0') <= now() THEN
        PERFORM taskguard._notify(queue);
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION taskguard.enqueue_many(task_name text, args jsonb[],
    queue text DEFAULT 'default', run_at timestamptz DEFAULT now(),
    priority taskguard.priority DEFAULT NULL, tenant text DEFAULT NULL,
    customer_tier text DEFAULT 'standard', service text DEFAULT NULL,
    flow_key text DEFAULT NULL)
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
    IF flow_key IS NOT NULL THEN
        PERFORM taskguard._check_flow_args(flow_key, NULL, NULL, NULL);
    END IF;
    IF priority IS NULL THEN
        v_prio := taskguard.calculate_priority(task_name, jsonb_build_object('customer_tier', v_tier));
    ELSE
        v_prio := (priority, taskguard._priority_score(priority), NULL, NULL);
    END IF;

    RETURN QUERY
    INSERT INTO taskguard.task AS t (queue, task_name, args, priority, priority_score, run_at,
                                     tenant, customer_tier, service, flow_key)
    SELECT enqueue_many.queue, enqueue_many.task_name, coalesce(a.arg, '{}'), v_prio.priority,
           v_prio.score, coalesce(enqueue_many.run_at, now()), v_tenant, v_tier, enqueue_many.service,
           enqueue_many.flow_key
      FROM unnest(args) WITH ORDINALITY AS a(arg, ord)
     ORDER BY a.ord
    RETURNING t.id;

    IF FOUND AND coalesce(run_at, now()) <= now() THEN
        PERFORM taskguard._notify(queue);
    END IF;
END
$$;

-- Ready tasks of one tenant-bound caller: the tenant index serves one tenant
-- in claim order; several tenants are merged by a sort of their own rows.
CREATE OR REPLACE FUNCTION taskguard._claim_tenants(queue text, worker text, batch int, lease interval,
    scope text[])
RETURNS SETOF taskguard.task
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 10
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_tenant text := CASE WHEN cardinality(scope) = 1 THEN scope[1] END;
BEGIN
    IF v_tenant IS NOT NULL AND batch = 1 THEN
        RETURN QUERY
        UPDATE taskguard.task t
           SET status = 'running', attempts = t.attempts + 1, started_at = now(),
               worker = _claim_tenants.worker, lease_expires_at = now() + lease, debounce_key = NULL
         WHERE t.id = (SELECT p.id FROM taskguard.task p
                        WHERE p.queue = _claim_tenants.queue AND p.tenant = v_tenant
                          AND p.status = 'ready' AND p.run_at <= now()
                          AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                        ORDER BY -p.priority_score, p.run_at, p.id
                        LIMIT 1
                        FOR UPDATE SKIP LOCKED)
           AND (t.service IS NULL OR taskguard._breaker_claimed(t.service))
        RETURNING t.*;
        RETURN;
    END IF;

    -- one tenant: its ordered index range; several: a sort of their rows
    RETURN QUERY
    WITH picked AS (
        SELECT t.id, t.service FROM taskguard.task t
         WHERE t.queue = _claim_tenants.queue AND t.tenant = v_tenant
           AND t.status = 'ready' AND t.run_at <= now()
           AND (t.service IS NULL OR NOT taskguard._breaker_is_open(t.service))
         ORDER BY -t.priority_score, t.run_at, t.id
         LIMIT batch
         FOR UPDATE SKIP LOCKED),
    picked_many AS (
        SELECT t.id, t.service FROM taskguard.task t
         WHERE v_tenant IS NULL AND t.queue = _claim_tenants.queue AND t.tenant = ANY (scope)
           AND t.status = 'ready' AND t.run_at <= now()
           AND (t.service IS NULL OR NOT taskguard._breaker_is_open(t.service))
         ORDER BY -t.priority_score, t.run_at, t.id
         LIMIT batch
         FOR UPDATE SKIP LOCKED),
    allowed AS (
        SELECT p.id FROM (SELECT * FROM picked UNION ALL SELECT * FROM picked_many) p
         WHERE p.service IS NULL OR taskguard._breaker_claimed(p.service)),
    claimed AS (
        UPDATE taskguard.task t
           SET status = 'running', attempts = t.attempts + 1, started_at = now(),
               worker = _claim_tenants.worker, lease_expires_at = now() + lease, debounce_key = NULL
         WHERE t.id = ANY (ARRAY(SELECT a.id FROM allowed a))
        RETURNING t.*)
    SELECT c.* FROM claimed c ORDER BY -c.priority_score, c.run_at, c.id;
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
    m       record;
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
    -- Flow control (32_flow.sql): only while a pause or limit concerns the queue.
    IF taskguard._flow_active(queue) THEN
        RETURN QUERY SELECT * FROM taskguard._claim_flow(queue, worker, batch, lease, v_scope);
        RETURN;
    END IF;
    IF v_scope IS NOT NULL THEN
        RETURN QUERY SELECT * FROM taskguard._claim_tenants(queue, worker, batch, lease, v_scope);
        RETURN;
    END IF;

    -- Where the queue's ready tasks start (a statement of its own: the
    -- raise below needs a snapshot taken after this read).
    m := taskguard._claim_mark(queue);

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
               worker = claim.worker, lease_expires_at = now() + lease, debounce_key = NULL
         WHERE t.id = (SELECT p.id FROM taskguard.task p
                        WHERE p.queue = claim.queue AND p.status = 'ready' AND p.run_at <= now()
                          AND (-p.priority_score, p.run_at, p.id) >= (m.neg_score, m.run_at, m.id)
                          AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                        ORDER BY -p.priority_score, p.run_at, p.id
                        LIMIT 1
                        FOR UPDATE SKIP LOCKED)
           AND (t.service IS NULL OR taskguard._breaker_claimed(t.service))
        RETURNING t.*;
    ELSE
        RETURN QUERY
        WITH picked AS (
            SELECT t.id, t.service FROM taskguard.task t
             WHERE t.queue = claim.queue AND t.status = 'ready' AND t.run_at <= now()
               AND (-t.priority_score, t.run_at, t.id) >= (m.neg_score, m.run_at, m.id)
               AND (t.service IS NULL OR NOT taskguard._breaker_is_open(t.service))
             ORDER BY -t.priority_score, t.run_at, t.id
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
                   worker = claim.worker, lease_expires_at = now() + lease, debounce_key = NULL
             WHERE t.id = ANY (ARRAY(SELECT a.id FROM allowed a))
            RETURNING t.*)
        -- handed out in claim order, so a worker runs the most urgent first
        SELECT c.* FROM claimed c ORDER BY -c.priority_score, c.run_at, c.id;
    END IF;

    -- Now and then move the mark up to the first ready row, due or not,
    -- locked or not (a claim in flight may yet roll back).
    IF m.raise THEN
        PERFORM taskguard._claim_mark_raise(claim.queue, m.epoch, f.neg_score, f.run_at, f.id)
           FROM (SELECT) AS one
           LEFT JOIN LATERAL (
               SELECT -p.priority_score AS neg_score, p.run_at, p.id FROM taskguard.task p
                WHERE p.queue = claim.queue AND p.status = 'ready'
                  AND (-p.priority_score, p.run_at, p.id) >= (m.neg_score, m.run_at, m.id)
                ORDER BY -p.priority_score, p.run_at, p.id
                LIMIT 1) AS f ON true;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION taskguard.enqueue(text, jsonb, text, timestamptz, taskguard.priority, text,
    text, text, text, int, text, text, interval, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard.enqueue_many(text, jsonb[], text, timestamptz, taskguard.priority,
    text, text, text, text) FROM PUBLIC;
REVOKE ALL ON taskguard.flow_limit, taskguard.flow_pause FROM PUBLIC;
DO $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'taskguard'::regnamespace
           AND (p.proname LIKE '\_flow\_%' OR p.proname IN ('_claim_flow', '_enqueue_debounced',
                '_check_flow_args', 'pause', 'resume'))
    LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', v_fn);
    END LOOP;
END
$$;

-- Roles granted a level under 0.1.0 get what their level gives of the new
-- and re-created objects (_access_plan): every level reads every table;
-- workers and admins enqueue; admins edit flow_limit and flow_pause and run
-- pause() and resume().  The level is told by a privilege only it has.
DO $$
DECLARE
    v_role regrole;
    v_fn   regprocedure;
BEGIN
    FOR v_role IN
        SELECT DISTINCT a.grantee::regrole
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname = 'taskguard' AND a.privilege_type = 'USAGE'
           AND a.grantee <> n.nspowner AND a.grantee <> 0
    LOOP
        EXECUTE format('GRANT SELECT ON taskguard.flow_limit, taskguard.flow_pause TO %s', v_role);
        IF pg_catalog.has_function_privilege(v_role,
               'taskguard.claim(text, text, int, interval)', 'EXECUTE') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard.enqueue(text, jsonb, text, timestamptz, '
                           'taskguard.priority, text, text, text, text, int, text, text, interval, '
                           'interval), taskguard.enqueue_many(text, jsonb[], text, timestamptz, '
                           'taskguard.priority, text, text, text, text) TO %s', v_role);
        END IF;
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.task', 'INSERT') THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON taskguard.flow_limit, '
                           'taskguard.flow_pause TO %s', v_role);
            FOR v_fn IN
                SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
                 WHERE p.pronamespace = 'taskguard'::regnamespace
                   AND (p.proname LIKE '\_flow\_%' OR p.proname IN ('_claim_flow',
                        '_enqueue_debounced', '_check_flow_args', 'pause', 'resume'))
            LOOP
                EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %s', v_fn, v_role);
            END LOOP;
        END IF;
    END LOOP;
END
$$;
