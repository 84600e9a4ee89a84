-- retry: backoff() and retry_decision() (docs/reference.md#retry)
\set VERBOSITY terse
-- jitter none: exact nominal values, min(cap, base * multiplier^(attempt-1))
SELECT a, taskguard.backoff(a, '1 second', '1 hour', 2, 'none') FROM generate_series(1, 14) a;
SELECT taskguard.backoff(3, '2 seconds', '5 minutes', 1.5, 'none') AS "4.5s",
       taskguard.backoff(10, '1 second', '1 hour', 1, 'none') AS "mult 1",
       taskguard.backoff(5, '0', '1 hour', 2, 'none') AS "base 0",
       taskguard.backoff(1, '250 ms', '1 hour', 2, 'none') AS "250ms",
       taskguard.backoff(2, '1 month', '1 year', 2, 'none') AS "60 days",
       taskguard.backoff(1, '1 year', '2 years', 2, 'none') AS "365.25 days";
-- no overflow: attempt 2^31-1 gives the cap
SELECT taskguard.backoff(2147483647, '1 second', '1 hour', 2, 'none') AS cap,
       taskguard.backoff(2147483647, '1 second', '1 hour', 1e300, 'none') AS cap_huge_multiplier,
       taskguard.backoff(2147483647, '1 second', '1 hour', 2, 'full') <= '1 hour' AS full_le_cap,
       taskguard.backoff(2147483647, '1 second', '1 hour') <= '1 hour' AS defaults;
-- a result beyond the interval range is capped
SELECT taskguard.backoff(2147483647, '1 second', '178000000 years', 2, 'none') AS huge_cap;
SELECT taskguard.backoff(40, '1 second', '200000 years', 2, 'none') AS days_and_time;
-- full jitter: uniform in [0, nominal]; equal: uniform in [nominal/2, nominal]
SELECT min(s) >= 0 AS lo, max(s) <= 8 AS hi, avg(s) BETWEEN 3.7 AND 4.3 AS mean_half,
       min(s) < 0.2 AS reaches_low, max(s) > 7.8 AS reaches_high, count(DISTINCT s) > 4900 AS spread
  FROM (SELECT extract(epoch FROM taskguard.backoff(4, '1 second', '1 hour', 2, 'full')) s
          FROM generate_series(1, 5000)) x;
SELECT min(s) >= 4 AS lo, max(s) <= 8 AS hi, avg(s) BETWEEN 5.8 AND 6.2 AS mean_three_quarters,
       min(s) < 4.1 AS reaches_low, max(s) > 7.9 AS reaches_high, count(DISTINCT s) > 4900 AS spread
  FROM (SELECT extract(epoch FROM taskguard.backoff(4, '1 second', '1 hour', 2, 'equal')) s
          FROM generate_series(1, 5000)) x;
-- deciles of full jitter are roughly even (each between 8 % and 12 % of the samples)
SELECT bool_and(c BETWEEN 400 AND 600) AS even
  FROM (SELECT width_bucket(extract(epoch FROM taskguard.backoff(1, '10 seconds', '1 hour', 2, 'full')), 0, 10, 10) b,
               count(*) c
          FROM generate_series(1, 5000) GROUP BY 1) x;
-- at the cap, jitter applies to the cap
SELECT max(extract(epoch FROM taskguard.backoff(30, '1 second', '1 minute', 2, 'equal'))) <= 60 AS capped,
       min(extract(epoch FROM taskguard.backoff(30, '1 second', '1 minute', 2, 'equal'))) >= 30 AS half
  FROM generate_series(1, 1000);
-- every invalid argument is refused with invalid_parameter_value naming it
\set VERBOSITY default
SELECT taskguard.backoff(0);
\set VERBOSITY terse
SELECT taskguard.backoff(-2147483648);
SELECT taskguard.backoff(1, '-1 second');
SELECT taskguard.backoff(1, '1 month -31 days');
SELECT taskguard.backoff(1, '1 minute', '1 second');
SELECT taskguard.backoff(1, '1 second', '1 hour', 0.5);
SELECT taskguard.backoff(1, '1 second', '1 hour', 'NaN');
SELECT taskguard.backoff(1, '1 second', '1 hour', 'Infinity');
SELECT taskguard.backoff(1, '1 second', '1 hour', '-Infinity');
SELECT taskguard.backoff(1, '1 second', '1 hour', 2, 'bogus');
SELECT taskguard.backoff(1, '1 second', '1 hour', 2, '');
SELECT taskguard.backoff(1, '1 second', '1 hour', 2, 'FULL');
-- NULL arguments: STRICT, the result is NULL
SELECT taskguard.backoff(NULL) IS NULL AS n1, taskguard.backoff(1, NULL) IS NULL AS n2,
       taskguard.backoff(1, '1 s', NULL) IS NULL AS n3, taskguard.backoff(1, '1 s', '1 h', NULL) IS NULL AS n4,
       taskguard.backoff(1, '1 s', '1 h', 2, NULL) IS NULL AS n5;

-- retry_decision: retries while retryable and retry_count < max_retries
SELECT t, d.should_retry, d.reason
  FROM unnest(enum_range(NULL::taskguard.failure_type)) t, taskguard.retry_decision(t, 0) d ORDER BY t;
SELECT rc, d.should_retry, d.delay <= '1 minute' AS within_cap, d.reason
  FROM generate_series(0, 6) rc, taskguard.retry_decision('TRANSIENT_DATABASE', rc) d ORDER BY rc;
-- delay follows the policy's backoff; next_retry_at = now() + delay
INSERT INTO taskguard.retry_policy (failure_type, task_name, jitter, max_retries)
VALUES ('TRANSIENT_NETWORK', 'exact', 'none', 20);
SELECT rc, d.delay, d.next_retry_at = now() + d.delay AS at_now_plus_delay, d.reason
  FROM generate_series(0, 9) rc, taskguard.retry_decision('TRANSIENT_NETWORK', rc, 'exact') d ORDER BY rc;
-- the override applies only to its task
SELECT (taskguard.retry_decision('TRANSIENT_NETWORK', 6, 'exact')).should_retry AS override,
       (taskguard.retry_decision('TRANSIENT_NETWORK', 6, 'other')).should_retry AS default_policy,
       (taskguard.retry_decision('TRANSIENT_NETWORK', 6)).should_retry AS no_task;
-- Retry-After is a floor, even above the cap; below the backoff it changes nothing
SELECT d.delay, d.reason FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'exact', '{"retry_after_seconds": 7200}') d;
SELECT d.delay, d.reason FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'exact', '{"retry_after_seconds": "90"}') d;
SELECT d.delay, d.reason FROM taskguard.retry_decision('TRANSIENT_NETWORK', 3, 'exact', '{"retry_after_seconds": 1}') d;
SELECT d.delay >= '2 hours' AS floored FROM taskguard.retry_decision('TRANSIENT_DATABASE', 2, NULL, '{"retry_after_seconds": 7200}') d;
-- ... but never revives a decision not to retry
SELECT d.should_retry, d.delay, d.reason FROM taskguard.retry_decision('PERMANENT_NOT_FOUND', 0, NULL, '{"retry_after_seconds": 5}') d;
-- unusable Retry-After values are ignored
SELECT d.delay, d.reason FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'exact', '{"retry_after_seconds": -5}') d;
SELECT d.delay, d.reason FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'exact', '{"retry_after_seconds": "soon"}') d;
SELECT d.delay, d.reason FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'exact', '{"retry_after_seconds": [1]}') d;
SELECT d.delay, d.reason FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'exact', '[1]') d;
-- a huge Retry-After: capped at 30 days (issue 16: never 'not retried, not abandoned')
SELECT d.delay, d.next_retry_at = now() + interval '30 days' AS in_30_days FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'exact', '{"retry_after_seconds": 1e30}') d;
-- NULL failure_type counts as UNKNOWN, NULL retry_count as 0; a negative retry_count is refused
SELECT d.should_retry, d.reason FROM taskguard.retry_decision(NULL, NULL) d;
SELECT d.should_retry, d.reason FROM taskguard.retry_decision('UNKNOWN', 2147483647) d;
SELECT * FROM taskguard.retry_decision('UNKNOWN', -1);
SELECT * FROM taskguard.retry_decision('NOT_A_TYPE', 0);
-- policy edits take effect at once
UPDATE taskguard.retry_policy SET retryable = false WHERE failure_type = 'TRANSIENT_NETWORK' AND task_name = 'exact';
SELECT d.should_retry, d.reason FROM taskguard.retry_decision('TRANSIENT_NETWORK', 0, 'exact') d;
DELETE FROM taskguard.retry_policy WHERE task_name IS NOT NULL;
-- bad policy rows are refused
INSERT INTO taskguard.retry_policy (failure_type, task_name, multiplier) VALUES ('UNKNOWN', 'x', 'NaN');
INSERT INTO taskguard.retry_policy (failure_type, task_name, jitter) VALUES ('UNKNOWN', 'x', 'random');
INSERT INTO taskguard.retry_policy (failure_type, task_name, base_delay, max_delay) VALUES ('UNKNOWN', 'x', '1 hour', '1 minute');
INSERT INTO taskguard.retry_policy (failure_type, task_name, max_retries) VALUES ('UNKNOWN', 'x', -1);
INSERT INTO taskguard.retry_policy (failure_type) VALUES ('UNKNOWN');
INSERT INTO taskguard.retry_policy (failure_type, task_name) VALUES ('UNKNOWN', 'x'), ('UNKNOWN', 'x');
