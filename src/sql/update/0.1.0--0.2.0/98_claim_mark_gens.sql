-- 98_claim_mark_gens.sql (issue 18): the claim mark also holds the ring's
-- partitions that may hold a queue's ready rows (src/claim_mark.c), and
-- claim() looks only in the current slot's partition while no other does:
-- _claim_mark gains OUT gens and slot_only, _claim_mark_raise an argument
-- gens; claim() names task_slot, which taskguard_ring_all.task_slot (the
-- whole table, made by 94c's include of 28_task_ring.sql) stands for while
-- other partitions hold ready rows.
DROP FUNCTION taskguard._claim_mark(text);
DROP FUNCTION taskguard._claim_mark_raise(text, bigint, real, timestamptz, bigint);

CREATE FUNCTION taskguard._claim_mark(queue text, OUT neg_score real, OUT run_at timestamptz,
    OUT id bigint, OUT epoch bigint, OUT raise boolean, OUT gens int[], OUT slot_only boolean)
AS 'MODULE_PATHNAME', 'taskguard_claim_mark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._claim_mark_raise(queue text, epoch bigint, neg_score real,
    run_at timestamptz, id bigint, gens int[] DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_claim_mark_raise'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

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


-- Access as 90_access.sql leaves a fresh install: nothing for PUBLIC, every
-- function for admins (told by a privilege only admins have).
REVOKE ALL ON FUNCTION taskguard._claim_mark(text),
    taskguard._claim_mark_raise(text, bigint, real, timestamptz, bigint, int[]) FROM PUBLIC;
DO $$
DECLARE
    v_role regrole;
BEGIN
    FOR v_role IN
        SELECT DISTINCT a.grantee::regrole
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname = 'taskguard' AND a.privilege_type = 'USAGE'
           AND a.grantee <> n.nspowner AND a.grantee <> 0
    LOOP
        IF pg_catalog.has_table_privilege(v_role, 'taskguard.retry_policy', 'INSERT') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._claim_mark(text), '
                           'taskguard._claim_mark_raise(text, bigint, real, timestamptz, bigint, int[]) TO %s',
                           v_role);
        END IF;
    END LOOP;
END
$$;
