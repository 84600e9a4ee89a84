#!/usr/bin/env bash
# failover: a primary (taskguard and pg_cron preloaded) and a streaming standby
# made with pg_basebackup -R, synchronous (synchronous_standby_names), on this
# machine.  On the standby: the scheduler does nothing and logs no error, every
# dashboard view and prometheus_metrics() answer, the write functions refuse
# with 25006 read_only_sql_transaction.  Then, with queued tasks, running tasks
# on short leases, DLQ records, an open breaker and the shipped Python and Node
# workers busy, the primary stops with -m immediate and the standby is
# promoted: no committed task or DLQ record is lost, the scheduler starts within
# two naptimes, expired leases are reaped, the open breaker is still open, and
# the workers (given both servers' connection strings) reconnect and go on.
# The timeline is printed as TAP comments.  Run by `make test-ha` (test/ha/run.sh).
. "$(dirname "$0")/../lib/tap.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3                 # Debian's, which sees python3-psycopg
NAP=1000                            # taskguard.naptime, ms (the default)
LEASE=3                             # seconds: the short leases the failover must reap
N_WORK=600                          # tasks the two workers share

# the Node worker runs where node is installed (as test/t/client_node.sh)
node_dir=$HERE/../../clients/node
have_node=
if command -v node >/dev/null; then
    [ -d "$node_dir/node_modules/pg" ] ||
        (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        { echo "Bail out! npm ci of clients/node failed"; exit 1; }
    have_node=1
else
    echo "# node is not installed: the Node worker is left out"
fi
workers="'ha-py'${have_node:+, 'ha-node'}"

p1=$(tg_pick_port)
p2=$(tg_pick_port); while [ "$p2" = "$p1" ]; do p2=$(tg_pick_port); done
PDIR=$TG_WORK/primary SDIR=$TG_WORK/standby
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    TG_DATA=$SDIR/data tg_stop immediate
    TG_DATA=$PDIR/data tg_stop immediate
}
trap cleanup EXIT

qp() { PGHOST=$PDIR PGPORT=$p1 q "$1"; }
qs() { PGHOST=$SDIR PGPORT=$p2 q "$1"; }
waitp() { PGHOST=$PDIR PGPORT=$p1 tg_wait_for "$@"; }
waits() { PGHOST=$SDIR PGPORT=$p2 tg_wait_for "$@"; }
clock() { date +%s.%N; }
secs() { printf '%.2f' "$(echo "$1 - $2" | bc)"; }   # secs LATER EARLIER

# -- the primary, and its standby --------------------------------------------
tg_init_cluster "$PDIR" "$p1" "taskguard.naptime = $NAP" >/dev/null
tg_start
DB=postgres qp "CREATE DATABASE taskguard" >/dev/null
qp "CREATE EXTENSION pg_cron" >/dev/null
qp "CREATE EXTENSION taskguard" >/dev/null

mkdir -p "$SDIR"; chown postgres: "$SDIR" 2>/dev/null; chmod 755 "$SDIR"
tg_as_pg "$TG_BIN/pg_basebackup" -d "host=$PDIR port=$p1 user=postgres application_name=ha_standby" \
    -D "$SDIR/data" -R -X stream -c fast >"$SDIR/basebackup.log" 2>&1
ok $? "pg_basebackup -R makes a standby of the primary"
cat >>"$SDIR/data/postgresql.conf" <<CONF
port = $p2
unix_socket_directories = '$SDIR'
CONF
tg_as_pg "$TG_BIN/pg_ctl" -D "$SDIR/data" -l "$SDIR/server.log" -w -t 60 start >/dev/null
ok $? "the standby starts"
qp "ALTER SYSTEM SET synchronous_standby_names = 'ha_standby'" >/dev/null
qp "SELECT pg_reload_conf()" >/dev/null
waitp 20 "SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'ha_standby'"
ok $? "the standby streams synchronously (commits are on it before they return)"
is "$(qs "SELECT pg_is_in_recovery()")" t "the standby is in recovery"

# the standby reads breaker_status before the breaker opens: what it holds
# then must not hide the state the primary saves later, now or after promotion
is "$(qs "SELECT count(*) FROM taskguard.breaker_status WHERE service = 'ha_svc'")" 0 \
   "the standby's breaker_status does not know ha_svc yet"

# -- state on the primary: queued tasks, DLQ records, an open breaker ---------
qp "INSERT INTO taskguard.breaker_config (service, failure_threshold, cooldown)
    VALUES ('ha_svc', 5, '10 minutes')" >/dev/null
is "$(qp "SELECT taskguard.breaker_record('ha_svc', false) FROM generate_series(1, 5)" | tail -1)" open \
   "five failures open the breaker of ha_svc on the primary"
qp "SELECT count(taskguard.enqueue('nap', jsonb_build_object('i', i), 'ha_queued')) FROM generate_series(1, 100) i" >/dev/null
qp "SELECT count(taskguard.enqueue('parse', jsonb_build_object('i', i), 'ha_dlq', max_attempts => 1))
      FROM generate_series(1, 5) i" >/dev/null
qp "SELECT count(taskguard.fail(id, 'ValueError', 'bad row', '{}', attempts))
      FROM taskguard.claim('ha_dlq', 'ha-sql', 5, '1 minute')" >/dev/null
is "$(qp "SELECT count(*) FROM taskguard.dead_letter WHERE queue = 'ha_dlq'")" 5 "five DLQ records on the primary"
waits 20 "SELECT count(*) = 5 FROM taskguard.dead_letter WHERE queue = 'ha_dlq'
          AND EXISTS (SELECT 1 FROM taskguard.breaker_saved WHERE service = 'ha_svc' AND state = 'open')"
ok $? "the records and the saved open breaker are on the standby"

# -- the standby: the scheduler idles, reads work, writes refuse ---------------
t0=$(clock)
for v in dashboard dlq failure_distribution failure_trend idempotency_stats retry_effectiveness \
         breaker_status schedule_hotspots alerts scheduler_status; do
    out=$(qs "SELECT count(*) FROM taskguard.$v" 2>&1)
    ok $? "view $v answers on the standby${out:+ ($out rows)}"
done
out=$(qs "SELECT length(taskguard.prometheus_metrics()) > 0" 2>&1)
is "$out" t "prometheus_metrics() answers on the standby"
is "$(qs "SELECT state FROM taskguard.breaker_status WHERE service = 'ha_svc'")" open \
   "breaker_status on the standby shows the saved open breaker"

refuses() {  # refuses SQL: the standby answers SQLSTATE 25006
    local out
    out=$(PGHOST=$SDIR PGPORT=$p2 psql -X -At -v VERBOSITY=sqlstate -d taskguard -c "$1" 2>&1)
    is "$out" "ERROR:  25006" "on the standby, $1 refuses with read_only_sql_transaction"
}
id=$(qs "SELECT min(id) FROM taskguard.task WHERE queue = 'ha_queued'")
dlq_id=$(qs "SELECT min(id) FROM taskguard.dead_letter WHERE queue = 'ha_dlq'")
refuses "SELECT taskguard.enqueue('nap')"
refuses "SELECT * FROM taskguard.claim('ha_queued', 'w', 1)"
refuses "SELECT taskguard.complete($id)"
refuses "SELECT * FROM taskguard.fail($id, 'ValueError')"
refuses "SELECT taskguard.heartbeat($id)"
refuses "SELECT taskguard.dlq_retry(ARRAY[$dlq_id]::bigint[])"
refuses "SELECT taskguard.breaker_record('ha_svc', true)"
refuses "SELECT taskguard.breaker_allow('ha_svc')"
refuses "SELECT taskguard.breaker_reset('ha_svc')"
refuses "SELECT taskguard.breaker_force('ha_svc', 'disabled')"
refuses "SELECT taskguard.idempotency_check('ha-key')"
refuses "SELECT taskguard.tick()"

# at least three naptimes on the standby: no pass, no error from a background process
waits 10 "SELECT clock_timestamp() > to_timestamp($t0) + interval '$((3 * NAP)) milliseconds'" >/dev/null
is "$(qs "SELECT coalesce(passes, 0) FROM taskguard.scheduler_status")" 0 \
   "the scheduler makes no pass on the standby"
echo "# taskguard processes on the standby: $(qs "SELECT coalesce(string_agg(backend_type, ', '), 'none')
                                                   FROM pg_stat_activity WHERE backend_type LIKE 'taskguard%'")"
bad=$(grep -E '(ERROR|FATAL|PANIC):' "$SDIR/server.log" | grep -v ' client backend ' || true)
is "$bad" "" "the standby's log has no error from a background process"

# -- load: the two shipped workers, with both servers' connection strings -----
qp "SELECT count(taskguard.enqueue('nap', jsonb_build_object('ms', 30, 'i', i), 'ha_work'))
      FROM generate_series(1, $N_WORK) i" >/dev/null
$PY "$HERE/worker.py" --queue ha_work --name ha-py --lease $LEASE \
    --dsn "host=127.0.0.1 port=$p1 dbname=taskguard user=postgres application_name=ha_py connect_timeout=2" \
    --dsn "host=127.0.0.1 port=$p2 dbname=taskguard user=postgres application_name=ha_py connect_timeout=2" \
    >"$TG_WORK/ha-py.log" 2>&1 &
pids+=($!)
if [ "$have_node" ]; then
    node "$HERE/worker.js" ha_work ha-node $LEASE \
        "postgresql://postgres@127.0.0.1:$p1/taskguard?application_name=ha_node" \
        "postgresql://postgres@127.0.0.1:$p2/taskguard?application_name=ha_node" \
        >"$TG_WORK/ha-node.log" 2>&1 &
    pids+=($!)
fi
waitp 30 "SELECT count(DISTINCT worker) = ${have_node:-0}+1 AND count(*) >= 100 FROM taskguard.task
           WHERE queue = 'ha_work' AND status = 'succeeded'"
ok $? "the workers ($workers) work the queue on the primary"

# running tasks on short leases, whose worker dies with the primary
qp "SELECT count(taskguard.enqueue('nap', '{}', 'ha_lease')) FROM generate_series(1, 10)" >/dev/null
# the ids committed so far (new DLQ records may come from leases reaped meanwhile)
task_ids=$(qp "SELECT string_agg(id::text, ',') FROM taskguard.task")
dlq_ids=$(qp "SELECT string_agg(id::text, ',') FROM taskguard.dead_letter")
n_tasks=$(qp "SELECT count(*) FROM taskguard.task")
n_dlq=$(qp "SELECT count(*) FROM taskguard.dead_letter")
done_before=$(qp "SELECT count(*) FROM taskguard.task WHERE queue = 'ha_work' AND status = 'succeeded'")

# -- failover -------------------------------------------------------------------
lease_ids=$(qp "SELECT string_agg(id::text, ',') FROM taskguard.claim('ha_lease', 'ha-doomed', 10, '$LEASE seconds')")
t_stop=$(clock)
TG_DATA=$PDIR/data tg_stop immediate
t_stopped=$(clock)
tg_as_pg "$TG_BIN/pg_ctl" -D "$SDIR/data" -w -t 60 promote >/dev/null
ok $? "the standby is promoted"
t_promoted=$(clock)
# when promotion ended by the server's log ("ready to accept connections" again)
ready=$(grep 'database system is ready to accept connections' "$SDIR/server.log" | tail -1 | cut -d' ' -f1-3)
[ -n "$ready" ] && t_promoted=$(date -d "$ready" +%s.%N)
is "$(qs "SELECT pg_is_in_recovery()")" f "the promoted server is out of recovery"

waits 10 "SELECT passes > 0 FROM taskguard.scheduler_status"
ok $? "the scheduler runs on the promoted server"
t_sched=$(clock)
# the first pass's start by the server's clock when we caught it, else when we saw it
first=$(qs "SELECT extract(epoch FROM last_pass_at) FROM taskguard.scheduler_status WHERE passes = 1")
t_sched=${first:-$t_sched}
sched_started=$(qs "SELECT extract(epoch FROM started_at) FROM taskguard.scheduler_status")
first_pass_in=$(secs "$t_sched" "$t_promoted")
ok "$(echo "$first_pass_in <= 2 * $NAP / 1000" | bc | grep -qx 1; echo $?)" \
   "its first pass came within two naptimes ($((2 * NAP)) ms) of promotion (${first_pass_in} s)"

is "$(qs "SELECT count(*) FROM taskguard.task WHERE id = ANY('{$task_ids}'::bigint[])")" "$n_tasks" \
   "every task committed before the stop is there ($n_tasks ids compared)"
is "$(qs "SELECT count(*) FROM taskguard.dead_letter WHERE id = ANY('{$dlq_ids}'::bigint[])")" "$n_dlq" \
   "every DLQ record committed before the stop is there ($n_dlq ids compared)"
is "$(echo "$lease_ids" | tr ',' '\n' | grep -c .)" 10 "(10 tasks were running on $LEASE s leases at the stop)"
waits 20 "SELECT count(*) = 0 FROM taskguard.task WHERE id = ANY('{$lease_ids}'::bigint[]) AND status = 'running'"
ok $? "their expired leases are reaped"
t_reaped=$(qs "SELECT extract(epoch FROM max(e.time)) FROM taskguard.failure_event e
                WHERE e.task_id = ANY('{$lease_ids}'::bigint[])")
is "$(qs "SELECT count(*) FROM taskguard.failure_event e
          WHERE e.task_id = ANY('{$lease_ids}'::bigint[]) AND e.error_type = 'taskguard.LeaseExpired'")" 10 \
   "each reaped lease is recorded as taskguard.LeaseExpired"
lease_id=${lease_ids%%,*}
is "$(qs "SELECT taskguard.complete($lease_id, NULL, 1)")" f \
   "a late complete() of the dead worker's attempt returns false"

is "$(qs "SELECT state FROM taskguard.breaker_status WHERE service = 'ha_svc'")" open \
   "the open breaker is still open after promotion"
is "$(qs "SELECT taskguard.breaker_allow('ha_svc')")" f "and it still refuses calls"

since="to_timestamp($t_promoted)"
waits 30 "SELECT count(*) > 0 FROM taskguard.task WHERE queue = 'ha_work' AND worker = 'ha-py'
           AND status = 'succeeded' AND finished_at > $since"
ok $? "the Python worker reconnects to the promoted server and goes on"
back="SELECT extract(epoch FROM min(finished_at)) FROM taskguard.task
       WHERE queue = 'ha_work' AND status = 'succeeded' AND finished_at > $since AND worker ="
t_py=$(qs "$back 'ha-py'")
if [ "$have_node" ]; then
    waits 30 "SELECT count(*) > 0 FROM taskguard.task WHERE queue = 'ha_work' AND worker = 'ha-node'
               AND status = 'succeeded' AND finished_at > $since"
    ok $? "the Node worker reconnects to the promoted server and goes on"
    t_node=$(qs "$back 'ha-node'")
fi
waits 60 "SELECT count(*) = $N_WORK FROM taskguard.task WHERE queue = 'ha_work' AND status = 'succeeded'"
ok $? "all $N_WORK tasks of the workers' queue succeed ($done_before before the stop)"
t_all=$(qs "SELECT extract(epoch FROM max(finished_at)) FROM taskguard.task WHERE queue = 'ha_work'")
is "$(qs "SELECT count(*) FROM taskguard.task WHERE queue = 'ha_work' AND (result->>'attempt')::int <> attempts")" 0 \
   "each task's result comes from its last attempt (no stale completion landed)"

for p in "${pids[@]}"; do kill -TERM "$p"; done
rcs=""
for p in "${pids[@]}"; do
    end=$(( $(date +%s) + 15 ))
    while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -le "$end" ]; do sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p"; rcs+="hung "; else wait "$p"; rcs+="$? "; fi
done
pids=()
is "$rcs" "0 ${have_node:+0 }" "the workers stop on SIGTERM with exit status 0"
py_stats=$(sed -n 's/^stats //p' "$TG_WORK/ha-py.log")
node_stats=$([ "$have_node" ] && sed -n 's/^stats //p' "$TG_WORK/ha-node.log")
echo "# python worker: $py_stats"
[ "$have_node" ] && echo "# node worker:   $node_stats"
reconnects=$(echo "$py_stats $node_stats" | grep -o '"reconnects": *[0-9]*' | grep -o '[0-9]*$' | tr '\n' ' ')
# before the failover nothing was taken over: a finished task of a batch is no longer heartbeated
is "$(sed '/database connection problem/,$d' "$TG_WORK/ha-py.log" | grep -c 'lease taken over')" 0 \
   "the Python worker saw no lease taken over before the failover"
all_back=0; n_stats=0
for n in $reconnects; do n_stats=$((n_stats + 1)); [ "$n" -ge 1 ] || all_back=1; done
[ "$n_stats" -eq $(( ${have_node:-0} + 1 )) ] || all_back=1
ok $all_back \
   "each worker reconnected by itself (reconnects: $reconnects)"
completed=$(( $(echo "$py_stats" | grep -o '"completed": *[0-9]*' | grep -o '[0-9]*$') +
              $(echo "$node_stats" | grep -o '"succeeded": *[0-9]*' | grep -o '[0-9]*$' || echo 0) ))
ok "$([ "$completed" -le "$N_WORK" ]; echo $?)" \
   "no task was completed twice ($completed accepted completions for $N_WORK tasks)"
bad=$(grep -E '\] (taskguard [a-z]+|background worker) (ERROR|FATAL|PANIC):' "$SDIR/server.log" || true)
is "$bad" "" "no error from the scheduler on the promoted server"
[ -n "$bad" ] && echo "$bad" | head -5 | sed 's/^/# /'

echo "# failover timeline (seconds after the stop command):"
echo "#   primary stopped (-m immediate)   $(secs "$t_stopped" "$t_stop")"
echo "#   standby promoted (ready)         $(secs "$t_promoted" "$t_stop")"
echo "#   scheduler started                $(secs "$sched_started" "$t_stop")"
echo "#   scheduler's first pass           $(secs "$t_sched" "$t_stop")"
echo "#   expired leases reaped            $(secs "$t_reaped" "$t_stop")  (leases of $LEASE s)"
echo "#   python worker back (1st task)    $(secs "$t_py" "$t_stop")"
[ "$have_node" ] && echo "#   node worker back (1st task)      $(secs "$t_node" "$t_stop")"
echo "#   all $N_WORK tasks done                $(secs "$t_all" "$t_stop")"
done_testing
