-- generated from src/sql/*.sql by make; edit those files
\echo Use "CREATE EXTENSION taskguard" to load this file. \quit

-- ==== src/sql/00_types.sql
-- 00_types.sql — the types of SPEC §2 and small shared helpers.

CREATE TYPE taskguard.failure_type AS ENUM (
    'TRANSIENT_NETWORK', 'TRANSIENT_DATABASE', 'TRANSIENT_RATE_LIMIT',
    'PERMANENT_INVALID_INPUT', 'PERMANENT_NOT_FOUND', 'PERMANENT_AUTHENTICATION',
    'CONFIGURATION_MISSING_ENV', 'CONFIGURATION_PERMISSIONS',
    'EXTERNAL_SERVICE_UNAVAILABLE', 'EXTERNAL_API_ERROR',
    'SYSTEM_OUT_OF_MEMORY', 'SYSTEM_DISK_FULL', 'SYSTEM_CPU_OVERLOAD',
    'BUSINESS_LOGIC_VIOLATION', 'UNKNOWN');

CREATE TYPE taskguard.remediation AS ENUM (
    'RETRY_IMMEDIATELY', 'RETRY_WITH_BACKOFF', 'ESCALATE_TO_ADMIN',
    'FIX_CONFIGURATION', 'UPDATE_DEPENDENCIES', 'CONTACT_EXTERNAL_SERVICE',
    'SCALE_RESOURCES', 'MANUAL_INVESTIGATION');

CREATE TYPE taskguard.priority AS ENUM ('DEFERRED', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL');

CREATE TYPE taskguard.dlq_status AS ENUM ('PENDING', 'RETRYING', 'RESOLVED', 'ABANDONED');

CREATE TYPE taskguard.alert_level AS ENUM ('info', 'warning', 'error', 'critical');

CREATE TYPE taskguard.breaker_state AS ENUM ('closed', 'open', 'half_open');

CREATE TYPE taskguard.classification AS (
    failure_type taskguard.failure_type,
    confidence   real,
    remediation  taskguard.remediation,
    retryable    boolean,
    alert_level  taskguard.alert_level,
    rule         text);

CREATE TYPE taskguard.retry_decision AS (
    should_retry  boolean,
    delay         interval,
    next_retry_at timestamptz,
    reason        text);

CREATE TYPE taskguard.failure_outcome AS (
    failure_type  taskguard.failure_type,
    confidence    real,
    remediation   taskguard.remediation,
    action        text,
    next_retry_at timestamptz,
    failure_id    bigint);

CREATE TYPE taskguard.priority_result AS (
    priority taskguard.priority,
    score    real,
    queue    text,
    reasons  text[]);

-- An interval-valued taskguard.* setting, with its default when the library
-- has not defined it in this session yet.
CREATE FUNCTION taskguard._setting_interval(name text, fallback interval)
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting(name, true), '')::interval, fallback) $$;

-- Score of a level: DEFERRED 0 … CRITICAL 4.
CREATE FUNCTION taskguard._priority_score(level taskguard.priority)
RETURNS real
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT (array_position(enum_range(NULL::taskguard.priority), level) - 1)::real $$;

-- ==== src/sql/05_tenant.sql
-- 05_tenant.sql — tenant mapping (SPEC §12): which tenants a role acts for.
-- The row-level security built on it, and the grants, are in 90_access.sql.
--
-- A role with no row here is not tenant-bound: it sees every row its access
-- level allows.  A mapped role sees and writes only its tenants' rows.  All
-- functions here read current_user, so they must never be SECURITY DEFINER
-- (inside one, current_user is the owner); they run as the caller.

CREATE TABLE taskguard.tenant_member (
    role   name NOT NULL,
    tenant text NOT NULL CHECK (tenant <> ''),
    PRIMARY KEY (role, tenant)
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.tenant_member', '');

-- The caller's tenants, sorted; NULL when the caller is not mapped.  C
-- (src/tenant.c), cached per backend until tenant_member changes: row
-- security policies, idempotency_check and the functions below ask for it on
-- every call.  It reads the table as its owner.
CREATE FUNCTION taskguard._tenant_scope()
RETURNS text[]
AS 'MODULE_PATHNAME', 'taskguard_tenant_scope'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION taskguard._tenant_member_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_tenant_member_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE TRIGGER tenant_member_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.tenant_member
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._tenant_member_changed();

-- Refuse a tenant the caller is not mapped to (insufficient_privilege).
CREATE FUNCTION taskguard._tenant_refused(tenant text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    RAISE EXCEPTION 'role "%" may not act for tenant "%"', current_user, tenant
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = 'The role is mapped to other tenants in taskguard.tenant_member.',
              HINT = 'Leave tenant NULL to act for the role''s own tenant.';
END
$$;

-- The tenant a call acts for: the named one, else the caller's first mapped
-- tenant (NULL for an unmapped caller).  A mapped caller naming a tenant it
-- is not mapped to is refused.  Plain SQL, so callers inline it.
-- src/idempotency.c writes the "first mapped tenant" rule out as
-- IDEM_TENANT_SQL; keep the two in step.
CREATE FUNCTION taskguard._effective_tenant(tenant text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN tenant IS NULL THEN (taskguard._tenant_scope())[1]
            WHEN taskguard._tenant_scope() IS NULL OR tenant = ANY (taskguard._tenant_scope())
            THEN tenant
            ELSE taskguard._tenant_refused(tenant) END
$$;

-- Whether the caller may see rows of row_tenant: a role with no mapping sees
-- every tenant, a mapped role only its own (never rows without a tenant).
-- Views over rollups filter with it (a view runs with its owner's rights, so
-- RLS alone would not filter them).  The same rule as the row security
-- policies of 90_access.sql; plain SQL, so the planner inlines it.
CREATE FUNCTION taskguard._tenant_visible(row_tenant text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT coalesce(row_tenant = ANY (taskguard._tenant_scope()), taskguard._tenant_scope() IS NULL)
$$;

-- ==== src/sql/10_priority.sql
-- 10_priority.sql — priority levels, tiers and per-task configuration (SPEC §7):
-- the configuration tables, calculate_priority/priority_level (C, src/priority.c,
-- which caches the tables per backend; the triggers below invalidate that cache)
-- and the scheduler's escalation step.

CREATE TABLE taskguard.task_config (
    task_name     text PRIMARY KEY,
    base_priority taskguard.priority NOT NULL DEFAULT 'MEDIUM',
    queue         text,
    max_attempts  int CHECK (max_attempts IS NULL OR max_attempts >= 1),
    service       text
);

CREATE TABLE taskguard.customer_tier (
    tier  text PRIMARY KEY,
    sla   interval NOT NULL,
    bonus real NOT NULL DEFAULT 0
);
INSERT INTO taskguard.customer_tier VALUES
    ('enterprise', '15 minutes', 1.0),
    ('premium', '30 minutes', 0.5),
    ('standard', '2 hours', 0),
    ('basic', '8 hours', -0.5);

CREATE TABLE taskguard.priority_queue (
    priority taskguard.priority PRIMARY KEY,
    queue    text NOT NULL
);
INSERT INTO taskguard.priority_queue VALUES
    ('CRITICAL', 'critical'), ('HIGH', 'high'), ('MEDIUM', 'default'),
    ('LOW', 'low'), ('DEFERRED', 'deferred');

CREATE FUNCTION taskguard.priority_level(score real)
RETURNS taskguard.priority
AS 'MODULE_PATHNAME', 'taskguard_priority_level'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- context: customer_tier, age_hours (or enqueued_at), failure_type.
CREATE FUNCTION taskguard.calculate_priority(task_name text, context jsonb DEFAULT '{}')
RETURNS taskguard.priority_result
AS 'MODULE_PATHNAME', 'taskguard_calculate_priority'
LANGUAGE C STABLE PARALLEL SAFE;

-- The aging + SLA pressure a task enqueued at enqueued_at has earned by as_of
-- (NULL: now); the escalation step adds it to a task's un-aged base score.
CREATE FUNCTION taskguard._escalation_bonus(customer_tier text, enqueued_at timestamptz,
                                            as_of timestamptz DEFAULT NULL)
RETURNS real
AS 'MODULE_PATHNAME', 'taskguard_escalation_bonus'
LANGUAGE C STABLE PARALLEL SAFE;

-- Every backend caches the three tables above; a change tells them to re-read.
CREATE FUNCTION taskguard._priority_config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_priority_config_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE TRIGGER priority_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.task_config
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._priority_config_changed();
CREATE TRIGGER priority_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.customer_tier
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._priority_config_changed();
CREATE TRIGGER priority_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.priority_queue
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._priority_config_changed();

SELECT pg_catalog.pg_extension_config_dump('taskguard.task_config', '');




-- What the escalation step last did to a waiting task: its un-aged base
-- score and the score it set.
CREATE TABLE taskguard.task_escalation (
    task_id         bigint PRIMARY KEY,
    base_score      real NOT NULL,
    escalated_score real NOT NULL
);

-- Scheduler step: re-apply aging and SLA escalation to ready tasks, raising
-- only those whose level changes, at most batch of them, skipping rows that
-- claim() holds.  Tasks younger than the smallest threshold (half the
-- shortest SLA, or 6 h) are not looked at.
--
-- new score = clamp(un-aged base + bonus earned by now).  The un-aged base is
--  * the remembered base while the task still has the score escalation set;
--  * else, for a task that never ran, its enqueue-time score (age 0 then);
--  * else the score was set by someone else — a retry recomputed it with the
--    aging earned by then, or requeue()/an operator chose it — at about
--    run_at: that score minus the bonus earned by run_at, so aging is never
--    counted twice and only what is earned afterwards is added.
CREATE FUNCTION taskguard._escalate_priorities(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_young interval;
    v_n     int;
BEGIN
    SELECT least(interval '6 hours', min(c.sla) / 2) INTO v_young
      FROM taskguard.customer_tier c WHERE c.sla > interval '0';
    v_young := coalesce(v_young, interval '6 hours');

    WITH cand AS (
        SELECT t.id, b.base, s.score
          FROM taskguard.task t
          LEFT JOIN taskguard.task_escalation e ON e.task_id = t.id
         CROSS JOIN LATERAL (SELECT CASE
                WHEN e.escalated_score = t.priority_score THEN e.base_score
                WHEN t.attempts = 0 AND e.task_id IS NULL THEN t.priority_score
                ELSE t.priority_score - taskguard._escalation_bonus(
                         t.customer_tier, t.enqueued_at, greatest(t.run_at, t.enqueued_at))
                END AS base) b
         CROSS JOIN LATERAL (SELECT least(4, greatest(0, b.base +
                    taskguard._escalation_bonus(t.customer_tier, t.enqueued_at)))::real AS score) s
         WHERE t.status = 'ready' AND t.priority_score < 4
           AND t.enqueued_at <= now() - v_young
           AND s.score > t.priority_score
           AND taskguard.priority_level(s.score) > t.priority
         LIMIT greatest(batch, 1)
         FOR UPDATE OF t SKIP LOCKED),
    upd AS (
        UPDATE taskguard.task t
           SET priority = taskguard.priority_level(c.score), priority_score = c.score
          FROM cand c
         WHERE t.id = c.id
        RETURNING t.id)
    INSERT INTO taskguard.task_escalation AS x (task_id, base_score, escalated_score)
    SELECT c.id, c.base, c.score FROM cand c JOIN upd u ON u.id = c.id
    ON CONFLICT (task_id) DO UPDATE
       SET base_score = EXCLUDED.base_score, escalated_score = EXCLUDED.escalated_score;
    GET DIAGNOSTICS v_n = ROW_COUNT;

    -- Forget tasks that finished or were pruned.
    -- (= ANY(ARRAY()): the pick runs once, never rescanned per row)
    DELETE FROM taskguard.task_escalation x
     WHERE x.task_id = ANY (ARRAY(
        SELECT e.task_id FROM taskguard.task_escalation e
          LEFT JOIN taskguard.task t ON t.id = e.task_id
         WHERE t.id IS NULL OR t.status IN ('succeeded', 'cancelled')
         LIMIT greatest(batch, 1)));
    RETURN v_n;
END
$$;

-- ==== src/sql/15_classify.sql
-- 15_classify.sql — the failure taxonomy and retry policies (SPEC §4, §5):
-- taskguard.retry_policy, taskguard.classification_rule, classify(),
-- backoff() and retry_decision().

-- One row per failure type with task_name NULL (the default, seeded from
-- SPEC §4), plus optional per-task overrides: an override's NULL columns
-- inherit the type's default row.
CREATE TABLE taskguard.retry_policy (
    failure_type        taskguard.failure_type NOT NULL,
    task_name           text,
    remediation         taskguard.remediation,
    retryable           boolean,
    max_retries         int CHECK (max_retries BETWEEN 0 AND 1000000),
    base_delay          interval CHECK (base_delay >= interval '0'),
    max_delay           interval,
    multiplier          float8 CHECK (multiplier >= 1 AND multiplier < 'Infinity'),
    jitter              text CHECK (jitter IN ('none', 'full', 'equal')),
    alert_level         taskguard.alert_level,
    priority_adjustment real CHECK (priority_adjustment BETWEEN -4 AND 4),
    CONSTRAINT retry_policy_key UNIQUE NULLS NOT DISTINCT (failure_type, task_name),
    CONSTRAINT retry_policy_delays CHECK (max_delay >= base_delay),
    CONSTRAINT retry_policy_default_complete CHECK (task_name IS NOT NULL OR (
        remediation IS NOT NULL AND retryable IS NOT NULL AND max_retries IS NOT NULL
        AND multiplier IS NOT NULL AND jitter IS NOT NULL AND alert_level IS NOT NULL
        AND priority_adjustment IS NOT NULL))
);

INSERT INTO taskguard.retry_policy (failure_type, remediation, retryable, max_retries,
        base_delay, max_delay, multiplier, jitter, alert_level, priority_adjustment) VALUES
    ('TRANSIENT_NETWORK', 'RETRY_WITH_BACKOFF', true, 5, '2 seconds', '5 minutes', 2.0, 'full', 'warning', 0),
    ('TRANSIENT_DATABASE', 'RETRY_IMMEDIATELY', true, 5, '1 second', '1 minute', 2.0, 'full', 'warning', 0),
    ('TRANSIENT_RATE_LIMIT', 'RETRY_WITH_BACKOFF', true, 8, '30 seconds', '30 minutes', 2.0, 'full', 'info', -1),
    ('PERMANENT_INVALID_INPUT', 'MANUAL_INVESTIGATION', false, 0, NULL, NULL, 2.0, 'full', 'error', 0),
    ('PERMANENT_NOT_FOUND', 'MANUAL_INVESTIGATION', false, 0, NULL, NULL, 2.0, 'full', 'warning', 0),
    ('PERMANENT_AUTHENTICATION', 'FIX_CONFIGURATION', false, 0, NULL, NULL, 2.0, 'full', 'critical', 0),
    ('CONFIGURATION_MISSING_ENV', 'FIX_CONFIGURATION', false, 0, NULL, NULL, 2.0, 'full', 'critical', 0),
    ('CONFIGURATION_PERMISSIONS', 'FIX_CONFIGURATION', false, 0, NULL, NULL, 2.0, 'full', 'critical', 0),
    ('EXTERNAL_SERVICE_UNAVAILABLE', 'CONTACT_EXTERNAL_SERVICE', true, 6, '30 seconds', '1 hour', 2.0, 'full', 'error', -0.5),
    ('EXTERNAL_API_ERROR', 'CONTACT_EXTERNAL_SERVICE', true, 3, '10 seconds', '10 minutes', 2.0, 'full', 'error', 0),
    ('SYSTEM_OUT_OF_MEMORY', 'SCALE_RESOURCES', true, 2, '5 minutes', '30 minutes', 2.0, 'full', 'critical', -0.5),
    ('SYSTEM_DISK_FULL', 'SCALE_RESOURCES', true, 1, '15 minutes', '15 minutes', 2.0, 'full', 'critical', -0.5),
    ('SYSTEM_CPU_OVERLOAD', 'SCALE_RESOURCES', true, 3, '1 minute', '15 minutes', 2.0, 'full', 'error', -0.5),
    ('BUSINESS_LOGIC_VIOLATION', 'ESCALATE_TO_ADMIN', false, 0, NULL, NULL, 2.0, 'full', 'warning', 0),
    ('UNKNOWN', 'MANUAL_INVESTIGATION', true, 3, '10 seconds', '10 minutes', 2.0, 'full', 'warning', 0);

-- Only the per-task overrides are dumped: the default rows are re-created by
-- CREATE EXTENSION (edit them again after a restore; see docs/failures.md).
SELECT pg_catalog.pg_extension_config_dump('taskguard.retry_policy', 'WHERE task_name IS NOT NULL');

-- User classification rules (SPEC §4 layer 1); every non-NULL condition must hold.
CREATE TABLE taskguard.classification_rule (
    id                 int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    priority           int NOT NULL DEFAULT 100,
    error_type_pattern text,
    message_pattern    text CHECK (message_pattern IS NULL OR ('' ~* message_pattern) IS NOT NULL),
    sqlstate_prefix    text CHECK (sqlstate_prefix ~ '^[0-9A-Za-z]{1,5}$'),
    http_status_min    int CHECK (http_status_min BETWEEN 100 AND 599),
    http_status_max    int CHECK (http_status_max BETWEEN 100 AND 599),
    failure_type       taskguard.failure_type NOT NULL,
    confidence         real NOT NULL DEFAULT 0.95 CHECK (confidence BETWEEN 0 AND 1),
    remediation        taskguard.remediation,
    description        text,
    CONSTRAINT classification_rule_http CHECK (http_status_max >= http_status_min),
    CONSTRAINT classification_rule_has_condition CHECK (num_nonnulls(error_type_pattern,
        message_pattern, sqlstate_prefix, http_status_min, http_status_max) > 0)
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.classification_rule', '');
SELECT pg_catalog.pg_extension_config_dump('taskguard.classification_rule_id_seq', '');

-- Any change to the rules or policies makes every backend reload its cache
-- (a relcache invalidation of the table, delivered at commit).
CREATE FUNCTION taskguard._classify_invalidate()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_classify_invalidate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE TRIGGER classification_rule_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.classification_rule
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._classify_invalidate();
CREATE TRIGGER retry_policy_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.retry_policy
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._classify_invalidate();

CREATE FUNCTION taskguard.classify(error_type text, message text DEFAULT NULL,
    context jsonb DEFAULT '{}')
RETURNS taskguard.classification
AS 'MODULE_PATHNAME', 'taskguard_classify'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION taskguard.backoff(attempt int, base interval DEFAULT '1 second',
    cap interval DEFAULT '1 hour', multiplier float8 DEFAULT 2.0, jitter text DEFAULT 'full')
RETURNS interval
AS 'MODULE_PATHNAME', 'taskguard_backoff'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

CREATE FUNCTION taskguard.retry_decision(failure_type taskguard.failure_type, retry_count int,
    task_name text DEFAULT NULL, context jsonb DEFAULT '{}')
RETURNS taskguard.retry_decision
AS 'MODULE_PATHNAME', 'taskguard_retry_decision'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- ==== src/sql/30_queue.sql
-- 30_queue.sql — the task queue (SPEC §3): table, enqueue, claim, complete,
-- heartbeat, cancel, requeue, lease reaping and pruning.
--
-- Hooks into other capabilities are plain functions defined in their own files
-- (taskguard._breaker_is_open, _breaker_claimed, _breaker_task_done,
-- _idempotency_find, _idempotency_bind, _dlq_task_succeeded); PL/pgSQL resolves
-- them at call time.

CREATE TABLE taskguard.task (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    queue            text NOT NULL DEFAULT 'default',
    task_name        text NOT NULL,
    args             jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'ready'
                     CHECK (status IN ('ready', 'running', 'succeeded', 'failed', 'cancelled')),
    priority         taskguard.priority NOT NULL DEFAULT 'MEDIUM',
    priority_score   real NOT NULL DEFAULT 2,
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempts         int NOT NULL DEFAULT 0,
    max_attempts     int CHECK (max_attempts IS NULL OR max_attempts >= 1),
    tenant           text,
    customer_tier    text NOT NULL DEFAULT 'standard',
    service          text,
    idempotency_key  text,
    enqueued_at      timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    worker           text,
    lease_expires_at timestamptz,
    result           jsonb,
    last_error       text,
    failure_id       bigint          -- the open dead-letter record, if any
);

-- A queue table churns: every task is inserted, updated two or three times
-- and deleted within task_retention.  Vacuum it after 2 % of its rows are
-- dead (not PostgreSQL's 20 %), unthrottled, so claim()'s index scans do not
-- wade through dead entries under a steady load (make soak).
ALTER TABLE taskguard.task SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);

-- claim(): ready tasks of a queue in claim order.
CREATE INDEX task_ready_idx ON taskguard.task (queue, priority_score DESC, run_at, id)
    WHERE status = 'ready';
-- the scheduler: expired leases, due retries, pruning.
CREATE INDEX task_lease_idx ON taskguard.task (lease_expires_at) WHERE status = 'running';
CREATE INDEX task_failed_idx ON taskguard.task (run_at) WHERE status = 'failed';
CREATE INDEX task_finished_idx ON taskguard.task (finished_at)
    WHERE status IN ('succeeded', 'cancelled');

-- Refuse a NULL where a value is required, naming the argument.
CREATE FUNCTION taskguard._require(value anyelement, argname text)
RETURNS anyelement
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF value IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be NULL', argname
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    RETURN value;
END
$$;

-- Validate the common enqueue arguments; raises invalid_parameter_value.
CREATE FUNCTION taskguard._check_enqueue(task_name text, queue text, run_at timestamptz,
                                         max_attempts int)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    PERFORM taskguard._require(task_name, 'task_name');
    IF task_name = '' OR length(task_name) > 1000 THEN
        RAISE EXCEPTION 'task_name must be 1 to 1000 characters, got %', length(task_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF queue IS NULL OR queue = '' OR length(queue) > 200 THEN
        RAISE EXCEPTION 'queue must be 1 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF run_at IS NOT NULL AND NOT isfinite(run_at) THEN
        RAISE EXCEPTION 'run_at must be a finite timestamp, got %', run_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_attempts IS NOT NULL AND max_attempts < 1 THEN
        RAISE EXCEPTION 'max_attempts must be at least 1, got %', max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION taskguard._notify(queue text)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_notify'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._send_pending_notifies()
RETURNS int
AS 'MODULE_PATHNAME', 'taskguard_send_pending_notifies'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard.enqueue(task_name text, args jsonb DEFAULT '{}',
    queue text DEFAULT 'default', run_at timestamptz DEFAULT now(),
    priority taskguard.priority DEFAULT NULL, tenant text DEFAULT NULL,
    customer_tier text DEFAULT 'standard', service text DEFAULT NULL,
    idempotency_key text DEFAULT NULL, max_attempts int DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_id     bigint;
    v_prio   taskguard.priority_result;
    v_tenant text := taskguard._effective_tenant(tenant);
    v_tier   text := coalesce(customer_tier, 'standard');
BEGIN
    -- one simple expression on the hot path; the checker names the bad argument
    IF task_name IS NULL OR task_name = '' OR length(task_name) > 1000 OR queue IS NULL
       OR queue = '' OR length(queue) > 200 OR NOT isfinite(coalesce(run_at, now()))
       OR max_attempts < 1 THEN
        PERFORM taskguard._check_enqueue(task_name, queue, run_at, max_attempts);
    END IF;
    IF idempotency_key IS NOT NULL THEN
        v_id := taskguard._idempotency_find(idempotency_key, v_tenant, task_name);
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
    END IF;
    IF priority IS NULL THEN
        v_prio := taskguard.calculate_priority(task_name, jsonb_build_object('customer_tier', v_tier));
    ELSE
        v_prio := (priority, taskguard._priority_score(priority), NULL, NULL);
    END IF;

    INSERT INTO taskguard.task AS t (queue, task_name, args, priority, priority_score, run_at,
                                     max_attempts, tenant, customer_tier, service, idempotency_key)
    VALUES (queue, task_name, coalesce(args, '{}'), v_prio.priority, v_prio.score,
            coalesce(run_at, now()), max_attempts, v_tenant, v_tier, service, idempotency_key)
    RETURNING t.id INTO v_id;

    IF idempotency_key IS NOT NULL THEN
        v_id := taskguard._idempotency_bind(idempotency_key, v_tenant, task_name, v_id);
    END IF;
    IF coalesce(run_at, now()) <= now() THEN
        PERFORM taskguard._notify(queue);
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION taskguard.enqueue_many(task_name text, args jsonb[],
    queue text DEFAULT 'default', run_at timestamptz DEFAULT now(),
    priority taskguard.priority DEFAULT NULL, tenant text DEFAULT NULL,
    customer_tier text DEFAULT 'standard', service text DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_prio   taskguard.priority_result;
    v_tenant text := taskguard._effective_tenant(tenant);
    v_tier   text := coalesce(customer_tier, 'standard');
BEGIN
    IF task_name IS NULL OR task_name = '' OR length(task_name) > 1000 OR queue IS NULL
       OR queue = '' OR length(queue) > 200 OR NOT isfinite(coalesce(run_at, now())) THEN
        PERFORM taskguard._check_enqueue(task_name, queue, run_at, NULL);
    END IF;
    IF args IS NULL THEN
        PERFORM taskguard._require(args, 'args');
    END IF;
    IF priority IS NULL THEN
        v_prio := taskguard.calculate_priority(task_name, jsonb_build_object('customer_tier', v_tier));
    ELSE
        v_prio := (priority, taskguard._priority_score(priority), NULL, NULL);
    END IF;

    RETURN QUERY
    INSERT INTO taskguard.task AS t (queue, task_name, args, priority, priority_score, run_at,
                                     tenant, customer_tier, service)
    SELECT enqueue_many.queue, enqueue_many.task_name, coalesce(a.arg, '{}'), v_prio.priority,
           v_prio.score, coalesce(enqueue_many.run_at, now()), v_tenant, v_tier, enqueue_many.service
      FROM unnest(args) WITH ORDINALITY AS a(arg, ord)
     ORDER BY a.ord
    RETURNING t.id;

    IF FOUND AND coalesce(run_at, now()) <= now() THEN
        PERFORM taskguard._notify(queue);
    END IF;
END
$$;

CREATE FUNCTION taskguard.claim(queue text DEFAULT 'default', worker text DEFAULT NULL,
    batch int DEFAULT 1, lease interval DEFAULT '5 minutes')
RETURNS SETOF taskguard.task
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 10
-- One plan for every call.  With `LIMIT batch` the generic plan's estimate
-- is 10% of the table, so the plan cache found it dearer than a custom plan
-- and planned the claim afresh on every call (a quarter of a worker's
-- backend CPU at batch 1); the plan below is the right one for any batch.
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    IF queue IS NULL THEN
        PERFORM taskguard._require(queue, 'queue');
    END IF;
    IF batch IS NULL OR batch < 1 OR batch > 10000 THEN
        RAISE EXCEPTION 'batch must be between 1 and 10000, got %', batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF lease IS NULL OR lease <= interval '0' OR lease > interval '1 year' THEN
        RAISE EXCEPTION 'lease must be a positive interval of at most 1 year, got %', lease
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

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
                          AND (p.service IS NULL OR NOT taskguard._breaker_is_open(p.service))
                        ORDER BY p.priority_score DESC, p.run_at, p.id
                        LIMIT 1
                        FOR UPDATE SKIP LOCKED)
           AND (t.service IS NULL OR taskguard._breaker_claimed(t.service))
        RETURNING t.*;
        RETURN;
    END IF;

    RETURN QUERY
    WITH picked AS (
        SELECT t.id, t.service FROM taskguard.task t
         WHERE t.queue = claim.queue AND t.status = 'ready' AND t.run_at <= now()
           AND (t.service IS NULL OR NOT taskguard._breaker_is_open(t.service))
         ORDER BY t.priority_score DESC, t.run_at, t.id
         LIMIT batch
         FOR UPDATE SKIP LOCKED),
    -- Circuit breakers (SPEC §6): take a half-open probe for each row handed
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
    SELECT c.* FROM claimed c ORDER BY c.priority_score DESC, c.run_at, c.id;
END
$$;

CREATE FUNCTION taskguard.complete(task_id bigint, result jsonb DEFAULT NULL, attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_task taskguard.task;
BEGIN
    UPDATE taskguard.task t
       SET status = 'succeeded', finished_at = now(), result = complete.result,
           lease_expires_at = NULL
     WHERE t.id = task_id AND t.status = 'running'
       AND (attempt IS NULL OR t.attempts = attempt)
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

CREATE FUNCTION taskguard.complete_many(task_ids bigint[], attempts int[] DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
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
           AND (w.attempt IS NULL OR t.attempts = w.attempt)
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

CREATE FUNCTION taskguard.heartbeat(task_id bigint, lease interval DEFAULT '5 minutes',
                                    attempt int DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
BEGIN
    IF lease IS NULL OR lease <= interval '0' OR lease > interval '1 year' THEN
        RAISE EXCEPTION 'lease must be a positive interval of at most 1 year, got %', lease
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE taskguard.task t
       SET lease_expires_at = greatest(t.lease_expires_at, clock_timestamp() + lease)
     WHERE t.id = task_id AND t.status = 'running'
       AND (attempt IS NULL OR t.attempts = attempt);
    RETURN FOUND;
END
$$;

-- Cancel a task that has not finished; an open DLQ record is abandoned with it.
CREATE FUNCTION taskguard.cancel(task_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_task taskguard.task;
BEGIN
    UPDATE taskguard.task t
       SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
     WHERE t.id = task_id AND t.status IN ('ready', 'failed', 'running')
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
CREATE FUNCTION taskguard.requeue(task_id bigint, priority taskguard.priority DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_task taskguard.task;
BEGIN
    SELECT * INTO v_task FROM taskguard.task t WHERE t.id = task_id FOR UPDATE;
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

-- Scheduler step: expired leases become taskguard.LeaseExpired failures.
CREATE FUNCTION taskguard._reap_expired_leases(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_task record;
    v_n    int := 0;
BEGIN
    FOR v_task IN
        SELECT t.id, t.attempts, t.worker, t.lease_expires_at FROM taskguard.task t
         WHERE t.status = 'running' AND t.lease_expires_at < now()
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
    RETURN v_n;
END
$$;

-- Scheduler step: delete succeeded and cancelled tasks past task_retention.
CREATE FUNCTION taskguard._prune_tasks(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    -- ARRAY(): the pick runs once (an InitPlan).  As `IN (subquery)` a plan
    -- cached while the table was small could rescan the subquery for every row
    -- (a nested-loop semi join over two seq scans): minutes at 20,000 tasks,
    -- with the scheduler's snapshot holding back vacuum all the while.
    DELETE FROM taskguard.task t
     WHERE t.id = ANY (ARRAY(
        SELECT p.id FROM taskguard.task p
         WHERE p.status IN ('succeeded', 'cancelled')
           AND p.finished_at < now() - taskguard._setting_interval('taskguard.task_retention', '1 day')
         LIMIT batch
         FOR UPDATE SKIP LOCKED));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- ==== src/sql/35_idempotency.sql
-- 35_idempotency.sql — idempotency keys (SPEC §8): the key table, key hashing,
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
-- _idempotency_expire() finds expired rows through a BRIN index: rows arrive
-- roughly in expiry order, and a BRIN costs next to nothing per insert where a
-- second btree cost about a quarter of idempotency_check's throughput.
CREATE INDEX idempotency_record_expires_idx ON taskguard.idempotency_record
    USING brin (expires_at) WITH (pages_per_range = 32, autosummarize = on);

-- Flushed check counters; '' = checks made without a task_name.
CREATE TABLE taskguard.idempotency_counter (
    task_name         text PRIMARY KEY,
    checks            bigint NOT NULL DEFAULT 0,
    duplicates        bigint NOT NULL DEFAULT 0,
    last_duplicate_at timestamptz
);

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
CREATE FUNCTION taskguard._idempotency_count(task_name text, checks int, duplicates int)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_idempotency_count'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard._idempotency_live_counters(
    OUT task_name text, OUT checks bigint, OUT duplicates bigint,
    OUT last_duplicate_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'taskguard_idempotency_live_counters'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 20;

CREATE FUNCTION taskguard._idempotency_take_counters(
    OUT task_name text, OUT checks bigint, OUT duplicates bigint,
    OUT last_duplicate_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'taskguard_idempotency_take_counters'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 20;

-- Was this row version written by the calling transaction?
CREATE FUNCTION taskguard._xact_owns(x xid)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_xact_owns'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- Forget a key of the caller's tenant now; true when a live key was removed.
CREATE FUNCTION taskguard.idempotency_release(key text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_live boolean;
BEGIN
    IF key IS NULL THEN
        RAISE EXCEPTION 'key must not be NULL' USING ERRCODE = 'null_value_not_allowed';
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
CREATE VIEW taskguard.idempotency_stats AS
SELECT nullif(s.task_name, '') AS task_name,
       sum(s.checks)::bigint AS checks,
       sum(s.duplicates)::bigint AS duplicates,
       coalesce(round(100.0 * sum(s.duplicates) / nullif(sum(s.checks), 0), 2), 0)
           AS hit_rate_pct,
       max(s.last_duplicate_at) AS last_duplicate_at
  FROM (SELECT c.task_name, c.checks, c.duplicates, c.last_duplicate_at
          FROM taskguard.idempotency_counter c
        UNION ALL
        SELECT coalesce(l.task_name, ''), l.checks, l.duplicates, l.last_duplicate_at
          FROM taskguard._idempotency_live_counters() l) s
 GROUP BY s.task_name;

-- enqueue hook: the task that already owns key within its TTL, or NULL to go
-- ahead.  Counts one check for task_name (and a duplicate when found).  A key
-- taken by idempotency_check() in this same transaction, with no task yet, is
-- "go ahead": check-then-enqueue with one key enqueues once.
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
    PERFORM taskguard._idempotency_count(task_name, 1, 0);
    SELECT r.task_id, taskguard._xact_owns(r.xmin) INTO v_task, v_mine
      FROM taskguard.idempotency_record r
     WHERE r.tenant = coalesce(_idempotency_find.tenant, '')
       AND r.key_digest = taskguard._idempotency_digest(_idempotency_find.key)
       AND r.expires_at > now();
    IF v_task IS NOT NULL THEN
        PERFORM taskguard._idempotency_count(task_name, 0, 1);
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
    PERFORM taskguard._idempotency_count(task_name, 0, 1);
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
DECLARE
    v_n int;
BEGIN
    DELETE FROM taskguard.idempotency_record r
     WHERE r.ctid = ANY (ARRAY(
        SELECT e.ctid FROM taskguard.idempotency_record e
         WHERE e.expires_at <= now()
         LIMIT greatest(batch, 1)
         FOR UPDATE SKIP LOCKED))
       AND r.expires_at <= now();
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
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
           (task_name, checks, duplicates, last_duplicate_at)
    SELECT coalesce(l.task_name, ''), sum(l.checks), sum(l.duplicates), max(l.last_duplicate_at)
      FROM taskguard._idempotency_take_counters() l
     GROUP BY 1
    ON CONFLICT (task_name) DO UPDATE
       SET checks = c.checks + EXCLUDED.checks,
           duplicates = c.duplicates + EXCLUDED.duplicates,
           last_duplicate_at = greatest(c.last_duplicate_at, EXCLUDED.last_duplicate_at);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- ==== src/sql/40_breaker.sql
-- 40_breaker.sql — circuit breakers (SPEC §6).  State lives in shared memory
-- (src/breaker.c); this file holds the settings, the saved state, the public
-- functions, the status view and the hooks the queue and the scheduler call.

-- Settings per service; '*' is the default row.  In other rows a NULL column
-- takes the '*' value (and without a '*' row, the built-in defaults below).
CREATE TABLE taskguard.breaker_config (
    service             text PRIMARY KEY
                        CHECK (octet_length(service) BETWEEN 1 AND 200),
    failure_threshold   int CHECK (failure_threshold BETWEEN 1 AND 1000000),
    "window"            interval CHECK ("window" > interval '0' AND "window" <= interval '1 year'),
    cooldown            interval CHECK (cooldown >= interval '0' AND cooldown <= interval '1 year'),
    half_open_max_calls int CHECK (half_open_max_calls BETWEEN 1 AND 1000000),
    success_threshold   int CHECK (success_threshold BETWEEN 1 AND 1000000),
    CONSTRAINT breaker_config_default_complete CHECK (service <> '*' OR (
        failure_threshold IS NOT NULL AND "window" IS NOT NULL AND cooldown IS NOT NULL
        AND half_open_max_calls IS NOT NULL AND success_threshold IS NOT NULL))
);
INSERT INTO taskguard.breaker_config
VALUES ('*', 5, interval '60 seconds', interval '30 seconds', 3, 2);
SELECT pg_catalog.pg_extension_config_dump('taskguard.breaker_config', 'WHERE service <> ''*''');

-- Every backend re-reads breaker_config after a change commits.
CREATE FUNCTION taskguard._breaker_config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_breaker_config_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE TRIGGER breaker_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.breaker_config
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._breaker_config_changed();

-- The resolved settings of every row (C reads this; microseconds).
CREATE FUNCTION taskguard._breaker_config_rows()
RETURNS TABLE (service text, failure_threshold int, window_us bigint, cooldown_us bigint,
               half_open_max_calls int, success_threshold int)
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT c.service,
       coalesce(c.failure_threshold, d.failure_threshold, 5),
       (extract(epoch FROM coalesce(c."window", d."window", interval '60 seconds')) * 1000000)::bigint,
       (extract(epoch FROM coalesce(c.cooldown, d.cooldown, interval '30 seconds')) * 1000000)::bigint,
       coalesce(c.half_open_max_calls, d.half_open_max_calls, 3),
       coalesce(c.success_threshold, d.success_threshold, 2)
  FROM taskguard.breaker_config c
  LEFT JOIN taskguard.breaker_config d ON d.service = '*'
$$;

-- The cooldown of a service (for saved rows that are not live).
CREATE FUNCTION taskguard._breaker_cooldown(service text)
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT coalesce((SELECT c.cooldown FROM taskguard.breaker_config c WHERE c.service = $1),
                (SELECT c.cooldown FROM taskguard.breaker_config c WHERE c.service = '*'),
                interval '30 seconds')
$$;

-- Saved breaker state, so that a restart keeps open breakers open.  Written on
-- every state change (best effort) and by the scheduler; read into shared
-- memory on first use in this database after a start.  version orders writes.
CREATE TABLE taskguard.breaker_saved (
    service      text PRIMARY KEY,
    state        taskguard.breaker_state NOT NULL,
    mode         text NOT NULL CHECK (mode IN ('auto', 'open', 'disabled')),
    failures     int NOT NULL DEFAULT 0,
    successes    int NOT NULL DEFAULT 0,
    window_start timestamptz,
    window_us    bigint NOT NULL DEFAULT 0,
    opened_at    timestamptz,
    changed_at   timestamptz,
    version      bigint NOT NULL
);

-- Rows worth loading (not closed-and-automatic), open ones first.
CREATE FUNCTION taskguard._breaker_saved_rows()
RETURNS SETOF taskguard.breaker_saved
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT * FROM taskguard.breaker_saved s
 WHERE s.state <> 'closed' OR s.mode <> 'auto'
 ORDER BY s.state = 'open' DESC, s.changed_at DESC NULLS LAST
$$;

CREATE FUNCTION taskguard._breaker_saved_max_version()
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(max(s.version), 0) FROM taskguard.breaker_saved s $$;

-- Write one breaker's state unless a newer version is there.  Never waits for
-- a row another transaction holds (returns false: the scheduler retries).  A
-- clean closed breaker without a row needs none.
CREATE FUNCTION taskguard._breaker_save(p_service text, p_state text, p_mode text,
    p_failures int, p_successes int, p_window_start timestamptz, p_window_us bigint,
    p_opened_at timestamptz, p_changed_at timestamptz, p_version bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM 1 FROM taskguard.breaker_saved s WHERE s.service = p_service FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE taskguard.breaker_saved s
           SET state = p_state::taskguard.breaker_state, mode = p_mode, failures = p_failures,
               successes = p_successes, window_start = p_window_start,
               window_us = p_window_us, opened_at = p_opened_at, changed_at = p_changed_at,
               version = p_version
         WHERE s.service = p_service AND s.version < p_version;
        RETURN true;
    END IF;
    IF EXISTS (SELECT 1 FROM taskguard.breaker_saved s WHERE s.service = p_service) THEN
        RETURN false;
    END IF;
    IF p_state = 'closed' AND p_mode = 'auto' AND p_failures = 0 THEN
        RETURN true;
    END IF;
    INSERT INTO taskguard.breaker_saved AS s (service, state, mode, failures, successes,
        window_start, window_us, opened_at, changed_at, version)
    VALUES (p_service, p_state::taskguard.breaker_state, p_mode, p_failures, p_successes,
            p_window_start, p_window_us, p_opened_at, p_changed_at, p_version)
    ON CONFLICT (service) DO NOTHING;
    RETURN FOUND;
END
$$;

-- Public API (SPEC §6).  These need shared_preload_libraries.
CREATE FUNCTION taskguard.breaker_allow(service text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_breaker_allow'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard.breaker_record(service text, success boolean)
RETURNS taskguard.breaker_state
AS 'MODULE_PATHNAME', 'taskguard_breaker_record'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard.breaker_reset(service text)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_breaker_reset'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION taskguard.breaker_force(service text, mode text)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_breaker_force'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The live breakers of this database (no rows when not preloaded).
CREATE FUNCTION taskguard._breaker_live(
    OUT service text, OUT state text, OUT mode text, OUT failures int, OUT successes int,
    OUT opened_at timestamptz, OUT next_probe_at timestamptz, OUT changed_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'taskguard_breaker_live'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 100;

-- Live values where there are any, saved rows otherwise.
CREATE VIEW taskguard.breaker_status AS
SELECT coalesce(l.service, s.service) AS service,
       coalesce(l.state::taskguard.breaker_state, s.state) AS state,
       coalesce(l.mode, s.mode) AS mode,
       CASE WHEN l.service IS NOT NULL THEN l.failures
            WHEN s.state = 'closed' AND (s.window_start IS NULL OR
                 s.window_start + s.window_us * interval '1 microsecond' <= now()) THEN 0
            ELSE s.failures END AS failures,
       CASE WHEN l.service IS NOT NULL THEN l.successes ELSE s.successes END AS successes,
       CASE WHEN l.service IS NOT NULL THEN l.opened_at ELSE s.opened_at END AS opened_at,
       CASE WHEN l.service IS NOT NULL THEN l.next_probe_at
            WHEN s.state = 'open' AND s.mode = 'auto'
            THEN s.opened_at + taskguard._breaker_cooldown(s.service) END AS next_probe_at,
       CASE WHEN l.service IS NOT NULL THEN l.changed_at ELSE s.changed_at END AS changed_at
  FROM taskguard._breaker_live() l
  FULL JOIN taskguard.breaker_saved s ON s.service = l.service;

-- Hooks.  Without preloading they answer "no breaker" so the queue works.

-- claim(): would a call to this service be refused now?  No side effects.
CREATE FUNCTION taskguard._breaker_is_open(service text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_breaker_is_open'
LANGUAGE C STABLE PARALLEL RESTRICTED;

-- claim(): a task of this service is handed out; takes a half-open probe.
-- False: the breaker has no probe left, do not hand the task out.
CREATE FUNCTION taskguard._breaker_claimed(service text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'taskguard_breaker_claimed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- complete()/fail(): record the outcome of a task of this service.  Never
-- raises because the breaker table is full.
CREATE FUNCTION taskguard._breaker_task_done(service text, success boolean)
RETURNS void
AS 'MODULE_PATHNAME', 'taskguard_breaker_task_done'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Scheduler step: half-open cooled breakers and save unsaved state.
CREATE FUNCTION taskguard._breaker_maintain()
RETURNS int
AS 'MODULE_PATHNAME', 'taskguard_breaker_maintain'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- ==== src/sql/50_dlq.sql
-- 50_dlq.sql — failures and the dead-letter queue (SPEC §4, §5): the
-- dead_letter records and failure events, fail() and record_failure(), the
-- operator actions, the taskguard.dlq view and the scheduler steps that put
-- due retries back on their queues and prune old failures.
--
-- Locks: fail() locks the task row, then its record; operator actions lock
-- records (then tasks) in id order; the scheduler uses SKIP LOCKED.

-- One record per failing task (queue mode) or per task_ref (external mode).
CREATE TABLE taskguard.dead_letter (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    task_id         bigint REFERENCES taskguard.task (id) ON DELETE SET NULL,
    task_ref        text,
    task_name       text NOT NULL,
    args            jsonb NOT NULL DEFAULT '{}',
    queue           text,
    tenant          text,
    service         text,
    status          taskguard.dlq_status NOT NULL,
    failure_type    taskguard.failure_type NOT NULL,
    confidence      real NOT NULL,
    remediation     taskguard.remediation NOT NULL,
    error_type      text,
    message         text,
    context         jsonb NOT NULL DEFAULT '{}',
    retry_count     int NOT NULL DEFAULT 0,
    max_retries     int NOT NULL DEFAULT 0,
    priority        taskguard.priority NOT NULL DEFAULT 'MEDIUM',
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    next_retry_at   timestamptz,
    resolved_at     timestamptz,
    resolution      text,
    alert_level     taskguard.alert_level NOT NULL DEFAULT 'warning',
    rule            text,
    external        boolean NOT NULL DEFAULT false,  -- recorded by record_failure()
    priority_pinned boolean NOT NULL DEFAULT false,  -- dlq_retry(…, priority) was given
    dispatched_at   timestamptz     -- when claim_due_retries() last handed it out
);

-- records change status at every retry: vacuum early, like the task table
ALTER TABLE taskguard.dead_letter SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_cost_delay = 0);

-- the dlq view's pages: WHERE status = … ORDER BY last_failed_at DESC LIMIT 50
CREATE INDEX dead_letter_status_idx ON taskguard.dead_letter (status, last_failed_at DESC);
-- due retries (scheduler, claim_due_retries)
CREATE INDEX dead_letter_due_idx ON taskguard.dead_letter (next_retry_at) WHERE status = 'PENDING';
-- pruning resolved records
CREATE INDEX dead_letter_resolved_idx ON taskguard.dead_letter (resolved_at) WHERE status = 'RESOLVED';
-- external retries handed out but never reported back (_redispatch_lost)
CREATE INDEX dead_letter_dispatched_idx ON taskguard.dead_letter (dispatched_at)
    WHERE status = 'RETRYING' AND external;
-- ON DELETE SET NULL from task pruning
CREATE INDEX dead_letter_task_idx ON taskguard.dead_letter (task_id) WHERE task_id IS NOT NULL;
-- external mode: one record per (tenant, task_ref); long refs are hashed
CREATE UNIQUE INDEX dead_letter_ref_key ON taskguard.dead_letter
    (coalesce(tenant, ''), md5(task_ref)) WHERE task_ref IS NOT NULL;

-- One row per failed attempt, for trends; pruned after taskguard.event_retention.
CREATE TABLE taskguard.failure_event (
    time         timestamptz NOT NULL DEFAULT now(),
    failure_id   bigint,
    task_id      bigint,
    task_name    text NOT NULL,
    tenant       text,
    failure_type taskguard.failure_type NOT NULL,
    error_type   text,
    error        text,          -- the first 1000 characters of the message
    retry_count  int NOT NULL,
    action       text NOT NULL  -- retry | abandon
);
CREATE INDEX failure_event_time_idx ON taskguard.failure_event (time);

-- The effective max_retries of a type for a task (its retry_policy override or default).
CREATE FUNCTION taskguard._policy_max_retries(failure_type taskguard.failure_type, task_name text)
RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT coalesce(
    (SELECT p.max_retries FROM taskguard.retry_policy p
      WHERE p.failure_type = $1 AND p.task_name = $2),
    (SELECT p.max_retries FROM taskguard.retry_policy p
      WHERE p.failure_type = $1 AND p.task_name IS NULL), 0)
$$;

-- A context argument as stored: an object, else '{}'.
CREATE FUNCTION taskguard._dlq_context(context jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(context) = 'object' THEN context ELSE '{}'::jsonb END $$;

-- Classify one failed attempt, decide, and create or update its record;
-- one event per call.  p_rec is the open record (NULL: create one),
-- p_runs_left how many runs the task's max_attempts still allows (NULL: no cap).
CREATE FUNCTION taskguard._dlq_record(p_rec bigint, p_retry_count int, p_reopen boolean,
    p_task_id bigint, p_task_ref text, p_task_name text, p_args jsonb, p_queue text,
    p_tenant text, p_service text, p_priority taskguard.priority, p_external boolean,
    p_error_type text, p_message text, p_context jsonb, p_runs_left int)
RETURNS taskguard.failure_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_cls    taskguard.classification;
    v_dec    taskguard.retry_decision;
    v_max    int;
    v_status taskguard.dlq_status;
    v_id     bigint := p_rec;
    v_msg    text := left(p_message, 65536);
BEGIN
    v_cls := taskguard.classify(p_error_type, p_message,
        p_context || jsonb_build_object('retry_count', p_retry_count, 'task_name', p_task_name));
    v_dec := taskguard.retry_decision(v_cls.failure_type, p_retry_count, p_task_name, p_context);
    v_max := taskguard._policy_max_retries(v_cls.failure_type, p_task_name);
    IF p_runs_left IS NOT NULL THEN
        v_max := least(v_max, p_retry_count + greatest(p_runs_left, 0));
        IF v_dec.should_retry AND p_runs_left <= 0 THEN
            v_dec := (false, NULL, NULL, 'max_attempts reached');
        END IF;
    END IF;
    v_status := CASE WHEN v_dec.should_retry THEN 'PENDING' ELSE 'ABANDONED' END;

    IF v_id IS NULL THEN
        INSERT INTO taskguard.dead_letter AS d (task_id, task_ref, task_name, args, queue, tenant,
            service, status, failure_type, confidence, remediation, error_type, message, context,
            retry_count, max_retries, priority, next_retry_at, resolution, alert_level, rule, external)
        VALUES (p_task_id, p_task_ref, p_task_name, coalesce(p_args, '{}'), p_queue, p_tenant,
            p_service, v_status, v_cls.failure_type, v_cls.confidence, v_cls.remediation,
            left(p_error_type, 1000), v_msg, p_context, p_retry_count, v_max,
            coalesce(p_priority, 'MEDIUM'), v_dec.next_retry_at,
            CASE WHEN NOT v_dec.should_retry THEN v_dec.reason END, v_cls.alert_level, v_cls.rule,
            p_external)
        RETURNING d.id INTO v_id;
    ELSE
        UPDATE taskguard.dead_letter d
           SET status = v_status, failure_type = v_cls.failure_type, confidence = v_cls.confidence,
               remediation = v_cls.remediation, error_type = left(p_error_type, 1000),
               message = v_msg, context = p_context, retry_count = p_retry_count,
               max_retries = v_max, last_failed_at = now(), next_retry_at = v_dec.next_retry_at,
               resolution = CASE WHEN NOT v_dec.should_retry THEN v_dec.reason END,
               alert_level = v_cls.alert_level, rule = v_cls.rule, priority_pinned = false,
               args = coalesce(p_args, d.args),
               first_failed_at = CASE WHEN p_reopen THEN now() ELSE d.first_failed_at END,
               resolved_at = CASE WHEN p_reopen THEN NULL ELSE d.resolved_at END
         WHERE d.id = v_id;
    END IF;

    INSERT INTO taskguard.failure_event (failure_id, task_id, task_name, tenant, failure_type,
                                         error_type, error, retry_count, action)
    VALUES (v_id, p_task_id, p_task_name, p_tenant, v_cls.failure_type, left(p_error_type, 1000),
            left(p_message, 1000), p_retry_count,
            CASE WHEN v_dec.should_retry THEN 'retry' ELSE 'abandon' END);

    RETURN (v_cls.failure_type, v_cls.confidence, v_cls.remediation,
            CASE WHEN v_dec.should_retry THEN 'retry' ELSE 'abandon' END,
            v_dec.next_retry_at, v_id)::taskguard.failure_outcome;
END
$$;

-- A worker reports that its attempt failed (SPEC §3, §5).
CREATE FUNCTION taskguard.fail(task_id bigint, error_type text, message text DEFAULT NULL,
    context jsonb DEFAULT '{}', attempt int DEFAULT NULL)
RETURNS taskguard.failure_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_task taskguard.task;
    v_rec  bigint;
    v_rc   int := 0;
    v_out  taskguard.failure_outcome;
BEGIN
    SELECT * INTO v_task FROM taskguard.task t WHERE t.id = fail.task_id FOR UPDATE;
    IF NOT FOUND OR v_task.status <> 'running'
       OR (attempt IS NOT NULL AND v_task.attempts <> attempt) THEN
        RETURN NULL;
    END IF;
    IF v_task.failure_id IS NOT NULL THEN
        SELECT d.id, d.retry_count + 1 INTO v_rec, v_rc FROM taskguard.dead_letter d
         WHERE d.id = v_task.failure_id AND d.status <> 'RESOLVED' FOR UPDATE;
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

-- External-broker mode: a task run by Celery, Sidekiq, … failed.  The same
-- (tenant, task_ref) always updates the same record.
CREATE FUNCTION taskguard.record_failure(task_name text, args jsonb, error_type text,
    message text DEFAULT NULL, context jsonb DEFAULT '{}', tenant text DEFAULT NULL,
    task_ref text DEFAULT NULL)
RETURNS taskguard.failure_outcome
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_tenant text := taskguard._effective_tenant(tenant);
    v_rec    taskguard.dead_letter;
    v_rc     int := 0;
    v_ctx    jsonb := taskguard._dlq_context(context);
BEGIN
    PERFORM taskguard._require(task_name, 'task_name');
    IF task_name = '' OR length(task_name) > 1000 THEN
        RAISE EXCEPTION 'task_name must be 1 to 1000 characters, got %', length(task_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF task_ref IS NOT NULL THEN
        -- serialise the first failures of one ref; later ones find the record
        PERFORM pg_advisory_xact_lock(hashtext('taskguard.dead_letter'),
                                      hashtext(coalesce(v_tenant, '') || chr(31) || task_ref));
        SELECT * INTO v_rec FROM taskguard.dead_letter d
         WHERE d.task_ref IS NOT NULL AND coalesce(d.tenant, '') = coalesce(v_tenant, '')
           AND md5(d.task_ref) = md5(record_failure.task_ref)
         FOR UPDATE;
        IF FOUND AND v_rec.status <> 'RESOLVED' THEN
            v_rc := v_rec.retry_count + 1;
        END IF;
    END IF;
    RETURN taskguard._dlq_record(v_rec.id, v_rc, v_rec.status = 'RESOLVED', NULL, task_ref,
        task_name, args, coalesce(v_ctx->>'queue', v_rec.queue), v_tenant,
        coalesce(v_ctx->>'service', v_rec.service), v_rec.priority, true,
        error_type, message, v_ctx, NULL);
END
$$;

-- External mode: hand due PENDING records (now RETRYING) to the application's dispatcher.
CREATE FUNCTION taskguard.claim_due_retries(batch int DEFAULT 100)
RETURNS SETOF taskguard.dead_letter
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE ROWS 100
AS $$
BEGIN
    IF batch IS NULL OR batch < 1 OR batch > 10000 THEN
        RAISE EXCEPTION 'batch must be between 1 and 10000, got %', batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH due AS (
        SELECT d.id FROM taskguard.dead_letter d
         WHERE d.status = 'PENDING' AND d.next_retry_at <= now() AND d.external
           AND (d.service IS NULL OR NOT taskguard._breaker_is_open(d.service))
         ORDER BY d.next_retry_at, d.id
         LIMIT batch
         FOR UPDATE SKIP LOCKED)
    UPDATE taskguard.dead_letter d
       SET status = 'RETRYING', next_retry_at = NULL, dispatched_at = now()
      FROM due WHERE d.id = due.id
    RETURNING d.*;
END
$$;

-- Scheduler step: an external retry handed out by claim_due_retries() whose
-- run never reported back (message lost, worker killed) within
-- taskguard.dispatch_timeout is due again, so no retry is lost for good.
-- retry_count is unchanged: the run that was lost never counted.
CREATE FUNCTION taskguard._redispatch_lost(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    UPDATE taskguard.dead_letter d
       SET status = 'PENDING', next_retry_at = now(), dispatched_at = NULL
     WHERE d.id = ANY(ARRAY(
            SELECT x.id FROM taskguard.dead_letter x
             WHERE x.status = 'RETRYING' AND x.external
               AND x.dispatched_at < now() - taskguard._setting_interval('taskguard.dispatch_timeout', '1 hour')
             ORDER BY x.dispatched_at
             LIMIT batch
             FOR UPDATE SKIP LOCKED));
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Queue tasks of records an operator closed must not run: a task made ready
-- by a retry goes back to failed; a resolved record is unlinked from its task
-- (so requeue() then re-runs the task plainly).
CREATE FUNCTION taskguard._dlq_hold_tasks(ids bigint[], unlink boolean)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
UPDATE taskguard.task t
   SET status = CASE WHEN t.status = 'ready' THEN 'failed' ELSE t.status END,
       failure_id = CASE WHEN unlink THEN NULL ELSE t.failure_id END
  FROM taskguard.dead_letter d
 WHERE d.id = ANY(ids) AND NOT d.external AND t.id = d.task_id
   AND t.failure_id = d.id AND (t.status = 'ready' OR unlink)
$$;

-- Resolve records (dlq_resolve, and resolve for one record: a worker level
-- call in external-broker mode, which must not need the bulk action).
CREATE FUNCTION taskguard._dlq_resolve(ids bigint[], note text)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    WITH done AS (
        UPDATE taskguard.dead_letter d
           SET status = 'RESOLVED', resolved_at = now(), next_retry_at = NULL,
               resolution = coalesce(note, 'resolved')
         WHERE d.id = ANY(ids) AND d.status <> 'RESOLVED'
        RETURNING d.id)
    SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM done;
    PERFORM taskguard._dlq_hold_tasks(v_ids, true);
    RETURN cardinality(v_ids);
END
$$;

CREATE FUNCTION taskguard.dlq_resolve(ids bigint[], note text DEFAULT NULL)
RETURNS int
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$ SELECT taskguard._dlq_resolve(ids, note) $$;

CREATE FUNCTION taskguard.resolve(failure_id bigint, note text DEFAULT NULL)
RETURNS boolean
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$ SELECT taskguard._dlq_resolve(ARRAY[failure_id], note) > 0 $$;

CREATE FUNCTION taskguard.dlq_abandon(ids bigint[], reason text DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    WITH done AS (
        UPDATE taskguard.dead_letter d
           SET status = 'ABANDONED', next_retry_at = NULL,
               resolution = coalesce(reason, 'abandoned by operator')
         WHERE d.id = ANY(ids) AND d.status IN ('PENDING', 'RETRYING')
        RETURNING d.id)
    SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM done;
    PERFORM taskguard._dlq_hold_tasks(v_ids, false);
    RETURN cardinality(v_ids);
END
$$;

-- "Retry now" (or staggered over `spread`) for PENDING and ABANDONED records.
CREATE FUNCTION taskguard._dlq_retry(ids bigint[], priority taskguard.priority,
    spread interval)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_ids    bigint[];
    v_n      int;
    v_queue  text;
BEGIN
    IF spread IS NOT NULL AND (spread < interval '0' OR spread > interval '1 year') THEN
        RAISE EXCEPTION 'spread must be between 0 and 1 year, got %', spread
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM taskguard.dead_letter d
     WHERE d.id = ANY(ids) AND d.status IN ('PENDING', 'ABANDONED') ORDER BY d.id FOR UPDATE OF d;
    PERFORM 1 FROM taskguard.task t
     WHERE t.id IN (SELECT d.task_id FROM taskguard.dead_letter d WHERE d.id = ANY(ids))
     ORDER BY t.id FOR UPDATE OF t;
    -- external records, and queue records whose task still waits on them
    SELECT coalesce(array_agg(d.id ORDER BY d.id), '{}') INTO v_ids
      FROM taskguard.dead_letter d LEFT JOIN taskguard.task t ON t.id = d.task_id
     WHERE d.id = ANY(ids) AND d.status IN ('PENDING', 'ABANDONED')
       AND (d.external OR (t.status IN ('failed', 'cancelled') AND t.failure_id = d.id));
    v_n := cardinality(v_ids);
    IF v_n = 0 THEN
        RETURN 0;
    END IF;

    UPDATE taskguard.dead_letter d
       SET status = CASE WHEN spread IS NULL AND NOT d.external THEN 'RETRYING'
                         ELSE 'PENDING' END::taskguard.dlq_status,
           next_retry_at = CASE WHEN spread IS NULL AND NOT d.external THEN NULL
                                ELSE now() + coalesce(spread, interval '0') * ((s.ord - 1)::float8 / v_n) END,
           resolution = NULL,
           priority = coalesce(_dlq_retry.priority, d.priority),
           priority_pinned = d.priority_pinned OR _dlq_retry.priority IS NOT NULL
      FROM unnest(v_ids) WITH ORDINALITY AS s(id, ord)
     WHERE d.id = s.id;

    -- queue tasks: room for one more run; ready now, or waiting for the scheduler
    UPDATE taskguard.task t
       SET max_attempts = CASE WHEN t.max_attempts <= t.attempts THEN t.attempts + 1
                               ELSE t.max_attempts END,
           status = CASE WHEN spread IS NULL THEN 'ready' ELSE 'failed' END,
           run_at = coalesce(x.next_retry_at, now()),
           finished_at = CASE WHEN spread IS NULL THEN NULL ELSE t.finished_at END,
           priority = (x.p).priority, priority_score = (x.p).score
      FROM (SELECT d.task_id, d.next_retry_at,
                   taskguard._retry_priority(d.priority_pinned, d.priority, d.task_name,
                       tt.customer_tier, d.failure_type, d.retry_count, tt.enqueued_at) AS p
              FROM taskguard.dead_letter d JOIN taskguard.task tt ON tt.id = d.task_id
             WHERE d.id = ANY(v_ids) AND NOT d.external) x
     WHERE t.id = x.task_id;

    IF spread IS NULL THEN
        FOR v_queue IN
            SELECT DISTINCT d.queue FROM taskguard.dead_letter d
             WHERE d.id = ANY(v_ids) AND NOT d.external
        LOOP
            PERFORM taskguard._notify(v_queue);
        END LOOP;
    END IF;
    RETURN v_n;
END
$$;

-- "Retry now" (SPEC §5), an operator's bulk action; requeue() of one failed
-- task shares the body, so a worker may requeue without the bulk action.
CREATE FUNCTION taskguard.dlq_retry(ids bigint[], priority taskguard.priority DEFAULT NULL,
    spread interval DEFAULT NULL)
RETURNS int
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$ SELECT taskguard._dlq_retry(ids, priority, spread) $$;

-- Delete records in the given statuses whose last activity is older than older_than.
CREATE FUNCTION taskguard.dlq_purge(older_than interval DEFAULT '30 days',
    statuses taskguard.dlq_status[] DEFAULT '{RESOLVED}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval, got %', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF statuses IS NULL THEN
        RAISE EXCEPTION 'statuses must not be NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH gone AS (
        DELETE FROM taskguard.dead_letter d
         WHERE d.status = ANY(statuses)
           AND coalesce(d.resolved_at, d.last_failed_at) < now() - older_than
        RETURNING d.id, d.task_id),
    unlinked AS (
        UPDATE taskguard.task t SET failure_id = NULL
          FROM gone WHERE t.id = gone.task_id AND t.failure_id = gone.id
        RETURNING 1)
    SELECT count(*) INTO v_n FROM gone;
    RETURN v_n;
END
$$;

-- complete() hook: the retry worked; the task no longer has an open record.
CREATE FUNCTION taskguard._dlq_task_succeeded(task_id bigint, failure_id bigint)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
UPDATE taskguard.dead_letter d
   SET status = 'RESOLVED', resolved_at = now(), resolution = 'retry', next_retry_at = NULL
 WHERE d.id = $2 AND d.status <> 'RESOLVED';
UPDATE taskguard.task t SET failure_id = NULL WHERE t.id = $1 AND t.failure_id = $2;
$$;

-- cancel() hook: an open record is abandoned with its task.
CREATE FUNCTION taskguard._dlq_task_cancelled(task_id bigint, failure_id bigint)
RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
AS $$
UPDATE taskguard.dead_letter d
   SET status = 'ABANDONED', next_retry_at = NULL, resolution = 'cancelled'
 WHERE d.id = $2 AND d.status IN ('PENDING', 'RETRYING')
$$;

-- The priority a retried task gets: the pinned one, or recomputed (scalar
-- arguments: passing whole rows to PL/pgSQL cost 80 us a row here).
CREATE FUNCTION taskguard._retry_priority(pinned boolean, pinned_priority taskguard.priority,
    task_name text, customer_tier text, failure_type taskguard.failure_type,
    retry_count int, enqueued_at timestamptz)
RETURNS taskguard.priority_result
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN pinned
            THEN (pinned_priority, taskguard._priority_score(pinned_priority), NULL::text, NULL::text[])::taskguard.priority_result
            ELSE taskguard.calculate_priority(task_name, jsonb_build_object(
                     'customer_tier', customer_tier, 'failure_type', failure_type,
                     'retry_count', retry_count, 'enqueued_at', enqueued_at)) END
$$;

-- Scheduler step: due PENDING records of queue tasks become RETRYING and
-- their tasks ready, at a recomputed priority; services with an open
-- breaker wait.  Returns how many tasks were put back.
CREATE FUNCTION taskguard._requeue_due_retries(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
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
                   CROSS JOIN LATERAL (SELECT CASE WHEN t.status = 'failed' AND t.failure_id = d.id
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

-- Scheduler step: delete events older than taskguard.event_retention and
-- RESOLVED records older than taskguard.dlq_retention, at most batch of each.
CREATE FUNCTION taskguard._prune_failures(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_events  int;
    v_records int;
BEGIN
    DELETE FROM taskguard.failure_event e
     WHERE e.ctid = ANY (ARRAY(
        SELECT x.ctid FROM taskguard.failure_event x
         WHERE x.time < now() - taskguard._setting_interval('taskguard.event_retention', '30 days')
         ORDER BY x.time LIMIT batch));
    GET DIAGNOSTICS v_events = ROW_COUNT;
    -- = ANY(ARRAY()): the pick runs once, whatever plan was cached while the
    -- table was small (as IN (subquery) it could be rescanned per row).
    DELETE FROM taskguard.dead_letter d
     WHERE d.id = ANY (ARRAY(
        SELECT x.id FROM taskguard.dead_letter x
         WHERE x.status = 'RESOLVED'
           AND x.resolved_at < now() - taskguard._setting_interval('taskguard.dlq_retention', '30 days')
         ORDER BY x.resolved_at LIMIT batch
         FOR UPDATE SKIP LOCKED));
    GET DIAGNOSTICS v_records = ROW_COUNT;
    RETURN v_events + v_records;
END
$$;

-- The dead-letter queue as operators and dashboards see it (also the CSV export).
CREATE VIEW taskguard.dlq WITH (security_invoker = true) AS
SELECT d.id, d.task_id, d.task_ref, d.task_name, d.args, d.queue, d.tenant, d.service,
       d.status, d.failure_type, d.confidence, d.remediation, d.error_type, d.message,
       d.context, d.retry_count, d.max_retries, d.priority, d.first_failed_at,
       d.last_failed_at, d.next_retry_at, d.resolved_at, d.resolution, d.alert_level, d.rule
  FROM taskguard.dead_letter d;

-- ==== src/sql/60_schedule.sql
-- 60_schedule.sql — schedules (SPEC §10): the cron evaluator, the schedule
-- table, and the conflict analysis over it and pg_cron's cron.job.
--
-- pg_cron is never a dependency: cron.job and cron.job_run_details are read
-- with dynamic SQL at call time, after a catalog check, so pg_cron may be
-- created before or after taskguard (or never).

-- ---------------------------------------------------------------- evaluator

-- The first occurrence strictly after `after`, in UTC.
CREATE FUNCTION taskguard.cron_next(expr text, after timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskguard_cron_next';

-- Every occurrence t with from_ts <= t < to_ts (at most 1,000,000 rows).
CREATE FUNCTION taskguard.cron_occurrences(expr text, from_ts timestamptz, to_ts timestamptz)
RETURNS SETOF timestamptz
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 100
AS 'MODULE_PATHNAME', 'taskguard_cron_occurrences';

-- NULL when expr is valid, else why not (naming the field and the text).
CREATE FUNCTION taskguard._cron_error(expr text)
RETURNS text
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskguard_cron_error';

-- The shortest gap between consecutive runs over the month after from_ts.
CREATE FUNCTION taskguard._cron_period(expr text, from_ts timestamptz)
RETURNS interval
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskguard_cron_period';

-- Per bucket: jobs starting, jobs running (see schedule.c).
CREATE FUNCTION taskguard._schedule_load_buckets(start timestamptz, bucket interval,
                                                 nbuckets int, schedules text[],
                                                 durations interval[])
RETURNS TABLE (bucket_start timestamptz, starting int, running int)
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskguard_schedule_load_buckets';

-- Greedy minute shifts that lower the peak (see schedule.c).
CREATE FUNCTION taskguard._schedule_suggest(start timestamptz, nbuckets int, capacity int,
                                            schedules text[], durations interval[])
RETURNS TABLE (step int, job int, suggested text, peak_before real, peak_after real)
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskguard_schedule_suggest';

-- ---------------------------------------------------------------- the table

CREATE TABLE taskguard.schedule (
    name              text PRIMARY KEY,
    schedule          text NOT NULL,
    command           text NOT NULL,
    expected_duration interval,
    source            text NOT NULL DEFAULT 'taskguard',
    created_at        timestamptz NOT NULL DEFAULT now()
);

SELECT pg_catalog.pg_extension_config_dump('taskguard.schedule', '');

-- Refuse a bad row with invalid_parameter_value, naming the column (and, for
-- the schedule, the cron field and the offending text).
CREATE FUNCTION taskguard._schedule_validate()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    v_error text;
BEGIN
    IF NEW.name IS NULL OR btrim(NEW.name) = '' OR length(NEW.name) > 200 THEN
        RAISE EXCEPTION 'invalid name for a schedule: it must be 1 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.schedule IS NULL THEN
        RAISE EXCEPTION 'invalid schedule for job "%": schedule must not be NULL', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_error := taskguard._cron_error(NEW.schedule);
    IF v_error IS NOT NULL THEN
        RAISE EXCEPTION 'invalid schedule for job "%": %', NEW.name, v_error
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A schedule is five fields (minute hour day-of-month month day-of-week), an @ form such as @daily, or ''N seconds'' with N from 1 to 59.';
    END IF;
    IF NEW.command IS NULL OR btrim(NEW.command) = '' THEN
        RAISE EXCEPTION 'invalid command for job "%": command must not be empty', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.expected_duration IS NOT NULL AND NEW.expected_duration <= interval '0' THEN
        RAISE EXCEPTION 'invalid expected_duration for job "%": % is not positive',
            NEW.name, NEW.expected_duration
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NEW.source IS NULL OR btrim(NEW.source) = '' THEN
        RAISE EXCEPTION 'invalid source for job "%": source must not be empty', NEW.name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER schedule_validate
    BEFORE INSERT OR UPDATE ON taskguard.schedule
    FOR EACH ROW EXECUTE FUNCTION taskguard._schedule_validate();

-- ---------------------------------------------------------------- the jobs

-- Every job the analysis sees: taskguard.schedule, plus pg_cron's active jobs
-- (named 'cron:<jobname or jobid>') when pg_cron is installed in this database
-- and readable.  duration is expected_duration, or for pg_cron the average of
-- the last 20 finished runs of the past 30 days; NULL when unknown.  @reboot
-- jobs are left out: they have no schedule to analyse.
CREATE FUNCTION taskguard._schedule_jobs()
RETURNS TABLE (job text, schedule text, command text, duration interval,
               duration_from text, source text, error text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
AS $$
DECLARE
    v_name    text := '''cron:'' || j.jobid';
    v_active  text := 'true';
    v_details text := 'SELECT NULL::bigint AS jobid, NULL::interval AS duration WHERE false';
BEGIN
    RETURN QUERY
        SELECT s.name, s.schedule, s.command, s.expected_duration,
               CASE WHEN s.expected_duration IS NOT NULL THEN 'expected_duration' END,
               s.source, taskguard._cron_error(s.schedule)
        FROM taskguard.schedule s;

    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n   -- to_regclass needs USAGE
                       WHERE n.nspname = 'cron' AND has_schema_privilege(n.oid, 'USAGE'))
       OR to_regclass('cron.job') IS NULL THEN
        RETURN;
    END IF;
    IF NOT has_table_privilege('cron.job', 'SELECT') THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
               WHERE attrelid = 'cron.job'::regclass AND attname = 'jobname' AND NOT attisdropped) THEN
        v_name := '''cron:'' || coalesce(j.jobname, j.jobid::text)';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
               WHERE attrelid = 'cron.job'::regclass AND attname = 'active' AND NOT attisdropped) THEN
        v_active := 'j.active';
    END IF;
    IF to_regclass('cron.job_run_details') IS NOT NULL
       AND has_table_privilege('cron.job_run_details', 'SELECT') THEN
        v_details := $d$
            SELECT r.jobid, avg(r.end_time - r.start_time) AS duration
            FROM (SELECT d.jobid, d.start_time, d.end_time,
                         row_number() OVER (PARTITION BY d.jobid ORDER BY d.start_time DESC) AS rn
                  FROM cron.job_run_details d
                  WHERE d.end_time IS NOT NULL AND d.start_time IS NOT NULL
                    AND d.end_time >= d.start_time
                    AND d.start_time > now() - interval '30 days') r
            WHERE r.rn <= 20
            GROUP BY r.jobid $d$;
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT %s, j.schedule, j.command, d.duration,
               CASE WHEN d.duration IS NOT NULL THEN 'average of recent runs' END,
               'pg_cron'::text, taskguard._cron_error(j.schedule)
        FROM cron.job j
        LEFT JOIN (%s) d ON d.jobid = j.jobid
        WHERE %s AND j.schedule !~* '^\s*@reboot\s*$' $q$, v_name, v_details, v_active);
END
$$;

-- ---------------------------------------------------------------- analysis

-- taskguard.worker_capacity, also before the library is loaded in this session.
CREATE FUNCTION taskguard._worker_capacity()
RETURNS int
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(nullif(current_setting('taskguard.worker_capacity', true), '')::int, 4) $$;

-- Per bucket of the next `horizon`: jobs starting, jobs running, utilization
-- (running / capacity, not clamped) and whether it is a hotspot (> 70 %).
CREATE FUNCTION taskguard.schedule_load(horizon interval DEFAULT '24 hours',
                                        bucket interval DEFAULT '1 minute',
                                        capacity int DEFAULT NULL)
RETURNS TABLE (bucket_start timestamptz, starting int, running int,
               utilization real, hotspot boolean)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
AS $$
DECLARE
    v_cap   int := coalesce(capacity, taskguard._worker_capacity());
    v_n     numeric;
    v_start timestamptz;
    v_exprs text[];
    v_durs  interval[];
BEGIN
    IF horizon IS NULL OR horizon <= interval '0' THEN
        RAISE EXCEPTION 'horizon must be a positive interval, not %', coalesce(horizon::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF bucket IS NULL OR bucket <= interval '0'
       OR extract(year FROM bucket) <> 0 OR extract(month FROM bucket) <> 0 THEN
        RAISE EXCEPTION 'bucket must be a positive interval without months or years, not %',
            coalesce(bucket::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_cap < 1 THEN
        RAISE EXCEPTION 'capacity must be at least 1, not %', v_cap
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_n := ceil(extract(epoch FROM horizon) / extract(epoch FROM bucket));
    IF v_n > 100000 THEN
        RAISE EXCEPTION 'schedule_load would need % buckets, more than 100000', v_n
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use a shorter horizon or a wider bucket.';
    END IF;
    v_start := date_bin(bucket, now(), timestamptz 'epoch');
    SELECT array_agg(j.schedule ORDER BY j.job), array_agg(j.duration ORDER BY j.job)
        INTO v_exprs, v_durs
        FROM taskguard._schedule_jobs() j WHERE j.error IS NULL;
    RETURN QUERY
        SELECT b.bucket_start, b.starting, b.running,
               (b.running::float8 / v_cap)::real,
               b.running * 10 > v_cap * 7
        FROM taskguard._schedule_load_buckets(v_start, bucket, v_n::int,
                                              coalesce(v_exprs, '{}'), coalesce(v_durs, '{}')) b;
END
$$;

-- Problems: 'invalid' (a pg_cron schedule this parser refuses), 'duplicate'
-- (the same command, compared with blanks collapsed and outer blanks and
-- semicolons trimmed, scheduled by an earlier job in name order) and
-- 'overlap' (runs last longer than the shortest gap between starts).
CREATE FUNCTION taskguard.validate_schedules(check_duplicates boolean DEFAULT true)
RETURNS TABLE (job text, problem text, detail text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
AS $$
BEGIN
    RETURN QUERY
    WITH jobs AS MATERIALIZED (
        SELECT j.*, CASE WHEN j.duration IS NOT NULL AND j.error IS NULL
                         THEN taskguard._cron_period(j.schedule, now()) END AS period
        FROM taskguard._schedule_jobs() j),
    dups AS (
        SELECT j.job, first_value(j.job) OVER w AS first_job, row_number() OVER w AS rn
        FROM jobs j
        WHERE j.command IS NOT NULL
        WINDOW w AS (PARTITION BY regexp_replace(btrim(j.command, E' \t\r\n;'), '\s+', ' ', 'g')
                     ORDER BY j.job))
    SELECT r.job, r.problem, r.detail FROM (
        SELECT j.job, 'invalid'::text AS problem, j.error AS detail
        FROM jobs j WHERE j.error IS NOT NULL
        UNION ALL
        SELECT d.job, 'duplicate', format('same command as job %s', d.first_job)
        FROM dups d WHERE d.rn > 1 AND coalesce(check_duplicates, true)
        UNION ALL
        SELECT j.job, 'overlap',
               format('runs take %s (%s) but it starts every %s',
                      date_trunc('second', j.duration + interval '0.5 second'),
                      j.duration_from, j.period)
        FROM jobs j
        WHERE j.error IS NULL AND j.duration IS NOT NULL AND j.period IS NOT NULL
          AND j.duration > j.period) r
    ORDER BY r.problem, r.job;
END
$$;

-- One row: 100 minus penalties (hotspots: 10 + 40 x the share of hot buckets
-- in the next 24 hours; 10 per duplicate and per overlap, each capped at 30;
-- 20 per invalid schedule, capped at 40), never below 0.
CREATE FUNCTION taskguard.schedule_health()
RETURNS TABLE (score int, hotspots int, duplicates int, overlaps int, invalid int)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
AS $$
DECLARE
    v_hot     int;
    v_buckets int;
    v_dup     int;
    v_over    int;
    v_bad     int;
BEGIN
    SELECT count(*) FILTER (WHERE l.hotspot), count(*)
        INTO v_hot, v_buckets
        FROM taskguard.schedule_load() l;
    SELECT count(*) FILTER (WHERE v.problem = 'duplicate'),
           count(*) FILTER (WHERE v.problem = 'overlap'),
           count(*) FILTER (WHERE v.problem = 'invalid')
        INTO v_dup, v_over, v_bad
        FROM taskguard.validate_schedules(true) v;
    RETURN QUERY SELECT greatest(0, 100
        - CASE WHEN v_hot > 0 THEN 10 + round(40.0 * v_hot / v_buckets)::int ELSE 0 END
        - least(30, 10 * v_dup) - least(30, 10 * v_over) - least(40, 20 * v_bad)),
        v_hot, v_dup, v_over, v_bad;
END
$$;

-- Moves that spread the next 24 hours' load (one-minute buckets, capacity
-- taskguard.worker_capacity): each shifts one job's minutes within the hour,
-- keeping its period, and lowers the peak; in the order to apply them.
CREATE FUNCTION taskguard.schedule_suggestions()
RETURNS TABLE (job text, current_schedule text, suggested_schedule text,
               peak_before real, peak_after real)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
AS $$
DECLARE
    v_names text[];
    v_exprs text[];
    v_durs  interval[];
BEGIN
    SELECT array_agg(j.job ORDER BY j.job), array_agg(j.schedule ORDER BY j.job),
           array_agg(j.duration ORDER BY j.job)
        INTO v_names, v_exprs, v_durs
        FROM taskguard._schedule_jobs() j WHERE j.error IS NULL;
    IF v_names IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT v_names[s.job], v_exprs[s.job], s.suggested, s.peak_before, s.peak_after
        FROM taskguard._schedule_suggest(date_bin('1 minute', now(), timestamptz 'epoch'), 1440,
                                         taskguard._worker_capacity(),
                                         v_exprs, v_durs) s
        ORDER BY s.step;
END
$$;

-- The hot buckets of the next 24 hours (default bucket and capacity), with
-- the jobs running in each: a job runs in [b, b + 1 minute) when its first
-- start after b - duration comes before b + 1 minute.
CREATE VIEW taskguard.schedule_hotspots AS
WITH jobs AS MATERIALIZED (
    SELECT j.job, j.schedule,
           least(greatest(coalesce(j.duration, interval '1 minute'), interval '1 microsecond'),
                 interval '400 days') AS duration
    FROM taskguard._schedule_jobs() j
    WHERE j.error IS NULL),
hot AS MATERIALIZED (
    SELECT l.bucket_start, l.starting, l.running, l.utilization
    FROM taskguard.schedule_load() l
    WHERE l.hotspot)
SELECT h.bucket_start, h.starting, h.running, h.utilization,
       ARRAY(SELECT j.job FROM jobs j
             WHERE taskguard.cron_next(j.schedule, h.bucket_start - j.duration)
                   < h.bucket_start + interval '1 minute'
             ORDER BY j.job) AS jobs
FROM hot h;

-- ==== src/sql/70_scheduler.sql
-- 70_scheduler.sql — one scheduler pass (SPEC §9), shared by the background
-- worker (each step in its own transaction) and taskguard.tick().

-- The steps of a pass, in order.
CREATE FUNCTION taskguard._tick_steps()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY['breakers', 'requeue_retries', 'redispatch_lost', 'reap_leases', 'expire_keys', 'escalate',
             'prune_tasks', 'prune_failures', 'flush_counters', 'rollup', 'alerts', 'notify']
$$;

-- Run one step with a batch bound; returns how many rows it handled.
CREATE FUNCTION taskguard._tick_step(step text, batch int)
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
        WHEN 'prune_tasks'     THEN taskguard._prune_tasks(batch)
        WHEN 'prune_failures'  THEN taskguard._prune_failures(batch)
        WHEN 'flush_counters'  THEN taskguard._flush_counters()
        WHEN 'rollup'          THEN taskguard._rollup(batch)
        WHEN 'alerts'          THEN taskguard._check_alerts()
        WHEN 'notify'          THEN taskguard._send_pending_notifies()
    END;
END
$$;

-- One scheduler pass in the calling session; what each step did.
CREATE FUNCTION taskguard.tick()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_step  text;
    v_batch int := coalesce(nullif(current_setting('taskguard.batch_size', true), '')::int, 1000);
    v_done  jsonb := '{}';
BEGIN
    FOREACH v_step IN ARRAY taskguard._tick_steps() LOOP
        v_done := v_done || jsonb_build_object(v_step, taskguard._tick_step(v_step, v_batch));
    END LOOP;
    RETURN v_done;
END
$$;

CREATE FUNCTION taskguard._scheduler_status(
    OUT pid int, OUT launcher_pid int, OUT started_at timestamptz,
    OUT last_pass_at timestamptz, OUT last_pass_ms float8, OUT passes bigint,
    OUT last_pass_counts jsonb, OUT total_counts jsonb, OUT last_error text)
RETURNS record
AS 'MODULE_PATHNAME', 'taskguard_scheduler_status'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- The background worker: pid, last pass, its duration and what it did.
CREATE VIEW taskguard.scheduler_status AS
SELECT s.pid, s.launcher_pid, current_setting('taskguard.database', true) AS database,
       s.started_at, s.last_pass_at, s.last_pass_ms, s.passes,
       s.last_pass_counts, s.total_counts, s.last_error
  FROM taskguard._scheduler_status() s;

-- ==== src/sql/80_metrics.sql
-- 80_metrics.sql — the rollups behind the dashboards (SPEC §11): small tables
-- that the views read instead of scanning dead_letter and failure_event.
--
-- Writes never touch a shared counter row: statement triggers append
-- aggregated delta rows to dlq_delta and event_delta (inserts only, so
-- concurrent fail() calls do not queue on a row lock), and the scheduler's
-- 'rollup' step moves committed deltas into the rollups.  The views read rollup + pending deltas, so they are current at
-- once, scheduler or not.  Deltas are moved exactly once: the step deletes
-- the rows it folds (SKIP LOCKED), so rows of open transactions wait for the
-- next pass and two folding sessions never take the same row.
--
-- Tenants: every rollup is keyed by tenant ('' = no tenant); the views over
-- them filter with taskguard._tenant_visible().
--
-- Locks: the triggers take none beyond their inserts; the step locks the
-- delta rows it folds and the rollup rows it updates.

-- ---------------------------------------------------------------- DLQ state

-- Dead-letter records by current state.  by_retry: RESOLVED because a retry
-- succeeded (resolution 'retry').
CREATE TABLE taskguard.dlq_rollup (
    tenant         text NOT NULL,
    status         taskguard.dlq_status NOT NULL,
    failure_type   taskguard.failure_type NOT NULL,
    by_retry       boolean NOT NULL,
    records        bigint NOT NULL DEFAULT 0,
    retried        bigint NOT NULL DEFAULT 0,    -- records with retry_count > 0
    retry_sum      bigint NOT NULL DEFAULT 0,    -- sum of retry_count
    confidence_sum float8 NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, status, failure_type, by_retry)
);

CREATE TABLE taskguard.dlq_delta (
    tenant         text NOT NULL,
    status         taskguard.dlq_status NOT NULL,
    failure_type   taskguard.failure_type NOT NULL,
    by_retry       boolean NOT NULL,
    records        bigint NOT NULL,
    retried        bigint NOT NULL,
    retry_sum      bigint NOT NULL,
    confidence_sum float8 NOT NULL
);

-- ---------------------------------------------------------------- failures

-- Failed attempts per hour and type, for trends (no task_name: a month of
-- hours must stay a small table); pruned with taskguard.event_retention.
-- Rows with all_tenants (tenant '') sum every tenant, so that a caller who
-- sees all tenants reads a month of hours without adding tenants up.
CREATE TABLE taskguard.failure_hourly (
    bucket       timestamptz NOT NULL,
    all_tenants  boolean NOT NULL,
    tenant       text NOT NULL,
    failure_type taskguard.failure_type NOT NULL,
    failures     bigint NOT NULL DEFAULT 0,
    retries      bigint NOT NULL DEFAULT 0,     -- attempts followed by a retry
    abandons     bigint NOT NULL DEFAULT 0,     -- attempts after which the record was abandoned
    PRIMARY KEY (all_tenants, bucket, tenant, failure_type)   -- all_tenants first: the views read one side
);

-- Failed attempts and abandoned records per minute, for the dashboard's
-- 1-hour and 24-hour windows; kept 25 hours.
CREATE TABLE taskguard.activity_minute (
    minute    timestamptz NOT NULL,
    tenant    text NOT NULL,
    failures  bigint NOT NULL DEFAULT 0,
    abandoned bigint NOT NULL DEFAULT 0,        -- records that became ABANDONED
    PRIMARY KEY (minute, tenant)
);

-- Monotonic totals for Prometheus counters: never pruned, never decreased.
-- all_tenants rows as in failure_hourly.
CREATE TABLE taskguard.failure_total (
    all_tenants  boolean NOT NULL,
    tenant       text NOT NULL,
    task_name    text NOT NULL,
    failure_type taskguard.failure_type NOT NULL,
    priority     taskguard.priority NOT NULL,
    failures     bigint NOT NULL DEFAULT 0,
    retries      bigint NOT NULL DEFAULT 0,
    retry_sum    bigint NOT NULL DEFAULT 0,     -- sum of the retry numbers (1 = first retry)
    abandons     bigint NOT NULL DEFAULT 0,
    abandoned    bigint NOT NULL DEFAULT 0,     -- records that became ABANDONED (any cause)
    PRIMARY KEY (all_tenants, tenant, task_name, failure_type, priority)
);

-- Appended by the triggers; minute is the event's (or the abandonment's) minute.
CREATE TABLE taskguard.event_delta (
    minute       timestamptz NOT NULL,
    tenant       text NOT NULL,
    task_name    text NOT NULL,
    failure_type taskguard.failure_type NOT NULL,
    priority     taskguard.priority NOT NULL,
    failures     bigint NOT NULL,
    retries      bigint NOT NULL,
    retry_sum    bigint NOT NULL,
    abandons     bigint NOT NULL,
    abandoned    bigint NOT NULL
);

-- Every tenant the rollups have seen, so that a view asks
-- taskguard._tenant_visible() once per tenant, not once per rollup row.
-- The triggers add new tenants (a known one costs an index probe).
CREATE TABLE taskguard.metric_tenant (
    tenant text PRIMARY KEY
);

-- ---------------------------------------------------------------- triggers

-- Statement triggers with transition tables: one aggregated delta row per
-- group for the whole statement, so the scheduler's batches (1,000 retries
-- put back in one UPDATE) and bulk loads cost a few rows, and fail() a few
-- short statements.  No join of old and new rows (transition tables have no
-- statistics: a nested loop over a large batch would be quadratic).
-- SECURITY DEFINER: the writers (workers) need no rights on the deltas.

-- dead_letter changed: the net change per state group, the records that
-- became ABANDONED, and tenants seen for the first time.
CREATE FUNCTION taskguard._dlq_rollup_trigger()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM taskguard.dlq_rollup;
        DELETE FROM taskguard.dlq_delta;
    ELSIF TG_OP = 'INSERT' THEN
        WITH states AS (
            INSERT INTO taskguard.dlq_delta
            SELECT coalesce(n.tenant, ''), n.status, n.failure_type,
                   n.status = 'RESOLVED' AND n.resolution IS NOT DISTINCT FROM 'retry',
                   count(*), count(*) FILTER (WHERE n.retry_count > 0), sum(n.retry_count),
                   sum(n.confidence)
              FROM new_rows n GROUP BY 1, 2, 3, 4)
        INSERT INTO taskguard.event_delta
        SELECT date_trunc('minute', now()), coalesce(n.tenant, ''), n.task_name,
               n.failure_type, n.priority, 0, 0, 0, 0, count(*)
          FROM new_rows n WHERE n.status = 'ABANDONED' GROUP BY 1, 2, 3, 4, 5;
        INSERT INTO taskguard.metric_tenant
        SELECT DISTINCT coalesce(n.tenant, '') FROM new_rows n
         WHERE NOT EXISTS (SELECT 1 FROM taskguard.metric_tenant m
                            WHERE m.tenant = coalesce(n.tenant, ''))
        ON CONFLICT DO NOTHING;
    ELSIF TG_OP = 'UPDATE' THEN
        WITH moved AS (
            SELECT coalesce(n.tenant, '') AS tenant, n.status, n.failure_type,
                   n.status = 'RESOLVED' AND n.resolution IS NOT DISTINCT FROM 'retry' AS by_retry,
                   1 AS n, (n.retry_count > 0)::int AS retried, n.retry_count,
                   n.confidence::float8 AS confidence, n.task_name, n.priority
              FROM new_rows n
            UNION ALL
            SELECT coalesce(o.tenant, ''), o.status, o.failure_type,
                   o.status = 'RESOLVED' AND o.resolution IS NOT DISTINCT FROM 'retry',
                   -1, -(o.retry_count > 0)::int, -o.retry_count, -o.confidence::float8,
                   o.task_name, o.priority
              FROM old_rows o),
        states AS (
            INSERT INTO taskguard.dlq_delta
            SELECT m.tenant, m.status, m.failure_type, m.by_retry, sum(m.n), sum(m.retried),
                   sum(m.retry_count), sum(m.confidence)
              FROM moved m
             GROUP BY 1, 2, 3, 4
            HAVING sum(m.n) <> 0 OR sum(m.retried) <> 0 OR sum(m.retry_count) <> 0
                OR sum(m.confidence) <> 0)
        -- records that became ABANDONED: the net gain of ABANDONED rows per
        -- task, type and priority (abandonments never count down; a record
        -- leaving ABANDONED in the same statement as another of its group
        -- enters it cancels that one out)
        INSERT INTO taskguard.event_delta
        SELECT date_trunc('minute', now()), m.tenant, m.task_name, m.failure_type, m.priority,
               0, 0, 0, 0, sum(m.n)
          FROM moved m
         WHERE m.status = 'ABANDONED'
         GROUP BY 1, 2, 3, 4, 5
        HAVING sum(m.n) > 0;
    ELSE
        INSERT INTO taskguard.dlq_delta
        SELECT coalesce(o.tenant, ''), o.status, o.failure_type,
               o.status = 'RESOLVED' AND o.resolution IS NOT DISTINCT FROM 'retry',
               -count(*), -count(*) FILTER (WHERE o.retry_count > 0), -sum(o.retry_count),
               -sum(o.confidence)
          FROM old_rows o GROUP BY 1, 2, 3, 4;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER dead_letter_rollup_insert AFTER INSERT ON taskguard.dead_letter
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._dlq_rollup_trigger();
CREATE TRIGGER dead_letter_rollup_update AFTER UPDATE ON taskguard.dead_letter
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._dlq_rollup_trigger();
CREATE TRIGGER dead_letter_rollup_delete AFTER DELETE ON taskguard.dead_letter
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._dlq_rollup_trigger();
CREATE TRIGGER dead_letter_rollup_truncate AFTER TRUNCATE ON taskguard.dead_letter
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._dlq_rollup_trigger();

-- failure_event rows inserted: failed attempts per minute, task, type and
-- the record's priority.  (Pruning events does not touch the rollups.)
CREATE FUNCTION taskguard._event_rollup_trigger()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM taskguard.failure_hourly;
        RETURN NULL;
    END IF;
    INSERT INTO taskguard.event_delta
    SELECT date_trunc('minute', e.time), coalesce(e.tenant, ''), e.task_name, e.failure_type,
           coalesce(d.priority, 'MEDIUM'), count(*),
           count(*) FILTER (WHERE e.action = 'retry'),
           coalesce(sum(e.retry_count + 1) FILTER (WHERE e.action = 'retry'), 0),
           count(*) FILTER (WHERE e.action = 'abandon'), 0
      FROM new_rows e LEFT JOIN taskguard.dead_letter d ON d.id = e.failure_id
     GROUP BY 1, 2, 3, 4, 5;
    INSERT INTO taskguard.metric_tenant
    SELECT DISTINCT coalesce(e.tenant, '') FROM new_rows e
     WHERE NOT EXISTS (SELECT 1 FROM taskguard.metric_tenant m
                        WHERE m.tenant = coalesce(e.tenant, ''))
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER failure_event_rollup_insert AFTER INSERT ON taskguard.failure_event
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._event_rollup_trigger();
CREATE TRIGGER failure_event_rollup_truncate AFTER TRUNCATE ON taskguard.failure_event
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._event_rollup_trigger();

-- ---------------------------------------------------------------- the step

-- Fold at most batch committed DLQ deltas into dlq_rollup; how many.
CREATE FUNCTION taskguard._rollup_dlq(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    WITH moved AS (
        DELETE FROM taskguard.dlq_delta d
         WHERE d.ctid = ANY (ARRAY(SELECT x.ctid FROM taskguard.dlq_delta x
                                    LIMIT batch FOR UPDATE SKIP LOCKED))
        RETURNING d.*),
    folded AS (
        INSERT INTO taskguard.dlq_rollup AS r
        SELECT m.tenant, m.status, m.failure_type, m.by_retry, sum(m.records), sum(m.retried),
               sum(m.retry_sum), sum(m.confidence_sum)
          FROM moved m GROUP BY 1, 2, 3, 4
        ON CONFLICT (tenant, status, failure_type, by_retry) DO UPDATE
           SET records = r.records + EXCLUDED.records, retried = r.retried + EXCLUDED.retried,
               retry_sum = r.retry_sum + EXCLUDED.retry_sum,
               confidence_sum = CASE WHEN r.records + EXCLUDED.records = 0 THEN 0
                                     ELSE r.confidence_sum + EXCLUDED.confidence_sum END
        RETURNING 1)
    SELECT count(*) INTO v_n FROM moved;
    -- states no record is in any more
    DELETE FROM taskguard.dlq_rollup r WHERE r.records = 0;
    RETURN v_n;
END
$$;

-- Fold at most batch committed event deltas into the hourly, minute and
-- total rollups; how many.
CREATE FUNCTION taskguard._rollup_events(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    WITH moved AS (
        DELETE FROM taskguard.event_delta d
         WHERE d.ctid = ANY (ARRAY(SELECT x.ctid FROM taskguard.event_delta x
                                    LIMIT batch FOR UPDATE SKIP LOCKED))
        RETURNING d.*),
    hourly AS (
        INSERT INTO taskguard.failure_hourly AS h
        SELECT date_trunc('hour', m.minute), k.all_tenants, k.tenant, m.failure_type,
               sum(m.failures), sum(m.retries), sum(m.abandons)
          FROM moved m, LATERAL (VALUES (false, m.tenant), (true, '')) k (all_tenants, tenant)
         WHERE m.failures > 0 GROUP BY 1, 2, 3, 4
        ON CONFLICT (all_tenants, bucket, tenant, failure_type) DO UPDATE
           SET failures = h.failures + EXCLUDED.failures, retries = h.retries + EXCLUDED.retries,
               abandons = h.abandons + EXCLUDED.abandons
        RETURNING 1),
    minutes AS (
        INSERT INTO taskguard.activity_minute AS a
        SELECT m.minute, m.tenant, sum(m.failures), sum(m.abandoned)
          FROM moved m WHERE m.minute > now() - interval '25 hours' GROUP BY 1, 2
        ON CONFLICT (minute, tenant) DO UPDATE
           SET failures = a.failures + EXCLUDED.failures,
               abandoned = a.abandoned + EXCLUDED.abandoned
        RETURNING 1),
    totals AS (
        INSERT INTO taskguard.failure_total AS t
        SELECT k.all_tenants, k.tenant, m.task_name, m.failure_type, m.priority, sum(m.failures),
               sum(m.retries), sum(m.retry_sum), sum(m.abandons), sum(m.abandoned)
          FROM moved m, LATERAL (VALUES (false, m.tenant), (true, '')) k (all_tenants, tenant)
         GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (all_tenants, tenant, task_name, failure_type, priority) DO UPDATE
           SET failures = t.failures + EXCLUDED.failures, retries = t.retries + EXCLUDED.retries,
               retry_sum = t.retry_sum + EXCLUDED.retry_sum,
               abandons = t.abandons + EXCLUDED.abandons,
               abandoned = t.abandoned + EXCLUDED.abandoned
        RETURNING 1)
    SELECT count(*) INTO v_n FROM moved;
    RETURN v_n;
END
$$;

-- Scheduler step 'rollup': fold deltas, then drop minutes older than 25
-- hours and hours older than taskguard.event_retention (at most batch each).
CREATE FUNCTION taskguard._rollup(batch int)
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n    int;
    v_gone int;
BEGIN
    v_n := taskguard._rollup_dlq(batch) + taskguard._rollup_events(batch);
    DELETE FROM taskguard.activity_minute a
     WHERE a.ctid = ANY (ARRAY(SELECT x.ctid FROM taskguard.activity_minute x
                                WHERE x.minute < now() - interval '25 hours' LIMIT batch));
    GET DIAGNOSTICS v_gone = ROW_COUNT;
    v_n := v_n + v_gone;
    DELETE FROM taskguard.failure_hourly h
     WHERE h.ctid = ANY (ARRAY(SELECT x.ctid FROM taskguard.failure_hourly x
        WHERE x.bucket < now() - taskguard._setting_interval('taskguard.event_retention', '30 days')
                             - interval '1 hour'
        LIMIT batch));
    GET DIAGNOSTICS v_gone = ROW_COUNT;
    RETURN v_n + v_gone;
END
$$;

-- Recompute the rollups from dead_letter and failure_event (after a bulk
-- load with the triggers disabled, or to repair drift).  dlq_rollup (state)
-- is recomputed; the history rollups (hours, minutes, totals) only grow:
-- each count becomes the larger of itself and the count over the events
-- still kept, so pruned history is not lost.  Blocks writers of both tables
-- while it runs.  Returns the number of dlq_rollup rows.
CREATE FUNCTION taskguard.rollup_rebuild()
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n bigint;
BEGIN
    LOCK TABLE taskguard.dead_letter, taskguard.failure_event IN SHARE MODE;
    WHILE taskguard._rollup_dlq(100000) + taskguard._rollup_events(100000) > 0 LOOP
    END LOOP;
    INSERT INTO taskguard.metric_tenant
    SELECT coalesce(d.tenant, '') FROM taskguard.dead_letter d
    UNION SELECT coalesce(e.tenant, '') FROM taskguard.failure_event e
    ON CONFLICT DO NOTHING;

    DELETE FROM taskguard.dlq_rollup;
    INSERT INTO taskguard.dlq_rollup
    SELECT coalesce(d.tenant, ''), d.status, d.failure_type,
           d.status = 'RESOLVED' AND d.resolution IS NOT DISTINCT FROM 'retry',
           count(*), count(*) FILTER (WHERE d.retry_count > 0), sum(d.retry_count), sum(d.confidence)
      FROM taskguard.dead_letter d GROUP BY 1, 2, 3, 4;
    GET DIAGNOSTICS v_n = ROW_COUNT;

    CREATE TEMP TABLE taskguard_rebuild ON COMMIT DROP AS
    SELECT date_trunc('hour', e.time) AS bucket, date_trunc('minute', e.time) AS minute,
           coalesce(e.tenant, '') AS tenant, e.task_name, e.failure_type,
           coalesce(d.priority, 'MEDIUM') AS priority, count(*) AS failures,
           count(*) FILTER (WHERE e.action = 'retry') AS retries,
           coalesce(sum(e.retry_count + 1) FILTER (WHERE e.action = 'retry'), 0) AS retry_sum,
           count(*) FILTER (WHERE e.action = 'abandon') AS abandons
      FROM taskguard.failure_event e LEFT JOIN taskguard.dead_letter d ON d.id = e.failure_id
     GROUP BY 1, 2, 3, 4, 5, 6;

    INSERT INTO taskguard.failure_hourly AS h
    SELECT r.bucket, k.all_tenants, k.tenant, r.failure_type,
           sum(r.failures), sum(r.retries), sum(r.abandons)
      FROM taskguard_rebuild r, LATERAL (VALUES (false, r.tenant), (true, '')) k (all_tenants, tenant)
     GROUP BY 1, 2, 3, 4
    ON CONFLICT (all_tenants, bucket, tenant, failure_type) DO UPDATE
       SET failures = greatest(h.failures, EXCLUDED.failures),
           retries = greatest(h.retries, EXCLUDED.retries),
           abandons = greatest(h.abandons, EXCLUDED.abandons);
    INSERT INTO taskguard.activity_minute AS a
    SELECT x.minute, x.tenant, sum(x.failures), sum(x.abandoned)
      FROM (SELECT r.minute, r.tenant, r.failures, 0 AS abandoned FROM taskguard_rebuild r
             WHERE r.minute > now() - interval '25 hours'
            UNION ALL
            SELECT date_trunc('minute', d.last_failed_at), coalesce(d.tenant, ''), 0, 1
              FROM taskguard.dead_letter d
             WHERE d.status = 'ABANDONED' AND d.last_failed_at > now() - interval '25 hours') x
     GROUP BY 1, 2
    ON CONFLICT (minute, tenant) DO UPDATE
       SET failures = greatest(a.failures, EXCLUDED.failures),
           abandoned = greatest(a.abandoned, EXCLUDED.abandoned);
    INSERT INTO taskguard.failure_total AS t
    SELECT k.all_tenants, k.tenant, x.task_name, x.failure_type, x.priority, sum(x.failures),
           sum(x.retries), sum(x.retry_sum), sum(x.abandons), sum(x.abandoned)
      FROM (SELECT r.tenant, r.task_name, r.failure_type, r.priority, r.failures, r.retries,
                   r.retry_sum, r.abandons, 0 AS abandoned
              FROM taskguard_rebuild r
            UNION ALL
            SELECT coalesce(d.tenant, ''), d.task_name, d.failure_type, d.priority, 0, 0, 0, 0, 1
              FROM taskguard.dead_letter d WHERE d.status = 'ABANDONED') x,
           LATERAL (VALUES (false, x.tenant), (true, '')) k (all_tenants, tenant)
     GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (all_tenants, tenant, task_name, failure_type, priority) DO UPDATE
       SET failures = greatest(t.failures, EXCLUDED.failures),
           retries = greatest(t.retries, EXCLUDED.retries),
           retry_sum = greatest(t.retry_sum, EXCLUDED.retry_sum),
           abandons = greatest(t.abandons, EXCLUDED.abandons),
           abandoned = greatest(t.abandoned, EXCLUDED.abandoned);
    DROP TABLE taskguard_rebuild;
    RETURN v_n;
END
$$;

-- ---------------------------------------------------------------- readers

-- The tenants ('' = none) whose rows the caller may see.
CREATE VIEW taskguard._visible_tenants AS
SELECT m.tenant FROM taskguard.metric_tenant m
 WHERE taskguard._tenant_visible(nullif(m.tenant, ''));

-- One row: does the caller see every tenant (then the all_tenants rows serve)?
CREATE VIEW taskguard._tenant_scope AS
SELECT NOT EXISTS (SELECT 1 FROM taskguard.metric_tenant m
                    WHERE NOT taskguard._tenant_visible(nullif(m.tenant, ''))) AS all_visible;

-- Rollup plus pending deltas, filtered to the caller's tenants.  The
-- dashboards read these, never the base tables.
CREATE VIEW taskguard._dlq_counts AS
SELECT s.tenant, s.status, s.failure_type, s.by_retry,
       sum(s.records)::bigint AS records, sum(s.retried)::bigint AS retried,
       sum(s.retry_sum)::bigint AS retry_sum, sum(s.confidence_sum) AS confidence_sum
  FROM (SELECT r.tenant, r.status, r.failure_type, r.by_retry, r.records, r.retried,
               r.retry_sum, r.confidence_sum
          FROM taskguard.dlq_rollup r
        UNION ALL
        SELECT d.tenant, d.status, d.failure_type, d.by_retry, d.records, d.retried,
               d.retry_sum, d.confidence_sum
          FROM taskguard.dlq_delta d) s
 WHERE s.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v)
 GROUP BY 1, 2, 3, 4
HAVING sum(s.records) <> 0;

-- The caller's totals (all_tenants rows when it sees every tenant).
CREATE VIEW taskguard._failure_totals AS
SELECT s.task_name, s.failure_type, s.priority,
       sum(s.failures)::bigint AS failures, sum(s.retries)::bigint AS retries,
       sum(s.retry_sum)::bigint AS retry_sum, sum(s.abandons)::bigint AS abandons,
       sum(s.abandoned)::bigint AS abandoned
  FROM (SELECT t.task_name, t.failure_type, t.priority, t.failures, t.retries,
               t.retry_sum, t.abandons, t.abandoned
          FROM taskguard.failure_total t, taskguard._tenant_scope sc
         WHERE t.all_tenants = sc.all_visible
           AND (sc.all_visible OR t.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v))
        UNION ALL
        SELECT d.task_name, d.failure_type, d.priority, d.failures, d.retries,
               d.retry_sum, d.abandons, d.abandoned
          FROM taskguard.event_delta d
         WHERE d.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v)) s
 GROUP BY 1, 2, 3;

-- The caller's failed attempts per hour and type.
CREATE VIEW taskguard._failure_hours AS
SELECT s.bucket, s.failure_type,
       sum(s.failures)::bigint AS failures, sum(s.retries)::bigint AS retries,
       sum(s.abandons)::bigint AS abandons
  FROM (SELECT h.bucket, h.failure_type, h.failures, h.retries, h.abandons
          FROM taskguard.failure_hourly h, taskguard._tenant_scope sc
         WHERE h.all_tenants = sc.all_visible
           AND (sc.all_visible OR h.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v))
        UNION ALL
        SELECT date_trunc('hour', d.minute), d.failure_type, d.failures, d.retries, d.abandons
          FROM taskguard.event_delta d
         WHERE d.failures > 0
           AND d.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v)) s
 GROUP BY 1, 2;

-- ==== src/sql/82_dashboard.sql
-- 82_dashboard.sql — the dashboard views and alerts (SPEC §11).  Every view
-- here reads the rollups of 80_metrics.sql (and partial indexes of the task
-- table), never a scan of dead_letter or failure_event, and filters rows by
-- tenant with taskguard._tenant_visible().
--
-- Locks: _check_alerts() (scheduler step 'alerts') locks the alert_state rows
-- it changes; the views take none.

-- ---------------------------------------------------------------- thresholds

CREATE TABLE taskguard.alert_threshold (
    alert      text NOT NULL CHECK (alert IN ('dlq_depth', 'idempotency_hit_rate',
                   'schedule_health', 'open_breakers', 'retry_success_rate')),
    level      taskguard.alert_level NOT NULL,
    comparison text NOT NULL CHECK (comparison IN ('>', '<')),
    threshold  numeric NOT NULL CHECK (threshold BETWEEN -1e15 AND 1e15),
    enabled    boolean NOT NULL DEFAULT true,
    builtin    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (alert, level)
);
INSERT INTO taskguard.alert_threshold (alert, level, comparison, threshold, builtin) VALUES
    ('dlq_depth',            'warning',  '>', 20, true),
    ('dlq_depth',            'critical', '>', 50, true),
    ('idempotency_hit_rate', 'warning',  '>', 5,  true),
    ('schedule_health',      'warning',  '<', 80, true),
    ('schedule_health',      'critical', '<', 60, true),
    ('open_breakers',        'error',    '>', 0,  true),
    ('retry_success_rate',   'warning',  '<', 30, true);
-- Rows users add are dumped; the built-in ones are re-created by CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('taskguard.alert_threshold', 'WHERE NOT builtin');

-- Alerts that are on, so that each start is announced once.
CREATE TABLE taskguard.alert_state (
    alert      text PRIMARY KEY,
    level      taskguard.alert_level NOT NULL,
    value      numeric,
    started_at timestamptz NOT NULL DEFAULT now()
);

-- Values the scheduler computes each pass for the views (schedule health
-- reads cron.job and evaluates a day of buckets: not per dashboard query).
CREATE TABLE taskguard.metric_snapshot (
    name        text PRIMARY KEY,
    value       numeric,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- The schedule health score: the scheduler's value when under a minute old,
-- else computed now.  SECURITY DEFINER: schedules are not per tenant, and a
-- reader needs no rights on the snapshot, the schedules or cron.job.
CREATE FUNCTION taskguard._schedule_health_score()
RETURNS int
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(
    (SELECT s.value::int FROM taskguard.metric_snapshot s
      WHERE s.name = 'schedule_health' AND s.computed_at > now() - interval '1 minute'),
    (SELECT h.score FROM taskguard.schedule_health() h))
$$;

-- ---------------------------------------------------------------- health

-- Refuse a negative count or a percentage/score outside 0..upper (NULL: no
-- upper bound).
CREATE FUNCTION taskguard._check_health_input(value numeric, argname text, upper numeric)
RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF value < 0 OR value > upper OR value = 'NaN' THEN
        RAISE EXCEPTION '% must be %, got %', argname,
            coalesce('between 0 and ' || upper, 'at least 0'), value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN value;
END
$$;

-- The dashboard's health score, 0–100 (docs/observability.md): 100 minus
--   30 × min(1, dlq_depth / 100)                 open dead letters
--   15 × min(1, abandoned_24h / 50)              records given up on today
--   10 per open breaker, at most 20
--   15 × (100 − schedule_health) / 100
--   10 × min(1, idempotency_hit_rate_pct / 10)   duplicate submissions
--   10 × (100 − retry_success_pct) / 100         transient retries that fail
-- rounded; a NULL input (unknown) costs nothing.
CREATE FUNCTION taskguard.health_score(dlq_depth bigint, abandoned_24h bigint,
    open_breakers int, schedule_health int, idempotency_hit_rate_pct numeric,
    retry_success_pct numeric DEFAULT NULL)
RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT greatest(0, least(100, round(100
    - 30 * least(1, coalesce(taskguard._check_health_input($1, 'dlq_depth', NULL), 0) / 100.0)
    - 15 * least(1, coalesce(taskguard._check_health_input($2, 'abandoned_24h', NULL), 0) / 50.0)
    - 10 * least(2, coalesce(taskguard._check_health_input($3, 'open_breakers', NULL), 0))
    - 15 * (100 - coalesce(taskguard._check_health_input($4, 'schedule_health', 100), 100)) / 100.0
    - 10 * least(1, coalesce(taskguard._check_health_input($5, 'idempotency_hit_rate_pct', 100), 0) / 10.0)
    - 10 * (100 - coalesce(taskguard._check_health_input($6, 'retry_success_pct', 100), 100)) / 100.0
    )))::int
$$;

-- One row of inputs shared by the dashboard and the alerts.
CREATE VIEW taskguard._health_inputs AS
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
      FROM (SELECT m.minute, m.tenant, m.failures, m.abandoned FROM taskguard.activity_minute m
             WHERE m.minute >= date_trunc('minute', now() - interval '24 hours')
            UNION ALL
            SELECT d.minute, d.tenant, d.failures, d.abandoned FROM taskguard.event_delta d
             WHERE d.minute >= date_trunc('minute', now() - interval '24 hours')) a
     WHERE a.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v)),
idem AS (
    SELECT coalesce(round(100.0 * sum(i.duplicates) / nullif(sum(i.checks), 0), 2), 0) AS hit_rate
      FROM taskguard.idempotency_stats i),
-- counted per tenant through the partial indexes, then filtered (OFFSET 0
-- keeps the tenant check above the GROUP BY: once per tenant, not per row)
tasks AS (
    SELECT coalesce(sum(x.n) FILTER (WHERE x.status = 'running'), 0)::bigint AS running,
           coalesce(sum(x.n) FILTER (WHERE x.status = 'ready'), 0)::bigint AS ready
      FROM (SELECT r.tenant, 'running' AS status, count(*) AS n FROM taskguard.task r
             WHERE r.status = 'running' GROUP BY r.tenant
            UNION ALL
            SELECT r.tenant, 'ready', count(*) FROM taskguard.task r
             WHERE r.status = 'ready' GROUP BY r.tenant
            OFFSET 0) x
     WHERE taskguard._tenant_visible(x.tenant)),
breakers AS (
    SELECT count(*)::int AS open,
           string_agg(b.service, ', ' ORDER BY b.service) AS services
      FROM taskguard.breaker_status b WHERE b.state = 'open')
SELECT tasks.running, tasks.ready,
       dlq.depth AS dlq_depth, dlq.pending, dlq.retrying, dlq.abandoned,
       recent.abandoned_24h, recent.failures_1h,
       idem.hit_rate AS idempotency_hit_rate_pct,
       breakers.open AS open_breakers, breakers.services AS open_breaker_services,
       taskguard._schedule_health_score() AS schedule_health,
       round(100.0 * dlq.t_recovered / nullif(dlq.t_recovered + dlq.t_exhausted, 0), 2)
           AS retry_success_pct
  FROM dlq, recent, idem, tasks, breakers;

-- The overview: one row.
CREATE VIEW taskguard.dashboard AS
SELECT h.running, h.ready, h.dlq_depth, h.abandoned_24h, h.failures_1h,
       h.idempotency_hit_rate_pct, h.open_breakers, h.schedule_health,
       taskguard.health_score(h.dlq_depth, h.abandoned_24h, h.open_breakers, h.schedule_health,
                              h.idempotency_hit_rate_pct, h.retry_success_pct) AS health_score,
       h.retry_success_pct, h.pending AS dlq_pending, h.retrying AS dlq_retrying,
       h.abandoned AS dlq_abandoned, now() AS generated_at
  FROM taskguard._health_inputs h;

-- ---------------------------------------------------------------- taxonomy

-- Every failure type: its default remediation, the dead-letter records of
-- that type (all, and not yet RESOLVED), their share, average confidence,
-- failed attempts in the last 24 hours (hour resolution) and ever.
CREATE VIEW taskguard.failure_distribution AS
WITH recs AS (
    SELECT c.failure_type, sum(c.records) AS records,
           sum(c.records) FILTER (WHERE c.status <> 'RESOLVED') AS open_records,
           sum(c.confidence_sum) AS confidence_sum
      FROM taskguard._dlq_counts c GROUP BY 1),
day AS (
    SELECT h.failure_type, sum(h.failures) AS failures
      FROM taskguard._failure_hours h
     WHERE h.bucket >= date_trunc('hour', now() - interval '24 hours') GROUP BY 1),
ever AS (
    SELECT t.failure_type, sum(t.failures) AS failures
      FROM taskguard._failure_totals t GROUP BY 1)
SELECT p.failure_type, p.remediation, p.alert_level, p.retryable,
       coalesce(r.records, 0)::bigint AS records,
       coalesce(r.open_records, 0)::bigint AS open_records,
       coalesce(round(100.0 * r.records / nullif(sum(r.records) OVER (), 0), 2), 0) AS pct,
       round((r.confidence_sum / nullif(r.records, 0))::numeric, 2) AS avg_confidence,
       coalesce(d.failures, 0)::bigint AS failures_24h,
       coalesce(e.failures, 0)::bigint AS failures_total
  FROM taskguard.retry_policy p
  LEFT JOIN recs r ON r.failure_type = p.failure_type
  LEFT JOIN day d ON d.failure_type = p.failure_type
  LEFT JOIN ever e ON e.failure_type = p.failure_type
 WHERE p.task_name IS NULL;

-- Failed attempts per hour and failure type, over taskguard.event_retention;
-- `time` is the hour (Grafana's time column).  It reads the rollup only (up
-- to one scheduler pass behind): a caller who sees every tenant reads the
-- all-tenant rows as they are, through the primary key, with no aggregation.
CREATE VIEW taskguard.failure_trend AS
SELECT h.bucket AS time, h.failure_type, h.failures, h.retries, h.abandons
  FROM taskguard.failure_hourly h, taskguard._tenant_scope sc
 WHERE h.all_tenants AND sc.all_visible
UNION ALL
SELECT h.bucket, h.failure_type, sum(h.failures)::bigint, sum(h.retries)::bigint,
       sum(h.abandons)::bigint
  FROM taskguard.failure_hourly h, taskguard._tenant_scope sc
 WHERE NOT h.all_tenants AND NOT sc.all_visible
   AND h.tenant IN (SELECT v.tenant FROM taskguard._visible_tenants v)
 GROUP BY 1, 2;

-- ---------------------------------------------------------------- retries

-- Per failure type, over the records still kept (RESOLVED ones go after
-- taskguard.dlq_retention): records whose retries concluded — recovered (a
-- retry succeeded) or exhausted (abandoned after at least one retry) — the
-- success rate, the average retries they took against the policy's
-- max_retries, records still retrying, and retries scheduled ever.
CREATE VIEW taskguard.retry_effectiveness AS
WITH recs AS (
    SELECT c.failure_type,
           sum(c.records) FILTER (WHERE c.by_retry) AS recovered,
           sum(c.retry_sum + c.records) FILTER (WHERE c.by_retry) AS recovered_retries,
           sum(c.retried) FILTER (WHERE c.status = 'ABANDONED') AS exhausted,
           sum(c.retry_sum) FILTER (WHERE c.status = 'ABANDONED') AS exhausted_retries,
           sum(c.records) FILTER (WHERE c.status IN ('PENDING', 'RETRYING')) AS in_progress
      FROM taskguard._dlq_counts c GROUP BY 1),
ever AS (
    SELECT t.failure_type, sum(t.retries) AS retries
      FROM taskguard._failure_totals t GROUP BY 1)
SELECT p.failure_type, p.retryable, p.max_retries,
       (coalesce(r.recovered, 0) + coalesce(r.exhausted, 0))::bigint AS retried,
       coalesce(r.recovered, 0)::bigint AS recovered,
       coalesce(r.exhausted, 0)::bigint AS exhausted,
       coalesce(r.in_progress, 0)::bigint AS in_progress,
       round(100.0 * r.recovered / nullif(coalesce(r.recovered, 0) + coalesce(r.exhausted, 0), 0), 2)
           AS success_rate_pct,
       round((coalesce(r.recovered_retries, 0) + coalesce(r.exhausted_retries, 0))::numeric
             / nullif(coalesce(r.recovered, 0) + coalesce(r.exhausted, 0), 0), 2) AS avg_retries,
       round(100.0 * (coalesce(r.recovered_retries, 0) + coalesce(r.exhausted_retries, 0))
             / nullif(coalesce(r.recovered, 0) + coalesce(r.exhausted, 0), 0)
             / nullif(p.max_retries, 0), 2) AS avg_retries_pct_of_max,
       coalesce(e.retries, 0)::bigint AS retries_total
  FROM taskguard.retry_policy p
  LEFT JOIN recs r ON r.failure_type = p.failure_type
  LEFT JOIN ever e ON e.failure_type = p.failure_type
 WHERE p.task_name IS NULL;

-- ---------------------------------------------------------------- alerts

-- Each alert that is on, at its most severe level breached.
CREATE VIEW taskguard.alerts AS
WITH h AS MATERIALIZED (SELECT * FROM taskguard._health_inputs),
m (alert, value, detail) AS (
    SELECT v.alert, v.value, v.detail
      FROM h, LATERAL (VALUES
        ('dlq_depth', h.dlq_depth::numeric,
         format('%s open dead-letter records (PENDING %s, RETRYING %s, ABANDONED %s)',
                h.dlq_depth, h.pending, h.retrying, h.abandoned)),
        ('idempotency_hit_rate', h.idempotency_hit_rate_pct,
         format('%s %% of idempotency checks were duplicates', h.idempotency_hit_rate_pct)),
        ('schedule_health', h.schedule_health::numeric,
         format('schedule health score %s (see taskguard.schedule_hotspots)', h.schedule_health)),
        ('open_breakers', h.open_breakers::numeric,
         format('open circuit breakers: %s', left(h.open_breaker_services, 1000))),
        ('retry_success_rate', h.retry_success_pct,
         format('%s %% of transient failures recovered by a retry', h.retry_success_pct))
      ) v (alert, value, detail))
SELECT DISTINCT ON (t.alert) t.alert, t.level, m.value, t.threshold, m.detail
  FROM taskguard.alert_threshold t JOIN m ON m.alert = t.alert
 WHERE t.enabled
   AND CASE t.comparison WHEN '>' THEN m.value > t.threshold ELSE m.value < t.threshold END
 ORDER BY t.alert, t.level DESC;

-- Scheduler step 'alerts': refresh the snapshot, forget alerts that ended,
-- and NOTIFY taskguard_alerts (JSON) once for each alert that started or
-- changed level.  Returns how many were sent.
CREATE FUNCTION taskguard._check_alerts()
RETURNS int
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    v_n int;
BEGIN
    INSERT INTO taskguard.metric_snapshot AS s (name, value, computed_at)
    SELECT 'schedule_health', h.score, now() FROM taskguard.schedule_health() h
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, computed_at = EXCLUDED.computed_at;

    WITH now_on AS MATERIALIZED (SELECT * FROM taskguard.alerts),
    ended AS (
        DELETE FROM taskguard.alert_state s
         WHERE NOT EXISTS (SELECT 1 FROM now_on a WHERE a.alert = s.alert)),
    started AS (
        INSERT INTO taskguard.alert_state AS s (alert, level, value, started_at)
        SELECT a.alert, a.level, a.value, now() FROM now_on a
        ON CONFLICT (alert) DO UPDATE
           SET level = EXCLUDED.level, value = EXCLUDED.value, started_at = EXCLUDED.started_at
         WHERE s.level <> EXCLUDED.level
        RETURNING s.alert, s.started_at)
    SELECT count(pg_notify('taskguard_alerts', json_build_object(
               'alert', a.alert, 'level', a.level, 'value', a.value, 'threshold', a.threshold,
               'detail', a.detail, 'started_at', st.started_at)::text))
      INTO v_n
      FROM started st JOIN now_on a ON a.alert = st.alert;
    RETURN v_n;
END
$$;

-- ==== src/sql/84_prometheus.sql
-- 84_prometheus.sql — taskguard.prometheus_metrics(): the dashboards in the
-- Prometheus text exposition format (version 0.0.4).  Counters come from the
-- monotonic totals (taskguard.failure_total, idempotency_counter), never from
-- counts of rows that get pruned.  SECURITY INVOKER: a tenant-mapped role
-- gets its tenant's numbers.

-- A label value escaped for the exposition format (\ " and newline).
CREATE FUNCTION taskguard._prom_label(value text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT '"' || replace(replace(replace(coalesce(value, ''), E'\\', E'\\\\'), '"', E'\\"'),
                      E'\n', E'\\n') || '"'
$$;

-- A sample value: integers as such, others with up to 6 decimals.
CREATE FUNCTION taskguard._prom_value(value numeric)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN value IS NULL THEN 'NaN'
            WHEN value = trunc(value) THEN trunc(value)::text
            ELSE round(value, 6)::text END
$$;

-- One metric family: HELP and TYPE lines, then its samples (may be none).
CREATE FUNCTION taskguard._prom_family(name text, type text, help text, samples text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT format(E'# HELP %s %s\n# TYPE %s %s\n', name,
              replace(replace(help, E'\\', E'\\\\'), E'\n', E'\\n'), name, type)
       || coalesce(samples, '')
$$;

CREATE FUNCTION taskguard.prometheus_metrics()
RETURNS text
LANGUAGE sql STABLE PARALLEL RESTRICTED
AS $$
WITH totals AS MATERIALIZED (
    SELECT t.task_name, t.failure_type, t.priority, t.failures, t.retries, t.retry_sum,
           t.abandoned
      FROM taskguard._failure_totals t),
h AS MATERIALIZED (SELECT * FROM taskguard._health_inputs),
idem AS MATERIALIZED (
    SELECT coalesce(sum(i.checks), 0) AS checks, coalesce(sum(i.duplicates), 0) AS duplicates
      FROM taskguard.idempotency_stats i)
SELECT
  taskguard._prom_family('task_failure_total', 'counter',
      'Failed task attempts, by failure type and task name.',
      (SELECT string_agg(format(E'task_failure_total{failure_type=%s,task_name=%s} %s\n',
                                taskguard._prom_label(x.failure_type::text),
                                taskguard._prom_label(x.task_name), x.n),
                         '' ORDER BY x.failure_type, x.task_name)
         FROM (SELECT t.failure_type, t.task_name, sum(t.failures) AS n
                 FROM totals t GROUP BY 1, 2 HAVING sum(t.failures) > 0) x))
  || taskguard._prom_family('task_retry', 'summary',
      'Retries scheduled after a failure, by task name and priority: _count is the number of retries, _sum the sum of their retry numbers (1 = first retry).',
      (SELECT string_agg(format(E'task_retry_sum{task_name=%1$s,priority=%2$s} %3$s\ntask_retry_count{task_name=%1$s,priority=%2$s} %4$s\n',
                                taskguard._prom_label(x.task_name),
                                taskguard._prom_label(x.priority::text), x.s, x.n),
                         '' ORDER BY x.task_name, x.priority)
         FROM (SELECT t.task_name, t.priority, sum(t.retries) AS n, sum(t.retry_sum) AS s
                 FROM totals t GROUP BY 1, 2 HAVING sum(t.retries) > 0) x))
  || taskguard._prom_family('task_abandoned_total', 'counter',
      'Dead-letter records that became ABANDONED, by failure type and task name.',
      (SELECT string_agg(format(E'task_abandoned_total{failure_type=%s,task_name=%s} %s\n',
                                taskguard._prom_label(x.failure_type::text),
                                taskguard._prom_label(x.task_name), x.n),
                         '' ORDER BY x.failure_type, x.task_name)
         FROM (SELECT t.failure_type, t.task_name, sum(t.abandoned) AS n
                 FROM totals t GROUP BY 1, 2 HAVING sum(t.abandoned) > 0) x))
  || taskguard._prom_family('dlq_queue_depth', 'gauge',
      'Open dead-letter records (PENDING, RETRYING or ABANDONED).',
      format(E'dlq_queue_depth %s\n', h.dlq_depth))
  || taskguard._prom_family('dlq_records', 'gauge',
      'Dead-letter records kept, by status.',
      (SELECT string_agg(format(E'dlq_records{status=%s} %s\n',
                                taskguard._prom_label(s::text),
                                coalesce((SELECT sum(c.records) FROM taskguard._dlq_counts c
                                           WHERE c.status = s), 0)),
                         '' ORDER BY s)
         FROM unnest(enum_range(NULL::taskguard.dlq_status)) s))
  || taskguard._prom_family('idempotency_hit_rate_percent', 'gauge',
      'Share of idempotency checks that found a duplicate, in percent.',
      format(E'idempotency_hit_rate_percent %s\n', taskguard._prom_value(h.idempotency_hit_rate_pct)))
  || taskguard._prom_family('idempotency_checks_total', 'counter',
      'Idempotency checks made.', format(E'idempotency_checks_total %s\n', idem.checks))
  || taskguard._prom_family('idempotency_duplicates_total', 'counter',
      'Idempotency checks that found a duplicate.',
      format(E'idempotency_duplicates_total %s\n', idem.duplicates))
  || taskguard._prom_family('schedule_health_score', 'gauge',
      'Schedule health score, 0-100 (100 = no hotspots, duplicates, overlaps or invalid schedules).',
      format(E'schedule_health_score %s\n', coalesce(h.schedule_health, 100)))
  || taskguard._prom_family('circuit_breaker_state', 'gauge',
      'Circuit breaker state by service: 0 closed, 1 half-open, 2 open.',
      (SELECT string_agg(format(E'circuit_breaker_state{service_name=%s} %s\n',
                                taskguard._prom_label(b.service),
                                CASE b.state WHEN 'open' THEN 2 WHEN 'half_open' THEN 1 ELSE 0 END),
                         '' ORDER BY b.service)
         FROM taskguard.breaker_status b))
  || taskguard._prom_family('taskguard_tasks', 'gauge', 'Tasks by status (ready, running).',
      format(E'taskguard_tasks{status="ready"} %s\ntaskguard_tasks{status="running"} %s\n',
             h.ready, h.running))
  || taskguard._prom_family('taskguard_failures_last_hour', 'gauge',
      'Failed attempts in the last hour.', format(E'taskguard_failures_last_hour %s\n', h.failures_1h))
  || taskguard._prom_family('taskguard_health_score', 'gauge',
      'The dashboard health score, 0-100.',
      format(E'taskguard_health_score %s\n',
             taskguard.health_score(h.dlq_depth, h.abandoned_24h, h.open_breakers,
                                    h.schedule_health, h.idempotency_hit_rate_pct,
                                    h.retry_success_pct)))
  || taskguard._prom_family('taskguard_alert', 'gauge',
      'Alerts that are on (1), by alert and level.',
      (SELECT string_agg(format(E'taskguard_alert{alert=%s,level=%s} 1\n',
                                taskguard._prom_label(a.alert), taskguard._prom_label(a.level::text)),
                         '' ORDER BY a.alert)
         FROM taskguard.alerts a))
FROM h, idem
$$;

-- ==== src/sql/90_access.sql
-- 90_access.sql — access levels and tenant isolation (SPEC §12).  Sorts last
-- in the install script on purpose: what it does is driven by the catalog, so
-- it covers the objects every other file created.
--
--  * Nothing is granted to PUBLIC: no function, table, view, sequence or the
--    schema (the end of this file).
--  * taskguard.grant_access(role, 'worker' | 'reader' | 'admin') grants one
--    level.  Functions run as their caller (SECURITY INVOKER) unless noted, so
--    a role can never do more through a function than its table privileges
--    and row security let it do directly.
--  * Every table with a tenant column gets row-level security: a role mapped
--    in taskguard.tenant_member sees and writes only its tenants' rows, in
--    tables, security_invoker views and functions alike.  The bootstrap
--    superuser (the scheduler) and the tables' owner bypass it.
-- See docs/security.md.

-- Functions of the worker level: the queue, failure, idempotency and breaker
-- calls, and the helpers they call (a helper runs as its caller, so calling
-- one directly is no more than its table privileges allow).
CREATE FUNCTION taskguard._access_worker_functions()
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT ARRAY[
    -- §3 queue (requeue of a failed task is a one-record DLQ retry, through
    -- _dlq_retry: the bulk dlq_retry stays an admin action)
    'enqueue', 'enqueue_many', 'claim', 'complete', 'complete_many', 'fail',
    'heartbeat', 'cancel', 'requeue',
    -- §4, §5 failures (external-broker mode included), §7 priority
    'record_failure', 'claim_due_retries', 'resolve', 'classify', 'backoff',
    'retry_decision', 'calculate_priority', 'priority_level',
    -- §8 idempotency, §6 breakers
    'idempotency_key', 'idempotency_check', 'idempotency_release',
    'breaker_allow', 'breaker_record', 'breaker_reset', 'breaker_force',
    -- helpers of the above
    '_require', '_check_enqueue', '_notify', '_priority_score', '_setting_interval',
    '_escalation_bonus', '_idempotency_find', '_idempotency_bind', '_idempotency_digest',
    '_idempotency_count', '_xact_owns', '_task_discard', '_breaker_is_open',
    '_breaker_claimed', '_breaker_task_done', '_breaker_config_rows',
    '_breaker_saved_rows', '_breaker_saved_max_version', '_breaker_save',
    '_breaker_cooldown', '_dlq_record', '_dlq_context', '_dlq_task_succeeded',
    '_dlq_task_cancelled', '_dlq_resolve', '_dlq_hold_tasks', '_policy_max_retries',
    '_dlq_retry', '_retry_priority']
$$;

-- Tables a worker writes (through the functions above), and how: every table
-- with a tenant column (tasks, records, events, keys, and tenant rollups other
-- files add — row security scopes them) may be inserted into and updated; of
-- those, only keys are deleted (idempotency_release).
CREATE FUNCTION taskguard._access_worker_tables(
    OUT table_oid oid, OUT privileges text)
RETURNS SETOF record
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT c.oid, CASE WHEN c.oid = 'taskguard.idempotency_record'::regclass
                   THEN 'INSERT, UPDATE, DELETE' ELSE 'INSERT, UPDATE' END
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant'
       AND NOT a.attisdropped
 WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.oid <> 'taskguard.tenant_member'::regclass
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
       AND c.relkind IN ('r', 'p', 'v', 'm', 'S')),
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
                                   '_tenant_visible')),
worker AS (
    SELECT * FROM common
    UNION ALL SELECT w.privileges, 'TABLE ' || r.qname
      FROM taskguard._access_worker_tables() w JOIN rels r ON r.oid = w.table_oid
    UNION ALL SELECT 'USAGE', 'SEQUENCE ' || s.oid::regclass::text
      FROM taskguard._access_worker_tables() w JOIN rels r ON r.oid = w.table_oid
      JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass
           AND d.refobjid = r.oid AND d.classid = 'pg_catalog.pg_class'::regclass
      JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
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

-- Grant an access level to a role (SPEC §12).  Granting again is harmless, and
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

-- Views run with their owner's rights, which row security does not filter:
-- every view that does not filter by tenant itself (_tenant_visible) runs
-- with its caller's rights instead.
DO $$
DECLARE
    v_view regclass;
BEGIN
    FOR v_view IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind = 'v'
           AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_depend d
                 JOIN pg_catalog.pg_rewrite w ON d.classid = 'pg_catalog.pg_rewrite'::regclass
                      AND d.objid = w.oid
                WHERE w.ev_class = c.oid AND d.refclassid = 'pg_catalog.pg_proc'::regclass
                  AND d.refobjid = 'taskguard._tenant_visible(text)'::regprocedure)
    LOOP
        EXECUTE format('ALTER VIEW %s SET (security_invoker = true)', v_view);
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
