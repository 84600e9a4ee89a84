-- 0.2.0: claim() starts at the queue's claim mark (src/claim_mark.c) and a
-- tenant-bound worker's claim reads only its tenant's ready tasks; the lease
-- index no longer attracts complete()/fail()/heartbeat() (see 30_queue.sql).
DROP INDEX taskguard.task_ready_idx;
CREATE INDEX task_ready_idx ON taskguard.task (queue, (-priority_score), run_at, id)
    WHERE status = 'ready';
CREATE INDEX task_ready_tenant_idx ON taskguard.task (tenant, queue, (-priority_score), run_at, id)
    WHERE status = 'ready' AND tenant IS NOT NULL;
DROP INDEX taskguard.task_lease_idx;
CREATE INDEX task_lease_idx ON taskguard.task (lease_expires_at)
    WHERE status = 'running' AND lease_expires_at IS NOT NULL;

-- Claim marks (src/claim_mark.c): where a queue's ready tasks start in claim
-- order, so that claim() skips the versions earlier claims left behind, which
-- vacuum cannot remove while another session holds an old snapshot.
CREATE FUNCTION taskguard._claim_mark(queue text, OUT neg_score real, OUT run_at timestamptz,
    OUT id bigint, OUT epoch bigint, OUT raise boolean)
AS 'MODULE_PATHNAME', 'taskguard_claim_mark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._claim_mark_raise(queue text, epoch bigint, neg_score real,
    run_at timestamptz, id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_claim_mark_raise'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._claim_mark_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_claim_mark_trigger'
LANGUAGE C;

CREATE TRIGGER task_claim_mark BEFORE INSERT OR UPDATE ON taskguard.task
    FOR EACH ROW WHEN (NEW.status = 'ready') EXECUTE FUNCTION taskguard._claim_mark_trigger();
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_claim_mark;

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
               worker = _claim_tenants.worker, lease_expires_at = now() + lease
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
               worker = _claim_tenants.worker, lease_expires_at = now() + lease
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
               worker = claim.worker, lease_expires_at = now() + lease
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
                   worker = claim.worker, lease_expires_at = now() + lease
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

-- A tenant-bound reader's dashboard counts its own ready tasks and reads its
-- own minutes only.
CREATE INDEX activity_minute_tenant_idx ON taskguard.activity_minute (tenant, minute);
CREATE OR REPLACE VIEW taskguard._health_inputs WITH (security_barrier = true) AS
WITH dlq AS (
    SELECT coalesce(sum(c.records) FILTER (WHERE c.status <> 'RESOLVED'), 0)::bigint AS depth,
           coalesce(sum(c.records) FILTER (WHERE c.status = 'PENDING'), 0)::bigint AS pending,
           coalesce(sum(c.records) FILTER (WHERE c.status = 'RETRYING'), 0)::bigint AS retrying,
           coalesce(sum(c.records) FILTER (WHERE c.status = 'ABANDONED'), 0)::bigint AS abandoned,
           -- transient types: records whose retries concluded, and those that recovered
           sum(c.records) FILTER (WHERE c.failure_type::text LIKE 'TRANSIENT%' AND c.by_retry)
               AS t_recovered,
           sum(c.retried) FILTER (WHERE c.failure_type::text LIKE 'TRANSIENT%'
                                    AND c.status = 'ABANDONED') AS t_exhausted
      FROM taskguard._dlq_counts c),
recent AS (
    SELECT coalesce(sum(a.failures) FILTER (
               WHERE a.minute >= date_trunc('minute', now() - interval '1 hour')), 0)::bigint AS failures_1h,
           coalesce(sum(a.abandoned), 0)::bigint AS abandoned_24h
      -- a tenant-bound caller reads its tenants' minutes (activity_minute_tenant_idx),
      -- not every tenant's; one-time filters pick the branch
      FROM (SELECT m.minute, m.tenant, m.failures, m.abandoned FROM taskguard.activity_minute m
             WHERE m.minute >= date_trunc('minute', now() - interval '24 hours')
               AND taskguard._tenant_scope() IS NULL
            UNION ALL
            SELECT m.minute, m.tenant, m.failures, m.abandoned FROM taskguard.activity_minute m
             WHERE m.tenant = ANY (taskguard._tenant_scope())
               AND m.minute >= date_trunc('minute', now() - interval '24 hours')
            UNION ALL
            SELECT d.minute, d.tenant, d.failures, d.abandoned FROM taskguard.event_delta d
             WHERE d.minute >= date_trunc('minute', now() - interval '24 hours')) a
     WHERE a.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v)),
idem AS (
    SELECT coalesce(round(100.0 * sum(i.duplicates) / nullif(sum(i.checks), 0), 2), 0) AS hit_rate
      FROM taskguard.idempotency_stats i),
breakers AS (
    SELECT count(*)::int AS open,
           string_agg(b.service, ', ' ORDER BY b.service) AS services
      FROM taskguard.breaker_status b WHERE b.state = 'open')
-- Tasks running and ready, counted per tenant through the partial indexes,
-- then filtered (OFFSET 0 keeps the tenant check above the GROUP BY: once per
-- tenant, not per row).  Scalar subqueries, so that a query that does not
-- read them (the alerts) does not count them: while another session holds an
-- old snapshot these scans visit a dead version per task claimed since.  A
-- tenant-bound caller's ready tasks are counted in its tenants' range of
-- task_ready_tenant_idx (one-time filters pick the branch); running tasks are
-- few, as many as workers, and all have a lease (claim() sets it), which lets
-- task_lease_idx count them.
SELECT (SELECT coalesce(sum(x.n), 0)::bigint
          FROM (SELECT r.tenant, count(*) AS n FROM taskguard.task r
                 WHERE r.status = 'running' AND r.lease_expires_at IS NOT NULL GROUP BY r.tenant
                OFFSET 0) x
         WHERE taskguard._tenant_visible(x.tenant)) AS running,
       (SELECT coalesce(sum(x.n), 0)::bigint
          FROM (SELECT r.tenant, count(*) AS n FROM taskguard.task r
                 WHERE r.status = 'ready' AND taskguard._tenant_scope() IS NULL GROUP BY r.tenant
                UNION ALL
                SELECT r.tenant, count(*) FROM taskguard.task r
                 WHERE r.status = 'ready' AND r.tenant = ANY (taskguard._tenant_scope())
                 GROUP BY r.tenant
                OFFSET 0) x
         WHERE taskguard._tenant_visible(x.tenant)) AS ready,
       dlq.depth AS dlq_depth, dlq.pending, dlq.retrying, dlq.abandoned,
       recent.abandoned_24h, recent.failures_1h,
       idem.hit_rate AS idempotency_hit_rate_pct,
       breakers.open AS open_breakers, breakers.services AS open_breaker_services,
       taskguard._schedule_health_score() AS schedule_health,
       -- NULL only when no transient record concluded (no data): 0 when every
       -- retried record was abandoned, 100 when every one recovered
       round(100.0 * coalesce(dlq.t_recovered, 0)
             / nullif(coalesce(dlq.t_recovered, 0) + coalesce(dlq.t_exhausted, 0), 0), 2)
           AS retry_success_pct
  FROM dlq, recent, idem, breakers;

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

CREATE OR REPLACE FUNCTION taskguard._reap_expired_leases(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
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

-- No JIT compilation on every scrape (84_prometheus.sql).
ALTER FUNCTION taskguard.prometheus_metrics() SET jit = off;


-- The caller's tenants by key (80_metrics.sql).
CREATE OR REPLACE VIEW taskguard._visible_tenants WITH (security_barrier = true) AS
SELECT m.tenant FROM taskguard.metric_tenant m
 WHERE taskguard._tenant_scope() IS NULL
UNION ALL
SELECT m.tenant FROM taskguard.metric_tenant m
 WHERE m.tenant = ANY (taskguard._tenant_scope()) AND taskguard._tenant_visible(nullif(m.tenant, ''));

CREATE OR REPLACE FUNCTION taskguard._prune_tasks(batch int)
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
    -- ARRAY(): the pick runs once (an InitPlan).  As `IN (subquery)` a plan
    -- cached while the table was small could rescan the subquery for every row
    -- (a nested-loop semi join over two seq scans): minutes at 20,000 tasks,
    -- with the scheduler's snapshot holding back vacuum all the while.
    DELETE FROM taskguard.task t
     WHERE t.id = ANY (ARRAY(
        SELECT p.id FROM taskguard.task p
         WHERE p.status IN ('succeeded', 'cancelled')
           AND p.finished_at < v_before AND p.finished_at >= v_since
         LIMIT batch
         FOR UPDATE SKIP LOCKED));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_since = '-infinity' AND v_n < batch THEN
        PERFORM taskguard._scan_full_done('prune_tasks');
    END IF;
    RETURN v_n;
END
$$;

-- Access as 90_access.sql leaves a fresh install: nothing for PUBLIC, every
-- function for admins (told by a privilege only admins have).
REVOKE ALL ON FUNCTION taskguard._claim_mark(text), taskguard._claim_mark_raise(text, bigint, real, timestamptz, bigint),
    taskguard._claim_mark_trigger(), taskguard._claim_tenants(text, text, int, interval, text[]),
    taskguard._scan_since(text, timestamptz), taskguard._scan_full_done(text) FROM PUBLIC;
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
                           'taskguard._claim_mark_raise(text, bigint, real, timestamptz, bigint), '
                           'taskguard._claim_mark_trigger(), '
                           'taskguard._claim_tenants(text, text, int, interval, text[]), '
                           'taskguard._scan_since(text, timestamptz), taskguard._scan_full_done(text) TO %s', v_role);
        END IF;
    END LOOP;
END
$$;
