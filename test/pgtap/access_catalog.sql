-- access_catalog: the catalog facts of docs/reference.md#tenants, over every object of the
-- extension (so objects other files add are held to them too), and what each
-- access level may do with every view and function.
BEGIN;
SELECT plan(25);

-- Run sql as role; 'ok', or the SQLSTATE and message.
CREATE FUNCTION pg_temp.try_as(role name, sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_res text := 'ok';
BEGIN
    EXECUTE format('SET LOCAL ROLE %I', role);
    BEGIN
        EXECUTE sql;
    EXCEPTION WHEN others THEN
        v_res := SQLSTATE || ': ' || SQLERRM;
    END;
    RESET ROLE;
    RETURN v_res;
END $$;

CREATE TEMP VIEW tg_functions AS
SELECT p.oid, p.oid::regprocedure AS fn, p.proname, p.prosecdef, p.proconfig, p.prosrc, p.proowner, p.proacl
  FROM pg_proc p WHERE p.pronamespace = 'taskguard'::regnamespace;
CREATE TEMP VIEW tg_relations AS
SELECT c.oid, c.oid::regclass AS rel, c.relkind, c.relacl, c.relrowsecurity, c.reloptions
  FROM pg_class c WHERE c.relnamespace = 'taskguard'::regnamespace
   AND c.relkind IN ('r', 'p', 'v', 'm', 'S');

-- 1. nothing for PUBLIC
SELECT is(ARRAY(SELECT f.fn::text FROM tg_functions f
                 WHERE EXISTS (SELECT 1 FROM aclexplode(coalesce(f.proacl, acldefault('f', f.proowner))) a
                                WHERE a.grantee = 0)
                 ORDER BY 1), '{}', 'no taskguard function is executable by PUBLIC');
SELECT is(ARRAY(SELECT r.rel::text FROM tg_relations r
                 WHERE EXISTS (SELECT 1 FROM aclexplode(r.relacl) a WHERE a.grantee = 0)
                 ORDER BY 1), '{}', 'no taskguard table, view or sequence is granted to PUBLIC');
SELECT ok(NOT has_schema_privilege('public', 'taskguard', 'USAGE'), 'PUBLIC has no USAGE on schema taskguard');

-- 2. SECURITY DEFINER functions: pinned search_path ending in pg_temp, no current_user
SELECT cmp_ok((SELECT count(*) FROM tg_functions WHERE prosecdef), '>', 0::bigint,
              'there are SECURITY DEFINER functions to check');
SELECT is(ARRAY(SELECT f.fn::text FROM tg_functions f WHERE f.prosecdef
                   AND NOT EXISTS (SELECT 1 FROM unnest(f.proconfig) c
                                    WHERE c ~ '^search_path=pg_catalog(, *[a-z_]+)*, *pg_temp$')
                 ORDER BY 1), '{}',
          'every SECURITY DEFINER function pins search_path = pg_catalog, …, pg_temp');
SELECT is(ARRAY(SELECT f.fn::text FROM tg_functions f
                 WHERE f.prosecdef AND f.prosrc ~* '\m(current_user|current_role)\M'
                 ORDER BY 1), '{}',
          'no SECURITY DEFINER function reads current_user (it is the owner there)');
SELECT is(ARRAY(SELECT f.fn::text FROM tg_functions f
                 WHERE f.prosecdef AND f.proname IN ('_tenant_scope', '_effective_tenant',
                                                     '_tenant_visible', '_tenant_refused')), '{}',
          'the tenant functions run as their caller');

-- 3. row security on every table with a tenant column; views filter too
SELECT is(ARRAY(SELECT r.rel::text FROM tg_relations r
                  JOIN pg_attribute a ON a.attrelid = r.oid AND a.attname = 'tenant' AND NOT a.attisdropped
                 WHERE r.relkind IN ('r', 'p')
                   AND (NOT r.relrowsecurity OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = r.oid))
                 ORDER BY 1), '{}', 'every table with a tenant column has row security and a policy');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'taskguard.tenant_member'::regclass),
          'tenant_member has row security');
SELECT is(ARRAY(SELECT r.rel::text FROM tg_relations r
                 WHERE r.relkind = 'v' AND NOT coalesce('security_invoker=true' = ANY (r.reloptions), false)
                   AND NOT EXISTS (
                       SELECT 1 FROM pg_depend d JOIN pg_rewrite w ON d.classid = 'pg_rewrite'::regclass
                              AND d.objid = w.oid
                        WHERE w.ev_class = r.oid AND d.refclassid = 'pg_proc'::regclass
                          AND d.refobjid = 'taskguard._tenant_visible(text)'::regprocedure)
                 ORDER BY 1), '{}',
          'every view runs as its caller or filters with _tenant_visible');

-- 4. grant_access refuses bad input cleanly
SELECT throws_ok($$SELECT taskguard.grant_access(NULL, 'reader')$$, '22004', NULL, 'NULL role');
SELECT throws_ok($$SELECT taskguard.grant_access('postgres', NULL)$$, '22004', NULL, 'NULL access');
SELECT throws_ok($$SELECT taskguard.grant_access('postgres', 'owner')$$, '22023', NULL, 'unknown access level');
SELECT throws_ok($$SELECT taskguard.grant_access('tg_acc_cat_nobody', 'reader')$$, '42704', NULL, 'unknown role');

-- 5. the levels, over every view and function there is
SET LOCAL client_min_messages = warning;
CREATE ROLE tg_acc_cat_reader;
CREATE ROLE tg_acc_cat_worker;
CREATE ROLE tg_acc_cat_admin;
CREATE ROLE tg_acc_cat_none;
SELECT taskguard.grant_access('tg_acc_cat_reader', 'reader');
SELECT taskguard.grant_access('tg_acc_cat_worker', 'worker');
SELECT taskguard.grant_access('tg_acc_cat_admin', 'admin');

SELECT is(ARRAY(SELECT r.rel::text || ' ' || t.res FROM tg_relations r,
                       LATERAL pg_temp.try_as('tg_acc_cat_reader', format('SELECT * FROM %s LIMIT 1', r.rel)) t(res)
                 WHERE r.relkind IN ('v', 'm') AND t.res <> 'ok' ORDER BY 1), '{}',
          'a reader can read every view');
SELECT is(pg_temp.try_as('tg_acc_cat_reader',
              CASE WHEN to_regprocedure('taskguard.prometheus_metrics()') IS NULL THEN 'SELECT 1'
                   ELSE 'SELECT taskguard.prometheus_metrics()' END), 'ok',
          'a reader can call prometheus_metrics() (when it exists)');
SELECT is(ARRAY(SELECT r.rel::text FROM tg_relations r
                 WHERE r.relkind IN ('v', 'm') AND has_table_privilege('tg_acc_cat_worker', r.oid, 'SELECT')
                 ORDER BY 1), '{}', 'a worker reads no view (that is the reader level)');
SELECT is(ARRAY(SELECT f.fn::text FROM tg_functions f
                 WHERE NOT has_function_privilege('tg_acc_cat_admin', f.oid, 'EXECUTE') ORDER BY 1), '{}',
          'an admin may execute every function');
SELECT is(ARRAY(SELECT f.proname::text FROM tg_functions f
                 WHERE f.proname IN ('dlq_purge', 'dlq_retry', 'dlq_abandon', 'dlq_resolve',
                                     'tick', 'grant_access', 'revoke_access', '_prune_tasks',
                                     '_prune_failures', '_requeue_due_retries')
                   AND has_function_privilege('tg_acc_cat_worker', f.oid, 'EXECUTE') ORDER BY 1), '{}',
          'a worker may not run DLQ bulk actions, the scheduler steps or the grants');
SELECT is(ARRAY(SELECT f.proname::text FROM tg_functions f
                 WHERE f.proname IN ('enqueue', 'enqueue_many', 'claim', 'complete', 'fail',
                                     'record_failure', 'idempotency_check', 'breaker_record',
                                     'dlq_abandon', 'dlq_purge', 'cancel', 'grant_access')
                   AND has_function_privilege('tg_acc_cat_reader', f.oid, 'EXECUTE') ORDER BY 1), '{}',
          'a reader may not enqueue, claim, fail, record or change anything');
SELECT is(ARRAY(SELECT f.fn::text FROM tg_functions f
                 WHERE has_function_privilege('tg_acc_cat_none', f.oid, 'EXECUTE') ORDER BY 1), '{}',
          'a role without a level may execute nothing');
SELECT is(ARRAY(SELECT r.rel::text || ' ' || p.priv FROM tg_relations r,
                       unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) p(priv)
                 WHERE r.relkind IN ('r', 'p') AND has_table_privilege('tg_acc_cat_reader', r.oid, p.priv)
                 ORDER BY 1), '{}', 'a reader writes no table');
SELECT is(ARRAY(SELECT r.rel::text || ' ' || lvl || ' ' || p.priv FROM tg_relations r,
                       unnest(ARRAY['tg_acc_cat_reader', 'tg_acc_cat_worker', 'tg_acc_cat_admin']) lvl,
                       unnest(ARRAY['TRIGGER', 'TRUNCATE', 'REFERENCES']) p(priv)
                 WHERE r.relkind IN ('r', 'p') AND has_table_privilege(lvl, r.oid, p.priv) ORDER BY 1), '{}',
          'no level gets TRIGGER, TRUNCATE or REFERENCES on a table');
SELECT is(ARRAY(SELECT r.rel::text FROM tg_relations r
                 WHERE r.relkind IN ('r', 'p')
                   AND (r.oid = 'taskguard.tenant_member'::regclass
                        OR NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.oid
                                          AND a.attname = 'tenant' AND NOT a.attisdropped))
                   AND (has_table_privilege('tg_acc_cat_worker', r.oid, 'INSERT')
                        OR has_table_privilege('tg_acc_cat_worker', r.oid, 'UPDATE')
                        OR has_table_privilege('tg_acc_cat_worker', r.oid, 'DELETE')) ORDER BY 1), '{}',
          'a worker writes only tenant-scoped tables (no configuration, no mapping)');
SELECT is(ARRAY(SELECT r.rel::text FROM tg_relations r
                 WHERE r.relkind IN ('r', 'p') AND r.oid <> 'taskguard.idempotency_record'::regclass
                   AND has_table_privilege('tg_acc_cat_worker', r.oid, 'DELETE') ORDER BY 1), '{}',
          'a worker deletes nothing but idempotency keys');

SELECT * FROM finish();
ROLLBACK;
