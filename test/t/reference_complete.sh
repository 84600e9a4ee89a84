#!/usr/bin/env bash
# docs/reference.md names every public object of the installed extension
# (issue 21): each function (and, on its signature line, every argument), view,
# table, type and taskguard.* setting; objects whose name starts with `_` are
# internal and left out.  And the other way round: every function the
# reference gives a signature for exists, so the page cannot go stale silently.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."
ref=docs/reference.md
DB=refdoc
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS refdoc" >/dev/null 2>&1' EXIT
q "CREATE EXTENSION taskguard" >/dev/null

# lines "kind name"
objects=$(q "SELECT 'function ' || proname FROM pg_proc
              WHERE pronamespace = 'taskguard'::regnamespace AND proname !~ '^_'
             UNION SELECT CASE relkind WHEN 'v' THEN 'view ' ELSE 'table ' END || relname FROM pg_class
              WHERE relnamespace = 'taskguard'::regnamespace AND relkind IN ('r', 'p', 'v', 'm') AND relname !~ '^_'
             UNION SELECT 'type ' || typname FROM pg_type t
              WHERE typnamespace = 'taskguard'::regnamespace AND typtype IN ('e', 'd', 'c') AND typname !~ '^_'
                AND (typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = typrelid) = 'c')
             UNION SELECT 'setting ' || name FROM pg_settings WHERE name LIKE 'taskguard.%'
             ORDER BY 1")
count() { echo "$objects" | grep -c "^$1 "; }
missing=""
while read -r kind name; do
    case $kind in
    function) grep -qF "\`$name(" "$ref" ;;
    *)        grep -qF "\`$name\`" "$ref" ;;
    esac || missing="$missing $kind:$name"
done <<< "$objects"
is "$missing" "" "docs/reference.md names every public object ($(count function) functions, $(count view) views, $(count table) tables, $(count type) types, $(count setting) settings)"
ok "$([ "$(count setting)" -gt 10 ]; echo $?)" "the settings were listed (the library is loaded)"

# every argument of every public function on its signature line ("`name(" in a heading or bullet)
badargs=""
while IFS='|' read -r name args; do
    line=$(grep -F "\`$name(" "$ref" | grep -E '^(###|- \*\*)' | head -1)
    for a in $(echo "$args" | tr ',' '\n' | awk '{print $1}'); do
        echo "$line" | grep -qE "[(, ]$a [a-z]" || badargs="$badargs $name.$a"
    done
done < <(q "SELECT proname, pg_get_function_identity_arguments(oid) FROM pg_proc
             WHERE pronamespace = 'taskguard'::regnamespace AND proname !~ '^_' ORDER BY 1")
is "$badargs" "" "each function's documented signature names all of its arguments"

# every documented signature is an installed function
stale=""
for f in $(grep -oE '^(### |- \*\*)`[a-z_]+\(' "$ref" | grep -oE '[a-z_]+\($' | tr -d '('); do
    echo "$objects" | grep -qx "function $f" || stale="$stale $f"
done
is "$stale" "" "every function docs/reference.md documents exists"

# every SQLSTATE the code raises (errcode(ERRCODE_…) in C, USING ERRCODE in SQL)
# has its row in the SQLSTATE table
codes=$( { grep -ho 'errcode(ERRCODE_[A-Z_]*' src/*.c | sed 's/errcode(ERRCODE_//' | tr 'A-Z' 'a-z' | sed 's/^e_r_i_e_//'
           grep -hoi "ERRCODE *= *'[a-z_0-9]*'" src/sql/*.sql | sed "s/.*'\(.*\)'/\1/"; } | sort -u)
table=$(sed -n '/<a id="sqlstates">/,$p' "$ref" | grep '^| `')
nodoc=""
for c in $codes; do echo "$table" | grep -qF "| \`$c\` |" || nodoc="$nodoc $c"; done
is "$nodoc" "" "every SQLSTATE the code raises has its row in docs/reference.md#sqlstates ($(echo $codes | wc -w) conditions)"
# and each row's code is its condition's (PL/pgSQL raises the name; SQLSTATE tells the code)
wrong=""
while IFS='|' read -r _ code name _; do
    code=$(echo "$code" | tr -d ' `'); name=$(echo "$name" | tr -d ' `')
    got=$(q "DO \$\$ BEGIN RAISE USING ERRCODE = '$name'; EXCEPTION WHEN others THEN RAISE NOTICE 'code=%', SQLSTATE; END \$\$" 2>&1 | sed -n 's/.*code=//p')
    [ "$got" = "$code" ] || wrong="$wrong $name:$code/$got"
done <<< "$table"
is "$wrong" "" "each SQLSTATE row pairs the code with its condition name"

# code cites the reference, not the SPEC that is not in the repository
is "$(grep -rlI --exclude-dir=node_modules --exclude=reference_complete.sh -e 'SPEC §' -e '-- §[0-9]' src test bench clients docs README.md sql expected dashboards | tr '\n' ' ')" "" \
   "no file cites SPEC § (they cite docs/reference.md#anchor)"
# every docs/reference.md#anchor cited anywhere exists
anchors=$(grep -o '<a id="[a-z-]*">' "$ref" | sed 's/<a id="\(.*\)">/\1/')
bad=""
for a in $(grep -rhoE 'reference\.md#[a-z-]+' src test bench clients console docs README.md sql expected --exclude-dir=node_modules --exclude=reference_complete.sh | sed 's/.*#//' | sort -u); do
    echo "$anchors" | grep -qx "$a" || bad="$bad $a"
done
is "$bad" "" "every cited docs/reference.md#anchor exists"
done_testing
