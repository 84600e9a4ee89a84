-- 30_queue.sql — the task queue (docs/reference.md#queue): every change of a
-- task's status — enqueue, claim, complete, heartbeat, release, cancel,
-- requeue, fail, due retries back to ready, lease reaping — and pruning.
--
-- Hooks into other capabilities are plain functions defined in their own files
-- (taskguard._breaker_is_open, _breaker_claimed, _breaker_task_done,
-- _idempotency_find, _idempotency_bind, _dlq_task_succeeded, _dlq_record); PL/pgSQL resolves
-- them at call time.

-- The table taskguard.task and its indexes: 28_task_ring.sql (a ring of partitions).

-- Refuse a NULL where a value is required, naming the argument.
CREATE FUNCTION taskguard._require(value anyelement, argname text)
RETURNS anyelement
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be NULL', argname
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN value;
END
$$;

-- Validate the common enqueue arguments; raises invalid_parameter_value.
CREATE FUNCTION taskguard._check_enqueue(task_name text, queue text, run_at timestamptz,
                                         max_attempts int)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    PERFORM taskguard._require(task_name, 'task_name');
    IF task_name = '' OR length(task_name) > 1000 THEN
        RAISE EXCEPTION 'task_name must be 1 to 1000 characters, got %', length(task_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF queue IS NULL OR queue = '' OR length(queue) > 200 THEN
        RAISE EXCEPTION 'queue must be 1 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF run_at IS NOT NULL AND NOT isfinite(run_at) THEN
        RAISE EXCEPTION 'run_at must be a finite timestamp, got %', run_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_attempts IS NOT NULL AND max_attempts < 1 THEN
        RAISE EXCEPTION 'max_attempts must be at least 1, got %', max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION taskguard._notify(queue text)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_notify'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._send_pending_notifies()
RETURNS int
AS 'MODULE_PATHNAME', 'taskguard_send_pending_notifies'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

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
    -- the current slot's partition by name (28_task_ring.sql); first, so that
    -- every statement below is planned under the one search_path
    PERFORM pg_catalog.set_config('search_path', taskguard._task_ring_path(), true);
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
        INSERT INTO task_slot AS t (id, gen, queue, task_name, args, priority, priority_score,
                                    run_at, max_attempts, tenant, customer_tier, service,
                                    idempotency_key, flow_key)
        VALUES (nextval('taskguard.task_id_seq'), taskguard._task_gen(), queue, task_name,
                coalesce(args, '{}'), v_prio.priority, v_prio.score,
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
    -- the current slot's partition by name (28_task_ring.sql); first, so that
    -- every statement below is planned under the one search_path
    PERFORM pg_catalog.set_config('search_path', taskguard._task_ring_path(), true);
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
    -- ids in the order of args: nextval runs after the sort
    INSERT INTO task_slot AS t (id, gen, queue, task_name, args, priority, priority_score, run_at,
                                tenant, customer_tier, service, flow_key)
    SELECT nextval('taskguard.task_id_seq'), taskguard._task_gen(),
           enqueue_many.queue, enqueue_many.task_name, coalesce(a.arg, '{}'), v_prio.priority,
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

-- Claim marks (src/claim_mark.c): where a queue's ready tasks start in claim
-- order, so that claim() skips the versions earlier claims left behind, which
-- vacuum cannot remove while another session holds an old snapshot; and the
-- partitions of the ring that may hold them (slot_only: none but the current
-- slot's).
CREATE FUNCTION taskguard._claim_mark(queue text, OUT neg_score real, OUT run_at timestamptz,
    OUT id bigint, OUT epoch bigint, OUT raise boolean, OUT gens int[], OUT slot_only boolean)
AS 'MODULE_PATHNAME', 'taskguard_claim_mark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._claim_mark_raise(queue text, epoch bigint, neg_score real,
    run_at timestamptz, id bigint, gens int[] DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_claim_mark_raise'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The same per (queue, tenant), for a tenant-bound claim's range of
-- task_ready_tenant_idx (_claim_tenants).
CREATE FUNCTION taskguard._claim_tenant_mark(queue text, tenant text, OUT neg_score real,
    OUT run_at timestamptz, OUT id bigint, OUT epoch bigint, OUT raise boolean)
AS 'MODULE_PATHNAME', 'taskguard_claim_tenant_mark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._claim_tenant_mark_raise(queue text, tenant text, epoch bigint,
    neg_score real, run_at timestamptz, id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_claim_tenant_mark_raise'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._claim_mark_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_claim_mark_trigger'
LANGUAGE C;

-- Every row written ready lowers its queue's mark at commit, whoever wrote
-- it; ALWAYS, so that rows a logical-replication apply worker writes do too.
CREATE TRIGGER task_claim_mark BEFORE INSERT OR UPDATE ON taskguard.task
    FOR EACH ROW WHEN (NEW.status = 'ready') EXECUTE FUNCTION taskguard._claim_mark_trigger();
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_claim_mark;

-- Ready tasks of one tenant-bound caller: the tenant index serves one tenant
-- in claim order, from its (queue, tenant) claim mark; several tenants are
-- merged by a sort of their own rows.
CREATE FUNCTION taskguard._claim_tenants(queue text, worker text, batch int, lease interval,
    scope text[])
RETURNS SETOF taskguard.task
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 10
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_sort = off SET jit = off  -- 28_task_ring.sql "Plans"
AS $$
DECLARE
    v_tenant text := CASE WHEN cardinality(scope) = 1 THEN scope[1] END;
    m        record;
BEGIN
    -- Where the tenant's ready tasks start (a statement of its own, as in
    -- claim(); several tenants: no mark).  Now and then, in the next
    -- statement, move the mark up to the tenant's first ready row, due or
    -- not, locked or not: before the pick, so it never passes this claim.
    m := taskguard._claim_tenant_mark(queue, v_tenant);
    IF m.raise THEN
        PERFORM taskguard._claim_tenant_mark_raise(_claim_tenants.queue, v_tenant, m.epoch,
                                                   f.neg_score, f.run_at, f.id)
           FROM (SELECT) AS one
           LEFT JOIN LATERAL (
               SELECT -p.priority_score AS neg_score, p.run_at, p.id FROM taskguard.task p
                WHERE p.queue = _claim_tenants.queue AND p.tenant = v_tenant AND p.status = 'ready'
                  AND (-p.priority_score, p.run_at, p.id) >= (m.neg_score, m.run_at, m.id)
                ORDER BY -p.priority_score, p.run_at, p.id
                LIMIT 1) AS f ON true;
    END IF;

    IF v_tenant IS NOT NULL AND batch = 1 THEN
        RETURN QUERY
        UPDATE taskguard.task t
           SET status = 'running', attempts = t.attempts + 1, started_at = now(),
               worker = _claim_tenants.worker, lease_expires_at = now() + lease, debounce_key = NULL
         -- (id, gen): the update prunes to the picked row's partition at run time
         WHERE (t.id, t.gen) = (SELECT p.id, p.gen FROM taskguard.task p
                        WHERE p.queue = _claim_tenants.queue AND p.tenant = v_tenant
                          AND p.status = 'ready' AND p.run_at <= now()
                          AND (-p.priority_score, p.run_at, p.id) >= (m.neg_score, m.run_at, m.id)
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
           AND (-t.priority_score, t.run_at, t.id) >= (m.neg_score, m.run_at, m.id)
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

CREATE FUNCTION taskguard.claim(queue text DEFAULT 'default', worker text DEFAULT NULL,
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
SET enable_seqscan = off SET enable_sort = off SET jit = off  -- 28_task_ring.sql "Plans"
AS $$
DECLARE
    -- the caller's tenants (NULL: all); the owner's rights bypass row security
    v_scope text[] := taskguard._tenant_scope();
    m       record;
    v_id      bigint;
    v_service text;
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
    -- Where they are: the statements below name task_slot, the current
    -- slot's partition when no other holds a ready task of the queue, else
    -- the whole table (28_task_ring.sql).  A cached plan is made again when
    -- its search_path changes: at a slot's start, and when a backlog older
    -- than the slot is gone.
    PERFORM pg_catalog.set_config('search_path',
        CASE WHEN m.slot_only THEN taskguard._task_ring_path()
             ELSE 'pg_catalog, taskguard, taskguard_ring_all, pg_temp' END, true);

    -- One task (a worker's single mode): the same pick, breaker check and
    -- update as below without the array and the sort (7 % less CPU a task in
    -- four A/B runs, bench/README.md run E).
    -- The probe of a half-open breaker is taken for the picked row only; a row
    -- whose service has no probe left is not updated and stays ready.
    IF batch = 1 THEN
        SELECT p.id, p.service INTO v_id, v_service
          FROM task_slot p
         WHERE p.queue = claim.queue AND p.status = 'ready' AND p.run_at <= now()
           AND (-p.priority_score, p.run_at, p.id) >= (m.neg_score, m.run_at, m.id)
           AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
         ORDER BY -p.priority_score, p.run_at, p.id
         LIMIT 1
         FOR UPDATE SKIP LOCKED;
        IF v_service IS NOT NULL AND NOT taskguard._breaker_claimed(v_service) THEN
            v_id := NULL;
        END IF;
        IF v_id IS NOT NULL THEN
            RETURN QUERY
            UPDATE task_slot t
               SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                   worker = claim.worker, lease_expires_at = now() + lease, debounce_key = NULL
             WHERE t.id = v_id
            RETURNING t.*;
        END IF;
    ELSE
        RETURN QUERY
        WITH picked AS (
            SELECT t.id, t.service FROM task_slot t
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
            UPDATE task_slot t
               SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                   worker = claim.worker, lease_expires_at = now() + lease, debounce_key = NULL
             WHERE t.id = ANY (ARRAY(SELECT a.id FROM allowed a))
            RETURNING t.*)
        -- handed out in claim order, so a worker runs the most urgent first
        SELECT c.* FROM claimed c ORDER BY -c.priority_score, c.run_at, c.id;
    END IF;

    -- Now and then move the mark up to the first ready row, due or not,
    -- locked or not (a claim in flight may yet roll back), and tell which
    -- partitions hold ready rows: the first of each partition the mark had.
    IF m.raise THEN
        PERFORM taskguard._claim_mark_raise(claim.queue, m.epoch, f.neg_score, f.run_at, f.id, f.gens)
           FROM (SELECT) AS one
           LEFT JOIN LATERAL (
               SELECT x.neg_score, x.run_at, x.id, array_agg(x.gen) OVER () AS gens
                 FROM unnest(m.gens) AS g(gen)
                 CROSS JOIN LATERAL (
                     SELECT p.gen, -p.priority_score AS neg_score, p.run_at, p.id FROM task_slot p
                      WHERE p.gen = g.gen AND p.queue = claim.queue AND p.status = 'ready'
                        AND (-p.priority_score, p.run_at, p.id) >= (m.neg_score, m.run_at, m.id)
                      ORDER BY -p.priority_score, p.run_at, p.id
                      LIMIT 1) AS x
                ORDER BY x.neg_score, x.run_at, x.id
                LIMIT 1) AS f ON true;
    END IF;
END
$$;

CREATE FUNCTION taskguard.complete(task_id bigint, result jsonb DEFAULT NULL, attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
AS $$
DECLARE
    v_task taskguard.task;
BEGIN
    -- the current slot's partition by name (28_task_ring.sql); first, so that
    -- every statement below is planned under the one search_path
    PERFORM pg_catalog.set_config('search_path', taskguard._task_ring_path(), true);
    UPDATE task_slot t
       SET status = 'succeeded', finished_at = now(), result = complete.result,
           lease_expires_at = NULL
     WHERE t.id = task_id AND t.status = 'running'
       AND (attempt IS NULL OR t.attempts = attempt) AND taskguard._tenant_visible(t.tenant)
    RETURNING t.* INTO v_task;
    IF NOT FOUND THEN
        -- claimed in an earlier slot, or moved by a rotation meanwhile: the
        -- parent locks every partition before its snapshot, so it finds the
        -- task wherever it is
        UPDATE taskguard.task t
           SET status = 'succeeded', finished_at = now(), result = complete.result,
               lease_expires_at = NULL
         WHERE t.id = task_id AND t.status = 'running'
           AND (attempt IS NULL OR t.attempts = attempt) AND taskguard._tenant_visible(t.tenant)
        RETURNING t.* INTO v_task;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
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

CREATE FUNCTION taskguard.complete_many(task_ids bigint[], attempts int[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
-- and no nested loop: see the join below
SET enable_nestloop = off
AS $$
DECLARE
    v_done int;
BEGIN
    -- the current slot's partition by name (28_task_ring.sql); first, so that
    -- every statement below is planned under the one search_path
    PERFORM pg_catalog.set_config('search_path', taskguard._task_ring_path(), true);
    IF task_ids IS NULL THEN
        RETURN 0;
    END IF;
    IF attempts IS NOT NULL AND cardinality(attempts) <> cardinality(task_ids) THEN
        RAISE EXCEPTION 'attempts has % elements but task_ids has %',
            cardinality(attempts), cardinality(task_ids)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- "t.id = ANY (task_ids)" repeats the join's condition so that a plan
    -- made while the partition was empty still reads only these keys
    -- (28_task_ring.sql "Plans"); with it, a nested loop put the ids inside
    -- and compared every row with every id (2.9 s for 10,000), hence the hash
    -- join.  The functions this one calls update one row by key, no join.
    WITH done AS (
        UPDATE task_slot t
           SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL
          FROM unnest(task_ids, complete_many.attempts) AS w(id, attempt)
         WHERE t.id = w.id AND t.id = ANY (task_ids) AND t.status = 'running'
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
    IF v_done = cardinality(task_ids) THEN
        RETURN v_done;
    END IF;

    -- The rest through the parent, as in complete(); the rows done above are
    -- no longer running.
    WITH done AS (
        UPDATE taskguard.task t
           SET status = 'succeeded', finished_at = now(), lease_expires_at = NULL
          FROM unnest(task_ids, complete_many.attempts) AS w(id, attempt)
         WHERE t.id = w.id AND t.id = ANY (task_ids) AND t.status = 'running'
           AND (w.attempt IS NULL OR t.attempts = w.attempt) AND taskguard._tenant_visible(t.tenant)
        RETURNING t.id, t.failure_id, t.service),
    dlq AS (
        SELECT taskguard._dlq_task_succeeded(d.id, d.failure_id)
          FROM done d WHERE d.failure_id IS NOT NULL),
    brk AS (
        SELECT taskguard._breaker_task_done(d.service, true)
          FROM done d WHERE d.service IS NOT NULL)
    SELECT v_done + count(*) + 0 * (SELECT count(*) FROM dlq) + 0 * (SELECT count(*) FROM brk)
      INTO v_done FROM done;
    RETURN v_done;
END
$$;

CREATE FUNCTION taskguard.heartbeat(task_id bigint, lease interval DEFAULT '5 minutes',
                                    attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
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
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
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

-- Cancel a task that has not finished; an open DLQ record is abandoned with it.
CREATE FUNCTION taskguard.cancel(task_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
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
CREATE FUNCTION taskguard.requeue(task_id bigint, priority taskguard.priority DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
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

-- ---------------------------------------------------------------------------
-- running -> failed, and failed -> ready when its retry is due.  What a
-- failure becomes (its dead-letter record, the retry's time and priority)
-- is 50_dlq.sql's _dlq_record and 20_retry.sql's policy; the task's status
-- changes here, like every other status change of a task.

-- A worker reports that its attempt failed (docs/reference.md#queue, #dlq).
CREATE FUNCTION taskguard.fail(task_id bigint, error_type text, message text DEFAULT NULL,
    context jsonb DEFAULT '{}', attempt int DEFAULT NULL)
RETURNS taskguard.failure_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
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

-- Scheduler step: due PENDING records of queue tasks become RETRYING and
-- their tasks ready, at a recomputed priority; services with an open
-- breaker wait.  Returns how many tasks were put back.
CREATE FUNCTION taskguard._requeue_due_retries(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
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

-- Scheduler step: expired leases become taskguard.LeaseExpired failures.
-- Where the reaper and pruning start (src/scan_window.c): the recent part of
-- their range, or all of it when this process has not finished a full scan
-- of the step for a while.
CREATE FUNCTION taskguard._scan_since(step text, recent timestamptz)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'taskguard_scan_since'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._scan_full_done(step text)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_scan_full_done'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._reap_expired_leases(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
AS $$
DECLARE
    v_task  record;
    v_n     int := 0;
    -- the last two minutes of expiries: older ones were reaped by earlier passes
    v_since timestamptz := taskguard._scan_since('reap_leases', now() - interval '2 minutes');
BEGIN
    FOR v_task IN
        SELECT t.id, t.attempts, t.worker, t.lease_expires_at FROM taskguard.task t
         WHERE t.status = 'running' AND t.lease_expires_at < now()
           AND t.lease_expires_at >= v_since
         ORDER BY t.lease_expires_at
         LIMIT batch
         FOR UPDATE SKIP LOCKED
    LOOP
        PERFORM taskguard.fail(v_task.id, 'taskguard.LeaseExpired',
            format('lease expired at %s (worker %s)', v_task.lease_expires_at,
                   coalesce(v_task.worker, 'unknown')),
            '{}', v_task.attempts);
        v_n := v_n + 1;
    END LOOP;
    IF v_since = '-infinity' AND v_n < batch THEN
        PERFORM taskguard._scan_full_done('reap_leases');
    END IF;
    RETURN v_n;
END
$$;

-- The one batched delete of the scheduler's pruning steps: at most batch rows
-- of tbl (alias x) for which cond holds, picked once, oldest first by
-- order_by when given, rows another transaction holds skipped when
-- skip_locked.  $1 and $2 in cond are arg1 and arg2.  Picked by ctid, cond
-- is checked again on the row deleted (a TID scan whatever the plan); picked
-- by a key, it is not, so the delete stays a look-up of that key's index
-- (checked again, the planner may scan an index of cond's columns instead).  = ANY(ARRAY()): the pick runs once (an InitPlan); as
-- `IN (subquery)` a plan cached while the table was small could rescan the
-- subquery for every row (a nested-loop semi join over two seq scans):
-- minutes at 20,000 rows, with the scheduler's snapshot holding back vacuum.
CREATE FUNCTION taskguard._delete_batch(tbl regclass, cond text, batch int,
    order_by text DEFAULT NULL, skip_locked boolean DEFAULT true, key text DEFAULT 'ctid',
    arg1 timestamptz DEFAULT NULL, arg2 timestamptz DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    EXECUTE format('DELETE FROM %1$s x WHERE x.%2$I = ANY (ARRAY('
                   'SELECT x.%2$I FROM %1$s x WHERE %3$s%4$s LIMIT $3%5$s))%6$s',
                   tbl, key, cond, ' ORDER BY ' || order_by,
                   CASE WHEN skip_locked THEN ' FOR UPDATE SKIP LOCKED' ELSE '' END,
                   CASE WHEN key = 'ctid' THEN ' AND ' || cond ELSE '' END)
      USING arg1, arg2, batch;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Scheduler step: delete succeeded and cancelled tasks past task_retention.
CREATE FUNCTION taskguard._prune_tasks(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n      int;
    v_before timestamptz := now() - taskguard._setting_interval('taskguard.task_retention', '1 day');
    -- tasks that passed retention in the last two minutes: older ones were
    -- pruned by earlier passes (src/scan_window.c)
    v_since  timestamptz := taskguard._scan_since('prune_tasks', v_before - interval '2 minutes');
BEGIN
    v_n := taskguard._delete_batch('taskguard.task',
        $c$x.status IN ('succeeded', 'cancelled') AND x.finished_at < $1 AND x.finished_at >= $2$c$,
        batch, key => 'id', arg1 => v_before, arg2 => v_since);
    IF v_since = '-infinity' AND v_n < batch THEN
        PERFORM taskguard._scan_full_done('prune_tasks');
    END IF;
    RETURN v_n;
END
$$;
