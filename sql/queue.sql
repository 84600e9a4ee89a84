-- queue: enqueue, claim order, leases, attempts, complete, cancel, requeue
\set VERBOSITY terse
SET taskguard.notify = off;
SELECT taskguard.enqueue('a', '{"n":1}') AS t1 \gset
SELECT taskguard.enqueue('b', '{"n":2}', priority => 'HIGH') AS t2 \gset
SELECT taskguard.enqueue('c', '{"n":3}', run_at => now() + interval '1 hour') AS t3 \gset
SELECT taskguard.enqueue('d', '{}', queue => 'other') AS t4 \gset
-- highest priority first, future run_at skipped, queues separate
SELECT task_name, status, attempts FROM taskguard.claim('default', 'w1', 10) ORDER BY priority_score DESC, id;
SELECT task_name FROM taskguard.claim('default', 'w1', 10);
-- completing with a stale attempt is refused
SELECT taskguard.complete(:t1, '{"ok":1}', 2) AS stale;
SELECT taskguard.complete(:t1, '{"ok":1}', 1) AS done;
SELECT taskguard.complete(:t1) AS again;
SELECT status, result FROM taskguard.task WHERE id = :t1;
-- cancel and requeue
SELECT taskguard.cancel(:t3) AS cancelled, taskguard.cancel(:t3) AS twice;
SELECT taskguard.requeue(:t3) AS requeued;
SELECT task_name, attempts FROM taskguard.claim('default', 'w2');
SELECT taskguard.requeue(:t3) AS running_requeue;
-- bad input
SELECT taskguard.enqueue(NULL);
SELECT taskguard.enqueue('');
SELECT taskguard.enqueue('x', run_at => 'infinity');
SELECT taskguard.enqueue('x', max_attempts => 0);
SELECT taskguard.claim('default', batch => 0);
SELECT taskguard.claim('default', lease => '-1 second');
SELECT taskguard.complete(NULL), taskguard.complete(-1), taskguard.heartbeat(-1), taskguard.cancel(NULL);
