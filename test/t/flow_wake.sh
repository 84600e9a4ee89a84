#!/usr/bin/env bash
# Flow control's wake-ups (docs/flow.md "Waking the workers a limit holds
# back"): workers that sleep on LISTEN and claim only when a NOTIFY names
# their queue (no polling) still get what the limits allow.
#  - rate limit: the scheduler notifies the queue when the token a claim was
#    refused comes back; such a worker gets >= 95 % of the budget;
#  - cap: a claim refused by a full cap is woken when a slot frees and the
#    worker that freed it does not claim again; nobody waiting, no NOTIFY.
. "$(dirname "$0")/../lib/tap.sh"
PY=/usr/bin/python3                 # Debian's, which sees python3-psycopg
export PGDATABASE=${DB:-taskguard}
Q=fwake_$$

# A worker that claims only when woken: claim (batch 1) and complete until
# nothing is handed out, then wait for a NOTIFY naming the queue — at most
# 2 s, which counts as a missed wake-up.  Prints started, wake-ups, misses.
cat >"$TG_WORK/fwake.py" <<'PY'
import select, sys, time
import psycopg
queue, seconds = sys.argv[1], float(sys.argv[2])
c = psycopg.connect(autocommit=True)
got = []
c.add_notify_handler(lambda n: got.append(n.payload))
c.execute("LISTEN taskguard")
started = wakes = misses = 0
stop = time.monotonic() + seconds
while time.monotonic() < stop:
    while time.monotonic() < stop:
        r = c.execute("SELECT id, attempts FROM taskguard.claim(%s, 'fwake', 1)", (queue,)).fetchone()
        if r is None:
            break
        c.execute("SELECT taskguard.complete(%s, NULL, %s)", r)
        started += 1
    woken = queue in got
    got.clear()
    deadline = min(stop, time.monotonic() + 2.0)
    while not woken and time.monotonic() < deadline:
        if select.select([c.fileno()], [], [], max(0.0, deadline - time.monotonic()))[0]:
            c.execute("SELECT 1")      # delivers the pending notifies to the handler
            woken = queue in got
            got.clear()
    if woken:
        wakes += 1
    elif time.monotonic() < stop:
        misses += 1
print(started, wakes, misses)
PY

# ---- rate limit 20 a second, burst 5: a LISTEN-only worker, 4 s (a wake-up up to
# 200 ms late loses no token: the scheduler sends them between the steps of its pass) ----
q "INSERT INTO taskguard.flow_limit (scope, name, rate, per, burst) VALUES ('queue', '$Q', 20, '1 second', 5)" >/dev/null
q "SELECT taskguard.enqueue_many('job', array_fill('{}'::jsonb, ARRAY[500]), '$Q')" >/dev/null
read -r started wakes misses < <($PY "$TG_WORK/fwake.py" "$Q" 4)
span=$(q "SELECT extract(epoch FROM max(started_at) - min(started_at)) FROM taskguard.task
           WHERE queue = '$Q' AND started_at IS NOT NULL")
budget=$(q "SELECT floor(5 + 20 * $span)")
echo "# rate 20/s burst 5, LISTEN only: started $started in $(q "SELECT round($span::numeric, 2)") s (budget $budget), $wakes wake-ups, $misses missed"
ok $([ "${started:-0}" -le "$((budget + 1))" ] && echo 0 || echo 1) "started $started of a budget of $budget: not over"
ok $(q "SELECT CASE WHEN ${started:-0} >= 0.95 * $budget THEN 0 ELSE 1 END") \
   "a worker that claims only when notified gets >= 95 % of the rate budget ($started of $budget)"
is "$misses" 0 "it never waited 2 s for a token (each refused claim's token came with a NOTIFY)"
ok $([ "${wakes:-0}" -ge $((started / 2)) ] && echo 0 || echo 1) "it was woken about once per token ($wakes wake-ups for $started tasks)"
q "DELETE FROM taskguard.flow_limit WHERE name = '$Q'" >/dev/null
q "DELETE FROM taskguard.task WHERE queue = '$Q'" >/dev/null

# ---- cap 1: a refused claim is woken when the slot frees ----
listen() {  # listen SECONDS OUTFILE: a session that LISTENs, then reports what arrived
    psql -X -d taskguard -c "LISTEN taskguard" -c "SELECT pg_sleep($1)" -c "SELECT 1" >"$2" 2>&1
}
C=${Q}_cap
q "INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', '$C', 1)" >/dev/null
q "SELECT taskguard.enqueue_many('job', array_fill('{}'::jsonb, ARRAY[3]), '$C')" >/dev/null
held=$(q "SELECT id FROM taskguard.claim('$C', 'holder', 1)")
is "$(q "SELECT count(*) FROM taskguard.claim('$C', 'waiter', 1)")" 0 "cap 1 full: a second claim is refused (and waits)"
out=$TG_WORK/fwake_cap.out
listen 1.5 "$out" &
lp=$!
tg_wait_for 5 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1.5)%'" >/dev/null
q "SELECT taskguard.complete($held)" >/dev/null
wait $lp
is "$(grep -c "payload \"$C\"" "$out")" 1 "the holder completes and claims no more: the waiting queue gets one NOTIFY"

# nobody refused since: a task leaving running sends none
held=$(q "SELECT id FROM taskguard.claim('$C', 'holder', 1)")
listen 1 "$out" &
lp=$!
tg_wait_for 5 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1)%'" >/dev/null
q "SELECT taskguard.complete($held)" >/dev/null
wait $lp
is "$(grep -c "payload \"$C\"" "$out")" 0 "no claim was refused since the last wake-up: no NOTIFY"
q "DELETE FROM taskguard.flow_limit WHERE name = '$C'" >/dev/null
q "DELETE FROM taskguard.task WHERE queue = '$C'" >/dev/null

# ---- reservations given back.  Cap 1; another session holds row locks on the oldest
# tasks.  A claim reserves the slot for the oldest, finds it locked, and would refuse the
# task behind it for its own reservation: it looks again past the rows it could not have
# (_flow_given_back), at most four times.  With five locked rows it gives up: giving its
# reservation back must then wake the queue (the bug: the cap stayed one below its limit
# with the workers asleep until their poll).
L=${Q}_lock
q "INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', '$L', 1), ('queue', '${L}2', 1)" >/dev/null
locked=$(q "SELECT string_agg(taskguard.enqueue('job', '{}', '$L', now() - make_interval(mins => 10 - k))::text, ',')
              FROM generate_series(1, 5) k")
q "SELECT taskguard.enqueue('job', '{}', '$L')" >/dev/null
locked="$locked,$(q "SELECT taskguard.enqueue('job', '{}', '${L}2', now() - interval '1 minute')")"
q "SELECT taskguard.enqueue('job', '{}', '${L}2')" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d taskguard -c "BEGIN" -c "SELECT id FROM taskguard.task WHERE id IN ($locked) FOR UPDATE" \
     -c "SELECT pg_sleep(3) /* fwake lock */" -c "COMMIT" >/dev/null 2>&1 &
locker=$!
tg_wait_for 5 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3) /* fwake lock */%'" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.claim('${L}2', 'w', 1)")" 1 \
   "cap 1, the oldest task locked by another session: the claim takes the free one behind it"
out=$TG_WORK/fwake_lock.out
listen 1.5 "$out" &
lp=$!
tg_wait_for 5 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1.5)%'" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.claim('$L', 'unlucky', 1)")" 0 \
   "five locked tasks ahead of the free one: the claim gives up after four looks"
wait $lp
# at least one: the scheduler may notify the queue for its due tasks in the same
# second (seen in 1 run of 5 of this test, before and after the merge of issue 21)
n=$(grep -c "payload \"$L\"" "$out")
ok "$([ "$n" -ge 1 ] && [ "$n" -le 2 ]; echo $?)" "the reservation it gave back wakes the queue: a NOTIFY ($n)"
wait $locker
is "$(q "SELECT count(*) FROM taskguard.claim('$L', 'woken', 1)")" 1 "and once the locks are gone the woken worker gets a task"
q "DELETE FROM taskguard.flow_limit WHERE name IN ('$L', '${L}2')" >/dev/null
q "DELETE FROM taskguard.task WHERE queue IN ('$L', '${L}2')" >/dev/null

# ---- another database (no scheduler there): the freeing commit notifies at once ----
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS fwake_other" -c "CREATE DATABASE fwake_other" >/dev/null &&
    psql -X -q -d fwake_other -c "CREATE EXTENSION taskguard" >/dev/null
DB=fwake_other q "INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', 'oq', 1)" >/dev/null
DB=fwake_other q "SELECT taskguard.enqueue_many('job', array_fill('{}'::jsonb, ARRAY[3]), 'oq')" >/dev/null
held=$(DB=fwake_other q "SELECT id FROM taskguard.claim('oq', 'holder', 1)")
is "$(DB=fwake_other q "SELECT count(*) FROM taskguard.claim('oq', 'waiter', 1)")" 0 \
   "another database, cap 1 full: a second claim is refused"
out=$TG_WORK/fwake_other.out
psql -X -d fwake_other -c "LISTEN taskguard" -c "SELECT pg_sleep(1.5)" -c "SELECT 1" >"$out" 2>&1 &
lp=$!
tg_wait_for 5 "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = 'fwake_other' AND query LIKE 'SELECT pg_sleep(1.5)%'" >/dev/null
DB=fwake_other q "SELECT taskguard.complete($held)" >/dev/null
wait $lp
is "$(grep -c 'payload "oq"' "$out")" 1 "the holder's complete notifies the waiting queue itself (no scheduler there)"
psql -X -q -d postgres -c "DROP DATABASE fwake_other" >/dev/null

done_testing
