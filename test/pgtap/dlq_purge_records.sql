-- dlq_purge_records.sql — purging chosen dead-letter records (issue 25, the
-- console's "Purge" of one record or a selection): the given records go
-- whatever their status, a task waiting on one is cancelled (as dlq_purge
-- does), unknown ids are skipped, an admin bound to a tenant purges only
-- its tenant's records, a reader may not run it.  Rolled back.
BEGIN;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
SELECT plan(9);

SELECT taskguard.enqueue('purge_pick', '{}', 'tap_purge_pick') AS t1 \gset
SELECT count(*) FROM taskguard.claim('tap_purge_pick', 'w');
SELECT (taskguard.fail(:t1, 'TimeoutError', 'timed out')).failure_id AS f1 \gset
SELECT (taskguard.record_failure('purge_pick', '{}', 'ValueError', 'bad', '{}', 'tap_a', 'pick-a')).failure_id AS fa \gset
SELECT (taskguard.record_failure('purge_pick', '{}', 'ValueError', 'bad', '{}', 'tap_b', 'pick-b')).failure_id AS fb \gset

SELECT is(taskguard.dlq_purge_records(NULL), 0::bigint, 'NULL ids purge nothing');
SELECT is(taskguard.dlq_purge_records(ARRAY[-1, 0]::bigint[]), 0::bigint, 'unknown ids are skipped');
SELECT is(taskguard.dlq_purge_records(ARRAY[:f1, :f1, -5]::bigint[]), 1::bigint,
          'the chosen PENDING record is purged (once, however often it is named)');
SELECT is((SELECT status || ':' || coalesce(failure_id::text, '-') FROM taskguard.task WHERE id = :t1),
          'cancelled:-'::text, 'its waiting task is cancelled and unlinked, not failed forever');

CREATE ROLE tap_purge_reader;
CREATE ROLE tap_purge_admin_a;
SELECT taskguard.grant_access('tap_purge_reader', 'reader');
SELECT taskguard.grant_access('tap_purge_admin_a', 'admin');
INSERT INTO taskguard.tenant_member VALUES ('tap_purge_admin_a', 'tap_a');

SET ROLE tap_purge_reader;
SELECT throws_ok(format('SELECT taskguard.dlq_purge_records(ARRAY[%s]::bigint[])', :fa), '42501', NULL,
                 'a reader may not purge');
RESET ROLE;
SELECT ok(has_function_privilege('tap_purge_admin_a', 'taskguard.dlq_purge_records(bigint[])', 'EXECUTE'),
          'grant_access(..., ''admin'') gives it');

SET ROLE tap_purge_admin_a;
SELECT is(taskguard.dlq_purge_records(ARRAY[:fa, :fb]::bigint[]), 1::bigint,
          'an admin bound to a tenant purges only its tenant''s record');
RESET ROLE;
SELECT is((SELECT count(*) FROM taskguard.dead_letter WHERE id = :fb), 1::bigint, 'the other tenant''s record is kept');
SELECT is((SELECT count(*) FROM taskguard.dead_letter WHERE id = :fa), 0::bigint, 'its own is gone');

SELECT * FROM finish();
ROLLBACK;
