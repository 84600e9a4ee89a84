-- 96_tenant_claim_mark.sql (issue 24): a claim mark per (queue, tenant),
-- beside the per-queue marks of 82_claim (src/claim_mark.c).  A tenant-bound
-- claim starts its scan of task_ready_tenant_idx at its tenant's mark, past
-- the entries its tenant's earlier claims left behind, and raises it now and
-- then, as the unmapped claim does with the queue's mark.

CREATE FUNCTION taskguard._claim_tenant_mark(queue text, tenant text, OUT neg_score real,
    OUT run_at timestamptz, OUT id bigint, OUT epoch bigint, OUT raise boolean)
AS 'MODULE_PATHNAME', 'taskguard_claim_tenant_mark'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._claim_tenant_mark_raise(queue text, tenant text, epoch bigint,
    neg_score real, run_at timestamptz, id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_claim_tenant_mark_raise'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Ready tasks of one tenant-bound caller: the tenant index serves one tenant
-- in claim order, from its (queue, tenant) claim mark; several tenants are
-- merged by a sort of their own rows.
CREATE OR REPLACE FUNCTION taskguard._claim_tenants(queue text, worker text, batch int, lease interval,
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

-- Access as 90_access.sql leaves a fresh install: nothing for PUBLIC, every
-- function for admins (told by a privilege only admins have).
REVOKE ALL ON FUNCTION taskguard._claim_tenant_mark(text, text),
    taskguard._claim_tenant_mark_raise(text, text, bigint, real, timestamptz, bigint) FROM PUBLIC;
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
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._claim_tenant_mark(text, text), '
                           'taskguard._claim_tenant_mark_raise(text, text, bigint, real, timestamptz, bigint) TO %s',
                           v_role);
        END IF;
    END LOOP;
END
$$;
