#!/usr/bin/env bash
# Backups (docs/operations.md "Backups"): fill every table, edit built-in
# rows, then pg_dump -Fc + pg_restore into a fresh database, the same dump
# restored in parallel the way docs/operations.md says (taskguard's rows in
# one job: PostgreSQL does not order extension tables' data by their foreign
# keys in a parallel restore) into another, and a plain dump + psql into a
# third.  In each: every table and id sequence
# equals the source row for row (rows per table printed below), built-in
# rows are there once and as edited, the rollups count each restored record
# once, saved breakers are open again, new ids continue above the old ones,
# and tick() does its work (a due retry is put back on its queue).  A
# database updated from 0.1.0 dumps and restores whole as well.
# Runs in the harness's cluster, in databases of its own (the harness's
# scheduler works only in database taskguard, hence tick()); then, in a
# cluster of its own whose taskguard.database is bk_app, restores the dump
# under another name and renames it as docs/operations.md says: the
# scheduler starts there by itself, reaps the old leases and requeues the
# due retries.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."

dbs="bk_src bk_custom bk_parallel bk_plain bk_v1 bk_v1_restored"
restored="bk_custom bk_parallel bk_plain"
dir=$(mktemp -d "${TG_WORK:-/tmp}/backup.XXXXXX")
chmod 755 "$dir"     # the second cluster runs as postgres
for d in $dbs; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" >/dev/null 2>&1; done
main_env="PGHOST=$PGHOST PGPORT=$PGPORT"
cleanup() {
    tg_stop immediate     # the second cluster, if it was started
    for d in $dbs; do env $main_env psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1; done
    rm -rf "$dir"
}
trap cleanup EXIT

# The source: every table filled, and an admin's edits of built-in rows.
DB=bk_src
q "CREATE EXTENSION taskguard" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d bk_src -f test/lib/fill_every_table.sql >/dev/null
ok $? "fill_every_table.sql runs"
psql -X -q -v ON_ERROR_STOP=1 -d bk_src >/dev/null <<'SQL'
UPDATE taskguard.customer_tier SET sla = '20 minutes' WHERE tier = 'enterprise';
UPDATE taskguard.priority_queue SET queue = 'urgent' WHERE priority = 'CRITICAL';
UPDATE taskguard.retry_policy SET max_retries = 7 WHERE failure_type = 'UNKNOWN' AND task_name IS NULL;
UPDATE taskguard.breaker_config SET failure_threshold = 9 WHERE service = '*';
UPDATE taskguard.alert_threshold SET threshold = 25 WHERE alert = 'dlq_depth' AND level = 'warning';
SQL
ok $? "built-in rows edited"
builtins_sql="SELECT concat_ws(' ',
    (SELECT count(*) FROM taskguard.retry_policy WHERE task_name IS NULL),
    (SELECT count(*) FROM taskguard.customer_tier), (SELECT count(*) FROM taskguard.priority_queue),
    (SELECT count(*) FROM taskguard.breaker_config WHERE service = '*'),
    (SELECT count(*) FROM taskguard.alert_threshold WHERE builtin),
    (SELECT sla FROM taskguard.customer_tier WHERE tier = 'enterprise'),
    (SELECT queue FROM taskguard.priority_queue WHERE priority = 'CRITICAL'),
    (SELECT max_retries FROM taskguard.retry_policy WHERE failure_type = 'UNKNOWN' AND task_name IS NULL),
    (SELECT failure_threshold FROM taskguard.breaker_config WHERE service = '*'),
    (SELECT threshold FROM taskguard.alert_threshold WHERE alert = 'dlq_depth' AND level = 'warning'))"
builtins=$(q "$builtins_sql")
is "$builtins" "15 5 5 1 8 00:20:00 urgent 7 9 25" "the source holds the edited built-in rows"

# What is dumped: every table but the metric_snapshot cache, whole, and
# every sequence.
is "$(q "SELECT coalesce(string_agg(c.relname, ' ' ORDER BY c.relname), '')
           FROM pg_class c, pg_extension e
          WHERE e.extname = 'taskguard' AND c.relnamespace = 'taskguard'::regnamespace
            AND c.relkind IN ('r', 'S') AND c.oid <> ALL (e.extconfig)")" "metric_snapshot" \
   "every table and sequence but metric_snapshot is registered with pg_extension_config_dump"
is "$(q "SELECT count(*) FROM pg_extension e, unnest(e.extcondition) w
          WHERE e.extname = 'taskguard' AND w <> ''")" "0" "every registered table is dumped whole"
is "$(q "SELECT coalesce(string_agg(relname, ' '), '') FROM pg_class
          WHERE relnamespace = 'taskguard'::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition
            AND (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', oid::regclass),
                 false, true, '')))[1]::text = '0'")" "" "fill_every_table.sql leaves no table empty"

# snapshot DB: one line per table and sequence: name, rows, md5 of the rows
# sorted (a sequence: its position).
snapshot() {
    psql -X -At -F' ' -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT CASE WHEN c.relkind IN ('r', 'p') THEN format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text COLLATE "C"), '''')) FROM %s t',
                            c.relname, c.oid::regclass)
       ELSE format('SELECT %L, last_value, is_called FROM %s', c.relname, c.oid::regclass) END
  FROM pg_class c
 WHERE c.relnamespace = 'taskguard'::regnamespace AND c.relkind IN ('r', 'p', 'S')
   AND NOT c.relispartition   -- a partitioned table's rows are counted whole
   AND c.relname <> 'metric_snapshot'
 ORDER BY c.relname COLLATE "C" \gexec
SQL
}
src_snap=$(snapshot bk_src)
max_task=$(q "SELECT max(id) FROM taskguard.task")
max_dlq=$(q "SELECT max(id) FROM taskguard.dead_letter")
max_rule=$(q "SELECT max(id) FROM taskguard.classification_rule")

"$TG_BIN/pg_dump" -Fc -d bk_src -f "$dir/bk.dump" 2>"$dir/dump.err"
ok $? "pg_dump -Fc"
"$TG_BIN/pg_dump" -Fp -d bk_src -f "$dir/bk.sql" 2>>"$dir/dump.err"
ok $? "pg_dump (plain)"
is "$(cat "$dir/dump.err")" "" "pg_dump says nothing"
"$TG_BIN/pg_restore" --exit-on-error -d bk_custom "$dir/bk.dump" 2>"$dir/restore.err"
ok $? "pg_restore of the -Fc dump into a fresh database"
{ "$TG_BIN/pg_restore" -e -d bk_parallel --section=pre-data "$dir/bk.dump" &&
  "$TG_BIN/pg_restore" -e -d bk_parallel --section=data -n taskguard "$dir/bk.dump" &&
  "$TG_BIN/pg_restore" -e -d bk_parallel --section=data -N taskguard -j 2 "$dir/bk.dump" &&
  "$TG_BIN/pg_restore" -e -d bk_parallel --section=post-data -j 2 "$dir/bk.dump"; } 2>>"$dir/restore.err"
ok $? "pg_restore in parallel as docs/operations.md says"
psql -X -q -v ON_ERROR_STOP=1 -d bk_plain -f "$dir/bk.sql" >/dev/null 2>>"$dir/restore.err"
ok $? "psql -f of the plain dump into a fresh database"
is "$(cat "$dir/restore.err")" "" "the restores say nothing"

declare -A snap
for d in $restored; do
    snap[$d]=$(snapshot "$d")
    diffs=$(diff <(echo "$src_snap") <(echo "${snap[$d]}"))
    is "$diffs" "" "$d: every table and sequence equals the source row for row ($(echo "$src_snap" | wc -l) relations)"
    [ -n "$diffs" ] && echo "$diffs" | sed 's/^/# /'
done
echo "# rows per table: source / pg_restore / pg_restore in parallel / psql of the plain dump"
echo "# (a sequence: its last_value)"
paste -d' ' <(echo "$src_snap" | cut -d' ' -f1,2) <(echo "${snap[bk_custom]}" | cut -d' ' -f2) \
    <(echo "${snap[bk_parallel]}" | cut -d' ' -f2) <(echo "${snap[bk_plain]}" | cut -d' ' -f2) |
    awk '{ printf "#   %-26s %5s %5s %5s %5s\n", $1, $2, $3, $4, $5 }'

for d in $restored; do
    DB=$d
    is "$(q "$builtins_sql")" "$builtins" "$d: built-in rows are there once, as edited"
    is "$(q "SELECT (SELECT sum(records) FROM taskguard.dlq_rollup)
                    + (SELECT coalesce(sum(records), 0) FROM taskguard.dlq_delta)
                  = (SELECT count(*) FROM taskguard.dead_letter)")" "t" \
       "$d: the DLQ rollups count each restored record once"
    is "$(q "SELECT taskguard.breaker_allow('ses')")" "f" "$d: a breaker forced open is open again"

    # ids continue above the old ones
    tid=$(q "SELECT taskguard.enqueue('after-restore', '{\"n\": 99}', queue => 'bk')")
    is "$([ "${tid:-0}" -gt "$max_task" ] && echo above)" "above" "$d: a new task id ($tid) is above the old max ($max_task)"
    is "$(q "SELECT count(*) FROM taskguard.claim('bk', 'w-restored')")" "1" "$d: claim"
    fid=$(q "SELECT (taskguard.fail($tid, 'TimeoutError', 'timed out')).failure_id")
    is "$([ "${fid:-0}" -gt "$max_dlq" ] && echo above)" "above" \
       "$d: a new DLQ record id ($fid) is above the old max ($max_dlq)"
    is "$(q "SELECT count(*) FROM taskguard.failure_event WHERE failure_id = $fid AND task_id = $tid")" "1" \
       "$d: the new failure event names the new record and task"
    rid=$(q "INSERT INTO taskguard.classification_rule (priority, error_type_pattern, failure_type, confidence)
             VALUES (5, 'RestoredError', 'UNKNOWN', 0.5) RETURNING id" | head -1)
    is "$([ "${rid:-0}" -gt "$max_rule" ] && echo above)" "above" \
       "$d: a new classification rule id ($rid) is above the old max ($max_rule)"

    # the scheduler's steps work there: the due retry goes back on its queue
    q "UPDATE taskguard.dead_letter SET next_retry_at = now() - interval '1 second' WHERE id = $fid" >/dev/null
    is "$(q "SELECT (taskguard.tick()->>'requeue_retries')::int >= 1")" "t" "$d: tick() requeues the due retry"
    is "$(q "SELECT status FROM taskguard.task WHERE id = $tid")" "ready" "$d: the failed task is ready again"
    is "$(q "SELECT (SELECT count(*) FROM taskguard.dlq_delta) + (SELECT count(*) FROM taskguard.event_delta)")" "0" \
       "$d: tick() folded the restored deltas"
    is "$(q "SELECT (SELECT sum(records) FROM taskguard.dlq_rollup) = (SELECT count(*) FROM taskguard.dead_letter)")" "t" \
       "$d: the rollups still agree with dead_letter"
done

# A database updated from 0.1.0 (whose dumps lost the queue) is dumped whole too.
DB=bk_v1
q "CREATE EXTENSION taskguard VERSION '0.1.0'" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d bk_v1 -f test/lib/fill_every_table.sql >/dev/null &&
    q "ALTER EXTENSION taskguard UPDATE" >/dev/null &&
    "$TG_BIN/pg_dump" -Fc -d bk_v1 -f "$dir/v1.dump" &&
    "$TG_BIN/pg_restore" --exit-on-error -d bk_v1_restored "$dir/v1.dump"
ok $? "fill a 0.1.0 install, update it, dump it and restore it"
v1_snap=$(snapshot bk_v1)
is "$(diff <(echo "$v1_snap") <(snapshot bk_v1_restored))" "" \
   "the restore of the updated database equals it row for row"
is "$(echo "$v1_snap" | awk '$1 == "task" || $1 == "dead_letter" { print $1, $2 }' | tr '\n' ' ')" \
   "dead_letter 5 task 8 " "(it has the tasks and DLQ records 0.1.0 dumps lost)"

# The scheduler resumes in a restored database once it has the configured
# name.  A cluster of its own: the harness's scheduler database is taken.
unset TG_DATA
tg_init_cluster "$dir/sched" "$(tg_pick_port)" "shared_preload_libraries = 'taskguard'" \
    "taskguard.database = 'bk_app'" "taskguard.naptime = 200" "fsync = off"
tg_start
psql -X -q -d postgres -c "CREATE DATABASE bk_app_restore" >/dev/null
"$TG_BIN/pg_restore" --exit-on-error -d bk_app_restore "$dir/bk.dump"
ok $? "pg_restore into bk_app_restore (second cluster)"
DB=bk_app_restore
is "$(q "SELECT passes IS NULL OR passes = 0 FROM taskguard.scheduler_status")" "t" \
   "no scheduler pass while the database has another name"
# a lease of the source's that has run out, and a retry that is due
q "UPDATE taskguard.task SET lease_expires_at = now() - interval '1 second' WHERE status = 'running'" >/dev/null
q "UPDATE taskguard.dead_letter SET next_retry_at = now() - interval '1 second'
    WHERE status = 'PENDING' AND task_id IS NOT NULL" >/dev/null
due=$(q "SELECT string_agg(task_id::text, ',') FROM taskguard.dead_letter WHERE status = 'PENDING' AND task_id IS NOT NULL")
leased=$(q "SELECT string_agg(id::text, ',') FROM taskguard.task WHERE status = 'running'")
psql -X -q -d postgres -c "ALTER DATABASE bk_app_restore RENAME TO bk_app" >/dev/null
t0=$(date +%s.%N)
DB=bk_app
tg_wait_for 30 "SELECT passes > 0 FROM taskguard.scheduler_status"
ok $? "the scheduler starts in bk_app after the rename"
echo "# first scheduler pass $(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f') s after the rename"
tg_wait_for 30 "SELECT count(*) = 0 FROM taskguard.task WHERE id IN ($leased) AND status = 'running'"
ok $? "it reaps the leases that ran out (tasks $leased)"
tg_wait_for 30 "SELECT bool_and(status = 'ready') FROM taskguard.task WHERE id IN ($due)"
ok $? "it puts the due retries back on their queues (tasks $due)"
tg_wait_for 30 "SELECT NOT EXISTS (SELECT 1 FROM taskguard.dlq_delta) AND NOT EXISTS (SELECT 1 FROM taskguard.event_delta)"
ok $? "it folds the restored deltas"
is "$(q "SELECT (SELECT sum(records) FROM taskguard.dlq_rollup) = (SELECT count(*) FROM taskguard.dead_letter)")" "t" \
   "the rollups agree with dead_letter"
is "$(q "SELECT last_error IS NULL FROM taskguard.scheduler_status")" "t" "no scheduler error"
done_testing
