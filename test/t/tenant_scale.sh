#!/usr/bin/env bash
# A tenant's work costs what its own work costs: a tenant-bound worker's
# claim and a tenant-bound reader's dashboard, DLQ page and DLQ count read as
# many buffers with 10,000 other tenants' ready tasks and dead letters ahead
# of its own as with 1,000 (the claim also after 2,000 claims of its own),
# its views over the rollups as many with 999 other tenants as with 99; an unbound reader's DLQ page stays an index scan; and
# the claim still hands out only its tenants' tasks, in claim order.
. "$(dirname "$0")/../lib/tap.sh"

q "DO \$\$ BEGIN
     DROP ROLE IF EXISTS ts_worker; DROP ROLE IF EXISTS ts_pair;
     CREATE ROLE ts_worker; CREATE ROLE ts_pair;
     PERFORM taskguard.grant_access('ts_worker', 'worker'), taskguard.grant_access('ts_worker', 'reader'),
             taskguard.grant_access('ts_pair', 'worker');
     INSERT INTO taskguard.tenant_member VALUES ('ts_worker', 'ts_a'), ('ts_pair', 'ts_a'), ('ts_pair', 'ts_b');
   END \$\$" >/dev/null
q "CREATE OR REPLACE PROCEDURE ts_cycles(n int) LANGUAGE plpgsql AS \$\$
DECLARE r record;
BEGIN
  FOR i IN 1..n LOOP
    PERFORM taskguard.enqueue('ts_job', '{}', 'ts');
    FOR r IN SELECT * FROM taskguard.claim('ts', 'ts', 1) LOOP
      PERFORM taskguard.complete(r.id, NULL, r.attempts);
    END LOOP;
    COMMIT;
  END LOOP;
END \$\$" >/dev/null
q "GRANT EXECUTE ON PROCEDURE ts_cycles(int) TO ts_worker" >/dev/null

foreign() {  # foreign N: N ready tasks and N dead letters of 99 other tenants
    q "INSERT INTO taskguard.task (queue, task_name, tenant, run_at)
       SELECT 'ts', 'other_job', 'ts_' || (1 + g % 99), now() - interval '1 hour'
         FROM generate_series(1, $1) g" >/dev/null
    q "INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence,
           remediation, max_retries, first_failed_at, last_failed_at)
       SELECT 'other_job', 'ts_' || (1 + g % 99), 'PENDING', 'TRANSIENT_NETWORK', 0.8,
              'RETRY_WITH_BACKOFF', 3, now() - interval '1 hour', now() - g * interval '1 second'
         FROM generate_series(1, $1) g" >/dev/null
    q "ANALYZE taskguard.task; ANALYZE taskguard.dead_letter" >/dev/null
}
failure_events() {  # failure_events WHERE: an event for each such record, then the rollups rebuilt
    q "INSERT INTO taskguard.failure_event (time, failure_id, task_name, failure_type, retry_count,
           action, confidence, tenant)
       SELECT d.last_failed_at, d.id, d.task_name, d.failure_type, 0, 'retry', 0.8, d.tenant
         FROM taskguard.dead_letter d WHERE d.$1 AND NOT EXISTS
              (SELECT FROM taskguard.failure_event e WHERE e.failure_id = d.id)" >/dev/null
    q "SELECT taskguard.rollup_rebuild()" >/dev/null
    # The rebuild emptied the deltas (the scheduler keeps them small) and
    # rewrote the rollups: vacuumed, as autovacuum would, until the deltas
    # take no page (a vacuum that meets the scheduler's lock leaves the empty
    # pages, which every reader's scan of a delta would read).
    local end=$((SECONDS + 30))
    while :; do
        q "VACUUM ANALYZE taskguard.dlq_delta, taskguard.event_delta, taskguard.dlq_rollup,
               taskguard.failure_total, taskguard.failure_hourly" >/dev/null
        [ "$(q "SELECT pg_relation_size('taskguard.dlq_delta') + pg_relation_size('taskguard.event_delta')")" = 0 ] &&
            break
        [ "$SECONDS" -lt "$end" ] || break
    done
}
q "INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence,
       remediation, max_retries, first_failed_at, last_failed_at)
   SELECT 'own_job', 'ts_a', 'PENDING', 'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 3,
          now() - interval '1 hour', now() - g * interval '1 minute'
     FROM generate_series(1, 60) g" >/dev/null
# buffers per statement as ts_worker: the claim's pick (auto_explain of the
# statements inside claim()), and the dashboard view as a whole
claim_buffers() {
    psql -X -q -d taskguard -v ON_ERROR_STOP=1 -c "LOAD 'auto_explain'" \
        -c "SET auto_explain.log_min_duration = 0" -c "SET auto_explain.log_analyze = on" \
        -c "SET auto_explain.log_buffers = on" -c "SET auto_explain.log_nested_statements = on" \
        -c "SET auto_explain.log_level = notice" -c "SET client_min_messages = notice" \
        -c "SET ROLE ts_worker" -c "CALL ts_cycles(20)" 2>&1 |
        awk '/LockRows/ {want = 1; next}
             want && /Buffers: shared/ {sub(/.*hit=/, ""); sum += $1 + 0; n++; want = 0}
             END {print (n ? int(sum / n) : -1)}'
}
view_buffers() {  # view_buffers [QUERY]: buffers the top plan node read (planning excluded)
    psql -X -q -At -d taskguard -c "SET ROLE ts_worker" \
        -c "EXPLAIN (ANALYZE, BUFFERS) ${1:-SELECT * FROM taskguard.dashboard}" |
        awk '/Buffers: shared/ {h = 0; r = 0; for (i = 1; i <= NF; i++) { if ($i ~ /^hit=/) h = substr($i, 5) + 0;
             if ($i ~ /^read=/) r = substr($i, 6) + 0 } print h + r; exit}'
}

page="SELECT * FROM taskguard.dlq ORDER BY last_failed_at DESC LIMIT 50"
dlq_count="SELECT count(*) FROM taskguard.dlq"
rollups() {  # buffers of the views over the rollups, each
    echo "$(view_buffers "SELECT * FROM taskguard.failure_distribution")" \
         "$(view_buffers "SELECT * FROM taskguard.failure_trend")" \
         "$(view_buffers "SELECT * FROM taskguard.retry_effectiveness")"
}
foreign 1000
c1=$(claim_buffers); v1=$(view_buffers); p1=$(view_buffers "$page"); n1=$(view_buffers "$dlq_count")
foreign 9000
c2=$(claim_buffers); v2=$(view_buffers); p2=$(view_buffers "$page"); n2=$(view_buffers "$dlq_count")
# 2,000 more of its own claims from a backlog of its own: the entries they
# leave at the front of its index range (where no insert comes to clean a
# page, until vacuum) are behind its (queue, tenant) claim mark
q "INSERT INTO taskguard.task (queue, task_name, tenant, run_at)
   SELECT 'ts', 'own_backlog', 'ts_a', now() - interval '3 hours' FROM generate_series(1, 3000)" >/dev/null
psql -X -q -d taskguard -v ON_ERROR_STOP=1 -c "SET ROLE ts_worker" -c "CALL ts_cycles(2000)" >/dev/null
c3=$(claim_buffers)
q "DELETE FROM taskguard.task WHERE queue = 'ts' AND tenant = 'ts_a' AND status = 'ready'" >/dev/null
# the rollups hold a row per tenant (and type, status, hour): a failure event
# for every record so far (99 other tenants), then for 9,000 records of 900
# more tenants
failure_events "task_name IN ('own_job', 'other_job')"
r1=$(rollups)
q "INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence,
       remediation, max_retries, first_failed_at, last_failed_at)
   SELECT 'other_job', 'ts_' || (100 + g % 900), 'PENDING', 'TRANSIENT_NETWORK', 0.8,
          'RETRY_WITH_BACKOFF', 3, now() - interval '1 hour', now() - g * interval '1 second'
     FROM generate_series(1, 9000) g" >/dev/null
failure_events "task_name = 'other_job'"
r2=$(rollups)
if q "LOAD 'auto_explain'" >/dev/null 2>&1; then
    ok "$([ "$c1" -ge 0 ] && [ "$c2" -le $((c1 + 2)) ] && echo 0 || echo 1)" \
        "a tenant-bound claim reads $c1 buffers among 1,000 others' ready tasks, $c2 among 10,000"
    ok "$([ "$c1" -ge 0 ] && [ "$c3" -le $((c1 + 2)) ] && echo 0 || echo 1)" \
        "and $c3 after 2,000 claims of its own from a backlog (its claim mark starts past their entries)"
else
    ok 0 "# SKIP auto_explain is not installed with this server"
fi
ok "$([ -n "$v1" ] && [ -n "$v2" ] && [ "$v2" -le $((v1 + 20)) ] && echo 0 || echo 1)" \
    "a tenant-bound reader's dashboard reads $v1 buffers among 1,000 others' ready tasks, $v2 among 10,000"
# the rollups: a bound reader reads its tenants' rows by key, not every tenant's
# (through _visible_tenants they read 32 11 23 buffers with 99 tenants, 115
# 45 54 with 999; the margin is for plans that switch between a scan and an
# index as the tables grow)
read -r fd1 ft1 re1 <<<"$r1"; read -r fd2 ft2 re2 <<<"$r2"
ok "$([ -n "$re2" ] && [ "$fd2" -le $((fd1 + 10)) ] && [ "$ft2" -le $((ft1 + 10)) ] && [ "$re2" -le $((re1 + 10)) ] && echo 0 || echo 1)" \
    "a tenant-bound reader's failure_distribution, failure_trend, retry_effectiveness read $r1 buffers with 99 other tenants, $r2 with 999"
# the DLQ view: a bound reader's rows through its tenant's index range
# (row security alone is no index key: it read every tenant's records)
ok "$([ -n "$p1" ] && [ -n "$p2" ] && [ "$p2" -le $((p1 + 3)) ] && echo 0 || echo 1)" \
    "a tenant-bound reader's DLQ first page reads $p1 buffers among 1,000 others' dead letters, $p2 among 10,000"
ok "$([ -n "$n1" ] && [ -n "$n2" ] && [ "$n2" -le $((n1 + 3)) ] && echo 0 || echo 1)" \
    "a tenant-bound reader's DLQ count reads $n1 buffers among 1,000 others' dead letters, $n2 among 10,000"
unbound_page=$(psql -X -q -At -d taskguard -c "CREATE ROLE ts_admin" -c "SELECT taskguard.grant_access('ts_admin', 'reader')" \
    -c "SET ROLE ts_admin" -c "EXPLAIN (COSTS OFF) $page" -c "RESET ROLE" -c "DROP OWNED BY ts_admin" -c "DROP ROLE ts_admin")
ok "$(grep -q "Index Scan Backward using dead_letter_recent_idx" <<<"$unbound_page" &&
      grep -q "Merge Append" <<<"$unbound_page" && ! grep -qE "Seq Scan|Gather" <<<"$unbound_page" && echo 0 || echo 1)" \
    "an unbound reader's DLQ first page is still an index scan of dead_letter_recent_idx, merged, no scan and sort of every record"
# a reader bound to two tenants: both ranges of dead_letter_tenant_idx
q "INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence,
       remediation, max_retries, last_failed_at)
   SELECT 'b_job', 'ts_b', 'PENDING', 'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 3,
          now() - g * interval '90 seconds' FROM generate_series(1, 5) g" >/dev/null
pair_read() {
    psql -X -q -At -d taskguard -c "CREATE ROLE ts_pair_reader" \
        -c "SELECT taskguard.grant_access('ts_pair_reader', 'reader')" \
        -c "INSERT INTO taskguard.tenant_member VALUES ('ts_pair_reader', 'ts_a'), ('ts_pair_reader', 'ts_b')" \
        -c "SET ROLE ts_pair_reader" -c "SELECT 'got:' || ($1)" -c "RESET ROLE" \
        -c "DELETE FROM taskguard.tenant_member WHERE role = 'ts_pair_reader'" \
        -c "DELETE FROM taskguard.tenant_bound_role WHERE role = 'ts_pair_reader'" \
        -c "DROP OWNED BY ts_pair_reader" -c "DROP ROLE ts_pair_reader" | sed -n 's/^got://p'
}
is "$(pair_read "SELECT count(*) FILTER (WHERE tenant = 'ts_a') || '/' || count(*) FROM taskguard.dlq")" \
   "60/65" "a reader bound to two tenants sees the records of both, no one else's"
is "$(pair_read "SELECT string_agg(tenant, ',' ORDER BY n) FROM (SELECT tenant, row_number() OVER () AS n
                   FROM (SELECT * FROM taskguard.dlq ORDER BY last_failed_at DESC LIMIT 4) p) x")" \
   "ts_a,ts_b,ts_a,ts_b" "its first page merges both tenants' records, newest first"
is "$(psql -X -q -At -d taskguard -c "SET ROLE ts_worker" -c "SELECT count(*) FROM taskguard.dlq WHERE tenant = 'ts_a'")/$(psql -X -q -At -d taskguard -c "SET ROLE ts_worker" -c "SELECT count(*) FROM taskguard.dlq")" \
   "60/60" "and sees its own 60 records, no other tenant's"
is "$(psql -X -q -At -d taskguard -c "SET ROLE ts_worker" -c "SELECT ready FROM taskguard.dashboard")" \
   "$(q "SELECT count(*) FROM taskguard.task WHERE tenant = 'ts_a' AND status = 'ready'")" \
   "and counts its own ready tasks only"

# what the claims hand out
q "INSERT INTO taskguard.task (queue, task_name, tenant, priority, priority_score, run_at) VALUES
   ('ts', 'own_low', 'ts_a', 'LOW', 1, now() - interval '2 hours'),
   ('ts', 'own_high', 'ts_a', 'HIGH', 3, now() - interval '1 minute'),
   ('ts', 'b_critical', 'ts_b', 'CRITICAL', 4, now())" >/dev/null
is "$(psql -X -q -At -d taskguard -c "SET ROLE ts_worker" -c "SELECT task_name || ':' || tenant FROM taskguard.claim('ts', 'w', 2)" | tr '\n' ' ')" \
   "own_high:ts_a own_low:ts_a " "the bound worker gets its own tasks in claim order, none of the 10,000 others'"
is "$(psql -X -q -At -d taskguard -c "SET ROLE ts_pair" -c "SELECT task_name || ':' || tenant FROM taskguard.claim('ts', 'w', 1)")" \
   "b_critical:ts_b" "a worker bound to two tenants gets the more urgent of either"
first=$(q "SELECT id FROM taskguard.task WHERE queue = 'ts' AND status = 'ready'
            ORDER BY priority_score DESC, run_at, id LIMIT 1")
is "$(q "SELECT id FROM taskguard.claim('ts', 'w', 1)")" "$first" \
   "an unmapped worker gets the first task in claim order, of any tenant"
is "$(psql -X -q -At -d taskguard -c "SET ROLE ts_worker" -c "SELECT count(*) FROM taskguard.claim('ts', 'w', 100) WHERE tenant <> 'ts_a'")" 0 \
   "a batch claim by the bound worker holds no other tenant's task"
q "DELETE FROM taskguard.task WHERE queue = 'ts'" >/dev/null
done_testing
