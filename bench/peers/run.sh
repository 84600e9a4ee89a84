#!/usr/bin/env bash
# bench/peers/run.sh — taskguard against graphile-worker and pg-boss, the same
# workload through each, on the one cluster the harness started (default
# durability, synchronous_commit on).  `make bench-peers` runs it.
#
# Per system and round, in one Node 22 process: 20,000 no-op jobs enqueued one
# at a time (round 1; later rounds fill that queue untimed) and in batches of
# 1,000; each set drained at concurrency 10 one job per fetch and 100 per
# fetch; then enqueue -> handler-start latency with LISTEN at low load.  The
# systems take turns within each round, in a rotating order; ratios are the
# median of the per-round ratios.  Prints metric: and ratio: lines.
#
# Each round also runs floor.js: the single-mode and latency workloads on a
# bare table with no queue features, from the same Node driver.  No system can
# beat it, so it says whether a goal is there to be had on this machine
# (`ratio: goal_2x_best_peer_vs_floor_single` above 1: it is not).
#
# Then held.js: the held-snapshot scenario of bench/held_snapshot.sh for the
# three systems side by side (PEERS_HELD_MINUTES, default 10; 0 skips it;
# PEERS_ONLY_HELD=1 runs it alone).
set -euo pipefail
cd "$(dirname "$0")"
rounds=${PEERS_ROUNDS:-3}
export PEERS_LATENCY_SAMPLES=${PEERS_LATENCY_SAMPLES:-$(( (200 + rounds - 1) / rounds ))}
PGBENCH=${TG_BIN:-/usr/lib/postgresql/15/bin}/pgbench

# Node 22 from the npm registry's `node` package, into .node/ (not committed);
# the peers from package-lock.json into node_modules/.
if ! .node/node_modules/.bin/node --version 2>/dev/null | grep -q '^v22\.'; then
    npm install --no-audit --no-fund --loglevel=error --prefix .node node@22 >&2
fi
export PATH=$PWD/.node/node_modules/.bin:$PATH
if [ ! -d node_modules/graphile-worker ] || [ ! -d node_modules/pg-boss ] || [ ! -d node_modules/pg ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
fi

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS peers" -c "CREATE DATABASE peers"
out=$(mktemp /tmp/bench-peers.XXXXXX.jsonl)
trap 'rm -f "$out"' EXIT
echo "load before: $(uptime)"
echo "node $(node --version), $(psql -X -At -d taskguard -c "SELECT version()" | cut -d, -f1)," \
     "synchronous_commit=$(psql -X -At -d taskguard -c 'SHOW synchronous_commit')," \
     "fsync=$(psql -X -At -d taskguard -c 'SHOW fsync')," \
     "shared_buffers=$(psql -X -At -d taskguard -c 'SHOW shared_buffers')"

# floor.js: the same workload on a bare table with no queue features (the floor)
systems=(taskguard graphile pgboss floor)
[ "${PEERS_ONLY_HELD:-}" = 1 ] && rounds=0    # the held-snapshot scenario alone
for round in $(seq 1 "$rounds"); do
    full=0; [ "$round" = 1 ] && full=1
    for k in 0 1 2 3; do
        s=${systems[$(( (k + round - 1) % 4 ))]}
        t0=$(date +%s)
        PEERS_FULL=$full PEERS_ROUND=$round node "$s.js" | sed "s/^{/{\"round\":$round,/" >>"$out"
        echo "round $round: $s done in $(( $(date +%s) - t0 )) s ($(uptime | sed 's/.*load/load/'))"
    done
done

# The floor in C: a bare SKIP LOCKED claim-and-mark, one transaction a job,
# from pgbench (the ready rows indexed, as any queue has them).
if [ "$rounds" -gt 0 ]; then
psql -X -q -d peers -c "CREATE TABLE bench_peers_raw (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status text NOT NULL DEFAULT 'ready', payload jsonb NOT NULL DEFAULT '{}', locked_at timestamptz)" \
  -c "CREATE INDEX ON bench_peers_raw (id) WHERE status = 'ready'" \
  -c "INSERT INTO bench_peers_raw (payload) SELECT '{}' FROM generate_series(1, 200000)" -c "VACUUM ANALYZE bench_peers_raw"
for cl in 1 16; do
    tps=$("$PGBENCH" -n -M prepared -c $cl -j 2 -T 5 -f sql/raw_claim.sql peers 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
    echo "{\"system\":\"raw\",\"clients\":$cl,\"tps\":${tps:-0}}" >>"$out"
done
echo "load after: $(uptime)"
node report.js "$out"
fi

# The held-snapshot scenario (issue 18, as bench/held_snapshot.sh does it with
# pgbench): every system with and without a session holding a snapshot, side
# by side; PEERS_HELD_MINUTES (default 10, 0 skips it).
if [ "${PEERS_HELD_MINUTES:-10}" != 0 ]; then
    echo "load before the held-snapshot scenario: $(uptime)"
    node held.js
    echo "load after: $(uptime)"
fi
