#!/usr/bin/env bash
# README's "Where things live" (issue 21) names every file of src/ and
# src/sql/ (not src/sql/update/), and nothing that is not there: the map a
# newcomer reads first cannot drift from `ls src/ src/sql/`.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."
section=$(awk '/^## Where things live/ {on = 1; next} on && /^## / {exit} on' README.md)
ok "$([ -n "$section" ]; echo $?)" "README has a section \"Where things live\""
# the table's rows (the paragraph above it may name a file again)
named=$(grep '^|' <<<"$section" | grep -o '`[A-Za-z0-9_]*\.\(c\|h\|sql\)`' | tr -d '`' | sort)
on_disk=$( (cd src && ls *.c *.h; cd sql && ls *.sql) | sort)
is "$(comm -13 <(echo "$named" | sort -u) <(echo "$on_disk"))" "" "every file in src/ and src/sql/ is on the map"
is "$(comm -23 <(echo "$named" | sort -u) <(echo "$on_disk"))" "" "the map names no file that is not there"
is "$(echo "$named" | uniq -d)" "" "the map's table names each file once"
# each row is one capability: a C file on two rows would be two capabilities in one file
rows=$(grep -c '^| [a-z]' <<<"$section")
ok "$([ "$rows" -ge 15 ]; echo $?)" "the map has a row per capability ($rows rows)"
done_testing
