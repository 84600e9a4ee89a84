#!/usr/bin/env bash
# The harness is a guest (issue 23): `make demo` runs beside another cluster
# (the harness's own, running now) and leaves it untouched — same postmaster,
# same library, no port or directory taken from it — installs nothing
# system-wide, and leaves nothing running: at its end by default, and after
# `make demo-stop` when TG_DEMO_KEEP=1 kept it.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."

pid_before=$(head -1 "$TG_DATA/postmaster.pid")
ourlib=$("$TG_BIN/pg_config" --pkglibdir)/taskguard.so
syslib=/usr/lib/postgresql/$TG_PGVER/lib/taskguard.so
sum() { [ -f "$1" ] && md5sum < "$1" | cut -c1-32 || echo absent; }
our_before=$(sum "$ourlib"); sys_before=$(sum "$syslib")
debian_before=$(pg_lsclusters -h 2>/dev/null | awk '{print $1 "/" $2 ":" $4}' | tr '\n' ' ')

out=$(env -u PGHOST -u PGPORT -u TG_DATA -u TG_BIN -u TG_LOGFILE make -s demo 2>&1)
ok $? "make demo runs beside another cluster"
echo "$out" | grep -q "health_score" && echo "$out" | grep -q "The demo cluster was stopped"
ok $? "it shows the dashboard and says it stopped its cluster"
is "$(head -1 "$TG_DATA/postmaster.pid")" "$pid_before" "the other cluster's postmaster is the same process"
is "$(q "SELECT 1")" "1" "and it still answers"
is "$(sum "$ourlib")" "$our_before" "the other cluster's taskguard library is untouched"
is "$(sum "$syslib")" "$sys_before" "nothing was installed system-wide"
is "$(pg_lsclusters -h 2>/dev/null | awk '{print $1 "/" $2 ":" $4}' | tr '\n' ' ')" "$debian_before" \
   "Debian's clusters are as they were"
# (only this demo's own directory is looked at: other demos may run on the host)
demo_dir=$(echo "$out" | sed -n 's/.*was stopped and \(\/tmp\/taskguard-demo\.[A-Za-z0-9]*\) removed.*/\1/p')
ok "$([ -n "$demo_dir" ] && [ ! -e "$demo_dir" ]; echo $?)" "the demo removed the directory it made (${demo_dir:-none})"
is "$(pgrep -f "${demo_dir:-none}/" | wc -l)" "0" "nothing of the demo is left running"

out=$(env -u PGHOST -u PGPORT -u TG_DATA -u TG_BIN -u TG_LOGFILE TG_DEMO_KEEP=1 make -s demo 2>&1)
ok $? "TG_DEMO_KEEP=1 make demo"
dir=$(cat .demo-cluster 2>/dev/null)
ok "$([ -n "$dir" ] && pgrep -f "$dir/pg/data" >/dev/null; echo $?)" "keeps its cluster running"
ok "$(grep -q 'scram-sha-256' "$dir/pg/data/pg_hba.conf" && ! grep -Eq '^(local|host).*trust' "$dir/pg/data/pg_hba.conf"; echo $?)" \
   "the kept demo cluster asks for a password (scram), trusting nobody"
make -s demo-stop >/dev/null 2>&1
ok $? "make demo-stop"
is "$(pgrep -f "${dir:-none}/pg/data" | wc -l)" "0" "nothing is left running after make demo-stop"
ok "$([ ! -e "$dir" ] && [ ! -e .demo-cluster ]; echo $?)" "and its directory is gone"
is "$(head -1 "$TG_DATA/postmaster.pid")" "$pid_before" "the other cluster is still the same process"
done_testing
