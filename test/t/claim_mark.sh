#!/usr/bin/env bash
# claim()'s mark (src/claim_mark.c): with another session holding a snapshot,
# a claim reads a handful of index entries however many tasks were claimed
# since; and the mark never hides a ready task — higher priority enqueued
# later, a claim rolled back (transaction or savepoint), a task due later,
# a lease reaped, a REPEATABLE READ claimer.  The same for a tenant-bound
# worker's (queue, tenant) mark, with other tenants' tasks ahead of its own.
. "$(dirname "$0")/../lib/tap.sh"

q "CREATE OR REPLACE PROCEDURE cm_cycles(queue text, n int) LANGUAGE plpgsql AS \$\$
DECLARE r record;
BEGIN
  FOR i IN 1..n LOOP
    PERFORM taskguard.enqueue('cm_job', '{}', queue);
    FOR r IN SELECT * FROM taskguard.claim(queue, 'cm', 1) LOOP
      PERFORM taskguard.complete(r.id, NULL, r.attempts);
    END LOOP;
    COMMIT;
  END LOOP;
END \$\$" >/dev/null

# Buffers the claim's pick reads (its LockRows node: the partitions' index
# scans under it and the row it locks) over N claims (auto_explain
# shows the plans of the statements inside claim() to this session only).
claim_buffers() {  # claim_buffers QUEUE N
    psql -X -q -d taskguard -v ON_ERROR_STOP=1 -c "LOAD 'auto_explain'" \
        -c "SET auto_explain.log_min_duration = 0" -c "SET auto_explain.log_analyze = on" \
        -c "SET auto_explain.log_buffers = on" -c "SET auto_explain.log_nested_statements = on" \
        -c "SET auto_explain.log_level = notice" -c "SET client_min_messages = notice" \
        -c "CALL cm_cycles('$1', $2)" 2>&1 |
        awk '/LockRows/ {want = 1; next}
             want && /Buffers: shared/ {sub(/.*hit=/, ""); sum += $1 + 0; n++; want = 0}
             END {print (n ? int(sum / n) : -1)}'
}

# ---- a held snapshot does not slow the claim down ----
psql -X -q -d taskguard -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM pg_class" \
    -c "SELECT pg_sleep(600)" -v application_name=cm_holder >/dev/null 2>&1 &
holder=$!
tg_wait_for 30 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)' AND backend_xmin IS NOT NULL"
q "CALL cm_cycles('cm_held', 3000)" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'cm_held' AND status = 'succeeded'")" 3000 \
    "3,000 cycles under a held snapshot all completed"
if q "LOAD 'auto_explain'" >/dev/null 2>&1; then
    per=$(claim_buffers cm_held 50)
    ok "$([ "$per" -ge 0 ] && [ "$per" -lt 30 ] && echo 0 || echo 1)" \
        "with 3,000 dead versions kept by the snapshot, a claim's index scan reads $per buffers (< 30)"
else
    ok 0 "# SKIP auto_explain is not installed with this server"
fi
kept=$(q "SELECT n_dead_tup + n_live_tup FROM pg_stat_user_tables WHERE relname = 'task'")
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'" >/dev/null
wait "$holder" 2>/dev/null

# ---- the mark never hides a ready task ----
q "CALL cm_cycles('cm_order', 20)" >/dev/null
low=$(q "SELECT taskguard.enqueue('cm_job', '{\"p\": \"low\"}', 'cm_order', priority => 'LOW')")
high=$(q "SELECT taskguard.enqueue('cm_job', '{\"p\": \"high\"}', 'cm_order', priority => 'HIGH')")
is "$(q "SELECT id FROM taskguard.claim('cm_order', 'cm')")" "$high" \
    "after the mark moved on, a HIGH task enqueued later is claimed before an older LOW one"
is "$(q "SELECT id FROM taskguard.claim('cm_order', 'cm')")" "$low" "then the LOW one"

q "CALL cm_cycles('cm_rollback', 8)" >/dev/null
t1=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_rollback')")
got=$(psql -X -At -d taskguard -c "BEGIN" -c "SELECT id FROM taskguard.claim('cm_rollback', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_rollback', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_rollback', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_rollback', 'cm')" -c "ROLLBACK" | sed -n 2p)
is "$got" "$t1" "a claim in a transaction takes the task"
is "$(q "SELECT id FROM taskguard.claim('cm_rollback', 'cm')")" "$t1" \
    "rolled back, the task is claimed again at once (the mark that passed it is unset)"

t2=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_savepoint')")
got=$(psql -X -At -d taskguard -c "BEGIN" -c "SAVEPOINT s" \
    -c "SELECT count(*) FROM taskguard.claim('cm_savepoint', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_savepoint', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_savepoint', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_savepoint', 'cm')" -c "ROLLBACK TO s" \
    -c "SELECT id FROM taskguard.claim('cm_savepoint', 'cm')" -c "COMMIT" | tail -2 | head -1)
is "$got" "$t2" "a claim undone by ROLLBACK TO SAVEPOINT is claimed again in the same transaction"

later=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_later', run_at => now() + interval '2 seconds', priority => 'CRITICAL')")
q "CALL cm_cycles('cm_later', 12)" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.claim('cm_later', 'cm')")" 0 "a CRITICAL task due in 2 s is not claimed before"
tg_wait_for 10 "SELECT now() > run_at FROM taskguard.task WHERE id = $later"
is "$(q "SELECT id FROM taskguard.claim('cm_later', 'cm')")" "$later" "and is claimed once due, though many were claimed past it"

lease=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_lease')")
q "SELECT count(*) FROM taskguard.claim('cm_lease', 'cm', 1, interval '1 second')" >/dev/null
q "CALL cm_cycles('cm_lease', 8)" >/dev/null
tg_wait_for 10 "SELECT now() > lease_expires_at FROM taskguard.task WHERE id = $lease"
q "SELECT taskguard._reap_expired_leases(100)" >/dev/null
# (the scheduler may have reaped and requeued it first: either is fine)
is "$(q "SELECT status IN ('failed', 'ready') FROM taskguard.task WHERE id = $lease")" t \
    "a task whose lease expired is failed by the reaper"
q "UPDATE taskguard.dead_letter SET next_retry_at = now() WHERE task_id = $lease" >/dev/null
q "SELECT taskguard._requeue_due_retries(100)" >/dev/null
is "$(q "SELECT id FROM taskguard.claim('cm_lease', 'cm')")" "$lease" "and, its retry due, is claimed again"

# The reaper of a process that finished a full scan looks at the last two
# minutes of expiries only (src/scan_window.c); a new process scans them all.
old1=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_reap')")
old2=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_reap')")
q "SELECT count(*) FROM taskguard.claim('cm_reap', 'cm', 2)" >/dev/null
q "UPDATE taskguard.task SET lease_expires_at = now() - interval '1 hour' WHERE id = $old1" >/dev/null
got=$(psql -X -At -d taskguard -c "SELECT taskguard._reap_expired_leases(100)" \
    -c "UPDATE taskguard.task SET lease_expires_at = now() - interval '1 hour' WHERE id = $old2" \
    -c "SELECT taskguard._reap_expired_leases(100)" | grep -v UPDATE | tr '\n' ' ')
is "$got" "1 0 " "a process's first reap scans every expiry, later ones the last minutes only"
is "$(q "SELECT taskguard._reap_expired_leases(100)")" 1 "a new process reaps the lease that expired an hour ago"

# Pruning the same way: tasks past task_retention in the last two minutes.
p1=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_prune')")
p2=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_prune')")
q "SELECT taskguard.complete(c.id) FROM taskguard.claim('cm_prune', 'cm', 2) c" >/dev/null
q "UPDATE taskguard.task SET finished_at = now() - interval '2 days' WHERE id = $p1" >/dev/null
got=$(psql -X -At -d taskguard -c "SELECT taskguard._prune_tasks(100)" \
    -c "UPDATE taskguard.task SET finished_at = now() - interval '2 days' WHERE id = $p2" \
    -c "SELECT taskguard._prune_tasks(100)" | grep -v UPDATE | tr '\n' ' ')
is "$got" "1 0 " "a process's first prune scans every finished task, later ones the last minutes past retention"
is "$(q "SELECT taskguard._prune_tasks(100)")" 1 "a new process prunes the task finished two days ago"

rr=$(q "SELECT taskguard.enqueue('cm_job', '{}', 'cm_rr')")
got=$(psql -X -At -d taskguard -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
    -c "SELECT raise FROM taskguard._claim_mark('cm_rr')" -c "SELECT id FROM taskguard.claim('cm_rr', 'cm')" -c "COMMIT" | sed -n 2,3p | tr '\n' ' ')
is "$got" "f $rr " "a REPEATABLE READ claimer claims but never raises the mark"

# (cm_reap's reaped tasks come back by their retries: not claims' business)
# Bad inputs of the helpers: no mark, no raise, a full scan; never an error.
long=$(printf 'x%.0s' $(seq 1 5000))
is "$(q "SELECT neg_score || ' ' || run_at || ' ' || raise FROM taskguard._claim_mark(NULL)")" \
   "-Infinity -infinity false" "_claim_mark(NULL): scan from the front, no raise"
is "$(q "SELECT raise FROM taskguard._claim_mark('$long')")" "f" "_claim_mark of a 5,000-byte name: no mark"
is "$(q "SELECT taskguard._claim_mark_raise(NULL, 1, 0, now(), 1)::text || taskguard._claim_mark_raise('cm_order', NULL, 0, now(), 1)::text
          || taskguard._claim_mark_raise('$long', 0, 0, now(), 1)::text || taskguard._claim_mark_raise('cm_order', -5, 0, now(), 1)::text")" \
   "falsefalsefalsefalse" "_claim_mark_raise refuses a NULL queue or epoch, a huge name and an epoch never handed out"
is "$(q "SELECT taskguard._scan_since(NULL, now())::text || ' ' || taskguard._scan_since('reap_leases', NULL)::text")" \
   "-infinity -infinity" "_scan_since with a NULL step or start: a full scan"
is "$(psql -X -At -d taskguard -c "SELECT taskguard._scan_full_done(NULL)" -c "SELECT taskguard._scan_full_done('$long')" \
        -c "SELECT taskguard._scan_since('$long', now())::text" | tail -1)" "-infinity" \
   "_scan_full_done of a NULL or huge step name records nothing"
# Workers, readers and PUBLIC may not move a mark or a scan window (42501).
q "DO \$\$ BEGIN DROP ROLE IF EXISTS cm_worker; CREATE ROLE cm_worker;
     PERFORM taskguard.grant_access('cm_worker', 'worker'), taskguard.grant_access('cm_worker', 'reader'); END \$\$" >/dev/null
refused=0
for call in "taskguard._claim_mark_raise('cm_order', 1, 'Infinity', 'infinity', 1)" "taskguard._claim_mark('cm_order')" \
            "taskguard._scan_full_done('reap_leases')" "taskguard._scan_since('reap_leases', now())"; do
    err=$(psql -X -At -d taskguard -c "SET ROLE cm_worker" -c "SELECT $call" 2>&1 >/dev/null)
    case "$err" in *"permission denied for function"*) refused=$((refused + 1)) ;; esac
done
is "$refused" 4 "a worker-and-reader role may execute none of the mark and scan-window helpers"

# ---- tenant marks (issue 24): a bound worker's claim starts at its (queue, tenant) mark ----
q "DO \$\$ BEGIN DROP ROLE IF EXISTS cm_tw; CREATE ROLE cm_tw; PERFORM taskguard.grant_access('cm_tw', 'worker');
     INSERT INTO taskguard.tenant_member VALUES ('cm_tw', 'cm_t'); END \$\$" >/dev/null
q "GRANT EXECUTE ON PROCEDURE cm_cycles(text, int) TO cm_tw" >/dev/null
tq() { psql -X -q -At -v ON_ERROR_STOP=1 -d taskguard -c "SET ROLE cm_tw" -c "$1"; }
# 1,000 ready tasks of 50 other tenants ahead of the bound worker's own, in its queue
q "INSERT INTO taskguard.task (queue, task_name, tenant, run_at)
   SELECT 'cm_tq', 'other_job', 'cm_o' || (g % 50), now() - interval '1 hour' FROM generate_series(1, 1000) g" >/dev/null
tclaim_buffers() {  # tclaim_buffers N: buffers a bound claim's pick reads (its LockRows node)
    psql -X -q -d taskguard -v ON_ERROR_STOP=1 -c "LOAD 'auto_explain'" \
        -c "SET auto_explain.log_min_duration = 0" -c "SET auto_explain.log_analyze = on" \
        -c "SET auto_explain.log_buffers = on" -c "SET auto_explain.log_nested_statements = on" \
        -c "SET auto_explain.log_level = notice" -c "SET client_min_messages = notice" \
        -c "SET ROLE cm_tw" -c "CALL cm_cycles('cm_tq', $1)" 2>&1 |
        awk '/LockRows/ {want = 1; next}
             want && /Buffers: shared/ {sub(/.*hit=/, ""); sum += $1 + 0; n++; if ($1 + 0 > max) max = $1 + 0; want = 0}
             END {print (n ? int(sum / n) : -1), max + 0}'
}
psql -X -q -d taskguard -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM pg_class" \
    -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
holder=$!
tg_wait_for 30 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)' AND backend_xmin IS NOT NULL"
tq "CALL cm_cycles('cm_tq', 3000)" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'cm_tq' AND tenant = 'cm_t' AND status = 'succeeded'")" 3000 \
    "a bound worker's 3,000 cycles under a held snapshot all completed, its own tasks only"
if q "LOAD 'auto_explain'" >/dev/null 2>&1; then
    read -r per max <<<"$(tclaim_buffers 50)"
    ok "$([ "$per" -ge 0 ] && [ "$per" -lt 30 ] && echo 0 || echo 1)" \
        "with its tenant's 3,000 claimed versions kept by the snapshot, a bound claim's scan reads $per buffers on average (< 30; at most $max)"
else
    ok 0 "# SKIP auto_explain is not installed with this server"
fi
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'" >/dev/null
wait "$holder" 2>/dev/null
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'cm_tq' AND tenant <> 'cm_t' AND status = 'ready'")" 1000 \
    "the other tenants' 1,000 ready tasks were never touched"

# the tenant mark never hides a ready task of its tenant
tq "CALL cm_cycles('cm_tq', 20)" >/dev/null
low=$(tq "SELECT taskguard.enqueue('cm_job', '{}', 'cm_tq', priority => 'LOW')")
high=$(tq "SELECT taskguard.enqueue('cm_job', '{}', 'cm_tq', priority => 'HIGH')")
is "$(tq "SELECT id FROM taskguard.claim('cm_tq', 'cm')") $(tq "SELECT id FROM taskguard.claim('cm_tq', 'cm')")" "$high $low" \
    "bound: after its mark moved on, a HIGH task enqueued later comes first, then the older LOW one"
tq "CALL cm_cycles('cm_tq', 20)" >/dev/null
old=$(q "WITH r AS (INSERT INTO taskguard.task (queue, task_name, tenant, run_at)
         VALUES ('cm_tq', 'cm_job', 'cm_t', now() - interval '2 hours') RETURNING id) SELECT id FROM r")
is "$(tq "SELECT id FROM taskguard.claim('cm_tq', 'cm')")" "$old" \
    "bound: a task of its tenant written by another session, older than the rest, is claimed next"
tq "CALL cm_cycles('cm_tq', 8)" >/dev/null
t1=$(tq "SELECT taskguard.enqueue('cm_job', '{}', 'cm_tq')")
got=$(psql -X -q -At -d taskguard -c "SET ROLE cm_tw" -c "BEGIN" -c "SELECT id FROM taskguard.claim('cm_tq', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" \
    -c "ROLLBACK" | sed -n 1p)
is "$got" "$t1" "bound: a claim in a transaction takes the task"
is "$(tq "SELECT id FROM taskguard.claim('cm_tq', 'cm')")" "$t1" \
    "bound: rolled back after later claims raised the mark, the task is claimed again at once"
t2=$(tq "SELECT taskguard.enqueue('cm_job', '{}', 'cm_tq')")
got=$(psql -X -q -At -d taskguard -c "SET ROLE cm_tw" -c "BEGIN" -c "SAVEPOINT s" \
    -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" \
    -c "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')" -c "ROLLBACK TO s" \
    -c "SELECT id FROM taskguard.claim('cm_tq', 'cm')" -c "COMMIT" | tail -1)
is "$got" "$t2" "bound: a claim undone by ROLLBACK TO SAVEPOINT is claimed again in the same transaction"
later=$(tq "SELECT taskguard.enqueue('cm_job', '{}', 'cm_tq', run_at => now() + interval '2 seconds', priority => 'CRITICAL')")
tq "CALL cm_cycles('cm_tq', 12)" >/dev/null
is "$(tq "SELECT count(*) FROM taskguard.claim('cm_tq', 'cm')")" 0 "bound: a CRITICAL task due in 2 s is not claimed before"
tg_wait_for 10 "SELECT now() > run_at FROM taskguard.task WHERE id = $later"
is "$(tq "SELECT id FROM taskguard.claim('cm_tq', 'cm')")" "$later" "bound: and is claimed once due, though many were claimed past it"
# one transaction makes tasks of 60 tenants ready (more than a transaction
# remembers): every tenant mark of the queue comes down to the queue's lowest
tq "CALL cm_cycles('cm_tq', 8)" >/dev/null
many=$(q "WITH r AS (INSERT INTO taskguard.task (queue, task_name, tenant, run_at)
          SELECT 'cm_tq', 'cm_job', CASE WHEN g = 60 THEN 'cm_t' ELSE 'cm_m' || g END, now() - interval '3 hours'
            FROM generate_series(1, 60) g RETURNING id, tenant) SELECT id FROM r WHERE tenant = 'cm_t'")
is "$(tq "SELECT id FROM taskguard.claim('cm_tq', 'cm')")" "$many" \
    "bound: its task among 60 tenants' made ready in one transaction is claimed next"
q "DELETE FROM taskguard.task WHERE queue = 'cm_tq' AND tenant <> 'cm_t'" >/dev/null

# helpers: bad inputs give no mark and no raise; an evicted entry's epoch is void
got=$(psql -X -q -At -d taskguard -c "BEGIN ISOLATION LEVEL REPEATABLE READ" \
    -c "SELECT raise FROM taskguard._claim_tenant_mark('cm_tq', 'cm_t')" -c "COMMIT" | sed -n 1p)
is "$got" f "a REPEATABLE READ bound claimer never raises its tenant's mark"
is "$(q "SELECT neg_score || ' ' || raise || ' ' || epoch FROM taskguard._claim_tenant_mark('cm_tq', NULL)")|$(q "SELECT raise FROM taskguard._claim_tenant_mark(NULL, 'cm_t')")|$(q "SELECT raise FROM taskguard._claim_tenant_mark('cm_tq', '$long')")" \
   "-Infinity false 0|f|f" "_claim_tenant_mark with a NULL tenant or queue, or a 5,000-byte tenant: scan from the front, no raise"
is "$(q "SELECT taskguard._claim_tenant_mark_raise(NULL, 'cm_t', 1, 0, now(), 1)::text || taskguard._claim_tenant_mark_raise('cm_tq', NULL, 1, 0, now(), 1)::text
          || taskguard._claim_tenant_mark_raise('cm_tq', 'cm_t', NULL, 0, now(), 1)::text || taskguard._claim_tenant_mark_raise('cm_tq', '$long', 1, 0, now(), 1)::text
          || taskguard._claim_tenant_mark_raise('cm_tq', 'cm_t', 0, 0, now(), 1)::text || taskguard._claim_tenant_mark_raise('cm_tq', 'cm_t', -5, 0, now(), 1)::text")" \
   "falsefalsefalsefalsefalsefalse" "_claim_tenant_mark_raise refuses NULLs, a huge name, epoch 0 and an epoch never handed out"
epoch=$(q "SELECT epoch FROM taskguard._claim_tenant_mark('cm_evict', 'cm_e0')")
q "SELECT count(*) FROM generate_series(1, 3000) g, taskguard._claim_tenant_mark('cm_evict', 'cm_e' || g)" >/dev/null
is "$(q "SELECT taskguard._claim_tenant_mark_raise('cm_evict', 'cm_e0', $epoch, 0, now(), 1)")" f \
   "after 3,000 more (queue, tenant) marks than the table holds, a raise with the evicted entry's epoch is refused"
mine=$(tq "SELECT taskguard.enqueue('cm_job', '{}', 'cm_tq', run_at => now() - interval '4 hours')")
is "$(tq "SELECT id FROM taskguard.claim('cm_tq', 'cm')")" "$mine" "and a bound claim after the evictions still gets its first task"
refused=0
for call in "taskguard._claim_tenant_mark('cm_tq', 'cm_t')" "taskguard._claim_tenant_mark_raise('cm_tq', 'cm_t', 1, 'Infinity', 'infinity', 1)"; do
    err=$(psql -X -At -d taskguard -c "SET ROLE cm_tw" -c "SELECT $call" 2>&1 >/dev/null)
    case "$err" in *"permission denied for function"*) refused=$((refused + 1)) ;; esac
done
is "$refused" 2 "a worker may execute neither tenant-mark helper"

is "$(q "SELECT count(*) FROM taskguard.task WHERE status = 'ready' AND queue LIKE 'cm_%' AND queue <> 'cm_reap'")" 0 \
    "no ready task is left behind in any of the queues above"
ok 0 "(the table kept $kept row versions while the snapshot was held)"
done_testing
