#!/usr/bin/env bash
# The 15 failure types are written in the places that must name them all:
# the SQL enum taskguard.failure_type (src/sql/00_types.sql, the source), the
# C enum and names (src/classify_match.h, src/classify_match.c), the built-in retry policy of
# each type in C (src/retry.c builtin_policy, the one resolver's fallback)
# and in SQL (retry_policy's default rows, src/sql/20_retry.sql), and the
# API contract test.  This checks that they all agree, in the enum's order
# (issue 21), and that docs/reference.md names each type when it exists.
# Runs in the harness's cluster, in a database of its own.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.." || exit 1
DB=failure_types_agree
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1' EXIT
q "CREATE EXTENSION taskguard" >/dev/null

sql_enum=$(q "SELECT string_agg(e::text, ' ' ORDER BY e) FROM unnest(enum_range(NULL::taskguard.failure_type)) e")
is "$(wc -w <<<"$sql_enum" | tr -d ' ')" 15 "the SQL enum has 15 failure types"

c_enum=$(sed -n '/^typedef enum TgFailureType/,/} TgFailureType;/p' src/classify_match.h |
         sed -n 's/^[[:space:]]*TG_\([A-Z_]*\).*/\1/p' | grep -v '^FAILURE_TYPE_COUNT$' | tr '\n' ' ' | sed 's/ $//')
is "$c_enum" "$sql_enum" "src/classify_match.h TgFailureType is the SQL enum, in order"

c_names=$(sed -n '/tg_failure_type_names\[TG_FAILURE_TYPE_COUNT\] = {/,/^};/p' src/classify_match.c |
          grep -o '"[A-Z_]*"' | tr -d '"' | tr '\n' ' ' | sed 's/ $//')
is "$c_names" "$sql_enum" "src/classify_match.c tg_failure_type_names is the SQL enum, in order"

sql_rows=$(q "SELECT string_agg(failure_type::text, ' ' ORDER BY failure_type) FROM taskguard.retry_policy WHERE task_name IS NULL")
is "$sql_rows" "$sql_enum" "retry_policy has one default row per type (src/sql/20_retry.sql)"

contract=$(grep "enum_has_labels('taskguard', 'failure_type'" test/pgtap/api_contract.sql |
           grep -o "'[A-Z_]*'" | tr -d "'" | tr '\n' ' ' | sed 's/ $//')
is "$contract" "$sql_enum" "test/pgtap/api_contract.sql checks the same labels"

# builtin_policy rows: {TG_REMEDY, retryable, max_retries, base s, cap s, alert index, adjustment}
c_policy=$(sed -n '/builtin_policy\[TG_FAILURE_TYPE_COUNT\] = {/,/^};/p' src/retry.c |
           sed -n 's/^[[:space:]]*{TG_\([A-Z_]*\), \([a-z]*\), \([0-9]*\), \([0-9]*\), \([0-9]*\), \([0-9]*\), \([-0-9.]*\)},.*/\1 \2 \3 \4 \5 \6 \7/p')
is "$(wc -l <<<"$c_policy" | tr -d ' ')" 15 "src/retry.c builtin_policy has 15 rows"
sql_policy=$(q "SELECT remediation || ' ' || retryable || ' ' || max_retries || ' '
                       || coalesce(extract(epoch FROM base_delay)::int::text, '-') || ' '
                       || coalesce(extract(epoch FROM max_delay)::int::text, '-') || ' '
                       || (array_position(enum_range(NULL::taskguard.alert_level), alert_level) - 1) || ' '
                       || priority_adjustment::float8
                  FROM taskguard.retry_policy WHERE task_name IS NULL ORDER BY failure_type")
# base and cap of a type that is not retried are never used: compare only where SQL has them
mismatch=$(paste -d'|' <(cat <<<"$c_policy") <(cat <<<"$sql_policy") |
           awk -F'|' '{ split($1, c, " "); split($2, s, " ");
                        for (i = 1; i <= 7; i++)
                            if (s[i] != "-" && c[i] != s[i] && (c[i] ~ /[A-Za-z]/ || c[i] + 0 != s[i] + 0))
                                print NR": "$0 }')
is "$mismatch" "" "builtin_policy (C) and the default retry_policy rows (SQL) agree type by type"

if [ -f docs/reference.md ]; then
    missing=$(for t in $sql_enum; do grep -q "$t" docs/reference.md || echo "$t"; done)
    is "$missing" "" "docs/reference.md names every failure type"
fi
done_testing
