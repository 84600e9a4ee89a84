-- 70_dashboards.sql — issue 23: dashboard numbers right at the edges (0 %,
-- 100 %, no data), the schedule analysis of every pg_cron job for readers,
-- one metric name set, and schedules accepted exactly as the installed
-- pg_cron accepts them.  Mirrors src/sql/60_schedule.sql, 82_dashboard.sql
-- and 84_prometheus.sql (final bodies: this piece sorts after 40_values.sql).

-- The installed pg_cron's version as {major, minor} ('1.4-1' -> {1,4}), or
-- NULL when pg_cron is not installed in this database.
CREATE FUNCTION taskguard._pg_cron_version()
RETURNS int[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT (regexp_match(e.extversion, '^(\d+)\.(\d+)'))::int[]
  FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_cron'
$$;

-- NULL when the installed pg_cron accepts expr, else why not: the parser's
-- error, or the 'N seconds' form under a pg_cron older than 1.5 (1.5 added
-- it).  Without pg_cron in this database both are accepted: which pg_cron
-- the schedule is meant for is unknown.
CREATE FUNCTION taskguard._cron_refusal(expr text)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
SELECT coalesce(taskguard._cron_error(expr),
       CASE WHEN expr ~* '^\s*\d+\s*seconds?\s*$' AND v.version < '{1,5}'
            THEN format('seconds field "%s": the installed pg_cron %s does not accept intervals in seconds (pg_cron 1.5 and later do)',
                        btrim(expr), array_to_string(v.version, '.')) END)
  FROM (SELECT taskguard._pg_cron_version() AS version) v
$$;

-- What the analysis reports for a schedule: its refusal, or, for one that is
-- accepted but that no date matches ("0 0 31 2 *": pg_cron accepts it and
-- never runs it), that it never fires.  NULL when the schedule is fine.
CREATE FUNCTION taskguard._schedule_problem(expr text)
RETURNS text
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    v_problem text := taskguard._cron_refusal(expr);
    v_fields  text[];
BEGIN
    IF v_problem IS NULL AND expr !~ '^\s*@reboot\s*$'
       AND taskguard.cron_next(expr, now()) IS NULL THEN
        v_fields := regexp_split_to_array(btrim(expr), '\s+');
        v_problem := format('day of month field "%s": no such day in month field "%s", so the schedule never fires (pg_cron accepts it and never runs it)',
                            v_fields[3], v_fields[4]);
    END IF;
    RETURN v_problem;
END
$$;

-- pg_cron's active jobs, whoever owns them.  pg_cron's row security shows a
-- role only its own jobs, but schedule health and hotspots are about the
-- whole database: a reader (Grafana) must see the analysis the jobs' owners
-- see.  SECURITY DEFINER (the extension's owner reads cron.job) returning
-- only what the analysis needs: the name ('cron:<jobname or jobid>'), the
-- schedule, a digest of the command (blanks collapsed, outer blanks and
-- semicolons trimmed: enough to find duplicates, never the text, which may
-- hold credentials) and the average duration of the last 20 finished runs of
-- the past 30 days.  pg_cron is looked up at call time: it may be created
-- before or after taskguard, or never (no rows).  @reboot jobs are left out:
-- they have no schedule to analyse.
CREATE FUNCTION taskguard._cron_jobs()
RETURNS TABLE (job text, schedule text, command_digest text, duration interval)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, taskguard, pg_temp
AS $$
DECLARE
    v_name    text := '''cron:'' || j.jobid';
    v_active  text := 'true';
    v_details text := 'SELECT NULL::bigint AS jobid, NULL::interval AS duration WHERE false';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n   -- to_regclass needs USAGE
                       WHERE n.nspname = 'cron' AND has_schema_privilege(n.oid, 'USAGE'))
       OR to_regclass('cron.job') IS NULL
       OR NOT has_table_privilege('cron.job', 'SELECT') THEN
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
        SELECT %s, j.schedule::text,
               md5(regexp_replace(btrim(j.command, E' \t\r\n;'), '\s+', ' ', 'g')),
               d.duration
        FROM cron.job j
        LEFT JOIN (%s) d ON d.jobid = j.jobid
        WHERE %s AND j.schedule !~ '^\s*@reboot\s*$' $q$, v_name, v_details, v_active);
END
$$;

-- Refuse a bad row with invalid_parameter_value, naming the column (and, for
-- the schedule, the cron field and the offending text).
CREATE OR REPLACE FUNCTION taskguard._schedule_validate()
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
    v_error := taskguard._cron_refusal(NEW.schedule);
    IF v_error IS NOT NULL THEN
        RAISE EXCEPTION 'invalid schedule for job "%": %', NEW.name, v_error
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A schedule is five fields (minute hour day-of-month month day-of-week), an @ form such as @daily, or ''N seconds'' with N from 1 to 59 (pg_cron 1.5 and later).';
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

-- Every job the analysis sees: taskguard.schedule, plus pg_cron's active jobs
-- (taskguard._cron_jobs(); their command is 'md5:<digest>').  duration is
-- expected_duration, or for pg_cron the average of recent runs; NULL when
-- unknown.  error: why the schedule is refused or never fires
-- (_schedule_problem).  @reboot jobs are left out.
CREATE OR REPLACE FUNCTION taskguard._schedule_jobs()
RETURNS TABLE (job text, schedule text, command text, duration interval,
               duration_from text, source text, error text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
AS $$
BEGIN
    RETURN QUERY
        SELECT s.name, s.schedule, s.command, s.expected_duration,
               CASE WHEN s.expected_duration IS NOT NULL THEN 'expected_duration' END,
               s.source, taskguard._schedule_problem(s.schedule)
        FROM taskguard.schedule s
        WHERE s.schedule !~ '^\s*@reboot\s*$';
    RETURN QUERY
        SELECT c.job, c.schedule, 'md5:' || c.command_digest, c.duration,
               CASE WHEN c.duration IS NOT NULL THEN 'average of recent runs' END,
               'pg_cron'::text, taskguard._schedule_problem(c.schedule)
        FROM taskguard._cron_jobs() c;
END
$$;

-- Problems: 'invalid' (a schedule this parser or the installed pg_cron
-- refuses, or one that never fires, such as "0 0 31 2 *"), 'duplicate' (the
-- same command, compared as digests with blanks collapsed and outer blanks
-- and semicolons trimmed, scheduled by an earlier job in name order) and
-- 'overlap' (runs last longer than the shortest gap between starts).
CREATE OR REPLACE FUNCTION taskguard.validate_schedules(check_duplicates boolean DEFAULT true)
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
        WINDOW w AS (PARTITION BY CASE WHEN j.source = 'pg_cron' AND j.command ~ '^md5:[0-9a-f]{32}$'
                                       THEN substr(j.command, 5)
                                       ELSE md5(regexp_replace(btrim(j.command, E' \t\r\n;'), '\s+', ' ', 'g'))
                                  END
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

-- The dashboard's health score, 0–100 (docs/observability.md): 100 minus
--   30 × min(1, dlq_depth / 100)                 open dead letters
--   15 × min(1, abandoned_24h / 50)              records given up on today
--   10 per open breaker, at most 20
--   15 × (100 − schedule_health) / 100
--   10 × min(1, idempotency_hit_rate_pct / 10)   duplicate submissions
--   10 × (100 − retry_success_pct) / 100         transient retries that fail
-- rounded, but 100 only when nothing costs (one open dead letter costs 0.3:
-- 99, not a perfect score) and 0 only when the penalties reach 100; a NULL
-- input (unknown) costs nothing.
CREATE OR REPLACE FUNCTION taskguard.health_score(dlq_depth bigint, abandoned_24h bigint,
    open_breakers int, schedule_health int, idempotency_hit_rate_pct numeric,
    retry_success_pct numeric DEFAULT NULL)
RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
SELECT CASE WHEN x.raw >= 100 THEN 100 WHEN x.raw <= 0 THEN 0
            ELSE least(99, greatest(1, round(x.raw)))::int END
  FROM (SELECT 100
    - 30 * least(1, coalesce(taskguard._check_health_input($1, 'dlq_depth', NULL), 0) / 100.0)
    - 15 * least(1, coalesce(taskguard._check_health_input($2, 'abandoned_24h', NULL), 0) / 50.0)
    - 10 * least(2, coalesce(taskguard._check_health_input($3, 'open_breakers', NULL), 0))
    - 15 * (100 - coalesce(taskguard._check_health_input($4, 'schedule_health', 100), 100)) / 100.0
    - 10 * least(1, coalesce(taskguard._check_health_input($5, 'idempotency_hit_rate_pct', 100), 0) / 10.0)
    - 10 * (100 - coalesce(taskguard._check_health_input($6, 'retry_success_pct', 100), 100)) / 100.0
    AS raw) x
$$;

CREATE OR REPLACE FUNCTION taskguard.prometheus_metrics()
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
      FROM taskguard.idempotency_stats i),
bt AS MATERIALIZED (SELECT * FROM taskguard._breaker_table())
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
  || taskguard._prom_family('circuit_breaker_failures', 'gauge',
      'Failures counted in the breaker''s current window, by service.',
      (SELECT string_agg(format(E'circuit_breaker_failures{service_name=%s} %s\n',
                                taskguard._prom_label(b.service), coalesce(b.failures, 0)),
                         '' ORDER BY b.service)
         FROM taskguard.breaker_status b))
  || taskguard._prom_family('taskguard_breaker_table_full_total', 'counter',
      'Circuit breaker allocations refused because taskguard.max_breakers was full (since the server started): failures not counted.',
      (SELECT format(E'taskguard_breaker_table_full_total %s\n', b.refused_full) FROM bt b))
  || taskguard._prom_family('taskguard_breaker_tenant_share_refused_total', 'counter',
      'Circuit breaker allocations refused because the tenant held its taskguard.breaker_tenant_share (since the server started).',
      (SELECT format(E'taskguard_breaker_tenant_share_refused_total %s\n', b.refused_share) FROM bt b))
  || taskguard._prom_family('taskguard_breaker_slots_used', 'gauge',
      'Circuit breaker slots of the cluster-wide table in use.',
      (SELECT format(E'taskguard_breaker_slots_used %s\n', b.in_use) FROM bt b))
  || taskguard._prom_family('taskguard_breaker_slots_max', 'gauge',
      'Circuit breaker slots of the cluster-wide table (taskguard.max_breakers).',
      (SELECT format(E'taskguard_breaker_slots_max %s\n', b.capacity) FROM bt b))
  || taskguard._prom_family('taskguard_tasks', 'gauge', 'Tasks by status (ready, running).',
      format(E'taskguard_tasks{status="ready"} %s\ntaskguard_tasks{status="running"} %s\n',
             h.ready, h.running))
  || taskguard._prom_family('taskguard_failures_last_hour', 'gauge',
      'Failed attempts in the last hour.', format(E'taskguard_failures_last_hour %s\n', h.failures_1h))
  || taskguard._prom_family('taskguard_abandoned_last_day', 'gauge',
      'Dead-letter records abandoned in the last 24 hours.',
      format(E'taskguard_abandoned_last_day %s\n', h.abandoned_24h))
  || taskguard._prom_family('taskguard_transient_retry_success_percent', 'gauge',
      'Share of concluded retried records of transient failure types that a retry recovered, in percent (NaN: none concluded).',
      format(E'taskguard_transient_retry_success_percent %s\n', taskguard._prom_value(h.retry_success_pct)))
  || taskguard._prom_family('taskguard_health_score', 'gauge',
      'The dashboard health score, 0-100.',
      format(E'taskguard_health_score %s\n',
             taskguard.health_score(h.dlq_depth, h.abandoned_24h, h.open_breakers,
                                    h.schedule_health, h.idempotency_hit_rate_pct,
                                    h.retry_success_pct)))
  || taskguard._prom_family('taskguard_retry_success_rate_percent', 'gauge',
      'Share of concluded retried records that a retry recovered, by retryable failure type, in percent (NaN: none concluded).',
      (SELECT string_agg(format(E'taskguard_retry_success_rate_percent{failure_type=%s} %s\n',
                                taskguard._prom_label(r.failure_type::text),
                                taskguard._prom_value(r.success_rate_pct)),
                         '' ORDER BY r.failure_type)
         FROM taskguard.retry_effectiveness r WHERE r.retryable))
  || taskguard._prom_family('taskguard_retry_in_progress', 'gauge',
      'Dead-letter records still being retried, by retryable failure type.',
      (SELECT string_agg(format(E'taskguard_retry_in_progress{failure_type=%s} %s\n',
                                taskguard._prom_label(r.failure_type::text), r.in_progress),
                         '' ORDER BY r.failure_type)
         FROM taskguard.retry_effectiveness r WHERE r.retryable))
  || taskguard._prom_family('taskguard_alert_active', 'gauge',
      'Alerts that are on (1), by alert and level.',
      (SELECT string_agg(format(E'taskguard_alert_active{alert=%s,level=%s} 1\n',
                                taskguard._prom_label(a.alert), taskguard._prom_label(a.level::text)),
                         '' ORDER BY a.alert)
         FROM taskguard.alerts a))
FROM h, idem
$$;

-- One row of inputs shared by the dashboard and the alerts.
CREATE OR REPLACE VIEW taskguard._health_inputs WITH (security_barrier = true) AS
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
       -- NULL only when no transient record concluded (no data): 0 when every
       -- retried record was abandoned, 100 when every one recovered
       round(100.0 * coalesce(dlq.t_recovered, 0)
             / nullif(coalesce(dlq.t_recovered, 0) + coalesce(dlq.t_exhausted, 0), 0), 2)
           AS retry_success_pct
  FROM dlq, recent, idem, tasks, breakers;

-- Per failure type, over the records still kept (RESOLVED ones go after
-- taskguard.dlq_retention): records whose retries concluded — recovered (a
-- retry succeeded) or exhausted (abandoned after at least one retry) — the
-- success rate, the average retries they took against the policy's
-- max_retries, records still retrying, and retries scheduled ever.
CREATE OR REPLACE VIEW taskguard.retry_effectiveness WITH (security_invoker = true) AS
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
       round(100.0 * coalesce(r.recovered, 0)
             / nullif(coalesce(r.recovered, 0) + coalesce(r.exhausted, 0), 0), 2)
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

-- Nothing for PUBLIC, as 90_access.sql leaves a fresh install.
REVOKE ALL ON FUNCTION taskguard._pg_cron_version() FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._cron_refusal(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._schedule_problem(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION taskguard._cron_jobs() FROM PUBLIC;

-- Roles granted a level under 0.1.0 get the new functions their level gives
-- (grant_access gives readers and admins every read-only function): those
-- that may run the schedule analysis.
DO $$
DECLARE
    v_role regrole;
BEGIN
    FOR v_role IN
        SELECT DISTINCT a.grantee::regrole
          FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
         WHERE n.nspname = 'taskguard' AND a.privilege_type = 'USAGE'
           AND a.grantee <> n.nspowner AND a.grantee <> 0
    LOOP
        IF pg_catalog.has_function_privilege(v_role, 'taskguard.schedule_health()', 'EXECUTE') THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION taskguard._pg_cron_version(), '
                           'taskguard._cron_refusal(text), taskguard._schedule_problem(text), '
                           'taskguard._cron_jobs() TO %s', v_role);
        END IF;
    END LOOP;
END
$$;
