-- classify: the evidence layers, confidence, refinement, user rules, bad input
\set VERBOSITY terse
-- Every failure type from at least three ecosystems; each row shows what decided.
CREATE TEMP TABLE cases (n serial, want text, error_type text, message text, context jsonb DEFAULT '{}');
INSERT INTO cases (want, error_type, message, context) VALUES
 ('TRANSIENT_NETWORK', 'requests.exceptions.ConnectionError', 'HTTPSConnectionPool: Max retries exceeded', '{}'),
 ('TRANSIENT_NETWORK', 'java.net.SocketTimeoutException', 'Read timed out', '{}'),
 ('TRANSIENT_NETWORK', 'ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:443', '{}'),
 ('TRANSIENT_NETWORK', '*net.OpError', 'dial tcp: i/o timeout', '{}'),
 ('TRANSIENT_NETWORK', 'Errno::ECONNRESET', 'Connection reset by peer', '{}'),
 ('TRANSIENT_NETWORK', 'System.Net.Sockets.SocketException', 'No route to host', '{}'),
 ('TRANSIENT_NETWORK', 'Exception', 'getaddrinfo: Temporary failure in name resolution', '{}'),
 ('TRANSIENT_DATABASE', 'psycopg2.errors.DeadlockDetected', 'deadlock detected', '{}'),
 ('TRANSIENT_DATABASE', 'org.postgresql.util.PSQLException', 'could not serialize access', '{"sqlstate": "40001"}'),
 ('TRANSIENT_DATABASE', 'org.springframework.dao.CannotAcquireLockException', 'lock timeout', '{}'),
 ('TRANSIENT_DATABASE', 'ActiveRecord::Deadlocked', 'PG::TRDeadlockDetected', '{}'),
 ('TRANSIENT_DATABASE', NULL, 'FATAL: sorry, too many clients already', '{}'),
 ('TRANSIENT_DATABASE', 'django.db.utils.OperationalError', 'server closed the connection unexpectedly', '{}'),
 ('TRANSIENT_RATE_LIMIT', 'requests.exceptions.HTTPError', '429 Client Error', '{"http_status": 429}'),
 ('TRANSIENT_RATE_LIMIT', 'openai.RateLimitError', 'Rate limit reached for requests', '{}'),
 ('TRANSIENT_RATE_LIMIT', 'botocore.exceptions.ClientError', 'An error occurred (ThrottlingException): Rate exceeded', '{}'),
 ('TRANSIENT_RATE_LIMIT', 'Octokit::TooManyRequests', 'API rate limit exceeded', '{}'),
 ('PERMANENT_INVALID_INPUT', 'ValueError', 'invalid literal for int() with base 10', '{}'),
 ('PERMANENT_INVALID_INPUT', 'json.decoder.JSONDecodeError', 'Expecting value: line 1 column 1', '{}'),
 ('PERMANENT_INVALID_INPUT', 'java.lang.IllegalArgumentException', 'amount must be positive', '{}'),
 ('PERMANENT_INVALID_INPUT', 'PG::InvalidTextRepresentation', 'invalid input syntax for type integer', '{"sqlstate": "22P02"}'),
 ('PERMANENT_INVALID_INPUT', 'Error', 'Unprocessable', '{"http_status": 422}'),
 ('PERMANENT_INVALID_INPUT', 'SyntaxError', 'Unexpected token < in JSON at position 0', '{}'),
 ('PERMANENT_NOT_FOUND', 'shop.models.Order.DoesNotExist', 'Order matching query does not exist.', '{}'),
 ('PERMANENT_NOT_FOUND', 'FileNotFoundError', '[Errno 2] No such file or directory', '{}'),
 ('PERMANENT_NOT_FOUND', 'software.amazon.awssdk.services.s3.model.NoSuchKeyException', 'The specified key does not exist', '{}'),
 ('PERMANENT_NOT_FOUND', 'sql.ErrNoRows', 'sql: no rows in result set', '{}'),
 ('PERMANENT_NOT_FOUND', 'HTTPError', 'Not Found', '{"http_status": 404}'),
 ('PERMANENT_AUTHENTICATION', 'HTTPError', 'Unauthorized', '{"http_status": 401}'),
 ('PERMANENT_AUTHENTICATION', 'psycopg.errors.InvalidPassword', 'password authentication failed for user "app"', '{"sqlstate": "28P01"}'),
 ('PERMANENT_AUTHENTICATION', 'jwt.exceptions.ExpiredSignatureError', 'Signature has expired', '{}'),
 ('PERMANENT_AUTHENTICATION', 'org.springframework.security.authentication.BadCredentialsException', 'Bad credentials', '{}'),
 ('PERMANENT_AUTHENTICATION', 'StripeError', 'Invalid API Key provided: sk_test_****', '{}'),
 ('CONFIGURATION_MISSING_ENV', 'django.core.exceptions.ImproperlyConfigured', 'SECRET_KEY must not be empty', '{}'),
 ('CONFIGURATION_MISSING_ENV', 'botocore.exceptions.NoCredentialsError', 'Unable to locate credentials', '{}'),
 ('CONFIGURATION_MISSING_ENV', 'ImportError', 'cannot import name ''x''', '{}'),
 ('CONFIGURATION_MISSING_ENV', 'java.lang.ClassNotFoundException', 'org.postgresql.Driver', '{}'),
 ('CONFIGURATION_MISSING_ENV', 'MODULE_NOT_FOUND', 'Cannot find module ''express''', '{}'),
 ('CONFIGURATION_MISSING_ENV', 'KeyError', 'environment variable DATABASE_URL is not set', '{}'),
 ('CONFIGURATION_PERMISSIONS', 'PermissionError', '[Errno 13] Permission denied: ''/var/log/app''', '{}'),
 ('CONFIGURATION_PERMISSIONS', 'psycopg2.errors.InsufficientPrivilege', 'permission denied for table orders', '{"sqlstate": "42501"}'),
 ('CONFIGURATION_PERMISSIONS', 'java.nio.file.AccessDeniedException', '/data/export.csv', '{}'),
 ('CONFIGURATION_PERMISSIONS', 'EACCES', 'EACCES: permission denied, open ''/etc/x''', '{}'),
 ('CONFIGURATION_PERMISSIONS', 'botocore.exceptions.ClientError', 'User: arn:aws:iam::1:user/x is not authorized to perform: s3:PutObject', '{}'),
 ('EXTERNAL_SERVICE_UNAVAILABLE', 'HTTPError', 'Service Unavailable', '{"http_status": 503}'),
 ('EXTERNAL_SERVICE_UNAVAILABLE', 'Faraday::Error', 'the server responded with status 504', '{"http_status": "504"}'),
 ('EXTERNAL_SERVICE_UNAVAILABLE', 'javax.ws.rs.ServiceUnavailableException', 'HTTP 503', '{}'),
 ('EXTERNAL_SERVICE_UNAVAILABLE', 'Error', '502 Bad Gateway from upstream', '{}'),
 ('EXTERNAL_API_ERROR', 'HTTPError', 'Internal Server Error', '{"http_status": 500}'),
 ('EXTERNAL_API_ERROR', 'HTTPError', 'Bad Gateway', '{"http_status": 502}'),
 ('EXTERNAL_API_ERROR', 'stripe.error.APIError', 'Something went wrong on Stripe''s end', '{}'),
 ('EXTERNAL_API_ERROR', 'RuntimeError', 'provider returned Internal Server Error', '{}'),
 ('SYSTEM_OUT_OF_MEMORY', 'MemoryError', '', '{}'),
 ('SYSTEM_OUT_OF_MEMORY', 'java.lang.OutOfMemoryError', 'Java heap space', '{}'),
 ('SYSTEM_OUT_OF_MEMORY', 'PG::OutOfMemory', 'out of memory', '{"sqlstate": "53200"}'),
 ('SYSTEM_OUT_OF_MEMORY', 'OSError', '[Errno 12] Cannot allocate memory', '{}'),
 ('SYSTEM_DISK_FULL', 'psycopg2.errors.DiskFull', 'could not extend file', '{"sqlstate": "53100"}'),
 ('SYSTEM_DISK_FULL', 'OSError', '[Errno 28] No space left on device', '{}'),
 ('SYSTEM_DISK_FULL', 'ENOSPC', 'ENOSPC: no space left on device, write', '{}'),
 ('SYSTEM_CPU_OVERLOAD', 'celery.exceptions.SoftTimeLimitExceeded', 'SoftTimeLimitExceeded()', '{}'),
 ('SYSTEM_CPU_OVERLOAD', 'java.util.concurrent.RejectedExecutionException', 'Task rejected from pool', '{}'),
 ('SYSTEM_CPU_OVERLOAD', 'RuntimeError', 'load average 48.2 exceeds limit', '{}'),
 ('BUSINESS_LOGIC_VIOLATION', 'psycopg2.errors.UniqueViolation', 'duplicate key value violates unique constraint "x"', '{"sqlstate": "23505"}'),
 ('BUSINESS_LOGIC_VIOLATION', 'PG::RaiseException', 'order already shipped', '{"sqlstate": "P0001"}'),
 ('BUSINESS_LOGIC_VIOLATION', 'django.db.utils.IntegrityError', 'NOT NULL constraint failed', '{}'),
 ('BUSINESS_LOGIC_VIOLATION', 'stripe.error.CardError', 'Your card has insufficient funds.', '{}'),
 ('BUSINESS_LOGIC_VIOLATION', 'Exception', 'business rule: order total exceeds credit line', '{}'),
 ('UNKNOWN', 'Exception', 'something odd happened', '{}'),
 ('UNKNOWN', 'taskguard.LeaseExpired', 'lease expired at 2026-01-01 (worker w1)', '{}'),
 ('UNKNOWN', 'java.lang.RuntimeException', NULL, '{}'),
 ('UNKNOWN', 'StandardError', 'boom', '{"http_status": 302}');
SELECT c.n, c.error_type, r.failure_type, r.confidence, r.remediation, r.retryable, r.alert_level, r.rule
  FROM cases c, taskguard.classify(c.error_type, c.message, c.context) r ORDER BY c.n;
-- every case as expected, and at least three ecosystems per type
SELECT count(*) AS cases, count(*) FILTER (WHERE r.failure_type::text = c.want) AS as_expected
  FROM cases c, taskguard.classify(c.error_type, c.message, c.context) r;
SELECT t AS failure_type, count(c.n) AS cases
  FROM unnest(enum_range(NULL::taskguard.failure_type)) t LEFT JOIN cases c ON c.want = t::text
 GROUP BY t ORDER BY t;

-- Conflicting evidence: the strongest layer decides, disagreeing weaker layers are ignored.
SELECT failure_type, confidence, rule FROM taskguard.classify('ValueError', 'invalid value', '{"sqlstate": "40P01"}');
SELECT failure_type, confidence, rule FROM taskguard.classify('ConnectionError', 'Invalid token', '{"http_status": 503}');
SELECT failure_type, confidence, rule FROM taskguard.classify('ConnectionError', 'Invalid token');
SELECT failure_type, confidence, rule FROM taskguard.classify('Exception', 'invalid token; permission denied');
-- agreeing evidence raises confidence, at most 0.99
SELECT failure_type, confidence, rule FROM taskguard.classify('DeadlockDetected', 'deadlock detected', '{"sqlstate": "40P01"}');
SELECT failure_type, confidence, rule FROM taskguard.classify('ThrottlingException', 'Rate exceeded', '{"http_status": 429}');
SELECT failure_type, confidence, rule FROM taskguard.classify('TimeoutError', 'timed out');
SELECT failure_type, confidence, rule FROM taskguard.classify(NULL, 'connection refused');
-- the most specific message pattern wins
SELECT failure_type, rule FROM taskguard.classify(NULL, '504 Gateway Timeout');
SELECT failure_type, rule FROM taskguard.classify(NULL, 'Invalid API key: not found');
SELECT failure_type, rule FROM taskguard.classify(NULL, 'RATE_LIMIT_EXCEEDED');
-- built-in remediation overrides
SELECT failure_type, remediation FROM taskguard.classify('ModuleNotFoundError', 'No module named ''x''');
SELECT failure_type, remediation FROM taskguard.classify(NULL, 'No module named ''x''');
SELECT failure_type, remediation FROM taskguard.classify('ImproperlyConfigured', 'No module named ''x''');

-- Context refinement: retry_count beyond 2 lowers a transient type's confidence (never below 0.5)
-- and raises its alert level one step at 5.
SELECT rc, r.failure_type, r.confidence, r.alert_level
  FROM generate_series(0, 12, 2) rc,
       taskguard.classify('ConnectionError', 'x', jsonb_build_object('retry_count', rc)) r ORDER BY rc;
SELECT r.confidence, r.alert_level FROM taskguard.classify('ConnectionError', 'x', '{"retry_count": "5"}') r;
SELECT r.confidence, r.alert_level FROM taskguard.classify('RateLimitError', 'x', '{"retry_count": 5}') r;
-- non-transient types are not refined
SELECT r.failure_type, r.confidence, r.alert_level FROM taskguard.classify('ValueError', 'x', '{"retry_count": 10}') r;
-- without a retry_count, sqlstate/HTTP/exception decisions are always >= 0.8
SELECT min(r.confidence) >= 0.8 AS strong_layers_confident, max(r.confidence) <= 0.99::real AS capped
  FROM cases c, taskguard.classify(c.error_type, c.message, c.context) r
 WHERE r.rule ~ '^(sqlstate|http|exception):' AND r.failure_type <> 'UNKNOWN';
SELECT min(r.confidence) >= 0 AND max(r.confidence) <= 1 AS in_bounds
  FROM cases c, generate_series(0, 20) rc,
       taskguard.classify(c.error_type, c.message, c.context || jsonb_build_object('retry_count', rc)) r;

-- NULL, empty and odd inputs are never an error
SELECT * FROM taskguard.classify(NULL);
SELECT * FROM taskguard.classify(NULL, NULL, NULL);
SELECT * FROM taskguard.classify('', '', '{}');
SELECT failure_type, rule FROM taskguard.classify('...', ' ', '[]');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '"scalar"');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '{"sqlstate": 40001}');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '{"sqlstate": "4000"}');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '{"sqlstate": "40p01"}');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '{"http_status": "abc"}');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '{"http_status": 503.5}');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '{"http_status": 1e400}');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '{"http_status": -503}');
SELECT failure_type, confidence FROM taskguard.classify('ConnectionError', 'y', '{"retry_count": -4}');
SELECT failure_type, confidence FROM taskguard.classify('ConnectionError', 'y', '{"retry_count": 1e30}');
SELECT failure_type, confidence FROM taskguard.classify('ConnectionError', 'y', '{"retry_count": "NaN"}');
-- 4 MB inputs: only a bounded prefix (4 kB of each) is looked at
SELECT failure_type, rule FROM taskguard.classify(NULL, repeat('x', 4 * 1024 * 1024) || ' connection refused');
SELECT failure_type, rule FROM taskguard.classify(NULL, 'connection refused ' || repeat('x', 4 * 1024 * 1024));
SELECT failure_type, rule FROM taskguard.classify(repeat('a.', 2 * 1024 * 1024) || 'ValueError', NULL);
SELECT failure_type, rule FROM taskguard.classify(repeat('é', 2 * 1024 * 1024), repeat('é', 2 * 1024 * 1024));
-- a stored (compressed, toasted) 4 MB message
CREATE TEMP TABLE big (m text);
INSERT INTO big VALUES ('deadlock detected ' || repeat('y', 4 * 1024 * 1024));
SELECT r.failure_type, r.rule FROM big, taskguard.classify('x', big.m) r;

-- User rules (layer 1): strongest, every non-NULL condition must hold.
INSERT INTO taskguard.classification_rule (priority, error_type_pattern, message_pattern, failure_type, confidence, description)
VALUES (10, 'PaymentError', 'card.*declined', 'BUSINESS_LOGIC_VIOLATION', 0.97, 'declined cards') RETURNING id AS r_card \gset
INSERT INTO taskguard.classification_rule (priority, error_type_pattern, failure_type, confidence, remediation)
VALUES (20, 'acme.%', 'EXTERNAL_API_ERROR', 0.7, 'ESCALATE_TO_ADMIN') RETURNING id AS r_acme \gset
INSERT INTO taskguard.classification_rule (priority, sqlstate_prefix, http_status_min, http_status_max, failure_type, confidence)
VALUES (30, '57', 500, 599, 'SYSTEM_CPU_OVERLOAD', 0.5) RETURNING id AS r_combo \gset
INSERT INTO taskguard.classification_rule (priority, http_status_min, failure_type, confidence)
VALUES (40, 520, 'EXTERNAL_SERVICE_UNAVAILABLE', 0.3) RETURNING id AS r_cf \gset
-- ILIKE against the last component, case-insensitive regex
SELECT failure_type, confidence, remediation, rule = 'user:' || :r_card AS by_rule
  FROM taskguard.classify('billing.gateway.PaymentError', 'Card was DECLINED by issuer');
-- one condition missing: the rule does not apply, lower priority rule does
SELECT failure_type, confidence, remediation, rule = 'user:' || :r_acme AS by_rule
  FROM taskguard.classify('acme.PaymentError', 'insufficient funds');
SELECT failure_type, rule FROM taskguard.classify('billing.PaymentError', 'timeout');
-- whole-name ILIKE; remediation from the rule
SELECT failure_type, remediation, rule = 'user:' || :r_acme AS by_rule FROM taskguard.classify('ACME.sync', NULL);
-- a user rule agreeing with weaker layers gains confidence
SELECT failure_type, confidence FROM taskguard.classify('acme.InternalServerError', 'Internal Server Error', '{"http_status": 500}');
-- sqlstate prefix and HTTP range together
SELECT failure_type, rule = 'user:' || :r_combo AS by_rule FROM taskguard.classify('x', 'y', '{"sqlstate": "57014", "http_status": 502}');
SELECT failure_type, rule FROM taskguard.classify('x', 'y', '{"sqlstate": "57014"}');
-- open-ended range; low confidence is kept as given, and not raised by retry_count refinement
SELECT failure_type, confidence, rule = 'user:' || :r_cf AS by_rule FROM taskguard.classify('x', 'y', '{"http_status": 599}');
-- bad rules are refused
INSERT INTO taskguard.classification_rule (message_pattern, failure_type) VALUES ('(unclosed', 'UNKNOWN');
INSERT INTO taskguard.classification_rule (failure_type) VALUES ('UNKNOWN');
INSERT INTO taskguard.classification_rule (http_status_min, http_status_max, failure_type) VALUES (500, 400, 'UNKNOWN');
INSERT INTO taskguard.classification_rule (sqlstate_prefix, failure_type) VALUES ('4000001', 'UNKNOWN');
INSERT INTO taskguard.classification_rule (error_type_pattern, failure_type, confidence) VALUES ('x', 'UNKNOWN', 1.5);
INSERT INTO taskguard.classification_rule (error_type_pattern, failure_type) VALUES ('x', 'NOT_A_TYPE');
-- changes take effect at once in this session (the other-session case is test/t/classify_rules.sh)
UPDATE taskguard.classification_rule SET failure_type = 'TRANSIENT_NETWORK' WHERE id = :r_acme;
SELECT failure_type FROM taskguard.classify('ACME.sync', NULL);
DELETE FROM taskguard.classification_rule WHERE id = :r_acme;
SELECT failure_type, rule FROM taskguard.classify('ACME.sync', NULL);
BEGIN;
TRUNCATE taskguard.classification_rule;
SELECT failure_type, rule FROM taskguard.classify('billing.gateway.PaymentError', 'Card was DECLINED by issuer');
ROLLBACK;
SELECT failure_type, rule = 'user:' || :r_card AS by_rule FROM taskguard.classify('billing.gateway.PaymentError', 'Card was DECLINED');
DELETE FROM taskguard.classification_rule;

-- Remediation, retryable and alert level come from taskguard.retry_policy
UPDATE taskguard.retry_policy SET alert_level = 'critical', remediation = 'ESCALATE_TO_ADMIN'
 WHERE failure_type = 'TRANSIENT_NETWORK' AND task_name IS NULL;
SELECT failure_type, remediation, alert_level FROM taskguard.classify('ConnectionError');
UPDATE taskguard.retry_policy SET alert_level = 'warning', remediation = 'RETRY_WITH_BACKOFF'
 WHERE failure_type = 'TRANSIENT_NETWORK' AND task_name IS NULL;
-- a per-task override (its NULL columns inherit the default), chosen by context task_name
INSERT INTO taskguard.retry_policy (failure_type, task_name, retryable, alert_level)
VALUES ('PERMANENT_NOT_FOUND', 'sync_catalog', true, 'info');
SELECT failure_type, remediation, retryable, alert_level FROM taskguard.classify('DoesNotExist', NULL, '{"task_name": "sync_catalog"}');
SELECT failure_type, remediation, retryable, alert_level FROM taskguard.classify('DoesNotExist', NULL, '{"task_name": "other"}');
DELETE FROM taskguard.retry_policy WHERE task_name IS NOT NULL;
-- a deleted default row falls back to the built-in default
BEGIN;
DELETE FROM taskguard.retry_policy WHERE failure_type = 'SYSTEM_DISK_FULL';
SELECT failure_type, remediation, retryable, alert_level FROM taskguard.classify('x', 'disk full');
ROLLBACK;
-- the seeded policy table is the documented table (docs/reference.md#retry)
SELECT failure_type, remediation, retryable, max_retries, base_delay, max_delay, multiplier, jitter,
       alert_level, priority_adjustment
  FROM taskguard.retry_policy ORDER BY failure_type;
-- a role without privileges on the configuration tables can classify (the
-- cache is read as the tables' owner)
CREATE ROLE tg_classify_plain;
GRANT USAGE ON SCHEMA taskguard TO tg_classify_plain;
GRANT EXECUTE ON FUNCTION taskguard.classify(text, text, jsonb) TO tg_classify_plain;
INSERT INTO taskguard.classification_rule (error_type_pattern, failure_type, description)
VALUES ('PlainRoleError', 'SYSTEM_DISK_FULL', 'role test');
SET ROLE tg_classify_plain;
SELECT count(*) FROM taskguard.classification_rule;
SELECT failure_type, alert_level FROM taskguard.classify('PlainRoleError', NULL);
SELECT current_user;
RESET ROLE;
DELETE FROM taskguard.classification_rule WHERE description = 'role test';
REVOKE EXECUTE ON FUNCTION taskguard.classify(text, text, jsonb) FROM tg_classify_plain;
REVOKE USAGE ON SCHEMA taskguard FROM tg_classify_plain;
DROP ROLE tg_classify_plain;
-- classification inside a parallel worker (the cache is loaded there too)
CREATE TABLE classify_cases AS SELECT * FROM cases;
-- force_parallel_mode is called debug_parallel_query since PostgreSQL 16: set whichever this server has
SELECT name AS parallel_guc FROM pg_settings WHERE name IN ('force_parallel_mode', 'debug_parallel_query') \gset
SET :parallel_guc = on;
SELECT count(*) FILTER (WHERE (taskguard.classify(error_type, message, context)).failure_type::text = want) AS parallel_ok
  FROM classify_cases;
RESET :parallel_guc;
DROP TABLE classify_cases;
