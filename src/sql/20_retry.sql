-- 20_retry.sql — retry policies (docs/reference.md#retry): the table of one
-- policy per failure type (and per-task overrides), backoff(),
-- retry_decision(), and the look-ups the dead-letter queue and the retry
-- scheduler use.  One resolver answers for C and SQL alike: retry.c reads the
-- table (as its owner, cached per backend until a change invalidates it), and
-- a type whose default row was deleted gets the built-in policy everywhere.

-- One row per failure type with task_name NULL (the default, seeded from
-- docs/reference.md#retry), plus optional per-task overrides: an override's NULL columns
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

-- Dumped whole: a restore puts the default rows back as they were edited
-- (02_backup.sql; docs/operations.md).
SELECT pg_catalog.pg_extension_config_dump('taskguard.retry_policy', '');
CREATE TRIGGER restore_builtin_row BEFORE INSERT ON taskguard.retry_policy
    FOR EACH ROW EXECUTE FUNCTION taskguard._restore_builtin_row('failure_type', 'task_name');

-- Any change makes every backend reload its copy (a relcache invalidation of
-- the table, delivered at commit).
CREATE TRIGGER retry_policy_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON taskguard.retry_policy
    FOR EACH STATEMENT EXECUTE FUNCTION taskguard._config_changed();

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

-- The effective max_retries of a type for a task: the resolver's (its
-- task_name override, else the type's default row, else the built-in policy).
CREATE FUNCTION taskguard._policy_max_retries(failure_type taskguard.failure_type, task_name text)
RETURNS int
AS 'MODULE_PATHNAME', 'taskguard_policy_max_retries'
LANGUAGE C STABLE PARALLEL SAFE;

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
