-- 90_access.sql — access levels and tenant isolation (docs/reference.md#tenants).  Sorts last
-- in the install script on purpose: what it does is driven by the catalog, so
-- it covers the objects every other file created.
--
--  * Nothing is granted to PUBLIC: no function, table, view, sequence or the
--    schema (the end of this file).
--  * taskguard.grant_access(role, 'worker' | 'reader' | 'admin') grants one
--    level.  Workers and readers write no table: the worker calls that change
--    state are SECURITY DEFINER (pinned search_path, every row scoped to the
--    caller's tenants in the function); everything else runs as its caller.
--  * Every table with a tenant column gets row-level security: a role mapped
--    in taskguard.tenant_member sees and writes only its tenants' rows, in
--    tables, security_invoker views and functions alike.  The bootstrap
--    superuser (the scheduler) and the tables' owner bypass it.
-- See docs/security.md.

-- Functions of the worker level: the queue, failure, idempotency and breaker
-- calls, nothing else.  Workers write no table directly: the calls that
-- change state are SECURITY DEFINER and scope every row they touch to the
-- caller's tenants themselves; internal helpers (leading underscore) are not
-- executable by workers or readers, so they cannot be called with forged
-- arguments.  Forcing and resetting a breaker is an admin action.
CREATE FUNCTION taskguard._access_worker_functions()
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

-- Functions of the reader level by name, besides those every view calls and
-- every read-only (STABLE or IMMUTABLE) function.
CREATE FUNCTION taskguard._access_reader_functions()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['prometheus_metrics', 'schedule_load', 'schedule_health',
             'schedule_suggestions', 'validate_schedules', 'cron_next', 'cron_occurrences']
$$;

-- What one access level is granted: (privileges, object) pairs, the object
-- already quoted (regclass / regprocedure output), computed from the catalog
-- at call time.  Every level may read every table (the functions read the
-- configuration; row security limits what a mapped role sees).  No level gets
-- TRIGGER (a trigger on these tables would run inside the scheduler's
-- superuser transactions), TRUNCATE (it ignores row security) or REFERENCES.
CREATE FUNCTION taskguard._access_plan(access text)
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

-- Check grant_access's arguments; the role's oid.
CREATE FUNCTION taskguard._access_check(role name, access text)
RETURNS oid
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_oid oid;
BEGIN
    IF role IS NULL OR access IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be NULL', CASE WHEN role IS NULL THEN 'role' ELSE 'access' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF access NOT IN ('worker', 'reader', 'admin') THEN
        RAISE EXCEPTION 'unknown access level "%"', access
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The access levels are worker, reader and admin.';
    END IF;
    v_oid := to_regrole(quote_ident(role));
    IF v_oid IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', role
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN v_oid;
END
$$;

-- GRANT (or REVOKE) the privileges of an access level, statement by
-- statement, built from quoted catalog names and %I of the role only.  Runs
-- as grant_access's/revoke_access's owner when called from them.
CREATE FUNCTION taskguard._access_apply(role name, access text, grant_it boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_step record;
BEGIN
    PERFORM taskguard._access_check(role, access);
    FOR v_step IN SELECT * FROM taskguard._access_plan(access) LOOP
        IF grant_it THEN
            EXECUTE format('GRANT %s ON %s TO %I', v_step.privileges, v_step.object, role);
        ELSE
            EXECUTE format('REVOKE %s ON %s FROM %I', v_step.privileges, v_step.object, role);
        END IF;
    END LOOP;
END
$$;

-- Grant an access level to a role (docs/reference.md#tenants).  Granting again is harmless, and
-- picks up objects added since.  SECURITY DEFINER so that admins (who may
-- execute it) can grant levels without owning the objects; the statements are
-- built from quoted catalog names and quote_ident(role) only.
CREATE FUNCTION taskguard.grant_access(role name, access text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT taskguard._access_apply(role, access, true) $$;

-- Take an access level back: the privileges grant_access(role, access) gave.
-- (Privileges another level also gives go too; grant that level again.)
CREATE FUNCTION taskguard.revoke_access(role name, access text)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT taskguard._access_apply(role, access, false) $$;

-- Row security on every table with a tenant column.  The policy's two
-- sub-selects are init plans: the caller's tenants are looked up once per
-- query (the second only when the first gives NULL: an unmapped caller or a
-- row without tenant), and each row costs one array comparison.
DO $$
DECLARE
    v_rel regclass;
BEGIN
    FOR v_rel IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant'
               AND NOT a.attisdropped
         WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind IN ('r', 'p')
           AND c.oid <> 'taskguard.tenant_member'::regclass
         ORDER BY c.oid
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', v_rel);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %s
            USING (coalesce(tenant = ANY ((SELECT taskguard._tenant_scope())::text[]),
                            (SELECT taskguard._tenant_scope()) IS NULL))
            WITH CHECK (coalesce(tenant = ANY ((SELECT taskguard._tenant_scope())::text[]),
                                 (SELECT taskguard._tenant_scope()) IS NULL))$p$, v_rel);
    END LOOP;
    -- What a mapped role stores without naming a tenant gets its tenant.
    FOR v_rel IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant'
               AND NOT a.attisdropped AND NOT a.atthasdef AND NOT a.attnotnull
         WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind IN ('r', 'p')
           AND NOT c.relispartition    -- the parent's default reaches its partitions
    LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN tenant SET DEFAULT taskguard._effective_tenant(NULL)',
                       v_rel);
    END LOOP;
END
$$;

-- tenant_member: a mapped role sees its own mappings, an unmapped one all.
-- Only an unmapped role with the privilege (an admin) changes them: a
-- tenant-bound admin must not map itself to another tenant or unmap itself.
-- (_tenant_scope reads the table as its owner, so the policy does not recurse.)
ALTER TABLE taskguard.tenant_member ENABLE ROW LEVEL SECURITY;
CREATE POLICY member_read ON taskguard.tenant_member FOR SELECT
    USING (role = current_user OR (SELECT taskguard._tenant_scope()) IS NULL);
CREATE POLICY member_insert ON taskguard.tenant_member FOR INSERT
    WITH CHECK ((SELECT taskguard._tenant_scope()) IS NULL);
CREATE POLICY member_update ON taskguard.tenant_member FOR UPDATE
    USING ((SELECT taskguard._tenant_scope()) IS NULL)
    WITH CHECK ((SELECT taskguard._tenant_scope()) IS NULL);
CREATE POLICY member_delete ON taskguard.tenant_member FOR DELETE
    USING ((SELECT taskguard._tenant_scope()) IS NULL);

-- tenant_bound_role: the same rules (who was ever bound is not for others).
ALTER TABLE taskguard.tenant_bound_role ENABLE ROW LEVEL SECURITY;
CREATE POLICY bound_read ON taskguard.tenant_bound_role FOR SELECT
    USING (role = current_user OR (SELECT taskguard._tenant_scope()) IS NULL);
CREATE POLICY bound_write ON taskguard.tenant_bound_role FOR ALL
    USING ((SELECT taskguard._tenant_scope()) IS NULL)
    WITH CHECK ((SELECT taskguard._tenant_scope()) IS NULL);

-- Views run with their owner's rights, which row security does not filter:
-- every view that does not filter by tenant itself (_tenant_visible) runs
-- with its caller's rights instead.  One that does filter itself is a
-- security barrier, so a caller's leaky function in a WHERE clause cannot
-- run before the tenant filter and see other tenants' rows.
DO $$
DECLARE
    v_view   regclass;
    v_filter boolean;
BEGIN
    FOR v_view, v_filter IN
        SELECT c.oid::regclass, EXISTS (
               SELECT 1 FROM pg_catalog.pg_depend d
                 JOIN pg_catalog.pg_rewrite w ON d.classid = 'pg_catalog.pg_rewrite'::regclass
                      AND d.objid = w.oid
                WHERE w.ev_class = c.oid AND d.refclassid = 'pg_catalog.pg_proc'::regclass
                  AND d.refobjid = 'taskguard._tenant_visible(text)'::regprocedure)
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind = 'v'
         ORDER BY c.oid
    LOOP
        EXECUTE format('ALTER VIEW %s SET (%s = true)', v_view,
                       CASE WHEN v_filter THEN 'security_barrier' ELSE 'security_invoker' END);
    END LOOP;
END
$$;

-- Nothing for PUBLIC (functions are executable by PUBLIC by default).
REVOKE ALL ON SCHEMA taskguard FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA taskguard FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA taskguard FROM PUBLIC;
DO $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'taskguard'::regnamespace ORDER BY p.oid
    LOOP
        EXECUTE format('REVOKE ALL ON ROUTINE %s FROM PUBLIC', v_fn);
    END LOOP;
END
$$;
