-- schedule: the schedule table, schedule_load, hotspots, health, suggestions
-- and validation (docs/reference.md#schedule).  No pg_cron in this database: only
-- taskguard.schedule is analysed (test/t/schedule_pg_cron.sh covers cron.job).
\set VERBOSITY terse
SET timezone = 'UTC';
SET taskguard.worker_capacity = 4;
SET jit = off;  -- the SQL cross-check below is cheap but costed high
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE sql INTO r;
    RETURN 'ok: ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- nothing scheduled: no load, full health, nothing to suggest
SELECT count(*) AS buckets, max(running) AS peak FROM taskguard.schedule_load();
SELECT * FROM taskguard.schedule_health();
SELECT count(*) AS suggestions FROM taskguard.schedule_suggestions();

-- the validating trigger names the field (and the cron field and text)
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('x', '61 * * * *', 'SELECT 1') RETURNING name$$);
-- a schedule that never fires is stored (pg_cron accepts it too) and the
-- analysis reports it as invalid, naming the fields; @reboot is stored and
-- left out of the analysis; without pg_cron in the database the seconds form
-- is accepted (test/t/cron_agreement.sh covers pg_cron 1.4)
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('x', '0 0 30 2 *', 'SELECT 1') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('boot', '@reboot', 'SELECT 2') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('tick', '30 seconds', 'SELECT 3') RETURNING name$$);
SELECT * FROM taskguard.validate_schedules();
SELECT score, invalid FROM taskguard.schedule_health();
DELETE FROM taskguard.schedule WHERE name IN ('x', 'boot', 'tick');
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('x', '', 'SELECT 1') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('x', NULL, 'SELECT 1') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('x', repeat('* ', 5000000), 'SELECT 1') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES (NULL, '* * * * *', 'SELECT 1') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('  ', '* * * * *', 'SELECT 1') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES (repeat('n', 10000000), '* * * * *', 'SELECT 1') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('x', '* * * * *', '') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('x', '* * * * *', NULL) RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command, expected_duration) VALUES ('x', '* * * * *', 'SELECT 1', '0') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command, expected_duration) VALUES ('x', '* * * * *', 'SELECT 1', '-5 minutes') RETURNING name$$);
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command, source) VALUES ('x', '* * * * *', 'SELECT 1', '') RETURNING name$$);
-- a huge command is stored; updates are validated too
SELECT pg_temp.try($$INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('huge', '0 3 * * *', repeat('x', 10000000)) RETURNING name$$);
SELECT pg_temp.try($$UPDATE taskguard.schedule SET schedule = '0 3 * * 8' WHERE name = 'huge' RETURNING name$$);
DELETE FROM taskguard.schedule;

-- six hourly jobs at :00 on capacity 4: a hotspot every hour
INSERT INTO taskguard.schedule (name, schedule, command)
SELECT 'hourly_' || i, CASE WHEN i = 6 THEN '@hourly' ELSE '0 * * * *' END, 'SELECT ' || i
FROM generate_series(1, 6) i;
SELECT count(*) AS buckets,
       min(bucket_start) = date_bin('1 minute', now(), timestamptz 'epoch') AS aligned,
       max(bucket_start) - min(bucket_start) AS span,
       sum(starting) AS starts, max(running) AS peak, max(utilization) AS max_utilization,
       count(*) FILTER (WHERE hotspot) AS hotspots,
       bool_and(hotspot = (extract(minute FROM bucket_start) = 0)) AS hot_exactly_at_00
FROM taskguard.schedule_load();
SELECT count(*) AS hotspot_rows, min(utilization) AS u, min(running) AS running, min(starting) AS starting,
       bool_and(cardinality(jobs) = running) AS jobs_listed, min(jobs::text) AS jobs
FROM taskguard.schedule_hotspots;
-- other bucket sizes and capacities; utilization is not clamped
SELECT count(*) AS hour_buckets, min(running) AS min_running, max(utilization) AS u
FROM taskguard.schedule_load('24 hours', '1 hour');
SELECT count(*) FILTER (WHERE hotspot) AS hot_on_10 FROM taskguard.schedule_load(capacity => 10);
SELECT count(*) FILTER (WHERE hotspot) AS hot_on_1, max(utilization) AS u
FROM taskguard.schedule_load(capacity => 1);
SELECT count(*) AS week_buckets FROM taskguard.schedule_load('7 days', '5 minutes');
-- the GUC is the default capacity
SET taskguard.worker_capacity = 8;
SELECT max(utilization) AS u_on_8, count(*) FILTER (WHERE hotspot) AS hot_on_8 FROM taskguard.schedule_load();
SET taskguard.worker_capacity = 4;
SELECT * FROM taskguard.schedule_health();

-- suggestions spread them: each keeps the hour field, lowers the peak, and
-- the last one ends the hotspot
SELECT job, current_schedule, suggested_schedule, peak_before, peak_after,
       peak_after < peak_before AS lowers
FROM taskguard.schedule_suggestions();
-- applying them removes every hotspot
UPDATE taskguard.schedule s SET schedule = g.suggested_schedule
FROM taskguard.schedule_suggestions() g WHERE g.job = s.name;
SELECT max(running) AS peak, count(*) FILTER (WHERE hotspot) AS hotspots FROM taskguard.schedule_load();
SELECT * FROM taskguard.schedule_health();
SELECT count(*) AS suggestions_left FROM taskguard.schedule_suggestions();
SELECT name, taskguard._cron_period(schedule, now()) AS period FROM taskguard.schedule ORDER BY name;

-- a duplicate command (blanks and a trailing semicolon ignored)
INSERT INTO taskguard.schedule (name, schedule, command) VALUES ('zz_copy', '0 4 * * *', E'  SELECT\t 3 ;');
-- overlaps: runs longer than the period (the second one is not)
INSERT INTO taskguard.schedule (name, schedule, command, expected_duration) VALUES
    ('refresh', '*/10 * * * *', 'REFRESH MATERIALIZED VIEW mv', '15 minutes'),
    ('report', '0 9-17 * * mon-fri', 'SELECT report()', '90 minutes'),
    ('vacuum', '0 2 * * *', 'VACUUM', '30 minutes');
SELECT * FROM taskguard.validate_schedules();
SELECT * FROM taskguard.validate_schedules(check_duplicates => false);
SELECT count(*) AS null_means_true FROM taskguard.validate_schedules(NULL);
-- (how many buckets are hot now depends on the time of day: check the formula)
SELECT duplicates, "overlaps", invalid, hotspots > 0 AS hot,
       score = greatest(0, 100 - (10 + round(40.0 * hotspots / 1440)::int) - 10 - 20) AS formula
FROM taskguard.schedule_health();
SELECT count(*) > 0 AS some_hot, bool_and(cardinality(jobs) = running) AS jobs_match_running
FROM taskguard.schedule_hotspots;
-- the C pass agrees with the same counts computed set-based in SQL (runs
-- that started before the window included), in 1-minute, 7-minute and 1-hour buckets
CREATE FUNCTION pg_temp.sql_load(bucket interval) RETURNS TABLE (b timestamptz, starting bigint, running bigint)
LANGUAGE sql AS $$
    -- the last bucket is whole: the window ends at start + ceil(24 h / bucket) buckets
    WITH w AS (SELECT s, s + bucket * ceil(86400 / extract(epoch FROM bucket))::int AS e
               FROM date_bin(bucket, now(), timestamptz 'epoch') s),
    jobs AS (SELECT name, schedule, coalesce(expected_duration, '1 minute') AS d FROM taskguard.schedule),
    runs AS (SELECT j.name, t, j.d
             FROM w, jobs j, taskguard.cron_occurrences(j.schedule, w.s - j.d, w.e) t),
    cover AS (SELECT DISTINCT r.name, gs AS b
              FROM w, runs r, generate_series(date_bin(bucket, r.t, timestamptz 'epoch'),
                                              r.t + r.d - interval '1 microsecond', bucket) gs
              WHERE gs >= w.s AND gs < w.e),
    starts AS (SELECT DISTINCT r.name, date_bin(bucket, r.t, timestamptz 'epoch') AS b
               FROM w, runs r WHERE r.t >= w.s),
    buckets AS (SELECT generate_series(w.s, w.s + interval '24 hours' - interval '1 microsecond', bucket) AS b FROM w),
    sc AS (SELECT b, count(*) AS n FROM starts GROUP BY b),
    cc AS (SELECT b, count(*) AS n FROM cover GROUP BY b)
    SELECT k.b, coalesce(sc.n, 0), coalesce(cc.n, 0)
    FROM buckets k LEFT JOIN sc ON sc.b = k.b LEFT JOIN cc ON cc.b = k.b
$$;
SELECT bucket, (SELECT count(*) FROM (
          (SELECT bucket_start, starting::bigint, running::bigint FROM taskguard.schedule_load('24 hours', bucket)
           EXCEPT SELECT * FROM pg_temp.sql_load(bucket))
          UNION ALL
          (SELECT * FROM pg_temp.sql_load(bucket)
           EXCEPT SELECT bucket_start, starting, running FROM taskguard.schedule_load('24 hours', bucket))) d) AS differences
FROM (VALUES (interval '1 minute'), (interval '7 minutes'), (interval '1 hour')) v(bucket);
-- a job counts once per bucket however often it fires, and in every bucket
-- its runs overlap
SELECT min(running) AS min_running FROM taskguard.schedule_load();
INSERT INTO taskguard.schedule (name, schedule, command, expected_duration)
VALUES ('ticker', '1 second', 'SELECT tick()', '1 second');
SELECT min(running) AS min_running, min(starting) AS min_starting,
       bool_and(starting >= 1) AS ticker_starts_everywhere FROM taskguard.schedule_load();
SELECT count(*) AS buckets_one_second FROM taskguard.schedule_load('1 minute', '1 second');
DELETE FROM taskguard.schedule WHERE name IN ('ticker', 'refresh', 'report', 'zz_copy');
SELECT count(*) FILTER (WHERE running >= 1) AS vacuum_minutes
FROM taskguard.schedule_load() WHERE extract(hour FROM bucket_start) = 2;

-- bad input to schedule_load
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load(NULL)$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('24 hours', NULL)$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('0')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('-1 hour')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('24 hours', '0')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('24 hours', '-1 minute')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('1 year', '1 month')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('24 hours', '1 minute', 0)$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('24 hours', '1 minute', -3)$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('100000 minutes', '1 minute')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('100001 minutes', '1 minute')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('178000000 years', '1 microsecond')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('1 day', '1 microsecond')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('1 day', '100000000 days')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.schedule_load('1 day', '2000 days')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard._schedule_load_buckets('294276-06-01', '1 minute', 1440, '{"* * * * *"}', '{"1 hour"}')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard._schedule_load_buckets('4713-01-02 BC', '1 minute', 1440, '{"* * * * *"}', '{"1 hour"}')$$);
-- the internal functions defend themselves too
SELECT pg_temp.try($$SELECT count(*) FROM taskguard._schedule_load_buckets(now(), '1 minute', 0, '{}', '{}')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard._schedule_load_buckets('infinity', '1 minute', 10, '{}', '{}')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard._schedule_load_buckets(now(), '1 minute', 10, '{"* * * * *"}', '{}')$$);
SELECT pg_temp.try($$SELECT sum(running) FROM taskguard._schedule_load_buckets(now(), '1 minute', 10, '{"* * * * *",NULL,"bad"}', '{NULL,NULL,"1000000 years"}')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard._schedule_suggest(now(), 10, 0, '{}', '{}')$$);
-- suggestions render the other fields with single blanks, @ forms as five fields,
-- suggestions render the other fields with single blanks, @ forms as five fields,
SELECT step, job, suggested, peak_before, peak_after
FROM taskguard._schedule_suggest(date_bin('1 minute', now(), timestamptz 'epoch'), 1440, 1,
       ARRAY[E' 0\t*\x0b*  *\n*', '@hourly', '*/20 * * * *', '*/20 * * * *'], '{NULL,NULL,NULL,NULL}');
SELECT pg_temp.try($$SELECT taskguard._cron_error(repeat('x', 10000000))$$);
SELECT taskguard._cron_error('0 * * * *') IS NULL AS valid, taskguard._cron_period('bad', now()) IS NULL AS no_period,
       taskguard._cron_period('@weekly', now()) AS weekly_period,
       taskguard._cron_period('0 0 29 2 *', now()) IS NULL AS leap_period_unknown,
       taskguard._cron_period('*/20 * * * *', 'infinity') IS NULL AS infinite_from;

DELETE FROM taskguard.schedule;
