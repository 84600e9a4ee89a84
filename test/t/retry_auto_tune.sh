#!/usr/bin/env bash
# Retry auto-tuning (issue 20): with taskguard.retry_auto_tune = on the
# background scheduler applies the retry advice that is within bounds, records
# it as automatic, and looks again only an hour later; turned off (reload) it
# changes nothing.  Own cluster (the setting is server-wide).
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."

dir=$TG_WORK/retry_tune
port=$(tg_pick_port)
tg_init_cluster "$dir" "$port" "taskguard.database = 'jobs'" "taskguard.naptime = 100" \
    "taskguard.retry_auto_tune = on"
tg_start
trap 'tg_stop immediate' EXIT
DB=jobs
psql -X -q -d postgres -c "CREATE DATABASE jobs" >/dev/null
history() {   # 120 failures of $1 that recovered 60 s after the first failure, on retry 2
    echo "INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries, base_delay, max_delay,
                                          multiplier, jitter)
       VALUES ('TRANSIENT_RATE_LIMIT', '$1', 8, '20 seconds', '30 minutes', 2, 'none');
       INSERT INTO taskguard.dead_letter (task_name, status, failure_type, confidence, remediation,
           retry_count, max_retries, first_failed_at, resolved_at, resolution)
       SELECT '$1', 'RESOLVED', 'TRANSIENT_RATE_LIMIT', 0.9, 'RETRY_WITH_BACKOFF', 1, 8,
              now() - interval '1 day', now() - interval '1 day' + interval '60 seconds', 'retry'
         FROM generate_series(1, 120);"
}
# one transaction: the scheduler's first look already sees the history
q "CREATE EXTENSION taskguard; $(history tune_a)" >/dev/null
is "$(q "SHOW taskguard.retry_auto_tune")" "on" "retry_auto_tune is on in this cluster"
ok "$(tg_wait_for 20 "SELECT count(*) = 1 FROM taskguard.retry_policy_change WHERE auto"; echo $?)" \
   "the scheduler applies the advice by itself"
is "$(q "SELECT p.max_retries || ' ' || p.base_delay || ' ' || c.changed_by || ' ' || (c.reason LIKE 'auto-tune: %')
           FROM taskguard.retry_policy p JOIN taskguard.retry_policy_change c USING (task_name, failure_type)
          WHERE p.task_name = 'tune_a'")" "1 00:01:00 postgres true" \
   "start at 60 s, stop after 1 retry; recorded as automatic, by the scheduler's role"

# once an hour: a second history waits for the next run
q "$(history tune_b)" >/dev/null
p0=$(q "SELECT passes FROM taskguard.scheduler_status")
ok "$(tg_wait_for 20 "SELECT passes > $p0 + 20 FROM taskguard.scheduler_status"; echo $?)" "passes go on"
is "$(q "SELECT count(*) FROM taskguard.retry_policy_change")" "1" "within the hour it does not look again"
# make the last run an hour old: it looks, then applies tune_b
q "UPDATE taskguard.metric_snapshot SET computed_at = now() - interval '61 minutes' WHERE name = 'retry_tune_run'" >/dev/null
ok "$(tg_wait_for 20 "SELECT count(*) = 2 FROM taskguard.retry_policy_change WHERE auto"; echo $?)" \
   "an hour after its last run it applies the new advice"

# off (reload): nothing changes
q "ALTER SYSTEM SET taskguard.retry_auto_tune = off" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
ok "$(tg_wait_for 10 "SELECT current_setting('taskguard.retry_auto_tune') = 'off'"; echo $?)" "turned off by a reload"
q "$(history tune_c)" >/dev/null
q "UPDATE taskguard.metric_snapshot SET computed_at = now() - interval '61 minutes' WHERE name = 'retry_tune_run'" >/dev/null
p1=$(q "SELECT passes FROM taskguard.scheduler_status")
ok "$(tg_wait_for 20 "SELECT passes > $p1 + 20 FROM taskguard.scheduler_status"; echo $?)" "passes go on"
is "$(q "SELECT count(*) FROM taskguard.retry_policy_change")" "2" "off: no change"
is "$(grep -cE 'ERROR|taskguard scheduler step' "$TG_LOGFILE")" 0 "no step error, no ERROR in the log"
done_testing
