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
-- access plan (partitions granted to nobody), claim() by (id, gen) (_claim_tenants:
-- 96_tenant_claim_mark), and the
-- functions whose cached plans must not scan a ring partition whole
-- (enable_seqscan off: a plan made while a partition was empty would scan it
-- whole all through its slot).
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
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
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

-- claim() while a pause or limit concerns the queue: the pick takes a row
-- only if _flow_take reserves it (a running slot and a token of every
-- matching limit), so rows a limit holds back are skipped; a reservation
-- the claim did not use (a row another claim locked first, a breaker with
-- no probe left) is given back by _flow_settle, and then the claim looks
-- again, past those rows (_flow_given_back), at most four times in all.
CREATE OR REPLACE FUNCTION taskguard._claim_flow(queue text, worker text, batch int, lease interval,
    scope text[])
RETURNS SETOF taskguard.task
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 10
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off SET enable_sort = off SET jit = off  -- 28_task_ring.sql "Plans"
AS $$
DECLARE
    v_left   int := batch;
    v_n      int;
    v_score  real;
    v_by     text;
    v_group  text;
    v_id     bigint;
    v_skip   bigint[] := '{}';
BEGIN
    IF taskguard._flow_queue_closed(queue) THEN
        RETURN;
    END IF;
    -- Fair share: one task at a time from the top priority level's tenants
    -- (or flow keys), the one furthest behind its weighted share first.
    -- Whatever that does not hand out (limits, locks) the plain path may.
    v_by := taskguard._flow_fair(queue);
    WHILE v_left > 0 AND v_by IS NOT NULL LOOP
        v_score := NULL;
        SELECT -p.priority_score INTO v_score FROM taskguard.task p
         WHERE p.queue = _claim_flow.queue AND p.status = 'ready' AND p.run_at <= now()
           AND (scope IS NULL OR p.tenant = ANY (scope))
         ORDER BY -p.priority_score LIMIT 1;
        EXIT WHEN v_score IS NULL;
        v_n := 0;
        FOREACH v_group IN ARRAY taskguard._flow_fair_order(queue, v_by,
                                     taskguard._flow_groups(queue, v_score, scope, v_by))
        LOOP
            -- one pick per form, so that a group's is a range of its index
            v_id := NULL;
            IF v_by = 'tenant' AND v_group IS NOT NULL THEN
                SELECT p.id INTO v_id FROM taskguard.task p
                 WHERE p.tenant = v_group AND p.queue = _claim_flow.queue AND p.status = 'ready'
                   AND -p.priority_score = v_score AND p.run_at <= now()
                   AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                   AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service, p.tenant, p.flow_key)
                 ORDER BY p.run_at, p.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            ELSIF v_by = 'flow_key' AND v_group IS NOT NULL THEN
                SELECT p.id INTO v_id FROM taskguard.task p
                 WHERE p.flow_key = v_group AND p.queue = _claim_flow.queue AND p.status = 'ready'
                   AND -p.priority_score = v_score AND p.run_at <= now()
                   AND (scope IS NULL OR p.tenant = ANY (scope))
                   AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                   AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service, p.tenant, p.flow_key)
                 ORDER BY p.run_at, p.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            ELSE
                SELECT p.id INTO v_id FROM taskguard.task p
                 WHERE p.queue = _claim_flow.queue AND p.status = 'ready'
                   AND -p.priority_score = v_score AND p.run_at <= now()
                   AND CASE WHEN v_by = 'tenant' THEN p.tenant IS NULL ELSE p.flow_key IS NULL END
                   AND (scope IS NULL OR p.tenant = ANY (scope))
                   AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                   AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service, p.tenant, p.flow_key)
                 ORDER BY p.run_at, p.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            END IF;
            v_n := 0;
            IF v_id IS NOT NULL THEN
                RETURN QUERY
                UPDATE taskguard.task t
                   SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                       worker = _claim_flow.worker, lease_expires_at = now() + lease,
                       debounce_key = NULL
                 WHERE t.id = v_id AND (t.service IS NULL OR taskguard._breaker_claimed(t.service))
                RETURNING t.*;
                GET DIAGNOSTICS v_n = ROW_COUNT;
            END IF;
            PERFORM taskguard._flow_settle();
            IF v_n > 0 THEN
                PERFORM taskguard._flow_fair_charge(queue, v_by, v_group);
                EXIT;
            END IF;
        END LOOP;
        EXIT WHEN v_n = 0;
        v_left := v_left - v_n;
    END LOOP;
    IF v_left <= 0 THEN
        RETURN;
    END IF;
    FOR v_try IN 1..4 LOOP
        IF v_left = 1 THEN
            RETURN QUERY
            UPDATE taskguard.task t
               SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                   worker = _claim_flow.worker, lease_expires_at = now() + lease,
                   debounce_key = NULL
             WHERE t.id = (SELECT p.id FROM taskguard.task p
                            WHERE p.queue = _claim_flow.queue AND p.status = 'ready'
                              AND p.run_at <= now() AND (scope IS NULL OR p.tenant = ANY (scope))
                              AND p.id <> ALL (v_skip)
                              AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                              AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service,
                                                       p.tenant, p.flow_key)
                            ORDER BY -p.priority_score, p.run_at, p.id
                            LIMIT 1
                            FOR UPDATE SKIP LOCKED)
               AND (t.service IS NULL OR taskguard._breaker_claimed(t.service))
            RETURNING t.*;
        ELSE
            RETURN QUERY
            WITH picked AS (
                SELECT p.id, p.service FROM taskguard.task p
                 WHERE p.queue = _claim_flow.queue AND p.status = 'ready' AND p.run_at <= now()
                   AND (scope IS NULL OR p.tenant = ANY (scope)) AND p.id <> ALL (v_skip)
                   AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                   AND taskguard._flow_take(p.id, p.queue, p.task_name, p.service, p.tenant,
                                            p.flow_key)
                 ORDER BY -p.priority_score, p.run_at, p.id
                 LIMIT v_left
                 FOR UPDATE SKIP LOCKED),
            allowed AS (
                SELECT p.id FROM picked p
                 WHERE p.service IS NULL OR taskguard._breaker_claimed(p.service)),
            claimed AS (
                UPDATE taskguard.task t
                   SET status = 'running', attempts = t.attempts + 1, started_at = now(),
                       worker = _claim_flow.worker, lease_expires_at = now() + lease,
                       debounce_key = NULL
                 WHERE t.id = ANY (ARRAY(SELECT a.id FROM allowed a))
                RETURNING t.*)
            SELECT c.* FROM claimed c ORDER BY -c.priority_score, c.run_at, c.id;
        END IF;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        v_left := v_left - v_n;
        EXIT WHEN taskguard._flow_settle() = 0 OR v_left <= 0;
        -- rows reserved but not had (another claim locked them first): look past them,
        -- or this claim's own reservation would refuse the free task behind them
        v_skip := v_skip || taskguard._flow_given_back();
    END LOOP;
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
SET enable_seqscan = off SET enable_sort = off SET jit = off  -- 28_task_ring.sql "Plans"
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
SET enable_seqscan = off SET jit = off  -- 28_task_ring.sql "Plans"
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
CREATE OR REPLACE FUNCTION taskguard.release(task_id bigint, attempt int DEFAULT NULL)
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
CREATE OR REPLACE FUNCTION taskguard.cancel(task_id bigint)
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
CREATE OR REPLACE FUNCTION taskguard.requeue(task_id bigint, priority taskguard.priority DEFAULT NULL)
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

-- A worker reports that its attempt failed (docs/reference.md#queue, #dlq).
CREATE OR REPLACE FUNCTION taskguard.fail(task_id bigint, error_type text, message text DEFAULT NULL,
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
CREATE OR REPLACE FUNCTION taskguard._requeue_due_retries(batch int)
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

CREATE OR REPLACE FUNCTION taskguard._reap_expired_leases(batch int)
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

-- Nothing for PUBLIC on the new functions; roles with an access level get
-- what their level gives of them (readers every STABLE function).
REVOKE ALL ON ROUTINE taskguard._task_gen(), taskguard._task_ring_slot(), taskguard._task_ring_rotate(),
    taskguard._task_forget_deleted(), taskguard._task_ring_path() FROM PUBLIC;
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
