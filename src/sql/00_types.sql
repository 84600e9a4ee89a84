-- 00_types.sql — the types of docs/reference.md#types and small shared helpers.

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
-- has not defined it in this session yet.  The library's check refuses a
-- negative value; one set before the library was loaded (a placeholder) is
-- not checked, so a negative value here also means the default.
CREATE FUNCTION taskguard._setting_interval(name text, fallback interval)
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN nullif(current_setting(name, true), '')::interval >= interval '0'
            THEN nullif(current_setting(name, true), '')::interval ELSE fallback END
$$;

-- Score of a level: DEFERRED 0 … CRITICAL 4.
CREATE FUNCTION taskguard._priority_score(level taskguard.priority)
RETURNS real
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT (array_position(enum_range(NULL::taskguard.priority), level) - 1)::real $$;
