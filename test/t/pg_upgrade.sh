#!/usr/bin/env bash
# pg_upgrade (issue 17) between two clusters of its own, both preloading
# pg_cron and taskguard, with the harness's binaries on both sides (15 -> 15
# is the only pair on this machine).  Every table filled
# (test/lib/fill_every_table.sql), per-table row counts and sequence values
# equal after the upgrade; neither server pg_upgrade starts (-b, binary
# upgrade) starts a taskguard worker (log_min_messages = debug1 makes the
# postmaster log every worker it registers and starts); the upgraded cluster's
# scheduler then runs.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."

dir=$TG_WORK/pg_upgrade
rm -rf "$dir"; mkdir -p "$dir"; chown postgres: "$dir" 2>/dev/null; chmod 755 "$dir"
cp test/lib/fill_every_table.sql "$dir/"
oport=$(tg_pick_port)
conf=("log_min_messages = debug1" "taskguard.naptime = 200")

tg_init_cluster "$dir/old" "$oport" "${conf[@]}"
old_data=$TG_DATA
tg_start
trap 'TG_DATA=$old_data tg_stop immediate; [ -n "${new_data:-}" ] && TG_DATA=$new_data tg_stop immediate' EXIT
tg_create_main_db
psql -X -q -v ON_ERROR_STOP=1 -d taskguard -f "$dir/fill_every_table.sql" >/dev/null
ok $? "every table of the old cluster filled"
q "SELECT cron.schedule('tg-tick', '* * * * *', 'SELECT taskguard.tick()')" >/dev/null
ok "$(tg_wait_for 10 "SELECT passes > 0 FROM taskguard.scheduler_status"; echo $?)" "the old cluster's scheduler runs"
grep -q 'starting background worker process "taskguard launcher"' "$TG_LOGFILE"
ok $? "(a normal start logs the taskguard launcher at debug1)"

# the scheduler pauses (an hour's naptime) so that the counts hold still
pause() {
    echo "taskguard.naptime = 3600000" >>"$TG_DATA/postgresql.conf"
    q "SELECT pg_reload_conf()" >/dev/null
    local a b
    for _ in $(seq 1 30); do
        a=$(q "SELECT passes FROM taskguard.scheduler_status"); sleep 0.5
        b=$(q "SELECT passes FROM taskguard.scheduler_status")
        [ "$a" = "$b" ] && return 0
    done
    return 1
}
# "relation=rows" per table (a partitioned one whole), "sequence=last_value" per sequence; \gexec, not
# query_to_xml, which needs a server built with libxml
counts() {
    echo "SELECT format(CASE c.relkind WHEN 'S' THEN 'SELECT %L || ''='' || last_value FROM %s'
                                       ELSE 'SELECT %L || ''='' || count(*) FROM %s' END,
                        c.oid::regclass::text, c.oid::regclass)
            FROM pg_class c WHERE c.relnamespace IN ('taskguard'::regnamespace, 'cron'::regnamespace)
             AND c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition
           ORDER BY c.oid::regclass::text \\gexec" | psql -X -At -v ON_ERROR_STOP=1 -d "${DB:-taskguard}" | tr '\n' ' '
}
pause
before=$(counts)
empty=$(echo "$before" | tr ' ' '\n' | grep '^taskguard\..*=0$' | grep -v '_seq=' | tr '\n' ' ')
echo "# empty before the upgrade (queues the scheduler drains): ${empty:-none}"
ok "$([ "$(echo "$empty" | wc -w)" -le 3 ]; echo $?)" "(the fill left at most the three drained queue tables empty)"
TG_DATA=$old_data tg_stop fast

nport=$(tg_pick_port)
tg_init_cluster "$dir/new" "$nport" "${conf[@]}" "taskguard.naptime = 3600000"
new_data=$TG_DATA
t0=$(date +%s)
( cd "$dir" && tg_as_pg "$TG_BIN/pg_upgrade" -b "$TG_BIN" -B "$TG_BIN" -d "$old_data" -D "$new_data" \
      -p "$oport" -P "$nport" -s "$dir" -U postgres --retain >"$dir/pg_upgrade.out" 2>&1 )
rc=$?
t1=$(date +%s)
ok "$rc" "pg_upgrade from the old cluster to the new one ($((t1 - t0)) s)"
[ "$rc" -ne 0 ] && tail -20 "$dir/pg_upgrade.out" | sed 's/^/# /'
echo "# pg_upgrade took $((t1 - t0)) s"

# pg_upgrade keeps its servers' log (both clusters) with --retain
server_logs=$(find "$new_data" -name 'pg_upgrade_server.log' 2>/dev/null)
# (the logical replication launcher's registration line shows that worker
# registration is logged; 17+ start pg_upgrade's servers without that launcher,
# so any DEBUG1 line of the postmaster has to do there)
ok "$([ -n "$server_logs" ] && grep -qE 'registering background worker "logical replication launcher"|DEBUG:  ' $server_logs; echo $?)" \
   "pg_upgrade's server log has the postmaster's debug1 lines"
is "$(cat $server_logs /dev/null | grep -cE 'worker.*taskguard|taskguard (launcher|scheduler)')" 0 \
   "no taskguard worker registered, started or logging during the binary upgrade"

tg_start
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'taskguard'")" \
   "$(sed -n "s/^default_version = '\(.*\)'/\1/p" taskguard.control)" "taskguard is there after the upgrade"
after=$(counts)
is "$after" "$before" "every table's row count and every sequence's value are the same after pg_upgrade"
[ "$after" != "$before" ] && diff <(echo "$before" | tr ' ' '\n') <(echo "$after" | tr ' ' '\n') | sed 's/^/# /'
echo "# $(echo "$after" | wc -w) tables and sequences compared: $(echo "$after" | tr ' ' '\n' | grep -c 'taskguard') of taskguard, the rest pg_cron's"

# the upgraded cluster's scheduler starts and works
sed -i '/^taskguard.naptime = 3600000$/d' "$TG_DATA/postgresql.conf"
q "SELECT pg_reload_conf()" >/dev/null
ok "$(tg_wait_for 15 "SELECT passes > 0 FROM taskguard.scheduler_status"; echo $?)" "the upgraded cluster's scheduler runs"
tid=$(q "SELECT taskguard.enqueue('after-upgrade', '{}', queue => 'upg')")
ok "$([ "$tid" -gt "$(echo "$before" | tr ' ' '\n' | sed -n 's/^taskguard.task_id_seq=//p')" ]; echo $?)" \
   "a new task's id continues above the old ones"
is "$(grep -cE 'ERROR|taskguard scheduler step' "$TG_LOGFILE")" 0 "no error in the upgraded cluster's log"
done_testing
