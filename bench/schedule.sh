#!/usr/bin/env bash
# bench/schedule.sh — schedule_load (C, one pass per job over the buckets)
# against the same per-bucket counts computed set-based in SQL from
# cron_occurrences, on 300 jobs over 24 hours of one-minute buckets; plus
# schedule_health, validate_schedules and schedule_suggestions on that set.
# Everything runs in one transaction that is rolled back.
set -euo pipefail
psql -X -q -At -d taskguard -v ON_ERROR_STOP=1 <<'SQL'
BEGIN;
SET LOCAL taskguard.worker_capacity = 64;
SET LOCAL jit = off;  -- JIT compile time would swamp the SQL baseline
INSERT INTO taskguard.schedule (name, schedule, command, expected_duration)
SELECT 'bench_' || lpad(i::text, 3, '0'),
       CASE i % 6
         WHEN 0 THEN (i % 60) || ' * * * *'
         WHEN 1 THEN '*/' || (5 + i % 26) || ' * * * *'
         WHEN 2 THEN (i % 60) || ' ' || (i % 24) || ' * * *'
         WHEN 3 THEN '0 * * * *'
         WHEN 4 THEN '*/15 9-17 * * *'
         ELSE '@hourly' END,
       'SELECT ' || i,
       CASE WHEN i % 3 = 0 THEN NULL ELSE make_interval(secs => 30 + (i * 37) % 600) END
FROM generate_series(1, 300) i;

-- best of 5 runs, in ms
CREATE FUNCTION pg_temp.best_ms(q text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; best numeric := 1e9;
BEGIN
    FOR i IN 1..5 LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
    RETURN round(best, 1);
END $$;

-- the SQL baseline: every run expanded into the buckets it overlaps
CREATE FUNCTION pg_temp.sql_load() RETURNS TABLE (b timestamptz, running bigint) LANGUAGE sql AS $$
    WITH w AS (SELECT date_bin('1 minute', now(), timestamptz 'epoch') AS s),
    jobs AS (SELECT name, schedule, coalesce(expected_duration, '1 minute') AS d FROM taskguard.schedule),
    runs AS (SELECT j.name, t, j.d FROM w, jobs j, taskguard.cron_occurrences(j.schedule, w.s - j.d, w.s + '24 hours') t),
    cover AS (SELECT DISTINCT r.name, gs AS b
              FROM w, runs r, generate_series(date_bin('1 minute', r.t, timestamptz 'epoch'),
                                              r.t + r.d - interval '1 microsecond', '1 minute') gs
              WHERE gs >= w.s AND gs < w.s + interval '24 hours')
    SELECT b, count(*) FROM cover GROUP BY b
$$;

-- the two agree
WITH c AS (SELECT l.bucket_start AS b, l.running::bigint AS running
           FROM taskguard.schedule_load() l WHERE l.running > 0),
     s AS (SELECT * FROM pg_temp.sql_load())
SELECT 'check: sql_and_c_agree ' ||
       (NOT EXISTS (SELECT * FROM c EXCEPT SELECT * FROM s) AND
        NOT EXISTS (SELECT * FROM s EXCEPT SELECT * FROM c));

SELECT 'metric: schedule_load_24h_1min_300_jobs_ms ' || pg_temp.best_ms('SELECT count(*) FROM taskguard.schedule_load()');
SELECT 'metric: sql_load_24h_1min_300_jobs_ms ' || pg_temp.best_ms('SELECT count(*) FROM pg_temp.sql_load()');
SELECT 'ratio: sql_load_vs_schedule_load ' ||
       round(pg_temp.best_ms('SELECT count(*) FROM pg_temp.sql_load()') /
             greatest(pg_temp.best_ms('SELECT count(*) FROM taskguard.schedule_load()'), 0.1), 1);
SELECT 'metric: schedule_load_7d_1min_300_jobs_ms ' || pg_temp.best_ms($$SELECT count(*) FROM taskguard.schedule_load('7 days')$$);
SELECT 'metric: validate_schedules_300_jobs_ms ' || pg_temp.best_ms('SELECT count(*) FROM taskguard.validate_schedules()');
SELECT 'metric: schedule_health_300_jobs_ms ' || pg_temp.best_ms('SELECT * FROM taskguard.schedule_health()');
SELECT 'metric: schedule_suggestions_300_jobs_ms ' || pg_temp.best_ms('SELECT count(*) FROM taskguard.schedule_suggestions()');
SELECT 'metric: schedule_hotspots_view_ms ' || pg_temp.best_ms('SELECT count(*) FROM taskguard.schedule_hotspots');
SELECT 'metric: schedule_hotspots_rows ' || count(*) FROM taskguard.schedule_hotspots;
SELECT 'check: hotspot_jobs_match_running ' || bool_and(cardinality(jobs) = running) FROM taskguard.schedule_hotspots;
SELECT 'metric: schedule_suggestions_count ' || count(*) FROM taskguard.schedule_suggestions();
SELECT 'metric: cron_next_per_s ' || round(100000 / (pg_temp.best_ms(
    $$SELECT count(taskguard.cron_next('*/7 9-17 * * mon-fri', t)) FROM generate_series(timestamptz '2026-01-01', '2026-01-01'::timestamptz + interval '99999 minutes', '1 minute') t$$) / 1000));
ROLLBACK;
SQL
