#!/usr/bin/env bash
# The scheduler's idle wait (src/compat.h): a named wait event on PostgreSQL
# 17+, so pg_stat_activity says what it waits for; the generic "Extension"
# before.  Runs in the harness's cluster.
. "$(dirname "$0")/../lib/tap.sh"

if [ "$(q "SHOW server_version_num")" -ge 170000 ]; then want=TaskguardScheduler; else want=Extension; fi
ok "$(tg_wait_for 10 "SELECT count(*) > 0 FROM pg_stat_activity
                       WHERE backend_type = 'taskguard scheduler' AND wait_event_type = 'Extension'
                         AND wait_event = '$want'"; echo $?)" \
   "the scheduler waits on wait event $want (server $(q "SHOW server_version"))"
done_testing
