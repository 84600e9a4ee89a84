#!/usr/bin/env bash
# taskguard.task as a ring of partitions (28_task_ring.sql, src/task_ring.c,
# docs/storage.md): new rows go to the current slot's partition; a rotation
# moves the next partition's live rows (ready, running, failed, finished
# within the retention) to the current one with their ids and contents,
# truncates the rest and makes dead-letter records forget what went; it gives
# way to a session holding a lock on the partition and to pg_dump, and
# truncates whatever snapshot another session holds; the slot follows its
# settings; debounce stays one task per key without a unique index; deleted
# tasks are forgotten by their dead-letter records; the partitions are
# granted to nobody; the hot writers name the current slot's partition and
# fall back to the parent for tasks of earlier slots.
# In a database of its own, where no scheduler rotates behind the test's back.
. "$(dirname "$0")/../lib/tap.sh"

DB=ring_t
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ring_t" -c "CREATE DATABASE ring_t" >/dev/null
q "CREATE EXTENSION taskguard" >/dev/null
holder=""
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null
    psql -X -q -d postgres -c "ALTER SYSTEM RESET taskguard.task_retention" \
        -c "ALTER SYSTEM RESET taskguard.task_ring_slot" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
    psql -X -q -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'ring_t'" \
        -c "DROP DATABASE IF EXISTS ring_t" -c "DROP ROLE IF EXISTS ring_worker" >/dev/null 2>&1
}
trap cleanup EXIT
reload() { psql -X -q -d postgres -c "$1" -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.3; }

# ---- the shape ----
is "$(q "SELECT c.relkind::text || ':' || (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid)
           FROM pg_class c WHERE c.oid = 'taskguard.task'::regclass")" "p:4" \
   "taskguard.task is partitioned into four partitions"
is "$(q "SELECT string_agg(pg_get_expr(c.relpartbound, c.oid), ' ' ORDER BY c.relname)
           FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
          WHERE i.inhparent = 'taskguard.task'::regclass")" \
   "FOR VALUES IN (0) FOR VALUES IN (1) FOR VALUES IN (2) FOR VALUES IN (3)" "one partition per gen 0-3"
id=$(q "SELECT taskguard.enqueue('ring_job', '{\"n\": 1}', 'ring')")
is "$(q "SELECT gen = taskguard._task_gen() AND gen BETWEEN 0 AND 3 FROM taskguard.task WHERE id = $id")" "t" \
   "a new task goes to the partition of the current slot"

# ---- the slot follows its settings ----
is "$(q "SELECT taskguard._task_ring_slot() = interval '12 hours'")" "t" \
   "default slot: half the default retention of 1 day (above task_ring_slot's 30 s)"
reload "ALTER SYSTEM SET taskguard.task_retention = '1 minute'"
is "$(q "SELECT taskguard._task_ring_slot() = interval '30 seconds'")" "t" "retention 1 minute: the 30 s slot"
reload "ALTER SYSTEM SET taskguard.task_ring_slot = '2 min'"
is "$(q "SELECT taskguard._task_ring_slot() = interval '2 minutes'")" "t" "task_ring_slot = 2 min: 2 minutes"
reload "ALTER SYSTEM SET taskguard.task_ring_slot = '0'"
is "$(q "SELECT taskguard._task_ring_slot() = interval '30 seconds'")" "t" "task_ring_slot = 0: half the retention"
reload "ALTER SYSTEM SET taskguard.task_retention = '0'"
is "$(q "SELECT taskguard._task_ring_slot() = interval '1 second'")" "t" "both 0: the 1 s floor"
reload "ALTER SYSTEM SET taskguard.task_ring_slot = '1000 years'"
is "$(q "SELECT taskguard._task_ring_slot() = interval '366 days'")" "t" "1000 years: the 366-day ceiling"
for bad in "-1 s" "banana" ""; do
    out=$(psql -X -At -d postgres -c "ALTER SYSTEM SET taskguard.task_ring_slot = '$bad'" 2>&1)
    case "$out" in *"invalid value"*) r=0 ;; *) r=1 ;; esac
    ok $r "task_ring_slot '$bad' is refused ($out)"
done
reload "ALTER SYSTEM RESET taskguard.task_ring_slot"
reload "ALTER SYSTEM SET taskguard.task_retention = '1 hour'"
is "$(q "SELECT taskguard._task_ring_slot() = interval '30 minutes'")" "t" "retention 1 hour: 30-minute slots"
# 30-day slots from here: no slot boundary passes while the test runs
reload "ALTER SYSTEM SET taskguard.task_ring_slot = '30 days'"
is "$(q "SHOW taskguard.task_ring_moving")" "off" "task_ring_moving is off outside a rotation"
out=$(psql -X -At -d ring_t -c "CREATE ROLE ring_worker" -c "SET ROLE ring_worker" \
      -c "SET taskguard.task_ring_moving = on" 2>&1)
case "$out" in *"permission denied"*) r=0 ;; *) r=1 ;; esac
ok $r "an ordinary role may not set task_ring_moving (it would blind flow control's counts)"

# ---- a rotation ----
cur=$(q "SELECT taskguard._task_gen()")
nxt=$(( (cur + 1) % 4 ))
is "$(q "SELECT taskguard._task_ring_rotate()")" "0" "nothing to rotate when the next partition is empty"
# rows of an old slot in the next partition: what a rotation keeps and drops
q "INSERT INTO taskguard.task (id, queue, task_name, status, finished_at, worker, lease_expires_at, attempts, args, gen)
   OVERRIDING SYSTEM VALUE VALUES
     (900001, 'ring', 'ready_old', 'ready', NULL, NULL, NULL, 0, '{\"k\": 1}', $nxt),
     (900002, 'ring_run', 'running_old', 'running', NULL, 'w1', now() + interval '1 hour', 1, '{}', $nxt),
     (900003, 'ring', 'failed_old', 'failed', NULL, NULL, NULL, 3, '{}', $nxt),
     (900004, 'ring', 'done_recent', 'succeeded', now() - interval '5 minutes', NULL, NULL, 1, '{}', $nxt),
     (900005, 'ring', 'done_old', 'succeeded', now() - interval '2 hours', NULL, NULL, 1, '{}', $nxt),
     (900006, 'ring', 'cancelled_old', 'cancelled', now() - interval '3 hours', NULL, NULL, 0, '{}', $nxt)" >/dev/null
q "INSERT INTO taskguard.dead_letter (task_id, task_name, status, failure_type, confidence, remediation)
   VALUES (900005, 'done_old', 'RESOLVED', 'UNKNOWN', 0.5, 'MANUAL_INVESTIGATION'),
          (900003, 'failed_old', 'PENDING', 'UNKNOWN', 0.5, 'MANUAL_INVESTIGATION')" >/dev/null
before=$(q "SELECT string_agg(id || ':' || status || ':' || args::text || ':' || coalesce(worker, '-'), ' ' ORDER BY id)
              FROM taskguard.task WHERE id IN (900001, 900002, 900003, 900004)")
is "$(q "SELECT taskguard._task_ring_rotate()")" "5" "the rotation moves the four live rows (returns moved + 1)"
is "$(q "SELECT pg_relation_size('taskguard.task_ring_$nxt')")" "0" "and truncates the next partition"
is "$(q "SELECT string_agg(id || ':' || status || ':' || args::text || ':' || coalesce(worker, '-'), ' ' ORDER BY id)
           FROM taskguard.task WHERE id IN (900001, 900002, 900003, 900004)")" "$before" \
   "ready, running, failed and recently finished rows keep their ids and contents"
is "$(q "SELECT string_agg(DISTINCT gen::text, ',') FROM taskguard.task WHERE id BETWEEN 900001 AND 900006")" "$cur" \
   "they are in the current partition"
is "$(q "SELECT count(*) FROM taskguard.task WHERE id IN (900005, 900006)")" "0" \
   "rows finished longer ago than task_retention went with the TRUNCATE"
is "$(q "SELECT string_agg(task_name || '=' || coalesce(task_id::text, 'NULL'), ' ' ORDER BY task_name)
           FROM taskguard.dead_letter")" "done_old=NULL failed_old=900003" \
   "the dropped task's dead-letter record forgot it; the kept one's did not"
is "$(q "SELECT id FROM taskguard.claim('ring', 'w2')")" "$id" "claim still takes the ready tasks in order"
is "$(q "SELECT id FROM taskguard.claim('ring', 'w2')")" "900001" "including the moved one"
is "$(q "SELECT taskguard.complete(900002, '{\"ok\": true}', 1)")" "t" "complete() finds a moved running task"
is "$(q "SELECT taskguard._task_ring_rotate()")" "0" "a second rotation in the same slot has nothing to do"

# ---- flow control counts across a move ----
q "INSERT INTO taskguard.flow_limit (scope, name, max_running) VALUES ('queue', 'ring_cap', 1)" >/dev/null
q "INSERT INTO taskguard.task (queue, task_name, status, worker, lease_expires_at, attempts, gen)
   VALUES ('ring_cap', 'capped', 'running', 'w3', now() + interval '1 hour', 1, $nxt)" >/dev/null
capped=$(q "SELECT id FROM taskguard.task WHERE queue = 'ring_cap'")
q "SELECT taskguard.enqueue('capped', '{}', 'ring_cap')" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.claim('ring_cap', 'w4')")" "0" "the cap of 1 holds with one running"
is "$(q "SELECT taskguard._task_ring_rotate() > 0")" "t" "the running task is moved"
is "$(q "SELECT count(*) FROM taskguard.claim('ring_cap', 'w4')")" "0" "after the move it still counts: the cap holds"
q "SELECT taskguard.complete($capped, NULL, 1)" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.claim('ring_cap', 'w4')")" "1" "its completion frees the slot once"
is "$(q "SELECT count(*) FROM taskguard.claim('ring_cap', 'w4')")" "0" "and only once"

# ---- a rotation gives way to a lock holder, and to pg_dump ----
q "INSERT INTO taskguard.task (queue, task_name, gen) VALUES ('ring', 'held_part', $nxt)" >/dev/null
psql -X -q -d ring_t -c "BEGIN" -c "SELECT count(*) FROM taskguard.task_ring_$nxt" -c "SELECT pg_sleep(600)" \
    >/dev/null 2>&1 &
holder=$!
tg_wait_for 30 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'" ring_t
t0=$(date +%s%N)
is "$(q "SELECT taskguard._task_ring_rotate()")" "0" "a session holding a lock on the partition: the rotation skips"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ok "$([ "$ms" -lt 2000 ]; echo $?)" "it gave up within the lock timeout, not waiting for the holder (${ms} ms)"
is "$(q "SELECT count(*) FROM taskguard.task WHERE task_name = 'held_part'")" "1" "nothing moved or lost"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; holder=""
psql -X -q -d ring_t -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'" >/dev/null
PGAPPNAME=pg_dump psql -X -q -d ring_t -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
holder=$!
tg_wait_for 30 "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'pg_dump'" ring_t
is "$(q "SELECT taskguard._task_ring_rotate()")" "0" "while pg_dump is connected the ring waits"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; holder=""
psql -X -q -d ring_t -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pg_dump'" >/dev/null
tg_wait_for 30 "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'pg_dump'" ring_t
is "$(q "SELECT taskguard._task_ring_rotate()")" "2" "once both are gone it moves the row"

# ---- a held snapshot does not keep a partition from being emptied ----
psql -X -q -d ring_t -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT count(*) FROM pg_class" \
    -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
holder=$!
tg_wait_for 30 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)' AND backend_xmin IS NOT NULL" ring_t
q "INSERT INTO taskguard.task (queue, task_name, status, finished_at, gen)
   SELECT 'ring', 'churn', 'succeeded', now() - interval '2 hours', $nxt FROM generate_series(1, 5000)" >/dev/null
q "UPDATE taskguard.task SET result = '{}' WHERE task_name = 'churn'" >/dev/null
big=$(q "SELECT pg_relation_size('taskguard.task_ring_$nxt')")
ok "$([ "$big" -gt 100000 ]; echo $?)" "5,000 rows and their dead versions fill the partition ($big bytes)"
is "$(q "SELECT taskguard._task_ring_rotate()")" "1" "with a snapshot held elsewhere the rotation runs"
is "$(q "SELECT pg_relation_size('taskguard.task_ring_$nxt')")" "0" \
   "and the partition is empty: TRUNCATE does not wait for the snapshot as vacuum would"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; holder=""
psql -X -q -d ring_t -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(600)'" >/dev/null

# ---- debounce: one task per key without a unique index ----
d1=$(q "SELECT taskguard.enqueue('deb', '{\"v\": 1}', 'ring_deb', debounce_key => 'k1', debounce => '1 minute')")
d2=$(q "SELECT taskguard.enqueue('deb', '{\"v\": 2}', 'ring_deb', debounce_key => 'k1', debounce => '1 minute')")
is "$d2" "$d1" "a second enqueue with the key replaces the first task"
is "$(q "SELECT args->>'v' FROM taskguard.task WHERE id = $d1")" "2" "with the newer args"
# two sessions at once: the second waits for the first's commit, then finds its task
psql -X -q -At -d ring_t -c "BEGIN" \
    -c "SELECT taskguard.enqueue('deb', '{}', 'ring_deb', debounce_key => 'k2', debounce => '1 minute')" \
    -c "SELECT pg_sleep(1)" -c "COMMIT" > /tmp/ring_deb_a.$$ 2>&1 &
a=$!
sleep 0.3
b_id=$(q "SELECT taskguard.enqueue('deb', '{}', 'ring_deb', debounce_key => 'k2', debounce => '1 minute')")
wait "$a"
a_id=$(head -1 /tmp/ring_deb_a.$$); rm -f /tmp/ring_deb_a.$$
is "$b_id" "$a_id" "concurrent enqueues of one key make one task"
is "$(q "SELECT count(*) FROM taskguard.task WHERE debounce_key = 'k2'")" "1" "one row"

# ---- a deleted task is forgotten by its dead-letter record ----
gone=$(q "SELECT taskguard.enqueue('gone', '{}', 'ring')")
q "INSERT INTO taskguard.dead_letter (task_id, task_name, status, failure_type, confidence, remediation)
   VALUES ($gone, 'gone', 'RESOLVED', 'UNKNOWN', 0.5, 'MANUAL_INVESTIGATION')" >/dev/null
q "DELETE FROM taskguard.task WHERE id = $gone" >/dev/null
is "$(q "SELECT coalesce(task_id::text, 'NULL') FROM taskguard.dead_letter WHERE task_name = 'gone'")" "NULL" \
   "DELETE of a task sets its records' task_id to NULL (the foreign key's ON DELETE SET NULL)"
q "INSERT INTO taskguard.task (queue, task_name, status, finished_at) VALUES ('ring', 'pruned', 'succeeded', now() - interval '90 minutes')" >/dev/null
pruned=$(q "SELECT id FROM taskguard.task WHERE task_name = 'pruned'")
q "INSERT INTO taskguard.dead_letter (task_id, task_name, status, failure_type, confidence, remediation)
   VALUES ($pruned, 'pruned', 'RESOLVED', 'UNKNOWN', 0.5, 'MANUAL_INVESTIGATION')" >/dev/null
q "SELECT taskguard._prune_tasks(1000)" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.task WHERE id = $pruned")|$(q "SELECT coalesce(task_id::text, 'NULL') FROM taskguard.dead_letter WHERE task_name = 'pruned'")" \
   "0|NULL" "pruning does the same"

# ---- the writers name the current slot's partition (taskguard_ring_<gen>.task_slot) ----
ids=$(q "SELECT string_agg(i::text, ',') FROM taskguard.enqueue_many('ring_slot', ARRAY['{\"n\": 1}', '{\"n\": 2}', '{\"n\": 3}']::jsonb[], 'ring_slot') AS i")
is "$(q "SELECT string_agg((args->>'n') || ':' || (gen = taskguard._task_gen())::text, ' ' ORDER BY id)
           FROM taskguard.task WHERE id IN ($ids)")" "1:true 2:true 3:true" \
   "enqueue_many puts its tasks in the current partition, ids in the order of args"
cur=$(q "SELECT taskguard._task_gen()"); old=$(( (cur + 2) % 4 ))
# running tasks of an earlier slot (claimed before the slot changed)
q "INSERT INTO taskguard.task (queue, task_name, status, attempts, gen)
   SELECT 'ring_slot', 'earlier', 'running', 1, $old FROM generate_series(1, 2)" >/dev/null
e1=$(q "SELECT min(id) FROM taskguard.task WHERE task_name = 'earlier'")
e2=$(q "SELECT max(id) FROM taskguard.task WHERE task_name = 'earlier'")
n1=$(q "SELECT id FROM taskguard.claim('ring_slot', 'w5')")
is "$(q "SELECT taskguard.complete($e1, '{\"r\": 1}', 1)")|$(q "SELECT status || ':' || result::text FROM taskguard.task WHERE id = $e1")" \
   't|succeeded:{"r": 1}' "complete() finds a task in an earlier slot's partition"
is "$(q "SELECT taskguard.complete_many(ARRAY[$n1, $e2], ARRAY[1, 1])")" "2" \
   "complete_many() completes a task of the current partition and one of an earlier one together"
is "$(q "SELECT taskguard.complete_many(ARRAY[$n1, $e2], ARRAY[1, 1])")|$(q "SELECT taskguard.complete($e1)")" "0|f" \
   "and neither a second time"
# claim(): rows picked in an earlier slot's partition are updated through the parent
q "INSERT INTO taskguard.task (queue, task_name, priority_score, gen)
   VALUES ('ring_mix', 'old_hi', 5, $old), ('ring_mix', 'old_lo', 1, $old)" >/dev/null
q "INSERT INTO taskguard.task (queue, task_name, priority_score) VALUES ('ring_mix', 'cur_mid', 3)" >/dev/null
is "$(q "SELECT string_agg(task_name || ':' || status || ':' || attempts, ' ') FROM taskguard.claim('ring_mix', 'w6', 10)")" \
   "old_hi:running:1 cur_mid:running:1 old_lo:running:1" \
   "a batch claim across two partitions claims every picked row, in claim order"
q "INSERT INTO taskguard.task (queue, task_name, gen) VALUES ('ring_one', 'old_one', $old)" >/dev/null
is "$(q "SELECT task_name || ':' || status || ':' || (gen = $old)::text FROM taskguard.claim('ring_one', 'w7')")" \
   "old_one:running:true" "a single claim of a row in an earlier slot's partition claims it where it is"
is "$(q "SELECT count(*) FROM taskguard.claim('ring_one', 'w7')")|$(q "SELECT count(*) FROM taskguard.claim('ring_mix', 'w6', 10)")" \
   "0|0" "and neither is claimed again"
# claim(): the claim mark knows the partitions that hold a queue's ready rows,
# and claim() looks in the current one alone while no other does
q "SELECT taskguard.enqueue('g', '{}', 'ring_gens') FROM generate_series(1, 2)" >/dev/null
q "SELECT count(*) FROM taskguard.claim('ring_gens', 'w8')" >/dev/null
is "$(q "SELECT slot_only || ':' || gens::text FROM taskguard._claim_mark('ring_gens')")" "true:{$cur}" \
   "after a claim of a queue whose rows are in the current partition, the mark has that partition alone"
q "INSERT INTO taskguard.task (queue, task_name, status, attempts, gen) VALUES ('ring_gens', 'old_run', 'running', 1, $old)" >/dev/null
o1=$(q "SELECT id FROM taskguard.task WHERE task_name = 'old_run'")
q "SELECT taskguard.release($o1)" >/dev/null
is "$(q "SELECT slot_only || ':' || gens::text FROM taskguard._claim_mark('ring_gens')")" \
   "false:{$(printf '%s\n' "$cur" "$old" | sort -n | paste -sd,)}" \
   "a task of an earlier partition made ready again (release) adds its partition at commit"
is "$(q "SELECT string_agg(task_name, ' ' ORDER BY task_name) FROM taskguard.claim('ring_gens', 'w8', 5)")" "g old_run" \
   "and claim() finds it beside the current partition's"
# a session raises the mark every 4th claim; the first raise keeps what was
# added in its epoch (the release), the second finds the queue empty
q "SELECT count(*) FROM generate_series(1, 8) g, LATERAL taskguard.claim('ring_gens', 'w8-' || g) c" >/dev/null
is "$(q "SELECT slot_only || ':' || gens::text FROM taskguard._claim_mark('ring_gens')")" "true:{}" \
   "a raise that finds no ready row leaves no partition, and claims look in the current one"
q "SELECT taskguard.enqueue('g2', '{}', 'ring_gens')" >/dev/null
is "$(q "SELECT gens::text FROM taskguard._claim_mark('ring_gens')")|$(q "SELECT task_name FROM taskguard.claim('ring_gens', 'w8')")" \
   "{$cur}|g2" "an enqueue adds the current partition at commit, and the task is claimed"
# _claim_mark_raise's partitions: anything but partition numbers means every one
got=""
for g in "NULL" "'{}'" "'{9}'" "'{-1}'" "'{NULL}'" "'{{1}}'"; do
    ep=$(q "SELECT epoch FROM taskguard._claim_mark('ring_bad')")
    q "SELECT taskguard._claim_mark_raise('ring_bad', $ep, 0, now(), 1, $g::int[])" >/dev/null
    got="$got $(q "SELECT gens::text FROM taskguard._claim_mark('ring_bad')")"
done
is "$got" " {0,1,2,3} {} {0,1,2,3} {0,1,2,3} {0,1,2,3} {0,1,2,3}" \
   "_claim_mark_raise: a key with NULL, empty, out-of-range, NULL-element and 2-D partitions (empty: none; the rest: every one)"
ep=$(q "SELECT epoch FROM taskguard._claim_mark('ring_bad')")
q "SELECT taskguard._claim_mark_raise('ring_bad', $ep, NULL, NULL, NULL, NULL)" >/dev/null
is "$(q "SELECT gens::text FROM taskguard._claim_mark('ring_bad')")" "{}" "no key and no partitions: none"
is "$(q "SELECT current_setting('search_path') FROM (SELECT taskguard.complete_many(ARRAY[$n1])) AS x")" \
   "$(q "SHOW search_path")" "the caller's search_path is its own again after the call"
is "$(q "SELECT count(*) FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
          WHERE n.nspname ~ '^taskguard_ring_([0-3]|all)$' AND c.relname = 'task_slot' AND c.relkind = 'v'
            AND n.nspowner = (SELECT relowner FROM pg_class WHERE oid = 'taskguard.task'::regclass)
            AND n.nspacl IS NULL AND c.relacl IS NULL")" "5" \
   "five slot views (four partitions, the whole table), one schema each, owned by the table's owner and granted to nobody"

# complete_many() keeps finding its rows by key in a slot's partition that
# autovacuum analyzed while it was empty (after its TRUNCATE) and that filled
# after the session planned the call: the plan it cached then joined a hash of
# the ids to a scan of the whole partition (6 ms a call and growing).
g=$(q "SELECT taskguard._task_gen()")
out=$(psql -X -q -At -d $DB -v ON_ERROR_STOP=1 2>&1 <<SQL
TRUNCATE taskguard.task_ring_$g;
ANALYZE taskguard.task_ring_$g;
SELECT count(*) FROM generate_series(1, 8) i, LATERAL taskguard.complete_many(ARRAY[-i], ARRAY[1]) c;
INSERT INTO taskguard.task (queue, task_name, status, attempts, gen)
SELECT 'ring_plan', 'p', 'running', 1, $g FROM generate_series(1, 20000);
SELECT array_agg(id) AS ids FROM (SELECT id FROM taskguard.task WHERE queue = 'ring_plan' ORDER BY id LIMIT 10) s \gset
BEGIN;
SELECT 'done ' || taskguard.complete_many(:'ids'::bigint[], array_fill(1, ARRAY[10]));
SELECT 'read ' || pg_stat_get_xact_tuples_returned('taskguard.task_ring_${g}_pkey'::regclass);
COMMIT;
SQL
)
read=$(sed -n 's/^read //p' <<<"$out")
is "$(sed -n 's/^done //p' <<<"$out")|$([ "${read:-99999}" -le 100 ] && echo few)" "10|few" \
   "complete_many() of 10 tasks, planned while the partition was analyzed empty, reads their keys, not the 20,000-row partition (${read:-?} index entries read)"
# and 10,000 at once (the join is a hash join: a nested loop with the ids
# inside compared every row with every id, 2.9 s)
is "$(q "SELECT taskguard.complete_many(ARRAY(SELECT id FROM taskguard.task WHERE queue = 'ring_plan' AND status = 'running'
                                        ORDER BY id LIMIT 10000), array_fill(1, ARRAY[10000]))")" "10000" \
   "complete_many() completes 10,000 tasks in one call"

# ---- access ----
q "SELECT taskguard.grant_access('ring_worker', 'worker')" >/dev/null
is "$(q "SELECT bool_or(has_table_privilege('ring_worker', c.oid, 'SELECT'))
           FROM pg_class c WHERE c.relname LIKE 'task_ring_%' AND c.relnamespace = 'taskguard'::regnamespace")" "f" \
   "the partitions are granted to nobody (read through taskguard.task)"
is "$(q "SELECT has_function_privilege('ring_worker', 'taskguard._task_ring_rotate()', 'EXECUTE')")" "f" \
   "a worker may not rotate the ring"
is "$(q "SELECT bool_or(has_schema_privilege('ring_worker', n.oid, 'USAGE') OR has_schema_privilege('ring_worker', n.oid, 'CREATE'))
           FROM pg_namespace n WHERE n.nspname ~ '^taskguard_ring_'")" "f" \
   "a worker may neither use nor create in the slot views' schemas"
is "$(q "SELECT bool_and(c.relrowsecurity) FROM pg_class c
          WHERE c.relname ~ '^task(_ring_[0-3])?$' AND c.relnamespace = 'taskguard'::regnamespace")" "t" \
   "row security is on for the table and each partition"
q "SELECT taskguard.revoke_access('ring_worker', 'worker')" >/dev/null

done_testing
