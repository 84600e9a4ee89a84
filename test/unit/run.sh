#!/usr/bin/env bash
# test/unit/run.sh — plain C tests of the pure-C cores (no server needed).
# Each test/unit/NAME_test.c names the sources it links on a line
#   /* link: src/a.c src/b.c */
# and prints TAP; the run fails when any test exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=test/unit/bin; mkdir -p "$out"
status=0
for t in test/unit/*_test.c; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .c)
    srcs=$(sed -n 's|.*/\* link: \(.*\) \*/.*|\1|p' "$t" | head -1)
    cc -std=c11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -Isrc \
        -o "$out/$name" "$t" $srcs || { echo "not ok - $name does not build"; status=1; continue; }
    if "$out/$name"; then echo "# $name passed"; else echo "# $name FAILED"; status=1; fi
done
exit $status
