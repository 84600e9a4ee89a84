#!/usr/bin/env bash
# Metrics end to end: promtool accepts prometheus_metrics(); the real
# prometheus-postgres-exporter, run with dashboards/postgres_exporter/queries.yaml
# against this cluster, serves the same metrics under the same names; the scheduler announces
# a new alert on taskguard_alerts once.
. "$(dirname "$0")/../lib/tap.sh"
cd "$(dirname "$0")/../.."
out=$TG_WORK/metrics_exporter
mkdir -p "$out"

# some data with labels worth escaping
q "SELECT taskguard.record_failure('exporter_probe', '{}', 'ConnectionError', 'connection refused')" >/dev/null
q "SELECT taskguard.record_failure(E'probe \"quoted\" \\\\ back', '{}', 'ValueError', 'bad')" >/dev/null
tg_wait_for 10 "SELECT count(*) = 0 FROM taskguard.event_delta" >/dev/null

# 1. promtool check metrics
q "SELECT taskguard.prometheus_metrics()" >"$out/metrics.txt"
promtool check metrics <"$out/metrics.txt" >"$out/promtool.out" 2>&1
ok $? "promtool check metrics accepts prometheus_metrics() ($(grep -c '^# TYPE' "$out/metrics.txt") families)"
[ -s "$out/promtool.out" ] && sed 's/^/# /' "$out/promtool.out"
for m in task_failure_total task_retry_count idempotency_hit_rate_percent dlq_queue_depth \
         schedule_health_score circuit_breaker_state; do
    ok "$(grep -q "^# TYPE ${m%_count}" "$out/metrics.txt"; echo $?)" "metric family of $m is there"
done
is "$(grep -c 'task_failure_total{failure_type="TRANSIENT_NETWORK",task_name="exporter_probe"} [1-9]' "$out/metrics.txt")" 1 \
   "task_failure_total counts the probe's failure"

# 2. the real exporter, on loopback only.  Without its bgwriter collector:
# Debian 12's exporter (0.11) reads pg_stat_bgwriter columns that PostgreSQL
# 17 moved to pg_stat_checkpointer, and logs that as an error on 17+.
port=$(tg_pick_port)
DATA_SOURCE_NAME="host=$PGHOST port=$PGPORT user=postgres dbname=taskguard sslmode=disable" \
    prometheus-postgres-exporter --web.listen-address="127.0.0.1:$port" \
    --extend.query-path=dashboards/postgres_exporter/queries.yaml \
    --no-collector.bgwriter \
    --disable-settings-metrics --log.level=warn >"$out/exporter.log" 2>&1 &
exporter=$!
trap 'kill "$exporter" 2>/dev/null; wait "$exporter" 2>/dev/null' EXIT
scrape() { curl -s --max-time 5 "http://127.0.0.1:$port/metrics" >"$out/scrape.txt" 2>/dev/null; }
deadline=$(( $(date +%s) + 20 ))
until scrape && grep -q '^taskguard_health_score' "$out/scrape.txt"; do
    [ "$(date +%s)" -gt "$deadline" ] && break
    sleep 0.2
done
ok "$(grep -q '^taskguard_health_score' "$out/scrape.txt"; echo $?)" "the exporter serves taskguard_health_score"
for m in task_failure_total task_retry_count idempotency_hit_rate_percent dlq_queue_depth \
         schedule_health_score taskguard_tasks taskguard_transient_retry_success_percent; do
    ok "$(grep -q "^$m" "$out/scrape.txt"; echo $?)" "the exporter serves $m"
done
is "$(grep -c '^task_failure_total{.*task_name="exporter_probe".*} [1-9]' "$out/scrape.txt")" 1 \
   "the probe's failure is a labelled counter"
# One metric name set: the exporter and prometheus_metrics() publish the same
# series (name, labels in any order) with the same values.
q "SELECT taskguard.prometheus_metrics()" >"$out/metrics2.txt"
norm() {  # one sorted line per sample: name{label="v",...} value (labels sorted, server dropped)
    grep -v '^#' | grep -E '^(task_|dlq_|idempotency_|schedule_health|circuit_breaker|taskguard_)' |
    perl -ne 'chomp; /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/ or next;
        my ($n, $l, $v) = ($1, $3 // "", $4);
        my @l = grep { !/^server=/ } ($l =~ /([a-zA-Z_]+="(?:[^"\\]|\\.)*")/g);
        $v = $v eq "NaN" ? "NaN" : sprintf("%.6g", $v);
        print $n, (@l ? "{" . join(",", sort @l) . "}" : ""), " $v\n";' | sort
}
# (a scrape before and one after the call: a value that changed in between,
# such as a breaker window ending, matches one of them)
cp "$out/scrape.txt" "$out/scrape_before.txt"; scrape
norm <"$out/metrics2.txt" >"$out/from_function.txt"
norm <"$out/scrape_before.txt" >"$out/from_exporter.txt"
norm <"$out/scrape.txt" >"$out/from_exporter_after.txt"
d1=$(diff "$out/from_function.txt" "$out/from_exporter.txt" | grep '^[<>]' | head -10)
d2=$(diff "$out/from_function.txt" "$out/from_exporter_after.txt" | grep '^[<>]' | head -10)
is "$([ -z "$d1" ] || [ -z "$d2" ] || echo "$d1")" "" \
   "prometheus_metrics() and the exporter publish the same $(wc -l <"$out/from_function.txt") series under the same names"
is "$(grep -E '^pg_exporter_user_queries_load_error\{' "$out/scrape.txt" | awk '{print $2}' | sort -u)" 0 \
   "the query file loads without errors"
is "$(grep -ci 'error' "$out/exporter.log")" 0 "the exporter logged no query errors"
[ -s "$out/exporter.log" ] && head -5 "$out/exporter.log" | sed 's/^/# /'
is "$(ss -ltnp 2>/dev/null | grep ":$port " | grep -vc '127.0.0.1')" 0 "the exporter listens on 127.0.0.1 only"
kill "$exporter"; wait "$exporter" 2>/dev/null; trap - EXIT

# 3. NOTIFY taskguard_alerts once when an alert starts (the scheduler's alerts step)
q "UPDATE taskguard.alert_threshold SET threshold = 1e15 WHERE alert = 'dlq_depth'" >/dev/null
ok "$(tg_wait_for 10 "SELECT NOT EXISTS (SELECT 1 FROM taskguard.alert_state WHERE alert = 'dlq_depth')"; echo $?)" \
   "with the thresholds raised the depth alert is off"
psql -X -d taskguard -c "LISTEN taskguard_alerts" -c "SELECT pg_sleep(2.5)" -c "SELECT 1" >"$out/listen.out" 2>&1 &
lp=$!
tg_wait_for 5 "SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(2.5)%'" >/dev/null
q "UPDATE taskguard.alert_threshold SET threshold = -1 WHERE alert = 'dlq_depth' AND level = 'warning'" >/dev/null
wait $lp
n=$(grep -c 'notification "taskguard_alerts" with payload ".*dlq_depth' "$out/listen.out")
is "$n" 1 "the depth alert is announced once over several scheduler passes"
ok "$(grep 'taskguard_alerts' "$out/listen.out" | grep -q '"level" : "warning"'; echo $?)" "the payload is JSON with the level"
q "UPDATE taskguard.alert_threshold SET threshold = CASE level WHEN 'warning' THEN 20 ELSE 50 END WHERE alert = 'dlq_depth'" >/dev/null
q "DELETE FROM taskguard.dead_letter WHERE task_name IN ('exporter_probe', E'probe \"quoted\" \\\\ back')" >/dev/null
done_testing
