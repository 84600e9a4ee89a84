#!/usr/bin/env bash
# idempotency_enqueue_race.sh — 8 sessions enqueue with the same idempotency
# key at the same moment: exactly one task exists and all 8 get its id.
. "$(dirname "$0")/../lib/tap.sh"

race() {  # race KEY HOLD_SECONDS: 8 parallel enqueues released together
    local key=$1 hold=$2 dir start i
    dir=$(mktemp -d)
    start=$(q "SELECT extract(epoch FROM clock_timestamp() + interval '1 second')")
    for i in 1 2 3 4 5 6 7 8; do
        psql -X -At -v ON_ERROR_STOP=1 -d taskguard >"$dir/$i" 2>&1 <<SQL &
SELECT pg_sleep_until(to_timestamp($start)) \\g /dev/null
BEGIN;
SELECT taskguard.enqueue('idem_race', jsonb_build_object('session', $i), idempotency_key => '$key');
SELECT pg_sleep($hold) \\g /dev/null
COMMIT;
SQL
    done
    wait
    ids=$(grep -hE '^[0-9]+$' "$dir"/* | sort -u | tr '\n' ' ')
    errors=$(grep -hE 'ERROR|FATAL' "$dir"/* | head -3)
    rm -rf "$dir"
}

for round in 1 2; do
    key="race-$round-$$"
    race "$key" 0.3
    is "$errors" "" "round $round (inside a transaction): no session failed"
    is "$(q "SELECT count(*) FROM taskguard.task WHERE idempotency_key = '$key'")" 1 \
        "round $round (inside a transaction): exactly one task"
    is "$ids" "$(q "SELECT id FROM taskguard.task WHERE idempotency_key = '$key'") " \
        "round $round (inside a transaction): all 8 sessions got that task's id"
done

key="race-auto-$$"
race "$key" 0
is "$errors" "" "autocommit race: no session failed"
is "$(q "SELECT count(*) FROM taskguard.task WHERE idempotency_key = '$key'")" 1 "autocommit race: exactly one task"
is "$(q "SELECT count(DISTINCT task_id) FROM taskguard.idempotency_record WHERE key = '$key'")" 1 \
    "autocommit race: one key row, bound to it"

q "SELECT taskguard.cancel(id) FROM taskguard.task WHERE task_name = 'idem_race'" >/dev/null
done_testing
