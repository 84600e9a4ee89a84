#!/usr/bin/env bash
# 16 concurrent workers (separate sessions) on 50,000 tasks, ~10 % of attempts
# failing with random error types: every task ends succeeded or in the DLQ,
# none is lost, no attempt runs in two sessions, retries follow the policy.
. "$(dirname "$0")/../lib/tap.sh"
N=${LOAD_TASKS:-50000}

# fast retries for this task_name only (per-task policy overrides)
q "DELETE FROM taskguard.retry_policy WHERE task_name = 'load_job'" >/dev/null
q "INSERT INTO taskguard.retry_policy (failure_type, task_name, base_delay, max_delay, jitter)
   SELECT failure_type, 'load_job', '10 milliseconds', '50 milliseconds', 'none'
     FROM taskguard.retry_policy WHERE task_name IS NULL AND retryable" >/dev/null
q "DROP TABLE IF EXISTS load_log; CREATE UNLOGGED TABLE load_log (task_id bigint, attempt int, worker text, ok boolean)" >/dev/null
q "CREATE OR REPLACE PROCEDURE load_work(w text) LANGUAGE plpgsql AS \$\$
DECLARE
  r record; ok_ids bigint[]; ok_atts int[]; idle int := 0;
  errs text[] := ARRAY['requests.exceptions.ConnectionError', 'psycopg.errors.DeadlockDetected',
                       'ValueError', 'java.net.SocketTimeoutException', 'KeyError',
                       'botocore.exceptions.NoSuchKey', 'RateLimitError', 'ECONNREFUSED'];
BEGIN
  LOOP
    ok_ids := '{}'; ok_atts := '{}';
    FOR r IN SELECT id, attempts FROM taskguard.claim('load', w, 50) LOOP
      INSERT INTO load_log VALUES (r.id, r.attempts, w, random() >= 0.1);
      IF (SELECT l.ok FROM load_log l WHERE l.task_id = r.id AND l.attempt = r.attempts AND l.worker = w) THEN
        ok_ids := ok_ids || r.id; ok_atts := ok_atts || r.attempts;
      ELSE
        PERFORM taskguard.fail(r.id, errs[1 + floor(random() * 8)::int], 'simulated failure', '{}', r.attempts);
      END IF;
    END LOOP;
    IF cardinality(ok_ids) > 0 THEN
      IF taskguard.complete_many(ok_ids, ok_atts) <> cardinality(ok_ids) THEN
        RAISE EXCEPTION 'complete_many refused a batch of %', w;
      END IF;
      idle := 0;
    ELSE
      idle := idle + 1;
      EXIT WHEN idle > 5 AND NOT EXISTS (
        SELECT 1 FROM taskguard.task t WHERE t.queue = 'load' AND t.status IN ('ready', 'running'))
        AND NOT EXISTS (SELECT 1 FROM taskguard.dead_letter d WHERE d.queue = 'load' AND d.status IN ('PENDING', 'RETRYING'));
      PERFORM pg_sleep(0.02);
    END IF;
    COMMIT;
  END LOOP;
END \$\$" >/dev/null

q "SELECT count(*) FROM taskguard.enqueue_many('load_job', (SELECT array_agg(jsonb_build_object('n', g)) FROM generate_series(1, $N) g), 'load')" >/dev/null
pids=()
for w in $(seq 1 16); do
    PGOPTIONS="-c statement_timeout=600s" psql -X -q -v ON_ERROR_STOP=1 -d taskguard -c "CALL load_work('w$w')" >"$TG_WORK/load_w$w.log" 2>&1 &
    pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
is "$fails" 0 "16 worker sessions finished without error"
[ "$fails" = 0 ] || cat "$TG_WORK"/load_w*.log | sort | uniq -c | head -5 | sed 's/^/# /'

is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'load'")" "$N" "no task lost"
is "$(q "SELECT count(*) FROM taskguard.task t WHERE t.queue = 'load' AND NOT (t.status = 'succeeded'
          OR (t.status = 'failed' AND EXISTS (SELECT 1 FROM taskguard.dead_letter d WHERE d.task_id = t.id AND d.status = 'ABANDONED')))")" 0 \
   "every task ended succeeded or ABANDONED in the DLQ"
is "$(q "SELECT count(*) - count(DISTINCT (task_id, attempt)) FROM load_log")" 0 "no attempt ran in two sessions"
is "$(q "SELECT count(*) FROM load_log l JOIN taskguard.task t ON t.id = l.task_id WHERE l.worker IS DISTINCT FROM t.worker AND l.attempt = t.attempts")" 0 \
   "the last attempt of each task ran in the session that holds it"
nfail=$(q "SELECT count(*) FROM load_log WHERE NOT ok")
ok "$([ "$nfail" -gt $((N / 20)) ]; echo $?)" "about 10 % of attempts failed ($nfail of $(q "SELECT count(*) FROM load_log"))"
# each task's record counts every failed attempt: an abandoned task failed all its runs
is "$(q "SELECT count(*) FROM taskguard.task t JOIN taskguard.dead_letter d ON d.task_id = t.id
          WHERE t.queue = 'load' AND d.status = 'ABANDONED' AND d.retry_count <> t.attempts - 1")" 0 \
   "an abandoned task's retry_count is its attempts - 1"
# abandoned only when the last failure's type does not retry or its retries are used up
is "$(q "SELECT count(*) FROM taskguard.dead_letter d JOIN taskguard.retry_policy p ON p.failure_type = d.failure_type AND p.task_name IS NULL
          WHERE d.queue = 'load' AND d.status = 'ABANDONED' AND p.retryable AND d.retry_count < p.max_retries")" 0 \
   "no task was abandoned while its policy allowed another retry"
is "$(q "SELECT count(*) FROM taskguard.task t WHERE t.queue = 'load' AND t.attempts > 1 + 8")" 0 \
   "no task ran more often than the largest policy allows"
ok "$([ "$(q "SELECT count(*) FROM taskguard.dead_letter WHERE queue = 'load' AND status = 'RESOLVED' AND resolution = 'retry'")" -gt 0 ]; echo $?)" \
   "transient failures were retried and resolved"
q "DROP PROCEDURE load_work(text); DROP TABLE load_log;
   DELETE FROM taskguard.dead_letter WHERE queue = 'load'; DELETE FROM taskguard.task WHERE queue = 'load';
   DELETE FROM taskguard.retry_policy WHERE task_name = 'load_job'" >/dev/null
done_testing
