#!/usr/bin/env bash
# NOTIFY taskguard with the queue name when a task becomes ready now;
# throttled per queue, and a swallowed NOTIFY is sent later by the scheduler.
. "$(dirname "$0")/../lib/tap.sh"

listen() {  # listen SECONDS OUTFILE: a session that LISTENs, then reports what arrived
    psql -X -d taskguard -c "LISTEN taskguard" -c "SELECT pg_sleep($1)" -c "SELECT 1" >"$2" 2>&1
}
out=$TG_WORK/notify1.out
listen 1.5 "$out" &
lp=$!
tg_wait_for 5 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1.5)%'" >/dev/null
q "SELECT taskguard.enqueue('n', '{}', 'nq')" >/dev/null
q "SELECT taskguard.enqueue('n', '{}', 'nq_later', run_at => now() + interval '1 hour')" >/dev/null
wait $lp
is "$(grep -c 'payload "nq"' "$out")" 1 "enqueue of a ready task notifies its queue"
is "$(grep -c 'payload "nq_later"' "$out")" 0 "a task for later does not notify"

# 20 enqueues in a burst: throttled, but the last one is never lost
q "ALTER SYSTEM SET taskguard.notify_interval = '2s'" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null
tg_wait_for 5 "SELECT current_setting('taskguard.notify_interval') = '2s'" >/dev/null
out=$TG_WORK/notify2.out
listen 3 "$out" &
lp=$!
tg_wait_for 5 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3)%'" >/dev/null
for i in $(seq 1 20); do q "SELECT taskguard.enqueue('n', '{}', 'burst')" >/dev/null; done
wait $lp
n=$(grep -c 'payload "burst"' "$out")
ok "$([ "$n" -ge 1 ] && [ "$n" -le 3 ]; echo $?)" "a burst of 20 enqueues sends 1 to 3 NOTIFYs ($n), the scheduler sending the swallowed one"
q "ALTER SYSTEM RESET taskguard.notify_interval" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null

out=$TG_WORK/notify3.out
psql -X -d taskguard -c "LISTEN taskguard" -c "SET taskguard.notify = off" \
     -c "SELECT taskguard.enqueue('n', '{}', 'quiet')" -c "SELECT 1" >"$out" 2>&1
is "$(grep -c 'payload "quiet"' "$out")" 0 "SET taskguard.notify = off sends nothing"
q "DELETE FROM taskguard.task WHERE queue IN ('nq', 'nq_later', 'burst', 'quiet')" >/dev/null
done_testing
