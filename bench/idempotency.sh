#!/usr/bin/env bash
# bench/idempotency.sh — idempotency_check on random keys against a plain
# INSERT … ON CONFLICT DO NOTHING into a one-column table: pgbench, 16
# clients, both in this run, each for TG_BENCH_SECONDS (default 12) in total,
# run alternately in two halves (plain, check, plain, check) so that a change
# in the machine's load during the run hits both alike.
# Prints ratio: idem_check_vs_insert (goal ≥ 0.8) and metric:
# idem_check_p99_ms (per-transaction latency from pgbench -l at those 16
# clients; goal < 1), then the same p99s at 2 clients (one per core here), where
# latency is the call's own and not the wait for a core.
set -euo pipefail
cd "$(dirname "$0")/.."
PGBENCH=${TG_BIN:-/usr/lib/postgresql/15/bin}/pgbench
[ -x "$PGBENCH" ] || PGBENCH=/usr/lib/postgresql/15/bin/pgbench
DB=${TG_BENCH_DB:-taskguard}
SECS=${TG_BENCH_SECONDS:-12}
CLIENTS=16
dir=$(mktemp -d /tmp/tg-bench-idem.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 777 "$dir"

psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
DROP TABLE IF EXISTS bench_plain;
CREATE TABLE bench_plain (k text PRIMARY KEY);
TRUNCATE taskguard.idempotency_record;
SQL

cat >"$dir/plain.sql" <<'SQL'
\set r random(1, 1000000000000)
INSERT INTO bench_plain(k) VALUES ('bench-' || :r) ON CONFLICT DO NOTHING;
SQL
cat >"$dir/idem.sql" <<'SQL'
\set r random(1, 1000000000000)
SELECT taskguard.idempotency_check('bench-' || :r, task_name => 'bench');
SQL

run() {  # run NAME PART: TPS on stdout, per-transaction log under $dir/NAME_PART_log*
    (cd "$dir" && "$PGBENCH" -n -M prepared -c "$CLIENTS" -j "$(( CLIENTS < 4 ? CLIENTS : 4 ))" -T "$HALF" \
        -l --log-prefix="$1_$2_log" -f "$dir/$1.sql" "$DB" 2>&1) >"$dir/$1_$2.out" ||
        { cat "$dir/$1_$2.out" >&2; return 1; }
    sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$dir/$1_$2.out"
}

p99_ms() {  # p99 of column 3 (latency, µs) of all logs of NAME
    cat "$dir/$1"_*_log* | awk '{print $3}' | sort -n |
        awk '{v[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.3f\n", v[i]/1000}'
}

HALF=$(( (SECS + 1) / 2 ))
p1=$(run plain 1); i1=$(run idem 1); p2=$(run plain 2); i2=$(run idem 2)
plain_tps=$(awk -v a="$p1" -v b="$p2" 'BEGIN {printf "%.1f\n", (a + b) / 2}')
idem_tps=$(awk -v a="$i1" -v b="$i2" 'BEGIN {printf "%.1f\n", (a + b) / 2}')
echo "metric: plain_insert_tps $plain_tps"
echo "metric: idem_check_tps $idem_tps"
echo "metric: plain_insert_p99_ms $(p99_ms plain)"
echo "metric: idem_check_p99_ms $(p99_ms idem)"
echo "ratio: idem_check_vs_insert $(awk -v a="$idem_tps" -v b="$plain_tps" 'BEGIN {printf "%.3f\n", a/b}')"
CLIENTS=2; HALF=3
rm -f "$dir"/*_log*
run plain 3 >/dev/null; run idem 3 >/dev/null; run plain 4 >/dev/null; run idem 4 >/dev/null
echo "metric: plain_insert_p99_ms_2_clients $(p99_ms plain)"
echo "metric: idem_check_p99_ms_2_clients $(p99_ms idem)"
psql -X -q -d "$DB" -c "DROP TABLE bench_plain" -c "TRUNCATE taskguard.idempotency_record"
