#!/usr/bin/env bash
# README "Five-minute tour" runs verbatim in psql on a fresh database (issue 17),
# and `make installcheck` works against a running server that preloads
# taskguard (here: the harness's cluster and its private install).
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."

tour=$(awk '/^## Five-minute tour/ {in_tour = 1} in_tour && /^```sql/ {code = 1; next}
            code && /^```/ {exit} code {print}' README.md)
ok "$([ -n "$tour" ]; echo $?)" "the README has a tour"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS tour" -c "CREATE DATABASE tour" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS tour" >/dev/null 2>&1' EXIT
out=$(echo "$tour" | psql -X -q -v ON_ERROR_STOP=1 -d tour 2>&1)
ok $? "the tour runs verbatim on a fresh database"
echo "$out" | grep -E "^(psql:|ERROR)" | head -5 | sed "s/^/# /"
DB=tour
is "$(q "SELECT string_agg(status, ',' ORDER BY id) FROM taskguard.task")" \
   "succeeded,ready,succeeded,succeeded,cancelled" "the tour's tasks end as the tour says"
is "$(q "SELECT status FROM taskguard.dead_letter")" "RETRYING" "the failed charge is being retried"

out=$(make -s installcheck PG_CONFIG="$TG_BIN/pg_config" 2>&1)
rc=$?
ok $rc "make installcheck against the running server"
[ $rc -eq 0 ] || echo "$out" | tail -20 | sed 's/^/# /'
done_testing
