#!/usr/bin/env bash
# bench/run.sh — every bench/*.sh against the cluster the harness started
# (default durability settings).  Each prints `metric: NAME VALUE` and
# `ratio: NAME VALUE` lines; ratios compare against a baseline measured in
# the same run, never against numbers from another machine or day.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for b in bench/*.sh; do
    [ "$(basename "$b")" = run.sh ] && continue
    # long (10 minutes a configuration): `make bench-held` runs it alone
    [ "$(basename "$b")" = held_snapshot.sh ] && continue
    echo "== $(basename "$b" .sh)"
    bash "$b" || { echo "bench $(basename "$b") failed"; status=1; }
done
exit $status
