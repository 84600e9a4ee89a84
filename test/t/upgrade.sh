#!/usr/bin/env bash
# Releases and upgrades (README "Releases and upgrades"):
# - every C symbol a released install script names exists in the library, so
#   a 0.1.0 schema keeps working between `make install` and ALTER EXTENSION;
# - a 0.1.0 schema on the new library runs the queue, the DLQ and tick();
# - install 0.1.0, fill every table, ALTER EXTENSION taskguard UPDATE: the
#   schema equals a fresh install fact for fact (test/lib/schema_signature.sql),
#   no row is lost, and the functions work on the old rows;
# - updating twice in a row is refused cleanly (already at the version).
# Runs in the harness's cluster, in databases of its own.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."

cur=$(sed -n "s/^default_version = '\(.*\)'/\1/p" taskguard.control)
lib=$("$TG_BIN/pg_config" --pkglibdir)/taskguard.so

# 1. symbols named by released scripts are still exported
missing=""
for f in releases/taskguard--*.sql; do
    for sym in $(grep -o "'MODULE_PATHNAME', *'[a-z_0-9]*'" "$f" | sed "s/.*'\([a-z_0-9]*\)'$/\1/" | sort -u); do
        nm -D --defined-only "$lib" | grep -qw "$sym" || missing="$missing $f:$sym"
    done
done
is "$missing" "" "every C function a released script names is in the library"

dbs="upg_old upg_fresh upg_v1"
for d in $dbs; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" >/dev/null; done
trap 'for d in $dbs; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1; done
      psql -X -q -d postgres -c "DROP ROLE IF EXISTS upg_worker" -c "DROP ROLE IF EXISTS upg_reader" \
           -c "DROP ROLE IF EXISTS upg_admin" >/dev/null 2>&1' EXIT

# 2. the 0.1.0 schema on the new library
DB=upg_v1
q "CREATE EXTENSION taskguard VERSION '0.1.0'" >/dev/null
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'taskguard'")" "0.1.0" "0.1.0 installs from releases/"
psql -X -q -v ON_ERROR_STOP=1 -d upg_v1 -f test/lib/fill_every_table.sql >/dev/null 2>&1
ok $? "a 0.1.0 schema runs the whole API on the new library"
is "$(q "SELECT (taskguard.classify('psycopg.OperationalError', 'server closed the connection')).failure_type")" \
   "TRANSIENT_DATABASE" "classify works on a 0.1.0 schema"
is "$(q "SELECT count(*) > 0 FROM taskguard.dashboard")" "t" "the dashboard answers on a 0.1.0 schema"

# 3. update from 0.1.0 against a fresh install
DB=upg_old
q "CREATE EXTENSION taskguard VERSION '0.1.0'" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d upg_old -f test/lib/fill_every_table.sql >/dev/null || echo "# fill failed"
# roles 0.1.0 gave levels to (0.1.0 workers could write the tables directly)
q "DROP ROLE IF EXISTS upg_worker; DROP ROLE IF EXISTS upg_reader; DROP ROLE IF EXISTS upg_admin;
   CREATE ROLE upg_worker; CREATE ROLE upg_reader; CREATE ROLE upg_admin;
   SELECT taskguard.grant_access('upg_worker', 'worker'), taskguard.grant_access('upg_reader', 'reader'),
          taskguard.grant_access('upg_admin', 'admin')" >/dev/null
is "$(q "SELECT has_table_privilege('upg_worker', 'taskguard.task', 'UPDATE')")" "t" "a 0.1.0 worker may update task directly"
# "table=rows" per table (a partitioned one counted whole); \gexec, not query_to_xml, which needs a server built with libxml.
# Built-in rows the update adds (the alert threshold flow_held_back) are not counted.
counts() {
    echo "SELECT format('SELECT %L || ''='' || count(*) FROM %s%s', c.relname, c.oid::regclass,
                        CASE c.relname WHEN 'alert_threshold'
                             THEN ' WHERE alert <> ''flow_held_back''' ELSE '' END)
            FROM pg_class c WHERE c.relnamespace = 'taskguard'::regnamespace
             AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           ORDER BY c.relname \\gexec" | psql -X -At -v ON_ERROR_STOP=1 -d "$DB" | tr '\n' ' '
}
before=$(counts)
q "ALTER EXTENSION taskguard UPDATE" >/dev/null
ok $? "ALTER EXTENSION taskguard UPDATE from 0.1.0"
is "$(q "SELECT extversion FROM pg_extension WHERE extname = 'taskguard'")" "$cur" "the update reaches $cur"
# tables the update adds are left out of the comparison
after=$(for kv in $(counts); do case " $before" in *" ${kv%%=*}="*) printf '%s ' "$kv" ;; esac; done)
ok "$([ "$(echo "$before" | grep -o '=[1-9]' | wc -l)" -gt 5 ]; echo $?)" "the 0.1.0 tables hold rows before the update"
is "$after" "$before" "every row is still there after the update"

is "$(q "SELECT has_table_privilege('upg_worker', 'taskguard.task', 'UPDATE') OR
                  has_table_privilege('upg_worker', 'taskguard.dead_letter', 'INSERT') OR
                  has_function_privilege('upg_worker', 'taskguard.breaker_force(text, text)', 'EXECUTE') OR
                  has_function_privilege('upg_worker', 'taskguard._task_discard(bigint)', 'EXECUTE')")" "f" \
   "after the update that worker writes no table and calls no helper or breaker_force"
is "$(q "SELECT has_function_privilege('upg_worker', 'taskguard.claim(text, text, integer, interval)', 'EXECUTE')
              AND has_table_privilege('upg_reader', 'taskguard.dashboard', 'SELECT')
              AND NOT has_function_privilege('upg_reader', 'taskguard.claim(text, text, integer, interval)', 'EXECUTE')
              AND has_table_privilege('upg_admin', 'taskguard.task', 'DELETE')")" "t" \
   "the worker keeps its calls, the reader its views, the admin everything"
# the retry advice objects (issue 20): each 0.1.0 role gets what its level gives
is "$(q "SELECT coalesce(string_agg(r.role || ' ' || pr || ' ' || p.object, '; '), '')
           FROM (VALUES ('upg_worker', 'worker'), ('upg_reader', 'reader'), ('upg_admin', 'admin')) r (role, lvl),
                taskguard._access_plan(r.lvl) p, unnest(string_to_array(p.privileges, ', ')) pr
          WHERE p.object LIKE '%retry%' AND NOT CASE split_part(p.object, ' ', 1)
                WHEN 'TABLE' THEN has_table_privilege(r.role, substr(p.object, 7), pr)
                WHEN 'SEQUENCE' THEN has_sequence_privilege(r.role, substr(p.object, 10), pr)
                WHEN 'FUNCTION' THEN has_function_privilege(r.role, substr(p.object, 10), pr)
                ELSE true END")" "" \
   "the 0.1.0 roles hold what their level gives on the retry advice objects"
is "$(q "SELECT has_table_privilege('upg_worker', 'taskguard.retry_advice', 'SELECT') OR
                has_function_privilege('upg_reader', 'taskguard.retry_apply_advice(text, taskguard.failure_type)', 'EXECUTE') OR
                has_table_privilege('upg_reader', 'taskguard.retry_policy_change', 'INSERT') OR
                has_function_privilege('upg_worker', 'taskguard.retry_apply_advice(text, taskguard.failure_type)', 'EXECUTE')")" "f" \
   "and no more: workers read no advice, only admins apply it or write its record"
q "REVOKE ALL ON ALL TABLES IN SCHEMA taskguard FROM upg_worker, upg_reader, upg_admin;
   REVOKE ALL ON ALL SEQUENCES IN SCHEMA taskguard FROM upg_worker, upg_reader, upg_admin;
   REVOKE ALL ON ALL ROUTINES IN SCHEMA taskguard FROM upg_worker, upg_reader, upg_admin;
   REVOKE ALL ON SCHEMA taskguard FROM upg_worker, upg_reader, upg_admin" >/dev/null

DB=upg_fresh
q "CREATE EXTENSION taskguard" >/dev/null
sig_old=$(psql -X -At -d upg_old -f test/lib/schema_signature.sql)
sig_fresh=$(psql -X -At -d upg_fresh -f test/lib/schema_signature.sql)
diffs=$(diff <(echo "$sig_fresh") <(echo "$sig_old"))
is "$diffs" "" "the updated schema equals a fresh $cur install ($(echo "$sig_fresh" | wc -l) facts)"
[ -n "$diffs" ] && echo "$diffs" | head -40 | sed 's/^/# /'

# 4. the functions work on the rows 0.1.0 wrote
DB=upg_old
tid=$(q "SELECT taskguard.enqueue('after-update', '{}', queue => 'upg')")
is "$(q "SELECT count(*) FROM taskguard.claim('upg', 'w')")" "1" "claim after the update"
is "$(q "SELECT (taskguard.fail($tid, 'TimeoutError', 'timed out')).failure_type")" "TRANSIENT_NETWORK" \
   "fail after the update"
is "$(q "SELECT count(*) FROM taskguard.dlq WHERE task_id = $tid")" "1" "its DLQ record is in the view"
is "$(q "SELECT taskguard.tick() ? 'requeue_retries'")" "t" "tick() after the update"
is "$(q "SELECT count(*) >= 4 FROM taskguard.dead_letter")" "t" "old DLQ records are still listed"
is "$(q "SELECT taskguard.dlq_retry(ARRAY(SELECT id FROM taskguard.dead_letter WHERE status = 'ABANDONED'))")" "1" \
   "an old ABANDONED record can be retried"
psql -X -At -d upg_old -c "ALTER EXTENSION taskguard UPDATE" 2>&1 | grep -q "already"
ok $? "a second update says the version is already installed"
done_testing
