# test/lib/tap.sh — minimal TAP for the shell tests under test/t (run by prove).
# The harness exports PGHOST/PGPORT/PGUSER, TG_BIN, TG_DATA and TG_LOGFILE.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
TAP_N=0
TAP_FAILED=0
plan() { echo "1..$1"; }
ok() {  # ok CONDITION-EXIT-CODE DESCRIPTION
    TAP_N=$((TAP_N + 1))
    if [ "$1" -eq 0 ]; then echo "ok $TAP_N - $2"; else echo "not ok $TAP_N - $2"; TAP_FAILED=1; fi
}
is() {  # is GOT EXPECTED DESCRIPTION
    TAP_N=$((TAP_N + 1))
    if [ "$1" = "$2" ]; then echo "ok $TAP_N - $3"
    else echo "not ok $TAP_N - $3"; echo "#   got: '$1'"; echo "#   expected: '$2'"; TAP_FAILED=1; fi
}
q() { psql -X -At -v ON_ERROR_STOP=1 -d "${DB:-taskguard}" -c "$1"; }
done_testing() { echo "1..$TAP_N"; exit $TAP_FAILED; }
