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
-- complete_many: only running tasks of the right attempt
SELECT array_agg(id ORDER BY id) AS ids FROM taskguard.enqueue_many('m', ARRAY['{"i":1}', '{"i":2}', '{"i":3}']::jsonb[], 'many') AS id \gset
SELECT array_agg(args->>'i' ORDER BY id) AS args_in_order FROM taskguard.task WHERE id = ANY(:'ids');
SELECT count(*) FROM taskguard.claim('many', 'w', 3);
SELECT taskguard.complete_many(:'ids'::bigint[], ARRAY[1, 2, 1]) AS completed;
SELECT taskguard.complete_many(:'ids'::bigint[]) AS completed_rest;
SELECT taskguard.complete_many(:'ids'::bigint[], ARRAY[1]);
SELECT taskguard.complete_many(NULL), taskguard.complete_many('{}');
SELECT count(*) FROM taskguard.enqueue_many('m', '{}'::jsonb[]);
SELECT taskguard.enqueue_many('m', NULL);
-- heartbeat extends the lease; a stale attempt does not
SELECT taskguard.enqueue('hb', '{}', 'hbq') AS hb \gset
SELECT lease_expires_at AS lease0 FROM taskguard.claim('hbq', 'w', 1, '1 second') \gset
SELECT taskguard.heartbeat(:hb, '10 minutes', 2) AS stale_hb, taskguard.heartbeat(:hb, '10 minutes', 1) AS hb_ok;
SELECT lease_expires_at > :'lease0'::timestamptz + interval '9 minutes' AS extended FROM taskguard.task WHERE id = :hb;
SELECT taskguard.heartbeat(:hb, '0 seconds');
-- an expired lease is reaped by tick() as a failure
UPDATE taskguard.task SET lease_expires_at = now() - interval '1 second' WHERE id = :hb;
SELECT (taskguard.tick()->>'reap_leases')::int AS reaped;
SELECT status <> 'running' AS no_longer_running, attempts FROM taskguard.task WHERE id = :hb;
-- the scheduler view exists and tick() reports every step
SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(taskguard.tick()) k;
-- huge input: a 20 MB args document is stored, a 2 kB queue name is refused
SELECT taskguard.enqueue('big', jsonb_build_object('blob', repeat('x', 20 * 1024 * 1024)), 'bigq') AS big \gset
SELECT length(args->>'blob') FROM taskguard.task WHERE id = :big;
SELECT taskguard.enqueue('x', '{}', repeat('q', 2000));
SELECT taskguard.enqueue('x', '[1, 2, 3]', 'arrays') > 0 AS array_args_ok;
SELECT taskguard.claim(NULL);
SELECT taskguard.claim('default', batch => NULL);
SELECT taskguard.claim('default', lease => '100 years');
