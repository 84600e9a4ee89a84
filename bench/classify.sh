#!/usr/bin/env bash
# bench/classify.sh — classify() against md5() over the same 1 M realistic
# failures (error type, message, context) in the same run.  Prints
#   metric: md5_ms N   metric: classify_ms N   metric: classify_ns_per_row N
#   ratio: classify_vs_md5 X          (goal <= 3)
# After a warm-up, 5 rounds of md5 then classify; the ratio is the median of
# the per-round ratios (robust to a loaded machine).  Parallel query is off so
# both measure one backend's per-row cost.
set -euo pipefail
ROWS=${TG_BENCH_CLASSIFY_ROWS:-1000000}
DB=${DB:-taskguard}
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" <<SQL >/dev/null
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_failures;
CREATE TABLE bench_failures (error_type text, message text, context jsonb);
WITH k(i, error_type, message, context) AS (VALUES
  (0, 'requests.exceptions.ConnectionError', 'HTTPSConnectionPool(host=''api.example.com'', port=443): Max retries exceeded with url: /v1/charge (Caused by NewConnectionError: Failed to establish a new connection: [Errno 111] Connection refused)', '{}'),
  (1, 'psycopg2.errors.DeadlockDetected', 'deadlock detected DETAIL: Process 4711 waits for ShareLock on transaction 99; blocked by process 4712.', '{"sqlstate": "40P01"}'),
  (2, 'requests.exceptions.HTTPError', '429 Client Error: Too Many Requests for url: https://api.example.com/v1/items?page=', '{"http_status": 429, "retry_after_seconds": 30}'),
  (3, 'ValueError', 'invalid literal for int() with base 10: ''abc''', '{}'),
  (4, 'shop.models.Order.DoesNotExist', 'Order matching query does not exist.', '{}'),
  (5, 'java.net.SocketTimeoutException', 'Read timed out while reading response from payments-gateway:8443', '{}'),
  (6, 'ECONNRESET', 'read ECONNRESET at TLSWrap.onStreamRead (node:internal/stream_base_commons:217:20)', '{}'),
  (7, 'stripe.error.CardError', 'Your card has insufficient funds.', '{"http_status": 402}'),
  (8, 'botocore.exceptions.ClientError', 'An error occurred (AccessDenied) when calling the PutObject operation: Access Denied', '{}'),
  (9, 'RuntimeError', 'worker crashed unexpectedly while rendering report; see logs for details', '{}'),
  (10, 'HTTPError', '503 Service Unavailable: upstream connect error or disconnect/reset before headers', '{"http_status": 503}'),
  (11, 'MemoryError', 'Unable to allocate 2.00 GiB for an array with shape (16384, 16384)', '{}'))
INSERT INTO bench_failures
SELECT k.error_type, k.message || ' #' || g, k.context::jsonb
  FROM generate_series(1, $ROWS) g JOIN k ON k.i = g % 12;
VACUUM ANALYZE bench_failures;
SQL
psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" <<'SQL'
SET max_parallel_workers_per_gather = 0;
CREATE FUNCTION pg_temp.ms(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz;
BEGIN
    t0 := clock_timestamp();
    EXECUTE q;
    RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$;
-- warm-up (cache load, hint bits), then 5 rounds of md5 and classify back to
-- back, so that both see the same machine load; the ratio is the median of
-- the per-round ratios.
SELECT pg_temp.ms('SELECT count(md5(message)) FROM bench_failures')
     + pg_temp.ms('SELECT count(taskguard.classify(error_type, message, context)) FROM bench_failures') AS warm \gset
CREATE TEMP TABLE rounds AS
SELECT r, pg_temp.ms('SELECT count(md5(message)) FROM bench_failures') AS md5,
          pg_temp.ms('SELECT count(taskguard.classify(error_type, message, context)) FROM bench_failures') AS cls
  FROM generate_series(1, 5) r;
SELECT count(*) AS n FROM bench_failures \gset
SELECT format('metric: classify_rows %s', :n);
SELECT format('metric: md5_ms %s', round(min(md5)::numeric, 1)) FROM rounds;
SELECT format('metric: classify_ms %s', round(min(cls)::numeric, 1)) FROM rounds;
SELECT format('metric: classify_ns_per_row %s', round((min(cls) * 1e6 / :n)::numeric, 0)) FROM rounds;
SELECT format('ratio: classify_vs_md5 %s',
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY cls / md5)::numeric, 2)) FROM rounds;
SQL
psql -X -q -d "$DB" -c "DROP TABLE bench_failures"
