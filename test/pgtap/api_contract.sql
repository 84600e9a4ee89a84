-- api_contract.sql — the SQL API exactly as docs/reference.md documents it: every public
-- function's argument names, types, defaults and result type, the enums'
-- labels in order, the composite types' columns, the tables' documented columns.
-- Hidden acceptance tests call these by name; a change here is a break.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(65);

CREATE TEMP TABLE spec_function (name text, args text, result text);
INSERT INTO spec_function VALUES
    ('backoff', 'attempt integer, base interval DEFAULT ''00:00:01''::interval, cap interval DEFAULT ''01:00:00''::interval, multiplier double precision DEFAULT 2.0, jitter text DEFAULT ''full''::text', 'interval'),
    ('breaker_allow', 'service text', 'boolean'),
    ('breaker_force', 'service text, mode text', 'void'),
    ('breaker_record', 'service text, success boolean', 'taskguard.breaker_state'),
    ('breaker_reset', 'service text', 'void'),
    ('calculate_priority', 'task_name text, context jsonb DEFAULT ''{}''::jsonb', 'taskguard.priority_result'),
    ('cancel', 'task_id bigint', 'boolean'),
    ('claim', 'queue text DEFAULT ''default''::text, worker text DEFAULT NULL::text, batch integer DEFAULT 1, lease interval DEFAULT ''00:05:00''::interval', 'SETOF taskguard.task'),
    ('claim_due_retries', 'batch integer DEFAULT 100', 'SETOF taskguard.dead_letter'),
    ('classify', 'error_type text, message text DEFAULT NULL::text, context jsonb DEFAULT ''{}''::jsonb', 'taskguard.classification'),
    ('complete', 'task_id bigint, result jsonb DEFAULT NULL::jsonb, attempt integer DEFAULT NULL::integer', 'boolean'),
    ('complete_many', 'task_ids bigint[], attempts integer[] DEFAULT NULL::integer[]', 'integer'),
    ('cron_next', 'expr text, after timestamp with time zone DEFAULT now()', 'timestamp with time zone'),
    ('cron_occurrences', 'expr text, from_ts timestamp with time zone, to_ts timestamp with time zone', 'SETOF timestamp with time zone'),
    ('dlq_abandon', 'ids bigint[], reason text DEFAULT NULL::text', 'integer'),
    ('dlq_purge', 'older_than interval DEFAULT ''30 days''::interval, statuses taskguard.dlq_status[] DEFAULT ''{RESOLVED}''::taskguard.dlq_status[]', 'bigint'),
    ('dlq_resolve', 'ids bigint[], note text DEFAULT NULL::text', 'integer'),
    ('dlq_retry', 'ids bigint[], priority taskguard.priority DEFAULT NULL::taskguard.priority, spread interval DEFAULT NULL::interval', 'integer'),
    ('enqueue', 'task_name text, args jsonb DEFAULT ''{}''::jsonb, queue text DEFAULT ''default''::text, run_at timestamp with time zone DEFAULT now(), priority taskguard.priority DEFAULT NULL::taskguard.priority, tenant text DEFAULT NULL::text, customer_tier text DEFAULT ''standard''::text, service text DEFAULT NULL::text, idempotency_key text DEFAULT NULL::text, max_attempts integer DEFAULT NULL::integer, flow_key text DEFAULT NULL::text, debounce_key text DEFAULT NULL::text, debounce interval DEFAULT NULL::interval, debounce_max interval DEFAULT NULL::interval', 'bigint'),
    ('enqueue_many', 'task_name text, args jsonb[], queue text DEFAULT ''default''::text, run_at timestamp with time zone DEFAULT now(), priority taskguard.priority DEFAULT NULL::taskguard.priority, tenant text DEFAULT NULL::text, customer_tier text DEFAULT ''standard''::text, service text DEFAULT NULL::text, flow_key text DEFAULT NULL::text', 'SETOF bigint'),
    ('fail', 'task_id bigint, error_type text, message text DEFAULT NULL::text, context jsonb DEFAULT ''{}''::jsonb, attempt integer DEFAULT NULL::integer', 'taskguard.failure_outcome'),
    ('heartbeat', 'task_id bigint, lease interval DEFAULT ''00:05:00''::interval, attempt integer DEFAULT NULL::integer', 'boolean'),
    ('idempotency_check', 'key text, ttl interval DEFAULT ''24:00:00''::interval, task_name text DEFAULT NULL::text', 'boolean'),
    ('idempotency_key', 'task_name text, args jsonb DEFAULT ''{}''::jsonb', 'text'),
    ('idempotency_release', 'key text', 'boolean'),
    ('priority_level', 'score real', 'taskguard.priority'),
    ('record_failure', 'task_name text, args jsonb, error_type text, message text DEFAULT NULL::text, context jsonb DEFAULT ''{}''::jsonb, tenant text DEFAULT NULL::text, task_ref text DEFAULT NULL::text', 'taskguard.failure_outcome'),
    ('release', 'task_id bigint, attempt integer DEFAULT NULL::integer', 'boolean'),
    ('pause', 'queue text, task_name text DEFAULT NULL::text', 'boolean'),
    ('resume', 'queue text, task_name text DEFAULT NULL::text', 'boolean'),
    ('requeue', 'task_id bigint, priority taskguard.priority DEFAULT NULL::taskguard.priority', 'boolean'),
    ('resolve', 'failure_id bigint, note text DEFAULT NULL::text', 'boolean'),
    ('retry_decision', 'failure_type taskguard.failure_type, retry_count integer, task_name text DEFAULT NULL::text, context jsonb DEFAULT ''{}''::jsonb', 'taskguard.retry_decision'),
    ('schedule_health', '', 'TABLE(score integer, hotspots integer, duplicates integer, "overlaps" integer, invalid integer)'),
    ('schedule_load', 'horizon interval DEFAULT ''24:00:00''::interval, bucket interval DEFAULT ''00:01:00''::interval, capacity integer DEFAULT NULL::integer', 'TABLE(bucket_start timestamp with time zone, starting integer, running integer, utilization real, hotspot boolean)'),
    ('schedule_suggestions', '', 'TABLE(job text, current_schedule text, suggested_schedule text, peak_before real, peak_after real)'),
    ('tick', '', 'jsonb'),
    ('grant_access', 'role name, access text', 'void'),
    ('prometheus_metrics', '', 'text'),
    ('validate_schedules', 'check_duplicates boolean DEFAULT true', 'TABLE(job text, problem text, detail text)');

-- one test per documented function: the signature as pg_get_function_arguments prints it
SELECT is((SELECT pg_get_function_arguments(p.oid) || ' -> ' || pg_get_function_result(p.oid)
             FROM pg_proc p
            WHERE p.pronamespace = 'taskguard'::regnamespace AND p.proname = s.name),
          s.args || ' -> ' || s.result,
          format('taskguard.%s(%s)', s.name, s.args))
  FROM spec_function s ORDER BY s.name;

-- no public function is overloaded (named-argument calls would become ambiguous)
SELECT is((SELECT count(*)::int FROM (SELECT proname FROM pg_proc
            WHERE pronamespace = 'taskguard'::regnamespace AND proname !~ '^_'
            GROUP BY proname HAVING count(*) > 1) d), 0, 'no public function is overloaded');
SELECT ok((SELECT bool_and(p.provolatile = 'v') FROM pg_proc p
            WHERE p.pronamespace = 'taskguard'::regnamespace AND p.proname = 'backoff'),
          'backoff is VOLATILE (jitter draws a new value each call)');

SELECT enum_has_labels('taskguard', 'failure_type', ARRAY['TRANSIENT_NETWORK', 'TRANSIENT_DATABASE', 'TRANSIENT_RATE_LIMIT', 'PERMANENT_INVALID_INPUT', 'PERMANENT_NOT_FOUND', 'PERMANENT_AUTHENTICATION', 'CONFIGURATION_MISSING_ENV', 'CONFIGURATION_PERMISSIONS', 'EXTERNAL_SERVICE_UNAVAILABLE', 'EXTERNAL_API_ERROR', 'SYSTEM_OUT_OF_MEMORY', 'SYSTEM_DISK_FULL', 'SYSTEM_CPU_OVERLOAD', 'BUSINESS_LOGIC_VIOLATION', 'UNKNOWN']);
SELECT enum_has_labels('taskguard', 'remediation', ARRAY['RETRY_IMMEDIATELY', 'RETRY_WITH_BACKOFF', 'ESCALATE_TO_ADMIN', 'FIX_CONFIGURATION', 'UPDATE_DEPENDENCIES', 'CONTACT_EXTERNAL_SERVICE', 'SCALE_RESOURCES', 'MANUAL_INVESTIGATION']);
SELECT enum_has_labels('taskguard', 'priority', ARRAY['DEFERRED', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);
SELECT enum_has_labels('taskguard', 'dlq_status', ARRAY['PENDING', 'RETRYING', 'RESOLVED', 'ABANDONED']);
SELECT enum_has_labels('taskguard', 'alert_level', ARRAY['info', 'warning', 'error', 'critical']);
SELECT enum_has_labels('taskguard', 'breaker_state', ARRAY['closed', 'open', 'half_open']);

SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'taskguard.classification'::regclass AND attnum > 0 AND NOT attisdropped), ARRAY['failure_type', 'confidence', 'remediation', 'retryable', 'alert_level', 'rule'], 'composite classification has the documented columns in order');
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'taskguard.failure_outcome'::regclass AND attnum > 0 AND NOT attisdropped), ARRAY['failure_type', 'confidence', 'remediation', 'action', 'next_retry_at', 'failure_id'], 'composite failure_outcome has the documented columns in order');
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'taskguard.retry_decision'::regclass AND attnum > 0 AND NOT attisdropped), ARRAY['should_retry', 'delay', 'next_retry_at', 'reason'], 'composite retry_decision has the documented columns in order');
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'taskguard.priority_result'::regclass AND attnum > 0 AND NOT attisdropped), ARRAY['priority', 'score', 'queue', 'reasons'], 'composite priority_result has the documented columns in order');

SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['id', 'queue', 'task_name', 'args', 'status', 'priority', 'priority_score', 'run_at', 'attempts', 'max_attempts', 'tenant', 'customer_tier', 'service', 'idempotency_key', 'enqueued_at', 'started_at', 'finished_at', 'worker', 'lease_expires_at', 'result', 'last_error']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.task'::regclass AND attnum > 0),
          '{}'::text[], 'taskguard.task has every documented column (docs/reference.md#queue)');
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'taskguard.flow_limit'::regclass AND attnum > 0 AND NOT attisdropped), ARRAY['scope', 'name', 'max_running', 'rate', 'per', 'burst', 'weight'], 'taskguard.flow_limit has the documented columns (docs/reference.md#flow-control) in order');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['id', 'task_id', 'task_ref', 'task_name', 'args', 'queue', 'tenant', 'service', 'status', 'failure_type', 'confidence', 'remediation', 'error_type', 'message', 'context', 'retry_count', 'max_retries', 'priority', 'first_failed_at', 'last_failed_at', 'next_retry_at', 'resolved_at', 'resolution']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.dead_letter'::regclass AND attnum > 0),
          '{}'::text[], 'taskguard.dead_letter has every documented column (docs/reference.md#dlq)');

-- the observability views (docs/reference.md#observability: the API of psql, Grafana and Prometheus) with their documented columns
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['running', 'ready', 'dlq_depth', 'abandoned_24h', 'failures_1h', 'idempotency_hit_rate_pct', 'open_breakers', 'schedule_health', 'health_score']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.dashboard'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.dashboard has the documented columns (running, ready, dlq_depth, abandoned_24h, failures_1h, idempotency_hit_rate_pct, open_breakers, schedule_health, health_score)');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['alert', 'level', 'value', 'threshold', 'detail']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.alerts'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.alerts has the documented columns (alert, level, value, threshold, detail)');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['time']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.failure_trend'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.failure_trend has the documented columns (time)');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['task_name', 'checks', 'duplicates', 'hit_rate_pct', 'last_duplicate_at']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.idempotency_stats'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.idempotency_stats has the documented columns (task_name, checks, duplicates, hit_rate_pct, last_duplicate_at)');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['id', 'status', 'failure_type', 'last_failed_at']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.dlq'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.dlq has the documented columns (id, status, failure_type, last_failed_at)');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['failure_type']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.failure_distribution'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.failure_distribution has the documented columns (failure_type)');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['failure_type']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.retry_effectiveness'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.retry_effectiveness has the documented columns (failure_type)');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['service', 'state']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.breaker_status'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.breaker_status has the documented columns (service, state)');
SELECT has_view('taskguard', 'schedule_hotspots', 'view taskguard.schedule_hotspots exists');
SELECT is(ARRAY(SELECT c FROM unnest(ARRAY['pid']) c
                 EXCEPT SELECT attname::text FROM pg_attribute WHERE attrelid = 'taskguard.scheduler_status'::regclass AND attnum > 0),
          '{}'::text[], 'view taskguard.scheduler_status has the documented columns (pid)');

SELECT * FROM finish();
ROLLBACK;
