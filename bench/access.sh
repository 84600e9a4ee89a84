#!/usr/bin/env bash
# bench/access.sh — what access levels and row security cost a worker: the
# queue cycle of bench/sql/cycle_taskguard.sql and idempotency_check on random
# keys, each as the superuser (bypasses row security, like the other benches)
# and as a tenant-bound worker role (grant_access 'worker' + tenant_member),
# alternating short runs; median of the per-round ratios.
# Prints ratio: cycle_worker_vs_superuser and ratio: idem_worker_vs_superuser.
set -euo pipefail
cd "$(dirname "$0")"
PGBENCH=${TG_BIN:-/usr/lib/postgresql/15/bin}/pgbench
[ -x "$PGBENCH" ] || PGBENCH=/usr/lib/postgresql/15/bin/pgbench
secs=${BENCH_SECONDS:-3}; clients=${BENCH_CLIENTS:-4}; rounds=${BENCH_ROUNDS:-5}
role=tg_bench_tenant_worker
P() { psql -X -q -d taskguard -v ON_ERROR_STOP=1 "$@"; }
dir=$(mktemp -d /tmp/tg-bench-access.XXXXXX)
cleanup() {
    P -c "DELETE FROM taskguard.task WHERE queue = 'bench'" \
      -c "DELETE FROM taskguard.idempotency_record WHERE tenant = 'bench_tenant'" \
      -c "DELETE FROM taskguard.tenant_member WHERE role = '$role'" \
      -c "DELETE FROM taskguard.tenant_bound_role WHERE role = '$role'" \
      -c "DROP OWNED BY $role" -c "DROP ROLE $role" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
P -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS $role" -c "CREATE ROLE $role LOGIN" \
  -c "SELECT taskguard.grant_access('$role', 'worker')" \
  -c "INSERT INTO taskguard.tenant_member VALUES ('$role', 'bench_tenant')" >/dev/null
cat >"$dir/idem.sql" <<'SQL'
\set r random(1, 1000000000000)
SELECT taskguard.idempotency_check('bench-access-' || :r, task_name => 'bench');
SQL
tps() {  # tps USER SCRIPT
    "$PGBENCH" -n -M prepared -U "$1" -c "$clients" -j 2 -T "$secs" -f "$2" taskguard 2>&1 |
        sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
tps "$role" sql/cycle_taskguard.sql >/dev/null     # warm-up
cyc=(); idem=()
for round in $(seq 1 "$rounds"); do
    s=$(tps postgres sql/cycle_taskguard.sql); w=$(tps "$role" sql/cycle_taskguard.sql)
    si=$(tps postgres "$dir/idem.sql"); wi=$(tps "$role" "$dir/idem.sql")
    cyc+=("$(echo "$w / $s" | bc -l)"); idem+=("$(echo "$wi / $si" | bc -l)")
    printf 'round %d: cycle superuser %.0f, worker %.0f cycles/s; idempotency_check superuser %.0f, worker %.0f tps\n' \
        "$round" "$s" "$w" "$si" "$wi"
done
printf 'ratio: cycle_worker_vs_superuser %.2f\n' "$(median "${cyc[@]}")"
printf 'ratio: idem_worker_vs_superuser %.2f\n' "$(median "${idem[@]}")"
