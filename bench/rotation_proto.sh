#!/usr/bin/env bash
# bench/rotation_proto.sh — issue 18's storage question, measured on two
# minimal queues (bench/sql/rotation_proto.sql), not on taskguard itself:
# does a table that is updated in place grow while a snapshot is held, and
# does a ring of partitions rotated and TRUNCATEd stay bounded, at what cost?
#
#   TG_BENCH_SCRIPT=bench/rotation_proto.sh bash test/harness.sh bench
#
# Two databases (rot_a holds a REPEATABLE READ snapshot, rot_b does not), each
# with both queues.  Each minute runs the enqueue + claim + complete cycle of
# each queue in each database for ROT_SLICE seconds (4 clients) and prints
# cycles/s, held/free ratio, the queue's total size (heap + indexes, all
# partitions) and the ring's rotations.  A one-second loop prunes the plain
# queue's finished rows (ROT_RETENTION) and every ROT_PERIOD seconds rotates
# the ring.  ROT_HOLDER_READS=1 makes the holder read both queues first, so it
# holds a lock on every partition: the ring cannot TRUNCATE then.
# ROT_RACE=1 runs only the race phase: 8 clients enqueue 2 + claim 1 +
# complete 1 (a growing backlog, so every rotation moves thousands of ready
# rows) through writers with no retry, while the ring rotates every 0.5 s,
# first with rq.rotate_locked (EXCLUSIVE on the partition while its rows
# move), then with rq.rotate (rows locked one by one); it counts their errors.
set -euo pipefail
cd "$(dirname "$0")"
PGBENCH=${TG_BIN:-/usr/lib/postgresql/15/bin}/pgbench
held_min=${ROT_HELD_MINUTES:-5}
slice=${ROT_SLICE:-12}
clients=${ROT_CLIENTS:-4}
period=${ROT_PERIOD:-20}
parts=${ROT_PARTS:-5}
retention=${ROT_RETENTION:-1 minute}
reads=${ROT_HOLDER_READS:-0}
A=rot_a B=rot_b
P() { local db=$1; shift; psql -X -q -At -d "$db" -v ON_ERROR_STOP=1 "$@"; }
tmp=$(mktemp -d /tmp/bench-rot.XXXXXX)
holder=""; loops=()
stop_all() {
    [ -n "$holder" ] && { exec 7>&- 2>/dev/null || true; wait "$holder" 2>/dev/null || true; holder=""; }
    local p; for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    loops=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT

for s in pq rq; do
    cat >"$tmp/$s.sql" <<EOF
SELECT $s.enqueue('job', '{}', 'q');
SELECT coalesce(max(id), 0) AS id, coalesce(max(attempts), 0) AS att FROM $s.claim('q', 1) \gset
SELECT $s.complete(:id, :att);
EOF
done

ring() { P "$1" -c "SELECT format('%s rotations, %s skipped, %s rows moved', rotations, skipped, moved) FROM rq.ring"; }

race() {  # writers with no retry while the ring rotates every 0.5 s; count their errors
    local mode out rot w
    P postgres -c "DROP DATABASE IF EXISTS rot_race WITH (FORCE)" -c "CREATE DATABASE rot_race"
    P rot_race -f sql/rotation_proto.sql -c "SELECT rq.setup(3)" >/dev/null
    printf '%s\n' "SELECT rq.enqueue('job', '{}', 'q');" "SELECT rq.enqueue('job', '{}', 'q');" \
        "SELECT coalesce(max(id), 0) AS id, coalesce(max(attempts), 0) AS att FROM rq.claim_plain('q', 1) \\gset" \
        "SELECT rq.complete_plain(:id, :att);" >"$tmp/race.sql"
    for mode in locked rowwise; do
        P rot_race -c "TRUNCATE rq.task" -c "UPDATE rq.ring SET rotations = 0, skipped = 0, moved = 0"
        if [ $mode = locked ]; then rot="rq.rotate_locked('0')"; else rot="rq.rotate('0')"; fi
        echo "SELECT $rot \\watch 0.5" | psql -X -q -d rot_race >/dev/null 2>&1 & w=$!
        out=$("$PGBENCH" -n -M prepared -c 8 -j 2 -T 30 -f "$tmp/race.sql" rot_race 2>&1 || true)
        kill $w; wait $w 2>/dev/null || true
        printf 'race %s: %.0f cycles/s, %s writer errors; %s; left: %s\n' "$mode" \
            "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out")" "$(grep -c 'ERROR' <<<"$out" || true)" \
            "$(ring rot_race)" "$(P rot_race -c "SELECT string_agg(status || ' ' || n, ', ') FROM
                                    (SELECT status, count(*) n FROM rq.task GROUP BY 1 ORDER BY 1) s")"
    done
    P postgres -c "DROP DATABASE IF EXISTS rot_race WITH (FORCE)"
}
if [ "${ROT_RACE:-0}" = 1 ]; then race; exit 0; fi

echo "load before: $(uptime)"
echo "$(P postgres -c 'SELECT version()' | cut -d, -f1); $clients clients, slices of $slice s," \
     "ring of $parts partitions rotated every $period s, retention $retention, holder reads the queues: $reads"
for db in $A $B; do
    P postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    P $db -f sql/rotation_proto.sql -c "SELECT rq.setup($parts)" >/dev/null
    echo "SELECT pq.prune('$retention') \\watch 1" | psql -X -q -d $db >/dev/null 2>&1 & loops+=($!)
    echo "SELECT rq.rotate('$retention') \\watch $period" | psql -X -q -d $db >/dev/null 2>&1 & loops+=($!)
done

tps() {  # tps DB SCHEMA
    "$PGBENCH" -n -M prepared -c "$clients" -j 2 -T "$slice" -f "$tmp/$2.sql" "$1" 2>&1 |
        sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
size() {  # size DB SCHEMA: MB of the queue's tables and indexes, every partition
    P "$1" -c "SELECT round(sum(pg_total_relation_size(c.oid)) / 1048576.0, 1) FROM pg_class c
                WHERE c.relnamespace = '$2'::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'task%'"
}
minute() {  # minute PHASE N
    local s x y line="$1 minute $2:"
    for s in pq rq; do
        if [ $(( $2 % 2 )) = 0 ]; then x=$(tps $A $s); y=$(tps $B $s); else y=$(tps $B $s); x=$(tps $A $s); fi
        line+=$(printf ' %s %5.0f/%5.0f cycles/s (%.2f), %6s/%6s MB |' "$s" "${x:-0}" "${y:-1}" \
                  "$(echo "${x:-0} / ${y:-1}" | bc -l)" "$(size $A $s)" "$(size $B $s)")
        [ "$1" = held ] && echo "$s $(echo "${x:-0} / ${y:-1}" | bc -l)" >>"$tmp/ratios"
    done
    echo "$line held ring: $(ring $A)"
}

minute before 1
rm -f "$tmp/hold"; mkfifo "$tmp/hold"
PGAPPNAME=rot_holder psql -X -q -d $A <"$tmp/hold" >/dev/null & holder=$!
exec 7>"$tmp/hold"
if [ "$reads" = 1 ]; then
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pq.task; SELECT count(*) FROM rq.task;" >&7
else
    echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class;" >&7
fi
for i in $(seq 1 100); do
    [ "$(P $A -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rot_holder'
                  AND state = 'idle in transaction' AND backend_xmin IS NOT NULL")" = 1 ] && break
    sleep 0.1
done
: >"$tmp/ratios"
for n in $(seq 1 "$held_min"); do minute held "$n"; done
echo "ROLLBACK;" >&7; exec 7>&-; wait "$holder" || true; holder=""
minute after 1
minute after 2
for s in pq rq; do
    printf 'metric: rotation_proto_%s_worst_held_ratio %.2f\n' "$s" \
        "$(awk -v s=$s '$1 == s {print $2}' "$tmp/ratios" | sort -g | head -1)"
done
stop_all
P postgres -c "DROP DATABASE IF EXISTS $A WITH (FORCE)" -c "DROP DATABASE IF EXISTS $B WITH (FORCE)"
echo "load after: $(uptime)"
