#!/usr/bin/env bash
# The scheduler on a hot standby and after promotion (issue 17), on clusters
# of its own: a streaming standby made with pg_basebackup runs no taskguard
# worker and logs no error while the primary's leases expire under it; the
# status view answers there.  Then the primary stops (-m immediate) and the
# standby is promoted: the scheduler makes its first pass within two
# naptimes and reaps the expired leases.
. "$(dirname "$0")/../lib/tap.sh"

naptime=1000
dir=$TG_WORK/sched_standby
port=$(tg_pick_port)
tg_init_cluster "$dir/primary" "$port" "taskguard.database = 'jobs'" "taskguard.naptime = $naptime" \
    "cron.database_name = 'postgres'" "max_wal_senders = 4" "wal_level = replica"
tg_start
primary_data=$TG_DATA
sport=$(tg_pick_port)
sdir=$dir/standby
trap 'tg_stop immediate; TG_DATA=$primary_data tg_stop immediate' EXIT
DB=jobs

psql -X -q -d postgres -c "CREATE DATABASE jobs" >/dev/null
psql -X -q -d jobs -c "CREATE EXTENSION taskguard" >/dev/null
ok "$(tg_wait_for 10 "SELECT passes > 0 FROM taskguard.scheduler_status"; echo $?)" "the primary's scheduler runs"
# the primary's scheduler pauses (an hour's naptime), so that the leases
# below expire unreaped; the standby's own configuration says $naptime ms
echo "taskguard.naptime = 3600000" >>"$TG_DATA/postgresql.conf"
q "SELECT pg_reload_conf()" >/dev/null
# a worker claims five tasks and vanishes: their 2-second leases expire on the standby
q "SELECT taskguard.enqueue('t', '{}', queue => 'ha') FROM generate_series(1, 5)" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.claim('ha', 'w-gone', 5, '2 seconds')")" 5 "five tasks claimed with short leases"

mkdir -p "$sdir"; chown postgres: "$sdir" 2>/dev/null; chmod 755 "$sdir"
tg_as_pg "$TG_BIN/pg_basebackup" -h "$dir/primary" -p "$port" -U postgres -D "$sdir/data" -R -X stream -c fast \
    >"$sdir/basebackup.log" 2>&1
ok $? "pg_basebackup -R of the primary"
cat >>"$sdir/data/postgresql.conf" <<CONF
port = $sport
unix_socket_directories = '$sdir'
taskguard.naptime = $naptime
CONF
TG_DATA=$sdir/data TG_LOGFILE=$sdir/server.log tg_start
S() { psql -X -At -h "$sdir" -p "$sport" -d jobs -c "$1"; }
is "$(S "SELECT pg_is_in_recovery()")" t "the standby is in recovery"

# the standby replays for a few naptimes, past the leases' expiry
marker=$(q "SELECT taskguard.enqueue('marker', '{}', queue => 'marker')")
ok "$(end=$(( $(date +%s) + 20 )); until [ "$(S "SELECT count(*) FROM taskguard.task WHERE id = $marker")" = 1 ]; do
        [ "$(date +%s)" -gt "$end" ] && exit 1; sleep 0.1; done; echo 0)" "the standby replays the primary's writes"
S "SELECT pg_sleep(4 * $naptime / 1000.0)" >/dev/null   # a window for a scheduler that should not be there
is "$(S "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'taskguard%'")" 0 \
   "no taskguard launcher or scheduler on the standby"
is "$(S "SELECT coalesce(pid::text, 'none') || ' ' || passes FROM taskguard.scheduler_status")" "none 0" \
   "scheduler_status answers on the standby: no pid, no passes"
is "$(S "SELECT count(*) FROM taskguard.task WHERE status = 'running' AND lease_expires_at < now()")" 5 \
   "the expired leases are visible there and left alone"
is "$(grep -cE 'ERROR|FATAL|taskguard scheduler' "$sdir/server.log")" 0 "the standby's log has no error and no scheduler line"

# failover: stop the primary hard, promote the standby
tg_stop immediate
t0=$(date +%s%N)
tg_as_pg "$TG_BIN/pg_ctl" -D "$sdir/data" -w -t 30 promote >/dev/null
ok $? "pg_ctl promote"
t1=$(date +%s%N)
TG_DATA=$sdir/data
deadline=$((t1 + 2 * naptime * 1000000))
first=""
while [ "$(date +%s%N)" -le "$deadline" ]; do
    [ "$(S "SELECT passes > 0 FROM taskguard.scheduler_status")" = t ] && { first=$(date +%s%N); break; }
    sleep 0.05
done
ok "$([ -n "$first" ]; echo $?)" "the scheduler's first pass comes within two naptimes ($((2 * naptime)) ms) of the promotion"
[ -n "$first" ] && echo "# promote took $(( (t1 - t0) / 1000000 )) ms; first pass seen $(( (first - t1) / 1000000 )) ms after it"
ok "$(end=$(( $(date +%s) + 10 )); until [ "$(S "SELECT count(*) FROM taskguard.task WHERE queue = 'ha' AND status = 'running'")" = 0 ]; do
        [ "$(date +%s)" -gt "$end" ] && exit 1; sleep 0.1; done; echo 0)" "the expired leases are reaped after promotion"
is "$(grep -cE 'ERROR|taskguard scheduler step' "$sdir/server.log")" 0 "no error in the promoted server's log"
done_testing
