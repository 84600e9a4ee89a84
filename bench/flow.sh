#!/usr/bin/env bash
# bench/flow.sh — claim() with three flow limits that never bind (a queue
# cap, a task-type rate limit, a cap on each flow key, all matching every
# task) against claim() with no limit, in one database, alternating rounds.
# Cycles: single (enqueue 1, claim 1, complete) and batch (enqueue_many 10,
# claim 10, complete_many).  Prints ratio: flow_limits3_vs_none_single and
# flow_limits3_vs_none_batch (docs/flow.md; the issue asks for >= 0.9).
# Then fair share between 10 tenants (a tenant row with a weight) against
# none, single cycle: ratio flow_fair_vs_none_single.  Last, bench/flow_cap.py:
# a binding cap against its allowance, with the Python worker (ratio
# cap_throughput_vs_allowance, metric flow_claims_per_task).
set -euo pipefail
cd "$(dirname "$0")"
PGBENCH=${TG_BIN:-/usr/lib/postgresql/15/bin}/pgbench
secs=${BENCH_SECONDS:-4}; clients=${BENCH_CLIENTS:-4}; rounds=${BENCH_ROUNDS:-5}
db=bench_flow
P() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
P -c "SET client_min_messages = warning" -c "CREATE EXTENSION taskguard"

tmp=${TMPDIR:-/tmp}
cat >"$tmp/flow_single.sql" <<'SQL'
SELECT taskguard.enqueue('bench_job', '{}', 'bench', flow_key => 'acct-' || (random() * 100)::int);
SELECT taskguard.complete(c.id, NULL, c.attempts) FROM taskguard.claim('bench', 'pgbench', 1) c;
SQL
cat >"$tmp/flow_batch.sql" <<'SQL'
SELECT count(*) FROM taskguard.enqueue_many('bench_job', array_fill('{}'::jsonb, ARRAY[10]), 'bench',
                                            flow_key => 'acct-' || (random() * 100)::int);
SELECT coalesce(array_agg(id), '{}') AS ids, coalesce(array_agg(attempts), '{}') AS atts FROM taskguard.claim('bench', 'pgbench', 10) \gset
SELECT taskguard.complete_many(:ids::bigint[], :atts::int[]);
SQL
limits_on() {
    P -c "INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', 'bench', 1000000)" \
      -c "INSERT INTO taskguard.flow_limit (scope, name, rate, burst) VALUES ('task_name', 'bench_job', 1000000, 1000000)" \
      -c "INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('flow_key', '*', 1000000)"
}
limits_off() { P -c "DELETE FROM taskguard.flow_limit"; }
tps() {  # tps SCRIPT
    P -c "DELETE FROM taskguard.task" -c "VACUUM taskguard.task" >/dev/null
    "$PGBENCH" -n -M prepared -c "$clients" -j 2 -T "$secs" -f "$1" "$db" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

for mode in single batch; do
    script=$tmp/flow_$mode.sql
    tps "$script" >/dev/null      # warm-up
    ratios=()
    for round in $(seq 1 "$rounds"); do
        limits_off; n=$(tps "$script")
        limits_on; l=$(tps "$script")
        ratios+=("$(echo "$l / $n" | bc -l)")
        printf 'round %d (%s): no limit %.0f cycles/s, three limits %.0f cycles/s, ratio %.2f (%d clients)\n' \
            "$round" "$mode" "$n" "$l" "$(echo "$l / $n" | bc -l)" "$clients"
    done
    limits_off
    printf 'ratio: flow_limits3_vs_none_%s %.2f\n' "$mode" "$(median "${ratios[@]}")"
done
# fair share: the same single cycle, tasks of 10 tenants
sed "s/flow_key => 'acct-' || (random() \* 100)::int/tenant => 'tenant-' || (random() * 10)::int/" \
    "$tmp/flow_single.sql" >"$tmp/flow_fair.sql"
tps "$tmp/flow_fair.sql" >/dev/null
ratios=()
for round in $(seq 1 "$rounds"); do
    limits_off; n=$(tps "$tmp/flow_fair.sql")
    P -c "INSERT INTO taskguard.flow_limit (scope, name, weight) VALUES ('tenant', '*', 1), ('tenant', 'tenant-1', 3)"
    l=$(tps "$tmp/flow_fair.sql")
    ratios+=("$(echo "$l / $n" | bc -l)")
    printf 'round %d (fair): no limit %.0f cycles/s, fair share %.0f cycles/s, ratio %.2f (%d clients)\n' \
        "$round" "$n" "$l" "$(echo "$l / $n" | bc -l)" "$clients"
done
limits_off
printf 'ratio: flow_fair_vs_none_single %.2f\n' "$(median "${ratios[@]}")"
# a binding cap with the Python worker: throughput against the cap's allowance, in the
# scheduler's database (freed slots and tokens notified by it), with 50 and 200 ms tasks,
# then in this one (no scheduler: the finishing task's commit notifies)
main=$(psql -X -At -d postgres -c "SHOW taskguard.database")
/usr/bin/python3 flow_cap.py "$main" 50 400
/usr/bin/python3 flow_cap.py "$main" 200 160 200ms
/usr/bin/python3 flow_cap.py "$db" 50 400 no_scheduler
psql -X -q -d postgres -c "DROP DATABASE $db"
