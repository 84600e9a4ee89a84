#!/usr/bin/env bash
# test/matrix.sh — what `make test-matrix` runs: taskguard's suites on every
# supported PostgreSQL major (README "Supported PostgreSQL versions").
#
#   15      Debian's server (the one `make test` uses), no build.
#   16+     one server per postgresql-<version>.tar.gz found in TG_PGSRC
#           (default ../shared/pgsrc next to the checkout, then /work/shared/pgsrc),
#           built once into TG_PG_CACHE/<major> (default /var/cache/taskguard-pg),
#           with pg_cron and pgTAP from the tarballs beside it.  A server is
#           rebuilt only when its stamp (the sha256 of its tarball, of the
#           pg_cron and pgTAP tarballs, and the configure line) changes; cold
#           servers build in parallel.
#
# For each version the checkout's files are copied to a scratch tree (so the
# objects of one major never meet another's), built with WERROR=1 against that
# version and tested by test/harness.sh: pg_regress (all of sql/), pgTAP
# (test/pgtap) and the shell tests (test/t, minus TG_MATRIX_SKIP).
#
# Knobs: TG_MATRIX_VERSIONS="15 16 17 18" (a subset), TG_MATRIX_BUILD_ONLY=1
# (build the server cache and stop), TG_KEEP=1 (keep logs and clusters' dirs).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD
. test/lib/cluster.sh

# Every shell test runs on every version: none needs Debian's packaging of
# PostgreSQL (they use TG_BIN and pg_config, not /usr/lib/postgresql/15), and
# the clients (python, node, celery, the exporter) talk to any server.
# TG_MATRIX_SKIP="a.sh b.sh" leaves some out.
TG_MATRIX_SKIP=${TG_MATRIX_SKIP-}

cache=${TG_PG_CACHE:-/var/cache/taskguard-pg}

pgsrc=${TG_PGSRC:-}
if [ -z "$pgsrc" ]; then
    for d in "$checkout/../shared/pgsrc" /work/shared/pgsrc; do
        [ -d "$d" ] && { pgsrc=$(cd "$d" && pwd); break; }
    done
fi

tarballs=()
if [ -n "$pgsrc" ]; then
    while IFS= read -r t; do tarballs+=("$t"); done < <(ls "$pgsrc"/postgresql-*.tar.gz 2>/dev/null | sort -V)
fi
if [ ${#tarballs[@]} -eq 0 ]; then
    echo "test-matrix: skipped: no PostgreSQL sources at ${pgsrc:-${TG_PGSRC:-$checkout/../shared/pgsrc or /work/shared/pgsrc}} (set TG_PGSRC)"
    exit 0
fi

version_of() { basename "$1" .tar.gz | sed 's/^postgresql-//'; }   # 16.8
major_of()   { echo "${1%%.*}"; }                                   # 16

ext_tarball() {  # ext_tarball pg_cron|pgtap: the newest tarball of it, or nothing
    ls "$pgsrc/$1"-*.tar.gz 2>/dev/null | sort -V | tail -1
}
cron_tgz=$(ext_tarball pg_cron)
pgtap_tgz=$(ext_tarball pgtap)
[ -n "$cron_tgz" ] && [ -n "$pgtap_tgz" ] ||
    tg_die "pg_cron-*.tar.gz and pgtap-*.tar.gz must be in $pgsrc beside the PostgreSQL sources"

# Packages the source builds need (git trees carry no generated grammar).
# ICU, readline and zlib are used when their -dev packages are there.
tg_ensure_deps bison flex perl gcc make
configure_opts=()
for pkg_opt in libicu-dev:--without-icu libreadline-dev:--without-readline zlib1g-dev:--without-zlib; do
    dpkg-query -W -f='${Status}' "${pkg_opt%%:*}" 2>/dev/null | grep -q 'install ok installed' ||
        configure_opts+=("${pkg_opt#*:}")
done

stamp_of() {  # what a cached server was built from
    { sha256sum "$1" "$cron_tgz" "$pgtap_tgz" | awk '{print $1}'; echo "configure ${configure_opts[*]}"; }
}

# build_server TARBALL: configure, make, install into $cache/<major>, then
# pg_cron and pgTAP into it; the stamp is written last, so a half-built server
# is rebuilt next time.
build_server() {
    local tgz=$1 v major prefix src start
    v=$(version_of "$tgz"); major=$(major_of "$v"); prefix=$cache/$major
    start=$(date +%s)
    rm -rf "$prefix" "$prefix.build"
    mkdir -p "$prefix.build"
    tar -xzf "$tgz" -C "$prefix.build"
    src=$prefix.build/postgresql-$v
    ( cd "$src" && ./configure --prefix="$prefix" "${configure_opts[@]}" >/dev/null ) || return 1
    make -C "$src" -s -j"$(nproc)" >/dev/null 2>&1 || make -C "$src" -s >/dev/null || return 1
    make -C "$src" -s install >/dev/null || return 1
    make -C "$src/contrib/auto_explain" -s install >/dev/null || return 1
    local ext
    for ext in "$cron_tgz" "$pgtap_tgz"; do
        mkdir -p "$prefix.build/ext" && tar -xzf "$ext" -C "$prefix.build/ext"
    done
    local d
    for d in "$prefix.build/ext"/*/; do
        make -C "$d" -s PG_CONFIG="$prefix/bin/pg_config" >/dev/null 2>&1 &&
            make -C "$d" -s PG_CONFIG="$prefix/bin/pg_config" install >/dev/null ||
            { echo "building $(basename "$d") against $v failed"; return 1; }
    done
    rm -rf "$prefix.build"
    chmod -R a+rX "$prefix"
    stamp_of "$tgz" >"$prefix/.taskguard-stamp"
    echo "built PostgreSQL $v with $(basename "$cron_tgz" .tar.gz) and $(basename "$pgtap_tgz" .tar.gz) in $(( $(date +%s) - start )) s"
}

wanted() { [ -z "${TG_MATRIX_VERSIONS:-}" ] || [[ " $TG_MATRIX_VERSIONS " == *" $1 "* ]]; }

mkdir -p "$cache"
pids=(); names=()
for tgz in "${tarballs[@]}"; do
    v=$(version_of "$tgz"); major=$(major_of "$v")
    wanted "$major" || continue
    if [ -f "$cache/$major/.taskguard-stamp" ] && [ "$(cat "$cache/$major/.taskguard-stamp")" = "$(stamp_of "$tgz")" ]; then
        tg_log "PostgreSQL $v: cached in $cache/$major"
        continue
    fi
    tg_log "PostgreSQL $v: building into $cache/$major (log $cache/$major.log)"
    # flock: two checkouts running the matrix at once build a server once
    ( exec 9>"$cache/$major.lock"; flock 9
      if [ -f "$cache/$major/.taskguard-stamp" ] && [ "$(cat "$cache/$major/.taskguard-stamp")" = "$(stamp_of "$tgz")" ]; then
          echo "built meanwhile by another run"; exit 0
      fi
      build_server "$tgz" ) >"$cache/$major.log" 2>&1 &
    pids+=($!); names+=("$v")
done
build_failed=0
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        tg_log "PostgreSQL ${names[$i]}: $(tail -1 "$cache/$(major_of "${names[$i]}").log")"
    else
        tg_log "PostgreSQL ${names[$i]}: build FAILED; last lines of $cache/$(major_of "${names[$i]}").log:"
        tail -30 "$cache/$(major_of "${names[$i]}").log" >&2
        build_failed=1
    fi
done
[ "$build_failed" = 0 ] || tg_die "a server build failed"

# auto_explain (contrib): the tests that count the buffers a claim reads use
# it.  Servers cached before it was wanted get it here, built with PGXS from
# the tarball's contrib/auto_explain alone (seconds, not a server rebuild).
for tgz in "${tarballs[@]}"; do
    v=$(version_of "$tgz"); major=$(major_of "$v"); prefix=$cache/$major
    wanted "$major" || continue
    [ -f "$("$prefix/bin/pg_config" --pkglibdir)/auto_explain.so" ] && continue
    ( exec 9>"$cache/$major.lock"; flock 9
      d=$(mktemp -d /tmp/taskguard-ae.XXXXXX)
      tar -xzf "$tgz" -C "$d" "postgresql-$v/contrib/auto_explain" &&
          make -C "$d/postgresql-$v/contrib/auto_explain" -s USE_PGXS=1 PG_CONFIG="$prefix/bin/pg_config" >/dev/null 2>&1 &&
          make -C "$d/postgresql-$v/contrib/auto_explain" -s USE_PGXS=1 PG_CONFIG="$prefix/bin/pg_config" install >/dev/null 2>&1
      rc=$?; rm -rf "$d"; chmod -R a+rX "$prefix"; exit $rc ) ||
        tg_log "PostgreSQL $v: could not add auto_explain (the buffer counts are skipped there)"
done
[ -z "${TG_MATRIX_BUILD_ONLY:-}" ] || exit 0

# ---------- the suites, one version after the other ----------

logs=$(mktemp -d /tmp/taskguard-matrix.XXXXXX)
chmod 755 "$logs"
[ -n "${TG_KEEP:-}" ] || trap 'rm -rf "$logs"' EXIT

# A copy of the checkout's files (tracked and new, not ignored), so each
# version builds its own objects and the checkout's build stays as it was.
copy_tree() {
    local dest=$1 f
    mkdir -p "$dest"
    if git -C "$checkout" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$checkout" ls-files -co --exclude-standard |
            while IFS= read -r f; do [ -e "$checkout/$f" ] && printf '%s\n' "$f"; done |
            tar -C "$checkout" -cf - -T - | tar -C "$dest" -xf -
    else
        tar -C "$checkout" --exclude='*.o' --exclude='*.so' --exclude='*.bc' -cf - . | tar -C "$dest" -xf -
    fi
}

# Shell tests for this run: all of test/t minus TG_MATRIX_SKIP.
shell_tests() {
    local t out=""
    for t in test/t/*.sh; do
        [[ " $TG_MATRIX_SKIP " == *" $(basename "$t") "* ]] || out="$out $t"
    done
    echo "${out# }"
}

# The counts of one run's log: suites, pg_regress, pgTAP and shell tests.
section() {  # section LOG NAME: the log lines after "== NAME" up to the next "== "
    awk -v s="== $2" '$0 == s {on = 1; next} /^== / {on = 0} on' "$1"
}
prove_counts() {  # "F files, T tests" from prove's summary, or "-"
    sed -n 's/^Files=\([0-9]*\), Tests=\([0-9]*\),.*/\1 files, \2 tests/p' | tail -1 | grep . || echo "-"
}
regress_counts() {  # "P/N" from pg_regress's last line (15: "All N tests passed.", 16+: "# …")
    local line
    line=$(grep -E '([0-9]+ of )?[0-9]+ tests? (passed|failed)' | tail -1)
    if [[ $line =~ All\ ([0-9]+)\ tests\ passed ]]; then echo "${BASH_REMATCH[1]}/${BASH_REMATCH[1]}"
    elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
        echo "$(( BASH_REMATCH[2] - BASH_REMATCH[1] ))/${BASH_REMATCH[2]}"
    else echo "-"; fi
}

run_version() {  # run_version LABEL PG_CONFIG (empty: Debian's 15)
    local label=$1 pgc=$2 tree=$logs/$1/tree log=$logs/$1.log start rc=0
    copy_tree "$tree"
    start=$(date +%s)
    ( cd "$tree" && TG_PG_CONFIG=$pgc TG_SERVER_ONLY=1 TG_SHELL_TESTS="$(shell_tests)" \
        bash test/harness.sh test ) >"$log" 2>&1 || rc=$?
    local secs=$(( $(date +%s) - start )) server suites regress pgtap shell
    server=$(sed -n 's/^== server: PostgreSQL \([^ ]*\) .*/\1/p' "$log" | head -1)
    if [ "$rc" = 0 ] && [ "${server%%.*}" != "$label" ]; then
        tg_log "expected PostgreSQL $label, the harness ran ${server:-no server}"; rc=1
    fi
    suites=$(sed -n 's/^harness: \([0-9]*\) passed, \([0-9]*\) failed$/\1 passed, \2 failed/p' "$log" | tail -1)
    regress=$(section "$log" pg_regress | regress_counts)
    pgtap=$(section "$log" pgTAP | prove_counts)
    shell=$(section "$log" "shell tests" | prove_counts)
    printf '%-8s %-6s %-20s %-11s %-20s %-22s %5ss\n' "${server:-$label?}" "$([ $rc = 0 ] && echo PASS || echo FAIL)" \
        "${suites:-no result}" "$regress" "$pgtap" "$shell" "$secs" >>"$logs/summary"
    if [ $rc != 0 ]; then
        tg_log "PostgreSQL $label FAILED; the end of its log ($log):"
        grep -E '^(not ok|# |== |harness:)|FAILED|[Ff]ailed|Dubious' "$log" | tail -60 >&2
        [ -f "$tree/regression.diffs" ] && head -100 "$tree/regression.diffs" >&2
    fi
    [ -z "${TG_KEEP:-}" ] && [ $rc = 0 ] && rm -rf "$tree"
    return $rc
}

runs=()   # "label pg_config"
if wanted 15; then
    if [ -x /usr/lib/postgresql/15/bin/pg_config ] || [ "$(id -u)" = 0 ]; then
        runs+=("15 -")      # tg_ensure_deps installs Debian's 15 if it is missing
    fi
fi
for tgz in "${tarballs[@]}"; do
    major=$(major_of "$(version_of "$tgz")")
    wanted "$major" && runs+=("$major $cache/$major/bin/pg_config")
done

printf '%-8s %-6s %-20s %-11s %-20s %-22s %6s\n' server result suites pg_regress pgTAP "shell (TAP)" time >"$logs/summary"
failed=0
matrix_start=$(date +%s)
for r in "${runs[@]}"; do
    label=${r%% *}; pgc=${r#* }; [ "$pgc" = - ] && pgc=""
    tg_log "PostgreSQL $label: build with WERROR=1, pg_regress, pgTAP, shell tests"
    run_version "$label" "$pgc" || failed=$((failed + 1))
    tail -1 "$logs/summary" >&2
done
echo
echo "test-matrix: shell tests left out everywhere: ${TG_MATRIX_SKIP:-none}"
cat "$logs/summary"
echo "test-matrix: ${#runs[@]} versions, $failed failed, $(( $(date +%s) - matrix_start )) s${TG_KEEP:+ (logs in $logs)}"
[ "$failed" -eq 0 ]
