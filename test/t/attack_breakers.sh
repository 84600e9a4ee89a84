#!/usr/bin/env bash
# Issue 16 class 4: the breaker table is shared by every database and tenant.
# A tenant-bound worker that floods new services gets at most its share
# (taskguard.breaker_tenant_share of taskguard.max_breakers, at least 8);
# another tenant's breakers still count failures; breakers that exist keep
# counting whoever is refused; every refusal — share used up or table full —
# shows as a counter in prometheus_metrics() and as the alert
# breaker_table_full; fail() never raises for it.  Runs its own cluster
# (max_breakers = 64, so the share is 8).
. "$(dirname "$0")/../lib/tap.sh"

tg_init_cluster "$TG_WORK/attack-breakers" "$(tg_pick_port)" "taskguard.max_breakers = 64" "fsync = off"
trap 'tg_stop immediate' EXIT
tg_start
tg_create_main_db

as() {  # as ROLE SQL: run as a login role, print the result
    psql -X -At -v ON_ERROR_STOP=1 -U "$1" -d taskguard -c "$2"
}
sqlstate_as() {  # sqlstate_as ROLE SQL: the SQLSTATE of a failing statement ("" if none)
    psql -X -At -U "$1" -d taskguard -c "\set VERBOSITY verbose" -c "$2" 2>&1 >/dev/null |
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p'
}
table() { q "SELECT $1 FROM taskguard._breaker_table()"; }

q "CREATE ROLE evil LOGIN; CREATE ROLE good LOGIN; CREATE ROLE plain LOGIN" >/dev/null
q "SELECT taskguard.grant_access(r, 'worker') FROM unnest(ARRAY['evil', 'good', 'plain']) r" >/dev/null
# Workers reach the fail()/complete() hook only through those calls (internal
# helpers are not theirs to call); the test calls it directly, a thousand
# times, so it grants it for the test alone.
q "GRANT EXECUTE ON FUNCTION taskguard._breaker_task_done(text, boolean) TO evil, plain" >/dev/null
q "INSERT INTO taskguard.tenant_member (role, tenant) VALUES ('evil', 'evilcorp'), ('good', 'acme')" >/dev/null

is "$(table "capacity || '/' || tenant_limit || '/' || refused_full || '/' || refused_share")" "64/8/0/0" \
   "64 slots, 8 per tenant, nothing refused yet"
is "$(q "SELECT count(*) FROM taskguard.alerts WHERE alert = 'breaker_table_full'")" "0" "no alert yet"

# good's breaker exists before the flood
is "$(as good "SELECT taskguard.breaker_record('acme-pay', false)")" "closed" "acme records a failure"

# the flood: a tenant-bound worker allocates new services
is "$(as evil "SELECT count(taskguard.breaker_record('flood' || i, false)) FROM generate_series(1, 8) i")" "8" \
   "evilcorp gets its 8 breakers"
is "$(sqlstate_as evil "SELECT taskguard.breaker_record('flood9', false)")" "53400" \
   "the 9th is refused with configuration_limit_exceeded"
psql -X -At -U evil -d taskguard -c "SELECT taskguard.breaker_record('flood9', false)" 2>&1 |
    grep -q 'too many circuit breakers for tenant "evilcorp"'
ok $? "the error names the tenant"
is "$(as evil "SELECT count(taskguard._breaker_task_done('flood' || i, false)::text) FROM generate_series(10, 1009) i")" \
   "1000" "1,000 more through the fail() hook: no error"
is "$(q "SELECT count(*) FROM taskguard._breaker_live() WHERE service LIKE 'flood%'")" "8" \
   "evilcorp still holds 8 breakers"
is "$(table "refused_share")" "1002" "every refused allocation is counted (2 + 1,000)"
is "$(table "refused_full")" "0" "the table itself is not full"

# through the queue: fail() of a task with a new service never raises
tid=$(as evil "SELECT taskguard.enqueue('job', service => 'flood-queue')")
as evil "SELECT count(*) FROM taskguard.claim('default', 'w')" >/dev/null
is "$(as evil "SELECT (taskguard.fail($tid, 'ServiceUnavailable', '503 service unavailable')).action")" "retry" \
   "fail() of a task whose service gets no breaker works"
is "$(table "refused_share")" "1003" "and its refusal is counted"

# what exists keeps counting, for everyone
is "$(as good "SELECT taskguard.breaker_record('acme-pay', false) FROM generate_series(1, 4) ORDER BY 1 DESC LIMIT 1")" \
   "open" "acme's breaker still counts and opens at 5 failures"
is "$(as good "SELECT taskguard.breaker_record('acme-new', false)")" "closed" "acme can still allocate"
is "$(as evil "SELECT taskguard.breaker_record('flood1', false) FROM generate_series(1, 4) ORDER BY 1 DESC LIMIT 1")" \
   "open" "evilcorp's existing breakers still count too"
is "$(as plain "SELECT count(taskguard.breaker_record('plain' || i, false)) FROM generate_series(1, 20) i")" "20" \
   "an unmapped worker is not limited by a share"

# the refusal is visible
m=$(q "SELECT taskguard.prometheus_metrics()")
echo "$m" | grep -qx "taskguard_breaker_tenant_share_refused_total 1003"
ok $? "prometheus: taskguard_breaker_tenant_share_refused_total 1003"
echo "$m" | grep -q '^taskguard_alert_active{alert="breaker_table_full",level="error"} 1$'
ok $? "prometheus: the alert breaker_table_full is on"
is "$(q "SELECT level || ' ' || value FROM taskguard.alerts WHERE alert = 'breaker_table_full'")" "error 1003" \
   "alerts: breaker_table_full, error, with the number refused"
ok $(tg_wait_for 15 "SELECT EXISTS (SELECT 1 FROM taskguard.alert_state WHERE alert = 'breaker_table_full')"; echo $?) \
   "the scheduler's alerts step takes it up (NOTIFY taskguard_alerts)"

# an idle breaker of its own makes room for the tenant's next one
q "SELECT taskguard.breaker_reset('flood2')" >/dev/null
is "$(as evil "SELECT taskguard.breaker_record('flood9', false)")" "closed" \
   "after an admin reset, evilcorp's own idle breaker is evicted for a new one"
is "$(q "SELECT count(*) FROM taskguard._breaker_live() WHERE service = 'flood2'")" "0" "flood2 was the one evicted"
is "$(q "SELECT count(*) FROM taskguard._breaker_live() WHERE service LIKE 'flood%'")" "8" "still 8"

# the share is a setting
q "ALTER SYSTEM SET taskguard.breaker_tenant_share = 25" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
ok $(tg_wait_for 10 "SELECT tenant_limit = 16 FROM taskguard._breaker_table()"; echo $?) \
   "breaker_tenant_share = 25 gives 16 per tenant after a reload"
is "$(as evil "SELECT count(taskguard.breaker_record('more' || i, false)) FROM generate_series(1, 8) i")" "8" \
   "evilcorp gets 8 more"
is "$(sqlstate_as evil "SELECT taskguard.breaker_record('more9', false)")" "53400" "then is refused again"
is "$(sqlstate_as postgres "ALTER SYSTEM SET taskguard.breaker_tenant_share = 0")" "22023" "a share of 0 is refused"
is "$(sqlstate_as postgres "ALTER SYSTEM SET taskguard.breaker_tenant_share = 101")" "22023" "a share over 100 is refused"

# a full table: refused, counted, alerted; existing breakers keep counting
used=$(table "in_use")
as plain "SELECT count(taskguard.breaker_record('fill' || i, false)) FROM generate_series(1, 64 - $used) i" >/dev/null
is "$(table "in_use")" "64" "an unmapped worker fills the table"
is "$(sqlstate_as plain "SELECT taskguard.breaker_record('one-too-many', false)")" "53400" \
   "then a new breaker is refused"
is "$(as plain "SELECT taskguard._breaker_task_done('one-too-many', false)::text")" "" "the fail() hook does not raise"
is "$(table "refused_full")" "2" "refusals of a full table are counted"
q "SELECT taskguard.prometheus_metrics()" | grep -qx "taskguard_breaker_table_full_total 2"
ok $? "prometheus: taskguard_breaker_table_full_total 2"
q "SELECT taskguard.prometheus_metrics()" | grep -qx 'taskguard_breaker_slots_used 64'
ok $? "prometheus: taskguard_breaker_slots used 64"
q "SELECT detail FROM taskguard.alerts WHERE alert = 'breaker_table_full'" | grep -q "2 with the table full"
ok $? "the alert's detail says the table was full"
is "$(as good "SELECT taskguard.breaker_record('acme-new', false)")" "closed" \
   "acme's existing breaker still counts with the table full"
is "$(q "SELECT failures FROM taskguard.breaker_status WHERE service = 'acme-new'")" "2" "its 2 failures are there"

! grep -E 'TRAP:|terminated by signal|PANIC' "$TG_LOGFILE" >/dev/null
ok $? "no crash in the server log"
done_testing
