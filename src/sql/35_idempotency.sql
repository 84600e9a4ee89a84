-- 35_idempotency.sql — idempotency keys (docs/reference.md#idempotency): the key table, key hashing,
-- check/release, the enqueue hooks, the stats view and the scheduler steps.
--
-- One row per (tenant, key) seen within its TTL.  The primary key is on the
-- SHA-256 of the key, so keys of any length index in 32 bytes; the unique
-- index, not a lock, decides which of two concurrent callers is first, and a
-- rolled-back check or enqueue leaves no row behind.  tenant '' stands for
-- "no tenant" so that the key is a plain, NOT NULL btree key.

CREATE TABLE taskguard.idempotency_record (
    tenant     text NOT NULL DEFAULT '',
    key_digest bytea NOT NULL,          -- sha256 of the key's bytes
    key        text,                    -- the key itself when at most 1024 bytes
    task_name  text,
    task_id    bigint,                  -- the task enqueue() bound to the key
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, key_digest)
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.idempotency_record', '');
-- _idempotency_expire() finds expired rows through a BRIN index: rows arrive
-- roughly in expiry order, and a BRIN costs next to nothing per insert where a
-- second btree cost about a quarter of idempotency_check's throughput.
CREATE INDEX idempotency_record_expires_idx ON taskguard.idempotency_record
    USING brin (expires_at) WITH (pages_per_range = 32, autosummarize = on);

-- Flushed check counters per tenant and task_name; '' = checks made without
-- a task_name, or without a tenant.  Row security by tenant (90_access.sql).
CREATE TABLE taskguard.idempotency_counter (
    task_name         text NOT NULL,
    checks            bigint NOT NULL DEFAULT 0,
    duplicates        bigint NOT NULL DEFAULT 0,
    last_duplicate_at timestamptz,
    tenant            text NOT NULL DEFAULT '',
    CONSTRAINT idempotency_counter_pkey PRIMARY KEY (tenant, task_name)
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.idempotency_counter', '');

CREATE FUNCTION taskguard.idempotency_key(task_name text, args jsonb DEFAULT '{}')
RETURNS text
AS 'MODULE_PATHNAME', 'taskguard_idempotency_key'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION taskguard._idempotency_digest(key text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'taskguard_idempotency_digest'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION taskguard.idempotency_check(key text, ttl interval DEFAULT '24 hours',
                                            task_name text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_idempotency_check'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

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

CREATE FUNCTION taskguard._xact_owns(x xid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_xact_owns'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- Forget a key of the caller's tenant now; true when a live key was removed.
CREATE FUNCTION taskguard.idempotency_release(key text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- a worker has no write privilege on the tables: state changes only here
SECURITY DEFINER SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_live boolean;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'argument "key" must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    ELSIF key = '' THEN
        RAISE EXCEPTION 'key must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM taskguard.idempotency_record r
     WHERE r.tenant = coalesce(taskguard._effective_tenant(NULL), '')
       AND r.key_digest = taskguard._idempotency_digest(idempotency_release.key)
    RETURNING r.expires_at > now() INTO v_live;
    RETURN coalesce(v_live, false);
END
$$;

-- Checks and duplicates per task_name: flushed totals plus live counts.
-- Per task_name over the caller's tenants (a tenant-bound reader sees its
-- own counts only).  Filters by tenant itself, so it is a security barrier
-- (90_access.sql): the live counters come from shared memory, where row
-- security does not reach.
CREATE VIEW taskguard.idempotency_stats AS
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

CREATE FUNCTION taskguard._idempotency_find(key text, tenant text, task_name text)
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
CREATE FUNCTION taskguard._idempotency_bind(key text, tenant text, task_name text, task_id bigint)
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

-- _idempotency_bind's lost race: delete the task this transaction has just
-- inserted for a key another task (or an idempotency_check) holds.  SECURITY
-- DEFINER because workers have no DELETE on taskguard.task; it deletes
-- nothing else: a never-claimed ready task, written by this transaction,
-- whose key belongs to someone else.
CREATE FUNCTION taskguard._task_discard(task_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH gone AS (
    DELETE FROM taskguard.task t
     WHERE t.id = $1 AND t.status = 'ready' AND t.attempts = 0
       AND t.idempotency_key IS NOT NULL AND taskguard._xact_owns(t.xmin)
       AND EXISTS (SELECT 1 FROM taskguard.idempotency_record r
                    WHERE r.tenant = coalesce(t.tenant, '')
                      AND r.key_digest = taskguard._idempotency_digest(t.idempotency_key)
                      AND r.task_id IS DISTINCT FROM t.id)
    RETURNING 1)
SELECT count(*) > 0 FROM gone
$$;

-- Scheduler step: delete expired keys, at most batch.
CREATE FUNCTION taskguard._idempotency_expire(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    RETURN taskguard._delete_batch('taskguard.idempotency_record', 'x.expires_at <= now()',
                                   greatest(batch, 1));
END
$$;

-- Scheduler step: move live shared-memory counts of this database into
-- idempotency_counter (they return to shared memory if this aborts).
CREATE FUNCTION taskguard._flush_counters()
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
