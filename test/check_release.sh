#!/usr/bin/env bash
# test/check_release.sh — `make check-release`, run by CI before the tests.
# Fails when the SQL objects changed without a release step:
# - a version kept in releases/ is frozen: if default_version is released,
#   the install script built from src/sql must be byte-identical to it (to
#   change src/sql, raise default_version and add src/sql/update/OLD--NEW/);
# - every kept release has an update path, one src/sql/update/A--B/ step at a
#   time, to default_version.
# That the update path gives what a fresh install gives is test/t/upgrade.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cur=$(sed -n "s/^default_version = '\(.*\)'/\1/p" taskguard.control)
make -s "taskguard--$cur.sql" >/dev/null
fail=0
if [ -f "releases/taskguard--$cur.sql" ]; then
    if ! cmp -s "releases/taskguard--$cur.sql" "taskguard--$cur.sql"; then
        echo "check-release: $cur is released (releases/taskguard--$cur.sql) but src/sql no longer builds it:"
        diff "releases/taskguard--$cur.sql" "taskguard--$cur.sql" | head -20
        echo "check-release: raise default_version in taskguard.control and add src/sql/update/$cur--NEW/"
        fail=1
    fi
fi
for rel in releases/taskguard--*.sql; do
    v=$(basename "$rel" .sql); v=${v#taskguard--}
    seen=" $v "
    while [ "$v" != "$cur" ]; do
        next=$(ls -d src/sql/update/"$v"--* 2>/dev/null | head -1)
        if [ -z "$next" ]; then
            echo "check-release: no update path from $v to $cur (src/sql/update/$v--*/ is missing)"
            fail=1; break
        fi
        v=${next##*--}
        case "$seen" in *" $v "*) echo "check-release: update cycle at $v"; fail=1; break ;; esac
        seen="$seen$v "
    done
done
[ "$fail" -eq 0 ] && echo "check-release: $cur, every release updates to it"
exit "$fail"
