#!/usr/bin/env bash
# client_celery: the Celery bridge (clients/celery) — first in eager mode
# (test_bridge.py, TAP), then for real: a Celery worker on a local filesystem
# broker runs the example's calls, the bridge records their failures, and the
# example's dispatcher re-publishes the due retry to the queue taskguard's
# priority names, where the worker picks it up until it succeeds.
. "$(dirname "$0")/../lib/tap.sh"
PY=/usr/bin/python3                 # Debian's, which sees python3-celery and python3-psycopg
DIR=$(cd "$(dirname "$0")/../../clients/celery" && pwd)
export PGDATABASE=${DB:-taskguard} PGAPPNAME=tg_client_celery
unset CELERY_BROKER_URL

# -- eager mode: test_bridge.py's TAP lines, renumbered into this test's ----------
out=$($PY "$DIR/test_bridge.py" 2>"$TG_WORK/celery-eager.err"); rc=$?
while IFS= read -r line; do
    case $line in
    "ok "*)     ok 0 "eager: ${line#ok * - }" ;;
    "not ok "*) ok 1 "eager: ${line#not ok * - }" ;;
    "#"*)       echo "$line" ;;
    esac
done <<<"$out"
ok "$([ $rc -eq 0 ] && echo "$out" | grep -qx '1\.\.[0-9]*'; echo $?)" "test_bridge.py ran to its end and passed"
[ $rc -eq 0 ] || sed 's/^/# /' "$TG_WORK/celery-eager.err"
dups() { q "SELECT coalesce(sum(duplicates), 0) FROM taskguard.idempotency_stats WHERE task_name = 'billing.charge_card'"; }
dups_before=$(dups)

# -- a real worker and broker -----------------------------------------------------
export CELERY_BROKER_DIR=$TG_WORK/celery-broker
names="'crm.sync_contact', 'billing.charge_card', 'imports.import_row', 'ledger.post', 'legacy.cleanup'"
q "DELETE FROM taskguard.failure_event WHERE failure_id IN
     (SELECT id FROM taskguard.dead_letter WHERE task_name IN ($names))" >/dev/null
q "DELETE FROM taskguard.dead_letter WHERE task_name IN ($names)" >/dev/null
q "SELECT taskguard.idempotency_release(taskguard.idempotency_key('billing.charge_card', a::jsonb))
     FROM (VALUES ('{\"args\": [1001, 2500], \"kwargs\": {}}'), ('{\"args\": [1002, 250000], \"kwargs\": {}}')) v(a)" >/dev/null
q "DELETE FROM taskguard.retry_policy WHERE task_name = 'crm.sync_contact'" >/dev/null
q "INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries, base_delay, max_delay, jitter)
   VALUES ('TRANSIENT_NETWORK', 'crm.sync_contact', 5, '50 ms', '100 ms', 'none')" >/dev/null
q "INSERT INTO taskguard.task_config (task_name, base_priority) VALUES ('crm.sync_contact', 'HIGH')
   ON CONFLICT (task_name) DO UPDATE SET base_priority = 'HIGH'" >/dev/null

cd "$DIR"
$PY -m celery -A example worker -Q high,default --pool solo -n "tgtest$$@localhost" \
    --without-heartbeat --without-mingle --without-gossip -l info >"$TG_WORK/celery-worker.log" 2>&1 &
worker=$!
$PY example.py dispatch >"$TG_WORK/celery-dispatch.log" 2>&1 &
dispatcher=$!
$PY example.py send 2>"$TG_WORK/celery-send.log"
ok $? "example.py send publishes the example's calls to the broker"

log_count() {  # log_count N PATTERN FILE: poll until FILE has N lines matching PATTERN; print the count
    local end=$(( $(date +%s) + 10 )) c
    while c=$(grep -c "$2" "$3"); [ "$c" -lt "$1" ] && [ "$(date +%s)" -le "$end" ]; do sleep 0.1; done
    echo "$c"
}

tg_wait_for 40 "SELECT count(*) = 5 FROM taskguard.dlq WHERE task_name IN ($names)
                  AND status IN ('RESOLVED', 'ABANDONED')"
ok $? "the worker runs them and the dispatcher's retries within 40 s"
is "$(q "SELECT string_agg(task_name || ' ' || status || ' ' || failure_type || ' ' || retry_count, ', '
                           ORDER BY task_name, failure_type::text)
           FROM taskguard.dlq WHERE task_name IN ($names)")" \
   "billing.charge_card ABANDONED BUSINESS_LOGIC_VIOLATION 0, crm.sync_contact RESOLVED TRANSIENT_NETWORK 1, imports.import_row ABANDONED PERMANENT_INVALID_INPUT 0, ledger.post ABANDONED CONFIGURATION_PERMISSIONS 0, legacy.cleanup ABANDONED CONFIGURATION_PERMISSIONS 0" \
   "the DLQ holds exactly the expected records, types and retry counts"
is "$(q "SELECT resolution || ' ' || (context->>'queue') || ' ' || (task_id IS NULL)
           FROM taskguard.dlq WHERE task_name = 'crm.sync_contact'")" "retry high true" \
   "the retry ran from the queue calculate_priority names (high) and its success resolved the record"
is "$(q "SELECT string_agg(failure_type || '=' || n, ' ' ORDER BY failure_type)
           FROM (SELECT e.failure_type::text, count(*) n FROM taskguard.failure_event e
                  WHERE e.task_name IN ($names) GROUP BY 1) s")" \
   "BUSINESS_LOGIC_VIOLATION=1 CONFIGURATION_PERMISSIONS=2 PERMANENT_INVALID_INPUT=1 TRANSIENT_NETWORK=2" \
   "one failure event per failed run, by type"
is "$(log_count 1 "Task crm.sync_contact\[.*\] succeeded" "$TG_WORK/celery-worker.log")" 1 \
   "the worker ran the retried task to success once"
is "$(log_count 2 "Task billing.charge_card\[.*\] succeeded" "$TG_WORK/celery-worker.log") $(( $(dups) - dups_before ))" "2 1" \
   "the duplicate charge was skipped by idempotency_check (both calls succeed, one is a duplicate)"
is "$(q "SELECT count(*) FROM taskguard.dlq WHERE task_name = 'billing.charge_card'")" 1 \
   "only the declined charge has a record"
grep -q "retry 2 of crm.sync_contact\[.*\] published to high" "$TG_WORK/celery-dispatch.log"
ok $? "the dispatcher logged the second retry it published"

kill -TERM $worker $dispatcher
end=$(( $(date +%s) + 15 ))
while { kill -0 $worker || kill -0 $dispatcher; } 2>/dev/null && [ "$(date +%s)" -le "$end" ]; do sleep 0.1; done
left=0
for p in $worker $dispatcher; do kill -0 $p 2>/dev/null && { kill -KILL $p; left=$((left + 1)); }; done
is "$left" 0 "worker and dispatcher stop on SIGTERM"
wait 2>/dev/null

q "DELETE FROM taskguard.failure_event WHERE failure_id IN
     (SELECT id FROM taskguard.dead_letter WHERE task_name IN ($names))" >/dev/null
q "DELETE FROM taskguard.dead_letter WHERE task_name IN ($names)" >/dev/null
q "DELETE FROM taskguard.retry_policy WHERE task_name = 'crm.sync_contact'" >/dev/null
q "DELETE FROM taskguard.task_config WHERE task_name = 'crm.sync_contact'" >/dev/null
done_testing
