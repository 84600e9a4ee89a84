-- 97_task_ring_slot.sql (issue 18): the hot writers name the current slot's
-- partition.  28_task_ring.sql (included by 94c) makes the views
-- taskguard_ring_<gen>.task_slot and _task_ring_path(); enqueue and
-- enqueue_many insert through the current one, complete and complete_many
-- update through it and fall back to the parent for tasks of earlier slots.
-- claim() names task_slot too: 98_claim_mark_gens restates it.

CREATE OR REPLACE FUNCTION taskguard.enqueue(task_name text, args jsonb DEFAULT '{}',
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

CREATE OR REPLACE FUNCTION taskguard.enqueue_many(task_name text, args jsonb[],
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

CREATE OR REPLACE FUNCTION taskguard.complete(task_id bigint, result jsonb DEFAULT NULL, attempt int DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION taskguard.complete_many(task_ids bigint[], attempts int[] DEFAULT NULL)
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
