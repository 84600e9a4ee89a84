#!/usr/bin/env bash
# test/harness.sh MODE — what `make test`, `make demo`, `make bench`, `make soak`
# and `make bench-peers` run.  Installs missing Debian packages, builds, installs
# (privately for tests, system-wide for the demo), starts a throwaway cluster as
# user postgres and runs MODE against it.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

mode=${1:-test}
tg_ensure_deps
tg_build

case "$mode" in
demo)
    make -s install >/dev/null || tg_die "make install failed"
    TG_BIN=$TG_SYS_BIN
    port=${TG_DEMO_PORT:-55432}
    dir=/tmp/taskguard-demo
    if [ -f "$dir/data/postmaster.pid" ]; then
        TG_DATA=$dir/data; tg_stop immediate
    fi
    rm -rf "$dir"
    tg_port_free "$port" || tg_die "port $port is busy (set TG_DEMO_PORT)"
    tg_init_cluster "$dir" "$port" "taskguard.naptime = 200"
    tg_start
    tg_create_main_db
    bash test/demo.sh
    echo
    echo "The demo cluster is still running: psql -h $dir -p $port -U postgres taskguard"
    echo "Stop it with: runuser -u postgres -- $TG_BIN/pg_ctl -D $dir/data stop"
    exit 0
    ;;
esac

work=$(mktemp -d /tmp/taskguard-test.XXXXXX)
chmod 755 "$work"
tg_private_install "$work/inst"
port=$(tg_pick_port)
case "$mode" in
test|soak)
    # the soak runs a busy queue database as README "Operating a busy queue" advises
    busy=(); [ "$mode" = soak ] && busy=("autovacuum_naptime = 10s")
    tg_init_cluster "$work/pg" "$port" "taskguard.naptime = 200" "fsync = off" \
        "synchronous_commit = off" "full_page_writes = off" "${busy[@]}" ;;
*)  # benches: default durability settings
    tg_init_cluster "$work/pg" "$port" ;;
esac
cleanup() { tg_stop immediate; [ "${TG_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
tg_start
tg_log "server: $(psql -X -At -d postgres -c 'SELECT version()')"
tg_create_main_db

passed=0; failed=0
suite() {  # suite NAME COMMAND...: run one suite, count it
    local name=$1; shift
    tg_log "$name"
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); tg_log "$name FAILED"; fi
}

run_regress() {
    local tests
    tests=$(ls sql/*.sql 2>/dev/null | xargs -n1 basename | sed 's/\.sql$//' | tr '\n' ' ')
    [ -n "$tests" ] || return 0
    "$("$TG_BIN/pg_config" --pgxs | xargs dirname)/../test/regress/pg_regress" \
        --inputdir=. --bindir="$TG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --load-extension=taskguard --dbname=contrib_regression $tests ||
        { [ -f regression.diffs ] && head -200 regression.diffs; return 1; }
}

run_pgtap() {
    ls test/pgtap/*.sql >/dev/null 2>&1 || return 0
    pg_prove -d taskguard --failures test/pgtap/*.sql
}

run_shell() {
    ls test/t/*.sh >/dev/null 2>&1 || return 0
    export TG_WORK=$work
    prove ${TG_VERBOSE:+-v} --exec bash ${TG_TESTS:-${TG_SHELL_TESTS:-test/t/*.sh}}
}

case "$mode" in
test)
    if [ -n "${TG_TESTS:-}" ]; then
        suite "shell tests" run_shell
    else
        # TG_SERVER_ONLY (test/matrix.sh): leave out the pure-C suites, which no server version changes
        [ -f test/unit/run.sh ] && [ -z "${TG_SERVER_ONLY:-}" ] && suite "unit tests (pure C)" bash test/unit/run.sh
        suite "pg_regress" run_regress
        suite "pgTAP" run_pgtap
        suite "shell tests" run_shell
        [ -f test/fuzz/run.sh ] && [ -z "${TG_SERVER_ONLY:-}" ] && suite "fuzz (short)" bash test/fuzz/run.sh "${FUZZ_SECONDS:-5}"
        grep -E 'TRAP:|terminated by signal (6|11)|PANIC' "$TG_LOGFILE" &&
            { tg_log "server log shows a crash"; failed=$((failed + 1)); }
    fi
    echo "harness: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    ;;
bench)       bash ${TG_BENCH_SCRIPT:-bench/run.sh} ;;
bench-peers) bash bench/peers/run.sh ;;
soak)        bash test/soak.sh ;;
*) tg_die "unknown mode $mode" ;;
esac
