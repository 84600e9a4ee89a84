#!/usr/bin/env bash
# test/ha/run.sh — `make test-ha`: build, install privately (as the harness
# does), then run the replica/failover test, which makes its own two clusters.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
tg_ensure_deps
tg_build
work=$(mktemp -d /tmp/taskguard-ha.XXXXXX)
chmod 755 "$work"
cleanup() { [ "${TG_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
tg_private_install "$work/inst"
export TG_WORK=$work TG_BIN
prove -v --exec bash ${TG_HA_TESTS:-test/ha/failover.sh}
