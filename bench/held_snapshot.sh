#!/usr/bin/env bash
# bench/held_snapshot.sh — the worker cycle while another session holds a
# snapshot (issue 18), side by side with the same cycle without one, in one
# run.  `make bench-held` runs it (it is long: `make bench` leaves it out).
#
# Two databases of the one cluster, each with taskguard: held_a and held_b.
# Since PostgreSQL 14 vacuum's horizon for ordinary tables counts only the
# backends of the table's own database (and those of no database), so a
# REPEATABLE READ session idle in held_a holds back vacuum there and not in
# held_b (bench/README.md shows the check).  pgbench runs the same cycle
# (sql/held_cycle.sql) in the two databases in turn, HELD_SLICE seconds each,
# so both see the same machine; a one-second loop over the scheduler's steps
# in each database stands in for the scheduler (which works in one database
# only; escalation every 10 s, as the scheduler runs it), with
# task_retention HELD_RETENTION so that finished tasks are pruned, and
# taskguard.batch_size 20000: the scheduler repeats a step while it fills its
# batch, tick() runs each step once, so it needs a batch above a second's
# completions to keep up the same way.
#
# Per configuration (HELD_CONFIGS: clients:batch, default "4:1 16:1 4:10"):
#   before — BEFORE_MINUTES with no snapshot held (the two databases agree?)
#   held   — HELD_MINUTES with the snapshot held in held_a
#   after  — AFTER_MINUTES after it is released (autovacuum only, no VACUUM FULL)
# Each minute prints cycles/s in both databases, their ratio, the size of
# taskguard's tables (pg_total_relation_size, heap + indexes + TOAST) and the
# dead row versions waiting.  Then, per configuration,
# `ratio: held_snapshot_vs_free[_cN_bM] MIN` (the worst held minute) and
# `metric: held_snapshot_vs_free[_cN_bM]_mean MEAN`; 4:1 has no suffix.
set -euo pipefail
cd "$(dirname "$0")"
PGBENCH=${TG_BIN:-/usr/lib/postgresql/15/bin}/pgbench
held_min=${HELD_MINUTES:-10}
before_min=${BEFORE_MINUTES:-1}
after_min=${AFTER_MINUTES:-2}
slice=${HELD_SLICE:-15}
configs=${HELD_CONFIGS:-4:1 16:1 4:10}
retention=${HELD_RETENTION:-1 minute}
A=held_a B=held_b
pairs=$(( 60 / (2 * slice) )); [ "$pairs" -ge 1 ] || pairs=1

P() { local db=$1; shift; psql -X -q -At -d "$db" -v ON_ERROR_STOP=1 "$@"; }
tmp=$(mktemp -d /tmp/bench-held.XXXXXX)
holder=""; ticks=()
stop_all() {
    [ -n "$holder" ] && { exec 7>&- 2>/dev/null || true; wait "$holder" 2>/dev/null || true; holder=""; }
    local p
    for p in "${ticks[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    ticks=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT

P postgres -c "ALTER SYSTEM SET taskguard.task_retention = '$retention'" \
  -c "ALTER SYSTEM SET taskguard.batch_size = 20000" -c "SELECT pg_reload_conf()" >/dev/null
echo "load before: $(uptime)"
echo "$(P postgres -c "SELECT version()" | cut -d, -f1), synchronous_commit=$(P postgres -c 'SHOW synchronous_commit')," \
     "fsync=$(P postgres -c 'SHOW fsync'), autovacuum_naptime=$(P postgres -c 'SHOW autovacuum_naptime')," \
     "task_retention=$retention, slices of $slice s"

fresh_dbs() {  # both databases new, with taskguard, and a tick() loop each
    local db
    for db in $A $B; do
        P postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
        P $db -c "SET client_min_messages = warning" -c "CREATE EXTENSION taskguard"
        # \watch: one session, one short transaction a second, like the
        # scheduler's pass; and like it, priority escalation every 10 s only
        echo "SELECT count(taskguard._tick_step(s, current_setting('taskguard.batch_size')::int))
                FROM unnest(taskguard._tick_steps()) s
               WHERE s <> 'escalate' OR extract(epoch FROM clock_timestamp())::int % 10 = 0 \\watch 1" |
            PGAPPNAME=held_bench_tick psql -X -q -d $db >/dev/null 2>&1 &
        ticks+=($!)
    done
}

hold() {  # a REPEATABLE READ snapshot in held_a, idle in transaction
    rm -f "$tmp/hold"; mkfifo "$tmp/hold"
    PGAPPNAME=held_snapshot_bench psql -X -q -d $A <"$tmp/hold" >/dev/null &
    holder=$!
    exec 7>"$tmp/hold"
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class;" >&7
    local i
    for i in $(seq 1 100); do
        [ "$(P $A -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'held_snapshot_bench'
                        AND state = 'idle in transaction' AND backend_xmin IS NOT NULL")" = 1 ] && return 0
        sleep 0.1
    done
    echo "held_snapshot: the holder session did not start"; exit 1
}

release() {
    echo "ROLLBACK;" >&7
    exec 7>&-
    wait "$holder" || true
    holder=""
}

tps() {  # tps DB CLIENTS BATCH: cycles per second over one slice
    local out
    out=$("$PGBENCH" -n -M prepared -c "$2" -j 2 -T "$slice" -D batch="$3" -f sql/held_cycle.sql "$1" 2>&1) ||
        { echo "$out" >&2; echo "held_snapshot: pgbench failed in $1" >&2; return 1; }
    sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out"
}

sizes() {  # the task table (its partitions) and all of taskguard's tables, heap + indexes; dead rows waiting
    P "$1" -c "SELECT format('task %s, all %s, dead rows %s',
                  pg_size_pretty((SELECT sum(pg_total_relation_size(t.relid))
                                    FROM pg_partition_tree('taskguard.task') t)),
                  pg_size_pretty(sum(pg_total_relation_size(c.oid))),
                  (SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE schemaname = 'taskguard'))
                 FROM pg_class c WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind = 'r'"
}
bytes() { P "$1" -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
                      WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind = 'r'"; }

minute() {  # minute PHASE N CLIENTS BATCH: alternate slices, print the minute, echo the ratio to fd 8
    local phase=$1 n=$2 cl=$3 b=$4 ta=0 tb=0 x y k
    for k in $(seq 1 "$pairs"); do
        # alternate which database goes first, so neither always follows the other
        if [ $(( (n + k) % 2 )) = 0 ]; then x=$(tps $A "$cl" "$b"); y=$(tps $B "$cl" "$b")
        else y=$(tps $B "$cl" "$b"); x=$(tps $A "$cl" "$b"); fi
        ta=$(echo "$ta + ${x:-0}" | bc -l); tb=$(echo "$tb + ${y:-0}" | bc -l)
    done
    ta=$(echo "$ta / $pairs" | bc -l); tb=$(echo "$tb / $pairs" | bc -l)
    local r; r=$(echo "$ta / $tb" | bc -l)
    printf '%-6s minute %2d: held_a %6.0f cycles/s, held_b %6.0f cycles/s, ratio %.2f | held_a: %s | held_b: %s\n' \
        "$phase" "$n" "$ta" "$tb" "$r" "$(sizes $A)" "$(sizes $B)"
    echo "$r" >&8
}

summary=()
for cfg in $configs; do
    cl=${cfg%%:*}; b=${cfg##*:}
    name=held_snapshot_vs_free; [ "$cfg" = 4:1 ] || name=${name}_c${cl}_b${b}
    echo "== $cl clients, batch $b: before ${before_min} min, snapshot held ${held_min} min, after ${after_min} min"
    fresh_dbs
    tps $A "$cl" "$b" >/dev/null; tps $B "$cl" "$b" >/dev/null    # warm-up
    for n in $(seq 1 "$before_min"); do minute before "$n" "$cl" "$b" 8>/dev/null; done
    hold
    base_a=$(bytes $A); base_b=$(bytes $B)
    : >"$tmp/ratios"
    for n in $(seq 1 "$held_min"); do minute held "$n" "$cl" "$b" 8>>"$tmp/ratios"; done
    held_a_end=$(bytes $A)
    release
    for n in $(seq 1 "$after_min"); do minute after "$n" "$cl" "$b" 8>/dev/null; done
    min=$(sort -g "$tmp/ratios" | head -1)
    mean=$(awk '{s+=$1} END {print s/NR}' "$tmp/ratios")
    printf 'sizes of taskguard tables: held_a %s MB when the snapshot was taken, %s MB at its release, %s MB %s min later; held_b %s MB -> %s MB\n' \
        "$((base_a / 1048576))" "$((held_a_end / 1048576))" "$(( $(bytes $A) / 1048576 ))" "$after_min" \
        "$((base_b / 1048576))" "$(( $(bytes $B) / 1048576 ))"
    summary+=("$(printf 'ratio: %s %.2f' "$name" "$min")" "$(printf 'metric: %s_mean %.2f' "$name" "$mean")")
    printf 'ratio: %s %.2f\nmetric: %s_mean %.2f\n' "$name" "$min" "$name" "$mean"
    stop_all
done
P postgres -c "ALTER SYSTEM RESET taskguard.task_retention" -c "ALTER SYSTEM RESET taskguard.batch_size" \
  -c "SELECT pg_reload_conf()" >/dev/null
P postgres -c "DROP DATABASE IF EXISTS $A" -c "DROP DATABASE IF EXISTS $B"
echo "load after: $(uptime)"
printf '%s\n' "${summary[@]}"
