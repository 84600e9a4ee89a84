#!/usr/bin/env bash
# Flow control (docs/reference.md#flow-control, docs/flow.md) with 16 workers claiming at once.
# Each worker logs, after its claim commits and before its complete, the
# moment it holds a task: those intervals lie inside the task's real running
# time, so their overlap per key is a lower bound of what ran at once and
# must never pass the cap.  Checks: caps (per flow key '*' and per queue),
# no slot leak after a worker is killed and its lease reaped, counts rebuilt
# after a crash, rate within budget and >= 95 % of it used, pause loses
# nothing, debounce keeps one task with the last args.  Runs its own cluster.
. "$(dirname "$0")/../lib/tap.sh"

tg_init_cluster "$TG_WORK/flow" "$(tg_pick_port)" "fsync = off" \
    "taskguard.naptime = 100"
trap 'tg_stop immediate' EXIT
tg_start
psql -X -q -d postgres -c "CREATE DATABASE taskguard" &&
    psql -X -q -d taskguard -c "CREATE EXTENSION taskguard" || exit 1

q "CREATE TABLE fw_log (task_id bigint, queue text, flow_key text, t_start timestamptz,
                        t_end timestamptz, tenant text)" >/dev/null
# A worker: claim one task; if none, wait for a NOTIFY (or 20 ms); hold it
# hold_ms, logging the held interval; complete.  Until stop_at.
q "CREATE PROCEDURE fw_work(p_queue text, p_hold_ms int, p_seconds float8)
LANGUAGE plpgsql AS \$\$
DECLARE
    r record;
    -- p_seconds < 0: until the queue is drained (at most -p_seconds)
    v_stop timestamptz := clock_timestamp() + make_interval(secs => abs(p_seconds));
    v_t0 timestamptz;
BEGIN
    WHILE clock_timestamp() < v_stop LOOP
        SELECT * INTO r FROM taskguard.claim(p_queue, 'fw-' || pg_backend_pid(), 1, '3 seconds');
        COMMIT;
        IF r.id IS NULL THEN
            EXIT WHEN p_seconds < 0 AND NOT EXISTS (SELECT 1 FROM taskguard.task t
                WHERE t.queue = p_queue AND t.status IN ('ready', 'running'));
            PERFORM pg_sleep(0.02);
            CONTINUE;
        END IF;
        v_t0 := clock_timestamp();
        IF p_hold_ms > 0 THEN
            PERFORM pg_sleep(p_hold_ms / 1000.0);
        END IF;
        INSERT INTO fw_log VALUES (r.id, r.queue, r.flow_key, v_t0, clock_timestamp(), r.tenant);
        PERFORM taskguard.complete(r.id, NULL, r.attempts);
        COMMIT;
    END LOOP;
END \$\$" >/dev/null

workers() {  # workers QUEUE HOLD_MS SECONDS: 16 workers, waits for them
    local pids=() i
    for i in $(seq 16); do
        psql -X -q -d taskguard -v ON_ERROR_STOP=1 -c "CALL fw_work('$1', $2, $3)" >/dev/null 2>"$TG_WORK/flow/w$i.err" &
        pids+=($!)
    done
    local rc=0
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    return $rc
}

# The most log intervals of QUEUE overlapping at once, per GROUP expression.
max_overlap() {  # max_overlap QUEUE GROUP-EXPR
    q "WITH ev AS (
           SELECT $2 AS g, t_start AS t, 1 AS d FROM fw_log WHERE queue = '$1'
           UNION ALL SELECT $2, t_end, -1 FROM fw_log WHERE queue = '$1'),
       run AS (SELECT g, sum(d) OVER (PARTITION BY g ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS n FROM ev)
       SELECT coalesce(max(n), 0) FROM run"
}

# ---- caps: each flow key at most 3, the queue at most 10 ----
q "INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('flow_key', '*', 3),
   ('queue', 'fw_cap', 10)" >/dev/null
q "SELECT taskguard.enqueue_many('job', array_fill('{}'::jsonb, ARRAY[80]), 'fw_cap', flow_key => 'k' || k)
     FROM generate_series(1, 6) k" >/dev/null
workers fw_cap 15 -60
ok $? "16 workers ran without error"
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fw_cap' AND status = 'succeeded'")" 480 \
   "every task of the capped queue ran once"
key_max=$(max_overlap fw_cap flow_key)
ok $([ "$key_max" -le 3 ] && echo 0 || echo 1) "no flow key ever had more than 3 running (max seen $key_max)"
ok $([ "$key_max" -ge 2 ] && echo 0 || echo 1) "and keys did run in parallel (max $key_max)"
q_max=$(max_overlap fw_cap "''")
ok $([ "$q_max" -le 10 ] && echo 0 || echo 1) "the queue never had more than 10 running (max seen $q_max)"
echo "# caps: max per key $key_max (cap 3), max in queue $q_max (cap 10)"

# ---- a killed worker's slot comes back when its lease is reaped ----
q "INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('flow_key', 'solo', 1)" >/dev/null
q "SELECT taskguard.enqueue('job', '{}', 'fw_solo', flow_key => 'solo') FROM generate_series(1, 2)" >/dev/null
psql -X -q -d taskguard -c "SELECT id FROM taskguard.claim('fw_solo', 'doomed', 1, '1 second')" \
    -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
tg_wait_for 20 "SELECT count(*) = 1 FROM taskguard.task WHERE queue = 'fw_solo' AND status = 'running'"
is "$(q "SELECT count(*) FROM taskguard.claim('fw_solo', 'w', 5)")" 0 "cap 1: the second task waits"
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'" >/dev/null
# the scheduler reaps the lease (the task fails with LeaseExpired and retries)
tg_wait_for 30 "SELECT count(*) = 0 FROM taskguard.task WHERE queue = 'fw_solo' AND status = 'running'"
ok $? "the dead worker's lease is reaped"
is "$(q "SELECT count(*) FROM taskguard.claim('fw_solo', 'w', 5)")" 1 "its slot is free again (no leak)"

# ---- after a crash the counts come back from the table ----
tg_stop immediate
tg_start
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fw_solo' AND status = 'running'")" 1 \
   "after the crash one fw_solo task is still running (its lease holds)"
q "SELECT taskguard.enqueue('job', '{}', 'fw_solo2', flow_key => 'solo')" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.claim('fw_solo2', 'w', 5)")" 0 \
   "and the cap still counts it: a ready task of its key is not handed out"
q "SELECT taskguard.complete(id) FROM taskguard.task WHERE queue = 'fw_solo' AND status = 'running'" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.claim('fw_solo2', 'w', 5)")" 1 "once it completes the next one goes"

# ---- rate: 20 a second, burst 5, over about 4 seconds ----
q "INSERT INTO taskguard.flow_limit (scope, name, rate, per, burst) VALUES ('queue', 'fw_rate', 20, '1 second', 5)" >/dev/null
q "SELECT taskguard.enqueue_many('job', array_fill('{}'::jsonb, ARRAY[1000]), 'fw_rate')" >/dev/null
workers fw_rate 0 4
# the budget over the span the workers claimed in: burst + rate x span
span=$(q "SELECT extract(epoch FROM max(started_at) - min(started_at)) FROM taskguard.task
           WHERE queue = 'fw_rate' AND started_at IS NOT NULL")
started=$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fw_rate' AND started_at IS NOT NULL")
budget=$(q "SELECT floor(5 + 20 * $span)")
over=$(q "SELECT count(*) FROM taskguard.task a WHERE a.queue = 'fw_rate' AND a.started_at IS NOT NULL
            AND (SELECT count(*) FROM taskguard.task b WHERE b.queue = 'fw_rate'
                   AND b.started_at >= a.started_at AND b.started_at < a.started_at + interval '1 second') > 5 + 20 + 1")
is "$over" 0 "no 1-second window started more than burst + rate (+1 for clock skew)"
ok $([ "$started" -le "$((budget + 1))" ] && echo 0 || echo 1) "started $started of a budget of $budget: not over"
ok $(q "SELECT CASE WHEN $started >= 0.95 * $budget THEN 0 ELSE 1 END") \
   "and at least 95 % of the budget used ($started of $budget)"
echo "# rate: started $started in $(q "SELECT round($span::numeric, 2)") s, budget $budget"

# ---- pause loses nothing ----
q "SELECT taskguard.enqueue_many('job', array_fill('{}'::jsonb, ARRAY[200]), 'fw_pause')" >/dev/null
is "$(q "SELECT taskguard.pause('fw_pause')")" t "pause"
workers fw_pause 0 1
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fw_pause' AND status = 'ready' AND attempts = 0")" 200 \
   "16 workers on a paused queue: all 200 tasks ready, no attempt used"
is "$(q "SELECT taskguard.resume('fw_pause')")" t "resume"
workers fw_pause 0 -60
is "$(q "SELECT count(*) || '/' || max(attempts) FROM taskguard.task WHERE queue = 'fw_pause' AND status = 'succeeded'")" \
   "200/1" "after resume every task ran once"

# ---- fair share: tenant ta weight 2, tb and tc 1; ta's tasks are the oldest ----
q "INSERT INTO taskguard.flow_limit (scope, name, weight) VALUES ('tenant', 'ta', 2), ('tenant', '*', 1)" >/dev/null
for tn in ta:3 tb:2 tc:1; do
    q "SELECT taskguard.enqueue_many('job', array_fill('{}'::jsonb, ARRAY[400]), 'fw_fair', tenant => '${tn%:*}',
                                     run_at => now() - interval '1 hour' * ${tn#*:})" >/dev/null
done
workers fw_fair 2 -60
is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'fw_fair' AND status = 'succeeded'")" 1200 \
   "fair share: every task ran"
share=$(q "SELECT string_agg(tenant || '=' || n, ' ' ORDER BY tenant) FROM (
             SELECT tenant, count(*) AS n FROM (SELECT tenant FROM fw_log WHERE queue = 'fw_fair'
                                                 ORDER BY t_start LIMIT 400) f GROUP BY tenant) x")
echo "# fair share, first 400 starts: $share (weights 2:1:1 -> 200/100/100)"
ok $(q "SELECT CASE WHEN count(*) = 3 AND bool_and(abs(n - want) <= 0.2 * want) THEN 0 ELSE 1 END
          FROM (SELECT tenant, count(*) AS n, CASE tenant WHEN 'ta' THEN 200 ELSE 100 END AS want
                  FROM (SELECT tenant FROM fw_log WHERE queue = 'fw_fair' ORDER BY t_start LIMIT 400) f
                 GROUP BY tenant) x") "16 workers: each tenant's share of the first 400 starts within 20 % of its weight ($share)"
q "DELETE FROM taskguard.flow_limit WHERE scope = 'tenant'" >/dev/null

# ---- debounce under 16 concurrent enqueuers ----
for i in $(seq 16); do
    psql -X -q -d taskguard -v ON_ERROR_STOP=1 -c "SELECT taskguard.enqueue('render', jsonb_build_object('w', $i, 'n', n),
        'fw_deb', debounce_key => 'doc-7', debounce => '10 minutes') FROM generate_series(1, 25) n" \
        >/dev/null 2>"$TG_WORK/flow/d$i.err" &
done
wait
is "$(cat "$TG_WORK"/flow/d*.err)" "" "400 concurrent debounced enqueues: no error"
last=$(q "SELECT taskguard.enqueue('render', '{\"final\": true}', 'fw_deb', debounce_key => 'doc-7',
                                   debounce => '10 minutes')")
is "$(q "SELECT count(*) || ':' || max(id) || ':' || max(args::text) FROM taskguard.task WHERE queue = 'fw_deb'")" \
   "1:$last:{\"final\": true}" "one task, with the last args"

done_testing
