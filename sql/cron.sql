-- cron: the parser and evaluator (cron_next, cron_occurrences), docs/reference.md#schedule.
-- The known answers below were cross-checked with an independent brute-force
-- evaluator (minute by minute over Python's datetime, pg_cron's rules).
\set VERBOSITY terse
SET timezone = 'UTC';
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
    EXECUTE sql INTO r;
    RETURN 'ok: ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- known answers: steps, ranges, lists, names, 0/7 Sunday, month ends, leap
-- years (2000 yes, 2100 no), the OR rule, @ forms, year rollover, 'N seconds'
WITH cases(expr, after, expected) AS (VALUES
    ('* * * * *', '2026-01-01 00:00:00+00', '2026-01-01 00:01:00+00'),
    ('* * * * *', '2026-01-01 00:00:30+00', '2026-01-01 00:01:00+00'),
    ('*/15 * * * *', '2026-03-10 10:07:00+00', '2026-03-10 10:15:00+00'),
    ('*/15 * * * *', '2026-03-10 10:45:00+00', '2026-03-10 11:00:00+00'),
    ('5-20/5 * * * *', '2026-03-10 10:20:00+00', '2026-03-10 11:05:00+00'),
    ('0,30 * * * *', '2026-03-10 10:00:00+00', '2026-03-10 10:30:00+00'),
    ('1-5 * * * *', '2026-03-10 10:05:00+00', '2026-03-10 11:01:00+00'),
    ('0 */6 * * *', '2026-03-10 19:00:00+00', '2026-03-11 00:00:00+00'),
    ('30 9-17 * * *', '2026-03-10 17:30:00+00', '2026-03-11 09:30:00+00'),
    ('0 9 * * mon-fri', '2026-03-13 10:00:00+00', '2026-03-16 09:00:00+00'),
    ('0 9 * * MON', '2026-03-13 10:00:00+00', '2026-03-16 09:00:00+00'),
    ('0 9 * * Sun', '2026-03-13 10:00:00+00', '2026-03-15 09:00:00+00'),
    ('0 9 * * 0', '2026-03-13 10:00:00+00', '2026-03-15 09:00:00+00'),
    ('0 9 * * 7', '2026-03-13 10:00:00+00', '2026-03-15 09:00:00+00'),
    ('0 12 * * 7', '2026-03-15 12:00:00+00', '2026-03-22 12:00:00+00'),
    ('0 0 * * 1-5', '2026-01-02 12:00:00+00', '2026-01-05 00:00:00+00'),
    ('0 0 * * */2', '2026-01-01 00:00:00+00', '2026-01-03 00:00:00+00'),
    ('0 0 1 * *', '2026-01-31 00:00:00+00', '2026-02-01 00:00:00+00'),
    ('0 0 31 * *', '2026-01-31 00:00:00+00', '2026-03-31 00:00:00+00'),
    ('0 0 31 */2 *', '2026-07-31 00:00:00+00', '2027-01-31 00:00:00+00'),
    ('0 0 1,15 * *', '2026-01-15 00:00:00+00', '2026-02-01 00:00:00+00'),
    ('0 0 28-31 2 *', '2026-02-28 00:00:00+00', '2027-02-28 00:00:00+00'),
    ('0 0 29 2 *', '2026-01-01 00:00:00+00', '2028-02-29 00:00:00+00'),
    ('0 0 29 2 *', '2000-01-01 00:00:00+00', '2000-02-29 00:00:00+00'),
    ('0 0 29 2 *', '2096-03-01 00:00:00+00', '2104-02-29 00:00:00+00'),
    ('0 0 30 2 1', '2026-01-01 00:00:00+00', '2026-02-02 00:00:00+00'),
    ('0 0 29 2 1', '2028-02-27 00:00:00+00', '2028-02-28 00:00:00+00'),
    ('0 0 13 * 5', '2026-01-01 00:00:00+00', '2026-01-02 00:00:00+00'),
    ('0 0 */2 * 2', '2026-01-01 00:00:00+00', '2026-01-13 00:00:00+00'),
    ('0 0 1 * sat', '2026-01-01 00:00:00+00', '2026-01-03 00:00:00+00'),
    ('0 0 * jan,jul *', '2026-02-01 00:00:00+00', '2026-07-01 00:00:00+00'),
    ('0 12 1 JUN-aug *', '2026-08-02 00:00:00+00', '2027-06-01 12:00:00+00'),
    ('59 23 31 12 *', '2026-12-31 23:59:00+00', '2027-12-31 23:59:00+00'),
    ('0 0 1 1 *', '2026-01-01 00:00:00+00', '2027-01-01 00:00:00+00'),
    ('@hourly', '2026-03-10 10:59:59+00', '2026-03-10 11:00:00+00'),
    ('@daily', '2026-12-31 12:00:00+00', '2027-01-01 00:00:00+00'),
    ('@midnight', '2026-12-31 12:00:00+00', '2027-01-01 00:00:00+00'),
    ('@weekly', '2026-01-01 00:00:00+00', '2026-01-04 00:00:00+00'),
    ('@monthly', '2026-12-15 00:00:00+00', '2027-01-01 00:00:00+00'),
    ('@yearly', '2026-06-01 00:00:00+00', '2027-01-01 00:00:00+00'),
    ('@annually', '2026-06-01 00:00:00+00', '2027-01-01 00:00:00+00'),
    ('30 seconds', '2026-01-01 00:00:10+00', '2026-01-01 00:00:30+00'),
    ('30 seconds', '2026-01-01 00:00:30+00', '2026-01-01 00:01:00+00'),
    ('7 seconds', '2026-01-01 00:00:00+00', '2026-01-01 00:00:07+00'),
    ('1 second', '2026-01-01 00:00:00+00', '2026-01-01 00:00:01+00'),
    (' 0  12 * * * ', '2026-01-01 12:00:00+00', '2026-01-02 12:00:00+00'),
    ('0 0 * * *', '1999-12-31 23:59:59+00', '2000-01-01 00:00:00+00'))
SELECT expr, after, taskguard.cron_next(expr, after::timestamptz) AS next,
       taskguard.cron_next(expr, after::timestamptz) = expected::timestamptz AS ok
FROM cases;

-- strictly after, with sub-second precision
SELECT taskguard.cron_next('0 0 1 1 *', '2025-12-31 23:59:59.999999+00') AS just_before,
       taskguard.cron_next('0 0 1 1 *', '2026-01-01 00:00:00+00') AS exactly_on,
       taskguard.cron_next('0 0 1 1 *', '2026-01-01 00:00:00.000001+00') AS just_after,
       taskguard.cron_next('30 seconds', '2026-01-01 00:00:29.5+00') AS seconds_form;
-- UTC whatever the session time zone
SET timezone = 'America/New_York';
SELECT taskguard.cron_next('0 9 * * *', '2026-07-01 12:00:00+00') AT TIME ZONE 'UTC' AS nine_utc;
SET timezone = 'UTC';
-- the default is now()
SELECT taskguard.cron_next('* * * * *') > now() AND
       taskguard.cron_next('* * * * *') <= now() + interval '1 minute' AS default_now;
-- NULL in, NULL out (STRICT)
SELECT taskguard.cron_next(NULL) IS NULL AS null_expr,
       taskguard.cron_next('* * * * *', NULL) IS NULL AS null_after;
-- past the end of the timestamp range there is no next occurrence
SELECT taskguard.cron_next('* * * * *', '294276-12-31 23:59:00+00') IS NULL AS end_of_time,
       taskguard.cron_next('* * * * *', '4713-01-01 00:00:00+00 BC') AS start_of_time;
-- infinite timestamps are refused
SELECT pg_temp.try($$SELECT taskguard.cron_next('* * * * *', 'infinity')$$);
SELECT pg_temp.try($$SELECT taskguard.cron_next('* * * * *', '-infinity')$$);

-- every malformed form is refused with invalid_parameter_value (22023),
-- naming the field and the offending text
WITH bad(expr) AS (VALUES
    (''),
    ('   '),
    ('* * * *'),
    ('* * * * * *'),
    ('60 * * * *'),
    ('* 24 * * *'),
    ('* * 0 * *'),
    ('* * 32 * *'),
    ('* * * 13 *'),
    ('* * * 0 *'),
    ('* * * * 8'),
    ('10-5 * * * *'),
    ('* * * * fri-mon'),
    ('*/0 * * * *'),
    ('*/ * * * *'),
    ('5/15 * * * *'),
    ('a * * * *'),
    ('jan * * * *'),
    ('* * * foo *'),
    ('* * * * monday'),
    ('* * * * mon-'),
    (',5 * * * *'),
    ('5,,6 * * * *'),
    ('5, * * * *'),
    ('-5 * * * *'),
    ('1.5 * * * *'),
    ('99999999999 * * * *'),
    ('@foo'),
    ('@'),
    ('@daily extra'),
    ('@DAILY'),
    ('@Hourly'),
    ('60 seconds'),
    ('0 seconds'),
    ('-5 seconds'),
    ('5 minutes'),
    ('* * * * * # comment'),
    ('0 0 L * *'),
    ('0 0 ? * *'),
    ('0 12 * * 1#2'),
    ('0 0 1W * *'),
    ('é * * * *'))
SELECT expr, pg_temp.try(format('SELECT taskguard.cron_next(%L, %L)', expr, '2026-01-01')) AS result
FROM bad;
-- accepted, as pg_cron accepts them, with no next occurrence: schedules no
-- date matches, and @reboot
SELECT expr, taskguard.cron_next(expr, '2026-01-01') IS NULL AS no_next,
       (SELECT count(*) FROM taskguard.cron_occurrences(expr, '2000-01-01', '2400-01-01')) AS in_400_years
FROM (VALUES ('0 0 30 2 *'), ('0 0 31 2 *'), ('0 0 31 4 *'), ('0 0 31 2,4,6 *'), ('@reboot')) v(expr);
-- bounded length: 1000 bytes pass, 1001 and 10 MB are refused
SELECT pg_temp.try(format('SELECT taskguard.cron_next(%L, %L)', rpad('0 0 * * *', 1000), '2026-01-01'));
SELECT pg_temp.try(format('SELECT taskguard.cron_next(%L, %L)', rpad('0 0 * * *', 1001), '2026-01-01'));
SELECT pg_temp.try($$SELECT taskguard.cron_next(repeat('*', 10000000), '2026-01-01')$$);
SELECT pg_temp.try($$SELECT taskguard.cron_next(repeat('* ', 5000000), '2026-01-01')$$);

-- cron_occurrences: from_ts <= t < to_ts
SELECT * FROM taskguard.cron_occurrences('0 */6 * * *', '2026-01-01 00:00+00', '2026-01-02 00:00+00');
SELECT count(*) AS per_minute_day FROM taskguard.cron_occurrences('* * * * *', '2026-01-01', '2026-01-02');
SELECT count(*) AS feb29_in_century FROM taskguard.cron_occurrences('0 0 29 2 *', '2000-01-01', '2100-12-31');
SELECT count(*) AS mondays_2026 FROM taskguard.cron_occurrences('0 0 * * mon', '2026-01-01', '2027-01-01');
SELECT count(*) AS fridays_13th_or FROM taskguard.cron_occurrences('0 0 13 * 5', '2026-01-01', '2027-01-01');
SELECT count(*) AS every_5s_hour FROM taskguard.cron_occurrences('5 seconds', '2026-01-01 00:00', '2026-01-01 01:00');
SELECT count(*) AS empty_range FROM taskguard.cron_occurrences('* * * * *', '2026-01-01', '2026-01-01');
-- each occurrence agrees with cron_next
SELECT count(*) FILTER (WHERE taskguard.cron_next('*/7 9-17 * * mon-fri', t) <> nxt) AS disagreements,
       count(*) AS pairs
FROM (SELECT t, lead(t) OVER (ORDER BY t) AS nxt
      FROM taskguard.cron_occurrences('*/7 9-17 * * mon-fri', '2026-03-01', '2026-03-08') t) s
WHERE nxt IS NOT NULL;
-- bad input
SELECT count(*) AS null_expr FROM taskguard.cron_occurrences(NULL, '2026-01-01', '2026-01-02');
SELECT count(*) AS null_to FROM taskguard.cron_occurrences('* * * * *', '2026-01-01', NULL);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.cron_occurrences('* * * * *', '2026-01-02', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.cron_occurrences('* * * * *', '2026-01-01', 'infinity')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.cron_occurrences('* * * * *', '-infinity', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.cron_occurrences('61 * * * *', '2026-01-01', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.cron_occurrences('', '2026-01-01', '2026-01-02')$$);
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.cron_occurrences(repeat('1', 10485760), '2026-01-01', '2026-01-02')$$);
SELECT count(*) AS near_the_end FROM taskguard.cron_occurrences('0 0 * * *', '294276-12-25', '294276-12-31 23:59:59');
-- more than 1,000,000 rows is refused (a year of minutes is 525,600: allowed)
SELECT count(*) AS year_of_minutes FROM taskguard.cron_occurrences('* * * * *', '2026-01-01', '2027-01-01');
SELECT pg_temp.try($$SELECT count(*) FROM taskguard.cron_occurrences('* * * * *', '2026-01-01', '2028-01-01')$$);
