#!/usr/bin/env bash
# readme_commands: the client READMEs' commands run as written (issue 23).
# Every ```sh block of clients/{python,node,celery}/README.md runs verbatim
# with bash -e, in a copy of its directory (their builds, virtual
# environments and node_modules stay out of the checkout), against a fresh
# database of the harness cluster named by the PG* variables, as the READMEs
# ask the reader to set them; jobs a block leaves in the background are
# stopped at its end.  Blocks fenced otherwise (```python, ```js, ```text:
# code to adapt, with placeholders such as the app name `shop`) are not run.
# The main README's client section names its commands inline: the one
# without placeholders (the pip install) runs here too; the others
# (PGHOST=… ./example.js, python3 -m celery -A app) are the client
# READMEs' blocks with placeholders filled, which run above.
. "$(dirname "$0")/../lib/tap.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# the READMEs say Debian's python3 (it sees python3-psycopg and python3-celery)
export PATH=/usr/bin:/bin:$PATH PYTHONDONTWRITEBYTECODE=1
W=$TG_WORK/readme
rm -rf "$W" && mkdir -p "$W" && cp -r "$ROOT/clients" "$W/" && rm -rf "$W/clients/node/node_modules"
export PGDATABASE=readme_cmds CELERY_BROKER_DIR=$W/celery-broker
unset CELERY_BROKER_URL DATABASE_URL
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS readme_cmds" -c "CREATE DATABASE readme_cmds" >/dev/null
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS readme_cmds" >/dev/null 2>&1' EXIT
DB=readme_cmds q "CREATE EXTENSION taskguard" >/dev/null
DB=readme_cmds

# blocks FILE: the ```sh blocks of FILE, each ended by a line "#--end--"
blocks() { awk '/^```sh$/ {code = 1; next} code && /^```/ {code = 0; print "#--end--"; next} code {print}' "$1"; }

# run_blocks CLIENT: run each block of clients/CLIENT/README.md in the copy
run_blocks() {
    local client=$1 n=0 block="" line
    while IFS= read -r line; do
        if [ "$line" != "#--end--" ]; then block+="$line"$'\n'; continue; fi
        n=$((n + 1))
        printf '%s\n%s' "trap 'kill \$(jobs -p) 2>/dev/null || true; wait' EXIT" "$block" >"$W/$client-$n.sh"
        (cd "$W/clients/$client" && timeout 300 bash -e "$W/$client-$n.sh") >"$W/$client-$n.out" 2>&1
        local rc=$?
        echo "$block" | sed "s/^/# $client block $n: /" | grep -v ': $'
        [ $rc -eq 0 ] || tail -25 "$W/$client-$n.out" | sed 's/^/#   /'
        ok $rc "clients/$client/README.md block $n runs as written"
        block=""
    done < <(blocks "$ROOT/clients/$client/README.md")
    ok "$([ $n -gt 0 ]; echo $?)" "clients/$client/README.md has commands to run ($n blocks)"
}

# -- Python: install with pip, then the example -----------------------------------------
run_blocks python
grep -q "^0\.2\.0 .*/\.venv/lib/.*site-packages/taskguard/__init__\.py" "$W/python-1.out"
ok $? "the package imports from the virtual environment's site-packages"
is "$(q "SELECT count(*) FILTER (WHERE status = 'running') || ' ' || (count(*) FILTER (WHERE status = 'succeeded') > 0)
           FROM taskguard.task WHERE queue = 'demo'")" "0 true" \
   "the example worked tasks, and its SIGTERM left none running"

# -- Node: npm ci, then the example drains the queue --------------------------------------
q "SELECT count(*) FROM (SELECT taskguard.enqueue('send_email', jsonb_build_object('to', 'r' || i || '@example.com'))
     FROM generate_series(1, 5) i) s" >/dev/null
if command -v npm >/dev/null; then
    run_blocks node
    is "$(q "SELECT count(*) FROM taskguard.task WHERE queue = 'default' AND task_name = 'send_email' AND status = 'succeeded'")" \
       5 "the Node example (PGUSER from the environment) drained the queue"
else
    ok 0 "# SKIP npm is not installed"
fi

# -- Celery: python3 -m celery, the dispatcher and the sender ----------------------------
if /usr/bin/python3 -c 'import celery' 2>/dev/null; then
    run_blocks celery
    grep -q "task_name" "$W/celery-1.out"
    ok $? "and its psql shows the DLQ"
else
    ok 0 "# SKIP python3-celery is not installed"
fi

# -- the main README's client section: its inline command without placeholders -----------
cmd=$(awk '/^## Using taskguard from your language/ {s = 1; next} s && /^## / {exit} s {print}' "$ROOT/README.md" |
      tr '\n' ' ' | grep -o '`python3 -m venv[^`]*`' | tr -d '`')
ok "$([ -n "$cmd" ]; echo $?)" "the main README names the Python install command"
rm -rf "$W/.venv"
(cd "$W" && bash -ec "$cmd") >"$W/main.out" 2>&1
rc=$?
[ $rc -eq 0 ] || tail -10 "$W/main.out" | sed 's/^/#   /'
ok $rc "README.md: '$cmd' runs as written from the repository root"
done_testing
