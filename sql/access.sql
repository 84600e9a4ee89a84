-- access: grant_access levels, nothing for PUBLIC, tenant isolation by row
-- security, and a search_path trick against a SECURITY DEFINER function.
-- Roles are cluster-wide: all are named tg_acc_* and dropped at the end.
\set VERBOSITY terse
SET taskguard.notify = off;
SET client_min_messages = warning;
-- Run a statement as the current role; 'ok', or the error's SQLSTATE and message.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE ROLE tg_acc_none;            -- no access level, but USAGE on the schema
CREATE ROLE tg_acc_reader;
CREATE ROLE tg_acc_worker;
CREATE ROLE tg_acc_admin;
CREATE ROLE tg_acc_wa;              -- worker, tenant acme
CREATE ROLE tg_acc_wb;              -- worker, tenant bolt
CREATE ROLE tg_acc_ra;              -- reader, tenant acme
CREATE ROLE tg_acc_aa;              -- admin, tenant acme
CREATE ROLE "tg_acc_Mixed Case";
RESET client_min_messages;

-- 1. grant_access: bad input
SELECT pg_temp.try($$SELECT taskguard.grant_access(NULL, 'worker')$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('tg_acc_worker', NULL)$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('tg_acc_worker', '')$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('tg_acc_worker', 'superuser')$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('tg_acc_worker', 'Worker')$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('tg_acc_nosuchrole', 'reader')$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('', 'reader')$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('public', 'reader')$$);
SELECT pg_temp.try($$SELECT taskguard.revoke_access('tg_acc_worker', 'root')$$);
SELECT pg_temp.try($$SELECT taskguard.revoke_access(NULL, NULL)$$);
SELECT pg_temp.try($$SELECT taskguard.revoke_access('tg_acc_worker', '')$$);
SELECT pg_temp.try($$SELECT taskguard.revoke_access('tg_acc_nosuchrole', 'worker')$$);
SELECT pg_temp.try($$SELECT taskguard.revoke_access('tg_acc_worker', NULL)$$);
-- a role name that needs quoting
SELECT taskguard.grant_access('tg_acc_Mixed Case', 'reader');
SELECT has_table_privilege('tg_acc_Mixed Case', 'taskguard.dlq', 'SELECT') AS mixed_reads;

-- 2. the levels (granting twice is harmless)
GRANT USAGE ON SCHEMA taskguard TO tg_acc_none;
SELECT taskguard.grant_access('tg_acc_reader', 'reader');
SELECT taskguard.grant_access('tg_acc_reader', 'reader');
SELECT taskguard.grant_access('tg_acc_worker', 'worker');
SELECT taskguard.grant_access('tg_acc_admin', 'admin');
SELECT taskguard.grant_access(r, 'worker') FROM unnest(ARRAY['tg_acc_wa', 'tg_acc_wb']::name[]) r;
SELECT taskguard.grant_access('tg_acc_ra', 'reader');
SELECT taskguard.grant_access('tg_acc_aa', 'admin');
INSERT INTO taskguard.tenant_member VALUES ('tg_acc_wa', 'acme'), ('tg_acc_wb', 'bolt'),
    ('tg_acc_ra', 'acme'), ('tg_acc_aa', 'acme');

-- 3. a role with no access level: no function, no table
SET ROLE tg_acc_none;
SELECT pg_temp.try($$SELECT taskguard.enqueue('x')$$);
SELECT pg_temp.try($$SELECT * FROM taskguard.claim('default')$$);
SELECT pg_temp.try($$SELECT taskguard.idempotency_check('k')$$);
SELECT pg_temp.try($$SELECT taskguard.classify('ValueError')$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('tg_acc_none', 'admin')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.task$$);
-- refused: PostgreSQL 15 names the view, 16 and later the function its filter calls
SELECT left(pg_temp.try($$SELECT count(*) FROM taskguard.dlq$$), 5) AS refused;
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.tenant_member$$);
SELECT pg_temp.try($$INSERT INTO taskguard.task (task_name) VALUES ('x')$$);
RESET ROLE;
REVOKE USAGE ON SCHEMA taskguard FROM tg_acc_none;
SET ROLE tg_acc_none;
SELECT pg_temp.try($$SELECT taskguard.enqueue('x')$$);
RESET ROLE;

-- 4. reader: views yes; enqueueing, claiming, abandoning, writing no
SELECT taskguard.enqueue('r_job', queue => 'acc') AS t_r \gset
SELECT (taskguard.record_failure('r_ext', '{}', 'ValueError', 'bad')).failure_id AS f_r \gset
SET ROLE tg_acc_reader;
SELECT count(*) >= 1 AS sees_dlq FROM taskguard.dlq;
SELECT pg_temp.try($$SELECT * FROM taskguard.breaker_status$$) AS breaker_status,
       pg_temp.try($$SELECT * FROM taskguard.idempotency_stats$$) AS idempotency_stats,
       pg_temp.try($$SELECT * FROM taskguard.scheduler_status$$) AS scheduler_status,
       pg_temp.try($$SELECT * FROM taskguard.schedule_hotspots$$) AS schedule_hotspots;
SELECT pg_temp.try($$SELECT * FROM taskguard.schedule_health()$$);
SELECT pg_temp.try($$SELECT taskguard.enqueue('x')$$);
SELECT pg_temp.try($$SELECT * FROM taskguard.claim('acc')$$);
SELECT pg_temp.try(format('SELECT taskguard.dlq_abandon(ARRAY[%s])', :f_r));
SELECT pg_temp.try(format('SELECT taskguard.resolve(%s)', :f_r));
SELECT pg_temp.try(format('SELECT taskguard.cancel(%s)', :t_r));
SELECT pg_temp.try($$SELECT taskguard.idempotency_check('k')$$);
SELECT pg_temp.try($$SELECT taskguard.breaker_record('svc', false)$$);
SELECT pg_temp.try($$UPDATE taskguard.dead_letter SET status = 'ABANDONED'$$);
SELECT pg_temp.try($$INSERT INTO taskguard.task (task_name) VALUES ('x')$$);
SELECT pg_temp.try($$SELECT taskguard.tick()$$);
RESET ROLE;

-- 5. worker: the queue, failures, idempotency and breakers work
SET ROLE tg_acc_worker;
SELECT taskguard.enqueue('w_job', '{"n": 1}', queue => 'accw', service => 'acc_svc',
                         idempotency_key => 'acc-key-1') AS t_w \gset
SELECT taskguard.enqueue('w_job', '{"n": 1}', queue => 'accw', idempotency_key => 'acc-key-1') = :t_w
    AS same_task;
SELECT count(*) AS enqueued FROM taskguard.enqueue_many('w_job', ARRAY['{}', '{}']::jsonb[], queue => 'accw2');
SELECT id = :t_w AS claimed_it, attempts FROM taskguard.claim('accw', 'w1');
SELECT (taskguard.fail(:t_w, 'requests.exceptions.ConnectionError', 'connection refused', '{}', 1)).action;
SELECT taskguard.heartbeat(:t_w) AS heartbeat_failed_task;
SELECT count(*) AS claimed FROM taskguard.claim('accw2', 'w1', batch => 2);
SELECT taskguard.complete_many(array_agg(id)) AS completed
  FROM taskguard.task WHERE queue = 'accw2' AND status = 'running';
SELECT (taskguard.record_failure('w_ext', '{}', 'TimeoutError', 'timed out', task_ref => 'acc-ref')).action;
SELECT taskguard.resolve(d.id) AS resolved FROM taskguard.dead_letter d WHERE d.task_ref = 'acc-ref';
SELECT count(*) AS due FROM taskguard.claim_due_retries();
SELECT taskguard.idempotency_check('acc-key-2') AS first, taskguard.idempotency_check('acc-key-2') AS second;
SELECT taskguard.idempotency_release('acc-key-2') AS released;
SELECT (taskguard.classify('ValueError')).failure_type, taskguard.backoff(1, jitter => 'none');
SELECT taskguard.cancel(taskguard.enqueue('w_cancel', queue => 'accw3')) AS cancelled;
-- requeue is a queue call (docs/reference.md#queue): a worker may requeue a task, here at a new priority
SELECT taskguard.requeue(taskguard.enqueue('w_requeue', queue => 'accw5'), 'HIGH') AS worker_requeued;
-- enqueue with a key another transaction took by idempotency_check: no task
-- (the just-inserted duplicate is dropped by the definer helper _task_discard)
SELECT taskguard.idempotency_check('acc-key-3') AS taken;
SELECT taskguard.enqueue('w_dup', queue => 'accw4', idempotency_key => 'acc-key-3') IS NULL AS no_task;
SELECT count(*) AS dup_tasks FROM taskguard.task WHERE queue = 'accw4';
-- what a worker must not do: purge, bulk actions, edit policies, rules, tiers, thresholds
SELECT pg_temp.try($$SELECT taskguard.dlq_purge('0 seconds', '{RESOLVED,ABANDONED,PENDING}')$$);
SELECT pg_temp.try(format('SELECT taskguard.dlq_abandon(ARRAY[%s])', :f_r));
SELECT pg_temp.try(format('SELECT taskguard.dlq_retry(ARRAY[%s])', :f_r));
SELECT pg_temp.try(format('SELECT taskguard.dlq_resolve(ARRAY[%s])', :f_r));
SELECT pg_temp.try($$UPDATE taskguard.retry_policy SET max_retries = 100$$);
SELECT pg_temp.try($$INSERT INTO taskguard.classification_rule (error_type_pattern, failure_type)
                     VALUES ('%', 'UNKNOWN')$$);
SELECT pg_temp.try($$UPDATE taskguard.customer_tier SET bonus = 4$$);
SELECT pg_temp.try($$UPDATE taskguard.breaker_config SET failure_threshold = 1000$$);
SELECT pg_temp.try($$DELETE FROM taskguard.dead_letter$$);
SELECT pg_temp.try($$DELETE FROM taskguard.task$$);
SELECT pg_temp.try($$TRUNCATE taskguard.task$$);
SELECT pg_temp.try($$INSERT INTO taskguard.tenant_member VALUES ('tg_acc_worker', 'acme')$$);
SELECT pg_temp.try($$SELECT taskguard.tick()$$);
SELECT pg_temp.try($$SELECT taskguard._prune_failures(1000)$$);
SELECT pg_temp.try($$SELECT taskguard.grant_access('tg_acc_worker', 'admin')$$);
-- refused: PostgreSQL 15 names the view, 16 and later the function its filter calls
SELECT left(pg_temp.try($$SELECT count(*) FROM taskguard.dlq$$), 5) AS refused;
SELECT pg_temp.try($$CREATE TRIGGER t BEFORE UPDATE ON taskguard.task
                     FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()$$);
-- internal helpers are not the worker's to call (0.1.0 let it call this definer one)
SELECT taskguard._task_discard(:t_w) AS discarded_committed_task;
RESET ROLE;

-- 6. admin: everything (bulk actions, policies, grants)
SET ROLE tg_acc_admin;
SELECT taskguard.dlq_abandon(ARRAY[:f_r]) AS abandoned;
SELECT taskguard.dlq_retry(ARRAY[:f_r]) AS retried;
SELECT taskguard.dlq_purge('0 seconds', '{RESOLVED}') >= 1 AS purged;
UPDATE taskguard.retry_policy SET max_retries = max_retries WHERE failure_type = 'UNKNOWN' AND task_name IS NULL;
SELECT taskguard.requeue(:t_w) AS requeued;
SELECT taskguard.grant_access('tg_acc_none', 'reader');
SELECT taskguard.revoke_access('tg_acc_none', 'reader');
SELECT (taskguard.tick()) ? 'reap_leases' AS ticked;
SELECT count(*) > 0 AS sees_all_mappings FROM taskguard.tenant_member;
RESET ROLE;
SELECT has_schema_privilege('tg_acc_none', 'taskguard', 'USAGE') AS none_after_revoke;
DELETE FROM taskguard.task WHERE queue LIKE 'acc%';
DELETE FROM taskguard.dead_letter;

-- 7. tenants: each sees, claims, retries and records only its own rows
SELECT taskguard.enqueue('ta', queue => 'acct', tenant => 'acme') AS ta1,
       taskguard.enqueue('tb', queue => 'acct', tenant => 'bolt') AS tb1,
       taskguard.enqueue('tn', queue => 'acct') AS tn1 \gset
SELECT (taskguard.record_failure('eb', '{}', 'ValueError', 'x', tenant => 'bolt',
                                 task_ref => 'shared-ref')).failure_id AS fb1 \gset
SET ROLE tg_acc_wa;
SELECT tenant, task_name FROM taskguard.task ORDER BY id;
SELECT count(*) AS dlq_rows FROM taskguard.dead_letter;
SELECT id = :ta1 AS got_own, tenant FROM taskguard.claim('acct', 'wa', batch => 10);
SELECT taskguard.complete(:tb1) AS complete_other, taskguard.cancel(:tb1) AS cancel_other,
       taskguard.heartbeat(:tb1) AS heartbeat_other,
       taskguard.fail(:tb1, 'ValueError') IS NULL AS fail_other;
-- workers write no table directly (0.2.0): the functions are the only way
WITH u AS (UPDATE taskguard.task SET priority_score = 4 WHERE id = :tb1 RETURNING 1)
SELECT count(*) AS updated_other_task FROM u;
WITH u AS (UPDATE taskguard.dead_letter SET status = 'ABANDONED' WHERE id = :fb1 RETURNING 1)
SELECT count(*) AS updated_other_record FROM u;
-- what it stores gets its tenant; naming another tenant is refused
SELECT taskguard.enqueue('ta2', queue => 'acct') AS ta2 \gset
SELECT tenant FROM taskguard.task WHERE id = :ta2;
SELECT pg_temp.try($$SELECT taskguard.enqueue('x', tenant => 'bolt')$$);
SELECT pg_temp.try($$SELECT * FROM taskguard.enqueue_many('x', ARRAY['{}']::jsonb[], tenant => 'bolt')$$);
SELECT pg_temp.try($$SELECT taskguard.record_failure('x', '{}', 'E', tenant => 'bolt')$$);
SELECT pg_temp.try($$INSERT INTO taskguard.task (task_name, tenant) VALUES ('x', 'bolt')$$);
SELECT pg_temp.try($$INSERT INTO taskguard.task (task_name, tenant) VALUES ('x', NULL)$$);
SELECT pg_temp.try($$UPDATE taskguard.task SET tenant = 'bolt' WHERE tenant = 'acme'$$);
INSERT INTO taskguard.task (task_name, queue) VALUES ('direct', 'acct') RETURNING tenant;
SELECT taskguard.enqueue('ta3', queue => 'acct', tenant => 'acme') IS NOT NULL AS own_named;
-- task_ref and idempotency keys are per tenant
SELECT (r).failure_id <> :fb1 AS own_record, (r).action
  FROM (SELECT taskguard.record_failure('ea', '{}', 'ValueError', 'x', task_ref => 'shared-ref') r) s;
SELECT tenant, task_ref, retry_count FROM taskguard.dead_letter ORDER BY id;
SELECT taskguard.idempotency_check('acc-shared-key') AS acme_first;
SELECT taskguard.enqueue('k', queue => 'acck', idempotency_key => 'acc-shared-key2') AS ka \gset
SELECT tenant, count(*) FROM taskguard.idempotency_record GROUP BY tenant;
SELECT count(*) AS due_other FROM taskguard.claim_due_retries();
SELECT taskguard.resolve(:fb1) AS resolve_other;
RESET ROLE;
SET ROLE tg_acc_wb;
SELECT taskguard.idempotency_check('acc-shared-key') AS bolt_first;
SELECT taskguard.enqueue('k', queue => 'acck', idempotency_key => 'acc-shared-key2') <> :ka AS bolt_own_task;
SELECT tenant, task_name, status FROM taskguard.task ORDER BY id;
SELECT tenant, task_ref, status FROM taskguard.dead_letter ORDER BY id;
SELECT count(*) AS claimed_acme FROM taskguard.claim('acck');
SELECT taskguard.idempotency_release('acc-shared-key') AS released_own;
RESET ROLE;
-- both keys were scoped: acme's stayed
SELECT tenant, count(*) FROM taskguard.idempotency_record GROUP BY tenant ORDER BY tenant;
SELECT tenant, task_ref, retry_count FROM taskguard.dead_letter ORDER BY id;
-- a mapped reader sees its tenant through tables and views
SET ROLE tg_acc_ra;
SELECT DISTINCT tenant FROM taskguard.task;
SELECT DISTINCT tenant FROM taskguard.dlq;
SELECT DISTINCT tenant FROM taskguard.failure_event;
SELECT role, tenant FROM taskguard.tenant_member;
RESET ROLE;
-- a mapped admin retries, purges and requeues only its tenant's records
SELECT (taskguard.record_failure('ea2', '{}', 'ValueError', 'x', tenant => 'acme')).failure_id AS fa2 \gset
SET ROLE tg_acc_aa;
SELECT taskguard.dlq_retry(ARRAY[:fb1, :fa2]) AS retried_own_only;
SELECT taskguard.dlq_abandon(ARRAY[:fb1]) AS abandon_other;
SELECT taskguard.requeue(:tb1) AS requeue_other;
SELECT taskguard.dlq_purge('0 seconds', '{PENDING,RETRYING,ABANDONED,RESOLVED}') AS purged;
SELECT pg_temp.try($$TRUNCATE taskguard.task$$);
-- and cannot map itself to another tenant, or unmap itself
SELECT pg_temp.try($$INSERT INTO taskguard.tenant_member VALUES ('tg_acc_aa', 'bolt')$$);
WITH d AS (DELETE FROM taskguard.tenant_member WHERE role = 'tg_acc_aa' RETURNING 1)
SELECT count(*) AS unmapped_itself FROM d;
WITH u AS (UPDATE taskguard.tenant_member SET tenant = 'bolt' RETURNING 1)
SELECT count(*) AS remapped_itself FROM u;
SELECT role, tenant FROM taskguard.tenant_member;
RESET ROLE;
SELECT tenant, status FROM taskguard.dead_letter ORDER BY id;
-- _tenant_visible: the rule views over rollups use
SET ROLE tg_acc_wa;
SELECT taskguard._tenant_visible('acme') AS own, taskguard._tenant_visible('bolt') AS other,
       taskguard._tenant_visible(NULL) AS no_tenant;
RESET ROLE;
SELECT taskguard._tenant_visible('bolt') AS unmapped_sees_all;

-- the mapping is read again after every change (it is cached per backend)
SET ROLE tg_acc_wa;
SELECT taskguard._tenant_scope() AS scope, count(*) AS tasks FROM taskguard.task;
RESET ROLE;
INSERT INTO taskguard.tenant_member VALUES ('tg_acc_wa', 'bolt');
SET ROLE tg_acc_wa;
SELECT taskguard._tenant_scope() AS scope, array_agg(DISTINCT tenant) AS tenants FROM taskguard.task;
SELECT taskguard.enqueue('first_tenant', queue => 'acct2') AS ft \gset
SELECT tenant AS first_tenant FROM taskguard.task WHERE id = :ft;
RESET ROLE;
-- offboarding (its last mapping deleted) narrows it to nothing, never widens it
DELETE FROM taskguard.tenant_member WHERE role = 'tg_acc_wa';
SET ROLE tg_acc_wa;
SELECT taskguard._tenant_scope() AS scope, array_agg(DISTINCT tenant) AS tenants FROM taskguard.task;
RESET ROLE;
BEGIN;
INSERT INTO taskguard.tenant_member VALUES ('tg_acc_wa', 'acme');
SET LOCAL ROLE tg_acc_wa;
SELECT taskguard._tenant_scope() AS scope_in_transaction;
ROLLBACK;
SET ROLE tg_acc_wa;
SELECT taskguard._tenant_scope() AS scope_after_rollback;
RESET ROLE;

-- 8. a search_path trick against a SECURITY DEFINER function: shadow the
-- pg_catalog functions grant_access calls.  Without its pinned search_path
-- they would run as the extension's owner.
CREATE SCHEMA tg_acc_evil AUTHORIZATION tg_acc_admin;
SET ROLE tg_acc_admin;
CREATE TABLE tg_acc_evil.ran (who name);
CREATE FUNCTION tg_acc_evil.quote_ident(text) RETURNS text LANGUAGE sql AS
    $$ INSERT INTO tg_acc_evil.ran VALUES (current_user) RETURNING pg_catalog.quote_ident($1) $$;
CREATE FUNCTION tg_acc_evil.to_regrole(text) RETURNS regrole LANGUAGE sql AS
    $$ INSERT INTO tg_acc_evil.ran VALUES (current_user) RETURNING pg_catalog.to_regrole($1) $$;
SET search_path = tg_acc_evil, pg_catalog, taskguard;
SELECT quote_ident('shadowed') AS trick_works_here;
TRUNCATE tg_acc_evil.ran;
SELECT grant_access('tg_acc_none', 'reader');
SELECT revoke_access('tg_acc_none', 'reader');
SELECT count(*) AS evil_calls FROM tg_acc_evil.ran;
RESET search_path;
RESET ROLE;

-- cleanup
DROP SCHEMA tg_acc_evil CASCADE;
DELETE FROM taskguard.tenant_member WHERE role::text LIKE 'tg_acc_%';
DELETE FROM taskguard.task;
DELETE FROM taskguard.dead_letter;
DELETE FROM taskguard.failure_event;
DELETE FROM taskguard.idempotency_record;
SELECT taskguard.breaker_reset('acc_svc');
DROP OWNED BY tg_acc_none, tg_acc_reader, tg_acc_worker, tg_acc_admin, tg_acc_wa, tg_acc_wb,
    tg_acc_ra, tg_acc_aa, "tg_acc_Mixed Case";
DROP ROLE tg_acc_none, tg_acc_reader, tg_acc_worker, tg_acc_admin, tg_acc_wa, tg_acc_wb,
    tg_acc_ra, tg_acc_aa, "tg_acc_Mixed Case";
