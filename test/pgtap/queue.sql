-- queue.sql — the task queue's contract (docs/reference.md#queue) as pgTAP assertions: claim
-- order, run_at, queue separation, the attempt check, leases, cancel, requeue.
-- Runs in one transaction (now() is fixed) on its own queues, rolled back.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(37);

-- claim order: priority score, then run_at, then id
SELECT taskguard.enqueue('low',  '{}', 'tap_q', now() - interval '3 min', 'LOW')   AS low_id \gset
SELECT taskguard.enqueue('crit', '{}', 'tap_q', now() - interval '1 min', 'CRITICAL') AS crit_id \gset
SELECT taskguard.enqueue('med_old', '{}', 'tap_q', now() - interval '2 min', 'MEDIUM') AS med_old_id \gset
SELECT taskguard.enqueue('med_new', '{}', 'tap_q', now() - interval '1 min', 'MEDIUM') AS med_new_id \gset
SELECT taskguard.enqueue('later', '{}', 'tap_q', now() + interval '1 hour', 'CRITICAL') AS later_id \gset
SELECT taskguard.enqueue('other', '{}', 'tap_other', now(), 'CRITICAL') AS other_id \gset

SELECT results_eq(
    $$SELECT task_name FROM taskguard.claim('tap_q', 'w1', batch => 10)$$,
    ARRAY['crit', 'med_old', 'med_new', 'low'],
    'claim returns the highest priority first, then the oldest run_at');
SELECT is((SELECT status FROM taskguard.task WHERE id = :later_id), 'ready',
          'a task whose run_at is in the future is not claimed');
SELECT is((SELECT status FROM taskguard.task WHERE id = :other_id), 'ready',
          'a claim on one queue leaves other queues alone');
SELECT is((SELECT count(*)::int FROM taskguard.claim('tap_q', 'w2', batch => 10)), 0,
          'a second claim gets nothing: every ready task went to one caller');

SELECT is((SELECT row(status, attempts, worker)::text FROM taskguard.task WHERE id = :crit_id),
          row('running', 1, 'w1')::text, 'a claimed task is running, attempts 1, with its worker');
SELECT ok((SELECT lease_expires_at = now() + interval '5 minutes' FROM taskguard.task WHERE id = :crit_id),
          'the default lease is 5 minutes');

-- same id order when score and run_at tie
SELECT taskguard.enqueue('tie', '{}', 'tap_tie', now(), 'HIGH') AS tie1 \gset
SELECT taskguard.enqueue('tie', '{}', 'tap_tie', now(), 'HIGH') AS tie2 \gset
SELECT is((SELECT id FROM taskguard.claim('tap_tie')), :tie1::bigint, 'ties go to the lower id');

-- batch 1 has its own statement (no CTEs, no sort): the same order, one a call
SELECT taskguard.enqueue('low',  '{}', 'tap_b1', now() - interval '3 min', 'LOW') AS b1_low,
       taskguard.enqueue('crit', '{}', 'tap_b1', now() - interval '1 min', 'CRITICAL') AS b1_crit,
       taskguard.enqueue('med_old', '{}', 'tap_b1', now() - interval '2 min', 'MEDIUM') AS b1_med_old,
       taskguard.enqueue('med_new', '{}', 'tap_b1', now() - interval '1 min', 'MEDIUM') AS b1_med_new,
       taskguard.enqueue('later', '{}', 'tap_b1', now() + interval '1 hour', 'CRITICAL') AS b1_later \gset
SELECT results_eq(
    $$SELECT (SELECT task_name FROM taskguard.claim('tap_b1', 'w' || g, 1)) FROM generate_series(1, 5) g$$,
    $$VALUES ('crit'::text), ('med_old'), ('med_new'), ('low'), (NULL)$$,
    'batch 1: one task a call in claim order, and not the one whose run_at is ahead');
SELECT is((SELECT string_agg(task_name || ' ' || worker || ' ' || attempts, ', ' ORDER BY worker)
             FROM taskguard.task WHERE queue = 'tap_b1' AND status = 'running'
              AND lease_expires_at = now() + interval '5 minutes'),
          'crit w1 1, med_old w2 1, med_new w3 1, low w4 1',
          'batch 1: each task claimed once, by its caller, attempts 1, the default lease');
-- ... and the circuit breakers: an open service is skipped, a half-open one
-- gives out its one probe and then nothing (breaker state is shared memory,
-- not rolled back: services of their own, reset at the end)
SELECT taskguard.breaker_force('tap_b1_pay', 'open') AS forced \gset
SELECT taskguard.enqueue('charge', '{}', 'tap_b1_brk', now() - interval '1 min', 'CRITICAL',
                         service => 'tap_b1_pay') AS charge1 \gset
SELECT taskguard.enqueue('plain', '{}', 'tap_b1_brk', now(), 'LOW') AS plain1 \gset
SELECT is((SELECT id FROM taskguard.claim('tap_b1_brk', 'w', 1)), :plain1::bigint,
          'batch 1 passes over a task whose breaker is open');
SELECT is((SELECT row(status, attempts)::text FROM taskguard.task WHERE id = :charge1), row('ready', 0)::text,
          'that task stays ready, its attempts untouched');
INSERT INTO taskguard.breaker_config VALUES ('tap_b1_probe', 1, '1 minute', '0', 1, 1);
SELECT taskguard.breaker_record('tap_b1_probe', false) AS recorded,
       (SELECT count(taskguard.enqueue('call', '{}', 'tap_b1_prb', service => 'tap_b1_probe'))
          FROM generate_series(1, 2)) AS probes_enqueued \gset
SELECT is((SELECT count(*)::int FROM taskguard.claim('tap_b1_prb', 'w', 1)), 1,
          'batch 1 on a half-open service gets the probe');
SELECT is((SELECT count(*)::int FROM taskguard.claim('tap_b1_prb', 'w', 1)), 0,
          'the next batch-1 claim gets nothing: no probe left');
SELECT is((SELECT string_agg(status || ' ' || attempts, ', ' ORDER BY status) FROM taskguard.task
            WHERE queue = 'tap_b1_prb'), 'ready 0, running 1', 'the task without a probe stays ready, attempts 0');
SELECT taskguard.breaker_force('tap_b1_pay', 'auto') AS f1, taskguard.breaker_reset('tap_b1_pay') AS r1,
       taskguard.breaker_reset('tap_b1_probe') AS r2 \gset

-- heartbeat extends the lease of the caller's attempt only
SELECT ok(taskguard.heartbeat(:crit_id, '1 hour', attempt => 1), 'heartbeat of the current attempt succeeds');
SELECT ok((SELECT lease_expires_at >= now() + interval '1 hour' FROM taskguard.task WHERE id = :crit_id),
          'heartbeat moved the lease to at least now() + 1 hour (it counts from clock_timestamp())');
SELECT ok(NOT taskguard.heartbeat(:crit_id, '1 hour', attempt => 2), 'heartbeat of a stale attempt returns false');
SELECT ok(NOT taskguard.heartbeat(:later_id), 'heartbeat of a task that is not running returns false');
SELECT ok(NOT taskguard.heartbeat(-1), 'heartbeat of an unknown id returns false');

-- the attempt check: a worker whose lease was taken over changes nothing
SELECT ok(NOT taskguard.complete(:crit_id, '{"x": 1}', attempt => 7), 'complete with a stale attempt returns false');
SELECT is((SELECT status FROM taskguard.task WHERE id = :crit_id), 'running', '... and the task is still running');
SELECT is(taskguard.fail(:crit_id, 'ValueError', 'x', '{}', attempt => 7), NULL,
          'fail with a stale attempt returns NULL');
SELECT ok(taskguard.complete(:crit_id, '{"x": 1}', attempt => 1), 'complete with the current attempt succeeds');
SELECT is((SELECT row(status, result)::text FROM taskguard.task WHERE id = :crit_id),
          row('succeeded', '{"x": 1}'::jsonb)::text, 'the task succeeded with its result');
SELECT ok(NOT taskguard.complete(:crit_id), 'completing it again returns false');

-- complete_many counts what it completed, skipping stale attempts
SELECT is(taskguard.complete_many(ARRAY[:med_old_id, :med_new_id, :low_id]::bigint[], ARRAY[1, 1, 9]), 2,
          'complete_many completes the current attempts and skips a stale one');
SELECT is((SELECT status FROM taskguard.task WHERE id = :low_id), 'running', '... which stays running');

-- cancel: ready and running tasks; the running task's worker then gets false
SELECT ok(taskguard.cancel(:later_id), 'cancel of a ready task');
SELECT ok(taskguard.cancel(:low_id), 'cancel of a running task');
SELECT ok(NOT taskguard.complete(:low_id, NULL, attempt => 1), 'the cancelled task''s worker gets false from complete');
SELECT ok(NOT taskguard.cancel(-1), 'cancel of an unknown id returns false');

-- requeue: any task that is not running goes back to ready now, optionally at a new priority
SELECT ok(taskguard.requeue(:later_id, 'HIGH'), 'requeue of a cancelled task');
SELECT is((SELECT row(status, priority, run_at = now())::text FROM taskguard.task WHERE id = :later_id),
          row('ready', 'HIGH'::taskguard.priority, true)::text, 'it is ready now, at HIGH');
SELECT ok(NOT taskguard.requeue((SELECT id FROM taskguard.claim('tap_tie'))), 'requeue of a running task returns false');

-- bad input: clean SQLSTATEs
SELECT throws_ok($$SELECT taskguard.claim('tap_q', 'w', batch => 0)$$, '22023', NULL, 'batch 0 is refused (22023)');
SELECT throws_ok($$SELECT taskguard.enqueue(NULL)$$, '22004', NULL, 'a NULL task_name is refused (22004)');
SELECT throws_ok($$SELECT taskguard.enqueue('x', run_at => 'infinity')$$, '22023', NULL, 'an infinite run_at is refused (22023)');

SELECT * FROM finish();
ROLLBACK;
