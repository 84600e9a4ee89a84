-- 60_schedule.sql — schedules (docs/reference.md#schedule): the cron evaluator, the schedule
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

-- The shortest gap between consecutive runs over the month after from_ts.
CREATE FUNCTION taskguard._cron_period(expr text, from_ts timestamptz)
RETURNS interval
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskguard_cron_period';

-- Per bucket: jobs starting, jobs running (see cron_schedule.c).
CREATE FUNCTION taskguard._schedule_load_buckets(start timestamptz, bucket interval,
                                                 nbuckets int, schedules text[],
                                                 durations interval[])
RETURNS TABLE (bucket_start timestamptz, starting int, running int)
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'taskguard_schedule_load_buckets';

-- Greedy minute shifts that lower the peak (see cron_schedule.c).
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

CREATE TRIGGER schedule_validate
    BEFORE INSERT OR UPDATE ON taskguard.schedule
    FOR EACH ROW EXECUTE FUNCTION taskguard._schedule_validate();

-- ---------------------------------------------------------------- the jobs

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

-- Every job the analysis sees: taskguard.schedule, plus pg_cron's active jobs
-- (taskguard._cron_jobs(); their command is 'md5:<digest>').  duration is
-- expected_duration, or for pg_cron the average of recent runs; NULL when
-- unknown.  error: why the schedule is refused or never fires
-- (_schedule_problem).  @reboot jobs are left out.
CREATE FUNCTION taskguard._schedule_jobs()
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

-- Problems: 'invalid' (a schedule this parser or the installed pg_cron
-- refuses, or one that never fires, such as "0 0 31 2 *"), 'duplicate' (the
-- same command, compared as digests with blanks collapsed and outer blanks
-- and semicolons trimmed, scheduled by an earlier job in name order) and
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
