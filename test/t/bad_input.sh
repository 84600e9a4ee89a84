#!/usr/bin/env bash
# Every public function with bad input (test/bad_input.sql): no internal error
# (SQLSTATE class XX), no crash, every call answered within a bounded time.
. "$(dirname "$0")/../lib/tap.sh"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS badinput" -c "CREATE DATABASE badinput" >/dev/null
DB=badinput
q "CREATE EXTENSION taskguard" >/dev/null
PGOPTIONS="-c statement_timeout=120s" psql -X -q -v ON_ERROR_STOP=1 -d badinput -f "$(dirname "$0")/../bad_input.sql" >"$TG_WORK/bad_input.log" 2>&1
ok $? "the table-driven run completed without losing its session (no crash)"
n=$(q "SELECT count(*) FROM bad_input_result")
nf=$(q "SELECT count(DISTINCT fn) FROM bad_input_result")
ok "$([ "$n" -gt 100 ]; echo $?)" "$n bad calls over $nf functions"
internal=$(q "SELECT string_agg(fn || ': ' || sqlstate || ' ' || coalesce(message, '') || ' <- ' || call, E'\n') FROM bad_input_result WHERE sqlstate LIKE 'XX%' OR sqlstate LIKE '57%' OR sqlstate LIKE '58%'")
is "$internal" "" "no call failed with an internal error, a cancel or a system error"
slow=$(q "SELECT string_agg(fn || ' ' || round(ms) || ' ms <- ' || left(call, 120), E'\n') FROM bad_input_result WHERE ms > 5000")
is "$slow" "" "no bad call took more than 5 s"
q "SELECT sqlstate, count(*) FROM bad_input_result GROUP BY 1 ORDER BY 2 DESC" | sed 's/^/# /'
psql -X -q -d postgres -c "DROP DATABASE badinput" >/dev/null
done_testing
