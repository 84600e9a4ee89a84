-- dlq_purge.sql — purging open dead-letter records (issue 16, class 6): a
-- queue task that waits on a purged PENDING record for its retry must not be
-- left `failed` forever with no record; it is cancelled.  A running or
-- finished task is left as it is.  Rolled back.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(8);

SELECT taskguard.enqueue('purge_me', '{}', 'tap_purge') AS t1 \gset
SELECT count(*) FROM taskguard.claim('tap_purge', 'w');
SELECT (taskguard.fail(:t1, 'TimeoutError', 'timed out')).action AS act \gset
SELECT is(:'act'::text, 'retry'::text, 'the failure waits for a retry (PENDING record)');
SELECT is((SELECT status FROM taskguard.task WHERE id = :t1), 'failed'::text, 'its task is failed, waiting');

SELECT is(taskguard.dlq_purge('0 seconds', '{PENDING}'), 0::bigint,
          'a record younger than older_than is kept');
UPDATE taskguard.dead_letter SET last_failed_at = now() - interval '1 day'
 WHERE task_id = :t1;
SELECT is(taskguard.dlq_purge('1 hour', '{PENDING}'), 1::bigint, 'the old PENDING record is purged');
SELECT is((SELECT status || ':' || coalesce(failure_id::text, '-') FROM taskguard.task WHERE id = :t1),
          'cancelled:-'::text, 'its waiting task is cancelled and unlinked, not failed forever');
SELECT ok((SELECT finished_at IS NOT NULL FROM taskguard.task WHERE id = :t1), 'and it has finished_at');

-- a NULL argument is refused like every other NULL argument: 22004, one phrasing
SELECT throws_ok($$SELECT taskguard.dlq_purge('1 hour', NULL)$$, '22004',
                 'argument "statuses" must not be NULL', 'NULL statuses refused (22004)');
SELECT throws_ok($$SELECT taskguard.idempotency_release(NULL)$$, '22004',
                 'argument "key" must not be NULL', 'NULL key refused (22004)');

SELECT * FROM finish();
ROLLBACK;
