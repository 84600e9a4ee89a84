#!/usr/bin/env bash
# Circuit breakers under concurrency: 8 sessions record failures and ask
# allow() at once; no count is lost, the breaker opens exactly when the
# threshold is reached, and probes are handed out at most
# half_open_max_calls times in a round, however many sessions ask.
. "$(dirname "$0")/../lib/tap.sh"

q "INSERT INTO taskguard.breaker_config (service, failure_threshold, \"window\", cooldown, half_open_max_calls)
   VALUES ('cc_count', 1000000, '1 hour', '1 hour', 3), ('cc_probe', 1, '1 hour', '1 hour', 3)
   ON CONFLICT (service) DO UPDATE SET failure_threshold = EXCLUDED.failure_threshold,
       \"window\" = EXCLUDED.\"window\", cooldown = EXCLUDED.cooldown,
       half_open_max_calls = EXCLUDED.half_open_max_calls" >/dev/null
q "SELECT taskguard.breaker_reset('cc_count'), taskguard.breaker_reset('cc_probe')" >/dev/null

for i in $(seq 1 8); do
    psql -X -q -At -d taskguard -c "SELECT count(taskguard.breaker_record('cc_count', false))
        FROM generate_series(1, 2000)" -c "SELECT count(*) FILTER (WHERE taskguard.breaker_allow('cc_count'))
        FROM generate_series(1, 2000)" >/dev/null &
done
wait
is "$(q "SELECT state || ':' || failures FROM taskguard.breaker_status WHERE service = 'cc_count'")" \
   "closed:16000" "8 x 2000 concurrent failures: none lost"

# an open breaker whose cooldown has passed: 8 sessions race for 3 probes
q "SELECT taskguard.breaker_record('cc_probe', false)" >/dev/null
q "UPDATE taskguard.breaker_config SET cooldown = '0' WHERE service = 'cc_probe'" >/dev/null
out=$TG_WORK/breaker_probes
rm -f "$out".*
for i in $(seq 1 8); do
    psql -X -q -At -d taskguard -c "SELECT count(*) FILTER (WHERE taskguard.breaker_allow('cc_probe'))
        FROM generate_series(1, 500)" >"$out.$i" &
done
wait
is "$(cat "$out".* | awk "{s += \$1} END {print s}")" "3" "exactly half_open_max_calls probes went through"
is "$(q "SELECT state FROM taskguard.breaker_status WHERE service = 'cc_probe'")" "half_open" "the breaker is half-open"
! grep -E 'TRAP:|terminated by signal|PANIC' "$TG_LOGFILE" >/dev/null
ok $? "no crash in the server log"

q "SELECT taskguard.breaker_reset('cc_count'), taskguard.breaker_reset('cc_probe')" >/dev/null
q "DELETE FROM taskguard.breaker_config WHERE service LIKE 'cc\_%'" >/dev/null
done_testing
