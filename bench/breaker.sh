#!/usr/bin/env bash
# bench/breaker.sh — the cost of one taskguard.breaker_allow() call.
#   metric: breaker_allow_us X       (goal <= 2)
# X = (time of SELECT count(taskguard.breaker_allow('svc' || (i % 100)))
#      FROM generate_series(1, 1000000) i
#      − time of the same query with octet_length() in place of
#        breaker_allow(), a built-in C function of the same text argument)
#     / 1,000,000.
# Each query runs 3 times; the best time counts.  Also measured the same way:
# breaker_allow_live_us (the 100 services have live, closed breakers) and
# breaker_is_open_us (claim()'s check, _breaker_is_open, on those breakers).
set -euo pipefail
ROWS=${TG_BENCH_BREAKER_ROWS:-1000000}
DB=${DB:-taskguard}
psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" <<SQL
SET max_parallel_workers_per_gather = 0;
CREATE FUNCTION pg_temp.best_ms(q text) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best float8 := 'Infinity';
BEGIN
    FOR i IN 1..3 LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
    RETURN best;
END \$\$;
SELECT count(taskguard.breaker_reset('svc' || i)) FROM generate_series(0, 99) i \gset
SELECT pg_temp.best_ms('SELECT count(octet_length(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i') AS base \gset
SELECT pg_temp.best_ms('SELECT count(taskguard.breaker_allow(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i') AS allow \gset
-- the same 100 services with a live closed breaker each (one failure recorded)
SELECT count(taskguard.breaker_record('svc' || i, false)) FROM generate_series(0, 99) i \gset
SELECT pg_temp.best_ms('SELECT count(taskguard.breaker_allow(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i') AS live \gset
SELECT pg_temp.best_ms('SELECT count(taskguard._breaker_is_open(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i') AS isopen \gset
SELECT count(taskguard.breaker_reset('svc' || i)) FROM generate_series(0, 99) i \gset
SELECT format('metric: breaker_baseline_ms %s', round(:base::numeric, 1));
SELECT format('metric: breaker_allow_ms %s', round(:allow::numeric, 1));
SELECT format('metric: breaker_allow_us %s', round(((:allow - :base) * 1000 / $ROWS)::numeric, 3));
SELECT format('metric: breaker_allow_live_us %s', round(((:live - :base) * 1000 / $ROWS)::numeric, 3));
SELECT format('metric: breaker_is_open_us %s', round(((:isopen - :base) * 1000 / $ROWS)::numeric, 3));
SQL
