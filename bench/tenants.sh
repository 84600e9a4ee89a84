#!/usr/bin/env bash
# bench/tenants.sh — a tenant-bound worker against an unmapped one on the
# same queue, which holds TENANT_BACKLOG (default 1,000,000) ready tasks of
# 999 other tenants ahead of the bound worker's own (1,000 tenants in all).
# Cycle: enqueue 1 + claim 1 + complete, BENCH_CLIENTS clients, alternating
# BENCH_SECONDS rounds as each role.  Then, as the bound role, the views and
# calls a tenant reads, against the same in a database holding only its rows
# (the other tenants also have TENANT_BACKLOG/4 dead-letter records with 3
# failure events each).
# Prints ratio: tenant_bound_vs_unmapped and a time ratio per view.
set -euo pipefail
cd "$(dirname "$0")"
PGBENCH=${TG_BIN:-/usr/lib/postgresql/15/bin}/pgbench
secs=${BENCH_SECONDS:-8}; clients=${BENCH_CLIENTS:-4}; rounds=${BENCH_ROUNDS:-4}
backlog=${TENANT_BACKLOG:-1000000}
P() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

setup_db() {  # setup_db DB FOREIGN_ROWS
    local db=$1 n=$2
    P -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    P -d "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION taskguard" \
      -c "SELECT taskguard.grant_access('bench_tb', 'worker'), taskguard.grant_access('bench_tb', 'reader'),
                 taskguard.grant_access('bench_ub', 'worker'), taskguard.grant_access('bench_ub', 'reader')" \
      -c "INSERT INTO taskguard.tenant_member VALUES ('bench_tb', 'tenant_a')" \
      -c "INSERT INTO taskguard.task (queue, task_name, tenant, run_at)
          SELECT 'shared', 'other_job', 'tenant_' || (1 + g % 999), now() - interval '1 hour'
            FROM generate_series(1, $n) g" \
      -c "INSERT INTO taskguard.task (queue, task_name, tenant, run_at)
          SELECT 'shared', 'own_job', 'tenant_a', now() - interval '1 hour' FROM generate_series(1, 1000) g" \
      -c "INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence, remediation,
              retry_count, max_retries, message, first_failed_at, last_failed_at)
          SELECT 'other_job', 'tenant_' || (1 + g % 999), 'PENDING', 'TRANSIENT_NETWORK', 0.8,
                 'RETRY_WITH_BACKOFF', 2, 5, 'connection reset by peer', now() - interval '2 hours',
                 now() - (g % 3600) * interval '1 second'
            FROM generate_series(1, $n / 4) g" \
      -c "INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence, remediation,
              retry_count, max_retries, message, first_failed_at, last_failed_at)
          SELECT 'own_job', 'tenant_a', 'PENDING', 'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 2, 5,
                 'connection reset by peer', now() - interval '2 hours', now() - (g % 3600) * interval '1 second'
            FROM generate_series(1, 1000) g" \
      -c "INSERT INTO taskguard.failure_event (time, failure_id, task_name, failure_type, retry_count, action,
              confidence, tenant)
          SELECT d.last_failed_at, d.id, d.task_name, d.failure_type, r, 'retry', 0.8, d.tenant
            FROM taskguard.dead_letter d, generate_series(0, 2) r" \
      -c "SELECT taskguard.rollup_rebuild()" \
      -c "VACUUM ANALYZE taskguard.task" -c "VACUUM ANALYZE taskguard.dead_letter" \
      -c "VACUUM ANALYZE taskguard.failure_event"
}
P -d postgres -c "SET client_min_messages = warning" \
  -c "DROP ROLE IF EXISTS bench_tb" -c "DROP ROLE IF EXISTS bench_ub" \
  -c "CREATE ROLE bench_tb LOGIN" -c "CREATE ROLE bench_ub LOGIN"
setup_db bench_tenants "$backlog"

cat >"${TMPDIR:-/tmp}/tenants_cycle.sql" <<'SQL'
SELECT taskguard.enqueue('own_job', '{}', 'shared');
SELECT taskguard.complete(c.id, NULL, c.attempts) FROM taskguard.claim('shared', 'bench', 1) c;
SQL
tps() {  # tps ROLE
    "$PGBENCH" -n -c "$clients" -j 2 -T "$secs" -U "$1" -f "${TMPDIR:-/tmp}/tenants_cycle.sql" bench_tenants 2>&1 |
        sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
tps bench_tb >/dev/null; tps bench_ub >/dev/null      # warm-up
ratios=()
for round in $(seq 1 "$rounds"); do
    b=$(tps bench_tb); u=$(tps bench_ub)
    ratios+=("$(echo "$b / $u" | bc -l)")
    printf 'round %d: tenant-bound %.0f cycles/s, unmapped %.0f cycles/s, ratio %.2f (%d clients)\n' \
        "$round" "$b" "$u" "$(echo "$b / $u" | bc -l)" "$clients"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "other tenants' ready tasks ahead: $(P -d bench_tenants -c "SELECT count(*) FROM taskguard.task WHERE status = 'ready' AND tenant <> 'tenant_a'")"
printf 'ratio: tenant_bound_vs_unmapped %.2f\n' "$(median "${ratios[@]}")"

# What the bound role reads: the same calls with and without the others' rows.
setup_db bench_tenants_alone 0
P -d bench_tenants -c "DELETE FROM taskguard.task WHERE tenant = 'tenant_a' AND task_name = 'own_job' AND status <> 'ready'"
reads=()
for v in dashboard failure_distribution failure_trend retry_effectiveness alerts idempotency_stats \
         breaker_status dlq; do
    reads+=("SELECT sum(length(v::text)) FROM taskguard.$v v")
done
reads+=("SELECT sum(length(v::text)) FROM (SELECT * FROM taskguard.dlq ORDER BY last_failed_at DESC LIMIT 50) v")
reads+=("SELECT length(taskguard.prometheus_metrics())" "SELECT taskguard.idempotency_check('bench-key')")
best_ms() {  # best_ms DB SQL [ROLE]: the best of 7 in one session, as the bound role
    psql -X -At -U "${3:-bench_tb}" -d "$1" -c '\timing on' -c "$2" -c "$2" -c "$2" -c "$2" -c "$2" -c "$2" -c "$2" |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | sort -g | head -1
}
for sql in "${reads[@]}"; do
    if ! P -U bench_tb -d bench_tenants -c "$sql" >/dev/null 2>&1; then
        echo "skipped (not readable here): $sql"; continue
    fi
    alone=$(best_ms bench_tenants_alone "$sql"); crowd=$(best_ms bench_tenants "$sql")
    printf 'read: %-55s alone %7.2f ms, among %d others %7.2f ms, ratio %.2f\n' \
        "$sql" "$alone" "$backlog" "$crowd" "$(echo "$crowd / ($alone + 0.001)" | bc -l)"
done
# The unbound reader must keep its index scan: the first page as the unmapped role
page="SELECT sum(length(v::text)) FROM (SELECT * FROM taskguard.dlq ORDER BY last_failed_at DESC LIMIT 50) v"
printf 'unbound: %-53s alone %7.2f ms, among %d others %7.2f ms\n' "dlq first page" \
    "$(best_ms bench_tenants_alone "$page" bench_ub)" "$backlog" "$(best_ms bench_tenants "$page" bench_ub)"
[ -n "${BENCH_KEEP:-}" ] || P -d postgres -c "DROP DATABASE bench_tenants" -c "DROP DATABASE bench_tenants_alone"
