#!/usr/bin/env bash
# client_packages: the clients as packages (issue 23).  Versions agree with
# the extension; the Python package installs into a virtualenv with pip and
# imports from there (py.typed, the Celery bridge included); `npm pack`
# publishes the Node package with its types; the clients' own suites run
# (pytest, `npm test`); and SIGTERM is a graceful shutdown in every worker:
# measured from the signal to the exit, the running task finishes, the
# claimed tasks not started go back to ready with their attempt unused.
. "$(dirname "$0")/../lib/tap.sh"
PY=/usr/bin/python3                 # Debian's, which sees python3-psycopg
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export PGDATABASE=${DB:-taskguard} PYTHONDONTWRITEBYTECODE=1

# -- versions -------------------------------------------------------------------------
ext=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$ROOT/taskguard.control")
pyv=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/clients/python/pyproject.toml")
nodev=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$ROOT/clients/node/package.json")
metav=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$ROOT/META.json" 2>/dev/null)
is "$pyv $nodev $metav" "$ext $ext $ext" "pyproject.toml, package.json and META.json carry the extension's version $ext"

# -- the Python package installs with pip (Debian's, offline) -------------------------
venv=$TG_WORK/pyvenv
rm -rf "$venv" "$TG_WORK/pysrc"
cp -r "$ROOT/clients/python" "$TG_WORK/pysrc"     # a build writes beside its sources
if $PY -m venv --system-site-packages "$venv" >"$TG_WORK/venv.log" 2>&1 &&
   "$venv/bin/pip" install --no-build-isolation --no-index --no-deps -q "$TG_WORK/pysrc" >>"$TG_WORK/venv.log" 2>&1; then
    ok 0 "pip installs clients/python (no network, no build isolation)"
else
    ok 1 "pip installs clients/python (no network, no build isolation)"; sed 's/^/# /' "$TG_WORK/venv.log"
fi
got=$(cd / && "$venv/bin/python" -c '
import os, taskguard, taskguard.aio, taskguard.celery, taskguard.worker
d = os.path.dirname(taskguard.__file__)
print(taskguard.__version__, "site-packages" in d, os.path.isfile(os.path.join(d, "py.typed")),
      callable(taskguard.enqueue), taskguard.AsyncWorker.__name__, taskguard.celery.TaskguardTask.__name__)' 2>&1)
is "$got" "$ext True True True AsyncWorker TaskguardTask" \
   "the installed package imports from site-packages: version, py.typed, enqueue, AsyncWorker, taskguard.celery"

# -- pytest -----------------------------------------------------------------------------
if $PY -c 'import pytest' 2>/dev/null; then
    (cd "$ROOT/clients/python" && $PY -m pytest -q -s -p no:cacheprovider tests) >"$TG_WORK/pytest.log" 2>&1
    rc=$?
    grep -E 'worker: stop|passed|failed|skipped|Error' "$TG_WORK/pytest.log" | sed 's/^/# /' | tail -20
    sed -n '/warnings summary/,/^-- Docs/p' "$TG_WORK/pytest.log" | sed 's/^/# /' | head -20
    [ $rc -eq 0 ] || tail -60 "$TG_WORK/pytest.log" | sed 's/^/# /'
    ok $rc "pytest clients/python/tests passes"
    ok "$(grep -q ' skipped' "$TG_WORK/pytest.log"; echo $((1 - $?)))" "and skipped nothing (it reached the database)"
else
    echo "# SKIP pytest: Debian's python3-pytest is not installed (apt-get install python3-pytest)"
    ok 0 "# SKIP pytest is not installed"
fi

# -- npm --------------------------------------------------------------------------------
ndir=$ROOT/clients/node
if command -v node >/dev/null && command -v npm >/dev/null; then
    if [ ! -d "$ndir/node_modules/pg" ]; then
        (cd "$ndir" && npm ci --no-audit --no-fund --loglevel=error >&2) || echo "# npm ci failed"
    fi
    files=$(cd "$ndir" && npm pack --dry-run --json 2>/dev/null |
            $PY -c 'import json,sys; d=json.load(sys.stdin)[0]; print(d["name"], d["version"], " ".join(sorted(f["path"] for f in d["files"])))')
    is "$files" "taskguard $ext LICENSE README.md enqueue.js example.js index.d.ts index.js package.json worker.js" \
       "npm pack: package taskguard $ext with its types, publishable (not private)"
    (cd "$ndir" && npm test) >"$TG_WORK/npmtest.log" 2>&1
    rc=$?
    grep -E 'node worker:|^# (tests|pass|fail|skipped) ' "$TG_WORK/npmtest.log"
    [ $rc -eq 0 ] || grep -B2 -A20 '^not ok' "$TG_WORK/npmtest.log" | head -60 | sed 's/^/# /'
    ok $rc "npm test passes"
    is "$(sed -n 's/^# skipped //p' "$TG_WORK/npmtest.log")" 0 "and skipped nothing"
else
    ok 0 "# SKIP node/npm not installed"
fi

# -- SIGTERM: graceful shutdown, measured -----------------------------------------------
# sigterm NAME SLOTS CMD...: 6 tasks of 2 s; once all are claimed, SIGTERM; the
# worker must exit 0 within 2 s + margin (not 6 x 2 s / SLOTS), leaving at most
# SLOTS succeeded and the others ready on attempt 0.
sigterm() {
    local name=$1 slots=$2; shift 2
    local queue="sig_${name}_$$" pid t0 t1 rc
    q "SELECT count(*) FROM taskguard.enqueue_many('nap', (SELECT array_agg(jsonb_build_object('seconds', 2, 'ms', 2000))
         FROM generate_series(1, 6)), queue => '$queue')" >/dev/null
    "$@" --queue "$queue" >"$TG_WORK/sig_$name.log" 2>&1 &
    pid=$!
    tg_wait_for 20 "SELECT count(*) = 6 FROM taskguard.task WHERE queue = '$queue' AND status = 'running'" >/dev/null ||
        echo "# $name: the tasks were not all claimed"
    t0=$(date +%s%N)
    kill -TERM $pid
    local end=$(( $(date +%s) + 20 ))
    while kill -0 $pid 2>/dev/null && [ "$(date +%s)" -le "$end" ]; do sleep 0.02; done
    t1=$(date +%s%N)
    if kill -0 $pid 2>/dev/null; then kill -KILL $pid; rc=hung; else wait $pid; rc=$?; fi
    local ms=$(( (t1 - t0) / 1000000 ))
    echo "# $name: SIGTERM to exit $ms ms ($slots slot(s), 6 claimed tasks of 2 s)"
    is "$rc $([ $ms -lt 3500 ] && echo fast)" "0 fast" "$name: SIGTERM exits 0 within 3.5 s (took $ms ms; before 0.2.0 it ran every claimed task)"
    is "$(q "SELECT count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1) <= $slots
               AND count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1)
                 + count(*) FILTER (WHERE status = 'ready' AND attempts = 0 AND worker IS NULL AND lease_expires_at IS NULL) = 6
             FROM taskguard.task WHERE queue = '$queue'")" t \
       "$name: the running task(s) finished, the others are ready again with their attempt unused"
    q "DELETE FROM taskguard.task WHERE queue = '$queue'" >/dev/null
}
sigterm python 1 $PY "$ROOT/clients/python/example.py" work --batch 6 --poll 60
sigterm python_asyncio 2 $PY "$ROOT/clients/python/example.py" work --asyncio --concurrency 2 --batch 6 --poll 60
command -v node >/dev/null &&
    sigterm node 2 node "$ndir/example.js" --concurrency 2 --batch 6 --complete-batch 1 --poll 60000
done_testing
