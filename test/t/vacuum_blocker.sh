#!/usr/bin/env bash
# Who holds back vacuum (issue 18): a session of another role holds a
# REPEATABLE READ snapshot idle in transaction; taskguard.vacuum_blockers
# names its pid, role, application and state with the dead row versions
# waiting; the vacuum_blocker alert fires once it is older than
# taskguard.vacuum_blocker_age (the scheduler announces it) and clears after
# release; prometheus_metrics() carries it; a reader sees all of that but
# never the holder's query text; bad settings are refused.
. "$(dirname "$0")/../lib/tap.sh"
work=$TG_WORK/vacuum_blocker
mkdir -p "$work"
sqlstate() {  # the SQLSTATE of a failing statement
    psql -X -At -d taskguard -c "\set VERBOSITY verbose" -c "$1" 2>&1 >/dev/null |
        sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p' | head -1
}
setting() {  # setting VALUE-OR-DEFAULT: taskguard.vacuum_blocker_age for the cluster
    if [ "$1" = DEFAULT ]; then q "ALTER SYSTEM RESET taskguard.vacuum_blocker_age" >/dev/null
    else q "ALTER SYSTEM SET taskguard.vacuum_blocker_age = '$1'" >/dev/null; fi
    q "SELECT pg_reload_conf()" >/dev/null
}
holder=""
cleanup() {
    [ -n "$holder" ] && { exec 7>&- 2>/dev/null; wait "$holder" 2>/dev/null; }
    setting DEFAULT
    q "DELETE FROM taskguard.task WHERE queue = 'vb_probe'" >/dev/null
    for r in tg_vb_holder tg_vb_reader tg_vb_nobody; do
        q "DROP OWNED BY $r" >/dev/null 2>&1; q "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
    done
}
trap cleanup EXIT
for r in tg_vb_holder tg_vb_reader tg_vb_nobody; do
    q "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; q "CREATE ROLE $r LOGIN" >/dev/null
done
q "SELECT taskguard.grant_access('tg_vb_reader', 'reader')" >/dev/null

# bad settings are refused; the setting is the cluster's (reload), not a session's
is "$(sqlstate "ALTER SYSTEM SET taskguard.vacuum_blocker_age = '-1 minute'")" 22023 "a negative age is refused"
is "$(sqlstate "ALTER SYSTEM SET taskguard.vacuum_blocker_age = 'soon'")" 22023 "an age that is no interval is refused"
is "$(sqlstate "SET taskguard.vacuum_blocker_age = '1s'")" 55P02 "a session cannot change it"
is "$(q "SHOW taskguard.vacuum_blocker_age")" "5 minutes" "the default age is 5 minutes"
is "$(sqlstate "SELECT * FROM taskguard._vacuum_holders(1)")" 42883 "_vacuum_holders takes no argument"

# nothing is held: the caller's own snapshot never counts
is "$(q "SELECT count(*) FROM taskguard.vacuum_blockers WHERE application_name = 'tg_vb_probe'")" 0 \
   "no holder named before the snapshot is taken"

# the holder: another role, REPEATABLE READ, a read of pg_class, then idle
mkfifo "$work/hold"
PGAPPNAME=tg_vb_probe psql -X -q -U tg_vb_holder -d taskguard <"$work/hold" >/dev/null 2>&1 &
holder=$!
exec 7>"$work/hold"
echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class WHERE relname <> 'vb-secret-query-text';" >&7
ok "$(tg_wait_for 10 "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'tg_vb_probe'
                        AND state = 'idle in transaction' AND backend_xmin IS NOT NULL)"; echo $?)" \
   "the holder is idle in transaction with a snapshot"
pid=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'tg_vb_probe'")

row=$(q "SELECT concat_ws('|', holder, pid, role, application_name, state, xmin_age >= 0, age > interval '0',
                          xact_start IS NOT NULL, query_start IS NOT NULL, query LIKE '%vb-secret-query-text%')
           FROM taskguard.vacuum_blockers WHERE pid = $pid")
is "$row" "session|$pid|tg_vb_holder|tg_vb_probe|idle in transaction|t|t|t|t|t" \
   "vacuum_blockers names the holder: pid, role, application, state, ages, start times, query (superuser)"

# dead row versions made after the snapshot stay, and the view counts them
q "SELECT count(*) FROM taskguard.enqueue_many('vb_job', array_fill('{}'::jsonb, ARRAY[200]), 'vb_probe')" >/dev/null
q "DELETE FROM taskguard.task WHERE queue = 'vb_probe'" >/dev/null
q "VACUUM taskguard.task" >/dev/null
ok "$(tg_wait_for 20 "SELECT dead_rows >= 200 FROM taskguard.vacuum_blockers WHERE pid = $pid"; echo $?)" \
   "the dead row versions vacuum could not remove are counted ($(q "SELECT dead_rows FROM taskguard.vacuum_blockers WHERE pid = $pid"))"

# the alert: not at the default age (5 minutes), then at 1 second
is "$(q "SELECT count(*) FROM taskguard.alerts WHERE alert = 'vacuum_blocker'")" 0 \
   "no alert while the holder is younger than taskguard.vacuum_blocker_age"
setting 1s
ok "$(tg_wait_for 10 "SELECT EXISTS (SELECT 1 FROM taskguard.alerts WHERE alert = 'vacuum_blocker')"; echo $?)" \
   "with taskguard.vacuum_blocker_age = 1s the vacuum_blocker alert fires"
alert=$(q "SELECT concat_ws('|', level, value > threshold, threshold) FROM taskguard.alerts WHERE alert = 'vacuum_blocker'")
is "$alert" "warning|t|1" "the alert is a warning, its value (seconds) above the threshold (1 s)"
detail=$(q "SELECT detail FROM taskguard.alerts WHERE alert = 'vacuum_blocker'")
ok "$(grep -q "session $pid (role tg_vb_holder, application tg_vb_probe, idle in transaction)" <<<"$detail"; echo $?)" \
   "the alert names pid, role, application and state: $detail"
ok "$(tg_wait_for 10 "SELECT EXISTS (SELECT 1 FROM taskguard.alert_state WHERE alert = 'vacuum_blocker')"; echo $?)" \
   "the scheduler's alerts step has the alert on"

# the metric
metrics=$(q "SELECT taskguard.prometheus_metrics()")
ok "$(grep -qE "^taskguard_vacuum_blocker_age_seconds\{holder=\"session\",pid=\"$pid\",role=\"tg_vb_holder\",application_name=\"tg_vb_probe\",state=\"idle in transaction\"\} [0-9]+$" <<<"$metrics"; echo $?)" \
   "prometheus_metrics() has taskguard_vacuum_blocker_age_seconds for the holder"
ok "$(grep -qE "^taskguard_vacuum_blocker_xmin_age\{holder=\"session\",pid=\"$pid\".*\} [0-9]+$" <<<"$metrics"; echo $?)" \
   "and taskguard_vacuum_blocker_xmin_age"
ok "$(grep -q 'taskguard_alert_active{alert="vacuum_blocker",level="warning"} 1' <<<"$metrics"; echo $?)" \
   "and the alert as taskguard_alert_active"

# a reader (no pg_read_all_stats): the holder, the alert and the metric, no query text
R() { psql -X -At -v ON_ERROR_STOP=1 -U tg_vb_reader -d taskguard -c "$1"; }
is "$(R "SELECT concat_ws('|', holder, pid, role, application_name, state, xact_start IS NOT NULL, query)
           FROM taskguard.vacuum_blockers WHERE pid = $pid")" \
   "session|$pid|tg_vb_holder|tg_vb_probe|idle in transaction|t|<insufficient privilege>" \
   "a reader sees who holds and since when, not the query"
is "$(R "SELECT count(*) FROM taskguard.alerts WHERE alert = 'vacuum_blocker'")" 1 "a reader sees the alert"
rm_out=$(R "SELECT taskguard.prometheus_metrics()"; R "SELECT * FROM taskguard.alerts"; R "SELECT * FROM taskguard._vacuum_holders()")
ok "$(grep -q "taskguard_vacuum_blocker_age_seconds{holder=\"session\",pid=\"$pid\"" <<<"$rm_out"; echo $?)" \
   "a reader gets the metric"
is "$(grep -c 'vb-secret-query-text' <<<"$rm_out")" 0 "the holder's query text reaches the reader nowhere"
is "$(psql -X -At -U tg_vb_nobody -d taskguard -c "\set VERBOSITY verbose" -c "SELECT * FROM taskguard.vacuum_blockers" 2>&1 |
      sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p')" 42501 "a role without access cannot read the view"
is "$(psql -X -At -U tg_vb_nobody -d taskguard -c "\set VERBOSITY verbose" -c "SELECT * FROM taskguard._vacuum_holders()" 2>&1 |
      sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\):.*/\1/p')" 42501 "nor run _vacuum_holders"
is "$(q "SELECT count(*) FROM pg_proc WHERE proname = '_vacuum_holders' AND prosecdef
           AND proconfig @> ARRAY['search_path=pg_catalog, pg_temp']")" 1 \
   "_vacuum_holders is SECURITY DEFINER with a pinned search_path"

# release: the view forgets the holder, the alert clears (view and scheduler)
echo "ROLLBACK;" >&7
exec 7>&-
wait "$holder"; holder=""
is "$(q "SELECT count(*) FROM taskguard.vacuum_blockers WHERE pid = $pid")" 0 "after release the holder is gone"
ok "$(tg_wait_for 10 "SELECT NOT EXISTS (SELECT 1 FROM taskguard.alerts WHERE alert = 'vacuum_blocker'
                        AND detail LIKE '%tg_vb_probe%')"; echo $?)" "the alert clears after release"
ok "$(tg_wait_for 10 "SELECT NOT EXISTS (SELECT 1 FROM taskguard.alert_state WHERE alert = 'vacuum_blocker')"; echo $?)" \
   "and the scheduler turns it off"
ok "$(q "SELECT taskguard.prometheus_metrics()" | grep -q "pid=\"$pid\""; [ $? -ne 0 ]; echo $?)" \
   "the metric no longer names the holder"

# Prepared transactions and slots: a cluster of their own (max_prepared_transactions,
# wal_level = logical).  A prepared transaction holds back vacuum until it ends; a
# logical slot holds back only the catalogs (catalog_xmin) and is not a blocker.
cleanup; trap - EXIT    # done with the harness's cluster
tg_init_cluster "$work/own" "$(tg_pick_port)" "fsync = off" "max_prepared_transactions = 4" \
    "wal_level = logical" "max_replication_slots = 4" "taskguard.vacuum_blocker_age = '1s'"
trap 'tg_stop immediate' EXIT
tg_start
psql -X -q -d postgres -c "CREATE DATABASE taskguard" -c "CREATE ROLE tg_vb_owner" &&
    q "CREATE EXTENSION taskguard" >/dev/null || exit 1
# (slots first: creating a logical slot waits for every transaction in progress)
q "SELECT pg_create_logical_replication_slot('vb_logical', 'test_decoding')" >/dev/null
q "SELECT pg_create_physical_replication_slot('vb_physical', true)" >/dev/null
q "BEGIN; SET LOCAL ROLE tg_vb_owner; SELECT txid_current(); PREPARE TRANSACTION 'vb-gid'" >/dev/null
is "$(q "SELECT concat_ws('|', holder, pid IS NULL, role, state, name, xact_start IS NOT NULL, age > interval '0', xmin_age >= 0)
           FROM taskguard.vacuum_blockers WHERE holder <> 'session'")" \
   "prepared transaction|t|tg_vb_owner|prepared|vb-gid|t|t|t" \
   "a prepared transaction is named (owner, gid, since when); slots without an xmin are not"
ok "$(tg_wait_for 10 "SELECT EXISTS (SELECT 1 FROM taskguard.alerts WHERE alert = 'vacuum_blocker'
                        AND detail LIKE 'prepared transaction vb-gid (role tg_vb_owner, %')"; echo $?)" \
   "an old prepared transaction fires the alert"
q "ROLLBACK PREPARED 'vb-gid'" >/dev/null
is "$(q "SELECT count(*) FROM taskguard.vacuum_blockers WHERE holder <> 'session'")" 0 "gone once it is rolled back"
is "$(q "SELECT count(*) FROM taskguard.alerts WHERE alert = 'vacuum_blocker'")" 0 "and the alert with it"
q "SELECT pg_drop_replication_slot('vb_logical')" >/dev/null; q "SELECT pg_drop_replication_slot('vb_physical')" >/dev/null
done_testing
