-- Issue 16, class 7: idempotency counters per tenant.  The shared-memory
-- counters are keyed by (database, tenant, task_name); the flushed table
-- gets a tenant column under row security, and idempotency_stats shows a
-- tenant-bound role its own tenants' counts only.  (The 0.1.0 functions'
-- C symbols stay in the library for a 0.1.0 schema until this update.)
ALTER TABLE taskguard.idempotency_counter ADD COLUMN tenant text NOT NULL DEFAULT '';
ALTER TABLE taskguard.idempotency_counter DROP CONSTRAINT idempotency_counter_pkey;
ALTER TABLE taskguard.idempotency_counter
    ADD CONSTRAINT idempotency_counter_pkey PRIMARY KEY (tenant, task_name);
ALTER TABLE taskguard.idempotency_counter ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON taskguard.idempotency_counter
    USING (coalesce(tenant = ANY ((SELECT taskguard._tenant_scope())::text[]),
                    (SELECT taskguard._tenant_scope()) IS NULL))
    WITH CHECK (coalesce(tenant = ANY ((SELECT taskguard._tenant_scope())::text[]),
                         (SELECT taskguard._tenant_scope()) IS NULL));

-- Count checks/duplicates of a task_name in shared memory (no-op unpreloaded).
-- Count checks and duplicates for the enqueue path, which knows the tenant.
CREATE FUNCTION taskguard._idempotency_count(task_name text, tenant text, checks int,
                                             duplicates int)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_idempotency_count_tenant'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Counts not yet flushed, a row per tenant ('' = none) and task_name.
CREATE FUNCTION taskguard._idempotency_tenant_counters(
    OUT tenant text, OUT task_name text, OUT checks bigint, OUT duplicates bigint,
    OUT last_duplicate_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'taskguard_idempotency_tenant_counters'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 20;

-- The same, taken out of shared memory (put back if the transaction aborts).
CREATE FUNCTION taskguard._idempotency_take_tenant_counters(
    OUT tenant text, OUT task_name text, OUT checks bigint, OUT duplicates bigint,
    OUT last_duplicate_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'taskguard_idempotency_take_tenant_counters'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 20;

-- Per task_name over the caller's tenants (a tenant-bound reader sees its
-- own counts only).  Filters by tenant itself, so it is a security barrier
-- (90_access.sql): the live counters come from shared memory, where row
-- security does not reach.
CREATE OR REPLACE VIEW taskguard.idempotency_stats AS
SELECT nullif(s.task_name, '') AS task_name,
       sum(s.checks)::bigint AS checks,
       sum(s.duplicates)::bigint AS duplicates,
       coalesce(round(100.0 * sum(s.duplicates) / nullif(sum(s.checks), 0), 2), 0)
           AS hit_rate_pct,
       max(s.last_duplicate_at) AS last_duplicate_at
  FROM (SELECT c.tenant, c.task_name, c.checks, c.duplicates, c.last_duplicate_at
          FROM taskguard.idempotency_counter c
        UNION ALL
        SELECT l.tenant, coalesce(l.task_name, ''), l.checks, l.duplicates, l.last_duplicate_at
          FROM taskguard._idempotency_tenant_counters() l) s
 WHERE taskguard._tenant_visible(nullif(s.tenant, ''))
 GROUP BY s.task_name;
-- 0.1.0 made it security_invoker; it filters by tenant itself now (a
-- security barrier, set with the others in 60_security.sql)
ALTER VIEW taskguard.idempotency_stats RESET (security_invoker);

CREATE OR REPLACE FUNCTION taskguard._idempotency_find(key text, tenant text, task_name text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_task bigint;
    v_mine boolean;
BEGIN
    IF key = '' THEN
        RAISE EXCEPTION 'idempotency_key must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM taskguard._idempotency_count(task_name, tenant, 1, 0);
    SELECT r.task_id, taskguard._xact_owns(r.xmin) INTO v_task, v_mine
      FROM taskguard.idempotency_record r
     WHERE r.tenant = coalesce(_idempotency_find.tenant, '')
       AND r.key_digest = taskguard._idempotency_digest(_idempotency_find.key)
       AND r.expires_at > now();
    IF v_task IS NOT NULL THEN
        PERFORM taskguard._idempotency_count(task_name, tenant, 0, 1);
    END IF;
    RETURN v_task;
END
$$;

-- enqueue hook: bind the task just inserted to key; returns the task that owns
-- the key.  The unique index decides a race: the loser waits for the winner's
-- commit, finds its row, deletes its own just-inserted task (same
-- transaction, never visible) and returns the winner's id — or NULL when the
-- key was taken by idempotency_check() elsewhere and has no task.
CREATE OR REPLACE FUNCTION taskguard._idempotency_bind(key text, tenant text, task_name text, task_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_tenant text := coalesce(tenant, '');
    v_digest bytea := taskguard._idempotency_digest(_idempotency_bind.key);
    v_owner  bigint;
BEGIN
    INSERT INTO taskguard.idempotency_record AS r
           (tenant, key_digest, key, task_name, task_id, expires_at)
    VALUES (v_tenant, v_digest,
            CASE WHEN octet_length(_idempotency_bind.key) <= 1024 THEN _idempotency_bind.key END,
            _idempotency_bind.task_name, _idempotency_bind.task_id,
            now() + taskguard._setting_interval('taskguard.idempotency_ttl', '24 hours'))
    ON CONFLICT ON CONSTRAINT idempotency_record_pkey DO UPDATE
       SET task_id = EXCLUDED.task_id, task_name = EXCLUDED.task_name,
           expires_at = greatest(EXCLUDED.expires_at,
                                 CASE WHEN r.expires_at > now() THEN r.expires_at END),
           created_at = CASE WHEN r.expires_at > now() THEN r.created_at ELSE now() END
     WHERE r.expires_at <= now() OR (r.task_id IS NULL AND taskguard._xact_owns(r.xmin))
    RETURNING r.task_id INTO v_owner;
    IF v_owner IS NOT NULL THEN
        RETURN v_owner;
    END IF;

    -- Lost: the row is locked by the ON CONFLICT and committed by its owner.
    SELECT r.task_id INTO v_owner FROM taskguard.idempotency_record r
     WHERE r.tenant = v_tenant AND r.key_digest = v_digest;
    PERFORM taskguard._task_discard(_idempotency_bind.task_id);
    PERFORM taskguard._idempotency_count(task_name, v_tenant, 0, 1);
    RETURN v_owner;
END
$$;

-- Scheduler step: move live shared-memory counts of this database into
-- idempotency_counter (they return to shared memory if this aborts).
CREATE OR REPLACE FUNCTION taskguard._flush_counters()
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    INSERT INTO taskguard.idempotency_counter AS c
           (tenant, task_name, checks, duplicates, last_duplicate_at)
    SELECT coalesce(l.tenant, ''), coalesce(l.task_name, ''), sum(l.checks), sum(l.duplicates),
           max(l.last_duplicate_at)
      FROM taskguard._idempotency_take_tenant_counters() l
     GROUP BY 1, 2
    ON CONFLICT ON CONSTRAINT idempotency_counter_pkey DO UPDATE
       SET checks = c.checks + EXCLUDED.checks,
           duplicates = c.duplicates + EXCLUDED.duplicates,
           last_duplicate_at = greatest(c.last_duplicate_at, EXCLUDED.last_duplicate_at);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

DROP FUNCTION taskguard._idempotency_count(text, int, int);
DROP FUNCTION taskguard._idempotency_live_counters();
DROP FUNCTION taskguard._idempotency_take_counters();
REVOKE ALL ON ROUTINE taskguard._idempotency_count(text, text, int, int),
    taskguard._idempotency_tenant_counters(), taskguard._idempotency_take_tenant_counters()
    FROM PUBLIC;
