#!/usr/bin/env bash
# test/fuzz/run.sh SECONDS — libFuzzer (Debian's clang) over every pure-C core.
# Each test/fuzz/NAME_fuzz.c defines LLVMFuzzerTestOneInput and names its sources
#   /* link: src/a.c */
# Seeds live in test/fuzz/corpus/NAME/; crashing inputs found are kept in
# test/fuzz/crashes/NAME/ and must become regression tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
command -v clang >/dev/null || { apt-get update -qq && apt-get install -y -qq clang >/dev/null; }
out=test/fuzz/bin; mkdir -p "$out"
status=0
for h in test/fuzz/*_fuzz.c; do
    [ -e "$h" ] || continue
    name=$(basename "$h" .c)
    srcs=$(sed -n 's|.*/\* link: \(.*\) \*/.*|\1|p' "$h" | head -1)
    clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -o "$out/$name" "$h" $srcs ||
        { echo "fuzz: $name does not build"; status=1; continue; }
    work=test/fuzz/corpus-work/$name; crashes=test/fuzz/crashes/$name
    mkdir -p "$work" "$crashes"
    [ -d "test/fuzz/corpus/$name" ] && cp -n test/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
    if "$out/$name" -max_total_time="$secs" -max_len=4096 -artifact_prefix="$crashes/" \
          -print_final_stats=1 "$work" >"$out/$name.log" 2>&1; then
        echo "fuzz: $name ran ${secs}s: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$out/$name.log" | grep -Eo '[0-9]+$') runs, no crash"
    else
        echo "fuzz: $name FAILED"; tail -30 "$out/$name.log"; status=1
    fi
done
exit $status
