#!/usr/bin/env bash
# test/harness.sh MODE — what `make test`, `make demo`, `make demo-stop`,
# `make bench`, `make soak` and `make bench-peers` run.  Installs missing Debian
# packages, builds, installs into a private copy of PostgreSQL, starts a
# throwaway cluster as user postgres on a free port and runs MODE against it.
# A guest on the machine: it touches no cluster, file or library it did not create.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

mode=${1:-test}
if [ "$mode" != demo-stop ]; then
    tg_ensure_deps
    tg_build
fi

case "$mode" in
demo)
    # A guest: its own directory and free port, a private install (unless
    # TG_SYSTEM_INSTALL=1), password authentication, and the cluster stopped
    # at the end unless TG_DEMO_KEEP=1 (then `make demo-stop` stops it).
    work=$(mktemp -d /tmp/taskguard-demo.XXXXXX)
    chmod 755 "$work"
    if [ "${TG_SYSTEM_INSTALL:-}" = 1 ]; then
        make -s install >/dev/null || tg_die "make install failed"
        TG_BIN=$TG_SYS_BIN
    else
        tg_private_install "$work/inst"
    fi
    port=${TG_DEMO_PORT:-$(tg_pick_port)}
    tg_port_free "$port" || tg_die "port $port is busy (set TG_DEMO_PORT)"
    TG_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    tg_init_cluster "$work/pg" "$port" "taskguard.naptime = 200"
    demo_stop() { tg_stop fast; rm -rf "$work"; rm -f .demo-cluster; }
    if [ "${TG_DEMO_KEEP:-}" = 1 ]; then
        printf '%s\n' "$work" > .demo-cluster
    else
        trap demo_stop EXIT
    fi
    tg_start
    tg_create_main_db
    bash demo/run.sh
    echo
    if [ "${TG_DEMO_KEEP:-}" = 1 ]; then
        echo "The demo cluster is still running: PGPASSFILE=$PGPASSFILE psql -h $PGHOST -p $PGPORT -U postgres taskguard"
        echo "Stop it (and remove $work) with: make demo-stop"
    else
        echo "The demo cluster was stopped and $work removed (TG_DEMO_KEEP=1 keeps it running)."
    fi
    exit 0
    ;;
demo-stop)
    [ -f .demo-cluster ] || { echo "no demo cluster of this checkout is running"; exit 0; }
    work=$(cat .demo-cluster)
    case "$work" in /tmp/taskguard-demo.*) ;; *) tg_die "unexpected demo directory in .demo-cluster: $work" ;; esac
    TG_BIN=$work/inst/usr/lib/postgresql/$TG_PGVER/bin
    [ -x "$TG_BIN/pg_ctl" ] || TG_BIN=$TG_SYS_BIN
    TG_DATA=$work/pg/data
    tg_stop fast
    rm -rf "$work" .demo-cluster
    echo "demo cluster stopped, $work removed"
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
    prove ${TG_VERBOSE:+-v} --failures --exec bash ${TG_TESTS:-${TG_SHELL_TESTS:-test/t/*.sh}}
}

case "$mode" in
test)
    # TG_SUITES picks suites (default all): unit regress pgtap shell fuzz;
    # TG_TESTS=test/t/x.sh runs those shell tests only.
    want() { case " ${TG_SUITES:-unit regress pgtap shell fuzz} " in *" $1 "*) return 0 ;; esac; return 1; }
    if [ -n "${TG_TESTS:-}" ]; then
        suite "shell tests" run_shell
    else
        # TG_SERVER_ONLY (test/matrix.sh): leave out the pure-C suites, which no server version changes
        want unit && [ -f test/unit/run.sh ] && [ -z "${TG_SERVER_ONLY:-}" ] && suite "unit tests (pure C)" bash test/unit/run.sh
        want regress && suite "pg_regress" run_regress
        want pgtap && suite "pgTAP" run_pgtap
        want shell && suite "shell tests" run_shell
        want fuzz && [ -f test/fuzz/run.sh ] && [ -z "${TG_SERVER_ONLY:-}" ] && suite "fuzz (short)" bash test/fuzz/run.sh "${FUZZ_SECONDS:-5}"
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
