#!/usr/bin/env bash
# client_node: the Node worker of clients/node (node 20 and `pg` from npm)
# drains a mixed queue: results stored, no-result tasks completed in batches,
# long tasks kept alive by heartbeats, failures recorded with the error type,
# message and context the handler threw; an idle worker is woken by NOTIFY.
. "$(dirname "$0")/../lib/tap.sh"
dir=$(cd "$(dirname "$0")/../../clients/node" && pwd)
command -v node >/dev/null || { echo "1..0 # SKIP node is not installed"; exit 0; }
if [ ! -d "$dir/node_modules/pg" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        { echo "Bail out! npm ci of clients/node failed"; exit 1; }
fi
Q=node_client
export PGDATABASE=${DB:-taskguard}
q "DELETE FROM taskguard.task WHERE queue IN ('$Q', '${Q}_listen', '${Q}_single')" >/dev/null

q "SELECT count(*) FROM (SELECT taskguard.enqueue('send_email', jsonb_build_object('to', 'u' || i || '@example.com'), '$Q')
   FROM generate_series(1, 300) i) s" >/dev/null
q "SELECT count(*) FROM taskguard.enqueue_many('resize',
   (SELECT array_agg(jsonb_build_object('img', i)) FROM generate_series(1, 500) i), '$Q')" >/dev/null
q "SELECT taskguard.enqueue('report', '{\"ms\": 2500, \"rows\": 7}', '$Q') FROM generate_series(1, 2)" >/dev/null
# failures: one attempt each, so each ends with its record, no retry
q "SELECT taskguard.enqueue('resize', '{\"img\": \"x\"}', '$Q', max_attempts => 1),
          taskguard.enqueue('charge', '{\"order\": 42}', '$Q', max_attempts => 1),
          taskguard.enqueue('no_such_task', '{}', '$Q', max_attempts => 1)" >/dev/null
q "SELECT taskguard.enqueue('fetch_feed', '{\"host\": \"10.0.0.1\", \"port\": 8080}', '$Q', max_attempts => 1)
   FROM generate_series(1, 3)" >/dev/null

# lease 2 s: a 2.5 s report survives only by heartbeats (naptime 200 ms reaps)
out=$(cd "$dir" && timeout 90 node example.js --queue "$Q" --lease 2 --batch 10 --drain 2>&1)
ok $? "the Node worker drains the queue and exits"
echo "$out" | sed 's/^/# /'
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = '$Q' AND status IN ('ready', 'running')")" 0 \
   "nothing left ready or running"
is "$(q "SELECT string_agg(task_name || ' ' || n, ', ' ORDER BY task_name) FROM (SELECT task_name, count(*) n
         FROM taskguard.task WHERE queue = '$Q' AND status = 'succeeded' GROUP BY 1) s")" \
   "report 2, resize 500, send_email 300" "every good task succeeded"
is "$(q "SELECT result->>'to' FROM taskguard.task WHERE queue = '$Q' AND task_name = 'send_email'
         AND args->>'to' = 'u7@example.com'")" "u7@example.com" "a handler's return value is the task's result"
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = '$Q' AND task_name = 'resize' AND status = 'succeeded'
         AND result IS NULL")" 500 "no-result tasks completed (complete_many)"
is "$(q "SELECT string_agg(attempts || ' ' || (result->>'rows'), ',') FROM taskguard.task
         WHERE queue = '$Q' AND task_name = 'report'")" "1 7,1 7" \
   "2.5 s tasks on a 2 s lease finish on their first attempt (heartbeats)"
is "$(q "SELECT count(*) FROM taskguard.failure_event e JOIN taskguard.task t ON t.id = e.task_id
         WHERE t.queue = '$Q' AND e.error_type = 'taskguard.LeaseExpired'")" 0 "no lease expired"
is "$(q "SELECT string_agg(t.task_name || ' ' || t.status || ' ' || d.error_type, ', ' ORDER BY t.task_name)
         FROM taskguard.task t JOIN taskguard.dead_letter d ON d.task_id = t.id WHERE t.queue = '$Q'")" \
   "charge failed stripe.error.CardError, fetch_feed failed Error.ECONNREFUSED, fetch_feed failed Error.ECONNREFUSED, fetch_feed failed Error.ECONNREFUSED, no_such_task failed taskguard.NoHandler, resize failed TypeError" \
   "each failure recorded with the thrown error's type"
is "$(q "SELECT d.message FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id
         WHERE t.queue = '$Q' AND t.task_name = 'resize'")" "resize: img must be a number, got string" \
   "the message is the error's message"
is "$(q "SELECT d.context->>'code' || ' ' || (d.context->>'syscall') FROM taskguard.dead_letter d
         JOIN taskguard.task t ON t.id = d.task_id WHERE t.queue = '$Q' AND t.task_name = 'fetch_feed' LIMIT 1")" \
   "ECONNREFUSED connect" "a system error's code and syscall go to the context"
is "$(q "SELECT d.context->>'http_status' FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id
         WHERE t.queue = '$Q' AND t.task_name = 'charge'")" 402 "an error's own context goes to fail()"
is "$(q "SELECT (d.context->>'stack') LIKE 'TypeError: resize%' FROM taskguard.dead_letter d
         JOIN taskguard.task t ON t.id = d.task_id WHERE t.queue = '$Q' AND t.task_name = 'resize'")" t \
   "the stack goes to the context"

# batch 1: every complete() rides with the next claim() (one commit a task);
# only the last task of each slot may complete alone.  Regression: a prefetch
# buffer once left no room for the claim, so all 400 went alone.
q "SELECT count(*) FROM (SELECT taskguard.enqueue('send_email', jsonb_build_object('to', 's' || i || '@example.com'),
   '${Q}_single') FROM generate_series(1, 400) i) s" >/dev/null
out=$(cd "$dir" && timeout 60 node example.js --queue "${Q}_single" --batch 1 --complete-batch 1 --drain 2>&1)
ok $? "a batch-1 worker drains its queue"
echo "$out" | sed 's/^/# /'
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = '${Q}_single' AND status = 'succeeded'")" 400 \
   "all 400 batch-1 tasks succeeded"
piggy=$(echo "$out" | sed -n 's/.* piggybacked \([0-9]*\).*/\1/p')
alone=$(echo "$out" | sed -n 's/.* complete_calls \([0-9]*\).*/\1/p')
ok "$([ "${piggy:-0}" -ge 390 ] && [ "$((piggy + alone))" -eq 400 ]; echo $?)" \
   "batch 1: at least 390 of 400 completions rode with a claim (piggybacked ${piggy:-?}, alone ${alone:-?})"

# LISTEN: an idle worker that polls once a minute still runs a new task at once
log=$TG_WORK/client_node_listen.log
(cd "$dir" && PGAPPNAME=tg_client_node exec node example.js --queue "${Q}_listen" --poll 60000) >"$log" 2>&1 &
wpid=$!
# listening, and its first claim came back empty
tg_wait_for 10 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query = 'LISTEN taskguard'" >/dev/null
tg_wait_for 10 "SELECT count(*) > 0 FROM pg_stat_activity WHERE state = 'idle'
                AND query LIKE '%FROM taskguard.claim(%'" >/dev/null
id=$(q "SELECT taskguard.enqueue('send_email', '{\"to\": \"late@example.com\"}', '${Q}_listen')")
tg_wait_for 5 "SELECT status = 'succeeded' FROM taskguard.task WHERE id = $id"
ok $? "a task enqueued while the worker idles runs within 5 s (NOTIFY, not the 60 s poll)"
# a lost connection: the worker reconnects by itself, LISTENs again and goes on
is "$(q "SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_stat_activity
          WHERE application_name = 'tg_client_node'")" t "the worker's sessions are terminated"
tg_wait_for 20 "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'tg_client_node'
                AND query = 'LISTEN taskguard'" >/dev/null
id=$(q "SELECT taskguard.enqueue('send_email', '{\"to\": \"again@example.com\"}', '${Q}_listen')")
tg_wait_for 10 "SELECT status = 'succeeded' FROM taskguard.task WHERE id = $id"
ok $? "it reconnects and runs a task enqueued afterwards (woken by NOTIFY)"
grep -q "reconnected after" "$log"
ok $? "and logs the reconnect"
kill -TERM "$wpid"; wait "$wpid"
ok $? "SIGTERM stops the worker cleanly"
q "DELETE FROM taskguard.task WHERE queue IN ('$Q', '${Q}_listen', '${Q}_single')" >/dev/null
done_testing
