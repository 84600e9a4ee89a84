#!/usr/bin/env bash
# schedule_pg_cron.sh — the schedule analysis over real pg_cron jobs
# (cron.schedule in database taskguard, where pg_cron runs): load, hotspots,
# suggestions, duplicates, schedules pg_cron accepts but taskguard refuses,
# durations from cron.job_run_details, and pg_cron created after taskguard.
. "$(dirname "$0")/../lib/tap.sh"

P=tgsched_   # every job of this test is named tgsched_*
cleanup() {
    q "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE '${P}%'" >/dev/null 2>&1
    q "DELETE FROM cron.job_run_details WHERE command LIKE '%${P}%'" >/dev/null 2>&1
    q "DROP OWNED BY ${P}reader" >/dev/null 2>&1
    q "DROP ROLE IF EXISTS ${P}reader" >/dev/null 2>&1
}
trap cleanup EXIT
cleanup

# Six hourly jobs at :00 (distinct harmless commands), one of them twice.
for i in 1 2 3 4 5 6; do
    q "SELECT cron.schedule('${P}hourly_$i', '0 * * * *', 'SELECT $i /* ${P} */')" >/dev/null
done
q "SELECT cron.schedule('${P}copy', '30 4 * * *', 'SELECT 3 /* ${P} */')" >/dev/null
# pg_cron 1.4 stores these; taskguard's parser refuses them.
q "SELECT cron.schedule('${P}reversed', '10-5 * * * *', 'SELECT 7 /* ${P} */')" >/dev/null
q "SELECT cron.schedule('${P}sixfields', '0 0 * * * *', 'SELECT 8 /* ${P} */')" >/dev/null
# A five-minute job whose recent runs took about seven minutes.  It fires only
# on a day of the month that is neither today nor tomorrow, so that pg_cron
# never runs it (and changes its average) while this test runs.
day=$(( ($(date -u +%d | sed 's/^0//') + 9) % 28 + 1 ))
slow=$(q "SELECT cron.schedule('${P}slow', '*/5 * $day * *', 'SELECT 9 /* ${P} */')")
q "INSERT INTO cron.job_run_details (jobid, command, status, database, username, start_time, end_time)
   SELECT $slow, '-- ${P}slow', 'succeeded', 'taskguard', current_user,
          now() - (i * interval '10 minutes'), now() - (i * interval '10 minutes') + d
   FROM (VALUES (1, interval '6 minutes'), (2, '7 minutes'), (3, '8 minutes')) v(i, d)" >/dev/null

is "$(q "SELECT count(*) FROM taskguard._schedule_jobs() WHERE job LIKE 'cron:${P}%' AND source = 'pg_cron'")" 10 \
   "cron.job rows are read at call time, named cron:<jobname>"
is "$(q "SELECT duration FROM taskguard._schedule_jobs() WHERE job = 'cron:${P}slow'")" "00:07:00" \
   "the duration is the average of recent runs in cron.job_run_details"

# Load: the six hourly jobs make :00 hot.
is "$(q "SELECT count(*) FILTER (WHERE hotspot AND extract(minute FROM bucket_start) = 0)
         FROM taskguard.schedule_load(capacity => 4)")" 24 "every :00 bucket of the day is a hotspot"
is "$(q "SELECT min(running) >= 6 AND min(starting) >= 6 FROM taskguard.schedule_load(capacity => 4)
         WHERE extract(minute FROM bucket_start) = 0")" t "at :00 at least the six hourly jobs start and run"
is "$(q "SELECT count(*) > 0 FROM taskguard.schedule_hotspots")" t "the hotspot view lists them"

# Suggestions move pg_cron jobs to other minutes, each lowering the peak.
sugg=$(q "SELECT count(*), bool_and(peak_after < peak_before), bool_and(suggested_schedule ~ '^[0-9]+ \* \* \* \*$'),
                 bool_and(job LIKE 'cron:${P}hourly_%')
          FROM taskguard.schedule_suggestions()")
is "$(echo "$sugg" | cut -d'|' -f2-)" "t|t|t" "suggestions shift hourly pg_cron jobs' minute and lower the peak"
ok "$([ "$(echo "$sugg" | cut -d'|' -f1)" -ge 1 ] && echo 0 || echo 1)" "at least one suggestion ($sugg)"

# Validation over pg_cron's jobs.
is "$(q "SELECT detail FROM taskguard.validate_schedules() WHERE job = 'cron:${P}hourly_3' AND problem = 'duplicate'")" "same command as job cron:${P}copy" "a command scheduled twice is a duplicate"
is "$(q "SELECT string_agg(job || ': ' || detail, '; ' ORDER BY job) FROM taskguard.validate_schedules()
         WHERE problem = 'invalid' AND job LIKE 'cron:${P}%'")" \
   "cron:${P}reversed: minute field \"10-5\": range 10-5 is reversed; cron:${P}sixfields: expression \"0 0 * * * *\": expected 5 fields, found 6" \
   "schedules pg_cron stored but taskguard refuses are invalid, naming the field"
is "$(q "SELECT detail FROM taskguard.validate_schedules() WHERE job = 'cron:${P}slow'")" \
   "runs take 00:07:00 (average of recent runs) but it starts every 00:05:00" "runs longer than the period are an overlap"
is "$(q "SELECT duplicates >= 1 AND \"overlaps\" >= 1 AND invalid >= 2 AND hotspots >= 24 AND score < 60
         FROM taskguard.schedule_health()")" t "schedule_health counts them all"

# The reader Grafana uses sees the analysis of every job: pg_cron's row
# security shows it none of these (the superuser's) jobs, but the analysis
# reads cron.job with definer rights and hands out no command text.
q "CREATE ROLE ${P}reader LOGIN" >/dev/null && q "SELECT taskguard.grant_access('${P}reader', 'reader')" >/dev/null
as_reader() { psql -X -At -v ON_ERROR_STOP=1 -U ${P}reader -d taskguard -c "$1" 2>&1; }
visible=$(as_reader "SELECT count(*) FROM cron.job WHERE jobname LIKE '${P}%'")
case $visible in 0|*"permission denied for schema cron"*) r=0 ;; *) r=1 ;; esac
ok $r "pg_cron shows the reader none of these jobs ($(echo "$visible" | head -1))"
health="SELECT score, hotspots, duplicates, \"overlaps\", invalid FROM taskguard.schedule_health()"
owner=$(q "$health")
is "$(as_reader "$health")" "$owner" "the reader sees the owner's schedule_health() ($owner)"
hot="SELECT count(*), coalesce(sum(cardinality(jobs)), 0) FROM taskguard.schedule_hotspots"
is "$(as_reader "$hot")" "$(q "$hot")" "the reader sees the owner's hotspots ($(q "$hot"))"
val="SELECT string_agg(job || ' ' || problem || ' ' || detail, '; ' ORDER BY job, problem) FROM taskguard.validate_schedules()"
is "$(as_reader "$val")" "$(q "$val")" "the reader sees the owner's validate_schedules()"
sug="SELECT string_agg(job || ' ' || suggested_schedule, '; ' ORDER BY job) FROM taskguard.schedule_suggestions()"
is "$(as_reader "$sug")" "$(q "$sug")" "the reader sees the owner's schedule_suggestions()"
is "$(as_reader "SELECT count(*) FILTER (WHERE command ~ '^md5:[0-9a-f]{32}$'), count(*) FROM taskguard._schedule_jobs() WHERE source = 'pg_cron' AND job LIKE 'cron:${P}%'")" "10|10" \
   "pg_cron jobs' commands reach the analysis as digests only"
is "$(as_reader "SELECT prosecdef, proconfig::text FROM pg_proc WHERE oid = 'taskguard._cron_jobs'::regproc")" \
   "t|{\"search_path=pg_catalog, taskguard, pg_temp\"}" "the definer-rights reader of cron.job pins its search_path"
is "$(q "SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a WHERE p.oid = 'taskguard._cron_jobs'::regproc AND a.grantee = 0")" 0 \
   "PUBLIC may not run it"

# pg_cron dropped and created again later in the same session: looked up at call time.
out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d taskguard <<SQL
BEGIN;
DROP EXTENSION pg_cron;
SELECT count(*) FROM taskguard._schedule_jobs() WHERE source = 'pg_cron';
SELECT count(*) FROM taskguard.schedule_load();
CREATE EXTENSION pg_cron;
SELECT count(*) FROM cron.schedule('${P}late', '0 3 * * *', 'SELECT 10');
SELECT job FROM taskguard._schedule_jobs() WHERE source = 'pg_cron';
ROLLBACK;
SQL
)
is "$(echo $out)" "0 1440 1 cron:${P}late" "works without pg_cron, and sees it once created"

cleanup
is "$(q "SELECT count(*) FROM taskguard._schedule_jobs() WHERE job LIKE 'cron:${P}%'")" 0 "unscheduled jobs are gone"
done_testing
