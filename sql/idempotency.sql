-- idempotency: key formula, check/release, TTL, tenants, enqueue dedupe, stats
\set VERBOSITY terse
SET taskguard.notify = off;

-- the documented formula, for several shapes of args
SELECT count(*) AS formula_mismatches
  FROM (VALUES ('send_email', '{"to": "a@b.c", "n": 1}'::jsonb),
               ('x', '{}'), ('ünïcödé ✓', '{"k": "välue", "nested": {"a": [1, 2, null]}}'),
               ('t', '[1, "two", 3.0]'), ('t', '"scalar"'), ('t', 'null'))
       AS v(task_name, args)
 WHERE taskguard.idempotency_key(task_name, args)
       <> encode(sha256(convert_to(task_name || chr(31) || args::text, 'UTF8')), 'hex');
-- stable across versions: a fixed value
SELECT taskguard.idempotency_key('send_email', '{"to": "a@b.c"}');
-- key order in the JSON does not matter; values do
SELECT taskguard.idempotency_key('t', '{"a": 1, "b": 2}') = taskguard.idempotency_key('t', '{"b": 2, "a": 1}') AS same_order,
       taskguard.idempotency_key('t', '{"a": 1}') <> taskguard.idempotency_key('t', '{"a": 2}') AS differs,
       taskguard.idempotency_key('t') = taskguard.idempotency_key('t', '{}') AS default_args,
       taskguard.idempotency_key('t', NULL) = taskguard.idempotency_key('t', '{}') AS null_args,
       length(taskguard.idempotency_key('t')) AS hexlen,
       taskguard.idempotency_key('t') ~ '^[0-9a-f]{64}$' AS lowercase_hex;
-- bad input
SELECT taskguard.idempotency_key(NULL);
SELECT taskguard.idempotency_key('');
SELECT length(taskguard.idempotency_key(repeat('n', 5000000), jsonb_build_object('big', repeat('v', 5000000)))) AS huge;

-- check: first true, then a duplicate
SELECT taskguard.idempotency_check('order-1', task_name => 'idem_t') AS first,
       taskguard.idempotency_check('order-1', task_name => 'idem_t') AS dup;
SELECT taskguard.idempotency_check('order-1', '1 hour', 'idem_t') AS dup_other_ttl;
-- a rolled-back check is forgotten
BEGIN;
SELECT taskguard.idempotency_check('order-2', task_name => 'idem_t') AS in_tx;
ROLLBACK;
SELECT taskguard.idempotency_check('order-2', task_name => 'idem_t') AS after_rollback;
-- savepoints too
BEGIN;
SAVEPOINT s;
SELECT taskguard.idempotency_check('order-3') AS in_sp;
ROLLBACK TO s;
SELECT taskguard.idempotency_check('order-3') AS after_sp;
COMMIT;
-- expiry: an expired key is new again, in place
UPDATE taskguard.idempotency_record SET expires_at = now() - interval '1 second'
 WHERE key = 'order-1';
SELECT taskguard.idempotency_check('order-1', task_name => 'idem_t') AS expired_is_new,
       taskguard.idempotency_check('order-1', task_name => 'idem_t') AS dup_again;
SELECT count(*) AS rows_for_key FROM taskguard.idempotency_record WHERE key = 'order-1';
-- the TTL is stored
SELECT taskguard.idempotency_check('ttl-key', '90 minutes') AS first;
SELECT expires_at - created_at AS ttl FROM taskguard.idempotency_record WHERE key = 'ttl-key';
-- the scheduler removes expired keys
UPDATE taskguard.idempotency_record SET expires_at = now() - interval '1 second'
 WHERE key IN ('ttl-key', 'order-3');
SELECT (taskguard.tick()->>'expire_keys')::int AS expired;
SELECT count(*) AS left_over FROM taskguard.idempotency_record WHERE key IN ('ttl-key', 'order-3');
SELECT taskguard._idempotency_expire(0) AS nothing_to_expire;

-- very long keys: hashed before indexing, stored only as digest
SELECT taskguard.idempotency_check(repeat('k', 10000000)) AS long_first,
       taskguard.idempotency_check(repeat('k', 10000000)) AS long_dup,
       taskguard.idempotency_check(repeat('k', 9999999) || 'j') AS long_other;
SELECT count(*) AS long_rows, bool_and(key IS NULL) AS key_not_stored,
       bool_and(length(key_digest) = 32) AS digest_32
  FROM taskguard.idempotency_record WHERE key IS NULL;
SELECT taskguard.idempotency_check(repeat('x', 1024)) AS at_limit;
SELECT length(key) FROM taskguard.idempotency_record WHERE key = repeat('x', 1024);

-- bad input
SELECT taskguard.idempotency_check(NULL);
SELECT taskguard.idempotency_check('');
SELECT taskguard.idempotency_check('k', NULL);
SELECT taskguard.idempotency_check('k', '0 seconds');
SELECT taskguard.idempotency_check('k', '-1 hour');
SELECT taskguard.idempotency_check('k', '1001 years');
SELECT taskguard.idempotency_check('k', '1 month -40 days');
SELECT taskguard.idempotency_check('bad-input-ok', '1000 years', '') AS empty_task_name_ok;

-- release
SELECT taskguard.idempotency_check('rel-1') AS first;
SELECT taskguard.idempotency_release('rel-1') AS released, taskguard.idempotency_release('rel-1') AS again,
       taskguard.idempotency_release('never-seen') AS unknown;
SELECT taskguard.idempotency_check('rel-1') AS reusable;
UPDATE taskguard.idempotency_record SET expires_at = now() - interval '1 second' WHERE key = 'rel-1';
SELECT taskguard.idempotency_release('rel-1') AS expired_release;
SELECT taskguard.idempotency_release(NULL);
SELECT taskguard.idempotency_release('');
SELECT taskguard.idempotency_release(repeat('k', 10000000)) AS long_release;

-- tenants: keys are scoped per tenant (the caller's mapped tenant)
SELECT taskguard.idempotency_check('shared-key') AS no_tenant;
INSERT INTO taskguard.tenant_member VALUES (current_user, 'acme');
SELECT taskguard.idempotency_check('shared-key') AS acme_first,
       taskguard.idempotency_check('shared-key') AS acme_dup;
SELECT taskguard.idempotency_release('shared-key') AS acme_release;
DELETE FROM taskguard.tenant_member WHERE tenant = 'acme';
SELECT taskguard.idempotency_check('shared-key') AS no_tenant_still_dup;
SELECT tenant, count(*) FROM taskguard.idempotency_record WHERE key = 'shared-key' GROUP BY 1 ORDER BY 1;

-- enqueue dedupe: the same key returns the first task and enqueues nothing
SELECT taskguard.enqueue('idem_job', '{"n": 1}', idempotency_key => 'job-1') AS j1 \gset
SELECT taskguard.enqueue('idem_job', '{"n": 2}', idempotency_key => 'job-1') = :j1 AS same_task;
SELECT count(*) AS tasks FROM taskguard.task WHERE idempotency_key = 'job-1';
SELECT task_id = :j1 AS bound FROM taskguard.idempotency_record WHERE key = 'job-1';
-- the same key in another tenant is another task
SELECT taskguard.enqueue('idem_job', idempotency_key => 'job-1', tenant => 'acme') <> :j1 AS other_tenant;
-- a rolled-back enqueue forgets its key
BEGIN;
SELECT taskguard.enqueue('idem_job', idempotency_key => 'job-2') IS NOT NULL AS in_tx;
ROLLBACK;
SELECT taskguard.enqueue('idem_job', idempotency_key => 'job-2') AS j2 \gset
SELECT count(*) AS tasks FROM taskguard.task WHERE idempotency_key = 'job-2';
-- an expired key enqueues again and rebinds
UPDATE taskguard.idempotency_record SET expires_at = now() - interval '1 second' WHERE key = 'job-2';
SELECT taskguard.enqueue('idem_job', idempotency_key => 'job-2') <> :j2 AS new_task;
SELECT count(*) AS tasks FROM taskguard.task WHERE idempotency_key = 'job-2';
-- the TTL comes from taskguard.idempotency_ttl (default 24 hours)
SELECT taskguard.enqueue('idem_job', idempotency_key => 'job-3') IS NOT NULL AS enqueued;
SELECT expires_at - created_at AS ttl FROM taskguard.idempotency_record WHERE key = 'job-3';
-- check then enqueue with the same key in one transaction enqueues once
BEGIN;
SELECT taskguard.idempotency_check('job-4', task_name => 'idem_job') AS checked;
SELECT taskguard.enqueue('idem_job', idempotency_key => 'job-4') AS j4 \gset
SELECT taskguard.enqueue('idem_job', idempotency_key => 'job-4') = :j4 AS same_task;
COMMIT;
SELECT count(*) AS tasks FROM taskguard.task WHERE idempotency_key = 'job-4';
-- a key already used by idempotency_check elsewhere: nothing is enqueued, NULL
SELECT taskguard.idempotency_check('job-5') AS checked;
SELECT taskguard.enqueue('idem_job', idempotency_key => 'job-5') AS no_task;
SELECT count(*) AS tasks FROM taskguard.task WHERE idempotency_key = 'job-5';
-- and checking a key that enqueue used is a duplicate
SELECT taskguard.idempotency_check('job-1') AS dup_of_enqueue;
SELECT taskguard.enqueue('idem_job', idempotency_key => '');

-- stats: checks and duplicates per task_name, live and after a flush
SELECT taskguard._flush_counters() >= 0 AS flushed;
SELECT taskguard.idempotency_check('s-' || i, task_name => 'idem_stats')
  FROM generate_series(1, 3) i;
SELECT taskguard.idempotency_check('s-1', task_name => 'idem_stats') AS dup;
SELECT task_name, checks, duplicates, hit_rate_pct, last_duplicate_at IS NOT NULL AS has_last
  FROM taskguard.idempotency_stats WHERE task_name IN ('idem_stats', 'idem_t', 'idem_job') ORDER BY 1;
SELECT (taskguard.tick()->>'flush_counters')::int > 0 AS flushed;
SELECT count(*) AS live_after_flush FROM taskguard._idempotency_tenant_counters() WHERE task_name = 'idem_stats';
SELECT checks, duplicates FROM taskguard.idempotency_counter WHERE task_name = 'idem_stats';
SELECT taskguard.idempotency_check('s-2', task_name => 'idem_stats') AS dup;
SELECT task_name, checks, duplicates, hit_rate_pct
  FROM taskguard.idempotency_stats WHERE task_name = 'idem_stats';
-- a flush that rolls back puts the counts back
BEGIN;
SELECT taskguard._flush_counters() > 0 AS flushed_in_tx;
ROLLBACK;
SELECT checks, duplicates FROM taskguard.idempotency_stats WHERE task_name = 'idem_stats';
SELECT count(*) AS live_again FROM taskguard._idempotency_tenant_counters() WHERE task_name = 'idem_stats';
-- long task names count under their first 200 bytes
SELECT taskguard.idempotency_check('long-name-1', task_name => repeat('n', 300)) AS first;
SELECT length(task_name), checks FROM taskguard.idempotency_stats WHERE task_name LIKE 'nnnn%';

-- a full counter table (taskguard.max_counters = 1024 here) folds new names
-- into this database's "(other)" bucket: nothing is lost, nothing raises
SELECT taskguard._flush_counters() >= 0 AS flushed;
SELECT count(*) FILTER (WHERE taskguard.idempotency_check('ovf-' || i, task_name => 'ovf_' || i)) AS new_keys
  FROM generate_series(1, 1100) i;
SELECT sum(checks) AS all_counted, bool_or(task_name = '(other)') AS has_other_bucket,
       count(*) FILTER (WHERE task_name LIKE 'ovf\_%') < 1100 AS some_folded
  FROM taskguard.idempotency_stats WHERE task_name LIKE 'ovf\_%' OR task_name = '(other)';
SELECT taskguard._flush_counters() > 0 AS flushed;
SELECT count(*) AS live_left FROM taskguard._idempotency_tenant_counters();
SELECT sum(checks) AS all_flushed FROM taskguard.idempotency_counter
 WHERE task_name LIKE 'ovf\_%' OR task_name = '(other)';
DELETE FROM taskguard.idempotency_counter WHERE task_name LIKE 'ovf\_%' OR task_name = '(other)';

-- leave nothing behind for the other tests
DELETE FROM taskguard.task WHERE task_name = 'idem_job';
DELETE FROM taskguard.idempotency_record;
