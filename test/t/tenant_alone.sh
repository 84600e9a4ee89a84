#!/usr/bin/env bash
# A tenant-bound reader in a database where its tenant is the only one (a
# single-tenant deployment, or the first tenant before the others arrive)
# sees its failures in the views over the rollups: the all-tenant rows, which
# row security hides from it, must not be what serves it (they were, and it
# saw no failure at all), and it sees what an unbound reader sees.
. "$(dirname "$0")/../lib/tap.sh"

DB=tenant_alone
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
cleanup() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS ta_reader" >/dev/null 2>&1
}
trap cleanup EXIT
psql -X -q -d postgres -c "DROP ROLE IF EXISTS ta_reader" -c "CREATE ROLE ta_reader" >/dev/null
q "CREATE EXTENSION taskguard" >/dev/null
q "SELECT taskguard.grant_access('ta_reader', 'reader')" >/dev/null
q "INSERT INTO taskguard.tenant_member VALUES ('ta_reader', 'ta_only')" >/dev/null
q "INSERT INTO taskguard.dead_letter (task_name, tenant, status, failure_type, confidence,
       remediation, retry_count, max_retries)
   SELECT 'job', 'ta_only', 'PENDING', 'TRANSIENT_NETWORK', 0.8, 'RETRY_WITH_BACKOFF', 1, 3
     FROM generate_series(1, 5)" >/dev/null
q "INSERT INTO taskguard.failure_event (time, failure_id, task_name, failure_type, retry_count,
       action, confidence, tenant)
   SELECT now(), d.id, d.task_name, d.failure_type, 0, 'retry', 0.8, d.tenant
     FROM taskguard.dead_letter d" >/dev/null

both() {  # both SQL: "bound/unbound"
    echo "$(psql -X -q -At -d $DB -c "SET ROLE ta_reader" -c "$1")/$(q "$1")"
}
prom_failures="SELECT string_agg(l, ' ' ORDER BY l) FROM regexp_split_to_table(taskguard.prometheus_metrics(), E'\\n') l
                WHERE l LIKE 'task_failure_total{%'"
check() {  # check LABEL [trend]: every read as the bound and the unbound reader
    # failure_trend reads the rollup only (up to one scheduler pass behind)
    [ -z "${2:-}" ] ||
    is "$(both "SELECT sum(failures) FROM taskguard.failure_trend")" "5/5" \
       "$1: failure_trend counts the tenant's 5 failures for it as for an unbound reader"
    is "$(both "SELECT sum(failures_total) || ',' || sum(failures_24h) FROM taskguard.failure_distribution")" \
       "5,5/5,5" "$1: failure_distribution too (ever and in 24 hours)"
    is "$(both "SELECT sum(retries_total) FROM taskguard.retry_effectiveness")" "5/5" \
       "$1: retry_effectiveness too"
    local bound unbound
    bound=$(psql -X -q -At -d $DB -c "SET ROLE ta_reader" -c "$prom_failures"); unbound=$(q "$prom_failures")
    ok "$([ -n "$bound" ] && [ "$bound" = "$unbound" ] && echo 0 || echo 1)" \
       "$1: prometheus_metrics() too (got '$bound', unbound '$unbound')"
}
check "pending deltas"
q "SELECT taskguard.rollup_rebuild()" >/dev/null
check "rolled up" trend
done_testing
