#!/usr/bin/env bash
# Issue 16 class 6: values that must be refused (or made sane), each with its
# SQLSTATE, and never an internal error:
#  (a) NaN / ±Infinity / out-of-range numbers in the configuration that claim
#      order and priority math use (customer_tier.bonus, retry_policy, rules,
#      alert thresholds, breaker_config);
#  (b) negative interval settings (task/event/dlq retention, idempotency TTL,
#      dispatch timeout) — the GUC check refuses them; a placeholder the check
#      never saw reads as the default;
#  (c) Retry-After of Infinity, NaN, 1e308, negative: clamped to 30 days or
#      ignored, never "never retried, never abandoned";
#  (d) the NOTIFY payload is never cut inside a character;
#  (f) the DLQ export for spreadsheets neutralises formulas.
# Runs in the harness's cluster, in a database of its own.
. "$(dirname "$0")/../lib/tap.sh"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS attack_values" -c "CREATE DATABASE attack_values" >/dev/null
cleanup() {
    for g in task_retention event_retention dlq_retention idempotency_ttl dispatch_timeout vacuum_blocker_age; do
        psql -X -q -d postgres -c "ALTER SYSTEM RESET taskguard.$g" >/dev/null 2>&1
    done
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS attack_values" >/dev/null 2>&1
}
trap cleanup EXIT
DB=attack_values
q "CREATE EXTENSION taskguard" >/dev/null

sqlstate() {  # the SQLSTATE of a failing statement ("" when it succeeds)
    psql -X -At -d attack_values -c "\set VERBOSITY verbose" -c "$1" 2>&1 >/dev/null |
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p'
}
refuses() {  # refuses SQL SQLSTATE DESCRIPTION
    is "$(sqlstate "$1")" "$2" "$3"
}

# ---- (a) numbers in claim order and priority math
for v in "'NaN'" "'Infinity'" "'-Infinity'" "4.5" "-5" "1e30"; do
    refuses "INSERT INTO taskguard.customer_tier VALUES ('t', '1 hour', $v)" 23514 "customer_tier bonus $v: check_violation"
done
refuses "INSERT INTO taskguard.customer_tier VALUES ('t', '1 hour', NULL)" 23502 "customer_tier bonus NULL: not_null_violation"
refuses "UPDATE taskguard.customer_tier SET bonus = 'NaN' WHERE tier = 'enterprise'" 23514 "UPDATE to a NaN bonus"
refuses "INSERT INTO taskguard.customer_tier VALUES ('t', '-1 hour', 0)" 23514 "a negative SLA"
refuses "INSERT INTO taskguard.customer_tier VALUES ('t', '0', 4)" "" "bonus 4 and SLA 0 are fine"
psql -X -At -d attack_values -c "INSERT INTO taskguard.customer_tier VALUES ('nan', '1 hour', 'NaN')" 2>&1 |
    grep -q 'customer_tier_bonus_range'
ok $? "the error names the constraint customer_tier_bonus_range"
is "$(q "SELECT bool_and(bonus BETWEEN -4 AND 4) FROM taskguard.customer_tier")" "t" "every stored bonus is finite"
is "$(q "SELECT (taskguard.calculate_priority('job', '{\"customer_tier\": \"t\"}')).score")" "4" \
   "calculate_priority with the extreme tier gives a finite, clamped score"
refuses "SELECT taskguard.calculate_priority('job', '{\"customer_tier\": \"enterprise\", \"age_hours\": \"NaN\"}')" 22023 \
   "calculate_priority refuses age_hours NaN"
is "$(q "SELECT (taskguard.calculate_priority('job', '{\"customer_tier\": \"enterprise\", \"age_hours\": \"Infinity\"}')).score")" "4" \
   "calculate_priority with age_hours Infinity: finite, clamped"
for v in "'NaN'" "'Infinity'" "0.5"; do
    refuses "UPDATE taskguard.retry_policy SET multiplier = $v WHERE failure_type = 'UNKNOWN' AND task_name IS NULL" 23514 \
        "retry_policy multiplier $v: check_violation"
done
refuses "UPDATE taskguard.retry_policy SET priority_adjustment = 'NaN' WHERE failure_type = 'UNKNOWN' AND task_name IS NULL" 23514 \
    "retry_policy priority_adjustment NaN"
refuses "UPDATE taskguard.retry_policy SET base_delay = '-1 second' WHERE failure_type = 'UNKNOWN' AND task_name IS NULL" 23514 \
    "retry_policy negative base_delay"
refuses "INSERT INTO taskguard.classification_rule (message_pattern, failure_type, confidence) VALUES ('x', 'UNKNOWN', 'NaN')" 23514 \
    "classification_rule confidence NaN"
refuses "UPDATE taskguard.alert_threshold SET threshold = 'NaN' WHERE alert = 'dlq_depth' AND level = 'warning'" 23514 \
    "alert_threshold threshold NaN"
refuses "INSERT INTO taskguard.breaker_config (service, \"window\") VALUES ('s', '-1 second')" 23514 \
    "breaker_config negative window"
refuses "INSERT INTO taskguard.breaker_config (service, cooldown) VALUES ('s', '-1 second')" 23514 \
    "breaker_config negative cooldown"
refuses "SELECT taskguard.backoff(1, '1 second', '1 hour', 'NaN')" 22023 "backoff multiplier NaN: invalid_parameter_value"
refuses "SELECT taskguard.priority_level('NaN')" 22023 "priority_level(NaN): invalid_parameter_value"

# ---- (b) negative intervals as arguments (already refused; kept refused)
refuses "SELECT taskguard.idempotency_check('k', '-1 hour')" 22023 "idempotency_check ttl -1 hour"
refuses "SELECT taskguard.idempotency_check('k', '0')" 22023 "idempotency_check ttl 0"
refuses "SELECT taskguard.enqueue('j', run_at => 'infinity')" 22023 "enqueue run_at infinity"
refuses "SELECT count(*) FROM taskguard.claim('default', 'w', lease => '-1 hour')" 22023 "claim lease -1 hour"
refuses "SELECT taskguard.heartbeat(1, '1000000 years')" 22023 "heartbeat lease 1,000,000 years"
refuses "SELECT taskguard.dlq_retry('{1}', spread => '-1 hour')" 22023 "dlq_retry spread -1 hour"
refuses "SELECT taskguard.dlq_purge('-1 day')" 22023 "dlq_purge older_than -1 day"

# ---- (b) negative interval settings
for g in task_retention event_retention dlq_retention idempotency_ttl dispatch_timeout; do
    refuses "ALTER SYSTEM SET taskguard.$g = '-1 hour'" 22023 "taskguard.$g = '-1 hour': invalid_parameter_value"
done
refuses "ALTER SYSTEM SET taskguard.task_retention = '1 day -25 hours'" 22023 "a mixed-sign interval that is negative"
refuses "ALTER SYSTEM SET taskguard.idempotency_ttl = '1 mon -31 days'" 22023 "1 month - 31 days is negative (30-day months)"
refuses "ALTER SYSTEM SET taskguard.idempotency_ttl = '-1 mon 31 days'" "" "-1 month + 31 days is not"
refuses "ALTER SYSTEM SET taskguard.idempotency_ttl = 'soon'" 22023 "not an interval"
refuses "ALTER SYSTEM SET taskguard.idempotency_ttl = ''" 22023 "an empty interval"
refuses "ALTER SYSTEM SET taskguard.dlq_retention = '0'" "" "zero is allowed (prune at the next pass)"
refuses "ALTER SYSTEM SET taskguard.event_retention = '100 years'" "" "a huge retention is allowed"
refuses "ALTER SYSTEM SET taskguard.dispatch_timeout = '5 parsecs'" 22023 "a garbage unit"
refuses "ALTER SYSTEM SET taskguard.dispatch_timeout = '1 hour ago ago'" 22023 "garbage after an interval"
refuses "ALTER SYSTEM SET taskguard.task_retention = '999999999999 years'" 22023 "an interval out of range"
refuses "ALTER SYSTEM SET taskguard.task_retention = '2147483647 days 2147483647 days'" 22023 "a field that overflows"
refuses "ALTER SYSTEM SET taskguard.vacuum_blocker_age = '-1s'" 22023 "vacuum_blocker_age -1s"
# the forms a time-unit integer setting would take, and the ISO 8601 ones, as interval_in does
for v in 1d 5min 1h 30s 1500ms P1D PT5M '1 day 02:00:00' '7 days' '1 mon'; do
    refuses "ALTER SYSTEM SET taskguard.task_retention = '$v'" "" "taskguard.task_retention = '$v' is accepted"
done
is "$(q "SET taskguard.task_retention = '5min'" 2>&1 | grep -c 'cannot be changed')" 1 "a session cannot SET a reload setting"
is "$(q "SELECT current_setting('taskguard.database') IS NOT NULL")" t "a superuser reads taskguard.database"
q "CREATE ROLE tg_attack_plain" >/dev/null 2>&1
is "$(psql -X -At -d attack_values -c "SET ROLE tg_attack_plain" -c "\set VERBOSITY verbose" \
        -c "SELECT current_setting('taskguard.database')" 2>&1 | sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p')" 42501 \
   "taskguard.database is superuser-only (GUC_SUPERUSER_ONLY)"
q "SELECT taskguard.grant_access('tg_attack_plain', 'reader')" >/dev/null
is "$(psql -X -q -At -d attack_values -c "SET ROLE tg_attack_plain" -c "SELECT database IS NULL FROM taskguard.scheduler_status" 2>&1)" t \
   "a reader reads scheduler_status; the database column is NULL for it"
is "$(q "SELECT database FROM taskguard.scheduler_status")" "$(q "SHOW taskguard.database")" "a superuser sees the database"
q "SELECT taskguard.revoke_access('tg_attack_plain', 'reader')" >/dev/null
q "DROP ROLE tg_attack_plain" >/dev/null 2>&1
psql -X -At -d attack_values -c "ALTER SYSTEM SET taskguard.idempotency_ttl = '-1 hour'" 2>&1 | grep -q 'is negative'
ok $? "the error says the value is negative"
is "$(q "SELECT taskguard._setting_interval('tg_attack.negative', '1 day')")" "1 day" "an unset setting reads as the default"
is "$(q "SELECT set_config('tg_attack.negative', '-1 hour', false) IS NOT NULL, taskguard._setting_interval('tg_attack.negative', '1 day')" | cut -d'|' -f2)" \
   "1 day" "a negative placeholder the check never saw reads as the default"
is "$(q "SELECT set_config('tg_attack.zero', '0', false) IS NOT NULL, taskguard._setting_interval('tg_attack.zero', '1 day')" | cut -d'|' -f2)" \
   "00:00:00" "zero reads as zero"

# ---- (c) Retry-After
decide() {  # decide CONTEXT-JSON: delay|finite next_retry_at|should_retry
    q "SELECT d.delay || '|' || isfinite(d.next_retry_at) || '|' || d.should_retry
         FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, NULL, '$1') d"
}
is "$(decide '{"retry_after_seconds": "Infinity"}')" "720:00:00|true|true" "Retry-After Infinity: 30 days, retried"
is "$(decide '{"retry_after_seconds": 1e308}')" "720:00:00|true|true" "Retry-After 1e308: 30 days"
is "$(decide '{"retry_after_seconds": "1e308"}')" "720:00:00|true|true" "Retry-After \"1e308\": 30 days"
is "$(decide '{"retry_after_seconds": 1e400}')" "720:00:00|true|true" "Retry-After 1e400 (beyond float8): 30 days"
is "$(decide '{"retry_after_seconds": 3000000}')" "720:00:00|true|true" "Retry-After 34 days: 30 days"
is "$(decide '{"retry_after_seconds": 86400}')" "24:00:00|true|true" "Retry-After 1 day is honoured above the cap"
for v in '"NaN"' '"-Infinity"' '-5' '""' 'null' '[1]' '{"a": 1}' '"12abc"' 'true'; do
    is "$(decide "{\"retry_after_seconds\": $v}" | cut -d'|' -f2,3)" "true|true" "Retry-After $v is ignored: normal backoff"
done
out=$(q "SELECT o.action || '|' || isfinite(o.next_retry_at)
           FROM taskguard.record_failure('job', '{}', 'ConnectionError', 'connection reset',
                '{\"retry_after_seconds\": \"Infinity\"}', NULL, 'ref-inf') o")
is "$out" "retry|true" "record_failure with Retry-After Infinity: a finite next_retry_at"
is "$(q "SELECT next_retry_at <= now() + interval '30 days 1 minute' FROM taskguard.dead_letter WHERE task_ref = 'ref-inf'")" "t" \
   "  at most 30 days away"

# ---- (d) NOTIFY payload on a character boundary
notify_payload() {  # notify_payload QUEUE-SQL: the payload of NOTIFY taskguard after _notify
    psql -X -At -d attack_values -c "LISTEN taskguard" -c "SELECT taskguard._notify($1)" -c "SELECT 1" 2>&1 |
        sed -n 's/^Asynchronous notification "taskguard" with payload "\(.*\)" received.*/\1/p' | head -1
}
is "$(notify_payload "repeat('é', 200)")" "$(q "SELECT repeat('é', 200)")" \
   "200 two-byte characters (400 bytes): the whole queue name"
is "$(notify_payload "repeat('€', 200)")" "$(q "SELECT repeat('€', 200)")" \
   "200 three-byte characters (600 bytes): the whole queue name"
is "$(notify_payload "'a' || repeat('é', 500)")" "$(q "SELECT 'a' || repeat('é', 399)")" \
   "an over-long name is cut at 800 bytes on a character boundary"
tid=$(q "SELECT taskguard.enqueue('job', queue => repeat('ü', 200))")
is "$(q "SELECT octet_length(queue) FROM taskguard.task WHERE id = $tid")" "400" "enqueue into a 200-character queue"

# ---- (f) CSV export
for v in '=HYPERLINK("http://evil","x")' '+cmd|x' '-2+3' '@SUM(A1)'; do
    is "$(q "SELECT taskguard.dlq_csv_safe(\$v\$$v\$v\$)")" "'$v" "dlq_csv_safe neutralises $v"
done
is "$(q "SELECT taskguard.dlq_csv_safe(E'\\tx') = E'''\\tx'")" "t" "dlq_csv_safe neutralises a leading tab"
is "$(q "SELECT taskguard.dlq_csv_safe('plain text')")" "plain text" "plain text is unchanged"
is "$(q "SELECT taskguard.dlq_csv_safe('') = ''")" "t" "the empty string is unchanged"
is "$(q "SELECT taskguard.dlq_csv_safe(NULL) IS NULL")" "t" "NULL stays NULL"
q "SELECT taskguard.record_failure('@evil', '{}', '=cmd', '=HYPERLINK(\"http://evil\",\"click\")', '{}', NULL, '-ref')" >/dev/null
csv=$(psql -X -At -d attack_values -c "COPY (SELECT * FROM taskguard.dlq_export WHERE task_ref LIKE '%-ref') TO STDOUT WITH CSV")
echo "$csv" | grep -qE '(^|,)"?[=+@-]'
ok $((1 - $?)) "COPY of taskguard.dlq_export: no field starts with = + - @"
is "$(q "SELECT message FROM taskguard.dlq_export WHERE task_ref = '''-ref'")" "'=HYPERLINK(\"http://evil\",\"click\")" \
   "the message is exported with a leading quote"
is "$(q "SELECT count(*) FROM taskguard.dlq_export")" "$(q "SELECT count(*) FROM taskguard.dlq")" \
   "dlq_export has the rows of dlq"

# ---- roles granted under 0.1.0 keep working after the update
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS attack_values_upg" -c "CREATE DATABASE attack_values_upg" >/dev/null
DB=attack_values_upg
q "CREATE EXTENSION taskguard VERSION '0.1.0'" >/dev/null
q "DROP ROLE IF EXISTS tg_av_reader; DROP ROLE IF EXISTS tg_av_admin;
   CREATE ROLE tg_av_reader LOGIN; CREATE ROLE tg_av_admin LOGIN" >/dev/null 2>&1
q "SELECT taskguard.grant_access('tg_av_reader', 'reader'), taskguard.grant_access('tg_av_admin', 'admin')" >/dev/null
q "ALTER EXTENSION taskguard UPDATE" >/dev/null
ok $? "0.1.0 with a reader and an admin updates"
psql -X -At -U tg_av_reader -d attack_values_upg -c "SELECT taskguard.prometheus_metrics()" 2>&1 |
    grep -q '^taskguard_breaker_slots'
ok $? "  the reader still gets prometheus_metrics(), with the breaker table"
is "$(psql -X -At -U tg_av_reader -d attack_values_upg -c "SELECT count(*) FROM taskguard.dlq_export" 2>&1)" "0" \
   "  the reader may export dlq_export"
is "$(psql -X -At -U tg_av_admin -d attack_values_upg -c "\set VERBOSITY verbose" \
      -c "INSERT INTO taskguard.classification_rule (message_pattern, failure_type) VALUES ('(a)\\1', 'UNKNOWN')" 2>&1 >/dev/null |
      sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p')" "22023" "  the admin's back-reference rule is refused"
is "$(psql -X -At -U tg_av_admin -d attack_values_upg -c "INSERT INTO taskguard.classification_rule (message_pattern, failure_type) VALUES ('card.*declined', 'UNKNOWN')" 2>&1)" \
   "INSERT 0 1" "  and a sane rule accepted"
DB=attack_values
psql -X -q -d postgres -c "DROP DATABASE attack_values_upg" -c "DROP ROLE tg_av_reader" -c "DROP ROLE tg_av_admin" >/dev/null

! grep -E 'TRAP:|terminated by signal|PANIC' "$TG_LOGFILE" >/dev/null
ok $? "no crash in the server log"
done_testing
