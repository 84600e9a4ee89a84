#!/usr/bin/env bash
# bench/breaker.sh — the cost of one taskguard.breaker_allow() call.
#   metric: breaker_allow_us X       (goal <= 2)
# X = (time of SELECT count(taskguard.breaker_allow('svc' || (i % 100)))
#      FROM generate_series(1, 1000000) i
#      − time of the same query with octet_length() in place of
#        breaker_allow(), a built-in C function of the same text argument)
#     / 1,000,000.
# The two queries alternate 5 times; the best time of each counts (the
# machine is shared, so the best run is the least disturbed one).  Measured
# the same way, with the 100 services holding live closed breakers:
# breaker_allow_live_us and breaker_is_open_us (claim()'s check).
set -euo pipefail
ROWS=${TG_BENCH_BREAKER_ROWS:-1000000}
RUNS=${TG_BENCH_BREAKER_RUNS:-5}
DB=${DB:-taskguard}
psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" <<SQL
SET max_parallel_workers_per_gather = 0;
-- best time (ms) of each query, running them in turn RUNS times
CREATE FUNCTION pg_temp.best_ms(qs text[]) RETURNS float8[] LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; best float8[] := array_fill('Infinity'::float8, ARRAY[cardinality(qs)]);
BEGIN
    FOR r IN 1..$RUNS LOOP
        FOR k IN 1..cardinality(qs) LOOP
            t0 := clock_timestamp();
            EXECUTE qs[k];
            best[k] := least(best[k], extract(epoch FROM clock_timestamp() - t0) * 1000);
        END LOOP;
    END LOOP;
    RETURN best;
END \$\$;
SELECT count(taskguard.breaker_reset('svc' || i)) FROM generate_series(0, 99) i \gset
SELECT t[1] AS base, t[2] AS allow FROM pg_temp.best_ms(ARRAY[
    'SELECT count(octet_length(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i',
    'SELECT count(taskguard.breaker_allow(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i']) t \gset
-- the same 100 services with a live closed breaker each (one failure recorded)
SELECT count(taskguard.breaker_record('svc' || i, false)) FROM generate_series(0, 99) i \gset
SELECT t[1] AS base2, t[2] AS live, t[3] AS isopen FROM pg_temp.best_ms(ARRAY[
    'SELECT count(octet_length(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i',
    'SELECT count(taskguard.breaker_allow(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i',
    'SELECT count(taskguard._breaker_is_open(''svc'' || (i % 100))) FROM generate_series(1, $ROWS) i']) t \gset
SELECT count(taskguard.breaker_reset('svc' || i)) FROM generate_series(0, 99) i \gset
SELECT format('metric: breaker_baseline_ms %s', round(:base::numeric, 1));
SELECT format('metric: breaker_allow_ms %s', round(:allow::numeric, 1));
SELECT format('metric: breaker_allow_us %s', round(((:allow - :base) * 1000 / $ROWS)::numeric, 3));
SELECT format('metric: breaker_allow_live_us %s', round(((:live - :base2) * 1000 / $ROWS)::numeric, 3));
SELECT format('metric: breaker_is_open_us %s', round(((:isopen - :base2) * 1000 / $ROWS)::numeric, 3));
SQL
