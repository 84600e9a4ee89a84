-- 80_metrics.sql — the rollups behind the dashboards (docs/reference.md#observability): small tables
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
-- Backups: the rollups and the deltas are dumped with the extension's data
-- and restored as they were; the insert triggers below do not fire while a
-- dump loads (the WHEN clause: see 02_backup.sql), or the restored records
-- and events would be counted a second time.
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
SELECT pg_catalog.pg_extension_config_dump('taskguard.dlq_rollup', '');

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
SELECT pg_catalog.pg_extension_config_dump('taskguard.dlq_delta', '');

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
SELECT pg_catalog.pg_extension_config_dump('taskguard.failure_hourly', '');
-- a tenant-bound reader's hours (_failure_hours, failure_trend)
CREATE INDEX failure_hourly_tenant_idx ON taskguard.failure_hourly (tenant, bucket) WHERE NOT all_tenants;

-- Failed attempts and abandoned records per minute, for the dashboard's
-- 1-hour and 24-hour windows; kept 25 hours.
CREATE TABLE taskguard.activity_minute (
    minute    timestamptz NOT NULL,
    tenant    text NOT NULL,
    failures  bigint NOT NULL DEFAULT 0,
    abandoned bigint NOT NULL DEFAULT 0,        -- records that became ABANDONED
    PRIMARY KEY (minute, tenant)
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.activity_minute', '');
-- a tenant-bound reader's last 24 hours, whatever the other tenants did
CREATE INDEX activity_minute_tenant_idx ON taskguard.activity_minute (tenant, minute);

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
SELECT pg_catalog.pg_extension_config_dump('taskguard.failure_total', '');

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
SELECT pg_catalog.pg_extension_config_dump('taskguard.event_delta', '');

-- Every tenant the rollups have seen, so that a view asks
-- taskguard._tenant_visible() once per tenant, not once per rollup row.
-- The triggers add new tenants (a known one costs an index probe).
CREATE TABLE taskguard.metric_tenant (
    tenant text PRIMARY KEY
);
SELECT pg_catalog.pg_extension_config_dump('taskguard.metric_tenant', '');

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
    FOR EACH STATEMENT
    WHEN (pg_catalog.current_setting('search_path') NOT IN ('', '""')
          OR pg_catalog.current_setting('check_function_bodies')::boolean)
    EXECUTE FUNCTION taskguard._dlq_rollup_trigger();
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
    FOR EACH STATEMENT
    WHEN (pg_catalog.current_setting('search_path') NOT IN ('', '""')
          OR pg_catalog.current_setting('check_function_bodies')::boolean)
    EXECUTE FUNCTION taskguard._event_rollup_trigger();
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
    v_n int;
BEGIN
    v_n := taskguard._rollup_dlq(batch) + taskguard._rollup_events(batch);
    v_n := v_n + taskguard._delete_batch('taskguard.activity_minute', 'x.minute < $1', batch,
                     skip_locked => false, arg1 => now() - interval '25 hours');
    RETURN v_n + taskguard._delete_batch('taskguard.failure_hourly', 'x.bucket < $1', batch,
                     skip_locked => false,
                     arg1 => now() - taskguard._setting_interval('taskguard.event_retention', '30 days')
                           - interval '1 hour');
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

-- The tenants ('' = none) whose rows the caller may see: every one for an
-- unbound caller, else the caller's, looked up by key (a tenant-bound reader
-- pays for its own tenants, not for the thousand others); one-time filters
-- pick the branch.
CREATE VIEW taskguard._visible_tenants AS
SELECT m.tenant FROM taskguard.metric_tenant m
 WHERE taskguard._tenant_scope() IS NULL
UNION ALL
SELECT m.tenant FROM taskguard.metric_tenant m
 WHERE m.tenant = ANY (taskguard._tenant_scope()) AND taskguard._tenant_visible(nullif(m.tenant, ''));

-- One row: does the caller see every tenant (then the all_tenants rows serve)?
CREATE VIEW taskguard._tenant_scope AS
SELECT NOT EXISTS (SELECT 1 FROM taskguard.metric_tenant m
                    WHERE NOT taskguard._tenant_visible(nullif(m.tenant, ''))) AS all_visible;

-- Rollup plus pending deltas, filtered to the caller's tenants.  The
-- dashboards read these, never the base tables.  One-time filters on the
-- caller's scope pick the branches: an unbound caller reads every row (row
-- security lets it), a tenant-bound one its tenants' rows by key — the
-- primary keys of dlq_rollup and failure_total and failure_hourly_tenant_idx
-- — so that it pays for its own tenants, not for the thousand others' rows
-- (issue 24; joining the rollup to _visible_tenants read every tenant's rows
-- and threw the others' away).  Row security filters every branch as well.
CREATE VIEW taskguard._dlq_counts AS
SELECT s.tenant, s.status, s.failure_type, s.by_retry,
       sum(s.records)::bigint AS records, sum(s.retried)::bigint AS retried,
       sum(s.retry_sum)::bigint AS retry_sum, sum(s.confidence_sum) AS confidence_sum
  FROM (SELECT r.tenant, r.status, r.failure_type, r.by_retry, r.records, r.retried,
               r.retry_sum, r.confidence_sum
          FROM taskguard.dlq_rollup r WHERE taskguard._tenant_scope() IS NULL
        UNION ALL
        SELECT r.tenant, r.status, r.failure_type, r.by_retry, r.records, r.retried,
               r.retry_sum, r.confidence_sum
          FROM taskguard.dlq_rollup r WHERE r.tenant = ANY (taskguard._tenant_scope())
        UNION ALL
        SELECT d.tenant, d.status, d.failure_type, d.by_retry, d.records, d.retried,
               d.retry_sum, d.confidence_sum
          FROM taskguard.dlq_delta d
         WHERE taskguard._tenant_scope() IS NULL OR d.tenant = ANY (taskguard._tenant_scope())) s
 GROUP BY 1, 2, 3, 4
HAVING sum(s.records) <> 0;

-- The caller's totals: the all_tenants rows for an unbound caller; a
-- tenant-bound one sums its tenants' rows, even when they are every tenant
-- there is (row security hides the all_tenants rows, tenant '', from it: the
-- branch by "sees every tenant" (_tenant_scope) gave it no rows at all).
CREATE VIEW taskguard._failure_totals AS
SELECT s.task_name, s.failure_type, s.priority,
       sum(s.failures)::bigint AS failures, sum(s.retries)::bigint AS retries,
       sum(s.retry_sum)::bigint AS retry_sum, sum(s.abandons)::bigint AS abandons,
       sum(s.abandoned)::bigint AS abandoned
  FROM (SELECT t.task_name, t.failure_type, t.priority, t.failures, t.retries,
               t.retry_sum, t.abandons, t.abandoned
          FROM taskguard.failure_total t
         WHERE t.all_tenants AND taskguard._tenant_scope() IS NULL
        UNION ALL
        SELECT t.task_name, t.failure_type, t.priority, t.failures, t.retries,
               t.retry_sum, t.abandons, t.abandoned
          FROM taskguard.failure_total t
         WHERE NOT t.all_tenants AND taskguard._tenant_scope() IS NOT NULL
           AND t.tenant = ANY (taskguard._tenant_scope())
        UNION ALL
        SELECT d.task_name, d.failure_type, d.priority, d.failures, d.retries,
               d.retry_sum, d.abandons, d.abandoned
          FROM taskguard.event_delta d
         WHERE taskguard._tenant_scope() IS NULL OR d.tenant = ANY (taskguard._tenant_scope())) s
 GROUP BY 1, 2, 3;

-- The caller's failed attempts per hour and type.
CREATE VIEW taskguard._failure_hours AS
SELECT s.bucket, s.failure_type,
       sum(s.failures)::bigint AS failures, sum(s.retries)::bigint AS retries,
       sum(s.abandons)::bigint AS abandons
  FROM (SELECT h.bucket, h.failure_type, h.failures, h.retries, h.abandons
          FROM taskguard.failure_hourly h
         WHERE h.all_tenants AND taskguard._tenant_scope() IS NULL
        UNION ALL
        SELECT h.bucket, h.failure_type, h.failures, h.retries, h.abandons
          FROM taskguard.failure_hourly h
         WHERE NOT h.all_tenants AND taskguard._tenant_scope() IS NOT NULL
           AND h.tenant = ANY (taskguard._tenant_scope())
        UNION ALL
        SELECT date_trunc('hour', d.minute), d.failure_type, d.failures, d.retries, d.abandons
          FROM taskguard.event_delta d
         WHERE d.failures > 0
           AND (taskguard._tenant_scope() IS NULL OR d.tenant = ANY (taskguard._tenant_scope()))) s
 GROUP BY 1, 2;
