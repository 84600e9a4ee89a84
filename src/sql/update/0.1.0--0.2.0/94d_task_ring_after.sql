-- taskguard.task as a ring (94b, 94c): the old table's rows move into the new
-- one, everything that named the old table by its oid (views, functions
-- returning its row type, the dead-letter foreign key, triggers, row
-- security, privileges) is bound to the new one, and the old table goes.

-- The rows, ids kept; then the identity goes on from where the old one was.
-- No row trigger exists yet on the new table (they follow), so nothing counts
-- the rows twice.
DO $$
DECLARE
    v_cols text;
    v_last bigint;
    v_called boolean;
BEGIN
    SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_cols
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = 'taskguard.task'::regclass AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname <> 'gen';
    EXECUTE format('INSERT INTO taskguard.task (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM taskguard.task_pre_ring',
                   v_cols, v_cols);
    SELECT s.last_value, s.is_called INTO v_last, v_called FROM taskguard.task_pre_ring_id_seq s;
    PERFORM pg_catalog.setval('taskguard.task_id_seq', v_last, v_called);
END
$$;

-- dead_letter.task_id: no foreign key (a partitioned table has no unique key
-- on id alone); the statement trigger task_forget_deleted does its ON DELETE
-- SET NULL (50_dlq.sql).
DO $$
DECLARE
    v_con name;
BEGIN
    FOR v_con IN
        SELECT c.conname FROM pg_catalog.pg_constraint c
         WHERE c.conrelid = 'taskguard.dead_letter'::regclass AND c.contype = 'f'
           AND c.confrelid = 'taskguard.task_pre_ring'::regclass
    LOOP
        EXECUTE format('ALTER TABLE taskguard.dead_letter DROP CONSTRAINT %I', v_con);
    END LOOP;
END
$$;

CREATE FUNCTION taskguard._task_forget_deleted()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, taskguard, pg_temp
AS $$
BEGIN
    UPDATE taskguard.dead_letter d SET task_id = NULL
     WHERE d.task_id IN (SELECT g.id FROM gone g);
    RETURN NULL;
END
$$;
CREATE TRIGGER task_forget_deleted AFTER DELETE ON taskguard.task
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
    EXECUTE FUNCTION taskguard._task_forget_deleted();
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_forget_deleted;

-- The row triggers of the queue (30_queue.sql) and of flow control (32_flow.sql).
CREATE TRIGGER task_claim_mark BEFORE INSERT OR UPDATE ON taskguard.task
    FOR EACH ROW WHEN (NEW.status = 'ready') EXECUTE FUNCTION taskguard._claim_mark_trigger();
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_claim_mark;
CREATE TRIGGER task_flow_count BEFORE UPDATE OF status ON taskguard.task
    FOR EACH ROW WHEN ((OLD.status = 'running') <> (NEW.status = 'running'))
    EXECUTE FUNCTION taskguard._flow_task_trigger();
CREATE TRIGGER task_flow_count_insert BEFORE INSERT ON taskguard.task
    FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION taskguard._flow_task_trigger();
CREATE TRIGGER task_flow_count_delete BEFORE DELETE ON taskguard.task
    FOR EACH ROW WHEN (OLD.status = 'running') EXECUTE FUNCTION taskguard._flow_task_trigger();
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_flow_count;
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_flow_count_insert;
ALTER TABLE taskguard.task ENABLE ALWAYS TRIGGER task_flow_count_delete;

-- Views over the old table read the new one: the same definition with the
-- table's name changed (names print qualified under search_path pg_catalog),
-- options (security_barrier) kept.
DO $$
DECLARE
    v_view record;
    v_path text := current_setting('search_path');
BEGIN
    PERFORM set_config('search_path', 'pg_catalog', true);
    FOR v_view IN
        SELECT DISTINCT v.oid::regclass AS name, v.reloptions,
               replace(pg_catalog.pg_get_viewdef(v.oid), 'taskguard.task_pre_ring', 'taskguard.task') AS def
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_rewrite w ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = w.oid
          JOIN pg_catalog.pg_class v ON v.oid = w.ev_class
         WHERE d.refclassid = 'pg_catalog.pg_class'::regclass
           AND d.refobjid = 'taskguard.task_pre_ring'::regclass AND v.relkind = 'v'
    LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s%s AS %s', v_view.name,
                       CASE WHEN v_view.reloptions IS NOT NULL
                            THEN format(' WITH (%s)', array_to_string(v_view.reloptions, ', ')) ELSE '' END,
                       v_view.def);
    END LOOP;
    PERFORM set_config('search_path', v_path, true);
END
$$;

-- Functions returning the old row type (claim() and its paths) are made
-- again returning the new one, with their privileges.
DO $$
DECLARE
    v_fn   record;
    v_role regrole;
    v_path text := current_setting('search_path');
BEGIN
    PERFORM set_config('search_path', 'pg_catalog', true);
    FOR v_fn IN
        SELECT p.oid::regprocedure::text AS sig, p.proacl, p.proowner,
               replace(pg_catalog.pg_get_functiondef(p.oid), 'taskguard.task_pre_ring', 'taskguard.task') AS def
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'taskguard'::regnamespace
           AND (p.prorettype = 'taskguard.task_pre_ring'::regtype
                OR 'taskguard.task_pre_ring'::regtype = ANY (p.proargtypes::oid[]))
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_fn.sig);
        EXECUTE v_fn.def;
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC',
                       replace(v_fn.sig, 'taskguard.task_pre_ring', 'taskguard.task'));
        FOR v_role IN
            SELECT a.grantee::regrole FROM pg_catalog.aclexplode(v_fn.proacl) a
             WHERE a.grantee <> 0 AND a.grantee <> v_fn.proowner
        LOOP
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s',
                           replace(v_fn.sig, 'taskguard.task_pre_ring', 'taskguard.task'), v_role);
        END LOOP;
    END LOOP;
    PERFORM set_config('search_path', v_path, true);
END
$$;

-- Row security on the table and its partitions, as 90_access.sql gives every
-- table with a tenant; what a mapped role stores without a tenant gets its
-- tenant (the parent's default reaches the partitions).
DO $$
DECLARE
    v_rel regclass;
BEGIN
    FOR v_rel IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.oid = 'taskguard.task'::regclass
            OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i
                          WHERE i.inhparent = 'taskguard.task'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_rel);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %s
            USING (coalesce(tenant = ANY ((SELECT taskguard._tenant_scope())::text[]),
                            (SELECT taskguard._tenant_scope()) IS NULL))
            WITH CHECK (coalesce(tenant = ANY ((SELECT taskguard._tenant_scope())::text[]),
                                 (SELECT taskguard._tenant_scope()) IS NULL))$p$, v_rel);
    END LOOP;
END
$$;
ALTER TABLE taskguard.task ALTER COLUMN tenant SET DEFAULT taskguard._effective_tenant(NULL);

-- Privileges: nothing for PUBLIC; the roles that had privileges on the old
-- table and its sequence have them on the new ones (their access level's).
-- The partitions are granted to nobody: they are read through the table.
REVOKE ALL ON taskguard.task, taskguard.task_ring_0, taskguard.task_ring_1, taskguard.task_ring_2,
    taskguard.task_ring_3 FROM PUBLIC;
REVOKE ALL ON SEQUENCE taskguard.task_id_seq FROM PUBLIC;
DO $$
DECLARE
    v_grant record;
BEGIN
    FOR v_grant IN
        SELECT a.grantee::regrole AS role, a.privilege_type, 'TABLE taskguard.task' AS object
          FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
         WHERE c.oid = 'taskguard.task_pre_ring'::regclass AND a.grantee <> 0 AND a.grantee <> c.relowner
        UNION ALL
        SELECT a.grantee::regrole, a.privilege_type, 'SEQUENCE taskguard.task_id_seq'
          FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
         WHERE c.oid = 'taskguard.task_pre_ring_id_seq'::regclass AND a.grantee <> 0
           AND a.grantee <> c.relowner
    LOOP
        EXECUTE format('GRANT %s ON %s TO %s', v_grant.privilege_type, v_grant.object, v_grant.role);
    END LOOP;
END
$$;

-- The old table goes (its sequence with it).
ALTER EXTENSION taskguard DROP TABLE taskguard.task_pre_ring;
ALTER EXTENSION taskguard DROP SEQUENCE taskguard.task_pre_ring_id_seq;
DROP TABLE taskguard.task_pre_ring;

-- Restated: enqueue(debounce_key =>) serialises a key with an advisory lock
-- (no unique index over the ring), the scheduler's step rotate_tasks, the
-- access plan (partitions granted to nobody), claim() by (id, gen).
-- enqueue(debounce_key => …): insert, or replace the args of the ready,
-- unclaimed task with the same tenant, task name and key and move its run_at
-- (never past its first enqueue + debounce_max).  Parameters prefixed: the
-- statements name columns of the same names.
CREATE OR REPLACE FUNCTION taskguard._enqueue_debounced(p_queue text, p_task_name text, p_args jsonb,
    p_priority taskguard.priority, p_score real, p_run_at timestamptz, p_max_attempts int,
    p_tenant text, p_tier text, p_service text, p_idempotency_key text, p_flow_key text,
    p_debounce_key text, p_debounce_max interval)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    -- one enqueuer of a key at a time (the ring's partitions allow no unique
    -- index on the key): the next one's statement sees the task this one made
    PERFORM pg_advisory_xact_lock(hashtext('taskguard.task_debounce'),
                                  hashtext(concat_ws('/', coalesce(p_tenant, ''), p_task_name,
                                                     p_debounce_key)));
    UPDATE taskguard.task t
       SET args = p_args,
           run_at = CASE WHEN p_debounce_max IS NULL THEN p_run_at
                         ELSE least(p_run_at, t.enqueued_at + p_debounce_max) END
     WHERE coalesce(t.tenant, '') = coalesce(p_tenant, '') AND t.task_name = p_task_name
       AND t.debounce_key = p_debounce_key AND t.status = 'ready'
    RETURNING t.id INTO v_id;
    IF v_id IS NULL THEN
        INSERT INTO taskguard.task AS t (queue, task_name, args, priority, priority_score, run_at,
            max_attempts, tenant, customer_tier, service, idempotency_key, flow_key, debounce_key)
        VALUES (p_queue, p_task_name, p_args, p_priority, p_score,
                CASE WHEN p_debounce_max IS NULL THEN p_run_at
                     ELSE least(p_run_at, now() + p_debounce_max) END,
                p_max_attempts, p_tenant, p_tier, p_service, p_idempotency_key, p_flow_key,
                p_debounce_key)
        RETURNING t.id INTO v_id;
    END IF;
    RETURN v_id;
END
$$;

-- The steps of a pass, in order.
CREATE OR REPLACE FUNCTION taskguard._tick_steps()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['breakers', 'requeue_retries', 'redispatch_lost', 'reap_leases', 'expire_keys', 'escalate',
             'rotate_tasks', 'prune_tasks', 'prune_failures', 'flush_counters', 'rollup', 'alerts', 'notify',
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
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       AND NOT c.relispartition),   -- read through their parent only
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
         -- (id, gen): the update prunes to the picked row's partition at run time
         WHERE (t.id, t.gen) = (SELECT p.id, p.gen FROM taskguard.task p
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

-- Nothing for PUBLIC on the new functions; roles with an access level get
-- what their level gives of them (readers every STABLE function).
REVOKE ALL ON ROUTINE taskguard._task_gen(), taskguard._task_ring_slot(), taskguard._task_ring_rotate(),
    taskguard._task_forget_deleted() FROM PUBLIC;
DO $$
DECLARE
    v_grant record;
BEGIN
    FOR v_grant IN
        SELECT r.role, p.privileges, p.object
          FROM (SELECT DISTINCT a.grantee::regrole AS role,
                       CASE WHEN has_function_privilege(a.grantee, 'taskguard.tick()', 'EXECUTE') THEN 'admin'
                            WHEN has_function_privilege(a.grantee,
                                     'taskguard.claim(text, text, integer, interval)', 'EXECUTE') THEN 'worker'
                            ELSE 'reader' END AS access
                  FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
                 WHERE n.nspname = 'taskguard' AND a.privilege_type = 'USAGE'
                   AND a.grantee <> n.nspowner AND a.grantee <> 0) r,
               taskguard._access_plan(r.access) p
         WHERE p.object LIKE 'FUNCTION taskguard._task_%'
    LOOP
        EXECUTE format('GRANT %s ON %s TO %s', v_grant.privileges, v_grant.object, v_grant.role);
    END LOOP;
END
$$;
