#!/usr/bin/env bash
# bench/scheduler.sh — 100,000 due retries drained by the background worker
# (no tick()): prints metric: scheduler_requeue_per_s.
set -euo pipefail
n=${BENCH_RETRIES:-100000}
P() { psql -X -q -At -d taskguard -v ON_ERROR_STOP=1 "$@"; }
P -c "DELETE FROM taskguard.dead_letter WHERE queue = 'sched_bench'" \
  -c "DELETE FROM taskguard.task WHERE queue = 'sched_bench'"
# n failed tasks, each with a PENDING record due tomorrow
P -c "INSERT INTO taskguard.task (queue, task_name, status, attempts, run_at)
      SELECT 'sched_bench', 'bench_retry', 'failed', 1, now() + interval '1 day' FROM generate_series(1, $n)" \
  -c "INSERT INTO taskguard.dead_letter (task_id, task_name, queue, status, failure_type, confidence,
             remediation, error_type, retry_count, max_retries, next_retry_at)
      SELECT id, task_name, queue, 'PENDING', 'TRANSIENT_NETWORK', 0.85, 'RETRY_WITH_BACKOFF',
             'ConnectionError', 0, 5, now() + interval '1 day'
        FROM taskguard.task WHERE queue = 'sched_bench'" \
  -c "UPDATE taskguard.task t SET failure_id = d.id FROM taskguard.dead_letter d
       WHERE d.task_id = t.id AND t.queue = 'sched_bench'" \
  -c "VACUUM ANALYZE taskguard.task" -c "VACUUM ANALYZE taskguard.dead_letter"
# make them all due at once, then wait for the worker to put them back
start=$(date +%s.%N)
P -c "UPDATE taskguard.dead_letter SET next_retry_at = now() WHERE queue = 'sched_bench'"
deadline=$(( $(date +%s) + 300 ))
while [ "$(P -c "SELECT count(*) FROM taskguard.task WHERE queue = 'sched_bench' AND status = 'ready'")" -lt "$n" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "scheduler did not drain $n retries in 300 s"; exit 1; }
    sleep 0.05
done
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc -l)
printf 'drained %d due retries in %.2f s (naptime %s, batch %s)\n' "$n" "$secs" \
    "$(P -c "SHOW taskguard.naptime")" "$(P -c "SHOW taskguard.batch_size")"
printf 'metric: scheduler_requeue_per_s %.0f\n' "$(echo "$n / $secs" | bc -l)"
is_retrying=$(P -c "SELECT count(*) FROM taskguard.dead_letter WHERE queue = 'sched_bench' AND status = 'RETRYING'")
[ "$is_retrying" -eq "$n" ] || { echo "expected $n RETRYING records, got $is_retrying"; exit 1; }
P -c "DELETE FROM taskguard.dead_letter WHERE queue = 'sched_bench'" \
  -c "DELETE FROM taskguard.task WHERE queue = 'sched_bench'"
