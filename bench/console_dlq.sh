#!/usr/bin/env bash
# bench/console_dlq.sh — the operator console's dead-letter pages with
# 1,000,000 records (issue 25: first page and a filtered page < 300 ms server
# time).  Run as TG_BENCH_SCRIPT=bench/console_dlq.sh make bench.
#   metric: console_ms_<page> X   median server time (Server-Timing total) of RUNS requests
# Data, set-based in a database of its own (dropped afterwards): ROWS
# dead-letter records over 30 days (5 % PENDING, 1 % RETRYING, 54 % ABANDONED,
# 40 % RESOLVED), 4 tenants (one in four without), 50 task names, all 15
# failure types, as bench/views.sh has them; the rollups built once.  The
# console runs as an unbound admin (ROLE tgcb_admin) and, for the tenant
# line, as an admin bound to tenant2 (tgcb_t2).
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh
ROWS=${TG_BENCH_CONSOLE_ROWS:-1000000}
RUNS=${TG_BENCH_CONSOLE_RUNS:-7}
BDB=tg_bench_console
dir=$PWD/console
[ -d "$dir/node_modules/pg" ] || (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
cpid=
cleanup() {
    [ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
    [ -n "${TG_BENCH_CONSOLE_KEEP:-}" ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $BDB WITH (FORCE)" >/dev/null 2>&1
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS tgcb_admin" -c "DROP ROLE IF EXISTS tgcb_t2" >/dev/null 2>&1 || true
}
trap cleanup EXIT
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $BDB WITH (FORCE)" \
    -c "CREATE DATABASE $BDB" -c "DROP ROLE IF EXISTS tgcb_admin" -c "DROP ROLE IF EXISTS tgcb_t2" \
    -c "CREATE ROLE tgcb_admin LOGIN" -c "CREATE ROLE tgcb_t2 LOGIN" >/dev/null
start=$(date +%s)
psql -X -q -At -v ON_ERROR_STOP=1 -d "$BDB" <<SQL | sed "s/^/# /"
\\timing on
CREATE EXTENSION taskguard;
SELECT taskguard.grant_access('tgcb_admin', 'admin'), taskguard.grant_access('tgcb_t2', 'admin');
INSERT INTO taskguard.tenant_member VALUES ('tgcb_t2', 'tenant2');
ALTER TABLE taskguard.dead_letter DISABLE TRIGGER USER;
INSERT INTO taskguard.dead_letter (task_name, args, queue, tenant, service, status, failure_type,
       confidence, remediation, error_type, message, retry_count, max_retries, priority,
       first_failed_at, last_failed_at, next_retry_at, resolved_at, resolution, external)
SELECT 'task_' || (i % 50), jsonb_build_object('n', i), 'q' || (i % 4),
       CASE WHEN i % 4 > 0 THEN 'tenant' || (i % 4) END, 'svc' || (i % 10),
       s.status, (enum_range(NULL::taskguard.failure_type))[1 + i % 15], 0.5 + (i % 50) / 100.0,
       'MANUAL_INVESTIGATION', 'SomeError', 'failure number ' || i, i % 6, 5,
       (enum_range(NULL::taskguard.priority))[1 + i % 5],
       t.at - interval '1 hour', t.at,
       CASE WHEN s.status = 'PENDING' THEN now() + (i % 600) * interval '1 second' END,
       CASE WHEN s.status = 'RESOLVED' THEN t.at END,
       CASE WHEN s.status = 'RESOLVED' THEN 'retry' WHEN s.status = 'ABANDONED' THEN 'max retries' END,
       true
  FROM generate_series(1, $ROWS) i,
       LATERAL (SELECT (CASE WHEN i % 100 < 5 THEN 'PENDING' WHEN i % 100 = 5 THEN 'RETRYING'
                             WHEN i % 100 < 60 THEN 'ABANDONED' ELSE 'RESOLVED' END)::taskguard.dlq_status
                       AS status) s,
       LATERAL (SELECT now() - (i % 43200) * interval '1 minute' - (i % 997) * interval '1 millisecond' AS at) t;
ALTER TABLE taskguard.dead_letter ENABLE TRIGGER USER;
SELECT taskguard.rollup_rebuild() IS NOT NULL AS rollups_built;
VACUUM ANALYZE taskguard.dead_letter;
SQL
echo "# loaded $ROWS records in $(( $(date +%s) - start )) s"

cport=$(tg_pick_port)
log=$(mktemp /tmp/tg-bench-console.XXXXXX.log)
(cd "$dir" && PGDATABASE=$BDB TG_CONSOLE_PORT=$cport TG_CONSOLE_LOG=1 exec node server.js) >"$log" 2>&1 &
cpid=$!
end=$(( $(date +%s) + 20 ))
until grep -q "taskguard console on" "$log" 2>/dev/null || [ "$(date +%s)" -gt "$end" ]; do sleep 0.1; done
echo "# unbound admin (every tenant):"
CONSOLE_URL=http://127.0.0.1:$cport RUNS=$RUNS ROLE=tgcb_admin node "$dir/test/bench.js"
echo "# admin bound to tenant2 (row security):"
CONSOLE_URL=http://127.0.0.1:$cport RUNS=$RUNS ROLE=tgcb_t2 \
    PAGES='[["t2_dlq_first_page","/dlq"],["t2_dlq_status","/dlq?status=PENDING"],["t2_dlq_status_type","/dlq?status=ABANDONED&type=TRANSIENT_NETWORK"],["t2_overview","/"]]' \
    node "$dir/test/bench.js"
rm -f "$log"
