#!/usr/bin/env bash
# test/soak.sh — `make soak` (long, not in CI): continuous enqueue/claim/complete
# with ~10 % transient failures for SOAK_SECONDS (default 600, after a
# SOAK_WARMUP of 60 s) at 8 clients.
# Passes when throughput in the last minute is >= 0.8 of the first minute and
# the tables stay bounded (retention is shortened so pruning runs throughout).
# Then the held-snapshot phase (issue 18): another session holds a REPEATABLE
# READ snapshot for SOAK_HELD_SECONDS (default 300; 0 skips it) while the same
# workload runs; it reports cycles/s and table sizes per minute against the
# last minute of the soak, and a minute after release.  It fails the soak
# only when SOAK_HELD_MIN_RATIO is set and the worst held minute is below it.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SOAK_SECONDS:-600}
P() { psql -X -q -At -d taskguard -v ON_ERROR_STOP=1 "$@"; }
P -c "ALTER SYSTEM SET taskguard.task_retention = '30 seconds'" \
  -c "ALTER SYSTEM SET taskguard.event_retention = '1 minute'" \
  -c "ALTER SYSTEM SET taskguard.dlq_retention = '1 minute'" -c "SELECT pg_reload_conf()" >/dev/null
sizes() {
    P -c "SELECT string_agg(format('%s=%s', c, pg_size_pretty(pg_total_relation_size(c))), ' ' ORDER BY c)
            FROM unnest(ARRAY['taskguard.task', 'taskguard.dead_letter', 'taskguard.failure_event']) c
           WHERE to_regclass(c) IS NOT NULL"
}
bytes() {
    P -c "SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['taskguard.task', 'taskguard.dead_letter', 'taskguard.failure_event']) c
           WHERE to_regclass(c) IS NOT NULL"
}
log=$(mktemp)
# Warm-up, not measured: until task_retention (30 s) has passed twice, the
# tables are still filling from empty, and a minute measured then is not the
# steady state later minutes are compared with.
warm=${SOAK_WARMUP:-60}
echo "warm-up: ${warm} s"
"${TG_BIN}/pgbench" -n -M prepared -c 8 -j 2 -T "$warm" -f bench/sql/soak_cycle.sql taskguard 2>&1 |
    sed -n 's/^tps = \([0-9.]*\) .*/warm-up cycles\/s: \1/p'
"${TG_BIN}/pgbench" -n -M prepared -c 8 -j 2 -T "$secs" -P 10 -f bench/sql/soak_cycle.sql taskguard >"$log" 2>&1 &
pb=$!
minute=0; first_size=""
while kill -0 "$pb" 2>/dev/null; do
    sleep 60 || true
    minute=$((minute + 1))
    echo "minute $minute: $(sizes) dead tuples: $(P -c "SELECT string_agg(format('%s=%s', relname, n_dead_tup), ' ' ORDER BY relname) FROM pg_stat_user_tables WHERE schemaname = 'taskguard' AND relname IN ('task', 'dead_letter', 'failure_event')")"
    [ "$minute" -eq 2 ] && first_size=$(bytes)
done
wait "$pb" || { cat "$log"; echo "soak: pgbench failed"; exit 1; }
# progress lines: "progress: 10.0 s, 812.3 tps, ..."
tps=($(sed -n 's/^progress: [0-9.]* s, \([0-9.]*\) tps.*/\1/p' "$log"))
n=${#tps[@]}
[ "$n" -ge 12 ] || { echo "soak: too short to compare minutes ($n samples)"; cat "$log"; exit 1; }
first=$(printf '%s\n' "${tps[@]:0:6}" | awk '{s+=$1} END {print s/NR}')
last=$(printf '%s\n' "${tps[@]:$((n-6)):6}" | awk '{s+=$1} END {print s/NR}')
ratio=$(echo "$last / $first" | bc -l)
end_size=$(bytes)
echo "cycles/s every 10 s: ${tps[*]}"
printf 'metric: soak_first_minute_cycles_per_s %.0f\n' "$first"
printf 'metric: soak_last_minute_cycles_per_s %.0f\n' "$last"
printf 'ratio: soak_last_vs_first_minute %.2f\n' "$ratio"
echo "sizes at the end: $(sizes)"
P -c "SELECT status, count(*) FROM taskguard.task GROUP BY 1 ORDER BY 1" | sed 's/^/tasks: /'
grow=$(echo "${end_size:-0} / ${first_size:-1}" | bc -l)
printf 'ratio: soak_size_end_vs_minute2 %.2f\n' "$grow"
ok=1
[ "$(echo "$ratio >= 0.8" | bc -l)" = 1 ] || { echo "soak: throughput fell below 0.8 of the first minute"; ok=0; }
[ "$(echo "$grow <= 3" | bc -l)" = 1 ] || { echo "soak: tables grew more than 3x after minute 2"; ok=0; }

# The held-snapshot phase: minutes of pgbench with a snapshot held by an idle
# REPEATABLE READ session, then one minute after its release.
held=${SOAK_HELD_SECONDS:-300}
if [ "$held" -gt 0 ]; then
    minute_tps() {  # one minute of the soak workload: cycles/s
        "${TG_BIN}/pgbench" -n -M prepared -c 8 -j 2 -T 60 -f bench/sql/soak_cycle.sql taskguard 2>&1 |
            sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
    }
    dead() { P -c "SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE schemaname = 'taskguard'"; }
    fifo=$(mktemp -u); mkfifo "$fifo"
    PGAPPNAME=soak_held_snapshot psql -X -q -d taskguard <"$fifo" >/dev/null 2>&1 &
    holder=$!
    exec 7>"$fifo"
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class;" >&7
    echo "held-snapshot phase: $(( (held + 59) / 60 )) min with a snapshot held, then 1 min after release (soak's last minute: $(printf '%.0f' "$last") cycles/s)"
    worst=""
    for m in $(seq 1 $(( (held + 59) / 60 ))); do
        t=$(minute_tps); r=$(echo "${t:-0} / $last" | bc -l)
        [ -z "$worst" ] || [ "$(echo "$r < $worst" | bc -l)" = 1 ] && worst=$r
        printf 'held minute %d: %.0f cycles/s (%.2f of the soak'"'"'s last minute), %s, dead rows %s, blocker: %s\n' \
            "$m" "${t:-0}" "$r" "$(sizes)" "$(dead)" \
            "$(P -c "SELECT string_agg(format('%s %s %s', pid, application_name, date_trunc('second', age)), '; ')
                      FROM taskguard.vacuum_blockers WHERE application_name = 'soak_held_snapshot'" 2>/dev/null)"
    done
    echo "ROLLBACK;" >&7; exec 7>&-; wait "$holder" || true; rm -f "$fifo"
    t=$(minute_tps)
    printf 'after release: %.0f cycles/s, %s, dead rows %s\n' "${t:-0}" "$(sizes)" "$(dead)"
    printf 'ratio: soak_held_snapshot_vs_last_minute %.2f\n' "$worst"
    if [ -n "${SOAK_HELD_MIN_RATIO:-}" ] && [ "$(echo "$worst < $SOAK_HELD_MIN_RATIO" | bc -l)" = 1 ]; then
        echo "soak: with a snapshot held throughput fell below $SOAK_HELD_MIN_RATIO of the soak's last minute"; ok=0
    fi
fi
[ $ok = 1 ] && echo "soak: 1 passed, 0 failed" || { echo "soak: 0 passed, 1 failed"; exit 1; }
