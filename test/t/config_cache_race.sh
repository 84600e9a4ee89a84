#!/usr/bin/env bash
# A configuration change that commits while another backend is reading the
# tables into its cache (TgConfigCache, src/taskguard.c) is seen by that
# backend's next call, not missed until some later change (issue 21).
#
# The reader (session B) loads the priority cache: it reads task_config, then
# waits for customer_tier, which session A holds locked.  A changes task_config
# and commits; B's relcache invalidation arrives while it is still loading, so
# the copy it finishes is stale and B's next call re-reads.  Before 0.2.0 the
# copy was marked valid at the end of the load and the change was missed.
# The same for the breaker settings is checked with a plain change between calls.
# Runs in the harness's cluster, in a database of its own.
. "$(dirname "$0")/../lib/tap.sh"
DB=config_cache_race
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
work=$(mktemp -d)
cleanup() {
    exec 7>&- 2>/dev/null
    [ -n "${holder:-}" ] && kill "$holder" 2>/dev/null
    [ -n "${reader:-}" ] && kill "$reader" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT
q "CREATE EXTENSION taskguard" >/dev/null
q "INSERT INTO taskguard.task_config (task_name, base_priority) VALUES ('race_job', 'LOW')" >/dev/null
low=$(q "SELECT (taskguard.calculate_priority('race_job')).score")
q "UPDATE taskguard.task_config SET base_priority = 'CRITICAL' WHERE task_name = 'race_job'" >/dev/null
critical=$(q "SELECT (taskguard.calculate_priority('race_job')).score")
q "UPDATE taskguard.task_config SET base_priority = 'LOW' WHERE task_name = 'race_job'" >/dev/null
ok "$([ "$low" != "$critical" ]; echo $?)" "LOW ($low) and CRITICAL ($critical) scores differ"

# A holds customer_tier, the second table the priority cache reads
mkfifo "$work/hold"
PGAPPNAME=tg_cc_holder psql -X -q -d $DB <"$work/hold" >/dev/null 2>&1 &
holder=$!
exec 7>"$work/hold"
echo "BEGIN; LOCK TABLE taskguard.customer_tier IN ACCESS EXCLUSIVE MODE; SELECT 1;" >&7
ok "$(tg_wait_for 10 "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                        WHERE a.application_name = 'tg_cc_holder' AND l.granted
                          AND l.relation = 'taskguard.customer_tier'::regclass AND l.mode = 'AccessExclusiveLock')"; echo $?)" \
   "session A holds customer_tier"

# B: a fresh backend, two calls; the first loads the cache and waits for A
PGAPPNAME=tg_cc_reader psql -X -At -d $DB \
    -c "SELECT (taskguard.calculate_priority('race_job')).score" \
    -c "SELECT (taskguard.calculate_priority('race_job')).score" >"$work/reader.out" 2>&1 &
reader=$!
ok "$(tg_wait_for 10 "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                        WHERE a.application_name = 'tg_cc_reader' AND NOT l.granted
                          AND l.relation = 'taskguard.customer_tier'::regclass)"; echo $?)" \
   "session B is mid-load: it has read task_config and waits for customer_tier"

# A changes what B has already read, and commits (releasing B)
echo "UPDATE taskguard.task_config SET base_priority = 'CRITICAL' WHERE task_name = 'race_job'; COMMIT;" >&7
exec 7>&-
wait "$holder"; holder=
wait "$reader"; rc=$?; reader=
is "$rc" 0 "session B's calls succeed"
is "$(sed -n 1p "$work/reader.out")" "$low" "B's first call answers from what it read before the change"
is "$(sed -n 2p "$work/reader.out")" "$critical" "B's next call sees the change committed during its load"

# the other caches: a change between two calls of one backend is seen by the second
before=$(q "SELECT (taskguard.classify('RaceError', 'x')).failure_type")
ok "$([ "$before" != TRANSIENT_RATE_LIMIT ]; echo $?)" "RaceError is $before before the rule"
is "$(psql -X -At -d $DB \
        -c "SELECT (taskguard.classify('RaceError', 'x')).failure_type" \
        -c "INSERT INTO taskguard.classification_rule (priority, error_type_pattern, failure_type)
            VALUES (1, 'RaceError', 'TRANSIENT_RATE_LIMIT')" \
        -c "SELECT (taskguard.classify('RaceError', 'x')).failure_type" 2>&1 | grep -v '^INSERT' | tr '\n' ' ')" \
   "$before TRANSIENT_RATE_LIMIT " "classify: a rule added between two calls is used by the second"
done_testing
