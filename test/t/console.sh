#!/usr/bin/env bash
# console: the operator console (console/, issue 25) on demo-like data in its
# own database, driven by Debian's Chromium headless (console/test/e2e.js):
# every page shows the views' numbers, each action works and shows in the
# tables, a reader sees no action and its forged POST is refused by
# PostgreSQL, a tenant-bound login sees only its tenant, a POST without the
# CSRF token is refused.  Sign-in is real: pg_hba.conf asks these roles for
# their scram passwords.  Screenshots go to $TG_WORK/console (TG_KEEP=1 keeps
# them); TG_CONSOLE_DOCS=1 also copies them to docs/console/ for the README.
. "$(dirname "$0")/../lib/tap.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/console
# make test must run this test: a missing browser or node is a failure, not a skip
command -v node >/dev/null || { echo "Bail out! node is not installed (Debian package nodejs)"; exit 1; }
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "Bail out! $chromium is missing (Debian package chromium)"; exit 1; }
if [ ! -d "$dir/node_modules/pg" ] || [ ! -d "$dir/node_modules/playwright-core" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
        { echo "Bail out! npm ci of console/ failed"; exit 1; }
fi
out=$TG_WORK/console
mkdir -p "$out"
DBN=taskguard_console
hba=$TG_DATA/pg_hba.conf
cpid=

cleanup() {
    [ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
    if [ -f "$hba.console-saved" ]; then
        cp "$hba.console-saved" "$hba" && rm -f "$hba.console-saved"
        tg_as_pg "$TG_BIN/pg_ctl" -D "$TG_DATA" reload >/dev/null
    fi
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DBN WITH (FORCE)" >/dev/null 2>&1
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS tgc_admin" -c "DROP ROLE IF EXISTS tgc_reader" \
        -c "DROP ROLE IF EXISTS tgc_acme" >/dev/null 2>&1
}
trap cleanup EXIT

psql -X -q -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || { echo "Bail out! could not set up $DBN"; exit 1; }
DROP DATABASE IF EXISTS $DBN WITH (FORCE);
CREATE DATABASE $DBN;
DROP ROLE IF EXISTS tgc_admin; DROP ROLE IF EXISTS tgc_reader; DROP ROLE IF EXISTS tgc_acme;
CREATE ROLE tgc_admin LOGIN PASSWORD 'admin-pw';
CREATE ROLE tgc_reader LOGIN PASSWORD 'reader-pw';
CREATE ROLE tgc_acme LOGIN PASSWORD 'acme-pw';
SQL
DB=$DBN q "CREATE EXTENSION taskguard" >/dev/null
DB=$DBN q "SELECT taskguard.grant_access('tgc_admin', 'admin'), taskguard.grant_access('tgc_reader', 'reader'),
                  taskguard.grant_access('tgc_acme', 'admin');
           INSERT INTO taskguard.tenant_member VALUES ('tgc_acme', 'acme')" >/dev/null
psql -X -q -d "$DBN" -f "$dir/test/data.sql" >"$out/data.log" 2>&1
ok $? "demo-like data loaded into $DBN"

# these three roles sign in with their passwords over TCP (the rest of the
# test cluster trusts local connections): the console's sign-in is PostgreSQL's
cp "$hba" "$hba.console-saved"
{ echo "host $DBN tgc_admin,tgc_reader,tgc_acme 127.0.0.1/32 scram-sha-256"; cat "$hba.console-saved"; } > "$hba"
tg_as_pg "$TG_BIN/pg_ctl" -D "$TG_DATA" reload >/dev/null
tg_wait_for 10 "SELECT count(*) > 0 FROM pg_hba_file_rules WHERE 'tgc_reader' = ANY(user_name)" postgres
ok $? "pg_hba.conf asks the console's test roles for passwords"

cport=$(tg_pick_port)
(cd "$dir" && PGHOST=127.0.0.1 PGDATABASE=$DBN TG_CONSOLE_PORT=$cport TG_CONSOLE_LOG=1 exec node server.js) \
    >"$out/console.log" 2>&1 &
cpid=$!
end=$(( $(date +%s) + 20 ))
until grep -q "taskguard console on" "$out/console.log" 2>/dev/null || [ "$(date +%s)" -gt "$end" ]; do sleep 0.1; done
grep -q "taskguard console on" "$out/console.log"
ok $? "the console serves on port $cport"

docs=
[ "${TG_CONSOLE_DOCS:-}" = 1 ] && { docs=$root/docs/console; mkdir -p "$docs"; }
echo "# screenshots: $out${docs:+ and $docs}"
CONSOLE_URL=http://127.0.0.1:$cport OUT=$out DOCS=$docs PGDATABASE=$DBN CHROMIUM=$chromium \
    timeout 120 node "$dir/test/e2e.js" > "$out/e2e.tap" 2>"$out/e2e.err"
rc=$?
# the browser run's own TAP lines, renumbered into this script's
while IFS= read -r line; do
    case "$line" in
    "ok "*)     ok 0 "${line#ok * - }" ;;
    "not ok "*) ok 1 "${line#not ok * - }" ;;
    "#"*)       echo "$line" ;;
    esac
done < "$out/e2e.tap"
[ -s "$out/e2e.err" ] && sed 's/^/# /' "$out/e2e.err" | head -20
ok "$rc" "the browser run finished cleanly"
ls "$out"/*.png >/dev/null 2>&1
ok $? "screenshots saved ($(ls "$out"/*.png 2>/dev/null | wc -l) in $out)"
# an empty password never borrows the console's own: with socket sign-in on
# and PGPASSWORD (or a ~/.pgpass) in the console's environment, a stranger
# who leaves the password empty is still asked for the role's password
kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null
cport2=$(tg_pick_port)
(cd "$dir" && PGHOST=127.0.0.1 PGDATABASE=$DBN PGPASSWORD=admin-pw TG_CONSOLE_SOCKET_LOGIN=1 \
    TG_CONSOLE_PORT=$cport2 exec node server.js) >"$out/console-socket.log" 2>&1 &
cpid=$!
end=$(( $(date +%s) + 20 ))
until grep -q "taskguard console on" "$out/console-socket.log" 2>/dev/null || [ "$(date +%s)" -gt "$end" ]; do sleep 0.1; done
jar=$out/socket-login.cookies
tok=$(curl -s -c "$jar" "http://127.0.0.1:$cport2/login" | sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' | head -1)
code=$(curl -s -b "$jar" -o "$out/socket-login.html" -w '%{http_code}' --data-urlencode "_csrf=$tok" \
       -d role=tgc_admin -d password= "http://127.0.0.1:$cport2/login")
is "$code" 401 "an empty password does not sign in with the console's PGPASSWORD (scram asks the role's own)"

slow=$(awk '/^GET \/dlq/ { split($0, a, "total;dur="); if (a[2] + 0 > 300) print }' "$out/console.log")
is "$slow" "" "every DLQ page took under 300 ms server time"
done_testing
