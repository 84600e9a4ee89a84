-- delete_batch.sql — the one batched delete of the pruning steps (issue 21):
-- at most batch rows, oldest first when ordered, only rows the condition
-- holds for, arguments passed as $1/$2; and the pruning steps that use it
-- delete what they did before (old RESOLVED records, old events, expired
-- keys).  Rolled back.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(9);

CREATE TEMP TABLE tap_rows (id int PRIMARY KEY, at timestamptz);
INSERT INTO tap_rows SELECT g, now() - g * interval '1 hour' FROM generate_series(1, 10) g;

SELECT is(taskguard._delete_batch('tap_rows', 'x.at < $1', 3, order_by => 'x.at',
                                  arg1 => now() - interval '5 hours 30 minutes'),
          3, 'at most batch rows go');
SELECT is((SELECT array_agg(id ORDER BY id) FROM tap_rows WHERE id > 5), '{6,7}'::int[],
          'the oldest matching rows went first');
SELECT is(taskguard._delete_batch('tap_rows', 'x.at < $1', 100, key => 'id',
                                  arg1 => now() - interval '5 hours 30 minutes'),
          2, 'then the rest that match');
SELECT is((SELECT count(*) FROM tap_rows)::int, 5, 'rows that do not match stay');
SELECT is(taskguard._delete_batch('tap_rows', 'x.at BETWEEN $2 AND $1', 100, skip_locked => false,
                                  arg1 => now() - interval '90 minutes', arg2 => now() - interval '3 hours 30 minutes'),
          2, 'two arguments, no row lock');
SELECT is(taskguard._delete_batch('tap_rows', 'true', 0), 0, 'a batch of 0 deletes nothing');

-- the pruning steps
SELECT (taskguard.record_failure('prune_me', '{}', 'ValueError', 'bad', '{}', 'tap_prune', 'p1')).failure_id AS f1 \gset
SELECT taskguard.resolve(:f1, 'done');
UPDATE taskguard.dead_letter SET resolved_at = now() - interval '31 days' WHERE id = :f1;
UPDATE taskguard.failure_event SET time = now() - interval '31 days' WHERE failure_id = :f1;
SELECT cmp_ok(taskguard._prune_failures(100), '>=', 2, '_prune_failures deletes an old event and an old RESOLVED record');
SELECT is((SELECT count(*) FROM taskguard.dead_letter WHERE id = :f1)::int, 0, 'the record is gone');
SELECT taskguard.idempotency_check('tap-prune-key', '1 hour');
UPDATE taskguard.idempotency_record SET expires_at = now() - interval '1 second';
SELECT is(taskguard._idempotency_expire(100), (SELECT 1)::int, '_idempotency_expire deletes the expired key');

SELECT * FROM finish();
ROLLBACK;
