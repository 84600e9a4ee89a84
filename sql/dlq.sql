-- dlq: fail(), the dead-letter lifecycle in queue and external mode, operator actions
\set VERBOSITY terse
SET taskguard.notify = off;
-- long, exact delays so that nothing becomes due by itself while the test runs
CREATE TEMP TABLE saved_policy AS SELECT * FROM taskguard.retry_policy;
UPDATE taskguard.retry_policy SET base_delay = '1 hour', max_delay = '1 hour', jitter = 'none'
 WHERE retryable AND task_name IS NULL;
-- claim the one ready task of a queue and fail it with the attempt it was handed
CREATE FUNCTION pg_temp.attempt_fail(q text, et text, msg text DEFAULT NULL, ctx jsonb DEFAULT '{}')
RETURNS taskguard.failure_outcome LANGUAGE plpgsql AS $$
DECLARE
    t taskguard.task;
BEGIN
    SELECT * INTO t FROM taskguard.claim(q, 'w1');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'nothing to claim in queue %', q;
    END IF;
    RETURN taskguard.fail(t.id, et, msg, ctx, t.attempts);
END $$;
-- make a PENDING record due and run one scheduler pass; how many were requeued
CREATE FUNCTION pg_temp.make_due(fid bigint) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    UPDATE taskguard.dead_letter SET next_retry_at = now() - interval '1 second'
     WHERE id = fid AND status = 'PENDING';
    RETURN (taskguard.tick()->>'requeue_retries')::int;
END $$;
-- one retry cycle: due, requeued, claimed, failed again
CREATE FUNCTION pg_temp.cycle(q text, fid bigint, et text, msg text DEFAULT NULL)
RETURNS TABLE (requeued int, action text, status taskguard.dlq_status, retry_count int, runs int)
LANGUAGE plpgsql AS $$
DECLARE
    o taskguard.failure_outcome;
BEGIN
    requeued := pg_temp.make_due(fid);
    o := pg_temp.attempt_fail(q, et, msg);
    action := o.action;
    SELECT d.status, d.retry_count, t.attempts INTO status, retry_count, runs
      FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE d.id = fid;
    RETURN NEXT;
END $$;

-- 1. Exhaustion: a TRANSIENT_DATABASE task runs 1 + 5 times, then its record is ABANDONED.
SELECT taskguard.enqueue('db_job', '{"n": 1}', queue => 'q1') AS t1 \gset
SELECT failure_type, confidence, remediation, action, next_retry_at > now() AS later
  FROM pg_temp.attempt_fail('q1', 'psycopg2.errors.SerializationFailure', 'could not serialize access') \gset f1_
SELECT :'f1_failure_type' AS failure_type, :'f1_action' AS action, :'f1_later' AS later;
SELECT id AS f1 FROM taskguard.dead_letter WHERE task_id = :t1 \gset
-- the task waits (failed, run_at = next_retry_at, linked), and cannot be claimed
SELECT t.status, t.run_at = d.next_retry_at AS run_at_is_retry, t.failure_id = d.id AS linked,
       d.status AS dlq_status, d.retry_count, d.max_retries, d.rule
  FROM taskguard.task t JOIN taskguard.dead_letter d ON d.id = t.failure_id WHERE t.id = :t1;
SELECT count(*) AS claimable FROM taskguard.claim('q1');
-- not due yet: the scheduler leaves it
SELECT (taskguard.tick()->>'requeue_retries')::int AS requeued;
SELECT * FROM pg_temp.cycle('q1', :f1, 'DeadlockDetected', 'deadlock detected');
SELECT * FROM pg_temp.cycle('q1', :f1, 'DeadlockDetected', 'deadlock detected');
SELECT * FROM pg_temp.cycle('q1', :f1, 'OperationalError', 'server closed the connection');
SELECT * FROM pg_temp.cycle('q1', :f1, 'DeadlockDetected', 'deadlock detected');
SELECT * FROM pg_temp.cycle('q1', :f1, 'DeadlockDetected', 'deadlock detected');
SELECT status, failure_type, retry_count, max_retries, next_retry_at, resolution
  FROM taskguard.dlq WHERE id = :f1;
SELECT status, attempts, failure_id = :f1 AS linked FROM taskguard.task WHERE id = :t1;
-- nothing more happens by itself
SELECT pg_temp.make_due(:f1) AS requeued, (SELECT count(*) FROM taskguard.claim('q1')) AS claimable;
-- one event per failed attempt
SELECT retry_count, failure_type, action, task_name FROM taskguard.failure_event WHERE task_id = :t1 ORDER BY time, retry_count;
-- an operator retries it: RETRYING, task ready with room for one more run; success resolves it
SELECT taskguard.dlq_retry(ARRAY[:f1]) AS retried;
SELECT d.status, d.retry_count, t.status AS task_status FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE d.id = :f1;
SELECT id = :t1 AS same_task, attempts FROM taskguard.claim('q1');
SELECT taskguard.complete(:t1, '{"ok": true}');
SELECT status, resolution, resolved_at IS NOT NULL AS resolved_at_set, next_retry_at FROM taskguard.dlq WHERE id = :f1;

-- 2. A retry that succeeds: PENDING -> RETRYING -> RESOLVED (resolution 'retry')
SELECT taskguard.enqueue('net_job', queue => 'q2') AS t2 \gset
SELECT action, failure_id AS f2 FROM pg_temp.attempt_fail('q2', 'requests.exceptions.ConnectionError', 'Connection refused') \gset
SELECT :'action' AS action, status FROM taskguard.dlq WHERE id = :f2;
SELECT pg_temp.make_due(:f2) AS requeued;
SELECT d.status, t.status AS task_status, t.run_at <= now() AS due_now FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE d.id = :f2;
SELECT attempts FROM taskguard.claim('q2');
SELECT taskguard.complete(:t2);
SELECT status, resolution, retry_count FROM taskguard.dlq WHERE id = :f2;
-- completing again changes nothing; the task is unlinked, so requeue() re-runs it plainly
SELECT taskguard.complete(:t2) AS again;
SELECT failure_id FROM taskguard.task WHERE id = :t2;
SELECT taskguard.requeue(:t2) AS requeued;
SELECT status, failure_id FROM taskguard.task WHERE id = :t2;
SELECT taskguard.cancel(:t2);
-- complete_many() resolves open records too
SELECT taskguard.enqueue('many', queue => 'q2b') AS t2b \gset
SELECT failure_id AS f2b FROM pg_temp.attempt_fail('q2b', 'ConnectionError') \gset
SELECT pg_temp.make_due(:f2b) AS requeued;
SELECT attempts FROM taskguard.claim('q2b');
SELECT taskguard.complete_many(ARRAY[:t2b]) AS completed;
SELECT d.status, d.resolution, t.status AS task_status, t.failure_id FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE d.id = :f2b;

-- 3. A permanent failure is ABANDONED at once
SELECT taskguard.enqueue('parse_job', queue => 'q3') AS t3 \gset
SELECT failure_type, remediation, action, next_retry_at FROM pg_temp.attempt_fail('q3', 'ValueError', 'invalid literal');
SELECT d.status, d.resolution, d.next_retry_at, t.status AS task_status
  FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE t.id = :t3;
SELECT id AS f3 FROM taskguard.dead_letter WHERE task_id = :t3 \gset

-- 4. The task's max_attempts caps runs below the policy
SELECT taskguard.enqueue('capped', queue => 'q4', max_attempts => 2) AS t4 \gset
SELECT action FROM pg_temp.attempt_fail('q4', 'ConnectionError');
SELECT id AS f4 FROM taskguard.dead_letter WHERE task_id = :t4 \gset
SELECT * FROM pg_temp.cycle('q4', :f4, 'ConnectionError');
SELECT status, retry_count, max_retries, resolution FROM taskguard.dlq WHERE id = :f4;

-- 5. Stale and wrong calls change nothing
SELECT taskguard.enqueue('stale', queue => 'q5') AS t5 \gset
SELECT attempts FROM taskguard.claim('q5');
SELECT taskguard.fail(:t5, 'ConnectionError', 'x', '{}', 2) IS NULL AS stale_attempt;
SELECT status, failure_id FROM taskguard.task WHERE id = :t5;
SELECT count(*) AS records FROM taskguard.dead_letter WHERE task_id = :t5;
SELECT taskguard.fail(:t5, 'ConnectionError', 'x', '{}', 1) IS NOT NULL AS right_attempt;
SELECT taskguard.fail(:t5, 'ConnectionError', 'x') IS NULL AS not_running;
SELECT taskguard.fail(NULL, 'x') IS NULL AS null_id, taskguard.fail(-1, 'x') IS NULL AS unknown_id;

-- 6. Retry-After is a floor above the policy's cap (TRANSIENT_DATABASE caps at 1 minute)
SELECT taskguard.enqueue('throttled', queue => 'q6') AS t6 \gset
SELECT next_retry_at - now() >= interval '2 hours' AS floored, next_retry_at - now() < interval '2 hours 1 second' AS exact
  FROM pg_temp.attempt_fail('q6', 'DeadlockDetected', 'deadlock detected', '{"retry_after_seconds": 7200}');
SELECT t.run_at = d.next_retry_at AS task_waits_as_long FROM taskguard.task t JOIN taskguard.dead_letter d ON d.id = t.failure_id WHERE t.id = :t6;

-- 7. A lease that expires is a taskguard.LeaseExpired failure, classified UNKNOWN and retried
SELECT taskguard.enqueue('lost', queue => 'q7') AS t7 \gset
SELECT attempts FROM taskguard.claim('q7', 'w-dead');
UPDATE taskguard.task SET lease_expires_at = now() - interval '1 second' WHERE id = :t7;
SELECT (taskguard.tick()->>'reap_leases')::int AS reaped;
SELECT d.status, d.failure_type, d.rule, d.error_type, d.retry_count, t.status AS task_status
  FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE t.id = :t7;

-- 8. cancel() abandons an open record; requeue() of a waiting task retries it
SELECT taskguard.enqueue('to_cancel', queue => 'q8') AS t8 \gset
SELECT failure_id AS f8 FROM pg_temp.attempt_fail('q8', 'ConnectionError') \gset
SELECT taskguard.cancel(:t8);
SELECT status, resolution FROM taskguard.dlq WHERE id = :f8;
-- an operator may still retry it: the cancelled task runs again
SELECT taskguard.dlq_retry(ARRAY[:f8]) AS retried_cancelled;
SELECT d.status, t.status AS task_status FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE d.id = :f8;
SELECT taskguard.cancel(:t8) AS cancel_again;
SELECT status, resolution FROM taskguard.dlq WHERE id = :f8;
SELECT taskguard.enqueue('to_requeue', queue => 'q9') AS t9 \gset
SELECT failure_id AS f9 FROM pg_temp.attempt_fail('q9', 'ConnectionError') \gset
SELECT taskguard.requeue(:t9, 'HIGH') AS requeued;
SELECT d.status, d.priority, t.status AS task_status, t.priority AS task_priority
  FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE d.id = :f9;

-- 9. Bulk actions skip what does not apply and return how many changed
SELECT failure_id AS p1 FROM taskguard.record_failure('ext', '{}', 'ConnectionError', task_ref => 'b-pending') \gset
SELECT failure_id AS a1 FROM taskguard.record_failure('ext', '{}', 'ValueError', task_ref => 'b-abandoned') \gset
SELECT failure_id AS r1 FROM taskguard.record_failure('ext', '{}', 'ConnectionError', task_ref => 'b-retrying') \gset
SELECT failure_id AS s1 FROM taskguard.record_failure('ext', '{}', 'ConnectionError', task_ref => 'b-resolved') \gset
UPDATE taskguard.dead_letter SET status = 'RETRYING', next_retry_at = NULL WHERE id = :r1;
SELECT taskguard.resolve(:s1, 'fixed by hand') AS resolved, taskguard.resolve(:s1) AS resolved_twice;
SELECT taskguard.dlq_abandon(ARRAY[:p1, :a1, :r1, :s1, -1]) AS abandoned;
SELECT id = :p1 AS p, id = :r1 AS r, status, resolution FROM taskguard.dlq WHERE id IN (:p1, :r1) ORDER BY id;
SELECT taskguard.dlq_retry(ARRAY[:p1, :a1, :r1, :s1, -1, NULL]) AS retried;
SELECT status, next_retry_at <= now() AS due, resolution FROM taskguard.dlq WHERE id IN (:p1, :a1, :r1, :s1) ORDER BY id;
SELECT taskguard.dlq_resolve(ARRAY[:p1, :a1, :r1, :s1], 'outage over') AS resolved;
SELECT taskguard.dlq_resolve(ARRAY[:p1, :a1, :r1, :s1]) AS resolved_again;
SELECT taskguard.dlq_retry(NULL) AS null_ids, taskguard.dlq_abandon('{}') AS empty_ids, taskguard.dlq_resolve(NULL) AS null_resolve;
SELECT taskguard.resolve(NULL) AS resolve_null, taskguard.resolve(-5) AS resolve_unknown;

-- 10. dlq_retry at a new priority, and spread over a window
SELECT taskguard.enqueue('prio', queue => 'q10') AS t10 \gset
SELECT failure_id AS f10 FROM pg_temp.attempt_fail('q10', 'ValueError') \gset
SELECT taskguard.dlq_retry(ARRAY[:f10], 'CRITICAL') AS retried;
SELECT t.status, t.priority, t.priority_score, d.status AS dlq_status, d.priority AS dlq_priority
  FROM taskguard.task t JOIN taskguard.dead_letter d ON d.id = t.failure_id WHERE t.id = :t10;
SELECT task_name, priority FROM taskguard.claim('q10');
SELECT failure_id = :f10 AS same_record, action FROM taskguard.fail(:t10, 'ValueError');
SELECT status, retry_count FROM taskguard.dlq WHERE id = :f10;
CREATE TEMP TABLE spread_ids AS
SELECT (taskguard.record_failure('redrive', jsonb_build_object('i', i), 'ValueError', task_ref => 'spread-' || i)).failure_id AS id
  FROM generate_series(1, 4) i;
SELECT taskguard.enqueue('redrive_q', queue => 'q11') AS t11 \gset
INSERT INTO spread_ids SELECT failure_id FROM pg_temp.attempt_fail('q11', 'ValueError');
BEGIN;
SELECT taskguard.dlq_retry(array_agg(id), NULL, '1 hour') AS spread FROM spread_ids;
SELECT status, next_retry_at - now() AS offset FROM taskguard.dead_letter WHERE id IN (SELECT id FROM spread_ids) ORDER BY id;
SELECT t.status, t.run_at - now() AS offset FROM taskguard.task t WHERE t.id = :t11;
COMMIT;
-- the first is due now; the others wait their turn
SELECT count(*) AS claimed_now FROM taskguard.claim_due_retries(100) WHERE task_ref LIKE 'spread-%';
SELECT taskguard.dlq_retry(ARRAY[1], NULL, '-1 hour');
SELECT taskguard.dlq_retry(ARRAY[1], NULL, '2 years');

-- 11. External-broker mode: same task_ref -> same record; exhaustion; claim_due_retries
SELECT failure_type, action, failure_id AS e1 FROM taskguard.record_failure('celery.sync', '{"id": 7}', 'psycopg2.OperationalError',
       'server closed the connection unexpectedly', '{"queue": "celery"}', NULL, 'celery-task-7') \gset
SELECT :'failure_type' AS failure_type, :'action' AS action;
SELECT (taskguard.record_failure('celery.sync', '{"id": 7}', 'OperationalError', NULL, '{}', NULL, 'celery-task-7')).failure_id = :e1 AS same,
       (taskguard.record_failure('celery.sync', '{"id": 7}', 'OperationalError', NULL, '{}', NULL, 'celery-task-7')).failure_id = :e1 AS same_again;
SELECT status, retry_count, task_id, task_ref, queue, tenant FROM taskguard.dlq WHERE id = :e1;
-- not due: nothing to claim; due: handed out once, as RETRYING
SELECT count(*) AS not_due FROM taskguard.claim_due_retries() WHERE id = :e1;
UPDATE taskguard.dead_letter SET next_retry_at = now() - interval '1 second' WHERE id = :e1;
SELECT id = :e1 AS e1, status, retry_count FROM taskguard.claim_due_retries(10) WHERE id = :e1;
SELECT count(*) AS claimed_twice FROM taskguard.claim_due_retries(10) WHERE id = :e1;
-- a hand-out that never reports back is due again after taskguard.dispatch_timeout (1 hour)
SELECT dispatched_at > now() - interval '1 minute' AS dispatched_now FROM taskguard.dead_letter WHERE id = :e1;
UPDATE taskguard.dead_letter SET dispatched_at = now() - interval '59 minutes' WHERE id = :e1;
SELECT taskguard._redispatch_lost(100) >= 0 AS ran;
SELECT status AS still_waiting FROM taskguard.dead_letter WHERE id = :e1;
UPDATE taskguard.dead_letter SET dispatched_at = now() - interval '61 minutes' WHERE id = :e1;
SELECT taskguard._redispatch_lost(100) >= 1 AS redispatched;
SELECT status, retry_count, next_retry_at <= now() AS due, dispatched_at FROM taskguard.dead_letter WHERE id = :e1;
SELECT id = :e1 AS e1, status, retry_count FROM taskguard.claim_due_retries(10) WHERE id = :e1;
-- queue-mode records are never handed to claim_due_retries
SELECT count(*) AS queue_records FROM taskguard.claim_due_retries(10000) WHERE NOT external;
-- the dispatcher reports three more failures: retry_count 3, 4, 5 -> ABANDONED (1 + 5 runs)
SELECT (taskguard.record_failure('celery.sync', '{}', 'OperationalError', NULL, '{}', NULL, 'celery-task-7')).action FROM generate_series(1, 3);
SELECT status, retry_count, max_retries, resolution FROM taskguard.dlq WHERE id = :e1;
-- success: resolve; a later failure of the same ref reopens the record from retry_count 0
SELECT taskguard.resolve(:e1, 'ok');
SELECT status, resolution FROM taskguard.dlq WHERE id = :e1;
SELECT failure_id = :e1 AS same, action FROM taskguard.record_failure('celery.sync', '{}', 'OperationalError', NULL, '{}', NULL, 'celery-task-7');
SELECT status, retry_count, resolved_at FROM taskguard.dlq WHERE id = :e1;
-- tenants have separate records for the same ref; refs of any length work
SELECT (taskguard.record_failure('x', '{}', 'E', tenant => 'acme', task_ref => 'r')).failure_id <>
       (taskguard.record_failure('x', '{}', 'E', tenant => 'globex', task_ref => 'r')).failure_id AS per_tenant;
SELECT (taskguard.record_failure('x', '{}', 'E', task_ref => repeat('r', 200000))).failure_id =
       (taskguard.record_failure('x', '{}', 'E', task_ref => repeat('r', 200000))).failure_id AS long_ref;
-- without task_ref each call is a new record
SELECT (taskguard.record_failure('x', '{}', 'E')).failure_id <> (taskguard.record_failure('x', '{}', 'E')).failure_id AS no_ref;
-- bad input
SELECT taskguard.record_failure(NULL, '{}', 'E');
SELECT taskguard.record_failure('', '{}', 'E');
SELECT taskguard.claim_due_retries(0);
SELECT taskguard.claim_due_retries(NULL);
SELECT taskguard.record_failure(repeat('n', 4 * 1024 * 1024), '{}', 'E');
SELECT action, failure_type FROM taskguard.record_failure('x', NULL, NULL, NULL, NULL);
SELECT failure_id AS longtype FROM taskguard.record_failure('x', '{}', repeat('a.', 2 * 1024 * 1024) || 'ValueError') \gset
SELECT failure_type, rule, length(error_type) AS stored_type_len FROM taskguard.dead_letter WHERE id = :longtype;
-- Retry-After Infinity waits 30 days, not forever (issue 16)
SELECT action, next_retry_at BETWEEN now() + interval '29 days' AND now() + interval '30 days' AS in_30_days FROM taskguard.record_failure('x', '{}', 'ConnectionError', NULL, '{"retry_after_seconds": "Infinity"}');
SELECT failure_id AS nonobj FROM taskguard.record_failure('x', '{}', 'E', NULL, '[1,2]') \gset
SELECT context FROM taskguard.dead_letter WHERE id = :nonobj;

-- 12. Stored messages are capped at 64 kB; the prefix is classified
SELECT taskguard.enqueue('big', queue => 'q12') AS t12 \gset
SELECT failure_type FROM pg_temp.attempt_fail('q12', 'Exception', 'no space left on device ' || repeat('z', 4 * 1024 * 1024));
SELECT length(d.message) AS message_len, length(t.last_error) AS last_error_len, length(e.error) AS event_len
  FROM taskguard.task t JOIN taskguard.dead_letter d ON d.id = t.failure_id
  JOIN taskguard.failure_event e ON e.failure_id = d.id WHERE t.id = :t12;

-- 13. A record whose task was deleted is abandoned by the scheduler, not retried
SELECT taskguard.enqueue('gone', queue => 'q13') AS t13 \gset
SELECT failure_id AS f13 FROM pg_temp.attempt_fail('q13', 'ConnectionError') \gset
DELETE FROM taskguard.task WHERE id = :t13;
SELECT pg_temp.make_due(:f13) AS requeued;
SELECT status, task_id, resolution FROM taskguard.dlq WHERE id = :f13;

-- 14. Pruning: old events and old RESOLVED records go; others stay
UPDATE taskguard.failure_event SET time = now() - interval '31 days' WHERE task_id = :t1;
UPDATE taskguard.dead_letter SET resolved_at = now() - interval '31 days' WHERE id = :f2;
SELECT (taskguard.tick()->>'prune_failures')::int AS pruned;
SELECT count(*) AS events_left FROM taskguard.failure_event WHERE task_id = :t1;
SELECT count(*) AS f2_left FROM taskguard.dead_letter WHERE id = :f2;

-- 15. dlq_purge
UPDATE taskguard.dead_letter SET resolved_at = now() - interval '40 days' WHERE status = 'RESOLVED' AND id = :f1;
UPDATE taskguard.dead_letter SET last_failed_at = now() - interval '40 days' WHERE id IN (:a1, :f3);
SELECT taskguard.dlq_purge() AS purged_resolved;
SELECT count(*) AS f1_left FROM taskguard.dead_letter WHERE id = :f1;
SELECT failure_id IS NULL AS unlinked FROM taskguard.task WHERE id = :t1;
SELECT taskguard.dlq_purge('30 days', '{ABANDONED}') AS purged_abandoned;
SELECT failure_id IS NULL AS unlinked FROM taskguard.task WHERE id = :t3;
SELECT taskguard.dlq_purge('0', '{}') AS purged_nothing;
SELECT taskguard.dlq_purge(NULL);
SELECT taskguard.dlq_purge('-1 day');
SELECT taskguard.dlq_purge('1 day', NULL);
SELECT taskguard.dlq_purge('1 day', '{BOGUS}');

-- 16. The dlq view: first page by status uses the index; CSV export
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM taskguard.dlq WHERE status = 'PENDING' ORDER BY last_failed_at DESC LIMIT 50;
RESET enable_seqscan;
SELECT status, count(*) FROM taskguard.dlq GROUP BY status ORDER BY status;
COPY (SELECT task_name, status, failure_type, retry_count, resolution FROM taskguard.dlq
       WHERE task_ref IS NULL OR task_ref NOT LIKE 'r%' ORDER BY id LIMIT 8) TO STDOUT WITH CSV HEADER;
\copy (SELECT * FROM taskguard.dlq) TO '/dev/null' WITH CSV HEADER

-- operator resolve of a waiting queue task: the task no longer waits on the record
SELECT taskguard.enqueue('manual', queue => 'q14') AS t14 \gset
SELECT failure_id AS f14 FROM pg_temp.attempt_fail('q14', 'ConnectionError') \gset
SELECT taskguard.dlq_retry(ARRAY[:f14]) AS retried;
SELECT taskguard.resolve(:f14, 'done by hand') AS resolved;
SELECT status, failure_id FROM taskguard.task WHERE id = :t14;
SELECT pg_temp.make_due(:f14) AS requeued, (SELECT count(*) FROM taskguard.claim('q14')) AS claimable;

-- 17. Circuit breakers: fail() of a service's network/external failure records a
-- breaker failure; due retries of a service whose breaker is open wait.
INSERT INTO taskguard.breaker_config VALUES ('dlq-svc', 100, '1 hour', '1 hour', 1, 1);
SELECT taskguard.enqueue('svc_call', queue => 'q15', service => 'dlq-svc') AS t15 \gset
SELECT failure_type, failure_id AS f15 FROM pg_temp.attempt_fail('q15', 'ConnectionError', 'Connection refused') \gset
SELECT taskguard.enqueue('svc_parse', queue => 'q16', service => 'dlq-svc') AS t16 \gset
SELECT failure_type FROM pg_temp.attempt_fail('q16', 'ValueError', 'bad payload');
SELECT taskguard.enqueue('svc_api', queue => 'q16', service => 'dlq-svc') AS t16b \gset
SELECT failure_type FROM pg_temp.attempt_fail('q16', 'HTTPError', 'oops', '{"http_status": 500}');
SELECT state, failures FROM taskguard.breaker_status WHERE service = 'dlq-svc';
SELECT failure_id AS e15 FROM taskguard.record_failure('ext_svc', '{}', 'ConnectionError',
       context => '{"service": "dlq-svc"}', task_ref => 'svc-ref') \gset
SELECT taskguard.breaker_force('dlq-svc', 'open');
SELECT pg_temp.make_due(:f15) AS requeued_while_open;
UPDATE taskguard.dead_letter SET next_retry_at = now() - interval '1 second' WHERE id = :e15;
SELECT count(*) AS claimed_while_open FROM taskguard.claim_due_retries() WHERE id = :e15;
SELECT d.status, t.status AS task_status, t.attempts FROM taskguard.dead_letter d JOIN taskguard.task t ON t.id = d.task_id WHERE d.id = :f15;
SELECT taskguard.breaker_force('dlq-svc', 'auto');
SELECT taskguard.breaker_reset('dlq-svc');
SELECT pg_temp.make_due(:f15) AS requeued_after_close;
SELECT count(*) AS claimed_after_close FROM taskguard.claim_due_retries() WHERE id = :e15;
DELETE FROM taskguard.breaker_config WHERE service = 'dlq-svc';

UPDATE taskguard.retry_policy p SET base_delay = s.base_delay, max_delay = s.max_delay, jitter = s.jitter
  FROM saved_policy s WHERE p.failure_type = s.failure_type AND p.task_name IS NULL AND s.task_name IS NULL;
